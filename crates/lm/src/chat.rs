//! Chat templates: the model's own Jinja template (from GGUF metadata or
//! `tokenizer_config.json`) rendered with minijinja, with built-in ChatML and Llama-3
//! renderers as the fallback when a template is missing or uses unsupported features.

use serde::Serialize;

use super::{ChatMessage, LmError};

/// The template family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TemplateKind {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3).
    Llama3,
}

/// A chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: Option<String>,
    kind: TemplateKind,
}

impl ChatTemplate {
    /// From the model's Jinja source (if any); the family is detected from its tokens.
    pub fn new(source: Option<String>) -> Self {
        let kind = match &source {
            Some(s) if s.contains("<|start_header_id|>") => TemplateKind::Llama3,
            _ => TemplateKind::ChatMl,
        };
        ChatTemplate { source, kind }
    }

    /// A built-in template of the given family (no Jinja source).
    pub fn builtin(kind: TemplateKind) -> Self {
        ChatTemplate { source: None, kind }
    }

    /// The template family.
    pub fn kind(&self) -> TemplateKind {
        self.kind
    }

    /// The Jinja source, if the model has one.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Renders `messages`, opening the assistant turn if `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, LmError> {
        for m in messages {
            if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
                return Err(LmError::Template(format!("unknown role {:?}", m.role)));
            }
        }
        if let Some(src) = &self.source {
            let env = minijinja::Environment::new();
            let ctx = minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => if self.kind == TemplateKind::Llama3 { "<|begin_of_text|>" } else { "" },
                eos_token => if self.kind == TemplateKind::Llama3 { "<|eot_id|>" } else { "<|im_end|>" },
            };
            match env.render_str(src, ctx) {
                Ok(s) => return Ok(s),
                Err(e) => tracing::warn!(
                    "model chat template failed ({e}); using the built-in {:?} template",
                    self.kind
                ),
            }
        }
        Ok(render_builtin(self.kind, messages, add_generation_prompt))
    }
}

/// The built-in renderer of a template family.
pub fn render_builtin(
    kind: TemplateKind,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> String {
    let mut s = String::new();
    match kind {
        TemplateKind::ChatMl => {
            for m in messages {
                s.push_str(&format!(
                    "<|im_start|>{}\n{}<|im_end|>\n",
                    m.role, m.content
                ));
            }
            if add_generation_prompt {
                s.push_str("<|im_start|>assistant\n");
            }
        }
        TemplateKind::Llama3 => {
            s.push_str("<|begin_of_text|>");
            for m in messages {
                s.push_str(&format!(
                    "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                    m.role,
                    m.content.trim()
                ));
            }
            if add_generation_prompt {
                s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn jinja_chatml_matches_builtin_with_system() {
        let msgs = vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
        ];
        let t = ChatTemplate::new(Some(SMOL.to_string()));
        assert_eq!(t.kind(), TemplateKind::ChatMl);
        assert_eq!(
            t.render(&msgs, true).unwrap(),
            render_builtin(TemplateKind::ChatMl, &msgs, true)
        );
        let no_sys = t.render(&msgs[1..], false).unwrap();
        assert!(no_sys.starts_with("<|im_start|>system\nYou are a helpful AI assistant"));
        assert!(!no_sys.ends_with("assistant\n"));
    }

    #[test]
    fn llama3_builtin() {
        let s = render_builtin(
            TemplateKind::Llama3,
            &[ChatMessage::new("user", " hi ")],
            true,
        );
        assert_eq!(s, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    #[test]
    fn unknown_role_is_an_error() {
        let t = ChatTemplate::builtin(TemplateKind::ChatMl);
        assert!(t.render(&[ChatMessage::new("tool", "x")], true).is_err());
    }
}
