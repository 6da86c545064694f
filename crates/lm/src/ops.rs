//! Training ops with their own backward (CPU), used by `Ops::Train`. Each keeps less of
//! the forward pass alive for the backward than candle's composite ops, which is what
//! bounds memory on long prompts:
//!
//! * [`frozen_linear`]: `x Wᵀ` for a constant `W`, computed from the storages, whose
//!   backward returns only `∂L/∂x` (candle's matmul backward also computes `∂L/∂W` — for a
//!   frozen 49152×576 head or a LoRA base projection that is pure waste);
//! * [`causal_attention`]: `softmax(q kᵀ) v` with a causal mask and grouped K/V heads, whose
//!   backward recomputes the probabilities, so no `T×T` tensor outlives its layer;
//! * [`causal_softmax`]: the fused causally masked softmax with the softmax backward
//!   `y ⊙ (g − Σ g⊙y)` (used inside the attention);
//! * [`rope`] and [`rms_norm`]: fused rotary embedding and RMS norm with backwards.
//!
//! Tests check every op's values and gradients against candle's composite ops.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Device, Layout, Result,
    Shape, Storage, Tensor, D,
};

/// A contiguous f32 view of a CPU storage.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: the input must be contiguous")
    };
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => candle_core::bail!("{what}: f32 only"),
    }
}

/// `y = x Wᵀ` for a constant `W` (`[out, in]`), computed straight from the storages; the
/// graph keeps only `x`, and the backward returns only `∂L/∂x = g W`.
struct FrozenLinear {
    w: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "agentq-frozen-linear"
    }

    fn cpu_fwd(&self, x: &CpuStorage, lx: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((off, _)) = lx.contiguous_offsets() else {
            candle_core::bail!("frozen-linear: the input must be contiguous")
        };
        let dims = lx.dims();
        let Some(&k) = dims.last() else {
            candle_core::bail!("frozen-linear: scalar input")
        };
        let (n, wk) = self.w.dims2()?;
        if wk != k {
            candle_core::bail!("frozen-linear: input width {k}, weight [{n}, {wk}]");
        }
        let m = lx.shape().elem_count() / k.max(1);
        let (ws, wl) = self.w.storage_and_layout();
        let Storage::Cpu(ws) = &*ws else {
            candle_core::bail!("frozen-linear: CPU weights only")
        };
        let Some((woff, _)) = wl.contiguous_offsets() else {
            candle_core::bail!("frozen-linear: the weight must be contiguous")
        };
        let lhs = Layout::contiguous_with_offset((m, k), off);
        // Wᵀ as a [k, n] view of the row-major [n, k] weight.
        let rhs = Layout::new(Shape::from((k, n)), vec![1, k], woff);
        let y = x.matmul(ws, (1, m, n, k), &lhs, &rhs)?;
        let mut out = dims.to_vec();
        *out.last_mut().expect("invariant: non-empty dims") = n;
        Ok((y, Shape::from(out)))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // y = x Wᵀ  ⇒  ∂L/∂x = g W
        Ok(Some(grad.broadcast_matmul(&self.w)?))
    }
}

/// `x Wᵀ` (plus nothing else) for a constant `W`: the gradient flows to `x` only.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(FrozenLinear { w: w.clone() })
}

/// Causal grouped-query attention `softmax(q kᵀ) v` with the backward recomputing the
/// probabilities, so the graph keeps `q`, `k` and `v` and no `T×T` tensor. `q` is
/// `[b, heads, t, d]` (already scaled by `1/√d`), `k` and `v` `[b, kv_heads, kv, d]` for
/// queries at positions `pos..pos + t` (`kv = pos + t`).
struct Attention {
    pos: usize,
}

