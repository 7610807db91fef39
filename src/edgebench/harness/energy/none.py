"""No meter: the run records ``energy_method = "none"`` and every energy column null. Never a
TDP or utilisation estimate in its place."""

from __future__ import annotations

from edgebench.harness.energy.base import Availability, MeterError, Reading


class NoMeter:
    name = "none"
    interval_s: float | None = None
    domains = ""
    needs_sampling = False

    def available(self) -> Availability:
        return Availability(True, True, "measures nothing: energy columns stay null")

    def start(self) -> None:
        pass

    def read(self) -> Reading:
        raise MeterError("none: there is no meter to read")

    def close(self) -> None:
        pass
