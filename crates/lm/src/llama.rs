//! A llama-family decoder (SmolLM2, Llama, Qwen2-style configs) written with differentiable
//! candle ops, so the trainer can back-propagate through it.
//!
//! Weights use the Hugging Face names and layout (`model.layers.N.self_attn.q_proj.weight`, …)
//! and the half-split ("NEOX") rotary embedding; GGUF files of the `llama` architecture are
//! un-permuted at load (see `load.rs`). The forward returns logits for every position
//! `[batch, seq, vocab]`; an optional [`KvCache`] lets the prompt be computed once and reused
//! (and repeated along the batch) for several continuations. In training mode every weight is
//! a [`Var`] of a [`VarMap`]; the fused candle ops (which drop gradients) are only used by the
//! explicitly non-differentiable fast path ([`Ops::Fast`]).

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use agentq_core::rng::Rng;

/// Model hyper-parameters, serialized with the Hugging Face `config.json` field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden (embedding) width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// RMS norm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Rotary embedding base.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// Context length.
    #[serde(default = "default_ctx")]
    pub max_position_embeddings: usize,
    /// Whether the output projection is the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_ctx() -> usize {
    2048
}

impl Config {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// A tiny 2-layer config for fast tests.
    pub fn tiny(vocab_size: usize) -> Self {
        Config {
            vocab_size,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 512,
            tie_word_embeddings: true,
        }
    }

    /// Checks the shape relations the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let bad = |m: &str| Err(m.to_string());
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return bad("num_attention_heads and num_key_value_heads must be > 0");
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad("hidden_size must be a multiple of num_attention_heads");
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad("num_attention_heads must be a multiple of num_key_value_heads");
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad("head dimension must be even");
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size and num_hidden_layers must be > 0");
        }
        Ok(())
    }
}

/// Which kernels the forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    /// Composite ops with a backward pass (training, gradient checks).
    Differentiable,
    /// candle's fused kernels (rms_norm, softmax, rope): faster, but gradients are dropped.
    Fast,
    /// Differentiable, with the training ops of [`super::ops`]: constant projections give
    /// gradients to their inputs only, and attention uses a fused causal softmax with a
    /// backward. Same values and gradients as `Differentiable`, less time and memory.
    Train,
}

/// Extra terms added to projection outputs (LoRA adapters of the trainer), keyed by the
/// projection's weight name without `.weight` (`model.layers.3.self_attn.q_proj`).
pub trait Adapter {
    /// The term to add to projection `name`'s output for input `x`, if it has one.
    fn delta(&self, name: &str, x: &Tensor) -> Result<Option<Tensor>>;
}

struct Proj {
    name: String,
    /// The weight is a constant (not a `Var`): `Ops::Train` skips its gradient.
    frozen: bool,
    w: Tensor,
    b: Option<Tensor>,
}

impl Proj {
    fn forward_adapted(&self, x: &Tensor, ops: Ops, ad: Option<&dyn Adapter>) -> Result<Tensor> {
        let y = self.forward(x, ops)?;
        match ad.map(|a| a.delta(&self.name, x)).transpose()?.flatten() {
            Some(d) => y + d,
            None => Ok(y),
        }
    }

