//! Env benches: in-process `step(search)` and `step(click)` on the committed fixtures and a
//! generated 50,000-product catalog, and HTTP throughput of the store server under a bounded
//! loopback load (`cargo bench --bench env`).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use agentq::env::drivers::{http, in_process};
use agentq::env::{Env, EnvConfig, TaskRef};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::{fixtures, Catalog};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn stores() -> Vec<(&'static str, Arc<Store>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("webshop-fixtures");
    let default = Catalog::load_dir(&dir).expect("committed fixtures load");
    let big = fixtures::generate(50_000, 2_000, 7).expect("generate 50k catalog");
    vec![
        ("fixtures", Arc::new(Store::new(Arc::new(default)))),
        ("50k", Arc::new(Store::new(Arc::new(big)))),
    ]
}

fn config() -> EnvConfig {
    EnvConfig {
        max_steps: usize::MAX,
        ..EnvConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, store) in stores() {
        let queries: Vec<String> = store
            .catalog()
            .goals()
            .iter()
            .map(|g| g.instruction_text.clone())
            .collect();
        let mut env = in_process(router(AppState::new(store.clone())), config());
        rt.block_on(env.reset(
            TaskRef {
                split: None,
                index: 0,
            },
            0,
        ))
        .unwrap();
        let mut g = c.benchmark_group(format!("env/{name}"));
        g.bench_function("inproc_step_search", |b| {
            // A fresh token per step (it matches nothing) keeps every search a cache miss.
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let q = format!("search[{} zq{i}]", queries[i % queries.len()]);
                let s = rt.block_on(env.step(&q)).unwrap();
                assert!(s.info.error.is_none(), "{:?}", s.info);
                black_box(s)
            })
        });
        // click: results → item → < prev → results …; two clicks per iteration.
        let first = rt
            .block_on(env.step(&format!("search[{}]", queries[0])))
            .unwrap();
        let asin = first.observation.clickables[2].clone();
        let to_item = format!("click[{asin}]");
        g.throughput(Throughput::Elements(2));
        g.bench_function("inproc_step_click", |b| {
            b.iter(|| {
                black_box(rt.block_on(env.step(&to_item)).unwrap());
                black_box(rt.block_on(env.step("click[< prev]")).unwrap())
            })
        });
        g.finish();
    }

    // HTTP: a bounded loopback load of 64 concurrent episodes' steps per iteration.
    let store = stores().remove(0).1;
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(agentq::store::http::serve(listener, AppState::new(store)));
        format!("http://{addr}")
    });
    let mut envs: Vec<_> = (0..64)
        .map(|i| {
            let mut e = http(&base, config()).unwrap();
            rt.block_on(e.reset(
                TaskRef {
                    split: None,
                    index: i,
                },
                0,
            ))
            .unwrap();
            rt.block_on(e.step("search[office chair]")).unwrap();
            e
        })
        .collect();
    let mut g = c.benchmark_group("env/http");
    g.sample_size(20);
    g.throughput(Throughput::Elements(64));
    g.bench_function("http_step_click_64_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = envs
                    .drain(..)
                    .map(|mut e| {
                        tokio::spawn(async move {
                            e.step("click[next >]").await.unwrap();
                            e
                        })
                    })
                    .collect();
                for t in tasks {
                    envs.push(t.await.unwrap());
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
