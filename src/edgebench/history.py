"""A metric's history per run over sessions, with the steps that persist (pure over rows).

One series per run (``run_key``) and hardware (``decision.compare.hardware_key``: a different
CPU is not a regression). Each point is one session's latest ``ok`` row of that run: its
median and, for timing metrics, its ``<metric>_samples``. ``edgebench.stats.change_points`` is
fed each session's samples (a nightly run's repetitions: more power than one median per
session), so a step is a level that persists for ``min_size`` sessions or more, never one
outlier. ``edgebench history`` prints :func:`summary`; the report draws
``reports.trends``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgebench.errors import ConfigError
from edgebench.harness.metrics import TIMING_METRICS
from edgebench.results import provenance

#: Metrics a history can follow; the timing metrics carry per-repetition samples.
METRICS = (*TIMING_METRICS, "load_s", "peak_mem_mb", "peak_rss_mb", "vm_hwm_mb", "energy_j",
           "j_per_token", "ppl", "kld_mean", "kld_p99", "top1_agree", "scored_tok_s")
#: Metrics of the arithmetic (``results.provenance`` part ``numerics``); the others are timings,
#: memory or energy (part ``timings``). A history follows a row only where that part of it is
#: measured: an emulator's clock (the HTP simulator's) is never a device's trend.
NUMERICS_METRICS = frozenset({"ppl", "kld_mean", "kld_p99", "top1_agree"})
#: Metrics where a higher value is better (for the others, lower is).
HIGHER_IS_BETTER = frozenset({"prefill_tok_s", "decode_tok_s", "top1_agree", "scored_tok_s"})
#: Columns naming a run in the output (besides its run_key).
LABELS = ("model", "framework", "precision", "device", "threads", "prompt_tokens",
          "new_tokens", "kind")
#: Columns a history reads from the store (plus the metric and its samples).
COLUMNS = ("run_key", "session_id", "started_at", "status", "measurement", *LABELS, "machine_id",
           "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "ram_total_mb", "os",
           "accelerators")


def samples_column(metric: str) -> str | None:
    """The column holding a metric's per-repetition samples, if it has one."""
    return f"{metric}_samples" if metric in TIMING_METRICS else None


def check_metric(metric: str) -> str:
    """``metric`` if a history can follow it.

    Raises:
        ConfigError: an unknown metric, naming the ones that exist.
    """
    if metric in METRICS:
        return metric
    from edgebench.harness.registry import suggest

    raise ConfigError(f"unknown metric {metric!r}{suggest(metric, METRICS)}; metrics: "
                      f"{', '.join(METRICS)}")


@dataclass(frozen=True)
class Point:
    """One session's value of a run: the row's median and its samples."""

    session_id: str
    started_at: Any  # a datetime (the session's first row)
    value: float
    samples: tuple[float, ...]


@dataclass(frozen=True)
class Step:
    """A persisting change: from ``session_id`` on, the level moved ``before`` -> ``after``
    (medians of the pooled samples of the segments on either side)."""

    index: int  # the first point of the new level
    session_id: str
    started_at: Any
    before: float
    after: float
    better: bool

    @property
    def change(self) -> float:
        """Relative change, after / before - 1."""
        return self.after / self.before - 1 if self.before else math.inf

    def text(self, digits: int = 3) -> str:
        return (f"{self.session_id}: {self.before:.{digits}g} -> {self.after:.{digits}g} "
                f"({self.change:+.1%}, {'better' if self.better else 'worse'})")


@dataclass(frozen=True)
class Series:
    """One run on one hardware over sessions (time order) and its steps."""

    metric: str
    run_key: str
    hardware: str
    labels: Mapping[str, Any]
    points: tuple[Point, ...]
    steps: tuple[Step, ...]

    @property
    def latest(self) -> Point:
        return self.points[-1]

    @property
    def name(self) -> str:
        """``model framework:precision device``, the workload when not the default."""
        lab = self.labels
        return (f"{lab.get('model')} {lab.get('framework')}:{lab.get('precision')} "
                f"{lab.get('device')} ({_num(lab.get('prompt_tokens'))}+"
                f"{_num(lab.get('new_tokens'))} tokens, {_num(lab.get('threads'))} threads)")


def _num(v: Any) -> str:
    return "?" if _missing(v) else str(int(v))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _floats(values: Any) -> tuple[float, ...]:
    if values is None or isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return ()
    out = []
    for v in values:
        if not _missing(v):
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                out.append(f)
    return tuple(out)


