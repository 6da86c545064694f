//! `agentq diagnose`: failure modes add up and name what happened, and the pair audit
//! replays a pair's node and judges each action against the oracle (hand-made pairs whose
//! right answer is known).

use crate::util::{agentq, ok_stdout, root};

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok_stdout(&agentq(&root(), args))).unwrap()
}

#[test]
fn failure_modes_add_up_and_see_the_oracle_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let (oracle, random) = (tmp.path().join("oracle"), tmp.path().join("random"));
    for (agent, out) in [("oracle", &oracle), ("random", &random)] {
        ok_stdout(&agentq(
            &root(),
            &[
                "eval",
                "--agent",
                agent,
                "--tasks",
                "0..12",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ],
        ));
    }
    let o = json(&["diagnose", "episodes", oracle.to_str().unwrap(), "--json"]);
    assert_eq!(o["episodes"], 12, "{o}");
    assert_eq!(o["success"], 12, "{o}");
    assert_eq!(o["target_seen"], 12, "{o}");
    assert_eq!(o["target_opened"], 12, "{o}");
    assert_eq!(o["selected_goal_options"], o["goals_with_options"], "{o}");
    let r = json(&["diagnose", "episodes", random.to_str().unwrap(), "--json"]);
    let n = |k: &str| r[k].as_u64().unwrap();
    assert_eq!(
        n("success") + n("target_not_exact") + n("other_product") + n("no_purchase"),
        12,
        "{r}"
    );
    assert!(n("success") < 12, "{r}");
    // The oracle against the random agent, task by task.
    let c = json(&[
        "diagnose",
        "compare",
        random.to_str().unwrap(),
        oracle.to_str().unwrap(),
        "--json",
    ]);
    let won = n("success");
    assert_eq!(c["tasks"], 12, "{c}");
    assert_eq!(c["won"], serde_json::json!([won, 0, 12 - won]), "{c}");
    assert_eq!(c["success"][1][0], 100.0, "{c}");
    let d = &c["success_diff"];
    let want = 100.0 * (12 - won) as f64 / 12.0;
    assert!((d["diff"].as_f64().unwrap() - want).abs() < 1e-9, "{c}");
    assert!(d["ci"]["lo"].as_f64().unwrap() <= want && d["ci"]["hi"].as_f64().unwrap() >= want);
}

#[test]
fn pair_audit_replays_the_node_and_judges_against_the_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("oracle");
    ok_stdout(&agentq(
        &root(),
        &[
            "eval",
            "--agent",
            "oracle",
            "--tasks",
            "0..1",
            "--out",
            run.to_str().unwrap(),
            "--json",
        ],
    ));
    // The oracle's episode: a search, then the results page with the target on it.
    let text = std::fs::read_to_string(run.join("episodes.jsonl")).unwrap();
    let steps: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .collect();
    let search = steps[0]["action"].as_str().unwrap().to_string();
    let target = steps[1]["action"].as_str().unwrap().to_string();
    let other = steps[1]["available_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .find(|a| a.starts_with("click[b") && *a != target)
        .expect("another product on the page");
    let pair = |chosen: &str, rejected: &str, q: (f64, f64)| {
        serde_json::json!({
            "prompt": "p", "chosen": chosen, "rejected": rejected, "kind": "step",
            "q_chosen": q.0, "q_rejected": q.1, "mcts_q_chosen": q.0, "mcts_q_rejected": q.1,
            "visits_chosen": 1, "visits_rejected": 1, "chosen_action": chosen,
            "rejected_action": rejected, "task": "test:0", "tree": "test:0/s0", "node": 1,
            "depth": 1, "prompt_from_policy": false, "seed": 0, "history": [search],
        })
        .to_string()
    };
    let file = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            // Wrong way round, and only the critic decided (equal search values).
            pair(&other, &target, (0.5, 0.5)),
            // Right way round, decided by the search value.
            pair(&target, &other, (1.0, 0.0)),
        ),
    )
    .unwrap();
    let a = json(&["diagnose", "pairs", file.to_str().unwrap(), "--json"]);
    assert_eq!(a["step_pairs"], 2, "{a}");
    assert_eq!(a["by_page"]["results"], 2, "{a}");
    let (critic, value) = (&a["critic_decided"], &a["value_decided"]);
    assert_eq!(critic["pairs"], 1, "{a}");
    assert_eq!(critic["oracle_decidable"], 1, "{a}");
    assert_eq!(critic["oracle_chosen"], 0, "{a}");
    assert_eq!(critic["continuation_worse"], 1, "{a}");
    assert_eq!(value["oracle_chosen"], 1, "{a}");
    assert_eq!(value["continuation_better"], 1, "{a}");
    let v = &a["verdicts"][1];
    assert_eq!(v["oracle"], target.as_str(), "{v}");
    assert_eq!(v["after_chosen"]["reward"], 1.0, "{v}");
    // A bad line is an error naming the file and line.
    std::fs::write(
        &file,
        format!("{}\nnot json\n", pair(&other, &target, (0.5, 0.5))),
    )
    .unwrap();
    let out = agentq(&root(), &["diagnose", "pairs", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pairs.jsonl line 2"), "{err}");
}
