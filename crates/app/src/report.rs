//! A run directory as one self-contained `report.html`: its episodes, its search trees
//! (`trees/*.json`) and the training curves of any `log.jsonl` below it.

use std::path::{Path, PathBuf};

use agentq_trajectory::{self as trajectory, report};

use crate::error::{Context as _, Result};

/// Search trees stored in `RUN/trees/*.json` (written by MCTS runs), by file name.
pub fn load_trees(dir: &Path) -> Result<Vec<(String, report::TreeNode)>> {
    let tdir = dir.join(crate::search::TREES_DIR);
    let mut out = Vec::new();
    if !tdir.is_dir() {
        return Ok(out);
    }
    for f in json_files(&tdir)? {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        let root: report::TreeNode = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a search tree", f.display()))?;
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, root));
    }
    Ok(out)
}

/// The `*.json` files of a directory, sorted by name.
pub(crate) fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Training logs (`log.jsonl`) anywhere under the run directory (two levels deep), as line
/// series of TRL's metrics.
pub fn load_training_series(dir: &Path) -> Result<Vec<report::Series>> {
    let mut logs = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && depth < 2 {
                stack.push((p, depth + 1));
            } else if p.file_name().is_some_and(|n| n == "log.jsonl") {
                logs.push(p);
            }
        }
    }
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let entries = agentq_train::log::read(&log)
            .with_context(|| format!("reading training log {}", log.display()))?;
        let rel = log
            .parent()
            .and_then(|p| p.strip_prefix(dir).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for metric in [
            "loss",
            "rewards/margins",
            "rewards/accuracies",
            "logps/chosen",
            "logps/rejected",
        ] {
            let points = agentq_train::log::series(&entries, metric);
            if !points.is_empty() {
                out.push(report::Series {
                    title: format!("{rel} {metric}"),
                    x_label: "step".into(),
                    points,
                });
            }
        }
    }
    Ok(out)
}

/// Writes `report.html` for a run directory (to `out`, default `RUN/report.html`); returns
/// its path.
pub fn write_report(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let run = trajectory::load(dir).with_context(|| format!("reading run {}", dir.display()))?;
    let extras = report::Extras {
        trees: load_trees(dir)?,
        series: load_training_series(dir)?,
    };
    let html = report::render(&run, &extras);
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(trajectory::REPORT_FILE));
    trajectory::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
