"""Energy meters against fake sysfs trees and a fake NVML, the accounting as hand-computed
tables, meter selection, and measure() with a fake meter (docs/energy.md)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgebench.harness.device import fingerprint
from edgebench.harness.energy import accounting, rapl, select
from edgebench.harness.energy.accounting import Phases, account, energy_at, phases_of
from edgebench.harness.energy.apple import AppleMeter
from edgebench.harness.energy.base import Availability, MeterError, Reading
from edgebench.harness.energy.battery import BatteryMeter
from edgebench.harness.energy.nvml import NvmlMeter
from edgebench.harness.energy.rapl import RaplMeter
from edgebench.harness.energy.recorder import EnergyRecorder
from edgebench.harness.measure import RunContext, measure
from edgebench.harness.runner import TokenTimeline
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun

S = 1_000_000_000  # ns


# --- accounting: hand-computed tables ----------------------------------------------------

def _acc(**kw):
    args = dict(method="m", gross_j=30.0, span_s=3.0, repetitions=3, tokens_per_rep=10,
                idle_w=2.0, idle_window_s=2.0, interval_s=0.001, domains="package-0")
    args.update(kw)
    return account(**args)


@pytest.mark.parametrize("kw, expect", [
    # 30 J over 3 s, 3 reps of 10 tokens, 2 W idle: gross 10 J/rep, net (30 - 6) / 3 = 8 J
    ({}, dict(energy_gross_j=10.0, j_per_token_gross=1.0, energy_j=8.0, j_per_token=0.8,
              tokens_per_j=1.25, idle_power_w=2.0, idle_window_s=2.0, energy_interval_ms=1.0,
              energy_domains="package-0", energy_method="m", energy_note=None)),
    # 1 rep of 4 + 16 tokens: 50 J over 5 s with 4 W idle -> net 30 J, 1.5 J/token
    (dict(gross_j=50.0, span_s=5.0, repetitions=1, tokens_per_rep=20, idle_w=4.0),
     dict(energy_gross_j=50.0, energy_j=30.0, j_per_token=1.5, tokens_per_j=20 / 30)),
    # idle not measured: gross only
    (dict(idle_w=None, idle_window_s=None),
     dict(energy_gross_j=10.0, energy_j=None, j_per_token=None, tokens_per_j=None,
          idle_power_w=None, energy_method="m")),
    # 5 J gross against 2 W × 3 s idle: net negative -> gross kept, net null, a note
    (dict(gross_j=5.0), dict(energy_gross_j=5 / 3, energy_j=None, tokens_per_j=None,
                             idle_power_w=2.0, energy_method="m")),
    # 0.5 s window with a 0.1 s meter (needs 10 updates = 1 s): nothing, method none
    (dict(span_s=0.5, interval_s=0.1),
     dict(energy_gross_j=None, energy_j=None, idle_power_w=None, energy_method="none")),
    # unknown interval (Apple): numbers, no interval column
    (dict(interval_s=None), dict(energy_j=8.0, energy_interval_ms=None)),
])
def test_account_table(kw, expect):
    cols = _acc(**kw)
    assert set(accounting.ENERGY_COLUMNS) | {"energy_method"} == set(cols)
    for k, v in expect.items():
        assert cols[k] == (pytest.approx(v) if isinstance(v, float) else v), k
    if cols["energy_j"] is None:
        assert cols["energy_note"]  # always says why
    assert cols["energy_prefill_j"] is None and cols["energy_decode_j"] is None  # no phases


TWO = [Phases(prefill_j=2.0, prefill_s=0.2, decode_j=8.0, decode_s=0.8),
       Phases(prefill_j=3.0, prefill_s=0.2, decode_j=9.0, decode_s=0.9)]


@pytest.mark.parametrize("interval, resolution, prefill, decode", [
    # 1 W idle: prefill (2 - 0.2 + 3 - 0.2) / 2 = 2.3; decode (8 - 0.8 + 9 - 0.9) / 2 = 7.65
    (0.001, 0.05, 2.3, 7.65),
    (0.05, None, 2.3, 7.65),  # the sampling period defaults to the meter's interval
    (0.001, 0.2, None, None),  # not shorter than the 0.2 s prefill: no split
    (0.001, 0.85, None, None),  # longer than one decode too
    (None, None, None, None),  # unknown resolution: never split
])
def test_phase_split_only_when_the_meter_resolves_both_phases(interval, resolution, prefill,
                                                              decode):
    cols = _acc(gross_j=25.0, span_s=2.5, repetitions=2, idle_w=1.0, interval_s=interval,
                phases=TWO, resolution_s=resolution)
    assert cols["energy_j"] == pytest.approx((25 - 2.5) / 2)
    assert cols["energy_prefill_j"] == (pytest.approx(prefill) if prefill else None)
    assert cols["energy_decode_j"] == (pytest.approx(decode) if decode else None)


def test_energy_at_interpolates_between_readings_only():
    samples = [Reading(0.0, 0), Reading(10.0, S), Reading(12.0, 2 * S)]
    assert energy_at(samples, S // 4) == pytest.approx(2.5)
    assert energy_at(samples, S) == 10.0
    assert energy_at(samples, 3 * S // 2) == pytest.approx(11.0)
    assert energy_at(samples, -1) is None and energy_at(samples, 3 * S) is None
    assert energy_at([], 0) is None


def test_phases_of_uses_brackets_and_the_first_token():
    samples = [Reading(0.0, 0), Reading(1.0, S // 10), Reading(5.0, S // 2), Reading(9.0, S)]
    # rep from 0 to 1 s; first token at 0.3 s: 1 + (5 - 1) * 0.2 / 0.4 = 3 J
    got = phases_of(samples, [(samples[0], samples[-1])], [3 * S // 10])
    assert got == [Phases(prefill_j=pytest.approx(3.0), prefill_s=pytest.approx(0.3),
                          decode_j=pytest.approx(6.0), decode_s=pytest.approx(0.7))]
    assert phases_of(samples, [(samples[0], samples[1])], [3 * S // 10]) == []  # outside


def test_idle_power_is_joules_over_seconds():
    assert accounting.idle_power(6.0, 2.0) == 3.0
    with pytest.raises(ValueError):
        accounting.idle_power(1.0, 0.0)


# --- RAPL on a fake powercap tree --------------------------------------------------------

def _zone(d: Path, name: str, uj: int | None, max_uj: int | None = 262143328850) -> Path:
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    if uj is not None:
        (d / "energy_uj").write_text(f"{uj}\n")
    if max_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


@pytest.fixture
def powercap(tmp_path):
    root = tmp_path / "powercap"
    pkg = _zone(root / "intel-rapl:0", "package-0", 5_000_000, max_uj=10_000_000)
    _zone(pkg / "intel-rapl:0:0", "core", 1_000_000)
    _zone(pkg / "intel-rapl:0:1", "dram", 2_000_000, max_uj=10_000_000)
    _zone(root / "intel-rapl:1", "psys", 9_000_000)  # the platform: overlaps, never added
    return root


def _set(zone: Path, uj: int) -> None:
    (zone / "energy_uj").write_text(f"{uj}\n")


def test_rapl_sums_package_and_dram(powercap):
    m = RaplMeter(powercap)
    assert m.available() == Availability(True, True, "covers package-0,dram")
    m.start()
    assert m.domains == "package-0,dram"
    _set(powercap / "intel-rapl:0", 6_500_000)  # +1.5 J
    _set(powercap / "intel-rapl:0" / "intel-rapl:0:1", 2_250_000)  # +0.25 J
    _set(powercap / "intel-rapl:1", 99_000_000)  # psys ignored
    assert m.read().joules == pytest.approx(1.75)


def test_rapl_counter_wrap_adds_the_range(powercap):
    pkg = powercap / "intel-rapl:0"
    _set(pkg, 9_900_000)
    m = RaplMeter(powercap)
    m.start()
    _set(pkg, 200_000)  # wrapped at 10 J: 0.1 J to the top + 0.2 J = 0.3 J
    assert m.read().joules == pytest.approx(0.3)
    _set(pkg, 9_000_000)  # no wrap: +8.8 J
    assert m.read().joules == pytest.approx(9.1)
    _set(pkg, 100_000)  # second wrap: +1.1 J
    assert m.read().joules == pytest.approx(10.2)


def test_rapl_without_dram_or_range(tmp_path):
    root = tmp_path / "powercap"
    pkg = _zone(root / "intel-rapl:0", "package-0", 1_000, max_uj=None)
    _zone(root / "intel-rapl:0" / "intel-rapl:0:0", "core", None)  # no energy_uj: skipped
    m = RaplMeter(root)
    assert m.available().readable
    m.start()
    assert m.domains == "package-0"
    _set(pkg, 500)  # backwards, and no max_energy_range_uj to correct it by
    with pytest.raises(MeterError, match="went backwards"):
        m.read()


def test_rapl_missing_tree_is_absent(tmp_path):
    a = RaplMeter(tmp_path / "nothing").available()
    assert not a.present and not a.readable and "does not exist" in a.why
    (tmp_path / "empty").mkdir()
    assert not RaplMeter(tmp_path / "empty").available().present


def test_rapl_permission_denied_is_present_but_unreadable(powercap, monkeypatch):
    real = rapl._read_text

    def denied(path):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl, "_read_text", denied)
    a = RaplMeter(powercap).available()
    assert a.present and not a.readable
    assert "permission denied" in a.why and "energy_uj" in a.why
    assert "chmod" in a.enable
    with pytest.raises(MeterError, match="permission denied"):
        RaplMeter(powercap).start()


def test_rapl_permission_lost_mid_run(powercap, monkeypatch):
    m = RaplMeter(powercap)
    m.start()
    monkeypatch.setattr(rapl, "_read_text", lambda p: (_ for _ in ()).throw(PermissionError()))
    with pytest.raises(MeterError, match="permission denied"):
        m.read()


# --- NVML with a fake library ------------------------------------------------------------

class FakeNVML:
    """The slice of pynvml's API the meter uses; counters in mJ."""

    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4

    class NVMLError(Exception):
        def __init__(self, value):
            super().__init__(f"nvml error {value}")
            self.value = value

    def __init__(self, counters=(1000, 5000), init_error=None, energy_error=None):
        self.mj = list(counters)
        self.init_error, self.energy_error = init_error, energy_error
        self.inits = self.shutdowns = 0

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError(self.init_error)
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.mj)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}abc"

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if self.energy_error:
            raise self.NVMLError(self.energy_error)
        return self.mj[h]


