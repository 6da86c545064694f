//! The prompts of the LLM policy and critic: pure functions of the policy [`Context`],
//! versioned by [`PROMPT_VERSION`] (recorded in run headers through the policy's
//! description). Demonstrations (`agentq demos`) and the trainer use the same functions, so
//! what a model is trained on is exactly what it is later shown.
//!
//! Every prompt of a page — the policy's (act or react), the critic's ranking, the final
//! judgement — is laid out for a model's prefix cache: the same system text, then the
//! state (instruction, page, valid actions, then the earlier actions, which change at every
//! step), and only then what differs (the request: answer with an action, rank these
//! candidates, say yes or no). The critic's prompts over the page the policy just read are
//! computed only from the request on, tree search revisiting a node recomputes nothing but
//! the request, and a page reached again by another path recomputes only the history.

use serde::{Deserialize, Serialize};

use super::{Context, PageKind};
use agentq_env::Action;

/// Version of the prompt format; bump on any change to the text below.
pub const PROMPT_VERSION: &str = "webshop-v3";

/// Characters of page text kept in a prompt (the page is cut at a separator beyond this).
pub const MAX_PAGE_CHARS: usize = 1600;

/// How the LLM policy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// The answer is one action (the model's log-probs rank the page's valid actions).
    #[default]
    Act,
    /// The answer is `Thought: …` then `Action: …` (generated and parsed).
    React,
}

impl PromptMode {
    /// `act` or `react`.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptMode::Act => "act",
            PromptMode::React => "react",
        }
    }
}

impl std::str::FromStr for PromptMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "act" => Ok(PromptMode::Act),
            "react" => Ok(PromptMode::React),
            _ => Err(format!("unknown prompt mode {s:?} (expected act or react)")),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: &str, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The system text of every prompt (one text, so that prompts share their start).
const SYSTEM: &str = "You are a shopping agent in a web store. You are given the instruction, the current page, its valid actions and your previous actions. On the search page, an action is search followed by the words to look for in square brackets. On other pages, an action is click followed by one of the labels shown in square brackets: a product id to open it, an option to select it, buy now to buy, or a button. The goal is to buy the product that matches the instruction, with the requested options.";

const REQUEST_ACT: &str = "Reply with exactly one action.";

const REQUEST_REACT: &str = "Reply with two lines: first Thought: and one short sentence, then Action: and exactly one action.";

/// The page text without the instruction block the store repeats on every page, cut to
/// [`MAX_PAGE_CHARS`] at a ` [SEP] ` boundary.
pub fn page_text(observation: &str, instruction: &str) -> String {
    let mut t = observation.to_string();
    for prefix in [
        format!("WebShop [SEP] Instruction: [SEP] {instruction} [SEP] "),
        format!("Instruction: [SEP] {instruction} [SEP] "),
    ] {
        if let Some(rest) = t.strip_prefix(&prefix) {
            t = rest.to_string();
            break;
        }
    }
    if t.chars().count() <= MAX_PAGE_CHARS {
        return t;
    }
    let cut: String = t.chars().take(MAX_PAGE_CHARS).collect();
    let end = cut.rfind(" [SEP] ").unwrap_or(cut.len());
    format!("{} [SEP] …", &cut[..end])
}

/// Valid actions as the prompt lists them: the page's clicks (`click[search]`, a no-op, left
/// out) and, on a page with a search box, `search[…]` (small models copy a placeholder such as
/// `<query>` literally, so none is shown).
pub fn action_list(available: &[String]) -> Vec<String> {
    available
        .iter()
        .filter(|a| a.as_str() != "click[search]")
        .map(|a| {
            if a == "search[...]" {
                "search[…]".to_string()
            } else {
                a.clone()
            }
        })
        .collect()
}

/// What a prompt is built from: available from a live [`Context`] and from a recorded
/// trajectory step alike (so demonstrations and training data match live prompts).
#[derive(Debug, Clone, Copy)]
pub struct PromptInput<'a> {
    /// The goal instruction.
    pub instruction: &'a str,
    /// Earlier actions, oldest first.
    pub history: &'a [&'a str],
    /// The page as the policy sees it (observation in the episode's mode).
    pub page: &'a str,
    /// Valid actions of the page.
    pub available: &'a [String],
}

fn user_text(p: &PromptInput<'_>) -> String {
    let history = if p.history.is_empty() {
        "none".to_string()
    } else {
        p.history.join(" > ")
    };
    let page = page_text(p.page, p.instruction);
    // The page before the history: a page reached again by another path (a loop back to
    // the results, a transposition in tree search) shares its whole prompt but the end.
    format!(
        "Instruction: {}\nPage: {page}\nValid actions: {}\nPrevious actions: {history}",
        p.instruction,
        action_list(p.available).join(", ")
    )
}

/// Runs `f` on the prompt input of a live context.
pub fn with_input<R>(ctx: &Context<'_>, f: impl FnOnce(&PromptInput<'_>) -> R) -> R {
    let history: Vec<&str> = ctx.history.iter().map(|t| t.action.as_str()).collect();
    f(&PromptInput {
        instruction: ctx.instruction,
        history: &history,
        page: ctx.observation.render(ctx.mode),
        available: ctx.available,
    })
}

/// The policy prompt (system + user: the state, then the request); the answer is the
/// assistant turn.
pub fn policy_messages(mode: PromptMode, p: &PromptInput<'_>) -> Vec<Message> {
    let request = match mode {
        PromptMode::Act => REQUEST_ACT,
        PromptMode::React => REQUEST_REACT,
    };
    vec![
        Message::new("system", SYSTEM),
        Message::new("user", format!("{}\n{request}", user_text(p))),
    ]
}

