"""The measuring child dies with its parent; SIGTERM and SIGHUP stop a sweep as Ctrl-C does;
timeouts say what was waited; run folders left by a killed parent are removed.

The end-to-end tests start ``python -m edgebench run`` as a real process. Its measuring child
is a fresh interpreter (spawn), so the slow fake runtime reaches it through a
``sitecustomize`` on PYTHONPATH that registers the framework ``sleepy``
(``fakes.SleepyRunner``) in every Python process of the test's environment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

import fakes
from conftest import run_main
from edgebench import api
from edgebench.errors import Interrupted
from edgebench.harness import isolate
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, record_for
from edgebench.harness.prompt import PROMPT_VERSION, TOKENIZE_VERSION
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun

TESTS = Path(__file__).parent
CTX = RunContext("sess", fingerprint())
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SITECUSTOMIZE = """\
import os

if os.environ.get("EDGEBENCH_TEST_SLEEPY"):
    import dataclasses

    from edgebench.harness import registry

    registry.FRAMEWORKS["sleepy"] = dataclasses.replace(
        registry.FRAMEWORKS["llama-cpp"], name="sleepy", target="fakes:SleepyRunner",
        extra="fake", package="")
"""


def _gguf(path: Path, file_type: int) -> Path:
    """A tiny GGUF with a (four-token) vocabulary, so planning does not skip it."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_file_type(file_type)
    w.add_context_length(128)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<s>", "a", "b", "c"])
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _run(timeout=60.0):
    return PlannedRun(
        model="m", model_sha256="sha", framework="fake", precision="q4_k_m", device="cpu",
        prompt_tokens=2, new_tokens=2, threads=1, options={}, suite="t", repetitions=1,
        warmup=0, cooldown_s=0.0, timeout_s=timeout,
        artifact=Artifact("gguf", "q4_k_m", Path("/nowhere.gguf"), 1, "asha"),
        prompt_ids=(1, 2),
    )


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waiting for a reaper counts as gone)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


# --- the child process, in this process ---------------------------------------------------


def test_child_exits_when_the_parent_pipe_closes(tmp_path):
    child = isolate._spawn(_run(), CTX, tmp_path / "stderr.log", fakes.measure_hangs)
    try:
        assert child.recv.poll(30), "the child did not report its start"
        assert child.recv.recv() == ("started", child.proc.pid)
        # spawned straight from this process: no fork server or tracker in between
        assert psutil.Process(child.proc.pid).ppid() == os.getpid()
        child.alive.close()  # what the kernel does to the parent's pipe when it dies
        child.proc.join(10)
        assert child.proc.exitcode == isolate.ORPHAN_EXIT
    finally:
        if child.proc.is_alive():
            child.kill()
        child.close()


def test_timeout_counts_from_the_runner_start_and_says_so():
    t = time.monotonic()
    row = isolate.run_isolated(_run(timeout=1.0), CTX, measure_fn=fakes.measure_hangs)
    elapsed = time.monotonic() - t
    assert row.status == "timeout" and row.timeout_s == 1.0
    m = re.fullmatch(r"no result 1 s after the runner started \(start took ([\d.]+) s\); "
                     r"runner process killed", row.message)
    assert m, row.message
    waited = elapsed - float(m[1])
    assert 0.9 <= waited < 4, f"waited {waited:.1f} s after the start for a 1 s timeout"


def test_start_limit_is_stated(monkeypatch):
    monkeypatch.setattr(isolate, "START_LIMIT_S", 0.01)
    row = isolate.run_isolated(_run(), CTX, measure_fn=fakes.measure_ok)
    assert row.status == "timeout"
    assert row.message == ("the runner process did not start within 0.01 s; runner process "
                           "killed")
    assert not _running([c for c in psutil.Process().children()
                         if "spawn_main" in " ".join(c.cmdline())])


def test_stale_run_dirs_are_removed_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = psutil.Process()
    dead = tmp_path / f"edgebench-run-{gone.pid}-abc"
    mine = tmp_path / f"edgebench-run-{os.getpid()}-def"
    reused = tmp_path / f"edgebench-run-{os.getpid()}-ghi"  # older than this process: reused
    other = tmp_path / "edgebench-run-nopid"
    foreign = tmp_path / f"other-{gone.pid}-x"
    for d in (dead, mine, reused, other, foreign):
        d.mkdir()
        (d / "stderr.log").write_text("x")
    old = me.create_time() - 3600
    os.utime(reused, (old, old))
    removed = set(isolate.remove_stale_run_dirs(tmp_path))
    assert reused in removed and not reused.exists()
    # (unless the dead pid was reused in the meantime, which is harmless either way)
    assert (dead in removed and not dead.exists()) or psutil.pid_exists(gone.pid)
    assert removed <= {dead, reused}
    assert mine.exists() and other.exists() and foreign.exists()


# --- how the CLI ends a stopped sweep -------------------------------------------------------


@pytest.fixture
def cli_sweep(tmp_path, monkeypatch):
    """`edgebench run` over two cells of a tiny GGUF, the child replaced by an in-process fake
    whose second call raises what the test names."""
    model = _gguf(tmp_path / "tiny.gguf", file_type=15)
    monkeypatch.setattr(api, "prompt_ids", lambda sha, path, n, cache: list(range(n)))
    calls = []

    def arm(exc):
        def fake_isolated(run, ctx):
            calls.append(run)
            if len(calls) == 2:
                raise exc
            return record_for(run, ctx, "ok")

        monkeypatch.setattr(api, "run_isolated", fake_isolated)

    args = ["run", "--model", str(model), "--precision", "q4_k_m", "--new-tokens", "4",
            "--new-tokens", "8", "--threads", "1", "--quiet", "--cache-dir",
            str(tmp_path / "cache")]
    return arm, args


