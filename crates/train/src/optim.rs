//! AdamW with a saveable state (for resumable checkpoints), a warm-up learning-rate schedule
//! and global gradient-norm clipping.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// AdamW settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up steps (0: none).
    pub warmup_steps: u64,
    /// Global gradient-norm clip (0: none).
    pub max_grad_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            max_grad_norm: 1.0,
        }
    }
}

/// Gradients accumulated by variable name.
#[derive(Debug, Default)]
pub struct Grads(pub HashMap<String, Tensor>);

impl Grads {
    /// Global L2 norm.
    pub fn norm(&self) -> Result<f64> {
        let mut sq = 0.0f64;
        for g in self.0.values() {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }
}

/// AdamW over named variables; its moments can be saved and restored.
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    vars: Vec<(String, Var, Var, Var)>,
}

impl AdamW {
    /// An optimiser for `vars` (name, variable).
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        let vars = vars
            .into_iter()
            .map(|(n, v)| {
                let m = Var::zeros(v.shape(), v.dtype(), v.device())?;
                let s = Var::zeros(v.shape(), v.dtype(), v.device())?;
                Ok((n, v, m, s))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            step: 0,
            vars,
        })
    }

    /// Optimiser steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The learning rate of the next step (linear warm-up to the peak, then constant).
    pub fn current_lr(&self) -> f64 {
        let w = self.config.warmup_steps;
        if w > 0 && self.step < w {
            self.config.lr * (self.step + 1) as f64 / w as f64
        } else {
            self.config.lr
        }
    }

    /// Adds the gradients of the optimised variables in `grads` to `acc` (gradient
    /// accumulation over micro-batches).
    pub fn accumulate(&self, acc: &mut Grads, grads: &GradStore) -> Result<()> {
        for (n, v, _, _) in &self.vars {
            if let Some(g) = grads.get(v) {
                let sum = match acc.0.remove(n) {
                    Some(old) => (old + g)?,
                    None => g.clone(),
                };
                acc.0.insert(n.clone(), sum);
            }
        }
        Ok(())
    }

    /// One update from `grads` (a single backward's gradients).
    pub fn step(&mut self, grads: &GradStore, scale: f64) -> Result<f64> {
        let mut acc = Grads::default();
        self.accumulate(&mut acc, grads)?;
        self.step_accumulated(&acc, scale)
    }

    /// One update from accumulated gradients scaled by `scale` (e.g. 1/accumulation
    /// steps); clips to `max_grad_norm`; returns the gradient norm before clipping.
    pub fn step_accumulated(&mut self, grads: &Grads, scale: f64) -> Result<f64> {
        let norm = grads.norm()? * scale;
        let clip = if self.config.max_grad_norm > 0.0 && norm > self.config.max_grad_norm {
            self.config.max_grad_norm / norm
        } else {
            1.0
        };
        let lr = self.current_lr();
        self.step += 1;
        let c = &self.config;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        for (n, v, m, s) in &self.vars {
            let Some(g) = grads.0.get(n) else { continue };
            let g = (g * (scale * clip))?;
            let nm = ((m.as_tensor() * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let ns = ((s.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let upd = ((&nm / bc1)? / ((&ns / bc2)?.sqrt()? + c.eps)?)?;
            let nv = ((v.as_tensor() * (1.0 - lr * c.weight_decay))? - (upd * lr)?)?;
            m.set(&nm)?;
            s.set(&ns)?;
            v.set(&nv)?;
        }
        Ok(norm)
    }

    /// The state as named tensors (`<name>.m`, `<name>.v`) and the step count.
    pub fn state(&self) -> (HashMap<String, Tensor>, u64) {
        let mut out = HashMap::new();
        for (n, _, m, s) in &self.vars {
            out.insert(format!("{n}.m"), m.as_tensor().clone());
            out.insert(format!("{n}.v"), s.as_tensor().clone());
        }
        (out, self.step)
    }

    /// Restores a state saved by [`AdamW::state`]; names missing from it are an error.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (n, _, m, s) in &self.vars {
            let get = |k: String| {
                state
                    .get(&k)
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimiser state lacks {k}")))
            };
            m.set(get(format!("{n}.m"))?)?;
            s.set(get(format!("{n}.v"))?)?;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic_and_resumes_exactly() {
        let dev = Device::Cpu;
        let run = |steps: usize, resume_at: Option<usize>| -> Vec<f32> {
            let x = Var::new(&[3.0f32, -2.0], &dev).unwrap();
            let cfg = AdamWConfig {
                lr: 0.1,
                warmup_steps: 3,
                ..AdamWConfig::default()
            };
            let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg).unwrap();
            for i in 0..steps {
                if Some(i) == resume_at {
                    let (st, n) = opt.state();
                    let x2 = Var::from_tensor(x.as_tensor()).unwrap();
                    let mut o2 = AdamW::new(vec![("x".into(), x2.clone())], cfg).unwrap();
                    o2.load_state(&st, n).unwrap();
                    opt = o2;
                    // Continue on the restored variable.
                    return continue_from(opt, x2, steps - i);
                }
                let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
                opt.step(&loss.backward().unwrap(), 1.0).unwrap();
            }
            x.as_tensor().to_vec1().unwrap()
        };
        fn continue_from(mut opt: AdamW, x: Var, steps: usize) -> Vec<f32> {
            for _ in 0..steps {
                let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
                opt.step(&loss.backward().unwrap(), 1.0).unwrap();
            }
            x.as_tensor().to_vec1().unwrap()
        }
        let a = run(60, None);
        assert!(a.iter().all(|v| v.abs() < 0.5), "{a:?}");
        let b = run(60, Some(17));
        assert_eq!(a, b, "resuming from saved state changes nothing");
    }

    #[test]
    fn warmup_and_clipping() {
        let dev = Device::Cpu;
        let x = Var::new(&[100.0f32], &dev).unwrap();
        let mut opt = AdamW::new(
            vec![("x".into(), x.clone())],
            AdamWConfig {
                lr: 1.0,
                warmup_steps: 4,
                max_grad_norm: 1.0,
                ..AdamWConfig::default()
            },
        )
        .unwrap();
        assert_eq!(opt.current_lr(), 0.25);
        let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
        let n = opt.step(&loss.backward().unwrap(), 1.0).unwrap();
        assert!((n - 200.0).abs() < 1e-3, "norm before clipping: {n}");
        assert_eq!(opt.current_lr(), 0.5);
    }
}
