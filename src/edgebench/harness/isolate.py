"""Each run in its own child process with a timeout.

A crash (segfault, abort), a hang or a Python exception in a runtime becomes a row with status
``error`` or ``timeout`` and a message; the parent and the sweep go on.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgebench.harness.measure import RunContext, measure, now, record_for
from edgebench.results.schema import RunRecord
from edgebench.suites.expand import PlannedRun

# Extra time for the child to start and import before the run's own timeout counts.
_START_GRACE_S = 30.0


def _child(conn, run: PlannedRun, ctx: RunContext, stderr_path: str, measure_fn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C stops
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)  # runtimes log to fd 2 from C; keep it for the error message
    os.close(fd)
    conn.send(dataclasses.asdict(measure_fn(run, ctx)))
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


def run_isolated(run: PlannedRun, ctx: RunContext,
                 measure_fn: Callable[[PlannedRun, RunContext], RunRecord] = measure) -> RunRecord:
    """Measure ``run`` in a fresh child process and return its row, whatever happened.

    ``measure_fn`` must be importable by name in the child (a module-level function).

    Raises:
        KeyboardInterrupt: after killing the child, so the caller can stop the sweep cleanly.
    """
    started = now()
    spawn = mp.get_context("spawn")
    recv, send = spawn.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="edgebench-run-") as tmp:
        stderr_path = Path(tmp) / "stderr.log"
        proc = spawn.Process(target=_child, daemon=True,
                             args=(send, run, ctx, str(stderr_path), measure_fn))
        proc.start()
        send.close()
        try:
            if recv.poll(run.timeout_s + _START_GRACE_S):
                try:
                    row = recv.recv()
                except EOFError:  # died while or before sending
                    row = None
            else:
                row = None if not proc.is_alive() else "timeout"
        except KeyboardInterrupt:
            proc.kill()
            proc.join()
            raise
        finally:
            recv.close()
        if row == "timeout":
            proc.kill()
            proc.join()
            return record_for(run, ctx, "timeout",
                              f"no result after {run.timeout_s:g} s; runner process killed",
                              started_at=started)
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if row is None:
            msg = _describe_exit(proc.exitcode)
            tail = _tail(stderr_path)
            return record_for(run, ctx, "error", f"{msg}: {tail}" if tail else msg,
                              started_at=started)
    return RunRecord(**row)
