//! The web environment over a transport: one episode logic for the in-process and HTTP
//! drivers.
//!
//! A [`Transport`] fetches pages by path and calls the store's JSON API; everything else —
//! action parsing, clickable resolution, observation, step counting, truncation, the lock
//! after a purchase, snapshots — lives here once, so drivers cannot drift apart.

use std::collections::BTreeMap;

use super::observe::{self, ObsMode, Observation, ObserveContext, Role};
use super::{Action, Env, Error, Result, Snapshot, Step, StepInfo, TaskRef};
use agentq_webshop::http::session_id;
use agentq_webshop::pages::Page;
use agentq_webshop::RewardBreakdown;

/// Base URL shown in observations whatever address the site really has, so that drivers
/// agree byte for byte (WebShop's text env shows the same base).
pub const CANONICAL_BASE: &str = "http://127.0.0.1:3000";

/// A fetched page.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final path (and query) after redirects, starting with `/`.
    pub path: String,
    /// Page HTML.
    pub html: String,
}

/// How an env reaches the site.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// GET a page by path, following redirects.
    async fn get(&self, path: &str) -> Result<Fetched>;
    /// POST JSON to an API path and return the JSON answer.
    async fn post_json(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value>;
    /// GET JSON from an API path.
    async fn get_json(&self, path: &str) -> Result<serde_json::Value>;
    /// Activates the element with DOM id `id` on the current page, whose target is `path`.
    /// Transports without a DOM load `path`; the browser clicks the real element.
    async fn click(&self, id: &str, path: &str) -> Result<Fetched> {
        let _ = id;
        self.get(path).await
    }
    /// Submits `query` through the current page's search box, whose submission leads to
    /// `path`. Transports without a DOM load `path`; the browser types and submits.
    async fn search(&self, query: &str, path: &str) -> Result<Fetched> {
        let _ = query;
        self.get(path).await
    }
    /// File of the screenshot of the page last loaded, if this transport takes them.
    fn last_screenshot(&self) -> Option<String> {
        None
    }
}

/// How a page load is triggered on the current page.
#[derive(Debug, Clone, Copy)]
enum Via<'a> {
    /// Plain navigation to the path.
    Url,
    /// Clicking the element with this DOM id.
    Click(&'a str),
    /// Typing this query into the search box and submitting.
    Search(&'a str),
}

/// Episode settings (from the env spec, overridable by flags).
#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// Steps before `truncated`.
    pub max_steps: usize,
    /// Observation mode agents are shown (all renderings are computed anyway).
    pub mode: ObsMode,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            max_steps: 15,
            mode: ObsMode::Text,
        }
    }
}

#[derive(Debug, Clone)]
struct Episode {
    goal: usize,
    seed: u64,
    session: String,
    path: String,
    obs: Observation,
    steps: usize,
    terminated: bool,
    truncated: bool,
    reward: f64,
    visited: Vec<String>,
    form: BTreeMap<String, String>,
}

/// The environment over a transport.
pub struct WebEnv<T: Transport> {
    transport: T,
    config: EnvConfig,
    ep: Option<Episode>,
}

