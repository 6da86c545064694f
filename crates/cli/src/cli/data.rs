//! The data-source flags shared by subcommands (the committed fixtures, a native catalog
//! directory `--data`, or WebShop's original files `--webshop-data`), turned into the app
//! layer's [`DataSource`].

use std::path::PathBuf;

use agentq_app::data::DataSource;
use anyhow::Result;
use clap::Args;

pub use agentq_app::data::Loaded;

/// Where the catalog comes from.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Native catalog directory (products.jsonl + goals.jsonl); default: the committed
    /// `webshop-fixtures/`.
    #[arg(long, conflicts_with = "webshop_data")]
    pub data: Option<PathBuf>,
    /// Directory with WebShop's original files (items_shuffle*.json, items_ins_v2*.json,
    /// items_human_ins.json, optional title_nouns.json, prices.json, goals.json).
    #[arg(long)]
    pub webshop_data: Option<PathBuf>,
    /// Seed of the price and price-bound draws when importing WebShop data.
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
}

impl DataArgs {
    /// The typed data source.
    pub fn source(&self) -> DataSource {
        DataSource {
            data: self.data.clone(),
            webshop_data: self.webshop_data.clone(),
            data_seed: self.data_seed,
        }
    }

    /// Loads the catalog and its (cached) search index.
    pub fn load(&self) -> Result<Loaded> {
        Ok(self.source().load()?)
    }
}