impl Attention {
    /// Probabilities `[b, kv_heads, rep·t, kv]` and the grouped queries.
    fn probs(&self, q: &Tensor, k: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, nh, t, d) = q.dims4()?;
        let (_, nkv, kv, _) = k.dims4()?;
        let qg = q.reshape((b, nkv, (nh / nkv) * t, d))?;
        let s = qg.matmul(&k.t()?.contiguous()?)?.reshape((b, nh, t, kv))?;
        let p = causal_softmax(&s, self.pos)?.reshape((b, nkv, (nh / nkv) * t, kv))?;
        Ok((p, qg))
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "agentq-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        lq: &Layout,
        ks: &CpuStorage,
        lk: &Layout,
        vs: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let cpu = Device::Cpu;
        let q = Tensor::from_slice(f32_slice(qs, lq, "attention q")?, lq.shape(), &cpu)?;
        let k = Tensor::from_slice(f32_slice(ks, lk, "attention k")?, lk.shape(), &cpu)?;
        let v = Tensor::from_slice(f32_slice(vs, lv, "attention v")?, lv.shape(), &cpu)?;
        let (nh, nkv) = (q.dim(1)?, k.dim(1)?);
        if nkv == 0 || nh % nkv != 0 || k.dim(2)? != self.pos + q.dim(2)? {
            candle_core::bail!(
                "attention: q {:?} and k {:?} do not fit at position {}",
                q.shape(),
                k.shape(),
                self.pos
            );
        }
        let (p, _) = self.probs(&q, &k)?;
        let y = p.matmul(&v)?.reshape(lq.shape())?;
        Ok((
            CpuStorage::F32(y.flatten_all()?.to_vec1()?),
            lq.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (q, k, v) = (q.detach(), k.detach(), v.detach());
        let (p, qg) = self.probs(&q, &k)?;
        let g = grad.contiguous()?.reshape(qg.shape())?;
        // y = p v;  p = softmax(s);  s = qg kᵀ
        let pt = p.t()?.contiguous()?;
        let dv = pt.matmul(&g)?;
        let dp = g.matmul(&v.t()?.contiguous()?)?;
        let dot = (&dp * &p)?.sum_keepdim(D::Minus1)?;
        let ds = (&p * dp.broadcast_sub(&dot)?)?;
        let dq = ds.matmul(&k)?.reshape(q.shape())?;
        let dk = ds.t()?.contiguous()?.matmul(&qg)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Causal attention with a recomputing backward (see [`Attention`]): `q` `[b, heads, t, d]`
/// pre-scaled, `k`/`v` `[b, kv_heads, pos + t, d]`; returns `[b, heads, t, d]`.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize) -> Result<Tensor> {
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, Attention { pos })
}

/// Rotary position embedding (the rotate-half layout of `candle_nn::rotary_emb::rope_slow`)
/// of `[b, heads, t, d]` with `cos`/`sin` tables `[t, d/2]`; the backward is the inverse
/// rotation (the same op with `−sin`), so the graph keeps only the input.
struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    fn apply(&self, x: &[f32], t: usize, d: usize) -> Vec<f32> {
        let h = d / 2;
        let mut out = vec![0f32; x.len()];
        for (row, (o, xs)) in out.chunks_mut(d).zip(x.chunks(d)).enumerate() {
            let p = row % t;
            let (c, s) = (&self.cos[p * h..(p + 1) * h], &self.sin[p * h..(p + 1) * h]);
            for i in 0..h {
                let (a, b) = (xs[i], xs[i + h]);
                o[i] = a * c[i] - b * s[i];
                o[i + h] = b * c[i] + a * s[i];
            }
        }
        out
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "agentq-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "rope")?;
        let (_, _, t, d) = l.shape().dims4()?;
        if d % 2 != 0 || self.cos.len() != t * (d / 2) || self.sin.len() != self.cos.len() {
            candle_core::bail!("rope: tables of {} for t = {t}, d = {d}", self.cos.len());
        }
        Ok((CpuStorage::F32(self.apply(x, t, d)), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let inverse = Rope {
            cos: self.cos.clone(),
            sin: self.sin.iter().map(|v| -v).collect(),
        };
        Ok(Some(g.detach().contiguous()?.apply_op1(inverse)?))
    }
}

/// Rotary embedding of `x` `[b, heads, t, d]` with `cos`/`sin` `[t, d/2]` (the positions of
/// `x`), equal to `candle_nn::rotary_emb::rope_slow` with a fused backward.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let op = Rope {
        cos: cos.flatten_all()?.to_vec1()?,
        sin: sin.flatten_all()?.to_vec1()?,
    };
    x.contiguous()?.apply_op1(op)
}

