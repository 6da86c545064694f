//! The quantized CPU decoder that generation and scoring run on: the same llama-family math
//! as [`crate::llama::Llama`] (HF layout, half-split rotary embedding, grouped-query
//! attention), with the projections and the output head stored as Q4_1 blocks (where that
//! holds the weights exactly) or Q8_0 blocks, packed for and computed by the
//! run-time-dispatched kernels of [`simd`], no tensor library in between. Attention of a row
//! runs in parts of [`ATTEND_SPAN`] positions per key/value head, in parallel, merged in
//! order.
//!
//! It is built from the f32 weights of a [`Llama`] (so adapters merged in f32 apply to it as
//! they do to the trainer's model). One call of [`CpuModel::forward`] runs a *batch of
//! sequences*: every row of every sequence goes through each projection together (one pass
//! over the weights per layer, whatever the number of sequences), and each row attends to
//! its own sequence — an optional shared, read-only prefix ([`KvCache`] of a prompt) followed
//! by the sequence's own cache. That is how a prompt is computed once and many continuations
//! are scored against it, and how concurrent requests share one pass over the weights.
//!
//! Rows never interact except through attention to their own sequence, and a row's
//! arithmetic does not depend on which other rows are in the batch: batched and single
//! results are identical bit for bit.

pub mod prefix;
pub mod simd;

use std::collections::HashMap;

use candle_core::Tensor;

use self::simd::{
    merge_attention, pack_q4_1, pack_q8, quantize_row, quantize_row_q4_1, BlockQ4_1, BlockQ8, Isa,
    Kernels, Q41Row, Q8Row, Q8Rows, Segment, QK,
};

/// Positions per part of a row's attention (parts run in parallel and are merged in order;
/// fixed by the row's own position, so a row's arithmetic does not depend on its batch).
pub const ATTEND_SPAN: usize = 128;
use crate::llama::{Config, Llama};
use crate::LmError;

/// How a [`QMatrix`] stores its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QFormat {
    /// Q8_0 blocks.
    Q8_0,
    /// Q4_1 blocks (used only where they hold the weights exactly).
    Q4_1,
}

#[derive(Debug, Clone)]
enum QData {
    /// Packed rows (`[rows, kb · 32]` values, [`simd::q8_offset`]) and their scales.
    Q8 { qs: Vec<i8>, d: Vec<f32> },
    /// Packed rows (`[rows, kb · 16]` bytes, [`simd::q4_offset`]), scales and mins.
    Q41 {
        qs: Vec<u8>,
        d: Vec<f32>,
        m: Vec<f32>,
    },
}

/// A row-major `[rows, cols]` matrix of quantized blocks (each row padded to whole blocks),
/// packed for the kernels.
#[derive(Debug, Clone)]
pub struct QMatrix {
    rows: usize,
    cols: usize,
    kb: usize,
    data: QData,
}

impl QMatrix {
    /// Quantizes a row-major `[rows, cols]` f32 matrix: as Q4_1 when that holds every value
    /// exactly (weights that came from a Q4_1 file), else as Q8_0.
    pub fn from_f32(rows: usize, cols: usize, w: &[f32]) -> QMatrix {
        assert_eq!(w.len(), rows * cols, "QMatrix::from_f32: size");
        let kb = cols.div_ceil(QK);
        let mut blocks = vec![BlockQ4_1::ZERO; kb];
        let (mut qs, mut d, mut m) = (
            vec![0u8; rows * kb * QK / 2],
            vec![0f32; rows * kb],
            vec![0f32; rows * kb],
        );
        for r in 0..rows {
            let src = &w[r * cols..(r + 1) * cols];
            quantize_row_q4_1(src, &mut blocks);
            // exact up to float rounding of the grid: far below a quantization step
            let exact = src.iter().enumerate().all(|(i, &v)| {
                let b = &blocks[i / QK];
                (b.value(i % QK) - v).abs() <= 1e-3 * b.d + 1e-6 * v.abs()
            });
            if !exact {
                return Self::from_f32_q8(rows, cols, w);
            }
            pack_q4_1(
                &blocks,
                &mut qs[r * kb * QK / 2..(r + 1) * kb * QK / 2],
                &mut d[r * kb..(r + 1) * kb],
                &mut m[r * kb..(r + 1) * kb],
            );
        }
        QMatrix {
            rows,
            cols,
            kb,
            data: QData::Q41 { qs, d, m },
        }
    }

    /// Quantizes a row-major `[rows, cols]` f32 matrix as Q8_0.
    pub fn from_f32_q8(rows: usize, cols: usize, w: &[f32]) -> QMatrix {
        assert_eq!(w.len(), rows * cols, "QMatrix::from_f32_q8: size");
        let kb = cols.div_ceil(QK);
        let mut blocks = vec![BlockQ8::ZERO; kb];
        let (mut qs, mut d) = (vec![0i8; rows * kb * QK], vec![0f32; rows * kb]);
        for r in 0..rows {
            quantize_row(&w[r * cols..(r + 1) * cols], &mut blocks);
            pack_q8(
                &blocks,
                &mut qs[r * kb * QK..(r + 1) * kb * QK],
                &mut d[r * kb..(r + 1) * kb],
            );
        }
        QMatrix {
            rows,
            cols,
            kb,
            data: QData::Q8 { qs, d },
        }
    }

