//! `agentq diagnose episodes|pairs|scores|compare`: why the Agent Q loop does or does not lift a
//! model, in numbers. The work is the app layer's ([`agentq_app::diagnose`]); this module
//! turns flags into its inputs and prints its reports (text, or JSON with `--json`).

use std::path::{Path, PathBuf};

use agentq_app::diagnose::{self, PairGroup};
use anyhow::Result;
use clap::{Args, Subcommand};

use super::envs::EnvArgs;
use super::lmargs::LmArgs;
use super::progress::Bars;

/// `agentq diagnose …`
#[derive(Debug, Subcommand)]
pub enum DiagnoseCommand {
    /// What a run's episodes ended in (success, the target bought with a wrong option,
    /// another product, no purchase while paging or searching) and how they moved.
    Episodes(EpisodesArgs),
    /// The quality of a collection's step-level pairs: the oracle's action at each pair's
    /// node, and the oracle's result after each of the two actions within the step limit.
    Pairs(PairsArgs),
    /// Log-probs of pairs (held-out ones, to see generalisation) under a model before and
    /// after trained adapters.
    Scores(ScoresArgs),
    /// Two evaluations of the same tasks, task by task: each success rate with its 95 %
    /// interval, tasks won by one run only, and the success and score differences with
    /// paired-bootstrap 95 % intervals.
    Compare(CompareArgs),
}

/// Arguments of `agentq diagnose compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run compared against (a run directory or an episodes JSONL file).
    pub a: PathBuf,
    /// The other run.
    pub b: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq diagnose episodes`.
#[derive(Debug, Args)]
pub struct EpisodesArgs {
    /// The run directory (or an episodes JSONL file).
    pub run: PathBuf,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq diagnose pairs`.
#[derive(Debug, Args)]
pub struct PairsArgs {
    /// A collection's run directory or its pairs.jsonl.
    pub pairs: PathBuf,
    /// The environment the pairs were collected in (give the same --max-steps).
    #[command(flatten)]
    pub env: EnvArgs,
    /// Print JSON (with every pair's verdict).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq diagnose scores`.
#[derive(Debug, Args)]
pub struct ScoresArgs {
    /// A collection's run directory or its pairs.jsonl.
    pub pairs: PathBuf,
    /// The model before training (`--adapter` for the adapters it already has).
    #[command(flatten)]
    pub lm: LmArgs,
    /// Adapters added on top for the model after training (repeat for several).
    #[arg(long, required = true)]
    pub trained: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn pairs_file(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join(agentq_app::search::PAIRS_FILE)
    } else {
        p.to_path_buf()
    }
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "—".into()
    } else {
        format!("{:.0}%", 100.0 * a as f64 / b as f64)
    }
}

fn group_line(name: &str, g: &PairGroup) -> String {
    format!(
        "{name:<16} {:>5} pairs · oracle picks chosen {} of {} decidable ({}) · oracle after chosen better {} / worse {} / same {}",
        g.pairs,
        g.oracle_chosen,
        g.oracle_decidable,
        pct(g.oracle_chosen, g.oracle_decidable),
        pct(g.continuation_better, g.pairs),
        pct(g.continuation_worse, g.pairs),
        pct(g.continuation_tied, g.pairs),
    )
}

