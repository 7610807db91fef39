"""Telemetry around a run: the CPU features that decide quantized-kernel speed, the cores a
run could use, the GPU and its driver, and CPU frequency and temperature before and after the
timed repetitions (docs/validity.md "Telemetry").

Every reader returns None where the machine does not say (a VM without sensors, a platform
without the interface), never raises, and takes its source (a root folder, a psutil-like
module, ``which``) as an argument so tests can hand it a fake machine. The ``*_why``
functions say, for ``edgebench doctor``, why a reading is missing and what would enable it.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

#: The flags reported in ``cpu_isa``, in this order (comma-separated).
ISA_ORDER = ("avx2", "avx512", "avx512_vnni", "amx", "neon", "i8mm", "dotprod")
#: /proc/cpuinfo names (x86 ``flags``, arm64 ``Features``) that mean each ``cpu_isa`` flag.
_CPUINFO = {
    "avx2": ("avx2",), "avx512": ("avx512f",), "avx512_vnni": ("avx512_vnni",),
    "amx": ("amx_int8", "amx_tile"), "neon": ("asimd", "neon"), "i8mm": ("i8mm",),
    "dotprod": ("asimddp",),
}
#: macOS on Intel: ``machdep.cpu.features`` / ``leaf7_features`` names.
_SYSCTL_X86 = {"avx2": "AVX2", "avx512": "AVX512F", "avx512_vnni": "AVX512VNNI"}
#: psutil.sensors_temperatures() chips that are the CPU (hwmon names, then thermal zones).
CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "x86_pkg_temp",
             "soc_thermal")
#: Labels that mean the whole package (preferred over the hottest core).
_PACKAGE_LABELS = ("package id", "tdie", "tctl")
SYS_CPU = Path("/sys/devices/system/cpu")
NVIDIA_SMI_TIMEOUT_S = 5.0

Sysctl = Callable[[str], "str | None"]


# --- instruction set -------------------------------------------------------------------------

def isa_from_cpuinfo(text: str) -> str | None:
    """``cpu_isa`` from the text of /proc/cpuinfo (x86 ``flags`` or arm64 ``Features`` line
    of the first CPU); None when the text has neither line."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            have = set(value.split())
            return ",".join(f for f in ISA_ORDER if have.intersection(_CPUINFO[f]))
    return None


def isa_from_sysctl(machine: str, sysctl: Sysctl) -> str | None:
    """``cpu_isa`` on macOS from ``sysctl`` answers (``sysctl(name) -> value or None``)."""
    if machine in ("arm64", "aarch64"):  # NEON is part of the base arm64 architecture
        have = {"neon"}
        if sysctl("hw.optional.arm.FEAT_I8MM") == "1":
            have.add("i8mm")
        if sysctl("hw.optional.arm.FEAT_DotProd") == "1":
            have.add("dotprod")
        return ",".join(f for f in ISA_ORDER if f in have)
    words = " ".join(filter(None, (sysctl("machdep.cpu.features"),
                                   sysctl("machdep.cpu.leaf7_features")))).split()
    if not words:
        return None
    return ",".join(f for f in ISA_ORDER if _SYSCTL_X86.get(f) in words)


