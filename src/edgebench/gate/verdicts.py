"""One metric of one pair of rows -> a :class:`Finding` (verdict, change, interval, reason).

Every statistic comes from ``edgebench.stats``. Three methods (docs/gate.md):

- **samples**: timing metrics, ``stats.compare`` over the ``<metric>_samples`` of each row;
- **paired chunks**: ``kld_mean`` and ``ppl`` over the same quality chunks with
  ``stats.block_bootstrap`` (``ppl`` ratio = exp of the mean ``chunk_nll`` difference), the
  verdict by the same rule as ``stats.compare`` applied to that interval (no p-value);
- **single value**: one number a side (peak memory, load time, rows without chunk values):
  no interval exists, so the point estimate is judged against the threshold and labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgebench import stats
from edgebench.decision.compare import value
from edgebench.gate.thresholds import METRICS, PAIRED, SAMPLES, Threshold

Row = Mapping[str, Any]
POINT = "point values"  # a paired metric on rows without chunk values


@dataclass
class Finding:
    """The verdict on one gated metric of one run (``missing``: it could not be compared)."""

    run_key: str
    run: str
    kind: str
    metric: str
    threshold: str
    method: str
    verdict: str
    reason: str
    relative: bool = True
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # ratio (relative) or difference (absolute)
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    n_baseline: int | None = None
    n_candidate: int | None = None
    samples_needed: int | None = None
    needed: str | None = None  # what to measure to settle it, in the command's words
    warnings: list[str] = field(default_factory=list)
    versions: tuple[str | None, str | None] = (None, None)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["versions"] = list(self.versions)
        d["change_pct"] = (self.change - 1) * 100 if self.relative and self.change is not None \
            else None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}


def _needed_text(n: int | None, row: Row, unit: str) -> str | None:
    if n is None:
        return None
    if n > stats.MAX_SUGGESTED:
        return (f"more than {stats.MAX_SUGGESTED} {unit} per side: too noisy, or too close "
                "to the threshold, to settle by measuring more")
    if unit == "chunks":
        return f"~{n} chunks per side (edgebench quality --chunks {n})"
    launches = int(value(row, "launches") or 1)
    if launches > 1:
        per = max(1, int(value(row, "repetitions") or 1))
        return f"~{n} samples per side (--launches {math.ceil(n / per)} at {per} repetitions)"
    return f"~{n} samples per side (edgebench run --repetitions {n})"


def _samples(row: Row, col: str) -> list[float]:
    raw = value(row, col)
    return [] if raw is None else [float(v) for v in raw if v is not None and math.isfinite(v)]


def _launches(row: Row, col: str) -> list[int] | None:
    """The launch index of each of a row's samples (``sample_launch``), when it matches them
    one to one (a row of one launch, or an older row, has none)."""
    labels, raw = value(row, "sample_launch"), value(row, col)
    if labels is None or raw is None or not len(labels) == len(raw) == len(_samples(row, col)):
        return None
    return [int(v) for v in labels]


def missing(f: Finding, reason: str) -> Finding:
    f.verdict, f.reason, f.method = "missing", reason, f.method or "-"
    return f


def judge_samples(f: Finding, th: Threshold, b: Row, c: Row, margin: float | None) -> Finding:
    """``stats.compare`` over both rows' samples of a timing metric."""
    col = th.spec.samples or ""
    xa, xb = _samples(b, col), _samples(c, col)
    for side, row, xs in (("baseline", b, xa), ("candidate", c, xb)):
        if not xs:
            has = value(row, th.metric) is not None
            return missing(f, f"the {side} row has no {col}" + (" (only its median)" if has
                                                                else ""))
    try:
        r = stats.compare(xa, xb, worse=th.spec.worse, limit=th.limit, relative=th.relative,
                          margin=margin if th.relative else None,
                          launches=(_launches(b, col), _launches(c, col)))
    except ValueError as e:
        return missing(f, str(e))
    f.relative, f.baseline, f.candidate, f.change = r.relative, r.baseline, r.candidate, r.change
    f.low, f.high, f.p_value = r.low, r.high, r.p_value
    f.n_baseline, f.n_candidate, f.verdict, f.reason = r.n_baseline, r.n_candidate, r.verdict, \
        r.reason
    f.samples_needed = r.samples_needed
    f.needed = _needed_text(r.samples_needed, c, "samples")
    return f


def _edges(th: Threshold, margin: float | None) -> tuple[float, float, float, float, float]:
    """no_change, worse edge, better edge and the equivalence band of a threshold."""
    sign = 1.0 if th.spec.worse == "higher" else -1.0
    band = th.limit if margin is None or not th.relative else margin
    if th.relative:
        return 1.0, 1 + sign * th.limit, 1 - sign * th.limit, 1 - band, 1 + band
    return 0.0, sign * th.limit, -sign * th.limit, -band, band


