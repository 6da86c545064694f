//! The browser driver (feature `browser`): conformance, parity with the in-process driver,
//! and recovery after chromedriver is killed mid-episode. Skips (with a message) when
//! Chromium or chromedriver is missing, except under `CI=true`, where it fails.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use agentq::env::browser::{browser, BrowserConfig, BrowserEnv};
use agentq::env::check::{check_env, transcript};
use agentq::env::drivers::in_process;
use agentq::env::sites::webshop::{conformance_plan, perfect_actions};
use agentq::env::{Env, EnvConfig, TaskRef};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;

/// At most two browser sessions at a time.
static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn store() -> Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let cat = Catalog::load_dir(&crate::util::fixtures_dir()).expect("fixtures");
            Arc::new(Store::new(Arc::new(cat)))
        })
        .clone()
}

fn config(max_steps: usize) -> EnvConfig {
    EnvConfig {
        max_steps,
        ..EnvConfig::default()
    }
}

fn available() -> bool {
    let missing: Vec<_> = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "browser tests skipped: {missing:?} missing (apt-get install chromium chromium-driver)"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    false
}

async fn spawn_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(agentq::store::http::serve(listener, AppState::new(store())));
    format!("http://{addr}")
}

fn env(base: &str, max_steps: usize) -> BrowserEnv {
    browser(base, config(max_steps), BrowserConfig::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_driver_conforms() {
    if !available() {
        return;
    }
    let _permit = SESSIONS.acquire().await.unwrap();
    let base = spawn_server().await;
    let s = store();
    check_env(&conformance_plan(s.catalog()).unwrap(), 8, || env(&base, 8))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_and_in_process_transcripts_are_identical() {
    if !available() {
        return;
    }
    let _permit = SESSIONS.acquire().await.unwrap();
    let base = spawn_server().await;
    let s = store();
    let cat = s.catalog();
    let r = router(AppState::new(s.clone()));
    let mut b = env(&base, 30);
    let mut navigations = 0;
    for goal in [0usize, 3] {
        let mut actions = perfect_actions(cat, goal).unwrap();
        actions.insert(1, "click[next >]".into());
        actions.insert(2, "click[< prev]".into());
        actions.insert(4, "click[description]".into());
        actions.insert(5, "click[< prev]".into());
        actions.insert(6, "click[nonexistent]".into());
        // Every action but the invalid click loads a page.
        navigations += actions.len() - 1;
        let task = TaskRef {
            split: None,
            index: goal,
        };
        let a = transcript(&mut in_process(r.clone(), config(30)), task, 1, &actions)
            .await
            .unwrap();
        let t = transcript(&mut b, task, 1, &actions).await.unwrap();
        assert_eq!(
            a, t,
            "goal {goal}: in-process and browser transcripts differ"
        );
        assert_eq!(t.last().unwrap().reward, 1.0);
    }
    // Every search and click went through the real DOM (typing into the search box,
    // clicking elements), none through the URL-load fallback.
    assert_eq!(b.transport().dom_action_count(), navigations);
    b.transport().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_recovers_after_chromedriver_is_killed() {
    if !available() {
        return;
    }
    let _permit = SESSIONS.acquire().await.unwrap();
    let base = spawn_server().await;
    let s = store();
    let cat = s.catalog();
    let goal = (0..50)
        .find(|&g| !cat.goals()[g].goal_options.is_empty())
        .unwrap();
    let actions = perfect_actions(cat, goal).unwrap();
    let task = TaskRef {
        split: None,
        index: goal,
    };
    let mut e = env(&base, 15);
    e.reset(task, 0).await.unwrap();
    let mut last = None;
    for a in &actions[..2] {
        let st = e.step(a).await.unwrap();
        last = Some((e.snapshot().unwrap(), st.observation));
    }
    let (snap, obs) = last.unwrap();
    let pid = e
        .transport()
        .driver_pid()
        .await
        .expect("spawned chromedriver");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let err = e
        .step(&actions[2])
        .await
        .expect_err("dead chromedriver must be Err");
    assert!(err.to_string().contains("browser"), "{err}");
    // A fresh browser continues from the last snapshot.
    let restored = e.restore(&snap).await.unwrap();
    assert_eq!(restored.text, obs.text);
    assert_ne!(e.transport().driver_pid().await, Some(pid));
    let mut reward = 0.0;
    for a in &actions[2..] {
        reward = e.step(a).await.unwrap().reward;
    }
    assert_eq!(reward, 1.0);
    e.transport().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_site_navigation_is_undone_and_reported() {
    use agentq::env::browser::BrowserTransport;
    use agentq::env::web::Transport;
    use agentq::env::Error;
    use axum::response::{Html, Redirect};
    if !available() {
        return;
    }
    let _permit = SESSIONS.acquire().await.unwrap();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                Html("<html><body data-page=\"home\" data-path=\"/\">home</body></html>")
            }),
        )
        .route(
            "/away",
            axum::routing::get(|| async { Redirect::temporary("http://shop.example.test/x") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = BrowserTransport::new(&format!("http://{addr}"), BrowserConfig::default()).unwrap();
    assert_eq!(t.get("/").await.unwrap().path, "/");
    match t.get("/away").await {
        Err(Error::OffSite(u)) => assert!(u.contains("shop.example.test"), "{u}"),
        other => panic!("expected OffSite, got {:?}", other.map(|f| f.path)),
    }
    assert_eq!(t.offsite_count(), 1);
    // Back on the last good page, and the browser still works.
    assert_eq!(t.get("/").await.unwrap().path, "/");
    t.shutdown().await;
}

/// `agentq eval --driver browser` records a screenshot per step that the report shows, and
/// the recorded episodes replay identically on the in-process driver.
#[test]
fn browser_eval_records_screenshots_and_replays_in_process() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = crate::util::agentq(
        &crate::util::root(),
        &[
            "eval",
            "--agent",
            "oracle",
            "--driver",
            "browser",
            "--tasks",
            "0..2",
            "--parallel",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--report",
            "--json",
        ],
    );
    let s: serde_json::Value = serde_json::from_str(&crate::util::ok_stdout(&o)).unwrap();
    assert_eq!(s["success_rate"], 100.0, "{s}");
    let (eps, _) =
        agentq::trajectory::read_episodes(&out.join(agentq::trajectory::EPISODES_FILE)).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for e in &eps {
        assert_eq!(e.header.driver, "browser");
        for st in &e.steps {
            let shot = st.screenshot.as_deref().expect("a screenshot per step");
            assert!(
                !Path::new(shot).is_absolute(),
                "{shot} is relative to the run"
            );
            assert!(out.join(shot).is_file(), "{shot} exists");
            assert!(html.contains(shot), "report shows {shot}");
        }
        assert!(out
            .join(e.summary.final_screenshot.as_deref().unwrap())
            .is_file());
    }
    crate::util::ok_stdout(&crate::util::agentq(
        &crate::util::root(),
        &["replay", out.to_str().unwrap(), "--driver", "inproc"],
    ));
}
