"""Decision inputs and outputs: frozen dataclasses, no I/O, no clock.

Objectives (``--optimize``) are weighted sums of normalized metrics; the weights:

========  ==========================================================================
mode      weights
========  ==========================================================================
speed     decode_tok_s 0.6, ttft_ms 0.3, memory_mb 0.1
memory    memory_mb 0.6, model_mb 0.2, decode_tok_s 0.2
quality   kld_mean 0.6, decode_tok_s 0.3, memory_mb 0.1
energy    j_per_token 0.6, decode_tok_s 0.3, memory_mb 0.1
balanced  decode_tok_s 0.35, memory_mb 0.25, kld_mean 0.25, ttft_ms 0.15
========  ==========================================================================

``memory_mb`` is one figure for every candidate of a ranking: ``peak_mem_mb`` (the kernel's
high-water mark minus the pre-import baseline) when all have it, else ``peak_rss_mb`` for all
(``compare.memory_figure``). A KLD at the reference's storage floor counts as 0.

Normalization needs only the best median of each metric among the feasible candidates (so a
dominated newcomer cannot change anyone's score): ``value / best`` for higher-is-better,
``best / value`` for lower-is-better, and ``exp(-(kld - best_kld) / 0.05)`` for KL divergence
(0 for the reference itself, so a ratio would not do; 0.05 nats is the scale at which a
quantization's drift is clearly visible). A metric that some feasible candidate lacks is left
out of the score (and the weights renormalized), never counted as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from edgebench.decision.compare import at_floor
from edgebench.errors import ConfigError

#: (metric, higher is better, unit, command that measures it)
METRICS: dict[str, tuple[bool, str, str]] = {
    "decode_tok_s": (True, "tok/s", "edgebench run ..."),
    "ttft_ms": (False, "ms", "edgebench run ..."),
    "memory_mb": (False, "MB", "edgebench run ..."),
    "model_mb": (False, "MB", "edgebench run ..."),
    "kld_mean": (False, "nats", "edgebench quality ..."),
    "ppl_increase": (False, "", "edgebench quality ..."),
    "j_per_token": (False, "J/token", "edgebench run ... with an energy meter"),
}

OPTIMIZE: dict[str, tuple[tuple[str, float], ...]] = {
    "speed": (("decode_tok_s", 0.6), ("ttft_ms", 0.3), ("memory_mb", 0.1)),
    "memory": (("memory_mb", 0.6), ("model_mb", 0.2), ("decode_tok_s", 0.2)),
    "quality": (("kld_mean", 0.6), ("decode_tok_s", 0.3), ("memory_mb", 0.1)),
    "energy": (("j_per_token", 0.6), ("decode_tok_s", 0.3), ("memory_mb", 0.1)),
    "balanced": (("decode_tok_s", 0.35), ("memory_mb", 0.25), ("kld_mean", 0.25),
                 ("ttft_ms", 0.15)),
}
#: KL divergence (nats) at which the quality term falls to 1/e.
KLD_SCALE = 0.05


@dataclass(frozen=True)
class Estimate:
    """A median with its spread. ``interval`` is min-max of the repetitions when known (with 5
    repetitions a 94 % interval for the median), else +-1.96 standard errors, else the point."""

    value: float
    low: float | None = None
    high: float | None = None
    stderr: float | None = None
    stdev: float | None = None
    n: int | None = None

    @property
    def interval(self) -> tuple[float, float]:
        if self.low is not None and self.high is not None:
            return min(self.low, self.value), max(self.high, self.value)
        err = self.stderr
        if err is None and self.stdev is not None and self.n and self.n > 1:
            err = self.stdev / math.sqrt(self.n)
        if err is not None:
            return self.value - 1.96 * err, self.value + 1.96 * err
        return self.value, self.value


@dataclass(frozen=True)
class Candidate:
    """One framework x precision x device measured for one model (a store row, joined with its
    quality row). ``name`` is unique within a ranking; it defaults to framework precision device.

    ``memory_figure`` names the column ``memory_mb`` reads (set by :func:`rank` for the whole
    ranking; empty: ``peak_mem_mb`` if present, else ``peak_rss_mb``). ``kld_floor`` is the
    reference's storage floor (``kld_floor_mean``). ``warnings``: what makes its numbers
    doubtful (a busy machine, disagreeing timings, a later failed rerun).
    """

    framework: str
    precision: str
    device: str
    model: str = ""
    name: str = ""
    machine_id: str = ""
    threads: int | None = None
    measurement: str | None = None  # None = measured
    decode_tok_s: Estimate | None = None
    ttft_ms: Estimate | None = None
    peak_rss_mb: float | None = None
    peak_mem_mb: float | None = None
    memory_figure: str = ""
    model_bytes: int | None = None
    kld_mean: Estimate | None = None
    ppl: Estimate | None = None
    ppl_reference: float | None = None
    j_per_token: float | None = None
    quality_reference: str | None = None
    kld_floor: float | None = None
    hardware: str = ""
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.framework} {self.precision} {self.device}")

    @property
    def measured(self) -> bool:
        return self.measurement in (None, "", "measured")

    @property
    def memory_column(self) -> str:
        """The column ``memory_mb`` reads: ``peak_mem_mb`` or ``peak_rss_mb``."""
        if self.memory_figure:
            return self.memory_figure
        return "peak_mem_mb" if self.peak_mem_mb is not None else "peak_rss_mb"

    @property
    def kld_at_floor(self) -> bool:
        """KLD below 3x the reference's storage floor: indistinguishable from the reference."""
        return at_floor(None if self.kld_mean is None else self.kld_mean.value, self.kld_floor)

    @property
    def key(self) -> tuple:
        """Total, input-independent order: name first, then every identity field."""
        return (self.name, self.framework, self.precision, self.device, self.model,
                self.machine_id, -1 if self.threads is None else self.threads)

    def metric(self, name: str) -> Estimate | None:
        """The candidate's value of a metric of :data:`METRICS` (derived ones included)."""
        if name == "memory_mb":
            v = getattr(self, self.memory_column)
            return None if v is None else Estimate(float(v))
        if name == "kld_mean" and self.kld_at_floor:
            return Estimate(0.0)  # at the floor: equal to the reference (and to each other)
        if name == "model_mb":
            return None if self.model_bytes is None else Estimate(self.model_bytes / 2**20)
        if name == "ppl_increase":
            if self.ppl is None or not self.ppl_reference:
                return None
            lo, hi = self.ppl.interval
            r = self.ppl_reference
            return Estimate(self.ppl.value / r - 1, lo / r - 1, hi / r - 1)
        value = getattr(self, name)
        if value is None or isinstance(value, Estimate):
            return value
        return Estimate(float(value))


