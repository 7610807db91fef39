"""Store round trip, schema version checks, atomic session files, DuckDB queries."""

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_record
from edgebench import api
from edgebench.errors import ConfigError
from edgebench.results.schema import COLUMNS, SCHEMA_VERSION, arrow_schema
from edgebench.results.store import Store
from edgebench.results.verify import read_version


def test_round_trip_keeps_every_column(tmp_path):
    st = Store(tmp_path)
    rec = make_record(decode_tok_s=50.5, decode_tok_s_samples=[49.0, 50.5, 52.0],
                      token_ms_samples=[[1.0, 2.0], [1.5, 2.5]], output_ids=[1, 2, 3],
                      energy_method="none", message="fine")
    path = st.write_session("s1", [rec])
    assert path.name == "s1.parquet"
    assert read_version(pq.read_schema(path).metadata) == (SCHEMA_VERSION, None)
    back = pq.read_table(path).to_pylist()
    assert len(back) == 1
    assert back[0] == dataclasses.asdict(rec)
    assert tuple(pq.read_schema(path).names) == COLUMNS


def test_rewrite_is_atomic_and_leaves_no_temp(tmp_path):
    st = Store(tmp_path)
    st.write_session("s1", [make_record()])
    st.write_session("s1", [make_record(), make_record(run_key="k2")])
    assert [p.name for p in tmp_path.iterdir()] == ["s1.parquet"]
    assert pq.read_table(tmp_path / "s1.parquet").num_rows == 2


def test_duckdb_view_over_sessions(tmp_path):
    st = Store(tmp_path)
    st.write_session("a", [make_record(session_id="a", decode_tok_s=10.0)])
    st.write_session("b", [make_record(session_id="b", decode_tok_s=20.0, run_key="k2")])
    con = st.connect()
    assert con.execute("SELECT count(*), sum(decode_tok_s) FROM runs").fetchone() == (2, 30.0)


def test_empty_store_still_answers_queries(tmp_path):
    con = Store(tmp_path / "none").connect()
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert "decode_tok_s" in [d[0] for d in con.execute("SELECT * FROM runs").description]


def _write_foreign(path, version):
    table = pa.table({"x": [1]})
    meta = {} if version is None else {b"edgebench.schema_version": str(version).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


@pytest.mark.parametrize("version, reason", [
    (0, "schema version 0 is not one this edgebench reads"),
    (SCHEMA_VERSION + 1, f"written by a newer edgebench (schema v{SCHEMA_VERSION + 1}, this one "
                         f"reads up to v{SCHEMA_VERSION})"),
    (None, "no edgebench.schema_version"),
])
def test_other_schema_version_is_skipped_by_name(tmp_path, version, reason):
    """A file of a version this edgebench does not read never blocks a read: it is skipped,
    named, and the other files answer."""
    said = []
    st = Store(tmp_path, on_skip=said.append)
    st.write_session("good", [make_record()])
    _write_foreign(tmp_path / "old.parquet", version)
    assert st.connect().execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert st.check() == [tmp_path / "good.parquet"]
    assert [(p.name, r) for p, r in st.skipped] == [("old.parquet", st.skipped[0][1])]
    assert reason in st.skipped[0][1]
    assert len(said) == 1 and "old.parquet" in said[0] and reason in said[0]


def test_unreadable_store_file_is_skipped(tmp_path):
    (tmp_path / "junk.parquet").write_text("not parquet")
    st = Store(tmp_path)
    assert st.check() == []
    assert "not a readable Parquet file" in st.skipped[0][1]


def test_resume_index_only_ok_rows_of_this_machine(tmp_path):
    st = Store(tmp_path)
    st.write_session("s", [
        make_record(run_key="a", framework_version="1.0"),
        make_record(run_key="b", status="error"), make_record(run_key="c", machine_id="other"),
    ])
    assert set(st.resume_index("mach")) == {"a"}
    assert st.resume_index("mach")["a"]["framework_version"] == "1.0"


def test_results_latest_per_run_key(tmp_path):
    from datetime import datetime, timezone

    st = Store(tmp_path)
    old = make_record(session_id="a", decode_tok_s=1.0,
                      started_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    new = make_record(session_id="b", decode_tok_s=2.0,
                      started_at=datetime(2026, 1, 2, tzinfo=timezone.utc))
    st.write_session("a", [old])
    st.write_session("b", [new])
    assert list(api.results(st)["decode_tok_s"]) == [2.0]
    assert sorted(api.results(st, latest=False)["decode_tok_s"]) == [1.0, 2.0]
    assert list(api.results(st, latest=False, filters={"session_id": "a"})["decode_tok_s"]) == [1.0]


def test_sql_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="SQL error"):
        api.sql(Store(tmp_path), "SELEC 1")


def test_arrow_schema_types():
    s = arrow_schema()
    assert s.field("decode_tok_s_samples").type == pa.list_(pa.float64())
    assert s.field("token_ms_samples").type == pa.list_(pa.list_(pa.float64()))
    assert s.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert s.metadata[b"edgebench.schema_version"] == str(SCHEMA_VERSION).encode()


def test_version_1_file_is_upgraded_on_read(tmp_path):
    """A v1 file (no kind, no quality columns) reads with those columns null."""
    from edgebench.results.store import records_to_table

    table = records_to_table([make_record(run_key="old", decode_tok_s=40.0)])
    v1 = [c for c in table.column_names if c != "kind" and "kld" not in c and "ppl" not in c]
    pq.write_table(table.select(v1).replace_schema_metadata(
        {b"edgebench.schema_version": b"1"}), tmp_path / "v1.parquet")
    con = Store(tmp_path).connect()
    rows = con.execute("SELECT run_key, decode_tok_s, kind, ppl, kld_mean FROM runs").fetchall()
    assert rows == [("old", 40.0, None, None, None)]


def test_kind_joins_run_key_only_when_not_speed():
    from edgebench.results.schema import run_key

    ident = {"model_sha256": "a", "framework": "llama-cpp", "precision": "q8_0"}
    assert run_key(ident) == run_key({**ident, "kind": "speed"}) == run_key({**ident,
                                                                            "kind": None})
    assert run_key({**ident, "kind": "quality"}) != run_key(ident)


def test_a_v3_file_reads_with_the_v4_columns_null(tmp_path):
    """Schema v4 added the per-chunk quality columns; a v3 file reads with them null."""
    import shutil

    fixture = Path(__file__).parent / "data" / "store-v3-row.parquet"
    shutil.copy(fixture, tmp_path / "v3.parquet")
    st = Store(tmp_path)
    df = st.query("SELECT schema_version, kind, kld_mean, chunk_nll, chunk_kld FROM runs")
    assert not st.skipped
    assert df.to_dict("records") == [{"schema_version": 3, "kind": "quality", "kld_mean": 0.01,
                                      "chunk_nll": None, "chunk_kld": None}]
