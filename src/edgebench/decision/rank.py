"""Rank candidates: quality first, then limits, then a Pareto front and a weighted score.

1. Rows not measured by edgebench (``estimated``, ``simulated``, ``imported:*``) are left out
   and named: they never rank together with measured rows. One memory figure serves every
   candidate (``compare.memory_figure``: ``peak_mem_mb`` if all have it, else ``peak_rss_mb``);
   candidates with warnings (busy machine, disagreeing timings, a later failed rerun) are
   ranked but named in the notes.
2. **Quality**: a candidate without quality (no ``kld_mean``) could be a broken quantization,
   so it is not ranked; the command that measures it is given. If no candidate has quality,
   there is no winner: the answer is "measure quality first" (``needs_quality``). With
   ``allow_unmeasured_quality`` they are ranked as if they met the quality limits, and the
   headline says so (``quality_assumed``).
3. Each limit of :class:`Constraints` is checked against the median; the quality floor
   (``kld_mean <= 0.05`` unless ``--max-kld``) is one of them in every mode. A candidate
   lacking the metric a limit needs is rejected with the command that measures it. Limits
   apply in a fixed order, so the one that removed the last candidate can be named.
4. :func:`edgebench.decision.score.score` scores the rest, gives each its probability of
   having the best score, and calls a tie only on equivalence.

Every order is a total order on the candidates' identity, so the answer does not depend on the
order of the input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from edgebench.decision.compare import memory_figure, memory_note
from edgebench.decision.model import METRICS, Candidate, fmt
from edgebench.decision.objective import (
    DEFAULT_TIE_MARGIN,
    QUALITY_METRICS,
    Constraints,
    Weights,
)
from edgebench.decision.result import Recommendation, Rejected
from edgebench.decision.score import label, score
from edgebench.errors import ConfigError

_NEEDS = {"ppl_increase": "ppl", "model_mb": "model_bytes"}
#: The command that measures quality when the caller does not give one.
MEASURE_QUALITY = "edgebench quality <suite> --resume"


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


def _fails(c: Candidate, metric: str, upper: bool, limit: float, unknown: bool) -> str | None:
    """:func:`violation`, except that a candidate whose quality is unknown (assumed, or already
    rejected for lacking it) is not judged on a quality metric it lacks."""
    if unknown and metric in QUALITY_METRICS and c.metric(metric) is None:
        return None
    return violation(c, metric, upper, limit)


def quality_command(cands: Iterable[Candidate], given: str = "") -> str:
    """``given``, else ``edgebench quality <suite> --resume`` for the suites of ``cands``."""
    if given:
        return given
    suites = sorted({c.suite for c in cands if c.suite})
    if not suites:
        return MEASURE_QUALITY
    return " && ".join(f"edgebench quality {s} --resume" for s in suites)


def rank(candidates: Iterable[Candidate], constraints: Constraints | None = None,
         weights: Weights | str = "balanced", *, target: str = "",
         steps: Sequence[str] = (), notes: Sequence[str] = (),
         tie_margin: float = DEFAULT_TIE_MARGIN, allow_unmeasured_quality: bool = False,
         measure_quality: str = "") -> Recommendation:
    """Rank ``candidates`` for one target.

    Args:
        candidates: unique names (``Candidate.name``); any order.
        constraints: hard limits (default: none but the quality floor).
        weights: an ``--optimize`` mode or explicit :class:`Weights`.
        target: the device target's name, carried into the answer.
        steps, notes: lines from whoever built the candidates, kept in front of rank's own.
        tie_margin: scores within this relative margin (with their whole interval) tie.
        allow_unmeasured_quality: rank candidates without quality as if they met the quality
            limits (the answer says so loudly) instead of leaving them out.
        measure_quality: the command that measures the missing quality (default: from the
            candidates' suites).

    Returns:
        A Recommendation; ``winner`` is None when nothing is left (``eliminated_by`` then
        names the limit that removed the last candidate, if a limit did; ``needs_quality``
        when no candidate had quality).
    """
    w = Weights.for_mode(weights) if isinstance(weights, str) else weights
    cons = constraints or Constraints()
    if not 0 <= tie_margin < 1:
        raise ConfigError(f"--tie-margin must be in [0, 1), got {tie_margin}")
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
    gap = [c for c in alive if c.kld_mean is None]
    command = quality_command(gap, measure_quality) if gap else ""
    rec = dict(target=target, optimize=w.mode, constraints=cons, memory_figure=figure,
               quality_floor=cons.quality_floor, tie_margin=tie_margin,
               unmeasured_quality=tuple(c.name for c in gap), measure_quality=command,
               quality_assumed=bool(gap) and allow_unmeasured_quality)
    needs_quality = False
    if gap and allow_unmeasured_quality:
        steps.append(f"--allow-unmeasured-quality: {len(gap)} candidate(s) without quality "
                     f"ranked as if they met the quality limits: "
                     f"{', '.join(c.name for c in gap)} (measure with: {command})")
    elif gap:
        for c in gap:
            rejected[c.name] = [f"quality not measured: not ranked, it could be a broken "
                                f"quantization (measure it: {command}; "
                                f"--allow-unmeasured-quality ranks it anyway)"]
        alive = [c for c in alive if c.kld_mean is not None]
        needs_quality = not alive
        steps.append(f"quality not measured for {len(gap)} candidate(s), not ranked: "
                     f"{', '.join(c.name for c in gap)} (measure with: {command})"
                     + ("; no candidate has quality: measure quality first" if not alive
                        else ""))

    eliminated_by = None
    unknown = {c.name for c in gap}  # assumed, or already rejected for it
    for flag, metric, upper, limit in cons.checks():
        default = flag == "--max-kld" and cons.max_kld is None
        tag = " (the default quality floor; --max-kld sets another)" if default else ""
        before = len(alive)
        fails = {c.name: _fails(c, metric, upper, limit, c.name in unknown) for c in cands
                 if c.measured}
        for c in cands:  # every reason of every measured candidate, in the limits' order
            if c.measured and fails[c.name]:
                rejected.setdefault(c.name, []).append(fails[c.name] + tag)
        out = [c for c in alive if fails[c.name]]
        alive = [c for c in alive if c not in out]
        shown = f"{flag} {fmt(limit)}" + (" (default)" if default else "")
        steps.append(f"{shown}: {len(out)} of {before} left out"
                     + (f" ({', '.join(c.name for c in out)})" if out else ""))
        if before and not alive:
            eliminated_by = shown

    rec["rejected"] = tuple(Rejected(c, tuple(rejected[c.name]))
                            for c in cands if c.name in rejected)
    if not alive:
        if eliminated_by:
            steps.append(f"no candidate left: {eliminated_by} eliminated the last one(s)")
        return Recommendation(**rec, steps=tuple(steps), notes=tuple(notes),
                              eliminated_by=eliminated_by, needs_quality=needs_quality)
    ranked, more = score(alive, w, tie_margin)
    notes += [s for s in more if " left out of the score " in s]
    return Recommendation(**rec, **ranked, steps=tuple(steps + more), notes=tuple(notes))
