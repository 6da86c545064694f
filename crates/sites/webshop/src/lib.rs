//! The simulated store: catalog, WebShop data import, fixture generation, search and reward.
//!
//! Invariant: `store` depends on nothing else in the crate. Everything here is a pure
//! function of the loaded data (and explicit seeds); nothing reads environment variables or
//! prints.

pub mod catalog;
pub mod fixtures;
pub mod fuzz;
pub mod http;
pub mod normalize;
pub mod nouns;
pub mod pages;
pub mod porter;
pub mod reward;
pub mod search;
pub mod webshop_data;

use std::path::{Path, PathBuf};

pub use catalog::{split_of, split_range, Catalog, Goal, GoalOptions, OptionGroup, Product, Split};
pub use reward::{reward, RewardBreakdown};
pub use search::{Hit, SearchIndex};

/// Errors of the store: I/O and bad data, always naming the file and record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file holds a malformed record.
    #[error("{}, {location}: {message}", path.display())]
    Data {
        /// The file involved.
        path: PathBuf,
        /// Where in the file (record index, line, field).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Inconsistent data or arguments.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
