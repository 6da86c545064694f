//! Environment flags shared by `run`, `play`, `eval` and `replay`, and a factory that
//! builds one env per worker for the chosen driver (in-process, HTTP or browser).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::data::DataArgs;
use crate::env::drivers::{http, in_process};
use crate::env::{Env, EnvConfig, EnvSpec, ObsMode};
use crate::store::http::{router, AppState, ServerConfig};
use crate::store::pages::Store;
use crate::store::Catalog;

/// Which driver runs an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// Calls the store's router in this process (no socket).
    Inproc,
    /// HTTP against a running `agentq serve` (`--url`).
    Http,
    /// A real headless browser through WebDriver (needs `--features browser`).
    Browser,
}

impl Driver {
    /// The name recorded in run headers.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Inproc => "inproc",
            Driver::Http => "http",
            Driver::Browser => "browser",
        }
    }
}

/// How to reach the environment.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Driver.
    #[arg(long, value_enum, default_value = "inproc")]
    pub driver: Driver,
    /// Base URL of the store for `--driver http`.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// `--driver browser`: WebDriver URL to connect to (chromedriver, Selenium Grid); by
    /// default agentq spawns chromedriver and headless Chromium itself.
    #[arg(long)]
    pub webdriver: Option<String>,
    /// Env spec: a TOML file or a name (`webshop` = `envs/webshop-v0.toml`); its data, step
    /// limit and observation mode are the defaults.
    #[arg(long, default_value = "webshop")]
    pub env: PathBuf,
    /// Observation mode shown: text, text_rich, html or url.
    #[arg(long)]
    pub obs: Option<ObsMode>,
    /// Step limit (truncation).
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Builds envs for workers; holds the loaded catalog and, for the browser driver, the
/// store server's runtime.
pub struct EnvFactory {
    /// Env spec id (`webshop-v0`, or `custom` without a spec file).
    pub spec_id: String,
    /// Episode settings.
    pub config: EnvConfig,
    /// Driver.
    pub driver: Driver,
    /// The catalog (also for the oracle and data hashes).
    pub catalog: Arc<Catalog>,
    state: AppState,
    url: String,
    webdriver: Option<String>,
    /// Base URL of the loopback store the browser drives.
    browser_base: Option<String>,
    _server: Option<tokio::runtime::Runtime>,
}

/// The spec file named by `--env`: a path, or a name (`webshop`, `webshop-v0`) looked up in
/// `envs/` here and in the source tree.
fn find_spec(given: &Path) -> Result<PathBuf> {
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let s = given.to_string_lossy();
    let mut tried = Vec::new();
    if !s.contains('/') && !s.ends_with(".toml") {
        for root in [PathBuf::from("."), super::source_tree()] {
            for name in [format!("{s}.toml"), format!("{s}-v0.toml")] {
                let p = root.join("envs").join(name);
                if p.exists() {
                    return Ok(p);
                }
                tried.push(p);
            }
        }
    } else {
        let in_tree = super::source_tree().join(given);
        if in_tree.exists() {
            return Ok(in_tree);
        }
        tried.push(in_tree);
    }
    bail!(
        "no env spec {} (give a spec file or a name such as webshop; looked at {:?})",
        given.display(),
        tried
    )
}

