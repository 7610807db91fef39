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


def _read_meta(path: Path) -> dict[bytes, bytes] | None:
    """A Parquet file's key-value metadata, or None when it is not a readable Parquet file."""
    try:
        return pq.read_schema(pa.BufferReader(path.read_bytes())).metadata or {}
    except (pa.ArrowException, OSError, ValueError):
        return None


def _read_origin(path: Path) -> bytes | None:
    return (_read_meta(path) or {}).get(STORE_KEY)


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
            if not f.is_file():  # only regular files are rescue files (a pipe would block)
                continue
            found = origin if i == 0 else _read_origin(f)
            if found == origin:
                mine.append(f)
            else:
                others.append((f, shown(os.fsdecode(found)) if found else "an unknown store"))
    return mine, others


def recover(store: Store, files: list[Path], *, force: bool = False) -> list[Recovered]:
    """Bring each rescue file's rows into ``store``; a file is removed once its rows are in.

    Every file is checked first (:func:`refuse_non_rescue`): a session file of a store is
    never taken (recovering removes its source), and a file without the rescue metadata key
    (``STORE_KEY``) only with ``force``.

    Raises:
        ConfigError: a file is a store's session file, or (without ``force``) not a rescue
            file; nothing was done.
    """
    for f in files:
        refuse_non_rescue(store.root, Path(f), force=force)
    return [_recover_one(store, Path(f)) for f in files]


def _holds_session_files(folder: Path, besides: Path) -> bool:
    """Whether ``folder`` holds a store's session file other than ``besides``: a readable
    ``*.parquet`` without the rescue key (rescue folders hold only files with it)."""
    try:
        others = [p for p in folder.glob("*.parquet") if p.name != besides.name]
    except OSError:
        return False
    for p in others:
        meta = _read_meta(p) if p.is_file() else None
        if meta is not None and STORE_KEY not in meta:
            return True
    return False


def refuse_non_rescue(root: Path, src: Path, *, force: bool = False) -> None:
    """Refuse a file ``store recover`` must not take: recovering merges it, then removes it.

    Raises:
        ConfigError: ``src`` (its real path) is a session file of a store, the target's or
            another's (a folder holding session files, other than a ``.rescue`` folder); or it
            lacks the rescue metadata key and ``force`` is not set.
    """
    from edgebench.errors import ConfigError

    real = Path(os.path.realpath(src))
    if not real.is_file():  # a named pipe or a device: reading it would block or never end
        raise ConfigError(f"{shown(src)} is not a regular file, not a rescue file")
    folder = real.parent
    store_file = folder == Path(os.path.realpath(root)) or (
        folder.name != RESCUE_DIR and _holds_session_files(folder, real))
    if store_file:
        raise ConfigError(
            f"{shown(src)} is a session file of the store {shown(folder)}, not a rescue file: "
            "recovering it would remove it from that store (copy it elsewhere first to bring "
            "its rows in with --force)")
    meta = _read_meta(real)
    if meta is not None and STORE_KEY not in meta and not force:  # unreadable: said later
        raise ConfigError(
            f"{shown(src)} is not a rescue file (no {STORE_KEY.decode()} in its metadata): "
            "recovering moves its rows into the store and removes it; add --force to do so")


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
