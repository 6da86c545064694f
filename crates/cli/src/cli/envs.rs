//! Environment flags shared by `run`, `play`, `eval`, `collect`, `demos` and `replay`,
//! turned into the app layer's [`EnvSettings`] (the env factory lives there).

use std::path::PathBuf;

use agentq_app::envs::{Driver, EnvSettings};
use clap::{Args, ValueEnum};

use super::data::DataArgs;
use crate::env::ObsMode;

pub use agentq_app::envs::EnvFactory;

/// Which driver runs an episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverArg {
    /// Calls the store's router in this process (no socket).
    Inproc,
    /// HTTP against a running `agentq serve` (`--url`).
    Http,
    /// A real headless browser through WebDriver (needs `--features browser`).
    Browser,
}

impl From<DriverArg> for Driver {
    fn from(d: DriverArg) -> Driver {
        match d {
            DriverArg::Inproc => Driver::Inproc,
            DriverArg::Http => Driver::Http,
            DriverArg::Browser => Driver::Browser,
        }
    }
}

/// How to reach the environment.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Driver.
    #[arg(long, value_enum, default_value = "inproc")]
    pub driver: DriverArg,
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

impl EnvArgs {
    /// The typed settings.
    pub fn settings(&self) -> EnvSettings {
        EnvSettings {
            driver: self.driver.into(),
            url: self.url.clone(),
            webdriver: self.webdriver.clone(),
            env: self.env.clone(),
            obs: self.obs,
            max_steps: self.max_steps,
            data: self.data.source(),
        }
    }

    /// The env factory these flags name (`keep`: a recorded episode's mode and step limit).
    pub fn factory(&self, keep: Option<(ObsMode, usize)>) -> anyhow::Result<EnvFactory> {
        Ok(EnvFactory::new(&self.settings(), keep)?)
    }
}
