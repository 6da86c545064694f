//! Training data: preference pairs and SFT examples read from JSONL in agentq's own form and
//! in TRL's forms (standard strings, conversational messages, implicit prompt), rendered to
//! (prompt text, response text) with the model's chat template, and written back in TRL form.
//!
//! Errors name the file, the line and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use agentq_lm::ChatMessage;

/// Errors of reading training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Filesystem failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record that is not usable.
    #[error("{path}:{line}: {msg}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (names the field).
        msg: String,
    },
    /// Rendering with the chat template failed.
    #[error("chat template: {0}")]
    Template(String),
}

/// A prompt or response: a plain string or a list of chat messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Text {
    /// Already rendered text.
    Plain(String),
    /// Chat messages (rendered with the model's template).
    Messages(Vec<ChatMessage>),
}

/// One preference pair as stored (agentq's `pairs.jsonl` and TRL's forms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    /// The prompt; absent in TRL's implicit-prompt form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Text>,
    /// Preferred response.
    pub chosen: Text,
    /// Dispreferred response.
    pub rejected: Text,
    /// Reference log-prob of `chosen` (TRL's column name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_chosen_logps: Option<f64>,
    /// Reference log-prob of `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_rejected_logps: Option<f64>,
    /// Trajectory pairs: the chosen trajectory's steps (each a prompt and its completion).
    /// With both step lists the pair is scored step by step; `prompt`, `chosen` and
    /// `rejected` then only describe it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen_steps: Vec<SftRecord>,
    /// Trajectory pairs: the rejected trajectory's steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_steps: Vec<SftRecord>,
    /// Everything else (task, Q values, visits …), kept on export.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A pair rendered for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Prompt text (chat template applied, assistant turn opened).
    pub prompt: String,
    /// Chosen response text.
    pub chosen: String,
    /// Rejected response text.
    pub rejected: String,
    /// Reference log-prob of the chosen response, if logged.
    pub ref_chosen: Option<f64>,
    /// Reference log-prob of the rejected response, if logged.
    pub ref_rejected: Option<f64>,
    /// A trajectory-level pair: both trajectories step by step (the trainer scores these
    /// instead of `prompt`/`chosen`/`rejected`).
    pub trajectory: Option<Box<TrajectorySteps>>,
}

/// The two sides of a trajectory-level pair, each step a prompt and its response.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectorySteps {
    /// Steps of the chosen trajectory.
    pub chosen: Vec<Example>,
    /// Steps of the rejected trajectory.
    pub rejected: Vec<Example>,
}

/// One SFT example as stored (`agentq demos` output, or TRL prompt/completion forms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    /// The prompt.
    pub prompt: Text,
    /// The completion (TRL name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Text>,
    /// A plain response (agentq demos carry both; `completion` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Text>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An SFT example rendered for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Prompt text.
    pub prompt: String,
    /// Response text.
    pub response: String,
}

/// Renders chat messages: `(messages, add_generation_prompt) -> text`.
pub type Template<'a> = &'a dyn Fn(&[ChatMessage], bool) -> Result<String, String>;

fn read_lines(path: &Path) -> Result<Vec<(usize, String)>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

fn assistant_text(t: &Text, field: &str) -> Result<String, String> {
    match t {
        Text::Plain(s) => Ok(s.clone()),
        Text::Messages(m) => match m.as_slice() {
            [one] if one.role == "assistant" => Ok(one.content.clone()),
            _ => Err(format!(
                "field `{field}`: expected one assistant message, got {} message(s)",
                m.len()
            )),
        },
    }
}

fn prompt_text(t: &Text, template: Template<'_>) -> Result<String, String> {
    match t {
        Text::Plain(s) => Ok(s.clone()),
        Text::Messages(m) => template(m, true),
    }
}

/// Longest common prefix at a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

