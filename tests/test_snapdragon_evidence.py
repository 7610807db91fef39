"""`recommend --device snapdragon`: QNN quality (simulated numerics), Snapdragon speed and the
chapter's guidance, per model and precision, each labelled with its source
(``edgebench.decision.snapdragon``). Table tests over hand-made rows; one CLI test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import make_record, run_main
from edgebench.decision import Constraints, present, snapdragon, targets
from edgebench.decision.decide import recommend_rows
from edgebench.results.provenance import SIMULATOR_QUALITY
from edgebench.results.store import Store

GEMMA = "gemma-3-270m"
LLAMA = "Llama-v3.2-3B-Instruct"
X86 = dict(machine_id="x86", cpu_model="AMD EPYC 7763", os="Linux (x86_64)")
X_ELITE = dict(machine_id="xe", os="Windows 11 (ARM64)",
               cpu_model="Snapdragon(R) X Elite - X1E78100 - Qualcomm(R) Oryon(TM) CPU")
SIM_SOURCE = ("simulated numerics: QNN HTP simulator on x86-64 (the NPU's quantized "
              "arithmetic)")
CLAIM = ("chapter claim, not measured: QNN INT8/INT4: memory 50-80% reduction, speed-up 5-15x "
         "(Qualcomm mobile/edge)")
ORDER = "on QNN, by KLD (quality only, never simulated speed): "


def quality(precision, kld, se=None, *, model=GEMMA, device="htp-simulator", floor=None,
            **kw):
    """A QNN quality row of the HTP simulator (numerics measured, timings simulated)."""
    return {"run_key": f"q-{model}-{precision}-{device}", "kind": "quality", "status": "ok",
            "framework": "qnn", "precision": precision, "device": device,
            "device_name": device, "model": model, "model_sha256": model.lower(),
            "measurement": SIMULATOR_QUALITY, "kld_mean": kld, "kld_stderr": se,
            "kld_floor_mean": floor, "ppl": 20.0 + kld * 10, "ppl_reference": 20.0,
            "quality_reference": "llama-cpp:f16", "reference_sha256": "r", "corpus_sha256": "c",
            "n_ctx": 512, "chunks": 4, "framework_version": "1.23.0", "scored_tok_s": 3.0,
            **X86, **kw}


def speed(framework, precision, measurement, device, *, model=GEMMA, decode=20.0, ttft=150.0,
          **kw):
    return {"run_key": f"s-{framework}-{model}-{precision}-{device}-{measurement}",
            "kind": "speed", "status": "ok", "framework": framework, "precision": precision,
            "device": device, "model": model, "model_sha256": model.lower(),
            "measurement": measurement, "decode_tok_s": decode, "ttft_ms": ttft,
            "prompt_tokens": 128, "new_tokens": 64, **kw}


LADDER = [quality("w4a16", 0.20, 0.01), quality("w8a16", 0.004, 0.0005),
          quality("w16a16", 0.0001, floor=0.0001,
                  runtime_settings=json.dumps({"qnn_version": "2.37.0"}))]


def _by(ev):
    return {(ln.model, ln.precision): ln for ln in ev.lines}


def test_simulated_quality_is_ranked_by_kld_with_its_source():
    ev = snapdragon.evidence(LADDER)
    # w16a16 is at the floor (1e-4 < 3 x 1e-4): it counts as 0
    assert ev.order == (f"{GEMMA} {ORDER}w16a16 < w8a16 < w4a16",)
    assert [ln.precision for ln in ev.lines] == ["w16a16", "w8a16", "w4a16"]
    q = {ln.precision: ln.quality for ln in ev.lines}
    assert [q[p].position for p in ("w16a16", "w8a16", "w4a16")] == [1, 2, 3]
    assert q["w16a16"].at_floor and not q["w8a16"].at_floor
    assert all(not x.equivalent for x in q.values())
    assert q["w8a16"].source == f"{SIM_SOURCE}, onnxruntime-qnn 1.23.0"
    assert q["w16a16"].source == f"{SIM_SOURCE}, QNN 2.37.0"
    # the default floor 0.05 marks w4a16, and a note says which limit that was
    assert [p for p, x in q.items() if x.over_limit] == ["w4a16"]
    assert any("default quality floor 0.05" in n for n in ev.notes)


@pytest.mark.parametrize("rows, order, equivalent", [
    # [0.006, 0.014] and [0.011, 0.015] overlap; [0.016, 0.024] overlaps neither
    ([quality("w8a16", 0.010, 0.002), quality("w8a8", 0.013, 0.001),
      quality("w4a16", 0.020, 0.002)], "w8a16 ≈ w8a8 < w4a16",
     {"w8a16": ("w8a8",), "w8a8": ("w8a16",), "w4a16": ()}),
    # no stderr: a point; equal points overlap, different ones do not
    ([quality("w8a16", 0.01), quality("w8a8", 0.01), quality("w4a16", 0.011)],
     "w8a16 ≈ w8a8 < w4a16", {"w8a16": ("w8a8",), "w8a8": ("w8a16",), "w4a16": ()}),
    # an at-floor row (0) is equivalent to an interval that reaches 0
    ([quality("w16a16", 0.0001, floor=0.0001), quality("w8a16", 0.001, 0.0006)],
     "w16a16 ≈ w8a16", {"w16a16": ("w8a16",), "w8a16": ("w16a16",)}),
])
def test_overlapping_kld_intervals_are_equivalent(rows, order, equivalent):
    ev = snapdragon.evidence(rows)
    assert ev.order[0].startswith(f"{GEMMA} {ORDER}{order}")
    assert ("≈ equivalent: KLD intervals (±2 stderr) overlap" in ev.order[0]) == ("≈" in order)
    assert {ln.precision: ln.quality.equivalent for ln in ev.lines} == equivalent


def test_max_kld_marks_precisions_over_it():
    rows = [quality("w8a16", 0.010), quality("w8a8", 0.013), quality("w4a16", 0.2)]
    ev = snapdragon.evidence(rows, constraints=Constraints(max_kld=0.012))
    assert {ln.precision: ln.quality.over_limit for ln in ev.lines} == {
        "w8a16": False, "w8a8": True, "w4a16": True}
    assert ev.quality_limit == 0.012 and not any("default" in n for n in ev.notes)
    assert "OVER THE KLD LIMIT" in present.evidence_rows(ev)[1]["quality"]


def test_a_speed_row_of_another_model_says_so_and_precisions_are_not_mapped():
    rows = [*LADDER,
            speed("qai-hub", "w4a16", "imported:qai-hub-models", "Samsung Galaxy S25 (Family)",
                  model=LLAMA, decode=19.5, ttft=110.0),
            speed("qai-hub", "w4a8", "estimated", "Samsung Galaxy S25 (Family)", model=LLAMA)]
    lines = _by(snapdragon.evidence(rows))
    w4 = lines[(GEMMA, "w4a16")]
    assert [(s.model, s.decode_tok_s, s.source) for s in w4.speed] == [
        (LLAMA, 19.5, "imported (qai-hub-models): Qualcomm's published figure on Samsung "
                      "Galaxy S25 (Family)")]
    assert w4.notes == (f"speed is Qualcomm's figure for {LLAMA}, not {GEMMA}",)
    # w4a8 matches no quality precision: a line of its own, never mapped onto w4a16 or w8a16
    alone = lines[(LLAMA, "w4a8")]
    assert alone.quality is None
    assert [s.source for s in alone.speed] == [
        "estimated by Qualcomm AI Hub on Samsung Galaxy S25 (Family)"]
    assert alone.notes == ("no QNN quality row of precision w4a8: speed only (no precision "
                           "mapping is assumed)",)
    assert not lines[(GEMMA, "w8a16")].speed
    table = {(r["model"], r["precision"]): r for r in
             present.evidence_rows(snapdragon.evidence(rows))}
    assert table[(GEMMA, "w4a16")]["speed"] == (
        "decode 19.5 tok/s, TTFT 110 ms (128-token prompt) on Samsung Galaxy S25 (Family)")
    assert table[(GEMMA, "w8a16")]["speed source"] == CLAIM


def test_same_model_speed_is_preferred_over_another_models():
    rows = [quality("w4a16", 0.2, model=GEMMA), quality("w4a16", 0.1, model=LLAMA),
            speed("qai-hub", "w4a16", "imported:qai-hub-models", "Galaxy S25", model=LLAMA)]
    lines = _by(snapdragon.evidence(rows))
    assert [s.model for s in lines[(LLAMA, "w4a16")].speed] == [LLAMA]
    assert lines[(LLAMA, "w4a16")].notes == () and lines[(GEMMA, "w4a16")].speed == ()


def test_simulated_timings_are_never_speed():
    rows = [*LADDER, speed("qnn", "w8a16", "simulated", "htp-simulator", **X86),
            speed("qnn", "w4a16", "simulated", "htp-simulator", **X86)]
    ev = snapdragon.evidence(rows)
    assert all(not ln.speed for ln in ev.lines)  # neither the speed rows nor the quality rows
    assert "2 simulated speed row(s) left out: an emulator's timings are never speed" in ev.notes
    assert ev.claim == CLAIM


@pytest.mark.parametrize("optimize, branch", [
    ("balanced", "QNN int4 on htp (balanced)"), ("quality", "QNN int8 on htp (quality-first)")])
def test_no_speed_row_gives_the_chapters_guidance_and_claim(optimize, branch):
    ev = snapdragon.evidence(LADDER, optimize=optimize)
    assert ev.guidance.startswith(f"chapter guidance, not measured: {branch}: ")
    assert ev.claim == CLAIM
    assert {r["speed source"] for r in present.evidence_rows(ev)} == {CLAIM}
    text = "\n".join(present.evidence_lines(ev))
    assert f"speed:   not measured [{CLAIM}]" in text and ev.guidance in text


def test_no_quality_row_says_how_to_measure_it():
    ev = snapdragon.evidence([], model=GEMMA)
    assert ev.lines == () and ev.order == () and ev.claim == CLAIM
    assert ev.notes == (f"no QNN quality row of {GEMMA}: measure it on any x86-64 machine with "
                        "`edgebench quality snapdragon` (HTP simulator)",)


def test_a_real_snapdragon_npu_row_is_measured_speed_and_quality():
    rows = [quality("w8a16", 0.006, 0.001), quality("w8a16", 0.005, 0.001, device="htp",
                                                    device_name="htp-npu", **{**X_ELITE}),
            speed("qnn", "w8a16", "measured", "htp", device_name="htp-npu", decode=31.0,
                  **X_ELITE),
            speed("llama-cpp", "q4_0", "measured", "cpu", **X_ELITE),
            speed("llama-cpp", "q4_0", "measured", "cpu", **X86)]  # not a Snapdragon
    ev = snapdragon.evidence(rows)
    lines = _by(ev)
    w8 = lines[(GEMMA, "w8a16")]
    assert w8.quality.source == "measured on a Snapdragon NPU, onnxruntime-qnn 1.23.0"
    assert w8.quality.kld_mean == 0.005  # the NPU's own row before the simulator's
    assert [(s.decode_tok_s, s.source) for s in w8.speed] == [
        (31.0, f"measured on a Snapdragon: qnn on htp-npu ({X_ELITE['cpu_model']})")]
    assert [s.source for s in lines[(GEMMA, "q4_0")].speed] == [
        f"measured on a Snapdragon: llama-cpp on cpu ({X_ELITE['cpu_model']})"]
    assert any("left out 1 row(s)" in n for n in ev.notes)
    assert ev.guidance == "" and ev.claim == ""  # every line has speed


def test_model_filters_quality_but_keeps_every_speed_row():
    rows = [*LADDER, quality("w8a16", 0.003, model=LLAMA)]
    ev = snapdragon.evidence(rows, model=LLAMA)
    assert [(ln.model, ln.precision) for ln in ev.lines] == [(LLAMA, "w8a16")]


def test_one_protocol_per_model():
    rows = [quality("w8a16", 0.004), quality("w4a16", 0.2),
            quality("w4a8", 0.1, n_ctx=256)]
    ev = snapdragon.evidence(rows)
    assert [ln.precision for ln in ev.lines] == ["w8a16", "w4a16"]
    assert any("left out 1 row(s) of other protocols" in n for n in ev.notes)


@pytest.mark.parametrize("extra, outcome", [
    ([], "guidance"),  # no Snapdragon speed row: the tree answers
    ([speed("qnn", "w8a16", "measured", "htp", device_name="htp-npu", **X_ELITE),
      quality("w8a16", 0.004, device="htp", **X_ELITE)], "winner"),
    ([speed("qnn", "w8a16", "measured", "htp", **X_ELITE)], "needs_quality"),
])
def test_recommend_rows_attaches_evidence_on_snapdragon_only(extra, outcome):
    rows = [*LADDER, *extra]
    rec = recommend_rows(rows, targets.get("snapdragon"), model=GEMMA)
    assert {"guidance": rec.guidance, "winner": rec.winner is not None,
            "needs_quality": rec.needs_quality}[outcome]
    assert rec.evidence is not None and rec.evidence.lines
    assert rec.as_dict()["evidence"]["lines"][0]["model"] == GEMMA
    assert recommend_rows(rows, targets.get("cpu"), model=GEMMA).evidence is None


def test_snapdragon_evidence_is_pure():
    code = ("import edgebench.decision.snapdragon, sys;"
            "bad = {'duckdb', 'pandas', 'click', 'pyarrow'} & set(sys.modules);"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_recommend_snapdragon_shows_the_evidence(tmp_path, capsys):
    keep = ("run_key", "kind", "framework", "precision", "device", "device_name", "model",
            "model_sha256", "measurement", "kld_mean", "kld_stderr", "ppl", "ppl_reference",
            "quality_reference", "corpus_sha256", "n_ctx", "chunks",
            "framework_version", "machine_id", "cpu_model", "os")
    Store(tmp_path / "store").write_session("s", [
        make_record(**{k: v for k, v in r.items() if k in keep}) for r in
        (quality("w8a16", 0.004, 0.0005), quality("w4a16", 0.2, 0.01))])
    args = ["recommend", "--device", "snapdragon", "--store", str(tmp_path / "store")]
    code, out, _ = run_main([*args, "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["guidance"] is True
    ev = data["evidence"]
    assert [(ln["precision"], ln["quality"]["position"]) for ln in ev["lines"]] == [
        ("w8a16", 1), ("w4a16", 2)]
    assert ev["lines"][0]["quality"]["source"].startswith(SIM_SOURCE)
    assert ev["order"] == [f"{GEMMA} {ORDER}w8a16 < w4a16"] and ev["claim"] == CLAIM
    code, out, _ = run_main([*args, "--format", "md"], capsys)
    assert code == 0 and "### Snapdragon evidence by source" in out
    assert f"| {GEMMA} | w8a16 | #1 KLD 0.004 ± 0.0005" in out and CLAIM in out
    code, out, _ = run_main(args, capsys)
    assert code == 0 and "Snapdragon evidence by source" in out and "simulated numerics" in out


def _cpu_quality(framework, precision, kld, **kw):
    row = quality(precision, kld, 0.001, device="cpu", **kw)
    return {**row, "framework": framework, "measurement": "measured",
            "run_key": f"q-{framework}-{precision}"}


def test_other_runtimes_under_the_same_protocol_are_shown_for_weighing():
    rows = [quality("w8a16", 0.11, 0.01),
            _cpu_quality("llama-cpp", "q4_k_m", 0.0056), _cpu_quality("llama-cpp", "q8_0", 0.0028),
            _cpu_quality("openvino", "int4", 0.03, n_ctx=256),  # another protocol: left out
            _cpu_quality("mlx", "4bit", 0.02, model="other-model")]  # another model
    ev = snapdragon.evidence(rows)
    assert ev.others == (
        f"{GEMMA}, other runtimes under the same protocol (KLD, for weighing the NPU's "
        "precision loss): llama-cpp q8_0 cpu 0.0028; llama-cpp q4_k_m cpu 0.0056",)
    text = "\n".join(present.evidence_lines(ev))
    assert ev.others[0] in text
    assert snapdragon.evidence(rows[:1]).others == ()


def test_imported_rows_of_other_models_never_stop_the_ranking():
    """Two measured Snapdragon rows of one model plus Qualcomm's figures for its own models:
    the ranking is of the measured model (the others are said to be left out), not an error."""
    from edgebench.decision.candidates import candidates_from_rows

    measured = [speed("llama-cpp", p, "measured", "cpu", **X_ELITE, decode=d,
                      run_key=f"m-{p}") for p, d in (("q4_0", 30.0), ("q8_0", 20.0))]
    imported = [speed("qai-hub", "w4a16", "imported:qai-hub-models", "Samsung Galaxy S25",
                      model=LLAMA, cpu_model="Snapdragon 8 Elite")]
    found = candidates_from_rows(measured + imported, targets.get("snapdragon"))
    assert sorted(c.precision for c in found.candidates) == ["q4_0", "q8_0"]
    assert any(f"of other models not measured by edgebench (imported:qai-hub-models): {LLAMA}"
               in n for n in found.notes)
