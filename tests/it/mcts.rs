//! Tree search: on a tiny fake env whose best path is known (visits concentrate on it, pairs
//! prefer it, critic order and value modes), determinism for a seed, the oracle as proposer
//! on the real store (success, rollouts replay), and `agentq collect` / `eval --agent mcts`
//! end to end with resume.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use agentq::agent::critic::{FnCritic, ProposalOrder};
use agentq::agent::mcts::{self, MctsConfig, SearchResult, TerminalReward, ValueMode};
use agentq::agent::pairs::{self, PairOptions};
use agentq::agent::policy::prompt::PromptMode;
use agentq::agent::{self, EpisodeMeta};
use agentq::env::drivers::in_process;
use agentq::env::{self, Env, EnvConfig, ObsMode, Observation, Snapshot, Step, StepInfo, TaskRef};
use agentq::policy::{self, Candidate, Context, Oracle, Policy, Proposal, RandomPolicy};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;
use agentq::trajectory::{self, report::TreeNode, EPISODES_FILE};

use crate::util::{agentq, ok_stdout, root};

/// Choices at depth 0, 1, 2; the third click buys.
const LEVELS: [[&str; 3]; 3] = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]];
/// The only path with reward 1.
const BEST: [&str; 3] = ["b", "x", "p"];

/// A three-level shop: pages list three clickables; the third click is a purchase whose
/// reward is 1 on [`BEST`] and the share of matching positions otherwise (partial score).
#[derive(Default)]
struct Fake {
    path: Vec<String>,
    steps: usize,
    done: bool,
    reward: f64,
    obs: Option<Observation>,
    resets: Arc<AtomicUsize>,
}

impl Fake {
    fn page(&self) -> Observation {
        let depth = self.path.len();
        let clickables: Vec<String> = if depth < 3 {
            LEVELS[depth].iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        let url = if depth == 3 {
            format!("http://fake/done/{}", self.path.join("-"))
        } else {
            format!("http://fake/p/{}", self.path.join("-"))
        };
        let text = format!(
            "page {} [SEP] {}",
            self.path.join("-"),
            clickables.join(" [SEP] ")
        );
        Observation {
            text: text.clone(),
            text_rich: text.clone(),
            html: text,
            url,
            instruction: "buy b x p".into(),
            has_search_bar: false,
            // A button with a target per clickable: what the env rule needs to click it.
            elements: clickables
                .iter()
                .map(|c| env::observe::Element {
                    id: c.clone(),
                    role: env::observe::Role::Button,
                    label: c.clone(),
                    target: Some(format!("/fake/{c}")),
                    selected: false,
                })
                .collect(),
            clickables,
        }
    }
}

#[async_trait::async_trait]
impl Env for Fake {
    async fn reset(&mut self, _task: TaskRef, _seed: u64) -> env::Result<Observation> {
        self.resets.fetch_add(1, Ordering::SeqCst);
        self.path.clear();
        self.steps = 0;
        self.done = false;
        self.reward = 0.0;
        self.obs = Some(self.page());
        Ok(self.page())
    }

    async fn step(&mut self, action: &str) -> env::Result<Step> {
        let label = action
            .strip_prefix("click[")
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or("");
        let valid = !self.done && self.page().clickables.iter().any(|c| c == label);
        let mut info = StepInfo::default();
        let mut reward = 0.0;
        if valid {
            self.path.push(label.to_string());
            self.steps += 1;
            if self.path.len() == 3 {
                self.done = true;
                let hits = self.path.iter().zip(BEST).filter(|(a, b)| a == b).count();
                reward = hits as f64 / 3.0;
                self.reward = reward;
            }
        } else {
            self.steps += 1;
            info.error = Some(format!("no clickable {label:?}"));
        }
        info.steps = self.steps;
        self.obs = Some(self.page());
        Ok(Step {
            observation: self.page(),
            reward,
            terminated: valid && self.done,
            truncated: !self.done && self.steps >= 15,
            info,
        })
    }

    fn observation(&self) -> Option<&Observation> {
        self.obs.as_ref()
    }

    // The fake's URLs are WebShop-shaped (`…/done/…` when finished).
    fn page_kind(&self, obs: &Observation) -> agentq::env::PageKind {
        agentq::env::sites::webshop::page_kind_of_url(&obs.url)
    }

    fn snapshot(&self) -> env::Result<Snapshot> {
        Ok(Snapshot {
            goal: 0,
            seed: 0,
            url: self.path.join(","),
            steps: self.steps,
            terminated: self.done,
            truncated: false,
            reward: self.reward,
            visited: Vec::new(),
        })
    }

