//! `agentq eval`, `agentq replay` and `agentq report`: run a policy over tasks into a run
//! directory, re-execute recorded episodes, and render a run as one HTML file.

use std::collections::{HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::envs::{EnvArgs, EnvFactory};
use crate::agent::{self, EpisodeMeta};
use crate::env::TaskRef;
use crate::policy::{Oracle, Policy, RandomPolicy, Rule};
use crate::trajectory::{self, report, Episode, Recorder, RunConfig, RunDir, RunSummary};
use agentq_env::Split;

/// Which agent to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentKind {
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
    /// The selected tasks, in order.
    pub fn resolve(&self, n_in_split: usize) -> Result<Vec<TaskRef>> {
        let idx: Vec<usize> = match (&self.tasks, self.episodes) {
            (_, Some(n)) => (0..n.min(n_in_split)).collect(),
            (None, None) => (0..n_in_split).collect(),
            (Some(s), None) => agentq_core::task::parse_selection(s, n_in_split)
                .map_err(|e| anyhow::anyhow!("--tasks {e}"))?,
        };
        if idx.is_empty() {
            bail!("no tasks selected in split {}", self.split.name());
        }
        Ok(idx
            .into_iter()
            .map(|index| TaskRef {
                split: Some(self.split),
                index,
            })
            .collect())
    }
}

/// Arguments of `agentq eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Agent.
    #[arg(long, value_enum, default_value = "rule")]
    pub agent: AgentKind,
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

fn agent_name(k: AgentKind) -> &'static str {
    match k {
        AgentKind::Rule => "rule",
        AgentKind::Oracle => "oracle",
        AgentKind::Random => "random",
        AgentKind::Mcts => "mcts",
        AgentKind::Llm => "llm",
    }
}

fn make_policy(a: &EvalArgs, f: &EnvFactory) -> Result<Arc<dyn Policy>> {
    Ok(match a.agent {
        AgentKind::Rule => Arc::new(Rule),
        AgentKind::Oracle => Arc::new(Oracle::new(f.knowledge())),
        AgentKind::Random => Arc::new(RandomPolicy::new(a.policy_seed)),
        AgentKind::Llm => Arc::new(crate::policy::llm::LlmPolicy::new(
            a.mcts.lm.load()?,
            a.mcts.lm.llm_config(a.policy_seed),
        )),
        AgentKind::Mcts => bail!("--agent mcts runs through collect::eval_mcts"),
    })
}

fn bar(len: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("invariant: static template")
        .progress_chars("=> "),
    );
    pb
}

/// A batch of episodes to run.
pub struct Batch {
    /// The policy.
    pub policy: Arc<dyn Policy>,
    /// Header fields.
    pub meta: EpisodeMeta,
    /// Tasks still to run.
    pub tasks: Vec<TaskRef>,
    /// Episode seed.
    pub seed: u64,
    /// Episodes at once.
    pub parallel: usize,
    /// Where episodes are recorded.
    pub run: Arc<RunDir>,
}

/// What a batch produced.
#[derive(Default)]
pub struct Outcome {
    /// New episodes (also recorded).
    pub episodes: Vec<Episode>,
    /// Tasks that failed: (task, error).
    pub failures: Vec<(String, String)>,
}

