//! The CPU inference kernels: Q8_0 and Q4_1 weight blocks, Q8_0 activation blocks, the
//! packed row layout the kernels read ([`q8_offset`], [`q4_offset`]), their dot products, the
//! activation quantizer, attention over f16 keys and values, softmax and SiLU; each with a
//! portable scalar version and x86-64 versions picked at run time ([`Isa::detect`]).
//!
//! This is the one module of the workspace that may use `unsafe` (the lint is `deny`
//! elsewhere, checked by `tests/it/tidy.rs`): `std::arch` loads take raw pointers, and a
//! `#[target_feature]` function may only be called once the feature was detected. Every
//! `unsafe` block states why it holds. Instruction sets used: AVX2 + FMA + F16C, and
//! AVX-512 VNNI (`vpdpbusd`; 512-bit for the Q4_1 kernel, 256-bit elsewhere). Never AMX: on the VMs this project runs on, cpuinfo
//! lists AMX but `tileloadd` raises SIGILL (`shared/reference/llamacpp.md`), so nothing here
//! is compiled for it and detection never asks for it.
#![allow(unsafe_code)]
// the kernels index their const-generic arrays of rows and heads in lock step
#![allow(clippy::needless_range_loop)]

/// Values per quantized block.
pub const QK: usize = 32;

/// 32 values as `d · q` with `q ∈ [-127, 127]` (llama.cpp's Q8_0 with an f32 scale).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ8 {
    /// The scale.
    pub d: f32,
    /// The quantized values.
    pub qs: [i8; QK],
}

impl BlockQ8 {
    /// The zero block.
    pub const ZERO: BlockQ8 = BlockQ8 {
        d: 0.0,
        qs: [0; QK],
    };
}

/// Quantizes `x` into `out` (`out.len() == x.len().div_ceil(QK)`; a short last block is
/// padded with zeros): per block `d = max|x| / 127`, `q = round(x / d)`.
pub fn quantize_row(x: &[f32], out: &mut [BlockQ8]) {
    for (b, o) in out.iter_mut().enumerate() {
        let lo = (b * QK).min(x.len());
        let hi = ((b + 1) * QK).min(x.len());
        let src = &x[lo..hi];
        let amax = src.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        o.d = d;
        o.qs = [0; QK];
        for (q, v) in o.qs.iter_mut().zip(src) {
            *q = (v * id).round().clamp(-127.0, 127.0) as i8;
        }
    }
}

/// Writes the values of `blocks` into `out` (`out.len() <= blocks.len() * QK`).
pub fn dequantize_row(blocks: &[BlockQ8], out: &mut [f32]) {
    for (i, o) in out.iter_mut().enumerate() {
        let b = &blocks[i / QK];
        *o = b.d * f32::from(b.qs[i % QK]);
    }
}

/// 32 values as `d · q + m` with `q ∈ [0, 15]` (llama.cpp's Q4_1 with f32 scale and min;
/// `qs[j]` holds value `j` in its low nibble and value `j + 16` in its high one).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// The scale.
    pub d: f32,
    /// The minimum.
    pub m: f32,
    /// The quantized values, two per byte.
    pub qs: [u8; QK / 2],
}

impl BlockQ4_1 {
    /// The zero block.
    pub const ZERO: BlockQ4_1 = BlockQ4_1 {
        d: 0.0,
        m: 0.0,
        qs: [0; QK / 2],
    };

    /// Value `j` of the block.
    pub fn value(&self, j: usize) -> f32 {
        let byte = self.qs[j % (QK / 2)];
        let q = if j < QK / 2 { byte & 0x0F } else { byte >> 4 };
        self.d * f32::from(q) + self.m
    }
}

/// Quantizes `x` into Q4_1 blocks (`out.len() == x.len().div_ceil(QK)`; a short last block
/// is padded with `q = 0`): per block `m = min x`, `d = (max x − m) / 15`,
/// `q = round((x − m) / d)` — what llama.cpp's reference quantizer does, so weights that
/// were stored this way come back exactly.
pub fn quantize_row_q4_1(x: &[f32], out: &mut [BlockQ4_1]) {
    for (b, o) in out.iter_mut().enumerate() {
        let lo = (b * QK).min(x.len());
        let hi = ((b + 1) * QK).min(x.len());
        let src = &x[lo..hi];
        let min = src.iter().copied().fold(f32::INFINITY, f32::min);
        let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        *o = BlockQ4_1::ZERO;
        if src.is_empty() {
            continue;
        }
        let d = (max - min) / 15.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        o.d = d;
        o.m = min;
        for (j, v) in src.iter().enumerate() {
            let q = ((v - min) * id).round().clamp(0.0, 15.0) as u8;
            let k = j % (QK / 2);
            o.qs[k] |= if j < QK / 2 { q } else { q << 4 };
        }
    }
}

/// Blocks per interleaved group. The kernels read a group of eight blocks as eight 256-bit
/// vectors whose lane `l` holds four bytes of block `l`, so one vector of i32 lanes sums the
/// dot products of eight blocks at once: no horizontal sum and no float scaling per block,
/// one conversion and one multiply-add per eight blocks instead.
pub const GROUP: usize = 8;

/// Where value `j` of block `b` lies in a packed Q8_0 row of `kb` blocks (`kb · 32` bytes):
/// the whole groups interleaved (vector `j / 4`, lane `b % 8`, byte `j % 4`), the last
/// `kb % 8` blocks plain, one after the other.
#[inline]
pub fn q8_offset(kb: usize, b: usize, j: usize) -> usize {
    if b < kb / GROUP * GROUP {
        (b / GROUP) * GROUP * QK + (j / 4) * 32 + (b % GROUP) * 4 + j % 4
    } else {
        b * QK + j
    }
}

/// Where value `j` of block `b` lies in a packed Q4_1 row of `kb` blocks (`kb · 16` bytes):
/// the byte, and whether the value is its high nibble. In a group, vectors `2p` and `2p + 1`
/// of the Q8_0 layout share packed vector `p` (low and high nibbles); a plain block holds
/// values `j` and `j + 16` in one byte, as the file does.
#[inline]
pub fn q4_offset(kb: usize, b: usize, j: usize) -> (usize, bool) {
    if b < kb / GROUP * GROUP {
        let i = j / 4;
        let at = (b / GROUP) * GROUP * QK / 2 + (i / 2) * 32 + (b % GROUP) * 4 + j % 4;
        (at, i % 2 == 1)
    } else {
        (b * QK / 2 + j % (QK / 2), j >= QK / 2)
    }
}

/// One packed Q8_0 row as the kernels read it: the values (laid out as [`q8_offset`] says),
/// the block scales, and `d · Σ q` per block (activations carry it for the Q4_1 min term;
/// weights leave it empty).
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// `kb · 32` values.
    pub qs: &'a [i8],
    /// `kb` scales.
    pub d: &'a [f32],
    /// `kb` sums `d · Σ q`, or none.
    pub s: &'a [f32],
}

/// One packed Q4_1 row: the values (two per byte, laid out as [`q4_offset`] says), the block
/// scales and the block mins.
#[derive(Debug, Clone, Copy)]
pub struct Q41Row<'a> {
    /// `kb · 16` bytes.
    pub qs: &'a [u8],
    /// `kb` scales.
    pub d: &'a [f32],
    /// `kb` mins.
    pub m: &'a [f32],
}

/// Packs Q8_0 blocks into one row (`qs`: `blocks.len() · 32` values; `d`: the scales).
pub fn pack_q8(blocks: &[BlockQ8], qs: &mut [i8], d: &mut [f32]) {
    let kb = blocks.len();
    for (b, blk) in blocks.iter().enumerate() {
        d[b] = blk.d;
        for (j, &q) in blk.qs.iter().enumerate() {
            qs[q8_offset(kb, b, j)] = q;
        }
    }
}

