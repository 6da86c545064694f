//! The real-browser driver (feature `browser`): a [`Transport`] of [`WebEnv`] that loads
//! every page in headless Chromium through WebDriver (fantoccini).
//!
//! [`Browser`] either spawns Debian's `chromedriver` on a free loopback port in its own
//! process group (killed on drop, with the Chromium it started) or connects to a given
//! WebDriver URL (chromedriver, Selenium Grid). Pages are navigated with `goto`; the
//! observation comes from the page source through the same HTML → Observation path as the
//! other drivers, so transcripts are identical. JSON API calls go over plain HTTP to the
//! store. Every WebDriver call runs under a timeout; a dead browser or driver is an
//! infrastructure error, after which the next call starts a fresh browser (so `restore()`
//! continues from a snapshot). Navigations off the store's origin are undone (back to the
//! last good URL) and counted.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::sync::Mutex;

use super::drivers::Http;
use super::web::{Fetched, Transport, WebEnv};
use super::{EnvConfig, Error, Result};

/// Time allowed for one WebDriver command.
const CMD_TIMEOUT: Duration = Duration::from_secs(20);
/// Page-load timeout set in the browser.
const PAGE_LOAD_MS: u64 = 15_000;

/// Where the WebDriver endpoint comes from.
#[derive(Debug, Clone)]
pub enum WebDriverSource {
    /// Spawn `chromedriver` (path) and headless Chromium (path).
    Spawn {
        /// chromedriver binary.
        chromedriver: PathBuf,
        /// Chromium binary.
        chromium: PathBuf,
    },
    /// Connect to a running WebDriver server (chromedriver, Selenium Grid).
    Remote(String),
}

impl Default for WebDriverSource {
    fn default() -> Self {
        WebDriverSource::Spawn {
            chromedriver: PathBuf::from("/usr/bin/chromedriver"),
            chromium: PathBuf::from("/usr/bin/chromium"),
        }
    }
}

/// Browser settings.
#[derive(Debug, Clone, Default)]
pub struct BrowserConfig {
    /// WebDriver endpoint.
    pub webdriver: WebDriverSource,
    /// Save one PNG per loaded page here (`step-0000.png`, …).
    pub screenshots: Option<PathBuf>,
}

/// A spawned chromedriver (own process group) and its browser profile directory.
struct Spawned {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Spawned {
    fn kill(&mut self) {
        // The process group holds chromedriver and the Chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A live WebDriver session (and the driver process when spawned).
pub struct Browser {
    client: Client,
    spawned: Option<Spawned>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver_pid", &self.driver_pid())
            .finish()
    }
}

fn infra(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport(format!("browser: {what}: {e}"))
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(CMD_TIMEOUT, fut).await {
        Err(_) => Err(infra(what, format!("no answer in {CMD_TIMEOUT:?}"))),
        Ok(Err(e)) => Err(infra(what, e)),
        Ok(Ok(v)) => Ok(v),
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| infra("free port", e))?;
    Ok(l.local_addr().map_err(|e| infra("free port", e))?.port())
}

fn capabilities(
    chromium: Option<&std::path::Path>,
    profile: Option<&std::path::Path>,
) -> Capabilities {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--window-size=1280,800".into(),
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost".into(),
    ];
    if let Some(p) = profile {
        args.push(format!("--user-data-dir={}", p.display()));
    }
    let mut opts = serde_json::json!({ "args": args });
    if let Some(c) = chromium {
        opts["binary"] = serde_json::json!(c.display().to_string());
    }
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": opts,
        "timeouts": {"pageLoad": PAGE_LOAD_MS, "script": 5000, "implicit": 0},
    });
    match caps {
        serde_json::Value::Object(m) => m,
        _ => Capabilities::new(),
    }
}

