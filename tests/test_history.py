"""edgebench history: series per run over sessions, steps from change points, the command."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from conftest import make_record, run_main
from edgebench import history
from edgebench.errors import ConfigError
from edgebench.results.store import Store

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
HW = dict(cpu_model="Test CPU", cpu_cores_logical=2, ram_total_mb=8192.0, os="Linux 6 (x86_64)")


def night(i: int, key: str, level: float, *, seed: int = 0, n: int = 5, **kw):
    """Night ``i``'s row of run ``key``: ``n`` samples around ``level`` (1 % noise)."""
    s = level * (1 + 0.01 * np.random.default_rng(seed * 1000 + i).standard_normal(n))
    base = dict(run_key=key, session_id=f"202603{i + 1:02d}T031700Z-{i:06x}",
                started_at=T0 + timedelta(days=i), decode_tok_s=float(np.median(s)),
                decode_tok_s_samples=[float(v) for v in s], ttft_ms=100.0,
                ttft_ms_samples=[100.0] * n, precision=key, **HW)
    base.update(kw)
    return make_record(**base)


def nights(levels, key="q4_k_m", **kw):
    return [night(i, key, lv, **kw) for i, lv in enumerate(levels)]


def as_rows(records):
    import dataclasses

    return [dataclasses.asdict(r) for r in records]


def test_a_persisting_step_is_found_with_before_after_and_change():
    rows = as_rows(nights([100] * 6 + [85] * 4))
    (s,) = history.series(rows, "decode_tok_s")
    assert len(s.points) == 10 and s.latest.value == pytest.approx(85, rel=0.03)
    (step,) = s.steps
    assert step.index == 6 and step.session_id == s.points[6].session_id
    assert step.before == pytest.approx(100, rel=0.02) and step.after == pytest.approx(85, rel=0.02)
    assert step.change == pytest.approx(-0.15, abs=0.02) and not step.better
    assert "-15" in step.text() and "worse" in step.text()


def test_one_outlier_night_is_no_step_and_a_steady_series_has_none():
    assert history.series(as_rows(nights([100] * 5 + [60] + [100] * 4)),
                          "decode_tok_s")[0].steps == ()
    assert history.series(as_rows(nights([100] * 10, seed=3)), "decode_tok_s")[0].steps == ()


def test_a_step_on_the_last_night_only_waits_for_a_second_night():
    assert history.series(as_rows(nights([100] * 8 + [80])), "decode_tok_s")[0].steps == ()
    assert len(history.series(as_rows(nights([100] * 8 + [80] * 2)),
                              "decode_tok_s")[0].steps) == 1


def test_lower_is_better_metrics_name_the_direction():
    rows = as_rows(nights([100] * 5 + [100] * 5))
    for r, ms in zip(rows, [50] * 5 + [40] * 5):
        r["ttft_ms"], r["ttft_ms_samples"] = float(ms), [ms * f for f in (0.99, 1, 1.01, 1, 1)]
    (step,) = history.series(rows, "ttft_ms")[0].steps
    assert step.better and step.change == pytest.approx(-0.2, abs=0.01)


def test_each_session_counts_its_latest_ok_row_and_failures_are_ignored():
    rows = as_rows(nights([100] * 3))
    late = dict(rows[1], started_at=rows[1]["started_at"] + timedelta(minutes=5),
                decode_tok_s=50.0, decode_tok_s_samples=[50.0] * 5)
    failed = dict(rows[2], started_at=rows[2]["started_at"] + timedelta(minutes=5),
                  status="error", decode_tok_s=None, decode_tok_s_samples=None)
    (s,) = history.series([*rows, late, failed], "decode_tok_s")
    assert [p.value for p in s.points][1] == 50.0 and len(s.points) == 3


def test_runs_and_hardware_are_separate_series_and_points_are_in_time_order():
    a, b = nights([100] * 4, key="q4_k_m"), nights([50] * 4, key="q8_0")
    other = nights([200] * 2, key="q4_k_m", cpu_model="Other CPU")
    rows = as_rows(a + b + other)
    found = history.series(list(reversed(rows)), "decode_tok_s")
    assert len(found) == 3
    assert {(s.labels["precision"], s.hardware.split(" · ")[0], len(s.points))
            for s in found} == {("q4_k_m", "Test CPU", 4), ("q8_0", "Test CPU", 4),
                                ("q4_k_m", "Other CPU", 2)}
    for s in found:
        times = [p.started_at for p in s.points]
        assert times == sorted(times)
    assert "hardware" in history.summary(found)[0]


def test_metrics_without_samples_use_the_median_alone():
    rows = as_rows(nights([100] * 12))
    for i, r in enumerate(rows):
        r["peak_mem_mb"] = 300.0 + (0.5 if i % 2 else 0) + (60 if i >= 6 else 0)
    (s,) = history.series(rows, "peak_mem_mb")
    assert all(len(p.samples) == 1 for p in s.points)
    assert [st.index for st in s.steps] == [6]  # 6 vs 6 single values reach p <= 0.01


