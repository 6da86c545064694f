//! Resolution of the data source shared by subcommands: the committed fixtures, a native
//! catalog directory (`--data`) or WebShop's original files (`--webshop-data`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use crate::store::{Catalog, SearchIndex};

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

/// A loaded catalog with its search index.
pub struct Loaded {
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// Its search index.
    pub index: SearchIndex,
    /// The directory the data came from.
    pub dir: PathBuf,
}

/// The committed fixtures: `./webshop-fixtures` if present, else the source tree's copy.
pub fn default_fixtures_dir() -> PathBuf {
    let local = PathBuf::from("webshop-fixtures");
    if local.join(crate::store::catalog::PRODUCTS_FILE).exists() {
        return local;
    }
    super::source_tree().join("webshop-fixtures")
}

impl DataArgs {
    /// Loads the catalog and its (cached) search index.
    pub fn load(&self) -> Result<Loaded> {
        let (catalog, dir) = if let Some(dir) = &self.webshop_data {
            let import = crate::store::webshop_data::WebShopImport::from_dir(dir)
                .with_context(|| format!("finding WebShop files in {}", dir.display()))?
                .with_seed(self.data_seed);
            let cat = import
                .load()
                .with_context(|| format!("importing WebShop data from {}", dir.display()))?;
            (cat, dir.clone())
        } else {
            let dir = self.data.clone().unwrap_or_else(default_fixtures_dir);
            let cat = Catalog::load_dir(&dir)
                .with_context(|| format!("loading catalog from {}", dir.display()))?;
            (cat, dir)
        };
        let cache = dir.join(".agentq-cache");
        let index = match SearchIndex::load_or_build(&catalog, &cache) {
            Ok((index, built)) => {
                if built {
                    tracing::info!(cache = %cache.display(), "built search index");
                }
                index
            }
            Err(e) => {
                tracing::warn!("search index cache unavailable ({e}); building in memory");
                SearchIndex::build(&catalog)
            }
        };
        Ok(Loaded {
            catalog: Arc::new(catalog),
            index,
            dir,
        })
    }
}
