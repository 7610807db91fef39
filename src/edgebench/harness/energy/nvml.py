"""NVIDIA GPUs: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since
the driver loaded; Volta and newer) through nvidia-ml-py, imported lazily (extra ``nvml``).

The GPUs measured are those ``CUDA_VISIBLE_DEVICES`` names by index (NVML numbers GPUs as
the driver does; a UUID there is matched by UUID), else every GPU NVML sees; their joules are
summed and ``energy_domains`` lists them (``gpu:0``). The counter covers the board, not the
host CPU that feeds it. NVML documents no update period for it; edgebench takes 100 ms,
which makes the phase split rare and never finer than the counter.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgebench.harness.energy.base import Availability, MeterError, Reading

INTERVAL_S = 0.1
ENABLE_PKG = "pip install 'edgebench[nvml]' (nvidia-ml-py)"


def _import_nvml():
    import pynvml  # nvidia-ml-py

    return pynvml


def _driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def _err_name(nvml, e: Exception) -> str:
    code = getattr(e, "value", None)
    for attr, label in (("NVML_ERROR_NO_PERMISSION", "no-permission"),
                        ("NVML_ERROR_NOT_SUPPORTED", "not-supported")):
        if code is not None and code == getattr(nvml, attr, object()):
            return label
    return ""


class NvmlMeter:
    """GPU board energy from NVML; ``nvml`` (a module with pynvml's API) injectable for tests."""

    name = "nvml"
    interval_s: float | None = INTERVAL_S
    needs_sampling = False

    def __init__(self, nvml=None, visible: str | None = None) -> None:
        self._nvml = nvml
        self._visible = visible if visible is not None else os.environ.get(
            "CUDA_VISIBLE_DEVICES")
        self._handles: list = []
        self._zero_mj = 0
        self._open = False
        self.domains = ""

    def _lib(self):
        if self._nvml is None:
            self._nvml = _import_nvml()
        return self._nvml

    def _select(self, nvml) -> list[tuple[int, object]]:
        count = nvml.nvmlDeviceGetCount()
        handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        if not self._visible or not self._visible.strip():
            return handles
        picked = []
        for item in (s.strip() for s in self._visible.split(",")):
            if item.isdigit() and int(item) < count:
                picked.append(handles[int(item)])
            elif item.startswith(("GPU-", "MIG-")):
                picked += [(i, h) for i, h in handles
                           if str(nvml.nvmlDeviceGetUUID(h)).startswith(item)]
        return picked

    def available(self) -> Availability:
        try:
            self._lib()
        except ImportError:
            if _driver_present():
                return Availability(True, False, "an NVIDIA driver is loaded but nvidia-ml-py "
                                    "is not installed", ENABLE_PKG)
            return Availability(False, False, "no NVIDIA driver and no nvidia-ml-py",
                                ENABLE_PKG + " on a machine with an NVIDIA GPU and driver")
        try:
            self.start()
        except MeterError as e:
            why = str(e)
            if "permission" in why:
                return Availability(True, False, why, "run with access to /dev/nvidia*")
            if "not supported" in why:
                return Availability(True, False, why, "")
            return Availability(False, False, why, "install the NVIDIA driver")
        finally:
            self.close()
        return Availability(True, True, "covers " + self.domains)

    def _total_mj(self) -> int:
        nvml = self._lib()
        try:
            return sum(int(nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)
        except nvml.NVMLError as e:
            kind = _err_name(nvml, e)
            if kind == "not-supported":
                raise MeterError("nvml: the total-energy counter is not supported on this GPU "
                                 "(Volta or newer)") from e
            if kind == "no-permission":
                raise MeterError(f"nvml: permission denied reading the energy counter: {e}") \
                    from e
            raise MeterError(f"nvml: {e}") from e

    def start(self) -> None:
        nvml = self._lib()
        try:
            nvml.nvmlInit()
            self._open = True
            picked = self._select(nvml)
        except nvml.NVMLError as e:
            if _err_name(nvml, e) == "no-permission":
                raise MeterError(f"nvml: permission denied: {e}") from e
            raise MeterError(f"nvml: {e}") from e
        if not picked:
            raise MeterError("nvml: no GPU visible (CUDA_VISIBLE_DEVICES="
                             f"{self._visible!r})")
        self._handles = [h for _, h in picked]
        self.domains = ",".join(f"gpu:{i}" for i, _ in picked)
        self._zero_mj = self._total_mj()

    def read(self) -> Reading:
        if not self._handles:
            raise MeterError("nvml: read before start")
        return Reading((self._total_mj() - self._zero_mj) / 1000, time.perf_counter_ns())

    def close(self) -> None:
        self._handles = []
        if self._open:
            self._open = False
            try:
                self._lib().nvmlShutdown()
            except Exception:  # noqa: BLE001 - closing must not hide the run's outcome
                pass