impl PairRecord {
    /// Renders the pair with the chat template (`template`).
    pub fn render(&self, template: Template<'_>) -> Result<Pair, String> {
        let (prompt, chosen, rejected) = match &self.prompt {
            Some(p) => (
                prompt_text(p, template)?,
                assistant_text(&self.chosen, "chosen")?,
                assistant_text(&self.rejected, "rejected")?,
            ),
            None => {
                // Implicit prompt: whole conversations sharing a prefix.
                let full = |t: &Text| -> Result<String, String> {
                    match t {
                        Text::Plain(s) => Ok(s.clone()),
                        Text::Messages(m) => template(m, false),
                    }
                };
                let (c, r) = (full(&self.chosen)?, full(&self.rejected)?);
                let p = common_prefix(&c, &r).to_string();
                if p.is_empty() {
                    return Err("implicit-prompt pair: chosen and rejected share no prefix".into());
                }
                (
                    p.clone(),
                    c[p.len()..].to_string(),
                    r[p.len()..].to_string(),
                )
            }
        };
        if chosen.is_empty() || rejected.is_empty() {
            return Err("empty chosen or rejected response".into());
        }
        if chosen == rejected {
            return Err("chosen and rejected are identical".into());
        }
        let trajectory = match (self.chosen_steps.is_empty(), self.rejected_steps.is_empty()) {
            (true, true) => None,
            (false, false) => {
                let steps = |v: &[SftRecord], field: &str| -> Result<Vec<Example>, String> {
                    v.iter()
                        .enumerate()
                        .map(|(i, r)| {
                            r.render(template)
                                .map_err(|e| format!("field `{field}`, step {i}: {e}"))
                        })
                        .collect()
                };
                let t = TrajectorySteps {
                    chosen: steps(&self.chosen_steps, "chosen_steps")?,
                    rejected: steps(&self.rejected_steps, "rejected_steps")?,
                };
                if t.chosen == t.rejected {
                    return Err("chosen_steps and rejected_steps are identical".into());
                }
                Some(Box::new(t))
            }
            _ => {
                return Err(
                    "a trajectory pair needs both `chosen_steps` and `rejected_steps`".into(),
                )
            }
        };
        Ok(Pair {
            prompt,
            chosen,
            rejected,
            ref_chosen: self.ref_chosen_logps,
            ref_rejected: self.ref_rejected_logps,
            trajectory,
        })
    }
}

impl SftRecord {
    /// Renders the example with the chat template.
    pub fn render(&self, template: Template<'_>) -> Result<Example, String> {
        let prompt = prompt_text(&self.prompt, template)?;
        let completion = self
            .completion
            .as_ref()
            .or(self.response.as_ref())
            .ok_or_else(|| "field `completion` (or `response`) is missing".to_string())?;
        let response = assistant_text(completion, "completion")?;
        if response.is_empty() {
            return Err("field `completion`: empty".into());
        }
        Ok(Example { prompt, response })
    }
}

/// Reads preference pairs (any supported form) and renders them.
pub fn read_pairs(path: &Path, template: Template<'_>) -> Result<Vec<Pair>, DataError> {
    let mut out = Vec::new();
    for (line, text) in read_lines(path)? {
        let bad = |msg: String| DataError::Bad {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let rec: PairRecord = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a preference pair (need `chosen` and `rejected`, optional `prompt`): {e}"
            ))
        })?;
        out.push(rec.render(template).map_err(bad)?);
    }
    Ok(out)
}

/// Reads SFT examples and renders them.
pub fn read_sft(path: &Path, template: Template<'_>) -> Result<Vec<Example>, DataError> {
    let mut out = Vec::new();
    for (line, text) in read_lines(path)? {
        let bad = |msg: String| DataError::Bad {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let rec: SftRecord = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not an SFT example (need `prompt` and `completion` or `response`): {e}"
            ))
        })?;
        out.push(rec.render(template).map_err(bad)?);
    }
    Ok(out)
}

/// Converts pair records to TRL's standard form (rendered strings; reference log-probs and
/// extra fields kept).
pub fn to_trl_standard(
    records: &[PairRecord],
    template: Template<'_>,
) -> Result<Vec<PairRecord>, String> {
    records
        .iter()
        .map(|r| {
            let p = r.render(template)?;
            Ok(PairRecord {
                prompt: Some(Text::Plain(p.prompt)),
                chosen: Text::Plain(p.chosen),
                rejected: Text::Plain(p.rejected),
                ref_chosen_logps: r.ref_chosen_logps,
                ref_rejected_logps: r.ref_rejected_logps,
                chosen_steps: plain_steps(p.trajectory.as_deref().map(|t| &t.chosen[..])),
                rejected_steps: plain_steps(p.trajectory.as_deref().map(|t| &t.rejected[..])),
                extra: r.extra.clone(),
            })
        })
        .collect()
}

