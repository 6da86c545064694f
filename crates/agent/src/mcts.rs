//! Monte Carlo tree search over web pages, Agent Q style: the policy proposes K actions at a
//! new node, the critic ranks them (rank → Q̂), children are tried first in critic order and
//! then by UCB1, rollouts run the policy to a terminal page or the depth cap, and terminal
//! values are backed up as running means.
//!
//! The tree is an arena (`Vec<Node>`, indices). A node is a (history, page): the path of
//! actions from the root and the page they lead to. Every reached node keeps an
//! [`env::Snapshot`]; branching restores it (`Env::restore`), never replays from the root.
//! The search draws no randomness of its own: ties go to the critic's order, and the
//! policy's contexts carry explicit seeds (expansion: the episode seed; rollout `i`: a seed
//! derived from [`MctsConfig::seed`] and `i`), so identical seeds give identical trees.
//!
//! Values: [`ValueMode::Env`] uses the environment's terminal reward (at test time this is
//! search with a verifier, and is labelled so); [`ValueMode::Critic`] uses the critic's
//! judgement of the final page and no environment reward (honest test-time search).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::critic::{q_hat, repair_ranking, Critic};
use super::{episode_id, header, EpisodeMeta, Result};
use crate::policy::{self, Candidate, Context, Policy, Proposal, Turn};
use agentq_core::rng::Rng;
use agentq_env::{self as env, Action, Env, Observation, Snapshot, StepInfo, TaskRef};
use agentq_trajectory::report::TreeNode;
use agentq_trajectory::{CandidateRecord, Episode, SearchRole, StepRecord, Summary, Timings};

/// Where terminal values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueMode {
    /// The environment's reward at the end of a rollout (Agent Q). At test time this is
    /// search with a verifier.
    Env,
    /// The critic's self-evaluation of the final page ([`Critic::judge`]); the environment's
    /// reward is never read during search.
    Critic,
}

impl ValueMode {
    /// The label written into run configurations and summaries.
    pub fn label(self) -> &'static str {
        match self {
            ValueMode::Env => "env (terminal reward from the environment: search with a verifier)",
            ValueMode::Critic => {
                "critic (self-evaluation of the final page: no environment reward)"
            }
        }
    }
}

/// How an environment reward becomes a terminal value (with [`ValueMode::Env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalReward {
    /// 1 for a purchase with reward 1.0, else 0 (Agent Q).
    Success,
    /// WebShop's partial score in [0, 1] (LATS-style).
    Partial,
}

/// Settings of one search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MctsConfig {
    /// Iterations (selection → expansion → rollout → backup) per task. Default 20.
    pub iterations: usize,
    /// Actions proposed per new node. Default 3.
    pub k: usize,
    /// UCB1 exploration constant `c` in `Q + c·sqrt(ln N(parent) / (1 + N(child)))`.
    /// Default 1.0.
    pub c_ucb: f64,
    /// Most steps on any path (tree + rollout); a node at this depth is terminal.
    /// Default 10.
    pub depth_cap: usize,
    /// Weight of the MCTS value in the preference Q: `α·Q̃ + (1−α)·Q̂`. Default 0.5.
    pub alpha: f64,
    /// Least |ΔQ| for a preference pair. Default 0.1.
    pub theta: f64,
    /// Where terminal values come from. Default [`ValueMode::Env`].
    pub value: ValueMode,
    /// Env reward → value. Default [`TerminalReward::Success`].
    pub reward: TerminalReward,
    /// Seed of the rollout contexts (seeded policies sample from it). Default 0.
    pub seed: u64,
}

impl Default for MctsConfig {
    fn default() -> Self {
        MctsConfig {
            iterations: 20,
            k: 3,
            c_ucb: 1.0,
            depth_cap: 10,
            alpha: 0.5,
            theta: 0.1,
            value: ValueMode::Env,
            reward: TerminalReward::Success,
            seed: 0,
        }
    }
}

/// The transition into a node (what the env said when the node was first reached).
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Reward of the step.
    pub reward: f64,
    /// The step was a purchase.
    pub terminated: bool,
    /// The step hit the env's step limit.
    pub truncated: bool,
    /// Step info.
    pub info: StepInfo,
    /// Milliseconds the env took.
    pub env_ms: f64,
}

