"""Telemetry readers on fake machines, their place around the timed repetitions, and
``edgebench doctor`` through the real CLI."""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from collections import namedtuple

import pytest

import fakes
from conftest import fake_specs, run_main
from edgebench.harness import registry, telemetry
from edgebench.harness.measure import measure
from test_measure import CTX, _run

X86_SPR = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 ssse3 sse4_1 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni \
avx512_bf16 amx_bf16 amx_tile amx_int8
"""
ARM64 = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp i8mm bf16
CPU implementer\t: 0x41
"""
X86_OLD = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2
"""


@pytest.mark.parametrize("text, isa", [
    (X86_SPR, "avx2,avx512,avx512_vnni,amx"),
    (ARM64, "neon,i8mm,dotprod"),
    (X86_OLD, "avx2"),
    ("processor\t: 0\nflags\t\t: fpu sse sse2\n", ""),  # readable, none of the flags
    ("processor\t: 0\n", None),  # no flags line: unreadable
])
def test_isa_from_cpuinfo(text, isa):
    assert telemetry.isa_from_cpuinfo(text) == isa


def test_cpu_isa_reads_proc_cpuinfo_under_a_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(ARM64)
    assert telemetry.cpu_isa(tmp_path, system="Linux") == "neon,i8mm,dotprod"
    assert telemetry.cpu_isa(tmp_path / "nowhere", system="Linux") is None


@pytest.mark.parametrize("machine, answers, isa", [
    ("arm64", {"hw.optional.arm.FEAT_DotProd": "1", "hw.optional.arm.FEAT_I8MM": "1"},
     "neon,i8mm,dotprod"),
    ("arm64", {"hw.optional.arm.FEAT_DotProd": "1", "hw.optional.arm.FEAT_I8MM": "0"},
     "neon,dotprod"),
    ("x86_64", {"machdep.cpu.features": "FPU SSE AVX1.0",
                "machdep.cpu.leaf7_features": "AVX2 BMI2 AVX512F AVX512VNNI"},
     "avx2,avx512,avx512_vnni"),
    ("x86_64", {}, None),
])
def test_cpu_isa_on_macos_from_sysctl(machine, answers, isa):
    assert telemetry.cpu_isa(system="Darwin", machine=machine, sysctl=answers.get) == isa


@pytest.mark.parametrize("threads, applied, cpus, used", [
    (4, True, 2, 2),  # more threads than the affinity allows: the CPUs are the limit
    (1, True, 8, 1),
    (2, None, 8, 2),  # not known whether applied: the requested count
    (2, False, 8, 8),  # the runtime picks its own: every CPU it may run on
])
def test_cores_used(threads, applied, cpus, used):
    assert telemetry.cores_used(threads, applied, cpus=cpus) == used


def _cpufreq(root, khz):
    for i, k in enumerate(khz):
        d = root / f"cpu{i}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_cur_freq").write_text(f"{k}\n")
    return root


def test_cpu_freq_from_sysfs_when_psutil_has_none(tmp_path):
    sys_cpu = _cpufreq(tmp_path, [2_400_000, 1_800_000])
    assert telemetry.cpu_freq_mhz(sys_cpu, ps=None) == 2100.0
    no_answer = types.SimpleNamespace(cpu_freq=lambda: None)
    assert telemetry.cpu_freq_mhz(sys_cpu, ps=no_answer) == 2100.0
    assert telemetry.cpu_freq_why(sys_cpu, ps=None)[1].startswith("cpufreq")


def test_cpu_freq_prefers_psutil_and_is_null_without_any_source(tmp_path):
    ps = types.SimpleNamespace(cpu_freq=lambda: types.SimpleNamespace(current=3000.04))
    assert telemetry.cpu_freq_mhz(tmp_path, ps=ps) == 3000.0
    assert telemetry.cpu_freq_mhz(tmp_path, ps=None) is None
    value, why = telemetry.cpu_freq_why(tmp_path, ps=None)
    assert value is None and "cpufreq" in why


T = namedtuple("shwtemp", "label current high critical")


def _ps(sensors):
    return types.SimpleNamespace(sensors_temperatures=lambda: sensors)


@pytest.mark.parametrize("sensors, temp", [
    ({"coretemp": [T("Core 0", 61.0, 90, 100), T("Package id 0", 55.0, 90, 100)]}, 55.0),
    ({"k10temp": [T("Tctl", 48.25, None, None), T("Tccd1", 44.0, None, None)]}, 48.2),
    ({"cpu_thermal": [T("", 51.5, None, None)]}, 51.5),
    ({"coretemp": [T("Core 0", 61.0, 90, 100), T("Core 1", 64.0, 90, 100)]}, 64.0),
    ({"acpitz": [T("", 27.8, None, None)], "nvme": [T("Composite", 40.0, None, None)]}, None),
    ({}, None),
])
def test_cpu_temp_from_sensors(sensors, temp):
    assert telemetry.cpu_temp_c(_ps(sensors)) == temp


def test_sensors_unavailable_or_unreadable_give_null_and_say_why():
    assert telemetry.cpu_temp_c(types.SimpleNamespace()) is None  # macOS / Windows psutil
    assert "no temperature sensors" in telemetry.cpu_temp_why(types.SimpleNamespace())[1]

    def denied():
        raise PermissionError(13, "Permission denied", "/sys/class/hwmon/hwmon0/temp1_input")

    ps = types.SimpleNamespace(sensors_temperatures=denied)
    assert telemetry.cpu_temp_c(ps) is None
    assert telemetry.cpu_temp_why(ps)[1].startswith("present but unreadable: permission denied")
    assert "only acpitz" in telemetry.cpu_temp_why(_ps({"acpitz": [T("", 27.8, 0, 0)]}))[1]


def _nvidia_smi(tmp_path, monkeypatch, body: str):
    script = tmp_path / "bin/nvidia-smi"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for nvidia-smi")
def test_gpu_from_nvidia_smi_on_path(tmp_path, monkeypatch):
    _nvidia_smi(tmp_path, monkeypatch, 'echo "NVIDIA H100 80GB HBM3, 550.54.15"\n'
                                       'echo "NVIDIA H100 80GB HBM3, 550.54.15"')
    assert telemetry.gpu(use_nvml=False) == ("NVIDIA H100 80GB HBM3", "550.54.15")
    assert telemetry.gpu_why(use_nvml=False)[2] == "nvidia-smi"


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for nvidia-smi")
def test_gpu_null_when_nvidia_smi_fails_or_is_absent(tmp_path, monkeypatch):
    _nvidia_smi(tmp_path, monkeypatch, 'echo "NVIDIA-SMI has failed because it couldn\'t '
                                       'communicate with the NVIDIA driver."; exit 9')
    model, driver, why = telemetry.gpu_why(use_nvml=False)
    assert (model, driver) == (None, None) and "exited 9" in why and "NVIDIA driver" in why
    assert telemetry.gpu(which=lambda name: None, use_nvml=False) == (None, None)


def test_parse_nvidia_smi_joins_distinct_models():
    out = "NVIDIA A100-SXM4-40GB, 535.1\nNVIDIA L4, 535.1\nNVIDIA L4, 535.1\n"
    assert telemetry.parse_nvidia_smi(out) == ("NVIDIA A100-SXM4-40GB; NVIDIA L4", "535.1")
    assert telemetry.parse_nvidia_smi("") == (None, None)


def test_snapshot_columns(monkeypatch):
    monkeypatch.setattr(telemetry, "cpu_freq_mhz", lambda: 2000.0)
    monkeypatch.setattr(telemetry, "cpu_temp_c", lambda: None)
    assert telemetry.snapshot("after") == {"cpu_freq_mhz_after": 2000.0,
                                           "cpu_temp_c_after": None}


def test_measure_takes_snapshots_outside_the_timed_repetitions(fake_framework, monkeypatch):
    freqs = iter([2000.0, 1800.0])
    monkeypatch.setattr(telemetry, "cpu_freq_mhz", lambda: next(freqs))
    monkeypatch.setattr(telemetry, "cpu_temp_c", lambda: None)
    real = telemetry.snapshot

    def snapshot(when):
        fakes.FakeRunner.calls.append(("snapshot", when))
        return real(when)

    monkeypatch.setattr(telemetry, "snapshot", snapshot)
    row = measure(_run(reps=3, warmup=1), CTX)
    assert row.status == "ok", row.message
    steps = [c[0] if c[0] != "snapshot" else c[1] for c in fakes.FakeRunner.calls]
    # warm-up, then the snapshot, the 3 timed repetitions, the snapshot, close
    assert steps == ["load", "generate", "before", "generate", "generate", "generate",
                     "after", "close"]
    assert (row.cpu_freq_mhz_before, row.cpu_freq_mhz_after) == (2000.0, 1800.0)
    assert row.cpu_temp_c_before is None and row.cpu_temp_c_after is None
    assert row.cpu_isa == telemetry.cpu_isa()
    assert row.cores_used == min(2, telemetry.affinity_cpus())  # threads=2, applied
    assert (row.gpu_model, row.gpu_driver) == telemetry.gpu()


def test_machine_columns_in_rows_on_this_machine(fake_framework):
    row = measure(_run(), CTX)
    if sys.platform.startswith("linux"):
        assert row.cpu_isa is not None and row.cpu_freq_mhz_before is not None
    assert set((row.cpu_isa or "").split(",")) <= set(telemetry.ISA_ORDER) | {""}


# --- edgebench doctor ---------------------------------------------------------------------------

def _only_fake_runtimes(monkeypatch):
    monkeypatch.setattr(registry, "FRAMEWORKS", fake_specs())


def _provide(monkeypatch, module: str, attr: str, fn) -> None:
    """``module.attr = fn`` for the test, whether or not ``module`` (written by another part
    of edgebench) exists in this build: a missing one is a bare module in sys.modules."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            stub = types.ModuleType(name)
            stub.__path__ = []
            monkeypatch.setitem(sys.modules, name, stub)
    monkeypatch.setattr(sys.modules[module], attr, fn, raising=False)


