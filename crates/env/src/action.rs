//! The action grammar — the one parser of action strings in agentq.
//!
//! WebShop's grammar (`search[query]`, `click[label]`) with its exact parsing rule: the
//! action matches `(.+)\[(.+)\]` greedily from the start (Python `re.match`), so the name is
//! everything before the last `[` that has a later `]`, and the argument runs to the last `]`
//! (text after it is ignored); the argument is lower-cased. `search[foo [bar]]` therefore has
//! the name `search[foo ` and is invalid, as in WebShop. Form-based sites add
//! `type[id][text]` and `select[id][value]` (two bracket groups, arguments kept verbatim).

use std::fmt;

/// A parsed action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Search the store for a query (lower-cased).
    Search {
        /// The query, lower-cased.
        query: String,
    },
    /// Click a clickable by label (lower-cased) or element id.
    Click {
        /// The label or id.
        target: String,
    },
    /// Type text into a form field.
    Type {
        /// Element id of the field.
        id: String,
        /// Text to type.
        text: String,
    },
    /// Choose a value of a select field.
    Select {
        /// Element id of the field.
        id: String,
        /// The option value.
        value: String,
    },
}

/// Why an action string is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not of the form `name[argument]`.
    #[error(
        "not an action: expected search[...], click[...], type[id][text] or select[id][value]"
    )]
    Syntax,
    /// A name other than search, click, type, select.
    #[error("unknown action {0:?}: expected search, click, type or select")]
    UnknownName(String),
    /// Longer than [`MAX_ACTION_LEN`] bytes.
    #[error("action too long: {0} bytes (at most 4096)")]
    TooLong(usize),
    /// `search[]` or a blank query.
    #[error("empty search query")]
    EmptySearch,
}

/// Longest action string accepted (longer input is rejected, not truncated).
pub const MAX_ACTION_LEN: usize = 4096;

impl Action {
    /// Parses an action string with WebShop's rules (see the module docs).
    pub fn parse(s: &str) -> Result<Action, ParseError> {
        if s.len() > MAX_ACTION_LEN {
            return Err(ParseError::TooLong(s.len()));
        }
        let t = s.trim();
        if let Some(a) = parse_form_action(t) {
            return Ok(a);
        }
        let (name, arg) = webshop_split(t).ok_or(ParseError::Syntax)?;
        let arg = arg.to_lowercase();
        match name {
            "search" => {
                if arg.trim().is_empty() {
                    Err(ParseError::EmptySearch)
                } else {
                    Ok(Action::Search { query: arg })
                }
            }
            "click" => Ok(Action::Click { target: arg }),
            other => Err(ParseError::UnknownName(truncate(other, 40))),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `re.match(r'(.+)\[(.+)\]', s)`: name before the last `[` with a `]` at least two chars
/// later, argument up to the last `]`.
fn webshop_split(s: &str) -> Option<(&str, &str)> {
    let j = s.rfind(']')?;
    let head = &s[..j];
    // Last '[' in head with a non-empty argument and a non-empty name.
    let mut search_end = head.len();
    while let Some(i) = head[..search_end].rfind('[') {
        if i > 0 && j > i + 1 {
            return Some((&s[..i], &s[i + 1..j]));
        }
        if i == 0 {
            break;
        }
        search_end = i;
    }
    None
}

fn parse_form_action(s: &str) -> Option<Action> {
    let (name, rest) = s.split_once('[')?;
    if name != "type" && name != "select" {
        return None;
    }
    let (id, rest) = rest.split_once("][")?;
    let value = rest.strip_suffix(']')?;
    if id.is_empty() || id.contains(['[', ']']) {
        return None;
    }
    Some(match name {
        "type" => Action::Type {
            id: id.to_string(),
            text: value.to_string(),
        },
        _ => Action::Select {
            id: id.to_string(),
            value: value.to_string(),
        },
    })
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Search { query } => write!(f, "search[{query}]"),
            Action::Click { target } => write!(f, "click[{target}]"),
            Action::Type { id, text } => write!(f, "type[{id}][{text}]"),
            Action::Select { id, value } => write!(f, "select[{id}][{value}]"),
        }
    }
}

impl std::str::FromStr for Action {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Action::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(q: &str) -> Action {
        Action::Search { query: q.into() }
    }
    fn click(t: &str) -> Action {
        Action::Click { target: t.into() }
    }

    #[test]
    fn webshop_actions() {
        assert_eq!(Action::parse("search[Red Shoes]"), Ok(search("red shoes")));
        assert_eq!(Action::parse("click[Buy Now]"), Ok(click("buy now")));
        assert_eq!(Action::parse("click[< Prev]"), Ok(click("< prev")));
        assert_eq!(Action::parse("click[b0test0006]"), Ok(click("b0test0006")));
        // Text after the last ']' is ignored by re.match.
        assert_eq!(Action::parse("click[next >] please"), Ok(click("next >")));
    }

    #[test]
    fn webshop_quirks() {
        // Name is `search[foo `: unknown, as in WebShop.
        assert!(matches!(
            Action::parse("search[foo [bar]]"),
            Err(ParseError::UnknownName(_))
        ));
        assert_eq!(Action::parse("search[]"), Err(ParseError::Syntax));
        assert_eq!(Action::parse("search[   ]"), Err(ParseError::EmptySearch));
        assert_eq!(Action::parse("click"), Err(ParseError::Syntax));
        assert_eq!(Action::parse("[x]"), Err(ParseError::Syntax));
        assert_eq!(Action::parse(""), Err(ParseError::Syntax));
        assert!(matches!(
            Action::parse("buy[x]"),
            Err(ParseError::UnknownName(_))
        ));
        // Nested brackets inside click: argument to the last ']'.
        assert_eq!(Action::parse("click[a]b]"), Ok(click("a]b")));
    }

    #[test]
    fn form_actions() {
        assert_eq!(
            Action::parse("type[party-size][4 People]"),
            Ok(Action::Type {
                id: "party-size".into(),
                text: "4 People".into()
            })
        );
        assert_eq!(
            Action::parse("select[time][7:30 PM]"),
            Ok(Action::Select {
                id: "time".into(),
                value: "7:30 PM".into()
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for a in [
            search("red shoes"),
            click("buy now"),
            Action::Type {
                id: "q".into(),
                text: "x y".into(),
            },
            Action::Select {
                id: "s".into(),
                value: "v".into(),
            },
        ] {
            assert_eq!(Action::parse(&a.to_string()), Ok(a));
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        let long = format!("search[{}]", "a".repeat(10_000));
        assert_eq!(Action::parse(&long), Err(ParseError::TooLong(10_008)));
        for s in [
            "search[é☃日本]",
            "click[[[[",
            "]]]][[[[",
            "click[\u{0}]",
            "search[a\nb]",
            "type[][x]",
            "select[a][",
            "ß[ẞ]",
        ] {
            let _ = Action::parse(s);
        }
        assert_eq!(Action::parse("search[É☃]"), Ok(search("é☃")));
    }
}
