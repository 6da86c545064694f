//! The store over HTTP: an axum [`router`] serving the pages of [`super::pages`] at
//! WebShop's URLs, a small JSON API for drivers, and [`serve`] for the CLI.
//!
//! Server-side state is only the sessions (sid → goal, seed, purchase); every page is
//! rendered from its URL. Routes:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/` | landing page; `?task=7` or `?task=test:7` (optional `&seed=N`) creates a session and redirects (303) to `/{sid}` |
//! | GET | `/static/style.css` | the stylesheet |
//! | POST | `/api/sessions` | JSON `{"task": 7 or "test:7", "seed": 0, "session": optional sid}` → 201 [`SessionCreated`] |
//! | GET | `/api/sessions/{sid}` | [`SessionInfo`]: goal, done, reward and its breakdown once bought |
//! | GET, POST | `/{sid}/search?search_query=…` (or `q=`) | 303 to `/search_results/{sid}/{kw+kw}/1` (query lower-cased, split on spaces) |
//! | GET, POST | `/{sid}` | home page; a POST with form field `search_query` searches (WebShop's form) |
//! | GET, POST | `/search_results/…`, `/item_page/…`, `/item_sub_page/…` | pages ([`Page::from_path`]) |
//! | GET, POST | `/done/{sid}/{asin}/{options}` | buys: the reward is computed once per session and recorded; a later purchase URL redirects (303) to the recorded one |
//!
//! Errors are plain-text responses made in one place ([`Error`]'s `IntoResponse`): 400 for
//! malformed input, 404 for unknown sessions, products or routes, 409 for a session id in
//! use, 503 when the session table is full.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize, Serializer};
use tracing::Instrument as _;

use super::catalog::{split_of, split_range, Split};
use super::pages::{
    decode_segment, option_values, Options, Page, PageError, RenderCtx, Store, STYLE_CSS,
    STYLE_PATH,
};
use super::reward::{reward, RewardBreakdown};
use agentq_core::rng::Rng;
use agentq_core::task::{TaskError, TaskRef};

/// Schema version of the JSON API's DTOs.
pub const API_VERSION: u32 = 1;

/// Default cap on live sessions (creation beyond it answers 503).
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// An HTTP error, turned into a short plain-text response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown session, product or route (404).
    #[error("{0}")]
    NotFound(String),
    /// Method not supported on this path (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The requested session id is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// The session table is full (503).
    #[error("too many sessions")]
    TooManySessions,
    /// A bug; the detail is logged, never sent (500).
    #[error("internal error")]
    Internal(String),
}

impl From<PageError> for Error {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Malformed(_) | PageError::InvalidOption(_) => {
                Error::BadRequest(e.to_string())
            }
            PageError::UnknownRoute => Error::NotFound("no such page".into()),
            PageError::UnknownProduct(_) => Error::NotFound("unknown product".into()),
            PageError::Template(msg) => Error::Internal(msg),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooManySessions => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut msg = self.to_string();
        if msg.len() > 300 {
            let mut cut = 300;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push('…');
        }
        msg.push('\n');
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    }
}

/// Server settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Show the Attributes tab on item pages (WebShop's `show_attrs`).
    pub show_attrs: bool,
    /// Most live sessions.
    pub max_sessions: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            show_attrs: false,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    goal: usize,
    seed: u64,
    purchase: Option<Purchase>,
}

#[derive(Debug, Clone)]
struct Purchase {
    asin: String,
    options: Options,
    path: String,
    breakdown: RewardBreakdown,
}

struct Shared {
    store: Arc<Store>,
    config: ServerConfig,
    sessions: Mutex<HashMap<String, Session>>,
}

/// The router's state: the store and the session table. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("sessions", &self.lock().len())
            .finish()
    }
}

impl AppState {
    /// State with the default [`ServerConfig`].
    pub fn new(store: Arc<Store>) -> Self {
        AppState::with_config(store, ServerConfig::default())
    }

