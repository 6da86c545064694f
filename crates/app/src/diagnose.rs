//! Diagnosis of the Agent Q loop: what a run's episodes fail at ([`failure_modes`]), how
//! good a collection's preference pairs are against the oracle ([`audit_pairs`]: the
//! oracle's action at each pair's node, and the oracle's continuation after each of the two
//! actions within the episode's step limit), and what a trained model did to the log-probs
//! of pairs it did not see ([`score_pairs`]), and how two evaluations of the same tasks
//! differ, task by task ([`compare`]).
//!
//! These read run data and replay pair states on fresh envs; nothing here trains or
//! changes a run. `docs/diagnosis.md` holds the figures they gave.

use std::collections::BTreeMap;
use std::path::Path;

use agentq_agent::pairs::PreferencePair;
use agentq_agent::policy::{Context, Oracle, Policy, Turn};
use agentq_env::{Env, GoalKnowledge, Observation, PageKind};
use agentq_lm::LanguageModel;
use agentq_trajectory::stats::{self, PairedDiff};
use agentq_trajectory::Episode;
use serde::Serialize;

use crate::envs::EnvFactory;
use crate::error::{Context as _, Error, Result};

/// Buttons of the store's pages (lower-cased labels); any other click on an item page
/// selects an option.
const BUTTONS: [&str; 8] = [
    "buy now",
    "< prev",
    "next >",
    "back to search",
    "description",
    "features",
    "reviews",
    "attributes",
];

/// What the episodes of a run ended in, and how they moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailureModes {
    /// Episodes.
    pub episodes: usize,
    /// Reward 1.
    pub success: usize,
    /// Bought the target product, but with a wrong option or over the price bound.
    pub target_not_exact: usize,
    /// Bought another product.
    pub other_product: usize,
    /// Never bought (the step limit, or an error).
    pub no_purchase: usize,
    /// Of those: clicked `next >` at least twice.
    pub no_purchase_paging: usize,
    /// Of those: searched at least three times.
    pub no_purchase_searching: usize,
    /// Episodes in which the target was a link on a results page the agent saw.
    pub target_seen: usize,
    /// Of those: episodes that opened the target's page.
    pub target_opened: usize,
    /// Goals that ask for options.
    pub goals_with_options: usize,
    /// Of those: episodes that selected at least one option.
    pub selected_options: usize,
    /// Of those: episodes that selected every option the goal asks for.
    pub selected_goal_options: usize,
    /// Episodes with a model output that did not parse.
    pub parse_error_episodes: usize,
    /// Mean searches per episode.
    pub mean_searches: f64,
    /// Mean `next >` clicks per episode.
    pub mean_next_clicks: f64,
    /// Mean product pages opened per episode.
    pub mean_items_opened: f64,
    /// Mean steps per episode.
    pub mean_steps: f64,
}

/// Two evaluations of the same tasks compared task by task (`b` against `a`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Tasks both runs hold (the first episode of each task counts).
    pub tasks: usize,
    /// Tasks of `a` missing from `b`, and of `b` missing from `a`.
    pub only_in: (usize, usize),
    /// Success rate of each run on the shared tasks (%), and its Wilson 95 % interval.
    pub success: [(f64, stats::Interval); 2],
    /// Tasks won by both, by `a` alone, by `b` alone.
    pub won: (usize, usize, usize),
    /// Success difference `b − a` in points, with a paired-bootstrap 95 % interval.
    pub success_diff: PairedDiff,
    /// Score difference `b − a` (points of 100), likewise.
    pub score_diff: PairedDiff,
}

