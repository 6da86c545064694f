//! The WebShop adapter: [`Site`] over `agentq-webshop` (its page URLs, session API, split
//! layout, reward breakdown and what an oracle may know of a goal).

use std::sync::Arc;

use agentq_webshop::http::session_id;
use agentq_webshop::pages::Page;
use agentq_webshop::{split_range, Catalog, RewardBreakdown};

use super::RewardDetail;
use crate::observe::{Element, Observation, Role};
use crate::site::{GoalHint, GoalKnowledge, Outcome, PageKind, Site, Split};
use crate::{Error, Result, TaskError, TaskRef};

/// The registry name.
pub const NAME: &str = "webshop";

/// Base URL shown in observations whatever address the site really has, so that drivers
/// agree byte for byte (WebShop's text env shows the same base).
pub const CANONICAL_BASE: &str = "http://127.0.0.1:3000";

/// The WebShop-compatible store.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebShop;

/// Classifies a WebShop-style URL (`…/search_results/…`, `…/item_page/…`).
pub fn page_kind_of_url(url: &str) -> PageKind {
    let path = url.split("://").nth(1).unwrap_or(url);
    let mut parts = path.split('/').skip(1);
    match parts.next().unwrap_or("") {
        "search_results" => PageKind::Results,
        "item_page" => PageKind::Item,
        "item_sub_page" => PageKind::SubPage,
        "done" => PageKind::Done,
        "" => PageKind::Home,
        s if !s.contains('_') && parts.next().is_none() => PageKind::Home,
        _ => PageKind::Other,
    }
}

impl Site for WebShop {
    fn name(&self) -> &'static str {
        NAME
    }

    fn task_index(&self, task: TaskRef) -> Result<usize, TaskError> {
        // The train split's end is the data's; `/api/sessions` refuses indices past it.
        task.resolve(|s| split_range(s, usize::MAX), usize::MAX)
    }

    fn split_range(&self, s: Split, n_tasks: usize) -> std::ops::Range<usize> {
        split_range(s, n_tasks)
    }

    fn open_session(&self, goal: usize, seed: u64) -> (String, serde_json::Value) {
        (
            "/api/sessions".into(),
            serde_json::json!({"task": goal.to_string(), "seed": seed}),
        )
    }

    fn canonical_session(&self, goal: usize, seed: u64) -> String {
        session_id(goal, seed, 0)
    }

    fn start_path(&self, session: &str) -> String {
        Page::Home.to_path(session)
    }

    fn search_path(&self, session: &str, query: &str) -> Result<String> {
        let q = serde_urlencoded::to_string([("q", query)])
            .map_err(|e| Error::Protocol(e.to_string()))?;
        Ok(format!("/{session}/search?{q}"))
    }

    fn display_url(&self, path: &str) -> String {
        match Page::from_path(path) {
            Ok((sid, page)) => page.webshop_url(CANONICAL_BASE, &sid),
            Err(_) => format!("{CANONICAL_BASE}{path}"),
        }
    }

    fn page_kind(&self, obs: &Observation) -> PageKind {
        page_kind_of_url(&obs.url)
    }

    fn is_terminal(&self, path: &str) -> bool {
        matches!(Page::from_path(path), Ok((_, Page::Done { .. })))
    }

    fn rebase(&self, path: &str, to: Option<&str>) -> Result<(String, String)> {
        let (sid, page) = Page::from_path(path)
            .map_err(|e| Error::Protocol(format!("snapshot url {path}: {e}")))?;
        let moved = page.to_path(to.unwrap_or(&sid));
        Ok((sid, moved))
    }

    fn state_path(&self, session: &str) -> String {
        format!("/api/sessions/{session}")
    }

    fn state_is_final(&self, state: &serde_json::Value) -> bool {
        state["done"].as_bool() == Some(true)
    }

    fn outcome(&self, state: &serde_json::Value) -> Result<Outcome> {
        let b: RewardBreakdown = serde_json::from_value(state["purchase"]["breakdown"].clone())
            .map_err(|e| {
                Error::Protocol(format!("session info without a reward breakdown: {e}"))
            })?;
        Ok(Outcome {
            reward: b.total,
            detail: RewardDetail::WebShop(b),
        })
    }

    fn visited_key(&self, clicked: &Element) -> Option<String> {
        (clicked.role == Role::Link).then(|| clicked.label.to_uppercase())
    }
}

/// The report table of a breakdown.
pub(super) fn breakdown_table(d: &RewardBreakdown) -> (Vec<&'static str>, Vec<String>) {
    (
        vec![
            "total",
            "type",
            "attributes",
            "options",
            "price ok",
            "title score",
        ],
        vec![
            format!("{:.4}", d.total),
            d.r_type.to_string(),
            format!(
                "{:.3} ({} matched, w {:.3})",
                d.r_att, d.num_attr_matches, d.w_att
            ),
            d.r_option
                .map(|r| format!("{r:.3} ({} matched)", d.num_option_matches))
                .unwrap_or_else(|| "none asked".into()),
            d.r_price.to_string(),
            format!("{:.3}", d.title_score),
        ],
    )
}

