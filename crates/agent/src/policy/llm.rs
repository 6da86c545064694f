//! The LLM policy over any [`LanguageModel`] (local candle model or OpenAI-compatible
//! server), in two prompting modes:
//!
//! * **act**: on a page with a search box the model writes the query (the prompt is followed
//!   by `search[` and generation stops at `]`); elsewhere the model's log-probs rank every
//!   valid click action (one shared prompt, all actions scored in one batch). Robust for
//!   small models: the answer is always a valid action.
//! * **react**: the model writes `Thought: …` and `Action: …`; the action is parsed with the
//!   env's one action parser. Unparseable output is recorded (`Proposal::parse_error`) and
//!   the act-mode choice is used instead, never a crash.

use std::sync::Arc;

use super::prompt::{self, PromptMode};
use super::{Candidate, Context, Error, Policy, Proposal, Result};
use agentq_core::rng::Rng;
use agentq_lm::{ChatMessage, GenParams, LanguageModel};

/// Settings of the LLM policy.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LlmConfig {
    /// Prompting mode.
    pub mode: PromptMode,
    /// Sampling temperature for generated queries/thoughts beyond the first candidate
    /// (the first is greedy).
    pub temperature: f64,
    /// Nucleus mass for sampling.
    pub top_p: f64,
    /// Longest generated search query (tokens).
    pub max_query_tokens: usize,
    /// Longest react answer (tokens).
    pub max_react_tokens: usize,
    /// Seed mixed into every sampling seed.
    pub seed: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            mode: PromptMode::Act,
            temperature: 0.8,
            top_p: 0.95,
            max_query_tokens: 24,
            max_react_tokens: 80,
            seed: 0,
        }
    }
}

/// A policy that asks a language model.
pub struct LlmPolicy {
    model: Arc<dyn LanguageModel>,
    config: LlmConfig,
}

fn model_err(e: impl std::fmt::Display) -> Error {
    Error::Model(e.to_string())
}

