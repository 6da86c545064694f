//! `agentq train dpo|sft` (LoRA or full fine-tuning of the local model on pairs or
//! demonstrations) and `agentq train export` (pairs in TRL's standard form), both run by
//! [`agentq_app::train`]; and `agentq bench dpo` (the time of one DPO update).

use std::path::PathBuf;

use agentq_app::models::model_path;
use agentq_app::train::{lora_targets, TrainSettings};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::progress::Bars;
use crate::lm::llama::Llama;
use crate::train::llama::LlamaTrainModel;
use crate::train::lora::LoraConfig;
use crate::train::optim::AdamWConfig;
use crate::train::trainer::{Method, TrainConfig};

/// `agentq train …`
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Step- or trajectory-level DPO on preference pairs (agentq's or TRL's JSONL).
    Dpo(TrainArgs),
    /// Supervised fine-tuning on demonstrations (`agentq demos` output or TRL
    /// prompt/completion JSONL).
    Sft(TrainArgs),
    /// Write pairs in TRL's standard form (chat template applied with the model's).
    Export(ExportArgs),
}

/// Arguments of `agentq train dpo|sft`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data (JSONL).
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory (checkpoints, log.jsonl); resumed when it holds a checkpoint.
    #[arg(long)]
    pub out: PathBuf,
    /// Base model (GGUF file or HF directory; default: the fetched SmolLM2).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Start from trained checkpoints applied to the base model (merged, in order).
    #[arg(long)]
    pub adapter: Vec<PathBuf>,
    /// Train every weight instead of LoRA adapters.
    #[arg(long)]
    pub full: bool,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    /// LoRA alpha (updates are scaled by alpha/rank).
    #[arg(long, default_value_t = 16.0)]
    pub lora_alpha: f64,
    /// LoRA targets (comma-separated: q,k,v,o,gate,up,down).
    #[arg(long, default_value = "q,v")]
    pub lora_targets: String,
    /// DPO β.
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,
    /// Weight of an SFT term (mean NLL per token) on the chosen responses beside the DPO
    /// loss (RPO); 0 is plain DPO. Keeps the chosen actions likely while the rejected ones
    /// are pushed down.
    #[arg(long, default_value_t = 0.0)]
    pub rpo_alpha: f64,
    /// DPO only: SFT examples (the `train sft` data format: demonstrations, or the
    /// successful rollouts of a collection) trained beside the pairs, so the steps no pair
    /// covers stay likely.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Weight of each replayed example's loss (mean NLL per token) against a pair's.
    #[arg(long, default_value_t = 1.0)]
    pub replay_weight: f64,
    /// Peak learning rate.
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Examples per optimiser step (gradient accumulation).
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Prompt tokens kept (the start is cut).
    #[arg(long, default_value_t = 1024)]
    pub max_prompt_tokens: usize,
    /// Response tokens kept.
    #[arg(long, default_value_t = 64)]
    pub max_response_tokens: usize,
    /// Shuffling and LoRA-initialisation seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop (with a checkpoint) after this many optimiser steps; rerun to continue.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Checkpoint every N optimiser steps.
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq train export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Pairs (any supported form).
    #[arg(long)]
    pub data: PathBuf,
    /// Output JSONL.
    #[arg(long)]
    pub out: PathBuf,
    /// Model whose chat template renders conversational pairs.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl TrainArgs {
    /// The typed settings of a `method` run.
    pub fn settings(&self, method: Method) -> TrainSettings {
        TrainSettings {
            method,
            data: self.data.clone(),
            out: self.out.clone(),
            model: self.model.clone(),
            adapters: self.adapter.clone(),
            full: self.full,
            lora_rank: self.lora_rank,
            lora_alpha: self.lora_alpha,
            lora_targets: lora_targets(&self.lora_targets),
            beta: self.beta,
            rpo_alpha: self.rpo_alpha,
            replay: self.replay.clone(),
            replay_weight: self.replay_weight,
            lr: self.lr,
            warmup: self.warmup,
            max_grad_norm: self.max_grad_norm,
            epochs: self.epochs,
            batch_size: self.batch_size,
            max_prompt_tokens: self.max_prompt_tokens,
            max_response_tokens: self.max_response_tokens,
            seed: self.seed,
            max_steps: self.max_steps,
            checkpoint_every: self.checkpoint_every,
        }
    }
}

/// `agentq train dpo|sft|export`.
pub fn train_cmd(c: TrainCommand) -> Result<()> {
    match c {
        TrainCommand::Dpo(a) => run(a, Method::Dpo),
        TrainCommand::Sft(a) => run(a, Method::Sft),
        TrainCommand::Export(a) => export(a),
    }
}

fn run(a: TrainArgs, method: Method) -> Result<()> {
    let summary = agentq_app::train::train(&a.settings(method), &Bars::default())?;
    if a.json {
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut o, &summary)?;
        writeln!(o)?;
    }
    eprintln!(
        "{} steps · {} examples · {:.2} s per example · {} trainable parameters · checkpoint {}",
        summary.steps,
        summary.examples,
        summary.seconds_per_example,
        summary.trainable_params,
        summary
            .checkpoint
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    let n = agentq_app::train::export(&a.data, &a.out, a.model.as_deref())?;
    eprintln!("wrote {n} pairs to {}", a.out.display());
    Ok(())
}

