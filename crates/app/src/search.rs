//! MCTS over tasks: `collect` (rollouts, trees and preference pairs for training) and the
//! same search at test time ([`eval_mcts`]: the chosen path of each task is the episode).
//!
//! Run directory of a search run: `run.json`, `episodes.jsonl` (collect: every rollout and
//! the final path of each tree, all marked with `header.tree`; eval: the final paths, with
//! rollouts in `rollouts.jsonl`), `trees/<task>.json` (the report's tree shape plus a
//! `search` object with the task's figures), `pairs.jsonl` and `summary.json`.
//! Crash safety: a task's episodes and pairs are appended first and its tree file is written
//! (atomically) last; a resumed run skips tasks with a tree file and drops any episode or
//! pair of a tree without one, so a crash never leaves half a task.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agentq_agent::critic::{Critic, ProposalOrder};
use agentq_agent::mcts::{self, MctsConfig, TerminalReward, ValueMode};
use agentq_agent::pairs::{self, PairOptions};
use agentq_agent::policy::prompt::PromptMode;
use agentq_agent::policy::{Candidate, Oracle, Policy, RandomPolicy, Rule};
use agentq_agent::EpisodeMeta;
use agentq_env::{Env, Split, TaskRef};
use agentq_lm::LanguageModel;
use agentq_trajectory::SearchRole;
use agentq_trajectory::{self as trajectory, Episode, Recorder, RunDir, RunSummary};
use serde::{Deserialize, Serialize};

use crate::envs::{EnvFactory, EnvSettings};
use crate::error::{bail, Context as _, Result};
use crate::eval::{EvalConfig, EvalReport};
use crate::executor::{self, TaskFuture, Worker};
use crate::models::ModelSettings;
use crate::progress::{Progress, Stage};
use crate::tasks::TaskSelection;

/// Preference pairs of a search run.
pub const PAIRS_FILE: &str = "pairs.jsonl";
/// Rollouts of a test-time search run.
pub const ROLLOUTS_FILE: &str = "rollouts.jsonl";
/// Tree files.
pub const TREES_DIR: &str = "trees";

/// The policy that proposes actions at new nodes and runs rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposer {
    /// WebShop's rule baseline (one action per page).
    Rule,
    /// Knows the goal; pads its choice with other valid actions up to K.
    Oracle,
    /// Random valid actions (seeded by the policy seed).
    Random,
    /// The LLM policy.
    Llm,
}

impl Proposer {
    /// Every proposer.
    pub const ALL: [Proposer; 4] = [
        Proposer::Rule,
        Proposer::Oracle,
        Proposer::Random,
        Proposer::Llm,
    ];

    /// The name used in default run names (and the CLI's `--proposer` value).
    pub fn name(self) -> &'static str {
        match self {
            Proposer::Rule => "rule",
            Proposer::Oracle => "oracle",
            Proposer::Random => "random",
            Proposer::Llm => "llm",
        }
    }
}

/// The critic that ranks proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticKind {
    /// No critic: the proposer's order; judges a page 1 if it confirms a purchase.
    Order,
    /// The same frozen LLM with a critique prompt.
    Llm,
}

impl CriticKind {
    /// Every critic.
    pub const ALL: [CriticKind; 2] = [CriticKind::Order, CriticKind::Llm];

    /// The CLI's `--critic` value.
    pub fn name(self) -> &'static str {
        match self {
            CriticKind::Order => "order",
            CriticKind::Llm => "llm",
        }
    }
}

/// Search settings shared by collection and test-time search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSettings {
    /// The proposer (and rollout) policy.
    pub proposer: Proposer,
    /// The critic ranking proposals.
    pub critic: CriticKind,
    /// Iterations (rollouts) per task.
    pub iterations: usize,
    /// Terminal values from the environment or from the critic.
    pub value: ValueMode,
    /// Terminal reward with `ValueMode::Env`.
    pub reward: TerminalReward,
    /// UCB1 exploration constant.
    pub c_ucb: f64,
    /// Most steps on a path (tree + rollout).
    pub depth_cap: usize,
    /// Weight of the search value in the pair Q (α·Q̃ + (1−α)·Q̂).
    pub alpha: f64,
    /// Least |ΔQ| for a preference pair.
    pub theta: f64,
    /// Also write trajectory-level pairs (successful vs failed rollouts of a task).
    pub trajectory_pairs: bool,
    /// Seed of the rollout contexts.
    pub search_seed: u64,
    /// The model of an LLM proposer or critic (and of the greedy LLM agent).
    pub lm: ModelSettings,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            proposer: Proposer::Oracle,
            critic: CriticKind::Order,
            iterations: 20,
            value: ValueMode::Env,
            reward: TerminalReward::Success,
            c_ucb: 1.0,
            depth_cap: 10,
            alpha: 0.5,
            theta: 0.1,
            trajectory_pairs: false,
            search_seed: 0,
            lm: ModelSettings::default(),
        }
    }
}

