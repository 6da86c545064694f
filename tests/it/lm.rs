//! Language models: the tiny random model (gradients, cached vs naive scoring, safetensors
//! round trip, generation), SmolLM2 from GGUF (tokenizer, a sensible greedy answer, scoring),
//! the OpenAI client against `agentq lm serve` (a real process) and its error paths against
//! a small axum server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agentq::lm::llama::{response_logprob_sums, Ops};
use agentq::lm::local::{Engine, LoadOptions, LocalModel, Precision};
use agentq::lm::openai::{OpenAiClient, OpenAiConfig};
use agentq::lm::{tiny, ChatMessage, GenParams, LanguageModel, LmError};
use candle_core::{Device, Tensor};

fn chat_prompt(user: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", "You are a web agent."),
        ChatMessage::new("user", user),
    ]
}

fn candidates() -> Vec<String> {
    [
        "click[Buy Now]<|im_end|>",
        "search[wireless mouse]<|im_end|>",
        "stop",
        "click[< Prev] click[Next >] search[blue cotton t-shirt large]<|im_end|>",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn assert_scores_close(a: &[agentq::lm::Scored], b: &[agentq::lm::Scored], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.n_tokens, y.n_tokens);
        assert_eq!(x.token_logprobs.len(), y.token_logprobs.len());
        assert!(
            (x.logprob - y.logprob).abs() <= tol,
            "{} vs {}",
            x.logprob,
            y.logprob
        );
        for (p, q) in x.token_logprobs.iter().zip(&y.token_logprobs) {
            assert!((p - q).abs() <= tol, "{p} vs {q}");
        }
    }
}

// ---------- tiny model ----------

#[test]
fn tiny_tokenizer_round_trips_the_chatml_template() {
    let e = tiny::engine(1, false).unwrap();
    let text = e
        .chat()
        .render(
            &chat_prompt("Find a \"naïve café\" 😀 mouse under $30.\n\n  Thanks"),
            true,
        )
        .unwrap();
    let ids = e.tokenizer().encode(&text).unwrap();
    assert_eq!(e.tokenizer().decode(&ids).unwrap(), text);
    let start = e.tokenizer().token_to_id("<|im_start|>").unwrap();
    let end = e.tokenizer().token_to_id("<|im_end|>").unwrap();
    assert_eq!(ids[0], start);
    assert_eq!(ids.iter().filter(|&&i| i == start).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == end).count(), 2);
    assert!(e.tokenizer().eos_ids().contains(&end));
}