/// Rendered steps as plain-text records.
fn plain_steps(steps: Option<&[Example]>) -> Vec<SftRecord> {
    steps
        .unwrap_or_default()
        .iter()
        .map(|e| SftRecord {
            prompt: Text::Plain(e.prompt.clone()),
            completion: Some(Text::Plain(e.response.clone())),
            response: None,
            extra: serde_json::Map::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chatml(m: &[ChatMessage], gen: bool) -> Result<String, String> {
        let mut s: String = m
            .iter()
            .map(|m| format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content))
            .collect();
        if gen {
            s.push_str("<|im_start|>assistant\n");
        }
        Ok(s)
    }

    fn write(lines: &[&str]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), lines.join("\n")).unwrap();
        f
    }

    #[test]
    fn reads_every_pair_form() {
        let f = write(&[
            r#"{"prompt":"P:","chosen":" a","rejected":" b","ref_chosen_logps":-1.5,"ref_rejected_logps":-2.0,"task":"train:3","q_chosen":0.9}"#,
            r#"{"prompt":[{"role":"user","content":"hi"}],"chosen":[{"role":"assistant","content":"click[a]"}],"rejected":[{"role":"assistant","content":"click[b]"}]}"#,
            r#"{"chosen":"The sky is blue.","rejected":"The sky is green."}"#,
        ]);
        let t: Template<'_> = &chatml;
        let pairs = read_pairs(f.path(), t).unwrap();
        assert_eq!(pairs[0].prompt, "P:");
        assert_eq!(pairs[0].ref_chosen, Some(-1.5));
        assert_eq!(
            pairs[1].prompt,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(pairs[1].chosen, "click[a]");
        assert_eq!(pairs[2].prompt, "The sky is ");
        assert_eq!(pairs[2].chosen, "blue.");
    }

    #[test]
    fn bad_pairs_name_line_and_field() {
        let t: Template<'_> = &chatml;
        let f = write(&[
            r#"{"prompt":"p","chosen":"a","rejected":"b"}"#,
            r#"{"prompt":"p","chosen":"a"}"#,
        ]);
        let e = read_pairs(f.path(), t).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("rejected"), "{e}");
        let f =
            write(&[r#"{"prompt":"p","chosen":[{"role":"user","content":"x"}],"rejected":"b"}"#]);
        let e = read_pairs(f.path(), t).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("`chosen`"), "{e}");
        let f = write(&[r#"{"prompt":"p","chosen":"a","rejected":"a"}"#]);
        assert!(read_pairs(f.path(), t)
            .unwrap_err()
            .to_string()
            .contains("identical"));
    }

    #[test]
    fn trajectory_pairs_read_their_steps_and_refuse_one_sided_ones() {
        let t: Template<'_> = &chatml;
        let step = |u: &str, a: &str| {
            format!(
                r#"{{"prompt":[{{"role":"user","content":"{u}"}}],"completion":[{{"role":"assistant","content":"{a}"}}],"response":"{a}","task":"train:1"}}"#
            )
        };
        let line = format!(
            r#"{{"kind":"trajectory","prompt":"root","chosen":"search[x]\nclick[a]","rejected":"search[x]\nclick[b]","chosen_steps":[{},{}],"rejected_steps":[{},{}]}}"#,
            step("home", "search[x]"),
            step("results", "click[a]"),
            step("home", "search[x]"),
            step("results", "click[b]")
        );
        let f = write(&[&line]);
        let p = read_pairs(f.path(), t).unwrap();
        let steps = p[0].trajectory.as_ref().unwrap();
        assert_eq!(steps.chosen.len(), 2);
        assert_eq!(
            steps.chosen[1].prompt,
            "<|im_start|>user\nresults<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(steps.rejected[1].response, "click[b]");
        // Exported in TRL's form, the steps come back rendered and read the same.
        let recs: Vec<PairRecord> = vec![serde_json::from_str(&line).unwrap()];
        let back = to_trl_standard(&recs, t).unwrap()[0].render(t).unwrap();
        assert_eq!(back, p[0]);
        let one_sided = format!(
            r#"{{"prompt":"root","chosen":"a","rejected":"b","chosen_steps":[{}]}}"#,
            step("home", "a")
        );
        let f = write(&[r#"{"prompt":"p","chosen":"a","rejected":"b"}"#, &one_sided]);
        let e = read_pairs(f.path(), t).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("rejected_steps"), "{e}");
    }

    #[test]
    fn sft_and_export_round_trip() {
        let t: Template<'_> = &chatml;
        let f = write(&[
            r#"{"prompt":[{"role":"system","content":"s"},{"role":"user","content":"u"}],"completion":[{"role":"assistant","content":"search[x]"}],"task":"train:0"}"#,
            r#"{"prompt":"raw prompt","response":"click[y]"}"#,
        ]);
        let ex = read_sft(f.path(), t).unwrap();
        assert!(ex[0].prompt.ends_with("<|im_start|>assistant\n"));
        assert_eq!(ex[0].response, "search[x]");
        assert_eq!(ex[1].response, "click[y]");
        let recs: Vec<PairRecord> = vec![serde_json::from_str(
            r#"{"prompt":[{"role":"user","content":"hi"}],"chosen":[{"role":"assistant","content":"a"}],"rejected":[{"role":"assistant","content":"b"}],"depth":2}"#,
        )
        .unwrap()];
        let std_form = to_trl_standard(&recs, t).unwrap();
        let line = serde_json::to_string(&std_form[0]).unwrap();
        assert!(
            line.contains(r#""chosen":"a""#) && line.contains(r#""depth":2"#),
            "{line}"
        );
        let back: PairRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.render(t).unwrap(), recs[0].render(t).unwrap());
    }
}
