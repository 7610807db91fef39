"""The decision module: hand-computed winners, ties, rejections; order and dominance laws."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench.decision import (
    OPTIMIZE,
    TARGETS,
    Candidate,
    Constraints,
    Estimate,
    Weights,
    rank,
    tree,
)
from edgebench.decision import targets as tg
from edgebench.errors import ConfigError

MB = 2**20


def cand(name, decode, *, spread=0.0, ttft=50.0, rss=400.0, mb=100.0, kld=None, ppl=None,
         ppl_ref=None, j=None, measurement=None):
    return Candidate(
        framework=name.split()[0], precision=name.split()[1], device="cpu", name=name,
        decode_tok_s=Estimate(decode, decode - spread, decode + spread),
        ttft_ms=Estimate(ttft), peak_rss_mb=rss, model_bytes=int(mb * MB),
        kld_mean=None if kld is None else Estimate(kld),
        ppl=None if ppl is None else Estimate(ppl), ppl_reference=ppl_ref, j_per_token=j,
        measurement=measurement)


def names(rs):
    return [r.candidate.name for r in rs]


# --- hand-computed tables ---------------------------------------------------------------

def test_speed_and_memory_pick_different_winners():
    a = cand("llama-cpp f16", 30, spread=1, ttft=50, rss=400, mb=200)
    b = cand("llama-cpp q4_k_m", 20, spread=1, ttft=60, rss=300, mb=100)
    speed = rank([a, b], weights="speed")
    # A: .6*1 + .3*1 + .1*(300/400); B: .6*(20/30) + .3*(50/60) + .1*1
    assert speed.winner.candidate.name == "llama-cpp f16"
    assert speed.winner.score == pytest.approx(0.975)
    assert speed.runners_up[0].score == pytest.approx(0.4 + 0.25 + 0.1)
    assert speed.runners_up[0].on_front  # less memory: not dominated
    assert speed.runners_up[0].reason.endswith("decode_tok_s 20.0 vs 30.0 tok/s")
    memory = rank([a, b], weights="memory")
    # A: .6*.75 + .2*.5 + .2*1; B: .6 + .2 + .2*(20/30)
    assert memory.winner.candidate.name == "llama-cpp q4_k_m"
    assert memory.winner.score == pytest.approx(0.6 + 0.2 + 0.2 * 20 / 30)
    assert memory.runners_up[0].score == pytest.approx(0.75)


def test_overlapping_intervals_are_tied_and_the_smaller_artifact_wins():
    a = cand("ort-genai int8", 30, spread=5, rss=420, mb=250)
    b = cand("llama-cpp q4_k_m", 29, spread=5, rss=400, mb=150)
    rec = rank([a, b], weights="speed")
    assert rec.winner.candidate.name == "llama-cpp q4_k_m"  # slower median, but a tie
    assert names(rec.ties) == ["ort-genai int8"]
    assert rec.ties[0].reason.startswith("tied with llama-cpp q4_k_m")
    assert rec.runners_up == ()
    assert any(s.startswith("tied (score intervals overlap)") for s in rec.steps)


def test_a_candidate_behind_only_by_noise_is_tied_not_ranked():
    a = cand("a x", 30, spread=5, mb=250)
    b = cand("b x", 29, spread=5, mb=150)  # dominated on medians, within noise
    rec = rank([a, b], weights="speed")
    assert rec.winner.candidate.name == "a x"
    assert names(rec.ties) == ["b x"] and not rec.ties[0].on_front
    assert rec.runners_up == ()


def test_separate_intervals_are_ordered():
    a = cand("a x", 30, spread=0.5, mb=250)
    b = cand("b x", 28, spread=0.5, mb=150)
    # A low: .6*29.5/30 + .4 = .99; B high: .6*28.5/30 + .4 = .97 -> no overlap
    rec = rank([a, b], weights="speed")
    assert rec.winner.candidate.name == "a x" and rec.ties == ()
    assert rec.winner.score_low == pytest.approx(0.99)
    assert rec.runners_up[0].score_high == pytest.approx(0.97)


def test_quality_mode_prefers_near_lossless_8bit():
    f16 = cand("llama-cpp f16", 10, kld=0.0, mb=500)
    q8 = cand("llama-cpp q8_0", 15, kld=0.002, mb=270)
    q4 = cand("llama-cpp q4_k_m", 25, kld=0.1, mb=150)
    rec = rank([q4, f16, q8], weights="quality")
    expect = {"llama-cpp f16": 0.6 + 0.3 * 10 / 25 + 0.1,
              "llama-cpp q8_0": 0.6 * math.exp(-0.04) + 0.3 * 15 / 25 + 0.1,
              "llama-cpp q4_k_m": 0.6 * math.exp(-2) + 0.3 + 0.1}
    assert rec.winner.candidate.name == "llama-cpp q8_0"
    got = {r.candidate.name: r.score for r in (rec.winner, *rec.runners_up)}
    assert got == pytest.approx(expect)
    assert names(rec.runners_up) == ["llama-cpp f16", "llama-cpp q4_k_m"]


def test_dominated_candidate_says_by_whom():
    a = cand("a x", 30, ttft=40, rss=300)
    b = cand("b x", 20, ttft=60, rss=400)
    rec = rank([b, a], weights="balanced")
    assert rec.runners_up[0].reason.startswith("dominated by a x")
    assert not rec.runners_up[0].on_front


@pytest.mark.parametrize("limits, candidate, reason", [
    (Constraints(max_memory_mb=600), cand("a x", 30, rss=812), "peak_rss_mb 812 > 600"),
    (Constraints(min_decode_tok_s=25), cand("a x", 20), "decode_tok_s 20.0 < 25.0"),
    (Constraints(max_ttft_ms=40), cand("a x", 20, ttft=55.5), "ttft_ms 55.5 > 40.0"),
    (Constraints(max_kld=0.05), cand("a x", 20, kld=0.2), "kld_mean 0.2 > 0.05"),
    (Constraints(max_kld=0.05), cand("a x", 20),
     "no kld_mean measured (run `edgebench quality ...`)"),
    (Constraints(max_ppl_increase=0.05), cand("a x", 20, ppl=10.6, ppl_ref=10.0),
     "ppl_increase +6.0% > +5.0%"),
    (Constraints(max_ppl_increase=0.05), cand("a x", 20, ppl=10.6),
     "no ppl measured (run `edgebench quality ...`)"),
    (Constraints(max_j_per_token=0.5), cand("a x", 20),
     "no j_per_token measured (run `edgebench run ... with an energy meter`)"),
    (Constraints(max_model_mb=100), cand("a x", 20, mb=150), "model_mb 150 > 100"),
])
def test_constraint_rejection_reasons(limits, candidate, reason):
    rec = rank([candidate], limits)
    assert rec.winner is None
    assert rec.rejected[0].reasons == (reason,)
    assert rec.eliminated_by.startswith(limits.checks()[0][0] + " ")


def test_the_limit_that_removed_the_last_candidate_is_named():
    big = cand("big x", 30, rss=812)
    slow = cand("slow x", 10, rss=500)
    ok = cand("ok x", 22, rss=500)
    limits = Constraints(max_memory_mb=600, min_decode_tok_s=20)
    rec = rank([big, slow], limits)
    assert rec.winner is None and rec.eliminated_by == "--min-decode-tok-s 20.0"
    assert {r.candidate.name: r.reasons for r in rec.rejected} == {
        "big x": ("peak_rss_mb 812 > 600",), "slow x": ("decode_tok_s 10.0 < 20.0",)}
    rec = rank([big, slow, ok], limits)
    assert rec.winner.candidate.name == "ok x" and rec.eliminated_by is None


def test_estimated_rows_are_kept_out_and_said_so():
    real = cand("llama-cpp q4_k_m", 20)
    hub = cand("qnn int4", 200, measurement="estimated")
    rec = rank([hub, real])
    assert rec.winner.candidate.name == "llama-cpp q4_k_m"
    assert rec.rejected[0].candidate.name == "qnn int4"
    assert "not ranked with measured rows" in rec.rejected[0].reasons[0]
    assert any("not measured by edgebench (estimated)" in s for s in rec.steps)
    assert rec.notes


def test_metric_missing_for_some_is_left_out_of_the_score_not_zeroed():
    a = cand("a x", 30, kld=0.01)
    b = cand("b x", 29.9)  # no quality row
    rec = rank([a, b], weights="balanced")
    assert any(s.startswith("kld_mean not measured for 1 of 2") for s in rec.steps)
    assert rec.winner.candidate.name == "a x"
    assert rec.runners_up[0].score == pytest.approx((0.35 * 29.9 / 30 + 0.25 + 0.15) / 0.75)


@pytest.mark.parametrize("bad", [lambda: Weights.for_mode("fast"),
                                 lambda: Constraints(max_memory_mb=-1),
                                 lambda: rank([cand("a x", 1), cand("a x", 2)])])
def test_bad_input_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        bad()


def test_recommendation_is_json_ready():
    rec = rank([cand("a x", 30, kld=0.0), cand("b x", 20, kld=0.1)], Constraints(max_kld=0.05))
    data = json.loads(json.dumps(rec.as_dict()))
    assert data["winner"]["candidate"]["name"] == "a x"
    assert data["rejected"][0]["reasons"] == ["kld_mean 0.1 > 0.05"]
    assert data["label"] == "measured" and data["constraints"] == {"max_kld": 0.05}


# --- targets and the tree ---------------------------------------------------------------

INTEL = {"device": "cpu", "cpu_model": "Intel(R) Core(TM) i7-1185G7", "os": "Linux (x86_64)"}
GRAVITON = {"device": "cpu", "cpu_model": "Neoverse-V1", "os": "Linux 6.1 (aarch64)"}
MAC = {"device": "metal", "cpu_model": "arm", "accelerators": "Apple Silicon GPU",
       "os": "Darwin 24 (arm64)"}
RTX = {"device": "cuda", "cpu_model": "AMD Ryzen 9", "accelerators": "NVIDIA GeForce RTX 4090"}
ORIN = {"device": "cuda", "cpu_model": "ARMv8 Processor", "accelerators": "Orin (nvgpu)"}
X_ELITE = {"device": "cpu", "cpu_model": "Snapdragon(R) X Elite", "os": "Windows 11 (ARM64)"}


@pytest.mark.parametrize("row, expect", [
    (INTEL, {"cpu", "intel-cpu"}),
    (GRAVITON, {"cpu", "arm-cpu"}),
    (MAC, {"apple-silicon"}),
    (RTX, {"nvidia-gpu"}),
    (ORIN, {"jetson"}),
    (X_ELITE, {"cpu", "arm-cpu", "snapdragon"}),
    ({**INTEL, "device": "npu"}, {"intel-npu"}),
    ({**INTEL, "device": "gpu"}, {"intel-gpu"}),
])
def test_rows_match_targets(row, expect):
    got = {n for n, t in TARGETS.items() if n != "this" and t.matches(row)}
    assert got == expect


def test_this_matches_by_machine_id_only():
    this = TARGETS["this"]
    assert this.matches({"machine_id": "m1"}, "m1")
    assert not this.matches({"machine_id": "m2"}, "m1")
    assert not this.matches({"machine_id": "m1"}, None)


@pytest.mark.parametrize("facts, expect", [
    (INTEL, "intel-cpu"), (GRAVITON, "arm-cpu"), (MAC, "apple-silicon"), (RTX, "nvidia-gpu"),
    (ORIN, "jetson"), (X_ELITE, "snapdragon"), ({"cpu_model": "AMD EPYC"}, "cpu"),
])
def test_for_machine(facts, expect):
    assert tg.for_machine(facts).name == expect


def test_unknown_target_did_you_mean():
    with pytest.raises(ConfigError, match=r"did you mean snapdragon\?.*known: cpu, intel-cpu"):
        tg.get("snapdragn")


@pytest.mark.parametrize("name", [n for n in TARGETS if n != "this"])
@pytest.mark.parametrize("mode", list(OPTIMIZE))
def test_tree_answers_every_target_and_mode(name, mode):
    advice = tree.advise(TARGETS[name], mode, Constraints())
    assert advice.framework in tree.CLAIMS and advice.claim.startswith("chapter claim for")
    assert advice.measure.startswith("edgebench run ")
    assert advice.situation in tree.SITUATIONS


def test_tree_situations_and_quality_command():
    assert tree.situation("balanced", Constraints(max_memory_mb=500)) == "memory-tight"
    assert tree.situation("balanced", Constraints(max_kld=0.1)) == "quality-first"
    assert tree.situation("speed", Constraints(max_kld=0.1)) == "speed-first"
    a = tree.advise(TARGETS["snapdragon"], "quality", Constraints())
    assert (a.framework, a.precision, a.device) == ("QNN", "int8", "htp")
    assert "edgebench quality cpu-laptop" in a.measure and "not in edgebench yet" in a.note


def test_guidance_is_labelled():
    rec = tree.guidance(rank([]), TARGETS["apple-silicon"], asked="this")
    assert rec.guidance and rec.winner is None and rec.advice.framework == "MLX"
    assert rec.as_dict()["label"] == "guidance, not measured on this device"
    assert any("this (apple-silicon)" in s for s in rec.steps)


def _claims_csv() -> Path | None:
    for p in (Path(__file__).parents[1] / "src/edgebench/reports/chapter-claims.csv",
              Path("/work/shared/data/chapter-claims.csv")):
        if p.exists():
            return p
    return None


@pytest.mark.skipif(_claims_csv() is None, reason="chapter-claims.csv not found")
def test_tree_claims_are_the_chapters_table():
    with _claims_csv().open(newline="") as f:
        rows = {r["framework"]: (r["quantization"], r["memory_claim"], r["speedup_claim"],
                                 r["use_case"]) for r in csv.DictReader(f)}
    assert rows == tree.CLAIMS


def test_decision_is_pure():
    code = ("import edgebench.decision, edgebench.decision.tree, edgebench.decision.present, "
            "edgebench.decision.compare, sys;"
            "bad = {'duckdb', 'pandas', 'click', 'pyarrow'} & set(sys.modules);"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- properties -------------------------------------------------------------------------

def _cands(draw_names):
    return st.builds(
        lambda n, d, s, t, r, m, k, j: cand(f"{n} x", d, spread=s, ttft=t, rss=r, mb=m, kld=k,
                                            j=j),
        st.just(draw_names), st.floats(1, 100), st.floats(0, 5), st.floats(10, 500),
        st.floats(100, 2000), st.floats(10, 1000), st.floats(0, 0.5), st.floats(0.01, 2))


@st.composite
def candidate_lists(draw, min_size=1):
    n = draw(st.integers(min_size, 6))
    return [draw(_cands(f"c{i}")) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(candidate_lists(), st.sampled_from(list(OPTIMIZE)), st.randoms(use_true_random=False))
def test_output_does_not_depend_on_input_order(cands, mode, rnd):
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    limits = Constraints(max_memory_mb=1500)
    assert rank(shuffled, limits, mode).as_dict() == rank(cands, limits, mode).as_dict()


@settings(max_examples=60, deadline=None)
@given(candidate_lists(), st.sampled_from(list(OPTIMIZE)), st.data())
def test_adding_a_dominated_candidate_never_changes_the_winner(cands, mode, data):
    base = rank(cands, weights=mode)
    i = data.draw(st.integers(0, len(cands) - 1))
    c = cands[i]
    worse = data.draw(st.floats(1.01, 3))
    d = cand("zz x", c.decode_tok_s.value / worse, spread=data.draw(st.floats(0, 50)),
             ttft=c.ttft_ms.value * worse, rss=c.peak_rss_mb * worse,
             mb=c.model_bytes / MB * worse, kld=c.kld_mean.value + worse / 10,
             j=c.j_per_token * worse)
    after = rank([*cands, d], weights=mode)
    assert after.winner.candidate.name == base.winner.candidate.name
    assert "zz x" in names(after.runners_up) + names(after.ties)
