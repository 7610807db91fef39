"""`edgebench recommend` over a store of hand-made rows: ranking, ties on equivalence, P(best),
the quality floor, unmeasured quality, guidance, exit codes."""

from __future__ import annotations

import json

import pytest

from conftest import make_record, run_main
from edgebench import api
from edgebench.decision import Constraints
from edgebench.results.store import Store

INTEL = dict(machine_id="mach", cpu_model="Intel(R) Core(TM) i7-1185G7", os="Linux (x86_64)")


def speed(framework, precision, decode, rss, mb, spread=0.5, **kw):
    """A speed row with 5 repetitions: its samples spread +-``spread`` around ``decode``."""
    row = dict(
        run_key=f"s-{framework}-{precision}", framework=framework, precision=precision,
        decode_tok_s=decode, decode_tok_s_min=decode - spread, decode_tok_s_max=decode + spread,
        decode_tok_s_samples=[decode + spread * f for f in (-1, -0.5, 0, 0.5, 1)],
        ttft_ms=1000 / decode, peak_rss_mb=rss, model_bytes=mb * 2**20, repetitions=5,
        measurement="measured", suite="cpu-laptop", **INTEL)
    return make_record(**{**row, **kw})


def quality(framework, precision, kld, ppl, **kw):
    return make_record(**{**dict(
        run_key=f"q-{framework}-{precision}", kind="quality", framework=framework,
        precision=precision, kld_mean=kld, ppl=ppl, ppl_reference=20.0,
        quality_reference="llama-cpp:f16", **INTEL), **kw})


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "store")  # the conftest's EDGEBENCH_STORE
    st.write_session("s1", [
        speed("llama-cpp", "f16", 20.0, 700, 511),
        speed("llama-cpp", "q8_0", 32.0, 450, 272),
        speed("llama-cpp", "q4_k_m", 45.0, 360, 157, spread=0.2),
        speed("openvino", "int4", 44.8, 340, 128, spread=0.2),
        speed("ort-genai", "int4", 60.0, 300, 256),  # fastest, quality never measured
        make_record(run_key="e1", framework="ort-genai", precision="int8", status="error",
                    message="boom", **INTEL),
    ])
    st.write_session("s2", [
        quality("llama-cpp", "f16", 0.0, 20.0), quality("llama-cpp", "q8_0", 0.002, 20.1),
        quality("llama-cpp", "q4_k_m", 0.01, 20.4), quality("openvino", "int4", 0.03, 21.0),
        # a quality row of another machine, same identity: the speed row's machine wins
        make_record(run_key="q-other", kind="quality", framework="llama-cpp", precision="q8_0",
                    kld_mean=9.0, machine_id="other"),
    ])
    return st


NOT_RANKED = ("quality not measured: not ranked, it could be a broken quantization (measure "
              "it: edgebench quality cpu-laptop --resume --reference llama-cpp:f16; "
              "--allow-unmeasured-quality ranks it anyway)")


def test_api_ranks_and_joins_quality(store):
    rec = api.recommend(store, "intel-cpu", optimize="speed", machine=INTEL)
    assert not rec.guidance
    # q4_k_m and openvino int4 are equivalent (0.4 % apart, tight samples): a tie, which the
    # smaller artifact wins
    assert rec.winner.candidate.name == "openvino int4 cpu"
    assert [r.candidate.name for r in rec.ties] == ["llama-cpp q4_k_m cpu"]
    assert [r.candidate.name for r in rec.runners_up] == ["llama-cpp q8_0 cpu",
                                                          "llama-cpp f16 cpu"]
    q8 = rec.runners_up[0].candidate
    assert q8.kld_mean.value == 0.002 and q8.ppl_reference == 20.0
    assert q8.decode_tok_s.interval == (31.5, 32.5) and q8.model_bytes == 272 * 2**20
    assert q8.decode_tok_s.samples == (31.5, 31.75, 32.0, 32.25, 32.5)
    # the fastest row has no quality: not ranked, named, with the command that measures it
    assert {r.candidate.name: r.reasons for r in rec.rejected} == {
        "ort-genai int4 cpu": (NOT_RANKED,)}
    assert rec.unmeasured_quality == ("ort-genai int4 cpu",)


