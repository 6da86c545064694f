//! An OpenAI-compatible HTTP API over any [`LanguageModel`] (`agentq lm serve`):
//! `GET /v1/models`, `POST /v1/chat/completions` (with `logprobs`) and
//! `POST /v1/completions` (with `echo` + `logprobs`, so clients can score continuations).
//! Not streamed; errors are `{"error": {"message", "type"}}` with 400 for bad requests.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ChatMessage, GenParams, LanguageModel, LmError};

type Model = Arc<dyn LanguageModel>;

/// The API router (testable with `tower::ServiceExt::oneshot`, no socket needed).
pub fn router(model: Arc<dyn LanguageModel>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .with_state(model)
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Sampling {
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop: Option<OneOrMany>,
}

impl Sampling {
    fn params(self, default_max: usize) -> GenParams {
        GenParams {
            max_tokens: self
                .max_completion_tokens
                .or(self.max_tokens)
                .unwrap_or(default_max),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            seed: self.seed.unwrap_or(0),
            stop: self.stop.map(OneOrMany::into_vec).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    logprobs: bool,
    #[serde(flatten)]
    sampling: Sampling,
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    prompt: OneOrMany,
    #[serde(default)]
    echo: bool,
    logprobs: Option<u32>,
    #[serde(flatten)]
    sampling: Sampling,
}

struct ApiError(StatusCode, String);

impl From<LmError> for ApiError {
    fn from(e: LmError) -> Self {
        let code = match e {
            LmError::Invalid(_) | LmError::Template(_) | LmError::Tokenizer(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.0 == StatusCode::BAD_REQUEST {
            "invalid_request_error"
        } else {
            "server_error"
        };
        (
            self.0,
            Json(json!({"error": {"message": self.1, "type": kind}})),
        )
            .into_response()
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn models(State(m): State<Model>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": m.describe(), "object": "model", "owned_by": "agentq"}],
    }))
}

async fn chat(State(m): State<Model>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    let req: ChatRequest = parse(&body)?;
    let want_lp = req.logprobs;
    let g = m.chat(&req.messages, &req.sampling.params(256)).await?;
    let logprobs = if want_lp {
        let content: Vec<Value> = g
            .tokens
            .iter()
            .zip(&g.logprobs)
            .map(|(t, l)| json!({"token": t, "logprob": l, "bytes": t.as_bytes(), "top_logprobs": []}))
            .collect();
        json!({ "content": content })
    } else {
        Value::Null
    };
    Ok(Json(json!({
        "id": format!("chatcmpl-{}", now()),
        "object": "chat.completion",
        "created": now(),
        "model": m.describe(),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": g.text},
            "logprobs": logprobs,
            "finish_reason": g.finish_reason,
        }],
        "usage": {"completion_tokens": g.tokens.len()},
    })))
}

async fn completions(
    State(m): State<Model>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: CompletionRequest = parse(&body)?;
    let prompts = req.prompt.into_vec();
    let params = req.sampling.params(16);
    let mut choices = Vec::with_capacity(prompts.len());
    for (i, prompt) in prompts.iter().enumerate() {
        let g = if params.max_tokens > 0 {
            Some(m.generate(prompt, &params).await?)
        } else {
            None
        };
        let gen_text = g.as_ref().map(|g| g.text.clone()).unwrap_or_default();
        let mut text = String::new();
        let mut tokens: Vec<String> = Vec::new();
        let mut token_lps: Vec<Option<f32>> = Vec::new();
        let mut offsets: Vec<usize> = Vec::new();
        if req.echo {
            text.push_str(prompt);
            let t = m.text_logprobs(prompt).await?;
            tokens = t.tokens;
            token_lps = t.token_logprobs;
            offsets = t.text_offset;
        }
        let mut off = text.chars().count();
        if let Some(g) = &g {
            for (t, l) in g.tokens.iter().zip(&g.logprobs) {
                tokens.push(t.clone());
                token_lps.push(Some(*l));
                offsets.push(off);
                off += t.chars().count();
            }
        }
        text.push_str(&gen_text);
        let logprobs = if req.logprobs.is_some() {
            json!({"tokens": tokens, "token_logprobs": token_lps, "text_offset": offsets, "top_logprobs": Value::Null})
        } else {
            Value::Null
        };
        choices.push(json!({
            "index": i,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": g.as_ref().map(|g| g.finish_reason.clone()).unwrap_or_else(|| "length".into()),
        }));
    }
    Ok(Json(json!({
        "id": format!("cmpl-{}", now()),
        "object": "text_completion",
        "created": now(),
        "model": m.describe(),
        "choices": choices,
    })))
}