#[test]
fn tiny_gradients_match_finite_differences() {
    let e = tiny::engine(3, true).unwrap();
    let m = e.model().unwrap();
    let text =
        "<|im_start|>user\nThe capital of France is<|im_end|>\n<|im_start|>assistant\nParis.";
    let ids = e.tokenizer().encode(text).unwrap();
    let t = ids.len();
    let ids_t = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask: Vec<f32> = (0..t).map(|i| if i >= t - 4 { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, (1, t), &Device::Cpu).unwrap();
    let loss = || -> f64 {
        let lg = m.forward(&ids_t, None, Ops::Differentiable).unwrap();
        let s = response_logprob_sums(&lg, &ids_t, &mask).unwrap();
        s.sum_all().unwrap().to_scalar::<f32>().unwrap() as f64
    };
    let lg = m.forward(&ids_t, None, Ops::Differentiable).unwrap();
    let total = response_logprob_sums(&lg, &ids_t, &mask)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = total.backward().unwrap();
    let vars: HashMap<String, candle_core::Var> =
        m.varmap().unwrap().data().lock().unwrap().clone();
    // every weight gets a gradient (the fused candle ops would silently drop them)
    for (name, v) in &vars {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let n = g
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(n > 0.0, "zero gradient for {name}");
    }
    for name in [
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.embed_tokens.weight",
    ] {
        let v = &vars[name];
        let g: Vec<f32> = grads
            .get(v.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let (k, &gk) = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap();
        let orig = v.as_tensor().detach();
        let shape = orig.dims().to_vec();
        let base: Vec<f32> = orig.flatten_all().unwrap().to_vec1().unwrap();
        let eps = 1e-2f32;
        let at = |d: f32| {
            let mut w = base.clone();
            w[k] += d;
            v.set(&Tensor::from_vec(w, shape.clone(), &Device::Cpu).unwrap())
                .unwrap();
            loss()
        };
        let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
        v.set(&Tensor::from_vec(base.clone(), shape.clone(), &Device::Cpu).unwrap())
            .unwrap();
        let rel = (fd - gk as f64).abs() / (gk.abs() as f64).max(1e-3);
        assert!(
            rel < 0.05,
            "{name}[{k}]: autograd {gk}, finite difference {fd}"
        );
    }
}

#[test]
fn prefix_shared_gradients_equal_full_sequence_gradients() {
    // the DPO trainer runs the prompt once and the continuations against its cache: the
    // cache must keep the autograd graph, giving the same gradients as full sequences
    use agentq::lm::llama::{token_logprobs, KvCache};
    let e = tiny::engine(8, true).unwrap();
    let m = e.model().unwrap();
    let dev = Device::Cpu;
    let p = e
        .tokenizer()
        .encode("<|im_start|>user\nhello world<|im_end|>\n")
        .unwrap();
    let c = e.tokenizer().encode("click[Buy Now]<|im_end|>").unwrap();
    let all: Vec<u32> = p.iter().chain(&c).copied().collect();
    let x = Tensor::new(all.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask: Vec<f32> = (0..all.len())
        .map(|i| (i >= p.len()) as u8 as f32)
        .collect();
    let mask = Tensor::from_vec(mask, (1, all.len()), &dev).unwrap();
    let full = response_logprob_sums(
        &m.forward(&x, None, Ops::Differentiable).unwrap(),
        &x,
        &mask,
    )
    .unwrap()
    .sum_all()
    .unwrap();
    let mut cache = KvCache::new(m.config());
    let pt = Tensor::new(p.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let lp = m
        .forward(&pt, Some(&mut cache), Ops::Differentiable)
        .unwrap();
    let first = token_logprobs(
        &lp.narrow(1, p.len() - 1, 1).unwrap(),
        &Tensor::new(&c[..1], &dev).unwrap().unsqueeze(0).unwrap(),
    )
    .unwrap();
    let mut c2 = cache.expand(2).unwrap(); // a batch of 2 identical continuations
    let inp = Tensor::new(&c[..c.len() - 1], &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let inp = Tensor::cat(&[&inp, &inp], 0).unwrap();
    let tgt = Tensor::new(&c[1..], &dev).unwrap().unsqueeze(0).unwrap();
    let tgt = Tensor::cat(&[&tgt, &tgt], 0).unwrap();
    let rest = token_logprobs(
        &m.forward(&inp, Some(&mut c2), Ops::Differentiable).unwrap(),
        &tgt,
    )
    .unwrap();
    let shared = ((first.sum_all().unwrap() * 2.0).unwrap() + rest.sum_all().unwrap()).unwrap();
    let (f, s) = (
        full.to_scalar::<f32>().unwrap(),
        shared.to_scalar::<f32>().unwrap(),
    );
    assert!((2.0 * f - s).abs() < 1e-3, "{f} {s}");
    let gf = full.backward().unwrap();
    let gs = shared.backward().unwrap();
    for (name, v) in m.varmap().unwrap().data().lock().unwrap().iter() {
        let a = (gf.get(v.as_tensor()).unwrap() * 2.0).unwrap();
        let b = gs.get(v.as_tensor()).unwrap();
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-3, "{name}: {d}");
    }
}

#[test]
fn tiny_cached_batched_scoring_equals_naive() {
    let e = tiny::engine(5, false).unwrap();
    let prompt = e
        .chat()
        .render(
            &chat_prompt("Add the blue cotton t-shirt to the cart."),
            true,
        )
        .unwrap();
    let c = candidates();
    let batched = e.score(&prompt, &c).unwrap();
    let naive = e.score_naive(&prompt, &c).unwrap();
    assert_scores_close(&batched, &naive, 1e-3);
    assert_eq!(batched[4].n_tokens, 0);
    assert!(batched[0].logprob < 0.0 && batched[0].n_tokens > 1);
    // the differentiable path gives the same log-probs as the fast one
    let ids: Vec<u32> = e.tokenizer().encode(&format!("{prompt}{}", c[0])).unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let p = e.tokenizer().encode(&prompt).unwrap().len();
    let mask: Vec<f32> = (0..ids.len()).map(|i| (i >= p) as u8 as f32).collect();
    let mask = Tensor::from_vec(mask, (1, ids.len()), &Device::Cpu).unwrap();
    let lg = e
        .model()
        .unwrap()
        .forward(&x, None, Ops::Differentiable)
        .unwrap();
    let s: Vec<f32> = response_logprob_sums(&lg, &x, &mask)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!((s[0] - batched[0].logprob).abs() < 1e-3);
}

#[test]
fn tiny_prefix_cache_reuses_prompts_without_changing_results() {
    let opts = agentq::lm::cpu::CpuOptions::default();
    let cached = tiny::engine(5, false).unwrap().quantized(opts).unwrap();
    let cold = tiny::engine(5, false)
        .unwrap()
        .quantized(opts)
        .unwrap()
        .with_prefix_cache(0);
    let render = |user: &str| cached.chat().render(&chat_prompt(user), true).unwrap();
    // the same system text, then diverging instructions; one prompt comes back
    let prompts = [
        render("Add the blue cotton t-shirt to the cart."),
        render("Add the blue cotton t-shirt to the cart, size large."),
        render("Find a wireless mouse."),
        render("Add the blue cotton t-shirt to the cart."),
    ];
    let c = candidates();
    let params = GenParams {
        max_tokens: 12,
        temperature: 0.8,
        seed: 4,
        ..GenParams::default()
    };
    for p in &prompts {
        let (a, b) = (cached.score(p, &c).unwrap(), cold.score(p, &c).unwrap());
        assert_eq!(
            a.iter().map(|s| &s.token_logprobs).collect::<Vec<_>>(),
            b.iter().map(|s| &s.token_logprobs).collect::<Vec<_>>(),
            "scores over cached prefixes equal cold ones bit for bit"
        );
        let (g, h) = (
            cached.generate(p, &params).unwrap(),
            cold.generate(p, &params).unwrap(),
        );
        assert_eq!((g.text, g.logprobs), (h.text, h.logprobs));
    }
    let s = cached.prefix_stats();
    assert_eq!(s.lookups, 8);
    // after the first prompt every lookup finds at least the system message
    assert!(s.hit_rate() > 0.6, "{s:?}");
    assert_eq!(cold.prefix_stats().hits, 0);
    assert_eq!(cold.prefix_stats().held, 0);
    // the naive reference agrees as well
    let naive = cached.score_naive(&prompts[3], &c).unwrap();
    assert_scores_close(&cached.score(&prompts[3], &c).unwrap(), &naive, 1e-4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_model_batches_concurrent_scores_without_changing_them() {
    let m = Arc::new(LocalModel::from_engine(tiny::engine(5, false).unwrap()));
    let e = tiny::engine(5, false).unwrap();
    let prompt = e
        .chat()
        .render(
            &chat_prompt("Add the blue cotton t-shirt to the cart."),
            true,
        )
        .unwrap();
    let c = candidates();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (m, p, cs) = (m.clone(), prompt.clone(), c[i..i + 2].to_vec());
            tokio::spawn(async move { m.score(&p, &cs).await.unwrap() })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let got = t.await.unwrap();
        let want = e.score(&prompt, &c[i..i + 2]).unwrap();
        assert_scores_close(&got, &want, 1e-3);
    }
    assert!(m.describe().starts_with("candle:tiny-5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn continuous_batching_gives_each_request_its_solo_answer() {
    let opts = agentq::lm::cpu::CpuOptions::default();
    let solo = tiny::engine(6, false).unwrap().quantized(opts).unwrap();
    let m = Arc::new(LocalModel::from_engine(
        tiny::engine(6, false).unwrap().quantized(opts).unwrap(),
    ));
    let render = |user: &str| solo.chat().render(&chat_prompt(user), true).unwrap();
    let prompts: Vec<String> = [
        "Add the blue cotton t-shirt to the cart.",
        "Find a wireless mouse.",
        "Add the blue cotton t-shirt to the cart, size large.",
        "Buy the cheapest shoes.",
    ]
    .iter()
    .map(|u| render(u))
    .collect();
    let params = |i: usize| GenParams {
        max_tokens: 6 + 5 * i, // different lengths: sequences join and leave the batch
        temperature: if i.is_multiple_of(2) { 0.0 } else { 0.9 },
        seed: i as u64,
        ..GenParams::default()
    };
    // generations and scores of several prompts in flight at once, several rounds
    let mut tasks = Vec::new();
    for round in 0..3 {
        for (i, p) in prompts.iter().enumerate() {
            let (m, p) = (m.clone(), p.clone());
            let g = params(i + round);
            tasks.push(tokio::spawn(async move {
                let gen = m.generate(&p, &g).await.unwrap();
                let sc = m.score(&p, &candidates()).await.unwrap();
                (p, g, gen, sc)
            }));
        }
    }
    for t in tasks {
        let (p, g, gen, sc) = t.await.unwrap();
        let want = solo.generate(&p, &g).unwrap();
        assert_eq!(
            (&gen.text, &gen.logprobs, &gen.finish_reason),
            (&want.text, &want.logprobs, &want.finish_reason),
            "bit for bit"
        );
        let want = solo.score(&p, &candidates()).unwrap();
        assert_scores_close(&sc, &want, 0.0);
        assert_scores_close(&sc, &solo.score_naive(&p, &candidates()).unwrap(), 1e-4);
    }
}

#[test]
fn tiny_safetensors_round_trip_gives_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny::engine(9, false).unwrap();
    agentq::lm::load::save_hf_dir(dir.path(), e.model().unwrap(), e.tokenizer(), e.chat()).unwrap();
    let f32 = LoadOptions {
        precision: Precision::F32,
        ..LoadOptions::default()
    };
    let back = Engine::load(dir.path(), &f32).unwrap();
    assert_eq!(back.model().unwrap().config(), e.model().unwrap().config());
    // the default (quantized) load keeps no f32 weights and says so
    let q = Engine::load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(q.config(), e.model().unwrap().config());
    match q.model() {
        Err(e) => assert!(e.to_string().contains("quantized"), "{e}"),
        Ok(_) => panic!("a quantized engine kept its f32 weights"),
    }
    let ids = e.tokenizer().encode("click[Buy Now] and search").unwrap();
    assert_eq!(
        back.tokenizer()
            .encode("click[Buy Now] and search")
            .unwrap(),
        ids
    );
    let x = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let a = e.model().unwrap().forward(&x, None, Ops::Fast).unwrap();
    let b = back.model().unwrap().forward(&x, None, Ops::Fast).unwrap();
    let d = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(d, 0.0);
}

#[test]
fn trainable_load_registers_every_weight_as_a_var() {
    let dir = tempfile::tempdir().unwrap();
    tiny::write_dir(dir.path(), 2).unwrap();
    let (m, _, _) = agentq::lm::load::load_llama(dir.path(), &Device::Cpu, true).unwrap();
    let n = m.varmap().unwrap().all_vars().len();
    assert_eq!(n, m.weights().len());
    assert_eq!(n, 1 + 2 * 9 + 1);
}

#[test]
fn tiny_generation_is_seeded_and_honours_stop_and_length() {
    let e = tiny::engine(11, false).unwrap();
    let prompt = "<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n";
    let p = GenParams {
        max_tokens: 12,
        temperature: 1.0,
        top_p: 0.9,
        seed: 42,
        stop: vec![],
    };
    let a = e.generate(prompt, &p).unwrap();
    let b = e.generate(prompt, &p).unwrap();
    assert_eq!(a.text, b.text);
    assert_eq!(a.tokens.len(), a.logprobs.len());
    assert!(a.logprobs.iter().all(|l| *l <= 0.0));
    if a.finish_reason == "length" {
        assert_eq!(a.tokens.len(), 12);
    }
    assert_eq!(a.tokens.concat(), a.text);
    let greedy = e
        .generate(
            prompt,
            &GenParams {
                max_tokens: 20,
                ..GenParams::default()
            },
        )
        .unwrap();
    // stopping at a string that the greedy text contains cuts the text before it
    if greedy.text.chars().count() > 4 {
        let stop: String = greedy.text.chars().skip(2).take(2).collect();
        let g = e
            .generate(
                prompt,
                &GenParams {
                    max_tokens: 20,
                    stop: vec![stop.clone()],
                    ..GenParams::default()
                },
            )
            .unwrap();
        assert_eq!(g.finish_reason, "stop");
        assert!(!g.text.contains(&stop));
        assert!(greedy.text.starts_with(&g.text));
    }
    assert!(matches!(e.generate("", &p), Err(LmError::Invalid(_))));
}

#[test]
fn bad_model_files_give_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a gguf at all").unwrap();
    let err = Engine::load(&bad, &LoadOptions::default()).err().unwrap();
    assert!(err.to_string().contains("bad.gguf"), "{err}");
    let hf = dir.path().join("hf");
    tiny::write_dir(&hf, 1).unwrap();
    std::fs::write(hf.join("config.json"), r#"{"vocab_size": 10}"#).unwrap();
    let err = Engine::load(&hf, &LoadOptions::default()).err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("hidden_size"),
        "{msg}"
    );
    let err = Engine::load(&dir.path().join("missing.gguf"), &LoadOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing.gguf"));
}

// ---------- SmolLM2 ----------

fn smollm2_path() -> Option<PathBuf> {
    let p = std::env::var("AGENTQ_SMOLLM2")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::util::root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing in CI: run `agentq model fetch smollm2` first",
            p.display()
        );
    }
    eprintln!(
        "skipping: {} not found (run `cargo run --release -- model fetch smollm2`)",
        p.display()
    );
    None
}

fn smollm2() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| smollm2_path().map(|p| Engine::load(&p, &LoadOptions::default()).unwrap()))
        .as_ref()
}

#[test]
fn smollm2_tokenizer_matches_llama_cpp_and_round_trips() {
    let Some(e) = smollm2() else { return };
    let text = e
        .chat()
        .render(
            &[
                ChatMessage::new("system", "You are a web agent."),
                ChatMessage::new(
                    "user",
                    "Go to https://shop.example/?q=mouse&p=2 and buy \"naïve café\" 😀 for $24.26.\n\n  Done?",
                ),
            ],
            true,
        )
        .unwrap();
    let ids = e.tokenizer().encode(&text).unwrap();
    assert_eq!(
        &ids[..10],
        &[1, 9690, 198, 2683, 359, 253, 3877, 7997, 30, 2]
    );
    assert_eq!(e.tokenizer().decode(&ids).unwrap(), text);
    assert_eq!(e.tokenizer().eos_ids(), &[0, 2]);
    // digits are split one by one (llama.cpp's `smollm` pre-tokenizer)
    let d = e.tokenizer().encode("2426").unwrap();
    assert_eq!(d.len(), 4);
}

#[test]
fn smollm2_greedy_answers_a_simple_question() {
    let Some(e) = smollm2() else { return };
    let prompt = e
        .chat()
        .render(
            &[ChatMessage::new(
                "user",
                "What is the capital of France? Answer in one sentence.",
            )],
            true,
        )
        .unwrap();
    let g = e
        .generate(
            &prompt,
            &GenParams {
                max_tokens: 24,
                ..GenParams::default()
            },
        )
        .unwrap();
    assert!(g.text.contains("Paris"), "{:?}", g.text);
    assert_eq!(g.tokens.len(), g.logprobs.len());
}

fn smollm2_f32() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| {
        let opts = LoadOptions {
            precision: Precision::F32,
            ..LoadOptions::default()
        };
        smollm2_path().map(|p| Engine::load(&p, &opts).unwrap())
    })
    .as_ref()
}

