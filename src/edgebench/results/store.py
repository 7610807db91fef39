"""The append-only Parquet store: one file per session, written atomically; a DuckDB view.

Every file carries ``edgebench.schema_version`` in its Parquet metadata; a file of another
version is refused on read with a message that names it, never read silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from edgebench.errors import ConfigError, SchemaMismatch
from edgebench.results.schema import (
    SCHEMA_VERSION,
    UPGRADABLE_VERSIONS,
    RunRecord,
    arrow_schema,
)

VIEW = "runs"


def records_to_table(records: Iterable[RunRecord]) -> pa.Table:
    """Rows -> an Arrow table of the store's schema."""
    rows = [dataclasses.asdict(r) for r in records]
    return pa.Table.from_pylist(rows, schema=arrow_schema())


def file_schema_version(path: Path) -> int | None:
    """The schema version written in a store file's metadata (None if absent)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as e:
        raise ConfigError(f"store file {path} is not a readable Parquet file: {e}") from e
    raw = meta.get(b"edgebench.schema_version")
    return int(raw) if raw is not None else None


class Store:
    """A folder of session Parquet files."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def files(self) -> list[Path]:
        """The session files, oldest name first."""
        return sorted(self.root.glob("*.parquet")) if self.root.is_dir() else []

    def check(self) -> list[Path]:
        """Return the files after checking each has this edgebench's schema version or one it
        upgrades on read (older files lack only newer columns, which read as null).

        Raises:
            SchemaMismatch: naming the first file written with a version it cannot read.
        """
        files = self.files()
        for f in files:
            v = file_schema_version(f)
            if v != SCHEMA_VERSION and v not in UPGRADABLE_VERSIONS:
                raise SchemaMismatch(
                    f"store file {f} has schema version {v}, this edgebench reads versions "
                    f"{', '.join(map(str, (*UPGRADABLE_VERSIONS, SCHEMA_VERSION)))}; move it "
                    f"out of {self.root} or use a matching edgebench"
                )
        return files

    def write_session(self, session_id: str, records: list[RunRecord]) -> Path:
        """(Re)write this session's file with all its rows so far: temp file, then rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{session_id}.parquet"
        tmp = self.root / f".{session_id}.parquet.tmp"
        pq.write_table(records_to_table(records), tmp)
        os.replace(tmp, path)
        return path

    def connect(self):
        """A DuckDB connection with a ``runs`` view over every session file."""
        import duckdb

        files = self.check()
        con = duckdb.connect()
        # An empty table of this version's columns first, so every column exists (null in
        # files of older versions) and every query runs, even over an empty store.
        con.register("_empty_runs", records_to_table([]))
        if files:
            paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(
                f"CREATE VIEW {VIEW} AS SELECT * FROM _empty_runs UNION ALL BY NAME "
                f"SELECT * FROM read_parquet([{paths}], union_by_name=true)"
            )
        else:
            con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM _empty_runs")
        return con

    def query(self, sql: str, params: list | None = None):
        """Run SQL over the ``runs`` view and return a DataFrame (empty for statements)."""
        import pandas as pd

        rel = self.connect().sql(sql, params=params)
        return rel.to_arrow_table().to_pandas() if rel is not None else pd.DataFrame()

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
