//! LoRA adapters: for a frozen projection `W` (`[out, in]`), trainable `A` (`[r, in]`,
//! seeded uniform init) and `B` (`[out, r]`, zeros), applied as `x Wᵀ + (α/r)·x Aᵀ Bᵀ`.
//! Saved as safetensors (`<name>.lora_a`, `<name>.lora_b`), merged into weights on export.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};

use agentq_core::rng::Rng;

/// Which projections get adapters and how big they are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    /// Rank r.
    pub rank: usize,
    /// Scale numerator α (the update is scaled by α/r).
    pub alpha: f64,
    /// Projection kinds to adapt: any of `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub targets: Vec<String>,
    /// Seed of the `A` initialisation.
    pub seed: u64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            targets: vec!["q".into(), "v".into()],
            seed: 0,
        }
    }
}

/// One adapter.
#[derive(Debug, Clone)]
pub struct LoraLayer {
    /// `[r, in]`.
    pub a: Var,
    /// `[out, r]`.
    pub b: Var,
    /// α/r.
    pub scale: f64,
}

impl LoraLayer {
    /// The adapter's contribution for input `x` (`[..., in]` → `[..., out]`).
    pub fn delta(&self, x: &Tensor) -> Result<Tensor> {
        let xa = x.broadcast_matmul(&self.a.as_tensor().t()?)?;
        xa.broadcast_matmul(&self.b.as_tensor().t()?)? * self.scale
    }

    /// `W + (α/r)·B A`, the merged weight.
    pub fn merge(&self, w: &Tensor) -> Result<Tensor> {
        let ba = self.b.as_tensor().matmul(self.a.as_tensor())?;
        // A constant: the merged weight must not carry the adapters' graph into training
        // (a frozen weight that tracks variables breaks backward passes that skip it).
        Ok((w + (ba * self.scale)?.to_dtype(w.dtype())?)?.detach())
    }
}

/// A set of adapters keyed by projection name (e.g. `blk.3.attn_q`).
#[derive(Debug, Clone, Default)]
pub struct Lora {
    /// Adapters by name.
    pub layers: BTreeMap<String, LoraLayer>,
    /// Settings.
    pub config: Option<LoraConfig>,
}

impl Lora {
    /// Adapters for the projections `shapes` (name → `(out, in)`) whose kind (the part
    /// after the last `attn_`/`ffn_`) is among the targets.
    pub fn new(
        shapes: &[(String, (usize, usize))],
        config: &LoraConfig,
        dev: &Device,
    ) -> Result<Lora> {
        let mut layers = BTreeMap::new();
        for (name, (out, inp)) in shapes {
            if !config.targets.iter().any(|t| kind(name) == t) {
                continue;
            }
            let mut rng = Rng::keyed(config.seed, name);
            let bound = 1.0 / (*inp as f64).sqrt();
            let a: Vec<f32> = (0..config.rank * inp)
                .map(|_| rng.uniform(-bound, bound) as f32)
                .collect();
            let a = Var::from_vec(a, (config.rank, *inp), dev)?;
            let b = Var::zeros((*out, config.rank), DType::F32, dev)?;
            layers.insert(
                name.clone(),
                LoraLayer {
                    a,
                    b,
                    scale: config.alpha / config.rank as f64,
                },
            );
        }
        Ok(Lora {
            layers,
            config: Some(config.clone()),
        })
    }

    /// The trainable variables, named.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .flat_map(|(n, l)| {
                [
                    (format!("{n}.lora_a"), l.a.clone()),
                    (format!("{n}.lora_b"), l.b.clone()),
                ]
            })
            .collect()
    }

    /// Trainable parameter count.
    pub fn n_params(&self) -> usize {
        self.layers
            .values()
            .map(|l| l.a.elem_count() + l.b.elem_count())
            .sum()
    }

    /// The adapter tensors by name (for saving).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect()
    }

    /// Loads adapter values saved by [`Lora::tensors`] into these adapters (shapes must
    /// match).
    pub fn load_tensors(&self, t: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        for (n, v) in self.vars() {
            let x = t.get(&n).ok_or_else(|| {
                candle_core::Error::Msg(format!("{}: no tensor {n}", origin.display()))
            })?;
            if x.shape() != v.shape() {
                return Err(candle_core::Error::Msg(format!(
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

/// The projection kind of a tensor name: `blk.3.attn_q` → `q`, `blk.0.ffn_up` → `up`
/// (GGUF names), `model.layers.3.self_attn.q_proj` → `q`, `model.layers.0.mlp.up_proj` → `up`
/// (Hugging Face names; a trailing `.weight` is ignored).
pub fn kind(name: &str) -> &str {
    let name = name.strip_suffix(".weight").unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or(name);
    last.strip_prefix("attn_")
        .or_else(|| last.strip_prefix("ffn_"))
        .or_else(|| last.strip_suffix("_proj"))
        .unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapters_start_as_identity_and_merge_exactly() {
        let dev = Device::Cpu;
        let shapes = vec![
            ("blk.0.attn_q".to_string(), (6, 4)),
            ("blk.0.attn_k".to_string(), (2, 4)),
            ("blk.0.attn_v".to_string(), (2, 4)),
        ];
        let lora = Lora::new(
            &shapes,
            &LoraConfig {
                rank: 2,
                ..LoraConfig::default()
            },
            &dev,
        )
        .unwrap();
        assert_eq!(lora.layers.len(), 2, "q and v only");
        assert_eq!(lora.n_params(), 2 * 4 + 6 * 2 + 2 * 4 + 2 * 2);
        let l = &lora.layers["blk.0.attn_q"];
        let x = Tensor::new(&[[1.0f32, 2.0, 3.0, 4.0]], &dev).unwrap();
        let d = l
            .delta(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "B starts at zero");
        l.b.set(&Tensor::ones((6, 2), DType::F32, &dev).unwrap())
            .unwrap();
        let w = Tensor::ones((6, 4), DType::F32, &dev).unwrap();
        let via_delta = (x.matmul(&w.t().unwrap()).unwrap() + l.delta(&x).unwrap()).unwrap();
        let via_merge = x.matmul(&l.merge(&w).unwrap().t().unwrap()).unwrap();
        let diff = (via_delta - via_merge)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        assert!(
            !l.merge(&w).unwrap().track_op(),
            "a merged weight is a constant, not a function of the adapters"
        );
        // Same seed, same init.
        let again = Lora::new(
            &shapes,
            &LoraConfig {
                rank: 2,
                ..LoraConfig::default()
            },
            &dev,
        )
        .unwrap();
        assert_eq!(
            again.layers["blk.0.attn_v"]
                .a
                .as_tensor()
                .to_vec2::<f32>()
                .unwrap(),
            lora.layers["blk.0.attn_v"]
                .a
                .as_tensor()
                .to_vec2::<f32>()
                .unwrap()
        );
        assert_eq!(kind("blk.2.ffn_down"), "down");
        assert_eq!(kind("model.layers.3.self_attn.q_proj"), "q");
        assert_eq!(kind("model.layers.0.mlp.gate_proj.weight"), "gate");
    }
}