/// A short agent prompt rendered with `e`'s chat template.
fn mouse_prompt(e: &Engine) -> String {
    e.chat()
        .render(
            &chat_prompt("Task: buy a wireless mouse.\n[100] search box\n[101] button \"Search\""),
            true,
        )
        .unwrap()
}

#[test]
fn smollm2_q8_log_probs_follow_the_f32_model() {
    let (Some(q), Some(f)) = (smollm2(), smollm2_f32()) else {
        return;
    };
    assert!(q.cpu_model().is_some() && f.cpu_model().is_none());
    assert!(q.describe().contains("q8_0"), "{}", q.describe());
    let prompt = mouse_prompt(q);
    let c = candidates();
    let (a, b) = (q.score(&prompt, &c).unwrap(), f.score(&prompt, &c).unwrap());
    let diffs: Vec<f32> = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| x.token_logprobs.iter().zip(&y.token_logprobs))
        .map(|(p, q)| (p - q).abs())
        .collect();
    let worst = diffs.iter().copied().fold(0f32, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    println!("|Δ token log-prob| quantized vs f32: max {worst}, mean {mean}");
    // 8-bit activations make the error a noise whose worst token moves with any change of
    // rounding (0.34-0.63 nats at worst over kernel versions whose sums differ only in
    // order; means 0.07-0.1). A wrong kernel, rope or mask moves every token by whole nats.
    assert!(
        worst <= 1.0 && mean <= 0.2,
        "|Δ token log-prob| max {worst}, mean {mean}"
    );
    // over a long page the mean is a steadier figure: 0.010 nats over this page's 1,337
    // tokens (and 0.064-0.065 over 1,209 tokens of prose, for both kernel versions above)
    let page: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "[{}] link \"Wireless mouse {i}\" price ${}.{:02}",
                100 + i,
                10 + (i * 7) % 40,
                (i * 37) % 100
            )
        })
        .collect();
    let text = q
        .chat()
        .render(
            &chat_prompt(&format!(
                "Task: buy the cheapest wireless mouse.\n{}",
                page.join("\n")
            )),
            true,
        )
        .unwrap();
    let (x, y) = (
        q.text_logprobs(&text).unwrap(),
        f.text_logprobs(&text).unwrap(),
    );
    let d: Vec<f32> = x
        .token_logprobs
        .iter()
        .zip(&y.token_logprobs)
        .filter_map(|(a, b)| Some((a.as_ref()? - b.as_ref()?).abs()))
        .collect();
    let long_mean = d.iter().sum::<f32>() / d.len() as f32;
    println!("long page: {} tokens, mean |Δ| {long_mean}", d.len());
    assert!(
        d.len() > 500 && long_mean <= 0.12,
        "mean |Δ| {long_mean} over {} tokens",
        d.len()
    );
    // and the same ranking of the candidates at the top
    let best = |s: &[agentq::lm::Scored]| {
        (0..s.len())
            .max_by(|&i, &j| s[i].logprob.total_cmp(&s[j].logprob))
            .unwrap()
    };
    assert_eq!(best(&a), best(&b));
}