    fn forward(&self, x: &Tensor, ops: Ops) -> Result<Tensor> {
        match ops {
            Ops::Train if self.frozen => {
                let y = super::ops::frozen_linear(x, &self.w)?;
                match &self.b {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
            _ => candle_nn::Linear::new(self.w.clone(), self.b.clone()).forward(x),
        }
    }
}

struct Block {
    attn_norm: Tensor,
    q: Proj,
    k: Proj,
    v: Proj,
    o: Proj,
    ffn_norm: Tensor,
    gate: Proj,
    up: Proj,
    down: Proj,
}

/// Per-layer keys and values of the positions seen so far, `[batch, kv_heads, len, head_dim]`.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `cfg`.
    pub fn new(cfg: &Config) -> Self {
        KvCache {
            layers: vec![None; cfg.num_hidden_layers],
            len: 0,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Repeats a batch-1 cache `b` times along the batch (one prompt, `b` continuations).
    pub fn expand(&self, b: usize) -> Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                Some((k, v)) => Ok(Some((k.repeat((b, 1, 1, 1))?, v.repeat((b, 1, 1, 1))?))),
                None => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(KvCache {
            layers,
            len: self.len,
        })
    }
}

/// The decoder. Weights are plain tensors, or [`Var`]s of [`Llama::varmap`] when trainable.
pub struct Llama {
    cfg: Config,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    weights: HashMap<String, Tensor>,
    varmap: Option<VarMap>,
}

/// Names of the weights of block `i` (HF layout) and whether each is required.
fn block_names(i: usize) -> Vec<(String, bool)> {
    let p = format!("model.layers.{i}");
    let mut v = vec![(format!("{p}.input_layernorm.weight"), true)];
    for n in ["q_proj", "k_proj", "v_proj"] {
        v.push((format!("{p}.self_attn.{n}.weight"), true));
        v.push((format!("{p}.self_attn.{n}.bias"), false));
    }
    v.push((format!("{p}.self_attn.o_proj.weight"), true));
    v.push((format!("{p}.post_attention_layernorm.weight"), true));
    for n in ["gate_proj", "up_proj", "down_proj"] {
        v.push((format!("{p}.mlp.{n}.weight"), true));
    }
    v
}

/// Expected shape of every weight of `cfg` (HF names), biases included as optional.
pub fn expected_shapes(cfg: &Config) -> Vec<(String, Vec<usize>, bool)> {
    let (h, f, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim());
    let (nq, nkv) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
    let mut v = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![cfg.vocab_size, h],
        true,
    )];
    for i in 0..cfg.num_hidden_layers {
        for (name, req) in block_names(i) {
            let shape = match name.rsplit('.').nth(1).unwrap_or("") {
                "input_layernorm" | "post_attention_layernorm" => vec![h],
                "q_proj" if name.ends_with("bias") => vec![nq],
                "k_proj" | "v_proj" if name.ends_with("bias") => vec![nkv],
                "q_proj" => vec![nq, h],
                "k_proj" | "v_proj" => vec![nkv, h],
                "o_proj" => vec![h, nq],
                "gate_proj" | "up_proj" => vec![f, h],
                _ => vec![h, f],
            };
            v.push((name, shape, req));
        }
    }
    v.push(("model.norm.weight".to_string(), vec![h], true));
    v.push((
        "lm_head.weight".to_string(),
        vec![cfg.vocab_size, h],
        !cfg.tie_word_embeddings,
    ));
    v
}

fn rope_tables(cfg: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = cfg.head_dim();
    let n = cfg.max_position_embeddings.clamp(1, 32_768);
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / hd as f64) as f32)
        .collect();
    let mut cos = Vec::with_capacity(n * hd / 2);
    let mut sin = Vec::with_capacity(n * hd / 2);
    for p in 0..n {
        for f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, hd / 2), device)?,
        Tensor::from_vec(sin, (n, hd / 2), device)?,
    ))
}

