//! Demonstrations for supervised fine-tuning: recorded episodes turned into prompt/response
//! pairs in exactly the LLM policy's prompt format (`policy::prompt`).

use serde::{Deserialize, Serialize};

use crate::policy::prompt::{self, Message, PromptInput, PromptMode};
use agentq_trajectory::Episode;

/// One SFT example (TRL's conversational prompt/completion form, plus a plain `response`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftExample {
    /// System and user messages.
    pub prompt: Vec<Message>,
    /// The assistant message.
    pub completion: Vec<Message>,
    /// The assistant text alone.
    pub response: String,
    /// Task of the episode.
    pub task: String,
    /// Step index.
    pub step: usize,
    /// Reward of the whole episode.
    pub episode_reward: f64,
    /// `act` or `react`.
    pub mode: PromptMode,
    /// [`prompt::PROMPT_VERSION`].
    pub prompt_version: String,
}

/// The examples of one episode: one per step whose action was valid.
pub fn examples(ep: &Episode, mode: PromptMode) -> Vec<SftExample> {
    let mut out = Vec::new();
    let mut history: Vec<&str> = Vec::new();
    for s in &ep.steps {
        if s.info.error.is_none() {
            let input = PromptInput {
                instruction: &ep.header.instruction,
                history: &history,
                page: &s.observation,
                available: &s.available_actions,
            };
            let response = prompt::response(mode, &s.action, s.thought.as_deref());
            out.push(SftExample {
                prompt: prompt::policy_messages(mode, &input),
                completion: vec![Message::new("assistant", response.clone())],
                response,
                task: ep.header.task.clone(),
                step: s.index,
                episode_reward: ep.summary.reward,
                mode,
                prompt_version: prompt::PROMPT_VERSION.into(),
            });
        }
        history.push(&s.action);
    }
    out
}
