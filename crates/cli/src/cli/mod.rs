//! Command-line interface: argument parsing (clap derive), wiring of library pieces, output.
//!
//! Invariant: this is the only module that reads environment variables, prints to stdout,
//! uses `anyhow` and builds a tokio runtime. Human summaries go to stderr, machine output
//! (`--json`) to stdout.

mod aqloop;
mod collect;
mod data;
mod demos;
mod diagnose;
mod envs;
mod lm;
mod lmargs;
mod play;
mod progress;
mod runs;
mod train;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::store::{self, Split};

pub use data::DataArgs;
pub use lm::BackendArgs;

/// agentq: train and evaluate web agents the Agent Q way on a WebShop-compatible store.
#[derive(Debug, Parser)]
#[command(name = "agentq", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing syntax), e.g. `info`, `agentq=debug`.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate or check the seeded product fixtures.
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// List goals (tasks) of a split.
    Tasks(TasksArgs),
    /// Serve the store site over HTTP (a person can shop at /?task=test:7).
    Serve(play::ServeArgs),
    /// Run a scripted episode and print every step (and the final reward).
    Run(play::RunArgs),
    /// Play an episode interactively in the terminal.
    Play(play::EpisodeArgs),
    /// Run an agent over tasks into a run directory and print score and success rate.
    Eval(runs::EvalArgs),
    /// Search tasks with MCTS: rollouts, trees and preference pairs into a run directory.
    Collect(collect::CollectArgs),
    /// Re-execute recorded episodes and check every observation and reward (exit code 1 on
    /// divergence), or page through them with --show.
    Replay(runs::ReplayArgs),
    /// Write a self-contained report.html for a run directory.
    Report(runs::ReportArgs),
    /// Write SFT demonstrations (oracle episodes as prompt/response pairs in the LLM
    /// policy's prompt format).
    Demos(demos::DemosArgs),
    /// Show the prompts the LLM policy and critic see.
    #[command(subcommand)]
    Prompt(demos::PromptCommand),
    /// Obtain or inspect model files.
    #[command(subcommand)]
    Model(lm::ModelCommand),
    /// Language-model commands (serve a local model over an OpenAI-compatible API).
    #[command(subcommand)]
    Lm(lm::LmCommand),
    /// Train the local model: DPO on preference pairs, SFT on demonstrations, TRL export.
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// The Agent Q loop: per iteration, MCTS collection on train tasks → preference pairs →
    /// DPO → evaluation on test tasks; resumable; writes a results table and plot.
    Loop(aqloop::LoopArgs),
    /// Fetch SmolLM2 if missing and run a small Agent Q loop on the default fixtures.
    Quickstart(aqloop::QuickstartArgs),
    /// Speed measurements.
    #[command(subcommand)]
    Bench(lm::BenchCommand),
    /// Why the Agent Q loop does or does not lift a model: failure modes of runs, pair
    /// quality against the oracle, a trained model's effect on pair log-probs.
    #[command(subcommand)]
    Diagnose(diagnose::DiagnoseCommand),
}

/// `agentq fixtures …`
#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Generate a catalog (products.jsonl, goals.jsonl, manifest.json) from a seed.
    Generate(GenerateArgs),
    /// Print difficulty figures of a catalog: option share, near-duplicates, rule baseline.
    Check(CheckArgs),
}

/// Arguments of `agentq fixtures generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of products.
    #[arg(long, default_value_t = store::fixtures::DEFAULT_PRODUCTS)]
    pub products: usize,
    /// Number of goals (default: 1.5 × products, at least 1,500 so that every split exists).
    #[arg(long)]
    pub goals: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = store::fixtures::DEFAULT_SEED)]
    pub seed: u64,
    /// Output directory (created if missing; files are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `agentq fixtures check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Split to measure.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Split to list (test = goals 0–499, dev = 500–1499, train = the rest).
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Skip this many goals of the split.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// List at most this many goals.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON (one array) on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Entry point of the binary: parses arguments, runs, maps errors to exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<runs::Diverged>().is_some() {
                return ExitCode::from(1);
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fixtures(FixturesCommand::Generate(a)) => fixtures_generate(a),
        Command::Fixtures(FixturesCommand::Check(a)) => fixtures_check(a),
        Command::Tasks(a) => tasks(a),
        Command::Serve(a) => play::serve(a),
        Command::Run(a) => play::run(a),
        Command::Play(a) => play::play(a),
        Command::Eval(a) => runs::eval(a),
        Command::Collect(a) => collect::collect(a),
        Command::Replay(a) => runs::replay(a),
        Command::Report(a) => runs::report_cmd(a),
        Command::Diagnose(c) => diagnose::diagnose(c),
        Command::Demos(a) => demos::demos_cmd(a),
        Command::Prompt(demos::PromptCommand::Show(a)) => demos::prompt_show(a),
        Command::Model(c) => lm::model(c),
        Command::Lm(c) => lm::lm(c),
        Command::Bench(c) => lm::bench(c),
        Command::Train(c) => train::train_cmd(c),
        Command::Loop(a) => aqloop::run_loop(a),
        Command::Quickstart(a) => aqloop::quickstart(a),
    }
}