/// Compares run `b` with run `a` on the tasks both hold.
pub fn compare(a: &[Episode], b: &[Episode]) -> Comparison {
    let (sa, sb) = stats::matched(a, b, stats::success_points);
    let (ra, rb) = stats::matched(a, b, stats::score_points);
    let tasks = sa.len();
    let count = |eps: &[Episode]| {
        eps.iter()
            .map(|e| e.header.task.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let wins = |v: &[f64]| v.iter().filter(|&&x| x > 0.0).count();
    let rate = |v: &[f64]| {
        let w = wins(v);
        (
            if tasks == 0 {
                0.0
            } else {
                100.0 * w as f64 / tasks as f64
            },
            stats::wilson(w, tasks),
        )
    };
    let both = sa
        .iter()
        .zip(&sb)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0)
        .count();
    Comparison {
        tasks,
        only_in: (count(a) - tasks, count(b) - tasks),
        success: [rate(&sa), rate(&sb)],
        won: (both, wins(&sa) - both, wins(&sb) - both),
        success_diff: stats::paired_bootstrap(&sa, &sb),
        score_diff: stats::paired_bootstrap(&ra, &rb),
    }
}

fn click_label(action: &str) -> Option<String> {
    action
        .strip_prefix("click[")
        .and_then(|a| a.strip_suffix(']'))
        .map(|a| a.trim().to_lowercase())
}

/// Classifies the episodes of a run (`knows` gives each goal's target and options).
pub fn failure_modes(episodes: &[Episode], knows: &dyn GoalKnowledge) -> Result<FailureModes> {
    let mut f = FailureModes {
        episodes: episodes.len(),
        ..FailureModes::default()
    };
    let (mut searches, mut nexts, mut items, mut steps) = (0usize, 0usize, 0usize, 0usize);
    for e in episodes {
        let hint = knows.hint(e.header.goal).ok_or_else(|| {
            Error::Msg(format!(
                "episode {}: unknown goal {}",
                e.header.id, e.header.goal
            ))
        })?;
        let target = hint.target.to_lowercase();
        let options: Vec<String> = hint.options.iter().map(|o| o.to_lowercase()).collect();
        let mut ep_searches = 0;
        let mut ep_next = 0;
        let mut seen = false;
        let mut opened = false;
        let mut picked: Vec<String> = Vec::new();
        let mut bought_target = None;
        let target_link = format!("click[{target}]");
        for s in &e.steps {
            if s.available_actions
                .iter()
                .any(|a| a.to_lowercase() == target_link)
            {
                seen = true;
            }
            if s.action.starts_with("search[") {
                ep_searches += 1;
            }
            let Some(label) = click_label(&s.action) else {
                continue;
            };
            let on_item = s.url.contains("/item_page/");
            if label == "next >" {
                ep_next += 1;
            } else if label == target {
                opened = true;
                items += 1;
            } else if label == "buy now" {
                if s.terminated {
                    bought_target = Some(s.url.to_lowercase().contains(&format!("/{target}/")));
                }
            } else if on_item && !BUTTONS.contains(&label.as_str()) {
                picked.push(label);
            } else if !on_item && !BUTTONS.contains(&label.as_str()) {
                items += 1;
            }
        }
        searches += ep_searches;
        nexts += ep_next;
        steps += e.summary.steps;
        f.target_seen += usize::from(seen);
        f.target_opened += usize::from(seen && opened);
        f.parse_error_episodes += usize::from(e.summary.parse_errors > 0);
        if !options.is_empty() {
            f.goals_with_options += 1;
            f.selected_options += usize::from(!picked.is_empty());
            f.selected_goal_options +=
                usize::from(options.iter().all(|o| picked.iter().any(|p| p == o)));
        }
        if e.summary.success {
            f.success += 1;
        } else {
            match bought_target {
                Some(true) => f.target_not_exact += 1,
                Some(false) => f.other_product += 1,
                None => {
                    f.no_purchase += 1;
                    f.no_purchase_paging += usize::from(ep_next >= 2);
                    f.no_purchase_searching += usize::from(ep_searches >= 3);
                }
            }
        }
    }
    let n = episodes.len().max(1) as f64;
    f.mean_searches = searches as f64 / n;
    f.mean_next_clicks = nexts as f64 / n;
    f.mean_items_opened = items as f64 / n;
    f.mean_steps = steps as f64 / n;
    Ok(f)
}

/// What the oracle got after one action: its reward and the steps it took (the action
/// included) within the episode's step limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Continuation {
    /// Final reward.
    pub reward: f64,
    /// Steps from the node (the action included).
    pub steps: usize,
}

