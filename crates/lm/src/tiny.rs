//! Tiny random-init models for fast tests: a 2-layer llama and a byte-level BPE tokenizer
//! trained on a few sentences, with the ChatML template.

use std::path::Path;

use candle_core::Device;

use super::chat::{ChatTemplate, TemplateKind};
use super::llama::{Config, Llama};
use super::local::Engine;
use super::tokenizer::Tokenizer;
use super::LmError;

/// The sentences the tiny tokenizer is trained on.
pub const SENTENCES: [&str; 8] = [
    "The capital of France is Paris.",
    "search[wireless mouse under 30 dollars]",
    "click[Buy Now] click[< Prev] click[Next >]",
    "You are a web agent. Choose the next action.",
    "What is the capital of France? Answer in one word.",
    "The cheapest wireless mouse costs 24.26 dollars.",
    "system user assistant: hello world, how are you?",
    "Add the blue cotton t-shirt in size large to the cart.",
];

/// Special tokens of the tiny tokenizer (ChatML).
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// The tiny tokenizer (deterministic: BPE training is deterministic for fixed input).
pub fn tokenizer() -> Result<Tokenizer, LmError> {
    let t = Tokenizer::train(&SENTENCES, 400, &SPECIALS)?;
    // re-wrap so that <|im_end|> / <|endoftext|> are end-of-sequence ids
    Ok(Tokenizer::new(t.inner().clone(), Some("<|im_end|>")))
}

/// A tiny 2-layer model (random weights from `seed`) with its tokenizer and ChatML.
pub fn engine(seed: u64, trainable: bool) -> Result<Engine, LmError> {
    let tk = tokenizer()?;
    let cfg = Config::tiny(tk.vocab_size());
    let model = Llama::random(cfg, seed, trainable, &Device::Cpu)?;
    Ok(Engine::new(
        model,
        tk,
        ChatTemplate::builtin(TemplateKind::ChatMl),
        format!("candle:tiny-{seed} (f32, cpu)"),
    ))
}

/// Writes a tiny model as a Hugging Face directory (config, safetensors, tokenizer).
pub fn write_dir(dir: &Path, seed: u64) -> Result<(), LmError> {
    let e = engine(seed, false)?;
    super::load::save_hf_dir(dir, e.model()?, e.tokenizer(), e.chat())
}
