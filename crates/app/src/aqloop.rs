//! The Agent Q loop: per iteration, MCTS collection on train tasks with the current model
//! (LLM proposer and critic) → preference pairs → DPO from the current model → evaluation
//! on test tasks (greedy, and optionally with test-time MCTS). An optional SFT warm start on
//! oracle demonstrations comes first.
//!
//! Every stage is an ordinary workflow of this crate run resumably into its own directory
//! (`OUT/{zero-shot,sft}`, `OUT/iter-N/{collect,train,eval-greedy,eval-mcts}`) and marked
//! done by an empty `DONE` file once it finished (its wall time in `WALL_S`), so a loop cut
//! at any point resumes where it stopped; `results.*` are rewritten after every evaluated
//! row. The reference model of iteration N's DPO is the model that collected its data (base
//! + the adapters of iterations before N).
//!
//! Iteration N's pairs (`OUT/iter-N/pairs.jsonl`) are the collection's step-level pairs
//! labelled with the loop's α and θ. With `baselines`, iteration 1's search records every
//! explored sibling pair (θ < 0) and each baseline is trained from the starting model on the
//! same trees into `OUT/iter-1/<baseline>/` and evaluated as a row: RFT (SFT on the
//! successful rollouts), trajectory-level DPO (a successful against a failed rollout, scored
//! step by step) and the paper's critic-mixed pair labels (α = 0.5).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentq_agent::mcts::TerminalReward;
use agentq_agent::policy::critic::CriticScheme;
use agentq_env::Split;
use agentq_train::trainer::Method;
use agentq_trajectory::stats::{self, PairedDiff, RunIntervals};
use agentq_trajectory::{self as trajectory, report, RunSummary};
use serde::{Deserialize, Serialize};

use agentq_agent::pairs::PreferencePair;

use crate::demos::{demos, DemosConfig};
use crate::envs::EnvSettings;
use crate::error::{Context as _, Result};
use crate::eval::{eval, AgentKind, EvalConfig};
use crate::models::ModelSettings;
use crate::progress::Progress;
use crate::search::{collect, CollectConfig, CriticKind, Proposer, SearchSettings};
use crate::tasks::TaskSelection;
use crate::train::{train, TrainSettings};

