//! The trainer: step-level (or trajectory-level) DPO and SFT over any [`TrainModel`], with
//! LoRA or full fine-tuning, AdamW with warm-up and clipping, gradient accumulation,
//! TRL-named metrics and atomic, resumable checkpoints.
//!
//! Checkpoints: `OUT/checkpoint-<step>/` holds `weights.safetensors` (LoRA adapters or full
//! weights), `optimizer.safetensors` and `state.json`; `OUT/latest` names the newest complete
//! one and is replaced atomically after it is written, so a crash never leaves a half
//! checkpoint in use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::data::{Example, Pair};
use super::dpo::{dpo_loss, dpo_metrics, sequence_logprob, sft_loss};
use super::log::{Entry, MetricsLog};
use super::lora::{Lora, LoraConfig};
use super::optim::{AdamW, AdamWConfig, Grads};
use agentq_core::rng::Rng;

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Tensor computation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Filesystem failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad input (data, checkpoint, configuration).
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Result of this module.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// A model the trainer can train.
pub trait TrainModel {
    /// Device of the weights.
    fn device(&self) -> &Device;
    /// Token ids of `text` (no special tokens added).
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
    /// For each continuation, the logits predicting its tokens (`[len, vocab]`), with the
    /// prompt computed once and shared; differentiable; LoRA adapters applied if given.
    fn continuation_logits(
        &self,
        prompt: &[u32],
        continuations: &[&[u32]],
        lora: Option<&Lora>,
    ) -> Result<Vec<Tensor>>;
    /// The adaptable projections: name → (out, in).
    fn projections(&self) -> Vec<(String, (usize, usize))>;
    /// All weights as trainable variables (full fine-tuning); empty if unsupported.
    fn full_vars(&self) -> Vec<(String, Var)>;
}

/// What to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Direct preference optimisation on pairs.
    Dpo,
    /// Supervised fine-tuning on examples.
    Sft,
}

/// Trainer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// DPO or SFT.
    pub method: Method,
    /// DPO β.
    pub beta: f64,
    /// Weight of an SFT term on the chosen response beside the DPO loss (RPO: mean NLL per
    /// token of the chosen response); 0 is plain DPO. It keeps DPO from pushing the chosen
    /// responses' own probability down along with the rejected ones.
    #[serde(default)]
    pub rpo_alpha: f64,
    /// Weight of the replayed SFT examples' loss (mean NLL per token) in a DPO run that is
    /// given examples beside its pairs: demonstrations or successful rollouts that keep the
    /// steps no pair covers (a purchase after the options are chosen) likely.
    #[serde(default = "one")]
    pub replay_weight: f64,
    /// LoRA settings; `None` trains every weight.
    pub lora: Option<LoraConfig>,
    /// Optimiser.
    pub optim: AdamWConfig,
    /// Passes over the data.
    pub epochs: usize,
    /// Examples (pairs) per optimiser step (gradient accumulation).
    pub batch_size: usize,
    /// Prompt tokens kept (the start is cut: the page's tail and the question stay).
    pub max_prompt_tokens: usize,
    /// Response tokens kept.
    pub max_response_tokens: usize,
    /// Shuffling seed.
    pub seed: u64,
    /// Checkpoint every this many optimiser steps (and at the end).
    pub checkpoint_every: u64,
}

fn one() -> f64 {
    1.0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            method: Method::Dpo,
            beta: 0.1,
            rpo_alpha: 0.0,
            replay_weight: 1.0,
            lora: Some(LoraConfig::default()),
            optim: AdamWConfig {
                lr: 5e-4,
                warmup_steps: 2,
                ..AdamWConfig::default()
            },
            epochs: 1,
            batch_size: 4,
            max_prompt_tokens: 1024,
            max_response_tokens: 64,
            seed: 0,
            checkpoint_every: 50,
        }
    }
}

/// Saved progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: u64,
    /// Training units consumed in total (across epochs): SFT examples, or for DPO groups of
    /// pairs that share a prompt.
    pub consumed: u64,
    /// The configuration (a resume must use the same).
    pub config: TrainConfig,
}

/// What a training run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Optimiser steps in total.
    pub steps: u64,
    /// Examples processed in this call.
    pub examples: u64,
    /// Seconds per example (forward + backward) in this call.
    pub seconds_per_example: f64,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// The last logged metrics.
    pub last: HashMap<String, f64>,
    /// Checkpoint directory written last.
    pub checkpoint: Option<PathBuf>,
}

/// One pair of a [`Item::Group`]: indices into the group's distinct responses, and the
/// pair's index in the input (for its reference log-probs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupPair {
    chosen: usize,
    rejected: usize,
    index: usize,
}

/// One unit of training data, tokenized.
#[derive(Debug, PartialEq)]
enum Item {
    /// The pairs that share one prompt (a search node gives up to three): the prompt is run
    /// once and each distinct response once on its keys and values.
    Group {
        prompt: Vec<u32>,
        responses: Vec<Vec<u32>>,
        pairs: Vec<GroupPair>,
    },
    /// A trajectory-level pair: each side's steps as (prompt, response), the steps both
    /// sides begin with dropped (their log-probs cancel in the DPO margin).
    Trajectory {
        chosen: Vec<Segment>,
        rejected: Vec<Segment>,
        index: usize,
    },
    Sft {
        prompt: Vec<u32>,
        response: Vec<u32>,
    },
}

