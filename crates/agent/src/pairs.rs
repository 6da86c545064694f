//! Preference pairs from search trees (Agent Q §5.2): at every node, every pair of explored
//! children whose preference Q (`α·Q̃ + (1−α)·Q̂`) differs by more than θ gives (prompt at
//! the node, chosen, rejected). Optionally trajectory-level pairs (a successful rollout
//! against a failed one of the same task).
//!
//! Lines of `pairs.jsonl` are TRL's standard preference form — `prompt`, `chosen`,
//! `rejected` strings at the top level — with the reference log-probs in TRL's columns
//! (`ref_chosen_logps`, `ref_rejected_logps`, when the data-generating policy gave them) and
//! extra fields (Q values, visits, task, tree, depth) that trainers ignore.

use serde::{Deserialize, Serialize};

use super::mcts::Tree;
use crate::demos::SftExample;
use crate::policy::prompt::PromptMode;
use crate::policy::{Candidate, Context};
use agentq_trajectory::Episode;

/// One preference pair (one `pairs.jsonl` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    /// The policy prompt at the node (the exact prompt an LLM policy was given; for policies
    /// without one, [`render_prompt`]).
    pub prompt: String,
    /// Preferred completion.
    pub chosen: String,
    /// Dispreferred completion.
    pub rejected: String,
    /// Reference log-prob of `chosen` under the data-generating policy, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_chosen_logps: Option<f64>,
    /// Reference log-prob of `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_rejected_logps: Option<f64>,
    /// `step` (node-level) or `trajectory`.
    pub kind: String,
    /// Preference Q of `chosen` (`α·Q̃ + (1−α)·Q̂`; for trajectories, the rollout value).
    pub q_chosen: f64,
    /// Preference Q of `rejected`.
    pub q_rejected: f64,
    /// MCTS value Q̃ of `chosen`.
    pub mcts_q_chosen: f64,
    /// MCTS value Q̃ of `rejected`.
    pub mcts_q_rejected: f64,
    /// Critic score Q̂ of `chosen`, if ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_hat_chosen: Option<f64>,
    /// Critic score Q̂ of `rejected`, if ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_hat_rejected: Option<f64>,
    /// Visits of `chosen`.
    pub visits_chosen: u64,
    /// Visits of `rejected`.
    pub visits_rejected: u64,
    /// The action of `chosen` (equal to `chosen` unless the completion has more text).
    pub chosen_action: String,
    /// The action of `rejected`.
    pub rejected_action: String,
    /// Task (`train:3`).
    pub task: String,
    /// Tree id (`train:3/s0`).
    pub tree: String,
    /// Node index in the tree (0 for trajectory pairs).
    pub node: usize,
    /// Depth of the node (steps from the root).
    pub depth: usize,
    /// Episode seed of the tree's root.
    #[serde(default)]
    pub seed: u64,
    /// The actions from the root to the node (replaying them after `reset(task, seed)`
    /// reaches the node's state; empty for trajectory pairs and at the root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
    /// Whether `prompt` is the policy's own prompt (`false`: [`render_prompt`]).
    pub prompt_from_policy: bool,
    /// Trajectory pairs: every step of the chosen rollout as an SFT example (the policy's
    /// prompt at that step and its response), so a trainer scores the trajectory step by
    /// step (`prompt`/`chosen`/`rejected` then only show it, in TRL's form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen_steps: Vec<SftExample>,
    /// Trajectory pairs: every step of the rejected rollout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_steps: Vec<SftExample>,
}