    /// Rows (output width).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (input width).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The storage format.
    pub fn format(&self) -> QFormat {
        match self.data {
            QData::Q8 { .. } => QFormat::Q8_0,
            QData::Q41 { .. } => QFormat::Q4_1,
        }
    }

    /// Rows `r` (one after the other) of a Q8_0 matrix.
    fn q8_rows(&self, r: std::ops::Range<usize>) -> Option<Q8Row<'_>> {
        let kb = self.kb;
        match &self.data {
            QData::Q8 { qs, d } => Some(Q8Row {
                qs: &qs[r.start * kb * QK..r.end * kb * QK],
                d: &d[r.start * kb..r.end * kb],
                s: &[],
            }),
            QData::Q41 { .. } => None,
        }
    }

    /// Rows `r` (one after the other) of a Q4_1 matrix.
    fn q41_rows(&self, r: std::ops::Range<usize>) -> Option<Q41Row<'_>> {
        let kb = self.kb;
        match &self.data {
            QData::Q41 { qs, d, m } => Some(Q41Row {
                qs: &qs[r.start * kb * QK / 2..r.end * kb * QK / 2],
                d: &d[r.start * kb..r.end * kb],
                m: &m[r.start * kb..r.end * kb],
            }),
            QData::Q8 { .. } => None,
        }
    }

    /// Writes row `r`'s values into `out` (`cols` values).
    fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let kb = self.kb;
        if let Some(row) = self.q8_rows(r..r + 1) {
            for (i, o) in out.iter_mut().enumerate() {
                let (b, j) = (i / QK, i % QK);
                *o = row.d[b] * f32::from(row.qs[simd::q8_offset(kb, b, j)]);
            }
        } else if let Some(row) = self.q41_rows(r..r + 1) {
            for (i, o) in out.iter_mut().enumerate() {
                let (b, j) = (i / QK, i % QK);
                let (at, high) = simd::q4_offset(kb, b, j);
                let q = if high {
                    row.qs[at] >> 4
                } else {
                    row.qs[at] & 0x0F
                };
                *o = row.d[b] * f32::from(q) + row.m[b];
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        use std::mem::size_of_val;
        match &self.data {
            QData::Q8 { qs, d } => size_of_val(qs.as_slice()) + size_of_val(d.as_slice()),
            QData::Q41 { qs, d, m } => {
                size_of_val(qs.as_slice()) + size_of_val(d.as_slice()) + size_of_val(m.as_slice())
            }
        }
    }
}

/// Keys and values of the positions of one sequence, per layer position-major
/// (`[len, kv_heads · head_dim]`), stored as f16 bits (as llama.cpp does: half the bytes
/// to read per decoding step and to hold in the prefix cache; every kernel reads them back
/// exactly).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    k: Vec<Vec<u16>>,
    v: Vec<Vec<u16>>,
    /// Values per position and layer (`kv_heads · head_dim`).
    w: usize,
    len: usize,
}

impl KvCache {
    /// An empty cache for `cfg`.
    pub fn new(cfg: &Config) -> KvCache {
        KvCache {
            k: vec![Vec::new(); cfg.num_hidden_layers],
            v: vec![Vec::new(); cfg.num_hidden_layers],
            w: cfg.num_key_value_heads * cfg.head_dim(),
            len: 0,
        }
    }

    /// A copy of positions `from..to` (clamped to the cached ones).
    pub fn slice(&self, from: usize, to: usize) -> KvCache {
        let to = to.min(self.len);
        let from = from.min(to);
        let cut = |l: &Vec<u16>| l[from * self.w..to * self.w].to_vec();
        KvCache {
            k: self.k.iter().map(cut).collect(),
            v: self.v.iter().map(cut).collect(),
            w: self.w,
            len: to - from,
        }
    }

    /// Bytes the cached positions take (not counting spare capacity).
    pub fn used_bytes(&self) -> usize {
        2 * self.k.len() * self.len * self.w * std::mem::size_of::<u16>()
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops every position from `n` on.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len {
            return;
        }
        for l in self.k.iter_mut().chain(self.v.iter_mut()) {
            l.truncate(n * self.w);
        }
        self.len = n;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.k
            .iter()
            .chain(&self.v)
            .map(|l| l.capacity() * 2)
            .sum::<usize>()
    }
}

/// Which rows of a sequence get logits back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// None (the call only fills the cache).
    None,
    /// The last row.
    Last,
    /// Every row.
    All,
}

/// One sequence of a batch: new tokens continuing `prefix` (read-only, shared segments,
/// one after the other) and then `cache` (this sequence's own positions, appended to).
pub struct Seq<'a> {
    /// The shared prefix the sequence continues: caches of consecutive positions (a
    /// prompt's cache, or a chain of [`prefix::PrefixCache`] segments); empty for none.
    pub prefix: &'a [&'a KvCache],
    /// The sequence's own cache; the new tokens' keys and values are appended to it.
    pub cache: &'a mut KvCache,
    /// The new tokens.
    pub tokens: &'a [u32],
    /// Which rows get logits back.
    pub logits: Logits,
}