/// Renders a candidate as the completion text of a pair.
type Completion = dyn Fn(&Candidate) -> String + Send + Sync;

impl SearchSettings {
    /// The search's configuration with `k` proposals per node.
    pub fn config(&self, k: usize) -> MctsConfig {
        MctsConfig {
            iterations: self.iterations.max(1),
            k: k.max(1),
            c_ucb: self.c_ucb,
            depth_cap: self.depth_cap.max(1),
            alpha: self.alpha,
            theta: self.theta,
            value: self.value,
            reward: self.reward,
            seed: self.search_seed,
        }
    }

    /// The language model, loaded once if the proposer or the critic needs it.
    pub fn model(&self) -> Result<Option<Arc<dyn LanguageModel>>> {
        if self.proposer == Proposer::Llm || self.critic == CriticKind::Llm {
            Ok(Some(self.lm.load()?))
        } else {
            Ok(None)
        }
    }

    fn proposer(
        &self,
        policy_seed: u64,
        f: &EnvFactory,
        lm: Option<&Arc<dyn LanguageModel>>,
    ) -> Result<Arc<dyn Policy>> {
        Ok(match self.proposer {
            Proposer::Rule => Arc::new(Rule),
            Proposer::Oracle => Arc::new(Oracle::new(f.knowledge())),
            Proposer::Random => Arc::new(RandomPolicy::new(policy_seed)),
            Proposer::Llm => Arc::new(agentq_agent::policy::llm::LlmPolicy::new(
                Arc::clone(lm.context("the LLM proposer needs a model")?),
                self.lm.llm_config(policy_seed),
            )),
        })
    }

    fn critic(&self, lm: Option<&Arc<dyn LanguageModel>>) -> Result<Arc<dyn Critic>> {
        Ok(match self.critic {
            CriticKind::Order => Arc::new(ProposalOrder),
            CriticKind::Llm => Arc::new(agentq_agent::policy::critic::LlmCritic::new(
                Arc::clone(lm.context("the LLM critic needs a model")?),
                self.lm.critic_scheme,
            )),
        })
    }

    /// The completion text of pairs: what the proposer's log-probs scored (react answers
    /// carry their thought).
    fn completion(&self) -> Arc<Completion> {
        if self.proposer == Proposer::Llm && self.lm.prompt_mode == PromptMode::React {
            Arc::new(|c: &Candidate| {
                agentq_agent::policy::prompt::response(
                    PromptMode::React,
                    &c.action,
                    c.thought.as_deref(),
                )
            })
        } else {
            Arc::new(pairs::action_completion)
        }
    }

    fn pair_options(&self) -> PairOptions {
        PairOptions {
            alpha: self.alpha,
            theta: self.theta,
            trajectory: self.trajectory_pairs,
            mode: self.lm.prompt_mode,
        }
    }
}

/// A collection of search trees (training data).
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// The tasks and episode seed.
    pub tasks: TaskSelection,
    /// Actions proposed per new node (K).
    pub k: usize,
    /// The search.
    pub search: SearchSettings,
    /// Seed of the random proposer and of the LLM's sampling.
    pub policy_seed: u64,
    /// Trees searched at once, each with its own env.
    pub parallel: usize,
    /// Run directory (`None`: `runs/collect-<proposer>-<split>`).
    pub out: Option<PathBuf>,
    /// Continue a run directory: skip tasks whose tree is written.
    pub resume: bool,
    /// Write report.html into the run directory when done.
    pub report: bool,
    /// The environment.
    pub env: EnvSettings,
}

impl CollectConfig {
    /// A collection on `tasks` with every other setting at its default.
    pub fn new(tasks: TaskSelection) -> CollectConfig {
        CollectConfig {
            tasks,
            k: 3,
            search: SearchSettings::default(),
            policy_seed: 0,
            parallel: 2,
            out: None,
            resume: false,
            report: false,
            env: EnvSettings::default(),
        }
    }
}

