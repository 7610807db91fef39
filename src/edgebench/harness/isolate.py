"""Each run in its own child process with a timeout.

A crash (segfault, abort), a hang or a Python exception in a runtime becomes a row with status
``error`` or ``timeout`` and a message; the parent and the sweep go on.

Two limits, both stated in the row when hit: the child must *start* (a fresh interpreter,
edgebench's harness imports, which import no runtime, unpickling the run) within
``START_LIMIT_S``; it then says so over its pipe, just before calling the measuring function,
and the run's own ``timeout_s`` counts from that moment: the runtime's own import (runners
import it lazily, in ``probe``/``load``), model load, warm-up, repetitions.

The child dies with its parent, however the parent ends (SIGKILL included), so a killed sweep
leaves no runner burning CPU under the ``--resume`` that follows:

- on Linux the child asks the kernel for SIGKILL when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), then checks that its parent is still the process that
  spawned it (the parent may have died before the ``prctl``);
- everywhere, a watchdog thread in the child waits on a pipe whose only writer is the parent:
  end-of-file means the parent is gone, and the child exits at once. This is the only mechanism
  on macOS and Windows (untested there).

The spawn start method runs the child as a fresh interpreter started directly by this process
(no fork server in between), so the child's parent is the edgebench process itself.

Each run's temporary folder (the child's stderr) is named ``edgebench-run-<parent pid>-...``;
a parent killed outright cannot remove it, so every isolated run first removes such folders
whose process is gone (:func:`remove_stale_run_dirs`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from edgebench.harness.measure import RunContext, measure, now, record_for
from edgebench.results.schema import RunRecord
from edgebench.suites.expand import PlannedRun

#: Seconds the child may take from its creation to "started" (interpreter start, imports,
#: unpickling the run); past it the row is a ``timeout`` that says so. The run's ``timeout_s``
#: counts only after the start.
START_LIMIT_S = 60.0

RUN_DIR_PREFIX = "edgebench-run-"
_RUN_DIR = re.compile(re.escape(RUN_DIR_PREFIX) + r"(\d+)-[^/\\]+")
#: A live process whose start is this much later than a folder's last change cannot have made
#: it: its pid was reused (create times and mtimes are not exact to the millisecond).
_PID_REUSE_SLACK_S = 1.0

#: Exit status of a child whose parent went away (the watchdog's or the ppid check's).
ORPHAN_EXIT = 75

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """In a child: be killed when ``parent_pid`` dies (Linux), and exit now if it already has.

    PR_SET_PDEATHSIG fires when the *thread* that created the child exits, not the process:
    ``run_isolated`` blocks its calling thread until the child is gone, so that thread outlives
    the child whatever thread it is (the CLI calls it from the main thread).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog pipe still works
            pass
    if os.getppid() != parent_pid:  # died before the prctl: we were re-parented already
        os._exit(ORPHAN_EXIT)


def _watch_parent(alive) -> None:
    """Block on the pipe the parent never writes to; EOF means the parent is gone."""
    try:
        alive.recv()
    except (EOFError, OSError):
        pass
    os._exit(ORPHAN_EXIT)


def _child(conn, alive, parent_pid: int, run: PlannedRun, ctx: RunContext, stderr_path: str,
           measure_fn) -> None:
    die_with_parent(parent_pid)
    threading.Thread(target=_watch_parent, args=(alive,), name="parent-watchdog",
                     daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C stops
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # ... and what a hangup stops
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)  # runtimes log to fd 2 from C; keep it for the error message
    os.close(fd)
    conn.send(("started", os.getpid()))
    conn.send(("row", dataclasses.asdict(measure_fn(run, ctx))))
    conn.close()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"runner process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"runner process was killed by signal {-code}"
    return f"runner process exited with code {code} before reporting"


