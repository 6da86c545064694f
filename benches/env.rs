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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("webshop-fixtures");
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
            .take(100)
            .map(|g| format!("search[{}]", g.instruction_text))
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
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(rt.block_on(env.step(&queries[i])).unwrap())
            })
        });
        // click: results → item → < prev → results …; two clicks per iteration.
        let first = rt.block_on(env.step(&queries[0])).unwrap();
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
                let futs = envs.iter_mut().map(|e| e.step("click[next >]"));
                futures_join_all(futs).await
            })
        })
    });
    g.finish();
}

async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll all concurrently via a local set of pinned futures.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("all ready")));
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
