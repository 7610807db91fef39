"""Harness overhead per runtime: edgebench's measured decode tok/s and TTFT vs that runtime's
own bare greedy loop (benchmarks/bare_loops.py) on the same artifact.

Same model (Gemma 3 270M), prompt token IDs, threads and token count; each side in a fresh
process, alternating A/B for several rounds because this machine is noisy. Target per runtime:
decode ratio >= 0.97 (TTFT within 5 % is reported too). Prints one ratio line per runtime.

    nox -s bench            # or: python benchmarks/bench_overhead.py --rounds 6 [-f mlx ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from edgebench import api
from edgebench.harness.device import fingerprint
from edgebench.harness.isolate import run_isolated
from edgebench.harness.measure import RunContext
from edgebench.harness.prompt import prompt_ids
from edgebench.locations import cache_dir

# framework -> (precision, module that must be importable, new tokens, prompt tokens); the
# 4-bit variant of each, the fastest. OpenVINO gets a 512-token prompt (a scheduler that chunks
# the prefill shows only on long prompts); MLX's Linux CPU backend is slow (prefill ~0.1 s a
# token), so it gets a 128-token prompt and fewer new tokens. None: --prompt-tokens.
CASES = {
    "llama-cpp": ("q4_k_m", "llama_cpp", 64, None),
    "ort-genai": ("int4", "onnxruntime_genai", 64, None),
    "openvino": ("int4", "openvino_genai", 64, 512),
    "mlx": ("4bit", "mlx_lm", 16, 128),
}
BARE = Path(__file__).with_name("bare_loops.py")


def bench(framework: str, rounds: int, prompt_tokens: int, repetitions: int) -> dict | None:
    precision, _module, new_tokens, own_prompt = CASES[framework]
    prompt_tokens = own_prompt or prompt_tokens
    cache = cache_dir()
    suite = api.make_suite("smoke", frameworks=[framework], precisions=[precision],
                           prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                           repetitions=repetitions, warmup=1)
    suite = dataclasses.replace(suite, timeout_s=1800)
    (run,) = api.plan(suite, cache)
    if run.skip_reason:
        print(f"{framework}: skipped ({run.skip_reason})", file=sys.stderr)
        return None
    if run.prepare:
        run = api._prepared(run, cache)
    source = api.prepare_mod.source_of(api.resolve_model(run.model_ref, cache)).path
    ids = prompt_ids(run.model_sha256, source, run.prompt_tokens, cache)
    run = dataclasses.replace(run, prompt_ids=tuple(ids))
    ctx = RunContext(api.new_session_id(), fingerprint())
    ids_file = Path(tempfile.mkdtemp()) / "ids.json"
    ids_file.write_text(json.dumps(ids))
    bare_cmd = [sys.executable, str(BARE), framework, str(run.artifact.path), str(ids_file),
                str(run.new_tokens), str(run.threads), str(repetitions), "1"]

    eb_decode, eb_ttft, bare_decode, bare_ttft = [], [], [], []
    busy = 0
    version = ""
    for i in range(rounds):
        for side in ("edgebench", "bare") if i % 2 == 0 else ("bare", "edgebench"):
            if side == "edgebench":
                row = run_isolated(run, ctx)
                if row.status != "ok":
                    print(f"{framework}: edgebench run failed: {row.status}: {row.message}",
                          file=sys.stderr)
                    return None
                eb_decode.append(row.decode_tok_s)
                eb_ttft.append(row.ttft_ms)
                version = row.framework_version
                busy += bool(row.machine_busy)
            else:
                proc = subprocess.run(bare_cmd, capture_output=True, text=True)
                if proc.returncode:
                    print(f"{framework}: bare loop failed: {proc.stderr[-400:]}",
                          file=sys.stderr)
                    return None
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                bare_decode.append(out["decode_tok_s"])
                bare_ttft.append(out["ttft_ms"])
        print(f"{framework} round {i + 1}: edgebench decode {eb_decode[-1]:.2f} tok/s ttft "
              f"{eb_ttft[-1]:.0f} ms | bare decode {bare_decode[-1]:.2f} tok/s ttft "
              f"{bare_ttft[-1]:.0f} ms", flush=True)
    ratios = [e / b for e, b in zip(eb_decode, bare_decode)]
    return {"framework": framework, "version": version, "precision": precision,
            "new_tokens": new_tokens, "prompt_tokens": prompt_tokens, "threads": run.threads,
            "rounds": rounds, "busy": busy,
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "eb_decode": statistics.median(eb_decode),
            "bare_decode": statistics.median(bare_decode),
            "eb_ttft": statistics.median(eb_ttft), "bare_ttft": statistics.median(bare_ttft)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("-f", "--framework", action="append", choices=sorted(CASES),
                    help="runtime(s) to measure (default: every installed one)")
    args = ap.parse_args()
    names = args.framework or [f for f, c in CASES.items() if importlib.util.find_spec(c[1])]
    results = [r for f in names
               if (r := bench(f, args.rounds, args.prompt_tokens, args.repetitions))]
    print(f"\nGemma 3 270M, {args.rounds} rounds x {args.repetitions} repetitions, medians "
          "(edgebench / bare); spread = the rounds' decode ratios, min-max:")
    failed = False
    for r in results:
        d = r["eb_decode"] / r["bare_decode"]
        t = r["eb_ttft"] / r["bare_ttft"]
        failed |= d < 0.97
        print(f"{r['framework']:<10} {r['version']:<11} {r['precision']:<7} "
              f"{r['prompt_tokens']:>3}+{r['new_tokens']:<3} tokens, "
              f"{r['threads']} threads | decode {r['eb_decode']:.2f} / {r['bare_decode']:.2f} tok/s"
              f" ratio {d:.3f} {'PASS' if d >= 0.97 else 'FAIL'} (>= 0.97) | TTFT "
              f"{r['eb_ttft']:.1f} / {r['bare_ttft']:.1f} ms ratio {t:.3f} | spread "
              f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f} | busy rounds {r['busy']}")
    return 1 if failed or len(results) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
