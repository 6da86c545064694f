//! `agentq loop` (the Agent Q loop: collect with MCTS → preference pairs → DPO → evaluate,
//! per iteration) and `agentq quickstart` (fetch SmolLM2 if missing, run a small loop on the
//! default fixtures, print the before/after table and the report's path).
//!
//! Every stage is an ordinary agentq command run with `--resume` into its own directory
//! (`OUT/{zero-shot,sft}`, `OUT/iter-N/{collect,train,eval-greedy,eval-mcts}`) and marked
//! done by an empty `DONE` file once it finished (its wall time in `WALL_S`), so a loop cut
//! at any point resumes where it stopped; `results.*` are rewritten after every evaluated
//! row. The reference model of iteration N's DPO is the model that collected its data (base
//! + the adapters of iterations before N).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser};
use serde::{Deserialize, Serialize};

use crate::trajectory::{self, report, RunSummary};

/// Arguments of `agentq loop`.
#[derive(Debug, Clone, Args)]
pub struct LoopArgs {
    /// Agent Q iterations (collect → DPO → evaluate).
    #[arg(long, default_value_t = 1)]
    pub iterations: usize,
    /// Train-split tasks searched each iteration (`0..5`, `3,7`, `all`).
    #[arg(long, default_value = "0..5")]
    pub train_tasks: String,
    /// Test-split tasks evaluated after each iteration (and before the first).
    #[arg(long, default_value = "0..5")]
    pub eval_tasks: String,
    /// Output directory.
    #[arg(long, default_value = "runs/loop")]
    pub out: PathBuf,
    /// Base model (default: the fetched SmolLM2).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Candidates per node (K).
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// MCTS iterations per task.
    #[arg(long, default_value_t = 3)]
    pub mcts_iterations: usize,
    /// MCTS depth cap.
    #[arg(long, default_value_t = 6)]
    pub depth_cap: usize,
    /// Critic scheme: iterative (the paper's) or logprob (one prompt, cheaper).
    #[arg(long, default_value = "logprob")]
    pub critic_scheme: String,
    /// Step limit of evaluation episodes.
    #[arg(long, default_value_t = 10)]
    pub max_steps: usize,
    /// Also evaluate with MCTS (`--value env`: search with a verifier) after each iteration.
    #[arg(long)]
    pub eval_mcts: bool,
    /// DPO epochs over each iteration's pairs.
    #[arg(long, default_value_t = 2)]
    pub dpo_epochs: usize,
    /// DPO learning rate (LoRA).
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// DPO β.
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// Pairs per DPO step.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Parallel episodes/trees.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Before iteration 0, fine-tune on oracle demonstrations of these train tasks (SFT;
    /// the loop then starts from the SFT model, and the base model gets a "zero-shot" row).
    #[arg(long)]
    pub sft_tasks: Option<String>,
    /// SFT epochs over the demonstrations (with `--sft-tasks`).
    #[arg(long, default_value_t = 2)]
    pub sft_epochs: usize,
    /// SFT learning rate (LoRA; with `--sft-tasks`).
    #[arg(long, default_value_t = 1e-3)]
    pub sft_lr: f64,
    /// Test-split tasks of the MCTS evaluation (default: the `--eval-tasks`).
    #[arg(long)]
    pub mcts_eval_tasks: Option<String>,
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was evaluated: `zero-shot`, `SFT`, `base` or `iteration N`.
    #[serde(default)]
    pub stage: String,
    /// Iteration (0 = the model before any Agent Q iteration).
    pub iteration: usize,
    /// Greedy evaluation.
    pub greedy: RunSummary,
    /// Wall seconds of the greedy evaluation (all invocations that finished).
    #[serde(default)]
    pub greedy_wall_s: f64,
    /// MCTS evaluation, if run.
    pub mcts: Option<RunSummary>,
    /// Wall seconds of the MCTS evaluation.
    #[serde(default)]
    pub mcts_wall_s: f64,
    /// Pairs collected in this iteration (0 for the base row).
    pub pairs: usize,
    /// Adapters applied.
    pub adapters: Vec<PathBuf>,
}

fn done(dir: &Path) -> bool {
    dir.join("DONE").exists()
}

fn mark(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    trajectory::write_atomic(&dir.join("DONE"), b"")?;
    Ok(())
}