def test_unknown_metric_names_the_metrics_that_exist():
    with pytest.raises(ConfigError) as e:
        history.check_metric("decode_toks")
    msg = str(e.value)
    assert "decode_toks" in msg and "did you mean decode_tok_s" in msg and "ttft_ms" in msg
    assert "\n" not in msg


def write_store(path, records):
    st = Store(path)
    by_session: dict[str, list] = {}
    for r in records:
        by_session.setdefault(r.session_id, []).append(r)
    for sid, recs in by_session.items():
        st.write_session(sid, recs)
    return st


@pytest.mark.parametrize("fmt", ["md", "csv", "table"])
def test_command_lists_latest_value_steps_and_sessions(tmp_path, capsys, fmt):
    write_store(tmp_path / "s", nights([100] * 5 + [80] * 5) + nights([50] * 10, key="q8_0"))
    code, out, err = run_main(["history", "decode_tok_s", "--store", str(tmp_path / "s"),
                               "--format", fmt], capsys)
    assert code == 0, err
    assert "2 run(s) over 10 session(s); 1 step(s) in decode_tok_s" in err
    assert "-20" in out and "q8_0" in out
    if fmt == "md":
        assert out.splitlines()[0].startswith("| run_key | model |")
        assert "| sessions |" in out.splitlines()[0] and "| 10 |" in out


def test_command_json_has_points_and_steps_and_where_filters(tmp_path, capsys):
    write_store(tmp_path / "s", nights([100] * 5 + [80] * 5) + nights([50] * 10, key="q8_0"))
    code, out, err = run_main(["history", "decode_tok_s", "--store", str(tmp_path / "s"),
                               "--where", "precision = 'q4_k_m'", "--format", "json"], capsys)
    assert code == 0, err
    (s,) = json.loads(out)
    assert s["sessions"] == 10 and len(s["points"]) == 10 and len(s["points"][0]["samples"]) == 5
    (step,) = s["steps"]
    assert step["change"] == pytest.approx(-0.2, abs=0.02) and step["better"] is False


@pytest.mark.parametrize("args, needle", [
    (["history", "decode_toks"], "unknown metric 'decode_toks' (did you mean decode_tok_s?)"),
    (["history", "decode_tok_s"], "no ok row with decode_tok_s"),
    (["history", "decode_tok_s", "--where", "nonsense ((("], "--where 'nonsense ((('"),
    (["history", "decode_tok_s", "--min-sessions", "0"], "--min-sessions"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, needle):
    code, out, err = run_main(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err


def test_an_outlier_on_the_first_or_last_night_is_no_step():
    for levels in ([60] + [100] * 9, [100] * 9 + [140], [100] * 4 + [80] * 5 + [100]):
        steps = history.series(as_rows(nights(levels)), "decode_tok_s")[0].steps
        assert [s.index for s in steps] == ([4] if levels[4] == 80 else []), levels


# --- the report's trends ------------------------------------------------------------------

def test_report_draws_each_run_over_sessions_with_its_steps(tmp_path):
    from edgebench import api

    st = write_store(tmp_path / "s", nights([100] * 5 + [80] * 5, measurement="measured")
                     + nights([50] * 10, key="q8_0", measurement="measured"))
    md = api.report(st, fmt="md")
    assert "Steps (change points" in md
    (line,) = [x for x in md.splitlines() if x.startswith("- decode tok/s:")]
    assert "llama-cpp:q4_k_m" in line and "-20" in line and "worse" in line
    html = api.report(st, fmt="html")
    assert "decode tok\\u002fs per run over sessions" in html and "TTFT ms per run over" in html
    assert "diamond-open" in html  # the step is marked on the figure


def test_report_with_one_session_has_no_trends(tmp_path):
    from edgebench import api
    from edgebench.reports import build_report
    from edgebench.results.store import records_to_table

    st = write_store(tmp_path / "s", nights([100], measurement="measured"))
    assert "Steps (change points" not in api.report(st, fmt="md")
    assert build_report(records_to_table(nights([100])).to_pandas()).trends == {}


def test_a_store_folder_that_does_not_exist_is_named(tmp_path, capsys):
    code, out, err = run_main(["history", "decode_tok_s", "--store", str(tmp_path / "typo")],
                              capsys)
    assert code == 2 and "typo" in err and "does not exist" in err


@pytest.mark.parametrize("measurement, metric, followed", [
    ("measured", "decode_tok_s", True),
    (None, "decode_tok_s", True),  # older files: NULL is measured
    ("simulated", "decode_tok_s", False),  # an emulator's clock is no device's trend
    ("estimated", "decode_tok_s", False),
    ("imported:llama-bench", "decode_tok_s", False),
    # a quality row of the HTP simulator: its KLD is followed, its scored tok/s is not
    ("numerics=measured;timings=simulated", "kld_mean", True),
    ("numerics=measured;timings=simulated", "scored_tok_s", False),
    ("simulated", "kld_mean", False),
])
def test_history_follows_only_the_measured_part(measurement, metric, followed):
    rows = as_rows(nights([100] * 3, measurement=measurement))
    for r in rows:  # the speed metrics are set by night(); give the others a value
        r[metric] = 0.1 if r[metric] is None else r[metric]
    assert bool(history.series(rows, metric)) == followed
