"""REF -> rows: what ``--baseline`` and ``--candidate`` name.

A REF is ``latest`` (the newest session of the store), ``latest~N`` (the N-th before it), a
Parquet file, a folder of Parquet files (a store), or a session id of the store (a unique
prefix of one will do). Files of an older schema version are read as the current schema (the
store's own verification); damaged ones are skipped by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from edgebench.errors import ConfigError
from edgebench.gate.thresholds import METRICS
from edgebench.harness.metrics import TIMING_METRICS
from edgebench.results.fsio import shown
from edgebench.results.store import Store, records_to_table
from edgebench.results.verify import verify_file

#: The columns a gate reads (identity, conditions, doubts, every gateable metric).
COLUMNS = (
    "run_key", "session_id", "machine_id", "started_at", "status", "message", "kind",
    "measurement", "model", "model_sha256", "framework", "framework_version", "precision",
    "device", "prompt_tokens", "new_tokens", "threads", "options", "artifact_sha256",
    "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "ram_total_mb", "os",
    "accelerators", "flags", "machine_busy", "repetitions", "launches",
    "quality_reference", "reference_sha256", "reference_storage", "corpus_sha256", "n_ctx",
    "chunks", "chunk_nll", "chunk_kld",
    *TIMING_METRICS, *(f"{m}_samples" for m in TIMING_METRICS),
    *(m for m in METRICS if m not in TIMING_METRICS),
)
_LATEST = re.compile(r"^latest(?:~(\d+))?$")
#: Shortest session-id prefix taken for a whole id.
MIN_PREFIX = 6


@dataclass
class Side:
    """One side of a gate: the REF as typed, what it resolved to, and its rows (dicts of
    :data:`COLUMNS`, every status)."""

    ref: str
    label: str
    rows: list[dict[str, Any]]
    sessions: list[str] = field(default_factory=list)

    def fingerprint(self) -> frozenset:
        """What the side holds: two REFs with the same rows are the same measurement."""
        return frozenset((r["session_id"], r["run_key"], r["started_at"]) for r in self.rows)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    """The gate's columns of ``table`` as dicts (a column the schema lacks is left out)."""
    return table.select([c for c in COLUMNS if c in table.column_names]).to_pylist()


def sessions_by_time(table: pa.Table) -> list[str]:
    """Session ids, oldest first (by their newest row's start; ties by id)."""
    if not table.num_rows:
        return []
    agg = table.select(["session_id", "started_at"]).group_by("session_id").aggregate(
        [("started_at", "max")]).to_pylist()
    last = {r["session_id"]: r["started_at_max"] for r in agg}
    return sorted(last, key=lambda s: (last[s] is not None, last[s] or 0, s))


def _side(ref: str, label: str, rows: list[dict[str, Any]]) -> Side:
    return Side(ref, label, rows, sorted({r["session_id"] for r in rows}))


def _from_file(ref: str, path: Path) -> Side:
    check = verify_file(path)
    if not check.ok or check.table is None:
        raise ConfigError(f"REF {ref!r}: the file {shown(path)} cannot be read as an edgebench "
                          f"store file: {check.reason}")
    rows = _records(check.table)
    if not rows:
        raise ConfigError(f"REF {ref!r}: the file {shown(path)} holds no rows")
    return _side(ref, f"file {shown(path)}", rows)


def _from_folder(ref: str, path: Path, on_skip: Callable[[str], None] | None) -> Side:
    st = Store(path, on_skip=on_skip)
    if not st.files():
        raise ConfigError(f"REF {ref!r}: the folder {shown(path)} holds no Parquet files")
    rows = _records(st.table())
    if not rows:
        raise ConfigError(f"REF {ref!r}: the store {shown(path)} holds no readable rows")
    n = len({r["session_id"] for r in rows})
    return _side(ref, f"store {shown(path)} ({n} session{'s' if n != 1 else ''})", rows)


def _hint(order: list[str]) -> str:
    newest = ", ".join(reversed(order[-3:]))
    return f"its newest sessions: {newest}" if newest else "it holds no sessions"


def resolve(ref: str, store: Store, *, _cache: dict | None = None) -> Side:
    """The rows ``ref`` names (see the module docstring for the forms).

    Raises:
        ConfigError: ``ref`` names nothing, names an unreadable file, an empty folder, a
            session prefix that is ambiguous, or ``latest~N`` beyond the store's sessions.
    """
    text = ref.strip()
    if not text:
        raise ConfigError("an empty REF: give latest, latest~1, a session id, a Parquet "
                          "file or a folder")
    m = _LATEST.match(text)
    if not m:
        path = Path(os.path.expanduser(text))
        if path.is_file():
            return _from_file(ref, path)
        if path.is_dir():
            return _from_folder(ref, path, store.on_skip)
    cache = _cache if _cache is not None else {}
    if "table" not in cache:
        cache["table"] = store.table() if store.files() else records_to_table([])
        cache["order"] = sessions_by_time(cache["table"])
    table, order = cache["table"], cache["order"]
    where = f"the store {shown(store.root)}"
    if m:
        back = int(m.group(1) or 0)
        if back >= len(order):
            have = f"only {len(order)} session{'s' if len(order) != 1 else ''}"
            raise ConfigError(f"REF {ref!r}: {where} has {have} (fill it with: edgebench run)")
        session = order[-1 - back]
    elif text in order:
        session = text
    else:
        found = [s for s in order if len(text) >= MIN_PREFIX and s.startswith(text)]
        if len(found) > 1:
            raise ConfigError(f"REF {ref!r} is the start of {len(found)} sessions in {where} "
                              f"({', '.join(found[-3:])}): give more of it")
        if not found:
            raise ConfigError(f"REF {ref!r} names nothing: no file or folder of that name, "
                              f"and no session of {where} ({_hint(order)}); give latest, "
                              "latest~1, a session id, a Parquet file or a folder")
        session = found[0]
    picked = table.filter(pc.equal(table["session_id"], session))
    return _side(ref, f"session {session}", _records(picked))


def resolve_pair(baseline: str, candidate: str, store: Store) -> tuple[Side, Side]:
    """Both sides; the store is read once for both.

    Raises:
        ConfigError: a REF names nothing, or both name the same rows.
    """
    cache: dict = {}
    base = resolve(baseline, store, _cache=cache)
    cand = resolve(candidate, store, _cache=cache)
    if base.fingerprint() == cand.fingerprint():
        raise ConfigError(f"baseline {baseline!r} and candidate {candidate!r} are the same rows "
                          f"({base.label}): a gate compares two different measurements")
    return base, cand
