"""Sustained runs (``edgebench run --sustain 10m``): what continuous generation does to speed.

Pure (no I/O, no clock): the duration grammar and the analysis of a series of windows. Each
window is one generation restarted from the same context (so KV-cache growth is never taken for
throttling); the harness records its end time and decode tok/s, with CPU frequency and
temperature where readable.

- **First minute**: the median decode tok/s of the windows that end within the first 60 s
  (the first window alone when it is longer than a minute).
- **Steady state**: the median of the last 20 % of windows (at least one).
- **Throttle onset**: the end time of the first window from which the rolling median (over
  :data:`ROLLING` windows) stays more than 10 % below the first minute's speed until the end;
  None when it never does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import median

from edgebench.errors import ConfigError

FIRST_MINUTE_S = 60.0
STEADY_SHARE = 0.2
THROTTLE_DROP = 0.10
ROLLING = 5
MAX_SUSTAIN_S = 24 * 3600.0
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str) -> float:
    """Seconds of a duration: ``"10m"``, ``"90s"``, ``"1h30m"``, ``"2.5m"`` or plain seconds
    (``"45"``).

    Raises:
        ConfigError: not a duration, zero, or longer than 24 h (one line, with examples).
    """
    raw = str(text).strip().lower()
    seconds: float | None = None
    try:
        seconds = float(raw)
    except ValueError:
        parts = _PART.findall(raw)
        if parts and "".join(n + u for n, u in parts) == raw and \
                len({u for _, u in parts}) == len(parts):
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds is None or not math.isfinite(seconds):
        raise ConfigError(f"--sustain: expected a duration such as 10m, 90s or 1h30m, got "
                          f"{text!r}")
    if not 0 < seconds <= MAX_SUSTAIN_S:
        raise ConfigError(f"--sustain: expected a duration above 0 and up to 24h, got {text!r}")
    return seconds


@dataclass(frozen=True)
class SustainSummary:
    first_minute_tok_s: float
    steady_tok_s: float
    throttle_onset_s: float | None
    windows: int


def rolling_median(values: list[float], k: int = ROLLING) -> list[float]:
    """The median of each value and the up to ``k - 1`` before it."""
    return [median(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


def summarize(t_end_s: list[float], tok_s: list[float]) -> SustainSummary:
    """First-minute speed, steady state and throttle onset of a series of windows.

    Raises:
        ValueError: no window, or series of different lengths.
    """
    if not tok_s or len(t_end_s) != len(tok_s):
        raise ValueError(f"a sustained run needs windows with an end time and a speed each; "
                         f"got {len(t_end_s)} times and {len(tok_s)} speeds")
    first = [v for t, v in zip(t_end_s, tok_s) if t <= FIRST_MINUTE_S] or tok_s[:1]
    first_minute = median(first)
    tail = max(1, math.ceil(len(tok_s) * STEADY_SHARE))
    steady = median(tok_s[-tail:])
    limit = first_minute * (1 - THROTTLE_DROP)
    roll = rolling_median(tok_s)
    onset = None
    for i in range(len(roll) - 1, -1, -1):  # the earliest start of a run of lows to the end
        if roll[i] < limit:
            onset = t_end_s[i]
        else:
            break
    return SustainSummary(first_minute, steady, onset, len(tok_s))