def test_doctor_json_has_every_section_and_an_unreadable_meters_why(monkeypatch, capsys):
    _only_fake_runtimes(monkeypatch)
    _provide(monkeypatch, "edgebench.harness.energy.select", "meters_report", lambda: [
        {"name": "rapl", "present": True, "readable": False,
         "why": "permission denied: /sys/class/powercap/intel-rapl:0/energy_uj",
         "enable": "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj"},
        {"name": "nvml", "present": False, "readable": False, "why": "no NVIDIA GPU",
         "enable": "pip install nvidia-ml-py"},
    ])
    _provide(monkeypatch, "edgebench.harness.roofline", "cached_bandwidth",
             lambda: {"bandwidth_gbs": 21.5, "method": "stream-triad"})
    code, out, err = run_main(["doctor", "--format", "json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert list(got) == ["runtimes", "devices", "meters", "bandwidth", "converters",
                         "telemetry"]
    runtimes = {r["name"]: r for r in got["runtimes"]}
    assert runtimes["fake"]["installed"] and runtimes["fake"]["version"] == "9.9"
    assert not runtimes["missing"]["installed"]
    assert "fakert is not installed" in runtimes["missing"]["note"]
    devices = {(d["runtime"], d["device"]): d for d in got["devices"]}
    assert devices["fake", "cpu"]["available"]
    assert not devices["fake", "cuda"]["available"] and "offers only cpu" in \
        devices["fake", "cuda"]["why"]
    rapl = next(m for m in got["meters"] if m["name"] == "rapl")
    assert rapl["present"] and not rapl["readable"]
    assert rapl["why"].startswith("permission denied") and "chmod" in rapl["enable"]
    assert got["bandwidth"] == [{"cached": True, "why": "",
                                 "bandwidth": {"bandwidth_gbs": 21.5, "method": "stream-triad"}}]
    assert {c["target"] for c in got["converters"]} >= {"gguf", "hf", "onnx", "qnn"}
    assert all(c["ready"] or c["missing"] for c in got["converters"])
    readings = {t["reading"]: t for t in got["telemetry"]}
    assert set(readings) >= {"cpu_isa", "cpu_freq_mhz", "cpu_temp_c"}
    assert all(t["readable"] or t["source"] for t in got["telemetry"])


def test_doctor_reports_a_failing_section_and_still_exits_0(monkeypatch, capsys):
    _only_fake_runtimes(monkeypatch)

    def broken():
        raise RuntimeError("meter probe crashed")

    _provide(monkeypatch, "edgebench.harness.energy.select", "meters_report", broken)
    code, out, err = run_main(["doctor", "--format", "md"], capsys)
    assert code == 0, err
    assert "### meters" in out and "RuntimeError: meter probe crashed" in out
    assert "### telemetry" in out and "### converters" in out


def test_doctor_bad_format_exits_2(capsys):
    code, _, err = run_main(["doctor", "--format", "csv"], capsys)
    assert code == 2 and err.startswith("error:")