/// The loop's settings (recorded in `OUT/loop.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopConfig {
    /// Agent Q iterations (collect → DPO → evaluate).
    pub iterations: usize,
    /// Train-split tasks searched each iteration (`0..5`, `3,7`, `all`).
    pub train_tasks: String,
    /// Tasks evaluated after each iteration (and before the first), of `eval_split`.
    pub eval_tasks: String,
    /// The split evaluated: `test` for reported figures, `dev` to choose settings.
    pub eval_split: Split,
    /// Base model (`None`: the fetched SmolLM2).
    pub model: Option<PathBuf>,
    /// Candidates per node (K).
    pub k: usize,
    /// MCTS iterations per task.
    pub mcts_iterations: usize,
    /// MCTS depth cap.
    pub depth_cap: usize,
    /// UCB1 exploration constant.
    pub c_ucb: f64,
    /// Weight of the search value Q̃ in the pair Q (`α·Q̃ + (1−α)·Q̂`; 1 = outcome only, no
    /// AI feedback in the pairs).
    pub alpha: f64,
    /// Least |ΔQ| for a pair.
    pub theta: f64,
    /// Terminal value of the search: success (1/0) or WebShop's partial score.
    pub reward: TerminalReward,
    /// Critic scheme.
    pub critic_scheme: CriticScheme,
    /// Step limit of evaluation (and collection) episodes.
    pub max_steps: usize,
    /// Also evaluate with MCTS (env value: search with a verifier) after each iteration.
    pub eval_mcts: bool,
    /// DPO epochs over each iteration's pairs.
    pub dpo_epochs: usize,
    /// DPO learning rate (LoRA).
    pub lr: f64,
    /// DPO β.
    pub beta: f64,
    /// Weight of the SFT term on chosen actions beside DPO (RPO; 0: plain DPO).
    pub rpo_alpha: f64,
    /// Replay the SFT warm start's oracle demonstrations beside every DPO run's pairs (when
    /// there is a warm start, `sft_tasks`), so the steps no pair covers stay likely: without
    /// it DPO at lr 5e-4 stopped buying (`docs/diagnosis.md` §5).
    #[serde(default)]
    pub replay_demos: bool,
    /// Pairs per DPO step.
    pub batch_size: usize,
    /// Before iteration 0, fine-tune on oracle demonstrations of these train tasks.
    pub sft_tasks: Option<String>,
    /// SFT epochs.
    pub sft_epochs: usize,
    /// SFT learning rate (LoRA).
    pub sft_lr: f64,
    /// Test-split tasks of the MCTS evaluation (`None`: the `eval_tasks`).
    pub mcts_eval_tasks: Option<String>,
    /// The paper's baselines, trained from the starting model on iteration 1's search and
    /// evaluated beside it (each a row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<Baseline>,
    /// Output directory.
    #[serde(skip)]
    pub out: PathBuf,
    /// Parallel episodes/trees.
    #[serde(skip)]
    pub parallel: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            iterations: 1,
            train_tasks: "0..5".into(),
            eval_tasks: "0..5".into(),
            eval_split: Split::Test,
            model: None,
            k: 3,
            mcts_iterations: 10,
            depth_cap: 6,
            c_ucb: 1.0,
            alpha: 1.0,
            theta: 0.1,
            reward: TerminalReward::Partial,
            critic_scheme: CriticScheme::Logprob,
            max_steps: 10,
            eval_mcts: false,
            dpo_epochs: 2,
            lr: 5e-4,
            beta: 0.1,
            rpo_alpha: 1.0,
            replay_demos: true,
            batch_size: 4,
            sft_tasks: None,
            sft_epochs: 2,
            sft_lr: 1e-3,
            mcts_eval_tasks: None,
            baselines: Vec::new(),
            out: PathBuf::from("runs/loop"),
            parallel: 2,
        }
    }
}

/// A baseline row of the loop, trained from the starting model on the data of iteration 1's
/// search (the same trees as iteration 1's step-level DPO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// RFT: SFT on the search's own successful rollouts (each distinct one per task).
    Rft,
    /// Trajectory-level (outcome-only) DPO: a successful rollout against a failed one of
    /// the same tree, each scored step by step.
    TrajectoryDpo,
    /// Agent Q's own pair labels: step-level DPO with Q = 0.5·Q̃ + 0.5·Q̂ (the critic's
    /// feedback mixed in), on the same trees.
    CriticMix,
}

impl Baseline {
    /// The row's name.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Rft => "RFT",
            Baseline::TrajectoryDpo => "trajectory DPO",
            Baseline::CriticMix => "Agent Q, critic mix (α 0.5)",
        }
    }

    /// Its directory under `OUT/iter-1/`.
    pub fn slug(self) -> &'static str {
        match self {
            Baseline::Rft => "rft",
            Baseline::TrajectoryDpo => "trajectory-dpo",
            Baseline::CriticMix => "critic-mix",
        }
    }
}

/// Writes the pairs of a collection's `pairs.jsonl` that `keep` keeps (as it returns them)
/// to `out`; returns how many.
fn select_pairs(
    collected: &Path,
    out: &Path,
    keep: impl Fn(PreferencePair) -> Option<PreferencePair>,
) -> Result<usize> {
    // A search that found no pairs may leave no file.
    let text = match std::fs::read_to_string(collected) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        r => r.with_context(|| format!("reading {}", collected.display()))?,
    };
    let mut buf = Vec::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: PreferencePair = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a preference pair", collected.display(), i + 1))?;
        if let Some(p) = keep(p) {
            serde_json::to_writer(&mut buf, &p)?;
            buf.push(b'\n');
            n += 1;
        }
    }
    trajectory::write_atomic(out, &buf)?;
    Ok(n)
}

