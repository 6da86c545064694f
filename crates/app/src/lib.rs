//! agentq's workflows as library functions over typed settings: what the CLI runs, callable
//! from Rust (and later Python or a server) without clap or argv.
//!
//! - [`envs`]: env settings and the factory that builds one env per worker for any driver;
//!   [`data`]: where the catalog comes from.
//! - [`models`]: choosing and loading a language model (local with adapters, or OpenAI).
//! - [`executor`]: the one worker pool every batch workflow runs on.
//! - [`diagnose`]: failure modes of runs, the quality of preference pairs against the
//!   oracle, and a trained model's effect on pair log-probs.
//! - [`eval`], [`search`] (collection and test-time MCTS), [`demos`], [`train`],
//!   [`aqloop`] (the Agent Q loop), [`report`].
//!
//! Invariants: workflows never print or read environment variables; they report through a
//! [`Progress`] and return typed reports. Run data is written atomically or appended with a
//! sync, in an order that a resumed run can trust.

pub mod aqloop;
pub mod data;
pub mod demos;
pub mod diagnose;
pub mod envs;
pub mod error;
pub mod eval;
pub mod executor;
pub mod models;
pub mod progress;
pub mod report;
pub mod search;
pub mod tasks;
pub mod train;

pub use error::{Error, Result};
pub use progress::{Progress, Silent, Stage};
