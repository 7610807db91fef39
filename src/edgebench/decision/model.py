"""Decision inputs: frozen dataclasses, no I/O, no clock.

``objective`` holds what a ranking optimizes (``--optimize`` weights, limits, the quality floor
and the tie margin), ``result`` what it answers.

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
from dataclasses import dataclass

from edgebench.decision.compare import at_floor

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


@dataclass(frozen=True)
class Estimate:
    """A median with its spread. ``interval`` (shown, never used to decide) is min-max of the
    repetitions when known, else +-1.96 standard errors, else the point. ``samples`` are the
    per-repetition values (every launch's, for a row merged from several): ranking bootstraps
    them for P(best) and ties."""

    value: float
    low: float | None = None
    high: float | None = None
    stderr: float | None = None
    stdev: float | None = None
    n: int | None = None
    samples: tuple[float, ...] = ()

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
    doubtful (a busy machine, disagreeing timings, a later failed rerun). ``suite``: the suite
    that measured it (for the command that measures its quality); ``quality_note``: how its
    quality was obtained when not from a row of its own (the quality reference).
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
    suite: str = ""
    quality_note: str = ""

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


def fmt(value: float) -> str:
    """A number as people read it: 812, 31.2, 0.0123."""
    a = abs(value)
    if a >= 100:
        return f"{value:.0f}"
    if a >= 1:
        return f"{value:.1f}"
    return "0" if a == 0 else f"{value:.3g}"


def fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Two different numbers formatted so that they read different (15.24 vs 15.21: not
    "15.2 vs 15.2"); equal numbers read equal."""
    sa, sb = fmt(a), fmt(b)
    digits = 3
    while sa == sb and a != b and digits < 12:
        digits += 1
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
    return sa, sb
