//! Losses on candle tensors: response log-probs from logits, DPO (sigmoid loss, TRL's
//! metrics) and SFT negative log-likelihood. Model-independent: they take logits and token
//! ids, so any differentiable model can be trained with them.

use candle_core::{DType, Device, Result, Tensor};

/// Log-probs `[n]` of `targets` given `logits` (`[n, vocab]`, row `i` predicting
/// `targets[i]`): [`agentq_lm::llama::token_logprobs`] on a batch of one.
fn per_token(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let idx = Tensor::from_slice(targets, (1, targets.len()), logits.device())?;
    agentq_lm::llama::token_logprobs(&logits.to_dtype(DType::F32)?.unsqueeze(0)?, &idx)?.squeeze(0)
}

/// Sum of the log-probs of `targets` given `logits` (`[n, vocab]`, row `i` predicting
/// `targets[i]`); differentiable.
pub fn sequence_logprob(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    per_token(logits, targets)?.sum_all()
}

/// Per-token log-probs of `targets` given `logits` (`[n, vocab]`), as plain numbers.
pub fn token_logprobs(logits: &Tensor, targets: &[u32]) -> Result<Vec<f32>> {
    per_token(logits, targets)?.to_vec1::<f32>()
}

/// `softplus(x) = log(1 + e^x)`, computed stably (`relu(x) + log(1 + e^{-|x|})`).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The DPO loss of one pair: `−log σ(β[(π_c − ref_c) − (π_r − ref_r)])` where π are the
/// policy's summed response log-probs (scalar tensors) and ref the reference's.
pub fn dpo_loss(pi_c: &Tensor, pi_r: &Tensor, ref_c: f64, ref_r: f64, beta: f64) -> Result<Tensor> {
    let z = (((pi_c - pi_r)? - (ref_c - ref_r))? * beta)?;
    softplus(&z.neg()?)
}

/// The metrics TRL logs for a batch of pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DpoMetrics {
    /// Mean loss.
    pub loss: f64,
    /// Mean `β(π_c − ref_c)`.
    pub rewards_chosen: f64,
    /// Mean `β(π_r − ref_r)`.
    pub rewards_rejected: f64,
    /// Share of pairs with chosen reward > rejected reward.
    pub rewards_accuracies: f64,
    /// Mean margin (chosen − rejected reward).
    pub rewards_margins: f64,
    /// Mean policy log-prob of chosen responses.
    pub logps_chosen: f64,
    /// Mean policy log-prob of rejected responses.
    pub logps_rejected: f64,
}

/// Metrics over pairs given (π_c, π_r, ref_c, ref_r) numbers.
pub fn dpo_metrics(rows: &[(f64, f64, f64, f64)], beta: f64) -> DpoMetrics {
    if rows.is_empty() {
        return DpoMetrics::default();
    }
    let n = rows.len() as f64;
    let mut m = DpoMetrics::default();
    for &(pc, pr, rc, rr) in rows {
        let (a, b) = (beta * (pc - rc), beta * (pr - rr));
        let z = a - b;
        // softplus(-z), stable.
        m.loss += (-z).max(0.0) + (-z.abs()).exp().ln_1p();
        m.rewards_chosen += a;
        m.rewards_rejected += b;
        m.rewards_accuracies += f64::from(u8::from(a > b));
        m.rewards_margins += z;
        m.logps_chosen += pc;
        m.logps_rejected += pr;
    }
    m.loss /= n;
    m.rewards_chosen /= n;
    m.rewards_rejected /= n;
    m.rewards_accuracies /= n;
    m.rewards_margins /= n;
    m.logps_chosen /= n;
    m.logps_rejected /= n;
    m
}

impl DpoMetrics {
    /// The metrics under TRL's names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("loss", self.loss),
            ("rewards/chosen", self.rewards_chosen),
            ("rewards/rejected", self.rewards_rejected),
            ("rewards/accuracies", self.rewards_accuracies),
            ("rewards/margins", self.rewards_margins),
            ("logps/chosen", self.logps_chosen),
            ("logps/rejected", self.logps_rejected),
        ]
    }
}

