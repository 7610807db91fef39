"""Memory figures (docs/validity.md "Memory"): /proc/self/status parsing, the peak_mem_mb rule,
and real children that allocate anonymous memory or map a file, measured through run_isolated."""

from __future__ import annotations

import dataclasses
import mmap
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import fakes
from conftest import needs_llama
from edgebench.harness import isolate, registry
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, measure
from edgebench.harness.memory import KernelMemory, parse_status, peak_mem
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun

MB = 2**20
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="RssAnon/RssFile and clear_refs are Linux's")

STATUS = """\
Name:\tpython
Umask:\t0022
State:\tR (running)
VmPeak:\t 1203456 kB
VmSize:\t 1150000 kB
VmLck:\t       0 kB
VmHWM:\t  524288 kB
VmRSS:\t  307200 kB
RssAnon:\t   51200 kB
RssFile:\t  256000 kB
RssShmem:\t       0 kB
VmSwap:\t       0 kB
Threads:\t4
voluntary_ctxt_switches:\t12
"""


def test_parse_status_reads_the_kernel_figures_in_mb():
    assert parse_status(STATUS) == {"VmHWM": 512.0, "VmRSS": 300.0, "RssAnon": 50.0,
                                    "RssFile": 250.0, "RssShmem": 0.0}
    assert parse_status("Name:\tx\nThreads:\t1\n") == {}


def test_macos_and_windows_read_their_own_high_water_marks(monkeypatch):
    import resource
    import types

    from edgebench.harness import memory

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(resource, "getrusage",
                        lambda who: types.SimpleNamespace(ru_maxrss=300 * MB))  # bytes there
    got = memory.read_kernel_memory()
    assert (got.hwm_mb, got.method, got.file_mb) == (300.0, "getrusage-maxrss", None)
    monkeypatch.setattr(memory.sys, "platform", "win32")
    info = types.SimpleNamespace(rss=100 * MB, peak_wset=250 * MB)
    monkeypatch.setattr(memory.psutil, "Process",
                        lambda *a: types.SimpleNamespace(memory_info=lambda: info))
    got = memory.read_kernel_memory()
    assert (got.rss_mb, got.hwm_mb, got.method) == (100.0, 250.0, "psutil-peak-wset")


K = KernelMemory


@pytest.mark.parametrize("start, end, reset, sampled, kids, expect", [
    # the high-water mark minus the baseline (100 MB), plus the children's rise
    (K(100, 100), K(150, 400, method="m"), True, 390.0, 0.0, (300.0, "m(reset)")),
    (K(100, 100), K(150, 400, method="m"), True, 390.0, 25.0, (325.0, "m(reset)")),
    # not reset, but the process had no earlier peak: the mark is the run's
    (K(100, 100.5), K(150, 400, method="m"), False, 390.0, 0.0, (300.0, "m")),
    # not reset, an older peak of 900 MB never passed: the mark says nothing, sampled stands in
    (K(100, 900), K(150, 900, method="m"), False, 390.0, 0.0, (290.0, "sampled")),
    # not reset, the run passed the older peak: the mark is the run's again
    (K(100, 900), K(150, 950, method="m"), False, 390.0, 0.0, (850.0, "m")),
    # no high-water mark on this platform
    (K(100, None), K(150, None), False, 390.0, 0.0, (290.0, "sampled")),
    # a process that shrank below its baseline adds nothing (never negative)
    (K(100, 100), K(60, 100, method="m"), True, 100.0, 0.0, (0.0, "m(reset)")),
])
def test_peak_mem_rule(start, end, reset, sampled, kids, expect):
    assert peak_mem(100.0, start, end, reset, sampled, kids) == expect


# --- real children: fake runners importable by name in the spawned child -------------------

class AnonRunner(fakes.FakeRunner):
    """Holds ``mb`` MB of touched anonymous memory from load to close (a copying runtime)."""

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        self.buf = b"\x01" * (options["mb"] * MB)  # bytes are written, so every page is touched
        return super().load(artifact, device, threads, options, context_tokens)

    def close(self):
        self.buf = None


class TransientRunner(fakes.FakeRunner):
    """Allocates ``mb`` MB and frees it at once, inside load: a peak between samples."""

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        buf = b"\x01" * (options["mb"] * MB)
        del buf
        return super().load(artifact, device, threads, options, context_tokens)


class MmapRunner(fakes.FakeRunner):
    """Maps the artifact read-only and reads one byte of every page (an mmap-ing runtime)."""

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        with open(artifact, "rb") as f:
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.checksum = sum(self.map[i] for i in range(0, len(self.map), mmap.PAGESIZE))
        return super().load(artifact, device, threads, options, context_tokens)

    def close(self):
        self.map.close()


def measure_registered(run, ctx):
    """measure() after registering this module's runners (the child starts without them)."""
    base = registry.FRAMEWORKS["llama-cpp"]
    for cls in (AnonRunner, TransientRunner, MmapRunner):
        registry.FRAMEWORKS[cls.__name__] = dataclasses.replace(
            base, name=cls.__name__, target=f"{__name__}:{cls.__name__}", extra="fake")
    return measure(run, ctx)


N_MB = 160