def test_quality_limit_rejects_with_a_reason(store):
    rec = api.recommend(store, "cpu", constraints=Constraints(max_kld=0.005), machine=INTEL)
    assert rec.winner.candidate.name == "llama-cpp q8_0 cpu"
    reasons = {r.candidate.name: r.reasons for r in rec.rejected}
    assert reasons == {
        "llama-cpp q4_k_m cpu": ("kld_mean 0.01 > 0.005",),
        "openvino int4 cpu": ("kld_mean 0.03 > 0.005",),
        "ort-genai int4 cpu": (NOT_RANKED,),
    }


def test_estimated_rows_never_rank_with_measured(tmp_path):
    st = Store(tmp_path / "est")
    st.write_session("s", [speed("llama-cpp", "q4_k_m", 20, 400, 157),
                           speed("ort-genai", "int4", 90, 300, 128, measurement="estimated"),
                           quality("llama-cpp", "q4_k_m", 0.01, 20.4)])
    rec = api.recommend(st, "cpu", machine=INTEL)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert rec.rejected[0].reasons[0].startswith("measurement 'estimated'")
    assert any("not measured by edgebench" in n for n in rec.notes)


def test_several_workloads_rank_the_common_one(tmp_path):
    st = Store(tmp_path / "w")
    st.write_session("s", [speed("llama-cpp", "q4_k_m", 20, 400, 157),
                           speed("llama-cpp", "q8_0", 15, 450, 272),
                           speed("llama-cpp", "f16", 99, 700, 511, run_key="x", new_tokens=64)])
    rec = api.recommend(st, "cpu", machine=INTEL, allow_unmeasured_quality=True)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert any("1 row(s) of other workloads left out" in n for n in rec.notes)


def test_cli_table_with_explain(store, capsys):
    code, out, err = run_main(["recommend", "--device", "intel-cpu", "--optimize", "speed",
                               "--explain"], capsys)
    assert code == 0, err
    assert out.startswith("recommended on intel-cpu (optimize speed): openvino int4 cpu "
                          "(P(best) ")
    assert "TIED (equivalent within ±5%) with llama-cpp q4_k_m cpu" in out.splitlines()[0]
    assert ("NOT RANKED, quality not measured (could be a broken quantization): ort-genai "
            "int4 cpu; measure it: edgebench quality cpu-laptop --resume") in out
    assert "runner" in out and "Pareto front:" in out and "winner: openvino int4" in out
    assert "scores (P(best)): openvino int4 cpu 0.996 (0." in out