    /// State with explicit settings.
    pub fn with_config(store: Arc<Store>, config: ServerConfig) -> Self {
        AppState {
            inner: Arc::new(Shared {
                store,
                config,
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere cannot leave the map half-updated; keep serving.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a session for goal index `goal`. Without `sid`, the id is
    /// [`session_id`]`(goal, seed, n)` for the first `n` not in use, so the same sequence of
    /// requests always yields the same ids.
    pub fn create_session(
        &self,
        goal: usize,
        seed: u64,
        sid: Option<&str>,
    ) -> Result<String, Error> {
        let n_goals = self.store().catalog().goals().len();
        if goal >= n_goals {
            return Err(Error::BadRequest(format!(
                "task {goal} out of range (the catalog has {n_goals} goals)"
            )));
        }
        let mut sessions = self.lock();
        if sessions.len() >= self.config().max_sessions {
            return Err(Error::TooManySessions);
        }
        let sid = match sid {
            Some(s) => {
                if !valid_session_id(s) {
                    return Err(Error::BadRequest(
                        "session id must be 1 to 64 of A-Z a-z 0-9 _ -".into(),
                    ));
                }
                if sessions.contains_key(s) {
                    return Err(Error::Conflict("session id already in use".into()));
                }
                s.to_string()
            }
            None => (0u32..)
                .map(|n| session_id(goal, seed, n))
                .find(|s| !sessions.contains_key(s))
                .ok_or_else(|| Error::Internal("session ids exhausted".into()))?,
        };
        sessions.insert(
            sid.clone(),
            Session {
                goal,
                seed,
                purchase: None,
            },
        );
        tracing::debug!(%sid, goal, seed, "session created");
        Ok(sid)
    }

    /// What the API reports about a session, or `None` if it does not exist.
    pub fn session_info(&self, sid: &str) -> Option<SessionInfo> {
        let session = self.lock().get(sid)?.clone();
        let goal = self.store().catalog().goal(session.goal)?;
        Some(SessionInfo {
            version: API_VERSION,
            session: sid.to_string(),
            url: Page::Home.to_path(sid),
            goal: session.goal,
            split: split_of(session.goal).name(),
            seed: session.seed,
            instruction: goal.instruction_text.clone(),
            done: session.purchase.is_some(),
            reward: session.purchase.as_ref().map(|p| p.breakdown.total),
            purchase: session.purchase.map(|p| PurchaseInfo {
                asin: p.asin,
                options: OrderedOptions(p.options),
                url: p.path,
                breakdown: p.breakdown,
            }),
        })
    }

    fn goal_of(&self, sid: &str) -> Result<(usize, Option<Purchase>), Error> {
        let sessions = self.lock();
        let s = sessions
            .get(sid)
            .ok_or_else(|| Error::NotFound("unknown session".into()))?;
        Ok((s.goal, s.purchase.clone()))
    }
}

/// The deterministic id of the `n`-th session created for (`goal`, `seed`): ten lower-case
/// letters, like WebShop's random session ids.
pub fn session_id(goal: usize, seed: u64, n: u32) -> String {
    let mut rng = Rng::keyed(seed, &format!("session:{goal}:{n}"));
    (0..10)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

fn valid_session_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Resolves a task: an absolute goal index (`"7"`) or a split-relative one (`"test:7"`,
/// `"dev:0"`, `"train:12"`).
pub fn parse_task(spec: &str, n_goals: usize) -> Result<usize, Error> {
    let task: TaskRef = spec.parse().map_err(|_| {
        Error::BadRequest("task must be a goal index (7) or split:index (test:7)".into())
    })?;
    task.resolve(|s| split_range(s, n_goals), n_goals)
        .map_err(|e| {
            Error::BadRequest(match e {
                TaskError::OutOfSplit { task, split, len } => {
                    format!("task {task} out of range (the {split} split has {len} goals)")
                }
                TaskError::OutOfRange { index, len } => {
                    format!("task {index} out of range (the catalog has {len} goals)")
                }
                other => other.to_string(),
            })
        })
}

// ---------------------------------------------------------------------------------------
// JSON API DTOs.

/// Body of `POST /api/sessions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Goal index (number or `"7"`) or `"split:index"`.
    pub task: serde_json::Value,
    /// Seed recorded with the session (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Session id to use instead of a derived one.
    #[serde(default)]
    pub session: Option<String>,
}

/// Answer of `POST /api/sessions`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionCreated {
    /// [`API_VERSION`].
    pub version: u32,
    /// The session id.
    pub session: String,
    /// Path of the session's home page.
    pub url: String,
    /// The instruction.
    pub instruction: String,
    /// Goal index.
    pub goal: usize,
}

/// Answer of `GET /api/sessions/{sid}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// [`API_VERSION`].
    pub version: u32,
    /// The session id.
    pub session: String,
    /// Path of the session's home page.
    pub url: String,
    /// Goal index.
    pub goal: usize,
    /// Split of the goal (`test`, `dev`, `train`).
    pub split: &'static str,
    /// Seed given at creation.
    pub seed: u64,
    /// The instruction.
    pub instruction: String,
    /// Whether Buy Now was clicked.
    pub done: bool,
    /// The reward, once bought.
    pub reward: Option<f64>,
    /// What was bought.
    pub purchase: Option<PurchaseInfo>,
}

/// A recorded purchase.
#[derive(Debug, Clone, Serialize)]
pub struct PurchaseInfo {
    /// Purchased ASIN.
    pub asin: String,
    /// Selected options as a JSON object in selection order.
    pub options: OrderedOptions,
    /// Path of the done page.
    pub url: String,
    /// The reward and its parts.
    pub breakdown: RewardBreakdown,
}

/// Options serialized as a JSON object in selection order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedOptions(pub Options);

impl Serialize for OrderedOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

// ---------------------------------------------------------------------------------------
// Router.

/// The store's router (no socket: test it with `tower::ServiceExt::oneshot`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route(STYLE_PATH, get(stylesheet))
        .route("/api/sessions", post(api_create))
        .route("/api/sessions/{sid}", get(api_get))
        .route("/{sid}/search", get(search).post(search))
        .fallback(page)
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// Serves the router on `listener` until the process ends (binding is the caller's job; the
/// CLI's default address is 127.0.0.1:3000).
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Like [`serve`], stopping gracefully when `shutdown` completes.
pub async fn serve_with_shutdown<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn trace_request(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let cut = (0..=path.len().min(200))
        .rev()
        .find(|&i| path.is_char_boundary(i))
        .unwrap_or(0);
    let span = tracing::debug_span!("http", method = %req.method(), path = &path[..cut]);
    let start = Instant::now();
    async move {
        let res = next.run(req).await;
        tracing::debug!(
            status = res.status().as_u16(),
            micros = start.elapsed().as_micros() as u64,
            "request"
        );
        res
    }
    .instrument(span)
    .await
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

fn first<'a>(pairs: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()))
}

async fn landing(State(state): State<AppState>, uri: Uri) -> Result<Response, Error> {
    let pairs = query_pairs(uri.query());
    let n_goals = state.store().catalog().goals().len();
    if let Some(task) = first(&pairs, &["task"]) {
        let goal = parse_task(task, n_goals)?;
        let seed = match first(&pairs, &["seed"]) {
            None | Some("") => 0,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::BadRequest("seed must be a non-negative integer".into()))?,
        };
        let sid = state.create_session(goal, seed, None)?;
        return Ok(Redirect::to(&Page::Home.to_path(&sid)).into_response());
    }
    let catalog = state.store().catalog();
    let splits: String = [Split::Test, Split::Dev, Split::Train]
        .into_iter()
        .map(|s| {
            let r = catalog.split(s);
            if r.is_empty() {
                format!("<li>{}: no goals</li>\n", s.name())
            } else {
                format!(
                    "<li><a href=\"/?task={0}:0\">{0}</a>: goals {1}–{2} ({3} tasks)</li>\n",
                    s.name(),
                    r.start,
                    r.end - 1,
                    r.len()
                )
            }
        })
        .collect();
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentq store</title>
<link rel="stylesheet" href="{STYLE_PATH}">
<link rel="icon" href="data:,">
</head>
<body data-page="landing">
<div class="container landing">
<h2>agentq store</h2>
<p>A WebShop-compatible store with {products} products and {n_goals} shopping tasks. Pick a task to start a session:</p>
<form method="get" action="/">
<label>Task <input name="task" placeholder="test:0" required></label>
<label>Seed <input name="seed" value="0" size="6"></label>
<button class="btn start" type="submit">Start</button>
</form>
<ul>
{splits}</ul>
<p>A task is a goal index (<code>/?task=7</code>) or a split and an index within it (<code>/?task=test:7</code>).
Drivers can use the JSON API: <code>POST /api/sessions</code> with <code>{{"task": 7, "seed": 0}}</code>, then
<code>GET /api/sessions/SID</code> for the reward once bought.</p>
</div>
</body>
</html>
"#,
        products = catalog.products().len(),
    );
    Ok(Html(html).into_response())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

async fn api_create(State(state): State<AppState>, body: Bytes) -> Result<Response, Error> {
    let req: CreateSession = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))?;
    let n_goals = state.store().catalog().goals().len();
    let goal = match &req.task {
        serde_json::Value::Number(n) => {
            let i = n
                .as_u64()
                .ok_or_else(|| Error::BadRequest("task must be a non-negative integer".into()))?;
            parse_task(&i.to_string(), n_goals)?
        }
        serde_json::Value::String(s) => parse_task(s, n_goals)?,
        _ => {
            return Err(Error::BadRequest(
                "task must be a goal index or \"split:index\"".into(),
            ))
        }
    };
    let sid = state.create_session(goal, req.seed, req.session.as_deref())?;
    let instruction = state
        .store()
        .catalog()
        .goal(goal)
        .map(|g| g.instruction_text.clone())
        .unwrap_or_default();
    let body = SessionCreated {
        version: API_VERSION,
        url: Page::Home.to_path(&sid),
        session: sid,
        instruction,
        goal,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn api_get(State(state): State<AppState>, uri: Uri) -> Result<Response, Error> {
    let raw = uri
        .path()
        .strip_prefix("/api/sessions/")
        .ok_or_else(|| Error::NotFound("no such page".into()))?;
    let sid = decode_segment(raw)?;
    let info = state
        .session_info(&sid)
        .ok_or_else(|| Error::NotFound("unknown session".into()))?;
    Ok(Json(info).into_response())
}

/// `/{sid}/search`: query from the URL, or from a form body on POST.
async fn search(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Error> {
    let raw = uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/search"))
        .ok_or_else(|| Error::NotFound("no such page".into()))?;
    let sid = decode_segment(raw)?;
    let mut pairs = query_pairs(uri.query());
    if method == Method::POST {
        pairs.extend(form_pairs(&body));
    }
    search_redirect(&state, &sid, first(&pairs, &["search_query", "q"]))
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn search_redirect(state: &AppState, sid: &str, query: Option<&str>) -> Result<Response, Error> {
    state.goal_of(sid)?;
    let query = query.ok_or_else(|| {
        Error::BadRequest("missing search query (search_query=... or q=...)".into())
    })?;
    if query.is_empty() {
        return Err(Error::BadRequest("empty search query".into()));
    }
    // As WebShop's Flask app: `request.form['search_query'].lower().split(' ')`.
    let keywords = query
        .to_lowercase()
        .split(' ')
        .map(str::to_string)
        .collect();
    let page = Page::Results { keywords, page: 1 };
    Ok(Redirect::to(&page.to_path(sid)).into_response())
}

/// Every page path (`/{sid}`, `/search_results/…`, `/item_page/…`, `/item_sub_page/…`,
/// `/done/…`), parsed by [`Page::from_path`].
async fn page(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Error> {
    if !matches!(method, Method::GET | Method::HEAD | Method::POST) {
        return Err(Error::MethodNotAllowed);
    }
    let (sid, page) = Page::from_path(uri.path())?;
    let (goal_index, purchase) = state.goal_of(&sid)?;
    if method == Method::POST && page == Page::Home {
        let pairs = form_pairs(&body);
        if let Some(q) = first(&pairs, &["search_query"]) {
            return search_redirect(&state, &sid, Some(q));
        }
    }
    let store = state.store();
    let goal = store
        .catalog()
        .goal(goal_index)
        .ok_or_else(|| Error::Internal("session goal out of range".into()))?;
    let mut ctx = RenderCtx {
        show_attrs: state.config().show_attrs,
        reward: None,
    };
    if let Page::Done { options, .. } = &page {
        let product = store
            .check(&page)?
            .ok_or_else(|| Error::Internal("done page without product".into()))?;
        let canonical = Page::Done {
            asin: product.asin.clone(),
            options: options.clone(),
        };
        let path = canonical.to_path(&sid);
        let recorded = match purchase {
            Some(p) => p,
            None => {
                let breakdown = reward(product, goal, product.price, &option_values(options));
                let fresh = Purchase {
                    asin: product.asin.clone(),
                    options: options.clone(),
                    path: path.clone(),
                    breakdown,
                };
                let mut sessions = state.lock();
                let session = sessions
                    .get_mut(&sid)
                    .ok_or_else(|| Error::NotFound("unknown session".into()))?;
                // A concurrent request may have bought first; the first purchase stands.
                let recorded = session.purchase.get_or_insert(fresh).clone();
                if recorded.path == path {
                    tracing::info!(%sid, asin = %recorded.asin, reward = recorded.breakdown.total, "purchase");
                }
                recorded
            }
        };
        if recorded.path != path {
            return Ok(Redirect::to(&recorded.path).into_response());
        }
        ctx.reward = Some(recorded.breakdown.total);
    }
    let html = store.render(&sid, &goal.instruction_text, &page, ctx)?;
    Ok(Html(html).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::tests::{text_obs, tiny_store};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn state() -> AppState {
        AppState::new(Arc::new(tiny_store()))
    }

    async fn send(
        state: &AppState,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, String, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.starts_with('{') {
            req = req.header(header::CONTENT_TYPE, "application/json");
        } else if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let res = router(state.clone())
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, location, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn get(state: &AppState, uri: &str) -> (StatusCode, String, String) {
        send(state, "GET", uri, "").await
    }

    async fn new_session(state: &AppState, task: &str) -> String {
        let (status, location, _) = get(state, &format!("/?task={task}")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        location.trim_start_matches('/').to_string()
    }

    #[tokio::test]
    async fn landing_and_task_redirects() {
        let st = state();
        let (status, _, body) = get(&st, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("agentq store") && body.contains("/?task=test:0"));
        // Deterministic ids: the n-th session for (goal, seed) is session_id(goal, seed, n).
        let (status, location, _) = get(&st, "/?task=1&seed=5").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, format!("/{}", session_id(1, 5, 0)));
        let (_, location2, _) = get(&st, "/?task=test:1&seed=5").await;
        assert_eq!(location2, format!("/{}", session_id(1, 5, 1)));
        assert_ne!(location, location2);
        let (status, _, body) = get(&st, &location).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#"data-page="home""#));
        assert!(text_obs(&body).contains("second goal"));
        for bad in [
            "/?task=",
            "/?task=bogus",
            "/?task=2",
            "/?task=test:2",
            "/?task=dev:0",
            "/?task=nope:0",
            "/?task=-1",
            "/?task=0&seed=x",
            "/?task=99999999999999999999999",
        ] {
            let (status, _, body) = get(&st, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body.len() < 200);
        }
    }

    #[tokio::test]
    async fn stylesheet_is_served() {
        let st = state();
        let res = router(st)
            .oneshot(
                Request::get("/static/style.css")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn api_sessions() {
        let st = state();
        let (status, _, body) =
            send(&st, "POST", "/api/sessions", r#"{"task": 0, "seed": 3}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let sid = session_id(0, 3, 0);
        assert_eq!(v["session"], sid.as_str());
        assert_eq!(v["url"], format!("/{sid}"));
        assert_eq!(v["goal"], 0);
        assert_eq!(v["version"], API_VERSION);
        assert!(v["instruction"]
            .as_str()
            .unwrap()
            .starts_with("i want a trail shoe"));
        let (status, _, body) = send(&st, "POST", "/api/sessions", r#"{"task": "test:1"}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _, _) = send(
            &st,
            "POST",
            "/api/sessions",
            r#"{"task": 1, "session": "fixed_1"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _, _) = send(
            &st,
            "POST",
            "/api/sessions",
            r#"{"task": 1, "session": "fixed_1"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"task": -1}"#,
            r#"{"task": 1.5}"#,
            r#"{"task": 2}"#,
            r#"{"task": "train:0"}"#,
            r#"{"task": null}"#,
            r#"{"task": 0, "seed": -1}"#,
            r#"{"task": 0, "extra": 1}"#,
            r#"{"task": 0, "session": "a/b"}"#,
            r#"{"task": 0, "session": ""}"#,
        ] {
            let (status, _, body) = send(&st, "POST", "/api/sessions", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (status, _, body) = get(&st, &format!("/api/sessions/{sid}")).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["done"], false);
        assert_eq!(v["reward"], serde_json::Value::Null);
        assert_eq!(v["seed"], 3);
        assert_eq!(v["split"], "test");
        let (status, _, _) = get(&st, "/api/sessions/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&st, "/api/sessions/%ZZ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn search_redirects() {
        let st = state();
        let sid = new_session(&st, "0").await;
        let (status, location, _) =
            get(&st, &format!("/{sid}/search?search_query=Trail%20SHOE+x")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, format!("/search_results/{sid}/trail+shoe+x/1"));
        let (_, location, _) = get(&st, &format!("/{sid}/search?q=c%2B%2B")).await;
        assert_eq!(location, format!("/search_results/{sid}/c%2B%2B/1"));
        // WebShop's form: POST /{sid} with search_query.
        let (status, location, _) =
            send(&st, "POST", &format!("/{sid}"), "search_query=Red+Shoes").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, format!("/search_results/{sid}/red+shoes/1"));
        let (status, location, _) =
            send(&st, "POST", &format!("/{sid}/search"), "search_query=a").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, format!("/search_results/{sid}/a/1"));
        let (status, _, body) = get(&st, &format!("/{sid}/search?search_query=")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("empty search query"));
        let (status, _, _) = get(&st, &format!("/{sid}/search")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = get(&st, "/nosuchsid/search?q=x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Unicode and odd characters survive the redirect and render.
        let (status, location, _) = get(
            &st,
            &format!("/{sid}/search?q=%E6%97%A5%E6%9C%AC%20..%20%2F%7C%22"),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, _, body) = get(&st, &location).await;
        assert_eq!(status, StatusCode::OK);
        // "日本" is an option value of the odd product.
        assert!(text_obs(&body).contains("Page 1 (Total results: 1)"));
    }

    #[tokio::test]
    async fn full_episode_and_purchase_once() {
        let st = state();
        let sid = new_session(&st, "test:0").await;
        let results = Page::Results {
            keywords: vec!["trail".into()],
            page: 1,
        };
        let (status, _, body) = get(&st, &results.to_path(&sid)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#"class="product-link""#));
        let item = Page::Item {
            asin: "B0SHOE0003".into(),
            keywords: vec!["trail".into()],
            page: 1,
            options: vec![("color".into(), "white".into())],
        };
        let (status, _, body) = get(&st, &item.to_path(&sid)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#"value="white" data-url="#) && body.contains(" checked>"));
        for sub in crate::pages::SubPageKind::ALL {
            let page = Page::SubPage {
                asin: "B0SHOE0003".into(),
                keywords: vec!["trail".into()],
                page: 1,
                sub,
                options: vec![("color".into(), "white".into())],
            };
            let (status, _, _) = send(&st, "POST", &page.to_path(&sid), "").await;
            assert_eq!(status, StatusCode::OK, "{sub:?}");
        }
        let done = Page::Done {
            asin: "B0SHOE0003".into(),
            options: vec![("color".into(), "white".into())],
        };
        let (status, _, body) = send(&st, "POST", &done.to_path(&sid), "").await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, api) = get(&st, &format!("/api/sessions/{sid}")).await;
        let v: serde_json::Value = serde_json::from_str(&api).unwrap();
        assert_eq!(v["done"], true);
        let r = v["reward"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&r));
        assert_eq!(v["purchase"]["asin"], "B0SHOE0003");
        assert_eq!(v["purchase"]["options"]["color"], "white");
        assert_eq!(v["purchase"]["breakdown"]["total"].as_f64(), Some(r));
        assert!(text_obs(&body).contains(&format!(
            "Your score (min 0.0, max 1.0) [SEP] {}",
            crate::catalog::py_float_repr(r)
        )));
        // Reloading the same purchase shows the recorded reward; another purchase
        // redirects to the recorded one.
        let (status, _, again) = get(&st, &done.to_path(&sid)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, body);
        let other = Page::Done {
            asin: "B0SHOE0001".into(),
            options: Vec::new(),
        };
        let (status, location, _) = get(&st, &other.to_path(&sid)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, done.to_path(&sid));
        // The lower-case ASIN spelling of the same purchase is the same purchase.
        let lower = Page::Done {
            asin: "b0shoe0003".into(),
            options: vec![("color".into(), "white".into())],
        };
        let (status, _, _) = get(&st, &lower.to_path(&sid)).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn bad_inputs_get_proper_statuses() {
        let st = state();
        let sid = new_session(&st, "0").await;
        let long_kw = "x".repeat(10_000);
        let ok = [
            format!("/search_results/{sid}/{long_kw}/1"),
            format!("/search_results/{sid}/%E6%97%A5%E6%9C%AC+%F0%9F%98%80/1"),
            format!("/search_results/{sid}/trail/999999"),
            format!("/item_page/{sid}/B0SHOE0001/{long_kw}/1/%7B%7D"),
            format!("/item_page/{sid}/B0SHOE0001/a/1/%7B'color':%20'white'%7D"),
        ];
        for uri in &ok {
            let (status, _, body) = get(&st, uri).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{}: {body}",
                &uri[..uri.len().min(80)]
            );
        }
        let cases: Vec<(String, StatusCode)> = vec![
            ("/nosuchsid".into(), StatusCode::NOT_FOUND),
            (
                "/search_results/nosuchsid/a/1".into(),
                StatusCode::NOT_FOUND,
            ),
            (
                "/done/nosuchsid/B0SHOE0001/%7B%7D".into(),
                StatusCode::NOT_FOUND,
            ),
            (
                format!("/item_page/{sid}/NOSUCHASIN/a/1/%7B%7D"),
                StatusCode::NOT_FOUND,
            ),
            (
                format!("/done/{sid}/NOSUCHASIN/%7B%7D"),
                StatusCode::NOT_FOUND,
            ),
            ("/a/b".into(), StatusCode::NOT_FOUND),
            ("/api/sessions/x/y".into(), StatusCode::NOT_FOUND),
            (
                format!("/item_page/{sid}/B0SHOE0001/a/1/%7Bbad"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/item_page/{sid}/B0SHOE0001/a/1/%7B%22color%22:1%7D"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/item_page/{sid}/B0SHOE0001/a/1/%7B%22color%22:%22green%22%7D"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/done/{sid}/B0SHOE0001/%7B%22flavor%22:%22x%22%7D"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/search_results/{sid}/%ZZ/1"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/search_results/{sid}/%FF/1"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/search_results/{sid}/a/0"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/search_results/{sid}/a/x"),
                StatusCode::BAD_REQUEST,
            ),
            (format!("/search_results/{sid}/a"), StatusCode::BAD_REQUEST),
            (
                format!("/item_sub_page/{sid}/B0SHOE0001/a/1/Nope/%7B%7D"),
                StatusCode::BAD_REQUEST,
            ),
            ("/%ZZ".into(), StatusCode::BAD_REQUEST),
        ];
        for (uri, want) in cases {
            let (status, _, body) = get(&st, &uri).await;
            assert_eq!(status, want, "{uri}: {body}");
            assert!(body.len() < 400, "{uri}: long error body");
            assert!(!body.contains("src/"), "{uri}: leaks internals");
        }
        // A failed purchase attempt records nothing.
        let (_, _, api) = get(&st, &format!("/api/sessions/{sid}")).await;
        assert!(api.contains(r#""done":false"#));
        let (status, _, _) = send(&st, "DELETE", &format!("/{sid}"), "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn session_cap() {
        let st = AppState::with_config(
            Arc::new(tiny_store()),
            ServerConfig {
                show_attrs: true,
                max_sessions: 1,
            },
        );
        let sid = new_session(&st, "0").await;
        let (status, _, _) = get(&st, "/?task=0").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // show_attrs reaches the item page.
        let item = Page::Item {
            asin: "B0SHOE0001".into(),
            keywords: vec!["a".into()],
            page: 1,
            options: Vec::new(),
        };
        let (_, _, body) = get(&st, &item.to_path(&sid)).await;
        assert!(body.contains(">Attributes</button>"));
    }

    #[test]
    fn task_specs() {
        assert_eq!(parse_task("7", 3000).unwrap(), 7);
        assert_eq!(parse_task("test:7", 3000).unwrap(), 7);
        assert_eq!(parse_task("dev:0", 3000).unwrap(), 500);
        assert_eq!(parse_task("train:2", 3000).unwrap(), 1502);
        assert!(parse_task("test:500", 3000).is_err());
        assert!(parse_task("3000", 3000).is_err());
        assert!(parse_task("x:1", 3000).is_err());
        assert_eq!(session_id(7, 0, 0), session_id(7, 0, 0));
        assert_ne!(session_id(7, 0, 0), session_id(7, 0, 1));
        assert!(session_id(7, 0, 0).bytes().all(|b| b.is_ascii_lowercase()));
    }
}
