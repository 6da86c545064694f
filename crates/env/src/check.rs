//! The env conformance suite (Gymnasium's env checker, for agentq): the same checks run on
//! every driver — determinism for a seed, truncation, lock after done, invalid-action
//! handling, snapshot/restore round-trip — plus transcripts for driver-parity tests.

use super::{Env, Step, TaskRef};
use agentq_webshop::Catalog;

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

/// A purchase that earns reward 1.0 for `goal` when the target is on the first results page
/// of a search for its title: search, click the ASIN, click each goal option, buy.
pub fn perfect_actions(catalog: &Catalog, goal: usize) -> Option<Vec<String>> {
    let g = catalog.goal(goal)?;
    let p = catalog.product(&g.asin)?;
    let mut v = vec![
        format!("search[{}]", p.title.to_lowercase()),
        format!("click[{}]", p.asin.to_lowercase()),
    ];
    for o in g.goal_options.values() {
        v.push(format!("click[{o}]"));
    }
    v.push("click[buy now]".into());
    Some(v)
}

/// A wrong-option purchase for `goal`: like [`perfect_actions`] but choosing, for the first
/// option group the goal asks for, another value of that group.
pub fn wrong_option_actions(catalog: &Catalog, goal: usize) -> Option<Vec<String>> {
    let g = catalog.goal(goal)?;
    let p = catalog.product(&g.asin)?;
    let wanted = g.goal_options.values();
    let first = wanted.first()?;
    let group = p
        .options
        .iter()
        .find(|grp| grp.values.iter().any(|v| v == first))?;
    let other = group
        .values
        .iter()
        .find(|v| !wanted.contains(&v.as_str()))?;
    Some(vec![
        format!("search[{}]", p.title.to_lowercase()),
        format!("click[{}]", p.asin.to_lowercase()),
        format!("click[{other}]"),
        "click[buy now]".into(),
    ])
}

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

/// Runs every conformance check on envs from `make` (each call a fresh env whose step limit
/// is `max_steps`, at least 8). Returns the first failure.
pub async fn check_env<E, F>(catalog: &Catalog, max_steps: usize, make: F) -> Result<(), String>
where
    E: Env,
    F: Fn() -> E,
{
    // Pick a test goal with options whose target is found by its title.
    let (goal, perfect) = (0..catalog.goals().len().min(50))
        .filter(|&g| !catalog.goals()[g].goal_options.is_empty())
        .find_map(|g| Some((g, perfect_actions(catalog, g)?)))
        .ok_or("no goal with options in the first 50")?;
    let task = TaskRef {
        split: None,
        index: goal,
    };

    // Step before reset is an infrastructure error.
    ensure(
        make().step("click[buy now]").await.is_err(),
        "step before reset must be Err",
    )?;

    // Determinism and the perfect purchase.
    let a = transcript(&mut make(), task, 7, &perfect).await?;
    let b = transcript(&mut make(), task, 7, &perfect).await?;
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
    transcript(&mut env, task, 7, &perfect).await?;
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
    for bad in [
        "click[nonexistent]",
        "search[]",
        "search[   ]",
        "dance",
        "click[search]",
        "search[foo [bar]]",
    ] {
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
            .step("click[nonexistent]")
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
