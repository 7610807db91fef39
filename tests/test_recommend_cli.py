"""`edgebench recommend` over a store of hand-made rows: ranking, guidance, exit codes."""

from __future__ import annotations

import json

import pytest

from conftest import make_record, run_main
from edgebench import api
from edgebench.decision import Constraints
from edgebench.results.store import Store

INTEL = dict(machine_id="mach", cpu_model="Intel(R) Core(TM) i7-1185G7", os="Linux (x86_64)")


def speed(framework, precision, decode, rss, mb, spread=0.5, **kw):
    row = dict(
        run_key=f"s-{framework}-{precision}", framework=framework, precision=precision,
        decode_tok_s=decode, decode_tok_s_min=decode - spread, decode_tok_s_max=decode + spread,
        ttft_ms=1000 / decode, peak_rss_mb=rss, model_bytes=mb * 2**20, repetitions=5,
        measurement="measured", **INTEL)
    return make_record(**{**row, **kw})


def quality(framework, precision, kld, ppl):
    return make_record(run_key=f"q-{framework}-{precision}", kind="quality",
                       framework=framework, precision=precision, kld_mean=kld, ppl=ppl,
                       ppl_reference=20.0, quality_reference="llama-cpp:f16", **INTEL)


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "store")  # the conftest's EDGEBENCH_STORE
    st.write_session("s1", [
        speed("llama-cpp", "f16", 20.0, 700, 511),
        speed("llama-cpp", "q8_0", 32.0, 450, 272),
        speed("llama-cpp", "q4_k_m", 45.0, 360, 157),
        speed("openvino", "int4", 44.8, 340, 128, spread=3),
        make_record(run_key="e1", framework="ort-genai", precision="int4", status="error",
                    message="boom", **INTEL),
    ])
    st.write_session("s2", [
        quality("llama-cpp", "f16", 0.0, 20.0), quality("llama-cpp", "q8_0", 0.002, 20.1),
        quality("llama-cpp", "q4_k_m", 0.08, 21.5),
        # a quality row of another machine, same identity: the speed row's machine wins
        make_record(run_key="q-other", kind="quality", framework="llama-cpp", precision="q8_0",
                    kld_mean=9.0, machine_id="other"),
    ])
    return st


def test_api_ranks_and_joins_quality(store):
    rec = api.recommend(store, "intel-cpu", optimize="speed", machine=INTEL)
    assert not rec.guidance
    # q4_k_m and openvino int4 are within noise: a tie, and the smaller artifact wins it
    assert rec.winner.candidate.name == "openvino int4 cpu"
    assert [r.candidate.name for r in rec.ties] == ["llama-cpp q4_k_m cpu"]
    assert [r.candidate.name for r in rec.runners_up] == ["llama-cpp q8_0 cpu",
                                                          "llama-cpp f16 cpu"]
    q8 = rec.runners_up[0].candidate
    assert q8.kld_mean.value == 0.002 and q8.ppl_reference == 20.0
    assert q8.decode_tok_s.interval == (31.5, 32.5) and q8.model_bytes == 272 * 2**20


def test_quality_limit_rejects_unmeasured_with_a_reason(store):
    rec = api.recommend(store, "cpu", constraints=Constraints(max_kld=0.05), machine=INTEL)
    assert rec.winner.candidate.name == "llama-cpp q8_0 cpu"
    reasons = {r.candidate.name: r.reasons for r in rec.rejected}
    assert reasons == {
        "llama-cpp q4_k_m cpu": ("kld_mean 0.08 > 0.05",),
        "openvino int4 cpu": ("no kld_mean measured (run `edgebench quality ...`)",),
    }


def test_estimated_rows_never_rank_with_measured(tmp_path):
    st = Store(tmp_path / "est")
    st.write_session("s", [speed("llama-cpp", "q4_k_m", 20, 400, 157),
                           speed("ort-genai", "int4", 90, 300, 128, measurement="estimated")])
    rec = api.recommend(st, "cpu", machine=INTEL)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert rec.rejected[0].reasons[0].startswith("measurement 'estimated'")
    assert any("not measured by edgebench" in n for n in rec.notes)


def test_several_workloads_rank_the_common_one(tmp_path):
    st = Store(tmp_path / "w")
    st.write_session("s", [speed("llama-cpp", "q4_k_m", 20, 400, 157),
                           speed("llama-cpp", "q8_0", 15, 450, 272),
                           speed("llama-cpp", "f16", 99, 700, 511, run_key="x", new_tokens=64)])
    rec = api.recommend(st, "cpu", machine=INTEL)
    assert rec.winner.candidate.name == "llama-cpp q4_k_m cpu"
    assert any("1 row(s) of other workloads left out" in n for n in rec.notes)


def test_cli_table_with_explain(store, capsys):
    code, out, err = run_main(["recommend", "--device", "intel-cpu", "--optimize", "speed",
                               "--explain"], capsys)
    assert code == 0, err
    assert out.startswith("recommended on intel-cpu (optimize speed): openvino int4 cpu; "
                          "TIED within noise with llama-cpp q4_k_m cpu")
    assert "runner-up" in out and "Pareto front:" in out and "winner: openvino int4" in out


def test_cli_json_and_md(store, capsys):
    code, out, _ = run_main(["recommend", "--device", "cpu", "--max-memory-mb", "500",
                             "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["guidance"] is False and data["label"] == "measured"
    assert data["constraints"] == {"max_memory_mb": 500.0}
    assert data["rejected"] == [{"candidate": data["rejected"][0]["candidate"],
                                 "reasons": ["peak_rss_mb 700 > 500"]}]
    code, out, _ = run_main(["recommend", "--device", "cpu", "--format", "md", "--explain"],
                            capsys)
    assert code == 0 and out.startswith("## edgebench recommend: cpu")
    assert "| verdict | candidate |" in out and "### Steps" in out


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
        speed("llama-cpp", "q4_k_m", 20, 400, 157, machine_id=fingerprint().machine_id)])
    code, out, _ = run_main(["recommend", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["winner"]["candidate"]["name"] == "llama-cpp q4_k_m cpu"


def test_cli_impossible_limit_exit_1_names_the_limit(store, capsys):
    code, out, err = run_main(["recommend", "--device", "cpu", "--max-memory-mb", "400",
                               "--min-decode-tok-s", "50"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: no candidate on cpu meets the limits: --min-decode-tok-s 50.0 eliminated "
        "the last one")
    assert "peak_rss_mb 700 > 400" in out  # the rejected rows are still shown


def test_cli_unknown_device_exit_2(store, capsys):
    code, _, err = run_main(["recommend", "--device", "snapdragn"], capsys)
    assert code == 2
    assert err.strip() == ("error: unknown device target 'snapdragn' (did you mean snapdragon?)"
                           "; known: cpu, intel-cpu, intel-gpu, intel-npu, apple-silicon, "
                           "snapdragon, nvidia-gpu, jetson, arm-cpu, this")


def test_cli_empty_store_says_how_to_fill_it(tmp_path, capsys):
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
                             "json"], capsys)
    assert code == 0 and json.loads(out)["winner"]["candidate"]["precision"] == "q8_0"
