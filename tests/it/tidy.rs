//! Code invariants of ARCHITECTURE.md, checked on the source tree.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = crate::util::root();
    let mut files = Vec::new();
    for d in ["crates", "tests", "benches", "examples"] {
        rust_files(&root.join(d), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let s = std::fs::read_to_string(&p).unwrap();
            (p, s)
        })
        .collect()
}

#[test]
fn every_file_has_a_header() {
    for (p, s) in sources() {
        assert!(
            s.trim_start().starts_with("//!"),
            "{} must start with a `//!` header saying what it is for",
            p.display()
        );
    }
}

/// `cargo metadata` of the workspace (`--no-deps`: members only; with deps: the resolve).
fn metadata(no_deps: bool) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(crate::util::root());
    if no_deps {
        cmd.arg("--no-deps");
    } else {
        // This host's packages only (others' may not be downloaded).
        let v = std::process::Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("running rustc -vV");
        let v = String::from_utf8_lossy(&v.stdout).to_string();
        let host = v
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host");
        cmd.args(["--filter-platform", host]);
    }
    let out = cmd.output().expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

/// The `crate-graph` block of ARCHITECTURE.md: crate → its workspace dependencies.
fn documented_graph() -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(crate::util::root().join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```crate-graph\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("ARCHITECTURE.md has a ```crate-graph block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, deps) = l.split_once("->").expect("`crate -> deps` lines");
            let mut deps: Vec<String> = deps
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect();
            deps.sort();
            (name.trim().to_string(), deps)
        })
        .collect()
}

#[test]
fn the_crate_graph_is_the_documented_one() {
    let meta = metadata(true);
    let packages = meta["packages"].as_array().unwrap();
    let members: std::collections::BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut actual = std::collections::BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let mut deps: Vec<String> = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null() && members.contains(d["name"].as_str().unwrap()))
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        deps.sort();
        deps.dedup();
        actual.insert(name.to_string(), deps);
        // Only the binary crate may use the CLI-only dependencies.
        if name != "agentq" {
            for d in p["dependencies"].as_array().unwrap() {
                let dn = d["name"].as_str().unwrap();
                assert!(
                    !(d["kind"].is_null() && ["anyhow", "clap", "indicatif"].contains(&dn)),
                    "{name} depends on {dn}: only the CLI crate may"
                );
            }
        }
    }
    assert_eq!(
        actual,
        documented_graph(),
        "the workspace's crate graph (left) differs from ARCHITECTURE.md's crate-graph block"
    );
}

#[test]
fn site_and_env_crates_build_without_the_model_stack() {
    let meta = metadata(false);
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let name_of = |id: &str| -> String {
        meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    // Normal (non-dev, non-build) dependency closure of a package, over all features the
    // workspace enables except the ones a test build of that crate alone would not.
    let closure = |root: &str| -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        let start = nodes
            .iter()
            .find(|n| name_of(n["id"].as_str().unwrap()) == root)
            .unwrap();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for d in n["deps"].as_array().unwrap() {
                let normal = d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null());
                let id = d["pkg"].as_str().unwrap();
                if normal && seen.insert(name_of(id)) {
                    stack.push(nodes.iter().find(|x| x["id"] == id).unwrap());
                }
            }
        }
        seen
    };
    for krate in ["agentq-webshop", "agentq-env"] {
        let deps = closure(krate);
        for banned in ["candle-core", "candle-nn", "tokenizers"] {
            assert!(
                !deps.contains(banned),
                "{krate} pulls in {banned}: the site and env crates must build without the model stack"
            );
        }
    }
}

#[test]
fn only_cli_prints_or_uses_anyhow() {
    for (p, s) in sources() {
        let path = p.to_string_lossy();
        if !path.contains("/crates/") || path.contains("/crates/cli/") {
            continue;
        }
        for (i, line) in s.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("//") {
                continue;
            }
            for bad in [
                "println!",
                "print!(",
                "eprintln!",
                "anyhow::",
                "std::env::var",
            ] {
                assert!(
                    !l.contains(bad),
                    "{}:{}: `{bad}` outside cli",
                    p.display(),
                    i + 1
                );
            }
        }
    }
}

#[test]
fn unsafe_code_lives_only_in_the_simd_kernels() {
    // The workspace denies `unsafe_code`; one module allows it for `std::arch`.
    let allowed = Path::new("crates/lm/src/cpu/simd.rs");
    let mut found = Vec::new();
    for (path, text) in sources() {
        let this = path.ends_with("tests/it/tidy.rs");
        if text.contains("allow(unsafe_code)") && !path.ends_with(allowed) && !this {
            found.push(path.display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "unsafe_code allowed outside {allowed:?}: {found:?}"
    );
    let simd = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(allowed),
    )
    .unwrap();
    assert!(simd.contains("#![allow(unsafe_code)]"));
    // every unsafe block says why it holds
    let blocks = simd.matches("unsafe {").count();
    let reasons = simd.matches("// SAFETY:").count();
    assert!(
        reasons >= blocks,
        "{blocks} unsafe blocks, {reasons} SAFETY comments"
    );
}