impl Llama {
    /// Builds the model from HF-named f32 weights. With `trainable`, every weight becomes a
    /// [`Var`] registered in [`Llama::varmap`] under its name.
    pub fn new(
        cfg: Config,
        weights: HashMap<String, Tensor>,
        trainable: bool,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let mut kept = HashMap::new();
        let varmap = trainable.then(VarMap::new);
        for (name, shape, required) in expected_shapes(&cfg) {
            let Some(t) = weights.get(&name) else {
                if required {
                    candle_core::bail!("missing tensor {name}");
                }
                continue;
            };
            if t.dims() != shape.as_slice() {
                candle_core::bail!("tensor {name} has shape {:?}, expected {shape:?}", t.dims());
            }
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            let t = match &varmap {
                Some(vm) => {
                    let var = Var::from_tensor(&t)?;
                    let tensor = var.as_tensor().clone();
                    vm.data()
                        .lock()
                        .map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?
                        .insert(name.clone(), var);
                    tensor
                }
                // Constants: a weight computed from variables (a merged adapter) must not
                // carry their graph into the model.
                None => t.detach(),
            };
            kept.insert(name, t);
        }
        let get = |n: &str| -> Result<Tensor> {
            kept.get(n)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor {n}")))
        };
        let proj = |n: &str| -> Result<Proj> {
            Ok(Proj {
                name: n.to_string(),
                frozen: varmap.is_none(),
                w: get(&format!("{n}.weight"))?,
                b: kept.get(&format!("{n}.bias")).cloned(),
            })
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            blocks.push(Block {
                attn_norm: get(&format!("{p}.input_layernorm.weight"))?,
                q: proj(&format!("{p}.self_attn.q_proj"))?,
                k: proj(&format!("{p}.self_attn.k_proj"))?,
                v: proj(&format!("{p}.self_attn.v_proj"))?,
                o: proj(&format!("{p}.self_attn.o_proj"))?,
                ffn_norm: get(&format!("{p}.post_attention_layernorm.weight"))?,
                gate: proj(&format!("{p}.mlp.gate_proj"))?,
                up: proj(&format!("{p}.mlp.up_proj"))?,
                down: proj(&format!("{p}.mlp.down_proj"))?,
            });
        }
        let embed = get("model.embed_tokens.weight")?;
        let lm_head = match kept.get("lm_head.weight") {
            Some(t) if !cfg.tie_word_embeddings => t.clone(),
            _ => embed.clone(),
        };
        let (cos, sin) = rope_tables(&cfg, device)?;
        Ok(Llama {
            norm: get("model.norm.weight")?,
            cfg,
            embed,
            blocks,
            lm_head,
            cos,
            sin,
            device: device.clone(),
            weights: kept,
            varmap,
        })
    }

    /// A randomly initialised model (uniform weights from a seeded [`Rng`], norms = 1).
    pub fn random(cfg: Config, seed: u64, trainable: bool, device: &Device) -> Result<Self> {
        let mut rng = Rng::new(seed);
        let mut w = HashMap::new();
        for (name, shape, required) in expected_shapes(&cfg) {
            if !required {
                continue;
            }
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else {
                let a = if name.contains("embed") { 1.0 } else { 0.2 };
                (0..n).map(|_| rng.uniform(-a, a) as f32).collect()
            };
            w.insert(name, Tensor::from_vec(data, shape, device)?);
        }
        Self::new(cfg, w, trainable, device)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The weights by HF name (for saving as safetensors).
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// The trainable variables (when built with `trainable`).
    pub fn varmap(&self) -> Option<&VarMap> {
        self.varmap.as_ref()
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32). With a cache, the ids
    /// continue the cached positions and their keys/values are appended to it.
    pub fn forward(&self, ids: &Tensor, cache: Option<&mut KvCache>, ops: Ops) -> Result<Tensor> {
        let h = self.hidden(ids, cache, ops)?;
        self.logits(&h)
    }

    /// Output projection of final hidden states `[batch, seq, hidden]`.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        h.broadcast_matmul(&self.lm_head.t()?)
    }

    /// [`Llama::logits`]; with `Ops::Train` and constant weights the head passes gradients
    /// to `h` only.
    pub fn logits_with(&self, h: &Tensor, ops: Ops) -> Result<Tensor> {
        if ops == Ops::Train && self.varmap.is_none() {
            super::ops::frozen_linear(h, &self.lm_head)
        } else {
            self.logits(h)
        }
    }

    /// Final (normed) hidden states `[batch, seq, hidden]`.
    pub fn hidden(&self, ids: &Tensor, cache: Option<&mut KvCache>, ops: Ops) -> Result<Tensor> {
        self.hidden_adapted(ids, cache, ops, None)
    }

