//! The in-process and HTTP transports of [`super::web::WebEnv`].
//!
//! In-process: calls the store's axum router directly (`tower::ServiceExt::oneshot`), no
//! socket. HTTP: `reqwest` against the base URL of any running `agentq serve`. Both follow
//! redirects and report the final path, so the episode logic sees the same pages.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::web::{Fetched, Transport, WebEnv};
use super::{EnvConfig, Error, Result};

const MAX_REDIRECTS: usize = 5;
const MAX_BODY: usize = 16 << 20;

/// Calls the store router in the same process.
#[derive(Clone)]
pub struct InProcess {
    router: axum::Router,
}

impl InProcess {
    /// A transport over a router (`store::http::router(state)`).
    pub fn new(router: axum::Router) -> Self {
        InProcess { router }
    }

    async fn call(&self, req: Request<Body>) -> Result<(StatusCode, Option<String>, Vec<u8>)> {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(resp.into_body(), MAX_BODY)
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok((status, location, body.to_vec()))
    }
}

fn status_error(status: StatusCode, url: &str, body: &[u8]) -> Error {
    Error::Status {
        status: status.as_u16(),
        url: url.to_string(),
        body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

fn request(method: &str, path: &str, json: Option<&serde_json::Value>) -> Result<Request<Body>> {
    let b = Request::builder().method(method).uri(path);
    let r = match json {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    };
    r.map_err(|e| Error::Transport(format!("bad request {path}: {e}")))
}

fn json_body(path: &str, body: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(body).map_err(|e| Error::Protocol(format!("{path}: {e}")))
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn get(&self, path: &str) -> Result<Fetched> {
        let mut path = path.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let (status, location, body) = self.call(request("GET", &path, None)?).await?;
            if status.is_redirection() {
                path = location
                    .ok_or_else(|| Error::Protocol(format!("redirect without location: {path}")))?;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(status, &path, &body));
            }
            let html = String::from_utf8(body)
                .map_err(|_| Error::Protocol(format!("{path}: page is not UTF-8")))?;
            return Ok(Fetched { path, html });
        }
        Err(Error::Protocol(format!("too many redirects at {path}")))
    }

    async fn post_json(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let (status, _, bytes) = self.call(request("POST", path, Some(&body))?).await?;
        if !status.is_success() {
            return Err(status_error(status, path, &bytes));
        }
        json_body(path, &bytes)
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let (status, _, bytes) = self.call(request("GET", path, None)?).await?;
        if !status.is_success() {
            return Err(status_error(status, path, &bytes));
        }
        json_body(path, &bytes)
    }
}

/// Talks HTTP to a running store server.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    /// A transport for the server at `base` (e.g. `http://127.0.0.1:3000`).
    pub fn new(base: &str, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Http {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    async fn read(resp: reqwest::Response, path: &str) -> Result<(String, Vec<u8>)> {
        let status = resp.status();
        let url = resp.url().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(status_error(
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                path,
                &bytes,
            ));
        }
        let mut final_path = url.path().to_string();
        if let Some(q) = url.query() {
            final_path.push('?');
            final_path.push_str(q);
        }
        Ok((final_path, bytes.to_vec()))
    }
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn get(&self, path: &str) -> Result<Fetched> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| Error::Transport(format!("GET {path}: {e}")))?;
        let (final_path, bytes) = Self::read(resp, path).await?;
        let html = String::from_utf8(bytes)
            .map_err(|_| Error::Protocol(format!("{path}: page is not UTF-8")))?;
        Ok(Fetched {
            path: final_path,
            html,
        })
    }

    async fn post_json(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::Transport(format!("POST {path}: {e}")))?;
        let (_, bytes) = Self::read(resp, path).await?;
        json_body(path, &bytes)
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| Error::Transport(format!("GET {path}: {e}")))?;
        let (_, bytes) = Self::read(resp, path).await?;
        json_body(path, &bytes)
    }
}

/// The in-process environment.
pub type InProcessEnv = WebEnv<InProcess>;
/// The HTTP environment.
pub type HttpEnv = WebEnv<Http>;

/// An in-process env over a router.
pub fn in_process(router: axum::Router, config: EnvConfig) -> InProcessEnv {
    WebEnv::new(InProcess::new(router), config)
}

/// An HTTP env against `base`.
pub fn http(base: &str, config: EnvConfig) -> Result<HttpEnv> {
    Ok(WebEnv::new(
        Http::new(base, Duration::from_secs(30))?,
        config,
    ))
}