/// Figures of one task's search (`trees/<task>.json` → `search`, and `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSearch {
    /// Task.
    pub task: String,
    /// Tree id.
    pub tree: String,
    /// Env reward of the best-valued path.
    pub final_reward: f64,
    /// The best-valued path bought the right thing (reward 1.0).
    pub final_success: bool,
    /// Its actions.
    pub final_actions: Vec<String>,
    /// Its terminal value as the search saw it.
    pub final_value: f64,
    /// Purchases the search made in the environment.
    pub purchases: usize,
    /// Nodes expanded.
    pub expansions: usize,
    /// Nodes in the tree (expanded or proposed).
    pub nodes: usize,
    /// Iterations.
    pub iterations: usize,
    /// Rollouts with env reward 1.0.
    pub rollouts_succeeded: usize,
    /// Env steps.
    pub env_steps: usize,
    /// Restores.
    pub restores: usize,
    /// Pairs written.
    pub pairs: usize,
    /// Wall-clock milliseconds.
    pub wall_ms: f64,
}

/// `summary.json` of a collect run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectSummary {
    /// What the terminal values were, spelled out.
    pub value: String,
    /// Trees.
    pub tasks: usize,
    /// Figures of the best-valued paths (one per task).
    #[serde(rename = "final")]
    pub final_paths: RunSummary,
    /// Figures of all rollouts.
    pub rollouts: RunSummary,
    /// Pairs written.
    pub pairs: usize,
    /// Purchases made by all searches.
    pub purchases: usize,
    /// Nodes expanded by all searches.
    pub expansions: usize,
    /// Per task, in task order.
    pub per_task: Vec<TaskSearch>,
    /// Wall time of this invocation (s).
    pub wall_s: f64,
}

/// What a collection produced.
#[derive(Debug, Clone)]
pub struct CollectReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Its `summary.json`.
    pub summary: CollectSummary,
    /// Tasks that failed (task, error), not recorded; a resumed run retries them.
    pub failures: Vec<(String, String)>,
}

impl CollectReport {
    /// An error when a task failed.
    pub fn check(&self) -> Result<()> {
        if self.failures.is_empty() {
            return Ok(());
        }
        bail!(
            "{} of {} searches failed (not recorded; `--resume` retries them)",
            self.failures.len(),
            self.failures.len() + self.summary.tasks
        )
    }
}

fn tree_file(dir: &Path, task: TaskRef) -> PathBuf {
    dir.join(TREES_DIR)
        .join(format!("{}.json", task.to_string().replace(':', "-")))
}

/// The figures of every finished tree (one with a tree file) of a run directory.
pub fn finished(dir: &Path) -> Result<Vec<TaskSearch>> {
    let tdir = dir.join(TREES_DIR);
    let mut out = Vec::new();
    if !tdir.is_dir() {
        return Ok(out);
    }
    for f in crate::report::json_files(&tdir)? {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?,
        )
        .with_context(|| format!("{}: not JSON", f.display()))?;
        let s: TaskSearch = serde_json::from_value(v["search"].clone())
            .with_context(|| format!("{}: no `search` figures", f.display()))?;
        out.push(s);
    }
    Ok(out)
}

/// Keeps only the episodes of finished trees in an episodes file (atomic rewrite).
fn prune_episodes(path: &Path, done: &BTreeSet<String>) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let (eps, damage) = trajectory::read_episodes(path)?;
    let n = eps.len();
    let kept: Vec<Episode> = eps
        .into_iter()
        .filter(|e| e.header.tree.as_ref().is_some_and(|t| done.contains(t)))
        .collect();
    if kept.len() != n || !damage.is_clean() {
        tracing::warn!(file = %path.display(), dropped = n - kept.len(), "dropping episodes of unfinished trees");
        trajectory::write_episodes(path, &kept)?;
    }
    Ok(())
}

/// Keeps only the pairs of finished trees (atomic rewrite); a cut last line is dropped.
fn prune_pairs(path: &Path, done: &BTreeSet<String>) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut kept = String::new();
    let mut changed = !text.is_empty() && !text.ends_with('\n');
    for line in text.lines() {
        let tree = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["tree"].as_str().map(str::to_string));
        match tree {
            Some(t) if done.contains(&t) => {
                kept.push_str(line);
                kept.push('\n');
            }
            _ => changed = true,
        }
    }
    if changed {
        trajectory::write_atomic(path, kept.as_bytes())?;
    }
    Ok(())
}

