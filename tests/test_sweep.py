"""The sweep loop: a row per run, written after each; skipped rows; resume; Ctrl-C."""

import pyarrow.parquet as pq
import pytest

from conftest import write_gguf
from edgebench import api
from edgebench.errors import RunnerUnavailable
from edgebench.harness.measure import record_for
from edgebench.results.store import Store


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """A suite over a tiny local GGUF with the child process replaced by an in-process fake."""
    model = write_gguf(tmp_path / "tiny.gguf", file_type=15)
    calls = []

    def fake_isolated(run, ctx):
        calls.append(run)
        if len(calls) == 99:
            raise KeyboardInterrupt
        assert len(run.prompt_ids) == run.prompt_tokens
        return record_for(run, ctx, "ok")

    monkeypatch.setattr(api, "run_isolated", fake_isolated)
    monkeypatch.setattr(api, "prompt_ids", lambda sha, path, n, cache: list(range(n)))
    suite = api.make_suite("smoke", models=[str(model)], new_tokens=[4, 8],
                           precisions=["q4_k_m", "int4"], threads=[1])
    return suite, Store(tmp_path / "store"), tmp_path / "cache", calls


def test_every_run_becomes_a_row(sweep):
    suite, store, cache, calls = sweep
    out = api.run_suite(suite, store, cache)
    assert sorted(out.counts.items()) == [("ok", 2), ("skipped", 2)]
    assert len(calls) == 2
    table = pq.read_table(out.path).to_pylist()
    assert len(table) == 4
    skipped = [r for r in table if r["status"] == "skipped"]
    assert all("does not run precision int4" in r["message"] for r in skipped)
    assert len({r["session_id"] for r in table}) == 1


def test_resume_skips_ok_runs(sweep):
    suite, store, cache, calls = sweep
    api.run_suite(suite, store, cache)
    out = api.run_suite(suite, store, cache, resume=True)
    assert len(out.resumed) == 2 and len(calls) == 2  # nothing measured again
    assert out.counts == {"skipped": 2}
    out = api.run_suite(suite, store, cache)  # without --resume everything runs again
    assert len(calls) == 4 and out.counts["ok"] == 2


def test_ctrl_c_keeps_finished_rows(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    calls.extend([None] * 97)  # the next measured run is call 99 -> KeyboardInterrupt
    out = api.run_suite(suite.override(new_tokens=[4, 8, 16]), store, cache)
    assert out.interrupted
    kept = pq.read_table(out.path).to_pylist()
    assert [r["status"] for r in kept] == ["ok"]
    assert len(kept) == len(out.rows) == 1


def test_unavailable_tokenizer_gives_unavailable_rows(sweep, monkeypatch):
    suite, store, cache, calls = sweep

    def no_tokenizer(*a):
        raise RunnerUnavailable("llama-cpp-python is not installed", extra="llama-cpp")

    monkeypatch.setattr(api, "prompt_ids", no_tokenizer)
    out = api.run_suite(suite, store, cache)
    assert out.counts == {"unavailable": 2, "skipped": 2} and not calls
    msgs = [r.message for r in out.rows if r.status == "unavailable"]
    assert all("pip install 'edgebench[llama-cpp]'" in m for m in msgs)


def test_foreign_store_file_is_skipped_not_blocking(sweep):
    """A file that is not of a schema this edgebench reads is named and skipped before
    measuring (never read, never deleted); the sweep runs."""
    suite, store, cache, calls = sweep
    store.root.mkdir(parents=True)
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1]}), store.root / "old.parquet")
    out = api.run_suite(suite, store, cache, resume=True)
    assert out.counts["ok"] == 2 and len(calls) == 2
    assert [p.name for p, _ in store.skipped] == ["old.parquet"]
    assert (store.root / "old.parquet").exists()


