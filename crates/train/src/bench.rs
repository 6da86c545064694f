//! Timing one DPO update on one preference pair, split into forward, backward and
//! optimiser time (`agentq bench dpo`). The same code path as [`super::trainer::train`]
//! (prefix-shared continuations, the configured adapters, our AdamW), without data
//! files, checkpoints or logs.

use std::time::Instant;

use super::dpo::{dpo_loss, sequence_logprob};
use super::optim::{AdamW, Grads};
use super::trainer::{scalar, Result, TrainConfig, TrainError, TrainModel, Trainable};

/// Seconds and loss of one DPO update.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StepTimes {
    /// Prompt + both continuations, log-probs and loss (the graph is built here).
    pub forward_s: f64,
    /// `loss.backward()`.
    pub backward_s: f64,
    /// Gradient accumulation, clipping and the AdamW update.
    pub optimizer_s: f64,
    /// The DPO loss before the update.
    pub loss: f64,
}

impl StepTimes {
    /// Forward + backward + optimiser.
    pub fn total_s(&self) -> f64 {
        self.forward_s + self.backward_s + self.optimizer_s
    }
}

/// Runs `steps` DPO updates of batch size 1 on one pair. The reference log-probs are the
/// policy's own before the first update (what LoRA's zero-initialised B gives anyway).
pub fn dpo_steps<M: TrainModel + ?Sized>(
    model: &M,
    prompt: &[u32],
    chosen: &[u32],
    rejected: &[u32],
    config: &TrainConfig,
    steps: usize,
    mut after_step: impl FnMut(usize, &StepTimes),
) -> Result<Vec<StepTimes>> {
    if prompt.is_empty() || chosen.is_empty() || rejected.is_empty() {
        return Err(TrainError::Invalid(
            "bench pair: empty prompt or response".into(),
        ));
    }
    let trainable = Trainable::new(model, config)?;
    let mut opt = AdamW::new(trainable.vars().to_vec(), config.optim)?;
    let mut refs: Option<(f64, f64)> = None;
    let mut out = Vec::with_capacity(steps);
    for i in 0..steps {
        let t = Instant::now();
        let logits =
            model.continuation_logits(prompt, &[chosen, rejected], trainable.lora.as_ref())?;
        let pc = sequence_logprob(&logits[0], chosen)?;
        let pr = sequence_logprob(&logits[1], rejected)?;
        let (rc, rr) = match refs {
            Some(r) => r,
            None => {
                let r = (scalar(&pc)?, scalar(&pr)?);
                refs = Some(r);
                r
            }
        };
        let loss = dpo_loss(&pc, &pr, rc, rr, config.beta)?;
        let loss_v = scalar(&loss)?;
        let forward_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = loss.backward()?;
        let backward_s = t.elapsed().as_secs_f64();
        drop(logits);
        drop(loss);
        let t = Instant::now();
        let mut acc = Grads::default();
        opt.accumulate(&mut acc, &grads)?;
        drop(grads);
        opt.step_accumulated(&acc, 1.0)?;
        let optimizer_s = t.elapsed().as_secs_f64();
        let st = StepTimes {
            forward_s,
            backward_s,
            optimizer_s,
            loss: loss_v,
        };
        after_step(i, &st);
        out.push(st);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::LlamaTrainModel;
    use agentq_lm::llama::Ops;

    #[test]
    fn timed_dpo_steps_lower_the_loss() {
        let e = agentq_lm::tiny::engine(3, false).unwrap();
        let tm = LlamaTrainModel {
            model: e.model().unwrap(),
            tokenizer: e.tokenizer(),
            ops: Ops::Train,
        };
        let p = tm.encode("You are a web agent. Buy the mouse.").unwrap();
        let (c, r) = (
            tm.encode("click[Buy Now]").unwrap(),
            tm.encode("click[Next >]").unwrap(),
        );
        let cfg = TrainConfig {
            optim: crate::optim::AdamWConfig {
                lr: 1e-2,
                warmup_steps: 0,
                ..Default::default()
            },
            batch_size: 1,
            ..TrainConfig::default()
        };
        let mut seen = 0;
        let steps = dpo_steps(&tm, &p, &c, &r, &cfg, 4, |_, _| seen += 1).unwrap();
        assert_eq!((steps.len(), seen), (4, 4));
        assert!((steps[0].loss - std::f64::consts::LN_2).abs() < 1e-6);
        assert!(steps[3].loss < steps[0].loss, "{steps:?}");
        assert!(steps
            .iter()
            .all(|s| s.forward_s > 0.0 && s.backward_s > 0.0));
        assert!(dpo_steps(&tm, &[], &c, &r, &cfg, 1, |_, _| ()).is_err());
    }
}
