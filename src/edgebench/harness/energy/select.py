"""Which meter measures a run: the best readable one for its device, and every meter's state
for ``edgebench doctor``.

Preference per device: ``cuda`` -> nvml; ``cpu`` -> rapl, then apple (the SoC on a Mac),
then battery; ``metal`` -> apple, then battery; any other device -> none (no meter sees an
NPU or a Vulkan GPU apart from the whole machine; the battery would, but mixing it in for some
devices and not others would make their rows incomparable, so only CPU and Metal runs use it).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgebench.harness.energy.apple import AppleMeter
from edgebench.harness.energy.base import Availability, Meter
from edgebench.harness.energy.battery import BatteryMeter
from edgebench.harness.energy.nvml import NvmlMeter
from edgebench.harness.energy.rapl import RaplMeter

#: Meters tried for each device, best first.
PREFERENCE = {
    "cuda": ("nvml",),
    "cpu": ("rapl", "apple", "battery"),
    "metal": ("apple", "battery"),
}


def all_meters() -> dict[str, Meter]:
    """A fresh instance of every real meter, by name (tests replace this function)."""
    return {m.name: m for m in (RaplMeter(), NvmlMeter(), BatteryMeter(), AppleMeter())}


@dataclass(frozen=True)
class Choice:
    """The meter a run uses (``None``: none), and, when a meter that would have served is
    present but unreadable, why (for ``energy_note``)."""

    meter: Meter | None
    note: str | None = None

    @property
    def method(self) -> str:
        return self.meter.name if self.meter is not None else "none"


def _safe(meter: Meter) -> Availability:
    try:
        return meter.available()
    except Exception as e:  # noqa: BLE001 - a probe must never fail a run
        return Availability(False, False, f"probe failed: {type(e).__name__}: {e}")


def choose(device: str, meters: dict[str, Meter] | None = None) -> Choice:
    """The first readable meter in :data:`PREFERENCE` for ``device``; with none, a note
    naming each meter that is present but unreadable and why."""
    meters = all_meters() if meters is None else meters
    unreadable = []
    for name in PREFERENCE.get(device, ()):
        meter = meters.get(name)
        if meter is None:
            continue
        a = _safe(meter)
        if a.present and a.readable:
            return Choice(meter)
        if a.present:
            unreadable.append(f"{name} present but unreadable: {a.why}"
                              + (f" (to enable: {a.enable})" if a.enable else ""))
    return Choice(None, "; ".join(unreadable) or None)


def meters_report(meters: dict[str, Meter] | None = None) -> list[dict]:
    """Every meter's state for ``edgebench doctor``: ``name``, ``present``, ``readable``,
    ``why``, ``enable`` (a permission, a package, a kernel module), ``devices`` (the run
    devices it would measure)."""
    meters = all_meters() if meters is None else meters
    out = []
    for name, meter in meters.items():
        a = _safe(meter)
        out.append({"name": name, "present": a.present, "readable": a.readable, "why": a.why,
                    "enable": a.enable,
                    "devices": [d for d, names in PREFERENCE.items() if name in names]})
    return out
