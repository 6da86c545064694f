//! `agentq serve`, `agentq run` and `agentq play`: the store server and scripted or
//! interactive episodes through the in-process or HTTP driver.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::data::DataArgs;
use super::envs::{EnvArgs, EnvFactory};
use crate::env::{Env, ObsMode, Step, TaskRef};

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

/// Episode settings shared by `run` and `play`.
#[derive(Debug, Args)]
pub struct EpisodeArgs {
    /// Task: `test:7`, `dev:0`, `train:3` or a goal index.
    #[arg(long, default_value = "test:0")]
    pub task: TaskRef,
    /// Episode seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `--driver browser`: save one PNG screenshot per loaded page into this directory.
    #[arg(long)]
    pub screenshots: Option<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
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

/// A multi-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(agentq_app::envs::runtime()?)
}

/// `agentq serve`.
pub fn serve(a: ServeArgs) -> Result<()> {
    let loaded = a.data.load()?;
    let n = loaded.catalog.goals().len();
    let state = loaded.app_state(a.show_attrs);
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
    /// Keeps the store server of the browser driver alive with the env.
    _factory: EnvFactory,
}

fn make_env(a: &EpisodeArgs) -> Result<Episode> {
    let factory = a.env.factory(None)?;
    let env = factory.make(a.screenshots.clone())?;
    Ok(Episode {
        env,
        mode: factory.config.mode,
        _factory: factory,
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
            "goal": ep.env.task_index(task)?,
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
