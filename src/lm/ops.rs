//! Two training ops with their own backward (CPU), used by `Ops::Train`:
//!
//! * [`frozen_linear`]: `x Wᵀ` for a constant `W` whose backward returns only `∂L/∂x`
//!   (candle's matmul backward also computes `∂L/∂W` — for a frozen 49152×576 head or a
//!   LoRA base projection that is pure waste);
//! * [`causal_softmax`]: a fused causally masked softmax over the last dimension with the
//!   softmax backward `y ⊙ (g − Σ g⊙y)`, keeping one T×T tensor per layer instead of the
//!   composite softmax's several.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, D};

/// Passes a precomputed `y = x Wᵀ` through and routes the gradient to `x` only.
struct InputGrad {
    w: Tensor,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "agentq-input-grad"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        ly: &Layout,
        _x: &CpuStorage,
        _lx: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match ly.contiguous_offsets() {
            Some((0, end)) if end == ly.shape().elem_count() => Ok((y.clone(), ly.shape().clone())),
            _ => candle_core::bail!("input-grad: the product must be contiguous from offset 0"),
        }
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // y = x Wᵀ  ⇒  ∂L/∂x = g W
        Ok((None, Some(grad.broadcast_matmul(&self.w)?)))
    }
}

/// `x Wᵀ` (plus nothing else) for a constant `W`: the gradient flows to `x` only.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let y = x.detach().broadcast_matmul(&w.t()?)?.contiguous()?;
    y.apply_op2(x, InputGrad { w: w.clone() })
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
}
