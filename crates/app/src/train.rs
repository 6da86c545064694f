//! Training the local model: DPO on preference pairs or SFT on demonstrations (LoRA or every
//! weight, resumed from the output directory's latest checkpoint), and pairs exported in
//! TRL's standard form.

use std::path::{Path, PathBuf};

use agentq_lm::llama::Llama;
use agentq_lm::ChatMessage;
use agentq_train::data::{self, PairRecord};
use agentq_train::llama::LlamaTrainModel;
use agentq_train::lora::LoraConfig;
use agentq_train::optim::AdamWConfig;
use agentq_train::trainer::{self, Method, TrainConfig, TrainSummary};

use crate::error::{Context as _, Error, Result};
use crate::models::{apply_checkpoint, model_path};
use crate::progress::{Progress, Stage};

/// A training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// DPO or SFT.
    pub method: Method,
    /// Training data (JSONL: pairs for DPO, demonstrations for SFT).
    pub data: PathBuf,
    /// Output directory (checkpoints, log.jsonl); resumed when it holds a checkpoint.
    pub out: PathBuf,
    /// Base model (`None`: the default SmolLM2 file).
    pub model: Option<PathBuf>,
    /// Trained checkpoints merged into the base model first, in order.
    pub adapters: Vec<PathBuf>,
    /// Train every weight instead of LoRA adapters.
    pub full: bool,
    /// LoRA rank.
    pub lora_rank: usize,
    /// LoRA alpha (updates are scaled by alpha/rank).
    pub lora_alpha: f64,
    /// LoRA targets (q, k, v, o, gate, up, down).
    pub lora_targets: Vec<String>,
    /// DPO β.
    pub beta: f64,
    /// Weight of the SFT term on chosen responses beside DPO (RPO); 0: plain DPO.
    pub rpo_alpha: f64,
    /// SFT examples (demonstrations, successful rollouts: the SFT data format) trained
    /// beside a DPO run's pairs, each weighted by `replay_weight`.
    pub replay: Option<PathBuf>,
    /// Weight of each replayed example's loss (mean NLL per token).
    pub replay_weight: f64,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Gradient-norm clip (0: none).
    pub max_grad_norm: f64,
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per optimiser step (gradient accumulation).
    pub batch_size: usize,
    /// Prompt tokens kept (the start is cut).
    pub max_prompt_tokens: usize,
    /// Response tokens kept.
    pub max_response_tokens: usize,
    /// Shuffling and LoRA-initialisation seed.
    pub seed: u64,
    /// Stop (with a checkpoint) after this many optimiser steps.
    pub max_steps: Option<u64>,
    /// Checkpoint every N optimiser steps.
    pub checkpoint_every: u64,
}

impl TrainSettings {
    /// A run of `method` on `data` into `out` with every other setting at its default.
    pub fn new(method: Method, data: PathBuf, out: PathBuf) -> TrainSettings {
        TrainSettings {
            method,
            data,
            out,
            model: None,
            adapters: Vec::new(),
            full: false,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_targets: vec!["q".into(), "v".into()],
            beta: 0.1,
            rpo_alpha: 0.0,
            replay: None,
            replay_weight: 1.0,
            lr: 5e-4,
            warmup: 2,
            max_grad_norm: 1.0,
            epochs: 1,
            batch_size: 4,
            max_prompt_tokens: 1024,
            max_response_tokens: 64,
            seed: 0,
            max_steps: None,
            checkpoint_every: 50,
        }
    }
}

