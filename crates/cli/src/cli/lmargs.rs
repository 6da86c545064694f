//! Flags that choose a language model (a local GGUF/safetensors model through candle, or an
//! OpenAI-compatible server) and the LLM policy's settings, shared by `eval`, `collect`,
//! `demos` and `loop`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::lm::LanguageModel;
use crate::policy::critic::CriticScheme;
use crate::policy::llm::LlmConfig;
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
}

/// The default local model file.
pub fn default_model_path() -> PathBuf {
    PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

impl LmArgs {
    /// The policy settings.
    pub fn llm_config(&self, seed: u64) -> LlmConfig {
        LlmConfig {
            mode: self.prompt_mode,
            temperature: self.temperature,
            seed,
            ..LlmConfig::default()
        }
    }
}

impl LmArgs {
    /// Loads the chosen model: an OpenAI-compatible server, or the local file (default: the
    /// fetched SmolLM2).
    pub fn load(&self) -> Result<Arc<dyn LanguageModel>> {
        if let Some(url) = &self.openai_url {
            let client = crate::lm::openai::OpenAiClient::new(crate::lm::openai::OpenAiConfig {
                base_url: url.clone(),
                model: self.openai_model.clone(),
                api_key: std::env::var("OPENAI_API_KEY").ok(),
                timeout: Duration::from_secs(120),
                ..Default::default()
            })
            .with_context(|| format!("connecting to {url}"))?;
            return Ok(Arc::new(client));
        }
        let path = self.model.clone().unwrap_or_else(default_model_path);
        if !path.exists() {
            bail!(
                "no model at {} (run `agentq model fetch smollm2`, or pass --model PATH or --openai-url URL)",
                path.display()
            );
        }
        if !self.adapter.is_empty() {
            return Ok(Arc::new(super::train::load_with_adapters(
                &path,
                &self.adapter,
            )?));
        }
        let m = crate::lm::local::LocalModel::load(&path, Default::default())
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Arc::new(m))
    }
}
