"""measure() with a fake runner (hand-computed rows) and isolation of crashes and hangs."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest

import fakes
from edgebench.harness import isolate, registry
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, measure
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun


def _run(framework="fake", reps=3, warmup=1, new=5, timeout=60.0, prompt=(2, 7, 9, 4)):
    return PlannedRun(
        model="m", model_sha256="sha", framework=framework, precision="q4_k_m", device="cpu",
        prompt_tokens=len(prompt), new_tokens=new, threads=2, options={"n_ctx": 64},
        suite="t", repetitions=reps, warmup=warmup, cooldown_s=0.0, timeout_s=timeout,
        artifact=Artifact("gguf", "q4_k_m", Path("/nowhere.gguf"), 123, "asha"),
        prompt_ids=tuple(prompt),
    )


CTX = RunContext("sess", fingerprint())


def test_measure_computes_rows_from_timelines(fake_framework):
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    # warm-up uses gap 20 ms; repetitions use 21, 22, 23 ms; N = 5 -> decode = 4 / (4 gap)
    assert row.decode_tok_s_samples == pytest.approx([1000 / 21, 1000 / 22, 1000 / 23])
    assert row.decode_tok_s == pytest.approx(1000 / 22)  # median
    assert row.tpot_ms == pytest.approx(22.0)
    assert row.ttft_ms == pytest.approx(100.0) and row.ttft_ms_stdev == pytest.approx(0.0)
    assert row.prefill_tok_s == pytest.approx(40.0)  # 4 prompt tokens / 0.1 s
    assert row.e2e_s == pytest.approx(0.1 + 4 * 0.022)
    assert row.token_ms_samples[0] == pytest.approx([100, 121, 142, 163, 184])
    assert row.load_s == 0.25 and row.device_name == "FAKE-CPU"
    assert row.framework_version == "9.9" and row.measurement == "measured"
    assert row.energy_method == "none" and row.energy_j is None
    assert row.memory_method.endswith("; sampled=psutil-rss-250ms-outside-timed-steps")
    assert json.loads(row.runtime_settings) == dict(_run().options)  # what load() applied
    assert row.peak_rss_mb > 0 and row.rss_delta_mb >= 0
    assert row.model_bytes == 123 and row.artifact_sha256 == "asha"


def test_rows_carry_kernel_memory_and_noise_evidence(fake_framework):
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    assert row.mem_baseline_mb > 0 and row.peak_mem_mb >= 0
    if sys.platform.startswith("linux"):
        assert row.vm_hwm_mb >= row.mem_baseline_mb
        assert row.rss_anon_mb > 0 and row.rss_file_mb > 0
        assert row.memory_method.startswith("peak_mem=proc-status-vmhwm(reset)-baseline")
    assert row.accel_peak_mb is None and row.accel_memory_method is None
    assert isinstance(row.machine_busy, bool)
    evidence = json.loads(row.busy_evidence)
    assert evidence["cores"] >= 1 and evidence["before"]["wall_s"] > 0
    assert evidence["during"]["own_cores"] >= 0 and "reasons" in evidence


def test_busy_rows_are_flagged(fake_framework, monkeypatch):
    from edgebench.harness import busy

    # anything at all counts as busy, even on an idle machine (no other CPU use in the window)
    monkeypatch.setattr(busy, "OTHERS_SHARE", 0.0)
    monkeypatch.setattr(busy, "MIN_CPU_S", 0.0)
    row = measure(_run(), CTX)
    assert row.machine_busy is True and "machine-busy" in row.flags
    assert json.loads(row.busy_evidence)["reasons"]


class AccelRunner(fakes.FakeRunner):
    def accelerator_peak_mb(self):
        return 512.0, "fake.peak_memory"


def test_accelerator_hook_fills_accel_columns(fake_framework, monkeypatch):
    spec = dataclasses.replace(registry.FRAMEWORKS["fake"], name="fake-accel",
                               target=f"{__name__}:AccelRunner")
    monkeypatch.setitem(registry.FRAMEWORKS, "fake-accel", spec)
    row = measure(_run(framework="fake-accel"), CTX)
    assert row.status == "ok", row.message
    assert row.accel_peak_mb == 512.0 and row.accel_memory_method == "fake.peak_memory"


def test_every_repetition_gets_the_same_prompt_ids(fake_framework):
    measure(_run(prompt=(5, 6, 7)), CTX)
    gens = [c for c in fakes.FakeRunner.calls if c[0] == "generate"]
    assert len(gens) == 4 and {g[1] for g in gens} == {(5, 6, 7)}
    load = fakes.FakeRunner.calls[0]
    assert load == ("load", "cpu", 2, {"n_ctx": 64}, 3 + 5)
    assert fakes.FakeRunner.calls[-1] == ("close",)


def test_missing_runtime_gives_unavailable_row_with_hint(fake_framework):
    row = measure(_run(framework="missing"), CTX)
    assert row.status == "unavailable"
    assert "pip install 'edgebench[fake]'" in row.message
    assert row.decode_tok_s is None


def test_isolated_ok_runs_in_another_process():
    import os

    row = isolate.run_isolated(_run(), CTX, measure_fn=fakes.measure_ok)
    assert row.status == "ok" and row.message != f"child pid {os.getpid()}"


@pytest.mark.parametrize("fn, expect", [
    (fakes.measure_segfault, ["killed by SIGSEGV", "about to crash"]),
    (fakes.measure_raises, ["exited with code 1", "RuntimeError: boom from the runtime"]),
])
def test_isolated_crash_becomes_error_row(fn, expect):
    row = isolate.run_isolated(_run(), CTX, measure_fn=fn)
    assert row.status == "error"
    for text in expect:
        assert text in row.message
    assert row.run_key == _run().run_key


def test_isolated_hang_becomes_timeout_row():
    row = isolate.run_isolated(_run(timeout=3.0), CTX, measure_fn=fakes.measure_hangs)
    assert row.status == "timeout" and "no result 3 s after the runner started" in row.message


class SlowRunner(fakes.FakeRunner):
    """Each generation takes 60 ms of wall time, and records whether the memory sampler's
    thread woke up inside it."""

    inside = False
    woke_inside = 0

    def generate(self, prompt_ids, max_new_tokens):
        import time

        SlowRunner.inside = True
        time.sleep(0.06)
        SlowRunner.inside = False
        return super().generate(prompt_ids, max_new_tokens)


def test_memory_sampler_sleeps_inside_timed_repetitions(fake_framework, monkeypatch):
    """A sampler waking inside a timed repetition cost ORT GenAI 3 % of its decode speed; the
    kernel's high-water mark sees those peaks, so it must not wake there (warm-up and load may
    be sampled)."""
    import threading

    from edgebench.harness import memory

    spec = dataclasses.replace(registry.FRAMEWORKS["fake"], name="fake-slow",
                               target="test_measure:SlowRunner")
    monkeypatch.setitem(registry.FRAMEWORKS, "fake-slow", spec)
    monkeypatch.setenv("EDGEBENCH_RSS_INTERVAL_S", "0.01")  # the lowest allowed
    real = memory.RssSampler._sample

    def spy(self, full=False):
        if SlowRunner.inside and threading.current_thread().name == "rss-sampler":
            SlowRunner.woke_inside += 1
        return real(self, full)

    monkeypatch.setattr(memory.RssSampler, "_sample", spy)
    SlowRunner.woke_inside = 0
    row = measure(_run("fake-slow", reps=3, warmup=0), CTX)
    assert row.status == "ok", row.message
    assert SlowRunner.woke_inside == 0


@pytest.mark.parametrize("accel, cpu, flags", [
    (None, None, []),  # a runtime without graph placement
    (100, 0, []),  # the whole graph on the accelerator
    (100, 1, ["cpu-fallback"]),
    (10, 10, ["cpu-fallback", "mostly-cpu"]),  # half on the CPU: not an accelerator measurement
    (3, 40, ["cpu-fallback", "mostly-cpu"]),
])
def test_placement_flags(accel, cpu, flags):
    from edgebench.harness.measure import placement_flags

    assert placement_flags(accel, cpu) == flags