/// The step-level pairs of a collection labelled with `alpha` and `theta`
/// ([`PreferencePair::relabel`]), written to `out`; returns how many.
fn relabelled_pairs(collected: &Path, alpha: f64, theta: f64, out: &Path) -> Result<usize> {
    select_pairs(collected, out, |p| {
        (p.kind == "step")
            .then(|| p.relabel(alpha, theta))
            .flatten()
    })
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
    /// 95 % intervals of the greedy evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greedy_ci: Option<RunIntervals>,
    /// 95 % intervals of the MCTS evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcts_ci: Option<RunIntervals>,
    /// The greedy evaluation's run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greedy_dir: Option<PathBuf>,
    /// Greedy success minus the starting row's (SFT, or base), in points, paired over
    /// tasks with a bootstrap interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_start: Option<PairedDiff>,
}

impl Row {
    /// The row's stage, also for `results.json` written before stages had names.
    pub fn stage_name(&self) -> String {
        if self.stage.is_empty() {
            format!("iteration {}", self.iteration)
        } else {
            self.stage.clone()
        }
    }
}

/// What a loop produced.
#[derive(Debug, Clone)]
pub struct LoopReport {
    /// The results table.
    pub rows: Vec<Row>,
    /// `OUT/results.md`.
    pub results: PathBuf,
    /// The reports written (the first and the last greedy evaluation).
    pub reports: Vec<PathBuf>,
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

/// Runs a stage and adds its wall time to the stage's `WALL_S` (an invocation cut by a
/// crash is not counted), then marks it done.
fn stage(
    dir: &Path,
    what: &str,
    progress: &dyn Progress,
    run: impl FnOnce() -> Result<()>,
) -> Result<()> {
    progress.note(&format!("» {what} → {}", dir.display()));
    let t = std::time::Instant::now();
    run()?;
    std::fs::create_dir_all(dir)?;
    let total = wall(dir) + t.elapsed().as_secs_f64();
    trajectory::write_atomic(&dir.join("WALL_S"), format!("{total:.1}\n").as_bytes())?;
    mark(dir)
}

/// The environment of every stage: the default spec with the loop's step limit.
fn env(a: &LoopConfig) -> EnvSettings {
    EnvSettings {
        max_steps: Some(a.max_steps),
        ..EnvSettings::default()
    }
}

fn model(a: &LoopConfig, adapters: &[PathBuf]) -> ModelSettings {
    ModelSettings {
        model: a.model.clone(),
        adapters: adapters.to_vec(),
        critic_scheme: a.critic_scheme,
        ..ModelSettings::default()
    }
}

/// The search of collection and MCTS evaluation: LLM proposer and critic.
fn search(a: &LoopConfig, adapters: &[PathBuf]) -> SearchSettings {
    SearchSettings {
        proposer: Proposer::Llm,
        critic: CriticKind::Llm,
        iterations: a.mcts_iterations,
        depth_cap: a.depth_cap,
        c_ucb: a.c_ucb,
        alpha: a.alpha,
        theta: a.theta,
        reward: a.reward,
        lm: model(a, adapters),
        ..SearchSettings::default()
    }
}

fn summary_line(s: &RunSummary) -> String {
    format!(
        "{} episodes · score {:.1} · success {:.1}%",
        s.episodes, s.score, s.success_rate
    )
}

/// Greedy (and MCTS) evaluation of the model `adapters` give into `dir/eval-*`, as a row
/// (its paired difference left for the caller), with the greedy episodes.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    a: &LoopConfig,
    dir: &Path,
    adapters: &[PathBuf],
    name: &str,
    iteration: usize,
    pairs: usize,
    progress: &Arc<dyn Progress>,
) -> Result<(Row, Vec<trajectory::Episode>)> {
    let g = dir.join("eval-greedy");
    if !done(&g) {
        stage(
            &g,
            &format!("{name}: greedy evaluation"),
            &**progress,
            || {
                let mut c = EvalConfig::new(
                    AgentKind::Llm,
                    TaskSelection::of(a.eval_split, &a.eval_tasks),
                );
                c.parallel = a.parallel;
                c.out = Some(g.clone());
                c.resume = true;
                c.env = env(a);
                c.search.lm = model(a, adapters);
                let r = eval(&c, Arc::clone(progress))?;
                progress.note(&summary_line(&r.summary));
                r.check()
            },
        )?;
    }
    let greedy_eps = trajectory::load(&g)?.episodes;
    let greedy = RunSummary::of(&greedy_eps);
    let mut mcts_ci = None;
    let mcts = if a.eval_mcts {
        let m = dir.join("eval-mcts");
        if !done(&m) {
            stage(&m, &format!("{name}: MCTS evaluation"), &**progress, || {
                let tasks = a.mcts_eval_tasks.as_deref().unwrap_or(&a.eval_tasks);
                let mut c =
                    EvalConfig::new(AgentKind::Mcts, TaskSelection::of(a.eval_split, tasks));
                c.k = a.k;
                c.parallel = a.parallel;
                c.out = Some(m.clone());
                c.resume = true;
                c.env = env(a);
                c.search = search(a, adapters);
                let r = eval(&c, Arc::clone(progress))?;
                progress.note(&summary_line(&r.summary));
                r.check()
            })?;
        }
        let eps = trajectory::load(&m)?.episodes;
        mcts_ci = Some(stats::run_intervals(&eps));
        Some(RunSummary::of(&eps))
    } else {
        None
    };
    let row = Row {
        stage: name.to_string(),
        iteration,
        greedy,
        greedy_wall_s: wall(&dir.join("eval-greedy")),
        mcts,
        mcts_wall_s: wall(&dir.join("eval-mcts")),
        pairs,
        adapters: adapters.to_vec(),
        greedy_ci: Some(stats::run_intervals(&greedy_eps)),
        mcts_ci,
        greedy_dir: Some(g),
        vs_start: None,
    };
    Ok((row, greedy_eps))
}

