//! `agentq serve`, `agentq run` and `agentq play`: the store server and scripted or
//! interactive episodes through the in-process or HTTP driver.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::data::{DataArgs, Loaded};
use crate::env::drivers::{http, in_process};
use crate::env::{Env, EnvConfig, EnvSpec, ObsMode, Step, TaskRef};
use crate::store::http::{router, AppState, ServerConfig};
use crate::store::pages::Store;

/// Arguments of `agentq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub data: DataArgs,
    /// Show the Attributes tab on item pages (WebShop's show_attrs).
    #[arg(long)]
    pub show_attrs: bool,
}

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

/// Episode settings shared by `run` and `play`.
#[derive(Debug, Args)]
pub struct EpisodeArgs {
    /// Task: `test:7`, `dev:0`, `train:3` or a goal index.
    #[arg(long, default_value = "test:0")]
    pub task: TaskRef,
    /// Episode seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Driver.
    #[arg(long, value_enum, default_value = "inproc")]
    pub driver: Driver,
    /// Base URL of the store for `--driver http` (and `--driver browser` when given).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// `--driver browser`: WebDriver URL to connect to (chromedriver, Selenium Grid); by
    /// default agentq spawns chromedriver and headless Chromium itself.
    #[arg(long)]
    pub webdriver: Option<String>,
    /// `--driver browser`: save one PNG screenshot per loaded page into this directory.
    #[arg(long)]
    pub screenshots: Option<PathBuf>,
    /// Env spec (TOML); its step limit and observation mode are the defaults.
    #[arg(long, default_value = "envs/webshop-v0.toml")]
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

/// Arguments of `agentq run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub episode: EpisodeArgs,
    /// Actions to take in order, e.g. 'search[red shoes]' 'click[b0x0000001]'.
    #[arg(long, num_args = 1.., required = true)]
    pub actions: Vec<String>,
    /// Print every step and the final reward as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn app_state(loaded: Loaded, show_attrs: bool) -> AppState {
    let store = Store::with_index(Arc::clone(&loaded.catalog), loaded.index);
    AppState::with_config(
        Arc::new(store),
        ServerConfig {
            show_attrs,
            ..ServerConfig::default()
        },
    )
}

/// `agentq serve`.
pub fn serve(a: ServeArgs) -> Result<()> {
    let loaded = a.data.load()?;
    let n = loaded.catalog.goals().len();
    let state = app_state(loaded, a.show_attrs);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let addr = listener.local_addr()?;
        eprintln!("agentq store on http://{addr}/  ({n} goals; open http://{addr}/?task=test:0)");
        crate::store::http::serve_with_shutdown(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
    })
}

struct Episode {
    env: Box<dyn Env>,
    mode: ObsMode,
    /// Runtime that serves the store for the browser driver (kept alive with the env).
    _server: Option<tokio::runtime::Runtime>,
}

/// The browser env: serves the store on a loopback port (its own runtime) and drives it
/// through WebDriver.
#[cfg(feature = "browser")]
fn browser_env(
    a: &EpisodeArgs,
    state: AppState,
    config: EnvConfig,
) -> Result<(Box<dyn Env>, Option<tokio::runtime::Runtime>)> {
    use crate::env::browser::{browser, BrowserConfig, WebDriverSource};
    let rt = runtime()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("binding a loopback port for the store")?;
    let addr = listener.local_addr()?;
    rt.spawn(crate::store::http::serve(listener, state));
    let webdriver = match &a.webdriver {
        Some(u) => WebDriverSource::Remote(u.clone()),
        None => WebDriverSource::default(),
    };
    let env = browser(
        &format!("http://{addr}"),
        config,
        BrowserConfig {
            webdriver,
            screenshots: a.screenshots.clone(),
        },
    )?;
    Ok((Box::new(env), Some(rt)))
}

#[cfg(not(feature = "browser"))]
fn browser_env(
    _a: &EpisodeArgs,
    _state: AppState,
    _config: EnvConfig,
) -> Result<(Box<dyn Env>, Option<tokio::runtime::Runtime>)> {
    bail!("--driver browser is not in this build: rebuild with --features browser")
}