/// `agentq diagnose …`.
pub fn diagnose(c: DiagnoseCommand) -> Result<()> {
    match c {
        DiagnoseCommand::Episodes(a) => {
            let f = a.env.factory(None)?;
            let run = agentq_trajectory::load(&a.run)?;
            let m = diagnose::failure_modes(&run.episodes, &*f.knowledge())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            let n = m.episodes;
            println!("{n} episodes");
            println!(
                "  success                      {:>4} ({})",
                m.success,
                pct(m.success, n)
            );
            println!(
                "  target, wrong option/price   {:>4} ({})",
                m.target_not_exact,
                pct(m.target_not_exact, n)
            );
            println!(
                "  another product              {:>4} ({})",
                m.other_product,
                pct(m.other_product, n)
            );
            println!(
                "  no purchase                  {:>4} ({}); paging {}, searching {}",
                m.no_purchase,
                pct(m.no_purchase, n),
                m.no_purchase_paging,
                m.no_purchase_searching
            );
            println!(
                "  target on a results page     {:>4} ({}); opened in {}",
                m.target_seen,
                pct(m.target_seen, n),
                pct(m.target_opened, m.target_seen)
            );
            println!("  goals with options           {:>4}; some option selected in {}, every goal option in {}", m.goals_with_options, pct(m.selected_options, m.goals_with_options), pct(m.selected_goal_options, m.goals_with_options));
            println!("  per episode: {:.2} steps, {:.2} searches, {:.2} next >, {:.2} products opened; parse errors in {} episodes", m.mean_steps, m.mean_searches, m.mean_next_clicks, m.mean_items_opened, m.parse_error_episodes);
        }
        DiagnoseCommand::Compare(c) => {
            let (ra, rb) = (
                agentq_trajectory::load(&c.a)?,
                agentq_trajectory::load(&c.b)?,
            );
            let m = diagnose::compare(&ra.episodes, &rb.episodes);
            if c.json {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            let diff = |d: &agentq_trajectory::stats::PairedDiff| {
                format!("{:+.1} ({:+.1} to {:+.1})", d.diff, d.ci.lo, d.ci.hi)
            };
            println!(
                "{} tasks in both runs (only in A {}, only in B {})",
                m.tasks, m.only_in.0, m.only_in.1
            );
            for (name, path, (rate, ci)) in [("A", &c.a, m.success[0]), ("B", &c.b, m.success[1])] {
                println!(
                    "  {name} success {rate:.1}% ({:.1}–{:.1})  {}",
                    ci.lo,
                    ci.hi,
                    path.display()
                );
            }
            println!(
                "  won by both {}, by A only {}, by B only {}",
                m.won.0, m.won.1, m.won.2
            );
            println!(
                "  B − A: success {} points, score {} (paired bootstrap 95 %)",
                diff(&m.success_diff),
                diff(&m.score_diff)
            );
        }
        DiagnoseCommand::Pairs(a) => {
            let f = a.env.factory(None)?;
            let pairs = diagnose::read_pairs(&pairs_file(&a.pairs))?;
            let r = diagnose::audit_pairs(&pairs, &f, &Bars::default())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!(
                "{} step pairs from {} trees ({} trajectory pairs not audited); both children visited once in {}",
                r.step_pairs,
                r.trees,
                r.trajectory_pairs,
                pct(r.single_visits, r.step_pairs)
            );
            println!("  by page:  {:?}", r.by_page);
            println!("  by depth: {:?}", r.by_depth);
            println!("{}", group_line("all", &r.all));
            println!("{}", group_line("search value", &r.value_decided));
            println!("{}", group_line("critic only", &r.critic_decided));
        }
        DiagnoseCommand::Scores(a) => {
            let before = a.lm.settings();
            let mut after = before.clone();
            after.adapters.extend(a.trained.iter().cloned());
            let pairs = diagnose::read_pairs(&pairs_file(&a.pairs))?;
            let (mb, ma) = (before.load()?, after.load()?);
            let s = diagnose::score_pairs(&pairs, &*mb, &*ma, &Bars::default())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!("{} pairs", s.pairs);
            println!(
                "  log p(chosen)   {:.3} → {:.3} ({:+.3})",
                s.chosen_before,
                s.chosen_after,
                s.chosen_after - s.chosen_before
            );
            println!(
                "  log p(rejected) {:.3} → {:.3} ({:+.3})",
                s.rejected_before,
                s.rejected_after,
                s.rejected_after - s.rejected_before
            );
            println!(
                "  margin grew on {:.0}% of pairs",
                100.0 * s.margin_accuracy
            );
            println!(
                "  the policy ranks chosen first: {:.0}% → {:.0}%",
                100.0 * s.prefers_chosen_before,
                100.0 * s.prefers_chosen_after
            );
            if let Some(g) = s.ref_gap {
                println!("  mean |log p before − recorded reference| {g:.3}");
            }
        }
    }
    Ok(())
}
