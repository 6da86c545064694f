//! The environment API (being written): action grammar, observations, drivers.

pub mod action;
pub mod observe;
