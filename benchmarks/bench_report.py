"""Time `edgebench report` over 10,000 synthetic rows (target: at most 5 s on a 2-core machine).

    python benchmarks/bench_report.py [--rows 10000] [--keep DIR]

The rows spread over three devices, every runtime x precision of the cpu-laptop suite (plus an
estimated AI Hub device), ~25 sessions, some unavailable/error/timeout/skipped rows and quality
rows, each speed row with 5 repetitions of raw token times. Prints the time and the file size.
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edgebench.results.schema import SCHEMA_VERSION, RunRecord, run_key
from edgebench.results.store import Store

# (framework, precision, bits, class, rss factor, speed factor)
VARIANTS = [
    ("llama-cpp", "f16", 16.0, "high", 1.0, 1.0), ("llama-cpp", "q8_0", 8.5, "medium", .58, 1.7),
    ("llama-cpp", "q4_k_m", 4.9, "low", .42, 2.4),
    ("ort-genai", "fp32", 32.0, "high", 1.9, .6), ("ort-genai", "int8", 8.0, "medium", .6, 1.3),
    ("ort-genai", "int4", 4.0, "low", .45, 1.9),
    ("openvino", "fp16", 16.0, "high", 1.1, .9), ("openvino", "int8", 8.0, "medium", .6, 1.6),
    ("openvino", "int4", 4.0, "low", .44, 2.2),
    ("mlx", "fp16", 16.0, "high", 1.0, 1.2), ("mlx", "8bit", 8.5, "medium", .55, 1.9),
    ("mlx", "4bit", 4.5, "low", .4, 2.8),
    ("qai-hub", "fp16", 16.0, "high", 1.0, 1.0), ("qai-hub", "w8a16", 8.0, "medium", .5, 4.0),
    ("qai-hub", "w4a16", 4.0, "low", .3, 7.0),
]
MACHINES = [  # machine id, device, cpu model, os, frameworks it runs, base decode tok/s
    ("laptop-x86", "cpu", "Intel(R) Core(TM) i7-1365U", "Linux-6.8-x86_64",
     ("llama-cpp", "ort-genai", "openvino", "mlx"), 38.0),
    ("macbook-m2", "cpu", "Apple M2", "macOS-14.5-arm64",
     ("llama-cpp", "mlx", "ort-genai"), 55.0),
    ("snapdragon-x", "npu", "Snapdragon X Elite", "Windows-11-ARM64",
     ("qai-hub", "llama-cpp"), 30.0),
]
MODELS = [("gemma-3-270m", "sha-gemma", 536_000_000), ("qwen2.5-0.5b", "sha-qwen", 988_000_000)]


def _record(rng: random.Random, when: datetime, session: str, machine, variant, model,
            prompt: int, new: int, threads: int, kind: str = "speed") -> RunRecord:
    mid, device, cpu, os_name, _, base = machine
    fw, prec, bits, cls, rss_f, speed_f = variant
    device = device if fw == "qai-hub" else "cpu"
    name, sha, f16_bytes = model
    ident = dict(model_sha256=sha, framework=fw, precision=prec, device=device,
                 prompt_tokens=prompt, new_tokens=new, threads=threads, options="{}", kind=kind)
    status, message = "ok", None
    if fw == "mlx" and mid == "laptop-x86":
        status, message = "unavailable", "mlx runs on Apple Silicon only"
    elif rng.random() < 0.03:
        status, message = rng.choice([("error", "runtime crashed: SIGSEGV"),
                                      ("timeout", "no result within 900 s"),
                                      ("skipped", "unsupported combination")])
    common = dict(model=name, suite="cpu-laptop", run_key=run_key(ident), session_id=session,
                  machine_id=mid, started_at=when, finished_at=when + timedelta(seconds=30),
                  edgebench_version="0.1.0", schema_version=SCHEMA_VERSION, status=status,
                  message=message, framework_version={"llama-cpp": "0.3.16"}.get(fw, "2025.1"),
                  cpu_model=cpu, os=os_name, accelerators="Adreno X1" if device == "npu" else None,
                  cpu_cores_physical=8, ram_total_mb=16384.0, python_version="3.11.7",
                  measurement="estimated" if fw == "qai-hub" else "measured",
                  energy_method="nvml" if mid == "snapdragon-x" and status == "ok" else "none",
                  artifact_precision_class=cls, bits_per_weight=bits,
                  model_bytes=int(f16_bytes * bits / 16), **ident)
    if status != "ok":
        return RunRecord(**common)
    if kind == "quality":
        ppl = 18.0 * (1 + (16 - min(bits, 16)) ** 2 / 600) * rng.uniform(.995, 1.005)
        return RunRecord(**common, ppl=ppl, ppl_stderr=0.2, ppl_reference=18.0,
                         kld_mean=max(0.0, (16 - min(bits, 16)) ** 2 / 4000),
                         kld_p99=0.1, top1_agree=1 - (16 - min(bits, 16)) / 80,
                         quality_reference=f"{fw}:{VARIANTS[0][1]}", corpus="pydoc-topics-v1")
    scale = 0.5 if name.startswith("qwen") else 1.0
    decode = base * speed_f * scale * (threads / 4) ** 0.3 * rng.uniform(.93, 1.07)
    ttft = prompt / (decode * 6) * 1000
    reps = []
    for _ in range(5):
        t, times = ttft * rng.uniform(.95, 1.05), []
        for _ in range(new):
            times.append(round(t, 3))
            t += 1000 / decode * rng.lognormvariate(0, 0.08)
        reps.append(times)
    rss = 150 + f16_bytes / 2**20 * rss_f * rng.uniform(.98, 1.02)
    j = (2.0 / decode) if common["energy_method"] == "nvml" else None
    return RunRecord(**common, decode_tok_s=decode, ttft_ms=ttft, tpot_ms=1000 / decode,
                     prefill_tok_s=prompt / ttft * 1000, e2e_s=(ttft + new * 1000 / decode) / 1000,
                     peak_rss_mb=rss, load_s=0.4 * rss_f, token_ms_samples=reps, repetitions=5,
                     j_per_token=j, energy_j=j * new if j else None)


def synthetic_store(root: Path, rows: int = 10_000, sessions: int = 25, seed: int = 0,
                    models: int = len(MODELS)) -> Store:
    """A store of ``rows`` synthetic rows in ``sessions`` session files."""
    rng = random.Random(seed)
    store = Store(root)
    start = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    per = -(-rows // sessions)
    combos = list(itertools.product([32, 64, 128, 256], [32, 64, 128], [1, 2, 4, 8]))
    written = 0
    for s in range(sessions):
        machine = MACHINES[s % len(MACHINES)]
        when = start + timedelta(days=2 * s)
        session = when.strftime("%Y%m%dT%H%M%SZ") + f"-{s:06x}"
        recs = []
        variants = [v for v in VARIANTS if v[0] in machine[4]]
        grid = itertools.product(MODELS[:models], combos, variants)
        for i, (model, (p, n, th), v) in enumerate(grid):
            if len(recs) >= min(per, rows - written):
                break
            recs.append(_record(rng, when + timedelta(seconds=40 * i), session, machine, v,
                                model, p, n, th))
        for v, model in itertools.product(variants, MODELS[:models]):  # one quality row per variant
            recs.append(_record(rng, when, session, machine, v, model, 0, 0, 0, "quality"))
        written += len(recs)
        store.write_session(session, recs)
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="write the store and report here (kept)")
    args = ap.parse_args()
    from edgebench import api

    root = args.keep or Path(tempfile.mkdtemp(prefix="edgebench-bench-report-"))
    t = time.perf_counter()
    store = synthetic_store(root / "store", args.rows)
    n = len(store.query("SELECT run_key FROM runs"))
    print(f"generated {n} rows in {len(store.files())} sessions ({time.perf_counter() - t:.1f} s)")
    for fmt in ("html", "md"):
        out = root / f"report.{fmt}"
        t = time.perf_counter()
        api.report(store, out=out, fmt=fmt)
        dt = time.perf_counter() - t
        print(f"report --format {fmt}: {dt:.2f} s, {out.stat().st_size / 2**20:.2f} MiB -> {out}")


if __name__ == "__main__":
    main()
