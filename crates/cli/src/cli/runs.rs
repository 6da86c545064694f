//! `agentq eval`, `agentq replay` and `agentq report`: run a policy over tasks into a run
//! directory, re-execute recorded episodes, and render a run as one HTML file. The work is
//! the app layer's ([`agentq_app::eval`], [`agentq_app::report`]); this module turns flags
//! into its settings and prints what it returns.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use agentq_app::eval::{AgentKind, EvalConfig, EvalReport};
use agentq_app::tasks::TaskSelection;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::envs::EnvArgs;
use super::progress::{self, Bars};
use crate::agent;
use crate::trajectory::{self, Episode, RunSummary};
use agentq_env::Split;

/// Which agent to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentArg {
    /// WebShop's rule baseline: search the instruction, first result, Buy Now.
    Rule,
    /// Knows the goal (demonstrations, solvability check).
    Oracle,
    /// Uniformly random valid actions (seeded).
    Random,
    /// The LLM policy, greedy (`--model` / `--openai-url`, `--prompt-mode act|react`).
    Llm,
    /// MCTS at test time (`--proposer`, `--iterations`, `--value` …; `--k` below 2 means 3).
    Mcts,
}

impl From<AgentArg> for AgentKind {
    fn from(a: AgentArg) -> AgentKind {
        match a {
            AgentArg::Rule => AgentKind::Rule,
            AgentArg::Oracle => AgentKind::Oracle,
            AgentArg::Random => AgentKind::Random,
            AgentArg::Llm => AgentKind::Llm,
            AgentArg::Mcts => AgentKind::Mcts,
        }
    }
}

/// Which tasks of a split to run.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    /// Split: test (goals 0–499), dev (500–1499) or train (the rest).
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Tasks within the split: a range `0..50`, a list `3,7,9`, or `all`.
    #[arg(long, conflicts_with = "episodes")]
    pub tasks: Option<String>,
    /// The first N tasks of the split.
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Episode seed (the same for every task).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl TaskArgs {
    /// The typed selection.
    pub fn selection(&self) -> TaskSelection {
        TaskSelection {
            split: self.split,
            tasks: self.tasks.clone(),
            episodes: self.episodes,
            seed: self.seed,
        }
    }
}

/// Arguments of `agentq eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Agent.
    #[arg(long, value_enum, default_value = "rule")]
    pub agent: AgentArg,
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// Seed of the random agent.
    #[arg(long, default_value_t = 0)]
    pub policy_seed: u64,
    /// Candidates asked of the policy per step (recorded; the agent takes the first).
    #[arg(long, default_value_t = 1)]
    pub k: usize,
    /// Episodes run at once (each with its own env).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Run directory (default `runs/eval-<agent>-<split>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue a run directory: skip finished tasks, never duplicate an episode.
    #[arg(long)]
    pub resume: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write report.html into the run directory when done.
    #[arg(long)]
    pub report: bool,
    #[command(flatten)]
    pub env: EnvArgs,
    #[command(flatten)]
    pub mcts: super::collect::MctsArgs,
}

impl EvalArgs {
    /// The typed configuration.
    pub fn config(&self) -> EvalConfig {
        EvalConfig {
            agent: self.agent.into(),
            tasks: self.tasks.selection(),
            policy_seed: self.policy_seed,
            k: self.k,
            parallel: self.parallel,
            out: self.out.clone(),
            resume: self.resume,
            report: self.report,
            env: self.env.settings(),
            search: self.mcts.settings(),
        }
    }
}

/// Prints a run summary (stderr table, or JSON on stdout).
pub fn print_summary(s: &RunSummary, json: bool, label: &str) -> Result<()> {
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, s)?;
        writeln!(out)?;
    } else {
        eprintln!(
            "{:<28} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9}",
            "run", "episodes", "score", "success", "mean steps", "invalid", "unparsed", "wall"
        );
        eprintln!(
            "{:<28} {:>8} {:>8.1} {:>7.1}% {:>10.2} {:>8.1}% {:>8.1}% {:>8.1}s",
            label,
            s.episodes,
            s.score,
            s.success_rate,
            s.mean_steps,
            s.invalid_action_rate,
            s.parse_error_rate,
            s.wall_s.unwrap_or(s.episode_ms / 1e3)
        );
    }
    Ok(())
}

/// Prints the failed tasks of a run (they were not recorded).
pub fn print_failures(failures: &[(String, String)]) {
    for (t, e) in failures {
        eprintln!("failed {t}: {e}");
    }
}

/// `agentq eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let r: EvalReport = agentq_app::eval::eval(&a.config(), Arc::new(Bars::default()))?;
    print_summary(&r.summary, a.json, &r.policy)?;
    if let Some((purchases, trees)) = r.search_purchases {
        eprintln!(
            "search purchases: {purchases} over {trees} trees ({} per tree)",
            purchases as f64 / trees.max(1) as f64
        );
    }
    eprintln!("run directory: {}", r.run_dir.display());
    print_failures(&r.failures);
    Ok(r.check()?)
}

