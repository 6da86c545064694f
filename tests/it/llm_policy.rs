//! The LLM policy over a scripted in-test language model: act mode ranks the page's valid
//! actions by log-prob and writes queries; react mode parses thoughts and actions, and
//! unparseable output is recorded and counted, never a crash.

use std::sync::{Arc, Mutex};

use agentq::agent::{run_episode, EpisodeMeta};
use agentq::env::drivers::in_process;
use agentq::env::{EnvConfig, ObsMode, TaskRef};
use agentq::lm::{ChatMessage, GenParams, Generation, LanguageModel, LmError, Scored};
use agentq::policy::llm::{LlmConfig, LlmPolicy};
use agentq::policy::prompt::PromptMode;
use agentq::policy::Policy;
use agentq::store::http::{router, AppState};
use agentq::store::pages::Store;
use agentq::store::Catalog;

/// Prefers `click[buy now]`, then product links in page order; answers generations with a
/// fixed text; records every prompt it sees.
struct Scripted {
    answer: String,
    prompts: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl LanguageModel for Scripted {
    fn describe(&self) -> String {
        "scripted-test-model".into()
    }
    fn apply_chat(&self, m: &[ChatMessage], gen: bool) -> Result<String, LmError> {
        let mut s: String = m
            .iter()
            .map(|m| format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content))
            .collect();
        if gen {
            s.push_str("<|im_start|>assistant\n");
        }
        Ok(s)
    }
    async fn generate(&self, prompt: &str, p: &GenParams) -> Result<Generation, LmError> {
        self.prompts.lock().unwrap().push(prompt.to_string());
        let mut text = self.answer.clone();
        for s in &p.stop {
            if let Some(i) = text.find(s.as_str()) {
                text.truncate(i);
            }
        }
        Ok(Generation {
            tokens: text.split(' ').map(str::to_string).collect(),
            logprobs: vec![-0.5; text.split(' ').count()],
            text,
            finish_reason: "stop".into(),
        })
    }
    async fn score(&self, prompt: &str, conts: &[String]) -> Result<Vec<Scored>, LmError> {
        self.prompts.lock().unwrap().push(prompt.to_string());
        Ok(conts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let lp = if c.ends_with("click[buy now]") {
                    -1.0
                } else if c.contains("click[b0") {
                    -2.0 - i as f32 * 0.01
                } else {
                    -10.0
                };
                Scored {
                    logprob: lp,
                    token_logprobs: vec![lp],
                    n_tokens: 1,
                }
            })
            .collect())
    }
}

fn meta(k: usize) -> EpisodeMeta {
    EpisodeMeta {
        env: "webshop-v0".into(),
        data_hash: "test".into(),
        driver: "inproc".into(),
        obs_mode: ObsMode::Text,
        max_steps: 10,
        k,
    }
}

fn env() -> agentq::env::drivers::InProcessEnv {
    let cat = Catalog::load_dir(&crate::util::fixtures_dir()).unwrap();
    let store = Arc::new(Store::new(Arc::new(cat)));
    in_process(
        router(AppState::new(store)),
        EnvConfig {
            max_steps: 10,
            ..EnvConfig::default()
        },
    )
}

#[tokio::test]
async fn act_mode_ranks_valid_actions_and_writes_queries() {
    let model = Arc::new(Scripted {
        answer: "cashews] and more".into(),
        prompts: Mutex::default(),
    });
    let policy = LlmPolicy::new(model.clone(), LlmConfig::default());
    assert!(policy.describe().starts_with("llm:act:webshop-v3:scripted"));
    let mut e = env();
    let ep = run_episode(
        &mut e,
        &policy,
        &meta(3),
        TaskRef {
            split: None,
            index: 3,
        },
        0,
    )
    .await
    .unwrap();
    let actions: Vec<&str> = ep.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions[0], "search[cashews]", "{actions:?}");
    assert!(actions[1].starts_with("click[b0"), "{actions:?}");
    assert_eq!(actions[2], "click[buy now]");
    assert!(ep.summary.terminated);
    assert_eq!(ep.summary.invalid_actions, 0);
    // Clicks were ranked: up to k candidates with log-probs, best first.
    let c = &ep.steps[1].candidates;
    assert_eq!(c.len(), 3);
    assert!(c.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    // The search prompt ends with the opened assistant turn and `search[`.
    let prompts = model.prompts.lock().unwrap();
    assert!(
        prompts[0].ends_with("<|im_start|>assistant\nsearch["),
        "{}",
        prompts[0]
    );
    assert!(prompts[0].contains("Instruction: "));
}

