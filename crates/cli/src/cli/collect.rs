//! `agentq collect` (MCTS over tasks → rollouts, trees and preference pairs) and
//! `agentq eval --agent mcts` (the same search at test time; the chosen path is the episode).
//!
//! Run directory of a search run: `run.json`, `episodes.jsonl` (collect: every rollout and
//! the final path of each tree, all marked with `header.tree`; eval: the final paths, with
//! rollouts in `rollouts.jsonl`), `trees/<task>.json` (the report's tree shape plus a
//! `search` object with the task's figures), `pairs.jsonl` and `summary.json`.
//! Crash safety: a task's episodes and pairs are appended first and its tree file is written
//! (atomically) last; `--resume` skips tasks with a tree file and drops any episode or pair
//! of a tree without one, so a crash never leaves half a task.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::envs::{EnvArgs, EnvFactory};
use super::runs::{EvalArgs, TaskArgs};
use crate::agent::critic::{Critic, ProposalOrder};
use crate::agent::mcts::{self, MctsConfig, TerminalReward, ValueMode};
use crate::agent::pairs::{self, PairOptions};
use crate::agent::EpisodeMeta;
use crate::env::TaskRef;
use crate::policy::prompt::PromptMode;
use crate::policy::{Oracle, Policy, RandomPolicy, Rule};
use crate::trajectory::{self, Episode, Recorder, RunConfig, RunDir, RunSummary, SearchRole};
use agentq_env::Split;

/// Preference pairs of a search run.
pub const PAIRS_FILE: &str = "pairs.jsonl";
/// Rollouts of an `eval --agent mcts` run.
pub const ROLLOUTS_FILE: &str = "rollouts.jsonl";
/// Tree files.
pub const TREES_DIR: &str = "trees";

/// The policy that proposes actions at new nodes and runs rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proposer {
    /// WebShop's rule baseline (one action per page).
    Rule,
    /// Knows the goal; pads its choice with other valid actions up to K.
    Oracle,
    /// Random valid actions (seeded by --policy-seed).
    Random,
    /// The LLM policy (`--model` / `--openai-url`, `--prompt-mode`).
    Llm,
}

impl Proposer {
    /// The flag value (`rule`, `oracle`, `random`, `llm`), used in default run names.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CriticKind {
    /// No critic: the proposer's order; judges a page 1 if it confirms a purchase.
    Order,
    /// The same frozen LLM with a critique prompt (`--critic-scheme`).
    Llm,
}

/// Value mode flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueArg {
    /// Terminal reward from the environment (Agent Q; at test time: search with a verifier).
    Env,
    /// The critic's judgement of the final page (no environment reward during search).
    Critic,
}

/// Terminal reward flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RewardArg {
    /// 1 for a purchase with reward 1.0, else 0.
    Success,
    /// WebShop's partial score.
    Partial,
}

/// Search flags shared by `collect` and `eval --agent mcts`.
#[derive(Debug, Clone, Args)]
pub struct MctsArgs {
    /// MCTS: the proposer (and rollout) policy.
    #[arg(long, value_enum, default_value = "oracle")]
    pub proposer: Proposer,
    /// MCTS: the critic ranking proposals.
    #[arg(long, value_enum, default_value = "order")]
    pub critic: CriticKind,
    /// MCTS: iterations (rollouts) per task.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// MCTS: terminal values from the environment or from the critic.
    #[arg(long, value_enum, default_value = "env")]
    pub value: ValueArg,
    /// MCTS: terminal reward with `--value env`: success (1/0) or WebShop's partial score.
    #[arg(long, value_enum, default_value = "success")]
    pub reward: RewardArg,
    /// MCTS: UCB1 exploration constant.
    #[arg(long, default_value_t = 1.0)]
    pub c_ucb: f64,
    /// MCTS: most steps on a path (tree + rollout).
    #[arg(long, default_value_t = 10)]
    pub depth_cap: usize,
    /// MCTS: weight of the search value in the pair Q (α·Q̃ + (1−α)·Q̂).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// MCTS: least |ΔQ| for a preference pair.
    #[arg(long, default_value_t = 0.1)]
    pub theta: f64,
    /// MCTS: also write trajectory-level pairs (successful vs failed rollouts of a task).
    #[arg(long)]
    pub trajectory_pairs: bool,
    /// MCTS: seed of the rollout contexts.
    #[arg(long, default_value_t = 0)]
    pub search_seed: u64,
    #[command(flatten)]
    pub lm: super::lmargs::LmArgs,
}

