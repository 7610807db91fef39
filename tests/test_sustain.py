"""Sustained runs: the duration grammar and the throttling analysis on synthetic series
(hand-computed answers)."""

import pytest

from edgebench.errors import ConfigError
from edgebench.harness.sustain import parse_duration, rolling_median, summarize


@pytest.mark.parametrize("text, seconds", [
    ("10m", 600.0), ("90s", 90.0), ("1h", 3600.0), ("1h30m", 5400.0), ("2.5m", 150.0),
    ("45", 45.0), ("0.5", 0.5), (" 10M ", 600.0), ("24h", 86400.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m", "10m10m", "-5m", "0", "0s", "25h",
                                  "nan", "inf", "10 m", "1h-30m", "1e9"])
def test_nonsense_durations_are_one_line_errors(text):
    with pytest.raises(ConfigError, match=r"^--sustain: expected a duration") as e:
        parse_duration(text)
    assert "\n" not in str(e.value)


def test_rolling_median():
    assert rolling_median([1, 5, 3, 4, 2, 10, 0], k=3) == [1, 3, 3, 4, 3, 4, 2]


def test_steady_series_has_no_onset():
    t = [10.0 * (i + 1) for i in range(30)]  # 30 windows of 10 s: 5 min
    s = summarize(t, [20.0] * 30)
    assert (s.first_minute_tok_s, s.steady_tok_s, s.throttle_onset_s, s.windows) == \
        (20.0, 20.0, None, 30)


def test_throttling_from_three_minutes_on():
    # 10 s windows; 20 tok/s for 3 min, then 15 tok/s (25 % below) to the end at 6 min.
    t = [10.0 * (i + 1) for i in range(36)]
    v = [20.0] * 18 + [15.0] * 18
    s = summarize(t, v)
    assert s.first_minute_tok_s == 20.0 and s.steady_tok_s == 15.0
    # rolling median over 5 windows turns to 15 at the third low window: the 21st, ending at
    # 210 s, and stays there
    assert s.throttle_onset_s == 210.0


def test_a_dip_that_recovers_is_no_onset():
    t = [10.0 * (i + 1) for i in range(30)]
    v = [20.0] * 10 + [15.0] * 10 + [20.0] * 10
    assert summarize(t, v).throttle_onset_s is None


def test_one_slow_window_is_no_onset_and_a_drop_of_under_ten_percent_neither():
    t = [10.0 * (i + 1) for i in range(30)]
    assert summarize(t, [20.0] * 29 + [5.0]).throttle_onset_s is None  # median of 5 ignores it
    assert summarize(t, [20.0] * 15 + [18.5] * 15).throttle_onset_s is None  # -7.5 %


def test_first_minute_and_steady_state_windows():
    # windows end at 30, 60, 90 ... 300 s: the first minute is the windows ending at 30 and 60;
    # the steady state the last 20 % of 10 windows: the last 2
    t = [30.0 * (i + 1) for i in range(10)]
    v = [22.0, 20.0, 19.0, 19.0, 18.0, 18.0, 17.0, 17.0, 16.0, 14.0]
    s = summarize(t, v)
    assert s.first_minute_tok_s == 21.0 and s.steady_tok_s == 15.0
    # limit 18.9: rolling medians 22, 21, 20, 19.5, 19, 19, 18, 18, 17, 17 -> below from the
    # 7th window (ends at 210 s) on
    assert s.throttle_onset_s == 210.0


def test_a_first_window_longer_than_a_minute_is_the_first_minute():
    s = summarize([90.0, 180.0], [12.0, 11.0])
    assert s.first_minute_tok_s == 12.0 and s.steady_tok_s == 11.0


@pytest.mark.parametrize("t, v", [([], []), ([1.0], [])])
def test_no_windows_is_an_error(t, v):
    with pytest.raises(ValueError):
        summarize(t, v)


@pytest.mark.skipif(not __import__("importlib").util.find_spec("llama_cpp"),
                    reason="llama-cpp-python is not installed")
def test_sustained_run_on_gemma_for_a_few_seconds(tmp_path, capsys):
    """The real CLI on Gemma 3 270M (llama.cpp q4_k_m): windows until 3 s have passed, each
    restarted from the same prompt; a run of its own (another run_key than the plain run)."""
    import json

    from conftest import run_main
    from edgebench.suites.expand import PlannedRun

    store = str(tmp_path / "st")
    args = ["run", "--prompt-tokens", "16", "--new-tokens", "8", "--warmup", "0",
            "--store", store, "--format", "json"]
    code, _, err = run_main([*args, "--sustain", "3s"], capsys)
    assert code == 0, err
    code, out, _ = run_main(["sql", "SELECT status, sustain_s, repetitions, sustain_t_s, "
                             "sustain_tok_s, decode_tok_s_samples, first_minute_tok_s, "
                             "steady_tok_s, run_key FROM runs", "--store", store,
                             "--format", "json"], capsys)
    (row,) = json.loads(out)
    assert row["status"] == "ok" and row["sustain_s"] == 3.0
    n = row["repetitions"]
    assert n >= 1 and len(row["sustain_t_s"]) == len(row["sustain_tok_s"]) == n
    assert row["sustain_t_s"] == sorted(row["sustain_t_s"]) and row["sustain_t_s"][-1] >= 3.0
    assert row["sustain_t_s"][-2:-1] == [] or row["sustain_t_s"][-2] < 3.0  # stops at once
    assert row["decode_tok_s_samples"] == pytest.approx(row["sustain_tok_s"])
    assert row["first_minute_tok_s"] > 0 and row["steady_tok_s"] > 0
    plain = PlannedRun(model="m", model_sha256="s", framework="llama-cpp", precision="q4_k_m",
                       device="cpu", prompt_tokens=16, new_tokens=8, threads=2, options={},
                       suite="t", repetitions=1, warmup=0, cooldown_s=0, timeout_s=1)
    from dataclasses import replace

    assert replace(plain, sustain_s=3.0).run_key != plain.run_key


def test_a_suite_asks_for_it_whole_or_per_cell():
    from edgebench.suites.expand import cells
    from edgebench.suites.spec import Suite

    assert Suite(name="t", sustain="10m").sustain == 600.0
    assert Suite(name="t", sustain=90).sustain == 90.0
    assert Suite(name="t").sustain is None
    s = Suite(name="t", precisions=("q4_k_m", "q8_0"),
              include=({"precision": "q8_0", "sustain": "2m"},))
    got = sorted(((c["precision"], c.get("sustain")) for c in cells(s)),
                 key=lambda x: (x[0], x[1] or 0))
    # the plain cells, plus q8_0 once more as a sustained run of its own
    assert got == [("q4_k_m", None), ("q8_0", None), ("q8_0", 120.0)]


@pytest.mark.parametrize("values, message", [
    (dict(sustain="abc"), "sustain: expected a duration such as 10m"),
    (dict(sustain=True), "sustain: expected a duration such as 10m"),
    (dict(include=({"framework": "llama-cpp", "sustain": "-1m"},)),
     "include[0].sustain: expected a duration"),
])
def test_bad_sustain_in_a_suite_is_one_line(values, message):
    from edgebench.suites.spec import Suite

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        Suite(name="t", **values)
    assert "\n" not in str(e.value)


def _sustained_row(**kw):
    from conftest import make_record

    return make_record(**{
        "run_key": "sus", "kind": "speed", "decode_tok_s": 20.0, "sustain_s": 120.0,
        "sustain_t_s": [30.0, 60.0, 90.0, 120.0], "sustain_tok_s": [20.0, 20.0, 15.0, 15.0],
        "sustain_temp_c": [60.0, float("nan"), 70.0, 75.0], "first_minute_tok_s": 20.0,
        "steady_tok_s": 15.0, "throttle_onset_s": 90.0, "cpu_model": "Test CPU",
        "cpu_cores_logical": 2, "ram_total_mb": 8192.0, "os": "Linux 6 (x86_64)", **kw})


def test_report_shows_sustained_runs_apart_from_the_cells_figures():
    import dataclasses

    import pandas as pd

    from edgebench.reports import sustained, tables

    plain = _sustained_row(run_key="plain", sustain_s=None, sustain_t_s=None,
                           sustain_tok_s=None, sustain_temp_c=None, first_minute_tok_s=None,
                           steady_tok_s=None, throttle_onset_s=None, decode_tok_s=30.0)
    df = tables.prepare(pd.DataFrame([dataclasses.asdict(r) for r in
                                      (plain, _sustained_row())]), False)
    t = sustained.table(df)
    assert len(t) == 1
    r = t.iloc[0]
    assert (r["windows"], r["first_minute_tok_s"], r["steady_tok_s"], r["throttle_onset_s"],
            r["temp_c_max"]) == (4, 20.0, 15.0, 90.0, 75.0)
    assert r["steady_vs_first_pct"] == pytest.approx(-25.0)
    assert sustained.figure(sustained.rows(df)) is not None
    pp = tables.per_precision(df)
    assert pp["decode_tok_s"].tolist() == [30.0]  # the sustained row is not the cell's speed


def test_recommend_never_ranks_a_sustained_row():
    import dataclasses

    from edgebench.decision import targets
    from edgebench.decision.candidates import candidates_from_rows

    rows = [dataclasses.asdict(_sustained_row())]
    found = candidates_from_rows(rows, targets.get("cpu"))
    assert found.candidates == ()
