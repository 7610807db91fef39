"""What a gate checks: the metrics it knows and the ``--fail-on`` expressions that gate them.

An expression is ``METRIC:+N%`` / ``METRIC:-N%`` (relative: the sign is the direction that is
bad) or ``METRIC:+X`` / ``METRIC:-X`` (absolute, in the metric's units). It is parsed here, at
the edge, into a :class:`Threshold`; anything else is one ``ConfigError`` line that shows the
grammar and the known metrics.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from edgebench.errors import ConfigError

#: How a metric's two sides are compared (docs/gate.md, "Methods").
SAMPLES, SINGLE, PAIRED = "samples", "single value", "paired chunks"


@dataclass(frozen=True)
class Metric:
    """A metric a gate can check: which direction is worse, how its sides are compared
    (``method``), the row kind it lives on, and the column of its samples or chunk values."""

    name: str
    worse: str  # "higher" | "lower"
    method: str
    kind: str  # "speed" | "quality"
    unit: str
    samples: str | None = None  # <metric>_samples, or the per-chunk column of a paired metric
    relative_ok: bool = True
    absolute_ok: bool = True
    why_not: str = ""  # why a form is refused


def _timing(name: str, worse: str, unit: str) -> Metric:
    return Metric(name, worse, SAMPLES, "speed", unit, f"{name}_samples")


METRICS: dict[str, Metric] = {m.name: m for m in (
    _timing("decode_tok_s", "lower", "tok/s"),
    _timing("prefill_tok_s", "lower", "tok/s"),
    _timing("ttft_ms", "higher", "ms"),
    _timing("tpot_ms", "higher", "ms"),
    _timing("e2e_s", "higher", "s"),
    Metric("peak_mem_mb", "higher", SINGLE, "speed", "MB"),
    Metric("peak_rss_mb", "higher", SINGLE, "speed", "MB"),
    Metric("load_s", "higher", SINGLE, "speed", "s"),
    Metric("j_per_token", "higher", SINGLE, "speed", "J"),
    Metric("kld_mean", "higher", PAIRED, "quality", "nats", "chunk_kld", relative_ok=False,
           why_not="a KLD is a distance from the reference (0 at the reference itself): "
                   "give it in nats, e.g. kld_mean:+0.01"),
    Metric("ppl", "higher", PAIRED, "quality", "", "chunk_nll", absolute_ok=False,
           why_not="perplexity is compared as a ratio (exp of the mean per-chunk NLL "
                   "difference): give it in percent, e.g. ppl:+1%"),
    Metric("kld_p99", "higher", SINGLE, "quality", "nats", relative_ok=False,
           why_not="give a KLD in nats, e.g. kld_p99:+0.05"),
    Metric("top1_agree", "lower", SINGLE, "quality", "", relative_ok=False,
           why_not="top-1 agreement is a share: give it as one, e.g. top1_agree:-0.01"),
    Metric("scored_tok_s", "lower", SINGLE, "quality", "tok/s"),
)}


@dataclass(frozen=True)
class Threshold:
    """One gated metric: ``limit`` is a positive fraction when ``relative`` (0.05: 5 %), else
    in the metric's units; ``explicit`` is False for the defaults (gated only where both
    sides have the metric)."""

    metric: str
    relative: bool
    limit: float
    text: str
    explicit: bool = True

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]


#: Used when no --fail-on is given; each only where both sides have the metric.
DEFAULTS = ("decode_tok_s:-5%", "ttft_ms:+10%", "peak_mem_mb:+5%", "kld_mean:+0.01")

GRAMMAR = ("METRIC:+N% or METRIC:-N% (relative; the sign is the direction that is bad) or "
           "METRIC:+X / METRIC:-X (absolute, in the metric's units)")

_EXPR = re.compile(r"^\s*([A-Za-z0-9_]*)\s*:\s*([+-]?)\s*([^%\s]*)\s*(%?)\s*$")


def known() -> str:
    """The known metrics with their bad direction, for error lines."""
    return ", ".join(f"{m.name} ({'+' if m.worse == 'higher' else '-'})"
                     for m in METRICS.values())


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(f"bad --fail-on {text!r}: {why}; write {GRAMMAR}; known metrics "
                       f"(bad direction): {known()}")


def _number(raw: str, text: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _bad(text, f"{raw!r} is not a number" if raw else "no number") from None
    if not math.isfinite(value) or value <= 0:
        raise _bad(text, f"the size must be a positive number, got {raw!r}")
    return value


def parse(text: str, *, explicit: bool = True) -> Threshold:
    """Parse one ``--fail-on`` expression.

    Raises:
        ConfigError: one line: what is wrong, the grammar and the known metrics.
    """
    m = _EXPR.match(text)
    if not m:
        raise _bad(text, "expected METRIC:SIGN SIZE")
    name, sign, raw, pct = m.groups()
    if name not in METRICS:
        raise _bad(text, f"unknown metric {name!r}" if name else "no metric")
    spec = METRICS[name]
    bad_sign = "+" if spec.worse == "higher" else "-"
    if not sign:
        raise _bad(text, f"the sign says which direction is bad: {name}:{bad_sign}{raw}{pct}")
    if sign != bad_sign:
        better = "lower" if spec.worse == "higher" else "higher"
        raise _bad(text, f"{name} is better {better}, so its bad direction is {bad_sign}: "
                         f"{name}:{bad_sign}{raw}{pct}")
    value = _number(raw, text)
    relative = pct == "%"
    if relative and not spec.relative_ok or not relative and not spec.absolute_ok:
        raise _bad(text, spec.why_not)
    if relative and value >= 100 and spec.worse == "lower":
        raise _bad(text, f"a drop of {raw}% or more cannot happen to {name}")
    limit = value / 100 if relative else value
    return Threshold(name, relative, limit, f"{name}:{sign}{raw}{pct}", explicit)


def parse_all(texts: tuple[str, ...] | list[str]) -> list[Threshold]:
    """The thresholds of ``--fail-on`` (the defaults when none is given), one per metric.

    Raises:
        ConfigError: a bad expression, or one metric given twice.
    """
    if not texts:
        return [parse(t, explicit=False) for t in DEFAULTS]
    out: dict[str, Threshold] = {}
    for text in texts:
        t = parse(text)
        if t.metric in out:
            raise ConfigError(f"--fail-on gives {t.metric} twice ({out[t.metric].text} and "
                              f"{t.text}): keep one")
        out[t.metric] = t
    return list(out.values())


def parse_margin(text: str | None) -> float | None:
    """``--margin N%`` as a fraction (None: each threshold's own limit).

    Raises:
        ConfigError: not a percentage, or negative.
    """
    if text is None:
        return None
    m = re.fullmatch(r"\s*\+?\s*([0-9.eE+-]+)\s*%\s*", text)
    try:
        value = float(m.group(1)) if m else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or value >= 100:
        raise ConfigError(f"bad --margin {text!r}: give the equivalence band as a percentage "
                          "from 0 to 100, e.g. --margin 5%")
    return value / 100