impl MctsArgs {
    fn config(&self, k: usize) -> MctsConfig {
        MctsConfig {
            iterations: self.iterations.max(1),
            k: k.max(1),
            c_ucb: self.c_ucb,
            depth_cap: self.depth_cap.max(1),
            alpha: self.alpha,
            theta: self.theta,
            value: match self.value {
                ValueArg::Env => ValueMode::Env,
                ValueArg::Critic => ValueMode::Critic,
            },
            reward: match self.reward {
                RewardArg::Success => TerminalReward::Success,
                RewardArg::Partial => TerminalReward::Partial,
            },
            seed: self.search_seed,
        }
    }

    /// The language model, loaded once if the proposer or the critic needs it.
    pub fn model(&self) -> Result<Option<Arc<dyn crate::lm::LanguageModel>>> {
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
        lm: Option<&Arc<dyn crate::lm::LanguageModel>>,
    ) -> Result<Arc<dyn Policy>> {
        Ok(match self.proposer {
            Proposer::Rule => Arc::new(Rule),
            Proposer::Oracle => Arc::new(Oracle::new(f.knowledge())),
            Proposer::Random => Arc::new(RandomPolicy::new(policy_seed)),
            Proposer::Llm => Arc::new(crate::policy::llm::LlmPolicy::new(
                Arc::clone(lm.context("the LLM proposer needs a model")?),
                self.lm.llm_config(policy_seed),
            )),
        })
    }

    fn critic(&self, lm: Option<&Arc<dyn crate::lm::LanguageModel>>) -> Result<Arc<dyn Critic>> {
        Ok(match self.critic {
            CriticKind::Order => Arc::new(ProposalOrder),
            CriticKind::Llm => Arc::new(crate::policy::critic::LlmCritic::new(
                Arc::clone(lm.context("the LLM critic needs a model")?),
                self.lm.critic_scheme,
            )),
        })
    }

    /// The completion text of pairs: what the proposer's log-probs scored (react answers
    /// carry their thought).
    fn completion(&self) -> Arc<Completion> {
        if self.proposer == Proposer::Llm && self.lm.prompt_mode == PromptMode::React {
            Arc::new(|c: &crate::policy::Candidate| {
                crate::policy::prompt::response(PromptMode::React, &c.action, c.thought.as_deref())
            })
        } else {
            Arc::new(pairs::action_completion)
        }
    }
}

