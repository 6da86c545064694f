//! The environment API: Gymnasium-shaped `reset`/`step` over the store, for every driver.
//!
//! Invariants: `env` owns the one action parser ([`action`]) and the one HTML → Observation
//! path ([`observe`]), so in-process, HTTP and browser drivers give identical observations
//! for the same task, seed and actions. Invalid actions are ordinary steps (reward 0, page
//! unchanged, `info.error` set), never `Err`; `Err` is for infrastructure failures (I/O,
//! HTTP, a dead browser). `env` knows nothing of policies, LLMs or training.

pub mod action;
#[cfg(feature = "browser")]
pub mod browser;
pub mod check;
pub mod drivers;
pub mod observe;
pub mod site;
pub mod sites;
pub mod spec;
pub mod web;

use serde::{Deserialize, Serialize};

pub use action::{Action, ParseError};
pub use observe::{ObsMode, Observation};
pub use site::{GoalHint, GoalKnowledge, PageKind, Site, Split};
pub use sites::RewardDetail;
pub use spec::EnvSpec;
pub use web::{EnvConfig, WebEnv};

pub use agentq_core::task::{TaskError, TaskRef};

/// What happened in a step besides the observation and reward.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Why the action was a no-op (bad syntax, unknown target, empty search …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The episode was already over (terminated or truncated): the step did nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// Steps taken in this episode so far (including this one, excluding locked ones).
    pub steps: usize,
    /// The site's reward breakdown, on the terminal step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_detail: Option<RewardDetail>,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The observation after the action.
    pub observation: Observation,
    /// Reward of this step (non-zero only on the purchase step).
    pub reward: f64,
    /// The episode ended by its own logic (a purchase).
    pub terminated: bool,
    /// The episode was cut by the step limit.
    pub truncated: bool,
    /// Errors, lock flag, reward breakdown.
    pub info: StepInfo,
}

/// Everything needed to return to a state: the page URL and the episode's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Goal index of the episode.
    pub goal: usize,
    /// Seed of the episode.
    pub seed: u64,
    /// Path (and query) of the current page, relative to the site root.
    pub url: String,
    /// Steps taken.
    pub steps: usize,
    /// Terminated by a purchase.
    pub terminated: bool,
    /// Cut by the step limit.
    pub truncated: bool,
    /// Reward of the purchase, once made.
    pub reward: f64,
    /// Keys of the links followed so far, as the site names them ([`Site::visited_key`]:
    /// ASINs for WebShop), for observations that mark visited links.
    pub visited: Vec<String>,
}

/// Infrastructure failures of an environment (not invalid actions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task reference that does not parse or does not exist.
    #[error("bad task {0}")]
    BadTask(#[from] TaskError),
    /// `step` before `reset`.
    #[error("step before reset")]
    NotReset,
    /// The site answered with an unexpected status.
    #[error("site returned {status} for {url}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Requested path.
        url: String,
        /// Start of the body.
        body: String,
    },
    /// Transport failure (connection refused, timeout …).
    #[error("transport: {0}")]
    Transport(String),
    /// The site answered something we cannot interpret.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A navigation left the store's origin (browser driver); the driver went back to the
    /// last good page. `WebEnv::step` turns it into a no-op step with `info.error` set.
    #[error("navigation off the store's origin to {0} (undone)")]
    OffSite(String),
    /// An env spec names a site that is not registered.
    #[error("unknown site {0}")]
    UnknownSite(String),
    /// An env spec that does not read or parse.
    #[error("{}, spec: {message}", path.display())]
    Spec {
        /// The spec file.
        path: std::path::PathBuf,
        /// What is wrong (naming the field).
        message: String,
    },
    /// A spec file that cannot be read.
    #[error("{}: {source}", path.display())]
    SpecIo {
        /// The spec file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Store-side failure (loading data).
    #[error(transparent)]
    Store(#[from] agentq_webshop::Error),
}

/// Result with the env's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Gymnasium-shaped environment.
#[async_trait::async_trait]
pub trait Env: Send {
    /// Starts an episode on `task` with `seed`; returns the first observation.
    async fn reset(&mut self, task: TaskRef, seed: u64) -> Result<Observation>;
    /// Applies an action string.
    async fn step(&mut self, action: &str) -> Result<Step>;
    /// The current observation (after `reset`).
    fn observation(&self) -> Option<&Observation>;
    /// The absolute task index of `task` on this env's site (an error for a reference the
    /// site's split layout rules out). The default, for envs without a split layout, is the
    /// index as written.
    fn task_index(&self, task: TaskRef) -> Result<usize> {
        Ok(task.index)
    }
    /// What kind of page `obs` (an observation of this env) shows. The default, for envs
    /// without a site, is [`PageKind::Other`].
    fn page_kind(&self, obs: &Observation) -> PageKind {
        let _ = obs;
        PageKind::Other
    }
    /// Valid actions on the current page: `search[...]` when a search bar is present and
    /// `click[label]` for each clickable.
    fn available_actions(&self) -> Vec<String> {
        match self.observation() {
            None => Vec::new(),
            Some(o) => {
                let mut v = Vec::new();
                if o.has_search_bar {
                    v.push("search[...]".to_string());
                }
                v.extend(o.clickables.iter().map(|c| format!("click[{c}]")));
                v
            }
        }
    }
    /// Captures the current state.
    fn snapshot(&self) -> Result<Snapshot>;
    /// Returns to a captured state (same session or a fresh one on the same goal).
    async fn restore(&mut self, snapshot: &Snapshot) -> Result<Observation>;
    /// File of the screenshot of the page last loaded, for drivers that take them.
    fn last_screenshot(&self) -> Option<String> {
        None
    }
}
