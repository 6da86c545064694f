//! agentq-core: the utilities every other agentq crate shares — the one seeded PRNG ([`rng`])
//! and crash-safe file writes ([`fs`]). Depends on nothing of agentq's.

pub mod fs;
pub mod rng;
