"""Which rows compare (docs/validity.md, "Comparisons"): workload, quality protocol, hardware,
measurement kind, the latest ok row, the memory figure, the KLD floor, the report's baseline and
warning marks — for `recommend` and `report` alike, on hand-made rows with hand-computed answers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from conftest import make_record, run_main
from edgebench import api
from edgebench.decision import Candidate, Constraints, Estimate, compare, present, rank
from edgebench.reports import build_report, figures, render, tables
from edgebench.reports.claims import load_claims
from edgebench.reports.environment import not_measured
from edgebench.results.store import Store, records_to_table

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MB = 2**20
INTEL = dict(cpu_model="Intel(R) Core(TM) i7-1185G7", cpu_cores_logical=8,
             ram_total_mb=15890.0, os="Linux 6.8.0-1017-azure (x86_64)", accelerators="")
AMD = dict(cpu_model="AMD EPYC 7763", cpu_cores_logical=16, ram_total_mb=64000.0,
           os="Linux 6.5.0 (x86_64)", accelerators="")
HERE = {"machine_id": "m1", **INTEL}
#: Most rows here have no quality row: the comparison rules, not quality, are the subject, so
#: they are ranked with --allow-unmeasured-quality (tests/test_decision.py covers the default).
ANY_QUALITY = dict(allow_unmeasured_quality=True)


def speed(fw, prec, decode, *, rss=400.0, mem=None, mb=100, t=0, key=None, machine="m1",
          hw=INTEL, **kw):
    row = dict(run_key=key or f"s-{fw}-{prec}", framework=fw, precision=prec,
               machine_id=machine, started_at=T0 + timedelta(hours=t), decode_tok_s=decode,
               decode_tok_s_min=decode, decode_tok_s_max=decode, ttft_ms=1000 / decode,
               peak_rss_mb=rss, peak_mem_mb=mem, model_bytes=int(mb * MB), repetitions=5,
               measurement="measured", **hw)
    return make_record(**{**row, **kw})


def failed(fw, prec, status="error", *, t=1, key=None, machine="m1", hw=INTEL, **kw):
    return make_record(run_key=key or f"s-{fw}-{prec}", framework=fw, precision=prec,
                       machine_id=machine, started_at=T0 + timedelta(hours=t), status=status,
                       message=f"{status} message", **{**hw, **kw})


def qual(fw, prec, kld, *, ref="llama-cpp:f16", n_ctx=512, chunks=4, t=0, floor=None, **kw):
    return make_record(run_key=f"q-{fw}-{prec}-{ref}-{n_ctx}", kind="quality", framework=fw,
                       precision=prec, kld_mean=kld, kld_floor_mean=floor,
                       quality_reference=ref, corpus_sha256="c0ffee", n_ctx=n_ctx,
                       chunks=chunks, prompt_tokens=n_ctx, new_tokens=0, ppl=20.0,
                       ppl_reference=20.0, started_at=T0 + timedelta(hours=t),
                       measurement="measured", **{**INTEL, **kw})


def store_of(tmp_path, *rows, name="st") -> Store:
    st = Store(tmp_path / name)
    st.write_session("s1", list(rows))
    return st


def frame(*records) -> pd.DataFrame:
    return tables.prepare(records_to_table(list(records)).to_pandas())


def names(rec):
    return [r.candidate.name for r in (rec.winner, *rec.ties, *rec.runners_up) if r]


# --- 1. workloads never mix in the report ------------------------------------------------

def test_report_medians_never_mix_workloads():
    df = frame(speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q4_k_m", 50.0),
               speed("llama-cpp", "f16", 40.0, key="f16-64", prompt_tokens=64),
               speed("llama-cpp", "f16", 80.0, key="f16-4t", threads=4))
    pp = tables.per_precision(df)
    assert sorted(pp.loc[pp.precision == "f16", "decode_tok_s"]) == [20.0, 40.0, 80.0]
    t = tables.chapter_table(df, load_claims())
    q4 = t[t.quantization == "q4_k_m"].iloc[0]
    # against the f16 run of the same workload (50 / 20), not the median of all three (40)
    assert q4.speedup == pytest.approx(2.5) and q4.workload == "8+4 tokens, 2 threads"
    rep = build_report(records_to_table([speed("llama-cpp", "f16", 20.0),
                                         speed("llama-cpp", "f16", 40.0, key="x",
                                               prompt_tokens=64)]).to_pandas())
    assert sorted(rep.matrices) == ["cpu · Intel(R) Core(TM) i7-1185G7 · m · 64+4 tokens, "
                                    "2 threads", "cpu · Intel(R) Core(TM) i7-1185G7 · m · "
                                    "8+4 tokens, 2 threads"]


# --- 2. one quality protocol -------------------------------------------------------------

def _protocol_rows():
    return [speed("llama-cpp", "f16", 20.0, mb=500), speed("llama-cpp", "q8_0", 32.0, mb=270),
            speed("llama-cpp", "q4_k_m", 45.0, mb=150),
            qual("llama-cpp", "f16", 0.0), qual("llama-cpp", "q8_0", 0.002),
            qual("llama-cpp", "q4_k_m", 0.08),
            # newer, but against another reference on shorter chunks: not comparable
            qual("llama-cpp", "q4_k_m", 0.001, ref="ort-genai:fp32", n_ctx=256, chunks=2, t=5)]


def test_recommend_joins_quality_of_one_protocol(tmp_path):
    st = store_of(tmp_path, *_protocol_rows())
    rec = api.recommend(st, "cpu", constraints=Constraints(max_kld=0.05), machine=HERE)
    assert {r.candidate.name: r.reasons for r in rec.rejected} == {
        "llama-cpp q4_k_m cpu": ("kld_mean 0.08 > 0.05",)}
    note = next(n for n in rec.notes if n.startswith("quality compared under one protocol"))
    assert "reference llama-cpp:f16, corpus c0ffee, n_ctx 512, 4 chunks (3 of 3" in note
    assert "left out 1 quality row(s) of other protocols: reference ort-genai:fp32" in note


def test_the_quality_reference_counts_as_measured_with_kld_0(tmp_path):
    """f16 has no quality row of its own, but it is the reference the others were measured
    against: KLD 0 by definition. The same precision on another device is not the reference."""
    rows = [speed("llama-cpp", "f16", 20.0, mb=500),
            speed("llama-cpp", "q8_0", 32.0, mb=270),
            speed("llama-cpp", "f16", 25.0, mb=500, key="f16-gpu", device="vulkan"),
            qual("llama-cpp", "q8_0", 0.002, chunks=2)]
    rec = api.recommend(store_of(tmp_path, *rows), "this", machine=HERE)  # every device
    f16 = next(r.candidate for r in (rec.winner, *rec.runners_up)
               if r.candidate.name == "llama-cpp f16 cpu")
    assert f16.kld_mean.value == 0.0 and f16.ppl.value == 20.0
    assert f16.quality_note.startswith("the quality reference (llama-cpp:f16) of 1 measured")
    assert next(r for r in present.rows(rec) if r["candidate"] == "llama-cpp f16 cpu")[
        "KLD"] == "0 (the reference)"
    assert rec.unmeasured_quality == ("llama-cpp f16 vulkan",)
    # the command repeats the protocol (2 chunks, not the default 4), so the new rows compare
    assert rec.measure_quality == ("edgebench quality t --resume --chunks 2 --reference "
                                   "llama-cpp:f16")


def test_rows_merged_from_launches_bring_every_sample(tmp_path):
    samples = [30.0, 30.5, 29.5, 31.0, 30.2, 29.8, 30.1, 30.4, 29.9, 30.3]  # 2 launches x 5
    rows = [speed("llama-cpp", "q8_0", 30.1, launches=2, decode_tok_s_samples=samples,
                  sample_launch=[0] * 5 + [1] * 5),
            qual("llama-cpp", "q8_0", 0.002)]
    rec = api.recommend(store_of(tmp_path, *rows), "cpu", machine=HERE)
    assert rec.winner.candidate.decode_tok_s.samples == tuple(samples)


def test_report_joins_quality_of_one_protocol():
    rows = records_to_table(_protocol_rows()).to_pandas()
    pp = tables.per_precision(tables.prepare(rows))
    assert pp.set_index("precision").kld_mean.to_dict() == {"f16": 0.0, "q8_0": 0.002,
                                                            "q4_k_m": 0.08}
    assert any("quality compared under one protocol: reference llama-cpp:f16" in n
               for n in build_report(rows).notes)


def test_protocol_tie_break_is_deterministic():
    a = ("r:f16", None, None, "c", 512, 4)
    b = ("r:f16", None, None, "c", 512, 8)
    c = ("r:f16", None, None, "c", 1024, 8)
    assert compare.choose_protocol({a: 2, b: 1}) == a  # most candidates first
    assert compare.choose_protocol({a: 1, b: 1}) == b  # then more chunks
    assert compare.choose_protocol({c: 1, b: 1}) == c  # then longer chunks


# --- 3. same hardware --------------------------------------------------------------------

def _two_machines():
    return [speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q8_0", 32.0),
            speed("llama-cpp", "q4_k_m", 45.0),
            speed("llama-cpp", "q8_0", 90.0, machine="m2", hw=AMD),
            speed("llama-cpp", "q4_k_m", 120.0, machine="m2", hw=AMD)]


def test_recommend_ranks_one_hardware_and_names_the_rest(tmp_path):
    st = store_of(tmp_path, *_two_machines())
    rec = api.recommend(st, "cpu", machine=HERE, **ANY_QUALITY)
    assert sorted(names(rec)) == ["llama-cpp f16 cpu", "llama-cpp q4_k_m cpu",
                                  "llama-cpp q8_0 cpu"]
    note = next(n for n in rec.notes if n.startswith("ranking one hardware"))
    assert "i7-1185G7 · 8 cores · 16 GiB · Linux (x86_64) (this machine's)" in note
    assert "left out 2 row(s) of other hardware: AMD EPYC 7763" in note
    assert "--across-machines" in note
    # a machine without rows: the hardware with most rows (Intel, 3 against 2)
    other = api.recommend(st, "cpu", machine={"machine_id": "m9", "cpu_model": "Z"},
                          **ANY_QUALITY)
    assert "(the one with most rows)" in " ".join(other.notes)
    assert sorted(names(other)) == sorted(names(rec))


def test_across_machines_ranks_together_and_says_so(tmp_path):
    st = store_of(tmp_path, *_two_machines())
    rec = api.recommend(st, "cpu", machine=HERE, across_machines=True, **ANY_QUALITY)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu @AMD EPYC 7763"
    assert len(names(rec)) == 5
    assert any(n.startswith("--across-machines: ranking rows of 2 different hardware") for n
               in rec.notes)


def test_nightly_runners_are_one_hardware(tmp_path):
    """CI runners are new machines each night (new machine_id, a few MB of RAM more or less,
    another kernel) but the same hardware: their rows compare, the latest ok cell counts."""
    night2 = {**INTEL, "ram_total_mb": 15923.0, "os": "Linux 6.8.0-1020-azure (x86_64)"}
    st = store_of(tmp_path, speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q4_k_m", 40.0),
                  speed("llama-cpp", "q4_k_m", 44.0, machine="m2", hw=night2, t=24))
    night3 = {"machine_id": "m3", **INTEL, "ram_total_mb": 15901.0}
    rec = api.recommend(st, "this", machine=night3, **ANY_QUALITY)
    assert not rec.guidance
    assert sorted(names(rec)) == ["llama-cpp f16 cpu", "llama-cpp q4_k_m cpu"]
    assert rec.winner.candidate.decode_tok_s.value == 44.0
    assert compare.hardware_key(night2) == compare.hardware_key(INTEL)


def test_hardware_key_ignores_kernel_driver_and_a_few_mb():
    gpu = {**INTEL, "accelerators": "NVIDIA L4, 550.54.15"}
    assert compare.hardware_key(gpu) == compare.hardware_key(
        {**gpu, "accelerators": "NVIDIA L4, 560.28.03", "ram_total_mb": 15950.0})
    assert compare.hardware_key(gpu).endswith("· NVIDIA L4")
    assert compare.hardware_key(INTEL) != compare.hardware_key({**INTEL, "ram_total_mb": 32000})
    assert compare.hardware_key({"machine_id": "x"}) == "machine x"


def test_report_labels_hardware_not_machines():
    night2 = {**INTEL, "ram_total_mb": 15923.0}
    rows = [speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q4_k_m", 44.0, machine="m2",
                                                   hw=night2),
            speed("llama-cpp", "q4_k_m", 99.0, machine="m3", hw={**INTEL, "ram_total_mb": 64e3})]
    raw = records_to_table(rows).to_pandas()
    labels = sorted(tables.prepare(raw)["device_label"].unique())
    assert len(labels) == 2  # m1 + m2 are one hardware; m3 has 64 GiB
    assert "cpu · Intel(R) Core(TM) i7-1185G7 · 8 cores · 16 GiB · Linux (x86_64)" in labels
    rep = build_report(raw, across_machines=True)
    assert rep.devices == ["cpu · all hardware (--across-machines)"]
    assert any(n.startswith("--across-machines: rows of 2 different hardware") for n in
               rep.notes)


# --- 4. measurement kinds ----------------------------------------------------------------

def test_imported_rows_never_choose_the_workload_or_hide_a_measured_cell(tmp_path):
    imp = dict(measurement="imported:llama-bench")
    st = store_of(tmp_path, *(speed("llama-cpp", p, 99.0, key=f"i-{p}", **imp)
                              for p in ("q2_k", "q3_k_m", "q5_0")),
                  speed("llama-cpp", "q4_k_m", 40.0, prompt_tokens=64),
                  speed("llama-cpp", "f16", 20.0, prompt_tokens=64),
                  # same cell identity, imported later: it must not replace the measurement
                  speed("llama-cpp", "f16", 500.0, prompt_tokens=64, t=3, **imp))
    rec = api.recommend(st, "cpu", machine=HERE, **ANY_QUALITY)
    assert not rec.guidance and rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert "llama-cpp f16 cpu" in names(rec)
    assert [r.candidate.measurement for r in rec.rejected] == ["imported:llama-bench"]
    assert any("ranking the 64-token prompt" in n for n in rec.notes)


def test_pareto_front_of_the_report_is_measured_rows_only():
    df = frame(speed("llama-cpp", "f16", 20.0, rss=1000.0), speed("llama-cpp", "q4_k_m", 50.0,
                                                                  rss=300.0),
               speed("qai-hub", "w4a16", 80.0, rss=200.0, measurement="estimated"))
    pp = tables.per_precision(df)
    fig = figures.speed_memory(pp, pp.device_label.iloc[0])
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert list(front.x) == [300.0]


# --- 5. the latest ok row ----------------------------------------------------------------

def _rerun_rows():
    return [speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q4_k_m", 45.0),
            speed("llama-cpp", "q4_k_m", 40.0, t=1), failed("llama-cpp", "q4_k_m", t=2)]


def test_a_later_failure_does_not_hide_the_measurement(tmp_path):
    rec = api.recommend(store_of(tmp_path, *_rerun_rows()), "cpu", machine=HERE, **ANY_QUALITY)
    q4 = next(r for r in (rec.winner, *rec.runners_up) if r.candidate.precision == "q4_k_m")
    assert q4.candidate.decode_tok_s.value == 40.0  # the latest ok row, not the first
    assert q4.candidate.warnings[0].startswith("a later run on 2026-01-01 02:00 ended in "
                                               "error: error message")
    row = next(r for r in present.rows(rec) if "q4_k_m" in r["candidate"])
    assert row["candidate"] == "⚠ llama-cpp q4_k_m cpu" and "ended in error" in row["warnings"]
    assert any(n.startswith("⚠ llama-cpp q4_k_m cpu: a later run") for n in rec.notes)


def test_report_uses_the_same_row_and_warns():
    raw = records_to_table(_rerun_rows()).to_pandas()
    df = tables.prepare(raw)
    pp = tables.per_precision(df).set_index("precision")
    assert pp.loc["q4_k_m", "decode_tok_s"] == 40.0
    assert "ended in error" in pp.loc["q4_k_m", "warnings"]
    assert not_measured(df).empty  # the cell was measured: the failure is a warning
    rep = build_report(raw)
    assert any("llama-cpp q4_k_m: a later run" in w for w in rep.warnings)
    assert "⚠" in render(rep, "md").split("## 2.")[1].split("## 3.")[0]


# --- 6. one memory figure ----------------------------------------------------------------

def test_rank_uses_peak_mem_when_all_have_it_else_rss_for_all():
    a = Candidate("x", "a", "cpu", peak_mem_mb=300.0, peak_rss_mb=500.0, model_bytes=MB)
    b = Candidate("x", "b", "cpu", peak_mem_mb=350.0, peak_rss_mb=400.0, model_bytes=MB)
    both = rank([a, b], weights="memory", **ANY_QUALITY)
    assert both.winner.candidate.name == "x a cpu" and both.memory_figure == "peak_mem_mb"
    assert not any("peak_rss_mb" in n for n in both.notes)
    old = Candidate("x", "c", "cpu", peak_rss_mb=450.0, model_bytes=MB)
    mixed = rank([a, b, old], Constraints(max_memory_mb=420), weights="memory", **ANY_QUALITY)
    assert mixed.memory_figure == "peak_rss_mb"
    assert {r.candidate.name: r.reasons for r in mixed.rejected} == {
        "x a cpu": ("peak_rss_mb 500 > 420",), "x c cpu": ("peak_rss_mb 450 > 420",)}
    assert any("1 of 3 row(s) lack peak_mem_mb" in n for n in mixed.notes)
    assert "peak RSS MB" in present.rows(mixed)[0]


def test_recommend_reads_peak_mem_from_the_store(tmp_path):
    st = store_of(tmp_path, speed("llama-cpp", "q8_0", 30.0, mem=350.0, rss=400.0),
                  speed("llama-cpp", "q4_k_m", 30.0, mem=300.0, rss=500.0))
    rec = api.recommend(st, "cpu", optimize="memory", machine=HERE,
                        constraints=Constraints(max_memory_mb=320), **ANY_QUALITY)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert rec.rejected[0].reasons == ("peak_mem_mb 350 > 320",)
    assert "peak mem MB" in present.rows(rec)[0]


def test_report_memory_is_one_figure_per_comparison():
    rows = [speed("llama-cpp", "f16", 20.0, mem=800.0, rss=1000.0),
            speed("llama-cpp", "q4_k_m", 50.0, mem=200.0, rss=300.0)]
    t = tables.chapter_table(frame(*rows), load_claims())
    q4 = t[t.quantization == "q4_k_m"].iloc[0]
    assert (q4.memory_figure, q4.memory_reduction_pct) == ("peak_mem_mb", pytest.approx(75.0))
    # an older row in the same comparison: RSS for every row of it, never a mix
    t = tables.chapter_table(frame(*rows, speed("openvino", "fp16", 10.0, rss=900.0)),
                             load_claims())
    q4 = t[t.quantization == "q4_k_m"].iloc[0]
    assert (q4.memory_figure, q4.memory_reduction_pct) == ("peak_rss_mb", pytest.approx(70.0))


# --- 7. the KLD floor --------------------------------------------------------------------

def test_klds_at_the_floor_are_equal_in_ranking_and_shown_as_such():
    def c(prec, kld, mb):
        return Candidate("llama-cpp", prec, "cpu",
                         decode_tok_s=Estimate(10.0, samples=(9.9, 10.0, 10.1)),
                         peak_rss_mb=400.0, model_bytes=mb * MB, kld_mean=Estimate(kld),
                         kld_floor=1e-5)

    rec = rank([c("f16", 0.0, 500), c("q8_0", 2.5e-5, 270)], weights="quality")
    # both below 3 x 1e-5: equal on KLD (and equal samples), so a tie, which the smaller
    # artifact wins
    assert rec.winner.candidate.precision == "q8_0"
    assert [r.candidate.precision for r in rec.ties] == ["f16"]
    assert present.rows(rec)[0]["KLD"] == "at the floor (< 3x 1e-05)"
    above = rank([c("f16", 0.0, 500), c("q8_0", 4e-5, 270)], weights="quality")
    assert above.winner.candidate.precision == "f16"  # 4e-5 is measurably above the floor


def test_report_shows_kld_at_the_floor():
    rows = [speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q8_0", 30.0),
            qual("llama-cpp", "f16", 0.0, floor=1e-5), qual("llama-cpp", "q8_0", 2e-5,
                                                            floor=1e-5)]
    md = render(build_report(records_to_table(rows).to_pandas()), "md")
    assert "KLD at the floor" in md and "KLD 2e-05" not in md


# --- 8. the report's baseline ------------------------------------------------------------

def test_baseline_falls_back_to_the_highest_ok_precision_and_says_why():
    rows = [failed("mlx", "fp16", "timeout"), speed("mlx", "8bit", 20.0, rss=600.0),
            speed("mlx", "4bit", 30.0, rss=400.0)]
    raw = records_to_table(rows).to_pandas()
    t = tables.chapter_table(tables.prepare(raw), load_claims())
    four = t[t.quantization == "4bit"].iloc[0]
    assert four.baseline == "8bit" and four.speedup == pytest.approx(1.5)
    assert four.baseline_note == "the highest-precision ok run (fp16: timeout)"
    assert "baseline 8bit: the highest-precision ok run (fp16: timeout)" in four.note
    assert "4bit vs 8bit (highest ok)" in render(build_report(raw), "md")


# --- 9. doubtful rows are marked ---------------------------------------------------------

def test_busy_and_disagreeing_rows_are_marked(tmp_path):
    rows = [speed("llama-cpp", "f16", 20.0), speed("llama-cpp", "q4_k_m", 50.0,
                                                   machine_busy=True),
            speed("llama-cpp", "q8_0", 30.0, flags=["timing-disagreement"])]
    rec = api.recommend(store_of(tmp_path, *rows), "cpu", machine=HERE)
    marks = {r["candidate"]: r["warnings"] for r in present.rows(rec)}
    assert marks == {"⚠ llama-cpp q4_k_m cpu": "machine busy", "llama-cpp f16 cpu": "",
                     "⚠ llama-cpp q8_0 cpu": "timing disagreement"}
    raw = records_to_table(rows).to_pandas()
    t = tables.chapter_table(tables.prepare(raw), load_claims())
    assert t[t.runtime == "llama-cpp"].set_index("quantization").warnings.to_dict() == {
        "q4_k_m": "machine busy", "q8_0": "timing disagreement"}
    md = render(build_report(raw), "md")
    assert "50.0 tok/s ⚠" in md and "llama-cpp q4_k_m: machine busy" in md


# --- CLI ----------------------------------------------------------------------------------

def test_cli_across_machines(tmp_path, capsys):
    store_of(tmp_path, *_two_machines(), name="store")  # the conftest's EDGEBENCH_STORE
    code, out, err = run_main(["recommend", "--device", "cpu", "--format", "json",
                               "--allow-unmeasured-quality"], capsys)
    assert code == 0 and "left out 2 row(s) of other hardware" in err
    assert len(json.loads(out)["runners_up"]) + 1 + len(json.loads(out)["ties"]) == 3
    code, out, err = run_main(["recommend", "--device", "cpu", "--across-machines",
                               "--allow-unmeasured-quality", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and "--across-machines: ranking rows of 2" in err
    assert data["winner"]["candidate"]["name"] == "llama-cpp q4_k_m cpu @AMD EPYC 7763"
    code, out, _ = run_main(["report", "--format", "md", "--out", "-", "--across-machines"],
                            capsys)
    assert code == 0 and "### cpu · all hardware (--across-machines)" in out
