//! The env factory: loads an env spec and its data once and builds one env per worker for
//! the chosen driver (in-process, HTTP, or a real browser against a loopback store server
//! that the factory runs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentq_env::drivers::{http, in_process};
use agentq_env::{Env, EnvConfig, EnvSpec, ObsMode};
use agentq_webshop::http::{router, AppState};
use agentq_webshop::Catalog;

use crate::data::{source_tree, DataSource};
use crate::error::{bail, Context as _, Result};

/// Which driver runs an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Calls the store's router in this process (no socket).
    Inproc,
    /// HTTP against a running `agentq serve`.
    Http,
    /// A real headless browser through WebDriver (needs the `browser` feature).
    Browser,
}

impl Driver {
    /// Every driver.
    pub const ALL: [Driver; 3] = [Driver::Inproc, Driver::Http, Driver::Browser];

    /// The name recorded in run headers (and the CLI's `--driver` value).
    pub fn name(self) -> &'static str {
        match self {
            Driver::Inproc => "inproc",
            Driver::Http => "http",
            Driver::Browser => "browser",
        }
    }
}

/// How to reach the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSettings {
    /// Driver.
    pub driver: Driver,
    /// Base URL of the store for [`Driver::Http`].
    pub url: String,
    /// [`Driver::Browser`]: the WebDriver URL to connect to (chromedriver, Selenium Grid);
    /// `None`: agentq spawns chromedriver and headless Chromium itself.
    pub webdriver: Option<String>,
    /// Env spec: a TOML file or a name (`webshop` = `envs/webshop-v0.toml`); its data, step
    /// limit and observation mode are the defaults.
    pub env: PathBuf,
    /// Observation mode (overrides the spec's).
    pub obs: Option<ObsMode>,
    /// Step limit (overrides the spec's).
    pub max_steps: Option<usize>,
    /// Data source (overrides the spec's).
    pub data: DataSource,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            driver: Driver::Inproc,
            url: "http://127.0.0.1:3000".into(),
            webdriver: None,
            env: PathBuf::from("webshop"),
            obs: None,
            max_steps: None,
            data: DataSource::default(),
        }
    }
}

/// A multi-threaded tokio runtime (workers, the browser's store server).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Builds envs for workers; holds the loaded catalog and, for the browser driver, the
/// store server's runtime.
pub struct EnvFactory {
    /// Env spec id (`webshop-v0`).
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

/// The spec file an env setting names: a path, or a name (`webshop`, `webshop-v0`) looked
/// up in `envs/` here and in the source tree.
pub fn find_spec(given: &Path) -> Result<PathBuf> {
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let s = given.to_string_lossy();
    let mut tried = Vec::new();
    if !s.contains('/') && !s.ends_with(".toml") {
        for root in [PathBuf::from("."), source_tree()] {
            for name in [format!("{s}.toml"), format!("{s}-v0.toml")] {
                let p = root.join("envs").join(name);
                if p.exists() {
                    return Ok(p);
                }
                tried.push(p);
            }
        }
    } else {
        let in_tree = source_tree().join(given);
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
    /// Loads the spec and data the settings name (`obs`/`max_steps` override the spec;
    /// `keep` forces a mode and step limit, e.g. a recorded episode's).
    pub fn new(a: &EnvSettings, keep: Option<(ObsMode, usize)>) -> Result<EnvFactory> {
        let spec_path = find_spec(&a.env)?;
        let spec = EnvSpec::load(&spec_path)
            .with_context(|| format!("loading {}", spec_path.display()))?;
        let mode = keep.map(|k| k.0).or(a.obs).unwrap_or(spec.observation);
        let max_steps = keep.map(|k| k.1).or(a.max_steps).unwrap_or(spec.max_steps);
        if a.driver == Driver::Browser && !cfg!(feature = "browser") {
            bail!("--driver browser is not in this build: rebuild with --features browser");
        }
        // The spec's data source unless the settings name one.
        let mut data = a.data.clone();
        if data.data.is_none() && data.webshop_data.is_none() {
            let root = spec_path
                .parent()
                .and_then(|envs| envs.parent())
                .unwrap_or(Path::new("."));
            data.data = spec.data.as_ref().map(|d| root.join(d));
            data.webshop_data = spec.webshop_data.as_ref().map(|d| root.join(d));
        }
        let site = spec.site()?;
        let loaded = data.load()?;
        let catalog = Arc::clone(&loaded.catalog);
        let state = loaded.app_state(spec.show_attrs);
        let (browser_base, server) = if a.driver == Driver::Browser {
            let rt = runtime()?;
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .context("binding a loopback port for the store")?;
            let addr = listener.local_addr()?;
            rt.spawn(agentq_webshop::http::serve(listener, state.clone()));
            (Some(format!("http://{addr}")), Some(rt))
        } else {
            (None, None)
        };
        Ok(EnvFactory {
            spec_id: spec.id,
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

    /// The episode header fields of envs from this factory, for an agent asked for `k`
    /// candidates per step.
    pub fn meta(&self, k: usize) -> agentq_agent::EpisodeMeta {
        agentq_agent::EpisodeMeta {
            env: self.spec_id.clone(),
            data_hash: self.data_hash(),
            driver: self.driver.name().into(),
            obs_mode: self.config.mode,
            max_steps: self.config.max_steps,
            k,
        }
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
        use agentq_env::browser::{browser, BrowserConfig, WebDriverSource};
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