/// What an oracle knows of WebShop goals: the catalog's answer key.
#[derive(Debug, Clone)]
pub struct CatalogKnowledge(pub Arc<Catalog>);

impl GoalKnowledge for CatalogKnowledge {
    fn hint(&self, goal: usize) -> Option<GoalHint> {
        let g = self.0.goal(goal)?;
        let target_name = self
            .0
            .product(&g.asin)
            .map(|p| p.title.to_lowercase())
            .unwrap_or_else(|| g.name.to_lowercase());
        Some(GoalHint {
            instruction: g.instruction_text.clone(),
            target: g.asin.to_lowercase(),
            target_name,
            options: g
                .goal_options
                .values()
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }
}

/// A purchase that earns reward 1.0 for `goal` when the target is on the first results page
/// of a search for its title: search, click the ASIN, click each goal option, buy.
pub fn perfect_actions(catalog: &Catalog, goal: usize) -> Option<Vec<String>> {
    let g = catalog.goal(goal)?;
    let p = catalog.product(&g.asin)?;
    let mut v = vec![
        format!("search[{}]", p.title.to_lowercase()),
        format!("click[{}]", p.asin.to_lowercase()),
    ];
    for o in g.goal_options.values() {
        v.push(format!("click[{o}]"));
    }
    v.push("click[buy now]".into());
    Some(v)
}

/// A wrong-option purchase for `goal`: like [`perfect_actions`] but choosing, for the first
/// option group the goal asks for, another value of that group.
pub fn wrong_option_actions(catalog: &Catalog, goal: usize) -> Option<Vec<String>> {
    let g = catalog.goal(goal)?;
    let p = catalog.product(&g.asin)?;
    let wanted = g.goal_options.values();
    let first = wanted.first()?;
    let group = p
        .options
        .iter()
        .find(|grp| grp.values.iter().any(|v| v == first))?;
    let other = group
        .values
        .iter()
        .find(|v| !wanted.contains(&v.as_str()))?;
    Some(vec![
        format!("search[{}]", p.title.to_lowercase()),
        format!("click[{}]", p.asin.to_lowercase()),
        format!("click[{other}]"),
        "click[buy now]".into(),
    ])
}

/// The conformance plan on WebShop data: the first test goal (of 50) with options whose
/// target is found by its title, its perfect purchase, and actions invalid on the search
/// page (the action grammar's edge cases and a click on nothing).
pub fn conformance_plan(catalog: &Catalog) -> Option<crate::check::Plan> {
    let (goal, solve) = (0..catalog.goals().len().min(50))
        .filter(|&g| !catalog.goals()[g].goal_options.is_empty())
        .find_map(|g| Some((g, perfect_actions(catalog, g)?)))?;
    Some(crate::check::Plan {
        task: TaskRef {
            split: None,
            index: goal,
        },
        solve,
        invalid: [
            "click[nonexistent]",
            "search[]",
            "search[   ]",
            "dance",
            "click[search]",
            "search[foo [bar]]",
        ]
        .map(String::from)
        .to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_kinds() {
        let b = CANONICAL_BASE;
        assert_eq!(page_kind_of_url(&format!("{b}/abc")), PageKind::Home);
        assert_eq!(
            page_kind_of_url(&format!("{b}/search_results/abc/red%20shoes/1")),
            PageKind::Results
        );
        assert_eq!(
            page_kind_of_url(&format!("{b}/item_page/abc/B0/q/1/%7B%7D")),
            PageKind::Item
        );
        assert_eq!(
            page_kind_of_url(&format!("{b}/item_sub_page/abc/B0/q/1/Description/%7B%7D")),
            PageKind::SubPage
        );
        assert_eq!(
            page_kind_of_url(&format!("{b}/done/abc/B0/%7B%7D")),
            PageKind::Done
        );
    }

    #[test]
    fn task_indices_follow_webshop_splits() {
        let s = WebShop;
        let t = |x: &str| s.task_index(x.parse().unwrap());
        assert_eq!(t("test:7").unwrap(), 7);
        assert_eq!(t("test:499").unwrap(), 499);
        assert_eq!(t("dev:3").unwrap(), 503);
        assert_eq!(t("train:0").unwrap(), 1500);
        assert_eq!(t("train:100000").unwrap(), 101500);
        assert_eq!(t("42").unwrap(), 42);
        // A split-relative index never crosses into the next split.
        let err = t("test:500").unwrap_err().to_string();
        assert!(
            err.contains("test:500") && err.contains("500 tasks"),
            "{err}"
        );
        assert!(t("dev:1000").is_err());
    }

    #[test]
    fn rebase_moves_a_page_to_another_session() {
        let s = WebShop;
        let (sid, moved) = s
            .rebase("/search_results/abc/red%20shoes/2", Some("xyz"))
            .unwrap();
        assert_eq!(sid, "abc");
        assert_eq!(moved, "/search_results/xyz/red%20shoes/2");
        assert!(s.rebase("/nope/a/b/c/d/e/f", None).is_err());
    }
}