def remove_stale_run_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove the run folders (``edgebench-run-<pid>-*`` under ``root``, default the temp dir)
    left by edgebench processes that no longer exist; return those removed.

    A folder stays while a process with its pid runs that started before the folder's last
    change (a concurrent edgebench, or this one). Only this user's folders are touched.
    """
    root = Path(root or tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed = []
    try:
        entries = list(root.glob(RUN_DIR_PREFIX + "*"))
    except OSError:
        return removed
    for path in entries:
        m = _RUN_DIR.fullmatch(path.name)
        if not m:
            continue
        try:
            st = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink() or (uid is not None and st.st_uid != uid):
            continue
        try:
            alive = psutil.Process(int(m[1])).create_time() <= st.st_mtime + _PID_REUSE_SLACK_S
        except psutil.NoSuchProcess:
            alive = False
        except (psutil.Error, OSError):  # cannot tell (access denied ...): leave it
            alive = True
        if not alive:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclasses.dataclass
class _Child:
    """A started child: its process, the result pipe, and the pipe whose closing tells it that
    the parent is gone."""

    proc: mp.process.BaseProcess
    recv: object
    alive: object  # the parent's write end; never written, closed to let the child go

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()

    def close(self) -> None:
        self.recv.close()
        self.alive.close()


def _spawn(run: PlannedRun, ctx: RunContext, stderr_path: Path, measure_fn) -> _Child:
    spawn = mp.get_context("spawn")
    recv, send = spawn.Pipe(duplex=False)
    alive_r, alive_w = spawn.Pipe(duplex=False)
    proc = spawn.Process(target=_child, daemon=True,
                         args=(send, alive_r, os.getpid(), run, ctx, str(stderr_path),
                               measure_fn))
    try:
        proc.start()
    finally:
        send.close()  # the child holds its own copies; EOF on recv = the child is gone
        alive_r.close()
    return _Child(proc, recv, alive_w)


def _receive(child: _Child, timeout: float):
    """The child's next message, ``"timeout"`` when none came in ``timeout`` seconds while it
    ran, or None when it ended without one."""
    if not child.recv.poll(timeout):
        return "timeout" if child.proc.is_alive() else None
    try:
        return child.recv.recv()
    except EOFError:  # died while or before sending
        return None


def run_isolated(run: PlannedRun, ctx: RunContext,
                 measure_fn: Callable[[PlannedRun, RunContext], RunRecord] = measure) -> RunRecord:
    """Measure ``run`` in a fresh child process and return its row, whatever happened.

    ``measure_fn`` must be importable by name in the child (a module-level function).

    Raises:
        KeyboardInterrupt: after killing the child, so the caller can stop the sweep cleanly
            (also its subclass ``errors.Interrupted``, raised by the CLI on SIGTERM).
    """
    started = now()
    remove_stale_run_dirs()
    with tempfile.TemporaryDirectory(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-") as tmp:
        stderr_path = Path(tmp) / "stderr.log"
        t0 = time.monotonic()
        child = _spawn(run, ctx, stderr_path, measure_fn)
        try:
            msg = _receive(child, START_LIMIT_S)
            start_s = time.monotonic() - t0
            if msg == "timeout":
                child.kill()
                return record_for(run, ctx, "timeout",
                                  f"the runner process did not start within {START_LIMIT_S:g} s;"
                                  " runner process killed", started_at=started)
            if msg is not None:  # ("started", pid): the run's own timeout counts from here
                msg = _receive(child, run.timeout_s)
            if msg == "timeout":
                child.kill()
                return record_for(run, ctx, "timeout",
                                  f"no result {run.timeout_s:g} s after the runner started "
                                  f"(start took {start_s:.1f} s); runner process killed",
                                  started_at=started)
            if msg is not None:
                child.alive.close()  # the row is in: let the child go without its teardown
            child.proc.join(timeout=30)
            if child.proc.is_alive():
                child.kill()
        except KeyboardInterrupt:
            child.kill()
            raise
        finally:
            child.close()
        if msg is None or msg[0] != "row":
            text = _describe_exit(child.proc.exitcode)
            tail = _tail(stderr_path)
            return record_for(run, ctx, "error", f"{text}: {tail}" if tail else text,
                              started_at=started)
    return RunRecord(**msg[1])
