//! The env conformance suite (Gymnasium's env checker, for agentq): the same checks run on
//! every driver of any site — determinism for a seed, a solving script, truncation, lock
//! after done, invalid-action handling, snapshot/restore round-trip — plus transcripts for
//! driver-parity tests. What is site-specific (a task, its solving script, actions that are
//! invalid on its first page) comes in a [`Plan`] from the site's adapter.

use super::{Env, Step, TaskRef};

/// What the checks need to know of a site.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// A task to run.
    pub task: TaskRef,
    /// Actions that solve it (final reward 1.0, terminating); at least three, the state
    /// after the second is snapshotted and the rest replayed from the restore.
    pub solve: Vec<String>,
    /// Actions invalid on the task's first page (each a no-op with an error).
    pub invalid: Vec<String>,
}

/// One recorded step: action, observation text, clickables, reward, flags, error.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Line {
    /// The action string.
    pub action: String,
    /// Observation `text` after it.
    pub text: String,
    /// Clickables after it.
    pub clickables: Vec<String>,
    /// Reward.
    pub reward: f64,
    /// Terminated flag.
    pub terminated: bool,
    /// Truncated flag.
    pub truncated: bool,
    /// `info.error`.
    pub error: Option<String>,
}

fn line(action: &str, s: &Step) -> Line {
    Line {
        action: action.to_string(),
        text: s.observation.text.clone(),
        clickables: s.observation.clickables.clone(),
        reward: s.reward,
        terminated: s.terminated,
        truncated: s.truncated,
        error: s.info.error.clone(),
    }
}

/// Runs `actions` after `reset(task, seed)` and records every step (the reset observation is
/// the first line, with an empty action).
pub async fn transcript<E: Env>(
    env: &mut E,
    task: TaskRef,
    seed: u64,
    actions: &[String],
) -> Result<Vec<Line>, String> {
    let obs = env.reset(task, seed).await.map_err(|e| e.to_string())?;
    let mut out = vec![Line {
        action: String::new(),
        text: obs.text,
        clickables: obs.clickables,
        reward: 0.0,
        terminated: false,
        truncated: false,
        error: None,
    }];
    for a in actions {
        let s = env.step(a).await.map_err(|e| e.to_string())?;
        out.push(line(a, &s));
    }
    Ok(out)
}

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

/// Runs every conformance check of `plan` on envs from `make` (each call a fresh env whose
/// step limit is `max_steps`, at least 8). Returns the first failure.
pub async fn check_env<E, F>(plan: &Plan, max_steps: usize, make: F) -> Result<(), String>
where
    E: Env,
    F: Fn() -> E,
{
    let (task, perfect) = (plan.task, &plan.solve);
    if perfect.len() < 3 {
        return Err("the plan's solving script needs at least three actions".into());
    }
    if plan.invalid.is_empty() {
        return Err("the plan names no invalid action".into());
    }

    // Step before reset is an infrastructure error.
    ensure(
        make().step("click[buy now]").await.is_err(),
        "step before reset must be Err",
    )?;

    // Determinism and the perfect purchase.
    let a = transcript(&mut make(), task, 7, perfect).await?;
    let b = transcript(&mut make(), task, 7, perfect).await?;
    ensure(
        a == b,
        "same task, seed and actions gave different transcripts",
    )?;
    let last = a.last().expect("transcript has the reset line");
    if last.reward != 1.0 {
        return Err(format!("perfect purchase scored {} ({:?})", last.reward, a));
    }
    ensure(last.terminated, "purchase must terminate the episode")?;

    // Lock after done.
    let mut env = make();
    transcript(&mut env, task, 7, perfect).await?;
    let s = env
        .step("search[anything]")
        .await
        .map_err(|e| e.to_string())?;
    ensure(
        s.info.locked && s.reward == 0.0 && s.terminated && s.observation.text == last.text,
        "a step after the purchase must be a locked no-op",
    )?;

    // Invalid actions: no-op, reward 0, error message, page unchanged.
    let mut env = make();
    let start = env.reset(task, 7).await.map_err(|e| e.to_string())?;
    for bad in &plan.invalid {
        let s = env.step(bad).await.map_err(|e| e.to_string())?;
        ensure(
            s.info.error.is_some() && s.reward == 0.0 && s.observation.text == start.text,
            format!("{bad:?} must be a no-op with an error"),
        )?;
    }

    // Truncation at the step limit, then locked.
    let mut env = make();
    env.reset(task, 7).await.map_err(|e| e.to_string())?;
    for i in 1..=max_steps {
        let s = env
            .step(&plan.invalid[0])
            .await
            .map_err(|e| e.to_string())?;
        ensure(
            s.truncated == (i == max_steps) && !s.terminated,
            format!("step {i}: truncated must be set exactly at the limit {max_steps}"),
        )?;
    }
    let s = env.step(&perfect[0]).await.map_err(|e| e.to_string())?;
    ensure(
        s.info.locked && s.truncated,
        "a step after truncation must be locked",
    )?;

    // Snapshot/restore round-trip, including a second purchase from a restored branch.
    let mut env = make();
    env.reset(task, 7).await.map_err(|e| e.to_string())?;
    let mut at_item = None;
    for (i, a) in perfect.iter().enumerate() {
        let s = env.step(a).await.map_err(|e| e.to_string())?;
        if i == 1 {
            at_item = Some((env.snapshot().map_err(|e| e.to_string())?, s.observation));
        }
    }
    let (snap, obs) = at_item.ok_or("perfect script is too short")?;
    let restored = env.restore(&snap).await.map_err(|e| e.to_string())?;
    ensure(
        restored.text == obs.text,
        "restore must give back the snapshot's page",
    )?;
    ensure(
        restored.clickables == obs.clickables,
        "restore must give back the snapshot's clickables",
    )?;
    let mut reward = 0.0;
    for a in &perfect[2..] {
        reward = env.step(a).await.map_err(|e| e.to_string())?.reward;
    }
    ensure(
        reward == 1.0,
        format!("purchase after restore scored {reward}"),
    )?;
    Ok(())
}
