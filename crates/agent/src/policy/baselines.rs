//! Non-LLM policies: `rule` (WebShop's rule baseline), `oracle` (knows the goal), `random`
//! (seeded) and `scripted` (a fixed action list).

use std::sync::Arc;

use super::{Candidate, Context, Error, PageKind, Policy, Proposal, Result};
use agentq_core::rng::Rng;
use agentq_env::observe::Role;
use agentq_env::GoalKnowledge;

/// Labels of the navigation buttons of the store.
const BACK: &str = "back to search";
const NEXT: &str = "next >";
const PREV: &str = "< prev";
const BUY: &str = "buy now";

/// Pads `first` (with its thought) with other valid actions of the page (deterministic
/// order) up to `k`.
fn with_alternatives(first: String, ctx: &Context<'_>) -> Proposal {
    let thought = super::prompt::oracle_thought(ctx.page(), &first);
    let mut cands = vec![Candidate {
        action: first,
        logprob: None,
        thought: Some(thought),
    }];
    for c in &ctx.observation.clickables {
        if cands.len() >= ctx.k.max(1) {
            break;
        }
        let a = format!("click[{c}]");
        if cands.iter().all(|x| x.action != a) {
            cands.push(Candidate::plain(a));
        }
    }
    Proposal {
        candidates: cands,
        ..Proposal::default()
    }
}

/// Any way off a dead-end page: back to search, previous page, or the first clickable.
fn escape(ctx: &Context<'_>) -> Result<String> {
    for l in [BACK, PREV] {
        if ctx.can_click(l) {
            return Ok(format!("click[{l}]"));
        }
    }
    ctx.observation
        .clickables
        .first()
        .map(|c| format!("click[{c}]"))
        .ok_or_else(|| Error::NoAction(format!("nothing to click on {}", ctx.observation.url)))
}

/// WebShop's rule baseline: search the instruction, click the first result, Buy Now (no
/// options).
#[derive(Debug, Clone, Default)]
pub struct Rule;

#[async_trait::async_trait]
impl Policy for Rule {
    fn describe(&self) -> String {
        "rule".into()
    }

    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal> {
        let action = match ctx.page() {
            PageKind::Home if ctx.observation.has_search_bar => {
                format!("search[{}]", ctx.instruction.to_lowercase())
            }
            PageKind::Results => match ctx.product_links().first() {
                Some(p) => format!("click[{p}]"),
                None => escape(ctx)?,
            },
            PageKind::Item if ctx.can_click(BUY) => format!("click[{BUY}]"),
            _ => escape(ctx)?,
        };
        Ok(Proposal::one(action))
    }
}

/// Knows the goal: searches for what the instruction says (without its price clause), then,
/// if the target is not within the first results pages, for the target's title; opens the
/// target, picks the goal's options, buys.
/// Generates demonstrations and checks that tasks are solvable. With `k > 1` it pads its
/// choice with other valid actions (a proposer for search tests).
#[derive(Clone)]
pub struct Oracle {
    knows: Arc<dyn GoalKnowledge>,
}

impl std::fmt::Debug for Oracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Oracle")
    }
}

impl Oracle {
    /// An oracle over what the site's data says of each goal (for WebShop:
    /// `agentq_env::sites::webshop::CatalogKnowledge` over the catalog the env serves).
    pub fn new(knows: Arc<dyn GoalKnowledge>) -> Self {
        Oracle { knows }
    }
}

/// Results pages the oracle looks through before searching again.
const ORACLE_MAX_PAGES: usize = 5;

