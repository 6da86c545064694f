//! Policies: given the instruction, the action history and the current page, propose up to
//! K candidate actions (best first), each with an optional log-prob and thought.
//!
//! Policies are stateless between calls (`&self`): everything they need is in
//! [`Context`], so one policy serves concurrent episodes and MCTS branches alike, and a
//! seeded policy gives the same proposal for the same context. Baselines live in
//! [`baselines`].

pub mod baselines;
pub mod critic;
pub mod llm;
pub mod prompt;

use serde::{Deserialize, Serialize};

use agentq_env::observe::Role;
use agentq_env::{ObsMode, Observation, TaskRef};

pub use agentq_env::PageKind;

pub use baselines::{Oracle, RandomPolicy, Rule, Scripted};

/// Errors of policies.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy has nothing to propose on this page.
    #[error("no action to propose: {0}")]
    NoAction(String),
    /// The task is unknown to a policy that needs it (the oracle).
    #[error("unknown task: {0}")]
    UnknownTask(String),
    /// The language model failed.
    #[error("language model: {0}")]
    Model(String),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One earlier step of the episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The observation the action was taken on (in the episode's mode).
    pub observation: String,
    /// The action.
    pub action: String,
    /// Why it was a no-op, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a policy sees.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The task.
    pub task: TaskRef,
    /// Absolute goal index.
    pub goal: usize,
    /// Episode seed (seeded policies derive their choices from it).
    pub seed: u64,
    /// The goal instruction.
    pub instruction: &'a str,
    /// Earlier steps, oldest first.
    pub history: &'a [Turn],
    /// The current page.
    pub observation: &'a Observation,
    /// What kind of page it is, as the site classifies it ([`agentq_env::Env::page_kind`]).
    pub page: PageKind,
    /// The mode the observation is shown in.
    pub mode: ObsMode,
    /// Valid actions on the page (`search[...]` stands for any query).
    pub available: &'a [String],
    /// How many candidates are wanted at most.
    pub k: usize,
}

impl Context<'_> {
    /// Labels of the product links on the page, in page order.
    pub fn product_links(&self) -> Vec<&str> {
        self.observation
            .elements
            .iter()
            .filter(|e| e.role == Role::Link && e.id.starts_with("product-"))
            .map(|e| e.label.as_str())
            .collect()
    }

    /// Whether `click[label]` is valid here.
    pub fn can_click(&self, label: &str) -> bool {
        self.observation.clickables.iter().any(|c| c == label)
    }

    /// The page kind, as the site classified the observation.
    pub fn page(&self) -> PageKind {
        self.page
    }
}

/// One proposed action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The action string (`search[...]` or `click[...]`).
    pub action: String,
    /// Log-probability under the policy, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob: Option<f64>,
    /// The reasoning that led to it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<String>,
}

impl Candidate {
    /// A candidate with no log-prob or thought.
    pub fn plain(action: impl Into<String>) -> Candidate {
        Candidate {
            action: action.into(),
            logprob: None,
            thought: None,
        }
    }
}

/// A policy's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Candidates, best first (at least one).
    pub candidates: Vec<Candidate>,
    /// The exact prompt an LLM policy was given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The model's raw output, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
    /// The raw output could not be parsed into an action (the first candidate is then the
    /// fallback the policy chose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl Proposal {
    /// A proposal of one action.
    pub fn one(action: impl Into<String>) -> Proposal {
        Proposal {
            candidates: vec![Candidate::plain(action)],
            ..Proposal::default()
        }
    }
}

/// Proposes actions.
#[async_trait::async_trait]
pub trait Policy: Send + Sync {
    /// A short description for run headers (`rule`, `random(seed=3)`, `llm:act:…`).
    fn describe(&self) -> String;
    /// Up to `ctx.k` candidates for the current page, best first.
    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal>;
}
