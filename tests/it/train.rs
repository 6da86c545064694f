//! `agentq train` end to end on a tiny model written by the test: SFT on oracle
//! demonstrations and DPO on pairs lower their losses, resume after `--max-steps`, export to
//! TRL's standard form, and the trained checkpoint loads as `--adapter` for evaluation.

use crate::util::{agentq, ok_stdout, root};

fn log_losses(dir: &std::path::Path) -> Vec<f64> {
    agentq::train::log::read(&dir.join("log.jsonl"))
        .unwrap()
        .iter()
        .map(|e| e.metrics["loss"])
        .collect()
}

#[test]
fn train_sft_and_dpo_then_evaluate_with_the_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model_with_long_context(tmp.path(), 3);
    let m = model.to_str().unwrap();
    // SFT on a few oracle demonstrations, in two runs (stop after 2 steps, then resume).
    let demos = tmp.path().join("demos.jsonl");
    ok_stdout(&agentq(
        &root(),
        &[
            "demos",
            "--split",
            "train",
            "--tasks",
            "0..3",
            "--out",
            demos.to_str().unwrap(),
        ],
    ));
    let sft = tmp.path().join("sft");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "train",
            "sft",
            "--model",
            m,
            "--data",
            demos.to_str().unwrap(),
            "--out",
            sft.to_str().unwrap(),
            "--epochs",
            "3",
            "--batch-size",
            "4",
            "--lr",
            "1e-2",
            "--max-prompt-tokens",
            "256",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let a1 = args(&["--max-steps", "2"]);
    ok_stdout(&agentq(
        &root(),
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(log_losses(&sft).len(), 2);
    let a2 = args(&["--json"]);
    let s: serde_json::Value = serde_json::from_str(&ok_stdout(&agentq(
        &root(),
        &a2.iter().map(String::as_str).collect::<Vec<_>>(),
    )))
    .unwrap();
    let losses = log_losses(&sft);
    assert_eq!(losses.len() as u64, s["steps"].as_u64().unwrap());
    assert!(losses.last().unwrap() < &losses[0], "{losses:?}");

    // DPO on pairs (TRL standard form), then export them again.
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"prompt\":\"You are a web agent. Choose the next action.\",\"chosen\":\"click[Buy Now]\",\"rejected\":\"click[Next >]\"}\n\
         {\"prompt\":[{\"role\":\"user\",\"content\":\"The capital of France is\"}],\"chosen\":[{\"role\":\"assistant\",\"content\":\"Paris.\"}],\"rejected\":[{\"role\":\"assistant\",\"content\":\"search[mouse]\"}]}\n",
    )
    .unwrap();
    // DPO on those pairs into `out`, four epochs of two pairs per step, plus `extra` flags.
    let dpo_run = |out: &std::path::Path, extra: &[&str]| {
        let mut v = vec![
            "train",
            "dpo",
            "--model",
            m,
            "--data",
            pairs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "4",
            "--batch-size",
            "2",
            "--lr",
            "1e-2",
        ];
        v.extend_from_slice(extra);
        ok_stdout(&agentq(&root(), &v));
    };
    let dpo = tmp.path().join("dpo");
    // From the SFT model, as the loop does (merged adapters are constants).
    dpo_run(&dpo, &["--adapter", sft.to_str().unwrap()]);
    let log = agentq::train::log::read(&dpo.join("log.jsonl")).unwrap();
    let (first, last) = (&log[0].metrics, &log.last().unwrap().metrics);
    assert!(
        last["rewards/margins"] > first["rewards/margins"],
        "{first:?} → {last:?}"
    );
    // The same pairs with the demonstrations replayed beside them: every step logs the
    // replay loss or not, and the replayed NLL falls.
    let replayed = tmp.path().join("dpo-replay");
    dpo_run(
        &replayed,
        &[
            "--replay",
            demos.to_str().unwrap(),
            "--max-prompt-tokens",
            "256",
        ],
    );
    let log = agentq::train::log::read(&replayed.join("log.jsonl")).unwrap();
    let replay: Vec<f64> = log
        .iter()
        .filter_map(|e| e.metrics.get("replay/loss").copied())
        .collect();
    assert!(replay.len() >= 4, "{log:?}");
    assert!(replay.last().unwrap() < &replay[0], "{replay:?}");
    // An SFT run has nothing to replay beside.
    let bad = agentq(
        &root(),
        &[
            "train",
            "sft",
            "--model",
            m,
            "--data",
            demos.to_str().unwrap(),
            "--replay",
            demos.to_str().unwrap(),
            "--out",
            tmp.path().join("bad").to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--replay"));
    let trl = tmp.path().join("trl.jsonl");
    ok_stdout(&agentq(
        &root(),
        &[
            "train",
            "export",
            "--model",
            m,
            "--data",
            pairs.to_str().unwrap(),
            "--out",
            trl.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&trl).unwrap();
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["chosen"], "Paris.");
    assert!(second["prompt"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>assistant"));

    // The trained model evaluates (greedy LLM agent) with the checkpoint applied.
    let run = tmp.path().join("eval");
    let out = ok_stdout(&agentq(
        &root(),
        &[
            "eval",
            "--agent",
            "llm",
            "--model",
            m,
            "--adapter",
            dpo.to_str().unwrap(),
            "--tasks",
            "0..1",
            "--max-steps",
            "3",
            "--out",
            run.to_str().unwrap(),
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 1);
    let cfg = std::fs::read_to_string(run.join("run.json")).unwrap();
    assert!(
        cfg.contains("dpo"),
        "the policy description names the adapter: {cfg}"
    );
    // A missing adapter is a clear error.
    let bad = agentq(
        &root(),
        &[
            "eval",
            "--agent",
            "llm",
            "--model",
            m,
            "--adapter",
            "/nonexistent",
            "--tasks",
            "0..1",
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nonexistent"));
}

/// A tiny model directory under `dir` whose context fits whole WebShop prompts (store pages
/// are long in the tiny tokenizer's tokens).
fn tiny_model_with_long_context(dir: &std::path::Path, seed: u64) -> std::path::PathBuf {
    let model = dir.join("tiny");
    agentq::lm::tiny::write_dir(&model, seed).unwrap();
    let cfg_path = model.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["max_position_embeddings"] = 4096.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    model
}

#[test]
fn the_agent_q_loop_runs_and_resumes_after_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model_with_long_context(tmp.path(), 4);
    let out = tmp.path().join("loop");
    let args = [
        "loop",
        "--iterations",
        "1",
        "--train-tasks",
        "0..1",
        "--eval-tasks",
        "0..1",
        "--mcts-iterations",
        "2",
        "--max-steps",
        "3",
        "--depth-cap",
        "3",
        "--dpo-epochs",
        "1",
        "--sft-tasks",
        "0..2",
        "--eval-mcts",
        "--mcts-eval-tasks",
        "1..2",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let first = agentq(&root(), &args);
    let table = ok_stdout(&first);
    assert!(table.contains("greedy score"), "{table}");
    let log = String::from_utf8_lossy(&first.stderr).into_owned();
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    let stages: Vec<&str> = rows.iter().map(|r| r["stage"].as_str().unwrap()).collect();
    assert_eq!(
        stages,
        ["zero-shot", "SFT", "iteration 1"],
        "zero-shot, SFT and one iteration"
    );
    for r in rows {
        assert_eq!(r["greedy"]["episodes"], 1);
        assert_eq!(r["mcts"]["episodes"], 1, "one MCTS task: {r}");
        assert!(r["greedy_wall_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| zero-shot |") && md.contains("(start)"),
        "{md}"
    );
    for r in rows {
        let ci = &r["greedy_ci"]["success"];
        assert!(ci["lo"].as_f64().unwrap() <= r["greedy"]["success_rate"].as_f64().unwrap());
        assert!(ci["hi"].as_f64().unwrap() >= r["greedy"]["success_rate"].as_f64().unwrap());
    }
    // Each row but the start is compared with the SFT row, task by task.
    assert_eq!(rows[2]["vs_start"]["tasks"], 1, "{}", rows[2]);
    assert!(rows[1].get("vs_start").is_none(), "{}", rows[1]);
    let svg = std::fs::read_to_string(out.join("results.svg")).unwrap();
    assert!(
        svg.contains("95 % intervals") && svg.contains("iteration 1"),
        "{svg}"
    );
    let mcts_run = agentq::trajectory::load(&out.join("iter-1/eval-mcts")).unwrap();
    assert_eq!(
        mcts_run.episodes[0].header.task, "test:1",
        "--mcts-eval-tasks is used"
    );
    assert!(out.join("results.svg").exists() && out.join("results.md").exists());
    assert!(
        out.join("sft/train/latest").exists(),
        "the SFT warm start ran: {log}"
    );
    for stage in [
        "zero-shot/eval-greedy",
        "sft",
        "iter-0/eval-greedy",
        "iter-1/collect",
        "iter-1/eval-greedy",
    ] {
        assert!(
            out.join(stage).join("DONE").exists(),
            "{stage} is marked done"
        );
    }
    assert!(out.join("iter-1/collect/trees").is_dir());
    // Cut: the last evaluation lost its marker and half its file; collection is kept.
    let pairs_before = std::fs::metadata(out.join("iter-1/collect/pairs.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(out.join("iter-1/eval-greedy/DONE")).unwrap();
    let eps = out.join("iter-1/eval-greedy/episodes.jsonl");
    let bytes = std::fs::read(&eps).unwrap();
    std::fs::write(&eps, &bytes[..bytes.len() / 2]).unwrap();
    let again = ok_stdout(&agentq(&root(), &args));
    assert_eq!(
        std::fs::metadata(out.join("iter-1/collect/pairs.jsonl"))
            .unwrap()
            .modified()
            .unwrap(),
        pairs_before,
        "collection is not redone"
    );
    let (eps_after, damage) = agentq::trajectory::read_episodes(&eps).unwrap();
    assert!(damage.is_clean());
    assert_eq!(eps_after.len(), 1);
    assert!(again.contains("greedy score"));
}

#[test]
fn loop_baselines_learn_from_iteration_ones_trees_with_their_own_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model_with_long_context(tmp.path(), 5);
    let out = tmp.path().join("loop");
    let run = agentq(
        &root(),
        &[
            "loop",
            "--train-tasks",
            "0..2",
            "--eval-tasks",
            "0..1",
            "--mcts-iterations",
            "4",
            "--max-steps",
            "3",
            "--depth-cap",
            "3",
            "--dpo-epochs",
            "1",
            "--baselines",
            "rft,trajectory-dpo,critic-mix",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let table = ok_stdout(&run);
    let log = String::from_utf8_lossy(&run.stderr).into_owned();
    let read = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let collected = read(&out.join("iter-1/collect/pairs.jsonl"));
    let steps: Vec<&serde_json::Value> = collected.iter().filter(|p| p["kind"] == "step").collect();
    assert!(!steps.is_empty(), "every explored sibling pair is recorded");
    let q = |p: &serde_json::Value, side: &str, alpha: f64| {
        alpha * p[format!("mcts_q_{side}")].as_f64().unwrap()
            + (1.0 - alpha) * p[format!("q_hat_{side}")].as_f64().unwrap_or(0.0)
    };
    // Each row's pairs are the recorded ones, labelled with its own α (θ = 0.1).
    for (file, alpha) in [
        ("iter-1/pairs.jsonl", 1.0),
        ("iter-1/critic-mix/pairs.jsonl", 0.5),
    ] {
        let kept = read(&out.join(file));
        let want = steps
            .iter()
            .filter(|p| (q(p, "chosen", alpha) - q(p, "rejected", alpha)).abs() > 0.1)
            .count();
        assert_eq!(kept.len(), want, "{file}");
        for p in &kept {
            assert!(
                q(p, "chosen", alpha) - q(p, "rejected", alpha) > 0.1,
                "{file}: {p}"
            );
            assert_eq!(p["kind"], "step");
        }
    }
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let stages: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages[..2], ["base", "iteration 1"], "{table}");
    // A baseline with data is a row compared with the start; one without says so.
    for (slug, name, data) in [
        ("rft", "RFT", "examples.jsonl"),
        ("trajectory-dpo", "trajectory DPO", "pairs.jsonl"),
        ("critic-mix", "Agent Q, critic mix (α 0.5)", "pairs.jsonl"),
    ] {
        let n = read(&out.join("iter-1").join(slug).join(data)).len();
        let row = rows.as_array().unwrap().iter().find(|r| r["stage"] == name);
        if n > 0 {
            let row = row.unwrap_or_else(|| panic!("{name} has data but no row: {table}"));
            assert_eq!(row["vs_start"]["tasks"], 1, "{row}");
            assert!(out.join("iter-1").join(slug).join("train/latest").exists());
            assert!(out
                .join("iter-1")
                .join(slug)
                .join("eval-greedy/DONE")
                .exists());
        } else {
            assert!(row.is_none(), "{name}: no data, no row");
            assert!(
                log.contains(&format!(
                    "{name}: iteration 1's search gave no training data"
                )),
                "{log}"
            );
        }
    }
    // Trajectory pairs carry their steps.
    for p in read(&out.join("iter-1/trajectory-dpo/pairs.jsonl")) {
        assert!(!p["chosen_steps"].as_array().unwrap().is_empty(), "{p}");
    }
}

#[test]
fn bench_dpo_reports_times_and_peak_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    agentq::lm::tiny::write_dir(&model, 2).unwrap();
    let out = ok_stdout(&agentq(
        &root(),
        &[
            "bench",
            "dpo",
            "--model",
            model.to_str().unwrap(),
            "--tokens",
            "48",
            "--steps",
            "2",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 2);
    let total = v["prompt_tokens"].as_u64().unwrap() + v["chosen_tokens"].as_u64().unwrap();
    assert_eq!(total, 48, "{v}");
    assert!(v["median_s_per_pair_after_first"].as_f64().unwrap() > 0.0);
    if cfg!(target_os = "linux") {
        assert!(v["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
    // Nonsense sizes are errors, not panics.
    let bad = agentq(
        &root(),
        &[
            "bench",
            "dpo",
            "--model",
            model.to_str().unwrap(),
            "--tokens",
            "3",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tokens"));
}

#[test]
fn quickstart_runs_on_a_given_model_and_prints_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model_with_long_context(tmp.path(), 5);
    let out = tmp.path().join("qs");
    let run = agentq(
        &root(),
        &[
            "quickstart",
            "--model",
            model.to_str().unwrap(),
            "--train-tasks",
            "0..1",
            "--eval-tasks",
            "0..2",
            "--max-steps",
            "3",
            "--parallel",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let table = ok_stdout(&run);
    assert!(
        table.contains("base") && table.contains("iteration 1"),
        "{table}"
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("report.html"),
        "the report path is printed: {err}"
    );
    assert!(
        !err.contains("model fetch"),
        "a given model is not fetched: {err}"
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for r in rows.as_array().unwrap() {
        assert_eq!(r["greedy"]["episodes"], 2, "{r}");
    }
}
