//! agentq-core: the utilities every other agentq crate shares — the one seeded PRNG
//! ([`rng`]), crash-safe file writes ([`fs`]), task references and selections ([`task`]) and
//! the Python-compatibility helpers ([`pycompat`]). Depends on nothing of agentq's.

pub mod fs;
pub mod pycompat;
pub mod rng;
pub mod task;
