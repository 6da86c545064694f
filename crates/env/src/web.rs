//! The web environment over a transport: one episode logic for the in-process and HTTP
//! drivers.
//!
//! A [`Transport`] fetches pages by path and calls the site's JSON API; everything else —
//! action parsing, clickable resolution, observation, step counting, truncation, the lock
//! after a terminal page, snapshots — lives here once, so drivers cannot drift apart. What
//! is particular to a website (its paths, session API, terminal pages, reward breakdown)
//! comes from its [`Site`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::observe::{self, ObsMode, Observation, ObserveContext};
use super::site::{Outcome, PageKind, Site};
use super::{Action, Env, Error, Result, Snapshot, Step, StepInfo, TaskRef};

pub use super::sites::webshop::CANONICAL_BASE;

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
    /// The website (the spec's `site`).
    pub site: Arc<dyn Site>,
}

impl Default for EnvConfig {
    /// 15 steps, `text` observations, the WebShop site.
    fn default() -> Self {
        EnvConfig {
            max_steps: 15,
            mode: ObsMode::Text,
            site: Arc::new(super::sites::webshop::WebShop),
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

    /// The site.
    pub fn site(&self) -> &dyn Site {
        &*self.config.site
    }

    async fn create_session(&self, goal: usize, seed: u64) -> Result<String> {
        let (path, body) = self.site().open_session(goal, seed);
        let v = self.transport.post_json(&path, body).await?;
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
        let shown = self.site().display_url(&f.path.replace(real, canon));
        let obs = observe::observe_with(
            &html,
            &shown,
            &ObserveContext {
                visited_asins: &visited.to_vec(),
            },
        );
        Ok((f.path, obs))
    }

    async fn outcome(&self, session: &str) -> Result<Outcome> {
        let v = self
            .transport
            .get_json(&self.site().state_path(session))
            .await?;
        self.site().outcome(&v)
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
        let goal = self.site().task_index(task)?;
        let session = self.create_session(goal, seed).await?;
        let home = self.site().start_path(&session);
        let canon = self.site().canonical_session(goal, seed);
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
                self.site().search_path(&ep.session, &query)?
            }
            Ok(Action::Click { target }) => {
                let el = ep.obs.click_target(&target);
                match el.and_then(|e| e.target.clone()) {
                    Some(t) => {
                        click_id = el.map(|e| e.id.clone());
                        if let Some(key) = el.and_then(|e| self.site().visited_key(e)) {
                            if !ep.visited.contains(&key) {
                                ep.visited.push(key);
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
                let err = if ep.obs.has_form_field(&id) {
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
        let canon = self.site().canonical_session(ep.goal, ep.seed);
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
        if self.site().is_terminal(&ep.path) {
            let o = self.outcome(&ep.session).await?;
            reward = o.reward;
            ep.reward = o.reward;
            ep.terminated = true;
            detail = Some(o.detail);
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

    fn task_index(&self, task: TaskRef) -> Result<usize> {
        Ok(self.site().task_index(task)?)
    }

    fn page_kind(&self, obs: &Observation) -> PageKind {
        self.site().page_kind(obs)
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
        // A session records one outcome; a branch from before it needs a fresh session.
        let (sid, _) = self.site().rebase(&snap.url, None)?;
        let info = self.transport.get_json(&self.site().state_path(&sid)).await;
        let reusable = match &info {
            Ok(v) => snap.terminated || !self.site().state_is_final(v),
            Err(_) => false,
        };
        let session = if reusable {
            sid
        } else {
            self.create_session(snap.goal, snap.seed).await?
        };
        let (_, path) = self.site().rebase(&snap.url, Some(&session))?;
        let canon = self.site().canonical_session(snap.goal, snap.seed);
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