/// Arguments of `agentq collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// Actions proposed per new node (K).
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    #[command(flatten)]
    pub mcts: MctsArgs,
    /// Seed of the random proposer.
    #[arg(long, default_value_t = 0)]
    pub policy_seed: u64,
    /// Trees searched at once (each with its own env).
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Run directory (default `runs/collect-<proposer>-<split>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue a run directory: skip tasks whose tree is written.
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
    /// What the terminal values were (`--value`), spelled out.
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

fn tree_file(dir: &Path, task: TaskRef) -> PathBuf {
    dir.join(TREES_DIR)
        .join(format!("{}.json", task.to_string().replace(':', "-")))
}

/// Tree ids with a tree file (finished tasks) and their figures.
fn finished(dir: &Path) -> Result<Vec<TaskSearch>> {
    let tdir = dir.join(TREES_DIR);
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

fn append(file: &Mutex<File>, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
    f.write_all(bytes)
        .and_then(|()| f.sync_data())
        .with_context(|| format!("appending to {}", path.display()))
}

fn open_append(path: &Path) -> Result<Mutex<File>> {
    Ok(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// Finished tasks' figures and failed tasks (task, error).
type Results = (Vec<TaskSearch>, Vec<(String, String)>);

/// Renders a candidate as the completion text of a pair.
type Completion = dyn Fn(&crate::policy::Candidate) -> String + Send + Sync;

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

fn run_job(job: Job) -> Result<Done> {
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
        settings,
    } = job;
    let meta = EpisodeMeta {
        env: factory.spec_id.clone(),
        data_hash: factory.data_hash(),
        driver: factory.driver.name().into(),
        obs_mode: factory.config.mode,
        max_steps: factory.config.max_steps,
        k: cfg.k,
    };
    let mut settings = settings;
    settings.insert("mcts".into(), serde_json::to_value(&cfg)?);
    settings.insert("value".into(), serde_json::json!(cfg.value.label()));
    settings.insert("critic".into(), serde_json::json!(critic.describe()));
    settings.insert("proposer".into(), serde_json::json!(policy.describe()));
    settings.insert("obs_mode".into(), serde_json::json!(meta.obs_mode));
    settings.insert("max_steps".into(), serde_json::json!(meta.max_steps));
    let config = RunConfig {
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
        policy: format!(
            "mcts(proposer={}, critic={}, value={})",
            policy.describe(),
            critic.describe(),
            match cfg.value {
                ValueMode::Env => "env",
                ValueMode::Critic => "critic",
            }
        ),
        seed,
        tasks: tasks.iter().map(ToString::to_string).collect(),
        settings: settings.into_iter().collect(),
    };
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
        eprintln!(
            "resuming {}: {} trees done, {} to search",
            out.display(),
            before.len(),
            todo.len()
        );
    }
    let run = Arc::new(run);
    let pairs_path = out.join(PAIRS_FILE);
    let pairs_file = Arc::new(open_append(&pairs_path)?);
    let rollouts_path = out.join(ROLLOUTS_FILE);
    let rollouts_file = if command == "eval" {
        Some(Arc::new(open_append(&rollouts_path)?))
    } else {
        None
    };
    let rt = super::play::runtime()?;
    let pb = indicatif::ProgressBar::new(todo.len() as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} trees {msg} ({elapsed}, eta {eta})",
        )
        .expect("invariant: static template")
        .progress_chars("=> "),
    );
    let queue = Arc::new(Mutex::new(VecDeque::from(todo)));
    let results: Arc<Mutex<Results>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..parallel.max(1) {
        let mut env = factory.make(None)?;
        let (queue, results, pb) = (queue.clone(), results.clone(), pb.clone());
        let (policy, critic, meta, cfg, run) = (
            policy.clone(),
            critic.clone(),
            meta.clone(),
            cfg.clone(),
            run.clone(),
        );
        let completion = completion.clone();
        let (pairs_file, pairs_path, rollouts_file, rollouts_path, out) = (
            pairs_file.clone(),
            pairs_path.clone(),
            rollouts_file.clone(),
            rollouts_path.clone(),
            out.clone(),
        );
        workers.push(rt.spawn(async move {
            loop {
                let Some(task) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let r = async {
                    let res = mcts::search(
                        env.as_mut(),
                        policy.as_ref(),
                        critic.as_ref(),
                        &meta,
                        task,
                        seed,
                        &cfg,
                    )
                    .await?;
                    let mut ps = pairs::step_pairs(&res.tree, &pair_opts, completion.as_ref());
                    if pair_opts.trajectory {
                        ps.extend(pairs::trajectory_pairs(
                            &res.tree,
                            &res.rollouts,
                            &res.values,
                        ));
                    }
                    let fin = res.final_episode();
                    // Episodes, then pairs, then the tree file (the task's commit marker).
                    match &rollouts_file {
                        Some(f) => {
                            let mut buf = Vec::new();
                            for e in &res.rollouts {
                                buf.extend(e.to_jsonl());
                            }
                            append(f, &rollouts_path, &buf)?;
                            run.record(&fin)?;
                        }
                        None => {
                            for e in &res.rollouts {
                                run.record(e)?;
                            }
                            run.record(&fin)?;
                        }
                    }
                    append(&pairs_file, &pairs_path, &pairs::to_jsonl(&ps))?;
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
                        rollouts_succeeded: res
                            .rollouts
                            .iter()
                            .filter(|e| e.summary.success)
                            .count(),
                        env_steps: res.env_steps,
                        restores: res.restores,
                        pairs: ps.len(),
                        wall_ms: res.wall_ms,
                    };
                    let mut v = serde_json::to_value(res.tree.to_report())?;
                    v["task"] = serde_json::json!(task.to_string());
                    v["search"] = serde_json::to_value(&figures)?;
                    let path = tree_file(&out, task);
                    trajectory::write_atomic(&path, &serde_json::to_vec(&v)?)?;
                    anyhow::Ok(figures)
                }
                .await;
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(fig) => {
                        g.0.push(fig);
                        let n = g.0.len();
                        let won = g.0.iter().filter(|f| f.final_success).count();
                        let pairs: usize = g.0.iter().map(|f| f.pairs).sum();
                        pb.set_message(format!(
                            "· final success {:.0}% · {pairs} pairs",
                            100.0 * won as f64 / n as f64
                        ));
                    }
                    Err(e) => {
                        pb.suspend(|| eprintln!("{task}: {e:#}"));
                        g.1.push((task.to_string(), format!("{e:#}")));
                    }
                }
                drop(g);
                pb.inc(1);
            }
        }));
    }
    rt.block_on(async {
        for w in workers {
            w.await.context("a search worker panicked")?;
        }
        anyhow::Ok(())
    })?;
    pb.finish_and_clear();
    let (_, mut failures) = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    failures.sort();
    // Figures of every finished tree, in task order.
    let all = finished(&out)?;
    let order: Vec<String> = run.config().tasks.clone();
    let mut per_task = all;
    per_task.sort_by_key(|s| {
        order
            .iter()
            .position(|t| *t == s.task)
            .unwrap_or(usize::MAX)
    });
    Ok(Done {
        run,
        per_task,
        failures,
    })
}

fn report_failures(failures: &[(String, String)], ok: usize) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    for (t, e) in failures {
        eprintln!("failed {t}: {e}");
    }
    bail!(
        "{} of {} searches failed (not recorded; `--resume` retries them)",
        failures.len(),
        failures.len() + ok
    )
}

/// `agentq collect`.
pub fn collect(a: CollectArgs) -> Result<()> {
    let started = Instant::now();
    let factory = EnvFactory::new(&a.env, None)?;
    if a.tasks.split == Split::Test {
        eprintln!("warning: collecting on the test split (pass --split train for training data)");
    }
    let n = factory.split_len(a.tasks.split);
    let tasks = a.tasks.resolve(n)?;
    let lm = a.mcts.model()?;
    let policy = a.mcts.proposer(a.policy_seed, &factory, lm.as_ref())?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/collect-{}-{}",
            a.mcts.proposer.name(),
            a.tasks.split.name()
        ))
    });
    let cfg = a.mcts.config(a.k);
    let mut settings = serde_json::Map::new();
    settings.insert("parallel".into(), serde_json::json!(a.parallel));
    settings.insert("policy_seed".into(), serde_json::json!(a.policy_seed));
    settings.insert(
        "trajectory_pairs".into(),
        serde_json::json!(a.mcts.trajectory_pairs),
    );
    let done = run_job(Job {
        command: "collect",
        critic: a.mcts.critic(lm.as_ref())?,
        pair_opts: PairOptions {
            alpha: cfg.alpha,
            theta: cfg.theta,
            trajectory: a.mcts.trajectory_pairs,
        },
        completion: a.mcts.completion(),
        factory,
        policy,
        cfg: cfg.clone(),
        tasks,
        seed: a.tasks.seed,
        parallel: a.parallel,
        out,
        resume: a.resume,
        settings,
    })?;
    let loaded = trajectory::load(done.run.path())?;
    let (finals, rollouts): (Vec<Episode>, Vec<Episode>) = loaded
        .episodes
        .into_iter()
        .partition(|e| e.header.extra.role == Some(SearchRole::Final));
    let summary = CollectSummary {
        value: cfg.value.label().into(),
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
    if a.report {
        super::runs::write_report(done.run.path(), None)?;
    }
    if a.json {
        let mut o = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut o, &summary)?;
        writeln!(o)?;
    } else {
        eprintln!(
            "{} trees · final paths: success {:.1}%, score {:.1} · rollouts: {} (success {:.1}%) · {} pairs · {} purchases · value: {}",
            summary.tasks,
            summary.final_paths.success_rate,
            summary.final_paths.score,
            summary.rollouts.episodes,
            summary.rollouts.success_rate,
            summary.pairs,
            summary.purchases,
            summary.value
        );
    }
    eprintln!("run directory: {}", done.run.path().display());
    report_failures(&done.failures, summary.tasks)
}

/// `agentq eval --agent mcts`: the search at test time; `episodes.jsonl` holds the chosen
/// path of each task, so the summary is the search's score.
pub fn eval_mcts(a: EvalArgs) -> Result<()> {
    let started = Instant::now();
    let factory = EnvFactory::new(&a.env, None)?;
    let n = factory.split_len(a.tasks.split);
    let tasks = a.tasks.resolve(n)?;
    let lm = a.mcts.model()?;
    let policy = a.mcts.proposer(a.policy_seed, &factory, lm.as_ref())?;
    // `--k` defaults to 1 for the greedy agents; a search needs a choice.
    let k = if a.k <= 1 { 3 } else { a.k };
    let cfg = a.mcts.config(k);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/eval-mcts-{}", a.tasks.split.name())));
    if cfg.value == ValueMode::Env {
        eprintln!("note: --value env uses the environment's reward during search (search with a verifier)");
    }
    let mut settings = serde_json::Map::new();
    settings.insert("parallel".into(), serde_json::json!(a.parallel));
    settings.insert("policy_seed".into(), serde_json::json!(a.policy_seed));
    let done = run_job(Job {
        command: "eval",
        critic: a.mcts.critic(lm.as_ref())?,
        pair_opts: PairOptions {
            alpha: cfg.alpha,
            theta: cfg.theta,
            trajectory: a.mcts.trajectory_pairs,
        },
        completion: a.mcts.completion(),
        factory,
        policy,
        cfg,
        tasks,
        seed: a.tasks.seed,
        parallel: a.parallel,
        out,
        resume: a.resume,
        settings,
    })?;
    let loaded = trajectory::load(done.run.path())?;
    let mut summary = RunSummary::of(&loaded.episodes);
    summary.wall_s = Some(started.elapsed().as_secs_f64());
    done.run.write_summary(&summary)?;
    if a.report {
        super::runs::write_report(done.run.path(), None)?;
    }
    super::runs::print_summary(&summary, a.json, &done.run.config().policy)?;
    let purchases: usize = done.per_task.iter().map(|t| t.purchases).sum();
    eprintln!(
        "search purchases: {purchases} over {} trees ({} per tree)",
        done.per_task.len(),
        purchases as f64 / done.per_task.len().max(1) as f64
    );
    eprintln!("run directory: {}", done.run.path().display());
    report_failures(&done.failures, summary.episodes)
}
