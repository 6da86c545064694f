//! The one integration-test binary: a module per boundary.

// Browser driver (feature `browser`): conformance, parity, recovery.
#[cfg(feature = "browser")]
mod browser;
// `agentq run` / `agentq serve` end to end.
mod cli_run;
// `agentq diagnose`: failure modes and the pair audit.
mod diagnose;
// Env API: driver conformance, parity, scripted purchases.
mod env;
// Committed fixtures, regeneration and the `fixtures`/`tasks` commands.
mod fixtures;
// The LLM policy over a scripted language model.
mod llm_policy;
// Run directories: eval, replay, resume, reports, stored example runs.
mod runs;
// Tree search: fake env with a known best path, the real store, collect/eval end to end.
mod mcts;
// Language models: tiny model, SmolLM2, OpenAI client and `agentq lm serve`.
mod lm;
// `agentq train` (SFT, DPO, resume, export, --adapter) on a tiny model.
mod train;
// Code invariants: module dependency rules, `//!` headers, printing only in cli.
mod tidy;
// Shared helpers: paths, running the binary.
mod util;