    async fn restore(&mut self, s: &Snapshot) -> env::Result<Observation> {
        self.path = s
            .url
            .split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect();
        self.steps = s.steps;
        self.done = s.terminated;
        self.reward = s.reward;
        self.obs = Some(self.page());
        Ok(self.page())
    }
}

/// Proposes the page's clickables in page order, with log-probs −1, −2, −3 (zero cost).
struct PageOrder;

#[async_trait::async_trait]
impl Policy for PageOrder {
    fn describe(&self) -> String {
        "page-order".into()
    }

    async fn propose(&self, ctx: &Context<'_>) -> policy::Result<Proposal> {
        let cands: Vec<Candidate> = ctx
            .observation
            .clickables
            .iter()
            .take(ctx.k.max(1))
            .enumerate()
            .map(|(i, c)| Candidate {
                action: format!("click[{c}]"),
                logprob: Some(-(i as f64 + 1.0)),
                thought: None,
            })
            .collect();
        if cands.is_empty() {
            return Err(policy::Error::NoAction("nothing to click".into()));
        }
        Ok(Proposal {
            candidates: cands,
            ..Proposal::default()
        })
    }
}

fn meta(k: usize) -> EpisodeMeta {
    EpisodeMeta {
        env: "fake".into(),
        data_hash: "none".into(),
        driver: "fake".into(),
        obs_mode: ObsMode::Text,
        max_steps: 15,
        k,
    }
}

fn task() -> TaskRef {
    TaskRef {
        split: None,
        index: 0,
    }
}

fn cfg(iterations: usize) -> MctsConfig {
    MctsConfig {
        iterations,
        ..MctsConfig::default()
    }
}

async fn fake_search(
    c: &MctsConfig,
    critic: &dyn agentq::agent::critic::Critic,
) -> (SearchResult, usize) {
    let resets = Arc::new(AtomicUsize::new(0));
    let mut env = Fake {
        resets: resets.clone(),
        ..Fake::default()
    };
    let r = mcts::search(&mut env, &PageOrder, critic, &meta(3), task(), 0, c)
        .await
        .unwrap();
    (r, resets.load(Ordering::SeqCst))
}

fn child<'a>(t: &'a TreeNode, action: &str) -> &'a TreeNode {
    t.children
        .iter()
        .find(|c| c.action == action)
        .unwrap_or_else(|| panic!("no child {action}"))
}

#[tokio::test]
async fn visits_concentrate_on_the_best_path() {
    let (r, resets) = fake_search(&cfg(30), &ProposalOrder).await;
    assert_eq!(resets, 1, "branching must restore snapshots, never reset");
    assert!(r.restores > 0);
    assert_eq!(r.rollouts.len(), 30);
    let root = r.tree.to_report();
    assert_eq!(root.visits, 30);
    let b = child(&root, "click[b]");
    for other in ["click[a]", "click[c]"] {
        assert!(
            b.visits > 3 * child(&root, other).visits,
            "b {} vs {other} {}",
            b.visits,
            child(&root, other).visits
        );
    }
    // Under b, the rollout policy's path (x, p) is the best one.
    let x = child(b, "click[x]");
    assert!(b.children.iter().all(|c| c.visits <= x.visits));
    assert_eq!(r.final_actions(), vec!["click[b]", "click[x]", "click[p]"]);
    let fin = r.final_episode();
    assert!(fin.summary.success);
    assert_eq!(fin.header.id, r.tree.id);
    for (i, e) in r.rollouts.iter().enumerate() {
        assert_eq!(e.header.tree.as_deref(), Some(r.tree.id.as_str()));
        assert_eq!(e.header.id, format!("{}/r{i}", r.tree.id));
        assert!(e.summary.terminated, "every rollout buys in this shop");
    }
    // Tree steps carry the critic's ranks and Q values.
    let first = &r.rollouts[0].steps[0];
    assert_eq!(first.candidates.len(), 3);
    assert_eq!(first.candidates[0].critic_rank, Some(0));
    assert!(first.candidates.iter().all(|c| c.q.is_some()));
    // A terminal node selected again backs up its value without buying again.
    assert!(r.purchases >= 3 && r.purchases < 30, "{}", r.purchases);
}