def test_nvml_counts_millijoules_of_the_visible_gpu():
    lib = FakeNVML()
    m = NvmlMeter(lib, visible="1")
    assert m.available() == Availability(True, True, "covers gpu:1")
    m.start()
    lib.mj[1] += 2500
    lib.mj[0] += 99_999  # not visible
    r = m.read()
    assert r.joules == pytest.approx(2.5) and m.domains == "gpu:1"
    m.close()
    assert lib.shutdowns == lib.inits == 2


def test_nvml_sums_every_gpu_without_cuda_visible_devices():
    lib = FakeNVML()
    m = NvmlMeter(lib, visible="")
    m.start()
    lib.mj[0] += 1000
    lib.mj[1] += 500
    assert m.read().joules == pytest.approx(1.5) and m.domains == "gpu:0,gpu:1"
    assert NvmlMeter(FakeNVML(), visible="GPU-1").available().why == "covers gpu:1"


def test_nvml_unsupported_or_denied_is_present_but_unreadable():
    a = NvmlMeter(FakeNVML(energy_error=3), visible="").available()
    assert a.present and not a.readable and "not supported" in a.why
    a = NvmlMeter(FakeNVML(init_error=4), visible="").available()
    assert a.present and not a.readable and "permission" in a.why
    a = NvmlMeter(FakeNVML(init_error=9), visible="").available()  # driver not loaded
    assert not a.present


