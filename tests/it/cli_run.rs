//! `agentq run` and `agentq serve` end to end: scripted purchases through both drivers print
//! identical JSON; hostile actions are no-ops with clear errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::{agentq, ok_stdout, root};

fn perfect_script() -> Vec<String> {
    let cat = agentq::store::Catalog::load_dir(&crate::util::fixtures_dir()).unwrap();
    agentq::env::sites::webshop::perfect_actions(&cat, 0).unwrap()
}

fn run_args(extra: &[&str], actions: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["run", "--task", "test:0", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--actions".into());
    v.extend(actions.iter().cloned());
    v
}

/// A running `agentq serve` (killed on drop) and its base URL.
pub struct Server(std::process::Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `agentq serve` on a free loopback port.
pub fn serve() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentq"))
        .current_dir(root())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    Server(child, url)
}

#[test]
fn perfect_purchase_prints_reward_one_on_both_drivers() {
    let actions = perfect_script();
    let args = run_args(&[], &actions);
    let a = ok_stdout(&agentq(
        &root(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["reward"].as_f64(), Some(1.0));
    assert_eq!(v["terminated"].as_bool(), Some(true));

    let server = serve();
    let args = run_args(&["--driver", "http", "--url", &server.1], &actions);
    let b = ok_stdout(&agentq(
        &root(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(a, b, "in-process and HTTP runs must print identical JSON");
    // A second HTTP episode on the same server observes the same thing.
    let c = ok_stdout(&agentq(
        &root(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(b, c);
}

#[test]
fn hostile_actions_are_no_ops_with_errors() {
    let long = format!("search[{}]", "x".repeat(10_000));
    let actions: Vec<String> = [
        long.as_str(),
        "search[]",
        "click[nonexistent]",
        "search[foo [bar]]",
        "click[]]]",
        "ünïcödé[☃]",
        "search[日本語 ☃ café]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = ok_stdout(&agentq(
        &root(),
        &run_args(&[], &actions)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v["steps"].as_array().unwrap();
    for s in &steps[..6] {
        assert!(s["info"]["error"].is_string(), "{s}");
        assert_eq!(s["reward"].as_f64(), Some(0.0));
    }
    // A unicode search is a valid search.
    assert!(steps[6]["info"]["error"].is_null());
    assert!(steps[6]["observation"].as_str().unwrap().contains("Page 1"));
}

#[test]
fn unknown_task_is_a_clear_error() {
    let out = agentq(
        &root(),
        &["run", "--task", "test:9999", "--actions", "click[x]"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn play_reads_actions_from_stdin_until_the_purchase() {
    use std::io::Write;
    let actions = perfect_script();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentq"))
        .current_dir(root())
        .args(["play", "--task", "test:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "click[nonexistent]").unwrap();
        for a in &actions {
            writeln!(stdin, "{a}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = ok_stdout(&out);
    assert!(text.contains("no-op"), "{text}");
    assert!(
        text.contains("episode over: reward 1 (purchased)"),
        "{text}"
    );
}