#[tokio::test]
async fn pairs_of_every_sibling_relabel_to_the_pairs_of_any_alpha_and_theta() {
    let c = cfg(30);
    let (r, _) = fake_search(&c, &ProposalOrder).await;
    let opts = |alpha: f64, theta: f64| PairOptions {
        alpha,
        theta,
        trajectory: false,
        mode: Default::default(),
    };
    let all = pairs::step_pairs(&r.tree, &opts(1.0, -1.0), &pairs::action_completion);
    let mut differ = false;
    for alpha in [1.0, 0.5, 0.0] {
        for theta in [0.0, 0.1, 0.3] {
            let want = pairs::step_pairs(&r.tree, &opts(alpha, theta), &pairs::action_completion);
            let got: Vec<_> = all.iter().filter_map(|p| p.relabel(alpha, theta)).collect();
            assert_eq!(got, want, "alpha {alpha}, theta {theta}");
            differ |= want.len() != all.len();
        }
    }
    assert!(
        differ,
        "some setting must drop pairs, or the test shows nothing"
    );
    let mixed = pairs::step_pairs(&r.tree, &opts(0.0, 0.0), &pairs::action_completion);
    assert!(
        mixed.iter().any(|p| all
            .iter()
            .any(|q| q.node == p.node && q.chosen == p.rejected)),
        "a critic-only label reverses some outcome label"
    );
}

#[tokio::test]
async fn pairs_prefer_the_better_child_with_reference_logprobs() {
    let c = cfg(30);
    let (r, _) = fake_search(&c, &ProposalOrder).await;
    let opts = PairOptions {
        alpha: c.alpha,
        theta: c.theta,
        trajectory: true,
        mode: Default::default(),
    };
    let ps = pairs::step_pairs(&r.tree, &opts, &pairs::action_completion);
    let root: Vec<_> = ps.iter().filter(|p| p.depth == 0).collect();
    assert!(!root.is_empty());
    assert!(root
        .iter()
        .any(|p| p.chosen == "click[b]" && p.rejected == "click[a]"));
    for p in &ps {
        assert!(p.q_chosen - p.q_rejected > c.theta, "{p:?}");
        assert_ne!(
            p.rejected, "click[b]",
            "b is never the loser at the root: {p:?}"
        );
        assert!(
            p.visits_chosen > 0 && p.visits_rejected > 0,
            "both explored"
        );
        assert!(p.ref_chosen_logps.is_some() && p.ref_rejected_logps.is_some());
        assert!(
            p.prompt.starts_with("Instruction: buy b x p"),
            "{}",
            p.prompt
        );
        assert!(!p.prompt_from_policy);
        assert_eq!(p.kind, "step");
    }
    // TRL standard form: prompt/chosen/rejected strings at the top level.
    let bytes = pairs::to_jsonl(&ps);
    for line in String::from_utf8(bytes).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for k in ["prompt", "chosen", "rejected"] {
            assert!(v[k].is_string(), "{k} in {line}");
        }
    }
    // Trajectory pairs: a success against a failure.
    let tp = pairs::trajectory_pairs(&r.tree, &r.rollouts, &r.values, PromptMode::Act);
    assert!(!tp.is_empty());
    for p in &tp {
        assert_eq!(p.kind, "trajectory");
        assert!(
            p.chosen.starts_with("click[b]\nclick[x]\nclick[p]"),
            "{}",
            p.chosen
        );
        assert_ne!(p.chosen, p.rejected);
        // Every step of each rollout, with its own prompt, for step-by-step scoring.
        let actions = |s: &[agentq::agent::demos::SftExample]| {
            s.iter()
                .map(|e| e.response.clone())
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(actions(&p.chosen_steps), p.chosen);
        assert_eq!(actions(&p.rejected_steps), p.rejected);
        assert!(
            p.chosen_steps[1]
                .prompt
                .iter()
                .any(|m| m.content.contains("click[b]")),
            "the second step's prompt shows the first action"
        );
    }
}

#[tokio::test]
async fn the_critic_orders_first_visits_and_scores_ranks() {
    let critic = FnCritic::preferring(vec!["click[c]".into(), "click[b]".into()]);
    let (r, _) = fake_search(&cfg(3), &critic).await;
    let firsts: Vec<&str> = r
        .rollouts
        .iter()
        .map(|e| e.steps[0].action.as_str())
        .collect();
    assert_eq!(firsts, vec!["click[c]", "click[b]", "click[a]"]);
    let root = r.tree.to_report();
    assert_eq!(child(&root, "click[c]").critic_rank, Some(0));
    assert_eq!(child(&root, "click[c]").q_hat, Some(1.0));
    assert_eq!(child(&root, "click[b]").q_hat, Some(0.5));
    assert_eq!(child(&root, "click[a]").q_hat, Some(0.0));
}