/// Packs Q4_1 blocks into one row (`qs`: `blocks.len() · 16` bytes; `d`, `m`: scales, mins).
pub fn pack_q4_1(blocks: &[BlockQ4_1], qs: &mut [u8], d: &mut [f32], m: &mut [f32]) {
    let kb = blocks.len();
    qs.fill(0);
    for (b, blk) in blocks.iter().enumerate() {
        d[b] = blk.d;
        m[b] = blk.m;
        for j in 0..QK {
            let byte = blk.qs[j % (QK / 2)];
            let q = if j < QK / 2 { byte & 0x0F } else { byte >> 4 };
            let (at, high) = q4_offset(kb, b, j);
            qs[at] |= if high { q << 4 } else { q };
        }
    }
}

/// Quantizes `x` as Q8_0 straight into a packed row of `d.len()` blocks (a short last block
/// is padded with zeros), with its sums `s` (`d · Σ q`): per block `d = max|x| / 127`,
/// `q = x / d` rounded to nearest, ties to even. (Portable; [`Kernels::quantize`] gives the
/// same values faster.)
pub fn quantize_packed(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for b in 0..d.len() {
        quantize_block(x, b, qs, d, s);
    }
}

/// Block `b` of [`quantize_packed`].
fn quantize_block(x: &[f32], b: usize, qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    let lo = (b * QK).min(x.len());
    let hi = ((b + 1) * QK).min(x.len());
    let mut vals = [0f32; QK];
    vals[..hi - lo].copy_from_slice(&x[lo..hi]);
    let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
    let db = amax / 127.0;
    let id = if db > 0.0 { 1.0 / db } else { 0.0 };
    // |v · id| <= 127: adding and subtracting 1.5 · 2^23 rounds to the nearest integer
    // (ties to even) without a libm call
    const MAGIC: f32 = 12_582_912.0;
    let mut q = [0i8; QK];
    for (q, v) in q.iter_mut().zip(&vals) {
        *q = ((v * id + MAGIC) - MAGIC).clamp(-127.0, 127.0) as i8;
    }
    let sum: i32 = q.iter().map(|&v| i32::from(v)).sum();
    d[b] = db;
    s[b] = db * sum as f32;
    place_block(d.len(), b, &q, qs);
}

/// Writes block `b`'s 32 values into a packed row of `kb` blocks ([`q8_offset`]).
#[inline]
fn place_block(kb: usize, b: usize, q: &[i8; QK], qs: &mut [i8]) {
    if b < kb / GROUP * GROUP {
        let base = (b / GROUP) * GROUP * QK + (b % GROUP) * 4;
        for (i, c) in q.chunks_exact(4).enumerate() {
            qs[base + i * 32..base + i * 32 + 4].copy_from_slice(c);
        }
    } else {
        qs[b * QK..(b + 1) * QK].copy_from_slice(q);
    }
}

/// Rows of activations quantized as Q8_0 and packed: the right-hand side of every kernel.
/// Reused across a forward pass ([`Q8Rows::reset`] keeps the allocations).
#[derive(Debug, Clone, Default)]
pub struct Q8Rows {
    kb: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
}

impl Q8Rows {
    /// Makes room for `m` rows of `width` values (zeroed).
    pub fn reset(&mut self, m: usize, width: usize) {
        self.kb = width.div_ceil(QK);
        for v in [&mut self.d, &mut self.s] {
            v.clear();
            v.resize(m * self.kb, 0.0);
        }
        self.qs.clear();
        self.qs.resize(m * self.kb * QK, 0);
    }

    /// Blocks per row.
    pub fn kb(&self) -> usize {
        self.kb
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.d.len().checked_div(self.kb).unwrap_or(0)
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> Q8Row<'_> {
        let kb = self.kb;
        Q8Row {
            qs: &self.qs[r * kb * QK..(r + 1) * kb * QK],
            d: &self.d[r * kb..(r + 1) * kb],
            s: &self.s[r * kb..(r + 1) * kb],
        }
    }

    /// The values, scales and sums of all rows, for filling them row by row
    /// ([`quantize_packed`] on `kb · 32`, `kb` and `kb` long chunks).
    pub fn parts_mut(&mut self) -> (&mut [i8], &mut [f32], &mut [f32]) {
        (&mut self.qs, &mut self.d, &mut self.s)
    }

    /// Quantizes each `width`-row of `x` into a fresh set of rows (a single thread; the
    /// model parallelises over rows itself).
    pub fn quantize(x: &[f32], width: usize) -> Q8Rows {
        let mut out = Q8Rows::default();
        out.reset(x.len() / width.max(1), width);
        let kb = out.kb;
        for (r, row) in x.chunks(width.max(1)).enumerate() {
            quantize_packed(
                row,
                &mut out.qs[r * kb * QK..(r + 1) * kb * QK],
                &mut out.d[r * kb..(r + 1) * kb],
                &mut out.s[r * kb..(r + 1) * kb],
            );
        }
        out
    }

    /// Value `i` of row `r`, dequantized.
    pub fn value(&self, r: usize, i: usize) -> f32 {
        let row = self.row(r);
        row.d[i / QK] * f32::from(row.qs[q8_offset(self.kb, i / QK, i % QK)])
    }
}

/// Positions attention reads: keys and values (f16 bits, position-major) and how many
/// positions count.
pub type Segment<'a> = (&'a [u16], &'a [u16], usize);

/// An instruction set the kernels can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust (whatever the compiler's baseline target allows).
    Scalar,
    /// AVX2, FMA and F16C.
    Avx2,
    /// AVX2, FMA and AVX-512 VNNI (`vpdpbusd`; the Q4_1 kernel on 512-bit vectors).
    Avx512Vnni,
}

impl Isa {
    /// The best set this CPU supports (never AMX).
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            let vnni = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni");
            if avx2 && vnni {
                return Isa::Avx512Vnni;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Whether this CPU can run `self` (so that an explicitly chosen set is safe to use).
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => matches!(Isa::detect(), Isa::Avx2 | Isa::Avx512Vnni),
            Isa::Avx512Vnni => Isa::detect() == Isa::Avx512Vnni,
        }
    }

    /// Every set, from the most portable.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni];

    /// Lower-case name (`scalar`, `avx2`, `avx512vnni`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }
}

/// The kernels of an instruction set this CPU was checked to support — the only way to call
/// them, so the check happens once, not per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernels(Isa);

impl Kernels {
    /// The best set this CPU supports.
    pub fn best() -> Kernels {
        Kernels(Isa::detect())
    }

    /// The kernels of `isa`, if this CPU supports it.
    pub fn new(isa: Isa) -> Option<Kernels> {
        isa.supported().then_some(Kernels(isa))
    }

    /// The instruction set.
    pub fn isa(self) -> Isa {
        self.0
    }

