"""Was the machine busy while a run was measured? CPU evidence, and the decision with reasons.

Other processes' CPU use = the system's busy CPU time (``psutil.cpu_times``, i.e. /proc/stat)
minus this process tree's own, over a window, in core-equivalents. It is measured over a short
window *before* the run (the measuring process sleeps, so whatever runs is someone else's and a
run that saturates every core cannot hide it) and over the run itself; steal time (a
hypervisor giving the CPU to other guests) is reported apart. Thresholds and their reasons:
docs/validity.md "Noise". :func:`decide` and :func:`window` are pure (table-tested).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

import psutil

#: Others' CPU use counts as busy from this share of all cores ...
OTHERS_SHARE = 0.10
#: ... but never needs more than this many cores (one core spinning elsewhere is always busy).
OTHERS_MAX_CORES = 1.0
#: Steal time, in percent of all CPU time of the window, that counts as busy.
STEAL_PCT = 5.0
#: Neither counts below this many CPU seconds in the window (5 clock ticks of /proc/stat): a
#: window too short to resolve the rate (a run of a few ms) cannot flag on one stray tick.
MIN_CPU_S = 0.05
#: Seconds of the "before" window (``EDGEBENCH_BUSY_BEFORE_S`` overrides; 0 skips it).
BEFORE_S = 0.25


def threshold_cores(cores: int) -> float:
    """Core-equivalents of other processes' CPU use from which a machine of ``cores`` is busy."""
    return min(OTHERS_MAX_CORES, OTHERS_SHARE * cores)


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds at one instant (all cores together)."""

    t: float  # time.monotonic()
    busy_s: float  # the system's non-idle CPU time, steal and iowait excluded
    steal_s: float
    total_s: float
    own_s: float  # this process and its descendants (live ones, and reaped ones)


@dataclass(frozen=True)
class CpuWindow:
    """CPU use over one window."""

    wall_s: float
    cores: int
    others_cores: float  # core-equivalents other processes used
    own_cores: float  # core-equivalents this process tree used
    steal_pct: float  # percent of all CPU time stolen by the hypervisor


def window(a: CpuSnapshot, b: CpuSnapshot, cores: int) -> CpuWindow:
    """The window from ``a`` to ``b``. Others' time is clamped at 0 (the system counts in
    ticks, processes more finely, so a quiet window can come out slightly negative)."""
    wall = max(b.t - a.t, 1e-9)
    own = max(0.0, b.own_s - a.own_s)
    others = max(0.0, (b.busy_s - a.busy_s) - own)
    total = b.total_s - a.total_s
    steal = 100 * (b.steal_s - a.steal_s) / total if total > 0 else 0.0
    return CpuWindow(round(wall, 4), cores, round(others / wall, 4), round(own / wall, 4),
                     round(max(0.0, steal), 3))


@dataclass(frozen=True)
class Verdict:
    busy: bool
    reasons: tuple[str, ...]


def decide(before: CpuWindow | None, during: CpuWindow | None) -> Verdict:
    """Busy when, before or during the run, other processes used at least
    :func:`threshold_cores` core-equivalents, or steal reached :data:`STEAL_PCT` percent of
    the CPU time; either only from :data:`MIN_CPU_S` CPU seconds in that window."""
    reasons = []
    for name, w in (("before", before), ("during", during)):
        if w is None:
            continue
        limit = threshold_cores(w.cores)
        others_s = round(w.others_cores * w.wall_s, 6)
        steal_s = round(w.steal_pct / 100 * w.wall_s * w.cores, 6)
        if w.others_cores >= limit and others_s >= MIN_CPU_S:
            reasons.append(f"{name} the run other processes used {w.others_cores:.2f} of "
                           f"{w.cores} cores (busy from {limit:.2f})")
        if w.steal_pct >= STEAL_PCT and steal_s >= MIN_CPU_S:
            reasons.append(f"{name} the run {w.steal_pct:.1f} % of CPU time was stolen "
                           f"(busy from {STEAL_PCT:g} %)")
    return Verdict(bool(reasons), tuple(reasons))


def _own_cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    total = t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def snapshot(proc: psutil.Process | None = None) -> CpuSnapshot:
    """The system's and ``proc``'s tree's (default: this process) CPU seconds now."""
    own = _own_cpu_s(proc or psutil.Process())
    f = psutil.cpu_times()._asdict()
    # Linux counts guest time inside user and nice already
    total = sum(f.values()) - f.get("guest", 0) - f.get("guest_nice", 0)
    idle = f.get("idle", 0) + f.get("iowait", 0)
    steal = f.get("steal", 0)
    return CpuSnapshot(time.monotonic(), total - idle - steal, steal, total, own)


class NoiseProbe:
    """Evidence of other work on the machine around one measurement.

    :meth:`start` records the 1-minute load average and sleeps through the "before" window;
    :meth:`stop` closes the "during" window; :meth:`columns` gives ``machine_busy`` and
    ``busy_evidence``. Measure in a process whose descendants are the runtime's only: the
    whole tree counts as "own".
    """

    def __init__(self, before_s: float | None = None) -> None:
        from edgebench.harness.tuning import busy_before_s

        self.before_s = before_s if before_s is not None else busy_before_s()
        self.cores = psutil.cpu_count(logical=True) or 1
        self._proc = psutil.Process()
        self.loadavg: tuple[float, float, float] | None = None
        self.before: CpuWindow | None = None
        self.during: CpuWindow | None = None
        self._start: CpuSnapshot | None = None

    def start(self) -> NoiseProbe:
        self.loadavg = os.getloadavg() if hasattr(os, "getloadavg") else None
        first = snapshot(self._proc)
        if self.before_s > 0:
            time.sleep(self.before_s)
            self._start = snapshot(self._proc)
            self.before = window(first, self._start, self.cores)
        else:
            self._start = first
        return self

    def stop(self) -> None:
        if self._start is not None:
            self.during = window(self._start, snapshot(self._proc), self.cores)

    def columns(self) -> dict:
        """``machine_busy`` and ``busy_evidence`` (JSON: windows, load average, thresholds,
        reasons)."""
        verdict = decide(self.before, self.during)
        evidence = {
            "cores": self.cores,
            "loadavg_1m_before": self.loadavg[0] if self.loadavg else None,
            "before": _public(self.before), "during": _public(self.during),
            "busy_from_others_cores": threshold_cores(self.cores),
            "busy_from_steal_pct": STEAL_PCT, "busy_from_cpu_s": MIN_CPU_S,
            "reasons": list(verdict.reasons),
        }
        return {"machine_busy": verdict.busy, "busy_evidence": json.dumps(evidence)}


def _public(w: CpuWindow | None) -> dict | None:
    if w is None:
        return None
    d = asdict(w)
    d.pop("cores")
    d["others_pct_of_all_cores"] = round(100 * w.others_cores / w.cores, 2)
    return d
