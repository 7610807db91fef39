"""Memory of the measuring process: the kernel's exact figures and a sampled peak.

``PeakMemory`` gives the columns docs/validity.md "Memory" defines (``peak_mem_mb`` = the
kernel's resident high-water mark minus the process's RSS before the runtime was imported, plus
how far its children's sampled RSS rose); ``RssSampler`` samples the process tree's RSS every
~250 ms.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

MB = 2**20


def tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` plus all its live descendants, in bytes."""
    total = 0
    for p in (proc, *proc.children(recursive=True)):
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


#: Seconds between RSS samples; ``EDGEBENCH_RSS_INTERVAL_S`` overrides it (rows record the
#: interval in ``memory_method``). Every wake-up preempts a runtime thread on a machine whose
#: cores the run uses: 10 ms cost OpenVINO ~6 % decode speed on 2 cores, 50 ms still cost ORT
#: GenAI int4 (9 ms a token, spinning workers) 3 % (ratio 0.970 to its bare loop over 6 rounds,
#: 1.002 at 1 s). The ranked figure, ``peak_mem_mb``, comes from the kernel's exact high-water
#: mark, so the sampler only feeds the secondary sampled peak and the children's rise, and it
#: sleeps during timed steps (``RssSampler.off_the_clock``): even at 250 ms its wake-ups cost
#: ORT GenAI 3 % (0.966 over 6 rounds; 1.000 with no sampler).
DEFAULT_INTERVAL_S = 0.25


class RssSampler:
    """Samples a process tree's RSS and the system's used memory until stopped.

    Use as a context manager around the phase to measure; ``peak_mb`` is the maximum seen,
    including one sample at start and one at stop so short phases are never missed. Inside
    :meth:`off_the_clock` the thread sleeps and the caller samples with :meth:`sample`
    between timed steps: a sampler waking inside a timed step costs the runtime throughput
    (its threads wait for the one it preempts, or for the GIL), and the kernel's high-water
    mark sees the peaks inside a step exactly.
    """

    # Listing children scans all of /proc and reading /proc/meminfo costs more than reading
    # one process's statm: do those every few samples, so the sampler stays far below the
    # noise of what it measures (it shares the CPU with the runtime's threads).
    CHILDREN_EVERY = 10
    SYSTEM_EVERY = 2

    def __init__(self, pid: int | None = None, interval_s: float | None = None) -> None:
        self._proc = psutil.Process(pid)
        self._children: list[psutil.Process] = []
        from edgebench.harness.tuning import rss_interval_s

        self._interval = interval_s if interval_s is not None else rss_interval_s()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_bytes = 0
        self.self_peak_bytes = 0  # the process alone
        self.children_start_bytes: int | None = None  # its descendants at the first sample
        self.children_peak_bytes = 0
        self.system_used_peak_bytes = 0
        self.samples = 0
        self._quiet_steps = False  # whether timed steps ran with the thread asleep

    def _sample(self, full: bool = False) -> None:
        if full or self.samples % self.CHILDREN_EVERY == 0:
            self._children = self._proc.children(recursive=True)
        try:
            own = self._proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            own = 0
        kids = 0
        for p in self._children:
            try:
                kids += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        if self.children_start_bytes is None:
            self.children_start_bytes = kids
        self.peak_bytes = max(self.peak_bytes, own + kids)
        self.self_peak_bytes = max(self.self_peak_bytes, own)
        self.children_peak_bytes = max(self.children_peak_bytes, kids)
        if full or self.samples % self.SYSTEM_EVERY == 0:
            self.system_used_peak_bytes = max(
                self.system_used_peak_bytes, psutil.virtual_memory().used
            )
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> RssSampler:
        self._sample(full=True)
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt()
        self._sample(full=True)

    def sample(self) -> None:
        """One sample now (between timed steps, off the clock)."""
        self._sample(full=True)

    @contextlib.contextmanager
    def off_the_clock(self):
        """Within the block the sampler thread sleeps: call :meth:`sample` between steps."""
        self._halt()
        self._quiet_steps = True
        self._sample(full=True)
        try:
            yield self
        finally:
            self._sample(full=True)
            self._start()

    @property
    def method(self) -> str:
        """How memory was measured, for the row's ``memory_method``."""
        every = f"psutil-rss-{round(self._interval * 1000)}ms"
        return every + ("-outside-timed-steps" if self._quiet_steps else "")

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB

    @property
    def system_used_peak_mb(self) -> float:
        return self.system_used_peak_bytes / MB

    @property
    def children_added_mb(self) -> float:
        """How far the descendants' RSS rose above what they held at the first sample."""
        return max(0, self.children_peak_bytes - (self.children_start_bytes or 0)) / MB


