//! The CLI's [`Progress`]: an indicatif bar per counted stage on stderr, and notes printed
//! above it.

use std::sync::Mutex;

use agentq_app::{Progress, Stage};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar with `template`.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("invariant: static template")
            .progress_chars("=> "),
    );
    pb
}

/// The bar of a batch of episodes.
pub const EPISODES: &str = "{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})";

fn template(stage: Stage) -> &'static str {
    match stage {
        Stage::Episodes => EPISODES,
        Stage::Trees => "{spinner} [{bar:30}] {pos}/{len} trees {msg} ({elapsed}, eta {eta})",
        Stage::Demos => "demos [{bar:30}] {pos}/{len} {msg} ({eta})",
        Stage::TrainSteps => "train [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})",
        Stage::Pairs => "pairs [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    }
}

/// Bars on stderr (hidden when stderr is not a terminal, as indicatif does).
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f(pb);
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: u64) {
        let mut g = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = g.take() {
            old.finish_and_clear();
        }
        *g = Some(bar(total, template(stage)));
    }

    fn set(&self, position: u64, total: u64) {
        self.with(|pb| {
            pb.set_length(total);
            pb.set_position(position);
        });
    }

    fn advance(&self) {
        self.with(|pb| pb.inc(1));
    }

    fn message(&self, message: &str) {
        let m = message.to_string();
        self.with(|pb| pb.set_message(m));
    }

    fn note(&self, line: &str) {
        let g = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(pb) => pb.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }
}
