//! Tokenizers: from a Hugging Face `tokenizer.json`, built from GGUF metadata (our own
//! builder: candle's `from_gguf` mis-tokenizes SmolLM2's `smollm` pre-tokenizer), or trained
//! on a few sentences for tiny test models.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainer, Vocab, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use super::LmError;

/// Special tokens that end a turn or a document in the supported model families.
const END_TOKENS: [&str; 5] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "</s>",
];

const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the ids that end generation.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_ids: Vec<u32>,
}

fn tk_err(e: impl std::fmt::Display) -> LmError {
    LmError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Wraps a `tokenizers` tokenizer; `eos` names its end-of-sequence token if known.
    pub fn new(inner: tokenizers::Tokenizer, eos: Option<&str>) -> Self {
        let mut eos_ids: Vec<u32> = END_TOKENS
            .iter()
            .chain(eos.iter())
            .filter_map(|t| inner.token_to_id(t))
            .collect();
        eos_ids.sort_unstable();
        eos_ids.dedup();
        Tokenizer { inner, eos_ids }
    }

    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path, eos: Option<&str>) -> Result<Self, LmError> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| LmError::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self::new(inner, eos))
    }

    /// Builds the tokenizer described by GGUF metadata (`tokenizer.ggml.*`, model `gpt2`).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, LmError> {
        let model = meta_str(ct, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(tk_err(format!(
                "tokenizer.ggml.model = {model:?}: only byte-level BPE (gpt2) is supported"
            )));
        }
        let tokens = meta_strings(ct, "tokenizer.ggml.tokens")?;
        let merges = meta_strings(ct, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| tk_err(format!("tokenizer.ggml.merges: bad merge {m:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tk_err)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "gpt2".to_string());
        let byte_level = ByteLevel::new(false, true, true);
        let split = |pattern: &str| -> Result<Split, LmError> {
            Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(tk_err)
        };
        let seq = match pre.as_str() {
            // llama.cpp's `smollm`: every digit alone, then the GPT-2 regex.
            "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]),
            "llama-bpe" | "llama3" | "smaug-bpe" => Sequence::new(vec![
                split(LLAMA3_PATTERN)?.into(),
                ByteLevel::new(false, true, false).into(),
            ]),
            "qwen2" => Sequence::new(vec![
                split(QWEN2_PATTERN)?.into(),
                ByteLevel::new(false, true, false).into(),
            ]),
            _ => Sequence::new(vec![byte_level.into()]),
        };
        inner.with_pre_tokenizer(Some(seq));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        // token_type 3 (control) and 4 (user-defined) are special tokens matched whole.
        if let Some(Value::Array(types)) = ct.metadata.get("tokenizer.ggml.token_type") {
            let specials: Vec<AddedToken> = types
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t.to_i32(), Ok(3) | Ok(4)))
                .filter_map(|(i, _)| tokens.get(i))
                .map(|t| AddedToken::from(t.clone(), true))
                .collect();
            inner.add_special_tokens(specials).map_err(tk_err)?;
        }
        let eos = ct
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
            .and_then(|id| tokens.get(id as usize))
            .cloned();
        Ok(Self::new(inner, eos.as_deref()))
    }

    /// Trains a small byte-level BPE tokenizer on `texts` (tiny test models).
    /// `specials` get the first ids.
    pub fn train(texts: &[&str], vocab_size: usize, specials: &[&str]) -> Result<Self, LmError> {
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = specials
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let mut trainer: TrainerWrapper = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .show_progress(false)
            .special_tokens(specials.clone())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        inner
            .train(&mut trainer, texts.iter().copied())
            .map_err(tk_err)?;
        inner.add_special_tokens(specials).map_err(tk_err)?;
        Ok(Self::new(inner, None))
    }

    /// The underlying `tokenizers` tokenizer (e.g. to save as `tokenizer.json`).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`; special tokens written in the text map to their ids, nothing is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LmError> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(tk_err)?
            .get_ids()
            .to_vec())
    }

    /// Ids and character offsets `(start, end)` of each token.
    pub fn encode_with_offsets(&self, text: &str) -> Result<Vec<(u32, usize, usize)>, LmError> {
        let enc = self
            .inner
            .encode_char_offsets(text, false)
            .map_err(tk_err)?;
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_offsets())
            .map(|(&id, &(a, b))| (id, a, b))
            .collect())
    }

    /// Text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String, LmError> {
        self.inner.decode(ids, false).map_err(tk_err)
    }

    /// Id of a token string, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Ids that end generation (end of turn / end of text).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// A string metadata value of a GGUF file.
