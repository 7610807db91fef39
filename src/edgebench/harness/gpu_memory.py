"""GPU memory of the measuring process on NVIDIA GPUs, through NVML (nvidia-ml-py, imported
lazily; extra ``nvml``): what a ``cuda`` run holds, for the row's ``accel_peak_mb``.

NVML gives each process's used GPU memory at the moment it is asked, not a peak. The runners
ask after the repetitions with the model still loaded: llama.cpp and ONNX Runtime GenAI allocate
the weights, the KV cache and the compute buffers when they load or on the first generation, so
this is the resident figure of the run; the method says so (``METHOD``).
"""

from __future__ import annotations

import os
from typing import Any

METHOD = ("nvml per-process used GPU memory after the repetitions (nvmlDeviceGetComputeRunning"
          "Processes; a resident figure, not a peak)")
MB = 2 ** 20


def _visible(nvml: Any) -> list[Any]:
    """Handles of the GPUs this process may use (CUDA_VISIBLE_DEVICES by index or UUID)."""
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or visible.strip() == "":
        return handles
    out = []
    for item in (v.strip() for v in visible.split(",")):
        if item.isdigit() and int(item) < count:
            out.append(handles[int(item)])
        else:
            for h in handles:
                uuid = nvml.nvmlDeviceGetUUID(h)
                uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
                if uuid.startswith(item):
                    out.append(h)
    return out


def process_gpu_mb(pid: int | None = None, nvml: Any = None) -> tuple[float, str] | None:
    """(MB this process holds on the visible NVIDIA GPUs, :data:`METHOD`); None without NVML,
    without a GPU, or when the process holds no GPU memory (NVML cannot say: e.g. the used
    memory is reported as unavailable under some drivers)."""
    pid = os.getpid() if pid is None else pid
    if nvml is None:
        try:
            import pynvml as nvml  # nvidia-ml-py
        except ImportError:
            return None
    try:
        nvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: nothing to read
        return None
    try:
        total, seen = 0, False
        for handle in _visible(nvml):
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used = getattr(proc, "usedGpuMemory", None)
                if proc.pid == pid and used is not None:
                    total += int(used)
                    seen = True
        return (total / MB, METHOD) if seen else None
    except Exception:  # noqa: BLE001 - a driver that refuses the query: not known
        return None
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
