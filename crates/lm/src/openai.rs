//! Client of OpenAI-compatible servers (vLLM, llama.cpp, Ollama, `agentq lm serve`, …).
//!
//! Generation: `/v1/completions` for raw (already templated) prompts and
//! `/v1/chat/completions` (with `logprobs`) for chats. Scoring: `/v1/completions` with
//! `echo: true, logprobs: 1, max_tokens: 1` (all continuations in one request); servers that
//! reject it, or silently return log-probs of generated tokens only, give
//! [`LmError::ScoringUnsupported`]. Requests have a timeout, are retried with exponential
//! backoff on 429/5xx and transport errors, and at most `concurrency` run at once. The API
//! key is sent as a bearer token and never logged.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::chat::{ChatTemplate, TemplateKind};
use super::{ChatMessage, GenParams, Generation, LanguageModel, LmError, Scored};

/// Connection settings.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (`/v1` is appended when missing).
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token (from an env var read by the CLI).
    pub api_key: Option<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and transport errors.
    pub max_retries: u32,
    /// Requests in flight at most.
    pub concurrency: usize,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: "default".into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            max_retries: 4,
            concurrency: 4,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// A client of one model on one server.
pub struct OpenAiClient {
    cfg: OpenAiConfig,
    base: String,
    http: reqwest::Client,
    sem: Arc<Semaphore>,
    chat: ChatTemplate,
    /// First backoff delay (doubles per retry).
    backoff: Duration,
}

enum PostError {
    Status(u16, String),
    Other(LmError),
}

impl OpenAiClient {
    /// A client; prompts for `/v1/completions` are templated with ChatML.
    pub fn new(cfg: OpenAiConfig) -> Result<Self, LmError> {
        let base = cfg.base_url.trim_end_matches('/').to_string();
        let base = if base.ends_with("/v1") {
            base
        } else {
            format!("{base}/v1")
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| LmError::Http {
                url: base.clone(),
                msg: e.to_string(),
            })?;
        Ok(OpenAiClient {
            sem: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            cfg,
            base,
            http,
            chat: ChatTemplate::builtin(TemplateKind::ChatMl),
            backoff: Duration::from_millis(250),
        })
    }

    /// Uses another template for [`LanguageModel::apply_chat`] (the server's own template is
    /// only used by [`LanguageModel::chat`]).
    pub fn with_template(mut self, chat: ChatTemplate) -> Self {
        self.chat = chat;
        self
    }

    /// Changes the first backoff delay (tests use a few milliseconds).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, PostError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        loop {
            let res = {
                let _permit = self.sem.acquire().await.map_err(|_| {
                    PostError::Other(LmError::Http {
                        url: url.clone(),
                        msg: "client closed".into(),
                    })
                })?;
                let mut req = self.http.post(&url).json(body);
                if let Some(k) = &self.cfg.api_key {
                    req = req.bearer_auth(k);
                }
                match req.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<f64>().ok());
                        let text = r.text().await.unwrap_or_default();
                        Ok((status, retry_after, text))
                    }
                    Err(e) => Err(e.to_string()),
                }
            };
            let retryable = match &res {
                Ok((s, _, _)) => matches!(s, 429 | 500 | 502 | 503 | 504),
                Err(_) => true,
            };
            if retryable && attempt < self.cfg.max_retries {
                let mut wait = self.backoff * 2u32.pow(attempt.min(10));
                if let Ok((_, Some(ra), _)) = &res {
                    wait = wait.max(Duration::from_secs_f64(ra.clamp(0.0, 60.0)));
                }
                tracing::debug!(url = %url, attempt, ?wait, "retrying request");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return match res {
                Ok((s, _, text)) if (200..300).contains(&s) => {
                    serde_json::from_str(&text).map_err(|e| {
                        PostError::Other(LmError::BadResponse {
                            url: url.clone(),
                            msg: format!("not JSON: {e}"),
                        })
                    })
                }
                Ok((s, _, text)) => Err(PostError::Status(s, snippet(&text))),
                Err(e) => Err(PostError::Other(LmError::Http {
                    url: url.clone(),
                    msg: format!("{e} (after {} attempts)", attempt + 1),
                })),
            };
        }
    }

    async fn post_ok(&self, path: &str, body: &Value) -> Result<Value, LmError> {
        let url = format!("{}{path}", self.base);
        self.post(path, body).await.map_err(|e| match e {
            PostError::Status(s, text) => LmError::Http {
                url,
                msg: format!(
                    "HTTP {s}: {text}{}",
                    if matches!(s, 429 | 500 | 502 | 503 | 504) {
                        format!(" (after {} attempts)", self.cfg.max_retries + 1)
                    } else {
                        String::new()
                    }
                ),
            },
            PostError::Other(e) => e,
        })
    }

    fn sampling(&self, params: &GenParams) -> Value {
        let mut v = json!({
            "model": self.cfg.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        });
        if !params.stop.is_empty() {
            v["stop"] = json!(params.stop);
        }
        v
    }
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

fn bad(url: &str, msg: impl Into<String>) -> LmError {
    LmError::BadResponse {
        url: url.to_string(),
        msg: msg.into(),
    }
}

