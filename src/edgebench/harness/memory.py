"""Peak memory of a process and its children, sampled on a background thread (~50 ms)."""

from __future__ import annotations

import os
import threading

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
#: interval in ``memory_method``). 10 ms cost OpenVINO ~6 % decode speed on 2 cores (its
#: threads wait for the preempted one); 50 ms costs nothing measurable (benchmarks/).
DEFAULT_INTERVAL_S = 0.05


class RssSampler:
    """Samples a process tree's RSS and the system's used memory until stopped.

    Use as a context manager around the phase to measure; ``peak_mb`` is the maximum seen,
    including one sample at start and one at stop so short phases are never missed.
    """

    # Listing children scans all of /proc and reading /proc/meminfo costs more than reading
    # one process's statm: do those every few samples, so the sampler stays far below the
    # noise of what it measures (it shares the CPU with the runtime's threads).
    CHILDREN_EVERY = 10
    SYSTEM_EVERY = 2

    def __init__(self, pid: int | None = None, interval_s: float | None = None) -> None:
        self._proc = psutil.Process(pid)
        self._children: list[psutil.Process] = []
        self._interval = interval_s if interval_s is not None else float(
            os.environ.get("EDGEBENCH_RSS_INTERVAL_S", DEFAULT_INTERVAL_S))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_bytes = 0
        self.system_used_peak_bytes = 0
        self.samples = 0

    def _sample(self, full: bool = False) -> None:
        if full or self.samples % self.CHILDREN_EVERY == 0:
            self._children = self._proc.children(recursive=True)
        total = 0
        for p in (self._proc, *self._children):
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        self.peak_bytes = max(self.peak_bytes, total)
        if full or self.samples % self.SYSTEM_EVERY == 0:
            self.system_used_peak_bytes = max(
                self.system_used_peak_bytes, psutil.virtual_memory().used
            )
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample(full=True)
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(full=True)

    @property
    def method(self) -> str:
        """How memory was measured, for the row's ``memory_method``."""
        return f"psutil-rss-{round(self._interval * 1000)}ms"

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB

    @property
    def system_used_peak_mb(self) -> float:
        return self.system_used_peak_bytes / MB
