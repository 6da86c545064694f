//! The critic of tree search: ranks a node's candidate actions (best first) and, for
//! `--value critic`, judges a final page without the environment's reward.
//!
//! In Agent Q the critic is the same frozen model as the policy with a critique prompt,
//! queried by iterative pick-the-best; that implementation lives with the LLM policies and
//! only has to implement [`Critic`]. Here: [`ProposalOrder`] (no critic: the policy's order,
//! and a page-kind heuristic as self-evaluation) and [`FnCritic`] (closures, for tests).

use crate::policy::{Candidate, Context, PageKind, Result};

/// Ranks candidate actions and judges final pages. Stateless between calls (`&self`), so
/// one critic serves concurrent trees; a critic must give the same answer for the same input
/// (seeded) for searches to be reproducible.
#[async_trait::async_trait]
pub trait Critic: Send + Sync {
    /// A short description for run configurations (`order`, `llm:pick-best:…`).
    fn describe(&self) -> String;

    /// A ranking of `candidates` at `ctx`: a permutation of `0..candidates.len()`, best
    /// first. (Agent Q: ask for the best remaining candidate, remove it, repeat.) The search
    /// repairs a malformed answer (drops repeats and out-of-range indices, appends the missing
    /// candidates in the policy's order) and logs a warning.
    async fn rank(&self, ctx: &Context<'_>, candidates: &[Candidate]) -> Result<Vec<usize>>;

    /// Self-evaluation of the page in `ctx` as the end of an episode: the probability in
    /// [0, 1] that the task was accomplished. Used as the terminal value with
    /// `--value critic` (no environment reward during search).
    async fn judge(&self, ctx: &Context<'_>) -> Result<f64>;
}

/// No critic: keeps the policy's order, and judges a final page 1.0 if it is the
/// confirmation page after a purchase (`PageKind::Done`) and 0.0 otherwise — the only thing
/// one can tell from a page without a model or the environment's reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProposalOrder;

#[async_trait::async_trait]
impl Critic for ProposalOrder {
    fn describe(&self) -> String {
        "order".into()
    }

    async fn rank(&self, _ctx: &Context<'_>, candidates: &[Candidate]) -> Result<Vec<usize>> {
        Ok((0..candidates.len()).collect())
    }

    async fn judge(&self, ctx: &Context<'_>) -> Result<f64> {
        Ok(if ctx.page() == PageKind::Done {
            1.0
        } else {
            0.0
        })
    }
}

/// Ranking closure of [`FnCritic`].
pub type RankFn = dyn Fn(&Context<'_>, &[Candidate]) -> Vec<usize> + Send + Sync;
/// Judging closure of [`FnCritic`].
pub type JudgeFn = dyn Fn(&Context<'_>) -> f64 + Send + Sync;

/// A critic made of closures (tests, scripted experiments).
pub struct FnCritic {
    name: String,
    rank: Box<RankFn>,
    judge: Box<JudgeFn>,
}

impl FnCritic {
    /// A critic named `name` that ranks with `rank` and judges with `judge`.
    pub fn new(
        name: impl Into<String>,
        rank: impl Fn(&Context<'_>, &[Candidate]) -> Vec<usize> + Send + Sync + 'static,
        judge: impl Fn(&Context<'_>) -> f64 + Send + Sync + 'static,
    ) -> Self {
        FnCritic {
            name: name.into(),
            rank: Box::new(rank),
            judge: Box::new(judge),
        }
    }

    /// A critic that prefers candidates whose action contains any of `good` (in the order
    /// of `good`), then the rest in the policy's order; it judges with [`ProposalOrder`]'s
    /// heuristic.
    pub fn preferring(good: Vec<String>) -> Self {
        FnCritic::new(
            format!("prefer({})", good.join("|")),
            move |_ctx, cands| {
                let score = |c: &Candidate| {
                    good.iter()
                        .position(|g| c.action.contains(g.as_str()))
                        .unwrap_or(good.len())
                };
                let mut idx: Vec<usize> = (0..cands.len()).collect();
                idx.sort_by_key(|&i| (score(&cands[i]), i));
                idx
            },
            |ctx| {
                if ctx.page() == PageKind::Done {
                    1.0
                } else {
                    0.0
                }
            },
        )
    }
}

impl std::fmt::Debug for FnCritic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnCritic")
            .field("name", &self.name)
            .finish()
    }
}

#[async_trait::async_trait]
impl Critic for FnCritic {
    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn rank(&self, ctx: &Context<'_>, candidates: &[Candidate]) -> Result<Vec<usize>> {
        Ok((self.rank)(ctx, candidates))
    }

    async fn judge(&self, ctx: &Context<'_>) -> Result<f64> {
        Ok((self.judge)(ctx))
    }
}

/// Turns a critic's answer into a permutation of `0..n`: keeps the first occurrence of each
/// in-range index, then appends the missing ones in increasing order. Returns whether the
/// answer needed repair.
pub fn repair_ranking(answer: &[usize], n: usize) -> (Vec<usize>, bool) {
    let mut seen = vec![false; n];
    let mut out = Vec::with_capacity(n);
    for &i in answer {
        if i < n && !seen[i] {
            seen[i] = true;
            out.push(i);
        }
    }
    let complete = out.len() == n && answer.len() == n;
    for (i, s) in seen.iter().enumerate() {
        if !s {
            out.push(i);
        }
    }
    (out, !complete)
}

/// Agent Q's rank → score map, on the scale of the MCTS value: `Q̂ = (n − 1 − r) / (n − 1)`
/// for 0-based rank `r` among `n` candidates (1 for the best, 0 for the worst; 1 when
/// `n == 1`).
pub fn q_hat(rank: usize, n: usize) -> f64 {
    if n <= 1 {
        1.0
    } else {
        (n - 1 - rank.min(n - 1)) as f64 / (n - 1) as f64
    }
}

/// The LLM critic (the frozen model with the critique prompt) as a tree-search critic.
#[async_trait::async_trait]
impl Critic for crate::policy::critic::LlmCritic {
    fn describe(&self) -> String {
        crate::policy::critic::LlmCritic::describe(self)
    }

    async fn rank(
        &self,
        ctx: &Context<'_>,
        candidates: &[Candidate],
    ) -> crate::policy::Result<Vec<usize>> {
        let actions: Vec<String> = candidates.iter().map(|c| c.action.clone()).collect();
        crate::policy::critic::LlmCritic::rank(self, ctx, &actions).await
    }

    async fn judge(&self, ctx: &Context<'_>) -> crate::policy::Result<f64> {
        crate::policy::critic::LlmCritic::judge(self, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_map_and_repair() {
        assert_eq!(q_hat(0, 3), 1.0);
        assert_eq!(q_hat(1, 3), 0.5);
        assert_eq!(q_hat(2, 3), 0.0);
        assert_eq!(q_hat(0, 1), 1.0);
        assert_eq!(repair_ranking(&[2, 0, 1], 3), (vec![2, 0, 1], false));
        assert_eq!(repair_ranking(&[2, 2, 7], 3), (vec![2, 0, 1], true));
        assert_eq!(repair_ranking(&[], 2), (vec![0, 1], true));
    }
}