/// Wall seconds recorded for a stage directory (0 when none).
fn wall(dir: &Path) -> f64 {
    std::fs::read_to_string(dir.join("WALL_S"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Runs a stage's command and adds its wall time to the stage's `WALL_S` (an invocation
/// cut by a crash is not counted).
fn timed(dir: &Path, args: &[String]) -> Result<()> {
    let t = std::time::Instant::now();
    agentq(args)?;
    std::fs::create_dir_all(dir)?;
    let total = wall(dir) + t.elapsed().as_secs_f64();
    trajectory::write_atomic(&dir.join("WALL_S"), format!("{total:.1}\n").as_bytes())?;
    Ok(())
}

/// Runs an agentq command line in this process.
fn agentq(args: &[String]) -> Result<()> {
    let mut v = vec!["agentq".to_string()];
    v.extend_from_slice(args);
    let cli = super::Cli::try_parse_from(&v).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("» agentq {}", args.join(" "));
    super::run(cli)
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// The search settings shared by collection and MCTS evaluation (LLM proposer and critic).
fn search_args(a: &LoopArgs) -> Vec<String> {
    vec![
        s("--proposer"),
        s("llm"),
        s("--critic"),
        s("llm"),
        s("--critic-scheme"),
        a.critic_scheme.clone(),
        s("--k"),
        s(a.k),
        s("--iterations"),
        s(a.mcts_iterations),
        s("--depth-cap"),
        s(a.depth_cap),
    ]
}

fn model_args(a: &LoopArgs, adapters: &[PathBuf]) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(m) = &a.model {
        v.extend([s("--model"), m.display().to_string()]);
    }
    for ad in adapters {
        v.extend([s("--adapter"), ad.display().to_string()]);
    }
    v
}

/// Greedy (and MCTS) evaluation of the model `adapters` give into `dir/eval-*`, as a row.
fn evaluate(
    a: &LoopArgs,
    dir: &Path,
    adapters: &[PathBuf],
    stage: &str,
    iteration: usize,
    pairs: usize,
) -> Result<Row> {
    let g = dir.join("eval-greedy");
    if !done(&g) {
        let mut args = vec![
            s("eval"),
            s("--agent"),
            s("llm"),
            s("--split"),
            s("test"),
            s("--tasks"),
            a.eval_tasks.clone(),
            s("--max-steps"),
            s(a.max_steps),
            s("--parallel"),
            s(a.parallel),
            s("--out"),
            g.display().to_string(),
            s("--resume"),
        ];
        args.extend(model_args(a, adapters));
        timed(&g, &args)?;
        mark(&g)?;
    }
    let greedy = RunSummary::of(&trajectory::load(&g)?.episodes);
    let mcts = if a.eval_mcts {
        let m = dir.join("eval-mcts");
        if !done(&m) {
            let mut args = vec![s("eval"), s("--agent"), s("mcts")];
            args.extend(search_args(a));
            args.extend([
                s("--split"),
                s("test"),
                s("--tasks"),
                a.mcts_eval_tasks.clone().unwrap_or(a.eval_tasks.clone()),
                s("--max-steps"),
                s(a.max_steps),
                s("--parallel"),
                s(a.parallel),
                s("--out"),
                m.display().to_string(),
                s("--resume"),
            ]);
            args.extend(model_args(a, adapters));
            timed(&m, &args)?;
            mark(&m)?;
        }
        Some(RunSummary::of(&trajectory::load(&m)?.episodes))
    } else {
        None
    };
    Ok(Row {
        stage: stage.to_string(),
        iteration,
        greedy,
        greedy_wall_s: wall(&dir.join("eval-greedy")),
        mcts,
        mcts_wall_s: wall(&dir.join("eval-mcts")),
        pairs,
        adapters: adapters.to_vec(),
    })
}

fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// `agentq loop`.
pub fn run_loop(a: LoopArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let cfg = serde_json::json!({
        "iterations": a.iterations, "train_tasks": a.train_tasks, "eval_tasks": a.eval_tasks,
        "model": a.model, "k": a.k, "mcts_iterations": a.mcts_iterations, "depth_cap": a.depth_cap,
        "critic_scheme": a.critic_scheme, "max_steps": a.max_steps, "eval_mcts": a.eval_mcts,
        "dpo_epochs": a.dpo_epochs, "lr": a.lr, "beta": a.beta, "batch_size": a.batch_size,
        "sft_tasks": a.sft_tasks, "sft_epochs": a.sft_epochs, "sft_lr": a.sft_lr,
        "mcts_eval_tasks": a.mcts_eval_tasks,
    });
    trajectory::write_atomic(&a.out.join("loop.json"), &serde_json::to_vec_pretty(&cfg)?)?;
    let mut rows = Vec::new();
    let mut adapters: Vec<PathBuf> = Vec::new();
    if let Some(tasks) = &a.sft_tasks {
        rows.push(evaluate(
            &a,
            &a.out.join("zero-shot"),
            &[],
            "zero-shot",
            0,
            0,
        )?);
        write_results(&a.out, &rows)?;
        let sft = a.out.join("sft");
        let demos = sft.join("demos.jsonl");
        let train = sft.join("train");
        if !done(&sft) {
            std::fs::create_dir_all(&sft)?;
            agentq(&[
                s("demos"),
                s("--split"),
                s("train"),
                s("--tasks"),
                tasks.clone(),
                s("--out"),
                demos.display().to_string(),
            ])?;
            let mut args = vec![
                s("train"),
                s("sft"),
                s("--data"),
                demos.display().to_string(),
                s("--out"),
                train.display().to_string(),
                s("--lr"),
                s(a.sft_lr),
                s("--epochs"),
                s(a.sft_epochs),
                s("--batch-size"),
                s(a.batch_size),
                s("--max-prompt-tokens"),
                s(768),
            ];
            args.extend(model_args(&a, &[]));
            timed(&sft, &args)?;
            mark(&sft)?;
        }
        adapters.push(train);
    }
    let base = a.out.join("iter-0");
    let stage0 = if a.sft_tasks.is_some() { "SFT" } else { "base" };
    rows.push(evaluate(&a, &base, &adapters, stage0, 0, 0)?);
    write_results(&a.out, &rows)?;
    for i in 1..=a.iterations {
        let dir = a.out.join(format!("iter-{i}"));
        // 1. Collect with the current model.
        let collect = dir.join("collect");
        if !done(&collect) {
            let mut args = vec![s("collect")];
            args.extend(search_args(&a));
            args.extend([
                s("--split"),
                s("train"),
                s("--tasks"),
                a.train_tasks.clone(),
                s("--max-steps"),
                s(a.max_steps),
                s("--parallel"),
                s(a.parallel),
                s("--search-seed"),
                s(i),
                s("--out"),
                collect.display().to_string(),
                s("--resume"),
            ]);
            args.extend(model_args(&a, &adapters));
            timed(&collect, &args)?;
            mark(&collect)?;
        }
        let pairs_file = collect.join("pairs.jsonl");
        let pairs = count_lines(&pairs_file);
        // 2. DPO from the current model (the reference is the data-generating model).
        let train = dir.join("train");
        if pairs == 0 {
            eprintln!(
                "iteration {i}: the search produced no preference pairs; the model is unchanged"
            );
        } else {
            if !done(&train) {
                let mut args = vec![
                    s("train"),
                    s("dpo"),
                    s("--data"),
                    pairs_file.display().to_string(),
                    s("--out"),
                    train.display().to_string(),
                    s("--epochs"),
                    s(a.dpo_epochs),
                    s("--lr"),
                    s(a.lr),
                    s("--beta"),
                    s(a.beta),
                    s("--batch-size"),
                    s(a.batch_size),
                    s("--max-prompt-tokens"),
                    s(768),
                    s("--seed"),
                    s(i),
                ];
                args.extend(model_args(&a, &adapters));
                timed(&train, &args)?;
                mark(&train)?;
            }
            adapters.push(train.clone());
        }
        // 3. Evaluate.
        rows.push(evaluate(
            &a,
            &dir,
            &adapters,
            &format!("iteration {i}"),
            i,
            pairs,
        )?);
        // The table so far, so a long loop shows its finished rows.
        write_results(&a.out, &rows)?;
    }
    print_table(&rows)?;
    let rep = super::runs::write_report(&a.out.join("iter-0").join("eval-greedy"), None).ok();
    let last = a
        .out
        .join(format!("iter-{}", a.iterations))
        .join("eval-greedy");
    let rep_last = super::runs::write_report(&last, None).ok();
    eprintln!("results: {}", a.out.join("results.md").display());
    for r in [rep, rep_last].into_iter().flatten() {
        eprintln!("report: {}", r.display());
    }
    Ok(())
}

fn write_results(out: &Path, rows: &[Row]) -> Result<()> {
    trajectory::write_atomic(&out.join("results.json"), &serde_json::to_vec_pretty(rows)?)?;
    let mut md = String::from(
        "| stage | pairs | greedy tasks | greedy score | greedy success | greedy wall | MCTS tasks | MCTS score | MCTS success | MCTS wall |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1}% | {:.0} s | {} | {} | {} | {} |\n",
            stage_name(r),
            r.pairs,
            r.greedy.episodes,
            r.greedy.score,
            r.greedy.success_rate,
            r.greedy_wall_s,
            r.mcts
                .as_ref()
                .map(|m| m.episodes.to_string())
                .unwrap_or("—".into()),
            r.mcts
                .as_ref()
                .map(|m| format!("{:.1}", m.score))
                .unwrap_or("—".into()),
            r.mcts
                .as_ref()
                .map(|m| format!("{:.1}%", m.success_rate))
                .unwrap_or("—".into()),
            r.mcts
                .as_ref()
                .map(|_| format!("{:.0} s", r.mcts_wall_s))
                .unwrap_or("—".into()),
        ));
    }
    trajectory::write_atomic(&out.join("results.md"), md.as_bytes())?;
    // Rows in order on the x axis (zero-shot, SFT/base, iteration 1, …).
    let pts = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .enumerate()
            .filter_map(|(i, r)| f(r).map(|y| (i as f64, y)))
            .collect()
    };
    let mut svg =
        String::from("<svg xmlns='http://www.w3.org/2000/svg' width='740' height='190'><g>");
    svg.push_str(&report::line_chart(
        "greedy success rate (%) by stage",
        "stage",
        &pts(&|r| Some(r.greedy.success_rate)),
    ));
    svg.push_str("</g><g transform='translate(370,0)'>");
    svg.push_str(&report::line_chart(
        "greedy score by stage",
        "stage",
        &pts(&|r| Some(r.greedy.score)),
    ));
    svg.push_str("</g></svg>\n");
    trajectory::write_atomic(&out.join("results.svg"), svg.as_bytes())?;
    Ok(())
}

/// A row's stage, also for `results.json` written before stages had names.
fn stage_name(r: &Row) -> String {
    if r.stage.is_empty() {
        format!("iteration {}", r.iteration)
    } else {
        r.stage.clone()
    }
}

fn print_table(rows: &[Row]) -> Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:>12} {:>6} {:>12} {:>14} {:>10} {:>12}",
        "stage", "pairs", "greedy score", "greedy success", "MCTS score", "MCTS success"
    )?;
    for r in rows {
        writeln!(
            o,
            "{:>12} {:>6} {:>12.1} {:>13.1}% {:>10} {:>12}",
            stage_name(r),
            r.pairs,
            r.greedy.score,
            r.greedy.success_rate,
            r.mcts
                .as_ref()
                .map(|m| format!("{:.1}", m.score))
                .unwrap_or("—".into()),
            r.mcts
                .as_ref()
                .map(|m| format!("{:.1}%", m.success_rate))
                .unwrap_or("—".into())
        )?;
    }
    Ok(())
}

