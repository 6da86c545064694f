//! agentq: train and evaluate web agents the Agent Q way.
//!
//! A WebShop-compatible simulated store ([`store`]) with an exact reward, BM25 search and
//! seeded fixtures; later modules add the environment API, agents, trajectories and training.
//! The binary `agentq` is a thin command-line layer over this library (`src/cli`).

pub mod cli;
pub mod env;
pub mod lm;
pub mod store;
