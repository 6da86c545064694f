//! The site seam: everything the generic layers (episode logic, policies, critics, MCTS,
//! trajectories, the CLI) need to know about one website, behind one trait.
//!
//! A site crate (`crates/sites/<name>`) implements the website itself and knows nothing of
//! agentq's env; its adapter (`sites/<name>.rs` in this crate) implements [`Site`] over it
//! and is registered in [`crate::sites::by_name`] under the name that `envs/*.toml` files
//! give in `site = "…"`. Nothing outside an adapter parses a site's URLs, names its API
//! paths, knows its split layout or its reward breakdown.

use serde::{Deserialize, Serialize};

use crate::observe::{Element, Observation};
use crate::sites::RewardDetail;
use crate::{Result, TaskRef};

/// What kind of page an observation shows, as the site classifies it. Policies and the
/// critic branch on this, never on URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// The start page (a search box).
    Home,
    /// A list of things to choose from (search results).
    Results,
    /// One thing's page, where it can be configured and committed to (bought, booked).
    Item,
    /// A secondary view of one thing (description, reviews …).
    SubPage,
    /// The terminal confirmation page: the episode's outcome is fixed.
    Done,
    /// Anything else.
    Other,
}

pub use agentq_core::task::Split;

/// What an oracle may know about a task: the site's answer key, in site-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalHint {
    /// The instruction as the task states it.
    pub instruction: String,
    /// Lower-cased key of the target thing, as its link label reads (an ASIN for WebShop).
    pub target: String,
    /// Lower-cased name of the target (a search query that always finds it).
    pub target_name: String,
    /// Option values the goal asks for, as their radio labels read.
    pub options: Vec<String>,
}

/// Answers [`GoalHint`]s for task indices (from the site's data).
pub trait GoalKnowledge: Send + Sync {
    /// The hint for absolute task index `goal`, if the data has that task.
    fn hint(&self, goal: usize) -> Option<GoalHint>;
}

/// The outcome a site reports once an episode reaches a terminal page.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The episode's reward.
    pub reward: f64,
    /// The site's typed breakdown of it.
    pub detail: RewardDetail,
}

/// One website, as the generic env sees it. Implementations are stateless values (cheap to
/// share across episodes); every method is a pure function of its arguments.
pub trait Site: Send + Sync + std::fmt::Debug {
    /// The registry name (`site = "…"` in env specs).
    fn name(&self) -> &'static str;

    /// The absolute task index of `task` (resolving the site's split layout); an error for a
    /// split-relative index past its split's end where the layout fixes that end. (An index
    /// past the end of the task list is the site's to refuse when a session opens.)
    fn task_index(&self, task: TaskRef) -> Result<usize, agentq_core::task::TaskError>;

    /// The task index range of `split` for a task list of `n_tasks` tasks.
    fn split_range(&self, split: Split, n_tasks: usize) -> std::ops::Range<usize>;

    /// The API path and JSON body that open a session on task `goal` with `seed`; the
    /// answer holds the session id under `"session"`.
    fn open_session(&self, goal: usize, seed: u64) -> (String, serde_json::Value);

    /// The session id observations show for (`goal`, `seed`) whatever the real one is, so
    /// that observations depend only on task, seed and actions.
    fn canonical_session(&self, goal: usize, seed: u64) -> String;

    /// Path of the first page of `session`.
    fn start_path(&self, session: &str) -> String;

    /// Path that submitting `query` in the search box of `session` leads to.
    fn search_path(&self, session: &str, query: &str) -> Result<String>;

    /// The URL an observation shows for a site path.
    fn display_url(&self, path: &str) -> String;

    /// What kind of page the observation `obs` shows.
    fn page_kind(&self, obs: &Observation) -> PageKind;

    /// Whether the site path `path` (as loaded) is a terminal page, after which the
    /// outcome is read with [`Site::outcome`].
    fn is_terminal(&self, path: &str) -> bool;

    /// The session a site path belongs to and the same page in session `to`; an error for
    /// a path that is not one of the site's pages.
    fn rebase(&self, path: &str, to: Option<&str>) -> Result<(String, String)>;

    /// API path of the session's state (JSON).
    fn state_path(&self, session: &str) -> String;

    /// Whether a session state says the session's outcome is already fixed.
    fn state_is_final(&self, state: &serde_json::Value) -> bool;

    /// The outcome recorded in a session state, read once a terminal page is reached.
    fn outcome(&self, state: &serde_json::Value) -> Result<Outcome>;

    /// The key an episode remembers when `clicked` is followed (for observations that mark
    /// visited links), if it is one.
    fn visited_key(&self, clicked: &Element) -> Option<String>;
}