/// The assistant answer for `action` (with `thought` in react mode).
pub fn response(mode: PromptMode, action: &str, thought: Option<&str>) -> String {
    match mode {
        PromptMode::Act => action.to_string(),
        PromptMode::React => format!(
            "Thought: {}\nAction: {action}",
            thought.unwrap_or("I will take the next step.")
        ),
    }
}

/// The critic prompt: rank `candidates` at `ctx` (the answer is a candidate number).
pub fn critic_messages(p: &PromptInput<'_>, candidates: &[String]) -> Vec<Message> {
    let list: Vec<String> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}. {c}", i + 1))
        .collect();
    vec![
        Message::new("system", SYSTEM),
        Message::new(
            "user",
            format!(
                "{}\nCandidate next actions:\n{}\nWhich candidate is most likely to lead to buying the product that matches the instruction, with the requested options? Answer with its number.",
                user_text(p),
                list.join("\n")
            ),
        ),
    ]
}

/// The critic's self-evaluation prompt of a final page (answer `yes` or `no`).
pub fn judge_messages(p: &PromptInput<'_>) -> Vec<Message> {
    vec![
        Message::new("system", SYSTEM),
        Message::new(
            "user",
            format!(
                "{}\nDid the agent buy the product that matches the instruction, with the requested options? Answer yes or no.",
                user_text(p)
            ),
        ),
    ]
}

/// Parses a react answer: the text after the last `Action:` (or the whole text) must be a
/// valid action; the `Thought:` line, if any, is returned with it.
pub fn parse_react(text: &str) -> Result<(Option<String>, String), String> {
    let thought = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Thought:"))
        .map(|t| t.trim().to_string());
    let tail = match text.rfind("Action:") {
        Some(i) => &text[i + "Action:".len()..],
        None => text,
    };
    let line = tail
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    // Keep the action up to its closing bracket (models often add text after it).
    let action = match line.find(']') {
        Some(i) => &line[..=i],
        None => line,
    };
    Action::parse(action)
        .map(|_| (thought, action.to_string()))
        .map_err(|e| format!("unparseable model output {text:?}: {e}"))
}

/// A short thought the oracle attaches to its actions (for react demonstrations).
pub fn oracle_thought(page: PageKind, action: &str) -> String {
    let arg = action
        .split_once('[')
        .map(|(_, r)| r.trim_end_matches(']'))
        .unwrap_or("");
    if action.starts_with("search[") {
        return "I should search for the product the instruction describes.".into();
    }
    match (page, arg) {
        (_, "buy now") => "The product and its options match the instruction, so I buy it.".into(),
        (_, "next >") => "The right product is not on this page; I check the next page.".into(),
        (_, "back to search") => "None of these products fit; I search again.".into(),
        (_, "< prev") => "This is not the right product; I go back.".into(),
        (PageKind::Results, a) => format!("Product {a} matches the instruction best; I open it."),
        (PageKind::Item, a) => format!("The instruction asks for {a}; I select it."),
        _ => "I will take the next step.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_text_drops_the_instruction_and_cuts_at_a_separator() {
        let ins = "i need red shoes";
        let obs = format!("Instruction: [SEP] {ins} [SEP] Back to Search [SEP] Next >");
        assert_eq!(page_text(&obs, ins), "Back to Search [SEP] Next >");
        let long = format!(
            "WebShop [SEP] Instruction: [SEP] {ins} [SEP] {}",
            vec!["word"; 1000].join(" [SEP] ")
        );
        let p = page_text(&long, ins);
        assert!(p.chars().count() <= MAX_PAGE_CHARS + 8, "{}", p.len());
        assert!(p.ends_with("word [SEP] …"), "{p}");
    }

    #[test]
    fn react_answers_parse_or_fail_clearly() {
        let (t, a) = parse_react("Thought: open it\nAction: click[b0s0001]").unwrap();
        assert_eq!(t.as_deref(), Some("open it"));
        assert_eq!(a, "click[b0s0001]");
        let (t, a) = parse_react("Action: search[red shoes] because").unwrap();
        assert_eq!(t, None);
        assert_eq!(a, "search[red shoes]");
        assert!(parse_react("I think we should buy").is_err());
        assert!(parse_react("").is_err());
    }

    #[test]
    fn every_prompt_of_a_page_starts_with_the_same_state() {
        let available = vec!["click[back to search]".to_string(), "click[b0s1]".into()];
        let history = ["search[red shoes]"];
        let p = PromptInput {
            instruction: "i need red shoes",
            history: &history,
            page: "Back to Search [SEP] b0s1 [SEP] Red shoes",
            available: &available,
        };
        let flat = |m: Vec<Message>| {
            m.iter()
                .map(|m| format!("{}:{}", m.role, m.content))
                .collect::<Vec<_>>()
                .join("|")
        };
        let state = format!("system:{SYSTEM}|user:{}\n", user_text(&p));
        for prompt in [
            flat(policy_messages(PromptMode::Act, &p)),
            flat(policy_messages(PromptMode::React, &p)),
            flat(critic_messages(&p, &["click[b0s1]".into()])),
            flat(judge_messages(&p)),
        ] {
            assert!(prompt.starts_with(&state), "{prompt}");
            assert!(
                prompt.len() > state.len() + 10,
                "a request follows the state"
            );
        }
    }

    #[test]
    fn responses() {
        assert_eq!(response(PromptMode::Act, "click[x]", Some("t")), "click[x]");
        assert_eq!(
            response(PromptMode::React, "click[x]", Some("t")),
            "Thought: t\nAction: click[x]"
        );
        assert_eq!(
            action_list(&[
                "search[...]".into(),
                "click[search]".into(),
                "click[a]".into()
            ]),
            vec!["search[…]", "click[a]"]
        );
    }
}
