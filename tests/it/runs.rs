//! Run directories end to end: `agentq eval` with each non-LLM agent, `agentq replay`
//! (identical and tampered), resume after a crash-cut append, reports, and the stored
//! example runs under `tests/data/runs/` replayed as regression tests.

use std::path::Path;

use agentq::trajectory::{self, EPISODES_FILE};

use crate::util::{agentq, ok_stdout, root};

fn eval(dir: &Path, out: &Path, agent: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        "--agent",
        agent,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    agentq(dir, &args)
}

fn summary(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok_stdout(out)).expect("eval --json prints a summary")
}

#[test]
fn eval_each_agent_then_replay_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    for agent in ["rule", "oracle", "random"] {
        let out = tmp.path().join(agent);
        let s = summary(&eval(
            &root(),
            &out,
            agent,
            &["--tasks", "0..6", "--parallel", "3"],
        ));
        assert_eq!(s["episodes"], 6, "{agent}: {s}");
        if agent == "oracle" {
            assert_eq!(
                s["success_rate"], 100.0,
                "oracle must solve every task: {s}"
            );
        }
        let (eps, damage) = trajectory::read_episodes(&out.join(EPISODES_FILE)).unwrap();
        assert!(damage.is_clean());
        assert_eq!(eps.len(), 6);
        for e in &eps {
            assert_eq!(e.header.env, "webshop-v0");
            assert!(!e.header.data_hash.is_empty());
            assert_eq!(e.steps.len(), e.summary.steps);
            assert!(
                e.summary.terminated || e.summary.truncated,
                "{}",
                e.header.id
            );
        }
        assert!(out.join("summary.json").exists());
        assert!(out.join("run.json").exists());
        let r = agentq(&root(), &["replay", out.to_str().unwrap()]);
        ok_stdout(&r);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(err.matches("ok ").count(), 6, "{err}");
    }
}

