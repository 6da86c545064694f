//! Loading model files into [`Llama`] weights: GGUF (every tensor dequantized to f32; q/k of
//! the `llama` architecture un-permuted from llama.cpp's interleaved rope layout to the HF
//! half-split layout) and Hugging Face directories (`config.json`, `model.safetensors`,
//! `tokenizer.json`, optional `tokenizer_config.json` with the chat template). Also saving a
//! model as such a directory.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::{Device, Tensor};

use super::chat::ChatTemplate;
use super::llama::{Config, Llama};
use super::tokenizer::{meta_str, Tokenizer};
use super::LmError;

/// Everything needed to build a local model.
pub struct Loaded {
    /// Hyper-parameters.
    pub config: Config,
    /// f32 weights by HF name.
    pub weights: HashMap<String, Tensor>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template.
    pub chat: ChatTemplate,
    /// Architecture name (`llama`, `qwen2`, …).
    pub arch: String,
    /// How the weights were stored, e.g. `Q4_1×210, F32×61, Q8_0×1`.
    pub stored_as: String,
}

fn bad(path: &Path, msg: impl Into<String>) -> LmError {
    LmError::BadModel {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

fn io(path: &Path, e: std::io::Error) -> LmError {
    LmError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Loads a `.gguf` file or a Hugging Face directory (f32 weights).
pub fn load(path: &Path, device: &Device) -> Result<Loaded, LmError> {
    if path.is_dir() {
        load_hf_dir(path, device)
    } else if path.is_file() {
        load_gguf(path, device)
    } else {
        Err(bad(path, "no such model file or directory"))
    }
}

fn meta_usize(ct: &gguf_file::Content, key: &str) -> Option<usize> {
    match ct.metadata.get(key)? {
        Value::U8(v) => Some(*v as usize),
        Value::U16(v) => Some(*v as usize),
        Value::U32(v) => Some(*v as usize),
        Value::U64(v) => usize::try_from(*v).ok(),
        Value::I8(v) => usize::try_from(*v).ok(),
        Value::I16(v) => usize::try_from(*v).ok(),
        Value::I32(v) => usize::try_from(*v).ok(),
        Value::I64(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn meta_f64(ct: &gguf_file::Content, key: &str) -> Option<f64> {
    match ct.metadata.get(key)? {
        Value::F32(v) => Some(*v as f64),
        Value::F64(v) => Some(*v),
        _ => None,
    }
}

/// HF name of a GGUF tensor name (None for tensors the model does not use).
fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's q/k row permutation (interleaved rope → half-split rope).
fn unpermute(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let dims = w.dims().to_vec();
    let out = dims[0];
    let inp: usize = dims[1..].iter().product();
    w.reshape((n_head, out / n_head / 2, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)
}

/// Loads a GGUF file, dequantizing every tensor to f32.
pub fn load_gguf(path: &Path, device: &Device) -> Result<Loaded, LmError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let ct = gguf_file::Content::read(&mut f).map_err(|e| {
        bad(
            path,
            format!("not a GGUF file: {}", super::without_backtrace(e)),
        )
    })?;
    let arch = meta_str(&ct, "general.architecture").map_err(|e| bad(path, e.to_string()))?;
    if !matches!(arch.as_str(), "llama" | "qwen2" | "mistral") {
        return Err(bad(
            path,
            format!("architecture {arch:?} is not supported (llama, qwen2, mistral)"),
        ));
    }
    let need = |k: &str| -> Result<usize, LmError> {
        meta_usize(&ct, &format!("{arch}.{k}"))
            .ok_or_else(|| bad(path, format!("missing metadata {arch}.{k}")))
    };
    let heads = need("attention.head_count")?;
    let kv_heads = meta_usize(&ct, &format!("{arch}.attention.head_count_kv")).unwrap_or(heads);
    let mut weights = HashMap::new();
    let mut stored: HashMap<String, usize> = HashMap::new();
    for name in ct.tensor_infos.keys() {
        let Some(hf) = hf_name(name) else { continue };
        let q = ct.tensor(&mut f, name, device).map_err(|e| {
            bad(
                path,
                format!("tensor {name}: {}", super::without_backtrace(e)),
            )
        })?;
        let qdtype = q.dtype();
        *stored.entry(format!("{qdtype:?}")).or_default() += 1;
        let mut t = q.dequantize(device).map_err(|e| {
            bad(
                path,
                format!("tensor {name}: {}", super::without_backtrace(e)),
            )
        })?;
        if arch != "qwen2" {
            if hf.contains("q_proj") {
                t = unpermute(&t, heads).map_err(|e| {
                    bad(
                        path,
                        format!("tensor {name}: {}", super::without_backtrace(e)),
                    )
                })?;
            } else if hf.contains("k_proj") {
                t = unpermute(&t, kv_heads).map_err(|e| {
                    bad(
                        path,
                        format!("tensor {name}: {}", super::without_backtrace(e)),
                    )
                })?;
            }
        }
        weights.insert(hf, t);
    }
    let embed = weights
        .get("model.embed_tokens.weight")
        .ok_or_else(|| bad(path, "missing tensor token_embd.weight"))?;
    let vocab_size = embed.dim(0)?;
    let config = Config {
        vocab_size,
        hidden_size: need("embedding_length")?,
        intermediate_size: need("feed_forward_length")?,
        num_hidden_layers: need("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        rms_norm_eps: meta_f64(&ct, &format!("{arch}.attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-5),
        rope_theta: meta_f64(&ct, &format!("{arch}.rope.freq_base")).unwrap_or(10_000.0),
        max_position_embeddings: meta_usize(&ct, &format!("{arch}.context_length")).unwrap_or(2048),
        tie_word_embeddings: !weights.contains_key("lm_head.weight"),
    };
    config.validate().map_err(|m| bad(path, m))?;
    let tokenizer = Tokenizer::from_gguf(&ct).map_err(|e| bad(path, e.to_string()))?;
    let chat = ChatTemplate::new(meta_str(&ct, "tokenizer.chat_template").ok());
    let mut stored: Vec<_> = stored.into_iter().collect();
    stored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let stored_as = stored
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Loaded {
        config,
        weights,
        tokenizer,
        chat,
        arch,
        stored_as,
    })
}

/// Loads a Hugging Face directory (`config.json`, `model.safetensors`, `tokenizer.json`).
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<Loaded, LmError> {
    let cfg_path = dir.join("config.json");
    let bytes = std::fs::read(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(&cfg_path, e.to_string()))?;
    let config: Config =
        serde_json::from_value(raw.clone()).map_err(|e| bad(&cfg_path, e.to_string()))?;
    config.validate().map_err(|m| bad(&cfg_path, m))?;
    let arch = raw
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or("llama")
        .to_string();
    let st = dir.join("model.safetensors");
    if !st.is_file() {
        return Err(bad(&st, "missing (sharded checkpoints are not supported)"));
    }
    let weights = candle_core::safetensors::load(&st, device)
        .map_err(|e| bad(&st, super::without_backtrace(e).to_string()))?;
    let mut stored: HashMap<String, usize> = HashMap::new();
    for t in weights.values() {
        *stored.entry(format!("{:?}", t.dtype())).or_default() += 1;
    }
    let weights = weights
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(candle_core::DType::F32)?)))
        .collect::<Result<HashMap<_, _>, candle_core::Error>>()?;
    let tc_path = dir.join("tokenizer_config.json");
    let tc: serde_json::Value = match std::fs::read(&tc_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| bad(&tc_path, e.to_string()))?,
        Err(_) => serde_json::Value::Null,
    };
    let eos = match tc.get("eos_token") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) => v
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        None => None,
    };
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"), eos.as_deref())?;
    let chat = ChatTemplate::new(
        tc.get("chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_string),
    );
    Ok(Loaded {
        config,
        weights,
        tokenizer,
        chat,
        arch,
        stored_as: stored
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Loads a model for training or evaluation: with `trainable`, every weight is a `Var` of
/// [`Llama::varmap`] (full fine-tuning; use [`super::llama::Ops::Differentiable`]).
pub fn load_llama(
    path: &Path,
    device: &Device,
    trainable: bool,
) -> Result<(Llama, Tokenizer, ChatTemplate), LmError> {
    let l = load(path, device)?;
    let model = Llama::new(l.config, l.weights, trainable, device)
        .map_err(|e| bad(path, super::without_backtrace(e).to_string()))?;
    Ok((model, l.tokenizer, l.chat))
}

/// Saves a model as a Hugging Face directory loadable by [`load_hf_dir`].
pub fn save_hf_dir(
    dir: &Path,
    model: &Llama,
    tokenizer: &Tokenizer,
    chat: &ChatTemplate,
) -> Result<(), LmError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut cfg = serde_json::to_value(model.config()).map_err(|e| bad(dir, e.to_string()))?;
    cfg["model_type"] = "llama".into();
    cfg["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    let cfg_path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&cfg).map_err(|e| bad(dir, e.to_string()))?;
    std::fs::write(&cfg_path, text).map_err(|e| io(&cfg_path, e))?;
    let st = dir.join("model.safetensors");
    let weights: HashMap<String, Tensor> = model
        .weights()
        .iter()
        .filter(|(k, _)| !(model.config().tie_word_embeddings && k.as_str() == "lm_head.weight"))
        .map(|(k, v)| (k.clone(), v.detach()))
        .collect();
    candle_core::safetensors::save(&weights, &st)
        .map_err(|e| bad(&st, super::without_backtrace(e).to_string()))?;
    let tk = dir.join("tokenizer.json");
    tokenizer
        .inner()
        .save(&tk, false)
        .map_err(|e| bad(&tk, e.to_string()))?;
    let eos = tokenizer
        .eos_ids()
        .first()
        .and_then(|&id| tokenizer.inner().id_to_token(id));
    let tc = serde_json::json!({
        "chat_template": chat.source(),
        "eos_token": eos,
    });
    let tc_path = dir.join("tokenizer_config.json");
    std::fs::write(&tc_path, tc.to_string()).map_err(|e| io(&tc_path, e))?;
    Ok(())
}