/// One step of a trajectory, tokenized: (prompt, response).
type Segment = (Vec<u32>, Vec<u32>);

impl Item {
    /// Pairs or examples in this unit (what a batch counts).
    fn size(&self) -> u64 {
        match self {
            Item::Group { pairs, .. } => pairs.len() as u64,
            Item::Trajectory { .. } | Item::Sft { .. } => 1,
        }
    }
}

/// Summed response log-prob of `segments` (each prompt run on its own) and the number of
/// response tokens; 0 for no segments.
fn trajectory_logprob<M: TrainModel + ?Sized>(
    model: &M,
    segments: &[Segment],
    lora: Option<&Lora>,
) -> Result<(Tensor, usize)> {
    let mut sum = Tensor::new(0f32, model.device())?;
    let mut tokens = 0;
    for (prompt, response) in segments {
        let l = model.continuation_logits(prompt, &[response], lora)?;
        let lp = sequence_logprob(&l[0], response)?.to_dtype(candle_core::DType::F32)?;
        sum = (sum + lp)?;
        tokens += response.len();
    }
    Ok((sum, tokens))
}

/// The loss of one pair: DPO, plus `rpo_alpha` × the chosen response's mean NLL per token
/// (over its `chosen_tokens`); returns the loss and that NLL.
fn pair_loss(
    pc: &Tensor,
    pr: &Tensor,
    (rc, rr): (f64, f64),
    chosen_tokens: usize,
    config: &TrainConfig,
) -> Result<(Tensor, Tensor)> {
    let mut loss = dpo_loss(pc, pr, rc, rr, config.beta)?;
    let nll = (pc.neg()? / chosen_tokens.max(1) as f64)?;
    if config.rpo_alpha != 0.0 {
        loss = (loss + (&nll * config.rpo_alpha)?)?;
    }
    Ok((loss, nll))
}

/// A tokenized step-level pair: (index in the input, prompt, chosen, rejected).
type TokenizedPair = (usize, Vec<u32>, Vec<u32>, Vec<u32>);

/// Tokenized step-level pairs `(index, prompt, chosen, rejected)`, grouped by prompt
/// (groups in order of first appearance; within a group each distinct response once).
fn group_pairs(tokenized: Vec<TokenizedPair>) -> Vec<Item> {
    let mut by_prompt: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut items: Vec<Item> = Vec::new();
    for (index, prompt, chosen, rejected) in tokenized {
        let g = *by_prompt.entry(prompt.clone()).or_insert_with(|| {
            items.push(Item::Group {
                prompt,
                responses: Vec::new(),
                pairs: Vec::new(),
            });
            items.len() - 1
        });
        let Item::Group {
            responses, pairs, ..
        } = &mut items[g]
        else {
            unreachable!("only groups are built here")
        };
        let mut slot = |r: Vec<u32>| match responses.iter().position(|x| *x == r) {
            Some(i) => i,
            None => {
                responses.push(r);
                responses.len() - 1
            }
        };
        let (chosen, rejected) = (slot(chosen), slot(rejected));
        pairs.push(GroupPair {
            chosen,
            rejected,
            index,
        });
    }
    items
}

/// The units of one optimiser step each, over every epoch: a step takes units until it
/// holds at least `batch` pairs or examples.
fn count_steps(sizes: &[u64], orders: impl Iterator<Item = Vec<usize>>, batch: u64) -> u64 {
    let mut steps = 0;
    let mut in_batch = 0;
    for order in orders {
        for i in order {
            in_batch += sizes[i];
            if in_batch >= batch {
                steps += 1;
                in_batch = 0;
            }
        }
    }
    steps + u64::from(in_batch > 0)
}

fn clip_prompt(mut p: Vec<u32>, max: usize) -> Vec<u32> {
    if p.len() > max {
        p.drain(..p.len() - max);
    }
    p
}

fn clip_response(mut r: Vec<u32>, max: usize) -> Vec<u32> {
    r.truncate(max);
    r
}

/// The trainable variables of a run: LoRA adapters or all weights.
pub struct Trainable {
    /// Adapters, when training LoRA.
    pub lora: Option<Lora>,
    vars: Vec<(String, Var)>,
}

impl Trainable {
    /// Adapters (seeded) or the model's full weights, per `config`.
    pub fn new<M: TrainModel + ?Sized>(model: &M, config: &TrainConfig) -> Result<Trainable> {
        match &config.lora {
            Some(lc) => {
                let lora = Lora::new(&model.projections(), lc, model.device())?;
                if lora.layers.is_empty() {
                    return Err(TrainError::Invalid(format!(
                        "LoRA targets {:?} match no projection of the model",
                        lc.targets
                    )));
                }
                let vars = lora.vars();
                Ok(Trainable {
                    lora: Some(lora),
                    vars,
                })
            }
            None => {
                let vars = model.full_vars();
                if vars.is_empty() {
                    return Err(TrainError::Invalid(
                        "this model was not loaded for full fine-tuning; use LoRA".into(),
                    ));
                }
                Ok(Trainable { lora: None, vars })
            }
        }
    }