/// Arguments of `agentq replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A run directory or an episodes JSONL file.
    pub path: PathBuf,
    /// Only this episode (0-based, in file order).
    #[arg(long)]
    pub episode: Option<usize>,
    /// Page through the episode(s) in the terminal instead of re-executing.
    #[arg(long)]
    pub show: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// A replay that diverged (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0} episode(s) diverged from the recording")]
pub struct Diverged(pub usize);

/// `agentq replay`.
pub fn replay(a: ReplayArgs) -> Result<()> {
    let run = trajectory::load(&a.path)
        .with_context(|| format!("reading episodes from {}", a.path.display()))?;
    if !run.damage.is_clean() {
        eprintln!(
            "warning: {} was cut by a crash (partial line {:?}, incomplete {:?}); replaying complete episodes",
            a.path.display(),
            run.damage.partial_line,
            run.damage.incomplete
        );
    }
    let picked: Vec<(usize, &Episode)> = match a.episode {
        Some(i) => vec![(
            i,
            run.episodes.get(i).with_context(|| {
                format!(
                    "--episode {i}: the file has {} episodes",
                    run.episodes.len()
                )
            })?,
        )],
        None => run.episodes.iter().enumerate().collect(),
    };
    if picked.is_empty() {
        bail!("{} holds no complete episode", a.path.display());
    }
    if a.show {
        return show(&picked);
    }
    let first = picked[0].1;
    let factory = a
        .env
        .factory(Some((first.header.obs_mode, first.header.max_steps)))?;
    let hash = factory.data_hash();
    let rt = super::play::runtime()?;
    let mut env = factory.make(None)?;
    let mut diverged = 0;
    let pb = progress::bar(picked.len() as u64, progress::EPISODES);
    for (i, ep) in picked {
        if ep.header.data_hash != hash {
            bail!(
                "episode {i} ({}) was recorded on data {} but the loaded catalog is {}: pass the same --data",
                ep.header.id,
                &ep.header.data_hash[..ep.header.data_hash.len().min(12)],
                &hash[..12]
            );
        }
        if (ep.header.obs_mode, ep.header.max_steps)
            != (factory.config.mode, factory.config.max_steps)
        {
            env = a
                .env
                .factory(Some((ep.header.obs_mode, ep.header.max_steps)))?
                .make(None)?;
        }
        match rt.block_on(agent::replay(env.as_mut(), ep))? {
            None => say(
                &pb,
                format!(
                    "ok       #{i} {} ({} steps, reward {})",
                    ep.header.id, ep.summary.steps, ep.summary.reward
                ),
            ),
            Some(d) => {
                diverged += 1;
                say(&pb, format!("DIVERGED #{i} {}: {d}", ep.header.id));
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if diverged > 0 {
        return Err(Diverged(diverged).into());
    }
    eprintln!("all episodes replayed identically");
    Ok(())
}

fn show(picked: &[(usize, &Episode)]) -> Result<()> {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let stdin = std::io::stdin();
    let wait = |out: &mut std::io::StdoutLock| -> Result<bool> {
        if !interactive {
            return Ok(true);
        }
        write!(out, "-- Enter: next step, q: quit -- ")?;
        out.flush()?;
        let mut l = String::new();
        stdin.lock().read_line(&mut l)?;
        Ok(l.trim() != "q")
    };
    use std::io::BufRead as _;
    for (i, ep) in picked {
        let h = &ep.header;
        writeln!(
            out,
            "=== episode #{i} {} · policy {} · env {} · driver {} · seed {}\ninstruction: {}",
            h.id, h.policy, h.env, h.driver, h.seed, h.instruction
        )?;
        for s in &ep.steps {
            writeln!(out, "\n--- step {} · {}\n{}", s.index, s.url, s.observation)?;
            if let Some(t) = &s.thought {
                writeln!(out, "thought: {t}")?;
            }
            for c in &s.candidates {
                writeln!(
                    out,
                    "  candidate {:<40} logprob {:>8} critic {:>3}",
                    c.action,
                    c.logprob.map(|x| format!("{x:.3}")).unwrap_or_default(),
                    c.critic_rank
                        .map(|x| (x + 1).to_string())
                        .unwrap_or_default()
                )?;
            }
            writeln!(out, "> {}   (reward {})", s.action, s.reward)?;
            if let Some(e) = &s.info.error {
                writeln!(out, "  invalid: {e}")?;
            }
            if !wait(&mut out)? {
                return Ok(());
            }
        }
        writeln!(
            out,
            "\n--- final page · {}\n{}\n=== reward {} · success {} · {} steps",
            ep.summary.final_url,
            ep.summary.final_observation,
            ep.summary.reward,
            ep.summary.success,
            ep.summary.steps
        )?;
    }
    Ok(())
}

/// Arguments of `agentq report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory.
    pub run: PathBuf,
    /// Output file (default `RUN/report.html`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `agentq report`.
pub fn report_cmd(a: ReportArgs) -> Result<()> {
    let p = agentq_app::report::write_report(&a.run, a.out.as_deref())?;
    eprintln!("wrote {}", p.display());
    Ok(())
}

/// Prints a line above the progress bar (also when the bar is hidden).
fn say(pb: &indicatif::ProgressBar, line: String) {
    pb.suspend(|| eprintln!("{line}"));
}
