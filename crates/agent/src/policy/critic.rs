//! The LLM critic (Agent Q's self-critique): the same frozen model, prompted to pick the best
//! of the candidate actions at a node. Two schemes:
//!
//! * **iterative** (the paper's): ask for the best of the remaining candidates, remove it,
//!   repeat — K−1 prompts for K candidates;
//! * **logprob** (one prompt): rank candidates by the log-prob of their number as the answer.
//!
//! And a self-evaluation of a final page (`judge`): P(yes) / (P(yes) + P(no)) for "did the
//! agent buy the right product?", used by value-free (`--value critic`) search.

use std::sync::Arc;

use super::prompt::{self, Message};
use super::{Context, Error, Result};
use agentq_lm::{ChatMessage, LanguageModel};

/// How the critic ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CriticScheme {
    /// Pick the best, remove it, repeat (K−1 prompts).
    #[default]
    Iterative,
    /// One prompt; rank by the log-prob of each candidate's number.
    Logprob,
}

impl std::str::FromStr for CriticScheme {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "iterative" => Ok(CriticScheme::Iterative),
            "logprob" => Ok(CriticScheme::Logprob),
            _ => Err(format!(
                "unknown critic scheme {s:?} (expected iterative or logprob)"
            )),
        }
    }
}

/// The LLM critic.
pub struct LlmCritic {
    model: Arc<dyn LanguageModel>,
    scheme: CriticScheme,
}

fn model_err(e: impl std::fmt::Display) -> Error {
    Error::Model(e.to_string())
}

impl LlmCritic {
    /// A critic over `model`.
    pub fn new(model: Arc<dyn LanguageModel>, scheme: CriticScheme) -> Self {
        LlmCritic { model, scheme }
    }

    /// `llm-critic:<scheme>:<model>`.
    pub fn describe(&self) -> String {
        format!(
            "llm-critic:{}:{}:{}",
            match self.scheme {
                CriticScheme::Iterative => "iterative",
                CriticScheme::Logprob => "logprob",
            },
            prompt::PROMPT_VERSION,
            self.model.describe()
        )
    }

    fn render(&self, msgs: Vec<Message>) -> Result<String> {
        let chat: Vec<ChatMessage> = msgs
            .into_iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: m.content,
            })
            .collect();
        self.model.apply_chat(&chat, true).map_err(model_err)
    }

    /// Log-probs of answering each number `1..=n` after the critic prompt for `cands`.
    async fn number_scores(&self, ctx: &Context<'_>, cands: &[String]) -> Result<Vec<f32>> {
        let text = prompt::with_input(ctx, |p| self.render(prompt::critic_messages(p, cands)))?;
        let answers: Vec<String> = (1..=cands.len()).map(|i| i.to_string()).collect();
        let s = self.model.score(&text, &answers).await.map_err(model_err)?;
        if s.len() != answers.len() {
            return Err(Error::Model(format!(
                "the model scored {} of {} answers",
                s.len(),
                answers.len()
            )));
        }
        Ok(s.into_iter().map(|x| x.logprob).collect())
    }

    /// A ranking of `cands` (indices, best first).
    pub async fn rank(&self, ctx: &Context<'_>, cands: &[String]) -> Result<Vec<usize>> {
        if cands.len() <= 1 {
            return Ok((0..cands.len()).collect());
        }
        match self.scheme {
            CriticScheme::Logprob => {
                let s = self.number_scores(ctx, cands).await?;
                let mut idx: Vec<usize> = (0..cands.len()).collect();
                idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
                Ok(idx)
            }
            CriticScheme::Iterative => {
                let mut remaining: Vec<usize> = (0..cands.len()).collect();
                let mut order = Vec::with_capacity(cands.len());
                while remaining.len() > 1 {
                    let shown: Vec<String> = remaining.iter().map(|&i| cands[i].clone()).collect();
                    let s = self.number_scores(ctx, &shown).await?;
                    let best = (0..shown.len())
                        .max_by(|&a, &b| s[a].total_cmp(&s[b]).then(b.cmp(&a)))
                        .unwrap_or(0);
                    order.push(remaining.remove(best));
                }
                order.extend(remaining);
                Ok(order)
            }
        }
    }

    /// The critic's belief in [0, 1] that the episode at `ctx` ended with the right purchase.
    pub async fn judge(&self, ctx: &Context<'_>) -> Result<f64> {
        let text = prompt::with_input(ctx, |p| self.render(prompt::judge_messages(p)))?;
        let s = self
            .model
            .score(&text, &["yes".to_string(), "no".to_string()])
            .await
            .map_err(model_err)?;
        let (y, n) = match s.as_slice() {
            [y, n] => (y.logprob as f64, n.logprob as f64),
            _ => return Err(Error::Model("the model did not score yes/no".into())),
        };
        // Softmax over the two answers.
        let m = y.max(n);
        let (ey, en) = ((y - m).exp(), (n - m).exp());
        Ok(ey / (ey + en))
    }
}