#[tokio::test]
async fn react_mode_records_unparseable_output_and_falls_back() {
    let model = Arc::new(Scripted {
        answer: "I like turtles".into(),
        prompts: Mutex::default(),
    });
    let policy = LlmPolicy::new(
        model,
        LlmConfig {
            mode: PromptMode::React,
            ..LlmConfig::default()
        },
    );
    let mut e = env();
    let ep = run_episode(
        &mut e,
        &policy,
        &meta(1),
        TaskRef {
            split: None,
            index: 3,
        },
        0,
    )
    .await
    .unwrap();
    assert!(ep.summary.parse_errors >= 2, "{:?}", ep.summary);
    let s = &ep.steps[1];
    assert!(
        s.parse_error.as_deref().unwrap().contains("unparseable"),
        "{s:?}"
    );
    assert_eq!(s.raw_output.as_deref(), Some("I like turtles"));
    assert_eq!(ep.summary.invalid_actions, 0, "fallbacks are valid actions");

    // A parseable answer is taken with its thought.
    let model = Arc::new(Scripted {
        answer: "Thought: open the first one\nAction: click[back to search]".into(),
        prompts: Mutex::default(),
    });
    let policy = LlmPolicy::new(
        model,
        LlmConfig {
            mode: PromptMode::React,
            ..LlmConfig::default()
        },
    );
    let mut e = env();
    let ep = run_episode(
        &mut e,
        &policy,
        &meta(1),
        TaskRef {
            split: None,
            index: 3,
        },
        0,
    )
    .await
    .unwrap();
    // On the search page `click[back to search]` is not valid: recorded, fallback used.
    assert!(ep.steps[0]
        .parse_error
        .as_deref()
        .unwrap()
        .contains("not valid"));
    assert_eq!(ep.steps[1].action, "click[back to search]");
    assert_eq!(ep.steps[1].thought.as_deref(), Some("open the first one"));
}

/// Prefers, as critic answer, the number of the candidate line that says `buy now`; says
/// "yes" to judge prompts.
struct CriticModel;

#[async_trait::async_trait]
impl LanguageModel for CriticModel {
    fn describe(&self) -> String {
        "critic-test-model".into()
    }
    fn apply_chat(&self, m: &[ChatMessage], _gen: bool) -> Result<String, LmError> {
        Ok(m.iter()
            .map(|m| m.content.clone())
            .collect::<Vec<_>>()
            .join("\n"))
    }
    async fn generate(&self, _p: &str, _g: &GenParams) -> Result<Generation, LmError> {
        Err(LmError::Invalid("not used".into()))
    }
    async fn score(&self, prompt: &str, conts: &[String]) -> Result<Vec<Scored>, LmError> {
        let best = prompt
            .lines()
            .skip_while(|l| *l != "Candidate next actions:")
            .skip(1)
            .position(|l| l.contains("buy now"))
            .map(|i| (i + 1).to_string());
        Ok(conts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let lp = if Some(c) == best.as_ref() || c == "yes" {
                    -0.1
                } else {
                    -3.0 - i as f32
                };
                Scored {
                    logprob: lp,
                    token_logprobs: vec![lp],
                    n_tokens: 1,
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn critic_ranks_by_iterative_pick_best_and_judges() {
    use agentq::env::Env as _;
    use agentq::policy::critic::{CriticScheme, LlmCritic};
    use agentq::policy::Context;
    let mut e = env();
    let task = TaskRef {
        split: None,
        index: 3,
    };
    let obs = e.reset(task, 0).await.unwrap();
    let available = e.available_actions();
    let ctx = Context {
        task,
        goal: 3,
        seed: 0,
        instruction: &obs.instruction,
        history: &[],
        observation: &obs,
        page: e.page_kind(&obs),
        mode: ObsMode::Text,
        available: &available,
        k: 3,
    };
    let cands: Vec<String> = [
        "click[next >]",
        "click[b0x]",
        "click[buy now]",
        "click[< prev]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for scheme in [CriticScheme::Iterative, CriticScheme::Logprob] {
        let critic = LlmCritic::new(Arc::new(CriticModel), scheme);
        let order = critic.rank(&ctx, &cands).await.unwrap();
        assert_eq!(order[0], 2, "{scheme:?}: {order:?}");
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3], "a permutation");
        assert!(critic.judge(&ctx).await.unwrap() > 0.9);
    }
}
