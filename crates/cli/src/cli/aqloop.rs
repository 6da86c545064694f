//! `agentq loop` (the Agent Q loop: collect with MCTS → preference pairs → DPO → evaluate,
//! per iteration; run by [`agentq_app::aqloop`], which documents its stages and how it
//! resumes) and `agentq quickstart` (fetch SmolLM2 if missing, run a small loop on the
//! default fixtures, print the before/after table and the report's path).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use agentq_app::aqloop::{Baseline, LoopConfig, Row};
use anyhow::Result;
use clap::Args;

use super::progress::Bars;
use crate::policy::critic::CriticScheme;

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
    #[arg(long, default_value_t = 10)]
    pub mcts_iterations: usize,
    /// MCTS depth cap.
    #[arg(long, default_value_t = 6)]
    pub depth_cap: usize,
    /// Critic scheme: iterative (the paper's) or logprob (one prompt, cheaper).
    #[arg(long, default_value = "logprob")]
    pub critic_scheme: CriticScheme,
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
    /// Weight of an SFT term on the chosen actions beside the DPO loss (RPO); 0 is plain
    /// DPO, which on few pairs can push "buy now" down everywhere.
    #[arg(long, default_value_t = 1.0)]
    pub rpo_alpha: f64,
    /// Do not replay the SFT warm start's oracle demonstrations beside every DPO run's pairs
    /// (replayed by default with --sft-tasks: they keep the steps no pair covers, such as
    /// buying once the options are chosen, likely).
    #[arg(long)]
    pub no_replay_demos: bool,
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
    /// Tasks of the MCTS evaluation (default: the `--eval-tasks`).
    #[arg(long)]
    pub mcts_eval_tasks: Option<String>,
    /// Split of the evaluations: test for reported figures, dev to choose settings.
    #[arg(long, default_value = "test")]
    pub eval_split: agentq_env::Split,
    /// UCB1 exploration constant of the search.
    #[arg(long, default_value_t = 1.0)]
    pub c_ucb: f64,
    /// Weight of the search value in a pair's Q (α·Q̃ + (1−α)·Q̂); 1 = outcome only, the
    /// critic orders the search but does not label pairs (the default: critic-labelled
    /// pairs of SmolLM2 were coin flips, docs/diagnosis.md; 0.5 is the paper's mix).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Least |ΔQ| for a preference pair.
    #[arg(long, default_value_t = 0.1)]
    pub theta: f64,
    /// Terminal value of the search: success (1/0) or partial (WebShop's score; the default,
    /// because 1/0 values of a weak model tie almost everywhere). Success stays the metric.
    #[arg(long, value_enum, default_value_t = super::collect::RewardArg::Partial)]
    pub reward: super::collect::RewardArg,
    /// The paper's baselines, trained from the starting model on iteration 1's search and
    /// evaluated as rows beside it (comma-separated): rft (SFT on the search's successful
    /// rollouts), trajectory-dpo (a successful against a failed rollout, step by step),
    /// critic-mix (step-level DPO with the paper's Q = 0.5·Q̃ + 0.5·Q̂).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub baselines: Vec<BaselineArg>,
}

/// A baseline row (`--baselines`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineArg {
    /// SFT on the search's own successful rollouts.
    Rft,
    /// Trajectory-level DPO: a successful against a failed rollout.
    TrajectoryDpo,
    /// Step-level DPO with the critic mixed into the pair Q (α = 0.5).
    CriticMix,
}

impl From<BaselineArg> for Baseline {
    fn from(b: BaselineArg) -> Baseline {
        match b {
            BaselineArg::Rft => Baseline::Rft,
            BaselineArg::TrajectoryDpo => Baseline::TrajectoryDpo,
            BaselineArg::CriticMix => Baseline::CriticMix,
        }
    }
}

impl LoopArgs {
    /// The typed configuration.
    pub fn config(&self) -> LoopConfig {
        LoopConfig {
            iterations: self.iterations,
            train_tasks: self.train_tasks.clone(),
            eval_tasks: self.eval_tasks.clone(),
            eval_split: self.eval_split,
            model: self.model.clone(),
            k: self.k,
            mcts_iterations: self.mcts_iterations,
            depth_cap: self.depth_cap,
            c_ucb: self.c_ucb,
            alpha: self.alpha,
            theta: self.theta,
            reward: self.reward.into(),
            critic_scheme: self.critic_scheme,
            max_steps: self.max_steps,
            eval_mcts: self.eval_mcts,
            dpo_epochs: self.dpo_epochs,
            lr: self.lr,
            beta: self.beta,
            rpo_alpha: self.rpo_alpha,
            replay_demos: !self.no_replay_demos,
            batch_size: self.batch_size,
            sft_tasks: self.sft_tasks.clone(),
            sft_epochs: self.sft_epochs,
            sft_lr: self.sft_lr,
            mcts_eval_tasks: self.mcts_eval_tasks.clone(),
            baselines: self.baselines.iter().map(|&b| b.into()).collect(),
            out: self.out.clone(),
            parallel: self.parallel,
        }
    }
}

/// `agentq loop`.
pub fn run_loop(a: LoopArgs) -> Result<()> {
    let r = agentq_app::aqloop::run_loop(&a.config(), Arc::new(Bars::default()))?;
    print_table(&r.rows)?;
    eprintln!("results: {}", r.results.display());
    for p in &r.reports {
        eprintln!("report: {}", p.display());
    }
    Ok(())
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
            r.stage_name(),
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
    let model = agentq_app::models::default_model_path();
    if q.model.is_none() && !model.exists() {
        super::lm::fetch(super::lm::FetchArgs {
            name: "smollm2".into(),
            dir: PathBuf::from("models"),
        })?;
    }
    run_loop(LoopArgs {
        iterations: q.iterations,
        train_tasks: q.train_tasks,
        eval_tasks: q.eval_tasks,
        out: q.out,
        model: q.model,
        k: 3,
        mcts_iterations: 10,
        depth_cap: 6,
        critic_scheme: CriticScheme::Logprob,
        max_steps: q.max_steps,
        eval_mcts: q.eval_mcts,
        dpo_epochs: 2,
        lr: 5e-4,
        beta: 0.1,
        rpo_alpha: 1.0,
        no_replay_demos: false,
        batch_size: 4,
        parallel: q.parallel,
        sft_tasks: q.sft_tasks,
        sft_epochs: 2,
        sft_lr: 1e-3,
        mcts_eval_tasks: None,
        baselines: Vec::new(),
        eval_split: agentq_env::Split::Test,
        c_ucb: 1.0,
        alpha: 1.0,
        theta: 0.1,
        reward: super::collect::RewardArg::Partial,
    })
}
