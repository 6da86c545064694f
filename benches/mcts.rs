//! MCTS benches (`cargo bench --bench mcts`): node expansions per second with a zero-cost
//! scripted proposer on the in-process store (committed fixtures), the same search on an
//! instant in-memory env (the search's own overhead), and the env operations a search is
//! made of (snapshot, restore, click step).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use agentq::agent::critic::ProposalOrder;
use agentq::agent::mcts::{self, MctsConfig};
use agentq::agent::EpisodeMeta;
use agentq::env::drivers::in_process;
use agentq::env::{self, Env, EnvConfig, ObsMode, Observation, Snapshot, Step, StepInfo, TaskRef};
use agentq::policy::{self, Candidate, Context, PageKind, Policy, Proposal};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Zero-cost proposer: search the instruction on the home page; elsewhere `buy now` first,
/// then product links, then the other clickables (first K).
struct Greedy;

#[async_trait::async_trait]
impl Policy for Greedy {
    fn describe(&self) -> String {
        "greedy".into()
    }

    async fn propose(&self, ctx: &Context<'_>) -> policy::Result<Proposal> {
        let mut c: Vec<Candidate> = Vec::new();
        if ctx.page() == PageKind::Home && ctx.observation.has_search_bar {
            c.push(Candidate::plain(format!("search[{}]", ctx.instruction)));
        }
        if ctx.can_click("buy now") {
            c.push(Candidate::plain("click[buy now]"));
        }
        for l in ctx.product_links() {
            c.push(Candidate::plain(format!("click[{l}]")));
        }
        for l in &ctx.observation.clickables {
            if l != "search" {
                c.push(Candidate::plain(format!("click[{l}]")));
            }
        }
        c.truncate(ctx.k.max(1));
        Ok(Proposal {
            candidates: c,
            ..Proposal::default()
        })
    }
}

/// An instant env: every page has three clickables; the fifth click buys.
#[derive(Default)]
struct Instant3 {
    path: Vec<u8>,
    steps: usize,
    obs: Option<Observation>,
}