def test_missing_artifact_is_prepared_before_measuring(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    prepared = []

    def fake_prepared(run, cache_root):
        prepared.append(run.prepare)
        return api.replace(run, artifact=api.resolve_model(run.model_ref, cache_root)
                           .artifacts[0], prepare=None)

    monkeypatch.setattr(api, "_prepared", fake_prepared)
    out = api.run_suite(suite.override(precisions=["q8_0"], new_tokens=[4]), store, cache)
    assert prepared == ["gguf:q8_0"] and out.counts == {"ok": 1}
    assert calls[0].artifact is not None and calls[0].prepare is None


def test_failed_preparation_becomes_error_row(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    from edgebench.errors import RunFailed

    def broken(run, cache_root):
        raise RunFailed("llama.cpp quantizer failed (q8_0, code 1): bad tensor")

    monkeypatch.setattr(api, "_prepared", broken)
    out = api.run_suite(suite.override(precisions=["q8_0"], new_tokens=[4]), store, cache)
    (row,) = out.rows
    assert row.status == "error" and "preparing gguf:q8_0 failed" in row.message
    assert "bad tensor" in row.message and not calls


def test_every_runtime_and_precision_gets_the_same_prompt_ids(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    import dataclasses

    def fake_prepared(run, cache_root):  # pretend every artifact exists
        art = api.resolve_model(run.model_ref, cache_root).artifacts[0]
        return dataclasses.replace(run, artifact=dataclasses.replace(
            art, format=run.prepare.split(":")[0], precision=run.precision), prepare=None)

    monkeypatch.setattr(api, "_prepared", fake_prepared)
    seen = []
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, c: seen.append(src) or list(
        range(100, 100 + n)))
    mixed = suite.override(new_tokens=[4], precisions=["q4_k_m", "q8_0"]).override(
        include=({"framework": "ort-genai", "precision": "int4"},
                 {"framework": "mlx", "precision": "4bit"}))
    out = api.run_suite(mixed, store, cache)
    assert out.counts == {"ok": 4}
    assert {r.framework for r in calls} == {"llama-cpp", "ort-genai", "mlx"}
    assert {r.prompt_ids for r in calls} == {tuple(range(100, 100 + mixed.prompt_tokens[0]))}
    assert len(seen) == 1  # tokenized once per model, from the model's source
    assert len({r.prompt_ids_sha256 for r in out.rows}) == 1


@pytest.mark.parametrize("ref, out, n", [
    ([1, 2, 3, 4], [1, 2, 3, 4], 4), ([1, 2, 3, 4], [1, 2, 9, 4], 2),
    ([1, 2, 3], [7, 2, 3], 0), ([1, 2], [1, 2, 3], 2), ([], [1], 0),
])
def test_agreement(ref, out, n):
    assert api.agreement(ref, out) == n


def test_check_flags_a_runtime_that_diverges_at_once(sweep, monkeypatch):
    import dataclasses

    suite, store, cache, calls = sweep
    outputs = {"llama-cpp": [5, 6, 7, 8], "ort-genai": [5, 6, 9, 9], "mlx": [1, 2, 3, 4]}

    def fake_isolated(run, ctx):
        calls.append(run)
        return dataclasses.replace(record_for(run, ctx, "ok"),
                                   output_ids=outputs[run.framework])

    monkeypatch.setattr(api, "run_isolated", fake_isolated)
    monkeypatch.setattr(api, "_prepared", lambda run, c: dataclasses.replace(
        run, prepare=None, artifact=api.resolve_model(run.model_ref, c).artifacts[0]))
    model = str(suite.models[0])
    out = api.check(model, store, cache, new_tokens=4, prompt_tokens=8,
                    frameworks=("llama-cpp", "ort-genai", "mlx"))
    got = {r.framework: (r.precision, r.agree_tokens, r.agree_reference) for r in out.rows}
    assert got == {"llama-cpp": ("f16", 4, "llama-cpp:f16"),
                   "ort-genai": ("fp32", 2, "llama-cpp:f16"),
                   "mlx": ("fp16", 0, "llama-cpp:f16")}
    (flagged,) = [r for r in out.rows if r.agree_tokens == 0]
    assert "diverges from llama-cpp:f16 at the first token" in flagged.message
    stored = pq.read_table(out.path).to_pylist()
    assert sorted(r["agree_tokens"] for r in stored) == [0, 2, 4]


def _versioned(sweep, monkeypatch, version):
    """The sweep's fake child, recording ``version`` as the runtime's in its rows."""
    suite, store, cache, calls = sweep

    def fake_isolated(run, ctx):
        calls.append(run)
        return api.replace(record_for(run, ctx, "ok"), framework_version=version)

    monkeypatch.setattr(api, "run_isolated", fake_isolated)


def test_resume_measures_again_after_a_runtime_upgrade(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    monkeypatch.setattr(api, "installed_version", lambda fw: "0.3.16")
    _versioned(sweep, monkeypatch, "0.3.16")
    api.run_suite(suite, store, cache)
    out = api.run_suite(suite, store, cache, resume=True)
    assert len(out.resumed) == 2 and len(calls) == 2  # same version: the rows stand
    monkeypatch.setattr(api, "installed_version", lambda fw: "0.3.17")
    _versioned(sweep, monkeypatch, "0.3.17")
    out = api.run_suite(suite, store, cache, resume=True)
    assert not out.resumed and len(calls) == 4
    assert all("re-measured: llama-cpp 0.3.16 -> 0.3.17" in r.message
               for r in out.rows if r.status == "ok")
    assert len(api.run_suite(suite, store, cache, resume=True).resumed) == 2


def test_resume_measures_again_after_the_artifact_changed(sweep, monkeypatch):
    suite, store, cache, calls = sweep
    api.run_suite(suite, store, cache)
    # the stored rows say the artifact had another hash: it was re-made since
    import pyarrow as pa

    (path,) = store.files()
    table = pq.read_table(path)
    sha = pa.array(["0" * 64] * table.num_rows, pa.string())
    pq.write_table(table.set_column(table.schema.get_field_index("artifact_sha256"),
                                    "artifact_sha256", sha).replace_schema_metadata(
        table.schema.metadata), path)
    out = api.run_suite(suite, store, cache, resume=True)
    assert not out.resumed and len(calls) == 4
    assert all("re-measured: artifact changed (000000000000 ->" in r.message
               for r in out.rows if r.status == "ok")


def test_cooldown_rests_between_measured_cells_too(sweep, monkeypatch):
    """The suite's cooldown_s is slept before each measured cell after the first (and, in the
    child, between repetitions); never before the first cell nor before a skipped one."""
    import dataclasses

    suite, store, cache, calls = sweep
    slept = []
    monkeypatch.setattr(api.time, "sleep", slept.append)
    out = api.run_suite(dataclasses.replace(suite, cooldown_s=0.25), store, cache)
    assert sorted(out.counts.items()) == [("ok", 2), ("skipped", 2)]
    assert slept == [0.25]  # 2 measured cells: one rest, between them
    assert {r.cooldown_s for r in out.rows} == {0.25}  # recorded in every row
    slept.clear()
    api.run_suite(suite, store, cache)  # cooldown_s 0: no rest at all
    assert slept == []
