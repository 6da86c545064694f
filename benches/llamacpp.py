#!/usr/bin/env python3
"""agentq's local model against llama.cpp, side by side, on the same GGUF file and inputs.

    python3 benches/llamacpp.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--rounds 3]

What it does, in one invocation:
  1. makes a virtualenv under target/llamacpp-venv and installs llama.cpp's prebuilt PyPI
     wheel `xllamacpp` into it (no compiler; the wheel's CPU build is the generic AVX2 one);
  2. builds nothing itself: it runs `target/release/agentq` (build it first with
     `cargo build --release -p agentq`), whose `bench lm --json --inputs-out` writes the exact
     prompt and candidates it timed;
  3. alternates agentq and llama.cpp rounds (same process for llama.cpp, same threads) and
     prints each figure's median for both engines and the ratio agentq / llama.cpp.

Figures: prompt tok/s (≈800 tokens, cold), generation tok/s (after the prompt), and the time
to score 10 candidate actions after the prompt. llama.cpp's server API returns no
log-probabilities of given tokens, so its scoring figure is the compute llama.cpp's own KV
reuse does: the prompt once, then each candidate over the cached prompt (the server's
`timings.prompt_ms`, no HTTP in between). A lower bound for llama.cpp, not a scoring API.
Loopback only; no model download (the model comes from `agentq model fetch smollm2`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv

XLLAMACPP = "xllamacpp==2026.10.11549"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "llamacpp-venv")


def ensure_venv():
    """Re-runs this script inside the virtualenv that has xllamacpp."""
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(py):
        print(f"creating {VENV} and installing {XLLAMACPP} …", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.check_call([py, "-m", "pip", "install", "-q", "--only-binary=:all:", XLLAMACPP])
    os.execv(py, [py] + sys.argv)


def agentq_round(args, inputs_path):
    cmd = [
        args.agentq, "bench", "lm", "--model", args.model, "--threads", str(args.threads),
        "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
        "--json", "--inputs-out", inputs_path,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {
        "prompt_tok_per_s": r["prompt_tok_per_s"],
        "gen_tok_per_s": r["gen_tok_per_s"],
        "score_10_s": r["score_10_s"],
        "score_10_after_prompt_s": r["score_10_batch_s"],
        "prompt_tokens": r["prompt_tokens"],
        "peak_rss_mib": r.get("peak_rss_mib"),
    }


class LlamaCpp:
    def __init__(self, model, threads):
        import xllamacpp as x

        p = x.CommonParams()
        p.model.path = model
        p.n_ctx = 2048
        p.n_batch = 512
        p.n_ubatch = 512
        p.n_parallel = 1
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.warmup = True
        self.server = x.Server(p)

    def complete(self, prompt, n, cache):
        r = self.server.handle_completions({
            "prompt": prompt, "n_predict": n, "temperature": 0, "ignore_eos": True,
            "cache_prompt": cache,
        })
        if "timings" not in r:
            raise SystemExit(f"llama.cpp answered without timings: {json.dumps(r)[:400]}")
        return r["timings"]

    def round(self, inputs):
        prompt, cands, gen = inputs["prompt"], inputs["candidates"], inputs["gen_tokens"]
        cold = self.complete(prompt, 1, False)
        g = self.complete(prompt, gen, False)
        # scoring's compute: the prompt once (the cold pass above), then every candidate
        # over the cached prompt
        self.complete(prompt, 1, True)
        cand_ms = 0.0
        for c in cands:
            t = self.complete(prompt + c, 1, True)
            cand_ms += t["prompt_ms"]
        return {
            "prompt_tok_per_s": cold["prompt_per_second"],
            "gen_tok_per_s": g["predicted_per_second"],
            "score_10_s": (cold["prompt_ms"] + cand_ms) / 1000.0,
            "score_10_after_prompt_s": cand_ms / 1000.0,
            "prompt_tokens": cold["prompt_n"],
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--agentq", default=os.path.join(ROOT, "target", "release", "agentq"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=800)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    for path, what in [(args.model, "model (agentq model fetch smollm2)"),
                       (args.agentq, "agentq binary (cargo build --release -p agentq)")]:
        if not os.path.exists(path):
            raise SystemExit(f"no {what} at {path}")
    ensure_venv()
    lc = LlamaCpp(args.model, args.threads)
    rows = {"agentq": [], "llama.cpp": []}
    with tempfile.TemporaryDirectory() as tmp:
        inputs_path = os.path.join(tmp, "inputs.json")
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}: agentq", file=sys.stderr)
            rows["agentq"].append(agentq_round(args, inputs_path))
            with open(inputs_path) as f:
                inputs = json.load(f)
            print(f"round {i + 1}/{args.rounds}: llama.cpp", file=sys.stderr)
            rows["llama.cpp"].append(lc.round(inputs))
    figures = [
        ("prompt tok/s", "prompt_tok_per_s", True),
        ("generation tok/s", "gen_tok_per_s", True),
        ("score 10, total s", "score_10_s", False),
        ("score 10 after the prompt, s", "score_10_after_prompt_s", False),
    ]
    summary = {}
    for name, key, higher in figures:
        a = [r[key] for r in rows["agentq"]]
        b = [r[key] for r in rows["llama.cpp"]]
        ma, mb = statistics.median(a), statistics.median(b)
        # "× llama.cpp": how many times better agentq is (speed ratio; time ratio inverted)
        ratio = ma / mb if higher else mb / ma
        summary[key] = {"agentq": a, "llama.cpp": b, "agentq_median": ma,
                        "llamacpp_median": mb, "agentq_speedup": ratio}
    if args.json:
        print(json.dumps({"rounds": rows, "summary": summary,
                          "llamacpp": XLLAMACPP, "threads": args.threads}, indent=2))
        return
    print(f"same file, same inputs, {args.threads} threads, {args.rounds} rounds (median, min–max)")
    print(f"prompt tokens: agentq {rows['agentq'][0]['prompt_tokens']}, "
          f"llama.cpp {rows['llama.cpp'][0]['prompt_tokens']}")
    print(f"{'figure':30} {'llama.cpp':>22} {'agentq':>22} {'agentq ×':>9}")
    for name, key, _ in figures:
        s = summary[key]
        fmt = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
        print(f"{name:30} {fmt(s['llama.cpp']):>22} {fmt(s['agentq']):>22} {s['agentq_speedup']:>8.2f}×")


if __name__ == "__main__":
    main()
