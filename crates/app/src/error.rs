//! The app layer's error: the library crates' errors, plain messages, and any of them with a
//! line of context naming the file, flag or task it concerns (printed as a chain, outermost
//! first, like every agentq error).

use std::fmt::Display;

/// An error of an agentq workflow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message for the user (bad settings, missing files, failed tasks).
    #[error("{0}")]
    Msg(String),
    /// An error with the context it happened in.
    #[error("{context}")]
    Context {
        /// What was being done (`loading envs/webshop-v0.toml`).
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The environment.
    #[error(transparent)]
    Env(#[from] agentq_env::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] agentq_webshop::Error),
    /// An agent.
    #[error(transparent)]
    Agent(#[from] agentq_agent::Error),
    /// A policy.
    #[error(transparent)]
    Policy(#[from] agentq_agent::policy::Error),
    /// A run directory or trajectory file.
    #[error(transparent)]
    Trajectory(#[from] agentq_trajectory::Error),
    /// A language model.
    #[error(transparent)]
    Lm(#[from] agentq_lm::LmError),
    /// Training.
    #[error(transparent)]
    Train(#[from] agentq_train::trainer::TrainError),
    /// Training data.
    #[error(transparent)]
    TrainData(#[from] agentq_train::data::DataError),
    /// A task reference or selection.
    #[error(transparent)]
    Task(#[from] agentq_core::task::TaskError),
    /// An atomic write.
    #[error(transparent)]
    Write(#[from] agentq_core::fs::WriteError),
    /// Tensors.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a line of context to an error (or turns a `None` into one).
pub trait Context<T> {
    /// With a fixed context.
    fn context(self, context: impl Display) -> Result<T>;
    /// With a context built only on failure.
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            source: Box::new(e),
        })
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().to_string(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T> {
        self.ok_or_else(|| Error::Msg(context.to_string()))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::Msg(f().to_string()))
    }
}

/// Returns early with an [`Error::Msg`].
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::error::Error::Msg(format!($($t)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_chains_outermost_first() {
        let e: Result<()> = Err(std::io::Error::other("disk full")).context("writing x.json");
        let e = e.unwrap_err();
        assert_eq!(e.to_string(), "writing x.json");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
        let none: Result<u8> = None.context("no model at m.gguf");
        assert_eq!(none.unwrap_err().to_string(), "no model at m.gguf");
    }
}