    /// `out[i] = silu(gate[i]) · up[i]`, the gated activation of the MLP.
    pub fn silu_mul(self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        assert!(
            gate.len() == out.len() && up.len() == out.len(),
            "silu_mul: lengths"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU; the lengths match.
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::silu_mul_avx2(gate, up, out) },
            _ => silu_mul_scalar(gate, up, out),
        }
    }

    /// [`quantize_packed`]: the same values, vectorised where the instruction set allows.
    pub fn quantize(self, x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
        let kb = d.len();
        assert!(
            qs.len() == kb * QK && s.len() == kb && x.len() <= kb * QK,
            "quantize: shapes"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => {
                for b in 0..kb {
                    if (b + 1) * QK <= x.len() {
                        let mut q = [0i8; QK];
                        // SAFETY: a `Kernels` value was checked against this CPU; block `b`
                        // is 32 values of `x`.
                        let (db, sum) =
                            unsafe { x86::quantize_avx2(&x[b * QK..(b + 1) * QK], &mut q) };
                        d[b] = db;
                        s[b] = db * sum as f32;
                        place_block(kb, b, &q, qs);
                    } else {
                        quantize_block(x, b, qs, d, s);
                    }
                }
            }
            _ => quantize_packed(x, qs, d, s),
        }
    }

    /// `out[j · R + r] = w_j · xs[r]` for `R` packed activation rows against a run of
    /// packed Q8_0 weight rows `w_j` of `kb` blocks each (`out.len() / R` of them, one after
    /// the other in `w`): `Σ_b d_w d_x Σ q_w q_x`.
    #[inline]
    pub fn dot_q8<const R: usize>(
        self,
        kb: usize,
        w: Q8Row<'_>,
        xs: [Q8Row<'_>; R],
        out: &mut [f32],
    ) {
        let rows = out.len() / R;
        assert!(
            out.len() == rows * R && w.qs.len() == rows * kb * QK && w.d.len() == rows * kb,
            "dot_q8: weight rows"
        );
        for x in &xs {
            assert!(
                x.qs.len() == kb * QK && x.d.len() == kb,
                "dot_q8: rows of different lengths"
            );
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU; the lengths match.
            Isa::Avx512Vnni => unsafe { x86::dot_q8_vnni(kb, w, xs, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { x86::dot_q8_avx2(kb, w, xs, out) },
            _ => dot_q8_scalar(kb, w, xs, out),
        }
    }

    /// `out[j · R + r] = w_j · xs[r]` for `R` packed activation rows against a run of
    /// packed Q4_1 weight rows (as [`Kernels::dot_q8`]): the scale part `Σ_b d_w d_x Σ q_w
    /// q_x` plus the min part `Σ_b m_w · s_x` (`s_x`: the activation's block sums `d_x Σ
    /// q_x`).
    #[inline]
    pub fn dot_q4_1<const R: usize>(
        self,
        kb: usize,
        w: Q41Row<'_>,
        xs: [Q8Row<'_>; R],
        out: &mut [f32],
    ) {
        let rows = out.len() / R;
        assert!(
            out.len() == rows * R
                && w.qs.len() == rows * kb * QK / 2
                && w.d.len() == rows * kb
                && w.m.len() == rows * kb,
            "dot_q4_1: weight rows"
        );
        for x in &xs {
            assert!(
                x.qs.len() == kb * QK && x.d.len() == kb && x.s.len() == kb,
                "dot_q4_1: rows of different lengths"
            );
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU; the lengths match.
            Isa::Avx512Vnni => unsafe { x86::dot_q4_1_vnni512(kb, w, xs, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { x86::dot_q4_1_avx2(kb, w, xs, out) },
            _ => dot_q4_1_scalar(kb, w, xs, out),
        }
    }

    /// Causal attention of a group of scaled query heads that share one key/value head
    /// (`q`: the group's heads one after the other, `hd` values each) over the positions of
    /// `segs`, in order: per segment its keys and values (f16 bits, position-major, `stride`
    /// values per position, this head's at column `col`) and how many positions count.
    /// Writes the heads' outputs into `out` (as `q` is laid out); `scores` is scratch. Each
    /// key and value is read once for the whole group. (One part of
    /// [`Kernels::attend_part`], normalised.)
    #[allow(clippy::too_many_arguments)]
    pub fn attend(
        self,
        q: &[f32],
        hd: usize,
        segs: &[Segment<'_>],
        col: usize,
        stride: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let heads = q.len() / hd.max(1);
        let mut part = vec![0f32; q.len() + 2 * heads];
        let (o, stats) = part.split_at_mut(q.len());
        self.attend_part(q, hd, segs, col, stride, scores, o, stats);
        merge_attention(&part, heads, hd, out);
    }

    /// [`Kernels::attend`] over one range of positions (`segs`), unnormalised: per head
    /// `Σ_t e^(s_t − max) v_t` into `out`, and `max` and `Σ_t e^(s_t − max)` into `stats`
    /// (two per head). [`merge_attention`] combines the parts of consecutive ranges, so
    /// that a long context is split among threads.
    #[allow(clippy::too_many_arguments)]
    pub fn attend_part(
        self,
        q: &[f32],
        hd: usize,
        segs: &[Segment<'_>],
        col: usize,
        stride: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32],
        stats: &mut [f32],
    ) {
        assert!(
            hd > 0
                && q.len().is_multiple_of(hd)
                && out.len() == q.len()
                && stats.len() == 2 * (q.len() / hd)
                && col + hd <= stride,
            "attend: shapes"
        );
        for (k, v, n) in segs {
            assert!(
                k.len() >= n * stride && v.len() >= n * stride,
                "attend: segment"
            );
        }
        let n: usize = segs.iter().map(|s| s.2).sum();
        scores.clear();
        scores.resize(n * (q.len() / hd), 0.0);
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU (both sets include
            // AVX2, FMA and F16C); the segments hold `n · stride` values, `col + hd <=
            // stride`, `scores` holds `n` values per head and `stats` two.
            Isa::Avx2 | Isa::Avx512Vnni if hd.is_multiple_of(16) => unsafe {
                match q.len() / hd {
                    1 => x86::attend_avx2::<1>(q, segs, col, stride, scores, out, stats),
                    2 => x86::attend_avx2::<2>(q, segs, col, stride, scores, out, stats),
                    3 => x86::attend_avx2::<3>(q, segs, col, stride, scores, out, stats),
                    4 => x86::attend_avx2::<4>(q, segs, col, stride, scores, out, stats),
                    _ => {
                        for ((qh, oh), st) in q
                            .chunks(hd)
                            .zip(out.chunks_mut(hd))
                            .zip(stats.chunks_mut(2))
                        {
                            let sc = &mut scores[..n];
                            x86::attend_avx2::<1>(qh, segs, col, stride, sc, oh, st)
                        }
                    }
                }
            },
            _ => attend_scalar(q, hd, segs, col, stride, scores, out, stats),
        }
    }

    /// `Σ a[i] b[i]`.
    #[inline]
    pub fn dot_f32(self, a: &[f32], b: &[f32]) -> f32 {
        dot_f32(self.0, a, b)
    }

    /// `y[i] += a · x[i]`.
    #[inline]
    pub fn axpy(self, a: f32, x: &[f32], y: &mut [f32]) {
        axpy(self.0, a, x, y)
    }
}

fn dot_q8_scalar<const R: usize>(kb: usize, w: Q8Row<'_>, xs: [Q8Row<'_>; R], out: &mut [f32]) {
    for (j, o) in out.chunks_exact_mut(R).enumerate() {
        for (r, x) in xs.iter().enumerate() {
            let mut acc = 0f32;
            for b in 0..kb {
                let s: i32 = (0..QK)
                    .map(|i| {
                        let at = q8_offset(kb, b, i);
                        i32::from(w.qs[j * kb * QK + at]) * i32::from(x.qs[at])
                    })
                    .sum();
                acc += s as f32 * (w.d[j * kb + b] * x.d[b]);
            }
            o[r] = acc;
        }
    }
}

fn dot_q4_1_scalar<const R: usize>(kb: usize, w: Q41Row<'_>, xs: [Q8Row<'_>; R], out: &mut [f32]) {
    for (j, o) in out.chunks_exact_mut(R).enumerate() {
        let (wd, wm) = (&w.d[j * kb..(j + 1) * kb], &w.m[j * kb..(j + 1) * kb]);
        let wq = &w.qs[j * kb * QK / 2..(j + 1) * kb * QK / 2];
        for (r, x) in xs.iter().enumerate() {
            let mut acc: f32 = wm.iter().zip(x.s).map(|(m, s)| m * s).sum();
            for b in 0..kb {
                let s: i32 = (0..QK)
                    .map(|i| {
                        let (at, high) = q4_offset(kb, b, i);
                        let q = if high { wq[at] >> 4 } else { wq[at] & 0x0F };
                        i32::from(q) * i32::from(x.qs[q8_offset(kb, b, i)])
                    })
                    .sum();
                acc += s as f32 * (wd[b] * x.d[b]);
            }
            o[r] = acc;
        }
    }
}

/// `out[i] = silu(gate[i]) · up[i]` (SiLU: `g / (1 + e^-g)`).
fn silu_mul_scalar(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g / (1.0 + (-g).exp()) * u;
    }
}

/// `scores[i] = e^(scores[i] − max)` in place; returns `max` and the sum.
fn exp_shift(scores: &mut [f32]) -> (f32, f32) {
    let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - mx).exp();
        sum += *s;
    }
    (mx, sum)
}

/// An f16's value.
#[inline]
fn f16(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

#[allow(clippy::too_many_arguments)]
fn attend_scalar(
    q: &[f32],
    hd: usize,
    segs: &[Segment<'_>],
    col: usize,
    stride: usize,
    scores: &mut [f32],
    out: &mut [f32],
    stats: &mut [f32],
) {
    let n = scores.len() / (q.len() / hd);
    let heads = q.chunks(hd).zip(out.chunks_mut(hd));
    for (((qh, oh), sc), st) in heads.zip(scores.chunks_mut(n)).zip(stats.chunks_mut(2)) {
        let mut i = 0;
        for (k, _, len) in segs {
            for t in 0..*len {
                let kt = &k[t * stride + col..t * stride + col + hd];
                sc[i] = qh.iter().zip(kt).map(|(a, &b)| a * f16(b)).sum();
                i += 1;
            }
        }
        (st[0], st[1]) = exp_shift(sc);
        oh.fill(0.0);
        let mut i = 0;
        for (_, v, len) in segs {
            for t in 0..*len {
                let p = sc[i];
                for (o, &x) in oh
                    .iter_mut()
                    .zip(&v[t * stride + col..t * stride + col + hd])
                {
                    *o += p * f16(x);
                }
                i += 1;
            }
        }
    }
}

/// Combines the parts of [`Kernels::attend_part`] over consecutive ranges of positions
/// (`parts`: per range `heads · hd` outputs then `2 · heads` stats, in position order) into
/// the normalised outputs `out` (`heads · hd`): each range weighted by `e^(max_range −
/// max)`, in order.
pub fn merge_attention(parts: &[f32], heads: usize, hd: usize, out: &mut [f32]) {
    let rec = heads * hd + 2 * heads;
    assert!(
        !parts.is_empty() && parts.len().is_multiple_of(rec) && out.len() == heads * hd,
        "merge_attention: shapes"
    );
    for (h, oh) in out.chunks_mut(hd).enumerate() {
        let stat = |p: &[f32]| (p[heads * hd + 2 * h], p[heads * hd + 2 * h + 1]);
        let mx = parts
            .chunks(rec)
            .map(|p| stat(p).0)
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        oh.fill(0.0);
        for p in parts.chunks(rec) {
            let (m, s) = stat(p);
            let w = (m - mx).exp();
            sum += w * s;
            for (o, &v) in oh.iter_mut().zip(&p[h * hd..(h + 1) * hd]) {
                *o += w * v;
            }
        }
        let inv = 1.0 / sum;
        for o in oh.iter_mut() {
            *o *= inv;
        }
    }
}

/// [`Kernels::dot_f32`]; `isa` must be supported.
#[inline]
fn dot_f32(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32: lengths differ");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only a `Kernels` value calls this (both sets include AVX2 + FMA), and the
        // lengths match.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::dot_f32_avx2(a, b) },
        _ => a.iter().zip(b).map(|(x, y)| x * y).sum(),
    }
}

/// [`Kernels::axpy`]; `isa` must be supported.
#[inline]
fn axpy(isa: Isa, a: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f32`.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::axpy_avx2(a, x, y) },
        _ => {
            for (yi, xi) in y.iter_mut().zip(x) {
                *yi += a * xi;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Q41Row, Q8Row, Segment, GROUP, QK};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// 32 bytes at `p` (unaligned).
    ///
    /// # Safety
    /// 32 bytes are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load<T>(p: *const T) -> __m256i {
        // SAFETY: the caller guarantees 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(p.cast::<__m256i>()) }
    }

    /// Eight f32 at `p` (unaligned).
    ///
    /// # Safety
    /// Eight `f32` are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn loadf(p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_ps(p) }
    }

    /// `acc + Σ a·b` per i32 lane (four unsigned × signed byte products each). AVX2:
    /// `maddubs` then `madd`; its pairwise i16 sums cannot saturate for `a ≤ 127` (Q8_0,
    /// `|q| ≤ 127`) or `a ≤ 15` (Q4_1).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dp_avx2(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
        _mm256_add_epi32(acc, p)
    }

    /// The same with AVX-512 VNNI (`vpdpbusd`: no intermediate i16, the add included).
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn dp_vnni(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, a, b)
    }

    /// The 32 nibbles of a plain Q4_1 block (16 bytes at `p`) as bytes in value order.
    ///
    /// # Safety
    /// 16 bytes are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        // SAFETY: the caller guarantees 16 readable bytes; the load is unaligned.
        let raw = unsafe { _mm_loadu_si128(p.cast::<__m128i>()) };
        let both = _mm256_set_m128i(_mm_srli_epi16::<4>(raw), raw);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }

    /// `e^x` per lane (Cephes' single-precision polynomial: within 2 ulp over the range
    /// softmax and SiLU use; inputs are clamped to ±88.38, where f32 over- or underflows).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp_avx2(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-88.376_26)),
            _mm256_set1_ps(88.376_26),
        );
        // x = n ln 2 + r, |r| <= ln 2 / 2, ln 2 in two parts for an exact n ln 2
        let n = _mm256_floor_ps(_mm256_fmadd_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
            _mm256_set1_ps(0.5),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut y = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_2e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(
            _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r),
            _mm256_set1_ps(1.0),
        );
        // 2^n through the exponent bits (n + 127 >= 0 after the clamp)
        let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(y, _mm256_castsi256_ps(e))
    }

    /// [`super::exp_shift`], eight lanes at a time.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shift_avx2(scores: &mut [f32]) -> (f32, f32) {
        let n = scores.len();
        let body = n / 8 * 8;
        let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
        for c in scores[..body].chunks_exact(8) {
            // SAFETY: eight values.
            mv = _mm256_max_ps(mv, unsafe { loadf(c.as_ptr()) });
        }
        let mut lanes = [0f32; 8];
        // SAFETY: eight writable values; the store is unaligned.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mv) };
        let mx = lanes
            .iter()
            .chain(&scores[body..])
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let (m8, mut sv) = (_mm256_set1_ps(mx), _mm256_setzero_ps());
        for c in scores[..body].chunks_exact_mut(8) {
            // SAFETY: eight values, read and written back.
            unsafe {
                let e = exp_avx2(_mm256_sub_ps(loadf(c.as_ptr()), m8));
                _mm256_storeu_ps(c.as_mut_ptr(), e);
                sv = _mm256_add_ps(sv, e);
            }
        }
        let mut sum = hsum(sv);
        for v in &mut scores[body..] {
            *v = (*v - mx).exp();
            sum += *v;
        }
        (mx, sum)
    }

    /// `out[i] = silu(gate[i]) · up[i]`, eight lanes at a time.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; the three slices have one length.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn silu_mul_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
        let body = out.len() / 8 * 8;
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i < body {
            // SAFETY: `i + 8 <= body <=` the length of each slice.
            unsafe {
                let g = loadf(gate.as_ptr().add(i));
                let e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
                let v = _mm256_mul_ps(
                    _mm256_div_ps(g, _mm256_add_ps(one, e)),
                    loadf(up.as_ptr().add(i)),
                );
                _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        super::silu_mul_scalar(&gate[body..], &up[body..], &mut out[body..]);
    }

    /// One Q8_0 block of 32 values: the values into `q`; returns the scale and `Σ q` (the
    /// portable quantizer's numbers exactly: the same max, scale and rounding, ties to even).
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `x.len() == 32`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_avx2(x: &[f32], q: &mut [i8; QK]) -> (f32, i32) {
        // SAFETY: `x` holds 32 values.
        let v = unsafe { [0, 8, 16, 24].map(|i| loadf(x.as_ptr().add(i))) };
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        let round = |x: __m256| {
            _mm256_cvtps_epi32(_mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(_mm256_mul_ps(x, id)))
        };
        let i = v.map(round);
        let total = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        let t4 = _mm_add_epi32(
            _mm256_castsi256_si128(total),
            _mm256_extracti128_si256::<1>(total),
        );
        let t2 = _mm_add_epi32(t4, _mm_unpackhi_epi64(t4, t4));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(t2, _mm_shuffle_epi32::<1>(t2)));
        // i32 → i16 → i8 packs interleave 128-bit lanes; the permutation restores the order
        let p = _mm256_packs_epi16(
            _mm256_packs_epi32(i[0], i[1]),
            _mm256_packs_epi32(i[2], i[3]),
        );
        let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: `q` is 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast::<__m256i>(), p) };
        (d, sum)
    }

    /// The Q8_0 and Q4_1 dot products for one instruction set: the same code, only the
    /// byte dot product (`$dp`) differs. Whole groups of eight blocks accumulate in i32
    /// lanes (lane `l`: block `l` of the group) and are scaled once per group; the plain
    /// tail blocks are scaled one by one. The order of the float sums is fixed by the row
    /// length alone, so a row's result does not depend on `R` (its batch).
    macro_rules! int8_kernels {
        ($q8:ident, $q41:ident, $features:literal, $dp:ident) => {
            /// # Safety
            /// The CPU supports the function's target features; the rows have the lengths
            /// [`super::Kernels::dot_q8`] checks.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $q8<const R: usize>(
                kb: usize,
                w: Q8Row<'_>,
                xs: [Q8Row<'_>; R],
                out: &mut [f32],
            ) {
                let ng = kb / GROUP;
                for (j, o) in out.chunks_exact_mut(R).enumerate() {
                    let wq = &w.qs[j * kb * QK..(j + 1) * kb * QK];
                    let wds = &w.d[j * kb..(j + 1) * kb];
                    let mut acc = [_mm256_setzero_ps(); R];
                    for g in 0..ng {
                        let (mut ia, mut ib) =
                            ([_mm256_setzero_si256(); R], [_mm256_setzero_si256(); R]);
                        for i in 0..GROUP {
                            let at = g * GROUP * QK + i * 32;
                            // SAFETY: `at + 32 <= ng · 256 <= kb · 32`, the length of every
                            // row's values.
                            let wv = unsafe { load(wq.as_ptr().add(at)) };
                            // |w| · (x · sign w) = w · x, in the unsigned × signed form the
                            // byte dot products take
                            let aw = _mm256_sign_epi8(wv, wv);
                            for r in 0..R {
                                // SAFETY: as above.
                                let xv = unsafe { load(xs[r].qs.as_ptr().add(at)) };
                                // two chains per row, as in the Q4_1 kernel
                                let p = _mm256_sign_epi8(xv, wv);
                                if i % 2 == 0 {
                                    ia[r] = $dp(ia[r], aw, p);
                                } else {
                                    ib[r] = $dp(ib[r], aw, p);
                                }
                            }
                        }
                        // SAFETY: `g · 8 + 8 <= kb` scales in every row.
                        let wd = unsafe { loadf(wds.as_ptr().add(g * GROUP)) };
                        for r in 0..R {
                            let ia = _mm256_add_epi32(ia[r], ib[r]);
                            // SAFETY: as above.
                            let xd = unsafe { loadf(xs[r].d.as_ptr().add(g * GROUP)) };
                            let s = _mm256_mul_ps(wd, xd);
                            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), s, acc[r]);
                        }
                    }
                    for b in ng * GROUP..kb {
                        // SAFETY: block `b < kb` is 32 plain values at `b · 32` in every row.
                        let wv = unsafe { load(wq.as_ptr().add(b * QK)) };
                        let aw = _mm256_sign_epi8(wv, wv);
                        for r in 0..R {
                            // SAFETY: as above.
                            let xv = unsafe { load(xs[r].qs.as_ptr().add(b * QK)) };
                            let p = $dp(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xv, wv));
                            let s = _mm256_set1_ps(wds[b] * xs[r].d[b]);
                            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r]);
                        }
                    }
                    for r in 0..R {
                        o[r] = hsum(acc[r]);
                    }
                }
            }

            /// # Safety
            /// The CPU supports the function's target features; the rows have the lengths
            /// [`super::Kernels::dot_q4_1`] checks.
            // (the VNNI twin is the tests' reference for `dot_q4_1_vnni512`)
            #[cfg_attr(not(test), allow(dead_code))]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $q41<const R: usize>(
                kb: usize,
                w: Q41Row<'_>,
                xs: [Q8Row<'_>; R],
                out: &mut [f32],
            ) {
                let ng = kb / GROUP;
                let mask = _mm256_set1_epi8(0x0F);
                for (j, o) in out.chunks_exact_mut(R).enumerate() {
                    let wq = &w.qs[j * kb * QK / 2..(j + 1) * kb * QK / 2];
                    let (wds, wms) = (&w.d[j * kb..(j + 1) * kb], &w.m[j * kb..(j + 1) * kb]);
                    let mut acc = [_mm256_setzero_ps(); R];
                    for g in 0..ng {
                        let (mut ia, mut ib) =
                            ([_mm256_setzero_si256(); R], [_mm256_setzero_si256(); R]);
                        for p in 0..GROUP / 2 {
                            // SAFETY: `g · 128 + p · 32 + 32 <= kb · 16` bytes of the row.
                            let raw = unsafe { load(wq.as_ptr().add(g * GROUP * QK / 2 + p * 32)) };
                            let lo = _mm256_and_si256(raw, mask);
                            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), mask);
                            let at = g * GROUP * QK + p * 64;
                            for r in 0..R {
                                // SAFETY: `at + 64 <= ng · 256 <= kb · 32` values in every
                                // row.
                                let (x0, x1) = unsafe {
                                    let x = xs[r].qs.as_ptr().add(at);
                                    (load(x), load(x.add(32)))
                                };
                                // two chains per row: the byte dot product's latency, not
                                // its throughput, bounds one chain (integer sums: exact in
                                // any order)
                                ia[r] = $dp(ia[r], lo, x0);
                                ib[r] = $dp(ib[r], hi, x1);
                            }
                        }
                        // SAFETY: `g · 8 + 8 <= kb` scales, mins and sums in every row.
                        let (wd, wm) = unsafe {
                            (
                                loadf(wds.as_ptr().add(g * GROUP)),
                                loadf(wms.as_ptr().add(g * GROUP)),
                            )
                        };
                        for r in 0..R {
                            let ia = _mm256_add_epi32(ia[r], ib[r]);
                            // SAFETY: as above.
                            let (xd, xsum) = unsafe {
                                (
                                    loadf(xs[r].d.as_ptr().add(g * GROUP)),
                                    loadf(xs[r].s.as_ptr().add(g * GROUP)),
                                )
                            };
                            let s = _mm256_mul_ps(wd, xd);
                            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), s, acc[r]);
                            acc[r] = _mm256_fmadd_ps(wm, xsum, acc[r]);
                        }
                    }
                    let mut tail = [0f32; R];
                    for b in ng * GROUP..kb {
                        // SAFETY: plain block `b < kb`: 16 bytes at `b · 16` of the weight
                        // row, 32 values at `b · 32` of every activation row.
                        let q = unsafe { nibbles(wq.as_ptr().add(b * QK / 2)) };
                        for r in 0..R {
                            // SAFETY: as above.
                            let xv = unsafe { load(xs[r].qs.as_ptr().add(b * QK)) };
                            let p = $dp(_mm256_setzero_si256(), q, xv);
                            let s = _mm256_set1_ps(wds[b] * xs[r].d[b]);
                            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r]);
                            tail[r] += wms[b] * xs[r].s[b];
                        }
                    }
                    for r in 0..R {
                        o[r] = hsum(acc[r]) + tail[r];
                    }
                }
            }
        };
    }

    int8_kernels!(dot_q8_avx2, dot_q4_1_avx2, "avx2,fma", dp_avx2);
    int8_kernels!(
        dot_q8_vnni,
        dot_q4_1_vnni,
        "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni",
        dp_vnni
    );

    /// [`dot_q4_1_vnni`] on 512-bit vectors: a group's packed vector `p` (low and high
    /// nibbles) becomes one 64-byte vector of Q8_0 vectors `2p` and `2p + 1`, so a group
    /// takes four byte dot products per row instead of eight; the halves are added before
    /// the scaling, which is that of the 256-bit kernel, so the results are the same bits.
    ///
    /// # Safety
    /// The CPU supports AVX-512 F/BW/VL/VNNI, AVX2 and FMA; the rows have the lengths
    /// [`super::Kernels::dot_q4_1`] checks.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn dot_q4_1_vnni512<const R: usize>(
        kb: usize,
        w: Q41Row<'_>,
        xs: [Q8Row<'_>; R],
        out: &mut [f32],
    ) {
        let ng = kb / GROUP;
        let mask = _mm512_set1_epi8(0x0F);
        // the upper 256 bits take the high nibbles
        let shift = _mm512_inserti64x4::<1>(_mm512_setzero_si512(), _mm256_set1_epi16(4));
        for (j, o) in out.chunks_exact_mut(R).enumerate() {
            let wq = &w.qs[j * kb * QK / 2..(j + 1) * kb * QK / 2];
            let (wds, wms) = (&w.d[j * kb..(j + 1) * kb], &w.m[j * kb..(j + 1) * kb]);
            let mut acc = [_mm256_setzero_ps(); R];
            for g in 0..ng {
                let (mut ia, mut ib) = ([_mm512_setzero_si512(); R], [_mm512_setzero_si512(); R]);
                for p in 0..GROUP / 2 {
                    // SAFETY: `g · 128 + p · 32 + 32 <= kb · 16` bytes of the row.
                    let raw = unsafe { load(wq.as_ptr().add(g * GROUP * QK / 2 + p * 32)) };
                    let both = _mm512_broadcast_i64x4(raw);
                    let v = _mm512_and_si512(_mm512_srlv_epi16(both, shift), mask);
                    let at = g * GROUP * QK + p * 64;
                    for r in 0..R {
                        // SAFETY: `at + 64 <= ng · 256 <= kb · 32` values in every row.
                        let x = unsafe { _mm512_loadu_si512(xs[r].qs.as_ptr().add(at).cast()) };
                        if p % 2 == 0 {
                            ia[r] = _mm512_dpbusd_epi32(ia[r], v, x);
                        } else {
                            ib[r] = _mm512_dpbusd_epi32(ib[r], v, x);
                        }
                    }
                }
                // SAFETY: `g · 8 + 8 <= kb` scales, mins and sums in every row.
                let (wd, wm) = unsafe {
                    (
                        loadf(wds.as_ptr().add(g * GROUP)),
                        loadf(wms.as_ptr().add(g * GROUP)),
                    )
                };
                for r in 0..R {
                    let s = _mm512_add_epi32(ia[r], ib[r]);
                    let ia = _mm256_add_epi32(
                        _mm512_castsi512_si256(s),
                        _mm512_extracti64x4_epi64::<1>(s),
                    );
                    // SAFETY: as above.
                    let (xd, xsum) = unsafe {
                        (
                            loadf(xs[r].d.as_ptr().add(g * GROUP)),
                            loadf(xs[r].s.as_ptr().add(g * GROUP)),
                        )
                    };
                    let s = _mm256_mul_ps(wd, xd);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia), s, acc[r]);
                    acc[r] = _mm256_fmadd_ps(wm, xsum, acc[r]);
                }
            }
            let mut tail = [0f32; R];
            for b in ng * GROUP..kb {
                // SAFETY: plain block `b < kb`: 16 bytes at `b · 16` of the weight row, 32
                // values at `b · 32` of every activation row.
                let q = unsafe { nibbles(wq.as_ptr().add(b * QK / 2)) };
                for r in 0..R {
                    // SAFETY: as above.
                    let xv = unsafe { load(xs[r].qs.as_ptr().add(b * QK)) };
                    let p = dp_vnni(_mm256_setzero_si256(), q, xv);
                    let s = _mm256_set1_ps(wds[b] * xs[r].d[b]);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r]);
                    tail[r] += wms[b] * xs[r].s[b];
                }
            }
            for r in 0..R {
                o[r] = hsum(acc[r]) + tail[r];
            }
        }
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: `i + 16 <= n` elements of both slices are readable.
            unsafe {
                let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa), _mm256_loadu_ps(pb), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8)), s1);
            }
            i += 16;
        }
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n`.
            unsafe {
                let v = _mm256_loadu_ps(a.as_ptr().add(i));
                s0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(b.as_ptr().add(i)), s0);
            }
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA; `x.len() == y.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len();
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` elements of both slices are in bounds.
            unsafe {
                let py = y.as_mut_ptr().add(i);
                let v =
                    _mm256_fmadd_ps(av, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(py));
                _mm256_storeu_ps(py, v);
            }
            i += 8;
        }
        while i < n {
            y[i] += a * x[i];
            i += 1;
        }
    }

    /// Eight f16 values from `p` as f32 (exact).
    ///
    /// # Safety
    /// Eight `u16` are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_f16(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees 16 readable bytes; the load is unaligned.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast::<__m128i>()) })
    }

    /// # Safety
    /// The CPU supports AVX2, FMA and F16C; `q.len() == out.len() == H · hd` with `hd` a
    /// multiple of 16; every segment holds `n · stride` values, `col + hd <= stride`,
    /// `scores.len() == H · n` (`n`: the positions of all segments) and `stats.len() == 2H`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn attend_avx2<const H: usize>(
        q: &[f32],
        segs: &[Segment<'_>],
        col: usize,
        stride: usize,
        scores: &mut [f32],
        out: &mut [f32],
        stats: &mut [f32],
    ) {
        let hd = q.len() / H;
        let n = scores.len() / H;
        // scores: each key is converted once and multiplied into every head of the group
        let mut idx = 0;
        for (k, _, len) in segs {
            for t in 0..*len {
                let base = t * stride + col;
                let mut acc = [_mm256_setzero_ps(); H];
                let mut i = 0;
                while i < hd {
                    // SAFETY: `base + i + 8 <= t · stride + col + hd <= len · stride`.
                    let kv = unsafe { load_f16(k.as_ptr().add(base + i)) };
                    for h in 0..H {
                        // SAFETY: `h · hd + i + 8 <= H · hd = q.len()`.
                        let qv = unsafe { loadf(q.as_ptr().add(h * hd + i)) };
                        acc[h] = _mm256_fmadd_ps(qv, kv, acc[h]);
                    }
                    i += 8;
                }
                for h in 0..H {
                    scores[h * n + idx] = hsum(acc[h]);
                }
                idx += 1;
            }
        }
        for (sc, st) in scores.chunks_mut(n).zip(stats.chunks_mut(2)) {
            // SAFETY: this function's features include exp_shift_avx2's.
            (st[0], st[1]) = unsafe { exp_shift_avx2(sc) };
        }
        // values, sixteen columns at a time with every head's sums in registers
        let mut c = 0;
        while c < hd {
            let mut acc = [[_mm256_setzero_ps(); 2]; H];
            let mut idx = 0;
            for (_, v, len) in segs {
                for t in 0..*len {
                    let base = t * stride + col + c;
                    // SAFETY: `base + 16 <= t · stride + col + hd <= len · stride`.
                    let (v0, v1) = unsafe {
                        let p = v.as_ptr().add(base);
                        (load_f16(p), load_f16(p.add(8)))
                    };
                    for h in 0..H {
                        let p = _mm256_set1_ps(scores[h * n + idx]);
                        acc[h][0] = _mm256_fmadd_ps(p, v0, acc[h][0]);
                        acc[h][1] = _mm256_fmadd_ps(p, v1, acc[h][1]);
                    }
                    idx += 1;
                }
            }
            for h in 0..H {
                // SAFETY: `h · hd + c + 16 <= H · hd = out.len()`.
                unsafe {
                    let o = out.as_mut_ptr().add(h * hd + c);
                    _mm256_storeu_ps(o, acc[h][0]);
                    _mm256_storeu_ps(o.add(8), acc[h][1]);
                }
            }
            c += 16;
        }
    }

    const _: () = assert!(
        QK == 32,
        "the x86 kernels load a block as one 256-bit vector"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seed: u64, n: usize) -> Vec<f32> {
        let mut r = agentq_core::rng::Rng::new(seed);
        (0..n).map(|_| r.uniform(-2.0, 2.0) as f32).collect()
    }

    #[test]
    fn quantization_round_trips_within_half_a_step() {
        let x = rows(1, 100); // a short last block
        let mut q = vec![BlockQ8::ZERO; x.len().div_ceil(QK)];
        quantize_row(&x, &mut q);
        let mut back = vec![0f32; x.len()];
        dequantize_row(&q, &mut back);
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            let step = q[i / QK].d;
            assert!((a - b).abs() <= step * 0.5 + 1e-6, "{i}: {a} vs {b}");
        }
        assert!(q[3].qs[4..].iter().all(|&v| v == 0), "padding is zero");
        let mut z = [BlockQ8::ZERO];
        quantize_row(&[0.0; 5], &mut z);
        assert_eq!(z[0], BlockQ8::ZERO);
    }

    #[test]
    fn packed_layouts_place_every_value_once() {
        for kb in [1, 7, 8, 9, 18, 48] {
            let mut seen = vec![false; kb * QK];
            let mut nib = vec![[false; 2]; kb * QK / 2];
            for b in 0..kb {
                for j in 0..QK {
                    let at = q8_offset(kb, b, j);
                    assert!(!seen[at], "kb {kb}: block {b} value {j} collides");
                    seen[at] = true;
                    let (at, high) = q4_offset(kb, b, j);
                    assert!(!nib[at][usize::from(high)], "kb {kb}: nibble collides");
                    nib[at][usize::from(high)] = true;
                }
            }
        }
        // a packed activation row holds the block quantizer's values, and its sums
        let x = rows(7, 18 * QK - 5);
        let packed = Q8Rows::quantize(&x, x.len());
        let mut blocks = vec![BlockQ8::ZERO; 18];
        quantize_row(&x, &mut blocks);
        for (i, &v) in x.iter().enumerate() {
            let b = &blocks[i / QK];
            let got = packed.value(0, i);
            assert!((got - b.d * f32::from(b.qs[i % QK])).abs() <= b.d, "{i}");
            assert!((got - v).abs() <= b.d * 0.5 + 1e-6, "{i}: {got} vs {v}");
        }
        let row = packed.row(0);
        for b in 0..18 {
            let sum: f32 = (0..QK)
                .map(|j| f32::from(row.qs[q8_offset(18, b, j)]))
                .sum();
            assert_eq!(row.s[b], row.d[b] * sum);
        }
    }

    #[test]
    fn q4_1_quantization_is_within_half_a_step_and_exact_on_its_own_grid() {
        let x = rows(5, 70);
        let mut q = vec![BlockQ4_1::ZERO; x.len().div_ceil(QK)];
        quantize_row_q4_1(&x, &mut q);
        let back: Vec<f32> = (0..x.len()).map(|i| q[i / QK].value(i % QK)).collect();
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= q[i / QK].d * 0.5 + 1e-6, "{i}: {a} vs {b}");
        }
        // values already on a Q4_1 grid (as dequantized from a Q4_1 file) come back exactly
        let mut again = vec![BlockQ4_1::ZERO; q.len()];
        quantize_row_q4_1(&back, &mut again);
        let twice: Vec<f32> = (0..x.len()).map(|i| again[i / QK].value(i % QK)).collect();
        for (a, b) in back.iter().zip(&twice) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
        // a dot product equals the one of the dequantized weights
        let xq = Q8Rows::quantize(&rows(6, 70), 70);
        let xs: Vec<f32> = (0..70).map(|i| xq.value(0, i)).collect();
        let want: f32 = back.iter().zip(&xs).map(|(a, b)| a * b).sum();
        let w = Packed4::new(&q);
        let got = run::<1>(|o| dot_q4_1_scalar(3, w.row(), [xq.row(0)], o))[0];
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    }

    /// The `R` results of one weight row.
    fn run<const R: usize>(f: impl FnOnce(&mut [f32])) -> [f32; R] {
        let mut o = [0f32; R];
        f(&mut o);
        o
    }

    /// A packed Q4_1 weight row owned by a test.
    struct Packed4(Vec<u8>, Vec<f32>, Vec<f32>);

    impl Packed4 {
        fn new(blocks: &[BlockQ4_1]) -> Packed4 {
            let kb = blocks.len();
            let mut p = Packed4(vec![0; kb * QK / 2], vec![0.0; kb], vec![0.0; kb]);
            pack_q4_1(blocks, &mut p.0, &mut p.1, &mut p.2);
            p
        }

        fn row(&self) -> Q41Row<'_> {
            Q41Row {
                qs: &self.0,
                d: &self.1,
                m: &self.2,
            }
        }
    }

    #[test]
    fn every_supported_isa_gives_the_scalar_dot_products() {
        // 19 blocks: two interleaved groups and three plain blocks
        let (n, m) = (32 * 19, 4);
        let kb = n / QK;
        let mut wb = vec![BlockQ8::ZERO; kb];
        quantize_row(&rows(2, n), &mut wb);
        let (mut wqs, mut wd) = (vec![0i8; n], vec![0f32; kb]);
        pack_q8(&wb, &mut wqs, &mut wd);
        let w = Q8Row {
            qs: &wqs,
            d: &wd,
            s: &[],
        };
        let xs: Vec<f32> = (0..m).flat_map(|i| rows(10 + i as u64, n)).collect();
        let xq = Q8Rows::quantize(&xs, n);
        let x4 = [xq.row(0), xq.row(1), xq.row(2), xq.row(3)];
        let want = run::<4>(|o| dot_q8_scalar(kb, w, x4, o));
        // the packed dot product is the one of the dequantized values
        for r in 0..m {
            let direct: f32 = (0..n)
                .map(|i| {
                    let b = &wb[i / QK];
                    b.d * f32::from(b.qs[i % QK]) * xq.value(r, i)
                })
                .sum();
            assert!((want[r] - direct).abs() <= 1e-3 * direct.abs().max(1.0));
        }
        let mut w4b = vec![BlockQ4_1::ZERO; kb];
        quantize_row_q4_1(&rows(3, n), &mut w4b);
        let w4 = Packed4::new(&w4b);
        let want4 = run::<4>(|o| dot_q4_1_scalar(kb, w4.row(), x4, o));
        let (a, b) = (rows(3, 67), rows(4, 67));
        let want_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        for k in Isa::ALL.into_iter().filter_map(Kernels::new) {
            let isa = k.isa();
            // the quantizer gives the portable one's values, ties and a short block included
            let mut x = xs[..n - 7].to_vec();
            // block 0 with scale 1: exact halves round to even
            x[..4].copy_from_slice(&[127.0, 2.5, -3.5, 0.5]);
            let mut x0 = x.clone();
            x0[40..72].fill(0.0);
            for x in [x, x0] {
                let mut got = Q8Rows::default();
                got.reset(1, x.len());
                let (qs, d, s) = got.parts_mut();
                k.quantize(&x, qs, d, s);
                let want = Q8Rows::quantize(&x, x.len());
                assert_eq!((got.qs, got.d, got.s), (want.qs, want.d, want.s), "{isa:?}");
            }
            let ties = Q8Rows::quantize(&[127.0, 2.5, -3.5, 0.5], 4);
            let tq: Vec<i8> = (0..4).map(|i| ties.row(0).qs[q8_offset(1, 0, i)]).collect();
            assert_eq!(tq, [127, 2, -4, 0]);
            let got = run::<4>(|o| k.dot_q8(kb, w, x4, o));
            let got4 = run::<4>(|o| k.dot_q4_1(kb, w4.row(), x4, o));
            for r in 0..m {
                for (g, w) in [(got[r], want[r]), (got4[r], want4[r])] {
                    assert!(
                        (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                        "{isa:?}: {g} vs {w}"
                    );
                }
                let one = run::<1>(|o| k.dot_q8(kb, w, [xq.row(r)], o));
                assert_eq!(one[0], got[r], "{isa:?}: batching changes nothing");
                let one = run::<1>(|o| k.dot_q4_1(kb, w4.row(), [xq.row(r)], o));
                assert_eq!(one[0], got4[r], "{isa:?}: batching changes nothing");
            }
            // the 512-bit Q4_1 kernel gives the 256-bit one's bits
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx512Vnni {
                let mut narrow = [0f32; 4];
                // SAFETY: the AVX-512 VNNI set was detected (`Kernels::new`); the lengths match.
                unsafe { x86::dot_q4_1_vnni(kb, w4.row(), x4, &mut narrow) };
                assert_eq!(narrow, got4, "512-bit and 256-bit Q4_1 kernels");
            }
            // a run of weight rows gives each row's own results
            let (wqs2, wd2) = (
                [wqs.clone(), wqs.clone()].concat(),
                [wd.clone(), wd.clone()].concat(),
            );
            let w2 = Q8Row {
                qs: &wqs2,
                d: &wd2,
                s: &[],
            };
            let mut both = [0f32; 8];
            k.dot_q8(kb, w2, x4, &mut both);
            assert_eq!(both[..4], got, "{isa:?}: a run of rows");
            assert_eq!(both[4..], got, "{isa:?}: a run of rows");
            let p2 = Packed4(
                [w4.0.clone(), w4.0.clone()].concat(),
                [w4.1.clone(), w4.1.clone()].concat(),
                [w4.2.clone(), w4.2.clone()].concat(),
            );
            k.dot_q4_1(kb, p2.row(), x4, &mut both);
            assert_eq!(both[..4], got4, "{isa:?}: a run of rows");
            assert_eq!(both[4..], got4, "{isa:?}: a run of rows");
            // attention of a group of heads over two segments against the scalar version,
            // and against each head alone
            // a long single segment: the vectorised softmax body and wide heads
            {
                let (hd, stride, col, n) = (96, 96, 0, 20);
                let bits = |x: Vec<f32>| -> Vec<u16> {
                    x.iter()
                        .map(|&v| half::f16::from_f32(v).to_bits())
                        .collect()
                };
                let keys = bits(rows(30, n * stride));
                let vals = bits(rows(31, n * stride));
                let q = rows(32, 3 * hd);
                let segs = [(&keys[..], &vals[..], n)];
                let s = Kernels::new(Isa::Scalar).unwrap();
                let (mut a, mut b) = (vec![0f32; 3 * hd], vec![0f32; 3 * hd]);
                let mut scratch = Vec::new();
                s.attend(&q, hd, &segs, col, stride, &mut scratch, &mut a);
                k.attend(&q, hd, &segs, col, stride, &mut scratch, &mut b);
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() < 1e-5, "{isa:?}: long attention {x} vs {y}");
                }
            }
            let (hd, stride, col) = (16, 48, 16);
            let bits = |x: Vec<f32>| -> Vec<u16> {
                x.iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect()
            };
            let keys = bits(rows(20, 7 * stride));
            let vals = bits(rows(21, 7 * stride));
            let segs = [
                (&keys[..4 * stride], &vals[..4 * stride], 4),
                (&keys[4 * stride..], &vals[4 * stride..], 2),
            ];
            for heads in [1, 3, 5] {
                let q = rows(22, heads * hd);
                // the reference: softmax attention in f64 over the six positions
                let at = |x: &[u16], t: usize, i: usize| f64::from(f16(x[t * stride + col + i]));
                let mut want = vec![0f64; heads * hd];
                for (h, wh) in want.chunks_mut(hd).enumerate() {
                    let qh = &q[h * hd..(h + 1) * hd];
                    // positions 0..4 in the first segment, 4 and 5 in the second
                    let sc: Vec<f64> = (0..6)
                        .map(|t| (0..hd).map(|i| f64::from(qh[i]) * at(&keys, t, i)).sum())
                        .collect();
                    let mx = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                    let total: f64 = e.iter().sum();
                    for (t, p) in e.iter().enumerate() {
                        for (i, w) in wh.iter_mut().enumerate() {
                            *w += p / total * at(&vals, t, i);
                        }
                    }
                }
                let mut scratch = Vec::new();
                let mut o = vec![0f32; heads * hd];
                k.attend(&q, hd, &segs, col, stride, &mut scratch, &mut o);
                // and the same from two parts (one per segment), merged
                let rec = heads * hd + 2 * heads;
                let mut parts = vec![0f32; 2 * rec];
                for (seg, part) in segs.iter().zip(parts.chunks_mut(rec)) {
                    let (po, ps) = part.split_at_mut(heads * hd);
                    k.attend_part(&q, hd, &[*seg], col, stride, &mut scratch, po, ps);
                }
                let mut merged = vec![0f32; heads * hd];
                merge_attention(&parts, heads, hd, &mut merged);
                for ((a, b), w) in o.iter().zip(&merged).zip(&want) {
                    assert!(
                        (f64::from(*a) - w).abs() < 1e-5,
                        "{isa:?}: attention {a} vs {w}"
                    );
                    assert!(
                        (f64::from(*b) - w).abs() < 1e-5,
                        "{isa:?}: merged {b} vs {w}"
                    );
                }
                for h in 0..heads {
                    let mut one = vec![0f32; hd];
                    let qh = &q[h * hd..(h + 1) * hd];
                    k.attend(qh, hd, &segs, col, stride, &mut scratch, &mut one);
                    assert_eq!(one, o[h * hd..(h + 1) * hd], "{isa:?}: a head alone");
                }
            }
            // SiLU (and the exponential under it) against f64, over the whole range
            let g: Vec<f32> = (0..2001).map(|i| (i as f32 - 1000.0) * 0.09).collect();
            let up: Vec<f32> = (0..2001).map(|i| 1.0 + (i % 7) as f32).collect();
            let mut got = vec![0f32; g.len()];
            k.silu_mul(&g, &up, &mut got);
            for ((&g, &u), &v) in g.iter().zip(&up).zip(&got) {
                let want = f64::from(g) / (1.0 + (-f64::from(g)).exp()) * f64::from(u);
                let err = (f64::from(v) - want).abs();
                assert!(
                    err <= 1e-6 * want.abs() + 1e-30,
                    "{isa:?}: silu({g}) {v} vs {want}"
                );
            }
            let d = k.dot_f32(&a, &b);
            assert!((d - want_dot).abs() < 1e-4, "{isa:?}: {d} vs {want_dot}");
            let mut y = b.clone();
            k.axpy(0.5, &a, &mut y);
            for i in 0..a.len() {
                assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
            }
        }
    }
}
