"""Which baseline row meets which candidate row, and under what conditions.

Speed rows pair by ``run_key``; quality rows by model, runtime, precision, device and the
quality protocol (decision/compare.py). Each side contributes its latest ``ok`` row per key
(a later error is kept as the reason it is missing). A key left on one side may still pair
on the same workload with another model file (``model_sha256`` is in ``run_key``): such a
pair is a different condition, like other hardware or another artifact, and refused unless
allowed. A different runtime version is allowed and shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgebench.decision.compare import hardware_key, is_measured, protocol, value

Row = Mapping[str, Any]


def kind(row: Row) -> str:
    """``speed`` (NULL in v1 rows) or ``quality``."""
    return str(value(row, "kind") or "speed")


def key(row: Row, *, loose: bool = False) -> tuple:
    """The pairing key; ``loose`` leaves the model file out (and, for quality, the reference
    artifact, which a new build re-makes)."""
    if kind(row) == "quality":
        prot = protocol(row)
        if loose:
            prot = tuple(None if i == 1 else v for i, v in enumerate(prot))  # reference_sha256
        ident = (value(row, "framework"), value(row, "precision"), value(row, "device"), *prot)
        return ("quality", *ident) if loose else ("quality", value(row, "model_sha256"), *ident)
    if not loose:
        return ("speed", value(row, "run_key"))
    return ("speed", *(value(row, k) for k in ("model", "framework", "precision", "device",
                                                "prompt_tokens", "new_tokens", "threads",
                                                "options")))


def label(row: Row) -> str:
    """A run as people name it: model, runtime, precision, device and workload."""
    base = " ".join(str(value(row, k) or "?") for k in ("model", "framework", "precision",
                                                          "device"))
    if kind(row) == "quality":
        return f"{base} quality"
    return (f"{base} p{value(row, 'prompt_tokens')}/n{value(row, 'new_tokens')} "
            f"t{value(row, 'threads')}")


@dataclass
class Entry:
    """One key on one side: its latest ok row (None if it has none) and its newest row."""

    ok: Row | None
    latest: Row


def index(rows: Sequence[Row]) -> dict[tuple, Entry]:
    """Each key's entry, measured rows only (estimated or simulated rows never gate)."""
    def when(i: int) -> tuple:
        t = value(rows[i], "started_at")
        return (0, i) if t is None else (1, t, i)

    out: dict[tuple, Entry] = {}
    for i in sorted(range(len(rows)), key=when):
        r = rows[i]
        if not is_measured(r):
            continue
        k = key(r)
        prev = out.get(k)
        ok = r if value(r, "status") == "ok" else (prev.ok if prev else None)
        out[k] = Entry(ok, r)
    return out


@dataclass
class Pair:
    """A key on both sides, on one (the other None), or a loose pair of two keys."""

    base: Entry | None
    cand: Entry | None
    loose: bool = False
    differs: list[tuple[str, str, str]] = field(default_factory=list)  # (what, base, cand)

    @property
    def row(self) -> Row:
        """The row that names the pair (the candidate's where there is one)."""
        return (self.cand or self.base).latest  # type: ignore[union-attr]

    @property
    def kind(self) -> str:
        return kind(self.row)

    @property
    def versions(self) -> tuple[str | None, str | None]:
        return tuple(None if e is None or e.ok is None else value(e.ok, "framework_version")
                     for e in (self.base, self.cand))  # type: ignore[return-value]


def _short(v: Any) -> str:
    s = str(v)
    return s[:12] + "…" if len(s) > 16 else s


def conditions(base: Row, cand: Row) -> list[tuple[str, str, str]]:
    """What differs between two rows that a gate must not compare across: hardware (its
    fingerprint, not machine_id), model file, artifact."""
    out = []
    hb, hc = hardware_key(base), hardware_key(cand)
    if hb != hc:
        out.append(("hardware", hb, hc))
    cols = [("model_sha256", "model file"), ("artifact_sha256", "artifact")]
    if kind(base) == kind(cand) == "quality":
        cols.append(("reference_sha256", "quality reference artifact"))
    for col, what in cols:
        vb, vc = value(base, col), value(cand, col)
        if vb is not None and vc is not None and vb != vc:
            out.append((f"{what} ({col})", _short(vb), _short(vc)))
    return out


def match(base_rows: Sequence[Row], cand_rows: Sequence[Row]) -> list[Pair]:
    """Every key of either side, paired where it can be (candidate's keys first, in order).

    A key on one side only pairs loosely with the one key of the other side that has the same
    workload with another model file, when there is exactly one such key on each side."""
    bi, ci = index(base_rows), index(cand_rows)
    only_b: dict[tuple, list[Entry]] = {}
    only_c: dict[tuple, list[Entry]] = {}
    for k, e in bi.items():
        if k not in ci:
            only_b.setdefault(key(e.latest, loose=True), []).append(e)
    for k, e in ci.items():
        if k not in bi:
            only_c.setdefault(key(e.latest, loose=True), []).append(e)
    paired = {id(e) for lk, es in only_c.items() if len(es) == 1 and len(only_b.get(lk, [])) == 1
              for e in (es[0], only_b[lk][0])}
    out: list[Pair] = []
    for k, e in ci.items():
        if k in bi:
            out.append(Pair(bi[k], e))
        elif id(e) in paired:
            out.append(Pair(only_b[key(e.latest, loose=True)][0], e, loose=True))
        else:
            out.append(Pair(None, e))
    out += [Pair(e, None) for k, e in bi.items() if k not in ci and id(e) not in paired]
    for p in out:
        if p.base is not None and p.cand is not None:
            p.differs = conditions(p.base.ok or p.base.latest, p.cand.ok or p.cand.latest)
    return out


def unmatched_hint(pairs: Sequence[Pair], n: int = 3) -> tuple[str, str]:
    """A few runs of each side, for the 'no shared run' error."""
    def few(rows: list[Row]) -> str:
        names = [f"{label(r)} ({str(value(r, 'run_key'))[:8]})" for r in rows[:n]]
        more = f" and {len(rows) - n} more" if len(rows) > n else ""
        return "; ".join(names) + more if names else "none"
    return (few([p.base.latest for p in pairs if p.base is not None]),
            few([p.cand.latest for p in pairs if p.cand is not None]))
