//! Where the catalog comes from (the committed fixtures, a native catalog directory or
//! WebShop's original files) and the paths agentq looks things up in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentq_webshop::http::{AppState, ServerConfig};
use agentq_webshop::pages::Store;
use agentq_webshop::{Catalog, SearchIndex};

use crate::error::{Context as _, Result};

/// The repository this crate was built from (crates/app is two levels below it): where
/// `envs/`, `webshop-fixtures/` and `models/` are looked up when they are not in the
/// working directory.
pub fn source_tree() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The committed fixtures: `./webshop-fixtures` if present, else the source tree's copy.
pub fn default_fixtures_dir() -> PathBuf {
    let local = PathBuf::from("webshop-fixtures");
    if local.join(agentq_webshop::catalog::PRODUCTS_FILE).exists() {
        return local;
    }
    source_tree().join("webshop-fixtures")
}

/// Where the catalog comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSource {
    /// Native catalog directory (products.jsonl + goals.jsonl); `None` with no
    /// `webshop_data`: the committed fixtures.
    pub data: Option<PathBuf>,
    /// Directory with WebShop's original files.
    pub webshop_data: Option<PathBuf>,
    /// Seed of the price and price-bound draws when importing WebShop data.
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

impl Loaded {
    /// The store serving this catalog (WebShop's `show_attrs`: the Attributes tab on item
    /// pages), as the router's state.
    pub fn app_state(self, show_attrs: bool) -> AppState {
        let store = Store::with_index(self.catalog, self.index);
        AppState::with_config(
            Arc::new(store),
            ServerConfig {
                show_attrs,
                ..ServerConfig::default()
            },
        )
    }
}

impl DataSource {
    /// Loads the catalog and its search index (cached in `DIR/.agentq-cache`; built in
    /// memory when the cache cannot be used).
    pub fn load(&self) -> Result<Loaded> {
        let (catalog, dir) = if let Some(dir) = &self.webshop_data {
            let import = agentq_webshop::webshop_data::WebShopImport::from_dir(dir)
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
