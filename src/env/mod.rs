//! The environment API (being written): action grammar, observations, drivers.
//!
//! Invariant: `env` owns the one action parser and the one HTML → Observation path that every
//! driver uses.

pub mod observe;