/// Greedy success of `eps` minus the starting row's, paired over tasks.
fn versus(start: &[trajectory::Episode], eps: &[trajectory::Episode]) -> PairedDiff {
    let (a, b) = stats::matched(start, eps, stats::success_points);
    stats::paired_bootstrap(&a, &b)
}

/// The demonstrations every DPO run replays (unless `--no-replay-demos`), written by the
/// SFT stage; none without one.
fn replay(a: &LoopConfig) -> Option<PathBuf> {
    (a.replay_demos && a.sft_tasks.is_some()).then(|| a.out.join("sft").join("demos.jsonl"))
}

/// Runs (or resumes) the loop.
pub fn run_loop(a: &LoopConfig, progress: Arc<dyn Progress>) -> Result<LoopReport> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // Through a JSON value: the same bytes as the loop has always written.
    let settings = serde_json::to_value(a)?;
    trajectory::write_atomic(
        &a.out.join("loop.json"),
        &serde_json::to_vec_pretty(&settings)?,
    )?;
    let mut rows = Vec::new();
    let mut zero_shot = None;
    let mut adapters: Vec<PathBuf> = Vec::new();
    if let Some(tasks) = &a.sft_tasks {
        let zero = a.out.join("zero-shot");
        let (row, eps) = evaluate(a, &zero, &[], "zero-shot", 0, 0, &progress)?;
        rows.push(row);
        zero_shot = Some(eps);
        write_results(&a.out, &rows)?;
        let sft = a.out.join("sft");
        let demos_file = sft.join("demos.jsonl");
        let train_dir = sft.join("train");
        if !done(&sft) {
            std::fs::create_dir_all(&sft)?;
            let d = demos(
                &DemosConfig {
                    tasks: TaskSelection::of(Split::Train, tasks),
                    mode: agentq_agent::policy::prompt::PromptMode::Act,
                    out: demos_file.clone(),
                    env: EnvSettings::default(),
                },
                &*progress,
            )?;
            progress.note(&format!("{} demonstration examples", d.examples));
            stage(&sft, "SFT on oracle demonstrations", &*progress, || {
                let mut t = TrainSettings::new(Method::Sft, demos_file.clone(), train_dir.clone());
                t.model = a.model.clone();
                t.lr = a.sft_lr;
                t.epochs = a.sft_epochs;
                t.batch_size = a.batch_size;
                t.max_prompt_tokens = 768;
                train(&t, &*progress).map(drop)
            })?;
        }
        adapters.push(train_dir);
    }
    let base = a.out.join("iter-0");
    let stage0 = if a.sft_tasks.is_some() { "SFT" } else { "base" };
    let (row, start) = evaluate(a, &base, &adapters, stage0, 0, 0, &progress)?;
    if let Some(z) = &zero_shot {
        rows[0].vs_start = Some(versus(&start, z));
    }
    rows.push(row);
    write_results(&a.out, &rows)?;
    let start_adapters = adapters.clone();
    for i in 1..=a.iterations {
        let dir = a.out.join(format!("iter-{i}"));
        let all_pairs = i == 1 && a.baselines.contains(&Baseline::CriticMix);
        // 1. Collect with the current model.
        let collect_dir = dir.join("collect");
        if !done(&collect_dir) {
            stage(
                &collect_dir,
                &format!("iteration {i}: MCTS collection"),
                &*progress,
                || {
                    let mut c = CollectConfig::new(TaskSelection::of(Split::Train, &a.train_tasks));
                    c.k = a.k;
                    c.search = search(a, &adapters);
                    c.search.search_seed = i as u64;
                    if all_pairs {
                        // Every explored sibling pair, labelled per row below.
                        c.search.theta = -1.0;
                    }
                    c.search.trajectory_pairs =
                        i == 1 && a.baselines.contains(&Baseline::TrajectoryDpo);
                    c.parallel = a.parallel;
                    c.out = Some(collect_dir.clone());
                    c.resume = true;
                    c.env = env(a);
                    let r = collect(&c, Arc::clone(&progress))?;
                    progress.note(&format!(
                        "{} trees · {} pairs",
                        r.summary.tasks, r.summary.pairs
                    ));
                    r.check()
                },
            )?;
        }
        // The step-level pairs of this iteration's DPO, labelled with the loop's α and θ.
        let pairs_file = dir.join(crate::search::PAIRS_FILE);
        let pairs = relabelled_pairs(
            &collect_dir.join(crate::search::PAIRS_FILE),
            a.alpha,
            a.theta,
            &pairs_file,
        )?;
        // 2. DPO from the current model (the reference is the data-generating model).
        let train_dir = dir.join("train");
        if pairs == 0 {
            progress.note(&format!(
                "iteration {i}: the search produced no preference pairs; the model is unchanged"
            ));
        } else {
            if !done(&train_dir) {
                stage(
                    &train_dir,
                    &format!("iteration {i}: DPO"),
                    &*progress,
                    || {
                        let mut t =
                            TrainSettings::new(Method::Dpo, pairs_file.clone(), train_dir.clone());
                        t.model = a.model.clone();
                        t.adapters = adapters.clone();
                        t.epochs = a.dpo_epochs;
                        t.lr = a.lr;
                        t.beta = a.beta;
                        t.rpo_alpha = a.rpo_alpha;
                        t.replay = replay(a);
                        t.batch_size = a.batch_size;
                        t.max_prompt_tokens = 768;
                        t.seed = i as u64;
                        train(&t, &*progress).map(drop)
                    },
                )?;
            }
            adapters.push(train_dir.clone());
        }
        // 3. Evaluate.
        let name = format!("iteration {i}");
        let (mut row, eps) = evaluate(a, &dir, &adapters, &name, i, pairs, &progress)?;
        row.vs_start = Some(versus(&start, &eps));
        rows.push(row);
        // The table so far, so a long loop shows its finished rows.
        write_results(&a.out, &rows)?;
        if i == 1 {
            for &b in &a.baselines {
                if let Some((mut row, eps)) =
                    baseline(a, b, &dir, &collect_dir, &start_adapters, &progress)?
                {
                    row.vs_start = Some(versus(&start, &eps));
                    rows.push(row);
                    write_results(&a.out, &rows)?;
                }
            }
        }
    }
    let first = crate::report::write_report(&a.out.join("iter-0").join("eval-greedy"), None).ok();
    let last = a
        .out
        .join(format!("iter-{}", a.iterations))
        .join("eval-greedy");
    let last = crate::report::write_report(&last, None).ok();
    Ok(LoopReport {
        rows,
        results: a.out.join("results.md"),
        reports: [first, last].into_iter().flatten().collect(),
    })
}