/// RMS normalisation `x / √(mean(x²) + ε) ⊙ w` over the last dimension, fused, with a
/// backward (the graph keeps `x` and `w` only).
struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "agentq-rms-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        lx: &Layout,
        ws: &CpuStorage,
        lw: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, lx, "rms-norm x")?;
        let w = f32_slice(ws, lw, "rms-norm weight")?;
        let h = w.len();
        if lx.dims().last() != Some(&h) {
            candle_core::bail!("rms-norm: input {:?}, weight of {h}", lx.dims());
        }
        let mut out = vec![0f32; x.len()];
        for (o, xr) in out.chunks_mut(h).zip(x.chunks(h)) {
            let ms = xr.iter().map(|v| v * v).sum::<f32>() / h as f32;
            let r = 1.0 / (ms + self.eps).sqrt();
            for ((oj, &xj), &wj) in o.iter_mut().zip(xr).zip(w) {
                *oj = xj * r * wj;
            }
        }
        Ok((CpuStorage::F32(out), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // r = (mean(x²) + ε)^(-1/2);  u = g ⊙ w
        // ∂L/∂x = r u − x r³ mean(u ⊙ x);  ∂L/∂w = Σ_rows g ⊙ x r
        let (x, w) = (x.detach(), w.detach());
        let r = ((x.sqr()?.mean_keepdim(D::Minus1)? + f64::from(self.eps))?
            .sqrt()?
            .recip())?;
        let u = g.broadcast_mul(&w)?;
        let m = (&u * &x)?.mean_keepdim(D::Minus1)?;
        let dx = (u.broadcast_mul(&r)? - x.broadcast_mul(&(r.powf(3.0)? * m)?)?)?;
        let dw = (g * x.broadcast_mul(&r)?)?
            .reshape(((), w.elem_count()))?
            .sum(0)?
            .reshape(w.shape())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Fused RMS norm over the last dimension with a backward (see [`RmsNorm`]).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps })
}

/// Softmax over the last dimension of `[.., t, kv]` scores of queries at positions
/// `pos..pos + t`; key `j` is visible to query `i` iff `j <= pos + i`.
struct CausalSoftmax {
    pos: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "agentq-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("causal-softmax: the scores must be contiguous")
        };
        let CpuStorage::F32(all) = s else {
            candle_core::bail!("causal-softmax: f32 scores only")
        };
        let x = &all[start..end];
        let dims = l.dims();
        if dims.len() < 2 {
            candle_core::bail!("causal-softmax: need [.., t, kv] scores");
        }
        let kv = dims[dims.len() - 1];
        let t = dims[dims.len() - 2];
        let mut out = vec![0f32; x.len()];
        for (row, (o, xs)) in out.chunks_mut(kv).zip(x.chunks(kv)).enumerate() {
            let visible = (self.pos + row % t + 1).min(kv);
            let m = xs[..visible]
                .iter()
                .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0f32;
            for (oj, &xj) in o[..visible].iter_mut().zip(&xs[..visible]) {
                *oj = (xj - m).exp();
                sum += *oj;
            }
            for oj in &mut o[..visible] {
                *oj /= sum;
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dot = (g * y)?.sum_keepdim(D::Minus1)?;
        Ok(Some((y * g.broadcast_sub(&dot)?)?))
    }
}

