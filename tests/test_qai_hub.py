"""Qualcomm AI Hub: the profile -> row mapping against profiles built with the client's own
protobuf classes and converter (tests/data/qai_hub/make_fixtures.py, keys verbatim), the
importer of a downloaded profile, and the runner without a token (real client, no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness import qai_hub_profile as mapping

DATA = Path(__file__).parent / "data" / "qai_hub"
SINGLE = DATA / "gemma-3-270m_w8a16_jgn1x2k3p_results.json"
FACTS = mapping.JobFacts(
    job_ids=("jc1", "jp2"), device_name="Samsung Galaxy S25 (Family)", device_os="15",
    chipset="chipset:qualcomm-snapdragon-8-elite", qairt_version="2.37.1",
    client_version="0.56.0", settings={"target_runtime": "qnn_context_binary"})


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_fixtures_are_the_clients_own_output():
    pytest.importorskip("qai_hub", reason="qai-hub is not installed (pip install -e '.[qai-hub]')")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", DATA / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, doc in mod.fixtures().items():
        assert load(name) == doc, f"{name} is stale: run tests/data/qai_hub/make_fixtures.py"


def test_single_graph_row():
    cols = mapping.columns({"graph": json.loads(SINGLE.read_text())}, FACTS, prompt_tokens=64)
    assert cols["status"] == "ok" and cols["measurement"] == "estimated"
    assert cols["ttft_ms"] == pytest.approx(4.25)  # estimated_inference_time 4250 µs
    assert cols["ttft_ms_samples"] == pytest.approx([4.3, 4.25, 4.2])
    assert cols["prefill_tok_s"] == pytest.approx(64 / 0.00425)
    assert "decode_tok_s" not in cols and "no decode speed" in cols["message"]
    assert (cols["accel_nodes"], cols["gpu_nodes"], cols["cpu_nodes"]) == (5, 0, 0)
    assert cols["peak_mem_range_mb"] == pytest.approx([30.0, 34.0])
    assert cols["load_s"] == pytest.approx(0.12)
    assert cols["cpu_model"] == "Snapdragon 8 Elite" and cols["os"] == "15"
    assert cols["device_name"] == "Samsung Galaxy S25 (Family)"
    assert cols["framework_version"] == "2.37.1" and cols["job_ids"] == "jc1,jp2"
    assert json.loads(cols["runtime_settings"]) == {"target_runtime": "qnn_context_binary"}
    assert "not edgebench's token timeline" in cols["message"]
    assert "scoring graph's latency (4.250 ms, 64 tokens)" in cols["message"]


def test_cpu_fallback_layers_are_counted_and_said():
    cols = mapping.columns({"graph": load("cpu_fallback.json")}, FACTS)
    assert (cols["accel_nodes"], cols["gpu_nodes"], cols["cpu_nodes"]) == (3, 1, 2)
    assert "2 of 6 layers fell back to the CPU" in cols["message"]
    assert cols["peak_mem_range_mb"] == pytest.approx([40.0, 48.0])


def test_llm_split_graphs_give_derived_ttft_and_decode():
    cols = mapping.columns(load("llm_split.json"), FACTS, prompt_tokens=128)
    assert cols["ttft_ms"] == pytest.approx(52.0)
    assert cols["decode_tok_s"] == pytest.approx(80.0)  # 1000 / 12.5 ms
    assert cols["tpot_ms"] == pytest.approx(12.5)
    assert "ttft_ms = the prompt-processor graph's latency (52.000 ms" in cols["message"]
    assert "decode_tok_s = 1000 / the token-generator graph's latency (12.500 ms)" \
        in cols["message"]
    assert cols["accel_nodes"] == 10 and cols["peak_mem_range_mb"] == pytest.approx([300, 320])


def test_failed_job_reason_lands_in_the_row():
    pytest.importorskip("qai_hub", reason="qai-hub is not installed (pip install -e '.[qai-hub]')")
    from qai_hub import JobStatus
    from qai_hub import public_api_pb2 as pb

    from edgebench.harness.runners import qai_hub as runner

    job_pb = pb.InferenceJob(inference_job_id="jfail1", job_state=pb.JOB_STATE_FAILED,
                             failure_reason="Failed to load the model: QNN graph finalize "
                                            "error 1002 (op Gather unsupported)")
    status = JobStatus(JobStatus.State(job_pb.job_state), job_pb.failure_reason)

    class FailedJob:  # the client's Job as _wait uses it, its status the client's own
        job_id, job_type, url = job_pb.inference_job_id, "inference", "https://x/jobs/jfail1"

        def wait(self):
            return status

    facts = dict(device_name="Samsung Galaxy S25 (Family)", device_os="15", chipset=None,
                 qairt_version=None, client_version="0.56.0", settings={})
    cols = runner._wait(FailedJob(), [FailedJob()], facts)
    assert cols["status"] == "error" and cols["job_ids"] == "jfail1"
    assert "QNN graph finalize error 1002 (op Gather unsupported)" in cols["message"]
    assert not any(k in cols for k in ("ttft_ms", "decode_tok_s", "accel_nodes"))


@pytest.mark.parametrize("doc, key", [
    ({"execution_summary": {}}, "execution_detail"),
    ({"execution_summary": {}, "execution_detail": []}, "estimated_inference_time"),
    ({"execution_summary": {"estimated_inference_time": 5},
      "execution_detail": [{"name": "a"}]}, "compute_unit"),
])
def test_malformed_profile_names_the_key(doc, key):
    with pytest.raises(ConfigError, match=key):
        mapping.columns({"graph": doc}, FACTS)


def test_chipset_names():
    assert mapping.chipset_name("chipset:qualcomm-snapdragon-8gen3") == "Snapdragon 8 Gen 3"
    assert mapping.chipset_name("chipset:qualcomm-snapdragon-x-elite") == "Snapdragon X Elite"


# --- import ----------------------------------------------------------------------------------


def test_import_reads_a_downloaded_profile_through_the_same_mapping():
    from edgebench.imports import ai_hub_profile, reader

    assert reader("ai-hub-profile") is ai_hub_profile.read
    (row,) = ai_hub_profile.read(SINGLE)
    assert row.measurement == "imported:ai-hub-profile" and row.framework == "qai-hub"
    assert row.model == "gemma-3-270m_w8a16" and row.job_ids == "jgn1x2k3p"
    assert row.ttft_ms == pytest.approx(4.25) and row.accel_nodes == 5
    assert row.source.startswith("Qualcomm AI Hub: gemma-3-270m_w8a16_jgn1x2k3p_results.json")
    assert row.machine_id.startswith("elsewhere:") and row.status == "ok"
    (llm,) = ai_hub_profile.read(DATA / "llm_split.json")
    assert llm.decode_tok_s == pytest.approx(80.0)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"execution_summary": {}}'])
def test_import_malformed_file_is_one_line_naming_it(tmp_path, text):
    from edgebench.imports import ai_hub_profile

    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(ConfigError) as e:
        ai_hub_profile.read(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_import_command(tmp_path, capsys):
    from edgebench.cli import cli

    if "import" not in cli.commands:
        pytest.skip("the `edgebench import` command is not registered yet")
    from conftest import run_main

    code, out, err = run_main(["import", "ai-hub-profile", str(DATA / "cpu_fallback.json")],
                              capsys)
    assert code == 0, err
    code, out, _ = run_main(["sql", "SELECT measurement, cpu_nodes, gpu_nodes FROM runs",
                             "--format", "csv"], capsys)
    assert "imported:ai-hub-profile,2,1" in out


# --- runner ------------------------------------------------------------------------------------


@pytest.fixture
def no_token(tmp_path, monkeypatch):
    pytest.importorskip("qai_hub", reason="qai-hub is not installed (pip install -e '.[qai-hub]')")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("QAIHUB_CLIENT_INI", raising=False)
    return home


def test_probe_without_token_says_how_to_configure(no_token):
    from edgebench.harness.registry import load_runner

    with pytest.raises(RunnerUnavailable, match=r"qai-hub configure --api_token"):
        load_runner("qai-hub").probe()


def qnn_artifact(root: Path) -> Path:
    art = root / "qnn"
    art.mkdir()
    for name in ("model.onnx", "model.onnx.data", "tokenizer.json", "manifest.json",
                 "qnn_facts.json"):
        (art / name).write_bytes(b"x")
    return art


def test_staged_artifact_is_what_the_client_takes_as_onnx(tmp_path):
    pytest.importorskip("qai_hub", reason="qai-hub is not installed (pip install -e '.[qai-hub]')")
    from qai_hub.client import SourceModelType, _determine_model_type

    from edgebench.harness.runners.qai_hub import stage_onnx

    staged = stage_onnx(qnn_artifact(tmp_path), tmp_path)
    assert sorted(p.name for p in staged.iterdir()) == ["model.onnx", "model.onnx.data"]
    assert _determine_model_type(str(staged)) == SourceModelType.ONNX
    gguf = tmp_path / "g"
    gguf.mkdir()
    (gguf / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match=r"AI Hub can compile: it takes ONNX"):
        stage_onnx(gguf, tmp_path)


def test_unknown_device_lists_what_ai_hub_offers():
    pytest.importorskip("qai_hub", reason="qai-hub is not installed (pip install -e '.[qai-hub]')")
    import qai_hub

    from edgebench.harness.runners.qai_hub import check_device, hub_device

    class Client:  # AI Hub's answer to get_devices, without network
        def get_devices(self, name="", os="", attributes=None):
            offered = [qai_hub.Device("Samsung Galaxy S25 (Family)", "15"),
                       qai_hub.Device("Snapdragon X Elite CRD", "11")]
            return [d for d in offered if not name or d.name == name]

    assert check_device(Client(), hub_device("snapdragon", {})).name.startswith("Samsung")
    with pytest.raises(DeviceUnavailable, match="offers: Samsung Galaxy S25 \\(Family\\), "
                                                "Snapdragon X Elite CRD"):
        check_device(Client(), hub_device("snapdragon", {"hub_device": "Galaxy S99"}))


def test_unreachable_ai_hub_is_unavailable_with_the_configured_defaults(no_token,
                                                                       monkeypatch):
    import qai_hub
    import requests
    from qai_hub.client import _raise_internal_error

    from edgebench.harness.runners.qai_hub import QaiHubRunner

    cfg = no_token / ".qai_hub"
    cfg.mkdir()
    (cfg / "client.ini").write_text("[api]\napi_token = t0k\napi_url = http://127.0.0.1:9\n"
                                    "web_url = http://127.0.0.1:9\n")

    class Offline:  # what the client raises when it cannot connect (its retries skipped)
        def get_devices(self, *a, **k):
            _raise_internal_error("Could not connect to {service}.",
                                  requests.exceptions.ConnectionError("refused"),
                                  "http://127.0.0.1:9", None)

    monkeypatch.setattr(qai_hub, "Client", Offline)

    class Run:
        options, precision, device, model = {}, "w8a16", "snapdragon", "m"
        artifact, prompt_tokens = type("A", (), {"path": no_token}), 512  # no qnn.json

    with pytest.raises(RunnerUnavailable, match=r"cannot be reached.*snapdragon -> Samsung") as e:
        QaiHubRunner().profile(Run())
    assert "\n" not in str(e.value)


def test_run_without_token_gives_unavailable_rows(no_token, tmp_path, monkeypatch, capsys):
    """The real CLI: one unavailable row per cell, the hint in the message, no number."""
    from conftest import run_main, write_gguf
    from edgebench import api

    # the runner is probed before its artifact is prepared (FrameworkSpec.probe_first): without
    # a token nothing is exported, quantized or tokenized
    def never(*args, **kwargs):
        raise AssertionError("prepared or tokenized before the token was checked")

    monkeypatch.setattr(api, "_prepared", never)
    monkeypatch.setattr(api, "prompt_ids", never)
    model = write_gguf(tmp_path / "tiny.gguf")
    store = tmp_path / "st"
    code, out, err = run_main(
        ["run", "--model", str(model), "--framework", "qai-hub", "--precision", "w8a16",
         "--precision", "w8a8", "--device", "snapdragon", "--prompt-tokens", "4",
         "--new-tokens", "2", "--store", str(store), "--format", "csv"], capsys)
    assert code == 0, err
    code, out, _ = run_main(["sql", "SELECT status, ttft_ms, message FROM runs", "--store",
                             str(store), "--format", "json"], capsys)
    rows = json.loads(out)
    assert len(rows) == 2
    for r in rows:
        assert r["status"] == "unavailable" and r["ttft_ms"] is None
        assert "qai-hub configure --api_token" in r["message"]


def test_prompt_length_must_be_the_artifacts_sequence_length(tmp_path, monkeypatch):
    """The [1, N] graph's latency is the TTFT of an N-token prompt: another prompt length would
    make prefill tok/s a wrong number, so the run is refused before anything is submitted."""
    from types import SimpleNamespace

    from edgebench.errors import ConfigError
    from edgebench.harness.runners import qai_hub as runner_mod

    art = tmp_path / "art"
    art.mkdir()
    (art / "qnn.json").write_text(json.dumps({"n_ctx": 512}))
    assert runner_mod.sequence_length(art) == 512
    assert runner_mod.sequence_length(tmp_path) is None
    monkeypatch.setattr(runner_mod, "_config_or_raise", lambda hub: None)
    run = SimpleNamespace(artifact=SimpleNamespace(path=art), prompt_tokens=64, options={},
                          precision="w8a16", device="snapdragon", model="m")
    with pytest.raises(ConfigError, match="needs --prompt-tokens 512"):
        runner_mod.QaiHubRunner().profile(run)


# --- hostile profiles: one `error:` line naming the file and key, exit code 2 ----------------


def _profile(**summary) -> dict:
    doc = load(SINGLE.name)
    doc["execution_summary"].update(summary)
    return doc


def _import_error(tmp_path, capsys, doc, name="p.json") -> str:
    from conftest import run_main

    f = tmp_path / name
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    code, out, err = run_main(["import", "ai-hub-profile", str(f), "--dry-run"], capsys)
    assert code == 2, err
    assert err.startswith(f"error: {f}: ") and err.count("\n") == 1, err
    assert "internal error" not in err
    return err


@pytest.mark.parametrize("summary, where", [
    ({"estimated_inference_time": -5}, "estimated_inference_time: expected a finite number "
                                       "above 0, got -5"),
    ({"estimated_inference_time": 0}, "estimated_inference_time: expected a finite number"),
    ({"estimated_inference_time": 10**400}, "estimated_inference_time: expected a finite"),
    ({"warm_load_time": -100}, "warm_load_time: expected a finite number of at least 0"),
    ({"all_inference_times": [1.0, -1, 0]}, "all_inference_times: expected a finite number"),
    ({"inference_memory_peak_range": [5 << 30, -1]}, "inference_memory_peak_range: expected "
                                                    "a finite number of at least 0, got -1"),
    ({"inference_memory_peak_range": [5 << 30, 1]}, "high 9.53674e-07 MB is below low"),
])
def test_import_refuses_bad_latencies(tmp_path, capsys, summary, where):
    assert where in _import_error(tmp_path, capsys, _profile(**summary))


@pytest.mark.parametrize("text, where", [
    ('{"execution_summary": {"estimated_inference_time": NaN}, "execution_detail": []}',
     "NaN is not a number"),
    ('{"execution_summary": {"estimated_inference_time": Infinity}, "execution_detail": []}',
     "Infinity is not a number"),
    ('{"execution_summary": {"estimated_inference_time": 1e400}, "execution_detail": []}',
     "1e400 is not a finite number"),
    ('{"execution_summary": {"estimated_inference_time": ' + "9" * 5000 + "}}",
     "a value cannot be read"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nests more than 32 levels deep"),
])
def test_import_refuses_non_finite_huge_and_deep_json(tmp_path, capsys, text, where):
    assert where in _import_error(tmp_path, capsys, text)


def test_import_token_generator_of_zero_latency_is_refused(tmp_path, capsys):
    doc = load("llm_split.json")
    doc["token_generator"]["execution_summary"]["estimated_inference_time"] = 0
    err = _import_error(tmp_path, capsys, doc)
    assert "graph 'token_generator' execution_summary.estimated_inference_time" in err


def test_graphs_that_give_no_figure_are_said(tmp_path, capsys):
    one = load(SINGLE.name)
    cols = mapping.columns({"encoder": one, "decoder": one}, FACTS)
    assert cols["status"] == "unavailable" and "ttft_ms" not in cols
    assert "the 2 graphs ('encoder', 'decoder') are neither" in cols["message"]
    assert "neither one scoring graph" in _import_error(tmp_path, capsys,
                                                        {"encoder": one, "decoder": one})
    assert mapping.role("Generator") == mapping.role("Tokenizer") == "graph"
    assert mapping.role("token_generator") == "token"
    assert mapping.role("prompt_1_of_4") == "prompt"
    split = load("llm_split.json")
    cols = mapping.columns({**split, "embedding": one}, FACTS)
    assert cols["status"] == "ok" and "graphs not used: 'embedding'" in cols["message"]


def test_layers_on_an_unknown_compute_unit_are_counted_and_named():
    doc = load(SINGLE.name)
    doc["execution_detail"][0]["compute_unit"] = "TPU"
    doc["execution_detail"][1]["compute_unit"] = "x\ny"
    cols = mapping.columns({"graph": doc}, FACTS)
    assert cols["accel_nodes"] == 3
    assert "2 of 5 layers on a compute unit edgebench does not know ('TPU': 1, " \
           "'x\\\\x0ay': 1)" in cols["message"]


def test_imported_profile_says_it_is_the_services_estimate(tmp_path):
    from edgebench.imports import ai_hub_profile

    (row,) = ai_hub_profile.read(SINGLE)
    assert row.message.startswith(f"estimated by Qualcomm AI Hub, imported from {SINGLE.name}")
    run = mapping.columns({"graph": load(SINGLE.name)}, FACTS)
    assert run["message"].startswith("estimated by Qualcomm AI Hub: ")
    copy = tmp_path / "other_jzz1_results.json"
    copy.write_text(json.dumps(_profile(estimated_inference_time=5000)))
    (other,) = ai_hub_profile.read(copy)
    assert other.machine_id != row.machine_id and other.run_key != row.run_key


def test_import_file_name_with_a_newline_is_one_line(tmp_path, capsys):
    from conftest import run_main

    f = tmp_path / "bad\nname.json"
    f.write_text("{}")
    code, _, err = run_main(["import", "ai-hub-profile", str(f)], capsys)
    assert code == 2 and err.count("\n") == 1 and "bad\\x0aname.json" in err, err


# --- runner: options refused before the token; a bad service profile is a failed run --------


@pytest.mark.parametrize("options, precision, where", [
    ({"target_runtime": "junk"}, "w8a16", "target_runtime 'junk'"),
    ({"target_runtime": 5}, "w8a16", "target_runtime 5"),
    ({"quantize": "w2a2"}, "fp32", "quantize 'w2a2'"),
    ({"quantize": "w8a8"}, "w8a16", "on the fp32 artifact only"),
    ({"quantize": "w8a8", "calibration_samples": "lots"}, "fp32", "calibration_samples 'lots'"),
    ({"quantize": "w8a8", "calibration_samples": 0}, "fp32", "a positive integer"),
    ({"quantize": "w8a8", "calibration_samples": True}, "fp32", "a positive integer"),
    ({"compile_options": ["--x"]}, "w8a16", "compile_options ['--x']: expected text"),
])
def test_bad_options_are_refused_before_the_token(no_token, options, precision, where):
    from types import SimpleNamespace

    from edgebench.harness.runners import qai_hub as runner_mod

    run = SimpleNamespace(artifact=SimpleNamespace(path=no_token), prompt_tokens=64,
                          options=options, precision=precision, device="snapdragon", model="m")
    with pytest.raises(ConfigError, match=re.escape(where)):
        runner_mod.QaiHubRunner().profile(run)  # no token: the option is still the error
    with pytest.raises(ConfigError, match=re.escape(where)):
        runner_mod.check_options(options, precision)
    assert runner_mod.check_options({"quantize": "w8a8", "calibration_samples": 4}, "fp32")


@pytest.mark.parametrize("latency", [0, -5, float("nan"), float("inf"), 5e-324])
def test_service_profile_with_bad_latency_is_a_failed_run(latency, tmp_path, monkeypatch):
    """The runner's whole path with a fake client: the service's odd profile is a RunFailed
    (an ``error`` row with the reason), never an ``ok`` row and never the suite's fault."""
    from types import SimpleNamespace

    from edgebench.errors import RunFailed
    from edgebench.harness.runners import qai_hub as runner_mod

    with pytest.raises(ConfigError):
        mapping.columns({"graph": _profile(estimated_inference_time=latency)}, FACTS, 64)
    device = SimpleNamespace(name="Samsung Galaxy S25 (Family)", os="15",
                             attributes=["chipset:qualcomm-snapdragon-8-elite"])

    class Job:
        job_id, job_type, url = "jp1", "profile", "https://x/jobs/jp1"

        def wait(self):
            return SimpleNamespace(success=True)

        def get_target_model(self):
            return "model"

        def download_profile(self):
            return _profile(estimated_inference_time=latency)

    class Client:
        def get_devices(self, *a, **k):
            return [device]

        def get_frameworks(self):
            return []

        def submit_compile_job(self, *a, **k):
            return Job()

        submit_inference_job = submit_compile_job

        def get_job(self, job_id):
            return SimpleNamespace(device=device)

    hub = SimpleNamespace(Client=Client, __version__="0.56.0",
                          Device=lambda name=None, attributes=None: SimpleNamespace(
                              name=name, os="", attributes=attributes))
    monkeypatch.setattr(runner_mod, "_client_module", lambda: hub)
    monkeypatch.setattr(runner_mod, "_config_or_raise", lambda hub: None)
    art = tmp_path / "art"
    art.mkdir()
    (art / "model.onnx").write_bytes(b"x")
    run = SimpleNamespace(artifact=SimpleNamespace(path=art), prompt_tokens=64, options={},
                          precision="w8a16", device="snapdragon", model="m")
    with pytest.raises(RunFailed, match=r"returned a profile edgebench cannot use \(job jp1\)"):
        runner_mod.QaiHubRunner().profile(run)


def test_bad_options_are_error_rows_without_a_token(no_token, tmp_path, capsys):
    """A bad qai-hub option is the run's error (the suite's mistake), never `unavailable` for
    want of a token: it is checked before the token."""
    import textwrap

    from conftest import run_main, write_gguf

    model = write_gguf(tmp_path / "tiny.gguf")
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: s
        models: ["{model}"]
        frameworks: [qai-hub]
        precisions: [w8a16]
        devices: [snapdragon]
        prompt_tokens: [4]
        new_tokens: [2]
        options: {{qai-hub: {{target_runtime: tflite}}}}
    """))
    store = str(tmp_path / "st")
    code, _, err = run_main(["run", str(suite), "--store", store, "--quiet"], capsys)
    assert code == 1, err  # an error row
    code, out, _ = run_main(["sql", "SELECT status, message FROM runs", "--store", store,
                             "--format", "json"], capsys)
    (row,) = json.loads(out)
    assert row["status"] == "error" and "target_runtime" in row["message"]
