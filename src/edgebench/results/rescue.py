"""Rescue files: rows that were measured but could not be written to the store.

A failed session write (full disk, read-only mount, a store path that became a file) saves the
session's rows to ``<store>/.rescue/<session>.parquet``, else ``<cache>/rescue/``, else the
temp folder; each file names its store in its metadata. ``edgebench store recover`` verifies a
rescue file, merges its rows into the store's session file (atomically; a row already there is
replaced, never doubled, so recovering twice changes nothing) and then removes the rescue file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from edgebench.results.fsio import (
    durable_write,
    fsync_dir,
    os_reason,
    parquet_bytes,
    shown,
    unlink_quietly,
)
from edgebench.results.schema import arrow_schema
from edgebench.results.verify import verify_file

if TYPE_CHECKING:
    from edgebench.results.store import Store

RESCUE_DIR = ".rescue"
STORE_KEY = b"edgebench.rescue_store"
Writer = Callable[[Path, bytes], None]


@dataclass
class Recovered:
    """What ``recover`` did with one rescue file (``error`` set: it was kept)."""

    source: Path
    target: Path | None = None
    rows: int = 0
    added: int = 0
    error: str | None = None


def _origin(root: Path) -> bytes:
    return os.fsencode(os.path.realpath(root))


def _places(root: Path) -> list[Path]:
    """Where rescue files go, first choice first: beside the store, the cache, the temp dir."""
    from edgebench.locations import cache_dir

    out = [root / RESCUE_DIR]
    try:
        out.append(cache_dir() / "rescue")
    except (OSError, ValueError):
        pass
    return [*out, Path(tempfile.gettempdir()) / "edgebench-rescue"]


def save(root: Path, session_id: str, table: pa.Table,
         write_beside: Writer) -> tuple[Path | None, str | None]:
    """Save ``table`` (a session's rows) as a rescue file of the store at ``root``.

    ``write_beside`` writes into the store's own folder (the store's writer seam); the other
    places are written directly. Returns the file, or None and why no place took it.
    """
    meta = dict(table.schema.metadata or {})
    meta[STORE_KEY] = _origin(root)
    data = parquet_bytes(table.replace_schema_metadata(meta))
    last = "no folder to write to"
    for i, folder in enumerate(_places(root)):
        write = write_beside if i == 0 else durable_write
        tmp, target = folder / f".{session_id}.parquet.tmp", folder / f"{session_id}.parquet"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write(tmp, data)
            os.replace(tmp, target)
            fsync_dir(folder)
            return target, None
        except (OSError, ValueError) as e:
            unlink_quietly(tmp)
            last = f"{shown(folder)}: {os_reason(e) if isinstance(e, OSError) else e}"
    return None, last


def recover_hint(root: Path, path: Path) -> str:
    """The command that brings ``path``'s rows into the store at ``root``."""
    from edgebench.locations import store_dir

    parts = ["edgebench", "store", "recover"]
    if os.path.realpath(root) != os.path.realpath(store_dir()):
        parts += ["--store", shown(root)]
    return " ".join(shlex.quote(p) for p in [*parts, shown(path)])


def _read_origin(path: Path) -> bytes | None:
    try:
        meta = pq.read_schema(pa.BufferReader(path.read_bytes())).metadata or {}
    except (pa.ArrowException, OSError, ValueError):
        return None
    return meta.get(STORE_KEY)


def pending(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Rescue files of the store at ``root`` (beside it, and in the cache or temp folder when
    they name it), and those elsewhere that name another store (with that store, shown)."""
    mine: list[Path] = []
    others: list[tuple[Path, str]] = []
    origin = _origin(root)
    for i, folder in enumerate(_places(root)):
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.parquet")):
            found = origin if i == 0 else _read_origin(f)
            if found == origin:
                mine.append(f)
            else:
                others.append((f, shown(os.fsdecode(found)) if found else "an unknown store"))
    return mine, others


def recover(store: Store, files: list[Path]) -> list[Recovered]:
    """Bring each rescue file's rows into ``store``; a file is removed once its rows are in."""
    return [_recover_one(store, Path(f)) for f in files]


_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _session_of(table: pa.Table, src: Path) -> str:
    ids = set(table.column("session_id").to_pylist())
    if len(ids) == 1:
        (sid,) = ids
        if isinstance(sid, str) and _SESSION.fullmatch(sid):
            return sid
    stem = src.name.removesuffix(".parquet")
    return stem if _SESSION.fullmatch(stem) else "recovered"


def _key(row: dict) -> tuple:
    return (row["session_id"], row["run_key"], row["machine_id"], str(row["started_at"]))


def _merge(have: pa.Table, new: pa.Table) -> tuple[pa.Table | None, int]:
    """The session's rows with the rescued ones (None: nothing changes) and how many are new.

    A rescued row replaces the stored row of the same run, machine and start: the rescue file
    holds a later snapshot of the session."""
    rescued = {_key(r): r for r in new.to_pylist()}
    stored = have.to_pylist()
    kept = [r for r in stored if _key(r) not in rescued]
    rows = kept + list(rescued.values())
    added = len(rows) - len(stored)

    def text(rs: list[dict]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rs)

    if text(rows) == text(stored):
        return None, 0
    return pa.Table.from_pylist(rows, schema=arrow_schema()), added


def _recover_one(store: Store, src: Path) -> Recovered:
    check = verify_file(src, cached=False)
    if not check.ok or check.table is None:
        return Recovered(src, error=f"not a readable rescue file: {check.reason}")
    table = check.table
    target = store.root / f"{_session_of(table, src)}.parquet"
    merged, added = table, table.num_rows
    if target.exists():
        have = verify_file(target)
        if not have.ok or have.table is None:
            return Recovered(src, target, table.num_rows, error=(
                f"the store's file {shown(target)} is damaged ({have.reason}): move it aside "
                "with edgebench store check --quarantine, then recover again"))
        merged, added = _merge(have.table, table)
    if merged is not None:
        try:
            store.write_table(target, merged)
        except OSError as e:
            return Recovered(src, target, table.num_rows, error=(
                f"cannot write results to {shown(target)}: {os_reason(e)}; the rescue file is "
                "kept"))
    try:
        src.unlink()
        fsync_dir(src.parent)
    except OSError as e:
        return Recovered(src, target, table.num_rows, added, error=(
            f"its rows are in {shown(target)}, but it could not be removed: {os_reason(e)}"))
    return Recovered(src, target, table.num_rows, added)