/// Arguments of `agentq bench dpo`.
#[derive(Debug, Args)]
pub struct BenchDpoArgs {
    /// Model (GGUF file or HF directory; default: the fetched SmolLM2).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Tokens in the longer sequence (prompt + chosen response).
    #[arg(long, default_value_t = 512)]
    pub tokens: usize,
    /// DPO updates to time (the first one is also reported apart: it warms caches).
    #[arg(long, default_value_t = 4)]
    pub steps: usize,
    /// Train every weight instead of LoRA adapters.
    #[arg(long)]
    pub full: bool,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    /// LoRA targets (comma-separated: q,k,v,o,gate,up,down).
    #[arg(long, default_value = "q,v")]
    pub lora_targets: String,
    /// Use candle's composite ops instead of the training ops (for comparison).
    #[arg(long)]
    pub composite: bool,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Peak resident memory of this process so far, MiB (`VmHWM`; Linux only).
pub(super) fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// A memory figure of `/proc/self/status`, MiB.
fn proc_status_mib(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak counter behind [`peak_rss_mib`] (Linux ≥ 4.0; ignored elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `agentq bench dpo`.
pub fn bench_dpo(a: BenchDpoArgs) -> Result<()> {
    use std::io::Write as _;
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let path = model_path(a.model.as_deref())?;
    let dev = candle_core::Device::Cpu;
    let t = std::time::Instant::now();
    let l = crate::lm::load::load(&path, &dev)
        .with_context(|| format!("loading {}", path.display()))?;
    let chosen_text = "click[Wireless mouse 3]<|im_end|>";
    let rejected_text = "click[< Prev]<|im_end|>";
    let chosen = l.tokenizer.encode(chosen_text)?;
    let rejected = l.tokenizer.encode(rejected_text)?;
    let resp = chosen.len().max(rejected.len());
    if a.tokens <= resp + 1 {
        bail!("--tokens must exceed the response length ({resp})");
    }
    let n_prompt = a.tokens - resp;
    let text = super::lm::synthetic_page_prompt(&l.chat, &l.tokenizer, n_prompt)?;
    let mut prompt = l.tokenizer.encode(&text)?;
    prompt.drain(..prompt.len().saturating_sub(n_prompt));
    let model = Llama::new(l.config, l.weights, a.full, &dev)?;
    let load_s = t.elapsed().as_secs_f64();
    let cfg = TrainConfig {
        method: Method::Dpo,
        lora: (!a.full).then(|| LoraConfig {
            rank: a.lora_rank,
            alpha: 2.0 * a.lora_rank as f64,
            targets: lora_targets(&a.lora_targets),
            seed: 0,
        }),
        optim: AdamWConfig {
            lr: if a.full { 1e-5 } else { 1e-3 },
            warmup_steps: 0,
            ..AdamWConfig::default()
        },
        batch_size: 1,
        ..TrainConfig::default()
    };
    let tm = LlamaTrainModel {
        model: &model,
        tokenizer: &l.tokenizer,
        ops: if a.composite {
            crate::lm::llama::Ops::Differentiable
        } else {
            crate::lm::llama::Ops::Train
        },
    };
    let pb = indicatif::ProgressBar::new(a.steps as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "dpo [{bar:30}] {pos}/{len} steps {msg} ({elapsed})",
        )
        .expect("invariant: static template")
        .progress_chars("=> "),
    );
    let baseline_mib = proc_status_mib("VmRSS:");
    reset_peak_rss();
    let steps = crate::train::bench::dpo_steps(
        &tm,
        &prompt,
        &chosen,
        &rejected,
        &cfg,
        a.steps,
        |_, st| {
            pb.inc(1);
            pb.set_message(format!("{:.1} s, loss {:.4}", st.total_s(), st.loss));
        },
    )?;
    pb.finish_and_clear();
    let peak = peak_rss_mib();
    let rest: Vec<f64> = steps.iter().skip(1).map(|s| s.total_s()).collect();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let med = median(&rest).unwrap_or(steps[0].total_s());
    let ops = if a.composite {
        "composite"
    } else {
        "training ops"
    };
    let mode = if a.full {
        "full".to_string()
    } else {
        format!("LoRA r={} on {}", a.lora_rank, a.lora_targets)
    };
    if a.json {
        let v = serde_json::json!({
            "model": path.display().to_string(),
            "prompt_tokens": prompt.len(),
            "chosen_tokens": chosen.len(),
            "rejected_tokens": rejected.len(),
            "mode": mode,
            "ops": ops,
            "threads": candle_core::utils::get_num_threads(),
            "load_s": load_s,
            "steps": steps,
            "median_s_per_pair_after_first": med,
            "rss_after_load_mib": baseline_mib,
            "peak_rss_mib": peak,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "pair          prompt {} + chosen {} / rejected {} tokens (prompt shared)",
        prompt.len(),
        chosen.len(),
        rejected.len()
    )?;
    writeln!(
        o,
        "training      {mode}, {ops}, {} threads",
        candle_core::utils::get_num_threads()
    )?;
    for (i, s) in steps.iter().enumerate() {
        writeln!(
            o,
            "step {i:<8} {:>6.2} s = forward {:.2} + backward {:.2} + optimiser {:.2} (loss {:.4})",
            s.total_s(),
            s.forward_s,
            s.backward_s,
            s.optimizer_s,
            s.loss
        )?;
    }
    writeln!(o, "per pair      {med:.2} s (median after the first step)")?;
    if let (Some(b), Some(p)) = (baseline_mib, peak) {
        writeln!(o, "peak RSS      {p:.0} MiB (after loading: {b:.0} MiB)")?;
    }
    Ok(())
}