impl Browser {
    /// Starts a browser session as configured.
    pub async fn start(config: &WebDriverSource) -> Result<Browser> {
        match config {
            WebDriverSource::Remote(url) => {
                let client = Self::connect(url, capabilities(None, None)).await?;
                Ok(Browser {
                    client,
                    spawned: None,
                })
            }
            WebDriverSource::Spawn {
                chromedriver,
                chromium,
            } => {
                for (what, p) in [("chromedriver", chromedriver), ("chromium", chromium)] {
                    if !p.exists() {
                        return Err(infra(
                            "start",
                            format!(
                                "{what} not found at {} (apt-get install chromium chromium-driver)",
                                p.display()
                            ),
                        ));
                    }
                }
                static N: AtomicUsize = AtomicUsize::new(0);
                let port = free_port()?;
                let profile = std::env::temp_dir().join(format!(
                    "agentq-chromium-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&profile).map_err(|e| infra("profile dir", e))?;
                let child = {
                    use std::os::unix::process::CommandExt;
                    Command::new(chromedriver)
                        .arg(format!("--port={port}"))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .process_group(0)
                        .spawn()
                        .map_err(|e| infra("spawning chromedriver", e))?
                };
                let spawned = Spawned {
                    child,
                    port,
                    profile,
                };
                let url = format!("http://127.0.0.1:{port}");
                Self::wait_ready(&url).await?;
                let client =
                    Self::connect(&url, capabilities(Some(chromium), Some(&spawned.profile)))
                        .await?;
                Ok(Browser {
                    client,
                    spawned: Some(spawned),
                })
            }
        }
    }

    async fn wait_ready(url: &str) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| infra("http client", e))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(infra(
                    "chromedriver",
                    format!("not ready at {url} after 10 s"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(url: &str, caps: Capabilities) -> Result<Client> {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        timed(
            "new session",
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(url),
        )
        .await
    }

    /// The chromedriver process id when this browser spawned it.
    pub fn driver_pid(&self) -> Option<u32> {
        self.spawned.as_ref().map(|s| s.child.id())
    }

    /// The WebDriver port of a spawned chromedriver.
    pub fn driver_port(&self) -> Option<u16> {
        self.spawned.as_ref().map(|s| s.port)
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session and stops the spawned processes.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
        if let Some(mut s) = self.spawned.take() {
            s.kill();
        }
    }
}

/// The browser transport: pages through WebDriver, JSON over HTTP to the store.
pub struct BrowserTransport {
    base: String,
    origin: String,
    config: BrowserConfig,
    api: Http,
    browser: Mutex<Option<Browser>>,
    last_good: Mutex<Option<String>>,
    pages: AtomicUsize,
    offsite: AtomicUsize,
    dom_actions: AtomicUsize,
    last_shot: std::sync::Mutex<Option<String>>,
}

impl BrowserTransport {
    /// A transport for the store at `base` (e.g. `http://127.0.0.1:3000`); the browser
    /// starts on the first page load.
    pub fn new(base: &str, config: BrowserConfig) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        let origin = base.clone();
        Ok(BrowserTransport {
            api: Http::new(&base, Duration::from_secs(30))?,
            base,
            origin,
            config,
            browser: Mutex::new(None),
            last_good: Mutex::new(None),
            pages: AtomicUsize::new(0),
            offsite: AtomicUsize::new(0),
            dom_actions: AtomicUsize::new(0),
            last_shot: std::sync::Mutex::new(None),
        })
    }

    /// The spawned chromedriver's pid, if a browser is running.
    pub async fn driver_pid(&self) -> Option<u32> {
        self.browser
            .lock()
            .await
            .as_ref()
            .and_then(Browser::driver_pid)
    }

    /// Navigations off the store's origin that were undone so far.
    pub fn offsite_count(&self) -> usize {
        self.offsite.load(Ordering::Relaxed)
    }

    /// Actions performed by real DOM interaction (clicks, typed searches) rather than by
    /// navigating to their target URL.
    pub fn dom_action_count(&self) -> usize {
        self.dom_actions.load(Ordering::Relaxed)
    }

    /// Closes the browser (a later page load starts a fresh one).
    pub async fn shutdown(&self) {
        if let Some(b) = self.browser.lock().await.take() {
            b.close().await;
        }
    }

    /// Clicks `#id` (a radio's visible overlay `#option-G-I` for `radio-G-I`) and waits until
    /// the old document is gone. `Ok(false)` when there is no such visible element (the
    /// caller then navigates to the target instead).
    async fn click_element(&self, client: &Client, id: &str) -> Result<bool> {
        self.interact(client, id, None).await
    }

    /// Types `query` into the visible `#search_input` and clicks `#btn-search`, then waits
    /// like [`Self::click_element`]. `Ok(false)` when the page has no visible search box.
    async fn submit_search(&self, client: &Client, query: &str) -> Result<bool> {
        self.interact(client, "btn-search", Some(query)).await
    }

    async fn interact(&self, client: &Client, id: &str, typed: Option<&str>) -> Result<bool> {
        if let Some(text) = typed {
            let Ok(input) = timed("find", client.find(Locator::Id("search_input"))).await else {
                return Ok(false);
            };
            if !timed("is_displayed", input.is_displayed())
                .await
                .unwrap_or(false)
            {
                return Ok(false);
            }
            timed("clear", input.clear()).await?;
            timed("send_keys", input.send_keys(text)).await?;
        }
        // Radios are hidden: click their overlay link, else their label.
        let candidates = match id.strip_prefix("radio-") {
            Some(rest) => vec![format!("option-{rest}"), format!("label-{rest}")],
            None => vec![id.to_string()],
        };
        let mut found = None;
        for dom_id in candidates {
            let Ok(el) = timed("find", client.find(Locator::Id(&dom_id))).await else {
                continue;
            };
            if timed("is_displayed", el.is_displayed())
                .await
                .unwrap_or(false)
            {
                found = Some((el, dom_id));
                break;
            }
        }
        let Some((el, dom_id)) = found else {
            tracing::debug!(%id, "no visible element to click; loading its target URL");
            return Ok(false);
        };
        let old_body = timed("find body", client.find(Locator::Css("body"))).await?;
        timed("click", el.click()).await?;
        // Navigation race: wait until the old page's body is stale (a new document).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout(CMD_TIMEOUT, old_body.attr("data-page")).await {
                Err(_) => return Err(infra("wait for navigation", "no answer")),
                Ok(Err(e)) if e.is_stale_element_reference() => return Ok(true),
                Ok(Err(e)) if e.is_no_such_element() => return Ok(true),
                // Chromium's wording when the node's document was replaced mid-call.
                Ok(Err(e)) if e.to_string().contains("does not belong to the document") => {
                    return Ok(true)
                }
                Ok(Err(e)) => return Err(infra("wait for navigation", e)),
                Ok(Ok(_)) => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(infra(
                    "click",
                    format!("#{dom_id} did not navigate in 10 s"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn load(&self, client: &Client, path: &str, via: Option<Dom<'_>>) -> Result<Fetched> {
        let url = format!("{}{path}", self.base);
        let clicked = match via {
            Some(Dom::Click(id)) => self.click_element(client, id).await?,
            Some(Dom::Search(q)) => self.submit_search(client, q).await?,
            None => false,
        };
        let nav = if clicked {
            self.dom_actions.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            timed("goto", client.goto(&url)).await
        };
        let cur = match (nav, timed("current_url", client.current_url()).await) {
            // A failed load that ended off-site (e.g. a redirect to an unresolvable host)
            // is an off-site navigation, handled below; any other failure is infrastructure.
            (Err(e), Ok(cur)) if cur.as_str().starts_with(&format!("{}/", self.origin)) => {
                return Err(e)
            }
            (Err(e), Err(_)) => return Err(e),
            (_, cur) => cur?,
        };
        if !cur.as_str().starts_with(&format!("{}/", self.origin)) {
            // Off-site: undo by returning to the last good URL.
            self.offsite.fetch_add(1, Ordering::Relaxed);
            let offsite = cur.to_string();
            tracing::warn!(url = %cur, "navigation off the store's origin undone");
            let back = self.last_good.lock().await.clone();
            if let Some(b) = back {
                timed("goto", client.goto(&b)).await?;
            }
            return Err(Error::OffSite(offsite));
        }
        // The page's marker: every store page has <body data-page=...>.
        timed(
            "wait for page marker",
            client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("body[data-page]")),
        )
        .await?;
        let html = timed("source", client.source()).await?;
        *self.last_good.lock().await = Some(cur.to_string());
        let mut p = cur.path().to_string();
        if let Some(q) = cur.query() {
            p.push('?');
            p.push_str(q);
        }
        if let Some(dir) = &self.config.screenshots {
            let png = timed("screenshot", client.screenshot()).await?;
            let n = self.pages.fetch_add(1, Ordering::Relaxed);
            std::fs::create_dir_all(dir).map_err(|e| infra("screenshot dir", e))?;
            let f = dir.join(format!("step-{n:04}.png"));
            std::fs::write(&f, png).map_err(|e| infra(&format!("writing {}", f.display()), e))?;
            *self.last_shot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(f.to_string_lossy().into_owned());
        }
        Ok(Fetched { path: p, html })
    }
}

/// A DOM interaction that triggers a page load.
#[derive(Debug, Clone, Copy)]
enum Dom<'a> {
    /// Click the element with this id.
    Click(&'a str),
    /// Type the query into the search box and submit.
    Search(&'a str),
}

#[async_trait::async_trait]
impl Transport for BrowserTransport {
    async fn get(&self, path: &str) -> Result<Fetched> {
        self.navigate(path, None).await
    }

    async fn click(&self, id: &str, path: &str) -> Result<Fetched> {
        self.navigate(path, Some(Dom::Click(id))).await
    }

    async fn search(&self, query: &str, path: &str) -> Result<Fetched> {
        self.navigate(path, Some(Dom::Search(query))).await
    }

    fn last_screenshot(&self) -> Option<String> {
        self.last_shot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn post_json(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        self.api.post_json(path, body).await
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        self.api.get_json(path).await
    }
}

impl BrowserTransport {
    async fn navigate(&self, path: &str, via: Option<Dom<'_>>) -> Result<Fetched> {
        let mut guard = self.browser.lock().await;
        if guard.is_none() {
            *guard = Some(Browser::start(&self.config.webdriver).await?);
        }
        let client = guard
            .as_ref()
            .map(|b| b.client.clone())
            .ok_or(Error::NotReset)?;
        match self.load(&client, path, via).await {
            Err(e @ Error::Transport(_)) => {
                // A dead or hung browser: clean up; the next call starts a fresh one.
                if let Some(b) = guard.take() {
                    b.close().await;
                }
                Err(e)
            }
            r => r,
        }
    }
}

/// The browser environment.
pub type BrowserEnv = WebEnv<BrowserTransport>;

/// A browser env against the store at `base`.
pub fn browser(base: &str, env: EnvConfig, config: BrowserConfig) -> Result<BrowserEnv> {
    Ok(WebEnv::new(BrowserTransport::new(base, config)?, env))
}
