//! Which tasks of a split a workflow runs, and with which episode seed.

use agentq_env::{Split, TaskRef};

use crate::error::{bail, Error, Result};

/// A selection of tasks within one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSelection {
    /// The split.
    pub split: Split,
    /// Tasks within the split: a range `0..50`, a list `3,7,9`, `all` (`None`: all, or the
    /// first `episodes`).
    pub tasks: Option<String>,
    /// The first N tasks of the split (wins over `tasks`).
    pub episodes: Option<usize>,
    /// Episode seed (the same for every task).
    pub seed: u64,
}

impl TaskSelection {
    /// The tasks `selection` names in `split`, seed 0.
    pub fn of(split: Split, selection: &str) -> TaskSelection {
        TaskSelection {
            split,
            tasks: Some(selection.to_string()),
            episodes: None,
            seed: 0,
        }
    }

    /// The selected tasks, in order, of a split holding `n_in_split` tasks.
    pub fn resolve(&self, n_in_split: usize) -> Result<Vec<TaskRef>> {
        let idx: Vec<usize> = match (&self.tasks, self.episodes) {
            (_, Some(n)) => (0..n.min(n_in_split)).collect(),
            (None, None) => (0..n_in_split).collect(),
            (Some(s), None) => agentq_core::task::parse_selection(s, n_in_split)
                .map_err(|e| Error::Msg(format!("--tasks {e}")))?,
        };
        if idx.is_empty() {
            bail!("no tasks selected in split {}", self.split.name());
        }
        Ok(idx
            .into_iter()
            .map(|index| TaskRef {
                split: Some(self.split),
                index,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_resolve_in_order_and_empty_ones_are_errors() {
        let t = TaskSelection::of(Split::Test, "3,1..3");
        let got: Vec<String> = t
            .resolve(10)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(got, ["test:3", "test:1", "test:2"]);
        let first = TaskSelection {
            episodes: Some(20),
            ..TaskSelection::of(Split::Dev, "all")
        };
        assert_eq!(first.resolve(4).unwrap().len(), 4);
        assert!(TaskSelection::of(Split::Test, "12")
            .resolve(10)
            .unwrap_err()
            .to_string()
            .starts_with("--tasks "));
        let none = TaskSelection {
            episodes: Some(0),
            ..TaskSelection::of(Split::Train, "all")
        };
        assert_eq!(
            none.resolve(5).unwrap_err().to_string(),
            "no tasks selected in split train"
        );
    }
}