/// A file appended to by every worker, each append synced.
struct Appender {
    path: PathBuf,
    file: Mutex<File>,
}

impl Appender {
    fn open(path: PathBuf) -> Result<Arc<Appender>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Arc::new(Appender {
            path,
            file: Mutex::new(file),
        }))
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(bytes)
            .and_then(|()| f.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
}

/// Everything a search run needs.
struct Job {
    command: &'static str,
    factory: EnvFactory,
    policy: Arc<dyn Policy>,
    critic: Arc<dyn Critic>,
    cfg: MctsConfig,
    pair_opts: PairOptions,
    /// A candidate's completion text in pairs (an LLM proposer renders its thought too).
    completion: Arc<Completion>,
    tasks: Vec<TaskRef>,
    seed: u64,
    parallel: usize,
    out: PathBuf,
    resume: bool,
    settings: serde_json::Map<String, serde_json::Value>,
}

/// What a finished job reports.
struct Done {
    run: Arc<RunDir>,
    per_task: Vec<TaskSearch>,
    failures: Vec<(String, String)>,
}

/// One worker of a search run: its env searches a task's tree and commits the task
/// (episodes, then pairs, then the tree file).
struct SearchWorker {
    env: Box<dyn Env>,
    policy: Arc<dyn Policy>,
    critic: Arc<dyn Critic>,
    meta: EpisodeMeta,
    cfg: MctsConfig,
    pair_opts: PairOptions,
    completion: Arc<Completion>,
    seed: u64,
    run: Arc<RunDir>,
    pairs: Arc<Appender>,
    /// Test-time search: rollouts go here, only final paths into the run's episodes.
    rollouts: Option<Arc<Appender>>,
    out: PathBuf,
}

impl Worker for SearchWorker {
    type Output = TaskSearch;

    fn run(&mut self, task: TaskRef) -> TaskFuture<'_, TaskSearch> {
        Box::pin(async move {
            let res = mcts::search(
                self.env.as_mut(),
                self.policy.as_ref(),
                self.critic.as_ref(),
                &self.meta,
                task,
                self.seed,
                &self.cfg,
            )
            .await?;
            let mut ps = pairs::step_pairs(&res.tree, &self.pair_opts, self.completion.as_ref());
            if self.pair_opts.trajectory {
                ps.extend(pairs::trajectory_pairs(
                    &res.tree,
                    &res.rollouts,
                    &res.values,
                    self.pair_opts.mode,
                ));
            }
            let fin = res.final_episode();
            // Episodes, then pairs, then the tree file (the task's commit marker).
            match &self.rollouts {
                Some(f) => {
                    let mut buf = Vec::new();
                    for e in &res.rollouts {
                        buf.extend(e.to_jsonl());
                    }
                    f.append(&buf)?;
                    self.run.record(&fin)?;
                }
                None => {
                    for e in &res.rollouts {
                        self.run.record(e)?;
                    }
                    self.run.record(&fin)?;
                }
            }
            self.pairs.append(&pairs::to_jsonl(&ps))?;
            let figures = TaskSearch {
                task: task.to_string(),
                tree: res.tree.id.clone(),
                final_reward: fin.summary.reward,
                final_success: fin.summary.success,
                final_actions: res.final_actions(),
                final_value: res.values[res.best],
                purchases: res.purchases,
                expansions: res.expansions,
                nodes: res.tree.nodes.len(),
                iterations: res.rollouts.len(),
                rollouts_succeeded: res.rollouts.iter().filter(|e| e.summary.success).count(),
                env_steps: res.env_steps,
                restores: res.restores,
                pairs: ps.len(),
                wall_ms: res.wall_ms,
            };
            let mut v = serde_json::to_value(res.tree.to_report())?;
            v["task"] = serde_json::json!(task.to_string());
            v["search"] = serde_json::to_value(&figures)?;
            trajectory::write_atomic(&tree_file(&self.out, task), &serde_json::to_vec(&v)?)?;
            Ok(figures)
        })
    }
}

