//! The one episode executor: a queue of tasks, `parallel` workers (each with its own env),
//! failures collected per task instead of aborting the batch, and progress reported as each
//! task ends. What a task does and how it is committed to disk (an episode line, or a search
//! tree's episodes, pairs and tree file in crash-safe order) is the [`Worker`]'s business;
//! which tasks still need running on `--resume` is decided before the executor starts.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use agentq_env::TaskRef;

use crate::error::{Error, Result};
use crate::progress::{Progress, Stage};

/// A boxed future of a worker's task.
pub type TaskFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Runs one task at a time with state of its own (an env, open files).
pub trait Worker: Send + 'static {
    /// What a finished task yields.
    type Output: Send + 'static;
    /// Runs `task` to its end, including writing its results.
    fn run(&mut self, task: TaskRef) -> TaskFuture<'_, Self::Output>;
}

/// What an execution produced.
#[derive(Debug)]
pub struct Executed<T> {
    /// Finished tasks' outputs, in the order they finished.
    pub done: Vec<T>,
    /// Tasks that failed (task, error chain), sorted.
    pub failures: Vec<(String, String)>,
}

/// An error and its sources, outermost first, joined by `: `.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let line = c.to_string();
        // Some errors already print their source in their own message (`path: source`).
        if !s.ends_with(&line) {
            s.push_str(": ");
            s.push_str(&line);
        }
        cur = c.source();
    }
    s
}

/// Runs `tasks` over `workers` (one task per worker at a time) on `rt`. After each finished
/// task `tally` gives the message shown beside the progress bar; a failed task is reported
/// through [`Progress::note`] and listed in [`Executed::failures`].
pub fn execute<W: Worker>(
    rt: &tokio::runtime::Runtime,
    workers: Vec<W>,
    tasks: Vec<TaskRef>,
    stage: Stage,
    progress: Arc<dyn Progress>,
    tally: impl FnMut(&W::Output) -> String + Send + 'static,
) -> Result<Executed<W::Output>> {
    progress.start(stage, tasks.len() as u64);
    let queue = Arc::new(Mutex::new(VecDeque::from(tasks)));
    let results = Arc::new(Mutex::new((Vec::new(), Vec::new(), tally)));
    let mut handles = Vec::new();
    for mut worker in workers {
        let (queue, results, progress) = (queue.clone(), results.clone(), progress.clone());
        handles.push(rt.spawn(async move {
            loop {
                let Some(task) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let r = worker.run(task).await;
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(out) => {
                        let msg = (g.2)(&out);
                        progress.message(&msg);
                        g.0.push(out);
                    }
                    Err(e) => {
                        let e = chain(&e);
                        progress.note(&format!("{task}: {e}"));
                        g.1.push((task.to_string(), e));
                    }
                }
                drop(g);
                progress.advance();
            }
        }));
    }
    let joined = rt.block_on(async {
        for h in handles {
            h.await
                .map_err(|e| Error::Msg(format!("an episode worker panicked: {e}")))?;
        }
        Ok::<(), Error>(())
    });
    progress.finish();
    joined?;
    let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
    let done = std::mem::take(&mut g.0);
    let mut failures = std::mem::take(&mut g.1);
    failures.sort();
    Ok(Executed { done, failures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Doubler;

    impl Worker for Doubler {
        type Output = usize;
        fn run(&mut self, task: TaskRef) -> TaskFuture<'_, usize> {
            Box::pin(async move {
                if task.index % 3 == 2 {
                    return Err(Error::Msg(format!("task {} is bad", task.index)));
                }
                tokio::task::yield_now().await;
                Ok(task.index * 2)
            })
        }
    }

    #[derive(Default)]
    struct Count {
        advanced: AtomicU64,
        notes: Mutex<Vec<String>>,
        last: Mutex<String>,
    }

    impl Progress for Count {
        fn advance(&self) {
            self.advanced.fetch_add(1, Ordering::SeqCst);
        }
        fn note(&self, line: &str) {
            self.notes.lock().unwrap().push(line.to_string());
        }
        fn message(&self, m: &str) {
            *self.last.lock().unwrap() = m.to_string();
        }
    }

    #[test]
    fn every_task_runs_once_and_failures_are_collected() {
        let rt = crate::envs::runtime().unwrap();
        let tasks: Vec<TaskRef> = (0..10)
            .map(|index| TaskRef { split: None, index })
            .collect();
        let count = Arc::new(Count::default());
        let mut n = 0;
        let out = execute(
            &rt,
            vec![Doubler, Doubler, Doubler],
            tasks,
            Stage::Episodes,
            count.clone(),
            move |_| {
                n += 1;
                format!("{n} done")
            },
        )
        .unwrap();
        let mut done = out.done.clone();
        done.sort();
        assert_eq!(done, vec![0, 2, 6, 8, 12, 14, 18]);
        let failed: Vec<&str> = out.failures.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(failed, vec!["2", "5", "8"]);
        assert_eq!(count.advanced.load(Ordering::SeqCst), 10);
        assert_eq!(count.notes.lock().unwrap().len(), 3);
        assert_eq!(*count.last.lock().unwrap(), "7 done");
    }

    #[test]
    fn chain_joins_sources() {
        let e = Error::Context {
            context: "reading a.json".into(),
            source: Box::new(std::io::Error::other("denied")),
        };
        assert_eq!(chain(&e), "reading a.json: denied");
    }
}