def test_nvml_without_the_package(monkeypatch):
    from edgebench.harness.energy import nvml

    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(nvml, "_import_nvml", missing)
    monkeypatch.setattr(nvml, "_driver_present", lambda: False)
    a = NvmlMeter().available()
    assert not a.present and "edgebench[nvml]" in a.enable
    monkeypatch.setattr(nvml, "_driver_present", lambda: True)
    a = NvmlMeter().available()
    assert a.present and not a.readable and "not installed" in a.why


# --- battery on a fake power_supply tree -------------------------------------------------

def _battery(root: Path, status: str, **files: int) -> Path:
    bat = root / "BAT0"
    bat.mkdir(parents=True)
    (bat / "status").write_text(status + "\n")
    for name, value in files.items():
        (bat / name).write_text(f"{value}\n")
    return bat


def test_battery_charging_is_not_used(tmp_path):
    _battery(tmp_path, "Charging", energy_now=50_000_000)
    a = BatteryMeter(tmp_path).available()
    assert a.present and not a.readable and "not discharging" in a.why
    assert a.enable == "unplug the charger"
    choice = select.choose("cpu", {"battery": BatteryMeter(tmp_path)})
    assert choice.meter is None and "battery present but unreadable" in choice.note


def test_battery_discharging_energy_now(tmp_path):
    bat = _battery(tmp_path, "Discharging", energy_now=50_000_000)
    m = BatteryMeter(tmp_path)
    assert m.available().readable
    m.start()
    (bat / "energy_now").write_text("49999000\n")  # 1000 µWh = 3.6 J
    assert m.read().joules == pytest.approx(3.6)
    assert m.domains == "BAT0" and not m.needs_sampling and m.interval_s == 5.0
    (bat / "status").write_text("Charging\n")  # plugged in mid-run
    with pytest.raises(MeterError, match="not discharging"):
        m.read()


