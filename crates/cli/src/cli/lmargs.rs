//! Flags that choose a language model (a local GGUF/safetensors model through candle, or an
//! OpenAI-compatible server) and the LLM policy's settings, shared by `eval`, `collect`,
//! `demos` and `loop`; turned into the app layer's [`ModelSettings`].

use std::path::PathBuf;

use agentq_app::models::{ModelSettings, Precision};
use clap::{Args, ValueEnum};

use crate::policy::critic::CriticScheme;
use crate::policy::prompt::PromptMode;

/// Which model and how to prompt it.
#[derive(Debug, Clone, Args)]
pub struct LmArgs {
    /// Local model: a GGUF file or a Hugging Face safetensors directory (default: the
    /// SmolLM2 file that `agentq model fetch smollm2` writes).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Trained checkpoints (`agentq train` output directories or their `checkpoint-N`)
    /// applied to the local model, in order (repeat the flag for a chain of rounds).
    #[arg(long)]
    pub adapter: Vec<PathBuf>,
    /// OpenAI-compatible server base URL (e.g. http://127.0.0.1:8000/v1) instead of a local
    /// model; the API key is read from OPENAI_API_KEY.
    #[arg(long)]
    pub openai_url: Option<String>,
    /// Model name on the OpenAI-compatible server.
    #[arg(long, default_value = "default")]
    pub openai_model: String,
    /// Prompting mode of the LLM policy: act (rank valid actions by log-prob) or react.
    #[arg(long, default_value = "act")]
    pub prompt_mode: PromptMode,
    /// Sampling temperature for candidates beyond the first.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Critic ranking scheme: iterative (the paper's pick-the-best) or logprob (one prompt).
    #[arg(long, default_value = "iterative")]
    pub critic_scheme: CriticScheme,
    /// How a local model computes on the CPU: q8_0 (agentq's quantized kernels) or f32
    /// (candle, the trainer's exact numbers, slower).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Q8_0)]
    pub precision: PrecisionArg,
}

/// `--precision` values (the names of [`Precision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Q8_0 weights and activations in agentq's own SIMD kernels.
    #[value(name = "q8_0")]
    Q8_0,
    /// f32 weights in candle's ops.
    F32,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::Q8_0 => Precision::Q8_0,
            PrecisionArg::F32 => Precision::F32,
        }
    }
}

impl LmArgs {
    /// The typed settings (the API key from `OPENAI_API_KEY`).
    pub fn settings(&self) -> ModelSettings {
        ModelSettings {
            model: self.model.clone(),
            adapters: self.adapter.clone(),
            openai_url: self.openai_url.clone(),
            openai_model: self.openai_model.clone(),
            api_key: std::env::var("OPENAI_API_KEY").ok(),
            prompt_mode: self.prompt_mode,
            temperature: self.temperature,
            critic_scheme: self.critic_scheme,
            precision: self.precision.into(),
        }
    }
}