impl<T: Transport> WebEnv<T> {
    /// An environment over `transport`.
    pub fn new(transport: T, config: EnvConfig) -> Self {
        WebEnv {
            transport,
            config,
            ep: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EnvConfig {
        &self.config
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    async fn create_session(&self, goal: usize, seed: u64) -> Result<String> {
        let v = self
            .transport
            .post_json(
                "/api/sessions",
                serde_json::json!({"task": goal.to_string(), "seed": seed}),
            )
            .await?;
        v["session"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Protocol(format!("session answer without `session`: {v}")))
    }

    /// Fetches `path` (whose session id may be the canonical one) in session `real` and
    /// observes it with the canonical session id of (`goal`, `seed`) in place of the real
    /// one, so that observations (URLs, HTML) depend only on task, seed and actions — not on
    /// how many sessions the server has seen.
    async fn load(
        &self,
        path: &str,
        ids: (&str, &str),
        visited: &[String],
        via: Via<'_>,
    ) -> Result<(String, Observation)> {
        let (real, canon) = ids;
        let target = path.replace(canon, real);
        let f = match via {
            Via::Click(id) => self.transport.click(id, &target).await?,
            Via::Search(q) => self.transport.search(q, &target).await?,
            Via::Url => self.transport.get(&target).await?,
        };
        let html = f.html.replace(real, canon);
        let shown = display_url(&f.path.replace(real, canon));
        let obs = observe::observe_with(
            &html,
            &shown,
            &ObserveContext {
                visited_asins: &visited.to_vec(),
            },
        );
        Ok((f.path, obs))
    }

    async fn purchase_detail(&self, session: &str) -> Result<RewardBreakdown> {
        let v = self
            .transport
            .get_json(&format!("/api/sessions/{session}"))
            .await?;
        let b = v["purchase"]["breakdown"].clone();
        serde_json::from_value(b)
            .map_err(|e| Error::Protocol(format!("session info without a reward breakdown: {e}")))
    }
}

/// The URL an observation shows for a site path: WebShop's simulated URL for store pages.
pub fn display_url(path: &str) -> String {
    match Page::from_path(path) {
        Ok((sid, page)) => page.webshop_url(CANONICAL_BASE, &sid),
        Err(_) => format!("{CANONICAL_BASE}{path}"),
    }
}

fn no_op(ep: &Episode, error: Option<String>, locked: bool) -> Step {
    Step {
        observation: ep.obs.clone(),
        reward: 0.0,
        terminated: ep.terminated,
        truncated: ep.truncated,
        info: StepInfo {
            error,
            locked,
            steps: ep.steps,
            reward_detail: None,
        },
    }
}

#[async_trait::async_trait]
impl<T: Transport> Env for WebEnv<T> {
    async fn reset(&mut self, task: TaskRef, seed: u64) -> Result<Observation> {
        let goal = task.goal_index();
        let session = self.create_session(goal, seed).await?;
        let home = Page::Home.to_path(&session);
        let canon = session_id(goal, seed, 0);
        let (path, obs) = self.load(&home, (&session, &canon), &[], Via::Url).await?;
        self.ep = Some(Episode {
            goal,
            seed,
            session,
            path,
            obs: obs.clone(),
            steps: 0,
            terminated: false,
            truncated: false,
            reward: 0.0,
            visited: Vec::new(),
            form: BTreeMap::new(),
        });
        Ok(obs)
    }

    async fn step(&mut self, action: &str) -> Result<Step> {
        let Some(ep) = self.ep.as_ref() else {
            return Err(Error::NotReset);
        };
        if ep.terminated || ep.truncated {
            return Ok(no_op(ep, None, true));
        }
        let mut ep = ep.clone();
        ep.steps += 1;
        let limit = self.config.max_steps;
        let finish = |mut ep: Episode, err: Option<String>| {
            if !ep.terminated && ep.steps >= limit {
                ep.truncated = true;
            }
            let step = no_op(&ep, err, false);
            (ep, step)
        };
        let mut click_id = None;
        let mut search_query = None;
        let target_path = match Action::parse(action) {
            Err(e) => {
                let (ep, step) = finish(ep, Some(e.to_string()));
                self.ep = Some(ep);
                return Ok(step);
            }
            Ok(Action::Search { query }) => {
                if ep.obs.has_search_bar {
                    search_query = Some(query.clone());
                }
                let q = serde_urlencoded::to_string([("q", query.as_str())])
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                format!("/{}/search?{q}", ep.session)
            }
            Ok(Action::Click { target }) => {
                let el = if target == "search" {
                    None
                } else {
                    ep.obs.clickable(&target).or_else(|| {
                        ep.obs.elements.iter().find(|e| {
                            e.id == target
                                && matches!(e.role, Role::Button | Role::Link | Role::Radio)
                        })
                    })
                };
                match el.and_then(|e| e.target.clone()) {
                    Some(t) => {
                        click_id = el.map(|e| e.id.clone());
                        if let Some(asin) = el
                            .filter(|e| e.role == Role::Link)
                            .map(|e| e.label.to_uppercase())
                        {
                            if !ep.visited.contains(&asin) {
                                ep.visited.push(asin);
                            }
                        }
                        t
                    }
                    None => {
                        let (ep, step) =
                            finish(ep, Some(format!("no clickable {target:?} on this page")));
                        self.ep = Some(ep);
                        return Ok(step);
                    }
                }
            }
            Ok(Action::Type { id, text }) | Ok(Action::Select { id, value: text }) => {
                let known = ep
                    .obs
                    .elements
                    .iter()
                    .any(|e| e.id == id && matches!(e.role, Role::TextBox | Role::Select));
                let err = if known {
                    ep.form.insert(id, text);
                    None
                } else {
                    Some(format!("no form field {id:?} on this page"))
                };
                let (ep, step) = finish(ep, err);
                self.ep = Some(ep);
                return Ok(step);
            }
        };
        let canon = session_id(ep.goal, ep.seed, 0);
        let (path, obs) = match self
            .load(
                &target_path,
                (&ep.session, &canon),
                &ep.visited,
                match (&click_id, &search_query) {
                    (Some(id), _) => Via::Click(id),
                    (None, Some(q)) => Via::Search(q),
                    (None, None) => Via::Url,
                },
            )
            .await
        {
            Err(e @ Error::OffSite(_)) => {
                let (ep, step) = finish(ep, Some(e.to_string()));
                self.ep = Some(ep);
                return Ok(step);
            }
            r => r?,
        };
        ep.path = path;
        ep.obs = obs;
        ep.form.clear();
        let mut detail = None;
        let mut reward = 0.0;
        if matches!(Page::from_path(&ep.path), Ok((_, Page::Done { .. }))) {
            let b = self.purchase_detail(&ep.session).await?;
            reward = b.total;
            ep.reward = b.total;
            ep.terminated = true;
            detail = Some(b);
        }
        let (ep, mut step) = finish(ep, None);
        step.reward = reward;
        step.info.reward_detail = detail;
        self.ep = Some(ep);
        Ok(step)
    }

    fn observation(&self) -> Option<&Observation> {
        self.ep.as_ref().map(|e| &e.obs)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let ep = self.ep.as_ref().ok_or(Error::NotReset)?;
        Ok(Snapshot {
            goal: ep.goal,
            seed: ep.seed,
            url: ep.path.clone(),
            steps: ep.steps,
            terminated: ep.terminated,
            truncated: ep.truncated,
            reward: ep.reward,
            visited: ep.visited.clone(),
        })
    }

    fn last_screenshot(&self) -> Option<String> {
        self.transport.last_screenshot()
    }

    async fn restore(&mut self, snap: &Snapshot) -> Result<Observation> {
        // A session records one purchase; a branch from before it needs a fresh session.
        let (sid, page) = Page::from_path(&snap.url)
            .map_err(|e| Error::Protocol(format!("snapshot url {}: {e}", snap.url)))?;
        let info = self
            .transport
            .get_json(&format!("/api/sessions/{sid}"))
            .await;
        let reusable = match &info {
            Ok(v) => snap.terminated || v["done"].as_bool() != Some(true),
            Err(_) => false,
        };
        let session = if reusable {
            sid
        } else {
            self.create_session(snap.goal, snap.seed).await?
        };
        let path = page.to_path(&session);
        let canon = session_id(snap.goal, snap.seed, 0);
        let (path, obs) = self
            .load(&path, (&session, &canon), &snap.visited, Via::Url)
            .await?;
        self.ep = Some(Episode {
            goal: snap.goal,
            seed: snap.seed,
            session,
            path,
            obs: obs.clone(),
            steps: snap.steps,
            terminated: snap.terminated,
            truncated: snap.truncated,
            reward: snap.reward,
            visited: snap.visited.clone(),
            form: BTreeMap::new(),
        });
        Ok(obs)
    }
}
