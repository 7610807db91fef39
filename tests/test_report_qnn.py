"""Reports with QNN rows: the HTP simulator's real figures (artifact, numerics) are shown, its
timings never are. Hand-made rows, reductions worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import make_record
from edgebench import api
from edgebench.reports import build_report, figures, render, select, tables
from edgebench.reports.claims import load_claims
from edgebench.reports.environment import measurement_methods
from edgebench.reports.series import history, latency_stats
from edgebench.results import provenance
from edgebench.results.store import Store, records_to_table

MB = 2**20
SIM = "htp-simulator"
#: Distinctive simulated timings: none of them may appear in a table, figure or page.
SIM_DECODE, SIM_TTFT, SIM_RSS = 4321.987, 8765.4321, 6543.21
SIM_TEXTS = ("4321.98", "4,322", "8765.43", "8,765", "6543.21", "6,543")


def qnn_speed(precision: str, bpw: float, size_mb: float, **kw):
    """A speed row of the HTP simulator: real artifact, an emulator's clock."""
    return make_record(
        framework="qnn", precision=precision, device=SIM, device_name=SIM,
        run_key=f"qnn-{precision}", measurement="simulated", cpu_model="Test CPU",
        energy_method="none", framework_version="1.0", bits_per_weight=bpw,
        model_bytes=int(size_mb * MB), decode_tok_s=SIM_DECODE, ttft_ms=SIM_TTFT,
        peak_rss_mb=SIM_RSS, token_ms_samples=[[100.0, 110.0, 125.0]], **kw)


def qnn_quality(precision: str, bpw: float, size_mb: float, ppl: float, **kw):
    """A quality row of the HTP simulator: measured numerics, simulated timings."""
    return make_record(
        framework="qnn", precision=precision, device=SIM, device_name=SIM, kind="quality",
        run_key=f"q-qnn-{precision}", measurement=provenance.SIMULATOR_QUALITY,
        cpu_model="Test CPU", energy_method="none", framework_version="1.0",
        bits_per_weight=bpw, model_bytes=int(size_mb * MB), ppl=ppl, n_ctx=64, chunks=4,
        quality_reference="qnn:fp32", scored_tok_s=SIM_DECODE, load_s=12.5,
        peak_rss_mb=SIM_RSS, accel_nodes=100, cpu_nodes=0, prompt_tokens=64, new_tokens=0,
        **kw)


def cpu_speed(precision: str, bpw: float, peak: float, decode: float):
    """A measured llama.cpp row on the host, so the report has the usual content too."""
    return make_record(
        framework="llama-cpp", precision=precision, run_key=f"llama-{precision}",
        measurement="measured", cpu_model="Test CPU", energy_method="none",
        framework_version="1.0", bits_per_weight=bpw, peak_rss_mb=peak,
        decode_tok_s=decode, ttft_ms=100.0, model_bytes=int(peak * MB),
        token_ms_samples=[[100.0, 110.0, 125.0]])


def qnn_rows(fp32: bool = True):
    rows = [
        cpu_speed("f16", 16.0, 1000.0, 20.0),
        cpu_speed("q4_k_m", 4.9, 300.0, 50.0),
        qnn_speed("w8a16", 8.0, 100.0),
        qnn_quality("w8a16", 8.0, 100.0, 21.0, kld_mean=0.0123, kld_stderr=0.001,
                    ppl_reference=20.0),
    ]
    if fp32:
        rows += [qnn_speed("fp32", 32.0, 400.0), qnn_quality("fp32", 32.0, 400.0, 20.0)]
    return rows


def frame(records) -> pd.DataFrame:
    return tables.prepare(records_to_table(records).to_pandas())


def qnn_chapter(df: pd.DataFrame) -> pd.DataFrame:
    t = tables.chapter_table(df, load_claims())
    return t[t["framework"] == "QNN"]


def test_the_qnn_claim_is_the_qnn_runtime():
    qnn = next(c for c in load_claims() if c.framework == "QNN")
    assert "qnn" in qnn.runtimes and qnn.applies_to("w8a16") and qnn.applies_to("w8a8")
    assert not qnn.applies_to("fp32")


def test_size_reduction_against_the_fp32_artifact_and_no_speed():
    t = qnn_chapter(frame(qnn_rows()))
    assert len(t) == 1  # fp32 is the baseline, not a row
    r = t.iloc[0]
    assert (r.runtime, r.quantization, r.baseline) == ("qnn", "w8a16", "fp32")
    assert r.bits_per_weight == 8.0 and r.model_mb == pytest.approx(100.0, abs=1e-5)
    assert r.size_reduction_pct == pytest.approx(75.0, abs=1e-4)  # 1 - 100/400 (8 vs 32 bpw)
    assert r.memory_check == "within"  # 50-80 %
    assert r.baseline_note == "" and "against the fp32 artifact" in r.note
    assert "artifact" in r.note and "not device memory" in r.note
    assert "speed not measured: htp-simulator timings are simulated" in r.note
    assert r.kld_mean == pytest.approx(0.0123) and r.delta_ppl == pytest.approx(1.0)
    for col in ("decode_tok_s", "speedup", "memory_mb", "memory_reduction_pct"):
        assert pd.isna(r[col]), col
    assert r.speedup_check == "n/a"
    assert provenance.label(r.measurement) == "simulated timings"


def test_without_fp32_the_baseline_is_the_same_parameter_count_at_16_bits():
    t = qnn_chapter(frame(qnn_rows(fp32=False)))
    r = t.iloc[0]
    assert r.quantization == "w8a16" and pd.isna(r.baseline)
    params = 100.0 * MB * 8 / 8.0  # model_bytes x 8 / bits per weight
    assert r.size_reduction_pct == pytest.approx(100 * (1 - 100.0 * MB / (params * 16 / 8)),
                                                 abs=1e-4)  # 50 %
    assert r.memory_check == "within"
    assert "16 bits" in r.baseline_note and "16 bits" in r.note
    assert pd.isna(r.decode_tok_s)


