//! Episode records and run directories: the project's one stable on-disk format.
//!
//! An episode is a run of JSONL lines: one [`Header`], one [`StepRecord`] per step and one
//! [`Summary`]. Lines carry `"kind"` and the header carries [`SCHEMA_VERSION`]. A run
//! directory ([`RunDir`]) holds `run.json` (the configuration), `episodes.jsonl` (episodes
//! appended whole, one write each), `screenshots/`, `summary.json` and `report.html`.
//!
//! Crash safety: an append cut by a crash leaves a partial last line and perhaps an episode
//! without its summary; [`read_episodes`] reports both and keeps every complete episode, and
//! [`RunDir::open`] with `resume` rewrites the file atomically without them before appending.
//! Every other file is written atomically (temporary file + rename).
//!
//! `trajectory` depends on `env` for types only; it never runs an environment.

pub mod report;
pub mod stats;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use agentq_env::{ObsMode, RewardDetail, StepInfo};

/// Version of the episode line format. Readers accept this version only; a change that
/// breaks old readers bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// File names inside a run directory.
pub const RUN_FILE: &str = "run.json";
/// Episodes of a run (JSONL).
pub const EPISODES_FILE: &str = "episodes.jsonl";
/// Aggregate figures of a run.
pub const SUMMARY_FILE: &str = "summary.json";
/// Screenshots (browser driver).
pub const SCREENSHOTS_DIR: &str = "screenshots";
/// The self-contained HTML report.
pub const REPORT_FILE: &str = "report.html";

/// Errors of reading and writing trajectories.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Filesystem failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line that is not a valid record (not the cut last line of a file).
    #[error("{path}:{line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A run directory whose configuration does not match the requested one.
    #[error("{path}: {msg}")]
    Mismatch {
        /// The run directory.
        path: PathBuf,
        /// What differs.
        msg: String,
    },
}

impl Error {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The first line of an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Format version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// agentq version that wrote it.
    pub agentq_version: String,
    /// Episode id, unique within a run (e.g. `test:7/s0`).
    pub id: String,
    /// Env spec id (e.g. `webshop-v0`).
    pub env: String,
    /// SHA-256 of the catalog (products and goals).
    pub data_hash: String,
    /// Task (`test:7`).
    pub task: String,
    /// Absolute goal index.
    pub goal: usize,
    /// Episode seed.
    pub seed: u64,
    /// Driver: `inproc`, `http` or `browser`.
    pub driver: String,
    /// Observation mode the policy saw.
    pub obs_mode: ObsMode,
    /// Step limit.
    pub max_steps: usize,
    /// Policy (and model) description.
    pub policy: String,
    /// The goal instruction.
    pub instruction: String,
    /// The search tree this episode is a rollout of (MCTS), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// What a tree search recorded about this episode (typed), plus free-form settings.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// The role of an episode in a tree search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchRole {
    /// One iteration's path: tree steps, then the rollout.
    Rollout,
    /// The best-valued path of a tree: the search's answer for its task.
    Final,
}

/// A header's `extra` object: the tree-search fields, typed, and any other settings.
/// Fields are declared in key order, so the JSON reads as a sorted map did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    /// The search iteration that produced the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<usize>,
    /// The tree node the iteration expanded (its leaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<usize>,
    /// Purchases the whole search made (on a final path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchases: Option<usize>,
    /// Rollout or final path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<SearchRole>,
    /// The rollout a final path was taken from (its episode id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Steps of the path inside the tree (the rest is the rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_steps: Option<usize>,
    /// The terminal value the search backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Anything else (free-form).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Extra {
    /// Whether nothing is set (the header then has no `extra` key).
    pub fn is_empty(&self) -> bool {
        *self == Extra::default()
    }
}

/// One candidate action a policy proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// The action string.
    pub action: String,
    /// Its log-probability under the policy, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob: Option<f64>,
    /// Rank the critic gave it (0 = best), if ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critic_rank: Option<usize>,
    /// Value estimate (e.g. MCTS Q), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
}

