//! agentq: train and evaluate web agents the Agent Q way — the `agentq` binary's library and
//! the workspace's facade.
//!
//! The work happens in the library crates; this crate re-exports them under short names (one
//! dependency for a Rust user, the names the integration tests and benches use) and holds the
//! command-line layer ([`cli`]): clap flags → typed configs → library calls → printed output.

pub use agentq_agent as agent;
pub use agentq_agent::policy;
pub use agentq_app as app;
pub use agentq_core as core;
pub use agentq_env as env;
pub use agentq_lm as lm;
pub use agentq_train as train;
pub use agentq_trajectory as trajectory;
pub use agentq_webshop as store;

pub mod cli;