#[async_trait::async_trait]
impl LanguageModel for OpenAiClient {
    fn describe(&self) -> String {
        format!("openai:{} at {}", self.cfg.model, self.base)
    }

    fn apply_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, LmError> {
        self.chat.render(messages, add_generation_prompt)
    }

    async fn generate(&self, prompt: &str, params: &GenParams) -> Result<Generation, LmError> {
        let url = format!("{}/completions", self.base);
        let mut body = self.sampling(params);
        body["prompt"] = json!(prompt);
        body["logprobs"] = json!(1);
        let v = self.post_ok("/completions", &body).await?;
        let c = &v["choices"][0];
        let text = c["text"]
            .as_str()
            .ok_or_else(|| bad(&url, "missing choices[0].text"))?
            .to_string();
        let lp = &c["logprobs"];
        let tokens: Vec<String> = lp["tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let logprobs: Vec<f32> = lp["token_logprobs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Generation {
            text,
            tokens,
            logprobs,
            finish_reason: c["finish_reason"].as_str().unwrap_or("stop").to_string(),
        })
    }

    async fn chat(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
    ) -> Result<Generation, LmError> {
        let url = format!("{}/chat/completions", self.base);
        let mut body = self.sampling(params);
        body["messages"] = json!(messages);
        body["logprobs"] = json!(true);
        let v = self.post_ok("/chat/completions", &body).await?;
        let c = &v["choices"][0];
        let text = c["message"]["content"]
            .as_str()
            .ok_or_else(|| bad(&url, "missing choices[0].message.content"))?
            .to_string();
        let mut tokens = Vec::new();
        let mut logprobs = Vec::new();
        if let Some(items) = c["logprobs"]["content"].as_array() {
            for it in items {
                tokens.push(it["token"].as_str().unwrap_or("").to_string());
                logprobs.push(it["logprob"].as_f64().unwrap_or(f64::NAN) as f32);
            }
        }
        Ok(Generation {
            text,
            tokens,
            logprobs,
            finish_reason: c["finish_reason"].as_str().unwrap_or("stop").to_string(),
        })
    }

    async fn score(&self, prompt: &str, continuations: &[String]) -> Result<Vec<Scored>, LmError> {
        let url = format!("{}/completions", self.base);
        if continuations.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = continuations
            .iter()
            .map(|c| format!("{prompt}{c}"))
            .collect();
        let body = json!({
            "model": self.cfg.model,
            "prompt": texts,
            "echo": true,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        });
        let v = self
            .post("/completions", &body)
            .await
            .map_err(|e| match e {
                PostError::Status(s, text) if (400..500).contains(&s) || s == 501 => {
                    LmError::ScoringUnsupported {
                        url: url.clone(),
                        msg: format!("HTTP {s}: {text}"),
                    }
                }
                PostError::Status(s, text) => LmError::Http {
                    url: url.clone(),
                    msg: format!(
                        "HTTP {s}: {text} (after {} attempts)",
                        self.cfg.max_retries + 1
                    ),
                },
                PostError::Other(e) => e,
            })?;
        let choices = v["choices"]
            .as_array()
            .ok_or_else(|| bad(&url, "missing choices"))?;
        let mut by_index: Vec<Option<&Value>> = vec![None; texts.len()];
        for (n, c) in choices.iter().enumerate() {
            let i = c["index"].as_u64().map(|i| i as usize).unwrap_or(n);
            if let Some(slot) = by_index.get_mut(i) {
                *slot = Some(c);
            }
        }
        let p_chars = prompt.chars().count();
        let mut out = Vec::with_capacity(texts.len());
        for (i, c) in by_index.into_iter().enumerate() {
            let c = c.ok_or_else(|| bad(&url, format!("no choice for prompt {i}")))?;
            let unsupported = |msg: &str| LmError::ScoringUnsupported {
                url: url.clone(),
                msg: msg.to_string(),
            };
            let lp = &c["logprobs"];
            let (Some(tokens), Some(lps)) =
                (lp["tokens"].as_array(), lp["token_logprobs"].as_array())
            else {
                return Err(unsupported(
                    "no logprobs.tokens/token_logprobs in the answer",
                ));
            };
            let tokens: Vec<&str> = tokens.iter().map(|t| t.as_str().unwrap_or("")).collect();
            let total = texts[i].chars().count();
            let echoed: String = tokens.concat();
            if !echoed.starts_with(texts[i].as_str()) {
                return Err(unsupported(
                    "the answer's tokens do not echo the prompt (log-probs of generated tokens only)",
                ));
            }
            let mut token_logprobs = Vec::new();
            let mut off = 0usize;
            for (t, l) in tokens.iter().zip(lps) {
                let len = t.chars().count();
                if off >= total {
                    break;
                }
                if off + len > p_chars {
                    let x = l
                        .as_f64()
                        .ok_or_else(|| bad(&url, "null log-prob inside the continuation"))?;
                    token_logprobs.push(x as f32);
                }
                off += len;
            }
            out.push(Scored {
                logprob: token_logprobs.iter().sum(),
                n_tokens: token_logprobs.len(),
                token_logprobs,
            });
        }
        Ok(out)
    }
}