def judge_point(f: Finding, th: Threshold, a: float, b: float, why: str) -> Finding:
    """One value a side: the change against the threshold, labelled as no test at all."""
    if th.relative and a == 0:
        return missing(f, "the baseline value is 0: no relative change")
    _, worse, better, _, _ = _edges(th, None)
    change = b / a if th.relative else b - a
    sign = 1.0 if th.spec.worse == "higher" else -1.0
    f.relative, f.baseline, f.candidate, f.change, f.n_baseline, f.n_candidate = \
        th.relative, a, b, change, 1, 1
    shown = f"{(change - 1) * 100:+.1f} %" if th.relative else f"{change:+.4g}"
    if sign * (change - worse) > 0:
        f.verdict = "regressed"
        f.reason = f"{why}: {shown} is beyond {th.text}"
    elif sign * (better - change) > 0:
        f.verdict = "improved"
        f.reason = f"{why}: {shown}, better beyond the threshold"
    else:
        f.verdict = "unchanged"
        f.reason = f"{why}: {shown} is within {th.text}"
    return f


def judge_single(f: Finding, th: Threshold, b: Row, c: Row) -> Finding:
    """A single-valued metric (peak memory: ``peak_rss_mb`` for both when a row predates
    ``peak_mem_mb``, never a mix)."""
    metric = th.metric
    if metric == "peak_mem_mb" and (value(b, metric) is None or value(c, metric) is None) \
            and value(b, "peak_rss_mb") is not None and value(c, "peak_rss_mb") is not None:
        metric = "peak_rss_mb"
    a, x = value(b, metric), value(c, metric)
    if a is None or x is None:
        side = "baseline" if a is None else "candidate"
        return missing(f, f"the {side} row has no {th.metric}")
    why = "single value: no interval" + (" (peak_rss_mb: a row predates peak_mem_mb)"
                                         if metric != th.metric else "")
    return judge_point(f, th, float(a), float(x), why)


def judge_paired(f: Finding, th: Threshold, b: Row, c: Row, margin: float | None) -> Finding:
    """``kld_mean`` / ``ppl`` paired over the same chunks (``stats.block_bootstrap``); rows
    without chunk values compare their point values, labelled."""
    col = th.spec.samples or ""
    ca, cb = _samples(b, col), _samples(c, col)
    if not ca or not cb or len(ca) != len(cb):
        a, x = value(b, th.metric), value(c, th.metric)
        if a is None or x is None:
            return missing(f, f"the {'baseline' if a is None else 'candidate'} row has no "
                              f"{th.metric}")
        f.method = POINT
        if ca and cb:
            why = f"{len(ca)} vs {len(cb)} chunks"
        else:
            why = f"no {col} on {'both rows' if not ca and not cb else 'one row'}"
        return judge_point(f, th, float(a), float(x), f"{why}: point values, no interval")
    ppl = th.metric == "ppl"
    try:
        r = stats.paired_compare(ca, cb, worse=th.spec.worse, limit=th.limit, relative=ppl,
                                 margin=margin if th.relative else None)
    except ValueError as e:
        return missing(f, str(e))
    f.relative, f.baseline, f.candidate, f.change = r.relative, r.baseline, r.candidate, r.change
    f.low, f.high, f.n_baseline, f.n_candidate = r.low, r.high, r.n_baseline, r.n_candidate
    f.verdict, f.reason, f.samples_needed = r.verdict, r.reason, r.samples_needed
    if r.samples_needed:
        f.needed = _needed_text(r.samples_needed, c, "chunks")
    return f


def judge(f: Finding, th: Threshold, b: Row, c: Row, margin: float | None) -> Finding:
    """Dispatch on the metric's method."""
    if th.spec.method == SAMPLES:
        return judge_samples(f, th, b, c, margin)
    if th.spec.method == PAIRED:
        return judge_paired(f, th, b, c, margin)
    return judge_single(f, th, b, c)


def has_metric(rows: Sequence[Row], metric: str) -> bool:
    """Whether any row has ``metric`` (its value, or its samples or chunk values)."""
    spec = METRICS[metric]
    cols = [metric] + ([spec.samples] if spec.samples else []) + \
        (["peak_rss_mb"] if metric == "peak_mem_mb" else [])
    return any(value(r, col) is not None for r in rows for col in cols)


def has_samples(rows: Sequence[Row], metric: str) -> bool:
    """Whether any row has samples (or chunk values) of ``metric``."""
    col = METRICS[metric].samples
    return col is not None and any(value(r, col) for r in rows)