    /// The variables being trained, by name.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Parameter count.
    pub fn n_params(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The weights as named tensors.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Loads weights saved by [`Trainable::tensors`].
    pub fn load(&self, t: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (n, v) in &self.vars {
            let x = t.get(n).ok_or_else(|| {
                TrainError::Invalid(format!("{}: no tensor {n}", origin.display()))
            })?;
            if x.shape() != v.shape() {
                return Err(TrainError::Invalid(format!(
                    "{}: {n} has shape {:?}, expected {:?}",
                    origin.display(),
                    x.shape(),
                    v.shape()
                )));
            }
            v.set(x)?;
        }
        Ok(())
    }
}

/// Writes `tensors` as safetensors to `path` atomically (temporary file, synced, renamed).
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    agentq_core::fs::replace_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| io(&e.path, e.source))
}

/// Writes `bytes` to `path` atomically, errors naming the path.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    agentq_core::fs::write_atomic(path, bytes).map_err(|e| io(&e.path, e.source))
}

/// Reads a safetensors file.
pub fn load_tensors(path: &Path, dev: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    candle_core::safetensors::load(path, dev)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}

/// The checkpoint `OUT/latest` names, if any.
pub fn latest_checkpoint(out: &Path) -> Result<Option<PathBuf>> {
    let f = out.join("latest");
    match std::fs::read_to_string(&f) {
        Ok(name) => {
            let p = out.join(name.trim());
            if !p.join("state.json").exists() {
                return Err(TrainError::Invalid(format!(
                    "{} names {} which is incomplete",
                    f.display(),
                    p.display()
                )));
            }
            Ok(Some(p))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&f, e)),
    }
}

fn write_checkpoint(
    out: &Path,
    trainable: &Trainable,
    opt: &AdamW,
    state: &TrainState,
) -> Result<PathBuf> {
    let dir = out.join(format!("checkpoint-{}", state.step));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    save_tensors(&trainable.tensors(), &dir.join("weights.safetensors"))?;
    let (opt_state, _) = opt.state();
    save_tensors(&opt_state, &dir.join("optimizer.safetensors"))?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Invalid(e.to_string()))?;
    write_atomic(&dir.join("state.json"), &json)?;
    write_atomic(
        &out.join("latest"),
        format!("checkpoint-{}\n", state.step).as_bytes(),
    )?;
    // Older checkpoints are superseded.
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("checkpoint-") && e.path() != dir {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(dir)
}

/// Called after each optimiser step with (step, total steps, the logged entry).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, &Entry);

