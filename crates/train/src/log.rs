//! The training metrics log: one JSON object per optimiser step, with TRL's metric names
//! (`loss`, `rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`,
//! `logps/chosen`, `logps/rejected`, `grad_norm`, `learning_rate`), appended line by line so
//! a crash loses at most the line being written.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One logged step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Optimiser step (1-based).
    pub step: u64,
    /// Fractional epoch.
    pub epoch: f64,
    /// Metrics by TRL name.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, f64>,
}

/// Appends entries to a JSONL file.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens (appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<MetricsLog> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry (one write of one line).
    pub fn write(&mut self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

/// Reads a metrics log, skipping a cut last line.
pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(l) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), i + 1),
                ))
            }
        }
    }
    Ok(out)
}

/// The series of one metric: (step, value).
pub fn series(entries: &[Entry], metric: &str) -> Vec<(f64, f64)> {
    entries
        .iter()
        .filter_map(|e| e.metrics.get(metric).map(|&v| (e.step as f64, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_cut_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log/train.jsonl");
        let mut log = MetricsLog::open(&p).unwrap();
        for s in 1..=3 {
            log.write(&Entry {
                step: s,
                epoch: s as f64 / 3.0,
                metrics: [("loss".to_string(), 1.0 / s as f64)].into_iter().collect(),
            })
            .unwrap();
        }
        drop(log);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend(b"{\"step\":4,\"ep");
        std::fs::write(&p, &bytes).unwrap();
        let e = read(&p).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(series(&e, "loss")[2], (3.0, 1.0 / 3.0));
        let line = std::fs::read_to_string(&p).unwrap();
        assert!(
            line.starts_with(r#"{"step":1,"epoch":0.3333333333333333,"loss":1.0}"#),
            "{line}"
        );
    }
}
