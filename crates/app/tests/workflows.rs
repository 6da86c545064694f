//! The workflows called as library functions (no argv, no clap): an evaluation and a
//! collection on the committed fixtures, each resumed, with the figures they return checked
//! against what they wrote.

use std::sync::Arc;

use agentq_app::eval::{eval, AgentKind, EvalConfig};
use agentq_app::search::{collect, finished, CollectConfig};
use agentq_app::tasks::TaskSelection;
use agentq_app::Silent;
use agentq_env::Split;

#[test]
fn an_evaluation_runs_resumes_and_never_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let mut c = EvalConfig::new(AgentKind::Oracle, TaskSelection::of(Split::Test, "0..4"));
    c.parallel = 2;
    c.out = Some(out.clone());
    let r = eval(&c, Arc::new(Silent)).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.summary.episodes, 4);
    assert_eq!(r.run_dir, out);
    assert!(r.summary.success_rate > 0.0, "the oracle solves some tasks");
    r.check().unwrap();
    // A fresh run into the same directory without resume is refused.
    assert!(eval(&c, Arc::new(Silent)).is_err());
    // Resumed with more tasks: only the new ones run.
    c.resume = true;
    c.tasks = TaskSelection::of(Split::Test, "0..6");
    let again = eval(&c, Arc::new(Silent)).unwrap();
    assert_eq!(again.summary.episodes, 6);
    let run = agentq_trajectory::load(&out).unwrap();
    let mut ids: Vec<&str> = run.episodes.iter().map(|e| e.header.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no duplicated episode");
}

#[test]
fn a_collection_commits_whole_trees_and_resumes_a_lost_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("collect");
    let mut c = CollectConfig::new(TaskSelection::of(Split::Train, "0..2"));
    c.search.iterations = 3;
    c.out = Some(out.clone());
    let r = collect(&c, Arc::new(Silent)).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.summary.tasks, 2);
    let tasks: Vec<&str> = r.summary.per_task.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(
        tasks,
        ["train:0", "train:1"],
        "per-task figures in task order"
    );
    assert_eq!(finished(&out).unwrap().len(), 2);
    let pairs = std::fs::read_to_string(out.join("pairs.jsonl")).unwrap();
    assert_eq!(pairs.lines().count(), r.summary.pairs);
    // Lose the second tree's commit marker: a resume searches that task again and drops
    // its earlier episodes and pairs, so the run holds each tree once.
    std::fs::remove_file(out.join("trees/train-1.json")).unwrap();
    c.resume = true;
    let again = collect(&c, Arc::new(Silent)).unwrap();
    assert_eq!(again.summary.tasks, 2);
    assert_eq!(
        again.summary.pairs, r.summary.pairs,
        "same seed, same pairs"
    );
    assert_eq!(
        again.summary.rollouts.episodes, r.summary.rollouts.episodes,
        "no rollout of the lost tree is kept twice"
    );
    let pairs_again = std::fs::read_to_string(out.join("pairs.jsonl")).unwrap();
    assert_eq!(pairs_again.lines().count(), r.summary.pairs);
}