fn make_env(a: &EpisodeArgs) -> Result<Episode> {
    let spec = if a.env.exists() {
        Some(EnvSpec::load(&a.env).with_context(|| format!("loading {}", a.env.display()))?)
    } else {
        None
    };
    let mode = a
        .obs
        .or(spec.as_ref().map(|s| s.observation))
        .unwrap_or(ObsMode::Text);
    let max_steps = a
        .max_steps
        .or(spec.as_ref().map(|s| s.max_steps))
        .unwrap_or(15);
    let config = EnvConfig { max_steps, mode };
    if a.driver == Driver::Browser && !cfg!(feature = "browser") {
        bail!("--driver browser is not in this build: rebuild with --features browser");
    }
    let (env, server): (Box<dyn Env>, _) = match a.driver {
        Driver::Inproc | Driver::Browser => {
            // The spec's data source unless a flag names one.
            let mut data = a.data.clone();
            if let (Some(spec), None, None) = (&spec, &data.data, &data.webshop_data) {
                let root = a
                    .env
                    .parent()
                    .and_then(|envs| envs.parent())
                    .unwrap_or(std::path::Path::new("."));
                data.data = spec.data.as_ref().map(|d| root.join(d));
                data.webshop_data = spec.webshop_data.as_ref().map(|d| root.join(d));
            }
            let loaded = data.load()?;
            let show = spec.as_ref().is_some_and(|s| s.show_attrs);
            let state = app_state(loaded, show);
            if a.driver == Driver::Browser {
                browser_env(a, state, config)?
            } else {
                (Box::new(in_process(router(state), config)), None)
            }
        }
        Driver::Http => (Box::new(http(&a.url, config)?), None),
    };
    Ok(Episode {
        env,
        mode,
        _server: server,
    })
}

fn step_json(action: &str, s: &Step, mode: ObsMode) -> serde_json::Value {
    serde_json::json!({
        "action": action,
        "observation": s.observation.render(mode),
        "url": s.observation.url,
        "clickables": s.observation.clickables,
        "reward": s.reward,
        "terminated": s.terminated,
        "truncated": s.truncated,
        "info": s.info,
    })
}

/// `agentq run`.
pub fn run(a: RunArgs) -> Result<()> {
    let mut ep = make_env(&a.episode)?;
    let rt = runtime()?;
    let task = a.episode.task;
    let seed = a.episode.seed;
    let (first, steps) = rt.block_on(async {
        let first = ep.env.reset(task, seed).await.context("reset")?;
        let mut steps = Vec::new();
        for action in &a.actions {
            let s = ep
                .env
                .step(action)
                .await
                .with_context(|| format!("step {action}"))?;
            steps.push((action.clone(), s));
        }
        anyhow::Ok((first, steps))
    })?;
    let reward: f64 = steps.iter().map(|(_, s)| s.reward).sum();
    let done = steps.last().is_some_and(|(_, s)| s.terminated);
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "task": task.to_string(),
            "goal": task.goal_index(),
            "seed": seed,
            "observation_mode": ep.mode.as_str(),
            "reset": {"observation": first.render(ep.mode), "url": first.url, "clickables": first.clickables},
            "steps": steps.iter().map(|(a, s)| step_json(a, s, ep.mode)).collect::<Vec<_>>(),
            "reward": reward,
            "terminated": done,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(out, "[reset] {}", first.render(ep.mode))?;
        for (action, s) in &steps {
            writeln!(out, "\n> {action}")?;
            if let Some(e) = &s.info.error {
                writeln!(out, "  (no-op: {e})")?;
            }
            writeln!(out, "{}", s.observation.render(ep.mode))?;
            writeln!(
                out,
                "  reward {} terminated {} truncated {}",
                s.reward, s.terminated, s.truncated
            )?;
        }
        writeln!(out, "\nfinal reward {reward}")?;
    }
    Ok(())
}

/// `agentq play`: interactive episode in the terminal.
pub fn play(a: EpisodeArgs) -> Result<()> {
    let mut ep = make_env(&a)?;
    let rt = runtime()?;
    let first = rt.block_on(ep.env.reset(a.task, a.seed)).context("reset")?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}\n", first.render(ep.mode))?;
    let mut total = 0.0;
    loop {
        let actions = ep.env.available_actions();
        writeln!(out, "actions: {}", actions.join("  "))?;
        write!(out, "> ")?;
        out.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        let s = rt.block_on(ep.env.step(line))?;
        total += s.reward;
        if let Some(e) = &s.info.error {
            writeln!(out, "(no-op: {e})")?;
        }
        writeln!(out, "\n{}\n", s.observation.render(ep.mode))?;
        if s.terminated || s.truncated {
            writeln!(
                out,
                "episode over: reward {total} ({})",
                if s.terminated {
                    "purchased"
                } else {
                    "step limit"
                }
            )?;
            if let Some(d) = &s.info.reward_detail {
                writeln!(out, "{}", serde_json::to_string_pretty(d)?)?;
            }
            break;
        }
    }
    if total == 0.0 && ep.env.observation().is_none() {
        bail!("no episode");
    }
    Ok(())
}
