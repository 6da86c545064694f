//! The trainer's view of the local llama ([`agentq_lm::llama::Llama`]): tokenization, and
//! continuation logits with the prompt run once and its keys/values shared by every
//! continuation (prefix sharing), LoRA adapters applied inside the projections.

use candle_core::{Device, Tensor, Var};

use super::lora::Lora;
use super::trainer::{Result, TrainError, TrainModel};
use agentq_lm::llama::{Adapter, KvCache, Llama, Ops};
use agentq_lm::tokenizer::Tokenizer;

impl Adapter for Lora {
    fn delta(&self, name: &str, x: &Tensor) -> candle_core::Result<Option<Tensor>> {
        match self.layers.get(name) {
            Some(l) => l.delta(x).map(Some),
            None => Ok(None),
        }
    }
}

/// A llama and its tokenizer, seen by the trainer.
pub struct LlamaTrainModel<'a> {
    /// The model (built with `trainable` for full fine-tuning).
    pub model: &'a Llama,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Kernels: `Ops::Train` (custom ops, default) or `Ops::Differentiable` (composite).
    pub ops: Ops,
}

impl TrainModel for LlamaTrainModel<'_> {
    fn device(&self) -> &Device {
        self.model.device()
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text)
            .map_err(|e| TrainError::Invalid(format!("tokenizing: {e}")))
    }

    fn continuation_logits(
        &self,
        prompt: &[u32],
        continuations: &[&[u32]],
        lora: Option<&Lora>,
    ) -> Result<Vec<Tensor>> {
        let dev = self.model.device();
        let adapter = lora.map(|l| l as &dyn Adapter);
        let mut cache = KvCache::new(self.model.config());
        let ids = Tensor::from_slice(prompt, (1, prompt.len()), dev)?;
        let hp = self
            .model
            .hidden_adapted(&ids, Some(&mut cache), self.ops, adapter)?;
        let h_last = hp.narrow(1, prompt.len() - 1, 1)?.squeeze(0)?; // [1, H]
        let n = continuations.len();
        let lmax = continuations.iter().map(|c| c.len()).max().unwrap_or(0);
        let hc = if lmax > 1 {
            let mut padded = vec![0u32; n * (lmax - 1)];
            for (i, c) in continuations.iter().enumerate() {
                for (j, &t) in c.iter().take(c.len().saturating_sub(1)).enumerate() {
                    padded[i * (lmax - 1) + j] = t;
                }
            }
            let ids = Tensor::from_vec(padded, (n, lmax - 1), dev)?;
            let mut cn = cache.expand(n)?;
            Some(
                self.model
                    .hidden_adapted(&ids, Some(&mut cn), self.ops, adapter)?,
            )
        } else {
            None
        };
        let mut out = Vec::with_capacity(n);
        for (i, c) in continuations.iter().enumerate() {
            let hs = match (&hc, c.len()) {
                (Some(hc), l) if l > 1 => {
                    Tensor::cat(&[&h_last, &hc.get(i)?.narrow(0, 0, l - 1)?], 0)?
                }
                _ => h_last.clone(),
            };
            out.push(self.model.logits_with(&hs, self.ops)?);
        }
        Ok(out)
    }

    fn projections(&self) -> Vec<(String, (usize, usize))> {
        self.model.projection_shapes()
    }

    fn full_vars(&self) -> Vec<(String, Var)> {
        match self.model.varmap() {
            Some(vm) => {
                let data = vm.data().lock().map(|d| d.clone()).unwrap_or_default();
                let mut v: Vec<(String, Var)> = data.into_iter().collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpo::sequence_logprob;

    #[test]
    fn training_ops_give_the_composite_gradients() {
        for trainable in [false, true] {
            let e = agentq_lm::tiny::engine(7, trainable).unwrap();
            let lora = Lora::new(
                &e.model().unwrap().projection_shapes(),
                &crate::lora::LoraConfig {
                    rank: 2,
                    targets: vec!["q".into(), "v".into()],
                    ..Default::default()
                },
                &Device::Cpu,
            )
            .unwrap();
            for l in lora.layers.values() {
                let t = Tensor::ones(l.b.shape(), candle_core::DType::F32, &Device::Cpu).unwrap();
                l.b.set(&(t * 0.03).unwrap()).unwrap();
            }
            let grads = |ops: Ops| {
                let tm = LlamaTrainModel {
                    model: e.model().unwrap(),
                    tokenizer: e.tokenizer(),
                    ops,
                };
                let p = tm
                    .encode("You are a web agent. Choose the next action.")
                    .unwrap();
                let c = tm.encode("click[Buy Now]").unwrap();
                let r = tm.encode("search[mouse]").unwrap();
                let l = tm.continuation_logits(&p, &[&c, &r], Some(&lora)).unwrap();
                let loss = (sequence_logprob(&l[0], &c).unwrap()
                    - sequence_logprob(&l[1], &r).unwrap())
                .unwrap();
                let g = loss.backward().unwrap();
                let mut vars = lora.vars();
                vars.extend(tm.full_vars());
                vars.into_iter()
                    .map(|(n, v)| {
                        let t = g
                            .get(&v)
                            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
                        (n, t)
                    })
                    .collect::<Vec<_>>()
            };
            let (a, b) = (grads(Ops::Train), grads(Ops::Differentiable));
            assert_eq!(a.len(), b.len());
            for ((n, ga), (_, gb)) in a.iter().zip(&b) {
                let (ga, gb) = (ga.as_ref().expect(n), gb.as_ref().expect(n));
                let d = ga
                    .iter()
                    .zip(gb)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(d < 1e-4, "trainable {trainable}: {n} differs by {d}");
            }
        }
    }
    use crate::data::Pair;
    use crate::lora::LoraConfig;
    use crate::trainer::{train, Method, TrainConfig};

    #[test]
    fn prefix_shared_logits_equal_whole_sequence_logits_with_adapters() {
        let e = agentq_lm::tiny::engine(5, false).unwrap();
        let tm = LlamaTrainModel {
            model: e.model().unwrap(),
            tokenizer: e.tokenizer(),
            ops: Ops::Train,
        };
        let lora = Lora::new(
            &tm.projections(),
            &LoraConfig {
                rank: 2,
                targets: vec!["q".into(), "v".into(), "up".into()],
                ..LoraConfig::default()
            },
            tm.device(),
        )
        .unwrap();
        // Non-zero B so the adapters matter.
        for l in lora.layers.values() {
            let ones = Tensor::ones(l.b.shape(), candle_core::DType::F32, tm.device()).unwrap();
            l.b.set(&(ones * 0.05).unwrap()).unwrap();
        }
        let prompt = tm
            .encode("You are a web agent. Choose the next action.")
            .unwrap();
        let a = tm.encode("click[Buy Now]").unwrap();
        let b = tm.encode("search[wireless mouse]").unwrap();
        let shared = tm
            .continuation_logits(&prompt, &[&a, &b], Some(&lora))
            .unwrap();
        for (c, got) in [&a, &b].into_iter().zip(&shared) {
            let mut all = prompt.clone();
            all.extend_from_slice(c);
            let ids = Tensor::from_slice(&all, (1, all.len()), tm.device()).unwrap();
            let h = tm
                .model
                .hidden_adapted(&ids, None, Ops::Differentiable, Some(&lora))
                .unwrap();
            let want = tm
                .model
                .logits(
                    &h.narrow(1, prompt.len() - 1, c.len())
                        .unwrap()
                        .squeeze(0)
                        .unwrap(),
                )
                .unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }

    #[test]
    fn lora_dpo_on_the_tiny_llama_raises_margins() {
        let e = agentq_lm::tiny::engine(6, false).unwrap();
        let tm = LlamaTrainModel {
            model: e.model().unwrap(),
            tokenizer: e.tokenizer(),
            ops: Ops::Train,
        };
        let pairs: Vec<Pair> = ["The capital of France is", "You are a web agent."]
            .iter()
            .map(|p| Pair {
                prompt: p.to_string(),
                chosen: "click[Buy Now]".into(),
                rejected: "click[Next >]".into(),
                ref_chosen: None,
                ref_rejected: None,
                trajectory: None,
            })
            .collect();
        let cfg = TrainConfig {
            method: Method::Dpo,
            epochs: 6,
            batch_size: 2,
            optim: crate::optim::AdamWConfig {
                lr: 1e-2,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let d = tempfile::tempdir().unwrap();
        let mut m = Vec::new();
        train(&tm, &pairs, &[], &cfg, d.path(), None, &mut |_, _, e| {
            m.push(e.metrics.clone())
        })
        .unwrap();
        let (first, last) = (&m[0], m.last().unwrap());
        assert!(
            last["rewards/margins"] > first["rewards/margins"] + 0.1,
            "{first:?} → {last:?}"
        );
        assert_eq!(last["rewards/accuracies"], 1.0);
    }
}
