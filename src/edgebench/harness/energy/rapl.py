"""Linux RAPL through powercap: ``/sys/class/powercap/intel-rapl:*/energy_uj``.

The package domains (``intel-rapl:N``, named ``package-N``) and, where the kernel exposes one,
each package's DRAM subdomain (``intel-rapl:N:M`` named ``dram``) are summed. ``core``,
``uncore`` are parts of a package and ``psys`` overlaps it, so none is added. AMD Zen CPUs
appear under the same names (package only). Each counter wraps at its
``max_energy_range_uj``: a reading below the last one adds that range, so the meter must be
read at least once per wrap period (about 40 minutes at 100 W for the usual 2^32 · 61 µJ;
``measure`` reads it around every repetition). Since Linux 5.10 ``energy_uj`` is readable by
root only (CVE-2020-8694): such a zone is present but unreadable, and the row says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.harness.energy.base import Availability, MeterError, Reading

ROOT = Path("/sys/class/powercap")
#: Intel documents an update about every 1 ms (976 µs).
INTERVAL_S = 0.001
ENABLE = ("run as root, or make the counters readable: "
          "sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
          "/sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj (a udev rule keeps it); "
          "the kernel module is intel_rapl_msr (AMD: also intel_rapl_msr on Linux 5.8+)")


def _read_text(path: Path) -> str:
    return path.read_text().strip()


@dataclass
class _Zone:
    label: str
    energy: Path
    max_range_uj: int | None
    last_uj: int = 0
    wraps: int = 0


def _zones(root: Path) -> list[tuple[str, Path]]:
    """(label, zone dir) of every package and its DRAM subdomain, in order."""
    pkgs = sorted((d for d in root.glob("intel-rapl:*") if d.name.count(":") == 1),
                  key=lambda d: int(d.name.split(":")[1]) if d.name.split(":")[1].isdigit()
                  else 1 << 30)
    named = []
    for d in pkgs:
        try:
            name = _read_text(d / "name")
        except OSError:
            continue
        if not name.startswith("package"):
            continue  # psys (the whole platform) overlaps the packages
        named.append((name, d))
    out = []
    for name, d in named:
        out.append((name, d))
        for sub in sorted(d.glob(f"{d.name}:*")):
            try:
                if _read_text(sub / "name") == "dram":
                    out.append(("dram" if len(named) == 1 else f"dram-{name.split('-')[-1]}",
                                sub))
            except OSError:
                continue
    return out


class RaplMeter:
    """CPU package (+ DRAM) energy from powercap; ``root`` is injectable for tests."""

    name = "rapl"
    interval_s: float | None = INTERVAL_S
    needs_sampling = False

    def __init__(self, root: Path | str = ROOT) -> None:
        self.root = Path(root)
        self.domains = ""
        self._zones: list[_Zone] = []
        self._zero = 0.0

    def available(self) -> Availability:
        zones = [(label, d) for label, d in _zones(self.root) if (d / "energy_uj").exists()]
        if not zones:
            why = (f"no powercap RAPL package domain under {self.root}"
                   if self.root.exists() else f"{self.root} does not exist")
            return Availability(False, False, why + " (not an Intel/AMD CPU exposing RAPL, "
                                "or a virtual machine)", "load the kernel module intel_rapl_msr")
        for _, d in zones:
            try:
                int(_read_text(d / "energy_uj"))
            except PermissionError:
                return Availability(True, False, f"permission denied reading {d}/energy_uj "
                                    "(root-only since Linux 5.10)", ENABLE)
            except (OSError, ValueError) as e:
                return Availability(True, False, f"cannot read {d}/energy_uj: {e}", ENABLE)
        return Availability(True, True, "covers " + ",".join(label for label, _ in zones))

    def start(self) -> None:
        self._zones = []
        for label, d in _zones(self.root):
            if not (d / "energy_uj").exists():
                continue
            try:
                rng = int(_read_text(d / "max_energy_range_uj"))
            except (OSError, ValueError):
                rng = None  # a wrap can then only be refused, not corrected
            self._zones.append(_Zone(label, d / "energy_uj", rng))
        if not self._zones:
            raise MeterError(f"rapl: no readable package domain under {self.root}")
        self.domains = ",".join(z.label for z in self._zones)
        for z in self._zones:
            z.last_uj, z.wraps = self._raw(z), 0
        self._zero = self._total()

    def _raw(self, z: _Zone) -> int:
        try:
            return int(_read_text(z.energy))
        except PermissionError as e:
            raise MeterError(f"rapl: permission denied reading {z.energy}") from e
        except (OSError, ValueError) as e:
            raise MeterError(f"rapl: cannot read {z.energy}: {e}") from e

    def _total(self) -> float:
        return sum(z.last_uj + z.wraps * (z.max_range_uj or 0) for z in self._zones) / 1e6

    def read(self) -> Reading:
        if not self._zones:
            raise MeterError("rapl: read before start")
        for z in self._zones:
            raw = self._raw(z)
            if raw < z.last_uj:
                if z.max_range_uj is None:
                    raise MeterError(f"rapl: {z.energy} went backwards and its "
                                     "max_energy_range_uj is unreadable")
                z.wraps += 1
            z.last_uj = raw
        return Reading(self._total() - self._zero, time.perf_counter_ns())

    def close(self) -> None:
        self._zones = []
