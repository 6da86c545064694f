//! Helpers shared by the integration tests: repository paths and running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    // The `agentq` package is crates/cli; the repository root is two levels up.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cli sits two levels below the repository root")
        .to_path_buf()
}

/// The committed fixtures directory.
pub fn fixtures_dir() -> PathBuf {
    root().join("webshop-fixtures")
}

/// Runs the `agentq` binary with `args` in `cwd`, with agentq/OpenAI env vars removed.
pub fn agentq(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentq"));
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTQ_") || k.starts_with("OPENAI_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("running the agentq binary")
}

/// Asserts success and returns stdout as a string.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "agentq failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}