/// Causally masked softmax of `[.., t, kv]` scores for queries starting at `pos`.
pub fn causal_softmax(scores: &Tensor, pos: usize) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax { pos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn grads_match(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn frozen_linear_and_causal_softmax_match_composite_ops() {
        let dev = Device::Cpu;
        let x = Var::from_vec(
            (0..2 * 3 * 4)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0)
                .collect(),
            (2, 3, 4),
            &dev,
        )
        .unwrap();
        let w = Tensor::from_vec(
            (0..5 * 4)
                .map(|i| ((i * 5 % 13) as f32 - 6.0) / 9.0)
                .collect(),
            (5, 4),
            &dev,
        )
        .unwrap();
        // Linear.
        let a = frozen_linear(x.as_tensor(), &w).unwrap();
        let b = x.as_tensor().broadcast_matmul(&w.t().unwrap()).unwrap();
        assert!(grads_match(&a, &b) < 1e-6);
        let ga = a.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gb = b.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads_match(ga.get(&x).unwrap(), gb.get(&x).unwrap()) < 1e-5);
        // Causal softmax of [b, h, t, kv] scores with t = 3 new queries after pos = 2.
        let s = Var::from_vec(
            (0..2 * 3 * 5)
                .map(|i| ((i * 3 % 7) as f32 - 3.0) / 2.0)
                .collect(),
            (2, 1, 3, 5),
            &dev,
        )
        .unwrap();
        let mut mask = vec![0f32; 15];
        for i in 0..3 {
            for j in (2 + i + 1)..5 {
                mask[i * 5 + j] = f32::NEG_INFINITY;
            }
        }
        let mask = Tensor::from_vec(mask, (3, 5), &dev).unwrap();
        let fused = causal_softmax(s.as_tensor(), 2).unwrap();
        let plain =
            candle_nn::ops::softmax(&s.as_tensor().broadcast_add(&mask).unwrap(), D::Minus1)
                .unwrap();
        assert!(grads_match(&fused, &plain) < 1e-6);
        let coef = Tensor::from_vec(
            (0..30).map(|i| i as f32 / 10.0).collect(),
            (2, 1, 3, 5),
            &dev,
        )
        .unwrap();
        let ga = (&fused * &coef)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (&plain * &coef)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads_match(ga.get(&s).unwrap(), gb.get(&s).unwrap()) < 1e-5);
    }

    fn var(shape: &[usize], k: usize) -> Var {
        let n: usize = shape.iter().product();
        Var::from_vec(
            (0..n)
                .map(|i| (((i * k + 3) % 17) as f32 - 8.0) / 9.0)
                .collect(),
            shape,
            &Device::Cpu,
        )
        .unwrap()
    }

    /// Gradients of `Σ f(inputs) ⊙ coef` with respect to `vars`.
    fn grads_of(out: &Tensor, vars: &[&Var]) -> Vec<Tensor> {
        let coef = Tensor::from_vec(
            (0..out.elem_count())
                .map(|i| ((i % 13) as f32 - 6.0) / 5.0)
                .collect(),
            out.shape(),
            &Device::Cpu,
        )
        .unwrap();
        let g = (out * coef).unwrap().sum_all().unwrap().backward().unwrap();
        vars.iter().map(|v| g.get(v).unwrap().clone()).collect()
    }

    #[test]
    fn fused_attention_rope_and_rms_norm_match_composite_ops() {
        // Attention: 4 query heads over 2 K/V heads, 3 new queries after 2 cached positions.
        let (q, k, v) = (
            var(&[2, 4, 3, 4], 5),
            var(&[2, 2, 5, 4], 7),
            var(&[2, 2, 5, 4], 11),
        );
        let fused = causal_attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), 2).unwrap();
        let mut mask = vec![0f32; 15];
        for i in 0..3 {
            for j in (2 + i + 1)..5 {
                mask[i * 5 + j] = f32::NEG_INFINITY;
            }
        }
        let mask = Tensor::from_vec(mask, (3, 5), &Device::Cpu).unwrap();
        let s = q
            .as_tensor()
            .reshape((2, 2, 6, 4))
            .unwrap()
            .matmul(&k.as_tensor().t().unwrap())
            .unwrap()
            .reshape((2, 4, 3, 5))
            .unwrap()
            .broadcast_add(&mask)
            .unwrap();
        let p = candle_nn::ops::softmax(&s, D::Minus1).unwrap();
        let plain = p
            .reshape((2, 2, 6, 5))
            .unwrap()
            .matmul(v.as_tensor())
            .unwrap()
            .reshape((2, 4, 3, 4))
            .unwrap();
        assert!(grads_match(&fused, &plain) < 1e-5);
        for (a, b) in grads_of(&fused, &[&q, &k, &v])
            .iter()
            .zip(&grads_of(&plain, &[&q, &k, &v]))
        {
            assert!(grads_match(a, b) < 1e-5);
        }
        // Rope at 3 positions of head width 6.
        let x = var(&[1, 2, 3, 6], 3);
        let cos = Tensor::from_vec(
            (0..9).map(|i| (i as f32 / 4.0).cos()).collect(),
            (3, 3),
            &Device::Cpu,
        )
        .unwrap();
        let sin = Tensor::from_vec(
            (0..9).map(|i| (i as f32 / 4.0).sin()).collect(),
            (3, 3),
            &Device::Cpu,
        )
        .unwrap();
        let fused = rope(x.as_tensor(), &cos, &sin).unwrap();
        let plain = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin).unwrap();
        assert!(grads_match(&fused, &plain) < 1e-6);
        assert!(grads_match(&grads_of(&fused, &[&x])[0], &grads_of(&plain, &[&x])[0]) < 1e-5);
        // RMS norm, gradients for the input and the weight.
        let (x, w) = (var(&[2, 3, 5], 7), var(&[5], 2));
        let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        let plain = candle_nn::ops::rms_norm_slow(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        assert!(grads_match(&fused, &plain) < 1e-5);
        for (a, b) in grads_of(&fused, &[&x, &w])
            .iter()
            .zip(&grads_of(&plain, &[&x, &w]))
        {
            assert!(grads_match(a, b) < 1e-4, "{a} vs {b}");
        }
    }
}