def _sysctl(name: str) -> str | None:
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_isa(root: Path = Path("/"), system: str | None = None, machine: str | None = None,
            sysctl: Sysctl = _sysctl) -> str | None:
    """The ``cpu_isa`` of this machine: the flags of :data:`ISA_ORDER` it has,
    comma-separated in that order ("" when it has none of them); None where unreadable."""
    system = system or platform.system()
    if system == "Darwin":
        return isa_from_sysctl(machine or platform.machine(), sysctl)
    try:
        return isa_from_cpuinfo((root / "proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return None


# --- cores ------------------------------------------------------------------------------------

def affinity_cpus() -> int | None:
    """How many logical CPUs this process may run on (its affinity mask; all CPUs where the
    platform has no affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        return len(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error, OSError):
        return os.cpu_count()


def cores_used(threads: int | None, threads_applied: bool | None,
               cpus: int | None = None) -> int | None:
    """``cores_used``: the threads the run was given, capped by the CPUs its affinity allows;
    the affinity alone where the runtime did not take the thread count
    (``threads_applied`` False: it picks its own, up to every CPU it may run on)."""
    cpus = affinity_cpus() if cpus is None else cpus
    if threads and threads_applied is not False:
        return min(threads, cpus) if cpus else threads
    return cpus


# --- frequency --------------------------------------------------------------------------------

def _sysfs_freq(sys_cpu: Path) -> float | None:
    khz = []
    for f in sorted(sys_cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            khz.append(float(f.read_text().strip()))
        except (OSError, ValueError):
            continue
    return round(sum(khz) / len(khz) / 1000, 1) if khz else None


def cpu_freq_mhz(sys_cpu: Path = SYS_CPU, ps: Any = psutil) -> float | None:
    """Current CPU frequency in MHz, the mean over CPUs: ``psutil.cpu_freq()`` (``ps=None``
    skips it), else cpufreq's ``scaling_cur_freq`` under ``sys_cpu``; None where neither
    answers."""
    if ps is not None:
        try:
            got = ps.cpu_freq()
        except Exception:  # noqa: BLE001 - psutil raises several types across platforms
            got = None
        if got is not None and got.current:
            return round(float(got.current), 1)
    return _sysfs_freq(sys_cpu)


def cpu_freq_why(sys_cpu: Path = SYS_CPU, ps: Any = psutil) -> tuple[float | None, str]:
    """The frequency and where it came from, or why there is none (for ``doctor``)."""
    mhz = cpu_freq_mhz(sys_cpu, ps)
    cpufreq = any(sys_cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
    if mhz is None:
        return None, ("no cpufreq (scaling_cur_freq absent under "
                      f"{sys_cpu}; load the CPU's cpufreq driver, e.g. intel_pstate or "
                      "acpi-cpufreq; a VM usually has none)")
    if cpufreq:
        return mhz, "cpufreq scaling_cur_freq (psutil)"
    return mhz, ("psutil.cpu_freq() without cpufreq: on Linux that is /proc/cpuinfo "
                 "'cpu MHz', often the nominal figure on a VM")


# --- temperature ------------------------------------------------------------------------------

def _sensors(ps: Any) -> dict:
    read = getattr(ps, "sensors_temperatures", None)
    if read is None:
        raise NotImplementedError("psutil has no temperature sensors on "
                                  f"{platform.system() or 'this platform'}")
    return read() or {}


def temp_from_sensors(sensors: dict) -> float | None:
    """The CPU's temperature from ``psutil.sensors_temperatures()``'s answer: the package
    (or die) entry of the first CPU chip of :data:`CPU_CHIPS`, else its hottest entry."""
    for chip in CPU_CHIPS:
        entries = [e for e in sensors.get(chip) or () if e.current is not None]
        if not entries:
            continue
        for e in entries:
            if (e.label or "").lower().startswith(_PACKAGE_LABELS):
                return round(float(e.current), 1)
        return round(max(float(e.current) for e in entries), 1)
    return None


def cpu_temp_c(ps: Any = psutil) -> float | None:
    """The CPU temperature in °C (:func:`temp_from_sensors`); None where unreadable."""
    try:
        return temp_from_sensors(_sensors(ps))
    except Exception:  # noqa: BLE001 - a missing or unreadable sensor is a null, not a failure
        return None


def cpu_temp_why(ps: Any = psutil) -> tuple[float | None, str]:
    """The temperature and its source, or why there is none (for ``doctor``)."""
    try:
        sensors = _sensors(ps)
    except PermissionError as e:
        return None, f"present but unreadable: permission denied ({e})"
    except Exception as e:  # noqa: BLE001
        return None, f"not readable: {type(e).__name__}: {e}"
    value = temp_from_sensors(sensors)
    if value is not None:
        chip = next(c for c in CPU_CHIPS if sensors.get(c))
        return value, f"psutil.sensors_temperatures() {chip}"
    other = f" (only {', '.join(sorted(sensors))})" if sensors else ""
    return None, (f"no CPU sensor{other}: load the coretemp (Intel) or k10temp (AMD) kernel "
                  "module; a VM usually exposes none")


# --- GPU --------------------------------------------------------------------------------------

def _nvml() -> tuple[str | None, str | None] | None:
    """Model and driver through nvidia-ml-py; None when it is not installed."""
    try:
        import pynvml  # nvidia-ml-py (optional; imported only here)
    except ImportError:
        return None

    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    pynvml.nvmlInit()
    try:
        names = [text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
                 for i in range(pynvml.nvmlDeviceGetCount())]
        driver = text(pynvml.nvmlSystemGetDriverVersion())
    finally:
        pynvml.nvmlShutdown()
    return ("; ".join(dict.fromkeys(names)) or None), (driver if names else None)


def parse_nvidia_smi(out: str) -> tuple[str | None, str | None]:
    """``name, driver_version`` lines (one per GPU) -> (models, driver); distinct models are
    joined with ``; `` in device order."""
    pairs = [line.rsplit(",", 1) for line in out.strip().splitlines() if "," in line]
    names = [p[0].strip() for p in pairs]
    return ("; ".join(dict.fromkeys(names)) or None,
            pairs[0][1].strip() if pairs else None)


def gpu_why(which: Callable[[str], str | None] = shutil.which, use_nvml: bool = True
            ) -> tuple[str | None, str | None, str]:
    """(model, driver, source or why none): NVIDIA through nvidia-ml-py when importable, else
    ``nvidia-smi`` on PATH (timeout :data:`NVIDIA_SMI_TIMEOUT_S`)."""
    nvml_error = ""
    if use_nvml:
        try:
            got = _nvml()
            if got is not None and got[0]:
                return got[0], got[1], "nvidia-ml-py"
        except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded...
            nvml_error = f"nvidia-ml-py: {type(e).__name__}: {e}; "
    smi = which("nvidia-smi")
    if not smi:
        return None, None, f"{nvml_error}no NVIDIA GPU found (nvidia-smi not on PATH)"
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return None, None, f"{nvml_error}nvidia-smi failed: {e}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        return None, None, (f"{nvml_error}nvidia-smi exited {done.returncode}"
                            + (f": {tail[-1]}" if tail else ""))
    model, driver = parse_nvidia_smi(done.stdout)
    return model, driver, "nvidia-smi" if model else "nvidia-smi lists no GPU"


def gpu(which: Callable[[str], str | None] = shutil.which, use_nvml: bool = True
        ) -> tuple[str | None, str | None]:
    """(``gpu_model``, ``gpu_driver``); (None, None) where there is no NVIDIA GPU to read."""
    return gpu_why(which, use_nvml)[:2]


# --- what a row gets --------------------------------------------------------------------------

@functools.cache
def machine_columns() -> dict:
    """``cpu_isa``, ``gpu_model``, ``gpu_driver`` of this machine (read once per process)."""
    model, driver = gpu()
    return {"cpu_isa": cpu_isa(), "gpu_model": model, "gpu_driver": driver}


def snapshot(when: str) -> dict:
    """``cpu_freq_mhz_<when>`` and ``cpu_temp_c_<when>`` (``when``: ``before`` or ``after``),
    read now; take it outside the timed repetitions."""
    return {f"cpu_freq_mhz_{when}": cpu_freq_mhz(), f"cpu_temp_c_{when}": cpu_temp_c()}