def test_quality_rows_alone_give_the_qnn_cells():
    rows = [r for r in qnn_rows() if r.kind == "quality"]
    r = qnn_chapter(frame(rows)).iloc[0]
    assert r.size_reduction_pct == pytest.approx(75.0, abs=1e-4)
    assert r.kld_mean == pytest.approx(0.0123)


def test_no_qnn_rows_is_not_measured():
    t = qnn_chapter(frame([cpu_speed("f16", 16.0, 1000.0, 20.0)]))
    assert t.iloc[0].note == "not measured: no qnn/qai-hub rows"


def test_simulated_timings_never_appear_in_tables_or_figures():
    df = frame(qnn_rows())
    t = tables.chapter_table(df, load_claims())
    assert not t.isin([SIM_DECODE, SIM_TTFT, SIM_RSS]).any().any()
    pp = tables.per_precision(df)
    label = f"{SIM} · Test CPU"
    assert tables.matrix(pp, label, "m", "decode_tok_s").empty
    assert tables.matrix(pp, label, "m", "memory_mb").empty
    for metric in ("decode_tok_s", "ttft_ms", "memory_mb", "ppl"):
        m = tables.matrix(pp, label, "m", metric)
        assert not m.isin([SIM_DECODE, SIM_TTFT, SIM_RSS]).any().any()
    ppl = tables.matrix(pp, label, "m", "ppl")
    assert ppl.loc["qnn (simulated timings)", "w8a16"] == 21.0
    assert latency_stats(df).query("framework == 'qnn'").empty
    speed_fig = figures.speed_memory(pp, label)
    assert not speed_fig.data
    names = {trace.name for trace in figures.quality_size(pp).data}
    assert "qnn (simulated timings)" in names


def test_simulated_rows_stay_out_of_history():
    later = qnn_speed("w8a16", 8.0, 100.0, session_id="s2",
                      started_at=pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime())
    h = history(frame([*qnn_rows(), later]))
    assert "qnn" not in set(h.get("framework", []))


def test_labels_read_simulated_timings():
    rows = pd.DataFrame({"framework": ["qnn", "qnn", "llama-cpp"],
                         "measurement": [provenance.SIMULATOR_QUALITY, "simulated",
                                         "measured"]})
    assert select.runtime_label(rows).tolist() == [
        "qnn (simulated timings)", "qnn (simulated)", "llama-cpp"]


def test_measurement_methods_name_both_parts():
    m = measurement_methods(frame(qnn_rows())).set_index("method")
    assert m.loc["simulated timings", ["numerics", "timings", "rows"]].tolist() == [
        "measured", "simulated", 2]
    assert m.loc["simulated", "rows"] == 2 and m.loc["measured", "rows"] == 2


def test_the_html_report_shows_qnn_and_no_simulated_speed(tmp_path):
    store = Store(tmp_path / "store")
    store.write_session("s1", qnn_rows())
    html = api.report(store, out=tmp_path / "r.html").read_text()
    chapter = html.split('<section id="chapter">', 1)[1].split("</section>", 1)[0]
    assert "QNN" in chapter and "w8a16" in chapter and "75 % artifact" in chapter
    assert "vs fp32 (highest ok)" not in chapter  # fp32 is the high-precision baseline
    assert "speed not measured: htp-simulator timings are simulated" in chapter
    assert "simulated timings" in chapter
    page = html.split("</script>", 1)[1]  # after the inlined plotly.js
    for text in SIM_TEXTS:
        assert text not in page, text
    md = render(build_report(records_to_table(qnn_rows()).to_pandas()), "md")
    assert "| QNN | qnn |" in md and "75 % artifact vs fp32" in md
    for text in SIM_TEXTS:
        assert text not in md, text


def test_imported_figures_without_a_high_precision_figure_are_not_checked():
    """Qualcomm's published w4 and w4a16 figures (imported): their decode tok/s is shown with
    its provenance, but a speed-up between two 4-bit figures is no verdict on the chapter's
    claim (estimated rows with their own fp16 figure are checked: test_report.py)."""
    def imported(precision, decode):
        return make_record(
            framework="qai-hub", precision=precision, device="Samsung Galaxy S25",
            run_key=f"imp-{precision}", measurement="imported:qai-hub-models",
            model="Llama-v3.2-1B-Instruct", model_sha256="name:x", cpu_model="Snapdragon 8 Elite",
            machine_id="elsewhere:1", energy_method="none", decode_tok_s=decode, ttft_ms=60.0,
            prompt_tokens=128, new_tokens=None)

    df = frame([imported("w4a16", 67.2), imported("w4", 34.5)])
    chapter = qnn_chapter(df)
    assert len(chapter) == 2
    assert set(chapter["speedup_check"]) == {"n/a"} and set(chapter["memory_check"]) == {"n/a"}
    w4 = chapter[chapter["quantization"] == "w4"].iloc[0]
    assert w4["baseline"] == "w4a16"  # the highest ok, not a high-precision figure
    assert ("imported:qai-hub-models figures without their own high-precision figure: not "
            "checked against the claim") in w4["note"]
    from edgebench.reports.html import chapter_rows

    cells = {c["precision"]: c for c in chapter_rows(chapter)}
    assert cells["w4a16"]["decode"].startswith("67.2 tok/s")  # shown, with its label
    assert cells["w4a16"]["measurement"] == "imported:qai-hub-models"
