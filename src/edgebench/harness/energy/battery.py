"""Linux battery discharge: ``/sys/class/power_supply/BAT*`` on laptops and boards.

The battery's own gauge is the meter, so it counts only while the machine runs from it: every
battery must report ``Discharging`` (or ``Not charging`` beside one that discharges); on AC
power the energy comes from the wall and the meter is not used. Per battery, in order of
preference: ``energy_now`` (µWh), ``charge_now`` (µAh) × ``voltage_now`` (µV), or
``power_now`` (µW) integrated between readings (then the recorder samples it every interval).
Joules are accumulated reading by reading — a drop in charge times the mean voltage over it —
so the voltage sagging under load is not counted as energy. The gauge updates every few
seconds (firmware-dependent; edgebench takes 5 s): a window must last 10 updates (50 s), and
the phase split is practically always null.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.harness.energy.base import Availability, MeterError, Reading

ROOT = Path("/sys/class/power_supply")
INTERVAL_S = 5.0
_DRAINING = {"Discharging"}
_IDLE = {"Not charging"}


def _read(path: Path) -> str:
    return path.read_text().strip()


def _num(path: Path) -> int | None:
    try:
        return int(_read(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise MeterError(f"battery: cannot read {path}: {e}") from e


@dataclass
class _Battery:
    path: Path
    mode: str  # "energy", "charge" or "power"
    last: tuple[int, int, int] = (0, 0, 0)  # (value, voltage µV, t ns)


def _mode(bat: Path) -> str | None:
    if (bat / "energy_now").exists():
        return "energy"
    if (bat / "charge_now").exists() and (bat / "voltage_now").exists():
        return "charge"
    if (bat / "power_now").exists():
        return "power"
    return None


class BatteryMeter:
    """Energy drawn from the battery; ``root`` injectable for tests."""

    name = "battery"
    interval_s: float | None = INTERVAL_S

    def __init__(self, root: Path | str = ROOT) -> None:
        self.root = Path(root)
        self.domains = ""
        self.needs_sampling = False
        self._bats: list[_Battery] = []
        self._joules = 0.0

    def _batteries(self) -> list[Path]:
        return sorted(d for d in self.root.glob("BAT*") if d.is_dir())

    def _status(self) -> list[str]:
        try:
            return [_read(b / "status") for b in self._batteries()]
        except OSError as e:
            raise MeterError(f"battery: cannot read its status: {e}") from e

    def _check_discharging(self) -> None:
        states = self._status()
        if not any(s in _DRAINING for s in states) or any(
                s not in _DRAINING | _IDLE for s in states):
            raise MeterError(f"battery: not discharging (status {', '.join(states)}): on AC "
                             "power the energy comes from the wall")

    def available(self) -> Availability:
        bats = self._batteries()
        if not bats:
            return Availability(False, False, f"no battery under {self.root}", "")
        if any(_mode(b) is None for b in bats):
            return Availability(True, False, "the battery reports neither energy_now, "
                                "charge_now with voltage_now, nor power_now", "")
        try:
            self._check_discharging()
            for b in bats:
                self._value(_Battery(b, _mode(b)))
        except MeterError as e:
            enable = ("unplug the charger" if "not discharging" in str(e)
                      else "make /sys/class/power_supply/BAT*/ readable")
            return Availability(True, False, str(e), enable)
        return Availability(True, True, "covers " + ",".join(b.name for b in bats)
                            + " (the whole machine, from the battery's gauge)")

    def _value(self, b: _Battery) -> tuple[int, int, int]:
        t = time.perf_counter_ns()
        if b.mode == "energy":
            v = _num(b.path / "energy_now")
            return (v, 0, t) if v is not None else self._gone(b)
        if b.mode == "charge":
            q, u = _num(b.path / "charge_now"), _num(b.path / "voltage_now")
            return (q, u, t) if q is not None and u is not None else self._gone(b)
        p = _num(b.path / "power_now")
        return (abs(p), 0, t) if p is not None else self._gone(b)

    def _gone(self, b: _Battery):
        raise MeterError(f"battery: {b.path} stopped reporting its {b.mode}")

    def start(self) -> None:
        bats = self._batteries()
        if not bats:
            raise MeterError(f"battery: none under {self.root}")
        self._check_discharging()
        self._bats = []
        for path in bats:
            mode = _mode(path)
            if mode is None:
                raise MeterError(f"battery: {path} reports no energy, charge or power")
            self._bats.append(_Battery(path, mode))
        for b in self._bats:
            b.last = self._value(b)
        self.needs_sampling = any(b.mode == "power" for b in self._bats)
        self.domains = ",".join(b.path.name for b in self._bats)
        self._joules = 0.0

    def read(self) -> Reading:
        if not self._bats:
            raise MeterError("battery: read before start")
        self._check_discharging()
        for b in self._bats:
            now = self._value(b)
            (v0, u0, t0), (v1, u1, t1) = b.last, now
            if b.mode == "energy":
                self._joules += (v0 - v1) * 3.6e-3  # µWh -> J
            elif b.mode == "charge":
                self._joules += (v0 - v1) * (u0 + u1) / 2 * 3.6e-9  # µAh × µV -> J
            else:
                self._joules += (v0 + v1) / 2 * (t1 - t0) / 1e15  # µW × ns -> J
            b.last = now
        return Reading(self._joules, time.perf_counter_ns())

    def close(self) -> None:
        self._bats = []
