//! Choosing and loading a language model: a local GGUF/safetensors model through candle
//! (optionally with trained checkpoints merged in, in order) or an OpenAI-compatible server,
//! and the LLM policy's prompting settings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentq_agent::policy::critic::CriticScheme;
use agentq_agent::policy::llm::LlmConfig;
use agentq_agent::policy::prompt::PromptMode;
use agentq_lm::cpu::CpuOptions;
use agentq_lm::llama::Llama;
pub use agentq_lm::local::Precision;
use agentq_lm::local::{Engine, LoadOptions, LocalModel};
use agentq_lm::LanguageModel;
use agentq_train::trainer::{self, TrainState};

use crate::error::{bail, Context as _, Result};

/// The default local model file (what `agentq model fetch smollm2` writes).
pub fn default_model_path() -> PathBuf {
    PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The local model file to use (`None`: the default), which must exist.
pub fn model_path(p: Option<&Path>) -> Result<PathBuf> {
    let p = p.map(Path::to_path_buf).unwrap_or_else(default_model_path);
    if !p.exists() {
        bail!(
            "no model at {} (run `agentq model fetch smollm2` or pass --model)",
            p.display()
        );
    }
    Ok(p)
}

/// Which model and how to prompt it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// Local model: a GGUF file or a Hugging Face safetensors directory (`None`: the
    /// default SmolLM2 file).
    pub model: Option<PathBuf>,
    /// Trained checkpoints applied to the local model, in order.
    pub adapters: Vec<PathBuf>,
    /// OpenAI-compatible server base URL instead of a local model.
    pub openai_url: Option<String>,
    /// Model name on the OpenAI-compatible server.
    pub openai_model: String,
    /// Bearer token for the server (the CLI reads it from `OPENAI_API_KEY`).
    pub api_key: Option<String>,
    /// Prompting mode of the LLM policy.
    pub prompt_mode: PromptMode,
    /// Sampling temperature for candidates beyond the first.
    pub temperature: f64,
    /// Critic ranking scheme.
    pub critic_scheme: CriticScheme,
    /// How a local model computes on the CPU (Q8_0 by default).
    pub precision: Precision,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            model: None,
            adapters: Vec::new(),
            openai_url: None,
            openai_model: "default".into(),
            api_key: None,
            prompt_mode: PromptMode::Act,
            temperature: 0.8,
            critic_scheme: CriticScheme::Iterative,
            precision: Precision::default(),
        }
    }
}

impl ModelSettings {
    /// The LLM policy's settings.
    pub fn llm_config(&self, seed: u64) -> LlmConfig {
        LlmConfig {
            mode: self.prompt_mode,
            temperature: self.temperature,
            seed,
            ..LlmConfig::default()
        }
    }

    /// Loads the chosen model: the OpenAI-compatible server, or the local file with the
    /// adapters merged.
    pub fn load(&self) -> Result<Arc<dyn LanguageModel>> {
        if let Some(url) = &self.openai_url {
            let client = agentq_lm::openai::OpenAiClient::new(agentq_lm::openai::OpenAiConfig {
                base_url: url.clone(),
                model: self.openai_model.clone(),
                api_key: self.api_key.clone(),
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
        if !self.adapters.is_empty() {
            return Ok(Arc::new(load_with_adapters(
                &path,
                &self.adapters,
                self.precision,
            )?));
        }
        let opts = LoadOptions {
            precision: self.precision,
            ..LoadOptions::default()
        };
        let m =
            LocalModel::load(&path, opts).with_context(|| format!("loading {}", path.display()))?;
        Ok(Arc::new(m))
    }
}

/// Applies a checkpoint (`OUT/checkpoint-N` or `OUT`, whose `latest` names one) to `weights`:
/// LoRA adapters are merged (`W + α/r·BA`), full weights replace.
pub fn apply_checkpoint(
    weights: &mut HashMap<String, candle_core::Tensor>,
    ck: &Path,
) -> Result<()> {
    let dir = if ck.join("state.json").exists() {
        ck.to_path_buf()
    } else {
        trainer::latest_checkpoint(ck)?
            .with_context(|| format!("{} holds no checkpoint", ck.display()))?
    };
    let state_path = dir.join("state.json");
    let state: TrainState = serde_json::from_slice(
        &std::fs::read(&state_path).with_context(|| format!("reading {}", state_path.display()))?,
    )
    .with_context(|| format!("{}: not a training state", state_path.display()))?;
    let dev = candle_core::Device::Cpu;
    let t = trainer::load_tensors(&dir.join("weights.safetensors"), &dev)?;
    match &state.config.lora {
        Some(lc) => {
            let scale = lc.alpha / lc.rank as f64;
            let mut n = 0;
            for (name, a) in &t {
                let Some(base) = name.strip_suffix(".lora_a") else {
                    continue;
                };
                let b = t
                    .get(&format!("{base}.lora_b"))
                    .with_context(|| format!("{}: {base}.lora_b missing", dir.display()))?;
                let key = format!("{base}.weight");
                let w = weights
                    .get(&key)
                    .with_context(|| format!("the model has no weight {key}"))?;
                let layer = agentq_train::lora::LoraLayer {
                    a: candle_core::Var::from_tensor(a)?,
                    b: candle_core::Var::from_tensor(b)?,
                    scale,
                };
                let merged = layer.merge(w)?;
                weights.insert(key, merged);
                n += 1;
            }
            tracing::info!(adapters = n, checkpoint = %dir.display(), "merged LoRA adapters");
        }
        None => {
            for (name, w) in t {
                if !weights.contains_key(&name) {
                    bail!("{}: weight {name} is not in the model", dir.display());
                }
                weights.insert(name, w);
            }
        }
    }
    Ok(())
}

/// Loads the base model with checkpoints applied in order, as a served local model.
pub fn load_with_adapters(
    model: &Path,
    adapters: &[PathBuf],
    precision: Precision,
) -> Result<LocalModel> {
    let dev = candle_core::Device::Cpu;
    let mut l = agentq_lm::load::load(model, &dev)
        .with_context(|| format!("loading {}", model.display()))?;
    for ad in adapters {
        apply_checkpoint(&mut l.weights, ad)?;
    }
    let llama = Llama::new(l.config, l.weights, false, &dev)?;
    let describe = format!(
        "candle:{}+{} (f32, cpu)",
        model.file_name().unwrap_or_default().to_string_lossy(),
        adapters
            .iter()
            .map(|a| a.display().to_string())
            .collect::<Vec<_>>()
            .join("+")
    );
    let engine = Engine::new(llama, l.tokenizer, l.chat, describe);
    let engine = match precision {
        Precision::Q8_0 => engine.quantized(CpuOptions::default())?,
        Precision::F32 => engine,
    };
    Ok(LocalModel::from_engine(engine))
}
