"""The append-only Parquet store: one file per session, written durably; a DuckDB view.

Every file carries ``edgebench.schema_version`` in its Parquet metadata. Reads verify each file
first (``results.verify``): a damaged file, or one of a version this edgebench does not read, is
skipped and reported by name (``Store.skipped``, ``on_skip``), never read silently and never
blocking a command. Writes are checked before anything is measured (``ensure_writable``); a
write that still fails saves the session's rows to a rescue file (``results.rescue``) and
raises a ``StoreError`` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa

from edgebench.errors import StoreError
from edgebench.results import rescue, sqlsafe
from edgebench.results.fsio import (
    durable_write,
    encoding_problem,
    fsync_dir,
    os_reason,
    parquet_bytes,
    safe_text,
    shown,
    unlink_quietly,
)
from edgebench.results.schema import RunRecord, arrow_schema
from edgebench.results.verify import FileCheck, verify_file

VIEW = "runs"
QUARANTINE_DIR = "quarantine"
#: The writer seam: every file the store writes (session files, the probe, rescue files beside
#: it) goes through this function, looked up at call time; tests replace it (or pass
#: ``Store(writer=...)``) to simulate a read-only or full disk, which root cannot get by chmod.
write_bytes: Callable[[Path, bytes], None] = durable_write


def _safe(value):
    """A row's value with its text made valid UTF-8 (``fsio.safe_text``): a model path named
    in bytes that are not UTF-8 is stored escaped, never lost to an encoding error."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


def records_to_table(records: Iterable[RunRecord]) -> pa.Table:
    """Rows -> an Arrow table of the store's schema (text columns escaped where they are not
    valid UTF-8). A value that still does not fit its column (a bug upstream) is stored as
    null and named in the row's ``message``: the row is kept, never lost with the session."""
    rows = [{k: _safe(v) for k, v in dataclasses.asdict(r).items()} for r in records]
    schema = arrow_schema()
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return _lenient_table(rows, schema)


def _lenient_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """``rows`` as a table, each value that does not convert to its column's type nulled and
    named in its row's ``message``."""
    lost: dict[int, list[str]] = {}
    for f in schema:
        try:
            pa.array([r[f.name] for r in rows], f.type)
            continue
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            pass
        for i, r in enumerate(rows):
            try:
                pa.scalar(r[f.name], f.type)
            except (pa.ArrowException, ValueError, TypeError, OverflowError):
                lost.setdefault(i, []).append(f"{f.name}={str(r[f.name])[:40]!r}")
                r[f.name] = None
    for i, names in lost.items():
        note = f"not stored (not of the column's type): {', '.join(names)}"
        rows[i]["message"] = "; ".join(m for m in (rows[i].get("message"), note) if m)
    return pa.Table.from_pylist(rows, schema=schema)


