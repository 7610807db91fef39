"""GPU memory of the measuring process through NVML (``harness.gpu_memory``), against a fake
NVML; and the cuda runners' hook (None on a cpu run)."""

from types import SimpleNamespace

import pytest

from edgebench.harness import gpu_memory


class FakeNVML:
    def __init__(self, procs, uuids=("GPU-aaa", "GPU-bbb"), fail_init=False):
        self.procs, self.uuids, self.fail_init, self.shut = procs, uuids, fail_init, False

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return self.uuids[h].encode()

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.procs[h]]


MiB = 2 ** 20


@pytest.mark.parametrize("procs, visible, expected", [
    ({0: [(7, 300 * MiB), (8, 1 * MiB)], 1: []}, None, 300.0),  # this pid on GPU 0
    ({0: [(7, 300 * MiB)], 1: [(7, 100 * MiB)]}, None, 400.0),  # on both: summed
    ({0: [(7, 300 * MiB)], 1: [(7, 100 * MiB)]}, "1", 100.0),  # only GPU 1 visible
    ({0: [(7, 300 * MiB)], 1: [(7, 100 * MiB)]}, "GPU-bbb", 100.0),  # by UUID prefix
    ({0: [(8, 300 * MiB)], 1: []}, None, None),  # another process's memory: not ours
    ({0: [(7, None)], 1: []}, None, None),  # the driver cannot say: not known, never 0
])
def test_process_gpu_mb(monkeypatch, procs, visible, expected):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    nvml = FakeNVML(procs)
    got = gpu_memory.process_gpu_mb(pid=7, nvml=nvml)
    if expected is None:
        assert got is None
    else:
        assert got == (expected, gpu_memory.METHOD)
    assert nvml.shut


def test_no_driver_gives_none():
    assert gpu_memory.process_gpu_mb(pid=7, nvml=FakeNVML({}, fail_init=True)) is None


def test_cpu_runs_report_no_gpu_memory():
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner
    from edgebench.harness.runners.ort_genai import OrtGenAIRunner

    for runner in (LlamaCppRunner(), OrtGenAIRunner()):
        assert runner.accelerator_peak_mb() is None  # never loaded on cuda


def test_gpu_suite_without_cuda_is_unavailable_at_once(tmp_path, monkeypatch, capsys):
    """`edgebench run gpu` on a machine without CUDA: every speed and quality cell an
    unavailable row saying what the device needs, nothing prepared or scored for it."""
    import importlib.util
    import json

    from conftest import run_main
    from edgebench import api
    from edgebench.harness.registry import load_runner

    for fw, mod in (("llama-cpp", "llama_cpp"), ("ort-genai", "onnxruntime_genai")):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{fw} is not installed")
        if "cuda" in load_runner(fw).probe().devices:
            pytest.skip("this machine has CUDA: the gpu suite would run")

    def never(*args, **kwargs):
        raise AssertionError("prepared or measured for a device this machine lacks")

    monkeypatch.setattr(api, "_prepared", never)
    monkeypatch.setattr(api, "run_isolated", never)
    store = str(tmp_path / "st")
    code, _, err = run_main(["run", "gpu", "--store", store, "--quiet"], capsys)
    assert code == 0, err
    code, out, _ = run_main(["sql", "SELECT kind, framework, status, message FROM runs",
                             "--store", store, "--format", "json"], capsys)
    rows = json.loads(out)
    assert len(rows) == 10 and {r["status"] for r in rows} == {"unavailable"}
    assert {r["kind"] for r in rows} == {"speed", "quality"}
    hints = {r["framework"]: r["message"] for r in rows}
    assert "GGML_CUDA=on" in hints["llama-cpp"]
    assert "onnxruntime-genai-cuda" in hints["ort-genai"]