fn progress(len: u64, msg: &'static str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("invariant: static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

fn fixtures_generate(a: GenerateArgs) -> Result<()> {
    let goals = a.goals.unwrap_or((a.products * 3 / 2).max(1500));
    let pb = progress(3, "generating");
    let catalog =
        store::fixtures::generate(a.products, goals, a.seed).context("generating fixtures")?;
    pb.inc(1);
    pb.set_message("writing");
    catalog
        .write_dir(&a.out)
        .with_context(|| format!("writing fixtures to {}", a.out.display()))?;
    pb.inc(1);
    let manifest = serde_json::json!({
        "generator": "agentq fixtures generate",
        "generator_version": store::fixtures::GENERATOR_VERSION,
        "seed": a.seed,
        "products": catalog.products().len(),
        "goals": catalog.goals().len(),
        "data_hash": catalog.data_hash(),
        "splits": {
            "test": range_json(catalog.split(Split::Test)),
            "dev": range_json(catalog.split(Split::Dev)),
            "train": range_json(catalog.split(Split::Train)),
        },
    });
    let mut bytes = serde_json::to_vec_pretty(&manifest)?;
    bytes.push(b'\n');
    store::catalog::write_atomic(&a.out.join("manifest.json"), &bytes)?;
    pb.inc(1);
    pb.finish_and_clear();
    eprintln!(
        "wrote {} products and {} goals to {} (seed {}, data hash {})",
        catalog.products().len(),
        catalog.goals().len(),
        a.out.display(),
        a.seed,
        &catalog.data_hash()[..16]
    );
    Ok(())
}

fn range_json(r: std::ops::Range<usize>) -> serde_json::Value {
    serde_json::json!([r.start, r.end])
}

fn fixtures_check(a: CheckArgs) -> Result<()> {
    let loaded = a.data.load()?;
    let range = loaded.catalog.split(a.split);
    let d = store::fixtures::difficulty(&loaded.catalog, &loaded.index, range);
    if a.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &d)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "split            {} ({} goals)",
        a.split.name(),
        d.goals
    )?;
    writeln!(out, "with options     {:.1}%", 100.0 * d.with_options)?;
    writeln!(out, "same-query items {:.1} per goal", d.mean_same_query)?;
    writeln!(out, "target 1st hit   {:.1}%", 100.0 * d.target_first_hit)?;
    writeln!(
        out,
        "rule first hit   price ok {:.1}%, attributes {:.1}%, type {:.2}",
        100.0 * d.rule_price_ok,
        100.0 * d.rule_attributes,
        d.rule_type
    )?;
    writeln!(
        out,
        "rule baseline    score {:.1}, success {:.1}%  (WebShop: 45.6, 9.6%)",
        d.rule_score, d.rule_success
    )?;
    Ok(())
}

fn tasks(a: TasksArgs) -> Result<()> {
    let loaded = a.data.load()?;
    let catalog = &loaded.catalog;
    let range = catalog.split(a.split);
    let limit = a.limit.unwrap_or(usize::MAX);
    let picked: Vec<usize> = range.skip(a.offset).take(limit).collect();
    let mut out = std::io::stdout().lock();
    if a.json {
        let items: Vec<serde_json::Value> = picked
            .iter()
            .map(|&i| {
                let g = &catalog.goals()[i];
                serde_json::json!({
                    "index": i,
                    "task": format!("{}:{}", a.split.name(), i - catalog.split(a.split).start),
                    "instruction": g.instruction_text,
                    "asin": g.asin,
                    "price_upper": g.price_upper,
                    "attributes": g.attributes,
                    "goal_options": g.goal_options.values(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &items)?;
        writeln!(out)?;
    } else {
        for &i in &picked {
            let g = &catalog.goals()[i];
            writeln!(out, "{i:>6}  {}  {}", g.asin, g.instruction_text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    /// Every flag value is the name the app layer records (run headers, default run names).
    fn same_names<A: ValueEnum + Into<B> + Copy, B>(name: impl Fn(B) -> &'static str) {
        for v in A::value_variants() {
            let flag = v.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), name((*v).into()));
        }
    }

    #[test]
    fn flag_values_are_the_recorded_names() {
        same_names::<super::envs::DriverArg, agentq_app::envs::Driver>(|d| d.name());
        same_names::<super::runs::AgentArg, agentq_app::eval::AgentKind>(|a| a.name());
        same_names::<super::collect::ProposerArg, agentq_app::search::Proposer>(|p| p.name());
        same_names::<super::collect::CriticArg, agentq_app::search::CriticKind>(|c| c.name());
        same_names::<super::lmargs::PrecisionArg, agentq_app::models::Precision>(|p| p.name());
        same_names::<super::lm::IsaArg, crate::lm::cpu::simd::Isa>(|i| i.name());
        assert_eq!(
            super::envs::DriverArg::value_variants().len(),
            agentq_app::envs::Driver::ALL.len()
        );
        assert_eq!(
            super::runs::AgentArg::value_variants().len(),
            agentq_app::eval::AgentKind::ALL.len()
        );
        assert_eq!(
            super::collect::ProposerArg::value_variants().len(),
            agentq_app::search::Proposer::ALL.len()
        );
        assert_eq!(
            super::collect::CriticArg::value_variants().len(),
            agentq_app::search::CriticKind::ALL.len()
        );
        assert_eq!(
            super::lmargs::PrecisionArg::value_variants().len(),
            agentq_app::models::Precision::ALL.len()
        );
        assert_eq!(
            super::lm::IsaArg::value_variants().len(),
            crate::lm::cpu::simd::Isa::ALL.len()
        );
    }
}
