"""Rank candidates: limits first, then a Pareto front, then a CI-aware weighted score.

1. Rows not measured by edgebench (``estimated``, ``simulated``, ``imported:*``) are left out
   and named: they never rank together with measured rows. One memory figure serves every
   candidate (``compare.memory_figure``: ``peak_mem_mb`` if all have it, else ``peak_rss_mb``);
   candidates with warnings (busy machine, disagreeing timings, a later failed rerun) are
   ranked but named in the notes.
2. Each limit of :class:`Constraints` is checked against the median; a candidate lacking the
   metric a limit needs is rejected ("no kld_mean measured (run `edgebench quality ...`)").
   Limits apply in a fixed order, so the one that removed the last candidate can be named.
3. The score is the weighted sum of :mod:`edgebench.decision.model`'s normalized metrics; its
   interval comes from each metric's interval. Candidates whose score intervals overlap the best
   one's are TIED (reported as such, never ordered by their medians); the tie goes to the
   smallest artifact (then the name) among those on the Pareto front of medians.

Every order is a total order on the candidates' identity, so the answer does not depend on the
order of the input.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from edgebench.decision.compare import memory_figure, memory_note
from edgebench.decision.model import (
    KLD_SCALE,
    METRICS,
    Candidate,
    Constraints,
    Ranked,
    Recommendation,
    Rejected,
    Weights,
    fmt,
)
from edgebench.errors import ConfigError

_NEEDS = {"ppl_increase": "ppl", "model_mb": "model_bytes"}


def label(c: Candidate, metric: str) -> str:
    """A metric's name as the user reads it: ``memory_mb`` names its figure."""
    return c.memory_column if metric == "memory_mb" else metric


def violation(c: Candidate, metric: str, upper: bool, limit: float) -> str | None:
    """Why ``c`` fails the limit ``metric <= limit`` (``>=`` if not ``upper``), or None."""
    e = c.metric(metric)
    if e is None:
        need = _NEEDS.get(metric, label(c, metric))
        return f"no {need} measured (run `{METRICS[metric][2]}`)"
    if upper and e.value > limit or not upper and e.value < limit:
        op = ">" if upper else "<"
        if metric == "ppl_increase":
            return f"ppl_increase {e.value:+.1%} > {limit:+.1%}"
        return f"{label(c, metric)} {fmt(e.value)} {op} {fmt(limit)}"
    return None


def _norm(metric: str, value: float, best: float) -> float:
    if metric == "kld_mean":
        return math.exp(-(value - best) / KLD_SCALE)
    if METRICS[metric][0]:
        return value / best if best > 0 else 1.0
    return best / value if value > 0 else 1.0


def _dominates(a: Candidate, b: Candidate, metrics: Sequence[str]) -> bool:
    better = False
    for m in metrics:
        va, vb = a.metric(m).value, b.metric(m).value
        if not METRICS[m][0]:
            va, vb = -va, -vb
        if va < vb:
            return False
        better = better or va > vb
    return better


def rank(candidates: Iterable[Candidate], constraints: Constraints | None = None,
         weights: Weights | str = "balanced", *, target: str = "",
         steps: Sequence[str] = (), notes: Sequence[str] = ()) -> Recommendation:
    """Rank ``candidates`` for one target.

    Args:
        candidates: unique names (``Candidate.name``); any order.
        constraints: hard limits (default: none).
        weights: an ``--optimize`` mode or explicit :class:`Weights`.
        target: the device target's name, carried into the answer.
        steps, notes: lines from whoever built the candidates, kept in front of rank's own.

    Returns:
        A Recommendation; ``winner`` is None when nothing is left (``eliminated_by`` then
        names the limit that removed the last candidate, if a limit did).
    """
    w = Weights.for_mode(weights) if isinstance(weights, str) else weights
    cons = constraints or Constraints()
    cands = sorted(candidates, key=lambda c: c.key)
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        raise ConfigError(f"candidate names must be unique: {names}")
    steps, notes = list(steps), list(notes)
    rejected: dict[str, list[str]] = {}
    measured = [c for c in cands if c.measured]
    figure = memory_figure(c.peak_mem_mb for c in measured)
    cands = [dataclasses.replace(c, memory_figure=figure) for c in cands]
    if measured and (line := memory_note(figure, sum(c.peak_mem_mb is None for c in measured),
                                         len(measured))):
        notes.append(line)
    steps.append(f"memory figure: {figure}")
    for c in cands:
        if c.measured and c.warnings:
            notes.append(f"⚠ {c.name}: {'; '.join(c.warnings)}")

    others = [c for c in cands if not c.measured]
    for c in others:
        rejected[c.name] = [f"measurement {c.measurement!r}: not ranked with measured rows"]
    if others:
        line = (f"left out {len(others)} row(s) not measured by edgebench "
                f"({', '.join(sorted({str(c.measurement) for c in others}))}): "
                f"{', '.join(c.name for c in others)}")
        steps.append(line)
        notes.append(line)

    alive = [c for c in cands if c.measured]
    steps.append(f"{len(alive)} measured candidate(s): {', '.join(c.name for c in alive)}")
    eliminated_by = None
    for flag, metric, upper, limit in cons.checks():
        before = len(alive)
        for c in cands:
            if c.measured and (why := violation(c, metric, upper, limit)):
                rejected.setdefault(c.name, []).append(why)
        out = [c for c in alive if violation(c, metric, upper, limit)]
        alive = [c for c in alive if c not in out]
        steps.append(f"{flag} {fmt(limit)}: {len(out)} of {before} left out"
                     + (f" ({', '.join(c.name for c in out)})" if out else ""))
        if before and not alive:
            eliminated_by = f"{flag} {fmt(limit)}"

    rec = dict(target=target, optimize=w.mode, constraints=cons, memory_figure=figure,
               rejected=tuple(Rejected(c, tuple(rejected[c.name]))
                              for c in cands if c.name in rejected))
    if not alive:
        if eliminated_by:
            steps.append(f"no candidate left: {eliminated_by} eliminated the last one(s)")
        return Recommendation(**rec, steps=tuple(steps), notes=tuple(notes),
                              eliminated_by=eliminated_by)
    ranked, more = _score(alive, w)
    notes += [s for s in more if " left out of the score " in s]
    return Recommendation(**rec, **ranked, steps=tuple(steps + more), notes=tuple(notes))


