"""Reports: the chapter's table against hand-computed rows, claim parsing, HTML/markdown, errors."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from conftest import make_record, run_main
from edgebench import api
from edgebench.errors import ConfigError
from edgebench.reports import build_report, render, tables
from edgebench.reports.claims import load_claims, parse_claim
from edgebench.reports.series import history, inter_token_ms, latency_stats
from edgebench.results.store import Store, records_to_table

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MB = 2**20


def rec(framework, precision, key, **kw):
    base = dict(framework=framework, precision=precision, run_key=key, cpu_model="Test CPU",
                measurement="measured", energy_method="none", framework_version="1.0")
    base.update(kw)
    return make_record(**base)


def speed(framework, precision, cls, bpw, peak, decode, **kw):
    return rec(framework, precision, f"{framework}-{precision}-{kw.get('device', 'cpu')}",
               artifact_precision_class=cls, bits_per_weight=bpw, peak_rss_mb=peak,
               decode_tok_s=decode, ttft_ms=100.0, model_bytes=int(peak * MB),
               token_ms_samples=[[100.0, 110.0, 125.0], [100.0, 108.0, 120.0]], **kw)


def qual(framework, precision, ppl, **kw):
    return rec(framework, precision, f"q-{framework}-{precision}", kind="quality", ppl=ppl, **kw)


def hand_rows():
    """Rows whose reductions and speed-ups are worked out by hand in the tests below."""
    return [
        speed("llama-cpp", "f16", "high", 16.0, 1000.0, 20.0),
        speed("llama-cpp", "q4_k_m", "low", 4.9, 300.0, 50.0),  # -70 %, 2.5x
        speed("llama-cpp", "q8_0", "medium", 8.5, 550.0, 30.0),  # not the claimed Q4_K_M
        speed("openvino", "fp16", "high", 16.0, 800.0, 10.0),
        speed("openvino", "int4", "low", 4.0, 320.0, 60.0),  # -60 %, 6x (claim 2-5x)
        speed("qai-hub", "fp16", "high", 16.0, 500.0, 10.0, measurement="estimated"),
        speed("qai-hub", "w4a16", "low", 4.0, 200.0, 80.0, measurement="estimated"),
        # no high-precision run on this device: q8_0 is the baseline, 400 -> 300 MB, 20 -> 30
        speed("llama-cpp", "q8_0", None, 8.5, 400.0, 20.0, device="gpu"),
        speed("llama-cpp", "q4_k_m", None, 4.9, 300.0, 30.0, device="gpu"),
        rec("mlx", "4bit", "mlx-4bit", status="unavailable", message="mlx needs Apple Silicon"),
        qual("openvino", "int4", 21.0, ppl_reference=20.0, kld_mean=0.05),
        qual("openvino", "fp16", 20.0),
        qual("llama-cpp", "f16", 20.0),
        qual("llama-cpp", "q4_k_m", 22.5),  # no ppl_reference: against the f16 quality row
    ]


def frame(records) -> pd.DataFrame:
    return records_to_table(records).to_pandas()


@pytest.fixture
def chapter():
    df = tables.prepare(frame(hand_rows()))
    t = tables.chapter_table(df, load_claims())
    return {(r.runtime, r.quantization, r.device.split(" ")[0] if isinstance(r.device, str)
             else ""): r for r in t.itertuples()}


def test_claim_parsing():
    def parts(text):
        c = parse_claim(text)
        return c.kind, c.low, c.high

    assert parts("60-75% reduction") == ("reduction", 60, 75)
    assert parts("2-3x") == ("ratio", 2, 3)
    assert parts("5–15x") == ("ratio", 5, 15)
    gb = parse_claim("~4 GB")
    assert (gb.kind, gb.low, gb.high) == ("gb", 3.0, 5.0)
    assert parse_claim("2-3x").check(3.0) == "within"
    assert parse_claim("2-3x").check(3.01) == "outside"
    assert parse_claim("2-3x").check(None) == "n/a"
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_claim("fast")


def test_packaged_claims_cover_the_chapter():
    claims = {c.framework: c for c in load_claims()}
    assert set(claims) == {"llama.cpp", "Olive", "OpenVINO", "QNN", "MLX"}
    assert claims["Olive"].runtimes == ("ort-genai",)
    assert claims["QNN"].runtimes == ("qnn", "qai-hub")
    assert claims["llama.cpp"].applies_to("q4_k_m") and not claims["llama.cpp"].applies_to("q8_0")
    assert claims["OpenVINO"].applies_to("int8") and claims["OpenVINO"].applies_to("int4")
    assert claims["MLX"].applies_to("4bit") and not claims["MLX"].applies_to("fp16")


def test_reductions_and_speedups_by_hand(chapter):
    q4 = chapter[("llama-cpp", "q4_k_m", "cpu")]
    assert q4.baseline == "f16"
    assert q4.memory_reduction_pct == pytest.approx(70.0)
    assert q4.size_reduction_pct == pytest.approx(70.0, abs=0.01)
    assert q4.speedup == pytest.approx(2.5)
    assert (q4.speedup_check, q4.memory_check) == ("within", "outside")  # 0.29 GB vs ~4 GB
    assert q4.delta_ppl == pytest.approx(2.5)  # 22.5 - the f16 quality row's 20.0

    ov = chapter[("openvino", "int4", "cpu")]
    assert ov.memory_reduction_pct == pytest.approx(60.0)
    assert ov.speedup == pytest.approx(6.0)
    assert (ov.memory_check, ov.speedup_check) == ("within", "outside")
    assert ov.kld_mean == pytest.approx(0.05) and ov.delta_ppl == pytest.approx(1.0)


def test_claim_not_applied_to_other_precisions(chapter):
    q8 = chapter[("llama-cpp", "q8_0", "cpu")]
    assert q8.speedup == pytest.approx(1.5)
    assert (q8.memory_check, q8.speedup_check) == ("n/a", "n/a")
    assert "claim is for Q4_K_M" in q8.note


def test_highest_bits_row_is_the_baseline_without_a_high_run(chapter):
    q4 = chapter[("llama-cpp", "q4_k_m", "gpu")]
    assert q4.baseline == "q8_0"
    assert q4.memory_reduction_pct == pytest.approx(25.0)
    assert q4.speedup == pytest.approx(1.5)
    top = chapter[("llama-cpp", "q8_0", "gpu")]
    assert math.isnan(top.speedup) and "no higher-precision run" in top.note


def test_estimated_rows_are_labelled_and_compared_among_themselves(chapter):
    qnn = chapter[("qai-hub", "w4a16", "cpu")]
    assert qnn.measurement == "estimated" and qnn.speedup == pytest.approx(8.0)
    assert (qnn.memory_check, qnn.speedup_check) == ("within", "within")


def test_frameworks_without_measurement_say_why(chapter):
    mlx, ort = chapter[("mlx", "4-bit", "")], chapter[("ort-genai", "INT4", "")]
    assert mlx.note == "not measured: unavailable: mlx needs Apple Silicon"
    assert ort.note == "not measured: no ort-genai rows"
    assert (mlx.memory_check, mlx.speedup_check) == ("n/a", "n/a")


def test_latest_row_per_run_wins():
    old = speed("llama-cpp", "q4_k_m", "low", 4.9, 900.0, 5.0, started_at=T0 - timedelta(days=1))
    df = tables.prepare(frame([*hand_rows(), old]))
    t = tables.chapter_table(df, load_claims())
    row = t[(t.runtime == "llama-cpp") & (t.quantization == "q4_k_m")].iloc[0]
    assert row.decode_tok_s == 50.0


def test_pareto_front():
    df = pd.DataFrame({"mem": [100, 200, 150, 300, None], "tok": [10, 30, 5, 30, 50]})
    assert tables.pareto_front(df, "mem", "tok").tolist() == [True, True, False, False, False]


def test_matrix_and_latency_and_history():
    df = tables.prepare(frame(hand_rows()))
    pp = tables.per_precision(df)
    m = tables.matrix(pp, "cpu · Test CPU", "m", "decode_tok_s")
    assert m.loc["llama-cpp", "q4_k_m"] == 50.0 and m.loc["qai-hub (estimated)", "w4a16"] == 80.0
    assert list(m.columns)[:2] == ["f16", "fp16"]  # most bits first
    assert inter_token_ms([[100.0, 110.0, 125.0]]).tolist() == [10.0, 15.0]
    lat = latency_stats(df)
    one = lat[(lat.framework == "openvino") & (lat.precision == "int4")].iloc[0]
    assert one.n == 4 and one["median"] == pytest.approx(11.0)  # of 8, 10, 12, 15
    assert history(df).empty  # one session
    later = speed("llama-cpp", "f16", "high", 16.0, 1000.0, 22.0, session_id="s2",
                  started_at=T0 + timedelta(days=1))
    h = history(tables.prepare(frame([*hand_rows(), later])))
    assert h[(h.framework == "llama-cpp") & (h.precision == "f16")].decode_tok_s.tolist() == [
        20.0, 22.0]


def _store(tmp_path):
    store = Store(tmp_path / "store")
    store.write_session("s1", hand_rows())
    return store


def test_html_has_every_section_claims_and_offline_plotly(tmp_path):
    path = api.report(_store(tmp_path), out=tmp_path / "r.html")
    html = path.read_text()
    for section in ("environment", "chapter", "matrices", "pareto", "latency",
                    "recommendation", "history"):
        assert f'<section id="{section}">' in html
    for claim in load_claims():
        for text in (claim.framework, claim.memory_claim, claim.speedup_claim, claim.use_case):
            assert text in html
    assert "outside claim" in html and "not measured" in html and "estimated" in html
    assert "mlx needs Apple Silicon" in html
    assert "no energy meter" in html
    assert html.count("Plotly.newPlot") >= 3
    assert html.count("plotly.js v") <= 2  # the library's banner: inlined once
    page = html.split("</script>", 1)[1]  # the page after the inlined library
    assert "<script src=" not in page and "cdn.plot.ly" not in page


def test_markdown_format(tmp_path):
    text = api.report(_store(tmp_path), fmt="md")
    assert "## 2. The chapter's table, measured" in text
    assert "60-75% reduction" in text and "⚠ outside claim" in text
    assert "| llama.cpp | llama-cpp |" in text and "Plotly" not in text


def test_device_filter(tmp_path):
    text = api.report(_store(tmp_path), fmt="md", devices=["gpu"])
    assert "q8_0 vs" not in text.split("## 3.")[0].replace("q4_k_m vs q8_0", "")
    assert "q4_k_m vs q8_0" in text


def test_no_rows_is_one_line_naming_the_filter(tmp_path, capsys):
    _store(tmp_path)
    code, _, err = run_main(["report", "--store", str(tmp_path / "store"),
                             "--where", "framework = 'nope'"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no rows match --where \"framework = 'nope'\"" in err
    code, _, err = run_main(["report", "--store", str(tmp_path / "store"), "--device", "npu"],
                            capsys)
    assert code == 2 and "--device npu" in err
    with pytest.raises(ConfigError, match="SQL|--where"):
        api.report(Store(tmp_path / "store"), where="bogus ==")


def test_cli_writes_the_file(tmp_path, capsys):
    _store(tmp_path)
    out = tmp_path / "x" / "report.md"
    code, _, err = run_main(["report", "--store", str(tmp_path / "store"), "--format", "md",
                             "--out", str(out)], capsys)
    assert code == 0 and out.exists() and "wrote" in err


def test_build_report_with_a_recommender():
    from edgebench.reports.recommend import DeviceRecommendation

    def pick(rows, label):
        return DeviceRecommendation(label, winner="llama-cpp:q4_k_m", reasons=["fastest"])

    rep = build_report(frame(hand_rows()), recommender=pick)
    assert {r.winner for r in rep.recommendations} == {"llama-cpp:q4_k_m"}
    assert "Ship: llama-cpp:q4_k_m" in render(rep, "md")