/// Wall-clock time spent in a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Milliseconds the policy took to choose.
    pub policy_ms: f64,
    /// Milliseconds the environment took to apply the action.
    pub env_ms: f64,
}

/// One step: what the policy saw, what it did and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 0-based step index.
    pub index: usize,
    /// Observation the policy saw (in the header's mode), before the action.
    pub observation: String,
    /// URL of that page.
    pub url: String,
    /// Valid actions on that page.
    pub available_actions: Vec<String>,
    /// The action taken.
    pub action: String,
    /// The policy's thought, if it produced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<String>,
    /// The policy's raw output (LLM text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
    /// Why the raw output could not be parsed into an action (the policy then fell back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Candidates the policy proposed (best first), if more than the action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CandidateRecord>,
    /// Reward of the step.
    pub reward: f64,
    /// The episode ended with a purchase.
    pub terminated: bool,
    /// The episode hit the step limit.
    pub truncated: bool,
    /// Step info (error of an invalid action, reward breakdown on the purchase).
    pub info: StepInfo,
    /// Time spent.
    #[serde(default)]
    pub timings: Timings,
    /// Screenshot of the page the policy saw, relative to the run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
}

/// The last line of an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Total reward.
    pub reward: f64,
    /// Reward is exactly 1.0.
    pub success: bool,
    /// Steps taken.
    pub steps: usize,
    /// Ended with a purchase.
    pub terminated: bool,
    /// Ended at the step limit.
    pub truncated: bool,
    /// Steps whose action was invalid (a no-op with an error).
    pub invalid_actions: usize,
    /// Steps whose model output could not be parsed.
    #[serde(default)]
    pub parse_errors: usize,
    /// Observation after the last step.
    pub final_observation: String,
    /// URL after the last step.
    pub final_url: String,
    /// Screenshot of the final page, relative to the run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_screenshot: Option<String>,
    /// The site's reward breakdown of the terminal step, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_detail: Option<RewardDetail>,
    /// Wall-clock milliseconds of the episode.
    pub wall_ms: f64,
    /// Why the episode stopped early (policy or infrastructure failure), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// Episode start.
    Header(Header),
    /// A step.
    Step(StepRecord),
    /// Episode end.
    Summary(Summary),
}

/// A whole episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The header.
    pub header: Header,
    /// The steps, in order.
    pub steps: Vec<StepRecord>,
    /// The summary.
    pub summary: Summary,
}

impl Episode {
    /// The episode as JSONL bytes (header, steps, summary; newline-terminated).
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut put = |l: &Line| {
            // Serializing these plain structs cannot fail (no maps with non-string keys).
            serde_json::to_writer(&mut buf, l).expect("episode lines serialize");
            buf.push(b'\n');
        };
        put(&Line::Header(self.header.clone()));
        for s in &self.steps {
            put(&Line::Step(s.clone()));
        }
        put(&Line::Summary(self.summary.clone()));
        buf
    }

    /// The observation before step `i`, or the final one for `i == steps.len()`.
    pub fn observation(&self, i: usize) -> Option<&str> {
        if i == self.steps.len() {
            Some(&self.summary.final_observation)
        } else {
            self.steps.get(i).map(|s| s.observation.as_str())
        }
    }

    /// Recomputes the summary's step-derived fields from the steps (used by writers).
    pub fn tally(steps: &[StepRecord]) -> (f64, usize, bool, bool, usize) {
        let reward = steps.iter().map(|s| s.reward).sum();
        let terminated = steps.last().is_some_and(|s| s.terminated);
        let truncated = steps.last().is_some_and(|s| s.truncated);
        let invalid = steps.iter().filter(|s| s.info.error.is_some()).count();
        (reward, steps.len(), terminated, truncated, invalid)
    }
}