#[test]
fn smollm2_cached_batched_scoring_equals_naive() {
    let Some(e) = smollm2() else { return };
    let prompt = mouse_prompt(e);
    let c = candidates();
    let batched = e.score(&prompt, &c).unwrap();
    let naive = e.score_naive(&prompt, &c).unwrap();
    // one shared prompt pass + one batch of continuations = each continuation run cold
    assert_scores_close(&batched, &naive, 1e-4);
    // the prompt again, from the prefix cache this time, and a prompt sharing its start
    let before = e.prefix_stats();
    assert_scores_close(&e.score(&prompt, &c).unwrap(), &naive, 1e-4);
    let other = format!("{}Clicking", prompt);
    assert_scores_close(
        &e.score(&other, &c).unwrap(),
        &e.score_naive(&other, &c).unwrap(),
        1e-4,
    );
    // the second pass reuses all but the last prompt token (other tests share this
    // engine, and can only add hits)
    let n = e.tokenizer().encode(&prompt).unwrap().len() as u64;
    let after = e.prefix_stats();
    assert!(after.hits - before.hits >= n - 1, "{before:?} -> {after:?}");
    // a plausible action beats gibberish
    let s = e
        .score(
            &prompt,
            &["search[wireless mouse]<|im_end|>".into(), "zq xv kk".into()],
        )
        .unwrap();
    assert!(s[0].logprob / (s[0].n_tokens as f32) > s[1].logprob / (s[1].n_tokens as f32));
}

