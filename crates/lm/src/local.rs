//! The local backend: our llama model behind [`LanguageModel`].
//!
//! [`Engine`] does the (blocking, CPU-heavy) work: generation with temperature/top-p/stop
//! strings and scoring with the prompt computed once and every continuation run against its
//! KV cache in one batch. On the CPU it runs the quantized decoder of [`crate::cpu`]
//! (Q8_0, the default) or candle's f32 ops (`Precision::F32`, and always on CUDA); the
//! f32 [`Llama`] stays available to the trainer either way. [`LocalModel`] owns an engine on a dedicated worker thread
//! and talks to it over a channel, so async callers never block the runtime.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use candle_core::{Device, IndexOp, Tensor, D};

use super::chat::ChatTemplate;
use super::cpu::prefix::{Hit, PrefixCache, PrefixStats};
use super::cpu::{self, CpuModel, CpuOptions, Logits, Seq};
use super::llama::{token_logprobs, Config, KvCache, Llama, Ops};
use super::tokenizer::Tokenizer;
use super::{ChatMessage, GenParams, Generation, LanguageModel, LmError, Scored, TextLogprobs};
use agentq_core::rng::Rng;

/// Where to run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CPU (default).
    #[default]
    Cpu,
    /// CUDA device `n` (needs the `cuda` feature); falls back to the CPU with a warning.
    Cuda(usize),
}

impl DeviceChoice {
    /// The candle device, falling back to the CPU when CUDA is unavailable.
    pub fn device(self) -> Device {
        match self {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda(n) => match Device::new_cuda(n) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("CUDA device {n} unavailable ({e}); using the CPU");
                    Device::Cpu
                }
            },
        }
    }
}

/// How inference computes on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Q8_0 weights and activations in agentq's own kernels ([`crate::cpu`]).
    #[default]
    Q8_0,
    /// f32 weights in candle's ops (the trainer's numbers exactly; slower).
    F32,
}

impl Precision {
    /// Every precision.
    pub const ALL: [Precision; 2] = [Precision::Q8_0, Precision::F32];

    /// The name (`q8_0`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Q8_0 => "q8_0",
            Precision::F32 => "f32",
        }
    }
}

/// Options of [`LocalModel::load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Device (CPU by default).
    pub device: DeviceChoice,
    /// CPU precision (Q8_0 by default; CUDA always runs f32).
    pub precision: Precision,
    /// Kernels and threads of the quantized CPU model.
    pub cpu: CpuOptions,
    /// Bytes of the prefix cache of the quantized CPU model (`None`:
    /// [`DEFAULT_PREFIX_CACHE_BYTES`]; `Some(0)`: no cache).
    pub prefix_cache_bytes: Option<usize>,
}

/// Default bound of the prefix cache: 512 MiB, ≈ 23,000 positions of SmolLM2-135M (f16
/// keys and values: about fifty WebShop pages).
pub const DEFAULT_PREFIX_CACHE_BYTES: usize = 512 << 20;

/// Continuations scored in one batch at most.
const SCORE_BATCH: usize = 16;
/// Batch rows × continuation tokens per batch at most (bounds the logits' memory).
const SCORE_TOKENS: usize = 2048;

/// A prompt computed once: its KV cache (batch 1; on the quantized path the cached
/// segments it reused and its own positions) and the log-probs of the next token.
pub struct Prefill {
    cache: Cache,
    first: Vec<f32>,
}

impl Prefill {
    /// Number of prompt tokens.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the prompt is empty (never: prompts must have a token).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The synchronous model: weights, tokenizer, chat template.
pub struct Engine {
    /// The f32 model (`None` once [`Engine::quantized`] has dropped it).
    model: Option<Llama>,
    cfg: Config,
    device: Device,
    /// The quantized CPU model inference runs on, when there is one.
    cpu: Option<CpuModel>,
    /// Prompt prefixes computed before, shared across calls (quantized path only).
    prefixes: Mutex<PrefixCache>,
    tokenizer: Tokenizer,
    chat: ChatTemplate,
    describe: String,
}

fn sample(logprobs: &[f32], params: &GenParams, rng: &mut Rng) -> u32 {
    let argmax = || {
        logprobs
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &x)| {
                if x > best.1 {
                    (i, x)
                } else {
                    best
                }
            })
            .0 as u32
    };
    if params.temperature <= 0.0 {
        return argmax();
    }
    let t = params.temperature as f32;
    let m = logprobs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<(usize, f32)> = logprobs
        .iter()
        .enumerate()
        .map(|(i, &x)| (i, ((x - m) / t).exp()))
        .collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = p.iter().map(|x| x.1).sum();
    let top_p = if params.top_p > 0.0 && params.top_p < 1.0 {
        params.top_p as f32
    } else {
        1.0
    };
    let mut acc = 0.0;
    let mut keep = p.len();
    for (n, (_, w)) in p.iter().enumerate() {
        acc += w / total;
        if acc >= top_p {
            keep = n + 1;
            break;
        }
    }
    p.truncate(keep.max(1));
    let kept: f32 = p.iter().map(|x| x.1).sum();
    let mut r = rng.f64() as f32 * kept;
    for (i, w) in &p {
        if r < *w {
            return *i as u32;
        }
        r -= w;
    }
    p.last().map(|x| x.0 as u32).unwrap_or_else(argmax)
}

