"""Verify a store file before anything reads it: Parquet that reads fully, a schema version this
edgebench reads, and columns whose types convert to the current schema's.

A file that passes comes back as a table of the current schema (columns added since its version
are null), so every reader sees one shape. Results are cached per (path, size, mtime_ns) within
the process: repeated queries do not read a file again.
"""

from __future__ import annotations

import functools
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from edgebench.results.fsio import os_reason
from edgebench.results.schema import SCHEMA_VERSION, UPGRADABLE_VERSIONS, arrow_schema

VERSION_KEY = b"edgebench.schema_version"
#: Columns every version of the store has had; a file without one is not a store file.
REQUIRED = ("run_key", "session_id", "machine_id", "started_at", "status")


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one store file: ``reason`` is None when it is readable."""

    path: Path
    rows: int | None
    version: int | None
    reason: str | None = None
    table: pa.Table | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.reason is None


_CACHE: dict[Path, tuple[tuple[int, int], FileCheck]] = {}
_schema = functools.cache(arrow_schema)


def verify_file(path: Path, *, cached: bool = True) -> FileCheck:
    """Read ``path`` fully and check it (from the cache when the file has not changed)."""
    try:
        st = path.stat()
    except OSError as e:
        return FileCheck(path, None, None, f"cannot read it: {os_reason(e)}")
    if not stat.S_ISREG(st.st_mode):  # a named pipe would block the read for ever
        return FileCheck(path, None, None, "not a regular file")
    key = (st.st_size, st.st_mtime_ns)
    hit = _CACHE.get(path)
    if cached and hit is not None and hit[0] == key:
        return hit[1]
    result = _verify(path)
    _CACHE[path] = (key, result)
    return result


def read_version(meta: dict[bytes, bytes] | None) -> tuple[int | None, str | None]:
    """The schema version in a file's metadata, or why there is none this edgebench reads."""
    raw = (meta or {}).get(VERSION_KEY)
    if raw is None:
        return None, "no edgebench.schema_version in its metadata (not an edgebench store file)"
    try:
        version = int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        text = raw.decode("utf-8", "backslashreplace")[:40]
        return None, f"its schema version {text!r} is not a number"
    if version > SCHEMA_VERSION:
        return version, (f"written by a newer edgebench (schema v{version}, this one reads up "
                         f"to v{SCHEMA_VERSION})")
    if version != SCHEMA_VERSION and version not in UPGRADABLE_VERSIONS:
        known = ", ".join(map(str, (*UPGRADABLE_VERSIONS, SCHEMA_VERSION)))
        return version, f"schema version {version} is not one this edgebench reads ({known})"
    return version, None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _verify(path: Path) -> FileCheck:
    try:
        data = path.read_bytes()
    except OSError as e:
        return FileCheck(path, None, None, f"cannot read it: {os_reason(e)}")
    try:  # a buffer read on one thread: no Python file object touched by Arrow's threads
        pf = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as e:
        return FileCheck(path, None, None, f"not a readable Parquet file ({_first_line(e)})")
    rows = pf.metadata.num_rows
    version, why = read_version(pf.schema_arrow.metadata)
    if why:
        return FileCheck(path, rows, version, why)
    try:
        table = pf.read(use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as e:
        return FileCheck(path, rows, version, f"damaged data pages ({_first_line(e)})")
    try:
        normal = normalize(table)
    except ValueError as e:
        return FileCheck(path, rows, version, str(e))
    return FileCheck(path, table.num_rows, version, None, normal)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def compatible(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of type ``src`` read as ``dst`` without changing meaning (a wider
    number, another timestamp unit, a dictionary of the same values); text never reads as a
    number."""
    if src == dst or pa.types.is_null(src):
        return True
    if pa.types.is_dictionary(src):
        return compatible(src.value_type, dst)
    if _is_text(dst):
        return _is_text(src)
    if pa.types.is_integer(dst):
        return pa.types.is_integer(src)
    if pa.types.is_floating(dst):
        return pa.types.is_integer(src) or pa.types.is_floating(src)
    if pa.types.is_timestamp(dst):
        return pa.types.is_timestamp(src) or pa.types.is_date(src)
    if _is_list(dst):
        return _is_list(src) and compatible(src.value_type, dst.value_type)
    return False


def normalize(table: pa.Table) -> pa.Table:
    """``table`` as the current schema: known columns converted, missing ones null, unknown
    ones dropped.

    Raises:
        ValueError: a column every version has is missing, or a column's type conflicts.
    """
    names = table.column_names
    index = {name: i for i, name in enumerate(names)}
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        raise ValueError(f"missing column {missing[0]} (not an edgebench store file)")
    if len(index) < len(names):
        twice = next(n for i, n in enumerate(names) if index[n] != i)
        raise ValueError(f"column {twice} appears more than once")
    schema = _schema()
    arrays = []
    for f in schema:
        if f.name not in index:
            arrays.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(index[f.name])
        if col.type == f.type:
            arrays.append(col)
            continue
        if not compatible(col.type, f.type):
            raise ValueError(f"column {f.name} is {col.type}, expected {f.type}")
        try:
            arrays.append(col.cast(f.type, safe=True))
        except (pa.ArrowException, ValueError) as e:
            raise ValueError(f"column {f.name} ({col.type}) does not convert to {f.type}: "
                             f"{_first_line(e)}") from e
    return pa.Table.from_arrays(arrays, schema=schema)
