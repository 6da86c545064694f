//! How a workflow reports while it runs: a front end (the CLI's progress bars, a Python
//! binding, a test) implements [`Progress`]; workflows never print.

/// What a progress bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Episodes of an evaluation.
    Episodes,
    /// Search trees (MCTS collection or evaluation).
    Trees,
    /// Oracle demonstrations.
    Demos,
    /// Optimiser steps of a training run.
    TrainSteps,
    /// Preference pairs (scored or audited).
    Pairs,
}

/// Receives a workflow's progress. Every method has a do-nothing default; implementations
/// must be callable from the executor's worker threads.
pub trait Progress: Send + Sync {
    /// A counted stage starts with `total` units.
    fn start(&self, stage: Stage, total: u64) {
        let _ = (stage, total);
    }
    /// The stage's position and total changed (training learns its total late).
    fn set(&self, position: u64, total: u64) {
        let _ = (position, total);
    }
    /// One unit finished.
    fn advance(&self) {}
    /// The running figures shown beside the bar (`score 41.0 · success 12.0%`).
    fn message(&self, message: &str) {
        let _ = message;
    }
    /// A line for the user (a resumed run, a failed task, a stage of the loop).
    fn note(&self, line: &str) {
        let _ = line;
    }
    /// The stage ended.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