impl Instant3 {
    fn page(&self) -> Observation {
        let done = self.path.len() >= 5;
        Observation {
            text: String::from("page"),
            text_rich: String::new(),
            html: String::new(),
            url: if done {
                "http://x/done/1".into()
            } else {
                "http://x/p/1".into()
            },
            instruction: "buy".into(),
            has_search_bar: false,
            clickables: if done {
                Vec::new()
            } else {
                vec!["a".into(), "b".into(), "c".into()]
            },
            elements: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Env for Instant3 {
    async fn reset(&mut self, _t: TaskRef, _s: u64) -> env::Result<Observation> {
        self.path.clear();
        self.steps = 0;
        self.obs = Some(self.page());
        Ok(self.page())
    }
    async fn step(&mut self, action: &str) -> env::Result<Step> {
        self.path.push(action.as_bytes()[6]);
        self.steps += 1;
        let done = self.path.len() >= 5;
        self.obs = Some(self.page());
        Ok(Step {
            observation: self.page(),
            reward: f64::from(u8::from(done && self.path.iter().all(|&b| b == b'b'))),
            terminated: done,
            truncated: false,
            info: StepInfo {
                steps: self.steps,
                ..StepInfo::default()
            },
        })
    }
    fn observation(&self) -> Option<&Observation> {
        self.obs.as_ref()
    }
    // WebShop-shaped URLs (`…/done/…` when finished).
    fn page_kind(&self, obs: &Observation) -> agentq::env::PageKind {
        agentq::env::sites::webshop::page_kind_of_url(&obs.url)
    }
    fn snapshot(&self) -> env::Result<Snapshot> {
        Ok(Snapshot {
            goal: 0,
            seed: 0,
            url: String::from_utf8(self.path.clone()).unwrap_or_default(),
            steps: self.steps,
            terminated: self.path.len() >= 5,
            truncated: false,
            reward: 0.0,
            visited: Vec::new(),
        })
    }
    async fn restore(&mut self, s: &Snapshot) -> env::Result<Observation> {
        self.path = s.url.as_bytes().to_vec();
        self.steps = s.steps;
        self.obs = Some(self.page());
        Ok(self.page())
    }
}

fn meta() -> EpisodeMeta {
    EpisodeMeta {
        env: "webshop-v0".into(),
        data_hash: String::new(),
        driver: "inproc".into(),
        obs_mode: ObsMode::Text,
        max_steps: 15,
        k: 3,
    }
}

fn cfg() -> MctsConfig {
    MctsConfig {
        iterations: 20,
        k: 3,
        ..MctsConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("webshop-fixtures");
    let store = Arc::new(Store::new(Arc::new(
        Catalog::load_dir(&dir).expect("committed fixtures load"),
    )));
    let mut env = in_process(
        router(AppState::new(store)),
        EnvConfig {
            max_steps: 15,
            ..EnvConfig::default()
        },
    );
    let (meta, cfg) = (meta(), cfg());
    let task = |i: usize| TaskRef {
        split: Some(agentq::env::Split::Test),
        index: i,
    };
    // Shape of one search (deterministic): expansions, env steps and restores.
    let probe = rt
        .block_on(mcts::search(
            &mut env,
            &Greedy,
            &ProposalOrder,
            &meta,
            task(0),
            0,
            &cfg,
        ))
        .unwrap();
    eprintln!(
        "store search (T=20, K=3, depth cap 10): {} expansions, {} env steps, {} restores, {} purchases, {} nodes",
        probe.expansions,
        probe.env_steps,
        probe.restores,
        probe.purchases,
        probe.tree.nodes.len()
    );
    // Where a store search spends its env time: buy steps (reward computed) vs the others.
    let (mut buy, mut other) = ((0.0, 0usize), (0.0, 0usize));
    let mut seen = std::collections::HashSet::new();
    for e in &probe.rollouts {
        for s in &e.steps {
            // Tree steps repeat across rollouts: count each (url, action) once.
            if !seen.insert((s.url.clone(), s.action.clone(), s.index)) {
                continue;
            }
            let slot = if s.terminated { &mut buy } else { &mut other };
            slot.0 += s.timings.env_ms;
            slot.1 += 1;
        }
    }
    eprintln!(
        "env time per step: buy {:.3} ms ({} steps), other {:.3} ms ({} steps); search wall {:.1} ms",
        buy.0 / buy.1.max(1) as f64,
        buy.1,
        other.0 / other.1.max(1) as f64,
        other.1,
        probe.wall_ms
    );
    let mut g = c.benchmark_group("mcts");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(8));
    g.throughput(Throughput::Elements(probe.expansions as u64));
    // A new (task, seed) per search: the store allocates session ids by scanning those of
    // the same (goal, seed), so repeating one task thousands of times would measure that
    // scan (see docs/benchmarks.md).
    let mut i = 0usize;
    g.bench_function("store_search_expansions", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                rt.block_on(mcts::search(
                    &mut env,
                    &Greedy,
                    &ProposalOrder,
                    &meta,
                    task(i % 500),
                    1 + (i / 500) as u64,
                    &cfg,
                ))
                .unwrap(),
            )
        })
    });
    let mut fake = Instant3::default();
    let probe = rt
        .block_on(mcts::search(
            &mut fake,
            &Greedy,
            &ProposalOrder,
            &meta,
            task(0),
            0,
            &cfg,
        ))
        .unwrap();
    g.throughput(Throughput::Elements(probe.expansions as u64));
    g.bench_function("instant_env_search_expansions", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(mcts::search(
                    &mut fake,
                    &Greedy,
                    &ProposalOrder,
                    &meta,
                    task(0),
                    0,
                    &cfg,
                ))
                .unwrap(),
            )
        })
    });
    // The env operations a search is made of.
    rt.block_on(env.reset(task(0), 0)).unwrap();
    let first = rt.block_on(env.step("search[a pack of shoes]")).unwrap();
    let item = first.observation.clickables[2].clone();
    let at_results = env.snapshot().unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("env_snapshot", |b| {
        b.iter(|| black_box(env.snapshot().unwrap()))
    });
    g.bench_function("env_restore", |b| {
        b.iter(|| black_box(rt.block_on(env.restore(&at_results)).unwrap()))
    });
    g.bench_function("env_restore_then_click", |b| {
        b.iter(|| {
            rt.block_on(env.restore(&at_results)).unwrap();
            black_box(rt.block_on(env.step(&format!("click[{item}]"))).unwrap())
        })
    });
    g.finish();
    // A plain wall-clock figure over several tasks (for docs/benchmarks.md).
    let t = Instant::now();
    let mut n = 0;
    for i in 0..100 {
        n += rt
            .block_on(mcts::search(
                &mut env,
                &Greedy,
                &ProposalOrder,
                &meta,
                task(i),
                1_000_000,
                &cfg,
            ))
            .unwrap()
            .expansions;
    }
    let s = t.elapsed().as_secs_f64();
    eprintln!(
        "100 store searches (test:0..100): {n} expansions in {s:.3} s = {:.0} expansions/s",
        n as f64 / s
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
