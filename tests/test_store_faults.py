"""The store under faults: unwritable or full stores (by fault injection through the writer
seam: sessions run as root, so chmod proves nothing), rescue files and `store recover`, bad
store files that are skipped and quarantined, and the `sql` sandbox."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_record, run_main, write_gguf
from edgebench import api
from edgebench.errors import ConfigError, StoreError
from edgebench.harness.measure import record_for
from edgebench.results import store as store_mod
from edgebench.results import verify
from edgebench.results.fsio import durable_write
from edgebench.results.schema import SCHEMA_VERSION
from edgebench.results.store import Store, records_to_table

V2_ROW = Path(__file__).parent / "data" / "store-v2-row.parquet"


def failing(code: int, *, allow=lambda path: False):
    """A writer seam raising ``OSError(code)`` except for paths ``allow`` lets through."""
    def write(path: Path, data: bytes) -> None:
        if allow(path):
            return durable_write(path, data)
        raise OSError(code)
    return write


@pytest.fixture
def fake_runs(tmp_path, monkeypatch):
    """CLI args of a two-run sweep over a tiny GGUF; runs are faked in process (``calls``)."""
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    model = write_gguf(tmp_path / "tiny.gguf", file_type=15)
    calls = []

    def fake_isolated(run, ctx, *a, **k):
        calls.append(run)
        return record_for(run, ctx, "ok", "fake")

    monkeypatch.setattr(api, "run_isolated", fake_isolated)
    monkeypatch.setattr(api, "prompt_ids", lambda sha, path, n, cache: list(range(n)))
    args = ["run", "--model", str(model), "--precision", "q4_k_m", "--threads", "1",
            "--new-tokens", "4", "--new-tokens", "8", "--quiet", "--format", "csv"]
    return args, calls


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# --- refused before measuring ----------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_unwritable_store_is_refused_before_measuring(fake_runs, tmp_path, monkeypatch, capsys,
                                                     code):
    args, calls = fake_runs
    monkeypatch.setattr(store_mod, "write_bytes", failing(code))
    status, _, err = run_main(args, capsys)
    line = one_error_line(err)
    assert status == 2 and not calls
    assert line == f"error: cannot write results to {tmp_path / 'store'}: {os.strerror(code)}"


def test_store_path_that_is_a_file(fake_runs, tmp_path, monkeypatch, capsys):
    args, calls = fake_runs
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("EDGEBENCH_STORE", str(tmp_path / "afile"))
    status, _, err = run_main(args, capsys)
    assert status == 2 and not calls
    assert "afile: it is a file, not a folder" in one_error_line(err)
    status, _, err = run_main(["results"], capsys)  # reads say so too
    assert status == 2 and "is a file, not a folder" in one_error_line(err)
    monkeypatch.setenv("EDGEBENCH_STORE", str(tmp_path / "afile" / "below"))
    status, _, err = run_main(args, capsys)
    assert status == 2 and not calls
    assert one_error_line(err).endswith(f"afile/below: {os.strerror(errno.ENOTDIR)}")


def test_store_path_not_utf8(fake_runs, tmp_path, monkeypatch, capsys):
    args, calls = fake_runs
    bad = os.fsdecode(os.fsencode(tmp_path) + b"/x\xff")  # '.../x\udcff'
    with pytest.raises(StoreError, match="not valid UTF-8"):
        Store(os.fsencode(bad)).ensure_writable()
    status, _, err = run_main([*args, "--store", bad], capsys)
    line = one_error_line(err)
    assert status == 2 and not calls
    assert "x\\xff: the path is not valid UTF-8" in line and not os.path.exists(bad)


def test_quality_sweep_refuses_an_unwritable_store(tmp_path):
    from edgebench.quality_sweep import run_quality

    st = Store(tmp_path / "s", writer=failing(errno.EROFS))
    with pytest.raises(StoreError, match="Read-only file system"):
        run_quality(api.make_suite("smoke"), st, tmp_path / "cache")


# --- a failed write after measuring: rescue, then recover ----------------------------------

def _row_count(capsys) -> int:
    status, out, err = run_main(["sql", "SELECT count(*) AS n FROM runs", "--format", "csv"],
                                capsys)
    assert status == 0, err
    return int(out.split()[1])


def test_full_disk_after_first_run_rescues_the_row(fake_runs, tmp_path, monkeypatch, capsys):
    args, calls = fake_runs
    monkeypatch.setattr(store_mod, "write_bytes", failing(
        errno.ENOSPC, allow=lambda p: p.name.startswith(".edgebench-probe")))
    status, _, err = run_main(args, capsys)
    line = one_error_line(err)
    assert status == 2 and len(calls) == 1  # the sweep stopped at the first failed write
    rescue_dir = tmp_path / "cache" / "rescue"  # the store's own folder is "full" too
    (saved,) = rescue_dir.glob("*.parquet")
    assert line == (f"error: cannot write results to {tmp_path}/store/{saved.name}: No space "
                    f"left on device; 1 measured row saved to {saved} (bring them in with: "
                    f"edgebench store recover {saved})")
    assert pq.read_table(saved).num_rows == 1 and not list((tmp_path / "store").glob("*.par*"))

    monkeypatch.setattr(store_mod, "write_bytes", durable_write)  # the disk has room again
    status, out, err = run_main(["store", "recover", "--format", "csv"], capsys)
    assert status == 0 and "recovered" in out and not saved.exists(), err
    assert _row_count(capsys) == 1
    status, _, err = run_main(["store", "recover"], capsys)  # twice: nothing to do
    assert status == 0 and "no rescued rows" in err and _row_count(capsys) == 1


def test_failed_second_write_keeps_both_rows_once(fake_runs, tmp_path, monkeypatch, capsys):
    """The session file holds run 1, the rescue file runs 1 and 2 (beside the store, whose
    .rescue folder can still be written): recovering merges them without doubling run 1."""
    args, calls = fake_runs
    writes = []

    def second_fails(path: Path, data: bytes) -> None:
        if path.parent.name == "store" and path.name.endswith(".parquet.tmp"):
            writes.append(path)
            if len(writes) > 1:
                raise OSError(errno.EIO)
        durable_write(path, data)

    monkeypatch.setattr(store_mod, "write_bytes", second_fails)
    status, _, err = run_main(args, capsys)
    assert status == 2 and len(calls) == 2
    (saved,) = (tmp_path / "store" / ".rescue").glob("*.parquet")
    assert "Input/output error; 2 measured rows saved to" in one_error_line(err)
    status, _, err = run_main(["store", "check"], capsys)
    assert status == 0 and "1 rescue file(s) hold measured rows" in err
    monkeypatch.setattr(store_mod, "write_bytes", durable_write)
    assert _row_count(capsys) == 1
    status, _, err = run_main(["store", "recover", str(saved)], capsys)
    assert status == 0, err
    assert _row_count(capsys) == 2 and not saved.exists()
    assert len(list((tmp_path / "store").glob("*.parquet"))) == 1


def test_api_store_error_names_the_rescue_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    st = Store(tmp_path / "s", writer=failing(errno.EROFS))
    with pytest.raises(StoreError) as e:
        st.write_session("sess", [make_record(session_id="sess")])
    assert e.value.exit_code == 2 and e.value.rescue
    assert Path(e.value.rescue) == tmp_path / "cache" / "rescue" / "sess.parquet"
    assert "--store" in str(e.value)  # not the default store: the hint names it
    with pytest.raises(StoreError, match="Read-only"):  # nothing measured: nothing to rescue
        st.write_session("empty", [])


def test_quality_rows_are_rescued_too(tmp_path, monkeypatch):
    from edgebench import quality_sweep

    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    out = api.RunOutcome("q1", None)
    with pytest.raises(StoreError) as e:
        quality_sweep._keep(out, Store(tmp_path / "s", writer=failing(errno.ENOSPC)),
                            make_record(session_id="q1", kind="quality"))
    assert pq.read_table(e.value.rescue).column("kind").to_pylist() == ["quality"]


def test_recover_refuses_a_bad_rescue_file(tmp_path, capsys):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    status, _, err = run_main(["store", "recover", str(junk)], capsys)
    assert status == 2 and "not a readable rescue file" in one_error_line(err)
    assert junk.exists()


def _rescue_file(folder: Path, store: Path, session: str = "r1") -> Path:
    """A genuine rescue file (rows of ``session``) of ``store``, saved into ``folder``."""
    from edgebench.results import rescue

    folder.mkdir(parents=True, exist_ok=True)
    table = records_to_table([make_record(session_id=session, run_key="kr")])
    meta = {**(table.schema.metadata or {}), rescue.STORE_KEY: os.fsencode(
        os.path.realpath(store))}
    path = folder / f"{session}.parquet"
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


@pytest.mark.parametrize("where", ["itself", "symlink", "other-store", "other-store-force"])
def test_recover_never_takes_a_session_file_of_a_store(tmp_path, capsys, where):
    """Recovering removes its source: a store's own session file (given directly, through a
    link, or of another store) is refused whole, nothing moved or removed."""
    store, other = tmp_path / "store", tmp_path / "other"
    Store(store).write_session("s1", [make_record(session_id="s1")])
    Store(other).write_session("o1", [make_record(session_id="o1", run_key="ko")])
    Store(other).write_session("o2", [make_record(session_id="o2", run_key="ko2")])
    src = {"itself": store / "s1.parquet", "symlink": tmp_path / "link.parquet",
           "other-store": other / "o1.parquet", "other-store-force": other / "o1.parquet"}[where]
    if where == "symlink":
        src.symlink_to(store / "s1.parquet")
    before = {p: p.read_bytes() for d in (store, other) for p in d.glob("*.parquet")}
    force = ["--force"] if where.endswith("force") else []
    status, _, err = run_main(["store", "recover", "--store", str(store), *force, str(src)],
                              capsys)
    assert status == 2 and "is a session file of the store" in one_error_line(err)
    assert {p: p.read_bytes() for d in (store, other) for p in d.glob("*.parquet")} == before


def test_recover_wants_the_rescue_key_unless_forced(tmp_path, capsys):
    """A lone copy of a session file (no rescue metadata): refused without --force, brought in
    with it; a real rescue file needs no flag."""
    store = tmp_path / "store"
    Store(tmp_path / "elsewhere").write_session("c1", [make_record(session_id="c1")])
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.move(tmp_path / "elsewhere" / "c1.parquet", copy / "c1.parquet")
    status, _, err = run_main(["store", "recover", "--store", str(store), str(copy /
                                                                               "c1.parquet")],
                              capsys)
    assert status == 2 and "not a rescue file (no edgebench.rescue_store" in one_error_line(err)
    assert (copy / "c1.parquet").exists()
    status, out, err = run_main(["store", "recover", "--store", str(store), "--force",
                                 str(copy / "c1.parquet"), "--format", "csv"], capsys)
    assert status == 0 and "recovered" in out, err
    assert not (copy / "c1.parquet").exists() and (store / "c1.parquet").exists()
    saved = _rescue_file(store / ".rescue", store)
    status, out, err = run_main(["store", "recover", "--store", str(store), str(saved)], capsys)
    assert status == 0 and not saved.exists() and (store / "r1.parquet").exists(), err
    elsewhere = _rescue_file(tmp_path / "cache" / "rescue", store, "r2")
    _rescue_file(tmp_path / "cache" / "rescue", store, "r3")  # a rescue folder holds many
    status, out, err = run_main(["store", "recover", "--store", str(store), str(elsewhere)],
                                capsys)
    assert status == 0 and not elsewhere.exists(), err


def test_named_pipes_in_the_store_never_block_a_command(tmp_path, capsys):
    """A ``*.parquet`` that is a named pipe (in the store, its .rescue folder, or given to
    recover): reading it would block for ever; it is bad, skipped or refused by name."""
    store = tmp_path / "store"
    Store(store).write_session("good", [make_record()])
    os.mkfifo(store / "pipe.parquet")
    (store / ".rescue").mkdir()
    os.mkfifo(store / ".rescue" / "pipe.parquet")
    status, out, err = run_main(["store", "check", "--format", "csv"], capsys)
    assert status == 1 and "pipe.parquet,,,bad,not a regular file" in out, out
    status, out, err = run_main(["results", "--format", "csv"], capsys)
    assert status == 0 and "skipped store file" in err and "pipe.parquet" in err, err
    status, _, err = run_main(["store", "recover"], capsys)
    assert status == 0 and "no rescued rows" in err, err
    status, _, err = run_main(["store", "recover", str(store / ".rescue" / "pipe.parquet")],
                              capsys)
    assert status == 2 and "is not a regular file" in one_error_line(err)


def test_text_that_is_not_utf8_is_stored_escaped(tmp_path):
    """A model path named in bytes that are not UTF-8 (a lone surrogate in Python) and a
    surrogate from anywhere else: the row is stored, its text escaped, never lost."""
    st = Store(tmp_path / "s")
    path = st.write_session("s", [make_record(model="m\udcff.gguf", message="x\ud800",
                                              flags=["f\udcfe"])])
    (row,) = pq.read_table(path).to_pylist()
    assert (row["model"], row["message"], row["flags"]) == ("m\\xff.gguf", "x\\ud800",
                                                            ["f\\xfe"])


def test_a_value_that_does_not_fit_its_column_is_nulled_not_the_row_lost(tmp_path):
    st = Store(tmp_path / "s")
    path = st.write_session("s", [make_record(), make_record(run_key="k2", threads=2**70,
                                                             message="measured")])
    rows = pq.read_table(path).to_pylist()
    assert [r["threads"] for r in rows] == [2, None]
    assert rows[1]["message"].startswith("measured; not stored (not of the column's type): "
                                         "threads='1180591620717411303424'")


def test_cli_run_keeps_a_row_whose_text_is_not_utf8(fake_runs, tmp_path, monkeypatch, capsys):
    """Whatever text a measured row holds, the sweep's rows are written (here a runtime's
    version with a lone surrogate)."""
    import dataclasses

    args, calls = fake_runs
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a, **k: calls.append(run) or
                        dataclasses.replace(record_for(run, ctx, "ok"),
                                            framework_version="1.0\udcff"))
    status, out, err = run_main(args, capsys)
    assert status == 0 and len(calls) == 2, err
    (path,) = (tmp_path / "store").glob("*.parquet")
    rows = pq.read_table(path).to_pylist()
    assert [r["framework_version"] for r in rows] == ["1.0\\xff"] * 2


# --- bad store files never block commands ---------------------------------------------------

def _session(path: Path, n: int = 3, checksum: bool = True) -> Path:
    table = records_to_table([make_record(run_key=f"k{i}", session_id=path.stem,
                                          decode_tok_s=float(i), decode_tok_s_samples=[1.0] * 5)
                              for i in range(n)])
    pq.write_table(table, path, write_page_checksum=checksum)
    return path


def _corrupt_pages(path: Path) -> None:
    """Overwrite bytes in the middle of the data pages; the footer stays intact."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    mid = (len(data) - footer) // 2
    data[mid - 32:mid + 32] = b"\xa5" * 64
    path.write_bytes(bytes(data))