impl PreferencePair {
    /// The pair as [`step_pairs`] would label it under another `alpha` and `theta`: `None`
    /// when its two preference Qs differ by `theta` or less, chosen and rejected swapped when
    /// the mix reverses them. A pair collected with a negative θ (every explored sibling
    /// pair) can so be labelled for any α and θ without searching again; the search itself
    /// does not depend on them. Trajectory pairs are returned unchanged.
    pub fn relabel(&self, alpha: f64, theta: f64) -> Option<PreferencePair> {
        if self.kind != "step" {
            return Some(self.clone());
        }
        let mix = |q: f64, q_hat: Option<f64>| alpha * q + (1.0 - alpha) * q_hat.unwrap_or(0.0);
        let qc = mix(self.mcts_q_chosen, self.q_hat_chosen);
        let qr = mix(self.mcts_q_rejected, self.q_hat_rejected);
        if (qc - qr).abs() <= theta {
            return None;
        }
        let mut p = self.clone();
        if qr > qc {
            std::mem::swap(&mut p.chosen, &mut p.rejected);
            std::mem::swap(&mut p.ref_chosen_logps, &mut p.ref_rejected_logps);
            std::mem::swap(&mut p.mcts_q_chosen, &mut p.mcts_q_rejected);
            std::mem::swap(&mut p.q_hat_chosen, &mut p.q_hat_rejected);
            std::mem::swap(&mut p.visits_chosen, &mut p.visits_rejected);
            std::mem::swap(&mut p.chosen_action, &mut p.rejected_action);
        }
        (p.q_chosen, p.q_rejected) = (qc.max(qr), qc.min(qr));
        Some(p)
    }
}

/// Settings of pair extraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairOptions {
    /// Weight of Q̃ in the preference Q.
    pub alpha: f64,
    /// Least |ΔQ| (strictly greater, as in Agent Q's Algorithm 1).
    pub theta: f64,
    /// Also emit trajectory-level pairs.
    pub trajectory: bool,
    /// The prompt form of the steps of trajectory pairs.
    #[serde(default)]
    pub mode: PromptMode,
}

/// The prompt recorded for a policy that has none of its own: instruction, numbered previous
/// actions, the page in the run's observation mode and the valid actions.
pub fn render_prompt(ctx: &Context<'_>) -> String {
    let mut s = format!("Instruction: {}\nPrevious actions:\n", ctx.instruction);
    if ctx.history.is_empty() {
        s.push_str("(none)\n");
    }
    for (i, t) in ctx.history.iter().enumerate() {
        s.push_str(&format!("{}. {}\n", i + 1, t.action));
    }
    s.push_str("Observation:\n");
    s.push_str(ctx.observation.render(ctx.mode));
    s.push_str("\nAvailable actions:\n");
    s.push_str(&ctx.available.join("\n"));
    s
}

/// The completion text of a candidate: its action (non-LLM policies). An LLM policy whose
/// completions carry more (a thought) passes its own renderer to [`step_pairs`].
pub fn action_completion(c: &Candidate) -> String {
    c.action.clone()
}

/// Node-level pairs of `tree`: for every node, every pair of children both visited with
/// `|ΔQ| > theta`, chosen = the higher Q. Pairs whose completions render identically are
/// skipped. Deterministic order (node index, then critic order).
pub fn step_pairs(
    tree: &Tree,
    opts: &PairOptions,
    completion: &dyn Fn(&Candidate) -> String,
) -> Vec<PreferencePair> {
    let mut out = Vec::new();
    for (ni, node) in tree.nodes.iter().enumerate() {
        let Some(r) = node.reached.as_ref() else {
            continue;
        };
        let explored: Vec<usize> = node
            .children
            .iter()
            .copied()
            .filter(|&c| tree.nodes[c].visits > 0)
            .collect();
        if explored.len() < 2 {
            continue;
        }
        let history: Vec<String> = tree.path(ni)[1..]
            .iter()
            .map(|&n| tree.nodes[n].action.clone())
            .collect();
        for (a, &i) in explored.iter().enumerate() {
            for &j in &explored[a + 1..] {
                let (ci, cj) = (&tree.nodes[i], &tree.nodes[j]);
                let (qi, qj) = (ci.q_mix(opts.alpha), cj.q_mix(opts.alpha));
                if (qi - qj).abs() <= opts.theta {
                    continue;
                }
                let (w, l, qw, ql) = if qi > qj {
                    (ci, cj, qi, qj)
                } else {
                    (cj, ci, qj, qi)
                };
                let cand = |n: &super::mcts::Node| {
                    n.candidate
                        .clone()
                        .unwrap_or_else(|| Candidate::plain(n.action.clone()))
                };
                let (cw, cl) = (cand(w), cand(l));
                let (chosen, rejected) = (completion(&cw), completion(&cl));
                if chosen == rejected {
                    continue;
                }
                out.push(PreferencePair {
                    prompt: r.prompt.clone().unwrap_or_default(),
                    chosen,
                    rejected,
                    ref_chosen_logps: cw.logprob,
                    ref_rejected_logps: cl.logprob,
                    kind: "step".into(),
                    q_chosen: qw,
                    q_rejected: ql,
                    mcts_q_chosen: w.q(),
                    mcts_q_rejected: l.q(),
                    q_hat_chosen: w.q_hat,
                    q_hat_rejected: l.q_hat,
                    visits_chosen: w.visits,
                    visits_rejected: l.visits,
                    chosen_action: cw.action,
                    rejected_action: cl.action,
                    task: tree.task.to_string(),
                    tree: tree.id.clone(),
                    node: ni,
                    depth: node.depth,
                    seed: tree.seed,
                    history: history.clone(),
                    prompt_from_policy: r.prompt_from_policy,
                    chosen_steps: Vec::new(),
                    rejected_steps: Vec::new(),
                });
            }
        }
    }
    out
}