fn run_job(job: Job, progress: Arc<dyn Progress>) -> Result<Done> {
    let Job {
        command,
        factory,
        policy,
        critic,
        cfg,
        pair_opts,
        completion,
        tasks,
        seed,
        parallel,
        out,
        resume,
        mut settings,
    } = job;
    let meta = factory.meta(cfg.k);
    settings.insert("mcts".into(), serde_json::to_value(&cfg)?);
    settings.insert("value".into(), serde_json::json!(cfg.value.label()));
    settings.insert("critic".into(), serde_json::json!(critic.describe()));
    settings.insert("proposer".into(), serde_json::json!(policy.describe()));
    settings.insert("obs_mode".into(), serde_json::json!(meta.obs_mode));
    settings.insert("max_steps".into(), serde_json::json!(meta.max_steps));
    let policy_label = format!(
        "mcts(proposer={}, critic={}, value={})",
        policy.describe(),
        critic.describe(),
        match cfg.value {
            ValueMode::Env => "env",
            ValueMode::Critic => "critic",
        }
    );
    let config =
        crate::eval::run_config(&out, command, &meta, policy_label, seed, &tasks, settings);
    // Drop the partial output of unfinished trees before reopening.
    let before = if resume { finished(&out)? } else { Vec::new() };
    let done: BTreeSet<String> = before.iter().map(|s| s.tree.clone()).collect();
    if resume {
        prune_episodes(&out.join(trajectory::EPISODES_FILE), &done)?;
        prune_episodes(&out.join(ROLLOUTS_FILE), &done)?;
        prune_pairs(&out.join(PAIRS_FILE), &done)?;
    } else if out.join(TREES_DIR).is_dir() {
        bail!(
            "{} already holds search trees: pass --resume to continue it or choose another --out",
            out.display()
        );
    }
    let (run, _existing) = RunDir::open(&out, config, resume)
        .with_context(|| format!("opening run directory {}", out.display()))?;
    std::fs::create_dir_all(out.join(TREES_DIR))?;
    let todo: Vec<TaskRef> = tasks
        .iter()
        .copied()
        .filter(|t| !tree_file(&out, *t).exists())
        .collect();
    if resume && !before.is_empty() {
        progress.note(&format!(
            "resuming {}: {} trees done, {} to search",
            out.display(),
            before.len(),
            todo.len()
        ));
    }
    let run = Arc::new(run);
    let pairs_file = Appender::open(out.join(PAIRS_FILE))?;
    let rollouts_file = if command == "eval" {
        Some(Appender::open(out.join(ROLLOUTS_FILE))?)
    } else {
        None
    };
    let rt = crate::envs::runtime()?;
    let mut workers = Vec::new();
    for _ in 0..parallel.max(1) {
        workers.push(SearchWorker {
            env: factory.make(None)?,
            policy: Arc::clone(&policy),
            critic: Arc::clone(&critic),
            meta: meta.clone(),
            cfg: cfg.clone(),
            pair_opts,
            completion: Arc::clone(&completion),
            seed,
            run: Arc::clone(&run),
            pairs: Arc::clone(&pairs_file),
            rollouts: rollouts_file.clone(),
            out: out.clone(),
        });
    }
    let (mut n, mut won, mut pairs) = (0usize, 0usize, 0usize);
    let executed = executor::execute(
        &rt,
        workers,
        todo,
        Stage::Trees,
        progress,
        move |fig: &TaskSearch| {
            n += 1;
            won += usize::from(fig.final_success);
            pairs += fig.pairs;
            format!(
                "· final success {:.0}% · {pairs} pairs",
                100.0 * won as f64 / n as f64
            )
        },
    )?;
    // Figures of every finished tree, in task order.
    let order: Vec<String> = run.config().tasks.clone();
    let mut per_task = finished(&out)?;
    per_task.sort_by_key(|s| {
        order
            .iter()
            .position(|t| *t == s.task)
            .unwrap_or(usize::MAX)
    });
    Ok(Done {
        run,
        per_task,
        failures: executed.failures,
    })
}

/// The settings a search run is built from.
struct Plan<'a> {
    command: &'static str,
    env: &'a EnvSettings,
    tasks: &'a TaskSelection,
    search: &'a SearchSettings,
    policy_seed: u64,
    k: usize,
    parallel: usize,
    out: PathBuf,
    resume: bool,
    settings: serde_json::Map<String, serde_json::Value>,
}

impl Plan<'_> {
    /// Loads the env, the model, the proposer and the critic.
    fn job(self) -> Result<Job> {
        let factory = EnvFactory::new(self.env, None)?;
        let n = factory.split_len(self.tasks.split);
        let tasks = self.tasks.resolve(n)?;
        let lm = self.search.model()?;
        let policy = self
            .search
            .proposer(self.policy_seed, &factory, lm.as_ref())?;
        Ok(Job {
            command: self.command,
            critic: self.search.critic(lm.as_ref())?,
            pair_opts: self.search.pair_options(),
            completion: self.search.completion(),
            factory,
            policy,
            cfg: self.search.config(self.k),
            tasks,
            seed: self.tasks.seed,
            parallel: self.parallel,
            out: self.out,
            resume: self.resume,
            settings: self.settings,
        })
    }
}