#[async_trait::async_trait]
impl Policy for Oracle {
    fn describe(&self) -> String {
        "oracle".into()
    }

    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal> {
        let goal = self
            .knows
            .hint(ctx.goal)
            .ok_or_else(|| Error::UnknownTask(format!("goal {}", ctx.goal)))?;
        let target = goal.target.clone();
        let action = match ctx.page() {
            PageKind::Home if ctx.observation.has_search_bar => {
                let searches = ctx
                    .history
                    .iter()
                    .filter(|t| t.action.starts_with("search["))
                    .count();
                // First what the instruction says (a query a model could write), then the
                // target's title (always finds it).
                let queries = [
                    instruction_query(&goal.instruction),
                    goal.target_name.clone(),
                ];
                format!("search[{}]", queries[searches % queries.len()])
            }
            PageKind::Results => {
                let page: usize = ctx
                    .observation
                    .url
                    .rsplit('/')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                if ctx.can_click(&target) {
                    format!("click[{target}]")
                } else if ctx.can_click(NEXT) && page < ORACLE_MAX_PAGES {
                    format!("click[{NEXT}]")
                } else {
                    escape(ctx)?
                }
            }
            PageKind::Item => {
                let on_target = ctx
                    .observation
                    .url
                    .to_lowercase()
                    .contains(&format!("/{target}/"));
                if !on_target {
                    escape_item(ctx)?
                } else {
                    let missing = goal.options.iter().find(|v| {
                        ctx.observation
                            .elements
                            .iter()
                            .any(|e| e.role == Role::Radio && e.label == **v && !e.selected)
                    });
                    match missing {
                        Some(v) => format!("click[{v}]"),
                        None if ctx.can_click(BUY) => format!("click[{BUY}]"),
                        None => escape(ctx)?,
                    }
                }
            }
            PageKind::SubPage => escape_item(ctx)?,
            _ => escape(ctx)?,
        };
        Ok(with_alternatives(action, ctx))
    }
}

/// The instruction as a search query: lower-cased, without the price clause.
pub fn instruction_query(instruction: &str) -> String {
    let mut q = instruction.to_lowercase();
    for cut in [
        ", and price lower than",
        " and price lower than",
        ", price lower than",
        " price lower than",
    ] {
        if let Some(i) = q.find(cut) {
            q.truncate(i);
            break;
        }
    }
    q.trim().trim_end_matches(',').trim().to_string()
}

/// Leaves an item page for the results list (`< prev`), else back to search.
fn escape_item(ctx: &Context<'_>) -> Result<String> {
    if ctx.can_click(PREV) {
        Ok(format!("click[{PREV}]"))
    } else {
        escape(ctx)
    }
}

/// Uniformly random valid actions, seeded by (policy seed, episode seed, goal, step); a
/// search uses a random subset of the instruction's words. `click[search]` (a no-op that
/// WebShop lists among the clickables) is never chosen.
#[derive(Debug, Clone)]
pub struct RandomPolicy {
    seed: u64,
}

impl RandomPolicy {
    /// A random policy with its own seed (mixed with each episode's seed).
    pub fn new(seed: u64) -> Self {
        RandomPolicy { seed }
    }
}

#[async_trait::async_trait]
impl Policy for RandomPolicy {
    fn describe(&self) -> String {
        format!("random(seed={})", self.seed)
    }

    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal> {
        if ctx.available.is_empty() {
            return Err(Error::NoAction(format!(
                "no valid action on {}",
                ctx.observation.url
            )));
        }
        let mut rng = Rng::keyed(
            self.seed ^ ctx.seed.rotate_left(17),
            &format!("{}/{}", ctx.goal, ctx.history.len()),
        );
        // `click[search]` is listed (WebShop lists it) but is always a no-op: skip it.
        let mut order: Vec<usize> = (0..ctx.available.len())
            .filter(|&i| ctx.available[i] != "click[search]")
            .collect();
        rng.shuffle(&mut order);
        let words: Vec<&str> = ctx.instruction.split_whitespace().collect();
        let cands = order
            .into_iter()
            .take(ctx.k.max(1))
            .map(|i| {
                let a = &ctx.available[i];
                if a == "search[...]" {
                    let n = 1 + rng.below(words.len().max(1));
                    let mut idx = rng.sample_indices(words.len(), n.min(words.len()));
                    idx.sort_unstable();
                    let q: Vec<&str> = idx.iter().map(|&j| words[j]).collect();
                    let q = if q.is_empty() {
                        "product".to_string()
                    } else {
                        q.join(" ").to_lowercase()
                    };
                    Candidate::plain(format!("search[{q}]"))
                } else {
                    Candidate::plain(a.clone())
                }
            })
            .collect();
        Ok(Proposal {
            candidates: cands,
            ..Proposal::default()
        })
    }
}

/// Plays a fixed list of actions, one per step.
#[derive(Debug, Clone)]
pub struct Scripted {
    actions: Vec<String>,
}

impl Scripted {
    /// A policy that takes `actions` in order.
    pub fn new(actions: Vec<String>) -> Self {
        Scripted { actions }
    }
}

#[async_trait::async_trait]
impl Policy for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }

    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal> {
        self.actions
            .get(ctx.history.len())
            .map(|a| Proposal::one(a.clone()))
            .ok_or_else(|| Error::NoAction("the script is exhausted".into()))
    }
}