def test_battery_charge_times_mean_voltage(tmp_path):
    bat = _battery(tmp_path, "Discharging", charge_now=3_000_000, voltage_now=12_000_000)
    m = BatteryMeter(tmp_path)
    m.start()
    (bat / "charge_now").write_text("2999000\n")  # 1 mAh at a mean 11.9 V = 42.84 J
    (bat / "voltage_now").write_text("11800000\n")
    assert m.read().joules == pytest.approx(42.84)
    (bat / "voltage_now").write_text("11000000\n")  # a voltage sag alone is no energy
    assert m.read().joules == pytest.approx(42.84)


def test_battery_power_now_needs_sampling(tmp_path):
    _battery(tmp_path, "Discharging", power_now=8_000_000)
    m = BatteryMeter(tmp_path)
    m.start()
    assert m.needs_sampling
    t0 = m._bats[0].last[2]
    r = m.read()
    assert r.joules == pytest.approx(8.0 * (m._bats[0].last[2] - t0) / S)


def test_battery_absent_or_without_a_gauge(tmp_path):
    assert not BatteryMeter(tmp_path).available().present
    _battery(tmp_path, "Discharging", capacity=80)
    a = BatteryMeter(tmp_path).available()
    assert a.present and not a.readable


# --- Apple Silicon -----------------------------------------------------------------------

class FakeAppleMonitor:
    total = 0

    def get_cumulative_energy(self):
        FakeAppleMonitor.total += 1000
        return SimpleNamespace(cpu_total_mj=FakeAppleMonitor.total, gpu_mj=500, ane_mj=None,
                               dram_mj=None, gpu_sram_mj=None)


def test_apple_meter_with_a_fake_monitor():
    assert not AppleMeter(on_apple=False).available().present
    m = AppleMeter(FakeAppleMonitor, on_apple=True)
    assert m.available() == Availability(True, True, "covers cpu_total,gpu")
    m.start()
    assert m.read().joules == pytest.approx(1.0) and m.interval_s is None