impl Engine {
    /// Builds an engine from parts.
    pub fn new(model: Llama, tokenizer: Tokenizer, chat: ChatTemplate, describe: String) -> Self {
        Engine {
            cfg: model.config().clone(),
            device: model.device().clone(),
            model: Some(model),
            cpu: None,
            prefixes: Mutex::new(PrefixCache::new(DEFAULT_PREFIX_CACHE_BYTES)),
            tokenizer,
            chat,
            describe,
        }
    }

    /// Runs inference on the quantized CPU model built from the f32 weights as they are
    /// now (adapters merged into them apply), and drops the f32 weights (inference needs
    /// them no more; [`Engine::model`] then says so). `describe` gets the precision,
    /// kernels and threads appended. A model on CUDA stays as it is.
    pub fn quantized(mut self, opts: CpuOptions) -> Result<Self, LmError> {
        if !self.device.is_cpu() {
            return Ok(self);
        }
        let q = CpuModel::new(self.f32()?, opts)?;
        let how = format!(
            "{} {}, {} threads",
            q.formats(),
            q.isa().name(),
            q.threads()
        );
        self.describe = if self.describe.contains("(f32, cpu)") {
            self.describe.replace("(f32, cpu)", &format!("({how})"))
        } else {
            format!("{} ({how})", self.describe)
        };
        self.cpu = Some(q);
        self.model = None;
        Ok(self)
    }

    /// The quantized CPU model, when inference runs on it.
    pub fn cpu_model(&self) -> Option<&CpuModel> {
        self.cpu.as_ref()
    }

    /// Bounds the prefix cache to `bytes` (0: no cache), dropping what it holds.
    pub fn with_prefix_cache(self, bytes: usize) -> Self {
        if let Ok(mut p) = self.prefixes.lock() {
            *p = PrefixCache::new(bytes);
        }
        self
    }

    /// Counters of the prefix cache (all zero on the f32 path, which has none).
    pub fn prefix_stats(&self) -> PrefixStats {
        self.prefixes.lock().map(|p| p.stats()).unwrap_or_default()
    }

    /// Empties the prefix cache (for cold measurements; the counters stay).
    pub fn clear_prefix_cache(&self) {
        if let Ok(mut p) = self.prefixes.lock() {
            p.clear();
        }
    }

    /// Starts a sequence with prompt `ids`: on the quantized path the longest cached
    /// prefix (all but the last token at most) is reused and the new positions are cached
    /// for later calls. Returns the sequence's cache and the logits after the prompt.
    fn start(&self, ids: &[u32]) -> Result<(Cache, Vec<f32>), LmError> {
        if self.cpu.is_none() {
            let mut cache = Cache::Candle(KvCache::new(&self.cfg));
            let last = cache.step(self, ids)?;
            return Ok((cache, last));
        }
        let mut started = self.start_cpu(&[ids])?;
        started
            .pop()
            .ok_or_else(|| LmError::Invalid("no sequence started".into()))
    }

    /// [`Engine::start`] of several prompts on the quantized path, in one forward pass.
    fn start_cpu(&self, prompts: &[&[u32]]) -> Result<Vec<(Cache, Vec<f32>)>, LmError> {
        let q = self
            .cpu
            .as_ref()
            .ok_or_else(|| LmError::Invalid("no quantized model".into()))?;
        let hits: Vec<Hit> = prompts
            .iter()
            .map(|ids| {
                self.prefixes
                    .lock()
                    .map(|mut p| p.lookup(ids, ids.len().saturating_sub(1)))
                    .unwrap_or_default()
            })
            .collect();
        let mut owns: Vec<cpu::KvCache> = prompts
            .iter()
            .map(|_| cpu::KvCache::new(&self.cfg))
            .collect();
        let refs: Vec<Vec<&cpu::KvCache>> = hits.iter().map(Hit::refs).collect();
        let mut seqs: Vec<Seq> = owns
            .iter_mut()
            .zip(&refs)
            .zip(prompts.iter().zip(&hits))
            .map(|((own, r), (ids, hit))| Seq {
                prefix: r,
                cache: own,
                tokens: &ids[hit.len..],
                logits: Logits::Last,
            })
            .collect();
        let lasts = q.forward(&mut seqs)?;
        drop(seqs);
        drop(refs);
        if let Ok(mut p) = self.prefixes.lock() {
            for ((ids, hit), own) in prompts.iter().zip(&hits).zip(&owns) {
                p.insert(ids, hit.len, own);
            }
        }
        Ok(hits
            .into_iter()
            .zip(owns)
            .zip(lasts)
            .map(|((hit, own), last)| (Cache::Cpu { hit, own }, last))
            .collect())
    }