    /// The block projections: name (without `.weight`) → (out, in).
    pub fn projection_shapes(&self) -> Vec<(String, (usize, usize))> {
        let mut v = Vec::new();
        for blk in &self.blocks {
            for p in [
                &blk.q, &blk.k, &blk.v, &blk.o, &blk.gate, &blk.up, &blk.down,
            ] {
                if let Ok((o, i)) = p.w.dims2() {
                    v.push((p.name.clone(), (o, i)));
                }
            }
        }
        v
    }

    /// [`Llama::hidden`] with adapter terms added to the block projections.
    pub fn hidden_adapted(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        ops: Ops,
        ad: Option<&dyn Adapter>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let mut fresh;
        let cache = match cache {
            Some(c) => c,
            None => {
                fresh = KvCache::new(&self.cfg);
                &mut fresh
            }
        };
        let pos = cache.len;
        if pos + t > self.cos.dim(0)? {
            candle_core::bail!(
                "sequence of {} tokens exceeds the context of {}",
                pos + t,
                self.cos.dim(0)?
            );
        }
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        let mask = if t > 1 {
            let mut m = vec![0f32; t * (pos + t)];
            for i in 0..t {
                for j in (pos + i + 1)..(pos + t) {
                    m[i * (pos + t) + j] = f32::NEG_INFINITY;
                }
            }
            Some(Tensor::from_vec(m, (t, pos + t), &self.device)?)
        } else {
            None
        };
        let mut h = self
            .embed
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, ()))?;
        for (i, blk) in self.blocks.iter().enumerate() {
            let (nh, nkv, hd) = (
                self.cfg.num_attention_heads,
                self.cfg.num_key_value_heads,
                self.cfg.head_dim(),
            );
            let x = self.rms(&h, &blk.attn_norm, ops)?;
            let q = blk.q.forward_adapted(&x, ops, ad)?;
            let k = blk.k.forward_adapted(&x, ops, ad)?;
            let v = blk.v.forward_adapted(&x, ops, ad)?;
            let q = q.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()?;
            let k = k.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let (q, k) = match ops {
                Ops::Fast => (
                    candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                ),
                Ops::Train => (
                    super::ops::rope(&q, &cos, &sin)?,
                    super::ops::rope(&k, &cos, &sin)?,
                ),
                Ops::Differentiable => (
                    candle_nn::rotary_emb::rope_slow(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope_slow(&k, &cos, &sin)?,
                ),
            };
            let (k, v) = match &cache.layers[i] {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            cache.layers[i] = Some((k.clone(), v.clone()));
            let kv_len = pos + t;
            let q = (q * (1.0 / (hd as f64).sqrt()))?;
            let y = if ops == Ops::Train {
                // Fused, with a backward that recomputes the probabilities.
                super::ops::causal_attention(&q, &k, &v, pos)?
            } else {
                // Grouped-query attention without copying K/V: fold the query heads that
                // share a K/V head into the sequence dimension.
                let rep = nh / nkv;
                let att = q
                    .reshape((b, nkv, rep * t, hd))?
                    .matmul(&k.t()?.contiguous()?)?
                    .reshape((b, nh, t, kv_len))?;
                let att = match &mask {
                    Some(m) => att.broadcast_add(m)?,
                    None => att,
                };
                let att = match ops {
                    Ops::Fast => candle_nn::ops::softmax_last_dim(&att)?,
                    _ => candle_nn::ops::softmax(&att, D::Minus1)?,
                };
                att.reshape((b, nkv, rep * t, kv_len))?
                    .matmul(&v)?
                    .reshape((b, nh, t, hd))?
            };
            let y = y.transpose(1, 2)?.reshape((b, t, nh * hd))?;
            h = (h + blk.o.forward_adapted(&y, ops, ad)?)?;
            let x = self.rms(&h, &blk.ffn_norm, ops)?;
            let m = (blk.gate.forward_adapted(&x, ops, ad)?.silu()?
                * blk.up.forward_adapted(&x, ops, ad)?)?;
            h = (h + blk.down.forward_adapted(&m, ops, ad)?)?;
        }
        cache.len = pos + t;
        self.rms(&h, &self.norm, ops)
    }

    fn rms(&self, x: &Tensor, w: &Tensor, ops: Ops) -> Result<Tensor> {
        let eps = self.cfg.rms_norm_eps as f32;
        match ops {
            Ops::Fast => candle_nn::ops::rms_norm(&x.contiguous()?, w, eps),
            Ops::Train => super::ops::rms_norm(x, w, eps),
            Ops::Differentiable => candle_nn::ops::rms_norm_slow(x, w, eps),
        }
    }
}