def test_cli_json_and_md(store, capsys):
    code, out, _ = run_main(["recommend", "--device", "cpu", "--max-memory-mb", "500",
                             "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["guidance"] is False and data["label"] == "measured"
    assert data["constraints"] == {"max_memory_mb": 500.0} and data["quality_floor"] == 0.05
    assert {r["candidate"]["name"]: r["reasons"] for r in data["rejected"]} == {
        "llama-cpp f16 cpu": ["peak_rss_mb 700 > 500"], "ort-genai int4 cpu": [NOT_RANKED]}
    ps = [data["winner"]["p_best"]] + [r["p_best"] for r in data["ties"] + data["runners_up"]]
    assert sum(ps) == pytest.approx(1.0)
    assert data["winner"]["candidate"]["decode_tok_s_samples"]
    code, out, _ = run_main(["recommend", "--device", "cpu", "--format", "md", "--explain"],
                            capsys)
    assert code == 0 and out.startswith("## edgebench recommend: cpu")
    assert "| verdict | candidate |" in out and "### Steps" in out and "| P(best) |" in out


@pytest.mark.parametrize("a, b, tied", [
    # tight and equal: tied
    ([30.0, 30.1, 29.9, 30.05, 29.95], [30.0, 30.1, 29.9, 30.05, 29.95], True),
    # 0.5 % apart, both tight: equivalent within 5 %
    ([30.0, 30.1, 29.9, 30.05, 29.95], [29.85, 29.95, 29.75, 29.9, 29.8], True),
    # min-max ranges overlap (26-30.5 and 26.5-30.5) but the medians are 10 % apart
    ([26.0, 29.7, 30.0, 30.3, 30.5], [26.5, 26.7, 27.0, 27.3, 30.5], False),
    # medians 3 % apart but a wild spread over 3 repetitions: equivalence is not shown
    ([15.0, 31.0, 45.0], [20.0, 30.0, 40.0], False),
])
def test_ties_only_on_equivalence(tmp_path, a, b, tied):
    def row(precision, samples, rss, mb):
        srt = sorted(samples)
        return speed("llama-cpp", precision, srt[len(srt) // 2], rss, mb,
                     decode_tok_s_min=srt[0], decode_tok_s_max=srt[-1],
                     decode_tok_s_samples=samples, repetitions=len(samples))

    st = Store(tmp_path / "ties")
    st.write_session("s", [row("q8_0", a, 400, 272), row("q4_k_m", b, 390, 157),
                           quality("llama-cpp", "q8_0", 0.002, 20.1),
                           quality("llama-cpp", "q4_k_m", 0.005, 20.2)])
    rec = api.recommend(st, "cpu", optimize="speed", machine=INTEL)
    everyone = [rec.winner, *rec.ties, *rec.runners_up]
    assert len(everyone) == 2 and sum(r.p_best for r in everyone) == pytest.approx(1.0)
    assert bool(rec.ties) == tied
    if tied:  # the smaller artifact wins a tie
        assert rec.winner.candidate.precision == "q4_k_m"
        assert "within +-5%" in rec.ties[0].reason
    else:
        assert rec.runners_up[0].reason.startswith("score ")
        assert ("not equivalent: ratio" in rec.runners_up[0].reason) or (
            "too few" in rec.runners_up[0].reason)


# --- the case: a fast 4-bit variant whose quality is broken -------------------------

def _laptop(tmp_path, *extra):
    """cpu-laptop speed rows like the README's; ort-genai int4 decodes fastest."""
    st = Store(tmp_path / "store")
    st.write_session("s1", [speed("llama-cpp", "f16", 9.0, 672, 518),
                            speed("llama-cpp", "q4_k_m", 15.2, 410, 241),
                            speed("ort-genai", "int4", 32.0, 508, 256)])
    if extra:
        st.write_session("s2", list(extra))
    return st


def test_cli_speed_rows_alone_say_measure_quality_first_exit_1(tmp_path, capsys):
    _laptop(tmp_path)
    code, out, err = run_main(["recommend", "--device", "cpu"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: MEASURE QUALITY FIRST on cpu: none of the 3 measured candidate(s) has a "
        "quality row, and a winner on speed alone could be a broken quantization; run: "
        "edgebench quality cpu-laptop --resume (--allow-unmeasured-quality ranks them anyway)")
    assert "Ship" not in out and "winner" not in out
    code, out, _ = run_main(["recommend", "--device", "cpu", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 1 and data["needs_quality"] and data["winner"] is None
    assert data["measure_quality"] == "edgebench quality cpu-laptop --resume"


def test_cli_allow_unmeasured_quality_says_so_in_the_headline(tmp_path, capsys):
    _laptop(tmp_path)
    code, out, err = run_main(["recommend", "--device", "cpu", "--optimize", "speed",
                               "--allow-unmeasured-quality"], capsys)
    assert code == 0, err
    assert out.startswith(
        "⚠ QUALITY ASSUMED, NOT MEASURED for llama-cpp f16 cpu, llama-cpp q4_k_m cpu, "
        "ort-genai int4 cpu (the winner among them): ranked as if kld_mean <= 0.05; measure "
        "it: edgebench quality cpu-laptop --resume — recommended on cpu (optimize speed): "
        "ort-genai int4 cpu")
    code, out, _ = run_main(["recommend", "--device", "cpu", "--optimize", "speed",
                             "--allow-unmeasured-quality", "--format", "md"], capsys)
    assert code == 0 and "| NOT MEASURED (assumed) |" in out


def test_cli_once_quality_is_measured_the_broken_variant_is_rejected(tmp_path, capsys):
    _laptop(tmp_path, quality("llama-cpp", "f16", 0.0, 20.0),
            quality("llama-cpp", "q4_k_m", 0.00544, 20.1),
            quality("ort-genai", "int4", 0.546, 32.2))
    code, out, _ = run_main(["recommend", "--device", "cpu", "--optimize", "speed",
                             "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["winner"]["candidate"]["name"] == "llama-cpp q4_k_m cpu"
    assert data["rejected"] == [{"candidate": data["rejected"][0]["candidate"], "reasons": [
        "kld_mean 0.546 > 0.05 (the default quality floor; --max-kld sets another)"]}]
    assert data["rejected"][0]["candidate"]["name"] == "ort-genai int4 cpu"


def test_cli_tie_margin(store, capsys):
    code, out, _ = run_main(["recommend", "--device", "cpu", "--optimize", "speed",
                             "--tie-margin", "0", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["tie_margin"] == 0.0 and data["ties"] == []
    assert data["winner"]["candidate"]["name"] == "openvino int4 cpu"  # the best score
    assert data["runners_up"][0]["reason"].startswith(
        "score 0.994 < 0.996 of openvino int4 cpu, the best (not equivalent: ratio ")
    code, _, err = run_main(["recommend", "--tie-margin", "1.5"], capsys)
    assert code == 2 and "--tie-margin" in err


def test_cli_guidance_for_a_device_without_rows(store, capsys):
    code, out, _ = run_main(["recommend", "--device", "snapdragon", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["guidance"] is True and data["winner"] is None
    assert data["label"] == "guidance, not measured on this device"
    assert data["advice"]["framework"] == "QNN" and data["advice"]["measure"].startswith(
        "edgebench run ")
    code, out, _ = run_main(["recommend", "--device", "snapdragon"], capsys)
    assert out.startswith("GUIDANCE, NOT MEASURED ON THIS DEVICE")


def test_cli_this_machine_uses_its_rows(tmp_path, capsys):
    from edgebench.harness.device import fingerprint

    Store(tmp_path / "store").write_session("s", [
        speed("llama-cpp", "q4_k_m", 20, 400, 157, machine_id=fingerprint().machine_id),
        quality("llama-cpp", "q4_k_m", 0.01, 20.4)])
    code, out, _ = run_main(["recommend", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["winner"]["candidate"]["name"] == "llama-cpp q4_k_m cpu"


def test_cli_impossible_limit_exit_1_names_the_limit(store, capsys):
    code, out, err = run_main(["recommend", "--device", "cpu", "--max-memory-mb", "400",
                               "--min-decode-tok-s", "50"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: no candidate on cpu meets the limits: --min-decode-tok-s 50.0 eliminated "
        "the last one; NOT RANKED, quality not measured (could be a broken quantization): "
        "ort-genai int4 cpu; measure it: edgebench quality cpu-laptop --resume --reference "
        "llama-cpp:f16")
    assert "peak_rss_mb 700 > 400" in out  # the rejected rows are still shown


def test_cli_unknown_device_exit_2(store, capsys):
    code, _, err = run_main(["recommend", "--device", "snapdragn"], capsys)
    assert code == 2
    assert err.strip() == ("error: unknown device target 'snapdragn' (did you mean snapdragon?)"
                           "; known: cpu, intel-cpu, intel-gpu, intel-npu, apple-silicon, "
                           "snapdragon, nvidia-gpu, jetson, arm-cpu, this")


def test_cli_empty_store_says_how_to_fill_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()  # a --store that does not exist is an error (a typo)
    code, out, err = run_main(["recommend", "--store", str(tmp_path / "empty")], capsys)
    assert code == 0
    assert "has no rows: fill it with `edgebench run cpu-laptop`" in err
    assert out.startswith("GUIDANCE, NOT MEASURED ON THIS DEVICE")


def test_cli_several_models_need_model(tmp_path, capsys):
    Store(tmp_path / "store").write_session("s", [
        speed("llama-cpp", "q4_k_m", 20, 400, 157),
        speed("llama-cpp", "q8_0", 15, 450, 272, model="other", model_sha256="def")])
    code, _, err = run_main(["recommend", "--device", "cpu"], capsys)
    assert code == 2 and "choose one with --model" in err
    code, out, _ = run_main(["recommend", "--device", "cpu", "--model", "other", "--format",
                             "json", "--allow-unmeasured-quality"], capsys)
    assert code == 0 and json.loads(out)["winner"]["candidate"]["precision"] == "q8_0"