/// Trains baseline `b` from the starting model on iteration 1's collection and evaluates
/// it into `iter-1/<slug>/` (its row and greedy episodes); `None` (with a note) when the
/// search gave it no data.
fn baseline(
    a: &LoopConfig,
    b: Baseline,
    dir: &Path,
    collect_dir: &Path,
    start: &[PathBuf],
    progress: &Arc<dyn Progress>,
) -> Result<Option<(Row, Vec<trajectory::Episode>)>> {
    let bdir = dir.join(b.slug());
    std::fs::create_dir_all(&bdir)?;
    let train_dir = bdir.join("train");
    let (method, data) = match b {
        Baseline::Rft => (Method::Sft, bdir.join("examples.jsonl")),
        Baseline::TrajectoryDpo | Baseline::CriticMix => {
            (Method::Dpo, bdir.join(crate::search::PAIRS_FILE))
        }
    };
    let n = match b {
        Baseline::Rft => {
            crate::demos::run_examples(collect_dir, model(a, start).prompt_mode, &data)?.examples
        }
        Baseline::TrajectoryDpo => {
            select_pairs(&collect_dir.join(crate::search::PAIRS_FILE), &data, |p| {
                (p.kind == "trajectory").then_some(p)
            })?
        }
        Baseline::CriticMix => relabelled_pairs(
            &collect_dir.join(crate::search::PAIRS_FILE),
            0.5,
            a.theta,
            &data,
        )?,
    };
    if n == 0 {
        progress.note(&format!(
            "{}: iteration 1's search gave no training data; no row",
            b.name()
        ));
        return Ok(None);
    }
    if !done(&train_dir) {
        stage(
            &train_dir,
            &format!("{}: training", b.name()),
            &**progress,
            || {
                let mut t = TrainSettings::new(method, data.clone(), train_dir.clone());
                t.model = a.model.clone();
                t.adapters = start.to_vec();
                t.batch_size = a.batch_size;
                t.max_prompt_tokens = 768;
                t.seed = 1;
                match method {
                    Method::Sft => {
                        t.lr = a.sft_lr;
                        t.epochs = a.sft_epochs;
                    }
                    Method::Dpo => {
                        t.lr = a.lr;
                        t.epochs = a.dpo_epochs;
                        t.beta = a.beta;
                        t.rpo_alpha = a.rpo_alpha;
                        t.replay = replay(a);
                    }
                }
                train(&t, &**progress).map(drop)
            },
        )?;
    }
    let mut adapters = start.to_vec();
    adapters.push(train_dir);
    evaluate(a, &bdir, &adapters, b.name(), 1, n, progress).map(Some)
}