impl LlmPolicy {
    /// A policy over `model`.
    pub fn new(model: Arc<dyn LanguageModel>, config: LlmConfig) -> Self {
        LlmPolicy { model, config }
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn LanguageModel> {
        &self.model
    }

    /// The exact prompt text (chat template applied, assistant turn opened) at `ctx`.
    pub fn prompt_text(&self, ctx: &Context<'_>) -> Result<String> {
        let msgs = prompt::with_input(ctx, |p| prompt::policy_messages(self.config.mode, p));
        let chat: Vec<ChatMessage> = msgs
            .into_iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: m.content,
            })
            .collect();
        self.model.apply_chat(&chat, true).map_err(model_err)
    }

    fn seed(&self, ctx: &Context<'_>, i: usize) -> u64 {
        Rng::keyed(
            self.config.seed ^ ctx.seed.rotate_left(29),
            &format!("{}/{}/{i}", ctx.goal, ctx.history.len()),
        )
        .next_u64()
    }

    /// Act mode on a page with a search box: up to `k` generated queries (greedy first,
    /// then sampled), deduplicated.
    async fn queries(
        &self,
        ctx: &Context<'_>,
        prompt_text: &str,
        prefix: &str,
        fallbacks: &mut Vec<String>,
    ) -> Result<Vec<Candidate>> {
        let mut out: Vec<Candidate> = Vec::new();
        let k = ctx.k.max(1);
        for i in 0..(2 * k) {
            if out.len() >= k {
                break;
            }
            let params = GenParams {
                max_tokens: self.config.max_query_tokens,
                temperature: if i == 0 { 0.0 } else { self.config.temperature },
                top_p: self.config.top_p,
                seed: self.seed(ctx, i),
                stop: vec!["]".into(), "\n".into()],
            };
            let g = self
                .model
                .generate(&format!("{prompt_text}{prefix}search["), &params)
                .await
                .map_err(model_err)?;
            let q = g.text.trim().to_lowercase();
            let q = if placeholder_query(&q) {
                // Small models copy placeholders; the instruction stands in, and the
                // substitution is recorded as a parse error.
                fallbacks.push(format!("unusable query {:?}", g.text));
                super::baselines::instruction_query(ctx.instruction)
            } else {
                q
            };
            let action = format!("search[{q}]");
            if out.iter().all(|c| c.action != action) {
                out.push(Candidate {
                    action,
                    logprob: None,
                    thought: None,
                });
            }
        }
        // The log-prob of the whole answer (`search[…]`, as pairs and the trainer see it),
        // not only of the sampled query tokens: one scoring pass over the short prompt.
        let conts: Vec<String> = out
            .iter()
            .map(|c| format!("{prefix}{}", c.action))
            .collect();
        let scores = self
            .model
            .score(prompt_text, &conts)
            .await
            .map_err(model_err)?;
        for (c, s) in out.iter_mut().zip(scores) {
            c.logprob = Some(s.logprob as f64);
        }
        Ok(out)
    }

    /// Act mode elsewhere: every valid click action scored after the prompt, best first.
    async fn ranked_clicks(
        &self,
        ctx: &Context<'_>,
        prompt_text: &str,
        prefix: &str,
    ) -> Result<Vec<Candidate>> {
        let actions: Vec<String> = prompt::action_list(ctx.available)
            .into_iter()
            .filter(|a| a.starts_with("click["))
            .collect();
        if actions.is_empty() {
            return Err(Error::NoAction(format!(
                "no valid action on {}",
                ctx.observation.url
            )));
        }
        let conts: Vec<String> = actions.iter().map(|a| format!("{prefix}{a}")).collect();
        let scores = self
            .model
            .score(prompt_text, &conts)
            .await
            .map_err(model_err)?;
        if scores.len() != actions.len() {
            return Err(Error::Model(format!(
                "the model scored {} of {} continuations",
                scores.len(),
                actions.len()
            )));
        }
        // Ranked by mean log-prob per token (a summed log-prob favours short labels such as
        // `next >` over product ids); `logprob` keeps the sum, the answer's log-prob.
        let mut ranked: Vec<(f64, Candidate)> = actions
            .into_iter()
            .zip(scores)
            .map(|(a, s)| {
                (
                    s.logprob as f64 / s.n_tokens.max(1) as f64,
                    Candidate {
                        action: a,
                        logprob: Some(s.logprob as f64),
                        thought: None,
                    },
                )
            })
            .collect();
        // Stable: ties keep page order.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut cands: Vec<Candidate> = ranked.into_iter().map(|(_, c)| c).collect();
        cands.truncate(ctx.k.max(1));
        Ok(cands)
    }

    async fn act(
        &self,
        ctx: &Context<'_>,
        prompt_text: &str,
        prefix: &str,
        fallbacks: &mut Vec<String>,
    ) -> Result<Vec<Candidate>> {
        if ctx.observation.has_search_bar && ctx.available.iter().any(|a| a == "search[...]") {
            self.queries(ctx, prompt_text, prefix, fallbacks).await
        } else {
            self.ranked_clicks(ctx, prompt_text, prefix).await
        }
    }

    async fn react(&self, ctx: &Context<'_>, prompt_text: &str) -> Result<Proposal> {
        let k = ctx.k.max(1);
        let mut cands: Vec<Candidate> = Vec::new();
        let mut raw = Vec::new();
        let mut errors = Vec::new();
        for i in 0..k {
            let params = GenParams {
                max_tokens: self.config.max_react_tokens,
                temperature: if i == 0 { 0.0 } else { self.config.temperature },
                top_p: self.config.top_p,
                seed: self.seed(ctx, i),
                stop: vec!["\n\n".into()],
            };
            let g = self
                .model
                .generate(prompt_text, &params)
                .await
                .map_err(model_err)?;
            raw.push(g.text.clone());
            match prompt::parse_react(&g.text) {
                Ok((thought, action)) if valid_here(ctx, &action) => {
                    if cands.iter().all(|c| c.action != action) {
                        // No log-prob: the sampled text is not exactly the formatted answer
                        // that pairs and the trainer use, so the trainer recomputes it.
                        cands.push(Candidate {
                            action,
                            logprob: None,
                            thought,
                        });
                    }
                }
                Ok((_, action)) => errors.push(format!("{action} is not valid on this page")),
                Err(e) => errors.push(e),
            }
        }
        if cands.is_empty() {
            // Fall back to the act-mode choice with a thought-free answer.
            cands = self
                .act(
                    ctx,
                    prompt_text,
                    "Thought: I will take the next step.\nAction: ",
                    &mut errors,
                )
                .await?;
        }
        let parse_error = (!errors.is_empty()).then(|| errors.join("; "));
        Ok(Proposal {
            candidates: cands,
            prompt: Some(prompt_text.to_string()),
            raw_output: Some(raw.join("\n---\n")),
            parse_error,
        })
    }
}

/// A generated query that is no query: empty, punctuation only, or a copied placeholder.
fn placeholder_query(q: &str) -> bool {
    let letters: String = q
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect();
    let t = letters.trim();
    t.is_empty()
        || [
            "query",
            "your query",
            "search",
            "words",
            "keywords",
            "the words to look for",
            "words to look for",
        ]
        .contains(&t)
}

/// Whether `action` may be taken at `ctx` (a search where a search box is, or a listed
/// click).
fn valid_here(ctx: &Context<'_>, action: &str) -> bool {
    if action.starts_with("search[") {
        ctx.available.iter().any(|a| a == "search[...]")
    } else {
        ctx.available.iter().any(|a| a == action) && action != "click[search]"
    }
}

#[async_trait::async_trait]
impl Policy for LlmPolicy {
    fn describe(&self) -> String {
        format!(
            "llm:{}:{}:{}",
            self.config.mode.as_str(),
            prompt::PROMPT_VERSION,
            self.model.describe()
        )
    }

    async fn propose(&self, ctx: &Context<'_>) -> Result<Proposal> {
        let prompt_text = self.prompt_text(ctx)?;
        match self.config.mode {
            PromptMode::Act => {
                let mut fallbacks = Vec::new();
                let candidates = self.act(ctx, &prompt_text, "", &mut fallbacks).await?;
                Ok(Proposal {
                    candidates,
                    prompt: Some(prompt_text),
                    raw_output: None,
                    parse_error: (!fallbacks.is_empty()).then(|| fallbacks.join("; ")),
                })
            }
            PromptMode::React => self.react(ctx, &prompt_text).await,
        }
    }
}
