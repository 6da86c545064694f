//! `agentq demos` (SFT demonstrations from the oracle, written by [`agentq_app::demos`]) and
//! `agentq prompt show` (the exact prompt the LLM policy sees at a given point of an
//! episode).

use std::io::Write as _;
use std::path::PathBuf;

use agentq_app::demos::DemosConfig;
use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};

use super::envs::EnvArgs;
use super::progress::Bars;
use super::runs::TaskArgs;
use crate::env::TaskRef;
use crate::policy::prompt::{self, PromptInput, PromptMode};

/// Arguments of `agentq demos`.
#[derive(Debug, Args)]
pub struct DemosArgs {
    /// The demonstrator (only `oracle` knows the goals).
    #[arg(long, default_value = "oracle", value_parser = ["oracle"])]
    pub agent: String,
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// Prompt mode of the examples: act (answer = action) or react (thought + action).
    #[arg(long, default_value = "act")]
    pub mode: PromptMode,
    /// Output JSONL file (written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Instead of running the oracle: the successful episodes of this run directory (or
    /// episodes file), each distinct action sequence of a task once (RFT's data, e.g. from
    /// a collection's rollouts).
    #[arg(long)]
    pub from_run: Option<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// `agentq demos`.
pub fn demos_cmd(a: DemosArgs) -> Result<()> {
    let c = DemosConfig {
        tasks: a.tasks.selection(),
        mode: a.mode,
        out: a.out.clone(),
        env: a.env.settings(),
    };
    let r = match &a.from_run {
        Some(run) => agentq_app::demos::run_examples(run, a.mode, &a.out)?,
        None => agentq_app::demos::demos(&c, &Bars::default())?,
    };
    eprintln!(
        "wrote {} examples ({} mode, prompt {}) to {}{}",
        r.examples,
        a.mode.as_str(),
        prompt::PROMPT_VERSION,
        a.out.display(),
        if r.skipped > 0 {
            format!("; {} unsuccessful or repeated episodes left out", r.skipped)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `agentq prompt …`
#[derive(Debug, Subcommand)]
pub enum PromptCommand {
    /// Print the LLM policy's prompt after the given actions of an episode.
    Show(PromptShowArgs),
}

/// Arguments of `agentq prompt show`.
#[derive(Debug, Args)]
pub struct PromptShowArgs {
    /// Task.
    #[arg(long, default_value = "test:0")]
    pub task: TaskRef,
    /// Episode seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Actions to take before showing the prompt.
    #[arg(long, num_args = 0..)]
    pub actions: Vec<String>,
    /// Prompt mode.
    #[arg(long, default_value = "act")]
    pub mode: PromptMode,
    /// Show the critic's prompt for these candidate actions instead.
    #[arg(long, num_args = 1..)]
    pub critic: Vec<String>,
    /// Print the messages as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub env: EnvArgs,
}

/// `agentq prompt show`.
pub fn prompt_show(a: PromptShowArgs) -> Result<()> {
    let factory = a.env.factory(None)?;
    let rt = super::play::runtime()?;
    let mut env = factory.make(None)?;
    let mode = factory.config.mode;
    let obs = rt.block_on(env.reset(a.task, a.seed)).context("reset")?;
    let instruction = obs.instruction.clone();
    let mut page = obs.render(mode).to_string();
    for act in &a.actions {
        let s = rt
            .block_on(env.step(act))
            .with_context(|| format!("step {act}"))?;
        if let Some(e) = &s.info.error {
            bail!("action {act:?} is invalid here: {e}");
        }
        page = s.observation.render(mode).to_string();
    }
    let available = env.available_actions();
    let history: Vec<&str> = a.actions.iter().map(String::as_str).collect();
    let input = PromptInput {
        instruction: &instruction,
        history: &history,
        page: &page,
        available: &available,
    };
    let messages = if a.critic.is_empty() {
        prompt::policy_messages(a.mode, &input)
    } else {
        prompt::critic_messages(&input, &a.critic)
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &messages)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "# prompt {} ({} mode)",
            prompt::PROMPT_VERSION,
            a.mode.as_str()
        )?;
        for m in &messages {
            writeln!(out, "\n[{}]\n{}", m.role, m.content)?;
        }
    }
    Ok(())
}
