//! Training: DPO and SFT on a local model from preference pairs and demonstrations.
//!
//! Invariant: `train` never runs an environment; it reads trajectories, pairs and
//! demonstrations and writes weights and metrics.

pub mod bench;
pub mod data;
pub mod dpo;
pub mod llama;
pub mod log;
pub mod lora;
pub mod optim;
pub mod trainer;