def _run(framework: str, path: Path) -> PlannedRun:
    return PlannedRun(
        model="m", model_sha256="sha", framework=framework, precision="q4_k_m", device="cpu",
        prompt_tokens=3, new_tokens=4, threads=1, options={"mb": N_MB}, suite="t",
        repetitions=2, warmup=0, cooldown_s=0.0, timeout_s=120.0,
        artifact=Artifact("gguf", "q4_k_m", path, N_MB * MB, "asha"), prompt_ids=(1, 2, 3),
    )


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    weights = tmp_path_factory.mktemp("mem") / "weights.bin"
    weights.write_bytes(b"\x02" * (N_MB * MB))
    ctx = RunContext("sess", fingerprint())
    out = {name: isolate.run_isolated(_run(name, weights), ctx, measure_fn=measure_registered)
           for name in ("AnonRunner", "TransientRunner", "MmapRunner")}
    for row in out.values():
        assert row.status == "ok", row.message
    return out


@linux_only
def test_anonymous_memory_a_child_touches_is_its_peak(rows):
    row = rows["AnonRunner"]
    assert N_MB - 2 <= row.peak_mem_mb <= N_MB + 25, row
    assert row.vm_hwm_mb == pytest.approx(row.mem_baseline_mb + row.peak_mem_mb)
    assert "vmhwm(reset)" in row.memory_method


@linux_only
def test_a_peak_between_samples_still_counts(rows):
    row = rows["TransientRunner"]  # freed again before the end of load
    assert N_MB - 2 <= row.peak_mem_mb <= N_MB + 25


@linux_only
def test_mapped_file_pages_count_as_file_rss_and_in_the_peak(rows):
    anon, mapped = rows["AnonRunner"], rows["MmapRunner"]
    # the two children differ only in how they hold N MB: the split says which
    assert mapped.rss_file_mb - anon.rss_file_mb == pytest.approx(N_MB, abs=8)
    assert anon.rss_anon_mb - mapped.rss_anon_mb == pytest.approx(N_MB, abs=8)
    assert N_MB - 2 <= mapped.peak_mem_mb <= N_MB + 25  # touched file pages are resident


class LogitsRunner(AnonRunner):
    """Holds ``mb`` MB like AnonRunner and gives fixed logits, for a quality row."""

    LOGITS_METHOD = "fake logits"

    def logits(self, ids):
        import numpy as np

        return np.tile(np.linspace(-3, 3, 16, dtype=np.float32), (len(ids), 1))


@linux_only
def test_quality_rows_carry_the_memory_and_noise_columns(tmp_path, monkeypatch):
    from edgebench.harness.quality_run import QualitySpec, measure_quality

    monkeypatch.setitem(registry.FRAMEWORKS, "logits", dataclasses.replace(
        registry.FRAMEWORKS["llama-cpp"], name="logits", target=f"{__name__}:LogitsRunner"))
    spec = QualitySpec(corpus="c", corpus_sha256="c" * 64, n_ctx=8,
                       chunks=(tuple(range(8)),), reference_dir=str(tmp_path / "ref"),
                       reference_label="logits:q4_k_m", reference_sha256="r" * 64,
                       write_reference=True)
    row = measure_quality(_run("logits", tmp_path / "none"), RunContext("s", fingerprint()),
                          spec)
    assert row.status == "ok", row.message
    assert N_MB - 8 <= row.peak_mem_mb <= N_MB + 40  # in-process: pytest's heap is baseline
    # the in-process baseline (pytest's heap) may shrink by a few MB during the run
    assert row.rss_anon_mb >= N_MB and row.vm_hwm_mb >= row.mem_baseline_mb + N_MB - 4
    assert isinstance(row.machine_busy, bool) and "during" in row.busy_evidence


@needs_llama
@linux_only
@pytest.mark.llama_cpp
def test_llama_cpp_gemma_peak_covers_its_mapped_weights(tmp_path, capsys):
    from edgebench.cli import main
    from edgebench.locations import cache_dir
    from edgebench.models.registry import resolve_model

    art = resolve_model("gemma-3-270m", cache_dir()).artifacts[0]
    store = tmp_path / "store"
    try:
        main(["run", "--prompt-tokens", "16", "--new-tokens", "8", "--repetitions", "2",
              "--warmup", "1", "--store", str(store), "--quiet", "--format", "csv"])
    except SystemExit as e:
        assert not e.code, capsys.readouterr().err
    (path,) = store.glob("*.parquet")
    (row,) = pq.read_table(path).to_pylist()
    assert row["status"] == "ok", row["message"]
    weights_mb = art.weight_bytes / MB  # llama.cpp maps the GGUF; generation reads every weight
    print(f"gemma q4_k_m: peak_mem_mb={row['peak_mem_mb']:.1f} peak_rss_mb="
          f"{row['peak_rss_mb']:.1f} vm_hwm_mb={row['vm_hwm_mb']:.1f} mem_baseline_mb="
          f"{row['mem_baseline_mb']:.1f} rss_anon_mb={row['rss_anon_mb']:.1f} rss_file_mb="
          f"{row['rss_file_mb']:.1f} weights_mb={weights_mb:.1f}")
    assert row["peak_mem_mb"] >= weights_mb
    assert row["rss_file_mb"] >= weights_mb  # the mapped weights, resident once touched
    assert row["vm_hwm_mb"] >= row["mem_baseline_mb"] + row["peak_mem_mb"] - 1