/// What is known of a node once reached (stepped into).
#[derive(Debug, Clone, PartialEq)]
pub struct Reached {
    /// Env state at the node.
    pub snapshot: Snapshot,
    /// The page as the policy is shown it (the run's observation mode).
    pub shown: String,
    /// The page URL.
    pub url: String,
    /// Valid actions on the page.
    pub available: Vec<String>,
    /// The step that led here (`None` at the root).
    pub edge: Option<Edge>,
    /// Terminal value when the node is terminal (purchase, step limit, depth cap, no valid
    /// action): the value every visit backs up.
    pub terminal: Option<f64>,
    /// The policy prompt at this node (its `Proposal.prompt`, else
    /// [`super::pairs::render_prompt`]).
    pub prompt: Option<String>,
    /// Whether `prompt` is the policy's own.
    pub prompt_from_policy: bool,
    /// The policy's raw output here (LLM text), if any.
    pub raw_output: Option<String>,
    /// Why that output could not be parsed (the policy fell back), if so.
    pub parse_error: Option<String>,
    /// Milliseconds spent proposing and ranking here.
    pub policy_ms: f64,
    /// Iteration that reached it (its rollout started here).
    pub iteration: usize,
}

/// A tree node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Parent index (`None` at the root).
    pub parent: Option<usize>,
    /// The action that leads here from the parent (empty at the root).
    pub action: String,
    /// The candidate as the policy proposed it (log-prob, thought).
    pub candidate: Option<Candidate>,
    /// Steps from the root.
    pub depth: usize,
    /// Rank the critic gave it among its siblings (0 = best).
    pub critic_rank: Option<usize>,
    /// Its position in the policy's proposal (0 = the policy's first choice).
    pub policy_rank: Option<usize>,
    /// Critic score from the rank ([`q_hat`]).
    pub q_hat: Option<f64>,
    /// Visits (backups through it).
    pub visits: u64,
    /// Sum of backed-up values.
    pub value_sum: f64,
    /// Children, in critic order.
    pub children: Vec<usize>,
    /// State once reached.
    pub reached: Option<Box<Reached>>,
    /// The state after a rollout took this action (before the node was reached): reaching
    /// the node later restores it instead of stepping again.
    pub stepped: Option<Box<(Snapshot, Edge)>>,
}

impl Node {
    /// Mean backed-up value Q̃ (0 when unvisited).
    pub fn q(&self) -> f64 {
        if self.visits == 0 {
            0.0
        } else {
            self.value_sum / self.visits as f64
        }
    }

    /// The preference Q: `α·Q̃ + (1−α)·Q̂` (Q̂ = 0 when unranked).
    pub fn q_mix(&self, alpha: f64) -> f64 {
        alpha * self.q() + (1.0 - alpha) * self.q_hat.unwrap_or(0.0)
    }

    fn is_terminal(&self) -> bool {
        self.reached.as_ref().is_some_and(|r| r.terminal.is_some())
    }
}

/// A search tree of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Tree id (`train:3/s0`): rollouts carry it in `header.tree`.
    pub id: String,
    /// The task.
    pub task: TaskRef,
    /// The episode seed the root was reset with.
    pub seed: u64,
    /// The instruction.
    pub instruction: String,
    /// Nodes; 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The path of node indices from the root to `n`.
    pub fn path(&self, n: usize) -> Vec<usize> {
        let mut p = vec![n];
        let mut cur = n;
        while let Some(up) = self.nodes[cur].parent {
            p.push(up);
            cur = up;
        }
        p.reverse();
        p
    }

    /// The policy's history at node `n` (turns along the path).
    pub fn history(&self, n: usize) -> Vec<Turn> {
        let path = self.path(n);
        path.windows(2)
            .map(|w| {
                let (p, c) = (&self.nodes[w[0]], &self.nodes[w[1]]);
                Turn {
                    observation: p
                        .reached
                        .as_ref()
                        .map(|r| r.shown.clone())
                        .unwrap_or_default(),
                    action: c.action.clone(),
                    error: c
                        .reached
                        .as_ref()
                        .and_then(|r| r.edge.as_ref())
                        .and_then(|e| e.info.error.clone()),
                }
            })
            .collect()
    }

    /// The tree in the report's shape (`RUN/trees/<task>.json`): `q` is the MCTS value Q̃.
    /// Unvisited children are kept (visits 0) so the critic's ranking of every proposal
    /// shows.
    pub fn to_report(&self) -> TreeNode {
        self.report_node(0)
    }

    fn report_node(&self, i: usize) -> TreeNode {
        let n = &self.nodes[i];
        TreeNode {
            action: n.action.clone(),
            visits: n.visits,
            q: n.q(),
            q_hat: n.q_hat,
            critic_rank: n.critic_rank,
            children: n.children.iter().map(|&c| self.report_node(c)).collect(),
        }
    }

    /// Candidate records of node `n`'s children (critic order), for step records.
    fn candidate_records(&self, n: usize) -> Vec<CandidateRecord> {
        self.nodes[n]
            .children
            .iter()
            .map(|&c| {
                let ch = &self.nodes[c];
                CandidateRecord {
                    action: ch.action.clone(),
                    logprob: ch.candidate.as_ref().and_then(|x| x.logprob),
                    critic_rank: ch.critic_rank,
                    q: Some(ch.q()),
                }
            })
            .collect()
    }
}