/// What was wrong at the end of a file that was cut by a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// The last line was incomplete (no newline, not valid JSON) and was ignored.
    pub partial_line: Option<usize>,
    /// Ids of episodes that started but have no summary (ignored).
    pub incomplete: Vec<String>,
}

impl Damage {
    /// Nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.partial_line.is_none() && self.incomplete.is_empty()
    }
}

/// Reads every complete episode of a JSONL file. A cut last line and episodes without a
/// summary are reported in [`Damage`], not errors; anything else malformed is an error
/// naming the line.
pub fn read_episodes(path: &Path) -> Result<(Vec<Episode>, Damage)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_episodes(path, &bytes)
}

/// [`read_episodes`] on bytes (`path` names them in errors).
pub fn parse_episodes(path: &Path, bytes: &[u8]) -> Result<(Vec<Episode>, Damage)> {
    let mut damage = Damage {
        partial_line: None,
        incomplete: Vec::new(),
    };
    let mut episodes = Vec::new();
    let mut cur: Option<(Header, Vec<StepRecord>)> = None;
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let n = lines.len();
    for (i, raw) in lines.into_iter().enumerate() {
        let lineno = i + 1;
        let is_last = i + 1 == n;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let malformed = |msg: String| Error::Malformed {
            path: path.to_path_buf(),
            line: lineno,
            msg,
        };
        let line: Line = match serde_json::from_slice(raw) {
            Ok(l) => l,
            Err(e) => {
                if is_last && !ends_with_newline {
                    damage.partial_line = Some(lineno);
                    break;
                }
                return Err(malformed(e.to_string()));
            }
        };
        match line {
            Line::Header(h) => {
                if h.schema != SCHEMA_VERSION {
                    return Err(malformed(format!(
                        "schema version {} (this agentq reads {SCHEMA_VERSION})",
                        h.schema
                    )));
                }
                if let Some((old, _)) = cur.take() {
                    damage.incomplete.push(old.id);
                }
                cur = Some((h, Vec::new()));
            }
            Line::Step(s) => match cur.as_mut() {
                Some((_, steps)) => {
                    if s.index != steps.len() {
                        return Err(malformed(format!(
                            "step index {} where {} was expected",
                            s.index,
                            steps.len()
                        )));
                    }
                    steps.push(s)
                }
                None => return Err(malformed("step line before any header".into())),
            },
            Line::Summary(summary) => match cur.take() {
                Some((header, steps)) => episodes.push(Episode {
                    header,
                    steps,
                    summary,
                }),
                None => return Err(malformed("summary line before any header".into())),
            },
        }
    }
    if let Some((h, _)) = cur {
        damage.incomplete.push(h.id);
    }
    Ok((episodes, damage))
}

/// Writes episodes to a JSONL file atomically.
pub fn write_episodes(path: &Path, episodes: &[Episode]) -> Result<()> {
    let mut buf = Vec::new();
    for e in episodes {
        buf.extend(e.to_jsonl());
    }
    write_atomic(path, &buf)
}

/// Writes bytes to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    agentq_core::fs::write_atomic(path, bytes).map_err(|e| Error::Io {
        path: e.path,
        source: e.source,
    })
}

/// The configuration of a run (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Format version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// agentq version that created the run.
    pub agentq_version: String,
    /// Run name (the directory name).
    pub name: String,
    /// What produced it: `eval`, `collect`, `demos` …
    pub command: String,
    /// Env spec id.
    pub env: String,
    /// Catalog hash.
    pub data_hash: String,
    /// Driver.
    pub driver: String,
    /// Policy description.
    pub policy: String,
    /// Base seed.
    pub seed: u64,
    /// The tasks, in order.
    pub tasks: Vec<String>,
    /// Other settings (free-form, recorded for reproduction).
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl RunConfig {
    /// The fields a resumed run must share with the original (everything but the task list
    /// and free-form settings, which may grow).
    fn compatible(&self, other: &RunConfig) -> std::result::Result<(), String> {
        let pairs = [
            ("env", &self.env, &other.env),
            ("data_hash", &self.data_hash, &other.data_hash),
            ("driver", &self.driver, &other.driver),
            ("policy", &self.policy, &other.policy),
            ("command", &self.command, &other.command),
        ];
        for (k, a, b) in pairs {
            if a != b {
                return Err(format!("{k} was {a:?} and is now {b:?}"));
            }
        }
        if self.seed != other.seed {
            return Err(format!("seed was {} and is now {}", self.seed, other.seed));
        }
        Ok(())
    }
}

