//! Uncertainty of run figures: Wilson intervals for success rates, percentile-bootstrap
//! intervals for mean scores, and a paired bootstrap over tasks for the difference between
//! two runs on the same tasks. Resampling is seeded ([`SEED`]), so the same runs always
//! give the same intervals.

use std::collections::BTreeMap;

use agentq_core::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::Episode;

/// Seed of every bootstrap here.
pub const SEED: u64 = 0x5eed_b007;

/// Bootstrap resamples.
pub const RESAMPLES: usize = 10_000;

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// A 95 % interval, in the unit of its figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// The Wilson score interval of `successes` out of `n`, in percent (0–100 for `n = 0`).
pub fn wilson(successes: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval { lo: 0.0, hi: 100.0 };
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Interval {
        lo: 100.0 * (centre - half).max(0.0),
        hi: 100.0 * (centre + half).min(1.0),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The percentile-bootstrap 95 % interval of the mean of `xs`.
pub fn bootstrap_mean(xs: &[f64]) -> Interval {
    if xs.is_empty() {
        return Interval { lo: 0.0, hi: 0.0 };
    }
    let mut rng = Rng::new(SEED);
    let n = xs.len();
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Interval {
        lo: percentile(&means, 0.025),
        hi: percentile(&means, 0.975),
    }
}

/// The difference `b − a` between two runs over the tasks both ran.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDiff {
    /// Tasks in both runs.
    pub tasks: usize,
    /// Mean of `b − a`.
    pub diff: f64,
    /// Paired-bootstrap 95 % interval of the mean difference.
    pub ci: Interval,
    /// Share of resamples whose mean difference is ≤ 0 (a one-sided bootstrap p-value for
    /// "b is better").
    pub p_not_better: f64,
}

/// Paired bootstrap over tasks: resamples task indices and takes the mean of `b[i] − a[i]`.
pub fn paired_bootstrap(a: &[f64], b: &[f64]) -> PairedDiff {
    let n = a.len().min(b.len());
    let d: Vec<f64> = (0..n).map(|i| b[i] - a[i]).collect();
    if n == 0 {
        return PairedDiff {
            tasks: 0,
            diff: 0.0,
            ci: Interval { lo: 0.0, hi: 0.0 },
            p_not_better: 1.0,
        };
    }
    let mut rng = Rng::new(SEED);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| d[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let not_better = means.iter().filter(|&&m| m <= 0.0).count();
    PairedDiff {
        tasks: n,
        diff: d.iter().sum::<f64>() / n as f64,
        ci: Interval {
            lo: percentile(&means, 0.025),
            hi: percentile(&means, 0.975),
        },
        p_not_better: not_better as f64 / RESAMPLES as f64,
    }
}

/// Per-task values of two runs, matched on the task (the first episode of a task counts);
/// tasks only one run has are left out. Values are `f(episode)`, in task order.
pub fn matched(a: &[Episode], b: &[Episode], f: impl Fn(&Episode) -> f64) -> (Vec<f64>, Vec<f64>) {
    let index = |eps: &[Episode]| {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        for e in eps {
            m.entry(e.header.task.clone()).or_insert_with(|| f(e));
        }
        m
    };
    let (ia, ib) = (index(a), index(b));
    ia.iter()
        .filter_map(|(t, &x)| ib.get(t).map(|&y| (x, y)))
        .unzip()
}

/// Success (100 or 0) of an episode, for success-rate differences in points.
pub fn success_points(e: &Episode) -> f64 {
    if e.summary.success {
        100.0
    } else {
        0.0
    }
}

/// Score (100 × reward) of an episode.
pub fn score_points(e: &Episode) -> f64 {
    100.0 * e.summary.reward
}

/// A run's success rate and score with their 95 % intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunIntervals {
    /// Episodes.
    pub episodes: usize,
    /// Wilson interval of the success rate (%).
    pub success: Interval,
    /// Bootstrap interval of the score.
    pub score: Interval,
}

/// The intervals of a run's episodes.
pub fn run_intervals(eps: &[Episode]) -> RunIntervals {
    let wins = eps.iter().filter(|e| e.summary.success).count();
    let scores: Vec<f64> = eps.iter().map(score_points).collect();
    RunIntervals {
        episodes: eps.len(),
        success: wilson(wins, eps.len()),
        score: bootstrap_mean(&scores),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 17 of 100: the Wilson 95 % interval is 10.9 %–25.5 %.
        let i = wilson(17, 100);
        assert!((i.lo - 10.9).abs() < 0.05, "{i:?}");
        assert!((i.hi - 25.55).abs() < 0.01, "{i:?}");
        // 0 of 20: 0 %–16.1 %.
        let i = wilson(0, 20);
        assert_eq!(i.lo, 0.0);
        assert!((i.hi - 16.1).abs() < 0.05, "{i:?}");
        assert_eq!(wilson(0, 0), Interval { lo: 0.0, hi: 100.0 });
    }

    #[test]
    fn bootstrap_interval_covers_the_mean_and_shrinks_with_n() {
        let small: Vec<f64> = (0..20).map(|i| f64::from(i % 2) * 100.0).collect();
        let large: Vec<f64> = (0..2000).map(|i| f64::from(i % 2) * 100.0).collect();
        let (s, l) = (bootstrap_mean(&small), bootstrap_mean(&large));
        assert!(s.lo < 50.0 && s.hi > 50.0 && l.lo < 50.0 && l.hi > 50.0);
        assert!(l.hi - l.lo < (s.hi - s.lo) / 5.0, "{s:?} {l:?}");
        // Seeded: the same input gives the same interval.
        assert_eq!(bootstrap_mean(&small), s);
    }

    #[test]
    fn paired_bootstrap_sees_a_consistent_gain_and_not_noise() {
        // b beats a on 30 of 100 tasks and loses on none: a clear gain.
        let a = vec![0.0; 100];
        let b: Vec<f64> = (0..100).map(|i| if i < 30 { 100.0 } else { 0.0 }).collect();
        let d = paired_bootstrap(&a, &b);
        assert_eq!(d.tasks, 100);
        assert!((d.diff - 30.0).abs() < 1e-9);
        assert!(d.ci.lo > 15.0 && d.ci.hi < 45.0, "{d:?}");
        assert!(d.p_not_better < 0.001);
        // Gains and losses that cancel: the interval holds 0.
        let b2: Vec<f64> = (0..100)
            .map(|i| match i % 4 {
                0 => 100.0,
                _ => 0.0,
            })
            .collect();
        let a2: Vec<f64> = (0..100)
            .map(|i| match i % 4 {
                1 => 100.0,
                _ => 0.0,
            })
            .collect();
        let d2 = paired_bootstrap(&a2, &b2);
        assert_eq!(d2.diff, 0.0);
        assert!(d2.ci.lo < 0.0 && d2.ci.hi > 0.0, "{d2:?}");
    }
}