class Store:
    """A folder of session Parquet files.

    Args:
        root: the folder.
        on_skip: called with one line for each file a read skips (once per file and store).
        writer: writes bytes durably to a path; default ``write_bytes`` (the seam).
    """

    def __init__(self, root: str | bytes | os.PathLike, *,
                 on_skip: Callable[[str], None] | None = None,
                 writer: Callable[[Path, bytes], None] | None = None) -> None:
        self.root = Path(os.fsdecode(root))
        self.on_skip = on_skip
        self.writer = writer
        #: (file, reason) of every file a read of this store skipped.
        self.skipped: list[tuple[Path, str]] = []

    # --- reading -------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The session files, oldest name first.

        Raises:
            StoreError: the store's path is a file, not a folder.
        """
        if self.root.is_dir():
            return sorted(self.root.glob("*.parquet"))
        if self.root.exists():
            raise StoreError(f"the results store {shown(self.root)} is a file, not a folder")
        return []

    def verify(self) -> list[FileCheck]:
        """Every session file's verdict (``edgebench store check``)."""
        return [verify_file(f) for f in self.files()]

    def _usable(self) -> list[FileCheck]:
        good = []
        for check in self.verify():
            if check.ok:
                good.append(check)
            elif check.path not in {p for p, _ in self.skipped}:
                self.skipped.append((check.path, check.reason or "unreadable"))
                if self.on_skip is not None:
                    self.on_skip(f"skipped store file {shown(check.path)}: {check.reason} "
                                 "(edgebench store check --quarantine moves it aside)")
        return good

    def check(self) -> list[Path]:
        """The files a read uses: each verified (read fully, a schema version this edgebench
        reads, columns of convertible types); the others are skipped and reported."""
        return [c.path for c in self._usable()]

    def table(self) -> pa.Table:
        """Every readable row, as the current schema (older files' new columns null)."""
        tables = [c.table for c in self._usable() if c.table is not None]
        return pa.concat_tables([records_to_table([]), *tables])

    def connect(self, *, sandbox: bool = True):
        """A DuckDB connection with a ``runs`` view over every readable session file.

        With ``sandbox`` (the default) the connection can read nothing but that view and
        write nothing (``results.sqlsafe.lock``)."""
        import duckdb

        con = duckdb.connect()
        con.register("_runs", self.table())
        con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM _runs")
        if sandbox:
            sqlsafe.lock(con)
        return con

    def query_arrow(self, sql: str, params: list | None = None, *,
                    sandbox: bool = True) -> pa.Table | None:
        """Run SQL over the ``runs`` view; its result as Arrow (None for statements)."""
        rel = self.connect(sandbox=sandbox).sql(sql, params=params)
        return rel.to_arrow_table() if rel is not None else None

    def query(self, sql: str, params: list | None = None, *, sandbox: bool = True):
        """Run SQL over the ``runs`` view and return a DataFrame (empty for statements)."""
        import pandas as pd

        table = self.query_arrow(sql, params, sandbox=sandbox)
        return table.to_pandas() if table is not None else pd.DataFrame()

    def resume_index(self, machine_id: str) -> dict[str, dict]:
        """For ``--resume``: per run_key with an ``ok`` row from this machine, the runtime
        version and artifact hash of the latest such row. The caller measures again when either
        changed: they are checked beside ``run_key``, not hashed into it, so a run's key stays
        the workload's identity across versions."""
        if not self.files():
            return {}
        df = self.query(
            f"SELECT run_key, framework_version, artifact_sha256 FROM {VIEW} "
            "WHERE status = 'ok' AND machine_id = ? QUALIFY row_number() OVER "
            "(PARTITION BY run_key ORDER BY started_at DESC) = 1",
            [machine_id],
        )
        return {r["run_key"]: {k: (None if v != v else v) for k, v in r.items()}
                for r in df.to_dict("records")}

    # --- writing -------------------------------------------------------------------------

    def _write(self, path: Path, data: bytes) -> None:
        (self.writer or write_bytes)(path, data)

    def ensure_writable(self) -> None:
        """Check, before anything is measured, that a session file can be written here: the
        folder is made, and a probe file is written, synced and removed.

        Raises:
            StoreError: one line naming the path and the reason (the OS's words, or a path
                that is a file or is not UTF-8).
        """
        where = f"cannot write results to {shown(self.root)}"
        problem = encoding_problem(self.root)
        if problem:
            raise StoreError(f"{where}: {problem}")
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{where}: it is a file, not a folder")
        probe = self.root / f".edgebench-probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self._write(probe, b"edgebench write probe\n")
            finally:
                unlink_quietly(probe)
            fsync_dir(self.root)
        except OSError as e:
            raise StoreError(f"{where}: {os_reason(e)}") from e

    def write_table(self, path: Path, table: pa.Table) -> None:
        """Write ``table`` to ``path`` atomically and durably: a temp file written through the
        writer seam (flush + fsync), renamed into place, then the folder synced.

        Raises:
            OSError: any step failed (the temp file is removed; ``path`` is as it was).
        """
        tmp = path.with_name(f".{path.name}.tmp")
        data = parquet_bytes(table)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write(tmp, data)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError:
            unlink_quietly(tmp)
            raise

    def write_session(self, session_id: str, records: list[RunRecord]) -> Path:
        """(Re)write this session's file with all its rows so far (``write_table``).

        Raises:
            StoreError: the write failed; the rows were saved to a rescue file, which the
                message and ``rescue`` name (``edgebench store recover`` brings them in).
        """
        path = self.root / f"{session_id}.parquet"
        try:
            table = records_to_table(records)  # keeps every row (text escaped, misfits null)
            self.write_table(path, table)
        except OSError as e:
            raise self._rescued(path, session_id, table, os_reason(e)) from e
        return path

    def _rescued(self, path: Path, session_id: str, table: pa.Table,
                 reason: str) -> StoreError:
        where = f"cannot write results to {shown(path)}: {reason}"
        n = table.num_rows
        if not n:
            return StoreError(where)
        rows = f"{n} measured row{'s' if n != 1 else ''}"
        saved, why = rescue.save(self.root, session_id, table, self._write)
        if saved is None:
            return StoreError(f"{where}; the {rows} could not be saved anywhere either ({why})")
        return StoreError(f"{where}; {rows} saved to {shown(saved)} (bring them in with: "
                          f"{rescue.recover_hint(self.root, saved)})", rescue=str(saved))

    def quarantine(self, checks: Iterable[FileCheck]) -> list[tuple[Path, Path]]:
        """Move bad files to ``<store>/quarantine/`` (never deleted); returns (from, to).

        Raises:
            StoreError: a file could not be moved (naming it and the reason).
        """
        folder = self.root / QUARANTINE_DIR
        moved = []
        for check in checks:
            dest = folder / check.path.name
            n = 1
            while dest.exists():
                dest = folder / f"{check.path.stem}.{n}{check.path.suffix}"
                n += 1
            try:
                folder.mkdir(exist_ok=True)
                os.replace(check.path, dest)
                fsync_dir(self.root)
            except OSError as e:
                raise StoreError(f"cannot move {shown(check.path)} to {shown(folder)}: "
                                 f"{os_reason(e)}") from e
            moved.append((check.path, dest))
        return moved
