//! Task references, written once for every site and front: the named splits, one task
//! (`test:7`, `7`) and a selection of tasks within a split (`0..50`, `3,7,9`, `all`), with
//! their range checks. A site supplies its split layout as a function; nothing here knows
//! how many tasks a split of any particular site holds.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The named splits of a site's task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Held-out evaluation tasks.
    Test,
    /// Development tasks.
    Dev,
    /// Training tasks.
    Train,
}

impl Split {
    /// Every split, in spec order.
    pub const ALL: [Split; 3] = [Split::Test, Split::Dev, Split::Train];

    /// Lower-case name (`test`, `dev`, `train`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Dev => "dev",
            Split::Train => "train",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "test" => Ok(Split::Test),
            "dev" | "eval" => Ok(Split::Dev),
            "train" => Ok(Split::Train),
            other => Err(format!(
                "unknown split {other:?} (expected test, dev or train)"
            )),
        }
    }
}

/// A task reference that does not parse or names no task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Not `split:index` or `index`.
    #[error("{0:?} (expected e.g. test:7, dev:0 or 7)")]
    Syntax(String),
    /// A split-relative index past the end of its split.
    #[error("task {task} out of range (the {split} split has {len} tasks)")]
    OutOfSplit {
        /// The reference as written.
        task: String,
        /// Its split.
        split: Split,
        /// How many tasks the split has.
        len: usize,
    },
    /// An absolute index past the end of the task list.
    #[error("task {index} out of range (there are {len} tasks)")]
    OutOfRange {
        /// The absolute index.
        index: usize,
        /// How many tasks there are.
        len: usize,
    },
    /// A task selection (`0..50`, `3,7,9`, `all`) that does not parse or leaves its split.
    #[error("{spec:?}: {why} (expected e.g. 0..50, 3,7,9 or all)")]
    Selection {
        /// The selection as written.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Which task an episode pursues: `test:7`, `dev:0`, `train:12` (index within the split) or
/// a plain absolute index `7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    /// Split the index is relative to (`None`: absolute index).
    pub split: Option<Split>,
    /// Index (within the split when `split` is set).
    pub index: usize,
}

impl TaskRef {
    /// The absolute index of this task in a list of `n_tasks`, whose splits `layout` gives;
    /// an error when the task is past the end of its split or of the list.
    pub fn resolve(
        self,
        layout: impl Fn(Split) -> Range<usize>,
        n_tasks: usize,
    ) -> Result<usize, TaskError> {
        let index = match self.split {
            None => self.index,
            Some(split) => {
                let range = layout(split);
                if self.index >= range.len() {
                    return Err(TaskError::OutOfSplit {
                        task: self.to_string(),
                        split,
                        len: range.len(),
                    });
                }
                range.start + self.index
            }
        };
        if index >= n_tasks {
            return Err(TaskError::OutOfRange {
                index,
                len: n_tasks,
            });
        }
        Ok(index)
    }
}

impl std::str::FromStr for TaskRef {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, TaskError> {
        let bad = || TaskError::Syntax(s.to_string());
        let spec = s.trim();
        let (split, idx) = match spec.split_once(':') {
            Some((sp, i)) => (Some(sp.trim().parse::<Split>().map_err(|_| bad())?), i),
            None => (None, spec),
        };
        let index = idx.trim().parse::<usize>().map_err(|_| bad())?;
        Ok(TaskRef { split, index })
    }
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.split {
            Some(s) => write!(f, "{}:{}", s.name(), self.index),
            None => write!(f, "{}", self.index),
        }
    }
}

/// Parses a selection of indices within a split of `n` tasks: `0..50`, `3,7,9`, `all`,
/// or a mix (`0..5,9`); every index must lie in `0..n`.
pub fn parse_selection(s: &str, n: usize) -> Result<Vec<usize>, TaskError> {
    let spec = s.trim();
    if spec == "all" {
        return Ok((0..n).collect());
    }
    let bad = |why: &str| TaskError::Selection {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once("..") {
            let a: usize = a.trim().parse().map_err(|_| bad("bad range start"))?;
            let b: usize = b.trim().parse().map_err(|_| bad("bad range end"))?;
            if b > n {
                return Err(bad(&format!("the split has {n} tasks")));
            }
            out.extend(a..b);
        } else {
            let i: usize = part.parse().map_err(|_| bad("not a number"))?;
            if i >= n {
                return Err(bad(&format!("the split has {n} tasks")));
            }
            out.push(i);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(s: Split) -> Range<usize> {
        match s {
            Split::Test => 0..5,
            Split::Dev => 5..8,
            Split::Train => 8..20,
        }
    }

    #[test]
    fn task_refs_parse_and_print() {
        let t: TaskRef = "test:7".parse().unwrap();
        assert_eq!((t.split, t.index), (Some(Split::Test), 7));
        let t: TaskRef = "eval:3".parse().unwrap();
        assert_eq!((t.split, t.index), (Some(Split::Dev), 3));
        let t: TaskRef = " train:0 ".parse().unwrap();
        assert_eq!(t.to_string(), "train:0");
        let t: TaskRef = "42".parse().unwrap();
        assert_eq!((t.split, t.index), (None, 42));
        for bad in ["x:1", "test:-1", "", "test:", "1.5"] {
            assert!(
                matches!(bad.parse::<TaskRef>(), Err(TaskError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolution_checks_both_ranges() {
        let r = |s: &str| s.parse::<TaskRef>().unwrap().resolve(layout, 20);
        assert_eq!(r("test:4"), Ok(4));
        assert_eq!(r("dev:0"), Ok(5));
        assert_eq!(r("train:11"), Ok(19));
        assert_eq!(r("7"), Ok(7));
        assert!(matches!(
            r("dev:3"),
            Err(TaskError::OutOfSplit { len: 3, .. })
        ));
        assert!(matches!(
            r("20"),
            Err(TaskError::OutOfRange { len: 20, .. })
        ));
        let e = r("test:5").unwrap_err().to_string();
        assert_eq!(e, "task test:5 out of range (the test split has 5 tasks)");
    }

    #[test]
    fn selections() {
        assert_eq!(parse_selection("all", 3).unwrap(), [0, 1, 2]);
        assert_eq!(parse_selection("0..3, 7", 8).unwrap(), [0, 1, 2, 7]);
        assert_eq!(parse_selection("2..2", 8).unwrap(), Vec::<usize>::new());
        for bad in ["0..9", "8", "x", "1..", "..2"] {
            assert!(parse_selection(bad, 8).is_err(), "{bad}");
        }
        let e = parse_selection("9", 8).unwrap_err().to_string();
        assert_eq!(
            e,
            "\"9\": the split has 8 tasks (expected e.g. 0..50, 3,7,9 or all)"
        );
    }
}