/// The value of a one-element tensor.
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Trains `model` on `pairs` (DPO) or `examples` (SFT) into `out` (checkpoints, `log.jsonl`),
/// resuming from `out/latest` when present; with `stop_after`, returns (after a checkpoint)
/// once that many optimiser steps are done. Returns the trainable variables (to keep using
/// the trained model) and a summary.
pub fn train<M: TrainModel + ?Sized>(
    model: &M,
    pairs: &[Pair],
    examples: &[Example],
    config: &TrainConfig,
    out: &Path,
    stop_after: Option<u64>,
    progress: Progress<'_>,
) -> Result<(Trainable, TrainSummary)> {
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let trainable = Trainable::new(model, config)?;
    // Tokenize once.
    let segment = |e: &Example| -> Result<Segment> {
        Ok((
            clip_prompt(model.encode(&e.prompt)?, config.max_prompt_tokens),
            clip_response(model.encode(&e.response)?, config.max_response_tokens),
        ))
    };
    let mut items: Vec<Item> = match config.method {
        Method::Dpo => {
            let empty = |i: usize| {
                TrainError::Invalid(format!(
                    "pair {i}: empty prompt or response after tokenization"
                ))
            };
            let mut tokenized = Vec::with_capacity(pairs.len());
            let mut trajectories = Vec::new();
            for (i, p) in pairs.iter().enumerate() {
                if let Some(t) = &p.trajectory {
                    let mut chosen = t.chosen.iter().map(segment).collect::<Result<Vec<_>>>()?;
                    let mut rejected =
                        t.rejected.iter().map(segment).collect::<Result<Vec<_>>>()?;
                    let same = chosen
                        .iter()
                        .zip(&rejected)
                        .take_while(|(a, b)| a == b)
                        .count();
                    chosen.drain(..same);
                    rejected.drain(..same);
                    let bad = |v: &[Segment]| v.iter().any(|(p, r)| p.is_empty() || r.is_empty());
                    if (chosen.is_empty() && rejected.is_empty()) || bad(&chosen) || bad(&rejected)
                    {
                        return Err(TrainError::Invalid(format!(
                            "pair {i}: the trajectories are identical after tokenization, or a step is empty"
                        )));
                    }
                    trajectories.push(Item::Trajectory {
                        chosen,
                        rejected,
                        index: i,
                    });
                    continue;
                }
                let t = (
                    i,
                    clip_prompt(model.encode(&p.prompt)?, config.max_prompt_tokens),
                    clip_response(model.encode(&p.chosen)?, config.max_response_tokens),
                    clip_response(model.encode(&p.rejected)?, config.max_response_tokens),
                );
                if t.1.is_empty() || t.2.is_empty() || t.3.is_empty() {
                    return Err(empty(i));
                }
                tokenized.push(t);
            }
            let mut items = group_pairs(tokenized);
            items.extend(trajectories);
            items
        }
        Method::Sft => Vec::new(),
    };
    // SFT examples: the whole data of an SFT run, replayed beside a DPO run's pairs.
    for (i, e) in examples.iter().enumerate() {
        let (prompt, response) = segment(e)?;
        if prompt.is_empty() || response.is_empty() {
            return Err(TrainError::Invalid(format!(
                "example {i}: empty prompt or response after tokenization"
            )));
        }
        items.push(Item::Sft { prompt, response });
    }
    if items.is_empty() {
        return Err(TrainError::Invalid("no training data".into()));
    }
    // Reference log-probs: logged ones, else the model before training (adapters off).
    let refs = reference_logprobs(model, pairs, &items, out)?;
    let mut opt = AdamW::new(trainable.vars.clone(), config.optim)?;
    let mut state = TrainState {
        step: 0,
        consumed: 0,
        config: config.clone(),
    };
    if let Some(ck) = latest_checkpoint(out)? {
        let s: TrainState =
            serde_json::from_slice(&std::fs::read(ck.join("state.json")).map_err(|e| io(&ck, e))?)
                .map_err(|e| {
                    TrainError::Invalid(format!("{}: {e}", ck.join("state.json").display()))
                })?;
        if s.config != *config {
            return Err(TrainError::Invalid(format!(
                "{} was written with other settings; use a new output directory",
                ck.display()
            )));
        }
        trainable.load(
            &load_tensors(&ck.join("weights.safetensors"), model.device())?,
            &ck,
        )?;
        let os = load_tensors(&ck.join("optimizer.safetensors"), model.device())?;
        opt.load_state(&os, s.step)?;
        state = s;
        tracing::info!(checkpoint = %ck.display(), step = state.step, "resumed training");
    }
    let n = items.len() as u64;
    let total_units = n * config.epochs as u64;
    let bs = config.batch_size.max(1) as u64;
    let order_of = |epoch: u64| {
        let mut o: Vec<usize> = (0..items.len()).collect();
        Rng::keyed(config.seed, &format!("epoch {epoch}")).shuffle(&mut o);
        o
    };
    let sizes: Vec<u64> = items.iter().map(Item::size).collect();
    let total_steps = count_steps(&sizes, (0..config.epochs as u64).map(order_of), bs);
    let mut log = MetricsLog::open(&out.join("log.jsonl")).map_err(|e| io(out, e))?;
    let started = Instant::now();
    let mut done_here = 0u64;
    let mut last = HashMap::new();
    let mut last_ck = None;
    let mut order = (u64::MAX, Vec::new());
    while state.consumed < total_units {
        let mut acc = Grads::default();
        let mut rows = Vec::new();
        let mut nll_chosen = Vec::new();
        let mut sft_losses = Vec::new();
        let mut in_batch = 0u64;
        while in_batch < bs && state.consumed < total_units {
            let epoch = state.consumed / n;
            if order.0 != epoch {
                order = (epoch, order_of(epoch));
            }
            let item = &items[order.1[(state.consumed % n) as usize]];
            match item {
                Item::Group {
                    prompt,
                    responses,
                    pairs,
                } => {
                    let conts: Vec<&[u32]> = responses.iter().map(Vec::as_slice).collect();
                    let logits =
                        model.continuation_logits(prompt, &conts, trainable.lora.as_ref())?;
                    let lp = logits
                        .iter()
                        .zip(&responses[..])
                        .map(|(l, r)| sequence_logprob(l, r))
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    let mut loss: Option<Tensor> = None;
                    for gp in pairs {
                        let (pc, pr) = (&lp[gp.chosen], &lp[gp.rejected]);
                        let (rc, rr) = refs[gp.index];
                        let (l, nll) =
                            pair_loss(pc, pr, (rc, rr), responses[gp.chosen].len(), config)?;
                        loss = Some(match loss {
                            Some(t) => (t + l)?,
                            None => l,
                        });
                        rows.push((scalar(pc)?, scalar(pr)?, rc, rr));
                        nll_chosen.push(scalar(&nll)?);
                    }
                    if let Some(loss) = loss {
                        opt.accumulate(&mut acc, &loss.backward()?)?;
                    }
                }
                Item::Trajectory {
                    chosen,
                    rejected,
                    index,
                } => {
                    let lora = trainable.lora.as_ref();
                    let (pc, nc) = trajectory_logprob(model, chosen, lora)?;
                    let (pr, _) = trajectory_logprob(model, rejected, lora)?;
                    let (rc, rr) = refs[*index];
                    let (loss, nll) = pair_loss(&pc, &pr, (rc, rr), nc, config)?;
                    opt.accumulate(&mut acc, &loss.backward()?)?;
                    rows.push((scalar(&pc)?, scalar(&pr)?, rc, rr));
                    nll_chosen.push(scalar(&nll)?);
                }
                Item::Sft { prompt, response } => {
                    let logits =
                        model.continuation_logits(prompt, &[response], trainable.lora.as_ref())?;
                    let loss = sft_loss(&logits[0], response)?;
                    sft_losses.push(scalar(&loss)?);
                    let loss = match config.method {
                        Method::Dpo => (loss * config.replay_weight)?,
                        Method::Sft => loss,
                    };
                    opt.accumulate(&mut acc, &loss.backward()?)?;
                }
            }
            state.consumed += 1;
            in_batch += item.size();
            done_here += item.size();
        }
        let lr = opt.current_lr();
        let grad_norm = opt.step_accumulated(&acc, 1.0 / in_batch as f64)?;
        state.step = opt.steps();
        let mut metrics: Vec<(&str, f64)> = match config.method {
            Method::Dpo => {
                let mut m = dpo_metrics(&rows, config.beta).named();
                m.push((
                    "nll/chosen",
                    nll_chosen.iter().sum::<f64>() / nll_chosen.len().max(1) as f64,
                ));
                if !sft_losses.is_empty() {
                    m.push((
                        "replay/loss",
                        sft_losses.iter().sum::<f64>() / sft_losses.len() as f64,
                    ));
                }
                m
            }
            Method::Sft => vec![(
                "loss",
                sft_losses.iter().sum::<f64>() / sft_losses.len().max(1) as f64,
            )],
        };
        metrics.push(("grad_norm", grad_norm));
        metrics.push(("learning_rate", lr));
        let entry = Entry {
            step: state.step,
            epoch: state.consumed as f64 / n as f64,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        log.write(&entry).map_err(|e| io(log.path(), e))?;
        last = entry.metrics.clone().into_iter().collect();
        progress(state.step, total_steps, &entry);
        let stop = stop_after.is_some_and(|s| state.step >= s);
        if state.step.is_multiple_of(config.checkpoint_every.max(1))
            || state.consumed >= total_units
            || stop
        {
            last_ck = Some(write_checkpoint(out, &trainable, &opt, &state)?);
        }
        if stop {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((
        Trainable {
            lora: trainable.lora.clone(),
            vars: trainable.vars.clone(),
        },
        TrainSummary {
            steps: state.step,
            examples: done_here,
            seconds_per_example: if done_here > 0 {
                secs / done_here as f64
            } else {
                0.0
            },
            trainable_params: trainable.n_params(),
            last,
            checkpoint: last_ck.or(latest_checkpoint(out)?),
        },
    ))
}

/// Reference log-probs per pair (none for SFT): the logged values, else (and always for
/// trajectory pairs) computed once with the untrained model (a group's prompt run once)
/// and cached in `out/refs.json` (so a
/// resumed run uses the same reference).
fn reference_logprobs<M: TrainModel + ?Sized>(
    model: &M,
    pairs: &[Pair],
    items: &[Item],
    out: &Path,
) -> Result<Vec<(f64, f64)>> {
    if items.iter().all(|i| matches!(i, Item::Sft { .. })) {
        return Ok(Vec::new());
    }
    let cache = out.join("refs.json");
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Ok(v) = serde_json::from_slice::<Vec<(f64, f64)>>(&bytes) {
            if v.len() == pairs.len() {
                return Ok(v);
            }
        }
    }
    let mut v = vec![(0.0, 0.0); pairs.len()];
    for it in items {
        let (prompt, responses, gp) = match it {
            Item::Group {
                prompt,
                responses,
                pairs,
            } => (prompt, responses, pairs),
            // Always computed: logged references would include the steps dropped here.
            Item::Trajectory {
                chosen,
                rejected,
                index,
            } => {
                let (c, _) = trajectory_logprob(model, chosen, None)?;
                let (r, _) = trajectory_logprob(model, rejected, None)?;
                v[*index] = (scalar(&c.detach())?, scalar(&r.detach())?);
                continue;
            }
            Item::Sft { .. } => continue,
        };
        let logged = |p: &GroupPair| match (pairs[p.index].ref_chosen, pairs[p.index].ref_rejected)
        {
            (Some(c), Some(r)) => Some((c, r)),
            _ => None,
        };
        let computed = if gp.iter().all(|p| logged(p).is_some()) {
            Vec::new()
        } else {
            let conts: Vec<&[u32]> = responses.iter().map(Vec::as_slice).collect();
            let l = model.continuation_logits(prompt, &conts, None)?;
            l.iter()
                .zip(responses)
                .map(|(l, r)| scalar(&sequence_logprob(&l.detach(), r)?))
                .collect::<Result<Vec<f64>>>()?
        };
        for p in gp {
            v[p.index] = logged(p).unwrap_or_else(|| (computed[p.chosen], computed[p.rejected]));
        }
    }
    let json = serde_json::to_vec(&v).map_err(|e| TrainError::Invalid(e.to_string()))?;
    write_atomic(&cache, &json)?;
    Ok(v)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::DType;

    /// A bigram toy model: next-token logits = (frozen projections of the embedding of the
    /// current token) · embeddingsᵀ; bytes are tokens.
    pub(crate) struct Toy {
        dev: Device,
        emb: Var,
        q: Var,
        v: Var,
    }

    impl Toy {
        pub(crate) fn new(seed: u64) -> Toy {
            let dev = Device::Cpu;
            let mut rng = Rng::new(seed);
            let mut m = |r: usize, c: usize, s: f64| {
                let v: Vec<f32> = (0..r * c).map(|_| rng.uniform(-s, s) as f32).collect();
                Var::from_vec(v, (r, c), &dev).unwrap()
            };
            let emb = m(128, 16, 0.5);
            let q = m(16, 16, 0.4);
            let v = m(16, 16, 0.4);
            Toy {
                dev: Device::Cpu,
                emb,
                q,
                v,
            }
        }

        fn proj(
            x: &Tensor,
            w: &Var,
            name: &str,
            lora: Option<&Lora>,
        ) -> candle_core::Result<Tensor> {
            let y = x.matmul(&w.as_tensor().t()?)?;
            match lora.and_then(|l| l.layers.get(name)) {
                Some(l) => y + l.delta(x)?,
                None => Ok(y),
            }
        }
    }

    impl TrainModel for Toy {
        fn device(&self) -> &Device {
            &self.dev
        }
        fn encode(&self, text: &str) -> Result<Vec<u32>> {
            Ok(text.bytes().map(|b| u32::from(b & 127)).collect())
        }
        fn continuation_logits(
            &self,
            prompt: &[u32],
            conts: &[&[u32]],
            lora: Option<&Lora>,
        ) -> Result<Vec<Tensor>> {
            conts
                .iter()
                .map(|c| {
                    let mut inp = vec![*prompt.last().unwrap()];
                    inp.extend_from_slice(&c[..c.len() - 1]);
                    let ids = Tensor::new(inp.as_slice(), &self.dev)?;
                    let h = self.emb.as_tensor().index_select(&ids, 0)?;
                    let h = Toy::proj(&h, &self.q, "blk.0.attn_q", lora)?.tanh()?;
                    let h = Toy::proj(&h, &self.v, "blk.0.attn_v", lora)?;
                    Ok(h.matmul(&self.emb.as_tensor().t()?)?)
                })
                .collect()
        }
        fn projections(&self) -> Vec<(String, (usize, usize))> {
            vec![
                ("blk.0.attn_q".into(), (16, 16)),
                ("blk.0.attn_v".into(), (16, 16)),
            ]
        }
        fn full_vars(&self) -> Vec<(String, Var)> {
            vec![
                ("token_embd".into(), self.emb.clone()),
                ("blk.0.attn_q".into(), self.q.clone()),
                ("blk.0.attn_v".into(), self.v.clone()),
            ]
        }
    }

    fn pairs() -> Vec<Pair> {
        ["red shoes", "blue hat", "green scarf"]
            .iter()
            .map(|w| Pair {
                prompt: format!("buy {w}: "),
                chosen: "click[a]".into(),
                rejected: "click[b]".into(),
                ref_chosen: None,
                ref_rejected: None,
                trajectory: None,
            })
            .collect()
    }

    fn cfg(method: Method, lora: bool) -> TrainConfig {
        TrainConfig {
            method,
            lora: lora.then(|| LoraConfig {
                rank: 4,
                alpha: 8.0,
                ..LoraConfig::default()
            }),
            optim: AdamWConfig {
                lr: 2e-2,
                warmup_steps: 1,
                ..AdamWConfig::default()
            },
            epochs: 8,
            batch_size: 3,
            checkpoint_every: 2,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn pairs_sharing_a_prompt_form_one_group_with_each_response_once() {
        let t = |i: usize, p: &[u32], c: &[u32], r: &[u32]| (i, p.to_vec(), c.to_vec(), r.to_vec());
        let items = group_pairs(vec![
            t(0, &[1, 2], &[7], &[8]),
            t(1, &[3], &[7], &[8]),
            t(2, &[1, 2], &[7], &[9]),
            t(3, &[1, 2], &[9], &[8]),
        ]);
        assert_eq!(items.len(), 2);
        let Item::Group {
            prompt,
            responses,
            pairs,
        } = &items[0]
        else {
            panic!("a group")
        };
        assert_eq!(prompt, &vec![1, 2]);
        assert_eq!(responses, &vec![vec![7], vec![8], vec![9]]);
        let got: Vec<(usize, usize, usize)> = pairs
            .iter()
            .map(|p| (p.chosen, p.rejected, p.index))
            .collect();
        assert_eq!(got, vec![(0, 1, 0), (0, 2, 2), (2, 1, 3)]);
        assert_eq!(items[0].size(), 3);
        assert_eq!(items[1].size(), 1);
    }

    #[test]
    fn grouped_pairs_train_with_the_step_count_announced_and_their_own_references() {
        // Prompts shared by 3, 1 and 2 pairs: batches of 2 pairs take whole groups.
        let mut ps = Vec::new();
        for (w, n) in [("red shoes", 3), ("blue hat", 1), ("green scarf", 2)] {
            for k in 0..n {
                ps.push(Pair {
                    prompt: format!("buy {w}: "),
                    chosen: "click[a]".into(),
                    rejected: format!("click[b{k}]"),
                    ref_chosen: None,
                    ref_rejected: None,
                    trajectory: None,
                });
            }
        }
        let model = Toy::new(3);
        let c = TrainConfig {
            batch_size: 2,
            epochs: 2,
            ..cfg(Method::Dpo, true)
        };
        let d = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let (_, sum) = train(&model, &ps, &[], &c, d.path(), None, &mut |s, total, _| {
            seen.push((s, total))
        })
        .unwrap();
        let total = seen[0].1;
        assert!(seen.iter().all(|&(_, t)| t == total));
        assert_eq!(seen.last().unwrap().0, total);
        assert_eq!(sum.steps, total);
        assert_eq!(sum.examples, 12, "every pair twice");
        // The cached references are each pair's own, in input order.
        let refs: Vec<(f64, f64)> =
            serde_json::from_slice(&std::fs::read(d.path().join("refs.json")).unwrap()).unwrap();
        assert_eq!(refs.len(), ps.len());
        for (p, (rc, rr)) in ps.iter().zip(&refs) {
            let pr = model.encode(&p.prompt).unwrap();
            let (ct, rt) = (
                model.encode(&p.chosen).unwrap(),
                model.encode(&p.rejected).unwrap(),
            );
            let l = model.continuation_logits(&pr, &[&ct, &rt], None).unwrap();
            let want_c = scalar(&sequence_logprob(&l[0], &ct).unwrap()).unwrap();
            let want_r = scalar(&sequence_logprob(&l[1], &rt).unwrap()).unwrap();
            assert!((rc - want_c).abs() < 1e-6 && (rr - want_r).abs() < 1e-6);
        }
    }

    #[test]
    fn trajectory_pairs_learn_step_by_step_and_their_shared_steps_cancel() {
        use crate::data::TrajectorySteps;
        let ex = |p: &str, r: &str| Example {
            prompt: p.into(),
            response: r.into(),
        };
        let traj = |w: &str| {
            let first = ex(&format!("buy {w}: "), "search[x]");
            Pair {
                prompt: format!("buy {w}: "),
                chosen: "search[x]\nclick[a]".into(),
                rejected: "search[x]\nclick[b]".into(),
                ref_chosen: Some(-1.0),
                ref_rejected: Some(-1.0),
                trajectory: Some(Box::new(TrajectorySteps {
                    chosen: vec![first.clone(), ex(&format!("{w} results: "), "click[a]")],
                    rejected: vec![first, ex(&format!("{w} results: "), "click[b]")],
                })),
            }
        };
        let ps: Vec<Pair> = ["red shoes", "blue hat"].iter().map(|w| traj(w)).collect();
        let model = Toy::new(2);
        let d = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        train(
            &model,
            &ps,
            &[],
            &cfg(Method::Dpo, true),
            d.path(),
            None,
            &mut |_, _, e| entries.push(e.metrics.clone()),
        )
        .unwrap();
        // References are the untrained model's log-probs of the differing steps only (the
        // shared first step is dropped; the logged -1.0 would include it).
        let refs: Vec<(f64, f64)> =
            serde_json::from_slice(&std::fs::read(d.path().join("refs.json")).unwrap()).unwrap();
        for ((rc, rr), w) in refs.iter().zip(["red shoes", "blue hat"]) {
            let p = model.encode(&format!("{w} results: ")).unwrap();
            let (a, b) = (
                model.encode("click[a]").unwrap(),
                model.encode("click[b]").unwrap(),
            );
            let l = model.continuation_logits(&p, &[&a, &b], None).unwrap();
            assert!((rc - scalar(&sequence_logprob(&l[0], &a).unwrap()).unwrap()).abs() < 1e-5);
            assert!((rr - scalar(&sequence_logprob(&l[1], &b).unwrap()).unwrap()).abs() < 1e-5);
        }
        let (first, last) = (&entries[0], entries.last().unwrap());
        assert!(
            (first["loss"] - std::f64::consts::LN_2).abs() < 1e-4,
            "{first:?}"
        );
        assert!(
            last["rewards/margins"] > first["rewards/margins"] + 0.05,
            "{last:?}"
        );
        // Identical trajectories are refused.
        let mut same = traj("red shoes");
        let t = same.trajectory.as_mut().unwrap();
        t.rejected = t.chosen.clone();
        let d = tempfile::tempdir().unwrap();
        let e = train(
            &model,
            &[same],
            &[],
            &cfg(Method::Dpo, true),
            d.path(),
            None,
            &mut |_, _, _| {},
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("pair 0"), "{e}");
    }

    #[test]
    fn replayed_examples_train_beside_the_pairs_with_their_weight() {
        // The replayed example is a step no pair covers; its weight decides how far its
        // log-prob moves, and the pairs still train.
        let replay = vec![Example {
            prompt: "options chosen: ".into(),
            response: "click[buy now]".into(),
        }];
        let probe = |t: &Trainable| {
            let m = Toy::new(1);
            let p = m.encode(&replay[0].prompt).unwrap();
            let r = m.encode(&replay[0].response).unwrap();
            let l = m.continuation_logits(&p, &[&r], t.lora.as_ref()).unwrap();
            scalar(&sequence_logprob(&l[0], &r).unwrap()).unwrap()
        };
        let run = |examples: &[Example], replay_weight: f64| {
            let d = tempfile::tempdir().unwrap();
            let (mut replay_logged, mut accuracy) = (false, 0.0);
            let c = TrainConfig {
                replay_weight,
                ..cfg(Method::Dpo, true)
            };
            let (t, s) = train(
                &Toy::new(1),
                &pairs(),
                examples,
                &c,
                d.path(),
                None,
                &mut |_, _, e| {
                    replay_logged |= e.metrics.contains_key("replay/loss");
                    accuracy = e.metrics["rewards/accuracies"];
                },
            )
            .unwrap();
            (probe(&t), replay_logged, accuracy, s.examples)
        };
        let (plain, plain_logged, _, plain_n) = run(&[], 1.0);
        let (replayed, logged, accuracy, n) = run(&replay, 1.0);
        let (unweighted, ..) = run(&replay, 0.0);
        assert!(
            replayed > plain + 0.5,
            "replayed {replayed} vs plain {plain}"
        );
        assert!(
            replayed > unweighted + 0.5,
            "weight 0: {unweighted} vs 1: {replayed}"
        );
        assert!(logged && !plain_logged);
        assert_eq!(accuracy, 1.0);
        // Eight epochs of three pairs, and of one example more.
        assert_eq!((plain_n, n), (24, 32));
    }

    #[test]
    fn the_rpo_term_keeps_the_chosen_response_likely() {
        let run = |rpo_alpha: f64| {
            let d = tempfile::tempdir().unwrap();
            let mut last = std::collections::BTreeMap::new();
            let c = TrainConfig {
                rpo_alpha,
                ..cfg(Method::Dpo, true)
            };
            train(
                &Toy::new(1),
                &pairs(),
                &[],
                &c,
                d.path(),
                None,
                &mut |_, _, e| last = e.metrics.clone(),
            )
            .unwrap();
            last
        };
        let (plain, rpo) = (run(0.0), run(1.0));
        assert!(
            rpo["logps/chosen"] > plain["logps/chosen"] + 0.1,
            "plain {plain:?} vs rpo {rpo:?}"
        );
        assert!(rpo["nll/chosen"] < plain["nll/chosen"]);
        assert_eq!(rpo["rewards/accuracies"], 1.0);
    }

    #[test]
    fn dpo_raises_margins_and_accuracies() {
        for lora in [true, false] {
            let model = Toy::new(1);
            let d = tempfile::tempdir().unwrap();
            let mut entries = Vec::new();
            let (_, sum) = train(
                &model,
                &pairs(),
                &[],
                &cfg(Method::Dpo, lora),
                d.path(),
                None,
                &mut |_, _, e| entries.push(e.clone()),
            )
            .unwrap();
            let first = &entries[0].metrics;
            let last = &entries.last().unwrap().metrics;
            assert!(
                (first["loss"] - std::f64::consts::LN_2).abs() < 1e-4,
                "first loss {first:?}"
            );
            assert!(
                last["rewards/margins"] > first["rewards/margins"] + 0.05,
                "lora {lora}: {first:?} → {last:?}"
            );
            assert_eq!(last["rewards/accuracies"], 1.0, "{last:?}");
            assert!(last["loss"] < first["loss"]);
            assert!(last["logps/chosen"] > first["logps/chosen"]);
            assert_eq!(sum.steps, 8);
            assert!(sum.checkpoint.unwrap().join("weights.safetensors").exists());
            let logged = super::super::log::read(&d.path().join("log.jsonl")).unwrap();
            assert_eq!(logged.len(), 8);
            assert!(logged[0].metrics.contains_key("grad_norm"));
        }
    }

    #[test]
    fn sft_lowers_loss() {
        let model = Toy::new(2);
        let ex: Vec<Example> = pairs()
            .into_iter()
            .map(|p| Example {
                prompt: p.prompt,
                response: p.chosen,
            })
            .collect();
        let d = tempfile::tempdir().unwrap();
        let mut losses = Vec::new();
        train(
            &model,
            &[],
            &ex,
            &cfg(Method::Sft, true),
            d.path(),
            None,
            &mut |_, _, e| losses.push(e.metrics["loss"]),
        )
        .unwrap();
        assert!(losses.last().unwrap() < &(losses[0] * 0.9), "{losses:?}");
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    }

    fn logits_with(model: &Toy, t: &Trainable) -> Vec<f32> {
        let l = model
            .continuation_logits(&[1, 2], &[&[3, 4, 5]], t.lora.as_ref())
            .unwrap();
        l[0].flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn checkpoints_reload_identically_and_resume_exactly() {
        let c = cfg(Method::Dpo, true);
        // Straight through.
        let m1 = Toy::new(3);
        let d1 = tempfile::tempdir().unwrap();
        let (t1, _) = train(&m1, &pairs(), &[], &c, d1.path(), None, &mut |_, _, _| {}).unwrap();
        // Stopped after 3 steps, then resumed in a fresh process (fresh model and adapters).
        let d2 = tempfile::tempdir().unwrap();
        let m2 = Toy::new(3);
        train(
            &m2,
            &pairs(),
            &[],
            &c,
            d2.path(),
            Some(3),
            &mut |_, _, _| {},
        )
        .unwrap();
        let m3 = Toy::new(3);
        let (t3, s3) = train(&m3, &pairs(), &[], &c, d2.path(), None, &mut |_, _, _| {}).unwrap();
        assert_eq!(s3.examples, 24 - 9);
        assert_eq!(
            logits_with(&m1, &t1),
            logits_with(&m3, &t3),
            "resume is exact"
        );
        // Save → load → identical logits.
        let ck = latest_checkpoint(d1.path()).unwrap().unwrap();
        let fresh = Trainable::new(&m1, &c).unwrap();
        assert_ne!(logits_with(&m1, &fresh), logits_with(&m1, &t1));
        fresh
            .load(
                &load_tensors(&ck.join("weights.safetensors"), &Device::Cpu).unwrap(),
                &ck,
            )
            .unwrap();
        assert_eq!(logits_with(&m1, &fresh), logits_with(&m1, &t1));
        // Other settings cannot resume this directory.
        let mut other = c.clone();
        other.beta = 0.5;
        let e = train(
            &m1,
            &pairs(),
            &[],
            &other,
            d1.path(),
            None,
            &mut |_, _, _| {},
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("other settings"), "{e}");
        let _ = DType::F32;
    }
}
