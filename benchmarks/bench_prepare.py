"""Wall time and peak memory of each preparation recipe on Gemma 3 270M, and a cache hit.

Prepares every target into a fresh cache (so dependencies such as GGUF F16 and the
dequantized checkpoint are built once, first), prints each manifest's wall time, peak RSS,
bits per weight and size, then prepares everything again and reports the time of the hits
(target: < 1 s each).

    nox -s bench -- prepare       # or: python benchmarks/bench_prepare.py [--target ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from edgebench import api
from edgebench.harness import prepare as prep
from edgebench.locations import cache_dir

DEFAULT_TARGETS = ["gguf:f16", "gguf:q8_0", "gguf:q6_k", "gguf:q5_k_m", "gguf:q4_k_m",
                   "gguf:q4_0", "gguf:q3_k_m", "gguf:q2_k", "hf:f32", "mlx:fp16", "mlx:8bit",
                   "mlx:4bit", "onnx:fp32", "onnx:fp16", "onnx:int8", "onnx:int4",
                   "openvino:fp16", "openvino:int8", "openvino:int4"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--target", action="append", help="FORMAT:PRECISION; repeatable")
    ap.add_argument("--keep", help="build into this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    targets = args.target or DEFAULT_TARGETS
    model = api.resolve_model(args.model, cache_dir())  # the assembled source stays shared
    source = prep.source_of(model)
    with tempfile.TemporaryDirectory(prefix="edgebench-bench-prepare-") as tmp:
        cache = Path(args.keep or tmp)
        print(f"{'target':<13} {'wall s':>8} {'peak RSS MB':>12} {'bits/weight':>12} "
              f"{'size MB':>9}  class")
        for t in targets:
            try:
                m = prep.prepare(source, prep.parse_target(t), cache)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{t:<13} failed: {e}")
                continue
            print(f"{t:<13} {m.wall_s:>8.1f} {m.peak_rss_mb or 0:>12.0f} "
                  f"{m.bits_per_weight:>12.3f} {m.size_bytes / 2**20:>9.1f}  {m.precision_class}")
        hits = []
        for t in targets:
            start = time.perf_counter()
            try:
                prep.prepare(source, prep.parse_target(t), cache)
            except Exception:  # noqa: BLE001 - failed above already
                continue
            hits.append((t, time.perf_counter() - start))
        worst = max(hits, key=lambda h: h[1]) if hits else ("-", 0.0)
        print(f"\ncache hits: {len(hits)} targets, slowest {worst[0]} {worst[1] * 1000:.0f} ms "
              f"(target < 1 s) {'PASS' if worst[1] < 1.0 else 'FAIL'}")
        print("timings are wall clock on this machine; wall s of a target excludes its "
              "dependencies, which are built (and timed) first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