/// The outcome of a search.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The tree.
    pub tree: Tree,
    /// One episode per iteration: the tree path then the rollout, `header.tree` set,
    /// `header.extra` holding `role: "rollout"`, `iteration` and `value`.
    pub rollouts: Vec<Episode>,
    /// Index into `rollouts` of the best-valued path (highest terminal value; ties: higher
    /// Q̃ at the rollout's tree leaf, then the earlier iteration).
    pub best: usize,
    /// Terminal value of each rollout (same order).
    pub values: Vec<f64>,
    /// Purchases the search made in the environment (steps that ended with a purchase).
    pub purchases: usize,
    /// New nodes reached (stepped into, proposed at and ranked), root included.
    pub expansions: usize,
    /// Env steps taken (tree and rollouts).
    pub env_steps: usize,
    /// `Env::restore` calls.
    pub restores: usize,
    /// Wall-clock milliseconds of the search.
    pub wall_ms: f64,
}

impl SearchResult {
    /// The final action sequence: the actions of the best-valued path.
    pub fn final_actions(&self) -> Vec<String> {
        self.rollouts[self.best]
            .steps
            .iter()
            .map(|s| s.action.clone())
            .collect()
    }

    /// The best-valued path as an episode (the id is the task's episode id, `role: "final"`).
    pub fn final_episode(&self) -> Episode {
        let mut ep = self.rollouts[self.best].clone();
        ep.header.id = self.tree.id.clone();
        ep.header.extra.role = Some(SearchRole::Final);
        ep.header.extra.rollout = Some(self.rollouts[self.best].header.id.clone());
        ep.header.extra.purchases = Some(self.purchases);
        ep
    }
}

/// Canonical form of `action` if it is worth a node on `obs`: the env performs it
/// ([`Observation::performs`], the env's own rule), and a search is typed into a search bar
/// with a real query (not the placeholder `search[...]`); `None` otherwise.
pub fn canonical_valid(action: &str, obs: &Observation) -> Option<String> {
    let a = Action::parse(action).ok()?;
    let ok = obs.performs(&a)
        && match &a {
            Action::Search { query } => {
                obs.has_search_bar && query.trim() != "..." && !query.trim().is_empty()
            }
            _ => true,
        };
    ok.then(|| a.to_string())
}

/// The valid, distinct candidates of a proposal (canonical actions), at most `k`, in the
/// policy's order.
pub fn valid_candidates(p: &Proposal, obs: &Observation, k: usize) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for c in &p.candidates {
        if out.len() >= k.max(1) {
            break;
        }
        if let Some(a) = canonical_valid(&c.action, obs) {
            if out.iter().all(|x| x.action != a) {
                out.push(Candidate {
                    action: a,
                    ..c.clone()
                });
            }
        }
    }
    out
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The seed of rollout `i`'s policy contexts.
pub fn rollout_seed(cfg_seed: u64, episode_seed: u64, i: usize) -> u64 {
    Rng::keyed(
        cfg_seed ^ episode_seed.rotate_left(29),
        &format!("rollout/{i}"),
    )
    .next_u64()
}

struct Search<'a> {
    env: &'a mut dyn Env,
    policy: &'a dyn Policy,
    critic: &'a dyn Critic,
    meta: &'a EpisodeMeta,
    cfg: &'a MctsConfig,
    task: TaskRef,
    /// The task's absolute index.
    goal: usize,
    seed: u64,
    tree: Tree,
    /// The node whose state the env is in, if any.
    env_at: Option<usize>,
    purchases: usize,
    expansions: usize,
    env_steps: usize,
    restores: usize,
}