impl Continuation {
    /// Which is better: higher reward, then fewer steps.
    fn cmp(&self, o: &Continuation) -> std::cmp::Ordering {
        self.reward
            .total_cmp(&o.reward)
            .then(o.steps.cmp(&self.steps))
    }
}

/// One pair, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairVerdict {
    /// Task.
    pub task: String,
    /// Node in the tree.
    pub node: usize,
    /// Depth of the node.
    pub depth: usize,
    /// The node's page (`home`, `results`, `item`, …).
    pub page: String,
    /// Chosen action.
    pub chosen: String,
    /// Rejected action.
    pub rejected: String,
    /// The oracle's action at the node.
    pub oracle: String,
    /// The two children had the same search value Q̃: the critic's ranks alone decided.
    pub value_tied: bool,
    /// The oracle's continuation after `chosen`.
    pub after_chosen: Continuation,
    /// The oracle's continuation after `rejected`.
    pub after_rejected: Continuation,
}

/// Counts of one group of pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PairGroup {
    /// Pairs.
    pub pairs: usize,
    /// Pairs where exactly one of the two actions is the oracle's.
    pub oracle_decidable: usize,
    /// Of those: the chosen one is the oracle's.
    pub oracle_chosen: usize,
    /// The oracle does better after `chosen` (reward, then steps).
    pub continuation_better: usize,
    /// The oracle does better after `rejected`.
    pub continuation_worse: usize,
    /// The same.
    pub continuation_tied: usize,
}

impl PairGroup {
    fn add(&mut self, v: &PairVerdict) {
        self.pairs += 1;
        let (c, r) = (v.chosen == v.oracle, v.rejected == v.oracle);
        if c != r {
            self.oracle_decidable += 1;
            self.oracle_chosen += usize::from(c);
        }
        match v.after_chosen.cmp(&v.after_rejected) {
            std::cmp::Ordering::Greater => self.continuation_better += 1,
            std::cmp::Ordering::Less => self.continuation_worse += 1,
            std::cmp::Ordering::Equal => self.continuation_tied += 1,
        }
    }
}

/// The audit of a pairs file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PairAudit {
    /// Step-level pairs audited.
    pub step_pairs: usize,
    /// Trajectory-level pairs (not audited).
    pub trajectory_pairs: usize,
    /// Trees the pairs come from.
    pub trees: usize,
    /// Pairs by the node's page.
    pub by_page: BTreeMap<String, usize>,
    /// Pairs by the node's depth.
    pub by_depth: BTreeMap<usize, usize>,
    /// Pairs whose two children were each visited once (a single rollout per value).
    pub single_visits: usize,
    /// Every audited pair.
    pub all: PairGroup,
    /// Pairs whose children's search values differ (the environment decided).
    pub value_decided: PairGroup,
    /// Pairs whose children's search values tie (the critic decided).
    pub critic_decided: PairGroup,
    /// Per pair.
    pub verdicts: Vec<PairVerdict>,
}

fn page_name(p: PageKind) -> String {
    format!("{p:?}").to_lowercase()
}

fn context<'a>(
    env: &dyn Env,
    task: agentq_core::task::TaskRef,
    goal: usize,
    seed: u64,
    (instruction, history, obs, available): (&'a str, &'a [Turn], &'a Observation, &'a [String]),
    mode: agentq_env::ObsMode,
) -> Context<'a> {
    Context {
        task,
        goal,
        seed,
        instruction,
        history,
        observation: obs,
        page: env.page_kind(obs),
        mode,
        available,
        k: 1,
    }
}

