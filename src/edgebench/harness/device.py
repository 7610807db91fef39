"""The device fingerprint: what machine a row was measured on."""

from __future__ import annotations

import functools
import hashlib
import platform
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

# CPU flags that matter for inference kernels; the full list is long and mostly noise.
_KEY_FLAGS = (
    "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
    "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16", "fphp", "asimdhp",
)


@dataclass(frozen=True)
class Fingerprint:
    """CPU model and flags, cores, RAM, OS, Python and accelerators of this machine."""

    machine_id: str
    cpu_model: str
    cpu_flags: str
    cpu_cores_physical: int | None
    cpu_cores_logical: int | None
    ram_total_mb: float
    os: str
    python_version: str
    accelerators: str


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def machine_id() -> str:
    """A stable, anonymous id of this machine (hash of the OS machine id)."""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            raw = Path(p).read_text().strip()
        except OSError:
            continue
        if raw:
            return hashlib.sha256(raw.encode()).hexdigest()[:16]
    return hashlib.sha256(f"{uuid.getnode()}|{platform.node()}".encode()).hexdigest()[:16]


def _accelerators() -> str:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip()
            if out:
                return "; ".join(out.splitlines())
        except (OSError, subprocess.SubprocessError):
            pass
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "Apple Silicon GPU"
    return ""


@functools.cache
def fingerprint() -> Fingerprint:
    """This machine's fingerprint (computed once per process)."""
    model, flags = _cpuinfo()
    return Fingerprint(
        machine_id=machine_id(),
        cpu_model=model,
        cpu_flags=" ".join(f for f in _KEY_FLAGS if f in flags),
        cpu_cores_physical=psutil.cpu_count(logical=False),
        cpu_cores_logical=psutil.cpu_count(logical=True),
        ram_total_mb=round(psutil.virtual_memory().total / 2**20, 1),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python_version=platform.python_version(),
        accelerators=_accelerators(),
    )