/// Aggregate figures of a set of episodes (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Episodes.
    pub episodes: usize,
    /// 100 × mean reward.
    pub score: f64,
    /// Percentage of episodes with reward 1.0.
    pub success_rate: f64,
    /// Mean steps per episode.
    pub mean_steps: f64,
    /// Percentage of steps whose action was invalid.
    pub invalid_action_rate: f64,
    /// Percentage of steps whose model output could not be parsed.
    #[serde(default)]
    pub parse_error_rate: f64,
    /// Episodes that ended with a purchase.
    pub purchased: usize,
    /// Episodes that hit the step limit.
    pub truncated: usize,
    /// Episodes stopped by an error.
    pub errors: usize,
    /// Histogram of steps per episode: `steps_histogram[n]` episodes took `n` steps.
    pub steps_histogram: Vec<usize>,
    /// Sum of episode wall times (ms).
    pub episode_ms: f64,
    /// Wall time of the run (s), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
}

impl RunSummary {
    /// Figures over `episodes`.
    pub fn of(episodes: &[Episode]) -> RunSummary {
        let n = episodes.len();
        let nf = n.max(1) as f64;
        let steps: usize = episodes.iter().map(|e| e.summary.steps).sum();
        let invalid: usize = episodes.iter().map(|e| e.summary.invalid_actions).sum();
        let max_steps = episodes.iter().map(|e| e.summary.steps).max().unwrap_or(0);
        let mut hist = vec![0; if n == 0 { 0 } else { max_steps + 1 }];
        for e in episodes {
            hist[e.summary.steps] += 1;
        }
        RunSummary {
            episodes: n,
            score: 100.0 * episodes.iter().map(|e| e.summary.reward).sum::<f64>() / nf,
            success_rate: 100.0 * episodes.iter().filter(|e| e.summary.success).count() as f64 / nf,
            mean_steps: steps as f64 / nf,
            invalid_action_rate: 100.0 * invalid as f64 / steps.max(1) as f64,
            parse_error_rate: 100.0
                * episodes
                    .iter()
                    .map(|e| e.summary.parse_errors)
                    .sum::<usize>() as f64
                / steps.max(1) as f64,
            purchased: episodes.iter().filter(|e| e.summary.terminated).count(),
            truncated: episodes.iter().filter(|e| e.summary.truncated).count(),
            errors: episodes
                .iter()
                .filter(|e| e.summary.error.is_some())
                .count(),
            steps_histogram: hist,
            episode_ms: episodes.iter().map(|e| e.summary.wall_ms).sum(),
            wall_s: None,
        }
    }
}

/// A run directory open for appending episodes.
pub struct RunDir {
    path: PathBuf,
    config: RunConfig,
    file: Mutex<File>,
}

/// Receives finished episodes (the agent records through this; [`RunDir`] implements it).
pub trait Recorder: Send + Sync {
    /// Stores one finished episode.
    fn record(&self, episode: &Episode) -> Result<()>;
}