@dataclass(frozen=True)
class Constraints:
    """Hard limits; None = no limit. ``max_ppl_increase`` is relative (0.05 = 5 %)."""

    max_memory_mb: float | None = None
    min_decode_tok_s: float | None = None
    max_ttft_ms: float | None = None
    max_kld: float | None = None
    max_ppl_increase: float | None = None
    max_j_per_token: float | None = None
    max_model_mb: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ConfigError(f"--{f.name.replace('_', '-')} must be >= 0, got {v}")

    def checks(self) -> list[tuple[str, str, bool, float]]:
        """(flag, metric, is an upper bound, limit) of each limit set, in a fixed order."""
        out = []
        for f in fields(self):
            limit = getattr(self, f.name)
            if limit is not None:
                out.append((f"--{f.name.replace('_', '-')}", _CHECKED[f.name],
                            f.name.startswith("max_"), float(limit)))
        return out

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


_CHECKED = {"max_memory_mb": "memory_mb", "min_decode_tok_s": "decode_tok_s",
            "max_ttft_ms": "ttft_ms", "max_kld": "kld_mean", "max_ppl_increase": "ppl_increase",
            "max_j_per_token": "j_per_token", "max_model_mb": "model_mb"}


@dataclass(frozen=True)
class Weights:
    """The objective: (metric, weight) terms; see the module docstring for each mode's."""

    mode: str
    terms: tuple[tuple[str, float], ...]

    @classmethod
    def for_mode(cls, optimize: str) -> Weights:
        if optimize not in OPTIMIZE:
            raise ConfigError(f"unknown --optimize {optimize!r}; choose one of "
                              f"{', '.join(OPTIMIZE)}")
        return cls(optimize, OPTIMIZE[optimize])


@dataclass(frozen=True)
class Ranked:
    """A feasible candidate: its score interval and why it is not the winner ('' if it is)."""

    candidate: Candidate
    score: float
    score_low: float
    score_high: float
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
    True: from the decision tree, not measured on this device)."""

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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target, "optimize": self.optimize,
            "constraints": self.constraints.as_dict(), "guidance": self.guidance,
            "label": GUIDANCE_LABEL if self.guidance else "measured",
            "winner": _ranked(self.winner) if self.winner else None,
            "ties": [_ranked(r) for r in self.ties],
            "runners_up": [_ranked(r) for r in self.runners_up],
            "rejected": [{"candidate": _cand(r.candidate), "reasons": list(r.reasons)}
                         for r in self.rejected],
            "eliminated_by": self.eliminated_by, "memory_figure": self.memory_figure,
            "advice": _advice(self.advice) if self.advice else None,
            "notes": list(self.notes), "steps": list(self.steps),
        }


GUIDANCE_LABEL = "guidance, not measured on this device"


def _cand(c: Candidate) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "framework": c.framework, "precision": c.precision,
                           "device": c.device, "model": c.model,
                           "measurement": c.measurement or "measured"}
    for m in METRICS:
        e = c.metric(m)
        out[m] = None if e is None else e.value
        if e is not None and e.interval[0] != e.interval[1]:
            out[f"{m}_interval"] = list(e.interval)
    out.update(memory_figure=c.memory_column, peak_mem_mb=c.peak_mem_mb,
               peak_rss_mb=c.peak_rss_mb, kld_floor_mean=c.kld_floor,
               kld_at_floor=c.kld_at_floor, hardware=c.hardware, warnings=list(c.warnings))
    if c.kld_mean is not None:
        out["kld_mean"] = c.kld_mean.value  # as measured; kld_at_floor says how it ranked
    return out


def _ranked(r: Ranked) -> dict[str, Any]:
    return {"candidate": _cand(r.candidate), "score": r.score,
            "score_interval": [r.score_low, r.score_high], "pareto": r.on_front,
            "reason": r.reason}


def _advice(a: Advice) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(a, f.name), tuple) else v)
            for f in fields(a)}


def fmt(value: float) -> str:
    """A number as people read it: 812, 31.2, 0.0123."""
    a = abs(value)
    if a >= 100:
        return f"{value:.0f}"
    if a >= 1:
        return f"{value:.1f}"
    return "0" if a == 0 else f"{value:.3g}"