def test_apple_without_the_package(monkeypatch):
    from edgebench.harness.energy import apple

    def missing():
        raise ImportError("No module named 'zeus_apple_silicon'")

    monkeypatch.setattr(apple, "_import_monitor", missing)
    a = AppleMeter(on_apple=True).available()
    assert a.present and not a.readable and "edgebench[apple]" in a.enable


@pytest.mark.skipif(sys.platform != "darwin", reason="zeus-apple-silicon is macOS-only")
def test_apple_real_monitor():
    pytest.importorskip("zeus_apple_silicon")
    m = AppleMeter()
    assert m.available().readable


# --- selection ---------------------------------------------------------------------------

class FakeMeter:
    """A scripted meter: ``readings`` are (joules, seconds) returned in turn."""

    needs_sampling = False

    def __init__(self, name="fake", avail=(True, True, ""), readings=(), interval_s=None,
                 domains="fake:0", fail_at=None):
        self.name, self.interval_s, self.domains = name, interval_s, domains
        self._avail = Availability(*avail)
        self._readings = list(readings)
        self.reads = 0
        self.fail_at = fail_at
        self.closed = False

    def available(self):
        return self._avail

    def start(self):
        pass

    def read(self):
        self.reads += 1
        if self.fail_at is not None and self.reads >= self.fail_at:
            raise MeterError(f"{self.name}: permission denied mid-run")
        j, s = self._readings.pop(0)
        return Reading(j, int(s * S))

    def close(self):
        self.closed = True


def _meters(**states):
    return {name: FakeMeter(name, avail) for name, avail in states.items()}


@pytest.mark.parametrize("device, states, method", [
    ("cuda", dict(nvml=(True, True), rapl=(True, True)), "nvml"),
    ("cpu", dict(nvml=(True, True), rapl=(True, True), battery=(True, True)), "rapl"),
    ("cpu", dict(rapl=(True, False, "denied"), battery=(True, True)), "battery"),
    ("cpu", dict(rapl=(False, False), apple=(True, True), battery=(True, True)), "apple"),
    ("metal", dict(apple=(True, True), rapl=(True, True)), "apple"),
    ("npu", dict(rapl=(True, True), battery=(True, True)), "none"),
    ("vulkan", dict(nvml=(True, True)), "none"),
])
def test_choose_the_best_meter_for_the_device(device, states, method):
    assert select.choose(device, _meters(**states)).method == method


def test_choose_reports_a_present_but_unreadable_meter():
    choice = select.choose("cpu", _meters(rapl=(True, False, "permission denied", "chmod"),
                                          battery=(False, False, "no battery")))
    assert choice.meter is None
    assert choice.note == ("rapl present but unreadable: permission denied "
                           "(to enable: chmod)")
    assert select.choose("cpu", _meters(rapl=(False, False))).note is None


def test_meters_report_for_doctor(powercap):
    report = select.meters_report({"rapl": RaplMeter(powercap),
                                   "nvml": NvmlMeter(FakeNVML(init_error=4), visible="")})
    assert [r["name"] for r in report] == ["rapl", "nvml"]
    assert report[0] == {"name": "rapl", "present": True, "readable": True,
                         "why": "covers package-0,dram", "enable": "", "devices": ["cpu"]}
    assert report[1]["present"] and not report[1]["readable"]
    assert set(report[1]) == {"name", "present", "readable", "why", "enable", "devices"}
    # the real machine: every meter answers, whatever it has
    assert {r["name"] for r in select.meters_report()} == {"rapl", "nvml", "battery", "apple"}


# --- the recorder ------------------------------------------------------------------------

def test_no_meter_measures_nothing_and_waits_for_nothing():
    rec = EnergyRecorder(select.Choice(None), sleep=lambda s: pytest.fail("slept"))
    rec.idle()
    rec.begin(None)
    rec.before()
    rec.after()
    rec.end()
    cols = rec.columns([], 10)
    assert cols["energy_method"] == "none"
    assert all(cols[c] is None for c in accounting.ENERGY_COLUMNS)


