//! SFT demonstrations: the oracle's successful episodes as prompt/response examples in the
//! LLM policy's prompt format, written atomically to one JSONL file; and the same from a
//! run's own successful episodes (RFT: rejection-sampling fine-tuning on what the model
//! itself got right, e.g. the rollouts of a collection).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentq_agent::policy::prompt::PromptMode;
use agentq_agent::policy::{Oracle, Policy};
use agentq_agent::{self as agent, demos};

use crate::envs::{EnvFactory, EnvSettings};
use crate::error::{Context as _, Result};
use crate::progress::{Progress, Stage};
use crate::tasks::TaskSelection;

/// A demonstration run.
#[derive(Debug, Clone)]
pub struct DemosConfig {
    /// The tasks and episode seed.
    pub tasks: TaskSelection,
    /// Prompt mode of the examples: act (answer = action) or react (thought + action).
    pub mode: PromptMode,
    /// Output JSONL file.
    pub out: PathBuf,
    /// The environment.
    pub env: EnvSettings,
}

/// What a demonstration run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemosReport {
    /// Examples written.
    pub examples: usize,
    /// Episodes left out because the oracle did not succeed.
    pub skipped: usize,
}

/// Runs the oracle over the tasks and writes the examples of its successful episodes.
pub fn demos(c: &DemosConfig, progress: &dyn Progress) -> Result<DemosReport> {
    let factory = EnvFactory::new(&c.env, None)?;
    let n = factory.split_len(c.tasks.split);
    let tasks = c.tasks.resolve(n)?;
    let policy: Arc<dyn Policy> = Arc::new(Oracle::new(factory.knowledge()));
    let meta = factory.meta(1);
    let rt = crate::envs::runtime()?;
    let mut env = factory.make(None)?;
    progress.start(Stage::Demos, tasks.len() as u64);
    let mut buf = Vec::new();
    let (mut examples, mut skipped) = (0usize, 0usize);
    for t in tasks {
        let ep = rt
            .block_on(agent::run_episode(
                env.as_mut(),
                policy.as_ref(),
                &meta,
                t,
                c.tasks.seed,
            ))
            .with_context(|| format!("running the oracle on {t}"));
        let ep = match ep {
            Ok(ep) => ep,
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        };
        progress.advance();
        if !ep.summary.success {
            skipped += 1;
            continue;
        }
        for ex in demos::examples(&ep, c.mode) {
            serde_json::to_writer(&mut buf, &ex)?;
            buf.push(b'\n');
            examples += 1;
        }
        progress.message(&format!("{examples} examples"));
    }
    progress.finish();
    if let Some(dir) = c.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    agentq_trajectory::write_atomic(&c.out, &buf)?;
    Ok(DemosReport { examples, skipped })
}

/// Writes the examples of the successful episodes of `run` (a run directory or episodes
/// file), each distinct action sequence of a task once, in file order: RFT's data.
/// `skipped` counts the episodes left out (unsuccessful or repeated).
pub fn run_examples(run: &Path, mode: PromptMode, out: &Path) -> Result<DemosReport> {
    let eps = agentq_trajectory::load(run)
        .with_context(|| format!("reading {}", run.display()))?
        .episodes;
    let mut seen = std::collections::HashSet::new();
    let mut buf = Vec::new();
    let (mut examples, mut skipped) = (0usize, 0usize);
    for ep in &eps {
        let actions: Vec<&str> = ep.steps.iter().map(|s| s.action.as_str()).collect();
        if !ep.summary.success || !seen.insert((ep.header.task.clone(), actions.join("\n"))) {
            skipped += 1;
            continue;
        }
        for ex in demos::examples(ep, mode) {
            serde_json::to_writer(&mut buf, &ex)?;
            buf.push(b'\n');
            examples += 1;
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    agentq_trajectory::write_atomic(out, &buf)?;
    Ok(DemosReport { examples, skipped })
}