struct Layer {
    attn_norm: Vec<f32>,
    /// q, k and v stacked: `[(heads + 2 kv_heads) · head_dim, hidden]`.
    qkv: QMatrix,
    qkv_bias: Option<Vec<f32>>,
    o: QMatrix,
    ffn_norm: Vec<f32>,
    /// gate and up stacked: `[2 · intermediate, hidden]`.
    gate_up: QMatrix,
    down: QMatrix,
}

/// The quantized decoder (see the module documentation).
pub struct CpuModel {
    cfg: Config,
    kernels: Kernels,
    pool: rayon::ThreadPool,
    threads: usize,
    embed: QMatrix,
    /// `None`: tied to `embed`.
    lm_head: Option<QMatrix>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Options of [`CpuModel::new`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuOptions {
    /// Kernels to use (`None`: the best this CPU supports). A set the CPU lacks falls back
    /// to the best supported one.
    pub isa: Option<Isa>,
    /// Worker threads (`0`: one per available core).
    pub threads: usize,
}

fn bad(msg: impl Into<String>) -> LmError {
    LmError::Invalid(msg.into())
}

fn f32s(weights: &HashMap<String, Tensor>, name: &str) -> Result<Vec<f32>, LmError> {
    let t = weights
        .get(name)
        .ok_or_else(|| bad(format!("missing tensor {name}")))?;
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}

impl CpuModel {
    /// Quantizes `model`'s weights (its f32 weights as they are now, adapters merged or not).
    pub fn new(model: &Llama, opts: CpuOptions) -> Result<CpuModel, LmError> {
        let cfg = model.config().clone();
        let w = model.weights();
        let (h, f, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim());
        let (nq, nkv) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut qkv = f32s(w, &format!("{p}.self_attn.q_proj.weight"))?;
            qkv.extend(f32s(w, &format!("{p}.self_attn.k_proj.weight"))?);
            qkv.extend(f32s(w, &format!("{p}.self_attn.v_proj.weight"))?);
            let biases = ["q_proj", "k_proj", "v_proj"]
                .iter()
                .map(|n| format!("{p}.self_attn.{n}.bias"))
                .collect::<Vec<_>>();
            let qkv_bias = if biases.iter().any(|b| w.contains_key(b)) {
                let mut v = Vec::with_capacity(nq + 2 * nkv);
                for (b, len) in biases.iter().zip([nq, nkv, nkv]) {
                    match w.get(b) {
                        Some(_) => v.extend(f32s(w, b)?),
                        None => v.extend(std::iter::repeat_n(0.0, len)),
                    }
                }
                Some(v)
            } else {
                None
            };
            let mut gate_up = f32s(w, &format!("{p}.mlp.gate_proj.weight"))?;
            gate_up.extend(f32s(w, &format!("{p}.mlp.up_proj.weight"))?);
            layers.push(Layer {
                attn_norm: f32s(w, &format!("{p}.input_layernorm.weight"))?,
                qkv: QMatrix::from_f32(nq + 2 * nkv, h, &qkv),
                qkv_bias,
                o: QMatrix::from_f32(h, nq, &f32s(w, &format!("{p}.self_attn.o_proj.weight"))?),
                ffn_norm: f32s(w, &format!("{p}.post_attention_layernorm.weight"))?,
                gate_up: QMatrix::from_f32(2 * f, h, &gate_up),
                down: QMatrix::from_f32(h, f, &f32s(w, &format!("{p}.mlp.down_proj.weight"))?),
            });
        }
        let embed = QMatrix::from_f32(cfg.vocab_size, h, &f32s(w, "model.embed_tokens.weight")?);
        let lm_head = match w.get("lm_head.weight") {
            Some(_) if !cfg.tie_word_embeddings => Some(QMatrix::from_f32(
                cfg.vocab_size,
                h,
                &f32s(w, "lm_head.weight")?,
            )),
            _ => None,
        };
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("agentq-lm-{i}"))
            .build()
            .map_err(|e| bad(format!("thread pool: {e}")))?;
        let kernels = opts
            .isa
            .and_then(Kernels::new)
            .unwrap_or_else(Kernels::best);
        let n = cfg.max_position_embeddings.clamp(1, 32_768);
        let half = hd / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(n * half), Vec::with_capacity(n * half));
        for p in 0..n {
            for i in 0..half {
                let inv = 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / hd as f64) as f32;
                let a = p as f32 * inv;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok(CpuModel {
            norm: f32s(w, "model.norm.weight")?,
            cfg,
            kernels,
            pool,
            threads,
            embed,
            lm_head,
            layers,
            cos,
            sin,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The kernels in use.
    pub fn isa(&self) -> Isa {
        self.kernels.isa()
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Positions a sequence can hold.
    pub fn context(&self) -> usize {
        self.cos.len() / (self.cfg.head_dim() / 2).max(1)
    }

    /// The weights' storage, e.g. `q4_1×120+q8_0×1` (matrices per format; q, k and v are
    /// one matrix, gate and up another).
    pub fn formats(&self) -> String {
        let mut all: Vec<&QMatrix> = vec![&self.embed];
        all.extend(&self.lm_head);
        for l in &self.layers {
            all.extend([&l.qkv, &l.o, &l.gate_up, &l.down]);
        }
        let n4 = all.iter().filter(|m| m.format() == QFormat::Q4_1).count();
        let n8 = all.len() - n4;
        match (n4, n8) {
            (0, _) => format!("q8_0×{n8}"),
            (_, 0) => format!("q4_1×{n4}"),
            _ => format!("q4_1×{n4}+q8_0×{n8}"),
        }
    }

    /// Bytes of weights held.
    pub fn weight_bytes(&self) -> usize {
        let mut n = self.embed.bytes() + self.lm_head.as_ref().map_or(0, QMatrix::bytes);
        for l in &self.layers {
            n += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes();
        }
        n
    }

    /// Runs a batch of sequences (see the module documentation). Returns, per sequence, the
    /// logits of the rows its [`Logits`] asks for, row after row (`vocab` values each).
    pub fn forward(&self, seqs: &mut [Seq<'_>]) -> Result<Vec<Vec<f32>>, LmError> {
        self.pool.install(|| self.forward_in_pool(seqs))
    }

    fn forward_in_pool(&self, seqs: &mut [Seq<'_>]) -> Result<Vec<Vec<f32>>, LmError> {
        use rayon::prelude::*;
        let cfg = &self.cfg;
        let (hs, hd) = (cfg.hidden_size, cfg.head_dim());
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let (qw, kvw, f) = (nh * hd, nkv * hd, cfg.intermediate_size);
        let ctx = self.context();
        // (sequence, position, index in the own cache, wants logits)
        let mut rows: Vec<(usize, usize, usize, bool)> = Vec::new();
        for (si, s) in seqs.iter().enumerate() {
            if std::iter::once(&*s.cache)
                .chain(s.prefix.iter().copied())
                .any(|c| c.k.len() != cfg.num_hidden_layers || c.w != kvw)
            {
                return Err(bad("KV cache built for another model"));
            }
            let off: usize = s.prefix.iter().map(|c| c.len).sum();
            let c0 = s.cache.len;
            let n = s.tokens.len();
            if off + c0 + n > ctx {
                return Err(bad(format!(
                    "sequence of {} tokens exceeds the context of {ctx}",
                    off + c0 + n
                )));
            }
            for (i, &t) in s.tokens.iter().enumerate() {
                if t as usize >= cfg.vocab_size {
                    return Err(bad(format!(
                        "token id {t} outside the vocabulary of {}",
                        cfg.vocab_size
                    )));
                }
                let want = match s.logits {
                    Logits::None => false,
                    Logits::Last => i + 1 == n,
                    Logits::All => true,
                };
                rows.push((si, off + c0 + i, c0 + i, want));
            }
        }
        let m = rows.len();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); seqs.len()];
        if m == 0 {
            return Ok(out);
        }
        let tokens: Vec<u32> = seqs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
        let mut h = vec![0f32; m * hs];
        h.par_chunks_mut(hs).zip(&tokens).for_each(|(row, &t)| {
            self.embed.dequantize_row(t as usize, row);
        });
        let mut xq = Q8Rows::default();
        let mut qkv = vec![0f32; m * (qw + 2 * kvw)];
        let mut y = vec![0f32; m * qw];
        let mut tmp = vec![0f32; m * hs];
        let mut gu = vec![0f32; m * 2 * f];
        let mut act = vec![0f32; m * f];
        let eps = cfg.rms_norm_eps as f32;
        let scale = 1.0 / (hd as f32).sqrt();
        // the parts of attention: (row, key/value head, first position), by row, then head,
        // then range, so that a row's parts for a head lie together; `first[r]`: row r's
        // first part
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut first = Vec::with_capacity(m + 1);
        for (r, &(_, pos, _, _)) in rows.iter().enumerate() {
            first.push(spans.len());
            for g in 0..nkv {
                spans.extend((0..=pos).step_by(ATTEND_SPAN).map(|lo| (r, g, lo)));
            }
        }
        first.push(spans.len());
        let mut parts: Vec<f32> = Vec::new();
        for (li, layer) in self.layers.iter().enumerate() {
            self.norm_quantize(&h, hs, &layer.attn_norm, eps, &mut xq);
            self.matmul(&xq, &layer.qkv, &mut qkv);
            let width = qw + 2 * kvw;
            qkv.par_chunks_mut(width)
                .zip(&rows)
                .for_each(|(r, &(_, pos, _, _))| {
                    if let Some(b) = &layer.qkv_bias {
                        for (x, b) in r.iter_mut().zip(b) {
                            *x += b;
                        }
                    }
                    let (q, rest) = r.split_at_mut(qw);
                    for head in q.chunks_mut(hd).chain(rest[..kvw].chunks_mut(hd)) {
                        self.rope(head, pos);
                    }
                    for x in q.iter_mut() {
                        *x *= scale;
                    }
                });
            for (r, &(si, _, _, _)) in rows.iter().enumerate() {
                let row = &qkv[r * width..(r + 1) * width];
                let c = &mut *seqs[si].cache;
                let half = |x: &f32| half::f16::from_f32(*x).to_bits();
                c.k[li].extend(row[qw..qw + kvw].iter().map(half));
                c.v[li].extend(row[qw + kvw..].iter().map(half));
            }
            // each sequence's segments in this layer, once: the prefix chain, then the own
            // cache with this pass's rows (a row attends to the positions up to and
            // including its own)
            let views: Vec<Vec<Segment<'_>>> = seqs
                .iter()
                .map(|s| {
                    let own = &*s.cache;
                    s.prefix
                        .iter()
                        .map(|c| (c.k[li].as_slice(), c.v[li].as_slice(), c.len))
                        .chain(std::iter::once((
                            own.k[li].as_slice(),
                            own.v[li].as_slice(),
                            own.k[li].len() / kvw.max(1),
                        )))
                        .collect()
                })
                .collect();
            let rep = nh / nkv;
            // per (row, key/value head, range of ATTEND_SPAN positions): the group of query
            // heads that share the key/value head, so each key and value is read once per
            // group, and a long context is split among threads. The ranges are fixed by the
            // row's own position, so its arithmetic does not depend on the batch.
            let rec = rep * hd + 2 * rep;
            parts.clear();
            parts.resize(spans.len() * rec, 0.0);
            parts.par_chunks_mut(rec).zip(&spans).for_each_init(
                || (Vec::new(), Vec::new()),
                |(segs, scores), (part, &(r, g, lo))| {
                    let (si, pos, _, _) = rows[r];
                    let hi = (lo + ATTEND_SPAN).min(pos + 1);
                    segs.clear();
                    let mut at = 0;
                    for &(k, v, n) in &views[si] {
                        let (a, b) = (lo.max(at), hi.min(at + n));
                        if a < b {
                            let off = (a - at) * kvw;
                            segs.push((&k[off..], &v[off..], b - a));
                        }
                        at += n;
                    }
                    let q0 = r * width + g * rep * hd;
                    let q = &qkv[q0..q0 + rep * hd];
                    let (o, stats) = part.split_at_mut(rep * hd);
                    self.kernels
                        .attend_part(q, hd, segs, g * hd, kvw, scores, o, stats);
                },
            );
            y.par_chunks_mut(qw).enumerate().for_each(|(r, yr)| {
                let per_head = (first[r + 1] - first[r]) / nkv;
                let mine = &parts[first[r] * rec..first[r + 1] * rec];
                for (yg, p) in yr.chunks_mut(rep * hd).zip(mine.chunks(per_head * rec)) {
                    merge_attention(p, rep, hd, yg);
                }
            });
            self.quantize_rows(&y, qw, &mut xq);
            self.matmul(&xq, &layer.o, &mut tmp);
            add_into(&mut h, &tmp);
            self.norm_quantize(&h, hs, &layer.ffn_norm, eps, &mut xq);
            self.matmul(&xq, &layer.gate_up, &mut gu);
            act.par_chunks_mut(f)
                .zip(gu.par_chunks(2 * f))
                .for_each(|(a, g)| {
                    let (gate, up) = g.split_at(f);
                    self.kernels.silu_mul(gate, up, a);
                });
            self.quantize_rows(&act, f, &mut xq);
            self.matmul(&xq, &layer.down, &mut tmp);
            add_into(&mut h, &tmp);
        }
        for s in seqs.iter_mut() {
            s.cache.len += s.tokens.len();
        }
        let wanted: Vec<usize> = (0..m).filter(|&r| rows[r].3).collect();
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut hw = vec![0f32; wanted.len() * hs];
        for (o, &r) in hw.chunks_mut(hs).zip(&wanted) {
            o.copy_from_slice(&h[r * hs..(r + 1) * hs]);
        }
        self.norm_quantize(&hw, hs, &self.norm, eps, &mut xq);
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let v = cfg.vocab_size;
        let mut logits = vec![0f32; wanted.len() * v];
        self.matmul(&xq, head, &mut logits);
        for (row, &r) in logits.chunks(v).zip(&wanted) {
            out[rows[r].0].extend_from_slice(row);
        }
        Ok(out)
    }

    fn rope(&self, x: &mut [f32], pos: usize) {
        let half = x.len() / 2;
        let cos = &self.cos[pos * half..(pos + 1) * half];
        let sin = &self.sin[pos * half..(pos + 1) * half];
        for i in 0..half {
            let (a, b) = (x[i], x[i + half]);
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = a * sin[i] + b * cos[i];
        }
    }

    /// RMS-norms each `width`-row of `x` with weight `w` and quantizes it into `out`.
    fn norm_quantize(&self, x: &[f32], width: usize, w: &[f32], eps: f32, out: &mut Q8Rows) {
        use rayon::prelude::*;
        out.reset(x.len() / width, width);
        let kb = out.kb();
        let (qs, d, s) = out.parts_mut();
        x.par_chunks(width)
            .zip(qs.par_chunks_mut(kb * QK))
            .zip(d.par_chunks_mut(kb).zip(s.par_chunks_mut(kb)))
            .for_each_init(Vec::new, |normed, ((row, qs), (d, s))| {
                let ms = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
                let r = 1.0 / (ms + eps).sqrt();
                normed.clear();
                normed.extend(row.iter().zip(w).map(|(v, w)| v * r * w));
                self.kernels.quantize(normed, qs, d, s);
            });
    }

    /// Quantizes each `width`-row of `x` into `out`.
    fn quantize_rows(&self, x: &[f32], width: usize, out: &mut Q8Rows) {
        use rayon::prelude::*;
        out.reset(x.len() / width, width);
        let kb = out.kb();
        let (qs, d, s) = out.parts_mut();
        x.par_chunks(width)
            .zip(qs.par_chunks_mut(kb * QK))
            .zip(d.par_chunks_mut(kb).zip(s.par_chunks_mut(kb)))
            .for_each(|((row, qs), (d, s))| self.kernels.quantize(row, qs, d, s));
    }

    /// `out[r][j] = x[r] · w[j]` for the `m` rows of `x` (packed rows of `w.cols` values);
    /// `out` is `[m, w.rows]`. Parallel over chunks of `w`'s rows.
    fn matmul(&self, x: &Q8Rows, w: &QMatrix, out: &mut [f32]) {
        assert_eq!(x.kb(), w.kb, "matmul: widths");
        let k = self.kernels;
        let x4 = |r: usize| [x.row(r), x.row(r + 1), x.row(r + 2), x.row(r + 3)];
        let kb = w.kb;
        match w.format() {
            QFormat::Q8_0 => self.matmul_rows(x.len(), w, out, |js, r0, n, dst| {
                let wr = w.q8_rows(js).expect("a Q8_0 matrix");
                if n == 4 {
                    k.dot_q8(kb, wr, x4(r0), dst);
                } else {
                    k.dot_q8(kb, wr, [x.row(r0)], dst);
                }
            }),
            QFormat::Q4_1 => self.matmul_rows(x.len(), w, out, |js, r0, n, dst| {
                let wr = w.q41_rows(js).expect("a Q4_1 matrix");
                if n == 4 {
                    k.dot_q4_1(kb, wr, x4(r0), dst);
                } else {
                    k.dot_q4_1(kb, wr, [x.row(r0)], dst);
                }
            }),
        }
    }

    /// The loop of [`CpuModel::matmul`]: `dot(js, r0, n, dst)` writes `x[r0 + i] · w[j]`
    /// for `j` in `js` and `i < n` (`n` is 4 or 1) into `dst[(j - js.start) · n + i]`. Many
    /// rows (a prompt) are split into blocks of rows, each task writing its own rows of
    /// `out` in place; few rows (decoding steps) are split by `w`'s rows, which are then
    /// copied into place. A value's arithmetic is the same either way.
    fn matmul_rows(
        &self,
        m: usize,
        w: &QMatrix,
        out: &mut [f32],
        dot: impl Fn(std::ops::Range<usize>, usize, usize, &mut [f32]) + Sync,
    ) {
        use rayon::prelude::*;
        let n = w.rows;
        // weight rows per kernel call: in the L1 cache for every four rows of x
        const JB: usize = 32;
        // rows `rows` of x against rows `cols` of w into `dst` (`dst` row `r - rows.start`,
        // column `j - base`, `width` values per row)
        let tile = |rows: std::ops::Range<usize>,
                    cols: std::ops::Range<usize>,
                    dst: &mut [f32],
                    base: usize,
                    width: usize| {
            let mut d = [0f32; 4 * JB];
            for jb in cols.clone().step_by(JB) {
                let je = (jb + JB).min(cols.end);
                let mut r = rows.start;
                while r < rows.end {
                    let step = if r + 4 <= rows.end { 4 } else { 1 };
                    let d = &mut d[..(je - jb) * step];
                    dot(jb..je, r, step, d);
                    for (jj, v) in d.chunks_exact(step).enumerate() {
                        for (i, v) in v.iter().enumerate() {
                            dst[(r - rows.start + i) * width + (jb + jj - base)] = *v;
                        }
                    }
                    r += step;
                }
            }
        };
        const RB: usize = 16;
        if m >= 4 * RB * self.threads {
            out[..m * n]
                .par_chunks_mut(RB * n)
                .enumerate()
                .for_each(|(b, dst)| {
                    let r0 = b * RB;
                    tile(r0..(r0 + RB).min(m), 0..n, dst, 0, n);
                });
            return;
        }
        let chunk = (n / (self.threads * 8)).clamp(16, 256);
        let parts: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let (j0, j1) = (c * chunk, ((c + 1) * chunk).min(n));
                let mut local = vec![0f32; m * (j1 - j0)];
                tile(0..m, j0..j1, &mut local, j0, j1 - j0);
                (j0, local)
            })
            .collect();
        for (j0, local) in parts {
            let cw = local.len() / m;
            for r in 0..m {
                out[r * n + j0..r * n + j0 + cw].copy_from_slice(&local[r * cw..(r + 1) * cw]);
            }
        }
    }
}

/// `a[i] += b[i]`, in parallel only where that pays (a decoding step's rows are short).
fn add_into(a: &mut [f32], b: &[f32]) {
    use rayon::prelude::*;
    if a.len() < 1 << 16 {
        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    } else {
        a.par_iter_mut().zip(b).for_each(|(a, b)| *a += b);
    }
}

/// `log Σ exp` of one logits row.
fn log_sum_exp(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    logits.iter().map(|x| (x - m).exp()).sum::<f32>().ln() + m
}

/// `log_softmax` of one logits row.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|x| x - lse).collect()
}

/// `log_softmax(logits)[token]`, without building the whole row.
pub fn token_logprob(logits: &[f32], token: u32) -> f32 {
    logits
        .get(token as usize)
        .map_or(f32::NEG_INFINITY, |x| x - log_sum_exp(logits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::Ops;
    use candle_core::{Device, IndexOp};

    fn model() -> Llama {
        Llama::random(Config::tiny(64), 5, false, &Device::Cpu).unwrap()
    }

    /// Wide enough for every kernel path: rows of 9 and 17 blocks (packed groups and plain
    /// tails), heads of 96 values (the vectorised attention) in groups of three sharing a
    /// key/value head.
    fn wide_model() -> Llama {
        let cfg = Config {
            hidden_size: 288,
            intermediate_size: 544,
            num_attention_heads: 3,
            num_key_value_heads: 1,
            ..Config::tiny(64)
        };
        // weights scaled by 1/√fan-in (as trained models roughly are): `Llama::random`'s
        // fixed ±0.2 makes a model this wide so sharp that a last-bit difference in one sum
        // moves later log-probs by tenths of a nat, which would hide what this model checks
        let m = Llama::random(cfg.clone(), 6, false, &Device::Cpu).unwrap();
        let w = m
            .weights()
            .iter()
            .map(|(name, t)| {
                let t = match t.dims() {
                    [_, fan_in] if !name.contains("norm") => {
                        (t * (1.0 / (0.2 * (*fan_in as f64).sqrt()))).unwrap()
                    }
                    _ => t.clone(),
                };
                (name.clone(), t)
            })
            .collect();
        Llama::new(cfg, w, false, &Device::Cpu).unwrap()
    }

    /// A prompt whose attention runs in two parts.
    fn long_prompt() -> Vec<u32> {
        (0..ATTEND_SPAN as u32 + 3)
            .map(|i| (i * 7 + 3) % 64)
            .collect()
    }

    fn reference(m: &Llama, ids: &[u32]) -> Vec<Vec<f32>> {
        let t = Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let lg = m.forward(&t, None, Ops::Differentiable).unwrap();
        (0..ids.len())
            .map(|i| log_softmax(&lg.i((0, i)).unwrap().to_vec1::<f32>().unwrap()))
            .collect()
    }

    #[test]
    fn quantized_log_probs_follow_the_f32_model() {
        quantized_log_probs_follow(&model(), &[1, 9, 33, 2, 17, 40, 5, 63]);
        quantized_log_probs_follow(&wide_model(), &long_prompt());
    }

    #[test]
    fn every_instruction_set_gives_the_portable_log_probs() {
        // the wide model over a prompt whose attention runs in two parts: packed groups and
        // tails, the vectorised attention and its merge, against the portable kernels (the
        // same quantization; only the order of float sums and the exponential differ)
        let (m, ids) = (wide_model(), long_prompt());
        let run = |isa| {
            let opts = CpuOptions {
                isa: Some(isa),
                threads: 2,
            };
            let cpu = CpuModel::new(&m, opts).unwrap();
            let mut cache = KvCache::new(m.config());
            let seq = Seq {
                prefix: &[],
                cache: &mut cache,
                tokens: &ids,
                logits: Logits::All,
            };
            let out = cpu.forward(&mut [seq]).unwrap().remove(0);
            out.chunks(m.config().vocab_size)
                .flat_map(log_softmax)
                .collect::<Vec<f32>>()
        };
        let want = run(Isa::Scalar);
        let v = m.config().vocab_size;
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let got = run(isa);
            // per position, the largest difference over the vocabulary
            let mut per: Vec<f32> = got
                .chunks(v)
                .zip(want.chunks(v))
                .map(|(a, b)| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max)
                })
                .collect();
            per.sort_by(f32::total_cmp);
            // A different order of float sums flips an activation's 8-bit rounding now and
            // then, which moves that position by up to a tenth of a nat (three positions of
            // 131 here); a wrong layout, tail or merge moves every later position.
            let (typical, worst) = (per[per.len() * 9 / 10], per[per.len() - 1]);
            assert!(
                typical < 1e-4 && worst < 0.15,
                "{isa:?}: |Δ log p| 90th percentile {typical}, max {worst}"
            );
        }
    }