class PowerMeter:
    """Joules integrated exactly from a piecewise-constant power set by the test."""

    name, domains, needs_sampling = "power", "p", False

    def __init__(self, interval_s=0.01):
        self.interval_s = interval_s
        self._t, self._j, self._w = time.perf_counter_ns(), 0.0, 1.0
        self._lock = threading.Lock()  # the recorder's sampler reads from its own thread

    def set_power(self, w):
        with self._lock:
            self._advance()
            self._w = w

    def available(self):
        return Availability(True, True)

    def start(self):
        pass

    def _advance(self):
        now = time.perf_counter_ns()
        self._j += self._w * (now - self._t) / S
        self._t = now
        return Reading(self._j, now)

    def read(self):
        with self._lock:
            return self._advance()

    def close(self):
        pass


def _generate(meter, phase_s=0.12):
    t0 = time.perf_counter_ns()
    time.sleep(phase_s)
    t1 = time.perf_counter_ns()
    time.sleep(phase_s)
    tn = time.perf_counter_ns()
    return TokenTimeline(t0, (t1, tn), (0, 1), 4)


def test_recorder_splits_prefill_and_decode_when_the_meter_is_fine_enough(monkeypatch):
    monkeypatch.setenv("EDGEBENCH_IDLE_WINDOW_S", "0.5")
    meter = PowerMeter()
    rec = EnergyRecorder(select.Choice(meter))
    rec.idle()  # 1 W
    assert rec.idle_w == pytest.approx(1.0) and rec.idle_window_s >= 0.5
    warm = _generate(meter)
    rec.begin(warm)
    assert rec.resolution_s == pytest.approx(0.05)  # the sampler's floor, not 10 ms
    timelines = []
    for _ in range(2):
        meter.set_power(10.0)  # 10 W from before the reading before generate
        rec.before()
        timelines.append(_generate(meter))
        rec.after()
        meter.set_power(1.0)
    rec.end()
    cols = rec.columns(timelines, 6)
    assert cols["energy_method"] == "power" and cols["energy_note"] is None
    pre = [(t.token_ns[0] - b.t) / S for t, b in zip(timelines, rec._before)]
    dec = [(a.t - t.token_ns[0]) / S for t, a in zip(timelines, rec._after)]
    # 10 W during each phase, 1 W idle subtracted: 9 W × the phase's seconds
    assert cols["energy_prefill_j"] == pytest.approx(9 * sum(pre) / 2, rel=1e-6)
    assert cols["energy_decode_j"] == pytest.approx(9 * sum(dec) / 2, rel=1e-6)
    assert cols["energy_j"] > 0 and cols["tokens_per_j"] == pytest.approx(6 / cols["energy_j"])


def test_recorder_without_warmup_or_with_a_coarse_meter_never_splits(monkeypatch):
    monkeypatch.setenv("EDGEBENCH_IDLE_WINDOW_S", "0.5")
    for meter, warm in ((PowerMeter(), None), (PowerMeter(interval_s=0.2), "warm")):
        rec = EnergyRecorder(select.Choice(meter), sleep=lambda s: None)
        rec.begin(_generate(meter, phase_s=0.05) if warm else None)
        assert rec.resolution_s is None and rec._sampler is None


# --- measure() with a fake meter ---------------------------------------------------------

def _run(reps=3, warmup=1, new=5, prompt=(2, 7, 9, 4), device="cpu"):
    return PlannedRun(
        model="m", model_sha256="sha", framework="fake", precision="q4_k_m", device=device,
        prompt_tokens=len(prompt), new_tokens=new, threads=2, options={"n_ctx": 64},
        suite="t", repetitions=reps, warmup=warmup, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", "q4_k_m", Path("/nowhere.gguf"), 123, "asha"),
        prompt_ids=tuple(prompt),
    )


CTX = RunContext("sess", fingerprint())


