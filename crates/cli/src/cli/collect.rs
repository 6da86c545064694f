//! `agentq collect` (MCTS over tasks → rollouts, trees and preference pairs) and the search
//! flags shared with `agentq eval --agent mcts`, turned into the app layer's
//! [`SearchSettings`] and [`CollectConfig`] ([`agentq_app::search`] does the work and
//! documents the run directory and its crash-safe commit order).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use agentq_app::search::{CollectConfig, CriticKind, Proposer, SearchSettings};
use anyhow::Result;
use clap::{Args, ValueEnum};

use super::envs::EnvArgs;
use super::progress::Bars;
use super::runs::TaskArgs;
use crate::agent::mcts::{TerminalReward, ValueMode};

/// The policy that proposes actions at new nodes and runs rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProposerArg {
    /// WebShop's rule baseline (one action per page).
    Rule,
    /// Knows the goal; pads its choice with other valid actions up to K.
    Oracle,
    /// Random valid actions (seeded by --policy-seed).
    Random,
    /// The LLM policy (`--model` / `--openai-url`, `--prompt-mode`).
    Llm,
}

impl From<ProposerArg> for Proposer {
    fn from(p: ProposerArg) -> Proposer {
        match p {
            ProposerArg::Rule => Proposer::Rule,
            ProposerArg::Oracle => Proposer::Oracle,
            ProposerArg::Random => Proposer::Random,
            ProposerArg::Llm => Proposer::Llm,
        }
    }
}

/// The critic that ranks proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CriticArg {
    /// No critic: the proposer's order; judges a page 1 if it confirms a purchase.
    Order,
    /// The same frozen LLM with a critique prompt (`--critic-scheme`).
    Llm,
}

impl From<CriticArg> for CriticKind {
    fn from(c: CriticArg) -> CriticKind {
        match c {
            CriticArg::Order => CriticKind::Order,
            CriticArg::Llm => CriticKind::Llm,
        }
    }
}

/// Value mode flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueArg {
    /// Terminal reward from the environment (Agent Q; at test time: search with a verifier).
    Env,
    /// The critic's judgement of the final page (no environment reward during search).
    Critic,
}

impl From<ValueArg> for ValueMode {
    fn from(v: ValueArg) -> ValueMode {
        match v {
            ValueArg::Env => ValueMode::Env,
            ValueArg::Critic => ValueMode::Critic,
        }
    }
}

/// Terminal reward flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RewardArg {
    /// 1 for a purchase with reward 1.0, else 0.
    Success,
    /// WebShop's partial score.
    Partial,
}

impl From<RewardArg> for TerminalReward {
    fn from(r: RewardArg) -> TerminalReward {
        match r {
            RewardArg::Success => TerminalReward::Success,
            RewardArg::Partial => TerminalReward::Partial,
        }
    }
}

/// Search flags shared by `collect` and `eval --agent mcts`.
#[derive(Debug, Clone, Args)]
pub struct MctsArgs {
    /// MCTS: the proposer (and rollout) policy.
    #[arg(long, value_enum, default_value = "oracle")]
    pub proposer: ProposerArg,
    /// MCTS: the critic ranking proposals.
    #[arg(long, value_enum, default_value = "order")]
    pub critic: CriticArg,
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
    /// The typed settings.
    pub fn settings(&self) -> SearchSettings {
        SearchSettings {
            proposer: self.proposer.into(),
            critic: self.critic.into(),
            iterations: self.iterations,
            value: self.value.into(),
            reward: self.reward.into(),
            c_ucb: self.c_ucb,
            depth_cap: self.depth_cap,
            alpha: self.alpha,
            theta: self.theta,
            trajectory_pairs: self.trajectory_pairs,
            search_seed: self.search_seed,
            lm: self.lm.settings(),
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

impl CollectArgs {
    /// The typed configuration.
    pub fn config(&self) -> CollectConfig {
        CollectConfig {
            tasks: self.tasks.selection(),
            k: self.k,
            search: self.mcts.settings(),
            policy_seed: self.policy_seed,
            parallel: self.parallel,
            out: self.out.clone(),
            resume: self.resume,
            report: self.report,
            env: self.env.settings(),
        }
    }
}

/// `agentq collect`.
pub fn collect(a: CollectArgs) -> Result<()> {
    let r = agentq_app::search::collect(&a.config(), Arc::new(Bars::default()))?;
    let summary = &r.summary;
    if a.json {
        let mut o = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut o, summary)?;
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
    eprintln!("run directory: {}", r.run_dir.display());
    super::runs::print_failures(&r.failures);
    Ok(r.check()?)
}
