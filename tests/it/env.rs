//! The Env API on the committed fixtures: conformance of the in-process and HTTP drivers,
//! parity between them, scripted purchases and their rewards.

use std::sync::{Arc, OnceLock};

use agentq::env::check::{check_env, transcript};
use agentq::env::drivers::{http, in_process};
use agentq::env::sites::webshop::{conformance_plan, perfect_actions, wrong_option_actions};
use agentq::env::{EnvConfig, TaskRef};
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;

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

async fn spawn_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(store());
    tokio::spawn(agentq::store::http::serve(listener, state));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_driver_conforms() {
    let s = store();
    let state = AppState::new(s.clone());
    let r = router(state);
    check_env(&conformance_plan(s.catalog()).unwrap(), 8, || {
        in_process(r.clone(), config(8))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_driver_conforms() {
    let base = spawn_server().await;
    let s = store();
    check_env(&conformance_plan(s.catalog()).unwrap(), 8, || {
        http(&base, config(8)).unwrap()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_give_identical_transcripts() {
    let base = spawn_server().await;
    let s = store();
    let cat = s.catalog();
    let r = router(AppState::new(s.clone()));
    for goal in [0usize, 3, 11] {
        let mut actions = perfect_actions(cat, goal).unwrap();
        actions.insert(1, "click[next >]".into());
        actions.insert(2, "click[< prev]".into());
        actions.insert(4, "click[description]".into());
        actions.insert(5, "click[< prev]".into());
        actions.insert(6, "click[nonexistent]".into());
        let task = TaskRef {
            split: None,
            index: goal,
        };
        let a = transcript(&mut in_process(r.clone(), config(30)), task, 1, &actions)
            .await
            .unwrap();
        let b = transcript(&mut http(&base, config(30)).unwrap(), task, 1, &actions)
            .await
            .unwrap();
        assert_eq!(a, b, "goal {goal}: in-process and HTTP transcripts differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_purchases_score_like_webshop() {
    let s = store();
    let cat = s.catalog();
    let r = router(AppState::new(s.clone()));
    let goal = (0..100)
        .find(|&g| wrong_option_actions(cat, g).is_some())
        .unwrap();
    let task = TaskRef {
        split: None,
        index: goal,
    };
    let perfect = perfect_actions(cat, goal).unwrap();
    let t = transcript(&mut in_process(r.clone(), config(15)), task, 0, &perfect)
        .await
        .unwrap();
    assert_eq!(t.last().unwrap().reward, 1.0);

    let wrong = wrong_option_actions(cat, goal).unwrap();
    let t = transcript(&mut in_process(r.clone(), config(15)), task, 0, &wrong)
        .await
        .unwrap();
    let g = &cat.goals()[goal];
    let p = cat.product(&g.asin).unwrap();
    let chosen = wrong[2]
        .trim_start_matches("click[")
        .trim_end_matches(']')
        .to_string();
    let expected = agentq::store::reward(p, g, p.price, &[chosen]).total;
    assert!(expected < 1.0);
    assert_eq!(t.last().unwrap().reward, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_references_outside_their_split_or_the_data_are_refused() {
    use agentq::env::Env;
    let mut env = in_process(router(AppState::new(store())), config(8));
    // test:500 would be the first dev task; it is an error naming the split, not that task.
    let err = env
        .reset("test:500".parse().unwrap(), 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test:500") && err.contains("500 tasks"),
        "{err}"
    );
    // Past the end of the task list: the site refuses to open the session.
    let n = store().catalog().goals().len();
    assert!(env
        .reset(
            TaskRef {
                split: None,
                index: n
            },
            0
        )
        .await
        .is_err());
    assert!(env
        .reset(
            TaskRef {
                split: None,
                index: n - 1
            },
            0
        )
        .await
        .is_ok());
}