@pytest.fixture
def fake_framework(fake_framework, monkeypatch):
    """conftest's fake runtimes, with the shortest idle window."""
    monkeypatch.setenv("EDGEBENCH_IDLE_WINDOW_S", "0.5")


# idle: 4 J over 2 s = 2 W; repetitions: 10 J each, back to back from 10 s to 13 s
SCRIPT = [(0, 0), (4, 2), (10, 10), (20, 11), (20, 11), (30, 12), (30, 12), (40, 13)]


def test_measure_fills_net_gross_and_idle_from_the_meter(fake_framework, monkeypatch):
    meter = FakeMeter("rapl", readings=SCRIPT, domains="package-0,dram")
    monkeypatch.setattr(select, "all_meters", lambda: {"rapl": meter})
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    tokens = 4 + 5  # prompt + new tokens of one repetition
    assert row.energy_method == "rapl" and row.energy_domains == "package-0,dram"
    assert row.idle_power_w == pytest.approx(2.0) and row.idle_window_s == pytest.approx(2.0)
    assert row.energy_gross_j == pytest.approx(10.0)  # 30 J / 3 repetitions
    assert row.energy_j == pytest.approx(8.0)  # (30 J - 2 W × 3 s) / 3
    assert row.j_per_token == pytest.approx(8 / tokens)
    assert row.j_per_token_gross == pytest.approx(10 / tokens)
    assert row.tokens_per_j == pytest.approx(tokens / 8)
    assert row.energy_prefill_j is None and row.energy_decode_j is None  # no interval known
    assert row.energy_note is None and meter.closed and meter.reads == len(SCRIPT)


def test_measure_without_a_meter_leaves_every_energy_column_null(fake_framework, monkeypatch):
    monkeypatch.setattr(select, "all_meters", dict)
    t = time.perf_counter()
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    assert row.energy_method == "none"
    assert all(getattr(row, c) is None for c in accounting.ENERGY_COLUMNS)
    assert time.perf_counter() - t < 5  # no idle window without a meter


def test_measure_on_this_machine_records_none(fake_framework):
    """The real meters here (a CI VM: no RAPL, no GPU, no battery) give ``none``."""
    if any(m["readable"] for m in select.meters_report()):
        pytest.skip("this machine has a readable meter")
    row = measure(_run(), CTX)
    assert row.energy_method == "none" and row.energy_j is None and row.idle_power_w is None


def test_measure_reports_an_unreadable_meter(fake_framework, monkeypatch):
    meter = FakeMeter("rapl", avail=(True, False, "permission denied reading energy_uj",
                                     "chmod a+r"))
    monkeypatch.setattr(select, "all_meters", lambda: {"rapl": meter})
    row = measure(_run(), CTX)
    assert row.status == "ok" and row.energy_method == "none" and row.energy_j is None
    assert row.energy_note == ("rapl present but unreadable: permission denied reading "
                               "energy_uj (to enable: chmod a+r)")


def test_a_meter_failing_mid_run_leaves_the_row_ok(fake_framework, monkeypatch):
    meter = FakeMeter("rapl", readings=SCRIPT, fail_at=4)
    monkeypatch.setattr(select, "all_meters", lambda: {"rapl": meter})
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    assert row.energy_method == "none" and row.energy_j is None
    assert row.energy_note == "rapl failed: rapl: permission denied mid-run"
    assert meter.closed


@pytest.mark.parametrize("raw", ["0", "0.1", "61", "nan", "two"])
def test_idle_window_env_is_bounded(monkeypatch, raw):
    from edgebench.errors import ConfigError
    from edgebench.harness import tuning

    monkeypatch.setenv("EDGEBENCH_IDLE_WINDOW_S", raw)
    with pytest.raises(ConfigError, match="EDGEBENCH_IDLE_WINDOW_S"):
        tuning.check()
    monkeypatch.setenv("EDGEBENCH_IDLE_WINDOW_S", "")
    assert tuning.idle_window_s() == 2.0