// ---------- OpenAI-compatible client and server ----------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(base: &str, retries: u32) -> OpenAiClient {
    OpenAiClient::new(OpenAiConfig {
        base_url: base.to_string(),
        model: "tiny".into(),
        api_key: Some("sk-test-secret".into()),
        timeout: Duration::from_secs(30),
        max_retries: retries,
        concurrency: 2,
    })
    .unwrap()
    .with_backoff(Duration::from_millis(5))
}

#[test]
fn openai_client_against_agentq_lm_serve() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("tiny");
    tiny::write_dir(&model_dir, 21).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_agentq"))
            .args(["lm", "serve", "--model"])
            .arg(&model_dir)
            .args(["--addr", &addr])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let mut up = false;
        for _ in 0..200 {
            if http
                .get(format!("{base}/v1/models"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "agentq lm serve did not come up");
        let c = client(&base, 2);
        // the server runs the default precision (Q8_0 on the CPU): so does the reference
        let local = tiny::engine(21, false)
            .unwrap()
            .quantized(agentq::lm::cpu::CpuOptions::default())
            .unwrap();
        // chat with logprobs
        let msgs = chat_prompt("hello world");
        let params = GenParams {
            max_tokens: 8,
            ..GenParams::default()
        };
        let g = c.chat(&msgs, &params).await.unwrap();
        let want = local
            .generate(&local.chat().render(&msgs, true).unwrap(), &params)
            .unwrap();
        assert_eq!(g.text, want.text);
        assert_eq!(g.logprobs.len(), want.logprobs.len());
        // raw completion
        let prompt = c.apply_chat(&msgs, true).unwrap();
        let g2 = c.generate(&prompt, &params).await.unwrap();
        assert_eq!(g2.text, want.text);
        // scoring through echo + logprobs equals local scoring
        let cands = candidates()[..4].to_vec();
        let remote = c.score(&prompt, &cands).await.unwrap();
        let mine = local.score(&prompt, &cands).unwrap();
        assert_scores_close(&remote, &mine, 1e-3);
    });
}

