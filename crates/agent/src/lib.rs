//! agentq-agent: the policies that propose actions ([`policy`]), running a policy on an
//! environment into a recorded episode, and replaying a recorded episode to check that it
//! still reproduces.
//!
//! Invariant: `agent` sees only the [`Env`] and [`Policy`] traits; it returns
//! [`trajectory::Episode`] values and leaves storing them to a recorder.
//!
//! Tree search lives in [`mcts`] (with the [`critic`] interface) and preference pairs in
//! [`pairs`].

pub mod critic;
pub mod demos;
pub mod mcts;
pub mod pairs;
pub mod policy;

use std::time::Instant;

use crate::policy::{Context, Policy, Turn};
use agentq_env::{self as env, Env, ObsMode, Observation, TaskRef};
use agentq_trajectory::{
    self as trajectory, CandidateRecord, Episode, Header, StepRecord, Summary, Timings,
};

/// Errors of running an episode.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment failed (infrastructure, not an invalid action).
    #[error("env: {0}")]
    Env(#[from] env::Error),
    /// The policy failed.
    #[error("policy: {0}")]
    Policy(#[from] policy::Error),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an episode's header records besides the task (filled by the caller).
#[derive(Debug, Clone)]
pub struct EpisodeMeta {
    /// Env spec id.
    pub env: String,
    /// Catalog hash.
    pub data_hash: String,
    /// Driver name.
    pub driver: String,
    /// Observation mode shown to the policy.
    pub obs_mode: ObsMode,
    /// Step limit of the env.
    pub max_steps: usize,
    /// Candidates asked of the policy per step.
    pub k: usize,
}

/// The header of an episode on `task` with `seed`.
pub fn header(
    meta: &EpisodeMeta,
    policy: &str,
    (task, goal): (TaskRef, usize),
    seed: u64,
    instruction: &str,
) -> Header {
    Header {
        schema: trajectory::SCHEMA_VERSION,
        agentq_version: env!("CARGO_PKG_VERSION").into(),
        id: episode_id(task, seed),
        env: meta.env.clone(),
        data_hash: meta.data_hash.clone(),
        task: task.to_string(),
        goal,
        seed,
        driver: meta.driver.clone(),
        obs_mode: meta.obs_mode,
        max_steps: meta.max_steps,
        policy: policy.into(),
        instruction: instruction.into(),
        tree: None,
        extra: Default::default(),
    }
}

/// The id of the episode on `task` with `seed` within a run.
pub fn episode_id(task: TaskRef, seed: u64) -> String {
    format!("{task}/s{seed}")
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs `policy` greedily (its first candidate each step) on `task` until the episode
/// terminates or is truncated. Invalid actions are recorded like any step.
pub async fn run_episode(
    env: &mut dyn Env,
    policy: &dyn Policy,
    meta: &EpisodeMeta,
    task: TaskRef,
    seed: u64,
) -> Result<Episode> {
    let start = Instant::now();
    let mut obs: Observation = env.reset(task, seed).await?;
    let mut shot = env.last_screenshot();
    let instruction = obs.instruction.clone();
    let goal = env.task_index(task)?;
    let header = header(meta, &policy.describe(), (task, goal), seed, &instruction);
    let mut history: Vec<Turn> = Vec::new();
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut detail = None;
    loop {
        let available = env.available_actions();
        let t0 = Instant::now();
        let proposal = {
            let ctx = Context {
                task,
                goal,
                seed,
                instruction: &instruction,
                history: &history,
                observation: &obs,
                page: env.page_kind(&obs),
                mode: meta.obs_mode,
                available: &available,
                k: meta.k,
            };
            policy.propose(&ctx).await?
        };
        let policy_ms = ms(t0);
        let Some(first) = proposal.candidates.first() else {
            return Err(policy::Error::NoAction("empty proposal".into()).into());
        };
        let action = first.action.clone();
        let t1 = Instant::now();
        let step = env.step(&action).await?;
        let env_ms = ms(t1);
        let shown = obs.render(meta.obs_mode).to_string();
        let candidates = if proposal.candidates.len() > 1 || first.logprob.is_some() {
            proposal
                .candidates
                .iter()
                .map(|c| CandidateRecord {
                    action: c.action.clone(),
                    logprob: c.logprob,
                    critic_rank: None,
                    q: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        if step.info.reward_detail.is_some() {
            detail = step.info.reward_detail.clone();
        }
        steps.push(StepRecord {
            index: steps.len(),
            observation: shown.clone(),
            url: obs.url.clone(),
            available_actions: available,
            action: action.clone(),
            thought: first.thought.clone(),
            raw_output: proposal.raw_output.clone(),
            parse_error: proposal.parse_error.clone(),
            candidates,
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
            info: step.info.clone(),
            timings: Timings { policy_ms, env_ms },
            screenshot: shot.take(),
        });
        history.push(Turn {
            observation: shown,
            action,
            error: step.info.error.clone(),
        });
        obs = step.observation;
        shot = env.last_screenshot();
        if step.terminated || step.truncated {
            break;
        }
    }
    let (reward, n, terminated, truncated, invalid) = Episode::tally(&steps);
    Ok(Episode {
        header,
        summary: Summary {
            reward,
            success: reward == 1.0,
            steps: n,
            terminated,
            truncated,
            invalid_actions: invalid,
            parse_errors: steps.iter().filter(|s| s.parse_error.is_some()).count(),
            final_observation: obs.render(meta.obs_mode).to_string(),
            final_url: obs.url.clone(),
            final_screenshot: shot,
            reward_detail: detail,
            wall_ms: ms(start),
            error: None,
        },
        steps,
    })
}

/// Where a replay first differed from the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Step index (`steps.len()` means the final observation or reward).
    pub step: usize,
    /// What differed: `observation`, `url`, `available_actions`, `reward`, `terminated`,
    /// `truncated`, `error`, `final reward`.
    pub field: String,
    /// Recorded value.
    pub expected: String,
    /// Value on replay.
    pub got: String,
}

impl Divergence {
    /// A short diff: the two values around their first differing character.
    pub fn diff(&self) -> String {
        short_diff(&self.expected, &self.got)
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {}: {} differs\n{}",
            self.step,
            self.field,
            self.diff()
        )
    }
}

/// The two strings around their first difference (±40 characters), one per line.
pub fn short_diff(expected: &str, got: &str) -> String {
    let e: Vec<char> = expected.chars().collect();
    let g: Vec<char> = got.chars().collect();
    let at = e.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let lo = at.saturating_sub(40);
    let window = |v: &[char]| -> String {
        let hi = (at + 40).min(v.len());
        let mut s: String = v[lo.min(v.len())..hi].iter().collect();
        if lo > 0 {
            s.insert(0, '…');
        }
        if hi < v.len() {
            s.push('…');
        }
        s
    };
    format!(
        "  at character {at}\n  expected: {:?}\n  got:      {:?}",
        window(&e),
        window(&g)
    )
}

fn check(step: usize, field: &str, expected: String, got: String) -> Option<Divergence> {
    (expected != got).then(|| Divergence {
        step,
        field: field.into(),
        expected,
        got,
    })
}

/// Re-executes the recorded actions on `env` (fresh episode, same task and seed) and returns
/// the first divergence, if any. The env must use the header's observation mode and step
/// limit.
pub async fn replay(env: &mut dyn Env, ep: &Episode) -> Result<Option<Divergence>> {
    let task: TaskRef = ep
        .header
        .task
        .parse()
        .map_err(|e| policy::Error::UnknownTask(env::Error::from(e).to_string()))?;
    let mode = ep.header.obs_mode;
    let mut obs = env.reset(task, ep.header.seed).await?;
    let mut total = 0.0;
    for (i, s) in ep.steps.iter().enumerate() {
        if let Some(d) = check(
            i,
            "observation",
            s.observation.clone(),
            obs.render(mode).into(),
        )
        .or_else(|| check(i, "url", s.url.clone(), obs.url.clone()))
        .or_else(|| {
            check(
                i,
                "available_actions",
                s.available_actions.join("\n"),
                env.available_actions().join("\n"),
            )
        }) {
            return Ok(Some(d));
        }
        let got = env.step(&s.action).await?;
        total += got.reward;
        if let Some(d) = check(i, "reward", s.reward.to_string(), got.reward.to_string())
            .or_else(|| {
                check(
                    i,
                    "terminated",
                    s.terminated.to_string(),
                    got.terminated.to_string(),
                )
            })
            .or_else(|| {
                check(
                    i,
                    "truncated",
                    s.truncated.to_string(),
                    got.truncated.to_string(),
                )
            })
            .or_else(|| {
                check(
                    i,
                    "error",
                    format!("{:?}", s.info.error),
                    format!("{:?}", got.info.error),
                )
            })
        {
            return Ok(Some(d));
        }
        obs = got.observation;
    }
    let n = ep.steps.len();
    Ok(check(
        n,
        "final observation",
        ep.summary.final_observation.clone(),
        obs.render(mode).into(),
    )
    .or_else(|| {
        check(
            n,
            "final url",
            ep.summary.final_url.clone(),
            obs.url.clone(),
        )
    })
    .or_else(|| {
        check(
            n,
            "final reward",
            ep.summary.reward.to_string(),
            total.to_string(),
        )
    }))
}
