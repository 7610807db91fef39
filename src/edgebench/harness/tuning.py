"""Tuning environment variables of the measurement, parsed and bounded in one place.

``EDGEBENCH_RSS_INTERVAL_S`` (the memory sampler's period), ``EDGEBENCH_BUSY_BEFORE_S`` (the
quiet window watched before a measurement) and ``EDGEBENCH_IDLE_WINDOW_S`` (the window of idle
power before a metered run) change how a run is measured: a period of 0 or
``nan`` would make the sampler spin a core beside the runtime and skew every number. A bad
value is one ``ConfigError`` naming the variable; :func:`check` asks before a sweep, in the
parent, so nothing is measured with it.
"""

from __future__ import annotations

import math
import os

from edgebench.errors import ConfigError

RSS_INTERVAL_ENV = "EDGEBENCH_RSS_INTERVAL_S"
BUSY_BEFORE_ENV = "EDGEBENCH_BUSY_BEFORE_S"
IDLE_WINDOW_ENV = "EDGEBENCH_IDLE_WINDOW_S"
#: Default seconds of the idle-power window before a metered run (docs/energy.md).
IDLE_WINDOW_S = 2.0
#: (low, high) seconds each variable may be.
BOUNDS = {RSS_INTERVAL_ENV: (0.01, 10.0), BUSY_BEFORE_ENV: (0.0, 60.0),
          IDLE_WINDOW_ENV: (0.5, 60.0)}


def seconds(name: str, default: float) -> float:
    """The environment variable ``name`` as seconds within ``BOUNDS[name]``, else ``default``
    when it is unset or empty.

    Raises:
        ConfigError: not a number, not finite, or out of bounds (naming the variable).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    lo, hi = BOUNDS[name]
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{name}={raw[:40]!r}: expected a number of seconds from {lo:g} to "
                          f"{hi:g} (unset it for the default, {default:g})")
    return value


def rss_interval_s() -> float:
    """The memory sampler's period (``EDGEBENCH_RSS_INTERVAL_S``, default 0.25 s)."""
    from edgebench.harness.memory import DEFAULT_INTERVAL_S

    return seconds(RSS_INTERVAL_ENV, DEFAULT_INTERVAL_S)


def busy_before_s() -> float:
    """The quiet window before a measurement (``EDGEBENCH_BUSY_BEFORE_S``)."""
    from edgebench.harness.busy import BEFORE_S

    return seconds(BUSY_BEFORE_ENV, BEFORE_S)


def idle_window_s() -> float:
    """The quiet window over which idle power is measured before a metered run
    (``EDGEBENCH_IDLE_WINDOW_S``, default 2 s; a slow meter lengthens it, docs/energy.md)."""
    return seconds(IDLE_WINDOW_ENV, IDLE_WINDOW_S)


def check() -> None:
    """Refuse a bad tuning variable before a sweep measures anything.

    Raises:
        ConfigError: naming the variable and the values it takes.
    """
    rss_interval_s()
    busy_before_s()
    idle_window_s()