def _with_meta(path: Path, version: bytes | None, **columns) -> Path:
    table = records_to_table([make_record(session_id=path.stem)])
    for name, values in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values))
    meta = {} if version is None else {b"edgebench.schema_version": version}
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


BAD_FILES = {
    "damaged-pages": (lambda p: _corrupt_pages(_session(p)), "damaged data pages"),
    "damaged-pages-no-crc": (lambda p: _corrupt_pages(_session(p, checksum=False)), "damaged"),
    "version-not-a-number": (lambda p: _with_meta(p, b"three"),
                             "schema version 'three' is not a number"),
    "newer-version": (lambda p: _with_meta(p, str(SCHEMA_VERSION + 1).encode()),
                      f"written by a newer edgebench (schema v{SCHEMA_VERSION + 1}, this one "
                      f"reads up to v{SCHEMA_VERSION})"),
    "no-version": (lambda p: _with_meta(p, None), "no edgebench.schema_version"),
    "ttft-as-text": (lambda p: _with_meta(p, str(SCHEMA_VERSION).encode(), ttft_ms=["fast"]),
                     "column ttft_ms is string, expected double"),
    "not-parquet": (lambda p: p.write_bytes(os.urandom(4096)), "not a readable Parquet file"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable Parquet file"),
    "no-run-key": (lambda p: pq.write_table(records_to_table([make_record()]).drop_columns(
        ["run_key"]), p), "missing column run_key"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_is_skipped_and_named(tmp_path, kind):
    make, reason = BAD_FILES[kind]
    _session(tmp_path / "good.parquet")
    make(tmp_path / "bad.parquet")
    said = []
    st = Store(tmp_path, on_skip=said.append)
    for _ in range(2):
        assert st.query("SELECT count(*) AS n FROM runs")["n"].tolist() == [3]
    assert len(said) == 1 and reason in said[0] and "bad.parquet" in said[0]
    assert "edgebench store check --quarantine moves it aside" in said[0]
    assert [(p.name, reason in r) for p, r in st.skipped] == [("bad.parquet", True)]


def test_older_versions_stay_readable(tmp_path):
    shutil.copy(V2_ROW, tmp_path / "v2.parquet")
    _with_meta(tmp_path / "widened.parquet", str(SCHEMA_VERSION).encode(),
               threads=pa.array([2], pa.int32()), ttft_ms=pa.array([1.5], pa.float32()))
    st = Store(tmp_path)
    df = st.query("SELECT schema_version, peak_mem_mb, threads, ttft_ms FROM runs "
                  "ORDER BY schema_version")
    assert not st.skipped and df["schema_version"].tolist() == [2, SCHEMA_VERSION]
    assert df["ttft_ms"].tolist()[1] == 1.5


def test_verification_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    reads = []
    real = verify._verify
    monkeypatch.setattr(verify, "_verify", lambda p: reads.append(p.name) or real(p))
    st = Store(tmp_path)
    st.write_session("a", [make_record(session_id="a")])
    for _ in range(3):
        st.query("SELECT * FROM runs")
    assert reads == ["a.parquet"]
    st.write_session("a", [make_record(session_id="a"), make_record(session_id="a",
                                                                    run_key="k2")])
    assert len(st.query("SELECT * FROM runs")) == 2 and reads == ["a.parquet"] * 2


@pytest.mark.parametrize("args", [
    ["results", "--format", "csv"], ["results", "--all", "--format", "csv"],
    ["sql", "SELECT count(*) FROM runs"], ["report", "--out", "r.md", "--format", "md"],
    ["recommend", "--device", "cpu", "--format", "json"],
])
def test_commands_warn_once_per_bad_file(tmp_path, capsys, args):
    store = tmp_path / "store"
    Store(store).write_session("good", [make_record(decode_tok_s=5.0)])
    for kind in ("damaged-pages", "newer-version", "not-parquet"):
        BAD_FILES[kind][0](store / f"{kind}.parquet")
    status, _, err = run_main(args, capsys)
    assert "Traceback" not in err and status in (0, 1), err
    for kind in ("damaged-pages", "newer-version", "not-parquet"):
        assert err.count(f"warning: skipped store file {store}/{kind}.parquet: ") == 1, err


def test_run_resume_skips_bad_files(fake_runs, tmp_path, capsys):
    args, calls = fake_runs
    store = tmp_path / "store"
    store.mkdir()
    BAD_FILES["damaged-pages"][0](store / "bad.parquet")
    status, _, err = run_main([*args, "--resume"], capsys)
    assert status == 0 and len(calls) == 2 and err.count("warning: skipped store file") == 1
    status, _, err = run_main([*args, "--resume"], capsys)
    assert status == 0 and len(calls) == 2  # resumed from the good rows


def test_store_check_and_quarantine(tmp_path, capsys):
    store = tmp_path / "store"
    Store(store).write_session("good", [make_record()])
    shutil.copy(V2_ROW, store / "v2.parquet")
    BAD_FILES["newer-version"][0](store / "newer.parquet")
    BAD_FILES["damaged-pages"][0](store / "damaged.parquet")
    status, out, _ = run_main(["store", "check", "--format", "csv"], capsys)
    lines = out.strip().splitlines()
    assert status == 1 and lines[0] == "file,rows,schema,status,reason"
    v = SCHEMA_VERSION
    assert lines[1].startswith(f"damaged.parquet,3,{v},bad,damaged data pages")
    assert lines[2] == f"good.parquet,1,{v},ok,"
    assert lines[3].startswith(f'newer.parquet,1,{v + 1},bad,"written by a newer edgebench')
    assert lines[4] == "v2.parquet,1,2,ok,"
    status, out, err = run_main(["store", "check", "--quarantine", "--format", "csv"], capsys)
    assert status == 1 and out.count(",quarantined,") == 2 and "moved 2 bad file(s)" in err
    assert sorted(p.name for p in (store / "quarantine").iterdir()) == ["damaged.parquet",
                                                                         "newer.parquet"]
    status, out, _ = run_main(["store", "check", "--format", "csv"], capsys)
    assert status == 0 and ",bad," not in out
    status, out, _ = run_main(["store", "--help"], capsys)
    assert status == 0 and "check" in out and "recover" in out


# --- sql: sandboxed, robust output, --limit ------------------------------------------------

@pytest.fixture
def sql_store(tmp_path):
    store = tmp_path / "store"
    Store(store).write_session("good", [make_record(), make_record(run_key="k2")])
    return store, {p.name: p.read_bytes() for p in store.iterdir()}


@pytest.mark.parametrize("query", [
    "COPY (SELECT 1) TO '{out}/x.parquet'",
    "COPY (SELECT 1) TO '{store}/x.parquet'",
    "COPY (SELECT * FROM runs LIMIT 0) TO '{store}/good.parquet' (FORMAT parquet)",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('{store}/good.parquet')",
    "SELECT * FROM read_parquet('{store}/good.parquet')",
    "SELECT * FROM glob('/etc/*')",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "ATTACH '{out}/db.duckdb'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "EXPORT DATABASE '{out}/dump'",
])
def test_sql_sandbox_refuses_files_and_settings(sql_store, tmp_path, capsys, query):
    store, before = sql_store
    q = query.format(store=store, out=tmp_path)
    status, _, err = run_main(["sql", q], capsys)
    assert status == 2 and one_error_line(err).startswith("error: SQL error: "), err
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    assert not any((tmp_path / n).exists() for n in ("x.parquet", "db.duckdb", "dump"))


def test_sql_runs_view_works_in_the_sandbox_and_unsafe_lifts_it(sql_store, tmp_path, capsys):
    assert _row_count(capsys) == 2
    status, _, err = run_main(["sql", "--unsafe", f"COPY (SELECT 1 AS a) TO "
                                                  f"'{tmp_path}/x.csv'"], capsys)
    assert status == 0 and (tmp_path / "x.csv").read_text().split() == ["a", "1"], err
    status, out, _ = run_main(["sql", "--help"], capsys)
    assert "--unsafe" in out and "sandbox" in out


@pytest.mark.parametrize("query, shows", [
    ("SELECT 'infinity'::TIMESTAMP AS t", "infinity"),
    ("SELECT '-infinity'::TIMESTAMPTZ AS t", "-infinity"),
    ("SELECT 'infinity'::DATE AS d", "infinity"),
    ("SELECT ['infinity'::TIMESTAMP] AS l", "[infinity]"),
    ("SELECT union_value(k := 7) AS u", "7"),
    ("SELECT 1 AS a UNION ALL SELECT 'x'", "x"),
    ("SELECT INTERVAL 1 DAY AS i", "1 day"),  # a pandas DateOffset, which to_json cannot write
    ("SELECT [INTERVAL 2 HOUR] AS l", "02:00:00"),
    ("SELECT {'a': INTERVAL 3 MINUTE} AS s", "00:03:00"),
])
@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_sql_output_of_any_type(capsys, query, shows, fmt):
    """Every query here is valid SQL: each must print, in every format (exit 0)."""
    status, out, err = run_main(["sql", query, "--format", fmt], capsys)
    assert status == 0 and "Traceback" not in err and "error" not in err, err
    if not (fmt == "table" and "[" in shows):  # rich reads "[infinity]" as markup (output.py)
        assert shows in out, out


def test_sql_that_duckdb_refuses_is_one_line(capsys):
    """Not valid SQL for DuckDB (no common type for 'x' and a UNION): one ``SQL error`` line."""
    query = "SELECT 1 AS a UNION ALL SELECT 'x' UNION ALL SELECT union_value(k := 2)"
    status, _, err = run_main(["sql", query], capsys)
    assert status == 2 and one_error_line(err).startswith("error: SQL error: ")


@pytest.mark.parametrize("fmt, shows", [
    ("csv", '"{""a"": 1, ""b"": [1, 2]}"'),
    ("table", "{a: 1, b: [1, 2]}"),
    ("md", "{a: 1, b: [1, 2]}"),
    ("json", '"a":1'),
])
def test_sql_struct_cells_print_as_structs(capsys, fmt, shows):
    """A struct (dict) cell: JSON in CSV as list cells are, never Python's repr; its keys and
    values in a table (not its keys alone)."""
    status, out, err = run_main(["sql", "SELECT {'a': 1, 'b': [1, 2]} AS s", "--format", fmt],
                                capsys)
    assert status == 0, err
    assert shows in out.replace(" ", "") if fmt == "json" else shows in out, out
    assert "array(" not in out


def test_sql_output_keeps_ordinary_types(capsys):
    from edgebench.results.sqlsafe import to_frame

    df = to_frame(pa.table({"a": [1], "t": pa.array([0], pa.timestamp("us", tz="UTC"))}))
    assert str(df["a"].dtype) == "int64" and str(df["t"].dtype).startswith("datetime64")


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_results_limit_must_be_positive(sql_store, capsys, limit):
    status, _, err = run_main(["results", "--limit", limit], capsys)
    assert status == 2 and "--limit" in one_error_line(err)
    with pytest.raises(ConfigError, match="--limit must be at least 1"):
        api.results(Store(sql_store[0]), limit=int(limit))
    status, out, _ = run_main(["results", "--all", "--limit", "1", "--format", "csv"], capsys)
    assert status == 0 and len(out.strip().splitlines()) == 2