pub(crate) fn meta_str(ct: &gguf_file::Content, key: &str) -> Result<String, LmError> {
    match ct.metadata.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(tk_err(format!("{key} is not a string"))),
        None => Err(tk_err(format!("missing metadata {key}"))),
    }
}

fn meta_strings(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>, LmError> {
    match ct.metadata.get(key) {
        Some(Value::Array(v)) => v
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                _ => Err(tk_err(format!("{key} has a non-string entry"))),
            })
            .collect(),
        Some(_) => Err(tk_err(format!("{key} is not an array"))),
        None => Err(tk_err(format!("missing metadata {key}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A GGUF header with a byte-level vocabulary (the 256 byte symbols, a few merges and
    /// the Llama-3 / ChatML specials) and the given pre-tokenizer.
    fn content(pre: &str) -> gguf_file::Content {
        let mut tokens: Vec<String> = {
            let mut a: Vec<char> = ByteLevel::alphabet().into_iter().collect();
            a.sort_unstable();
            a.into_iter().map(|c| c.to_string()).collect()
        };
        let merges = vec!["h e", "he l", "hel l", "hell o", "Ġ w"];
        for m in &merges {
            tokens.push(m.replace(' ', ""));
        }
        let specials = [
            "<|begin_of_text|>",
            "<|eot_id|>",
            "<|im_start|>",
            "<|im_end|>",
        ];
        let first_special = tokens.len();
        tokens.extend(specials.iter().map(|s| s.to_string()));
        let types: Vec<Value> = (0..tokens.len())
            .map(|i| Value::I32(if i >= first_special { 3 } else { 1 }))
            .collect();
        let s = |v: &str| Value::String(v.to_string());
        let metadata = HashMap::from([
            ("tokenizer.ggml.model".to_string(), s("gpt2")),
            ("tokenizer.ggml.pre".to_string(), s(pre)),
            (
                "tokenizer.ggml.tokens".to_string(),
                Value::Array(tokens.iter().map(|t| s(t)).collect()),
            ),
            (
                "tokenizer.ggml.merges".to_string(),
                Value::Array(merges.iter().map(|m| s(m)).collect()),
            ),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
            (
                "tokenizer.ggml.eos_token_id".to_string(),
                Value::U32(first_special as u32 + 1),
            ),
        ]);
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn every_supported_pre_tokenizer_round_trips() {
        let text = "<|begin_of_text|><|start_header_id|>user\n\nhello world 12345, it's \"naïve\" 😀\n\n  ok<|eot_id|><|im_start|>x<|im_end|>";
        for pre in ["smollm", "llama-bpe", "qwen2", "gpt2", "unknown"] {
            let t = Tokenizer::from_gguf(&content(pre)).unwrap();
            let ids = t.encode(text).unwrap();
            assert_eq!(t.decode(&ids).unwrap(), text, "{pre}");
            assert_eq!(ids[0], t.token_to_id("<|begin_of_text|>").unwrap(), "{pre}");
            assert!(ids.contains(&t.token_to_id("hello").unwrap()), "{pre}");
            assert!(t.eos_ids().contains(&t.token_to_id("<|eot_id|>").unwrap()));
            assert!(t.eos_ids().contains(&t.token_to_id("<|im_end|>").unwrap()));
        }
        // digits never merge with this vocabulary (no digit merges), whatever the pre-tokenizer
        let count = |pre: &str| {
            Tokenizer::from_gguf(&content(pre))
                .unwrap()
                .encode_with_offsets("12345")
                .unwrap()
                .len()
        };
        assert_eq!(count("smollm"), 5);
        assert_eq!(count("qwen2"), 5);
        assert_eq!(count("llama-bpe"), 5);
    }

    #[test]
    fn non_bpe_gguf_tokenizers_are_rejected() {
        let mut c = content("smollm");
        c.metadata
            .insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        let e = Tokenizer::from_gguf(&c).err().unwrap();
        assert!(e.to_string().contains("tokenizer.ggml.model"));
        c.metadata.remove("tokenizer.ggml.model");
        assert!(Tokenizer::from_gguf(&c).is_err());
    }
}
