//! Language models behind one interface: generation with per-token log-probs, scoring of
//! continuations after a shared prompt, and chat templates.
//!
//! Backends: [`local`] (our own llama-family model on candle, loaded from GGUF or a
//! safetensors directory) and [`openai`] (any OpenAI-compatible server). [`serve`] exposes any
//! [`LanguageModel`] through the same OpenAI-compatible API, so agentq is itself a local model
//! server. [`llama`] holds the differentiable model math used by the trainer.

pub mod chat;
pub mod cpu;
pub mod fetch;
pub mod llama;
pub mod load;
pub mod local;
pub mod openai;
pub mod ops;
pub mod serve;
pub mod tiny;
pub mod tokenizer;

use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `"system"`, `"user"` or `"assistant"`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Sampling parameters of [`LanguageModel::generate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenParams {
    /// Maximum number of generated tokens.
    pub max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling mass (1 = off).
    pub top_p: f64,
    /// Seed of the sampler.
    pub seed: u64,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            max_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// The result of a generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    /// Generated text (without the stop string or end-of-sequence token).
    pub text: String,
    /// The generated tokens as text pieces.
    pub tokens: Vec<String>,
    /// Log-prob of each generated token under the model (temperature 1).
    pub logprobs: Vec<f32>,
    /// `"stop"` (end of sequence or stop string) or `"length"`.
    pub finish_reason: String,
}

/// Log-prob of one continuation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scored {
    /// Sum of the token log-probs.
    pub logprob: f32,
    /// Log-prob of each continuation token.
    pub token_logprobs: Vec<f32>,
    /// Number of continuation tokens.
    pub n_tokens: usize,
}

/// Per-token log-probs of a whole text (the first token has none), as the OpenAI
/// completions API reports them with `echo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextLogprobs {
    /// Token pieces (their concatenation is the text).
    pub tokens: Vec<String>,
    /// Character offset of each token in the text.
    pub text_offset: Vec<usize>,
    /// Log-prob of each token given the ones before it (`None` for the first).
    pub token_logprobs: Vec<Option<f32>>,
}

/// Errors of the language-model layer. Messages name the file, field or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A model file is malformed (bad GGUF, missing tensor, missing config field …).
    #[error("{path}: {msg}")]
    BadModel {
        /// The file or directory.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// Tokenizer construction or use failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Chat template rendering failed.
    #[error("chat template: {0}")]
    Template(String),
    /// A tensor operation failed.
    #[error("model computation: {0}")]
    Candle(candle_core::Error),
    /// Invalid request (empty prompt, prompt too long …).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// HTTP transport failure (after retries).
    #[error("{url}: {msg}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        msg: String,
    },
    /// The server answered with something that is not the expected JSON.
    #[error("{url}: bad response: {msg}")]
    BadResponse {
        /// The URL.
        url: String,
        /// What is wrong.
        msg: String,
    },
    /// The server cannot score continuations (no `/v1/completions` with `echo` + `logprobs`).
    #[error("{url}: scoring unsupported by this server ({msg})")]
    ScoringUnsupported {
        /// The URL.
        url: String,
        /// The server's answer.
        msg: String,
    },
    /// Model fetching failed.
    #[error("model fetch: {0}")]
    Fetch(String),
    /// The backend worker stopped.
    #[error("model worker stopped")]
    WorkerGone,
}

impl From<candle_core::Error> for LmError {
    fn from(e: candle_core::Error) -> Self {
        LmError::Candle(without_backtrace(e))
    }
}

/// candle attaches a backtrace to errors when `RUST_BACKTRACE` is set; messages stay one line.
pub(crate) fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        e => e,
    }
}

/// A language model: local (candle) or remote (OpenAI-compatible).
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// Short description for run headers, e.g. "candle:SmolLM2-135M-Instruct.Q4_1.gguf (f32, cpu)".
    fn describe(&self) -> String;
    /// Render chat messages with the model's chat template (ChatML / Llama-3), optionally opening the assistant turn.
    fn apply_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, LmError>;
    /// Continue a raw prompt (already templated).
    async fn generate(&self, prompt: &str, params: &GenParams) -> Result<Generation, LmError>;
    /// Log-prob of each continuation given the prompt (prompt computed once, KV reused, batched).
    async fn score(&self, prompt: &str, continuations: &[String]) -> Result<Vec<Scored>, LmError>;
    /// Answer a chat: by default the template is applied locally and the prompt continued;
    /// remote backends use the server's chat endpoint.
    async fn chat(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
    ) -> Result<Generation, LmError> {
        let prompt = self.apply_chat(messages, true)?;
        self.generate(&prompt, params).await
    }
    /// Per-token log-probs of a whole text (for `echo` in the completions API).
    async fn text_logprobs(&self, _text: &str) -> Result<TextLogprobs, LmError> {
        Err(LmError::Invalid(format!(
            "{} cannot report log-probs of a text",
            self.describe()
        )))
    }
}
