"""Test doubles importable by name in a spawned child: measure functions and a fake runner."""

from __future__ import annotations

import ctypes
import os
import sys
import time

from edgebench.errors import RunnerUnavailable
from edgebench.harness.measure import record_for
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

MS = 1_000_000


def measure_ok(run, ctx):
    return record_for(run, ctx, "ok", f"child pid {os.getpid()}")


def measure_segfault(run, ctx):
    print("about to crash", file=sys.stderr, flush=True)
    ctypes.string_at(0)  # SIGSEGV


def measure_raises(run, ctx):
    raise RuntimeError("boom from the runtime")


def measure_hangs(run, ctx):
    time.sleep(3600)


class FakeRunner:
    """Deterministic timelines: first token 100 ms after t0, then one every 20 ms + rep ms."""

    calls: list = []

    def __init__(self):
        self.rep = 0

    def probe(self):
        return RunnerInfo("fake", "9.9", ("cpu",))

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        FakeRunner.calls.append(("load", device, threads, dict(options), context_tokens))
        return LoadInfo(0.25, "FAKE-CPU", options, threads_applied=True)

    def tokenize(self, text):
        return [1, 2, 3]

    def generate(self, prompt_ids, max_new_tokens):
        FakeRunner.calls.append(("generate", tuple(prompt_ids), max_new_tokens))
        gap = (20 + self.rep) * MS
        self.rep += 1
        t0 = 1_000 * MS
        stamps = tuple(t0 + 100 * MS + i * gap for i in range(max_new_tokens))
        return TokenTimeline(t0, stamps, tuple(range(max_new_tokens)), len(prompt_ids))

    def close(self):
        FakeRunner.calls.append(("close",))


class MissingRunner(FakeRunner):
    def probe(self):
        raise RunnerUnavailable("fakert is not installed", extra="fake")


class SleepyRunner(FakeRunner):
    """A FakeRunner that is slow in a real child process: each generation of at least
    ``$EDGEBENCH_TEST_SLOW_TOKENS`` tokens (default 0: all) first sleeps
    ``$EDGEBENCH_TEST_SLEEP_S`` seconds (default 0). Registered as framework ``sleepy`` by the
    ``sitecustomize`` that tests/test_lifecycle.py puts on the subprocesses' PYTHONPATH."""

    def generate(self, prompt_ids, max_new_tokens):
        if max_new_tokens >= int(os.environ.get("EDGEBENCH_TEST_SLOW_TOKENS", "0")):
            time.sleep(float(os.environ.get("EDGEBENCH_TEST_SLEEP_S", "0")))
        return super().generate(prompt_ids, max_new_tokens)
