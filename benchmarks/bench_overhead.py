"""Harness overhead: edgebench's measured decode tok/s and TTFT vs a bare llama-cpp-python loop.

Same model (Gemma 3 270M Q4_K_M), prompt token IDs, threads and token count; each side in a
fresh process, alternating A/B for several rounds because this machine is noisy. Target:
decode ratio >= 0.97 and TTFT within 5 %. Prints the ratios of the medians.

    nox -s bench            # or: python benchmarks/bench_overhead.py --rounds 6
"""

from __future__ import annotations

import argparse
import dataclasses
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repetitions", type=int, default=3)
    args = ap.parse_args()

    cache = cache_dir()
    suite = api.make_suite("smoke", prompt_tokens=args.prompt_tokens,
                           new_tokens=args.new_tokens, repetitions=args.repetitions, warmup=1)
    (run,) = api.plan(suite, cache)
    ids = prompt_ids(run.model_sha256, run.artifact.path, run.prompt_tokens, cache)
    run = dataclasses.replace(run, prompt_ids=tuple(ids))
    ctx = RunContext(api.new_session_id(), fingerprint())
    ids_file = Path(tempfile.mkdtemp()) / "ids.json"
    ids_file.write_text(json.dumps(ids))
    bare_cmd = [sys.executable, str(Path(__file__).with_name("bare_llama.py")),
                str(run.artifact.path), str(ids_file), str(run.new_tokens), str(run.threads),
                str(args.repetitions), "1"]

    eb_decode, eb_ttft, bare_decode, bare_ttft = [], [], [], []
    for i in range(args.rounds):
        order = ("edgebench", "bare") if i % 2 == 0 else ("bare", "edgebench")
        for side in order:
            if side == "edgebench":
                row = run_isolated(run, ctx)
                if row.status != "ok":
                    print(f"edgebench run failed: {row.status}: {row.message}", file=sys.stderr)
                    return 1
                eb_decode.append(row.decode_tok_s)
                eb_ttft.append(row.ttft_ms)
            else:
                out = json.loads(subprocess.run(bare_cmd, capture_output=True, text=True,
                                                check=True).stdout.strip().splitlines()[-1])
                bare_decode.append(out["decode_tok_s"])
                bare_ttft.append(out["ttft_ms"])
        print(f"round {i + 1}: edgebench decode {eb_decode[-1]:.1f} tok/s ttft {eb_ttft[-1]:.0f}"
              f" ms | bare decode {bare_decode[-1]:.1f} tok/s ttft {bare_ttft[-1]:.0f} ms")

    d_ratio = statistics.median(eb_decode) / statistics.median(bare_decode)
    t_ratio = statistics.median(eb_ttft) / statistics.median(bare_ttft)
    print(f"\nmodel {run.model} ({run.precision}), prompt {run.prompt_tokens} tokens, "
          f"{run.new_tokens} new, {run.threads} threads, {args.rounds} rounds x "
          f"{args.repetitions} repetitions, llama-cpp {row.framework_version}")
    print(f"decode tok/s  edgebench {statistics.median(eb_decode):.2f}  "
          f"bare {statistics.median(bare_decode):.2f}  ratio {d_ratio:.3f}  (target >= 0.97) "
          f"{'PASS' if d_ratio >= 0.97 else 'FAIL'}")
    print(f"TTFT ms       edgebench {statistics.median(eb_ttft):.1f}  "
          f"bare {statistics.median(bare_ttft):.1f}  ratio {t_ratio:.3f}  (target 0.95-1.05) "
          f"{'PASS' if abs(t_ratio - 1) <= 0.05 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