/// The row the others are compared with: the first one after zero-shot (SFT or base).
fn start_row(rows: &[Row]) -> usize {
    rows.iter()
        .position(|r| r.stage_name() != "zero-shot")
        .unwrap_or(0)
}

fn with_ci(value: String, ci: Option<stats::Interval>) -> String {
    match ci {
        Some(c) => format!("{value} ({:.1}–{:.1})", c.lo, c.hi),
        None => value,
    }
}

/// Writes `results.json`, `results.md` and `results.svg` for the rows so far: every
/// figure with its 95 % interval (Wilson for success rates, bootstrap for scores), and each
/// row's greedy success against the starting row by a paired bootstrap over tasks.
pub fn write_results(out: &Path, rows: &[Row]) -> Result<()> {
    let start = start_row(rows);
    trajectory::write_atomic(&out.join("results.json"), &serde_json::to_vec_pretty(rows)?)?;
    let mut md = String::from(
        "| stage | pairs | greedy tasks | greedy score (95% CI) | greedy success (95% CI) | Δ success vs start, points (95% CI) | greedy wall | MCTS tasks | MCTS score | MCTS success (95% CI) | MCTS wall |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let m = |f: &dyn Fn(&RunSummary) -> String| r.mcts.as_ref().map(f).unwrap_or("—".into());
        let delta = if i == start {
            "(start)".to_string()
        } else {
            r.vs_start
                .map(|d| {
                    format!(
                        "{:+.1} ({:+.1} to {:+.1}), {} tasks",
                        d.diff, d.ci.lo, d.ci.hi, d.tasks
                    )
                })
                .unwrap_or("—".into())
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} s | {} | {} | {} | {} |\n",
            r.stage_name(),
            r.pairs,
            r.greedy.episodes,
            with_ci(
                format!("{:.1}", r.greedy.score),
                r.greedy_ci.map(|c| c.score)
            ),
            with_ci(
                format!("{:.1}%", r.greedy.success_rate),
                r.greedy_ci.map(|c| c.success)
            ),
            delta,
            r.greedy_wall_s,
            m(&|s| s.episodes.to_string()),
            m(&|s| format!("{:.1}", s.score)),
            m(&|s| with_ci(
                format!("{:.1}%", s.success_rate),
                r.mcts_ci.map(|c| c.success)
            )),
            m(&|_| format!("{:.0} s", r.mcts_wall_s)),
        ));
    }
    trajectory::write_atomic(&out.join("results.md"), md.as_bytes())?;
    let names: Vec<String> = rows.iter().map(Row::stage_name).collect();
    let greedy = |f: &dyn Fn(&Row) -> Option<(f64, stats::Interval)>| rows.iter().map(f).collect();
    let svg = report::interval_chart(
        "success rate (%) by stage, 95 % intervals",
        &names,
        &[
            report::IntervalSeries {
                name: "greedy",
                colour: "#2f5bd3",
                values: greedy(&|r| r.greedy_ci.map(|c| (r.greedy.success_rate, c.success))),
            },
            report::IntervalSeries {
                name: "MCTS (env verifier)",
                colour: "#d97706",
                values: greedy(&|r| {
                    r.mcts
                        .as_ref()
                        .zip(r.mcts_ci)
                        .map(|(m, c)| (m.success_rate, c.success))
                }),
            },
        ],
    );
    trajectory::write_atomic(&out.join("results.svg"), format!("{svg}\n").as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpo_runs_replay_the_warm_starts_demonstrations_by_default() {
        let mut a = LoopConfig {
            out: PathBuf::from("runs/x"),
            ..LoopConfig::default()
        };
        assert!(a.replay_demos, "on by default");
        assert_eq!(replay(&a), None, "no warm start, nothing to replay");
        a.sft_tasks = Some("0..16".into());
        assert_eq!(replay(&a), Some(PathBuf::from("runs/x/sft/demos.jsonl")));
        a.replay_demos = false;
        assert_eq!(replay(&a), None);
    }
}
