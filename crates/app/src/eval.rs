//! Evaluation: an agent over tasks into a run directory (`run.json`, `episodes.jsonl`,
//! `summary.json`, optionally `report.html`), resumable without ever duplicating an episode.
//! `AgentKind::Mcts` runs the search at test time ([`crate::search`]); its chosen paths are
//! the episodes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agentq_agent::policy::{Oracle, Policy, RandomPolicy, Rule};
use agentq_agent::{self as agent, EpisodeMeta};
use agentq_env::{Env, TaskRef};
use agentq_trajectory::{self as trajectory, Episode, Recorder, RunConfig, RunDir, RunSummary};

use crate::envs::{Driver, EnvFactory, EnvSettings};
use crate::error::{bail, Context as _, Error, Result};
use crate::executor::{self, TaskFuture, Worker};
use crate::progress::{Progress, Stage};
use crate::search::SearchSettings;
use crate::tasks::TaskSelection;

/// Which agent to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// WebShop's rule baseline: search the instruction, first result, Buy Now.
    Rule,
    /// Knows the goal (demonstrations, solvability check).
    Oracle,
    /// Uniformly random valid actions (seeded).
    Random,
    /// The LLM policy, greedy.
    Llm,
    /// MCTS at test time (a `k` below 2 means 3).
    Mcts,
}

impl AgentKind {
    /// Every agent.
    pub const ALL: [AgentKind; 5] = [
        AgentKind::Rule,
        AgentKind::Oracle,
        AgentKind::Random,
        AgentKind::Llm,
        AgentKind::Mcts,
    ];

    /// The name used in default run directories (and the CLI's `--agent` value).
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Rule => "rule",
            AgentKind::Oracle => "oracle",
            AgentKind::Random => "random",
            AgentKind::Llm => "llm",
            AgentKind::Mcts => "mcts",
        }
    }
}

/// An evaluation.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The agent.
    pub agent: AgentKind,
    /// The tasks and episode seed.
    pub tasks: TaskSelection,
    /// Seed of the random agent and of the LLM's sampling.
    pub policy_seed: u64,
    /// Candidates asked of the policy per step (recorded; a greedy agent takes the first).
    pub k: usize,
    /// Episodes (or trees) run at once, each with its own env.
    pub parallel: usize,
    /// Run directory (`None`: `runs/eval-<agent>-<split>`).
    pub out: Option<PathBuf>,
    /// Continue a run directory: skip finished tasks, never duplicate an episode.
    pub resume: bool,
    /// Write report.html into the run directory when done.
    pub report: bool,
    /// The environment.
    pub env: EnvSettings,
    /// The search (with `AgentKind::Mcts`) and the model (with an LLM).
    pub search: SearchSettings,
}

impl EvalConfig {
    /// An evaluation of `agent` on `tasks` with every other setting at its default.
    pub fn new(agent: AgentKind, tasks: TaskSelection) -> EvalConfig {
        EvalConfig {
            agent,
            tasks,
            policy_seed: 0,
            k: 1,
            parallel: 4,
            out: None,
            resume: false,
            report: false,
            env: EnvSettings::default(),
            search: SearchSettings::default(),
        }
    }
}

/// What an evaluation produced.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The run's policy, as recorded in `run.json`.
    pub policy: String,
    /// Figures of every episode in the run directory (this invocation's and earlier ones').
    pub summary: RunSummary,
    /// Tasks that failed (task, error), not recorded; a resumed run retries them.
    pub failures: Vec<(String, String)>,
    /// MCTS only: purchases the searches made and the trees they came from.
    pub search_purchases: Option<(usize, usize)>,
}

impl EvalReport {
    /// An error when a task failed.
    pub fn check(&self) -> Result<()> {
        if self.failures.is_empty() {
            return Ok(());
        }
        let noun = if self.search_purchases.is_some() {
            "searches"
        } else {
            "episodes"
        };
        bail!(
            "{} of {} {noun} failed (not recorded; `--resume` retries them)",
            self.failures.len(),
            self.failures.len() + self.summary.episodes
        )
    }
}

fn make_policy(c: &EvalConfig, f: &EnvFactory) -> Result<Arc<dyn Policy>> {
    Ok(match c.agent {
        AgentKind::Rule => Arc::new(Rule),
        AgentKind::Oracle => Arc::new(Oracle::new(f.knowledge())),
        AgentKind::Random => Arc::new(RandomPolicy::new(c.policy_seed)),
        AgentKind::Llm => Arc::new(agentq_agent::policy::llm::LlmPolicy::new(
            c.search.lm.load()?,
            c.search.lm.llm_config(c.policy_seed),
        )),
        AgentKind::Mcts => bail!("the MCTS agent runs through search::eval_mcts"),
    })
}

/// One worker of an evaluation: its env runs an episode and records it.
struct EpisodeWorker {
    env: Box<dyn Env>,
    policy: Arc<dyn Policy>,
    meta: EpisodeMeta,
    seed: u64,
    run: Arc<RunDir>,
}

