"""The meter interface: what every energy meter answers, and the values it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edgebench.errors import EdgebenchError


class MeterError(EdgebenchError):
    """A meter that was readable stopped giving a usable reading (file gone, permission lost,
    a counter that went backwards with no known range, a battery that began charging)."""


@dataclass(frozen=True)
class Availability:
    """Whether a meter can measure here.

    ``present``: the hardware or interface exists (a powercap zone, a GPU, a battery).
    ``readable``: edgebench can read it now. ``why`` says what is missing when either is
    False (or what is covered when both are True); ``enable`` what would make it readable (a
    permission, a package, a kernel module), empty when nothing would.
    """

    present: bool
    readable: bool
    why: str = ""
    enable: str = ""


@dataclass(frozen=True)
class Reading:
    """A cumulative energy reading: joules since the meter's ``start()``, already corrected
    for counter wrap-around, at ``t`` = ``time.perf_counter_ns()`` (the clock of
    :class:`~edgebench.harness.runner.TokenTimeline`)."""

    joules: float
    t: int


@runtime_checkable
class Meter(Protocol):
    """One energy meter. Implementations live in ``harness/energy/<meter>.py``.

    Attributes:
        name: the value recorded in ``energy_method`` (``rapl``, ``nvml``, ...).
        interval_s: how often the underlying counter updates (seconds), ``None`` if unknown;
            the phase split and the shortest usable window follow from it.
        domains: what the joules cover, e.g. ``"package-0,dram"`` or ``"gpu:0"`` (known
            after ``start()``).
        needs_sampling: the meter integrates a power reading, so it must be read at least
            every ``interval_s`` for its joules to mean anything.
    """

    name: str
    interval_s: float | None
    domains: str
    needs_sampling: bool

    def available(self) -> Availability:
        """Whether this meter can measure on this machine now (never raises)."""
        ...

    def start(self) -> None:
        """Open the meter and take the zero of its cumulative reading.

        Raises:
            MeterError: the meter cannot be read.
        """
        ...

    def read(self) -> Reading:
        """Joules since ``start()``. Read at least once per counter wrap period.

        Raises:
            MeterError: the reading failed or is no longer meaningful.
        """
        ...

    def close(self) -> None:
        """Release what ``start()`` opened (idempotent)."""
        ...