/// Runs a batch, `parallel` episodes at a time, each worker with its own env; shows a
/// progress bar with the running score (including `done_before`).
pub fn run_tasks(factory: &EnvFactory, batch: Batch, done_before: &[Episode]) -> Result<Outcome> {
    let Batch {
        policy,
        meta,
        tasks,
        seed,
        parallel,
        run,
    } = batch;
    let rt = super::play::runtime()?;
    let pb = bar(tasks.len() as u64);
    let queue = Arc::new(Mutex::new(VecDeque::from(tasks)));
    let results: Arc<Mutex<Outcome>> = Arc::default();
    let tally = Arc::new(Mutex::new((
        done_before.iter().map(|e| e.summary.reward).sum::<f64>(),
        done_before.iter().filter(|e| e.summary.success).count(),
        done_before.len(),
    )));
    let shots = if factory.driver == super::envs::Driver::Browser {
        Some(run.screenshots_dir()?)
    } else {
        None
    };
    let mut workers = Vec::new();
    for w in 0..parallel.max(1) {
        let dir = shots.as_ref().map(|d| d.join(format!("w{w}")));
        let mut env = factory.make(dir)?;
        let (queue, results, tally) = (queue.clone(), results.clone(), tally.clone());
        let (policy, meta, run, pb) = (policy.clone(), meta.clone(), run.clone(), pb.clone());
        workers.push(rt.spawn(async move {
            loop {
                let Some(task) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                match agent::run_episode(env.as_mut(), policy.as_ref(), &meta, task, seed).await {
                    Ok(mut ep) => {
                        relativize(&mut ep, run.path());
                        if let Err(e) = run.record(&ep) {
                            say(&pb, format!("{task}: could not record: {e}"));
                            results
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .failures
                                .push((task.to_string(), e.to_string()));
                            continue;
                        }
                        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                        t.0 += ep.summary.reward;
                        t.1 += usize::from(ep.summary.success);
                        t.2 += 1;
                        pb.set_message(format!(
                            "score {:.1} · success {:.1}%",
                            100.0 * t.0 / t.2 as f64,
                            100.0 * t.1 as f64 / t.2 as f64
                        ));
                        drop(t);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .episodes
                            .push(ep);
                    }
                    Err(e) => {
                        say(&pb, format!("{task}: {e}"));
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .failures
                            .push((task.to_string(), e.to_string()));
                    }
                }
                pb.inc(1);
            }
        }));
    }
    rt.block_on(async {
        for w in workers {
            w.await.context("an episode worker panicked")?;
        }
        anyhow::Ok(())
    })?;
    pb.finish_and_clear();
    let mut r = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    r.failures.sort();
    Ok(r)
}

/// Prints a line above the progress bar (also when the bar is hidden).
fn say(pb: &indicatif::ProgressBar, line: String) {
    pb.suspend(|| eprintln!("{line}"));
}

/// Screenshot paths relative to the run directory (where the report lives).
fn relativize(ep: &mut Episode, dir: &Path) {
    let rel = |p: &mut Option<String>| {
        if let Some(s) = p {
            if let Ok(r) = Path::new(s.as_str()).strip_prefix(dir) {
                *s = r.to_string_lossy().into_owned();
            }
        }
    };
    for s in &mut ep.steps {
        rel(&mut s.screenshot);
    }
    rel(&mut ep.summary.final_screenshot);
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

/// `agentq eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    if a.agent == AgentKind::Mcts {
        return super::collect::eval_mcts(a);
    }
    let started = Instant::now();
    let factory = EnvFactory::new(&a.env, None)?;
    let n = factory.split_len(a.tasks.split);
    let tasks = a.tasks.resolve(n)?;
    let policy = make_policy(&a, &factory)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/eval-{}-{}",
            agent_name(a.agent),
            a.tasks.split.name()
        ))
    });
    let meta = EpisodeMeta {
        env: factory.spec_id.clone(),
        data_hash: factory.data_hash(),
        driver: a.env.driver.name().into(),
        obs_mode: factory.config.mode,
        max_steps: factory.config.max_steps,
        k: a.k,
    };
    let config = RunConfig {
        schema: trajectory::SCHEMA_VERSION,
        agentq_version: env!("CARGO_PKG_VERSION").into(),
        name: out
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        command: "eval".into(),
        env: meta.env.clone(),
        data_hash: meta.data_hash.clone(),
        driver: meta.driver.clone(),
        policy: policy.describe(),
        seed: a.tasks.seed,
        tasks: tasks.iter().map(ToString::to_string).collect(),
        settings: [
            ("k".to_string(), serde_json::json!(a.k)),
            ("parallel".to_string(), serde_json::json!(a.parallel)),
            ("obs_mode".to_string(), serde_json::json!(meta.obs_mode)),
            ("max_steps".to_string(), serde_json::json!(meta.max_steps)),
        ]
        .into_iter()
        .collect(),
    };
    let (run, existing) = RunDir::open(&out, config, a.resume)
        .with_context(|| format!("opening run directory {}", out.display()))?;
    let done: HashSet<String> = existing.iter().map(|e| e.header.id.clone()).collect();
    let todo: Vec<TaskRef> = tasks
        .into_iter()
        .filter(|t| !done.contains(&agent::episode_id(*t, a.tasks.seed)))
        .collect();
    if !existing.is_empty() {
        eprintln!(
            "resuming {}: {} episodes done, {} to run",
            out.display(),
            existing.len(),
            todo.len()
        );
    }
    let run = Arc::new(run);
    let Outcome { failures, .. } = run_tasks(
        &factory,
        Batch {
            policy,
            meta,
            tasks: todo,
            seed: a.tasks.seed,
            parallel: a.parallel,
            run: Arc::clone(&run),
        },
        &existing,
    )?;
    let loaded = trajectory::load(run.path())?;
    let mut summary = RunSummary::of(&loaded.episodes);
    summary.wall_s = Some(started.elapsed().as_secs_f64());
    run.write_summary(&summary)?;
    if a.report {
        write_report(run.path(), None)?;
    }
    print_summary(&summary, a.json, &run.config().policy)?;
    eprintln!("run directory: {}", run.path().display());
    if !failures.is_empty() {
        for (t, e) in &failures {
            eprintln!("failed {t}: {e}");
        }
        bail!(
            "{} of {} episodes failed (not recorded; `--resume` retries them)",
            failures.len(),
            failures.len() + summary.episodes
        );
    }
    Ok(())
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
    let factory = EnvFactory::new(
        &a.env,
        Some((first.header.obs_mode, first.header.max_steps)),
    )?;
    let hash = factory.data_hash();
    let rt = super::play::runtime()?;
    let mut env = factory.make(None)?;
    let mut diverged = 0;
    let pb = bar(picked.len() as u64);
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
            env = EnvFactory::new(&a.env, Some((ep.header.obs_mode, ep.header.max_steps)))?
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