@pytest.mark.parametrize("exc, code, line", [
    (KeyboardInterrupt(), 130, "interrupted: finished rows are kept"),
    (Interrupted(signal.SIGTERM), 143, "terminated: finished rows are kept"),
    pytest.param(Interrupted(getattr(signal, "SIGHUP", 1)), 129,
                 "hung up: finished rows are kept", marks=POSIX),
])
def test_stopped_sweep_exit_code_names_the_signal(cli_sweep, capsys, exc, code, line):
    arm, args = cli_sweep
    arm(exc)
    before = signal.getsignal(signal.SIGTERM)
    rc, out, err = run_main(args, capsys)
    assert rc == code and err.strip().splitlines()[-1] == line
    assert signal.getsignal(signal.SIGTERM) is before  # main() restores the handlers
    kept = pq.read_table(next((Path.cwd() / "store").glob("*.parquet"))).to_pylist()
    assert [(r["status"], r["new_tokens"]) for r in kept] == [("ok", 4)]


def test_sigterm_outside_a_sweep_exits_143(monkeypatch, capsys):
    def stopped(*a, **k):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(api, "results", stopped)
    rc, out, err = run_main(["results"], capsys)
    assert rc == 143 and err.strip().splitlines()[-1] == "terminated"


# --- a real `edgebench run`, killed -----------------------------------------------------------


@pytest.fixture
def real_run(tmp_path):
    """Start `python -m edgebench run` on a tiny GGUF with the slow fake runtime; returns
    (start(args, **env), paths)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    model = _gguf(tmp_path / "tiny.gguf", file_type=7)  # Q8_0
    cache, store, tmp = tmp_path / "cache", tmp_path / "store", tmp_path / "tmp"
    tmp.mkdir()
    sha = __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    memo = cache / "prompts" / f"{sha[:16]}-{PROMPT_VERSION}-{TOKENIZE_VERSION}-4.json"
    memo.parent.mkdir(parents=True)
    memo.write_text(json.dumps([1, 2, 3, 4]))  # no tokenizer needed
    env = {**os.environ, "EDGEBENCH_CACHE": str(cache), "EDGEBENCH_STORE": str(store),
           "TMPDIR": str(tmp), "EDGEBENCH_TEST_SLEEPY": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(TESTS),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    base = [sys.executable, "-m", "edgebench", "run", "--model", str(model), "--framework",
            "sleepy", "--precision", "q8_0", "--device", "cpu", "--threads", "1",
            "--prompt-tokens", "4", "--repetitions", "1", "--warmup", "0", "--quiet",
            "--format", "csv"]
    started = []

    def start(*args, **extra):
        proc = subprocess.Popen([*base, *args], env={**env, **extra}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        return proc

    def run(*args, **extra):
        return subprocess.run([*base, *args], env={**env, **extra}, capture_output=True,
                              text=True, timeout=60)

    yield start, run, store, tmp
    for proc in started:  # never leave one behind, whatever failed: its whole group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _measuring_child(parent: subprocess.Popen, tmp: Path) -> psutil.Process:
    """The spawned child of ``parent`` once it has started (its stderr.log exists)."""

    def found():
        if parent.poll() is not None:
            raise AssertionError(f"edgebench ended early: {parent.communicate()}")
        if not list(tmp.glob(f"edgebench-run-{parent.pid}-*/stderr.log")):
            return None
        kids = [c for c in psutil.Process(parent.pid).children()
                if "spawn_main" in " ".join(c.cmdline()) and "resource_tracker" not in
                " ".join(c.cmdline())]
        return kids[0] if kids else None

    return _wait_for(found, 20, "the measuring child")


@POSIX
def test_sigkill_of_the_parent_leaves_no_orphan_and_resume_completes(real_run):
    start, run, store, tmp = real_run
    parent = start("--new-tokens", "2", EDGEBENCH_TEST_SLEEP_S="60")
    child = _measuring_child(parent, tmp)
    assert child.ppid() == parent.pid  # nothing in between that would hide the death
    family = psutil.Process(parent.pid).children(recursive=True)
    parent.kill()
    parent.wait()
    _wait_for(lambda: not _running(family), 5, "the children of the killed parent to die")
    assert list(tmp.glob(f"edgebench-run-{parent.pid}-*"))  # left: nobody could remove it

    done = run("--new-tokens", "2", "--resume")
    assert done.returncode == 0, done.stderr
    assert not list(tmp.glob("edgebench-run-*")), "the stale run folder stayed"
    rows = [r for f in store.glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert [r["status"] for r in rows] == ["ok"]


@POSIX
def test_sigterm_keeps_finished_rows_kills_the_child_and_exits_143(real_run):
    start, run, store, tmp = real_run
    parent = start("--new-tokens", "2", "--new-tokens", "3", EDGEBENCH_TEST_SLEEP_S="60",
                   EDGEBENCH_TEST_SLOW_TOKENS="3")
    _wait_for(lambda: list(store.glob("*.parquet")), 20, "the first run's row")
    _measuring_child(parent, tmp)  # the second run, slow, has started
    family = psutil.Process(parent.pid).children(recursive=True)
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=10)
    assert parent.returncode == 143, err
    assert err.strip().splitlines()[-1] == "terminated: finished rows are kept"
    _wait_for(lambda: not _running(family), 5, "the child to die")
    rows = [r for f in store.glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert [(r["status"], r["new_tokens"]) for r in rows] == [("ok", 2)]
    assert not list(tmp.glob("edgebench-run-*"))  # removed by the parent itself
