"""Apple Silicon: the SoC's IOReport energy counters through ``zeus-apple-silicon`` (the
reader Zeus itself uses on macOS; extra ``apple``, installable on macOS arm64 only).

Joules are the sum of the CPU clusters (``cpu_total_mj``), GPU, GPU SRAM, Neural Engine and
DRAM, whichever the chip reports; ``energy_domains`` names them. The library exposes no update
period, so the interval is unknown: whole-run energy only, never a phase split.
"""

from __future__ import annotations

import platform
import sys
import time

from edgebench.harness.energy.base import Availability, MeterError, Reading

ENABLE = "pip install 'edgebench[apple]' (zeus-apple-silicon, macOS on Apple Silicon)"
FIELDS = ("cpu_total_mj", "gpu_mj", "gpu_sram_mj", "ane_mj", "dram_mj")


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def _import_monitor():
    from zeus_apple_silicon import AppleEnergyMonitor

    return AppleEnergyMonitor


class AppleMeter:
    """SoC energy from IOReport; ``monitor_cls`` (AppleEnergyMonitor's API) injectable."""

    name = "apple"
    interval_s: float | None = None
    needs_sampling = False

    def __init__(self, monitor_cls=None, on_apple: bool | None = None) -> None:
        self._cls = monitor_cls
        self._on_apple = is_apple_silicon() if on_apple is None else on_apple
        self._monitor = None
        self._zero = 0.0
        self.domains = ""

    def available(self) -> Availability:
        if not self._on_apple:
            return Availability(False, False, "not macOS on Apple Silicon", "")
        try:
            self.start()
        except ImportError:
            return Availability(True, False, "zeus-apple-silicon is not installed", ENABLE)
        except MeterError as e:
            return Availability(True, False, str(e), "")
        finally:
            self.close()
        return Availability(True, True, "covers " + self.domains)

    def _sample(self) -> tuple[float, list[str]]:
        try:
            m = self._monitor.get_cumulative_energy()
        except Exception as e:  # noqa: BLE001 - the extension raises RuntimeError and others
            raise MeterError(f"apple: {type(e).__name__}: {e}") from e
        got = [(f, getattr(m, f, None)) for f in FIELDS]
        got = [(f, v) for f, v in got if v is not None]
        return sum(v for _, v in got) / 1000, [f.removesuffix("_mj") for f, _ in got]

    def start(self) -> None:
        cls = self._cls or _import_monitor()
        try:
            self._monitor = cls()
        except Exception as e:  # noqa: BLE001
            raise MeterError(f"apple: cannot open IOReport: {e}") from e
        self._zero, names = self._sample()
        if not names:
            raise MeterError("apple: the chip reported no energy counter")
        self.domains = ",".join(names)

    def read(self) -> Reading:
        if self._monitor is None:
            raise MeterError("apple: read before start")
        return Reading(self._sample()[0] - self._zero, time.perf_counter_ns())

    def close(self) -> None:
        self._monitor = None