/// Search trees stored in `RUN/trees/*.json` (written by MCTS runs).
fn load_trees(dir: &Path) -> Result<Vec<(String, report::TreeNode)>> {
    let tdir = dir.join("trees");
    let mut out = Vec::new();
    if !tdir.is_dir() {
        return Ok(out);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tdir)
        .with_context(|| format!("listing {}", tdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        let root: report::TreeNode = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a search tree", f.display()))?;
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, root));
    }
    Ok(out)
}

/// Training logs (`log.jsonl`) anywhere under the run directory (two levels deep), plotted
/// as line charts of TRL's metrics.
fn load_training_series(dir: &Path) -> Result<Vec<report::Series>> {
    let mut logs = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && depth < 2 {
                stack.push((p, depth + 1));
            } else if p.file_name().is_some_and(|n| n == "log.jsonl") {
                logs.push(p);
            }
        }
    }
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let entries = crate::train::log::read(&log)
            .with_context(|| format!("reading training log {}", log.display()))?;
        let rel = log
            .parent()
            .and_then(|p| p.strip_prefix(dir).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for metric in [
            "loss",
            "rewards/margins",
            "rewards/accuracies",
            "logps/chosen",
            "logps/rejected",
        ] {
            let points = crate::train::log::series(&entries, metric);
            if !points.is_empty() {
                out.push(report::Series {
                    title: format!("{rel} {metric}"),
                    x_label: "step".into(),
                    points,
                });
            }
        }
    }
    Ok(out)
}

/// Writes `report.html` for a run directory; returns its path.
pub fn write_report(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let run = trajectory::load(dir).with_context(|| format!("reading run {}", dir.display()))?;
    let extras = report::Extras {
        trees: load_trees(dir)?,
        series: load_training_series(dir)?,
    };
    let html = report::render(&run, &extras);
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(trajectory::REPORT_FILE));
    trajectory::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// `agentq report`.
pub fn report_cmd(a: ReportArgs) -> Result<()> {
    let p = write_report(&a.run, a.out.as_deref())?;
    eprintln!("wrote {}", p.display());
    Ok(())
}