#[test]
fn random_agent_is_deterministic_for_a_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let actions = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        summary(&eval(
            &root(),
            &out,
            "random",
            &["--tasks", "0..4", "--policy-seed", seed],
        ));
        let (mut eps, _) = trajectory::read_episodes(&out.join(EPISODES_FILE)).unwrap();
        eps.sort_by(|a, b| a.header.id.cmp(&b.header.id));
        eps.iter()
            .map(|e| e.steps.iter().map(|s| s.action.clone()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let a = actions("a", "7");
    let b = actions("b", "7");
    let c = actions("c", "8");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn resume_after_a_crash_cut_append_never_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    summary(&eval(&root(), &out, "oracle", &["--tasks", "0..4"]));
    // A second run into the same directory without --resume is refused.
    let refused = eval(&root(), &out, "oracle", &["--tasks", "0..4"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    // Cut the file in the middle of its last episode, as a crash during an append would.
    let f = out.join(EPISODES_FILE);
    let bytes = std::fs::read(&f).unwrap();
    let (eps, _) = trajectory::read_episodes(&f).unwrap();
    let last_len = eps.last().unwrap().to_jsonl().len();
    std::fs::write(&f, &bytes[..bytes.len() - last_len / 2]).unwrap();
    let (cut, damage) = trajectory::read_episodes(&f).unwrap();
    assert_eq!(cut.len(), 3);
    assert!(!damage.is_clean(), "the cut must be detected");
    // A different agent cannot resume this run.
    let other = eval(&root(), &out, "rule", &["--tasks", "0..6", "--resume"]);
    assert!(!other.status.success());
    // Resume with more tasks: the cut episode is re-run, the others are not.
    let s = summary(&eval(
        &root(),
        &out,
        "oracle",
        &["--tasks", "0..6", "--resume"],
    ));
    assert_eq!(s["episodes"], 6, "{s}");
    let (eps, damage) = trajectory::read_episodes(&f).unwrap();
    assert!(damage.is_clean());
    let mut ids: Vec<_> = eps.iter().map(|e| e.header.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no duplicates: {ids:?}");
    // Nothing left to do: a further resume runs no episode and keeps the file.
    let before = std::fs::read(&f).unwrap();
    summary(&eval(
        &root(),
        &out,
        "oracle",
        &["--tasks", "0..6", "--resume"],
    ));
    assert_eq!(std::fs::read(&f).unwrap(), before);
}

#[test]
fn replay_names_the_step_of_a_tampered_observation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    summary(&eval(
        &root(),
        &out,
        "rule",
        &["--tasks", "0..2", "--parallel", "1"],
    ));
    let f = out.join(EPISODES_FILE);
    let (mut eps, _) = trajectory::read_episodes(&f).unwrap();
    eps[1].steps[2].observation = eps[1].steps[2]
        .observation
        .replacen("Buy Now", "Buy Later", 1);
    trajectory::write_episodes(&f, &eps).unwrap();
    let r = agentq(&root(), &["replay", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "divergence exits with 1");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("DIVERGED #1"), "{err}");
    assert!(err.contains("step 2: observation differs"), "{err}");
    assert!(
        err.contains("Buy Later") && err.contains("Buy Now"),
        "{err}"
    );
    assert!(err.contains("ok       #0"), "{err}");
    // Only the untouched episode: exit 0.
    ok_stdout(&agentq(
        &root(),
        &["replay", out.to_str().unwrap(), "--episode", "0"],
    ));
    // A tampered reward is caught too.
    let (mut eps, _) = trajectory::read_episodes(&f).unwrap();
    eps[1].steps[2].observation = eps[1].steps[2]
        .observation
        .replacen("Buy Later", "Buy Now", 1);
    eps[0].steps[2].reward = 0.123;
    trajectory::write_episodes(&f, &eps).unwrap();
    let r = agentq(&root(), &["replay", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("step 2: reward differs"));
}

#[test]
fn replay_show_pages_through_without_executing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    summary(&eval(&root(), &out, "oracle", &["--tasks", "1..2"]));
    let text = ok_stdout(&agentq(
        &root(),
        &["replay", out.to_str().unwrap(), "--show"],
    ));
    assert!(text.contains("--- step 0"), "{text}");
    assert!(text.contains("> click[buy now]"), "{text}");
    assert!(text.contains("=== reward 1"), "{text}");
}

#[test]
fn report_is_written_and_self_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    summary(&eval(&root(), &out, "rule", &["--tasks", "0..3"]));
    std::fs::create_dir_all(out.join("trees")).unwrap();
    std::fs::write(
        out.join("trees/test-0.json"),
        r#"{"action":"","visits":4,"q":0.5,"children":[{"action":"search[x]","visits":3,"q":0.75,"children":[]}]}"#,
    )
    .unwrap();
    std::fs::create_dir_all(out.join("train")).unwrap();
    std::fs::write(
        out.join("train/log.jsonl"),
        "{\"step\":1,\"epoch\":0.5,\"loss\":0.69,\"rewards/margins\":0.0}\n{\"step\":2,\"epoch\":1.0,\"loss\":0.41,\"rewards/margins\":0.8}\n",
    )
    .unwrap();
    ok_stdout(&agentq(&root(), &["report", out.to_str().unwrap()]));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("train rewards/margins"),
        "training curves are plotted"
    );
    assert!(html.contains("Search trees") && html.contains("search[x]"));
    assert!(html.contains("<svg"));
    for bad in ["https://", "<link ", "src='http", "src=\"http", "@import"] {
        assert!(!html.contains(bad), "report references {bad}");
    }
    // A malformed tree file is an error naming it.
    std::fs::write(out.join("trees/bad.json"), "{").unwrap();
    let r = agentq(&root(), &["report", out.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("bad.json"));
}

#[test]
fn bad_task_selections_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (tasks, msg) in [
        ("0..501", "500 tasks"),
        ("x", "not a number"),
        ("3..", "range end"),
    ] {
        let r = eval(&root(), &tmp.path().join("r"), "rule", &["--tasks", tasks]);
        assert!(!r.status.success());
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(msg), "{tasks}: {err}");
    }
}

/// Stored runs double as regression tests: they must still replay identically.
#[test]
fn stored_example_runs_replay_identically() {
    let dir = root().join("tests/data/runs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let run = e.unwrap().path();
        if !run.join(EPISODES_FILE).exists() {
            continue;
        }
        n += 1;
        let r = agentq(&root(), &["replay", run.to_str().unwrap()]);
        ok_stdout(&r);
    }
    assert!(n >= 2, "expected stored runs under {}", dir.display());
}

