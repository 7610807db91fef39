"""`edgebench sql` safely: a DuckDB connection that can read the ``runs`` view and nothing else,
and query results turned into DataFrames whatever their types.

The ``runs`` view is an Arrow table in memory (``Store.connect``), so DuckDB needs no file
access at all: ``enable_external_access = false`` makes every file operation fail (``COPY …
TO``, ``read_text``, ``read_csv``, ``read_parquet``, ``glob``, ``ATTACH``, ``INSTALL``,
``LOAD`` of an extension file, ``EXPORT DATABASE``) and ``lock_configuration = true`` makes
every later ``SET``/``RESET`` fail, so the first cannot be undone. Both settings exist, and
behave so, since DuckDB 1.1 (the lower bound in pyproject.toml).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

LOCK = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)


def lock(con: Any) -> None:
    """Close ``con`` to the file system and lock its configuration (irreversible)."""
    for statement in LOCK:
        con.execute(statement)


def _temporal(t: pa.DataType) -> bool:
    if pa.types.is_temporal(t):
        return True
    return any(_temporal(t.field(i).type) for i in range(t.num_fields))


def _converts(col: pa.ChunkedArray) -> bool:
    """Whether a column becomes a pandas column whose values print (dates within Python's
    range: DuckDB's ``infinity`` timestamp is not one) and that ``--format json`` can write
    (an ``INTERVAL`` becomes a pandas ``DateOffset``, which it cannot: the JSON dump is
    tried on every column of Python objects)."""
    try:
        series = col.to_pandas()
        if _temporal(col.type):
            col.to_pylist()
        if series.dtype == object:
            series.to_frame().to_json(orient="records", date_format="iso")
    except Exception:  # noqa: BLE001 - pyarrow raises many kinds here; the fallback is text
        return False
    return True


def _as_text(table: pa.Table, bad: list[int]) -> pa.Table:
    """``table`` with the columns at ``bad`` as DuckDB's own text of each value."""
    import duckdb

    named = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    try:
        con = duckdb.connect()
        con.register("_out", named)
        text = con.sql("SELECT " + ", ".join(f"CAST(c{i} AS VARCHAR)" for i in bad)
                       + " FROM _out").to_arrow_table()
        columns = {i: text.column(j) for j, i in enumerate(bad)}
    except duckdb.Error:
        columns = {i: pa.array([repr(v) for v in _scalars(table.column(i))], pa.string())
                   for i in bad}
    for i, col in columns.items():
        table = table.set_column(i, table.field(i).name, col)
    return table


def _scalars(col: pa.ChunkedArray) -> list[Any]:
    out = []
    for chunk in col.chunks:
        for k in range(len(chunk)):
            try:
                out.append(chunk[k].as_py())
            except Exception:  # noqa: BLE001
                out.append(str(chunk[k].type))
    return out


def to_frame(table: pa.Table | None):
    """A DataFrame of a query's result; columns pandas cannot hold or print (unions, dates
    beyond year 9999 such as ``'infinity'::TIMESTAMP``) come out as text."""
    import pandas as pd

    if table is None:
        return pd.DataFrame()
    bad = [i for i, col in enumerate(table.columns) if not _converts(col)]
    if bad:
        table = _as_text(table, bad)
    return table.to_pandas()
