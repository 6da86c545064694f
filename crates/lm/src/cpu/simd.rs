//! The CPU inference kernels: Q8_0 and Q4_1 weight blocks, Q8_0 activation blocks, their
//! dot products and the f32 vector ops of attention, each with a portable scalar version and
//! x86-64 versions picked at run time ([`Isa::detect`]).
//!
//! This is the one module of the workspace that may use `unsafe` (the lint is `deny`
//! elsewhere, checked by `tests/it/tidy.rs`): `std::arch` loads take raw pointers, and a
//! `#[target_feature]` function may only be called once the feature was detected. Every
//! `unsafe` block states why it holds. Instruction sets used: AVX2 + FMA, and AVX-512 VNNI
//! (`vpdpbusd` on 256-bit registers). Never AMX: on the VMs this project runs on, cpuinfo
//! lists AMX but `tileloadd` raises SIGILL (`shared/reference/llamacpp.md`), so nothing here
//! is compiled for it and detection never asks for it.
#![allow(unsafe_code)]

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

/// `d · Σ q` of each activation block: the sums the Q4_1 dot product needs for its `m` term.
pub fn block_sums(x: &[BlockQ8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(x) {
        *o = b.d * b.qs.iter().map(|&q| i32::from(q)).sum::<i32>() as f32;
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
    /// AVX2, FMA and AVX-512 VNNI on 256-bit vectors (`vpdpbusd`).
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

    /// `out[r] = Σ_b w[b] · xs[r][b]` for `R` activation rows against one weight row (every
    /// row has `w.len()` blocks).
    #[inline]
    pub fn dot_q8<const R: usize>(self, w: &[BlockQ8], xs: [&[BlockQ8]; R]) -> [f32; R] {
        dot_q8(self.0, w, xs)
    }

    /// `out[r] = Σ_b w[b] · xs[r][b]` for `R` activation rows against one Q4_1 weight row:
    /// the scale part `Σ_b d_b · dx · Σ q · xq` plus the min part `Σ_b mins[b] · sums[r][b]`
    /// (`mins`: the row's block mins; `sums[r]`: the activation's [`block_sums`]).
    #[inline]
    pub fn dot_q4_1<const R: usize>(
        self,
        w: &[BlockQ4_1],
        mins: &[f32],
        xs: [&[BlockQ8]; R],
        sums: [&[f32]; R],
    ) -> [f32; R] {
        assert_eq!(mins.len(), w.len(), "dot_q4_1: mins");
        for (x, s) in xs.iter().zip(&sums) {
            assert!(
                x.len() == w.len() && s.len() == w.len(),
                "dot_q4_1: rows of different lengths"
            );
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU; the lengths match.
            Isa::Avx512Vnni => unsafe { x86::dot_q4_1_vnni(w, mins, xs, sums) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { x86::dot_q4_1_avx2(w, mins, xs, sums) },
            _ => dot_q4_1_scalar(w, mins, xs, sums),
        }
    }

    /// Causal attention of one scaled query head `q` over the positions of `segs`, in
    /// order: per segment its keys and values (f16 bits, position-major, `stride` values
    /// per position, this head's at column `col`) and how many positions count. Writes the
    /// head's output into `out`; `scores` is scratch.
    pub fn attend(
        self,
        q: &[f32],
        segs: &[Segment<'_>],
        col: usize,
        stride: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let hd = q.len();
        assert!(out.len() == hd && col + hd <= stride, "attend: shapes");
        for (k, v, n) in segs {
            assert!(
                k.len() >= n * stride && v.len() >= n * stride,
                "attend: segment"
            );
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernels` value was checked against this CPU (both sets include
            // AVX2 + FMA); the segments hold `n · stride` values and `col + hd <= stride`.
            Isa::Avx2 | Isa::Avx512Vnni if hd.is_multiple_of(8) => unsafe {
                x86::attend_avx2(q, segs, col, stride, scores, out)
            },
            _ => attend_scalar(q, segs, col, stride, scores, out),
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

/// [`Kernels::dot_q8`]; `isa` must be supported (a [`Kernels`] value says so).
#[inline]
fn dot_q8<const R: usize>(isa: Isa, w: &[BlockQ8], xs: [&[BlockQ8]; R]) -> [f32; R] {
    for x in &xs {
        assert_eq!(x.len(), w.len(), "dot_q8: rows of different lengths");
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only a `Kernels` value (checked against this CPU) calls this, and the
        // lengths match.
        Isa::Avx512Vnni => unsafe { x86::dot_q8_vnni(w, xs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::dot_q8_avx2(w, xs) },
        _ => dot_q8_scalar(w, xs),
    }
}

fn dot_q8_scalar<const R: usize>(w: &[BlockQ8], xs: [&[BlockQ8]; R]) -> [f32; R] {
    let mut out = [0f32; R];
    for (r, x) in xs.iter().enumerate() {
        let mut acc = 0f32;
        for (wb, xb) in w.iter().zip(x.iter()) {
            let s: i32 = wb
                .qs
                .iter()
                .zip(&xb.qs)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            acc += s as f32 * (wb.d * xb.d);
        }
        out[r] = acc;
    }
    out
}

fn dot_q4_1_scalar<const R: usize>(
    w: &[BlockQ4_1],
    mins: &[f32],
    xs: [&[BlockQ8]; R],
    sums: [&[f32]; R],
) -> [f32; R] {
    let mut out = [0f32; R];
    for r in 0..R {
        let mut acc: f32 = mins.iter().zip(sums[r]).map(|(m, s)| m * s).sum();
        for (b, wb) in w.iter().enumerate() {
            let xb = &xs[r][b];
            let mut s = 0i32;
            for (k, &byte) in wb.qs.iter().enumerate() {
                s += i32::from(byte & 0x0F) * i32::from(xb.qs[k]);
                s += i32::from(byte >> 4) * i32::from(xb.qs[k + QK / 2]);
            }
            acc += s as f32 * (wb.d * xb.d);
        }
        out[r] = acc;
    }
    out
}

/// Softmax of `scores` in place.
fn softmax(scores: &mut [f32]) {
    let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - mx).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    for s in scores.iter_mut() {
        *s *= inv;
    }
}

/// An f16's value.
#[inline]
fn f16(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

fn attend_scalar(
    q: &[f32],
    segs: &[Segment<'_>],
    col: usize,
    stride: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    scores.clear();
    for (k, _, n) in segs {
        for t in 0..*n {
            let kt = &k[t * stride + col..t * stride + col + hd];
            scores.push(q.iter().zip(kt).map(|(a, &b)| a * f16(b)).sum());
        }
    }
    softmax(scores);
    out.fill(0.0);
    let mut i = 0;
    for (_, v, n) in segs {
        for t in 0..*n {
            let p = scores[i];
            for (o, &x) in out
                .iter_mut()
                .zip(&v[t * stride + col..t * stride + col + hd])
            {
                *o += p * f16(x);
            }
            i += 1;
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
    use super::{BlockQ4_1, BlockQ8, Segment, QK};
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

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(b: &BlockQ8) -> __m256i {
        // SAFETY: `qs` is 32 readable bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast::<__m256i>()) }
    }

    /// `Σ a·b` of 32 unsigned × 32 signed bytes, as eight i32 lanes (AVX2: `maddubs`,
    /// whose pairwise i16 sums cannot saturate for `a ≤ 127` or `a ≤ 15`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn idot_avx2(a: __m256i, b: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
    }

    /// The same with AVX-512 VNNI (`vpdpbusd`, no intermediate i16).
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    fn idot_vnni(a: __m256i, b: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
    }

    /// The 32 nibbles of a Q4_1 block as bytes in value order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn nibbles(b: &BlockQ4_1) -> __m256i {
        // SAFETY: `qs` is 16 readable bytes; the load is unaligned.
        let raw = unsafe { _mm_loadu_si128(b.qs.as_ptr().cast::<__m128i>()) };
        let both = _mm256_set_m128i(_mm_srli_epi16::<4>(raw), raw);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }

    /// The Q8_0 and Q4_1 dot products for one instruction set: the same code, only the
    /// byte dot product (`$idot`) differs.
    macro_rules! int8_kernels {
        ($q8:ident, $q41:ident, $features:literal, $idot:ident) => {
            /// # Safety
            /// The CPU supports the function's target features; every `xs[r]` has
            /// `w.len()` blocks.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $q8<const R: usize>(
                w: &[BlockQ8],
                xs: [&[BlockQ8]; R],
            ) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, wb) in w.iter().enumerate() {
                    let wv = load(wb);
                    // |w| · (x · sign w) = w · x, in the unsigned × signed form the byte
                    // dot products take.
                    let aw = _mm256_sign_epi8(wv, wv);
                    for r in 0..R {
                        let xb = &xs[r][b];
                        let p = $idot(aw, _mm256_sign_epi8(load(xb), wv));
                        let s = _mm256_set1_ps(wb.d * xb.d);
                        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r]);
                    }
                }
                let mut out = [0f32; R];
                for r in 0..R {
                    out[r] = hsum(acc[r]);
                }
                out
            }

            /// # Safety
            /// The CPU supports the function's target features; `mins`, every `xs[r]` and
            /// every `sums[r]` have `w.len()` entries.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $q41<const R: usize>(
                w: &[BlockQ4_1],
                mins: &[f32],
                xs: [&[BlockQ8]; R],
                sums: [&[f32]; R],
            ) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                // the min part, eight blocks at a time, into the same lanes
                let kb = w.len();
                let mut b = 0;
                while b + 8 <= kb {
                    // SAFETY: `b + 8 <= kb` entries of `mins` and of every `sums[r]`.
                    let m = unsafe { _mm256_loadu_ps(mins.as_ptr().add(b)) };
                    for r in 0..R {
                        // SAFETY: as above.
                        let s = unsafe { _mm256_loadu_ps(sums[r].as_ptr().add(b)) };
                        acc[r] = _mm256_fmadd_ps(m, s, acc[r]);
                    }
                    b += 8;
                }
                let mut tail = [0f32; R];
                for r in 0..R {
                    for i in b..kb {
                        tail[r] += mins[i] * sums[r][i];
                    }
                }
                // two blocks per iteration into two accumulators (two FMA chains in
                // flight), the same for every R, so a row's sum does not depend on its batch
                let mut acc2 = [_mm256_setzero_ps(); R];
                let mut b = 0;
                while b + 2 <= kb {
                    let (w0, w1) = (&w[b], &w[b + 1]);
                    let (q0, q1) = (nibbles(w0), nibbles(w1));
                    for r in 0..R {
                        let (x0, x1) = (&xs[r][b], &xs[r][b + 1]);
                        let p0 = $idot(q0, load(x0));
                        let p1 = $idot(q1, load(x1));
                        let s0 = _mm256_set1_ps(w0.d * x0.d);
                        let s1 = _mm256_set1_ps(w1.d * x1.d);
                        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), s0, acc[r]);
                        acc2[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), s1, acc2[r]);
                    }
                    b += 2;
                }
                if b < kb {
                    let wb = &w[b];
                    let q = nibbles(wb);
                    for r in 0..R {
                        let xb = &xs[r][b];
                        let p = $idot(q, load(xb));
                        let s = _mm256_set1_ps(wb.d * xb.d);
                        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[r]);
                    }
                }
                let mut out = [0f32; R];
                for r in 0..R {
                    out[r] = hsum(_mm256_add_ps(acc[r], acc2[r])) + tail[r];
                }
                out
            }
        };
    }

    int8_kernels!(dot_q8_avx2, dot_q4_1_avx2, "avx2,fma", idot_avx2);
    int8_kernels!(
        dot_q8_vnni,
        dot_q4_1_vnni,
        "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni",
        idot_vnni
    );

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
    /// The CPU supports AVX2, FMA and F16C; `q.len() == out.len()` is a multiple of 8;
    /// every segment holds `n · stride` values and `col + q.len() <= stride`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn attend_avx2(
        q: &[f32],
        segs: &[Segment<'_>],
        col: usize,
        stride: usize,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let hd = q.len();
        let n: usize = segs.iter().map(|s| s.2).sum();
        scores.clear();
        scores.reserve(n);
        for (k, _, len) in segs {
            for t in 0..*len {
                let base = t * stride + col;
                let mut acc = _mm256_setzero_ps();
                let mut i = 0;
                while i < hd {
                    // SAFETY: `base + i + 8 <= t · stride + col + hd <= len · stride`, and
                    // `i + 8 <= hd = q.len()`.
                    unsafe {
                        let kv = load_f16(k.as_ptr().add(base + i));
                        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i)), kv, acc);
                    }
                    i += 8;
                }
                scores.push(hsum(acc));
            }
        }
        super::softmax(scores);
        out.fill(0.0);
        let mut idx = 0;
        for (_, v, len) in segs {
            for t in 0..*len {
                let base = t * stride + col;
                let p = _mm256_set1_ps(scores[idx]);
                let mut i = 0;
                while i < hd {
                    // SAFETY: as for the keys; `i + 8 <= hd = out.len()`.
                    unsafe {
                        let po = out.as_mut_ptr().add(i);
                        let x = load_f16(v.as_ptr().add(base + i));
                        _mm256_storeu_ps(po, _mm256_fmadd_ps(p, x, _mm256_loadu_ps(po)));
                    }
                    i += 8;
                }
                idx += 1;
            }
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
        let xq = {
            let mut v = vec![BlockQ8::ZERO; q.len()];
            quantize_row(&rows(6, 70), &mut v);
            v
        };
        let mut xs = vec![0f32; 70];
        dequantize_row(&xq, &mut xs);
        let want: f32 = back.iter().zip(&xs).map(|(a, b)| a * b).sum();
        let mut sums = vec![0f32; q.len()];
        block_sums(&xq, &mut sums);
        let mins: Vec<f32> = q.iter().map(|b| b.m).collect();
        let got = dot_q4_1_scalar(&q, &mins, [&xq], [&sums])[0];
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    }

    #[test]
    fn every_supported_isa_gives_the_scalar_dot_products() {
        let (n, m) = (32 * 7, 4);
        let quant = |x: &[f32]| {
            let mut q = vec![BlockQ8::ZERO; x.len() / QK];
            quantize_row(x, &mut q);
            q
        };
        let quant4 = |x: &[f32]| {
            let mut q = vec![BlockQ4_1::ZERO; x.len() / QK];
            quantize_row_q4_1(x, &mut q);
            q
        };
        let w = quant(&rows(2, n));
        let xs: Vec<Vec<BlockQ8>> = (0..m).map(|i| quant(&rows(10 + i as u64, n))).collect();
        let want = dot_q8_scalar(&w, [&xs[0], &xs[1], &xs[2], &xs[3]]);
        let (a, b) = (rows(3, 67), rows(4, 67));
        let want_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        for k in Isa::ALL.into_iter().filter_map(Kernels::new) {
            let isa = k.isa();
            let got = k.dot_q8(&w, [&xs[0], &xs[1], &xs[2], &xs[3]]);
            for r in 0..m {
                assert!(
                    (got[r] - want[r]).abs() <= 1e-4 * want[r].abs().max(1.0),
                    "{isa:?}"
                );
                let one = k.dot_q8(&w, [&xs[r]]);
                assert_eq!(one[0], got[r], "{isa:?}: batching changes nothing");
            }
            // Q4_1 weights against the same activations
            let w4 = quant4(&rows(2, n));
            let sums: Vec<Vec<f32>> = xs
                .iter()
                .map(|x| {
                    let mut s = vec![0f32; x.len()];
                    block_sums(x, &mut s);
                    s
                })
                .collect();
            let mins: Vec<f32> = w4.iter().map(|b| b.m).collect();
            let want4 = dot_q4_1_scalar(&w4, &mins, [&xs[0], &xs[1]], [&sums[0], &sums[1]]);
            let got4 = k.dot_q4_1(&w4, &mins, [&xs[0], &xs[1]], [&sums[0], &sums[1]]);
            for r in 0..2 {
                let (g, w) = (got4[r], want4[r]);
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{isa:?}: {g} vs {w}"
                );
                let one = k.dot_q4_1(&w4, &mins, [&xs[r]], [&sums[r]]);
                assert_eq!(one[0], got4[r], "{isa:?}: batching changes nothing");
            }
            // attention over two segments against the scalar version
            let (hd, stride, col) = (16, 48, 16);
            let bits = |x: Vec<f32>| -> Vec<u16> {
                x.iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect()
            };
            let keys = bits(rows(20, 7 * stride));
            let vals = bits(rows(21, 7 * stride));
            let q = rows(22, hd);
            let segs = [
                (&keys[..4 * stride], &vals[..4 * stride], 4),
                (&keys[4 * stride..], &vals[4 * stride..], 2),
            ];
            let (mut s1, mut s2) = (Vec::new(), Vec::new());
            let (mut o1, mut o2) = (vec![0f32; hd], vec![0f32; hd]);
            attend_scalar(&q, &segs, col, stride, &mut s1, &mut o1);
            k.attend(&q, &segs, col, stride, &mut s2, &mut o2);
            for (a, b) in o1.iter().zip(&o2) {
                assert!((a - b).abs() < 1e-5, "{isa:?}: attention {a} vs {b}");
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