/// Arguments of `agentq quickstart`.
#[derive(Debug, Clone, Args)]
pub struct QuickstartArgs {
    /// Output directory.
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// Train tasks searched.
    #[arg(long, default_value = "0..3")]
    pub train_tasks: String,
    /// Test tasks evaluated before and after.
    #[arg(long, default_value = "0..3")]
    pub eval_tasks: String,
    /// Agent Q iterations.
    #[arg(long, default_value_t = 1)]
    pub iterations: usize,
    /// Model (GGUF file or HF directory; default: SmolLM2, fetched when missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Fine-tune on oracle demonstrations of these train tasks first (SFT warm start; adds
    /// a zero-shot row).
    #[arg(long)]
    pub sft_tasks: Option<String>,
    /// Also evaluate with MCTS (search with a verifier).
    #[arg(long)]
    pub eval_mcts: bool,
    /// Step limit of evaluation episodes.
    #[arg(long, default_value_t = 8)]
    pub max_steps: usize,
    /// Parallel episodes/trees.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
}

/// `agentq quickstart`.
pub fn quickstart(q: QuickstartArgs) -> Result<()> {
    let model = super::lmargs::default_model_path();
    if q.model.is_none() && !model.exists() {
        agentq(&[s("model"), s("fetch"), s("smollm2")])?;
    }
    run_loop(LoopArgs {
        iterations: q.iterations,
        train_tasks: q.train_tasks,
        eval_tasks: q.eval_tasks,
        out: q.out,
        model: q.model,
        k: 3,
        mcts_iterations: 3,
        depth_cap: 6,
        critic_scheme: "logprob".into(),
        max_steps: q.max_steps,
        eval_mcts: q.eval_mcts,
        dpo_epochs: 2,
        lr: 5e-4,
        beta: 0.1,
        batch_size: 4,
        parallel: q.parallel,
        sft_tasks: q.sft_tasks,
        sft_epochs: 2,
        sft_lr: 1e-3,
        mcts_eval_tasks: None,
    })
}