#: /proc/<pid>/status fields read, in kB there.
STATUS_FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")


def parse_status(text: str) -> dict[str, float]:
    """The :data:`STATUS_FIELDS` present in a ``/proc/<pid>/status`` text, in MB."""
    found = re.findall(r"^(\w+):\s+(\d+)\s+kB\s*$", text, re.M)
    return {k: int(v) / 1024 for k, v in found if k in STATUS_FIELDS}


@dataclass(frozen=True)
class KernelMemory:
    """The kernel's figures for this process, in MB (None where the platform has none)."""

    rss_mb: float | None
    hwm_mb: float | None  # resident high-water mark (VmHWM, ru_maxrss, peak working set)
    anon_mb: float | None = None
    file_mb: float | None = None
    method: str = "none"


def read_kernel_memory() -> KernelMemory:
    """This process's figures: ``/proc/self/status`` on Linux, ``getrusage`` ``ru_maxrss`` (bytes)
    on macOS, psutil's ``peak_wset`` on Windows; elsewhere the RSS only."""
    if sys.platform.startswith("linux"):
        try:
            f = parse_status(Path("/proc/self/status").read_text())
        except OSError:
            f = {}
        if "VmHWM" in f:
            return KernelMemory(f.get("VmRSS"), f["VmHWM"], f.get("RssAnon"), f.get("RssFile"),
                                "proc-status-vmhwm")
    rss = psutil.Process().memory_info()
    if sys.platform == "darwin":
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
        return KernelMemory(rss.rss / MB, maxrss / MB, method="getrusage-maxrss")
    if sys.platform == "win32" and getattr(rss, "peak_wset", None):
        return KernelMemory(rss.rss / MB, rss.peak_wset / MB, method="psutil-peak-wset")
    return KernelMemory(rss.rss / MB, None)


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: ``5`` into
    ``/proc/self/clear_refs``); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mem(baseline_mb: float, start: KernelMemory, end: KernelMemory, was_reset: bool,
             sampled_self_peak_mb: float, children_added_mb: float) -> tuple[float, str]:
    """``peak_mem_mb`` and how it was found (docs/validity.md "Memory").

    The kernel's high-water mark at ``end`` minus ``baseline_mb``, plus the children's sampled
    rise. Without a reset, a high-water mark that did not rise since ``start`` may be an older
    peak of the process (before the run), so the sampled peak stands in for it then, as it does
    where the platform has no high-water mark.
    """
    hwm = end.hwm_mb
    stale = (hwm is not None and not was_reset and start.hwm_mb is not None
             and start.rss_mb is not None and start.hwm_mb > start.rss_mb + 1
             and hwm <= start.hwm_mb)
    if hwm is None or stale:
        own, how = sampled_self_peak_mb, "sampled"
    else:
        own, how = max(hwm, sampled_self_peak_mb), end.method + ("(reset)" if was_reset else "")
    return max(0.0, own - baseline_mb) + children_added_mb, how


class PeakMemory:
    """The memory columns of one measurement. Create it before the runtime is imported (it
    resets the high-water mark and takes the baseline), sample with :class:`RssSampler`
    around load and generation, and call :meth:`columns` while the model is still loaded."""

    def __init__(self) -> None:
        self.was_reset = reset_peak()
        self.start = read_kernel_memory()
        self.baseline_mb = (self.start.rss_mb if self.start.rss_mb is not None
                            else psutil.Process().memory_info().rss / MB)

    def columns(self, sampler: RssSampler) -> dict:
        """``peak_mem_mb``, ``mem_baseline_mb``, ``vm_hwm_mb``, ``rss_anon_mb``, ``rss_file_mb``
        and ``memory_method`` (which also names the sampler's interval)."""
        end = read_kernel_memory()
        peak, how = peak_mem(self.baseline_mb, self.start, end, self.was_reset,
                             sampler.self_peak_bytes / MB, sampler.children_added_mb)
        return {"peak_mem_mb": peak, "mem_baseline_mb": self.baseline_mb,
                "vm_hwm_mb": end.hwm_mb, "rss_anon_mb": end.anon_mb, "rss_file_mb": end.file_mb,
                "memory_method": f"peak_mem={how}-baseline+children; sampled={sampler.method}"}
