"""Micro-benchmarks of edgebench's own code paths (pytest-benchmark), no runtime involved.

- store read: a synthetic store of 20 sessions x 500 runs (10,000 rows, 5 samples per timing
  metric), read cold (every file verified) as the Arrow table and as ``results`` (latest row
  per run and machine);
- history: every run's decode tok/s over the 20 sessions, change points included;
- suite expansion: a suite of 6,400 cells (4 runtimes x 8 precisions x 10 prompt lengths x
  5 generation lengths x 4 thread counts) on a tiny GGUF model;
- ranking: ``edgebench.decision.rank`` over 300 candidates (with samples, so P(best) and ties
  bootstrap).

Timings only: nothing asserts a time. Not collected by ``python -m pytest`` (testpaths are
tests/); run ``nox -s micro`` or ``python -m pytest benchmarks/test_bench_micro.py
--benchmark-only``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from edgebench.results.schema import SCHEMA_VERSION, RunRecord
from edgebench.results.store import Store

SESSIONS, RUNS, SAMPLES = 20, 500, 5
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _row(session: int, run: int, rng: np.random.Generator) -> RunRecord:
    decode = (40 + run % 50) * (1 + 0.03 * rng.standard_normal(SAMPLES))
    ttft = (100 + run % 20) * (1 + 0.03 * rng.standard_normal(SAMPLES))
    return RunRecord(
        model="m", model_sha256="abc", framework="llama-cpp", precision=f"p{run % 13}",
        device="cpu", prompt_tokens=8 + run, new_tokens=32, threads=2, options="{}",
        suite="bench", run_key=f"run{run:04d}", session_id=f"s{session:03d}",
        machine_id="runner", started_at=T0 + timedelta(hours=session), finished_at=None,
        edgebench_version="0", schema_version=SCHEMA_VERSION, status="ok", kind="speed",
        measurement="measured", cpu_model="AMD EPYC", cpu_cores_logical=2, ram_total_mb=8000.0,
        os="Linux (x86_64)", decode_tok_s=float(np.median(decode)),
        decode_tok_s_samples=decode.tolist(), ttft_ms=float(np.median(ttft)),
        ttft_ms_samples=ttft.tolist(), peak_mem_mb=300.0 + run % 7, repetitions=SAMPLES)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("micro") / "store"
    st, rng = Store(root), np.random.default_rng(0)
    for s in range(SESSIONS):
        st.write_session(f"s{s:03d}", [_row(s, r, rng) for r in range(RUNS)])
    return root


def cold(benchmark, fn, rounds: int = 5):
    """Time ``fn`` as a fresh CLI process would run it: the store's verification cache
    (``results.verify``, per path, size and mtime) emptied before every round."""
    from edgebench.results import verify

    return benchmark.pedantic(fn, setup=verify._CACHE.clear, rounds=rounds, iterations=1)


def test_store_read_table_cold(benchmark, big_store):
    """Every file verified and read into one Arrow table (what each command starts with)."""
    table = cold(benchmark, lambda: Store(big_store).table())
    assert table.num_rows == SESSIONS * RUNS


def test_store_read_table_warm(benchmark, big_store):
    """The same within one process, the files already verified (cache hits)."""
    table = benchmark(lambda: Store(big_store).table())
    assert table.num_rows == SESSIONS * RUNS


def test_store_results_latest(benchmark, big_store):
    """``edgebench results``: the latest row per run and machine, through DuckDB."""
    from edgebench import api

    df = cold(benchmark, lambda: api.results(Store(big_store), latest=True))
    assert len(df) == RUNS


def test_history_over_sessions(benchmark, big_store):
    """``edgebench history decode_tok_s``: the rows read, every series, its change points."""
    from edgebench import history
    from edgebench.commands.history import load_rows

    found = cold(benchmark, lambda: history.series(
        load_rows(Store(big_store), "decode_tok_s", None), "decode_tok_s"))
    assert len(found) == RUNS and all(len(s.points) == SESSIONS for s in found)


def _tiny_gguf(path: Path) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_file_type(7)  # Q8_0
    w.add_context_length(4096)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "a"])
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_suite_expansion(benchmark, tmp_path, monkeypatch):
    """A 6,400-cell suite expanded into planned runs (the model resolved once, outside)."""
    from edgebench import api
    from edgebench.suites.expand import expand
    from edgebench.suites.spec import Suite

    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    model_file = str(_tiny_gguf(tmp_path / "tiny-q8_0.gguf"))
    suite = Suite(
        name="big", models=(model_file,),
        frameworks=("llama-cpp", "ort-genai", "openvino", "mlx"),
        precisions=("q4_k_m", "q8_0", "f16", "int4", "int8", "fp16", "4bit", "8bit"),
        prompt_tokens=tuple(range(16, 176, 16)), new_tokens=(8, 16, 32, 64, 128),
        threads=(1, 2, 4, 8))
    model = api.resolve(model_file, tmp_path / "cache")
    runs = benchmark(lambda: expand(suite, lambda _name: model))
    assert len(runs) == 4 * 8 * 10 * 5 * 4


def _candidates(n: int) -> list:
    from edgebench.decision import Candidate, Estimate

    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        decode = (10 + i % 40) * (1 + 0.05 * rng.standard_normal(SAMPLES))
        ttft = (100 + 7 * (i % 30)) * (1 + 0.05 * rng.standard_normal(SAMPLES))
        kld = 0.001 * (1 + i % 25)
        out.append(Candidate(
            framework=("llama-cpp", "ort-genai", "openvino", "mlx")[i % 4],
            precision=f"p{i}", device="cpu", model="m", name=f"candidate {i:03d}",
            decode_tok_s=Estimate(float(np.median(decode)), float(decode.min()),
                                  float(decode.max()), n=SAMPLES, samples=tuple(decode)),
            ttft_ms=Estimate(float(np.median(ttft)), float(ttft.min()), float(ttft.max()),
                             n=SAMPLES, samples=tuple(ttft)),
            peak_mem_mb=200.0 + 13 * (i % 50), model_bytes=(100 + 9 * (i % 60)) * 2**20,
            kld_mean=Estimate(kld, kld * 0.9, kld * 1.1), kld_floor=1e-8))
    return out


def test_rank_many_candidates(benchmark):
    """``edgebench.decision.rank`` over 300 candidates, balanced weights."""
    from edgebench.decision import rank

    cands = _candidates(300)
    rec = benchmark(lambda: rank(cands, weights="balanced", target="cpu"))
    assert rec.winner is not None