#[derive(Clone, Default)]
struct Fake {
    hits: Arc<AtomicUsize>,
}

async fn start_fake(fake: Fake) -> String {
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};
    let f1 = fake.clone();
    let f2 = fake.clone();
    let app = Router::new()
        // 429 on the first call, then a valid answer
        .route(
            "/v1/chat/completions",
            post(move || {
                let f = f1.clone();
                async move {
                    let n = f.hits.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        return (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({})));
                    }
                    (
                        StatusCode::OK,
                        Json(serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop",
                            "logprobs": {"content": [{"token": "hi", "logprob": -0.5}]}}]})),
                    )
                }
            }),
        )
        // always 500
        .route(
            "/v1/completions",
            post(move || {
                let f = f2.clone();
                async move {
                    f.hits.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::INTERNAL_SERVER_ERROR, "boom")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

use axum::Json;

#[tokio::test]
async fn openai_client_retries_429_then_succeeds_and_gives_up_on_500() {
    let fake = Fake::default();
    let base = start_fake(fake.clone()).await;
    let c = client(&base, 2);
    let g = c
        .chat(&chat_prompt("x"), &GenParams::default())
        .await
        .unwrap();
    assert_eq!(g.text, "hi");
    assert_eq!(g.logprobs, vec![-0.5]);
    assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
    fake.hits.store(0, Ordering::SeqCst);
    let err = c.generate("x", &GenParams::default()).await.unwrap_err();
    assert_eq!(fake.hits.load(Ordering::SeqCst), 3, "1 try + 2 retries");
    let msg = err.to_string();
    assert!(
        msg.contains("/v1/completions") && msg.contains("500"),
        "{msg}"
    );
    assert!(!msg.contains("sk-test-secret"));
}

#[tokio::test]
async fn openai_scoring_unsupported_is_reported() {
    use axum::routing::post;
    use axum::Router;
    // a server without /v1/completions (404), and one that returns generated-token logprobs only
    let app = Router::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let err = client(&format!("http://{a}"), 1)
        .score("p", &["c".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, LmError::ScoringUnsupported { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("scoring unsupported by this server"));

    let app = Router::new().route(
        "/v1/completions",
        post(|| async {
            Json(serde_json::json!({"choices": [{"index": 0, "text": "x",
                "logprobs": {"tokens": ["x"], "token_logprobs": [-1.0], "text_offset": [0]}}]}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let err = client(&format!("http://{a}/v1"), 1)
        .score("prompt", &["cont".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, LmError::ScoringUnsupported { .. }), "{err}");

    // the local model through the router (no socket): bad JSON is a 400
    use tower::ServiceExt;
    let m: Arc<dyn LanguageModel> =
        Arc::new(LocalModel::from_engine(tiny::engine(1, false).unwrap()));
    let r = agentq::lm::serve::router(m)
        .oneshot(
            axum::http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{not json"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn cli_model_info_lm_chat_and_score_on_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("tiny");
    tiny::write_dir(&m, 4).unwrap();
    let ms = m.to_str().unwrap();
    let info = crate::util::ok_stdout(&crate::util::agentq(dir.path(), &["model", "info", ms]));
    assert!(info.contains("architecture   llama"), "{info}");
    assert!(info.contains("round trip ok"), "{info}");
    let out = crate::util::ok_stdout(&crate::util::agentq(
        dir.path(),
        &[
            "lm",
            "chat",
            "--model",
            ms,
            "--max-tokens",
            "5",
            "--json",
            "hello",
        ],
    ));
    let g: agentq::lm::Generation = serde_json::from_str(&out).unwrap();
    assert_eq!(g.tokens.len(), g.logprobs.len());
    let out = crate::util::ok_stdout(&crate::util::agentq(
        dir.path(),
        &[
            "lm",
            "score",
            "--model",
            ms,
            "--user",
            "hi",
            "click[Buy Now]",
            "stop",
        ],
    ));
    assert_eq!(out.lines().count(), 2, "{out}");
    let bad = crate::util::agentq(dir.path(), &["lm", "chat", "hello"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--model PATH or --base-url URL"));
    let bad = crate::util::agentq(dir.path(), &["model", "fetch", "gpt5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("known: smollm2"));
}