impl Worker for EpisodeWorker {
    type Output = Episode;

    fn run(&mut self, task: TaskRef) -> TaskFuture<'_, Episode> {
        Box::pin(async move {
            let mut ep = agent::run_episode(
                self.env.as_mut(),
                self.policy.as_ref(),
                &self.meta,
                task,
                self.seed,
            )
            .await?;
            relativize(&mut ep, self.run.path());
            self.run
                .record(&ep)
                .map_err(|e| Error::Msg(format!("could not record: {e}")))?;
            Ok(ep)
        })
    }
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

/// The `run.json` of a run into `out` by `command` over `tasks`.
pub(crate) fn run_config(
    out: &Path,
    command: &str,
    meta: &EpisodeMeta,
    policy: String,
    seed: u64,
    tasks: &[TaskRef],
    settings: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> RunConfig {
    RunConfig {
        schema: trajectory::SCHEMA_VERSION,
        agentq_version: env!("CARGO_PKG_VERSION").into(),
        name: out
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        command: command.into(),
        env: meta.env.clone(),
        data_hash: meta.data_hash.clone(),
        driver: meta.driver.clone(),
        policy,
        seed,
        tasks: tasks.iter().map(ToString::to_string).collect(),
        settings: settings.into_iter().collect(),
    }
}

/// Runs an evaluation.
pub fn eval(c: &EvalConfig, progress: Arc<dyn Progress>) -> Result<EvalReport> {
    if c.agent == AgentKind::Mcts {
        return crate::search::eval_mcts(c, progress);
    }
    let started = Instant::now();
    let factory = EnvFactory::new(&c.env, None)?;
    let n = factory.split_len(c.tasks.split);
    let tasks = c.tasks.resolve(n)?;
    let policy = make_policy(c, &factory)?;
    let out = c.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/eval-{}-{}",
            c.agent.name(),
            c.tasks.split.name()
        ))
    });
    let meta = factory.meta(c.k);
    let config = run_config(
        &out,
        "eval",
        &meta,
        policy.describe(),
        c.tasks.seed,
        &tasks,
        [
            ("k".to_string(), serde_json::json!(c.k)),
            ("parallel".to_string(), serde_json::json!(c.parallel)),
            ("obs_mode".to_string(), serde_json::json!(meta.obs_mode)),
            ("max_steps".to_string(), serde_json::json!(meta.max_steps)),
        ],
    );
    let (run, existing) = RunDir::open(&out, config, c.resume)
        .with_context(|| format!("opening run directory {}", out.display()))?;
    let done: HashSet<String> = existing.iter().map(|e| e.header.id.clone()).collect();
    let todo: Vec<TaskRef> = tasks
        .into_iter()
        .filter(|t| !done.contains(&agent::episode_id(*t, c.tasks.seed)))
        .collect();
    if !existing.is_empty() {
        progress.note(&format!(
            "resuming {}: {} episodes done, {} to run",
            out.display(),
            existing.len(),
            todo.len()
        ));
    }
    let run = Arc::new(run);
    let rt = crate::envs::runtime()?;
    let shots = if factory.driver == Driver::Browser {
        Some(run.screenshots_dir()?)
    } else {
        None
    };
    let mut workers = Vec::new();
    for w in 0..c.parallel.max(1) {
        let dir = shots.as_ref().map(|d| d.join(format!("w{w}")));
        workers.push(EpisodeWorker {
            env: factory.make(dir)?,
            policy: Arc::clone(&policy),
            meta: meta.clone(),
            seed: c.tasks.seed,
            run: Arc::clone(&run),
        });
    }
    // The running score includes the episodes of earlier invocations.
    let mut tally = (
        existing.iter().map(|e| e.summary.reward).sum::<f64>(),
        existing.iter().filter(|e| e.summary.success).count(),
        existing.len(),
    );
    let executed = executor::execute(
        &rt,
        workers,
        todo,
        Stage::Episodes,
        progress,
        move |ep: &Episode| {
            tally.0 += ep.summary.reward;
            tally.1 += usize::from(ep.summary.success);
            tally.2 += 1;
            format!(
                "score {:.1} · success {:.1}%",
                100.0 * tally.0 / tally.2 as f64,
                100.0 * tally.1 as f64 / tally.2 as f64
            )
        },
    )?;
    let loaded = trajectory::load(run.path())?;
    let mut summary = RunSummary::of(&loaded.episodes);
    summary.wall_s = Some(started.elapsed().as_secs_f64());
    run.write_summary(&summary)?;
    if c.report {
        crate::report::write_report(run.path(), None)?;
    }
    Ok(EvalReport {
        run_dir: run.path().to_path_buf(),
        policy: run.config().policy.clone(),
        summary,
        failures: executed.failures,
        search_purchases: None,
    })
}