#[test]
fn demos_are_valid_actions_in_the_policy_prompt_format() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("demos.jsonl");
    for mode in ["act", "react"] {
        ok_stdout(&agentq(
            &root(),
            &[
                "demos",
                "--split",
                "train",
                "--tasks",
                "0..8",
                "--mode",
                mode,
                "--out",
                f.to_str().unwrap(),
            ],
        ));
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 8 * 3, "{} examples", lines.len());
        for ex in &lines {
            let user = ex["prompt"][1]["content"].as_str().unwrap();
            assert_eq!(ex["prompt"][0]["role"], "system");
            assert!(user.starts_with("Instruction: "), "{user}");
            let resp = ex["response"].as_str().unwrap();
            let action = if mode == "react" {
                assert!(resp.starts_with("Thought: "), "{resp}");
                resp.split("Action: ").nth(1).unwrap()
            } else {
                resp
            };
            assert!(agentq::env::Action::parse(action).is_ok(), "{action}");
            let valid = user.split("Valid actions: ").nth(1).unwrap();
            if action.starts_with("search[") {
                assert!(valid.contains("search[…]"), "{user}");
            } else {
                assert!(valid.contains(action), "{action} not in {valid}");
            }
            assert_eq!(ex["completion"][0]["content"], resp);
            assert_eq!(ex["prompt_version"], agentq::policy::prompt::PROMPT_VERSION);
        }
    }
    let shown = ok_stdout(&agentq(
        &root(),
        &[
            "prompt",
            "show",
            "--task",
            "test:3",
            "--actions",
            "search[cashews]",
            "--json",
        ],
    ));
    let msgs: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(msgs[1]["content"]
        .as_str()
        .unwrap()
        .contains("Previous actions: search[cashews]"));
}

#[test]
fn rft_examples_from_a_run_are_its_successful_episodes_in_the_demo_format() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let run = |agent: &str, out: &str| {
        ok_stdout(&agentq(
            &root(),
            &[
                "eval", "--agent", agent, "--split", "train", "--tasks", "0..6", "--out", out,
                "--json",
            ],
        ))
    };
    // From an oracle run: exactly what `agentq demos` writes for the same tasks.
    run("oracle", &p("oracle"));
    ok_stdout(&agentq(
        &root(),
        &[
            "demos",
            "--split",
            "train",
            "--tasks",
            "0..6",
            "--out",
            &p("demos.jsonl"),
        ],
    ));
    ok_stdout(&agentq(
        &root(),
        &[
            "demos",
            "--from-run",
            &p("oracle"),
            "--out",
            &p("rft.jsonl"),
        ],
    ));
    // (Episodes are in the order they finished; demos in task order.)
    let sorted = |f: &str| {
        let t = std::fs::read_to_string(p(f)).unwrap();
        let mut v: Vec<String> = t.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let (demos, rft) = (sorted("demos.jsonl"), sorted("rft.jsonl"));
    assert!(demos.len() >= 6 * 3, "{} examples", demos.len());
    assert!(
        demos == rft,
        "{} demo lines vs {} from the run",
        demos.len(),
        rft.len()
    );
    // From a random run: only its successful episodes, one example per valid step.
    let summary: serde_json::Value = serde_json::from_str(&run("random", &p("random"))).unwrap();
    ok_stdout(&agentq(
        &root(),
        &[
            "demos",
            "--from-run",
            &p("random"),
            "--out",
            &p("rft2.jsonl"),
        ],
    ));
    let text = std::fs::read_to_string(p("rft2.jsonl")).unwrap();
    let wins = summary["success_rate"].as_f64().unwrap();
    assert_eq!(text.is_empty(), wins == 0.0, "{summary}");
    for l in text.lines() {
        let ex: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(ex["episode_reward"], 1.0, "{ex}");
    }
}

#[test]
fn http_eval_replays_identically_in_process() {
    let server = crate::cli_run::serve();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let s = summary(&eval(
        &root(),
        &out,
        "oracle",
        &[
            "--driver",
            "http",
            "--url",
            &server.1,
            "--tasks",
            "0..4",
            "--parallel",
            "2",
        ],
    ));
    assert_eq!(s["success_rate"], 100.0);
    ok_stdout(&agentq(&root(), &["replay", out.to_str().unwrap()]));
}
