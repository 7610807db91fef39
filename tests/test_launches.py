"""--launches: a cell measured in several fresh processes, interleaved, merged into one row."""

import json

import pyarrow.parquet as pq
import pytest

from conftest import make_record, write_gguf
from edgebench import api
from edgebench.harness.launches import merge
from edgebench.harness.measure import record_for
from edgebench.results.store import Store


def _launch(decode, ttft, **kw):
    return make_record(
        decode_tok_s_samples=decode, ttft_ms_samples=ttft,
        prefill_tok_s_samples=[8000 / t for t in ttft], tpot_ms_samples=[1000 / d for d in decode],
        e2e_s_samples=[1.0] * len(decode), token_ms_samples=[[1.0, 2.0]] * len(decode),
        load_s=kw.pop("load_s", 1.0), peak_mem_mb=kw.pop("peak_mem_mb", 100.0),
        output_ids=[1, 2], **kw)


def test_merge_pools_samples_and_keeps_launch_index():
    a = _launch([10.0, 12.0], [100.0, 110.0], load_s=1.0, peak_mem_mb=300.0)
    b = _launch([20.0, 14.0, 16.0], [90.0, 95.0, 200.0], load_s=3.0, peak_mem_mb=310.0)
    row = merge([a, b])
    assert row.decode_tok_s_samples == [10.0, 12.0, 20.0, 14.0, 16.0]
    assert row.sample_launch == [0, 0, 1, 1, 1]
    assert row.launches == 2
    assert row.decode_tok_s == 14.0  # median of 10 12 14 16 20
    assert row.decode_tok_s_min == 10.0 and row.decode_tok_s_max == 20.0
    assert row.decode_tok_s_mean == pytest.approx(14.4)
    assert row.ttft_ms == 100.0  # median of 90 95 100 110 200
    assert row.load_s == 2.0  # median over launches
    assert row.peak_mem_mb == 310.0  # a peak is the largest launch's
    assert len(row.token_ms_samples) == 5
    assert row.message is None and row.flags is None


def test_merge_names_failed_launches_and_keeps_the_ok_ones():
    a = _launch([10.0], [100.0])
    bad = make_record(status="error", message="killed by SIGSEGV")
    c = _launch([30.0], [80.0])
    row = merge([a, bad, c])
    assert row.status == "ok" and row.launches == 2
    assert row.sample_launch == [0, 2]
    assert row.message == "launch 2 error: killed by SIGSEGV"
    assert row.flags == ["launch-failed"]


def test_merge_with_no_ok_launch_is_the_last_failure():
    row = merge([make_record(status="error", message="a"),
                 make_record(status="timeout", message="b")])
    assert (row.status, row.message, row.launches) == ("timeout", "b", 2)


def test_merge_flags_busy_launches_and_differing_outputs():
    a = _launch([10.0], [100.0], machine_busy=False, busy_evidence=json.dumps({"x": 0}))
    b = _launch([10.0], [100.0], machine_busy=True, busy_evidence=json.dumps({"x": 1}),
                flags=["machine-busy"])
    b.output_ids = [1, 3]
    row = merge([a, b])
    assert row.machine_busy is True
    assert json.loads(row.busy_evidence) == [{"x": 0}, {"x": 1}]
    assert row.flags == ["machine-busy", "output-differs-between-launches"]


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """Two cells over a tiny GGUF; the child replaced by an in-process fake that records order."""
    model = write_gguf(tmp_path / "tiny.gguf", file_type=15)
    calls = []

    def fake_isolated(run, ctx):
        calls.append(run.new_tokens)
        rec = record_for(run, ctx, "ok")
        n = len(calls)
        rec.decode_tok_s_samples = [float(n), float(n) + 0.5]
        rec.ttft_ms_samples = [100.0, 100.0]
        rec.framework_version = "1.0"
        return rec

    monkeypatch.setattr(api, "run_isolated", fake_isolated)
    monkeypatch.setattr(api, "prompt_ids", lambda sha, path, n, cache: list(range(n)))
    suite = api.make_suite("smoke", models=[str(model)], new_tokens=[4, 8],
                           precisions=["q4_k_m"], threads=[1])
    return suite, Store(tmp_path / "store"), tmp_path / "cache", calls


def test_launches_interleave_cells_and_give_one_row_per_cell(sweep):
    suite, store, cache, calls = sweep
    out = api.run_suite(suite, store, cache, launches=3)
    assert calls == [4, 8, 4, 8, 4, 8]  # launch 1 of every cell, then launch 2, then 3
    rows = pq.read_table(out.path).to_pylist()
    assert len(rows) == 2
    first = next(r for r in rows if r["new_tokens"] == 4)
    assert first["launches"] == 3
    assert first["sample_launch"] == [0, 0, 1, 1, 2, 2]
    assert first["decode_tok_s_samples"] == [1.0, 1.5, 3.0, 3.5, 5.0, 5.5]


def test_one_launch_is_the_default_and_records_it(sweep):
    suite, store, cache, calls = sweep
    out = api.run_suite(suite, store, cache)
    assert len(calls) == 2
    assert all(r.launches == 1 and r.sample_launch == [0, 0] for r in out.rows)


def test_launches_below_one_refused(sweep):
    from edgebench.errors import ConfigError

    suite, store, cache, _ = sweep
    with pytest.raises(ConfigError, match="at least 1"):
        api.run_suite(suite, store, cache, launches=0)


def test_launches_flag_on_the_cli(capsys):
    from conftest import run_main

    code, _, err = run_main(["run", "--launches", "0"], capsys)
    assert code == 2 and "--launches" in err and "Traceback" not in err
