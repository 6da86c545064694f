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

#[test]
fn store_depends_on_nothing_else_in_the_crate() {
    for (p, s) in sources() {
        if !p.to_string_lossy().contains("/src/store/") {
            continue;
        }
        for (i, line) in s.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("//") {
                continue;
            }
            if let Some(rest) = l.split("crate::").nth(1) {
                assert!(
                    rest.starts_with("store"),
                    "{}:{}: store must not depend on crate::{rest}",
                    p.display(),
                    i + 1
                );
            }
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