impl Search<'_> {
    fn ctx<'c>(
        &'c self,
        history: &'c [Turn],
        obs: &'c Observation,
        available: &'c [String],
        seed: u64,
        k: usize,
    ) -> Context<'c> {
        Context {
            task: self.task,
            goal: self.goal,
            seed,
            instruction: &self.tree.instruction,
            history,
            observation: obs,
            page: self.env.page_kind(obs),
            mode: self.meta.obs_mode,
            available,
            k,
        }
    }

    /// Terminal value of the page `obs` (after `history`), whose last step had `reward` and
    /// `terminated`.
    async fn terminal_value(
        &mut self,
        history: &[Turn],
        obs: &Observation,
        reward: f64,
        terminated: bool,
        seed: u64,
    ) -> Result<f64> {
        Ok(match self.cfg.value {
            ValueMode::Env => {
                if !terminated {
                    0.0
                } else {
                    match self.cfg.reward {
                        TerminalReward::Success => f64::from(u8::from(reward == 1.0)),
                        TerminalReward::Partial => reward.clamp(0.0, 1.0),
                    }
                }
            }
            ValueMode::Critic => {
                let available = self.env.available_actions();
                let ctx = self.ctx(history, obs, &available, seed, 1);
                self.critic.judge(&ctx).await?.clamp(0.0, 1.0)
            }
        })
    }

    /// Fills node `n` (just stepped into, env at its state): records the state, then either
    /// marks it terminal or proposes and ranks its children.
    async fn reach(
        &mut self,
        n: usize,
        obs: &Observation,
        edge: Option<Edge>,
        iteration: usize,
    ) -> Result<()> {
        self.expansions += 1;
        let snapshot = self.env.snapshot()?;
        let available = self.env.available_actions();
        let history = self.tree.history(n);
        let shown = obs.render(self.meta.obs_mode).to_string();
        let depth = self.tree.nodes[n].depth;
        let (terminated, truncated, reward) = edge
            .as_ref()
            .map(|e| (e.terminated, e.truncated, e.reward))
            .unwrap_or((false, false, 0.0));
        let mut reached = Reached {
            snapshot,
            shown,
            url: obs.url.clone(),
            available: available.clone(),
            edge,
            terminal: None,
            prompt: None,
            prompt_from_policy: false,
            raw_output: None,
            parse_error: None,
            policy_ms: 0.0,
            iteration,
        };
        if terminated || truncated || depth >= self.cfg.depth_cap {
            reached.terminal = Some(
                self.terminal_value(&history, obs, reward, terminated, self.seed)
                    .await?,
            );
            self.tree.nodes[n].reached = Some(Box::new(reached));
            return Ok(());
        }
        let t0 = Instant::now();
        let ctx = self.ctx(&history, obs, &available, self.seed, self.cfg.k);
        let proposal = match self.policy.propose(&ctx).await {
            Ok(p) => p,
            Err(policy::Error::NoAction(_)) => Proposal::default(),
            Err(e) => return Err(e.into()),
        };
        let cands = valid_candidates(&proposal, obs, self.cfg.k);
        let order = if cands.len() > 1 {
            let answer = self.critic.rank(&ctx, &cands).await?;
            let (order, repaired) = repair_ranking(&answer, cands.len());
            if repaired {
                tracing::warn!(critic = %self.critic.describe(), ?answer, n = cands.len(), "critic ranking repaired");
            }
            order
        } else {
            (0..cands.len()).collect()
        };
        reached.prompt_from_policy = proposal.prompt.is_some();
        reached.raw_output = proposal.raw_output.clone();
        reached.parse_error = proposal.parse_error.clone();
        reached.prompt = Some(
            proposal
                .prompt
                .clone()
                .unwrap_or_else(|| super::pairs::render_prompt(&ctx)),
        );
        reached.policy_ms = ms(t0);
        let nc = cands.len();
        for (rank, &pi) in order.iter().enumerate() {
            let idx = self.tree.nodes.len();
            self.tree.nodes.push(Node {
                parent: Some(n),
                action: cands[pi].action.clone(),
                candidate: Some(cands[pi].clone()),
                depth: depth + 1,
                critic_rank: Some(rank),
                policy_rank: Some(pi),
                q_hat: Some(q_hat(rank, nc)),
                visits: 0,
                value_sum: 0.0,
                children: Vec::new(),
                reached: None,
                stepped: None,
            });
            self.tree.nodes[n].children.push(idx);
        }
        if nc == 0 {
            // A dead end: nothing valid to do here.
            reached.terminal = Some(
                self.terminal_value(&history, obs, reward, terminated, self.seed)
                    .await?,
            );
        }
        self.tree.nodes[n].reached = Some(Box::new(reached));
        Ok(())
    }

    /// Untried children first (critic order), then UCB1 on Q̃ (ties: critic order).
    fn select_child(&self, n: usize) -> usize {
        let node = &self.tree.nodes[n];
        if let Some(&c) = node
            .children
            .iter()
            .find(|&&c| self.tree.nodes[c].visits == 0)
        {
            return c;
        }
        let total: u64 = node
            .children
            .iter()
            .map(|&c| self.tree.nodes[c].visits)
            .sum();
        let ln = (total.max(1) as f64).ln();
        let mut best = node.children[0];
        let mut best_u = f64::NEG_INFINITY;
        for &c in &node.children {
            let ch = &self.tree.nodes[c];
            let u = ch.q() + self.cfg.c_ucb * (ln / (1.0 + ch.visits as f64)).sqrt();
            if u > best_u {
                best_u = u;
                best = c;
            }
        }
        best
    }

    async fn goto(&mut self, n: usize) -> Result<()> {
        if self.env_at != Some(n) {
            let snap = self.tree.nodes[n]
                .reached
                .as_ref()
                .map(|r| r.snapshot.clone())
                .ok_or_else(|| env::Error::Protocol(format!("node {n} has no snapshot")))?;
            self.env.restore(&snap).await?;
            self.restores += 1;
            self.env_at = Some(n);
        }
        Ok(())
    }

    /// Step records of the tree part of the path to `leaf`.
    fn tree_steps(&self, path: &[usize]) -> Vec<StepRecord> {
        path.windows(2)
            .enumerate()
            .map(|(i, w)| {
                let (p, c) = (&self.tree.nodes[w[0]], &self.tree.nodes[w[1]]);
                let pr = p
                    .reached
                    .as_ref()
                    .expect("invariant: path nodes are reached");
                let cr = c
                    .reached
                    .as_ref()
                    .expect("invariant: path nodes are reached");
                let e = cr
                    .edge
                    .as_ref()
                    .expect("invariant: non-root nodes have an edge");
                StepRecord {
                    index: i,
                    observation: pr.shown.clone(),
                    url: pr.url.clone(),
                    available_actions: pr.available.clone(),
                    action: c.action.clone(),
                    thought: c.candidate.as_ref().and_then(|x| x.thought.clone()),
                    raw_output: pr.raw_output.clone(),
                    parse_error: pr.parse_error.clone(),
                    candidates: self.tree.candidate_records(w[0]),
                    reward: e.reward,
                    terminated: e.terminated,
                    truncated: e.truncated,
                    info: e.info.clone(),
                    timings: Timings {
                        policy_ms: pr.policy_ms,
                        env_ms: e.env_ms,
                    },
                    screenshot: None,
                }
            })
            .collect()
    }

    /// One iteration — selection (and expansion of one new node), rollout from it, backup
    /// — recorded as an episode; returns it and its value.
    async fn iterate(&mut self, it: usize) -> Result<(Episode, f64)> {
        let start = Instant::now();
        let (path, node, fresh) = self.select(it).await?;
        let steps = self.tree_steps(&path);
        let lr = self.tree.nodes[node]
            .reached
            .as_ref()
            .expect("invariant: the leaf is reached");
        let mut trail = Trail {
            detail: steps
                .iter()
                .rev()
                .find_map(|s| s.info.reward_detail.clone()),
            steps,
            final_shown: lr.shown.clone(),
            final_url: lr.url.clone(),
        };
        let value = match lr.terminal {
            Some(v) => v,
            None => self.rollout(node, fresh, it, &mut trail).await?,
        };
        self.backup(&path, value);
        Ok((self.record(it, &path, node, trail, value, start), value))
    }

    /// Selection: down the tree by UCB1 until a node that has not been reached yet (stepped
    /// into, or restored from a rollout's state) or a leaf. Returns the path, the node and,
    /// when it was reached now, its page.
    async fn select(&mut self, it: usize) -> Result<(Vec<usize>, usize, Option<Observation>)> {
        let mut path = vec![0usize];
        let mut node = 0usize;
        while !self.tree.nodes[node].is_terminal() && !self.tree.nodes[node].children.is_empty() {
            let c = self.select_child(node);
            path.push(c);
            if let Some(pre) = self.tree.nodes[c].stepped.take() {
                // A rollout already took this step: restore its state.
                let (snap, edge) = *pre;
                let obs = self.env.restore(&snap).await?;
                self.restores += 1;
                self.env_at = Some(c);
                self.reach(c, &obs, Some(edge), it).await?;
                return Ok((path, c, Some(obs)));
            }
            if self.tree.nodes[c].reached.is_none() {
                self.goto(node).await?;
                let t = Instant::now();
                let step = self.env.step(&self.tree.nodes[c].action.clone()).await?;
                let env_ms = ms(t);
                self.env_steps += 1;
                self.purchases += usize::from(step.terminated);
                self.env_at = Some(c);
                let edge = Edge {
                    reward: step.reward,
                    terminated: step.terminated,
                    truncated: step.truncated,
                    info: step.info,
                    env_ms,
                };
                self.reach(c, &step.observation, Some(edge), it).await?;
                return Ok((path, c, Some(step.observation)));
            }
            node = c;
        }
        Ok((path, node, None))
    }

    /// Rollout from the newly reached `node` (page `fresh`) with the policy: its first valid
    /// proposal there, then its first candidate each step, until a purchase, the step limit
    /// or the depth cap. The first step's state is kept for the node's child. Appends the
    /// steps to `trail`; returns the terminal value.
    async fn rollout(
        &mut self,
        node: usize,
        fresh: Option<Observation>,
        it: usize,
        trail: &mut Trail,
    ) -> Result<f64> {
        let obs0 = fresh
            .ok_or_else(|| env::Error::Protocol("rollout from a node reached earlier".into()))?;
        let leaf = &self.tree.nodes[node];
        let lr = leaf
            .reached
            .as_ref()
            .expect("invariant: the leaf is reached");
        let mut first_child = leaf
            .children
            .iter()
            .copied()
            .find(|&c| self.tree.nodes[c].policy_rank == Some(0));
        let ci = first_child.expect("invariant: a non-terminal reached node has children");
        let ch = &self.tree.nodes[ci];
        let mut next = Some(RolloutStep {
            action: ch.action.clone(),
            thought: ch.candidate.as_ref().and_then(|x| x.thought.clone()),
            candidates: Vec::new(),
            policy_ms: lr.policy_ms,
            raw_output: lr.raw_output.clone(),
            parse_error: lr.parse_error.clone(),
        });
        let mut depth = leaf.depth;
        self.goto(node).await?;
        let rseed = rollout_seed(self.cfg.seed, self.seed, it);
        let mut history = self.tree.history(node);
        let mut obs = obs0;
        let (mut reward, mut terminated) = (0.0, false);
        while let Some(rs) = next.take() {
            let available = self.env.available_actions();
            let t = Instant::now();
            let step = self.env.step(&rs.action).await?;
            let env_ms = ms(t);
            self.env_steps += 1;
            self.env_at = None;
            if let Some(ci) = first_child.take() {
                let ch = &self.tree.nodes[ci];
                if ch.reached.is_none() && ch.stepped.is_none() {
                    let snap = self.env.snapshot()?;
                    self.tree.nodes[ci].stepped = Some(Box::new((
                        snap,
                        Edge {
                            reward: step.reward,
                            terminated: step.terminated,
                            truncated: step.truncated,
                            info: step.info.clone(),
                            env_ms,
                        },
                    )));
                }
            }
            self.purchases += usize::from(step.terminated);
            depth += 1;
            let shown = obs.render(self.meta.obs_mode).to_string();
            if step.info.reward_detail.is_some() {
                trail.detail = step.info.reward_detail.clone();
            }
            trail.steps.push(StepRecord {
                index: trail.steps.len(),
                observation: shown.clone(),
                url: obs.url.clone(),
                available_actions: available,
                action: rs.action.clone(),
                thought: rs.thought,
                raw_output: rs.raw_output,
                parse_error: rs.parse_error,
                candidates: rs.candidates,
                reward: step.reward,
                terminated: step.terminated,
                truncated: step.truncated,
                info: step.info.clone(),
                timings: Timings {
                    policy_ms: rs.policy_ms,
                    env_ms,
                },
                screenshot: None,
            });
            history.push(Turn {
                observation: shown,
                action: rs.action,
                error: step.info.error.clone(),
            });
            obs = step.observation;
            reward = step.reward;
            terminated = step.terminated;
            if step.terminated || step.truncated || depth >= self.cfg.depth_cap {
                break;
            }
            let available = self.env.available_actions();
            let t = Instant::now();
            let ctx = self.ctx(&history, &obs, &available, rseed, 1);
            match self.policy.propose(&ctx).await {
                Ok(p) => next = RolloutStep::pick(&p, &obs, t),
                Err(policy::Error::NoAction(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        trail.final_shown = obs.render(self.meta.obs_mode).to_string();
        trail.final_url = obs.url.clone();
        self.terminal_value(&history, &obs, reward, terminated, rseed)
            .await
    }

    /// Backup: every node on the path gets a visit and the value.
    fn backup(&mut self, path: &[usize], value: f64) {
        for &n in path {
            let nd = &mut self.tree.nodes[n];
            nd.visits += 1;
            nd.value_sum += value;
        }
    }

    /// The iteration as a rollout episode of the tree.
    fn record(
        &self,
        it: usize,
        path: &[usize],
        node: usize,
        trail: Trail,
        value: f64,
        start: Instant,
    ) -> Episode {
        let mut h = header(
            self.meta,
            &self.policy.describe(),
            (self.task, self.goal),
            self.seed,
            &self.tree.instruction,
        );
        h.id = format!("{}/r{it}", self.tree.id);
        h.tree = Some(self.tree.id.clone());
        h.extra.role = Some(SearchRole::Rollout);
        h.extra.iteration = Some(it);
        h.extra.value = Some(value);
        h.extra.tree_steps = Some(path.len() - 1);
        h.extra.leaf = Some(node);
        let steps = trail.steps;
        let (reward, n, terminated, truncated, invalid) = Episode::tally(&steps);
        Episode {
            header: h,
            summary: Summary {
                reward,
                success: reward == 1.0,
                steps: n,
                terminated,
                truncated,
                invalid_actions: invalid,
                parse_errors: steps.iter().filter(|s| s.parse_error.is_some()).count(),
                final_observation: trail.final_shown,
                final_url: trail.final_url,
                final_screenshot: None,
                reward_detail: trail.detail,
                wall_ms: ms(start),
                error: None,
            },
            steps,
        }
    }
}

/// The steps of one iteration so far (tree path, then rollout) and where it ended.
struct Trail {
    steps: Vec<StepRecord>,
    detail: Option<env::sites::RewardDetail>,
    final_shown: String,
    final_url: String,
}

/// The next action of a rollout and what the policy said when choosing it.
struct RolloutStep {
    action: String,
    thought: Option<String>,
    candidates: Vec<CandidateRecord>,
    policy_ms: f64,
    raw_output: Option<String>,
    parse_error: Option<String>,
}

impl RolloutStep {
    /// The policy's first valid candidate on `obs` (else its first candidate, which the env
    /// will reject as an ordinary invalid step); `None` when it proposed nothing.
    fn pick(p: &Proposal, obs: &Observation, t: Instant) -> Option<RolloutStep> {
        let c = valid_candidates(p, obs, 1)
            .into_iter()
            .next()
            .or_else(|| p.candidates.first().cloned())?;
        let candidates = if p.candidates.len() > 1 || c.logprob.is_some() {
            p.candidates
                .iter()
                .map(|x| CandidateRecord {
                    action: x.action.clone(),
                    logprob: x.logprob,
                    critic_rank: None,
                    q: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(RolloutStep {
            action: c.action,
            thought: c.thought,
            candidates,
            policy_ms: ms(t),
            raw_output: p.raw_output.clone(),
            parse_error: p.parse_error.clone(),
        })
    }
}

/// Runs `cfg.iterations` MCTS iterations on `task` (episode seed `seed`) with `policy` as
/// proposer and rollout policy and `critic` as ranker (and judge with
/// [`ValueMode::Critic`]). The env must be usable for this task (any state); it is reset.
pub async fn search(
    env: &mut dyn Env,
    policy: &dyn Policy,
    critic: &dyn Critic,
    meta: &EpisodeMeta,
    task: TaskRef,
    seed: u64,
    cfg: &MctsConfig,
) -> Result<SearchResult> {
    let start = Instant::now();
    let obs = env.reset(task, seed).await?;
    let goal = env.task_index(task)?;
    let tree = Tree {
        id: episode_id(task, seed),
        task,
        seed,
        instruction: obs.instruction.clone(),
        nodes: vec![Node {
            parent: None,
            action: String::new(),
            candidate: None,
            depth: 0,
            critic_rank: None,
            policy_rank: None,
            q_hat: None,
            visits: 0,
            value_sum: 0.0,
            children: Vec::new(),
            reached: None,
            stepped: None,
        }],
    };
    let mut s = Search {
        env,
        policy,
        critic,
        meta,
        cfg,
        task,
        goal,
        seed,
        tree,
        env_at: Some(0),
        purchases: 0,
        expansions: 0,
        env_steps: 0,
        restores: 0,
    };
    s.reach(0, &obs, None, 0).await?;
    let mut rollouts = Vec::with_capacity(cfg.iterations);
    let mut values = Vec::with_capacity(cfg.iterations);
    for it in 0..cfg.iterations.max(1) {
        let (ep, v) = s.iterate(it).await?;
        rollouts.push(ep);
        values.push(v);
    }
    let leaf_q = |ep: &Episode| {
        ep.header
            .extra
            .leaf
            .map(|l| s.tree.nodes[l].q())
            .unwrap_or(0.0)
    };
    let mut best = 0;
    for i in 1..rollouts.len() {
        let better = values[i] > values[best]
            || (values[i] == values[best] && leaf_q(&rollouts[i]) > leaf_q(&rollouts[best]));
        if better {
            best = i;
        }
    }
    Ok(SearchResult {
        tree: s.tree,
        rollouts,
        best,
        values,
        purchases: s.purchases,
        expansions: s.expansions,
        env_steps: s.env_steps,
        restores: s.restores,
        wall_ms: ms(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(search: bool, clickables: &[&str]) -> Observation {
        Observation {
            text: String::new(),
            text_rich: String::new(),
            html: String::new(),
            url: "http://x/".into(),
            instruction: String::new(),
            has_search_bar: search,
            clickables: clickables.iter().map(|s| s.to_string()).collect(),
            // One button per clickable, each with a target (what the env clicks).
            elements: clickables
                .iter()
                .map(|s| env::observe::Element {
                    id: s.to_string(),
                    role: env::observe::Role::Button,
                    label: s.to_string(),
                    target: Some(format!("/{s}")),
                    selected: false,
                })
                .collect(),
        }
    }

    #[test]
    fn only_valid_distinct_candidates_are_kept() {
        let home = obs(true, &["search"]);
        assert_eq!(
            canonical_valid("search[Red Shoes]", &home).as_deref(),
            Some("search[red shoes]")
        );
        assert_eq!(canonical_valid("search[...]", &home), None);
        assert_eq!(canonical_valid("click[buy now]", &home), None);
        assert_eq!(canonical_valid("nonsense", &home), None);
        // Listed, but the env refuses it (WebShop's search button is not a click target):
        // the env's own rule decides, so search never spends a node on it.
        assert_eq!(canonical_valid("click[search]", &home), None);
        let item = obs(false, &["buy now", "< prev"]);
        assert_eq!(canonical_valid("search[x]", &item), None);
        assert_eq!(
            canonical_valid("click[Buy Now]", &item).as_deref(),
            Some("click[buy now]")
        );
        let p = Proposal {
            candidates: [
                "click[buy now]",
                "click[BUY NOW]",
                "click[nope]",
                "click[< prev]",
            ]
            .iter()
            .map(|a| Candidate::plain(*a))
            .collect(),
            ..Proposal::default()
        };
        let v: Vec<String> = valid_candidates(&p, &item, 5)
            .into_iter()
            .map(|c| c.action)
            .collect();
        assert_eq!(v, vec!["click[buy now]", "click[< prev]"]);
        assert_eq!(valid_candidates(&p, &item, 1).len(), 1);
    }

    #[test]
    fn q_mix_weights_search_value_and_critic() {
        let n = Node {
            parent: None,
            action: String::new(),
            candidate: None,
            depth: 0,
            critic_rank: Some(0),
            policy_rank: Some(0),
            q_hat: Some(1.0),
            visits: 4,
            value_sum: 1.0,
            children: Vec::new(),
            reached: None,
            stepped: None,
        };
        assert_eq!(n.q(), 0.25);
        assert!((n.q_mix(0.5) - 0.625).abs() < 1e-12);
        assert_eq!(n.q_mix(1.0), 0.25);
    }
}