/// Runs the oracle from the env's current state (`obs`, after `history`) to the end.
async fn oracle_finish(
    env: &mut dyn Env,
    oracle: &Oracle,
    (task, goal, seed): (agentq_core::task::TaskRef, usize, u64),
    mode: agentq_env::ObsMode,
    mut history: Vec<Turn>,
    mut obs: Observation,
) -> Result<(usize, f64)> {
    let instruction = obs.instruction.clone();
    let mut steps = 0;
    // The env's step limit ends every episode; the bound only guards a broken env.
    for _ in 0..200 {
        let available = env.available_actions();
        let action = {
            let ctx = context(
                env,
                task,
                goal,
                seed,
                (&instruction, &history, &obs, &available),
                mode,
            );
            oracle.propose(&ctx).await?.candidates[0].action.clone()
        };
        let s = env.step(&action).await?;
        steps += 1;
        history.push(Turn {
            observation: obs.render(mode).to_string(),
            action,
            error: s.info.error.clone(),
        });
        obs = s.observation;
        if s.terminated || s.truncated {
            return Ok((steps, s.reward));
        }
    }
    Err(Error::Msg(format!(
        "{task}: the oracle did not finish in 200 steps"
    )))
}

/// Audits step-level pairs: replays each pair's node on a fresh env from `factory`, asks the
/// oracle what it would do there, and lets the oracle finish after each of the two actions.
pub fn audit_pairs(
    pairs: &[PreferencePair],
    factory: &EnvFactory,
    progress: &dyn crate::Progress,
) -> Result<PairAudit> {
    progress.start(crate::Stage::Pairs, pairs.len() as u64);
    let rt = crate::envs::runtime()?;
    let oracle = Oracle::new(factory.knowledge());
    let mode = factory.config.mode;
    let mut env = factory.make(None)?;
    let mut audit = PairAudit::default();
    let mut trees = std::collections::BTreeSet::new();
    rt.block_on(async {
        for p in pairs {
            progress.advance();
            if p.kind != "step" {
                audit.trajectory_pairs += 1;
                continue;
            }
            trees.insert(p.tree.clone());
            let task: agentq_core::task::TaskRef = p
                .task
                .parse()
                .with_context(|| format!("pair of tree {}: task {:?}", p.tree, p.task))?;
            let goal = env.task_index(task)?;
            let mut obs = env.reset(task, p.seed).await?;
            let mut history = Vec::new();
            for a in &p.history {
                let s = env.step(a).await?;
                history.push(Turn {
                    observation: obs.render(mode).to_string(),
                    action: a.clone(),
                    error: s.info.error.clone(),
                });
                obs = s.observation;
            }
            let page = env.page_kind(&obs);
            let available = env.available_actions();
            let instruction = obs.instruction.clone();
            let oracle_action = {
                let ctx = context(
                    &*env,
                    task,
                    goal,
                    p.seed,
                    (&instruction, &history, &obs, &available),
                    mode,
                );
                oracle.propose(&ctx).await?.candidates[0].action.clone()
            };
            let snap = env.snapshot()?;
            let mut after = Vec::new();
            for a in [&p.chosen_action, &p.rejected_action] {
                env.restore(&snap).await?;
                let s = env.step(a).await?;
                let mut h = history.clone();
                h.push(Turn {
                    observation: obs.render(mode).to_string(),
                    action: a.clone(),
                    error: s.info.error.clone(),
                });
                let (reward, steps) = if s.terminated || s.truncated {
                    (s.reward, 1)
                } else {
                    let (n, reward) = oracle_finish(
                        &mut *env,
                        &oracle,
                        (task, goal, p.seed),
                        mode,
                        h,
                        s.observation,
                    )
                    .await?;
                    (reward, 1 + n)
                };
                after.push(Continuation { reward, steps });
            }
            let v = PairVerdict {
                task: p.task.clone(),
                node: p.node,
                depth: p.depth,
                page: page_name(page),
                chosen: p.chosen_action.to_lowercase(),
                rejected: p.rejected_action.to_lowercase(),
                oracle: oracle_action.to_lowercase(),
                value_tied: (p.mcts_q_chosen - p.mcts_q_rejected).abs() < 1e-12,
                after_chosen: after[0],
                after_rejected: after[1],
            };
            audit.step_pairs += 1;
            *audit.by_page.entry(v.page.clone()).or_default() += 1;
            *audit.by_depth.entry(v.depth).or_default() += 1;
            audit.single_visits += usize::from(p.visits_chosen == 1 && p.visits_rejected == 1);
            audit.all.add(&v);
            if v.value_tied {
                audit.critic_decided.add(&v);
            } else {
                audit.value_decided.add(&v);
            }
            audit.verdicts.push(v);
        }
        Ok::<_, Error>(())
    })?;
    progress.finish();
    audit.trees = trees.len();
    Ok(audit)
}