impl EnvFactory {
    /// Loads the spec and data named by the flags (`obs`/`max_steps` override the spec;
    /// `keep` forces a mode and step limit, e.g. a recorded episode's).
    pub fn new(a: &EnvArgs, keep: Option<(ObsMode, usize)>) -> Result<EnvFactory> {
        let spec_path = Some(find_spec(&a.env)?);
        let spec = match &spec_path {
            Some(p) => Some(EnvSpec::load(p).with_context(|| format!("loading {}", p.display()))?),
            None => None,
        };
        let mode = keep
            .map(|k| k.0)
            .or(a.obs)
            .or(spec.as_ref().map(|s| s.observation))
            .unwrap_or(ObsMode::Text);
        let max_steps = keep
            .map(|k| k.1)
            .or(a.max_steps)
            .or(spec.as_ref().map(|s| s.max_steps))
            .unwrap_or(15);
        if a.driver == Driver::Browser && !cfg!(feature = "browser") {
            bail!("--driver browser is not in this build: rebuild with --features browser");
        }
        // The spec's data source unless a flag names one.
        let mut data = a.data.clone();
        if let (Some(spec), Some(sp), None, None) =
            (&spec, &spec_path, &data.data, &data.webshop_data)
        {
            let root = sp
                .parent()
                .and_then(|envs| envs.parent())
                .unwrap_or(Path::new("."));
            data.data = spec.data.as_ref().map(|d| root.join(d));
            data.webshop_data = spec.webshop_data.as_ref().map(|d| root.join(d));
        }
        let site = match &spec {
            Some(s) => s.site()?,
            None => agentq_env::sites::by_name(agentq_env::sites::webshop::NAME)?,
        };
        let loaded = data.load()?;
        let show_attrs = spec.as_ref().is_some_and(|s| s.show_attrs);
        let catalog = Arc::clone(&loaded.catalog);
        let store = Store::with_index(Arc::clone(&loaded.catalog), loaded.index);
        let state = AppState::with_config(
            Arc::new(store),
            ServerConfig {
                show_attrs,
                ..ServerConfig::default()
            },
        );
        let (browser_base, server) = if a.driver == Driver::Browser {
            let rt = super::play::runtime()?;
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .context("binding a loopback port for the store")?;
            let addr = listener.local_addr()?;
            rt.spawn(crate::store::http::serve(listener, state.clone()));
            (Some(format!("http://{addr}")), Some(rt))
        } else {
            (None, None)
        };
        Ok(EnvFactory {
            spec_id: spec.map(|s| s.id).unwrap_or_else(|| "custom".into()),
            config: EnvConfig {
                max_steps,
                mode,
                site,
            },
            driver: a.driver,
            catalog,
            state,
            url: a.url.clone(),
            webdriver: a.webdriver.clone(),
            browser_base,
            _server: server,
        })
    }

    /// The site the env spec names.
    pub fn site(&self) -> &dyn agentq_env::Site {
        &*self.config.site
    }

    /// How many tasks `split` holds in the loaded data.
    pub fn split_len(&self, split: agentq_env::Split) -> usize {
        self.site()
            .split_range(split, self.catalog.goals().len())
            .len()
    }

    /// What an oracle may know of the loaded tasks.
    pub fn knowledge(&self) -> Arc<dyn agentq_env::GoalKnowledge> {
        Arc::new(agentq_env::sites::webshop::CatalogKnowledge(Arc::clone(
            &self.catalog,
        )))
    }

    /// The catalog hash recorded in runs.
    pub fn data_hash(&self) -> String {
        self.catalog.data_hash().to_string()
    }

    /// A fresh env; `screenshots` is where the browser driver saves page screenshots.
    pub fn make(&self, screenshots: Option<PathBuf>) -> Result<Box<dyn Env>> {
        Ok(match self.driver {
            Driver::Inproc => Box::new(in_process(router(self.state.clone()), self.config.clone())),
            Driver::Http => Box::new(http(&self.url, self.config.clone())?),
            Driver::Browser => self.browser(screenshots)?,
        })
    }

    #[cfg(feature = "browser")]
    fn browser(&self, screenshots: Option<PathBuf>) -> Result<Box<dyn Env>> {
        use crate::env::browser::{browser, BrowserConfig, WebDriverSource};
        let webdriver = match &self.webdriver {
            Some(u) => WebDriverSource::Remote(u.clone()),
            None => WebDriverSource::default(),
        };
        let base = self
            .browser_base
            .as_deref()
            .context("the browser store server is not running")?;
        Ok(Box::new(browser(
            base,
            self.config.clone(),
            BrowserConfig {
                webdriver,
                screenshots,
            },
        )?))
    }

    #[cfg(not(feature = "browser"))]
    fn browser(&self, _screenshots: Option<PathBuf>) -> Result<Box<dyn Env>> {
        let _ = (&self.webdriver, &self.browser_base);
        bail!("--driver browser is not in this build: rebuild with --features browser")
    }
}
