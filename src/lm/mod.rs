//! Language models: the interface policies and the trainer use (generation with per-token
//! log-probs, scoring of continuations with a shared prompt, chat templates).

use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// Sampling settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenParams {
    /// Tokens at most.
    pub max_tokens: usize,
    /// Temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Sampling seed.
    pub seed: u64,
    /// Stop strings (not included in the text).
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

/// A generated continuation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    /// The text (without a stop string).
    pub text: String,
    /// The tokens generated.
    pub tokens: Vec<String>,
    /// Log-prob of each generated token.
    pub logprobs: Vec<f32>,
    /// `stop` or `length`.
    pub finish_reason: String,
}

/// The log-prob of one continuation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scored {
    /// Sum over its tokens.
    pub logprob: f32,
    /// Per token.
    pub token_logprobs: Vec<f32>,
    /// Number of tokens.
    pub n_tokens: usize,
}

/// Errors of language models.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// Anything the backend reports.
    #[error("{0}")]
    Backend(String),
}

/// A language model.
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// Short description for run headers.
    fn describe(&self) -> String;
    /// Renders chat messages with the model's chat template.
    fn apply_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, LmError>;
    /// Continues a raw prompt.
    async fn generate(&self, prompt: &str, params: &GenParams) -> Result<Generation, LmError>;
    /// Log-prob of each continuation given the prompt.
    async fn score(&self, prompt: &str, continuations: &[String]) -> Result<Vec<Scored>, LmError>;
}