def series(rows: Iterable[Mapping[str, Any]], metric: str, *, min_size: int = 2,
           alpha: float = 0.01, min_shift: float = 0.05) -> list[Series]:
    """Every run's history of ``metric`` from store rows (any order, any status), with the
    steps ``stats.change_points`` finds (its ``min_size``, ``alpha`` and ``min_shift``).

    A session's point is its latest ``ok`` row of the run with a finite ``metric``; the samples
    are ``<metric>_samples`` where the metric has them and the row holds some, else the median
    alone (then a step needs more sessions to reach ``alpha``). Sessions are ordered by their
    first row's start. Series are sorted by name, then hardware.

    Raises:
        ConfigError: an unknown metric.
    """
    from edgebench.decision.compare import hardware_key
    from edgebench.stats import change_points

    check_metric(metric)
    sample_col = samples_column(metric)
    rows = [dict(r) for r in rows]
    session_start: dict[str, Any] = {}
    for r in rows:
        s, t = r.get("session_id"), r.get("started_at")
        if s is not None and not _missing(t) and (s not in session_start
                                                   or t < session_start[s]):
            session_start[s] = t
    latest: dict[tuple[str, str], dict[str, dict]] = {}  # (run_key, hardware) -> session -> row
    part = "numerics" if metric in NUMERICS_METRICS else "timings"
    for r in rows:
        if r.get("status") != "ok" or _missing(r.get(metric)) or r.get("session_id") is None:
            continue
        if provenance.kind(r.get("measurement"), part) != provenance.MEASURED:
            continue
        try:
            if not math.isfinite(float(r[metric])):
                continue
        except (TypeError, ValueError):
            continue
        per = latest.setdefault((r["run_key"], hardware_key(r)), {})
        old = per.get(r["session_id"])
        if old is None or _later(r, old):
            per[r["session_id"]] = r
    higher = metric in HIGHER_IS_BETTER
    out = []
    for (key, hw), per in latest.items():
        picked = sorted(per.values(), key=lambda r: (_order(session_start.get(r["session_id"])),
                                                     r["session_id"]))
        points = tuple(
            Point(r["session_id"], session_start.get(r["session_id"], r.get("started_at")),
                  float(r[metric]),
                  (_floats(r.get(sample_col)) if sample_col else ()) or (float(r[metric]),))
            for r in picked)
        idx = change_points([list(p.samples) for p in points], min_size=min_size, alpha=alpha,
                            min_shift=min_shift)
        idx = persisting(points, idx, min_size)
        out.append(Series(metric, key, hw, {k: picked[-1].get(k) for k in LABELS}, points,
                          _steps(points, idx, higher)))
    return sorted(out, key=lambda s: (s.name, s.hardware, s.run_key))


def _order(t: Any) -> tuple:
    return (0, t) if t is not None else (1, 0)


def _later(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    ta, tb = a.get("started_at"), b.get("started_at")
    if _missing(tb):
        return True
    return not _missing(ta) and ta > tb


def levels(points: Sequence[Point], idx: Sequence[int]) -> list[float]:
    """The median of the pooled samples of each segment between change points."""
    import numpy as np

    bounds = [0, *idx, len(points)]
    return [float(np.median([v for p in points[a:b] for v in p.samples]))
            for a, b in zip(bounds, bounds[1:])]


def persisting(points: Sequence[Point], idx: Sequence[int], min_size: int) -> list[int]:
    """The change points whose new level (and old one) really holds: at least ``min_size``
    sessions of each segment lie on that segment's side of the midpoint between the two
    levels. Pooling samples lets one outlier at an end of a series pull a short segment's
    median across (``[100]*8 + [80]``: a "step" at the 8th session to 90), which this drops;
    segments merge and are checked again until every step holds."""
    idx = list(idx)
    while True:
        level, bounds = levels(points, idx), [0, *idx, len(points)]
        for n, i in enumerate(idx):
            mid = (level[n] + level[n + 1]) / 2
            up = level[n + 1] > level[n]
            before = sum((p.value < mid) == up for p in points[bounds[n]:i])
            after = sum((p.value > mid) == up for p in points[i:bounds[n + 2]])
            if before < min_size or after < min_size:
                del idx[n]
                break
        else:
            return idx


def _steps(points: Sequence[Point], idx: Sequence[int], higher: bool) -> tuple[Step, ...]:
    level = levels(points, idx)
    return tuple(Step(i, points[i].session_id, points[i].started_at, level[n], level[n + 1],
                      (level[n + 1] > level[n]) == higher)
                 for n, i in enumerate(idx))


def summary(found: Sequence[Series]) -> list[dict[str, Any]]:
    """One record per series: the run, its latest value, its sessions and its steps (text)."""
    several = len({s.hardware for s in found}) > 1
    out = []
    for s in found:
        rec: dict[str, Any] = {"run_key": s.run_key, **{k: s.labels.get(k) for k in LABELS}}
        if several:
            rec["hardware"] = s.hardware
        rec.update({
            "sessions": len(s.points), "latest": s.latest.value,
            "latest_session": s.latest.session_id, "n_steps": len(s.steps),
            "steps": "; ".join(step.text() for step in s.steps),
        })
        out.append(rec)
    return out


def as_json(found: Sequence[Series]) -> list[dict[str, Any]]:
    """Every series with its points and steps, as plain JSON-able values."""
    def when(t: Any) -> str | None:
        return None if _missing(t) else (t.isoformat() if hasattr(t, "isoformat") else str(t))

    def plain(v: Any) -> Any:
        return v.item() if hasattr(v, "item") else v

    return [{
        "metric": s.metric, "run_key": s.run_key, "hardware": s.hardware,
        **{k: plain(s.labels.get(k)) for k in LABELS},
        "sessions": len(s.points), "latest": s.latest.value,
        "latest_session": s.latest.session_id,
        "points": [{"session_id": p.session_id, "started_at": when(p.started_at),
                    "value": p.value, "samples": list(p.samples)} for p in s.points],
        "steps": [{"session_id": st.session_id, "started_at": when(st.started_at),
                   "before": st.before, "after": st.after, "change": st.change,
                   "better": st.better} for st in s.steps],
    } for s in found]
