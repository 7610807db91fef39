"""The arithmetic of a run's energy: gross and net of idle, per token, the phase split.

Pure functions over numbers (no meter, no clock), tested with hand-computed tables in
tests/test_energy.py. The rules (docs/energy.md):

- the meter is read once before the first timed repetition and once after the last; the
  joules in between, divided by the repetitions, are the gross energy of one repetition;
- the idle power, measured before the run, times the same span is subtracted: net energy;
- tokens of a repetition = prompt tokens + new tokens (every token the runtime processed);
- a window shorter than :data:`MIN_INTERVALS` meter updates gives no number (the counter's
  steps would be most of it);
- prefill/decode energy only when the resolution is shorter than every repetition's prefill
  and decode: never a time-proportional share of the total.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from edgebench.harness.energy.base import Reading

#: A window must hold at least this many meter updates for its joules to count: one update's
#: worth of quantization at each end is then at most 20 % of the figure.
MIN_INTERVALS = 10

#: Every energy column of the schema, as written by :func:`account` (null unless measured).
ENERGY_COLUMNS = (
    "energy_j", "j_per_token", "energy_gross_j", "j_per_token_gross", "tokens_per_j",
    "idle_power_w", "idle_window_s", "energy_prefill_j", "energy_decode_j",
    "energy_interval_ms", "energy_domains", "energy_note",
)


@dataclass(frozen=True)
class Phases:
    """One repetition's gross joules and seconds from the reading before ``generate`` to the
    first token (prefill) and from the first token to the reading after it (decode)."""

    prefill_j: float
    prefill_s: float
    decode_j: float
    decode_s: float


def empty(method: str = "none", note: str | None = None) -> dict:
    """Every energy column null, ``energy_method`` = ``method``, with ``note`` (why)."""
    cols = dict.fromkeys(ENERGY_COLUMNS)
    cols.update(energy_method=method, energy_note=note)
    return cols


def idle_power(gross_j: float, window_s: float) -> float:
    """Watts drawn over a quiet window: joules / seconds.

    Raises:
        ValueError: a window that is not positive.
    """
    if window_s <= 0:
        raise ValueError(f"idle window must be positive, got {window_s}")
    return gross_j / window_s


def split_allowed(resolution_s: float | None, phases: Sequence[Phases]) -> bool:
    """True when the meter resolves both phases of every repetition: its interval is known and
    shorter than the shortest prefill and the shortest decode."""
    if resolution_s is None or not phases:
        return False
    return all(resolution_s < p.prefill_s and resolution_s < p.decode_s for p in phases)


def account(*, method: str, gross_j: float, span_s: float, repetitions: int,
            tokens_per_rep: int, idle_w: float | None, idle_window_s: float | None,
            interval_s: float | None, domains: str | None,
            phases: Sequence[Phases] = (), resolution_s: float | None = None) -> dict:
    """The energy columns of one row.

    Args:
        method: the meter's name (``energy_method``).
        gross_j: joules the meter counted from before the first timed repetition to after
            the last (cool-downs included: idle is subtracted over them too).
        span_s: the seconds between those two readings.
        repetitions: timed repetitions in the span.
        tokens_per_rep: prompt + new tokens of one repetition.
        idle_w: idle power measured before the run, ``None`` when not measured.
        idle_window_s: the window it was measured over.
        interval_s: the meter's update interval, ``None`` if unknown.
        domains: what the meter covers.
        phases: per repetition, gross joules and seconds of prefill and decode, when the meter
            was sampled during the repetitions; empty otherwise.
        resolution_s: the time resolution of those samples (the meter's interval or the
            sampling period, whichever is longer); defaults to ``interval_s``.

    Returns:
        The columns of :data:`ENERGY_COLUMNS` plus ``energy_method``. Gross figures are per
        repetition; net ones subtract ``idle_w`` × seconds. A window too short for the meter
        gives no numbers and a note; a net energy that is not positive gives the gross
        figures and a note, never a negative or zero net.
    """
    if repetitions < 1 or tokens_per_rep < 1 or span_s <= 0:
        return empty(note=f"{method}: nothing to account (repetitions {repetitions}, "
                          f"tokens {tokens_per_rep}, span {span_s:g} s)")
    if interval_s is not None and span_s < MIN_INTERVALS * interval_s:
        return empty(note=f"{method}: the timed window ({span_s:.3g} s) is shorter than "
                          f"{MIN_INTERVALS} updates of the meter ({interval_s:g} s each); "
                          f"more repetitions or tokens would make it measurable")
    cols = empty(method)
    gross = gross_j / repetitions
    cols.update(
        energy_gross_j=gross, j_per_token_gross=gross / tokens_per_rep,
        energy_interval_ms=interval_s * 1000 if interval_s is not None else None,
        energy_domains=domains or None,
    )
    if idle_w is None:
        cols["energy_note"] = f"{method}: idle power not measured, so no net energy"
        return cols
    cols.update(idle_power_w=idle_w, idle_window_s=idle_window_s)
    net = (gross_j - idle_w * span_s) / repetitions
    if net <= 0:
        cols["energy_note"] = (f"{method}: net energy not positive ({gross_j:.4g} J gross "
                               f"against {idle_w:.4g} W idle × {span_s:.4g} s): the run's draw "
                               f"is within the idle level's noise")
        return cols
    cols.update(energy_j=net, j_per_token=net / tokens_per_rep, tokens_per_j=tokens_per_rep / net)
    res = resolution_s if resolution_s is not None else interval_s
    if split_allowed(res, phases):
        n = len(phases)
        cols["energy_prefill_j"] = sum(p.prefill_j - idle_w * p.prefill_s for p in phases) / n
        cols["energy_decode_j"] = sum(p.decode_j - idle_w * p.decode_s for p in phases) / n
    return cols


def energy_at(samples: Sequence[Reading], t: int) -> float | None:
    """The cumulative joules at time ``t`` (ns), linear between the two readings around it
    (at most one sampling period apart); ``None`` outside the readings. ``samples`` sorted by
    time."""
    if not samples or t < samples[0].t or t > samples[-1].t:
        return None
    i = bisect.bisect_left([s.t for s in samples], t)
    after = samples[i]
    if after.t == t or i == 0:
        return after.joules
    before = samples[i - 1]
    frac = (t - before.t) / (after.t - before.t)
    return before.joules + frac * (after.joules - before.joules)


def phases_of(samples: Sequence[Reading], brackets: Sequence[tuple[Reading, Reading]],
              first_token_ns: Sequence[int]) -> list[Phases]:
    """Per repetition, prefill and decode from the readings just before and after it and the
    cumulative joules interpolated at its first token; empty if any first token falls outside
    the samples."""
    out = []
    for (before, after), t1 in zip(brackets, first_token_ns):
        at = energy_at(samples, t1)
        if at is None or not before.t <= t1 <= after.t:
            return []
        out.append(Phases(prefill_j=at - before.joules, prefill_s=(t1 - before.t) / 1e9,
                          decode_j=after.joules - at, decode_s=(after.t - t1) / 1e9))
    return out