/// Mean negative log-likelihood of `targets` (SFT loss of one example).
pub fn sft_loss(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    let n = targets.len().max(1) as f64;
    (sequence_logprob(logits, targets)?.neg()? / n)?.to_dtype(DType::F32)
}

/// A scalar tensor holding `x` (f32).
pub fn scalar(x: f64, dev: &Device) -> Result<Tensor> {
    Tensor::new(x as f32, dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn value(t: &Tensor) -> f64 {
        t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn dpo_loss_matches_its_formula_and_metrics() {
        let dev = Device::Cpu;
        for &(pc, pr, rc, rr, beta) in &[
            (-10.0, -12.0, -11.0, -11.0, 0.1),
            (-3.0, -1.0, -2.0, -2.5, 0.5),
            (-200.0, -1.0, -1.0, -200.0, 0.1),
        ] {
            let l = dpo_loss(
                &scalar(pc, &dev).unwrap(),
                &scalar(pr, &dev).unwrap(),
                rc,
                rr,
                beta,
            )
            .unwrap();
            let z: f64 = beta * ((pc - rc) - (pr - rr));
            let want = -(1.0 / (1.0 + (-z).exp())).ln();
            assert!(
                (value(&l) - want).abs() < 1e-4 * want.abs().max(1.0),
                "{} vs {want}",
                value(&l)
            );
            let m = dpo_metrics(&[(pc, pr, rc, rr)], beta);
            assert!((m.loss - want).abs() < 1e-9 * want.abs().max(1.0));
            assert!((m.rewards_margins - z).abs() < 1e-12);
        }
        let m = dpo_metrics(&[(-1.0, -2.0, -1.5, -1.5), (-3.0, -1.0, -2.0, -2.0)], 0.1);
        assert_eq!(m.rewards_accuracies, 0.5);
        assert_eq!(m.named()[0].0, "loss");
    }

    #[test]
    fn dpo_loss_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        // Log-probs from logits, so the check runs through log_softmax and gather too.
        let logits = Var::from_vec(
            vec![
                0.3f32, -1.2, 2.0, 0.5, 1.1, -0.4, 0.0, 0.7, -2.0, 1.5, 0.2, 0.9,
            ],
            (4, 3),
            &dev,
        )
        .unwrap();
        let loss_of = |t: &Tensor| -> Tensor {
            let c = sequence_logprob(&t.narrow(0, 0, 2).unwrap(), &[2, 0]).unwrap();
            let r = sequence_logprob(&t.narrow(0, 2, 2).unwrap(), &[1, 0]).unwrap();
            dpo_loss(&c, &r, -1.7, -2.2, 0.5).unwrap()
        };
        let loss = loss_of(logits.as_tensor());
        let grads = loss.backward().unwrap();
        let g = grads
            .get(&logits)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = logits
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let eps = 1e-2f32;
        for i in 0..base.len() {
            let at = |d: f32| {
                let mut v = base.clone();
                v[i] += d;
                value(&loss_of(&Tensor::from_vec(v, (4, 3), &dev).unwrap()))
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!(
                (fd - g[i] as f64).abs() < 2e-3,
                "element {i}: finite difference {fd} vs autograd {}",
                g[i]
            );
        }
    }

    #[test]
    fn sft_loss_is_mean_nll() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[0.0f32, 0.0], [0.0, 0.0]], &dev).unwrap();
        let l = value(&sft_loss(&logits, &[0, 1]).unwrap());
        assert!((l - std::f64::consts::LN_2).abs() < 1e-6);
        let lp = token_logprobs(&logits, &[0, 1]).unwrap();
        assert!((lp[0] as f64 + std::f64::consts::LN_2).abs() < 1e-6);
    }
}
