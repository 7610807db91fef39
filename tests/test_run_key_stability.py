"""run_key is the workload's identity: it must not change when the schema grows.

``tests/data/store-v2-row.parquet`` holds one real row written by edgebench at schema version
2 (before the validity columns of v3). Its run_key must be recomputed exactly from its identity
by today's code, and a store of today must read it; a new axis added later at its default value
must keep hashing to the same key (extend IDENTITY_FIELDS only in a way this test accepts).
"""

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq

from edgebench.results.schema import IDENTITY_FIELDS, SCHEMA_VERSION, run_key
from edgebench.results.store import Store
from edgebench.results.verify import read_version
from edgebench.suites.expand import PlannedRun

FIXTURE = Path(__file__).parent / "data" / "store-v2-row.parquet"


def _stored():
    (row,) = pq.read_table(FIXTURE).to_pylist()
    return row


def test_fixture_is_of_the_old_schema():
    version, _ = read_version(pq.read_schema(FIXTURE).metadata)
    assert version == 2 < SCHEMA_VERSION


def test_run_key_of_a_v2_row_is_unchanged():
    row = _stored()
    assert run_key({k: row[k] for k in IDENTITY_FIELDS}) == row["run_key"]


def test_planned_run_of_the_same_workload_has_the_stored_key():
    row = _stored()
    run = PlannedRun(
        model=row["model"], model_sha256=row["model_sha256"], framework=row["framework"],
        precision=row["precision"], device=row["device"], prompt_tokens=row["prompt_tokens"],
        new_tokens=row["new_tokens"], threads=row["threads"],
        options=json.loads(row["options"]), suite=row["suite"],
        repetitions=5, warmup=1, cooldown_s=0.0, timeout_s=900.0)
    assert run.run_key == row["run_key"]
    # the context depth (schema v8): depth 0 hashes exactly as rows made before it
    assert run.depth == 0 and run.identity["depth"] == 0
    identity = {k: row[k] for k in IDENTITY_FIELDS}
    assert run_key({**identity, "depth": 0}) == row["run_key"]
    deep = dataclasses.replace(run, depth=512)
    assert deep.run_key != row["run_key"]
    assert deep.run_key != dataclasses.replace(run, depth=2048).run_key
    # the KV-cache type and prompt file (schema v9): the runtime's default and the synthetic
    # prompt hash exactly as before
    assert run.identity["kv_cache"] is None and run.identity["prompt_file_sha256"] is None
    assert run_key({**identity, "kv_cache": None, "prompt_file_sha256": None}) == row["run_key"]
    assert dataclasses.replace(run, kv_cache="q8_0").run_key != row["run_key"]
    assert dataclasses.replace(run, prompt_file_sha256="0" * 16).run_key != row["run_key"]


def test_todays_store_reads_the_old_row_with_new_columns_null(tmp_path):
    import shutil

    (tmp_path / "s").mkdir()
    shutil.copy(FIXTURE, tmp_path / "s" / FIXTURE.name)
    df = Store(tmp_path / "s").query("SELECT run_key, decode_tok_s, peak_mem_mb, launches "
                                     "FROM runs")
    assert df["run_key"][0] == _stored()["run_key"]
    assert df["decode_tok_s"][0] > 0
    assert df["peak_mem_mb"].isna().all() and df["launches"].isna().all()


def test_a_new_axis_at_its_default_keeps_the_key(monkeypatch):
    from edgebench.results import schema

    row = _stored()
    identity = {k: row[k] for k in IDENTITY_FIELDS}
    monkeypatch.setattr(schema, "LATER_IDENTITY_DEFAULTS", {"context_depth": 0,
                                                            "kv_cache_type": "f16"})
    assert run_key({**identity, "context_depth": 0, "kv_cache_type": "f16"}) == row["run_key"]
    assert run_key(identity) == row["run_key"]  # rows that never had the axis
    assert run_key({**identity, "context_depth": 4096}) != row["run_key"]
    assert run_key({**identity, "kv_cache_type": "q8_0"}) != row["run_key"]