    /// Loads a `.gguf` file or a Hugging Face directory.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self, LmError> {
        let device = opts.device.device();
        let l = super::load::load(path, &device)?;
        let model =
            Llama::new(l.config, l.weights, false, &device).map_err(|e| LmError::BadModel {
                path: path.display().to_string(),
                msg: super::without_backtrace(e).to_string(),
            })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        let dev = if device.is_cpu() { "cpu" } else { "cuda" };
        let engine = Engine::new(
            model,
            l.tokenizer,
            l.chat,
            format!("candle:{name} (f32, {dev})"),
        );
        let engine = engine.with_prefix_cache(
            opts.prefix_cache_bytes
                .unwrap_or(DEFAULT_PREFIX_CACHE_BYTES),
        );
        match opts.precision {
            Precision::Q8_0 => engine.quantized(opts.cpu),
            Precision::F32 => Ok(engine),
        }
    }

    /// The f32 model (for the trainer and the f32 path); an error on an engine that runs
    /// the quantized model only.
    pub fn model(&self) -> Result<&Llama, LmError> {
        self.f32()
    }

    fn f32(&self) -> Result<&Llama, LmError> {
        self.model.as_ref().ok_or_else(|| {
            LmError::Invalid(
                "this engine runs the quantized model only (load with precision f32 for the f32 model)"
                    .into(),
            )
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn chat(&self) -> &ChatTemplate {
        &self.chat
    }

    /// Description for run headers.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>, LmError> {
        let ids = self.tokenizer.encode(prompt)?;
        if ids.is_empty() {
            return Err(LmError::Invalid("empty prompt".into()));
        }
        let ctx = self.cfg.max_position_embeddings;
        if ids.len() >= ctx {
            return Err(LmError::Invalid(format!(
                "prompt of {} tokens does not fit the context of {ctx}",
                ids.len()
            )));
        }
        Ok(ids)
    }

    fn row(&self, ids: &[u32]) -> Result<Tensor, LmError> {
        Ok(Tensor::new(ids, &self.device)?.unsqueeze(0)?)
    }

    /// Continues `prompt`.
    pub fn generate(&self, prompt: &str, params: &GenParams) -> Result<Generation, LmError> {
        let ids = self.encode_prompt(prompt)?;
        let (cache, last) = self.start(&ids)?;
        let mut d = Decoding::new(params, cache);
        let mut next = self.advance(&mut d, &last)?;
        while let Some(tok) = next {
            let last = d.cache.step(self, &[tok])?;
            next = self.advance(&mut d, &last)?;
        }
        self.conclude(d)
    }

    /// One decoding step: samples a token from the logits after the sequence so far and
    /// applies the stop rules. Returns the token to feed next, or `None` when the
    /// generation is over.
    fn advance(&self, d: &mut Decoding, last: &[f32]) -> Result<Option<u32>, LmError> {
        let ctx = self.cfg.max_position_embeddings;
        if d.out.len() >= d.params.max_tokens || d.cache.len() >= ctx {
            return Ok(None);
        }
        let lp = cpu::log_softmax(last);
        let tok = sample(&lp, &d.params, &mut d.rng);
        if self.tokenizer.eos_ids().contains(&tok) {
            d.finish = "stop";
            return Ok(None);
        }
        d.out.push(tok);
        d.logprobs
            .push(lp.get(tok as usize).copied().unwrap_or(f32::NEG_INFINITY));
        d.text = self.tokenizer.decode(&d.out)?;
        d.ends.push(d.text.len());
        if let Some(cut) = d
            .params
            .stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| d.text.find(s.as_str()))
            .min()
        {
            d.text.truncate(cut);
            // keep the tokens that end before the stop string starts
            let keep = d.ends.iter().take_while(|&&e| e <= cut).count();
            d.out.truncate(keep);
            d.logprobs.truncate(keep);
            d.ends.truncate(keep);
            d.finish = "stop";
            return Ok(None);
        }
        if d.out.len() >= d.params.max_tokens {
            return Ok(None);
        }
        Ok(Some(tok))
    }

    /// The generation a finished [`Decoding`] made.
    fn conclude(&self, d: Decoding) -> Result<Generation, LmError> {
        let mut tokens = Vec::with_capacity(d.out.len());
        let mut prev = 0;
        for (n, &e) in d.ends.iter().enumerate() {
            let piece = self.tokenizer.decode(&d.out[..=n])?;
            tokens.push(
                piece
                    .get(prev..e.min(piece.len()))
                    .unwrap_or("")
                    .to_string(),
            );
            prev = e;
        }
        Ok(Generation {
            text: d.text,
            tokens,
            logprobs: d.logprobs,
            finish_reason: d.finish.to_string(),
        })
    }

    /// Scores continuations: the prompt runs once, its KV cache is repeated along the batch
    /// and the continuations run as one batch (at most 16 and 2,048 tokens per batch).
    /// Each continuation is tokenized on its own (no token merges across the boundary).
    pub fn score(&self, prompt: &str, continuations: &[String]) -> Result<Vec<Scored>, LmError> {
        let prefill = self.prefill(prompt)?;
        self.score_after(&prefill, continuations)
    }

    /// Runs a prompt once (batch 1) and keeps its KV cache and next-token log-probs.
    pub fn prefill(&self, prompt: &str) -> Result<Prefill, LmError> {
        let p = self.encode_prompt(prompt)?;
        if self.cpu.is_some() {
            let (cache, last) = self.start(&p)?;
            return Ok(Prefill {
                cache,
                first: cpu::log_softmax(&last),
            });
        }
        let mut cache = KvCache::new(&self.cfg);
        let logits = self
            .f32()?
            .forward(&self.row(&p)?, Some(&mut cache), Ops::Fast)?;
        let first = candle_nn::ops::log_softmax(&logits.i((0, p.len() - 1))?, D::Minus1)?;
        Ok(Prefill {
            cache: Cache::Candle(cache),
            first: first.to_vec1()?,
        })
    }

    /// Scores continuations after a prefilled prompt (see [`Engine::score`]).
    pub fn score_after(
        &self,
        prefill: &Prefill,
        continuations: &[String],
    ) -> Result<Vec<Scored>, LmError> {
        let first = &prefill.first;
        let p_len = prefill.len();
        let conts = continuations
            .iter()
            .map(|c| self.tokenizer.encode(c))
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = self.cfg.max_position_embeddings;
        if let Some(c) = conts.iter().find(|c| p_len + c.len() > ctx) {
            return Err(LmError::Invalid(format!(
                "prompt + continuation of {} tokens exceeds the context of {ctx}",
                p_len + c.len()
            )));
        }
        let mut out: Vec<Scored> = conts
            .iter()
            .map(|c| Scored {
                logprob: 0.0,
                token_logprobs: c
                    .first()
                    .map(|&t| vec![first[t as usize]])
                    .unwrap_or_default(),
                n_tokens: c.len(),
            })
            .collect();
        let mut multi: Vec<usize> = (0..conts.len()).filter(|&i| conts[i].len() > 1).collect();
        let cache = match &prefill.cache {
            Cache::Cpu { hit, own } => {
                let q = self.cpu.as_ref().ok_or_else(|| {
                    LmError::Invalid("a quantized prefill scored on an f32 engine".into())
                })?;
                let mut chain = hit.refs();
                chain.push(own);
                self.score_cpu(q, &chain, &conts, &multi, &mut out)?;
                for s in &mut out {
                    s.logprob = s.token_logprobs.iter().sum();
                }
                return Ok(out);
            }
            Cache::Candle(c) => c,
        };
        // longest first, so that each batch pads little; batch size bounded by tokens
        multi.sort_by_key(|&i| std::cmp::Reverse(conts[i].len()));
        let mut chunks: Vec<&[usize]> = Vec::new();
        let mut rest = multi.as_slice();
        while let Some(&first) = rest.first() {
            let n = (SCORE_TOKENS / conts[first].len()).clamp(1, SCORE_BATCH);
            let (a, b) = rest.split_at(n.min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        for chunk in chunks {
            let n = chunk.len();
            let lmax = chunk.iter().map(|&i| conts[i].len()).max().unwrap_or(1) - 1;
            let mut inputs = Vec::with_capacity(n * lmax);
            let mut targets = Vec::with_capacity(n * lmax);
            for &i in chunk {
                let c = &conts[i];
                for j in 0..lmax {
                    inputs.push(c.get(j).copied().unwrap_or(c[0]));
                    targets.push(c.get(j + 1).copied().unwrap_or(0));
                }
            }
            let dev = &self.device;
            let mut kv = cache.expand(n)?;
            let lg = self.f32()?.forward(
                &Tensor::from_vec(inputs, (n, lmax), dev)?,
                Some(&mut kv),
                Ops::Fast,
            )?;
            let lp: Vec<Vec<f32>> =
                token_logprobs(&lg, &Tensor::from_vec(targets, (n, lmax), dev)?)?.to_vec2()?;
            for (k, &i) in chunk.iter().enumerate() {
                let len = conts[i].len();
                out[i].token_logprobs.extend_from_slice(&lp[k][..len - 1]);
            }
        }
        for s in &mut out {
            s.logprob = s.token_logprobs.iter().sum();
        }
        Ok(out)
    }

    /// Scores the continuations `multi` (those of two tokens or more) against the prompt's
    /// cache segments `pc`: every one is its own sequence over the shared prefix, no
    /// padding, in batches of at most [`SCORE_TOKENS`] rows.
    fn score_cpu(
        &self,
        q: &CpuModel,
        pc: &[&cpu::KvCache],
        conts: &[Vec<u32>],
        multi: &[usize],
        out: &mut [Scored],
    ) -> Result<(), LmError> {
        let v = self.cfg.vocab_size;
        let mut rest = multi;
        while !rest.is_empty() {
            let mut rows = 0;
            let n = rest
                .iter()
                .take_while(|&&i| {
                    rows += conts[i].len() - 1;
                    rows <= SCORE_TOKENS
                })
                .count()
                .max(1);
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let mut caches: Vec<cpu::KvCache> =
                chunk.iter().map(|_| cpu::KvCache::new(&self.cfg)).collect();
            let mut seqs: Vec<Seq> = caches
                .iter_mut()
                .zip(chunk)
                .map(|(c, &i)| Seq {
                    prefix: pc,
                    cache: c,
                    tokens: &conts[i][..conts[i].len() - 1],
                    logits: Logits::All,
                })
                .collect();
            let lg = q.forward(&mut seqs)?;
            for (rows, &i) in lg.iter().zip(chunk) {
                for (j, row) in rows.chunks(v).enumerate() {
                    let target = conts[i][j + 1];
                    out[i].token_logprobs.push(cpu::token_logprob(row, target));
                }
            }
        }
        Ok(())
    }

    /// Reference scoring: each prompt + continuation runs as one full sequence, no cache.
    pub fn score_naive(
        &self,
        prompt: &str,
        continuations: &[String],
    ) -> Result<Vec<Scored>, LmError> {
        let p = self.encode_prompt(prompt)?;
        continuations
            .iter()
            .map(|c| {
                let c = self.tokenizer.encode(c)?;
                if c.is_empty() {
                    return Ok(Scored {
                        logprob: 0.0,
                        token_logprobs: vec![],
                        n_tokens: 0,
                    });
                }
                let all: Vec<u32> = p.iter().chain(&c).copied().collect();
                let lp = self.sequence_logprobs(&all)?[p.len() - 1..].to_vec();
                Ok(Scored {
                    logprob: lp.iter().sum(),
                    n_tokens: c.len(),
                    token_logprobs: lp,
                })
            })
            .collect()
    }

    /// Per-token log-probs of a whole text.
    pub fn text_logprobs(&self, text: &str) -> Result<TextLogprobs, LmError> {
        let enc = self.tokenizer.encode_with_offsets(text)?;
        if enc.is_empty() {
            return Err(LmError::Invalid("empty text".into()));
        }
        let ids: Vec<u32> = enc.iter().map(|e| e.0).collect();
        let mut token_logprobs = vec![None];
        if ids.len() > 1 {
            let lp = self.sequence_logprobs(&ids)?;
            token_logprobs.extend(lp.into_iter().map(Some));
        }
        let chars: Vec<char> = text.chars().collect();
        let starts: Vec<usize> = enc.iter().map(|e| e.1).collect();
        let tokens = (0..enc.len())
            .map(|i| {
                let end = starts.get(i + 1).copied().unwrap_or(chars.len());
                chars[starts[i].min(end)..end].iter().collect()
            })
            .collect();
        Ok(TextLogprobs {
            tokens,
            text_offset: starts,
            token_logprobs,
        })
    }
}

impl Engine {
    /// The log-prob of each token of `ids` after the ones before it (`ids.len() - 1`
    /// values), as one sequence without a cache.
    fn sequence_logprobs(&self, ids: &[u32]) -> Result<Vec<f32>, LmError> {
        if let Some(q) = &self.cpu {
            let mut c = cpu::KvCache::new(&self.cfg);
            let lg = q.forward(&mut [Seq {
                prefix: &[],
                cache: &mut c,
                tokens: &ids[..ids.len() - 1],
                logits: Logits::All,
            }])?;
            let v = self.cfg.vocab_size;
            return Ok(lg[0]
                .chunks(v)
                .zip(&ids[1..])
                .map(|(row, &t)| cpu::token_logprob(row, t))
                .collect());
        }
        let lg = self.f32()?.forward(&self.row(ids)?, None, Ops::Fast)?;
        let lg = lg.narrow(1, 0, ids.len() - 1)?;
        let t = Tensor::new(&ids[1..], &self.device)?.unsqueeze(0)?;
        Ok(token_logprobs(&lg, &t)?.i(0)?.to_vec1()?)
    }
}

/// A generation in progress: its sequence's cache, sampler and output so far (stepped by
/// [`Engine::advance`], alone or batched with others by the worker).
struct Decoding {
    params: GenParams,
    rng: Rng,
    out: Vec<u32>,
    logprobs: Vec<f32>,
    /// Byte length of the decoded text after each token.
    ends: Vec<usize>,
    text: String,
    finish: &'static str,
    cache: Cache,
}

impl Decoding {
    fn new(params: &GenParams, cache: Cache) -> Decoding {
        Decoding {
            rng: Rng::new(params.seed),
            params: params.clone(),
            out: Vec::new(),
            logprobs: Vec::new(),
            ends: Vec::new(),
            text: String::new(),
            finish: "length",
            cache,
        }
    }
}

/// One sequence's KV cache (a prompt, or a sequence being decoded), on whichever path the
/// engine computes.
enum Cache {
    Candle(KvCache),
    /// Segments shared through the prefix cache, then the sequence's own positions.
    Cpu {
        hit: Hit,
        own: cpu::KvCache,
    },
}

impl Cache {
    /// Positions cached.
    fn len(&self) -> usize {
        match self {
            Cache::Candle(c) => c.len(),
            Cache::Cpu { hit, own } => hit.len + own.len(),
        }
    }

    /// Appends `ids`; the logits after the last one.
    fn step(&mut self, e: &Engine, ids: &[u32]) -> Result<Vec<f32>, LmError> {
        match self {
            Cache::Cpu { hit, own } => {
                let q = e
                    .cpu
                    .as_ref()
                    .ok_or_else(|| LmError::Invalid("no quantized model".into()))?;
                Ok(q.forward(&mut [Seq {
                    prefix: &hit.refs(),
                    cache: own,
                    tokens: ids,
                    logits: Logits::Last,
                }])?
                .remove(0))
            }
            Cache::Candle(c) => {
                let lg = e.f32()?.forward(&e.row(ids)?, Some(c), Ops::Fast)?;
                Ok(lg.i((0, ids.len() - 1))?.to_vec1()?)
            }
        }
    }
}

enum Job {
    Generate(
        String,
        GenParams,
        tokio::sync::oneshot::Sender<Result<Generation, LmError>>,
    ),
    Score(
        String,
        Vec<String>,
        tokio::sync::oneshot::Sender<Result<Vec<Scored>, LmError>>,
    ),
    Text(
        String,
        tokio::sync::oneshot::Sender<Result<TextLogprobs, LmError>>,
    ),
}

type ScoreReply = tokio::sync::oneshot::Sender<Result<Vec<Scored>, LmError>>;
type GenReply = tokio::sync::oneshot::Sender<Result<Generation, LmError>>;

/// A generation the worker is decoding: its state, the token to feed next, the reply.
type Active = (Decoding, u32, GenReply);

/// The worker's loop. On the quantized path it batches continuously: every turn it takes
/// whatever requests have arrived, starts the new generations together (one pass over all
/// their prompts), answers score and text requests, then advances every generation in
/// progress token by token, all of them in one forward pass per token — so concurrent
/// episodes share each pass over the weights instead of queueing whole requests. Rows of a
/// batch do not interact, so every answer is the one the request would get alone (tested).
fn serve(engine: &Engine, rx: &mpsc::Receiver<Job>) {
    let mut active: Vec<Active> = Vec::new();
    let mut deferred: Vec<Job> = Vec::new();
    loop {
        let mut jobs = std::mem::take(&mut deferred);
        if active.is_empty() && jobs.is_empty() {
            match rx.recv() {
                Ok(j) => jobs.push(j),
                Err(_) => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        if engine.cpu.is_none() {
            // the candle path runs each request whole
            run_jobs(engine, jobs);
            continue;
        }
        let (gens, rest) = split_generations(jobs);
        start_generations(engine, gens, &mut active);
        run_jobs(engine, rest);
        // A burst of decoding steps: a step costs a few milliseconds and a prompt pass
        // hundreds, so generations (short queries, thoughts) finish within a burst instead
        // of waiting a whole prompt pass per token. Generations arriving meanwhile join at
        // the next step; other requests wait for the end of the burst.
        for _ in 0..DECODE_BURST {
            if active.is_empty() {
                break;
            }
            step_generations(engine, &mut active);
            let (gens, rest) = split_generations(rx.try_iter().collect());
            start_generations(engine, gens, &mut active);
            deferred.extend(rest);
        }
    }
}

/// Decoding steps the worker runs before it takes other requests again.
const DECODE_BURST: usize = 32;

type GenJob = (String, GenParams, GenReply);

/// Generation requests apart from the others (each list in arrival order).
fn split_generations(jobs: Vec<Job>) -> (Vec<GenJob>, Vec<Job>) {
    let mut gens = Vec::new();
    let mut rest = Vec::new();
    for j in jobs {
        match j {
            Job::Generate(p, params, reply) => gens.push((p, params, reply)),
            other => rest.push(other),
        }
    }
    (gens, rest)
}

/// Starts generations (their prompts in one forward pass), adding those that go on to
/// `active` and answering those that end at once.
fn start_generations(engine: &Engine, gens: Vec<GenJob>, active: &mut Vec<Active>) {
    let mut ok: Vec<(Vec<u32>, GenParams, GenReply)> = Vec::new();
    for (p, params, reply) in gens {
        match engine.encode_prompt(&p) {
            Ok(ids) => ok.push((ids, params, reply)),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    if ok.is_empty() {
        return;
    }
    let prompts: Vec<&[u32]> = ok.iter().map(|g| g.0.as_slice()).collect();
    let started: Vec<Result<(Cache, Vec<f32>), LmError>> = match engine.start_cpu(&prompts) {
        Ok(v) => v.into_iter().map(Ok).collect(),
        // one at a time, so that each request gets its own error
        Err(_) => prompts.iter().map(|ids| engine.start(ids)).collect(),
    };
    for ((_, params, reply), st) in ok.into_iter().zip(started) {
        let (cache, last) = match st {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send(Err(e));
                continue;
            }
        };
        active.extend(advance_or_answer(
            engine,
            Decoding::new(&params, cache),
            &last,
            reply,
        ));
    }
}

/// Samples a generation's next token from `last`: the generation goes on (returned, with
/// the token to feed) or is answered, finished or failed.
fn advance_or_answer(
    engine: &Engine,
    mut d: Decoding,
    last: &[f32],
    reply: GenReply,
) -> Option<Active> {
    match engine.advance(&mut d, last) {
        Ok(Some(tok)) => Some((d, tok, reply)),
        Ok(None) => {
            let _ = reply.send(engine.conclude(d));
            None
        }
        Err(e) => {
            let _ = reply.send(Err(e));
            None
        }
    }
}

/// Feeds every active generation its next token in one forward pass and samples the next;
/// answers and drops the generations that end.
fn step_generations(engine: &Engine, active: &mut Vec<Active>) {
    let Some(q) = engine.cpu.as_ref() else { return };
    if active.is_empty() {
        return;
    }
    let toks: Vec<[u32; 1]> = active.iter().map(|a| [a.1]).collect();
    let mut parts: Vec<(Vec<&cpu::KvCache>, &mut cpu::KvCache)> = Vec::new();
    for (d, _, _) in active.iter_mut() {
        if let Cache::Cpu { hit, own } = &mut d.cache {
            parts.push((hit.refs(), own));
        }
    }
    let mut seqs: Vec<Seq> = parts
        .iter_mut()
        .zip(&toks)
        .map(|((r, own), t)| Seq {
            prefix: r,
            cache: own,
            tokens: t,
            logits: Logits::Last,
        })
        .collect();
    let result = q.forward(&mut seqs);
    drop(seqs);
    drop(parts);
    let logits = match result {
        Ok(l) if l.len() == active.len() => l,
        other => {
            let msg = other.err().map_or_else(
                || "a batched step lost a sequence".into(),
                |e| e.to_string(),
            );
            for (_, _, reply) in active.drain(..) {
                let _ = reply.send(Err(LmError::Invalid(msg.clone())));
            }
            return;
        }
    };
    *active = active
        .drain(..)
        .zip(logits)
        .filter_map(|((d, _, reply), last)| advance_or_answer(engine, d, &last, reply))
        .collect();
}
/// Score requests for one prompt: (continuations, reply) in arrival order.
type ScoreGroup = (String, Vec<(Vec<String>, ScoreReply)>);

fn run_jobs(engine: &Engine, jobs: Vec<Job>) {
    // score requests grouped by prompt, in arrival order of the first request of each prompt
    let mut groups: Vec<ScoreGroup> = Vec::new();
    for job in jobs {
        match job {
            Job::Generate(p, params, reply) => {
                let _ = reply.send(engine.generate(&p, &params));
            }
            Job::Text(t, reply) => {
                let _ = reply.send(engine.text_logprobs(&t));
            }
            Job::Score(p, c, reply) => match groups.iter_mut().find(|g| g.0 == p) {
                Some(g) => g.1.push((c, reply)),
                None => groups.push((p, vec![(c, reply)])),
            },
        }
    }
    for (prompt, reqs) in groups {
        if reqs.len() == 1 {
            for (c, reply) in reqs {
                let _ = reply.send(engine.score(&prompt, &c));
            }
            continue;
        }
        let all: Vec<String> = reqs.iter().flat_map(|r| r.0.iter().cloned()).collect();
        tracing::debug!(
            requests = reqs.len(),
            continuations = all.len(),
            "batched scoring"
        );
        match engine.score(&prompt, &all) {
            Ok(mut scored) => {
                for (c, reply) in reqs {
                    let rest = scored.split_off(c.len());
                    let _ = reply.send(Ok(scored));
                    scored = rest;
                }
            }
            Err(_) => {
                // report each request's own error (one bad continuation must not fail the others)
                for (c, reply) in reqs {
                    let _ = reply.send(engine.score(&prompt, &c));
                }
            }
        }
    }
}

/// A local model served by a worker thread.
pub struct LocalModel {
    tx: std::sync::Mutex<mpsc::Sender<Job>>,
    chat: ChatTemplate,
    describe: String,
    path: Option<PathBuf>,
}

impl LocalModel {
    /// Loads a `.gguf` file or a Hugging Face directory and starts the worker thread.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Self, LmError> {
        let engine = Engine::load(path, &opts)?;
        let mut m = Self::from_engine(engine);
        m.path = Some(path.to_path_buf());
        Ok(m)
    }

    /// Starts a worker thread owning `engine`.
    pub fn from_engine(engine: Engine) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let chat = engine.chat().clone();
        let describe = engine.describe().to_string();
        std::thread::Builder::new()
            .name("agentq-lm".into())
            .spawn(move || serve(&engine, &rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("could not start the model worker: {e}"));
        LocalModel {
            tx: std::sync::Mutex::new(tx),
            chat,
            describe,
            path: None,
        }
    }

    /// The file or directory the model was loaded from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn send(&self, job: Job) -> Result<(), LmError> {
        self.tx
            .lock()
            .map_err(|_| LmError::WorkerGone)?
            .send(job)
            .map_err(|_| LmError::WorkerGone)
    }
}

#[async_trait::async_trait]
impl LanguageModel for LocalModel {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn apply_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, LmError> {
        self.chat.render(messages, add_generation_prompt)
    }

    async fn generate(&self, prompt: &str, params: &GenParams) -> Result<Generation, LmError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Job::Generate(prompt.to_string(), params.clone(), tx))?;
        rx.await.map_err(|_| LmError::WorkerGone)?
    }

    async fn score(&self, prompt: &str, continuations: &[String]) -> Result<Vec<Scored>, LmError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Job::Score(prompt.to_string(), continuations.to_vec(), tx))?;
        rx.await.map_err(|_| LmError::WorkerGone)?
    }

    async fn text_logprobs(&self, text: &str) -> Result<TextLogprobs, LmError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Job::Text(text.to_string(), tx))?;
        rx.await.map_err(|_| LmError::WorkerGone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(v: &[f32]) -> Vec<f32> {
        cpu::log_softmax(v)
    }

    #[test]
    fn greedy_and_tiny_top_p_pick_the_argmax() {
        let l = lp(&[0.1, 2.0, 1.9, -1.0]);
        let mut rng = Rng::new(1);
        assert_eq!(sample(&l, &GenParams::default(), &mut rng), 1);
        let p = GenParams {
            temperature: 1.0,
            top_p: 1e-6,
            ..GenParams::default()
        };
        for _ in 0..50 {
            assert_eq!(sample(&l, &p, &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_the_seed() {
        let l = lp(&[0.0, (3f32).ln()]); // p = 0.25, 0.75
        let p = GenParams {
            temperature: 1.0,
            seed: 3,
            ..GenParams::default()
        };
        let mut rng = Rng::new(p.seed);
        let ones = (0..4000).filter(|_| sample(&l, &p, &mut rng) == 1).count();
        assert!((2850..3150).contains(&ones), "{ones}");
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..20).map(|_| sample(&l, &p, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        // top-p 0.5 keeps only the 0.75 token
        let q = GenParams { top_p: 0.5, ..p };
        assert!((0..200).all(|_| sample(&l, &q, &mut rng) == 1));
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let l = lp(&[1.0, 2.0, 3.0, 1000.0]);
        let s: f32 = l.iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-5);
    }
}