/// Log-prob of each target token: `logits [b, t, vocab]`, `targets [b, t]` (u32) → `[b, t]`.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let lp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    lp.gather(&targets.unsqueeze(2)?.contiguous()?, 2)?
        .squeeze(2)
}

/// Response log-prob sums from the logits of whole sequences: `logits [b, T, vocab]` of
/// `ids [b, T]`, `response_mask [b, T]` (f32, 1 on response tokens; position 0 is ignored
/// since nothing predicts it) → `[b]`. Differentiable in `logits`.
pub fn response_logprob_sums(
    logits: &Tensor,
    ids: &Tensor,
    response_mask: &Tensor,
) -> Result<Tensor> {
    let t = ids.dim(1)?;
    if t < 2 {
        return Tensor::zeros(ids.dim(0)?, DType::F32, logits.device());
    }
    let lp = token_logprobs(&logits.narrow(1, 0, t - 1)?, &ids.narrow(1, 1, t - 1)?)?;
    (lp * response_mask.narrow(1, 1, t - 1)?)?.sum(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_problem() {
        let mut c = Config::tiny(100);
        assert!(c.validate().is_ok());
        c.num_key_value_heads = 3;
        assert!(c.validate().unwrap_err().contains("num_key_value_heads"));
        let c = Config {
            hidden_size: 30,
            ..Config::tiny(100)
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn missing_or_misshapen_weights_are_errors() {
        let m = Llama::random(Config::tiny(50), 1, false, &Device::Cpu).unwrap();
        let mut w = m.weights().clone();
        w.remove("model.layers.1.mlp.up_proj.weight");
        let e = Llama::new(Config::tiny(50), w.clone(), false, &Device::Cpu).err();
        assert!(e.unwrap().to_string().contains("up_proj"));
        w.insert(
            "model.layers.1.mlp.up_proj.weight".into(),
            Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap(),
        );
        let e = Llama::new(Config::tiny(50), w, false, &Device::Cpu).err();
        assert!(e.unwrap().to_string().contains("shape"));
    }

    #[test]
    fn cached_incremental_forward_equals_full_forward() {
        let m = Llama::random(Config::tiny(50), 2, false, &Device::Cpu).unwrap();
        let ids: Vec<u32> = vec![3, 7, 1, 9, 22, 5];
        let full = m
            .forward(
                &Tensor::new(ids.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
                None,
                Ops::Differentiable,
            )
            .unwrap();
        let mut cache = KvCache::new(m.config());
        let a = m
            .forward(
                &Tensor::new(&ids[..4], &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
                Some(&mut cache),
                Ops::Fast,
            )
            .unwrap();
        let mut c2 = cache.expand(2).unwrap();
        let b = m
            .forward(
                &Tensor::new(&[[22u32, 5], [22, 5]], &Device::Cpu).unwrap(),
                Some(&mut c2),
                Ops::Fast,
            )
            .unwrap();
        assert_eq!(c2.len(), 6);
        let got = Tensor::cat(&[a, b.narrow(0, 1, 1).unwrap()], 1).unwrap();
        let d = (got - full)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "{d}");
    }
}
