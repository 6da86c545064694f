//! The site registry: every [`Site`] adapter, by the name env specs give (`site = "…"`),
//! and the site-defined reward breakdowns the generic layers carry without looking inside.
//!
//! Adding a site: a crate `crates/sites/<name>` (the website), an adapter module here that
//! implements [`Site`] over it, one arm in [`by_name`], one variant in [`RewardDetail`],
//! and `envs/<name>-v0.toml`.

pub mod webshop;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::site::Site;
use crate::{Error, Result};

/// Names of the registered sites.
pub const NAMES: [&str; 1] = [webshop::NAME];

/// The adapter registered as `name`.
pub fn by_name(name: &str) -> Result<Arc<dyn Site>> {
    match name {
        webshop::NAME => Ok(Arc::new(webshop::WebShop)),
        other => Err(Error::UnknownSite(format!(
            "{other:?} (registered: {})",
            NAMES.join(", ")
        ))),
    }
}

/// A site's typed breakdown of an episode's reward, as steps and summaries record it.
/// Serialised as the site's own type (untagged), so records keep the site's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RewardDetail {
    /// WebShop's verbose reward (`get_reward(verbose=True)`).
    WebShop(agentq_webshop::RewardBreakdown),
}

impl RewardDetail {
    /// The total reward it explains.
    pub fn total(&self) -> f64 {
        match self {
            RewardDetail::WebShop(b) => b.total,
        }
    }

    /// Column headers and cells for a one-row table of the breakdown (reports).
    pub fn table(&self) -> (Vec<&'static str>, Vec<String>) {
        match self {
            RewardDetail::WebShop(d) => webshop::breakdown_table(d),
        }
    }
}