/// Trajectory-level pairs (T-DPO's data, outcome only): the i-th distinct successful
/// rollout against the i-th distinct failed one (as many pairs as the smaller group). Each
/// side carries its steps (`chosen_steps`, `rejected_steps`: the prompt of every step in
/// `mode` and the response), which a trainer scores as the sum over steps. `prompt` is the
/// root's and `chosen`/`rejected` the actions one per line, so TRL-form readers still see a
/// pair.
pub fn trajectory_pairs(
    tree: &Tree,
    rollouts: &[Episode],
    values: &[f64],
    mode: PromptMode,
) -> Vec<PreferencePair> {
    let text = |e: &Episode| {
        e.steps
            .iter()
            .map(|s| s.action.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let logp = |e: &Episode| -> Option<f64> {
        e.steps
            .iter()
            .map(|s| {
                s.candidates
                    .iter()
                    .find(|c| c.action == s.action)
                    .and_then(|c| c.logprob)
            })
            .sum()
    };
    let mut wins: Vec<(usize, String)> = Vec::new();
    let mut losses: Vec<(usize, String)> = Vec::new();
    for (i, e) in rollouts.iter().enumerate() {
        let t = text(e);
        let group = if e.summary.success {
            &mut wins
        } else {
            &mut losses
        };
        if group.iter().all(|(_, x)| *x != t) {
            group.push((i, t));
        }
    }
    let root = tree.nodes.first().and_then(|n| n.reached.as_ref());
    wins.into_iter()
        .zip(losses)
        .map(|((wi, wt), (li, lt))| {
            let (w, l) = (&rollouts[wi], &rollouts[li]);
            PreferencePair {
                prompt: root.and_then(|r| r.prompt.clone()).unwrap_or_default(),
                chosen: wt.clone(),
                rejected: lt.clone(),
                ref_chosen_logps: logp(w),
                ref_rejected_logps: logp(l),
                kind: "trajectory".into(),
                q_chosen: values.get(wi).copied().unwrap_or(w.summary.reward),
                q_rejected: values.get(li).copied().unwrap_or(l.summary.reward),
                mcts_q_chosen: w.summary.reward,
                mcts_q_rejected: l.summary.reward,
                q_hat_chosen: None,
                q_hat_rejected: None,
                visits_chosen: 1,
                visits_rejected: 1,
                chosen_action: wt,
                rejected_action: lt,
                task: tree.task.to_string(),
                tree: tree.id.clone(),
                node: 0,
                depth: 0,
                seed: tree.seed,
                history: Vec::new(),
                prompt_from_policy: root.is_some_and(|r| r.prompt_from_policy),
                chosen_steps: crate::demos::examples(w, mode),
                rejected_steps: crate::demos::examples(l, mode),
            }
        })
        .collect()
}

/// Pairs as JSONL bytes (one object per line, newline-terminated).
pub fn to_jsonl(pairs: &[PreferencePair]) -> Vec<u8> {
    let mut buf = Vec::new();
    for p in pairs {
        // Plain structs with string keys: serialization cannot fail.
        serde_json::to_writer(&mut buf, p).expect("pairs serialize");
        buf.push(b'\n');
    }
    buf
}