#[tokio::test]
async fn critic_value_mode_uses_the_judge_not_the_reward() {
    let critic = FnCritic::new("const", |_, c| (0..c.len()).collect(), |_| 0.25);
    let c = MctsConfig {
        value: ValueMode::Critic,
        ..cfg(10)
    };
    let (r, _) = fake_search(&c, &critic).await;
    assert!(r.values.iter().all(|&v| v == 0.25), "{:?}", r.values);
    assert!((r.tree.nodes[0].q() - 0.25).abs() < 1e-12);
    // The env's reward is still recorded in the episodes (the truth, for evaluation).
    assert!(r.rollouts.iter().any(|e| e.summary.reward == 1.0));
}

#[tokio::test]
async fn partial_reward_values_are_the_webshop_score() {
    let c = MctsConfig {
        reward: TerminalReward::Partial,
        ..cfg(4)
    };
    let (r, _) = fake_search(&c, &ProposalOrder).await;
    // Rollouts: a-x-p (2/3), b-x-p (1), c-x-p (2/3), then b again.
    assert!((r.values[0] - 2.0 / 3.0).abs() < 1e-9, "{:?}", r.values);
    assert_eq!(r.values[1], 1.0);
}

fn store() -> Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let cat = Catalog::load_dir(&crate::util::fixtures_dir()).expect("fixtures");
            Arc::new(Store::new(Arc::new(cat)))
        })
        .clone()
}

fn store_env() -> impl Env {
    in_process(
        router(AppState::new(store())),
        EnvConfig {
            max_steps: 15,
            ..EnvConfig::default()
        },
    )
}