impl RunDir {
    /// Creates `path` (which must not hold episodes unless `resume`), or reopens it with
    /// `resume`: the stored configuration must be compatible, and the episodes already
    /// complete are returned (a cut tail is removed atomically first).
    pub fn open(path: &Path, config: RunConfig, resume: bool) -> Result<(RunDir, Vec<Episode>)> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let run_file = path.join(RUN_FILE);
        let episodes_file = path.join(EPISODES_FILE);
        let mut existing = Vec::new();
        let mut config = config;
        if run_file.exists() || episodes_file.exists() {
            if !resume {
                return Err(Error::Mismatch {
                    path: path.to_path_buf(),
                    msg:
                        "already holds a run: pass --resume to continue it or choose another --out"
                            .into(),
                });
            }
            if run_file.exists() {
                let old = read_config(path)?;
                old.compatible(&config).map_err(|msg| Error::Mismatch {
                    path: path.to_path_buf(),
                    msg: format!("cannot resume: {msg}"),
                })?;
                // Keep tasks of the original run that the new one does not list.
                for t in &old.tasks {
                    if !config.tasks.contains(t) {
                        config.tasks.push(t.clone());
                    }
                }
            }
            if episodes_file.exists() {
                let (eps, damage) = read_episodes(&episodes_file)?;
                if !damage.is_clean() {
                    tracing::warn!(
                        file = %episodes_file.display(),
                        partial_line = ?damage.partial_line,
                        incomplete = ?damage.incomplete,
                        "dropping the cut tail of a crashed run"
                    );
                    write_episodes(&episodes_file, &eps)?;
                }
                existing = eps;
            }
        }
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| Error::Malformed {
            path: run_file.clone(),
            line: 0,
            msg: e.to_string(),
        })?;
        write_atomic(&run_file, &bytes)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&episodes_file)
            .map_err(|e| Error::io(&episodes_file, e))?;
        Ok((
            RunDir {
                path: path.to_path_buf(),
                config,
                file: Mutex::new(file),
            },
            existing,
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The screenshots directory (created).
    pub fn screenshots_dir(&self) -> Result<PathBuf> {
        let d = self.path.join(SCREENSHOTS_DIR);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        Ok(d)
    }

    /// Writes `summary.json` atomically.
    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let p = self.path.join(SUMMARY_FILE);
        let bytes = serde_json::to_vec_pretty(summary).map_err(|e| Error::Malformed {
            path: p.clone(),
            line: 0,
            msg: e.to_string(),
        })?;
        write_atomic(&p, &bytes)
    }
}

impl Recorder for RunDir {
    fn record(&self, episode: &Episode) -> Result<()> {
        let p = self.path.join(EPISODES_FILE);
        let bytes = episode.to_jsonl();
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(&bytes).map_err(|e| Error::io(&p, e))?;
        f.sync_data().map_err(|e| Error::io(&p, e))
    }
}

/// Reads `run.json` of a run directory.
pub fn read_config(dir: &Path) -> Result<RunConfig> {
    let p = dir.join(RUN_FILE);
    let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
        path: p.clone(),
        line: e.line(),
        msg: e.to_string(),
    })
}

/// A run directory read back: configuration (if present), complete episodes, damage.
pub struct LoadedRun {
    /// The directory.
    pub dir: PathBuf,
    /// `run.json`, if present.
    pub config: Option<RunConfig>,
    /// Complete episodes, in file order.
    pub episodes: Vec<Episode>,
    /// What was cut.
    pub damage: Damage,
}

