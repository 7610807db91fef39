"""Decision outputs: a Recommendation (winner, ties, runners-up, rejections) or guidance."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from edgebench.decision.model import METRICS, Candidate
from edgebench.decision.objective import DEFAULT_MAX_KLD, DEFAULT_TIE_MARGIN, Constraints

if TYPE_CHECKING:  # snapdragon imports tree, which imports this module
    from edgebench.decision.snapdragon import SnapdragonEvidence

GUIDANCE_LABEL = "guidance, not measured on this device"


@dataclass(frozen=True)
class Ranked:
    """A feasible candidate: its score (at its medians), its probability of having the best
    score (``p_best``, bootstrap over its repetitions) and why it is not the winner ('' if it
    is)."""

    candidate: Candidate
    score: float
    p_best: float
    on_front: bool
    reason: str = ""


@dataclass(frozen=True)
class Rejected:
    """A candidate left out, with every reason (a violated limit, a missing metric, ...)."""

    candidate: Candidate
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Advice:
    """Guidance from the chapter's decision tree: not a measurement on any device."""

    target: str
    situation: str
    framework: str
    precision: str
    device: str
    reason: str
    claim: str
    measure: str  # the command that would measure it
    alternatives: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Recommendation:
    """The answer: a winner with runners-up, ties and rejections, or guidance (``guidance``
    True: from the decision tree, not measured on this device).

    Quality: ``unmeasured_quality`` names the measured candidates without a quality row;
    they are rejected unless ``quality_assumed`` (``--allow-unmeasured-quality``: ranked as if
    within the quality limits, said in the headline). ``needs_quality``: no candidate had
    quality, so there is no winner; ``measure_quality`` is the command that fills the gap.
    ``evidence``: for ``snapdragon``, QNN quality and Snapdragon speed per model and
    precision, each part labelled with its source (``decision.snapdragon``).
    """

    target: str
    optimize: str
    constraints: Constraints = field(default_factory=Constraints)
    winner: Ranked | None = None
    ties: tuple[Ranked, ...] = ()
    runners_up: tuple[Ranked, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    steps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # shown even without --explain (rows left out, empty store)
    eliminated_by: str | None = None  # the limit that removed the last feasible candidate
    memory_figure: str = "peak_rss_mb"  # the column every candidate's memory_mb read
    guidance: bool = False
    advice: Advice | None = None
    quality_floor: float = DEFAULT_MAX_KLD
    tie_margin: float = DEFAULT_TIE_MARGIN
    unmeasured_quality: tuple[str, ...] = ()
    quality_assumed: bool = False
    needs_quality: bool = False
    measure_quality: str = ""
    evidence: SnapdragonEvidence | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target, "optimize": self.optimize,
            "constraints": self.constraints.as_dict(), "quality_floor": self.quality_floor,
            "tie_margin": self.tie_margin, "guidance": self.guidance,
            "label": GUIDANCE_LABEL if self.guidance else "measured",
            "winner": _ranked(self.winner) if self.winner else None,
            "ties": [_ranked(r) for r in self.ties],
            "runners_up": [_ranked(r) for r in self.runners_up],
            "rejected": [{"candidate": _cand(r.candidate), "reasons": list(r.reasons)}
                         for r in self.rejected],
            "eliminated_by": self.eliminated_by, "memory_figure": self.memory_figure,
            "unmeasured_quality": list(self.unmeasured_quality),
            "quality_assumed": self.quality_assumed, "needs_quality": self.needs_quality,
            "measure_quality": self.measure_quality or None,
            "advice": _advice(self.advice) if self.advice else None,
            "evidence": self.evidence.as_dict() if self.evidence else None,
            "notes": list(self.notes), "steps": list(self.steps),
        }


def _cand(c: Candidate) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "framework": c.framework, "precision": c.precision,
                           "device": c.device, "model": c.model,
                           "measurement": c.measurement or "measured"}
    for m in METRICS:
        e = c.metric(m)
        out[m] = None if e is None else e.value
        if e is not None and e.interval[0] != e.interval[1]:
            out[f"{m}_interval"] = list(e.interval)
        if e is not None and e.samples:
            out[f"{m}_samples"] = list(e.samples)
    out.update(memory_figure=c.memory_column, peak_mem_mb=c.peak_mem_mb,
               peak_rss_mb=c.peak_rss_mb, kld_floor_mean=c.kld_floor,
               kld_at_floor=c.kld_at_floor, quality_measured=c.kld_mean is not None,
               quality_note=c.quality_note or None, hardware=c.hardware,
               warnings=list(c.warnings))
    if c.kld_mean is not None:
        out["kld_mean"] = c.kld_mean.value  # as measured; kld_at_floor says how it ranked
    return out


def _ranked(r: Ranked) -> dict[str, Any]:
    return {"candidate": _cand(r.candidate), "score": r.score, "p_best": r.p_best,
            "pareto": r.on_front, "reason": r.reason}


def _advice(a: Advice) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(a, f.name), tuple) else v)
            for f in fields(a)}
