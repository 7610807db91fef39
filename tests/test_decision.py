"""The decision module: hand-computed winners, ties, rejections, P(best), the quality floor and
unmeasured quality; every reason checked against the numbers; order and dominance laws."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
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
    present,
    rank,
    tree,
)
from edgebench.decision import targets as tg
from edgebench.decision.model import METRICS, fmt_pair
from edgebench.decision.score import dominates, label
from edgebench.errors import ConfigError

MB = 2**20


def cand(name, decode, *, spread=0.0, ttft=50.0, rss=400.0, mb=100.0, kld=0.0, ppl=None,
         ppl_ref=None, j=None, measurement=None, samples=(), suite=""):
    """A candidate; ``kld=None``: no quality row. ``samples``: decode tok/s per repetition."""
    return Candidate(
        framework=name.split()[0], precision=name.split()[1], device="cpu", name=name,
        decode_tok_s=Estimate(decode, decode - spread, decode + spread, samples=tuple(samples)),
        ttft_ms=Estimate(ttft), peak_rss_mb=rss, model_bytes=int(mb * MB),
        kld_mean=None if kld is None else Estimate(kld),
        ppl=None if ppl is None else Estimate(ppl), ppl_reference=ppl_ref, j_per_token=j,
        measurement=measurement, suite=suite)


def around(median, *offsets):
    """Samples whose median is ``median``: ``median + offset`` for each offset (one of them 0)."""
    return [median + o for o in offsets]


def names(rs):
    return [r.candidate.name for r in rs]


# --- the reasons' claims, checked against the numbers -------------------------------------

_TAIL = r"(?:: (?P<m>\w+) (?P<x>\S+) vs (?P<y>\S+)(?: \S+)?)?"
_EQUIV = r"\(ratio (?P<lo>[\d.]+)-(?P<hi>[\d.]+) within \+-(?P<pct>[\d.]+)%\)"
REASONS = [
    re.compile(rf"^dominated by (?P<o>[^:]+?){_TAIL}$"),
    re.compile(rf"^score (?P<a>\S+) (?P<op>[<=]) (?P<b>\S+) of (?P<o>.+?), the best "
               rf"\((?P<why>[^)]*)\){_TAIL}$"),
    re.compile(rf"^best score (?P<a>\S+), equivalent to (?P<w>.+?)'s (?P<b>\S+) {_EQUIV}; "
               rf"(?P<small>.+)$"),
    re.compile(rf"^equivalent to the best score, (?P<o>.+?)'s: (?P<a>\S+) vs (?P<b>\S+) "
               rf"{_EQUIV}(?:; (?P<small>.+)|, but dominated by (?P<d>[^:]+?){_TAIL})$"),
]
SMALLER = re.compile(r"^(?P<w>.+?) is the smaller artifact \((?P<x>\S+) vs (?P<y>\S+) MB\)$")


def check_reasons(rec, mode="balanced"):
    """Every reason of ``rec`` matches one known sentence, and each claim in it holds for the
    numbers shown: scores and metric values as printed, who is worse, dominance, equivalence,
    artifact sizes."""
    ranked = [rec.winner, *rec.ties, *rec.runners_up]
    by = {r.candidate.name: r for r in ranked}
    alive = [r.candidate for r in ranked]
    metrics = [m for m, x in Weights.for_mode(mode).terms
               if x > 0 and all(c.metric(m) is not None for c in alive)]
    top = max(r.score for r in ranked)
    assert rec.winner.reason == "" and rec.winner.on_front

    def metric_claim(c, other, g):
        if g["m"] is None:
            return
        m = next(m for m in metrics if label(c, m) == g["m"])
        a, b = c.metric(m).value, other.metric(m).value
        assert (g["x"], g["y"]) == fmt_pair(a, b)
        assert (a < b) if METRICS[m][0] else (a > b), (c.name, m, a, b)

    def equivalent_claim(g):
        band = float(g["pct"]) / 100
        assert float(g["lo"]) >= 1 - band - 5e-4 and float(g["hi"]) <= 1 + band + 5e-4

    def scores_claim(r, other, g):
        assert (g["a"], g["b"]) == fmt_pair(round(r.score, 12), round(other.score, 12))

    def smaller_claim(c, text):
        s = SMALLER.match(text)
        if s is None:
            assert text.startswith(f"{rec.winner.candidate.name} wins the tie by name")
            return
        w = by[s["w"]].candidate
        assert w is rec.winner.candidate and w.model_bytes < c.model_bytes
        assert (s["x"], s["y"]) == fmt_pair(w.model_bytes / MB, c.model_bytes / MB)

    for r in ranked[1:]:
        c, why = r.candidate, r.reason
        hits = [(i, g.groupdict()) for i, p in enumerate(REASONS) if (g := p.match(why))]
        assert len(hits) == 1, why
        i, g = hits[0]
        if i == 0:
            assert dominates(by[g["o"]].candidate, c, metrics) and not r.on_front
            metric_claim(c, by[g["o"]].candidate, g)
        elif i == 1:
            lead = by[g["o"]]
            assert lead.score == top and r.on_front
            scores_claim(r, lead, g)
            assert (r.score < lead.score) if g["op"] == "<" else (r.score == lead.score)
            if n := re.match(r"not equivalent: ratio ([\d.]+)-([\d.]+), margin \+-([\d.]+)%$",
                             g["why"]):
                lo, hi, band = float(n[1]), float(n[2]), float(n[3]) / 100
                assert not (lo > 1 - band + 5e-4 and hi < 1 + band - 5e-4)
            else:
                assert g["why"] == "too few repetition samples to show equivalence"
            metric_claim(c, lead.candidate, g)
        elif i == 2:
            assert r.score == top and by[g["w"]] is rec.winner
            scores_claim(r, rec.winner, g)
            equivalent_claim(g)
            smaller_claim(c, g["small"])
        else:
            lead = by[g["o"]]
            assert lead.score == top
            scores_claim(r, lead, g)
            equivalent_claim(g)
            if g["small"] is not None:
                smaller_claim(c, g["small"])
            else:
                assert dominates(by[g["d"]].candidate, c, metrics)
                metric_claim(c, by[g["d"]].candidate, g)


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
    assert speed.runners_up[0].reason == (
        "score 0.75 < 0.975 of llama-cpp f16, the best (too few repetition samples to show "
        "equivalence): decode_tok_s 20.0 vs 30.0 tok/s")
    memory = rank([a, b], weights="memory")
    # A: .6*.75 + .2*.5 + .2*1; B: .6 + .2 + .2*(20/30)
    assert memory.winner.candidate.name == "llama-cpp q4_k_m"
    assert memory.winner.score == pytest.approx(0.6 + 0.2 + 0.2 * 20 / 30)
    assert memory.runners_up[0].score == pytest.approx(0.75)
    check_reasons(speed, "speed")
    check_reasons(memory, "memory")


def test_tight_equal_samples_are_tied_and_the_smaller_artifact_wins():
    a = cand("ort-genai int8", 30.2, rss=400, mb=250, samples=around(30.2, -.2, -.1, 0, .1, .2))
    b = cand("llama-cpp q4_k_m", 30.0, rss=396, mb=150, samples=around(30, -.2, -.1, 0, .1, .2))
    rec = rank([a, b], weights="speed")
    # a: .6 + .3 + .1 * 396/400 = 0.999; b: .6 * 30/30.2 + .3 + .1 = 0.996: equivalent
    assert rec.winner.candidate.name == "llama-cpp q4_k_m"
    assert names(rec.ties) == ["ort-genai int8"]
    assert rec.ties[0].reason.startswith("best score 0.999, equivalent to llama-cpp q4_k_m's "
                                         "0.996 (ratio 0.9")
    assert rec.ties[0].reason.endswith("; llama-cpp q4_k_m is the smaller artifact "
                                       "(150 vs 250 MB)")
    assert any(s.startswith("tied (equivalent to ort-genai int8 within +-5%)")
               for s in rec.steps)
    assert present.headline(rec).startswith(
        "recommended on  (optimize speed): llama-cpp q4_k_m (P(best) ")
    assert "TIED (equivalent within ±5%) with ort-genai int8" in present.headline(rec)
    check_reasons(rec, "speed")


def test_overlapping_ranges_with_a_clear_median_difference_are_not_tied():
    # ranges 26-30.5 and 26.5-30.5 overlap (the old rule tied them and gave the tie to the
    # smaller b), but the medians are 10 % apart
    a = cand("a x", 30, spread=0, mb=250, samples=around(30, -4, -.3, 0, .3, .5))
    b = cand("b x", 27, spread=0, mb=150, rss=360, samples=around(27, -.5, -.3, 0, .3, 3.5))
    rec = rank([a, b], weights="speed")
    assert rec.winner.candidate.name == "a x" and rec.ties == ()
    assert rec.runners_up[0].reason.startswith("score 0.94 < 0.99 of a x, the best (not "
                                               "equivalent: ratio ")
    assert rec.runners_up[0].reason.endswith(": decode_tok_s 27.0 vs 30.0 tok/s")
    assert rec.winner.p_best > 0.8 > 0.2 > rec.runners_up[0].p_best
    check_reasons(rec, "speed")


def test_without_samples_there_is_no_tie():
    rec = rank([cand("a x", 30, spread=5, mb=250), cand("b x", 29.9, spread=5, mb=150, rss=399)],
               weights="speed")
    assert rec.winner.candidate.name == "a x" and rec.ties == ()
    assert "too few repetition samples" in rec.runners_up[0].reason


def test_p_best_sums_to_one_and_follows_the_samples():
    cs = [cand("a x", 30, samples=around(30, -1, -.5, 0, .5, 1)),
          cand("b x", 29.5, samples=around(29.5, -3, -1, 0, 1, 3)),
          cand("c x", 20, samples=around(20, -1, 0, 1)),
          cand("d x", 25)]  # no samples: its one value in every resample
    rec = rank(cs, weights="speed")
    p = {r.candidate.name: r.p_best for r in (rec.winner, *rec.ties, *rec.runners_up)}
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["a x"] > p["b x"] > 0 and p["c x"] == 0 and p["d x"] == 0
    assert rank(list(reversed(cs)), weights="speed").as_dict() == rec.as_dict()
    data = rec.as_dict()
    assert data["winner"]["p_best"] == p[data["winner"]["candidate"]["name"]]
    assert [r["P(best)"] for r in present.rows(rec)] == [f"{p[n]:.2f}" for n in (
        "a x", "b x", "d x", "c x")]


def test_a_noisy_candidate_is_not_rewarded_and_no_reason_contradicts_the_numbers():
    # The old rule tied the noisy, small w with the leader t (their min-max ranges overlap),
    # gave it the tie, and listed c — whose median score is higher than w's — as "score
    # lower" than w's. Now w is not equivalent to t, t wins, and every reason holds.
    t = cand("t x", 30, spread=1.5, mb=300, samples=around(30, -1.5, -.5, 0, .5, 1))
    w = cand("w x", 24, spread=6, mb=100, rss=300, samples=around(24, -6, -3, 0, 3, 5))
    c = cand("c x", 27, spread=.3, mb=200, rss=350, samples=around(27, -.3, -.1, 0, .1, .3))
    rec = rank([t, w, c], weights="speed")
    assert rec.winner.candidate.name == "t x" and rec.ties == ()
    assert names(rec.runners_up) == ["c x", "w x"]
    for r in rec.runners_up:
        assert r.score < rec.winner.score
        assert f"of {rec.winner.candidate.name}, the best" in r.reason
    check_reasons(rec, "speed")


def test_quality_mode_prefers_near_lossless_8bit():
    f16 = cand("llama-cpp f16", 10, kld=0.0, mb=500)
    q8 = cand("llama-cpp q8_0", 15, kld=0.002, mb=270)
    q4 = cand("llama-cpp q4_k_m", 25, kld=0.04, mb=150)
    rec = rank([q4, f16, q8], weights="quality")
    expect = {"llama-cpp f16": 0.6 + 0.3 * 10 / 25 + 0.1,
              "llama-cpp q8_0": 0.6 * math.exp(-0.04) + 0.3 * 15 / 25 + 0.1,
              "llama-cpp q4_k_m": 0.6 * math.exp(-0.8) + 0.3 + 0.1}
    assert rec.winner.candidate.name == "llama-cpp q8_0"
    got = {r.candidate.name: r.score for r in (rec.winner, *rec.runners_up)}
    assert got == pytest.approx(expect)
    assert names(rec.runners_up) == ["llama-cpp f16", "llama-cpp q4_k_m"]
    check_reasons(rec, "quality")


def test_dominated_candidate_says_by_whom():
    a = cand("a x", 30, ttft=40, rss=300)
    b = cand("b x", 20, ttft=60, rss=400)
    rec = rank([b, a], weights="balanced")
    assert rec.runners_up[0].reason == "dominated by a x: decode_tok_s 20.0 vs 30.0 tok/s"
    assert not rec.runners_up[0].on_front
    check_reasons(rec)


# --- the quality floor and unmeasured quality ---------------------------------------------

@pytest.mark.parametrize("mode", list(OPTIMIZE))
def test_the_default_quality_floor_rejects_a_broken_4bit_in_every_mode(mode):
    broken = cand("ort-genai int4", 32.0, rss=300, mb=256, kld=0.546, j=0.1)
    q4 = cand("llama-cpp q4_k_m", 15.2, rss=410, mb=241, kld=0.00544, j=0.3)
    rec = rank([broken, q4], weights=mode)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m" and rec.quality_floor == 0.05
    assert rec.rejected[0].reasons == (
        "kld_mean 0.546 > 0.05 (the default quality floor; --max-kld sets another)",)
    assert any(s.startswith("--max-kld 0.05 (default): 1 of 2 left out") for s in rec.steps)
    assert rec.as_dict()["quality_floor"] == 0.05 and rec.as_dict()["constraints"] == {}
    if mode == "speed":  # a looser limit, given on purpose, lets it rank
        loose = rank([broken, q4], Constraints(max_kld=1.0), weights=mode)
        assert loose.winner.candidate.name == "ort-genai int4"


def test_the_floor_alone_can_eliminate_every_candidate():
    rec = rank([cand("a x", 30, kld=0.5), cand("b x", 20, kld=0.48)])
    assert rec.winner is None and rec.eliminated_by == "--max-kld 0.05 (default)"
    assert present.headline(rec) == ("no candidate on  meets the limits: --max-kld 0.05 "
                                      "(default) eliminated the last one")


def test_unmeasured_quality_is_not_ranked_by_default_and_named_with_the_command():
    fast = cand("ort-genai int4", 32, kld=None, suite="cpu-laptop")
    q4 = cand("llama-cpp q4_k_m", 15, kld=0.005, suite="cpu-laptop")
    rec = rank([fast, q4], weights="speed")
    assert rec.winner.candidate.name == "llama-cpp q4_k_m" and not rec.quality_assumed
    assert rec.unmeasured_quality == ("ort-genai int4",)
    assert rec.measure_quality == "edgebench quality cpu-laptop --resume"
    assert rec.rejected[0].reasons == (
        "quality not measured: not ranked, it could be a broken quantization (measure it: "
        "edgebench quality cpu-laptop --resume; --allow-unmeasured-quality ranks it anyway)",)
    head = present.headline(rec)
    assert head.startswith("recommended on  (optimize speed): llama-cpp q4_k_m")
    assert head.endswith("; NOT RANKED, quality not measured (could be a broken "
                         "quantization): ort-genai int4; measure it: edgebench quality "
                         "cpu-laptop --resume")
    row = next(r for r in present.rows(rec) if r["candidate"] == "ort-genai int4")
    assert row["verdict"] == "rejected" and row["KLD"] == "not measured"


def test_no_candidate_with_quality_means_measure_quality_first():
    rec = rank([cand("ort-genai int4", 32, kld=None, suite="cpu-laptop"),
                cand("llama-cpp q4_k_m", 15, kld=None, suite="cpu-laptop")], target="cpu")
    assert rec.winner is None and rec.needs_quality and rec.eliminated_by is None
    assert present.headline(rec) == (
        "MEASURE QUALITY FIRST on cpu: none of the 2 measured candidate(s) has a quality row, "
        "and a winner on speed alone could be a broken quantization; run: edgebench quality "
        "cpu-laptop --resume (--allow-unmeasured-quality ranks them anyway)")
    assert rec.as_dict()["needs_quality"] is True
    assert rank([cand("a x", 1, kld=None)]).measure_quality == \
        "edgebench quality <suite> --resume"  # a row without its suite


def test_allow_unmeasured_quality_ranks_them_and_says_so_in_the_headline():
    fast = cand("ort-genai int4", 32, kld=None, suite="cpu-laptop")
    q4 = cand("llama-cpp q4_k_m", 15, kld=0.005, suite="cpu-laptop")
    broken = cand("openvino int4", 30, kld=0.55, suite="cpu-laptop")
    rec = rank([fast, q4, broken], weights="speed", allow_unmeasured_quality=True)
    assert rec.winner.candidate.name == "ort-genai int4" and rec.quality_assumed
    assert names(rec.runners_up) == ["llama-cpp q4_k_m"]
    assert [r.candidate.name for r in rec.rejected] == ["openvino int4"]  # measured: judged
    head = present.headline(rec)
    assert head.startswith("⚠ QUALITY ASSUMED, NOT MEASURED for ort-genai int4 (the winner "
                           "among them): ranked as if kld_mean <= 0.05; measure it: "
                           "edgebench quality cpu-laptop --resume — recommended on ")
    assert present.rows(rec)[0]["KLD"] == "NOT MEASURED (assumed)"
    assert f"**{head}**" in present.markdown(rec, "")
    balanced = rank([fast, q4], allow_unmeasured_quality=True)
    assert any(n.startswith("kld_mean not measured for 1 of 2") for n in balanced.notes)


@pytest.mark.parametrize("limits, candidate, reason", [
    (Constraints(max_memory_mb=600), cand("a x", 30, rss=812), "peak_rss_mb 812 > 600"),
    (Constraints(min_decode_tok_s=25), cand("a x", 20), "decode_tok_s 20.0 < 25.0"),
    (Constraints(max_ttft_ms=40), cand("a x", 20, ttft=55.5), "ttft_ms 55.5 > 40.0"),
    (Constraints(max_kld=0.05), cand("a x", 20, kld=0.2), "kld_mean 0.2 > 0.05"),
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
    assert rec.eliminated_by.startswith(next(
        flag for flag, *_ in limits.checks() if flag != "--max-kld" or limits.max_kld) + " ")


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
    a = cand("a x", 30, j=0.5)
    b = cand("b x", 29.9)  # no energy meter
    rec = rank([a, b], weights="energy")
    assert any(s.startswith("j_per_token not measured for 1 of 2") for s in rec.steps)
    assert rec.winner.candidate.name == "a x"
    assert rec.runners_up[0].score == pytest.approx((0.3 * 29.9 / 30 + 0.1) / 0.4)


@pytest.mark.parametrize("bad", [lambda: Weights.for_mode("fast"),
                                 lambda: Constraints(max_memory_mb=-1),
                                 lambda: rank([cand("a x", 1), cand("a x", 2)]),
                                 lambda: rank([cand("a x", 1)], tie_margin=1.5)])
def test_bad_input_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        bad()


def test_recommendation_is_json_ready():
    rec = rank([cand("a x", 30, kld=0.0), cand("b x", 20, kld=0.1)], Constraints(max_kld=0.05))
    data = json.loads(json.dumps(rec.as_dict()))
    assert data["winner"]["candidate"]["name"] == "a x" and data["winner"]["p_best"] == 1.0
    assert data["rejected"][0]["reasons"] == ["kld_mean 0.1 > 0.05"]
    assert data["label"] == "measured" and data["constraints"] == {"max_kld": 0.05}
    assert data["tie_margin"] == 0.05 and data["unmeasured_quality"] == []


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
    # cpu-laptop and snapdragon score quality themselves (quality: true); other commands get
    # their quality run,
    # since recommend ranks only rows with quality
    assert a.measure == "edgebench run snapdragon" and "never its speed" in a.note
    assert tree.advise(TARGETS["cpu"], "quality", Constraints()).measure == \
        "edgebench run cpu-laptop"
    gpu = tree.advise(TARGETS["intel-gpu"], "balanced", Constraints()).measure
    assert gpu.startswith("edgebench run --framework openvino ")
    assert " && edgebench quality --framework openvino " in gpu and gpu.endswith("--device gpu")


def test_commands_said_to_measure_quality_do():
    from edgebench.api import make_suite

    for command in tree.MEASURES_QUALITY:  # the suites recommend's guidance relies on
        suite = make_suite(command.split()[-1])
        assert suite.quality and 1 <= suite.quality_chunks <= 4


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
            "edgebench.decision.compare, edgebench.decision.decide, sys;"
            "bad = {'duckdb', 'pandas', 'click', 'pyarrow'} & set(sys.modules);"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_default_corpus_name_is_the_harness_one():
    from edgebench.decision.candidates import DEFAULT_CORPUS, QUALITY_DEFAULTS
    from edgebench.harness import corpus
    from edgebench.quality_sweep import DEFAULT_CHUNKS, DEFAULT_N_CTX

    assert DEFAULT_CORPUS == corpus.DEFAULT_CORPUS
    assert QUALITY_DEFAULTS == {"n_ctx": DEFAULT_N_CTX, "chunks": DEFAULT_CHUNKS}


# --- properties -------------------------------------------------------------------------

def _samples(draw, decode):
    """Repetition samples with median ``decode`` (none, or 3-5 of them, up to +-50 %)."""
    n = draw(st.sampled_from([0, 3, 5]))
    if not n:
        return ()
    offsets = sorted(draw(st.lists(st.floats(-0.5, 0.5), min_size=n, max_size=n)))
    mid = offsets[n // 2]
    return tuple(decode * (1 + o - mid) for o in offsets)


@st.composite
def _cand(draw, name):
    d = draw(st.floats(1, 100))
    return cand(f"{name} x", d, spread=draw(st.floats(0, 5)), ttft=draw(st.floats(10, 500)),
                rss=draw(st.floats(100, 2000)), mb=draw(st.floats(10, 1000)),
                kld=draw(st.floats(0, 0.5)), j=draw(st.floats(0.01, 2)),
                samples=_samples(draw, d))


@st.composite
def candidate_lists(draw, min_size=1):
    n = draw(st.integers(min_size, 6))
    out = [draw(_cand(f"c{i}")) for i in range(n)]
    if n > 1 and draw(st.booleans()):  # a near-twin of the first: ties happen
        c, f = out[0], draw(st.floats(0.98, 1.02))
        v = c.decode_tok_s.value
        tight = tuple(v * (1 + o) for o in (-0.01, -0.005, 0, 0.005, 0.01))
        c = out[0] = dataclasses.replace(c, decode_tok_s=Estimate(v, samples=tight))
        out[-1] = dataclasses.replace(
            c, name=f"c{n - 1} x", precision=f"c{n - 1}",
            decode_tok_s=Estimate(v * f, samples=tuple(x * f for x in tight)),
            peak_rss_mb=c.peak_rss_mb * draw(st.floats(0.9, 1.1)),
            model_bytes=draw(st.integers(1, 2 * c.model_bytes)))
    return out


LOOSE = Constraints(max_kld=1.0)  # the floor would leave most drawn candidates out


@settings(max_examples=60, deadline=None)
@given(candidate_lists(), st.sampled_from(list(OPTIMIZE)), st.randoms(use_true_random=False))
def test_output_does_not_depend_on_input_order(cands, mode, rnd):
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    limits = Constraints(max_memory_mb=1500, max_kld=1.0)
    assert rank(shuffled, limits, mode).as_dict() == rank(cands, limits, mode).as_dict()


@settings(max_examples=60, deadline=None)
@given(candidate_lists(), st.sampled_from(list(OPTIMIZE)), st.data())
def test_adding_a_dominated_candidate_never_changes_the_winner(cands, mode, data):
    base = rank(cands, LOOSE, weights=mode)
    i = data.draw(st.integers(0, len(cands) - 1))
    c = cands[i]
    worse = data.draw(st.floats(1.01, 3))
    d = cand("zz x", c.decode_tok_s.value / worse, spread=data.draw(st.floats(0, 50)),
             ttft=c.ttft_ms.value * worse, rss=c.peak_rss_mb * worse,
             mb=c.model_bytes / MB * worse, kld=c.kld_mean.value + worse / 10,
             j=c.j_per_token * worse)
    after = rank([*cands, d], LOOSE, weights=mode)
    assert after.winner.candidate.name == base.winner.candidate.name
    assert "zz x" in names(after.runners_up) + names(after.ties)


@settings(max_examples=80, deadline=None)
@given(candidate_lists(min_size=2), st.sampled_from(list(OPTIMIZE)))
def test_every_reason_is_true_of_the_numbers_shown(cands, mode):
    rec = rank(cands, LOOSE, weights=mode)
    check_reasons(rec, mode)
    p = [r.p_best for r in (rec.winner, *rec.ties, *rec.runners_up)]
    assert sum(p) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(candidate_lists(min_size=2), st.data())
def test_candidates_without_quality_never_win_by_default(cands, data):
    gone = set(data.draw(st.sets(st.sampled_from([c.name for c in cands]), min_size=1)))
    cs = [dataclasses.replace(c, kld_mean=None) if c.name in gone else c for c in cands]
    rec = rank(cs, LOOSE)
    ranked = {r.candidate.name for r in (rec.winner, *rec.ties, *rec.runners_up) if r}
    assert not ranked & gone and set(rec.unmeasured_quality) == gone
    assert rec.needs_quality == (gone == {c.name for c in cands})