/// `q,v` → the LoRA target names.
pub fn lora_targets(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Trains; the progress counts optimiser steps and shows the loss (and DPO's margin and
/// accuracy).
pub fn train(a: &TrainSettings, progress: &dyn Progress) -> Result<TrainSummary> {
    let method = a.method;
    if method == Method::Sft && a.replay.is_some() {
        return Err(Error::Msg(
            "--replay adds examples beside a DPO run's pairs; an SFT run trains on its --data alone"
                .into(),
        ));
    }
    let path = model_path(a.model.as_deref())?;
    let dev = candle_core::Device::Cpu;
    let mut l = agentq_lm::load::load(&path, &dev)
        .with_context(|| format!("loading {}", path.display()))?;
    for ad in &a.adapters {
        apply_checkpoint(&mut l.weights, ad)?;
    }
    let model = Llama::new(l.config, l.weights, a.full, &dev)?;
    let chat = l.chat.clone();
    let template = move |m: &[ChatMessage], gen: bool| -> Result<String, String> {
        chat.render(m, gen).map_err(|e| e.to_string())
    };
    let (pairs, examples) = match method {
        Method::Dpo => (
            data::read_pairs(&a.data, &template)?,
            match &a.replay {
                Some(r) => data::read_sft(r, &template)?,
                None => Vec::new(),
            },
        ),
        Method::Sft => (Vec::new(), data::read_sft(&a.data, &template)?),
    };
    let cfg = TrainConfig {
        method,
        beta: a.beta,
        rpo_alpha: a.rpo_alpha,
        replay_weight: a.replay_weight,
        lora: (!a.full).then(|| LoraConfig {
            rank: a.lora_rank,
            alpha: a.lora_alpha,
            targets: a.lora_targets.clone(),
            seed: a.seed,
        }),
        optim: AdamWConfig {
            lr: a.lr,
            warmup_steps: a.warmup,
            max_grad_norm: a.max_grad_norm,
            ..AdamWConfig::default()
        },
        epochs: a.epochs,
        batch_size: a.batch_size,
        max_prompt_tokens: a.max_prompt_tokens,
        max_response_tokens: a.max_response_tokens,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
    };
    let n = pairs.len() + examples.len();
    progress.start(
        Stage::TrainSteps,
        ((n * a.epochs) as u64).div_ceil(a.batch_size.max(1) as u64),
    );
    let tm = LlamaTrainModel {
        model: &model,
        tokenizer: &l.tokenizer,
        ops: agentq_lm::llama::Ops::Train,
    };
    let result = trainer::train(
        &tm,
        &pairs,
        &examples,
        &cfg,
        &a.out,
        a.max_steps,
        &mut |step, total, e| {
            progress.set(step, total);
            let m = &e.metrics;
            progress.message(&match method {
                Method::Dpo => format!(
                    "loss {:.4} · margin {:.3} · acc {:.2}",
                    m.get("loss").copied().unwrap_or(f64::NAN),
                    m.get("rewards/margins").copied().unwrap_or(f64::NAN),
                    m.get("rewards/accuracies").copied().unwrap_or(f64::NAN)
                ),
                Method::Sft => format!("loss {:.4}", m.get("loss").copied().unwrap_or(f64::NAN)),
            });
        },
    );
    progress.finish();
    Ok(result?.1)
}

/// Writes the pairs of `data` (any supported form) to `out` in TRL's standard form; a
/// conversational pair needs `model`'s chat template. Returns the number of pairs.
pub fn export(data: &Path, out: &Path, model: Option<&Path>) -> Result<usize> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let mut recs = Vec::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: PairRecord = serde_json::from_str(l)
            .with_context(|| format!("{}:{}: not a preference pair", data.display(), i + 1))?;
        recs.push(r);
    }
    let chat = match model {
        Some(m) => Some(agentq_lm::load::load(m, &candle_core::Device::Cpu)?.chat),
        None => None,
    };
    let template = move |m: &[ChatMessage], gen: bool| -> Result<String, String> {
        match &chat {
            Some(c) => c.render(m, gen).map_err(|e| e.to_string()),
            None => Err("conversational pairs need --model for the chat template".into()),
        }
    };
    let records = data::to_trl_standard(&recs, &template).map_err(Error::Msg)?;
    let mut buf = Vec::new();
    for r in &records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    agentq_trajectory::write_atomic(out, &buf)?;
    Ok(records.len())
}