/// Searches every selected task and writes rollouts, trees, pairs and `summary.json`.
pub fn collect(c: &CollectConfig, progress: Arc<dyn Progress>) -> Result<CollectReport> {
    let started = Instant::now();
    if c.tasks.split == Split::Test {
        progress
            .note("warning: collecting on the test split (pass --split train for training data)");
    }
    let out = c.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/collect-{}-{}",
            c.search.proposer.name(),
            c.tasks.split.name()
        ))
    });
    let mut settings = serde_json::Map::new();
    settings.insert("parallel".into(), serde_json::json!(c.parallel));
    settings.insert("policy_seed".into(), serde_json::json!(c.policy_seed));
    settings.insert(
        "trajectory_pairs".into(),
        serde_json::json!(c.search.trajectory_pairs),
    );
    let job = Plan {
        command: "collect",
        env: &c.env,
        tasks: &c.tasks,
        search: &c.search,
        policy_seed: c.policy_seed,
        k: c.k,
        parallel: c.parallel,
        out,
        resume: c.resume,
        settings,
    }
    .job()?;
    let value = job.cfg.value;
    let done = run_job(job, progress)?;
    let loaded = trajectory::load(done.run.path())?;
    let (finals, rollouts): (Vec<Episode>, Vec<Episode>) = loaded
        .episodes
        .into_iter()
        .partition(|e| e.header.extra.role == Some(SearchRole::Final));
    let summary = CollectSummary {
        value: value.label().into(),
        tasks: done.per_task.len(),
        final_paths: RunSummary::of(&finals),
        rollouts: RunSummary::of(&rollouts),
        pairs: done.per_task.iter().map(|t| t.pairs).sum(),
        purchases: done.per_task.iter().map(|t| t.purchases).sum(),
        expansions: done.per_task.iter().map(|t| t.expansions).sum(),
        per_task: done.per_task,
        wall_s: started.elapsed().as_secs_f64(),
    };
    let bytes = serde_json::to_vec_pretty(&summary)?;
    trajectory::write_atomic(&done.run.path().join(trajectory::SUMMARY_FILE), &bytes)?;
    if c.report {
        crate::report::write_report(done.run.path(), None)?;
    }
    Ok(CollectReport {
        run_dir: done.run.path().to_path_buf(),
        summary,
        failures: done.failures,
    })
}

/// The search at test time: `episodes.jsonl` holds the chosen path of each task, so the
/// summary is the search's score.
pub fn eval_mcts(c: &EvalConfig, progress: Arc<dyn Progress>) -> Result<EvalReport> {
    let started = Instant::now();
    let out = c
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/eval-mcts-{}", c.tasks.split.name())));
    let mut settings = serde_json::Map::new();
    settings.insert("parallel".into(), serde_json::json!(c.parallel));
    settings.insert("policy_seed".into(), serde_json::json!(c.policy_seed));
    let job = Plan {
        command: "eval",
        env: &c.env,
        tasks: &c.tasks,
        search: &c.search,
        policy_seed: c.policy_seed,
        // `k` is 1 for the greedy agents; a search needs a choice.
        k: if c.k <= 1 { 3 } else { c.k },
        parallel: c.parallel,
        out,
        resume: c.resume,
        settings,
    }
    .job()?;
    if job.cfg.value == ValueMode::Env {
        progress.note(
            "note: --value env uses the environment's reward during search (search with a verifier)",
        );
    }
    let done = run_job(job, progress)?;
    let loaded = trajectory::load(done.run.path())?;
    let mut summary = RunSummary::of(&loaded.episodes);
    summary.wall_s = Some(started.elapsed().as_secs_f64());
    done.run.write_summary(&summary)?;
    if c.report {
        crate::report::write_report(done.run.path(), None)?;
    }
    let purchases: usize = done.per_task.iter().map(|t| t.purchases).sum();
    Ok(EvalReport {
        run_dir: done.run.path().to_path_buf(),
        policy: done.run.config().policy.clone(),
        summary,
        failures: done.failures,
        search_purchases: Some((purchases, done.per_task.len())),
    })
}
