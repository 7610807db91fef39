"""Micro-benchmark of `edgebench gate` over a synthetic store of 10,000 rows.

50 sessions x 200 runs, 10 samples of decode and TTFT per row; the gate compares the newest
session with the one before it (200 runs x 3 default metrics). It prints the timing table of
pytest-benchmark and asserts nothing about time. Not collected by ``python -m pytest`` (the
project's testpaths are tests/); run it with:

    python -m pytest benchmarks/test_bench_gate.py

Measured on a shared 2-core VM: see docs/gate.md ("Cost").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from edgebench.gate import engine, refs, thresholds
from edgebench.results import verify
from edgebench.results.schema import SCHEMA_VERSION, RunRecord
from edgebench.results.store import Store

SESSIONS, RUNS, SAMPLES = 50, 200, 10
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _row(session: int, run: int, rng: np.random.Generator) -> RunRecord:
    decode = (40 + run % 50) * (1 + 0.03 * rng.standard_normal(SAMPLES))
    ttft = (100 + run) * (1 + 0.03 * rng.standard_normal(SAMPLES))
    return RunRecord(
        model="m", model_sha256="abc", framework="llama-cpp", precision="q4_k_m", device="cpu",
        prompt_tokens=8 + run, new_tokens=32, threads=2, options="{}", suite="bench",
        run_key=f"run{run:04d}", session_id=f"s{session:03d}", machine_id=f"runner{session}",
        started_at=T0 + timedelta(hours=session), finished_at=None, edgebench_version="0",
        schema_version=SCHEMA_VERSION, status="ok", kind="speed", measurement="measured",
        framework_version="0.3.36", artifact_sha256="art", cpu_model="AMD EPYC",
        cpu_cores_logical=2, ram_total_mb=8000.0, os="Linux (x86_64)",
        decode_tok_s=float(np.median(decode)), decode_tok_s_samples=decode.tolist(),
        ttft_ms=float(np.median(ttft)), ttft_ms_samples=ttft.tolist(),
        peak_mem_mb=300.0 + run % 7, repetitions=SAMPLES, launches=1)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Store:
    st = Store(tmp_path_factory.mktemp("gate-bench") / "store")
    rng = np.random.default_rng(0)
    for s in range(SESSIONS):
        st.write_session(f"s{s:03d}", [_row(s, r, rng) for r in range(RUNS)])
    return st


def _gate(st: Store) -> engine.GateReport:
    base, cand = refs.resolve_pair("latest~1", "latest", st)
    return engine.run_gate(base, cand, thresholds.parse_all(()))


def test_gate_over_10k_rows(benchmark, big_store):
    """Cold: every store file verified and read again in each round (as in a fresh CLI)."""
    rep = benchmark.pedantic(_gate, args=(big_store,), setup=verify._CACHE.clear, rounds=3,
                             iterations=1)
    print(f"\n{len(big_store.table())} rows; {len(rep.findings)} findings: {rep.counts()}")
    assert len(rep.findings) == RUNS * 3


def test_gate_comparisons_only(benchmark, big_store):
    """The statistics alone: 200 runs x (2 sample metrics + 1 single value)."""
    base, cand = refs.resolve_pair("latest~1", "latest", big_store)
    gated = thresholds.parse_all(())
    rep = benchmark.pedantic(engine.run_gate, args=(base, cand, gated), rounds=3, iterations=1)
    assert len(rep.findings) == RUNS * 3