/// Reads a run directory, or a single episodes JSONL file.
pub fn load(path: &Path) -> Result<LoadedRun> {
    if path.is_dir() {
        let config = if path.join(RUN_FILE).exists() {
            Some(read_config(path)?)
        } else {
            None
        };
        let (episodes, damage) = read_episodes(&path.join(EPISODES_FILE))?;
        Ok(LoadedRun {
            dir: path.to_path_buf(),
            config,
            episodes,
            damage,
        })
    } else {
        let (episodes, damage) = read_episodes(path)?;
        Ok(LoadedRun {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            config: None,
            episodes,
            damage,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The typed `extra` writes the keys a sorted map wrote (files from before it read the
    /// same), and keeps keys it does not know.
    #[test]
    fn typed_extra_reads_and_writes_the_old_json() {
        let old =
            r#"{"iteration":2,"leaf":5,"note":"x","role":"rollout","tree_steps":3,"value":0.5}"#;
        let e: Extra = serde_json::from_str(old).unwrap();
        assert_eq!(e.role, Some(SearchRole::Rollout));
        assert_eq!(
            (e.iteration, e.leaf, e.tree_steps),
            (Some(2), Some(5), Some(3))
        );
        assert_eq!(e.other["note"], "x");
        let mut e = e;
        e.other.clear();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"iteration":2,"leaf":5,"role":"rollout","tree_steps":3,"value":0.5}"#
        );
        assert!(Extra::default().is_empty());
        assert!(serde_json::from_str::<Extra>(r#"{"role":"bogus"}"#).is_err());
    }

    pub(crate) fn sample_episode(id: &str, reward: f64) -> Episode {
        let header = Header {
            schema: SCHEMA_VERSION,
            agentq_version: "0.1.0".into(),
            id: id.into(),
            env: "webshop-v0".into(),
            data_hash: "abc".into(),
            task: "test:0".into(),
            goal: 0,
            seed: 0,
            driver: "inproc".into(),
            obs_mode: ObsMode::Text,
            max_steps: 15,
            policy: "scripted".into(),
            instruction: "i need red shoes \"quoted\" ünïcode".into(),
            tree: None,
            extra: Extra::default(),
        };
        let steps = vec![
            StepRecord {
                index: 0,
                observation: "WebShop [SEP] Instruction: [SEP] red shoes".into(),
                url: "http://127.0.0.1:3000/abc".into(),
                available_actions: vec!["search[...]".into()],
                action: "search[red shoes]".into(),
                thought: Some("search first".into()),
                raw_output: None,
                parse_error: None,
                candidates: vec![CandidateRecord {
                    action: "search[red shoes]".into(),
                    logprob: Some(-1.5),
                    critic_rank: Some(0),
                    q: None,
                }],
                reward: 0.0,
                terminated: false,
                truncated: false,
                info: StepInfo {
                    steps: 1,
                    ..StepInfo::default()
                },
                timings: Timings {
                    policy_ms: 0.5,
                    env_ms: 0.25,
                },
                screenshot: None,
            },
            StepRecord {
                index: 1,
                observation: "results".into(),
                url: "http://127.0.0.1:3000/search".into(),
                available_actions: vec!["click[buy now]".into()],
                action: "click[nope]".into(),
                thought: None,
                raw_output: Some("click[nope]".into()),
                parse_error: Some("unparseable".into()),
                candidates: vec![],
                reward,
                terminated: true,
                truncated: false,
                info: StepInfo {
                    error: Some("no clickable".into()),
                    steps: 2,
                    ..StepInfo::default()
                },
                timings: Timings::default(),
                screenshot: Some("screenshots/w0/step-0001.png".into()),
            },
        ];
        let (r, n, term, trunc, inv) = Episode::tally(&steps);
        Episode {
            header,
            steps,
            summary: Summary {
                reward: r,
                success: r == 1.0,
                steps: n,
                terminated: term,
                truncated: trunc,
                invalid_actions: inv,
                parse_errors: 1,
                final_observation: "Thank you".into(),
                final_url: "http://127.0.0.1:3000/done".into(),
                final_screenshot: None,
                reward_detail: None,
                wall_ms: 3.0,
                error: None,
            },
        }
    }

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("e.jsonl");
        let eps = vec![sample_episode("a", 1.0), sample_episode("b", 0.5)];
        write_episodes(&p, &eps).unwrap();
        let (back, damage) = read_episodes(&p).unwrap();
        assert!(damage.is_clean());
        assert_eq!(back, eps);
    }

    #[test]
    fn cut_file_keeps_complete_episodes() {
        let eps = vec![sample_episode("a", 1.0), sample_episode("b", 0.5)];
        let mut bytes = Vec::new();
        for e in &eps {
            bytes.extend(e.to_jsonl());
        }
        let full = bytes.len();
        let first = eps[0].to_jsonl().len();
        // Every cut point inside the second episode keeps exactly the first one.
        // (Losing only the final newline loses nothing: that line still parses.)
        for cut in (first + 1)..(full - 1) {
            let (back, damage) = parse_episodes(Path::new("x.jsonl"), &bytes[..cut]).unwrap();
            assert_eq!(back, eps[..1], "cut at {cut}");
            assert!(!damage.is_clean(), "cut at {cut} must be detected");
            // Either the header of "b" survived (an incomplete episode) or only part of it.
            assert!(
                damage.incomplete == vec!["b".to_string()]
                    || (damage.incomplete.is_empty() && damage.partial_line.is_some()),
                "cut at {cut}: {damage:?}"
            );
        }
        let (back, damage) = parse_episodes(Path::new("x.jsonl"), &bytes).unwrap();
        assert_eq!(back, eps);
        assert!(damage.is_clean());
    }

    #[test]
    fn malformed_middle_line_is_an_error_naming_the_line() {
        let mut bytes = sample_episode("a", 1.0).to_jsonl();
        bytes.extend(b"{not json}\n");
        bytes.extend(sample_episode("b", 1.0).to_jsonl());
        let e = parse_episodes(Path::new("runs/x/episodes.jsonl"), &bytes).unwrap_err();
        assert!(e.to_string().contains("episodes.jsonl:5:"), "{e}");
        let mut bad = sample_episode("a", 1.0);
        bad.header.schema = 99;
        let e = parse_episodes(Path::new("f"), &bad.to_jsonl()).unwrap_err();
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }

    fn config(policy: &str) -> RunConfig {
        RunConfig {
            schema: SCHEMA_VERSION,
            agentq_version: "0.1.0".into(),
            name: "r".into(),
            command: "eval".into(),
            env: "webshop-v0".into(),
            data_hash: "abc".into(),
            driver: "inproc".into(),
            policy: policy.into(),
            seed: 0,
            tasks: vec!["test:0".into()],
            settings: BTreeMap::new(),
        }
    }

    #[test]
    fn run_dir_resume_drops_cut_tail_and_refuses_mismatch() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        {
            let (rd, existing) = RunDir::open(&run, config("rule"), false).unwrap();
            assert!(existing.is_empty());
            rd.record(&sample_episode("a", 1.0)).unwrap();
        }
        // Simulate a crash in the middle of the second append.
        let f = run.join(EPISODES_FILE);
        let mut bytes = std::fs::read(&f).unwrap();
        let second = sample_episode("b", 1.0).to_jsonl();
        bytes.extend(&second[..second.len() / 2]);
        std::fs::write(&f, &bytes).unwrap();
        assert!(RunDir::open(&run, config("rule"), false).is_err());
        let e = RunDir::open(&run, config("random"), true).err().unwrap();
        assert!(e.to_string().contains("policy"), "{e}");
        let (rd, existing) = RunDir::open(&run, config("rule"), true).unwrap();
        assert_eq!(existing.len(), 1);
        rd.record(&sample_episode("b", 1.0)).unwrap();
        drop(rd);
        let (eps, damage) = read_episodes(&f).unwrap();
        assert!(damage.is_clean());
        assert_eq!(
            eps.iter().map(|e| e.header.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn summary_figures() {
        let eps = vec![sample_episode("a", 1.0), sample_episode("b", 0.5)];
        let s = RunSummary::of(&eps);
        assert_eq!(s.episodes, 2);
        assert!((s.score - 75.0).abs() < 1e-9);
        assert!((s.success_rate - 50.0).abs() < 1e-9);
        assert!((s.mean_steps - 2.0).abs() < 1e-9);
        assert!((s.invalid_action_rate - 50.0).abs() < 1e-9);
        assert_eq!(s.steps_histogram, vec![0, 0, 2]);
        let empty = RunSummary::of(&[]);
        assert_eq!(empty.episodes, 0);
        assert_eq!(empty.score, 0.0);
    }
}