def _score(alive: list[Candidate], w: Weights) -> tuple[dict, list[str]]:
    steps: list[str] = []
    used = []
    for m, weight in w.terms:
        lacking = [c.name for c in alive if c.metric(m) is None]
        if weight <= 0:
            continue
        if lacking:
            steps.append(f"{m} not measured for {len(lacking)} of {len(alive)} candidate(s) "
                         f"({', '.join(lacking)}): left out of the score "
                         f"(run `{METRICS[m][2]}`)")
        else:
            used.append((m, weight))
    total = sum(x for _, x in used)
    used = [(m, x / total) for m, x in used]
    metrics = [m for m, _ in used]
    best = {m: (max if METRICS[m][0] else min)(c.metric(m).value for c in alive)
            for m in metrics}
    steps.append(f"objective {w.mode}: " + (", ".join(f"{m} {x:.2f}" for m, x in used)
                                             or "no metric measured for every candidate"))
    if metrics:
        steps.append("best medians: " + ", ".join(f"{m} {fmt(best[m])}" for m in metrics))

    def score(c: Candidate) -> tuple[float, float, float]:
        if not used:
            return 1.0, 1.0, 1.0
        mid = lo = hi = 0.0
        for m, x in used:
            e = c.metric(m)
            a, b = e.interval
            bad, good = (a, b) if METRICS[m][0] else (b, a)
            mid += x * _norm(m, e.value, best[m])
            lo += x * _norm(m, bad, best[m])
            hi += x * _norm(m, good, best[m])
        return mid, lo, hi

    scores = {c.name: score(c) for c in alive}
    order = sorted(alive, key=lambda c: (-scores[c.name][0], c.key))
    dominated = {c.name: next((d for d in order if _dominates(d, c, metrics)), None)
                 for c in order}
    front = [c for c in order if dominated[c.name] is None]
    top = front[0]
    _, tlo, thi = scores[top.name]
    group = [c for c in order if scores[c.name][2] >= tlo and scores[c.name][1] <= thi]
    # Only front members can win a tie, so a dominated newcomer never changes the winner.
    winner = min((c for c in group if dominated[c.name] is None),
                 key=lambda c: (math.inf if c.model_bytes is None else c.model_bytes, c.key))
    steps.append("Pareto front: " + ", ".join(c.name for c in front))
    steps.append("scores: " + ", ".join(
        f"{c.name} {scores[c.name][0]:.3f} [{scores[c.name][1]:.3f}-{scores[c.name][2]:.3f}]"
        for c in order))
    if len(group) > 1:
        steps.append(f"tied (score intervals overlap): {', '.join(c.name for c in group)}; "
                     f"the smaller artifact wins a tie: {winner.name}")
    steps.append(f"winner: {winner.name}")

    def ranked(c: Candidate, reason: str = "") -> Ranked:
        s = scores[c.name]
        return Ranked(c, s[0], s[1], s[2], dominated[c.name] is None, reason)

    ws = scores[winner.name]
    ties = tuple(ranked(c, f"tied with {winner.name}: score {_iv(scores[c.name])} overlaps "
                           f"{_iv(ws)}") for c in order if c in group and c is not winner)
    runners = tuple(ranked(c, _why_lost(c, winner, dominated[c.name], used, best, scores))
                    for c in order if c not in group)
    return dict(winner=ranked(winner), ties=ties, runners_up=runners), steps


def _iv(s: tuple[float, float, float]) -> str:
    return f"{s[1]:.2f}-{s[2]:.2f}"


def _why_lost(c: Candidate, winner: Candidate, dom: Candidate | None,
              used: list[tuple[str, float]], best: dict[str, float], scores: dict) -> str:
    other = dom or winner
    head = (f"dominated by {dom.name}" if dom is not None
            else f"score {scores[c.name][0]:.2f} ({_iv(scores[c.name])}) < "
                 f"{scores[winner.name][0]:.2f} ({_iv(scores[winner.name])})")
    if not used:
        return head
    loss = {m: x * (_norm(m, other.metric(m).value, best[m])
                    - _norm(m, c.metric(m).value, best[m])) for m, x in used}
    m = max(loss, key=lambda k: (loss[k], k))
    if loss[m] <= 0:
        return head
    unit = METRICS[m][1]
    return (f"{head}: {label(c, m)} {fmt(c.metric(m).value)} vs {fmt(other.metric(m).value)}"
            + (f" {unit}" if unit else ""))
