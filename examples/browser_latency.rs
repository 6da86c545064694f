//! Browser-driver latency: median per-action latency and episode time of scripted perfect
//! purchases through headless Chromium (and the in-process driver for comparison).
//!
//! `cargo run --release --features browser --example browser_latency [EPISODES]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentq::env::browser::{browser, BrowserConfig};
use agentq::env::drivers::in_process;
use agentq::env::sites::webshop::perfect_actions;
use agentq::env::{Env, EnvConfig, TaskRef};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;

fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

async fn episodes<E: Env>(env: &mut E, cat: &Catalog, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut steps, mut eps) = (Vec::new(), Vec::new());
    let goals: Vec<usize> = (0..200)
        .filter(|&g| perfect_actions(cat, g).is_some())
        .take(n)
        .collect();
    for g in goals {
        let actions = perfect_actions(cat, g).expect("filtered");
        let t0 = Instant::now();
        env.reset(
            TaskRef {
                split: None,
                index: g,
            },
            0,
        )
        .await
        .expect("reset");
        for a in &actions {
            let t = Instant::now();
            env.step(a).await.expect("step");
            steps.push(t.elapsed());
        }
        eps.push(t0.elapsed());
    }
    (steps, eps)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cat = Catalog::load_dir(&root.join("webshop-fixtures")).expect("fixtures");
    let store = Arc::new(Store::new(Arc::new(cat)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(agentq::store::http::serve(
        listener,
        AppState::new(store.clone()),
    ));
    let config = EnvConfig {
        max_steps: 30,
        ..EnvConfig::default()
    };

    let t = Instant::now();
    let mut env = browser(
        &format!("http://{addr}"),
        config.clone(),
        BrowserConfig::default(),
    )
    .expect("browser env");
    // Warm-up episode (starts chromedriver + Chromium, cold renderer).
    episodes(&mut env, store.catalog(), 1).await;
    let start = t.elapsed();
    let (mut steps, mut eps) = episodes(&mut env, store.catalog(), n).await;
    env.transport().shutdown().await;
    println!(
        "browser: {} episodes, {} actions: median action {:.1} ms, median episode {:.1} ms \
         (first episode incl. browser start {:.0} ms)",
        eps.len(),
        steps.len(),
        median(&mut steps),
        median(&mut eps),
        start.as_secs_f64() * 1e3
    );

    let mut inproc = in_process(router(AppState::new(store.clone())), config);
    let (mut steps, mut eps) = episodes(&mut inproc, store.catalog(), n).await;
    println!(
        "in-process: median action {:.3} ms, median episode {:.3} ms",
        median(&mut steps),
        median(&mut eps)
    );
}