/// Log-probs of pairs under two models.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PairScores {
    /// Pairs scored.
    pub pairs: usize,
    /// Mean summed log-prob of `chosen` before.
    pub chosen_before: f64,
    /// … and after.
    pub chosen_after: f64,
    /// Mean summed log-prob of `rejected` before.
    pub rejected_before: f64,
    /// … and after.
    pub rejected_after: f64,
    /// Share of pairs whose margin `(after − before)_chosen − (after − before)_rejected` is
    /// positive (DPO's "reward accuracy" on these pairs).
    pub margin_accuracy: f64,
    /// Share of pairs the model before ranks `chosen` first (mean log-prob per token, as the
    /// act policy ranks clicks).
    pub prefers_chosen_before: f64,
    /// … and after.
    pub prefers_chosen_after: f64,
    /// Mean |before − the pair's recorded reference log-prob| where one is recorded (how far
    /// the "before" model is from the data-generating one).
    pub ref_gap: Option<f64>,
}

/// Scores every pair's `chosen` and `rejected` after its prompt with `before` and `after`.
pub fn score_pairs(
    pairs: &[PreferencePair],
    before: &dyn LanguageModel,
    after: &dyn LanguageModel,
    progress: &dyn crate::Progress,
) -> Result<PairScores> {
    let rt = crate::envs::runtime()?;
    progress.start(crate::Stage::Pairs, pairs.len() as u64);
    let mut s = PairScores::default();
    let (mut margin, mut pb, mut pa) = (0usize, 0usize, 0usize);
    let (mut gap, mut gaps) = (0.0, 0usize);
    rt.block_on(async {
        for p in pairs {
            let conts = [p.chosen.clone(), p.rejected.clone()];
            let b = before.score(&p.prompt, &conts).await?;
            let a = after.score(&p.prompt, &conts).await?;
            let mean = |x: &agentq_lm::Scored| x.logprob as f64 / x.n_tokens.max(1) as f64;
            let (bc, br, ac, ar) = (
                b[0].logprob as f64,
                b[1].logprob as f64,
                a[0].logprob as f64,
                a[1].logprob as f64,
            );
            s.chosen_before += bc;
            s.rejected_before += br;
            s.chosen_after += ac;
            s.rejected_after += ar;
            margin += usize::from((ac - bc) - (ar - br) > 0.0);
            pb += usize::from(mean(&b[0]) > mean(&b[1]));
            pa += usize::from(mean(&a[0]) > mean(&a[1]));
            if let (Some(rc), Some(rr)) = (p.ref_chosen_logps, p.ref_rejected_logps) {
                gap += (bc - rc).abs() + (br - rr).abs();
                gaps += 2;
            }
            s.pairs += 1;
            progress.advance();
        }
        Ok::<_, Error>(())
    })?;
    progress.finish();
    let n = s.pairs.max(1) as f64;
    s.chosen_before /= n;
    s.chosen_after /= n;
    s.rejected_before /= n;
    s.rejected_after /= n;
    s.margin_accuracy = margin as f64 / n;
    s.prefers_chosen_before = pb as f64 / n;
    s.prefers_chosen_after = pa as f64 / n;
    s.ref_gap = (gaps > 0).then(|| gap / gaps as f64);
    Ok(s)
}

/// Reads a `pairs.jsonl` (agentq's form), naming the line of a bad record.
pub fn read_pairs(path: &Path) -> Result<Vec<PreferencePair>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not an agentq pair", path.display(), i + 1))
        })
        .collect()
}