fn test_task(i: usize) -> TaskRef {
    TaskRef {
        split: Some(agentq::env::Split::Test),
        index: i,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_seeds_give_identical_trees() {
    let run = |search_seed: u64| async move {
        let mut env = store_env();
        let c = MctsConfig {
            seed: search_seed,
            ..cfg(8)
        };
        let r = mcts::search(
            &mut env,
            &RandomPolicy::new(5),
            &ProposalOrder,
            &meta(3),
            test_task(2),
            1,
            &c,
        )
        .await
        .unwrap();
        let actions: Vec<Vec<String>> = r
            .rollouts
            .iter()
            .map(|e| e.steps.iter().map(|s| s.action.clone()).collect())
            .collect();
        let opts = PairOptions {
            alpha: 0.5,
            theta: 0.1,
            trajectory: false,
            mode: Default::default(),
        };
        let ps = pairs::to_jsonl(&pairs::step_pairs(
            &r.tree,
            &opts,
            &pairs::action_completion,
        ));
        (
            serde_json::to_string(&r.tree.to_report()).unwrap(),
            actions,
            ps,
            r.values.clone(),
        )
    };
    let a = run(3).await;
    let b = run(3).await;
    assert_eq!(a, b);
    assert!(a.1.iter().any(|x| x.len() > 1), "rollouts walk the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_proposer_succeeds_on_the_store_and_rollouts_replay() {
    let s = store();
    let oracle = Oracle::new(Arc::new(agentq::env::sites::webshop::CatalogKnowledge(
        Arc::clone(s.catalog_arc()),
    )));
    for i in [0, 3] {
        let mut env = store_env();
        let r = mcts::search(
            &mut env,
            &oracle,
            &ProposalOrder,
            &meta(3),
            test_task(i),
            0,
            &cfg(6),
        )
        .await
        .unwrap();
        let fin = r.final_episode();
        assert_eq!(fin.summary.reward, 1.0, "task {i}: {:?}", r.final_actions());
        assert!(r.purchases >= 1);
        assert!(r.expansions >= 6);
        // Every rollout reproduces from a fresh env (snapshots restored exactly).
        let mut fresh = store_env();
        for e in &r.rollouts {
            let d = agent::replay(&mut fresh, e).await.unwrap();
            assert!(d.is_none(), "{}: {}", e.header.id, d.unwrap());
        }
    }
}

fn collect(out: &std::path::Path, tasks: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "collect",
        "--proposer",
        "oracle",
        "--split",
        "train",
        "--tasks",
        tasks,
        "--iterations",
        "4",
        "--k",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    serde_json::from_str(&ok_stdout(&agentq(&root(), &args))).unwrap()
}

#[test]
fn collect_writes_trees_episodes_pairs_and_resumes_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c");
    let s = collect(&out, "0..2", &["--trajectory-pairs"]);
    assert_eq!(s["tasks"], 2, "{s}");
    assert_eq!(s["final"]["success_rate"], 100.0, "{s}");
    for t in ["train-0", "train-1"] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(format!("trees/{t}.json"))).unwrap())
                .unwrap();
        let tree: TreeNode = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(tree.visits, 4);
        assert!(v["search"]["expansions"].as_u64().unwrap() >= 4);
    }
    // The value mode is labelled: with env rewards, the search has a verifier.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert!(
        run["settings"]["value"]
            .as_str()
            .unwrap()
            .contains("search with a verifier"),
        "{run}"
    );
    assert!(s["value"].as_str().unwrap().contains("verifier"));
    assert_eq!(run["settings"]["mcts"]["iterations"], 4);
    let (eps, _) = trajectory::read_episodes(&out.join(EPISODES_FILE)).unwrap();
    assert_eq!(
        eps.len(),
        2 * (4 + 1),
        "4 rollouts and the final path per tree"
    );
    assert!(eps.iter().all(|e| e.header.tree.is_some()));
    let pairs_text = std::fs::read_to_string(out.join("pairs.jsonl")).unwrap();
    let n_pairs = pairs_text.lines().count();
    assert_eq!(s["pairs"].as_u64().unwrap() as usize, n_pairs);
    for l in pairs_text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["prompt"].is_string() && v["chosen"].is_string() && v["rejected"].is_string());
    }
    // A crash in the middle of task 2: its episodes and pairs were appended, no tree file.
    let cut = {
        let mut e = eps[0].clone();
        e.header.tree = Some("train:2/s0".into());
        e.header.id = "train:2/s0/r0".into();
        e
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join(EPISODES_FILE))
        .unwrap();
    std::io::Write::write_all(&mut f, &cut.to_jsonl()).unwrap();
    std::io::Write::write_all(&mut f, b"{\"kind\":\"header\",\"sch").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("pairs.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"tree\":\"train:2/s0\"}\n",
    )
    .unwrap();
    // Resume with one more task: tasks 0 and 1 are skipped, task 2 searched once.
    let s = collect(&out, "0..3", &["--resume", "--trajectory-pairs"]);
    assert_eq!(s["tasks"], 3, "{s}");
    let (eps, damage) = trajectory::read_episodes(&out.join(EPISODES_FILE)).unwrap();
    assert!(damage.is_clean());
    assert_eq!(eps.len(), 3 * 5);
    let ids: BTreeSet<&str> = eps.iter().map(|e| e.header.id.as_str()).collect();
    assert_eq!(ids.len(), eps.len(), "no duplicate episode");
    let pairs_after = std::fs::read_to_string(out.join("pairs.jsonl")).unwrap();
    assert!(pairs_after.starts_with(&pairs_text));
    assert!(!pairs_after.contains("\"prompt\":\"p\""));
    // Nothing left to do: a second resume changes nothing.
    let again = collect(&out, "0..3", &["--resume", "--trajectory-pairs"]);
    assert_eq!(again["tasks"], 3);
    assert_eq!(
        trajectory::read_episodes(&out.join(EPISODES_FILE))
            .unwrap()
            .0
            .len(),
        15
    );
    // Without --resume the directory is refused.
    let r = agentq(
        &root(),
        &[
            "collect",
            "--split",
            "train",
            "--tasks",
            "0..1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!r.status.success());
    // The report draws the trees.
    ok_stdout(&agentq(&root(), &["report", out.to_str().unwrap()]));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Search trees"));
}

#[test]
fn eval_agent_mcts_records_the_chosen_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("e");
    let r = agentq(
        &root(),
        &[
            "eval",
            "--agent",
            "mcts",
            "--proposer",
            "oracle",
            "--iterations",
            "3",
            "--tasks",
            "0..2",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    let s: serde_json::Value = serde_json::from_str(&ok_stdout(&r)).unwrap();
    assert_eq!(s["episodes"], 2, "{s}");
    assert_eq!(s["success_rate"], 100.0, "{s}");
    assert!(String::from_utf8_lossy(&r.stderr).contains("search purchases"));
    let (rollouts, _) = trajectory::read_episodes(&out.join("rollouts.jsonl")).unwrap();
    assert_eq!(rollouts.len(), 6);
    // The chosen paths replay like any eval episode.
    ok_stdout(&agentq(&root(), &["replay", out.to_str().unwrap()]));
}