    fn quantized_log_probs_follow(m: &Llama, ids: &[u32]) {
        let want = reference(m, ids);
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let cpu = CpuModel::new(
                m,
                CpuOptions {
                    isa: Some(isa),
                    threads: 2,
                },
            )
            .unwrap();
            let mut cache = KvCache::new(m.config());
            let got = cpu
                .forward(&mut [Seq {
                    prefix: &[],
                    cache: &mut cache,
                    tokens: ids,
                    logits: Logits::All,
                }])
                .unwrap();
            let v = m.config().vocab_size;
            let (mut worst, mut sum, mut n) = (0f32, 0f32, 0f32);
            for (i, row) in got[0].chunks(v).enumerate() {
                let lp = log_softmax(row);
                // every token's log-prob, not only the likely ones
                for (a, b) in lp.iter().zip(&want[i]) {
                    worst = worst.max((a - b).abs());
                    sum += (a - b).abs();
                    n += 1.0;
                }
            }
            // Q8_0 weights and activations on a random 2-layer model whose log-probs span
            // ≈ 25 nats: ≈ 1 % of that at worst, 0.2 % on average (0.12 and 0.035 on the
            // tiny model, 0.21 and 0.040 over the wide model's 131 positions). A wrong rope,
            // mask or head layout moves them by whole nats; dropping the wide prompt's second
            // part of attention moves its last positions by 0.35.
            let mean = sum / n;
            assert!(
                worst < 0.25 && mean < 0.05,
                "{isa:?}: |Δ log p| max {worst}, mean {mean}"
            );
        }
    }

    #[test]
    fn batched_prefix_and_incremental_runs_equal_a_cold_single_run() {
        runs_equal_a_cold_single_run(&model(), vec![3, 7, 1, 9, 22]);
        runs_equal_a_cold_single_run(&wide_model(), long_prompt());
    }

    fn runs_equal_a_cold_single_run(m: &Llama, prompt: Vec<u32>) {
        let cpu = CpuModel::new(m, CpuOptions::default()).unwrap();
        let v = m.config().vocab_size;
        let conts: [&[u32]; 3] = [&[5, 6, 7], &[8], &[40, 41]];
        // cold: prompt + continuation as one sequence each
        let cold: Vec<Vec<f32>> = conts
            .iter()
            .map(|c| {
                let all: Vec<u32> = prompt.iter().chain(c.iter()).copied().collect();
                let mut cache = KvCache::new(m.config());
                let mut lg = cpu
                    .forward(&mut [Seq {
                        prefix: &[],
                        cache: &mut cache,
                        tokens: &all,
                        logits: Logits::All,
                    }])
                    .unwrap()
                    .remove(0);
                lg.drain(..(prompt.len() * v));
                lg
            })
            .collect();
        // the prompt once, then all continuations in one batch against it
        let mut pc = KvCache::new(m.config());
        cpu.forward(&mut [Seq {
            prefix: &[],
            cache: &mut pc,
            tokens: &prompt,
            logits: Logits::None,
        }])
        .unwrap();
        let mut caches: Vec<KvCache> = conts.iter().map(|_| KvCache::new(m.config())).collect();
        let pcs = [&pc];
        let mut seqs: Vec<Seq> = caches
            .iter_mut()
            .zip(conts)
            .map(|(c, t)| Seq {
                prefix: &pcs,
                cache: c,
                tokens: t,
                logits: Logits::All,
            })
            .collect();
        let batched = cpu.forward(&mut seqs).unwrap();
        assert_eq!(batched, cold, "bit for bit");
        // token by token on one cache
        let mut c = KvCache::new(m.config());
        let mut last = Vec::new();
        for t in prompt.iter().chain(conts[0]) {
            last = cpu
                .forward(&mut [Seq {
                    prefix: &[],
                    cache: &mut c,
                    tokens: std::slice::from_ref(t),
                    logits: Logits::Last,
                }])
                .unwrap()
                .remove(0);
        }
        assert_eq!(last, cold[0][2 * v..]);
        assert_eq!(c.len(), prompt.len() + 3);
        c.truncate(prompt.len());
        assert_eq!(c.len(), prompt.len());
    }

    #[test]
    fn bad_requests_are_errors() {
        let m = model();
        let cpu = CpuModel::new(&m, CpuOptions::default()).unwrap();
        let mut c = KvCache::new(m.config());
        let e = cpu
            .forward(&mut [Seq {
                prefix: &[],
                cache: &mut c,
                tokens: &[64],
                logits: Logits::Last,
            }])
            .unwrap_err();
        assert!(e.to_string().contains("vocabulary"), "{e}");
        let long = vec![1u32; cpu.context() + 1];
        let e = cpu
            .forward(&mut [Seq {
                prefix: &[],
                cache: &mut c,
                tokens: &long,
                logits: Logits::Last,
            }])
            .unwrap_err();
        assert!(e.to_string().contains("context"), "{e}");
        assert!(c.is_empty(), "a refused call leaves the cache as it was");
    }
}
