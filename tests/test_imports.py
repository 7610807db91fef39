"""`edgebench import FORMAT FILE`: each importer against real output of its tool (fixtures in
tests/data/imports, provenance in its README.md), malformed files, and the imported rows in
the store next to measured ones, labelled."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import run_main
from edgebench.errors import ConfigError
from edgebench.imports import llama_bench, qai_hub_models, reader
from edgebench.results import provenance
from edgebench.results.store import Store

DATA = Path(__file__).parent / "data" / "imports"
BENCH_JSON = DATA / "llama-bench-gemma-3-270m.json"
BENCH_JSONL = DATA / "llama-bench-gemma-3-270m.jsonl"
QHM = DATA / "qai-hub-models-0.65.0"
PERF = QHM / "qai_hub_models" / "models" / "llama_v3_2_1b_instruct" / "perf.yaml"
# hand-copied from the fixtures: the pp16 and tg8 tests' samples_ts and samples_ns
PP_TS = [90.1872, 125.236]
TG_TS = [31.0516, 30.2728]
TG_NS = [257636019, 264263582]
JSONL_PP_TS = [129.579, 112.465]
BUILD_COMMIT = "0c1e570"
CPU_INFO = "AMD EPYC"


def by(rows, **want):
    """The one row whose attributes (or options) equal ``want``."""
    found = [r for r in rows if all(
        getattr(r, k, None) == v or json.loads(r.options).get(k) == v for k, v in want.items())]
    assert len(found) == 1, (want, len(found))
    return found[0]


# --- llama-bench -------------------------------------------------------------------------


def test_llama_bench_json_rows_keep_every_sample():
    rows = llama_bench.read(BENCH_JSON)
    assert [json.loads(r.options)["test"] for r in rows] == ["pp", "tg"]
    pp, tg = rows
    # hand-checked against the fixture: samples_ts of the pp16 and tg8 tests
    assert pp.prefill_tok_s_samples == PP_TS
    assert pp.prefill_tok_s == pytest.approx(sum(PP_TS) / 2)  # median of two
    assert pp.decode_tok_s is None and pp.prompt_tokens == 16 and pp.new_tokens == 0
    assert tg.decode_tok_s_samples == TG_TS
    assert tg.decode_tok_s == pytest.approx(sum(TG_TS) / 2)
    assert tg.tpot_ms_samples == pytest.approx([ns / 8 / 1e6 for ns in TG_NS])
    assert tg.prefill_tok_s is None and tg.prompt_tokens == 0 and tg.new_tokens == 8
    for r in rows:
        assert r.model == "gemma-3-270m-q4_k_m" and r.precision == "q4_k_m"
        assert r.model_bytes == 246587904 and r.started_at.year == 2026
        assert r.framework == "llama-cpp" and r.device == "cpu" and r.threads == 2
        assert r.repetitions == 2 and r.measurement == "imported:llama-bench"
        assert r.suite == "import:llama-bench" and r.machine_id.startswith("elsewhere:")
        assert r.source.startswith(f"llama-bench {BUILD_COMMIT} (build ")
        assert r.cpu_model == CPU_INFO and r.framework_version.endswith(f"({BUILD_COMMIT})")
        settings = json.loads(r.runtime_settings)
        assert settings["model_type"] == "gemma3 270M Q4_K - Medium"
        assert "samples_ns" not in settings and settings["n_threads"] == 2
    assert pp.run_key != tg.run_key


def test_llama_bench_jsonl_is_the_same_content_as_json():
    def settings(r):
        return {k: v for k, v in json.loads(r.runtime_settings).items() if k != "test_time"}

    a, b = llama_bench.read(BENCH_JSON), llama_bench.read(BENCH_JSONL)
    assert [r.run_key for r in a] == [r.run_key for r in b]
    # two runs of the tool: the same cells and settings, their own samples
    for x, y in zip(a, b):
        assert (x.model, x.precision, x.device, x.threads, x.prompt_tokens, x.new_tokens,
                x.framework_version, x.cpu_model, x.options) == \
               (y.model, y.precision, y.device, y.threads, y.prompt_tokens, y.new_tokens,
                y.framework_version, y.cpu_model, y.options)
        assert settings(x) == settings(y)
    assert b[0].prefill_tok_s_samples == JSONL_PP_TS


def test_llama_bench_jsonl_rows_equal_json_rows_of_the_same_tests(tmp_path):
    """The same tests written both ways read as the same rows."""
    tests = json.loads(BENCH_JSON.read_text())
    lines = tmp_path / "same.jsonl"
    lines.write_text("".join(json.dumps(t) + "\n" for t in tests))
    for x, y in zip(llama_bench.read(BENCH_JSON), llama_bench.read(lines)):
        assert {k: v for k, v in vars(x).items() if k not in ("finished_at", "source")} == \
               {k: v for k, v in vars(y).items() if k not in ("finished_at", "source")}


@pytest.mark.parametrize("model_type, expected", [
    ("gemma3 270M Q4_K - Medium", "q4_k_m"), ("llama 8B Q2_K - Medium", "q2_k"),
    ("qwen2 1.5B IQ3_S mix - 3.66 bpw", "iq3_m"), ("phi3 3B all F32", "f32"),
    ("gemma3 270M BF16", "bf16"), ("gemma3 270M (guessed) Q8_0", "gemma3 270M (guessed) Q8_0"),
])
def test_llama_bench_precision_from_model_type(model_type, expected):
    assert llama_bench.precision(model_type) == expected


# --- qai-hub-models ----------------------------------------------------------------------


def test_qai_hub_models_ttft_measured_and_extrapolated_kept_apart():
    rows = qai_hub_models.read(PERF)
    assert len(rows) == 6 and len({r.run_key for r in rows}) == 6
    s25 = by(rows, precision="w4a16", device="Samsung Galaxy S25", profile_path="genie")
    # hand-checked: perf.yaml, w4a16, Samsung Galaxy S25, genie
    assert s25.decode_tok_s == 67.21784973144531 and s25.prefill_tok_s == 1782.53125
    assert s25.ttft_ms == 31.467  # measured: the range's lower end, a 128-token prompt
    assert s25.prompt_tokens == 128
    assert s25.ttft_ms_extrapolated == 1006.944  # Qualcomm's scaling to the context
    assert s25.ttft_ms_samples is None and s25.ttft_ms_max is None  # never one range
    settings = json.loads(s25.runtime_settings)
    assert settings["context_length"] == 4096 and "not measured" in \
        settings["ttft_ms_extrapolated"]
    assert s25.model == "Llama-v3.2-1B-Instruct" and "gemma" not in s25.model.lower()
    assert (s25.framework, s25.measurement) == ("qai-hub", "imported:qai-hub-models")
    assert s25.cpu_model == "Snapdragon 8 Elite For Galaxy Mobile" and s25.os == "Android 15"
    assert s25.accelerators == "Qualcomm Hexagon NPU"
    assert s25.source.startswith("qai-hub-models 0.65.0 qai_hub_models/models/"
                                 "llama_v3_2_1b_instruct/perf.yaml sha256:")
    qairt = by(rows, precision="w4", device="Samsung Galaxy S25", profile_path="geniex_qairt")
    assert qairt.framework_version == "geniex v0.9.1, qairt 2.50"
    assert (qairt.ttft_ms, qairt.ttft_ms_extrapolated) == (123.36712903225806,
                                                           3947.748129032258)


def test_qai_hub_models_copied_figures_say_so():
    copied = by(qai_hub_models.read(PERF), device="Dragonwing IQ-X7181", profile_path="genie")
    assert "figures of qualcomm-snapdragon-x-elite, copied onto this device" in copied.source
    assert copied.cpu_model == "Qualcomm Dragonwing IQ-X7181"


def test_qai_hub_models_other_prompt_length_and_zero_figures(tmp_path):
    """A range that is not min x context / 128 leaves the prompt length empty; all-zero
    figures (as the wheel has for llama_v3_elyza_jp_8b on geniex_qairt) are no figure."""
    text = PERF.read_text().replace("max: 1006.944", "max: 251.736")  # x 8, not x 32
    text = text.replace("tokens_per_second: 24.492292", "tokens_per_second: 0.0")
    text = text.replace("prefill_tokens_per_second: 1037.553528",
                        "prefill_tokens_per_second: 0.0")
    text = text.replace("max: 3947.748129032258", "max: 0.0")
    text = text.replace("min: 123.36712903225806", "min: 0.0")
    f = tmp_path / "perf.yaml"
    f.write_text(text)
    rows = qai_hub_models.read(f)
    odd = by(rows, precision="w4a16", device="Samsung Galaxy S25", profile_path="genie")
    assert odd.prompt_tokens is None and odd.ttft_ms == 31.467
    assert "prompt length is not given" in json.loads(odd.runtime_settings)["ttft_ms"]
    none = by(rows, precision="w4", device="Samsung Galaxy S25", profile_path="geniex_qairt")
    assert none.status == "unavailable" and none.decode_tok_s is None and none.ttft_ms is None
    assert f.name in odd.source and "(version unknown)" in odd.source  # no wheel around it


def test_qai_hub_models_reads_the_wheel(tmp_path):
    """A wheel (zip) of the fixture's files: every LLM perf.yaml in it, version from METADATA."""
    whl = tmp_path / "qai_hub_models-0.65.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for f in (QHM / "qai_hub_models").rglob("*"):
            if f.is_file():
                z.write(f, f.relative_to(QHM).as_posix())
        z.writestr("qai_hub_models/models/resnet50/perf.yaml", "precisions: {}\n")
        z.writestr("qai_hub_models-0.65.0.dist-info/METADATA", "Name: qai-hub-models\n"
                   "Version: 0.65.0\n")
    rows = qai_hub_models.read(whl)
    assert [(r.precision, r.device, r.decode_tok_s) for r in rows] == \
           [(r.precision, r.device, r.decode_tok_s) for r in qai_hub_models.read(PERF)]
    assert rows[0].source.startswith("qai-hub-models 0.65.0 qai_hub_models/models/llama_v3_2")


# --- malformed files: one line, the file and where, exit code 2 --------------------------


def _bad(tmp_path, name, text):
    f = tmp_path / name
    f.write_bytes(text.encode()) if isinstance(text, str) else f.write_bytes(text)
    return f


def test_truncated_jsonl_names_its_line(tmp_path, capsys):
    lines = BENCH_JSONL.read_text().splitlines()
    f = _bad(tmp_path, "cut.jsonl", lines[0] + "\n" + lines[1][:200] + "\n")
    code, out, err = run_main(["import", "llama-bench", str(f)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {f}: line 2: not valid JSON")


@pytest.mark.parametrize("name, text, where", [
    ("empty.json", "", "empty file"),
    ("blank.json", "  \n\n", "empty file"),
    ("notjson.json", "llama-bench: error: unknown argument\n", "line 1: not valid JSON"),
    ("array.json", '[\n  {"model_filename": "m.gguf"}\n]\n', "line 2: missing key 'model_type'"),
    ("cut.json", '[\n  {"a": 1},\n  {"b": 2', "line 3: not valid JSON"),
    ("open.json", '[\n  {"a": 1}\n', "line 3: not valid JSON (the array is cut short"),
    ("number.jsonl", "1\n", "line 1: a test must be a JSON object, not int"),
    ("samples.jsonl", '{"model_filename": "m.gguf", "model_type": "x", "n_prompt": 16, '
     '"n_gen": 0, "samples_ns": []}\n', "line 1: 'samples_ns' must be a non-empty list"),
    ("types.jsonl", '{"model_filename": "m.gguf", "model_type": "x", "n_prompt": "16", '
     '"n_gen": 0, "samples_ns": [1]}\n', "line 1: 'n_prompt' must be a int"),
    ("zero.jsonl", '{"model_filename": "m.gguf", "model_type": "x", "n_prompt": 0, '
     '"n_gen": 0, "samples_ns": [1]}\n', "line 1: n_prompt 0 and n_gen 0"),
    ("latin1.jsonl", b'\n\xff\n', "line 2: not UTF-8 text"),
    ("emptyarray.json", "[]\n", "no test in the file"),
])
def test_malformed_llama_bench(tmp_path, capsys, name, text, where):
    f = _bad(tmp_path, name, text)
    code, out, err = run_main(["import", "llama-bench", str(f)], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {f}: ") and where in err, err
    assert not (tmp_path / "store").exists()  # nothing written


@pytest.mark.parametrize("text, where", [
    ("", "empty file"),
    ("precisions: [\n", "line 2: not valid YAML"),
    ("models: {}\n", "precisions: expected a mapping"),
    ("precisions: {}\n", "no LLM figures (llm_metrics)"),
    ("precisions:\n  w4a16:\n    components:\n      M:\n        performance_metrics:\n"
     "          Dev:\n            genie:\n              llm_metrics:\n"
     "              - context_length: 4096\n                tokens_per_second: 9.0\n",
     "precisions.w4a16.components.M.performance_metrics.Dev.genie.llm_metrics[0]."
     "time_to_first_token_range_milliseconds: expected a mapping"),
    ("precisions:\n  w4a16:\n    components:\n      M:\n        performance_metrics:\n"
     "          Dev:\n            genie:\n              llm_metrics:\n"
     "              - context_length: 4096\n                tokens_per_second: fast\n"
     "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n",
     "llm_metrics[0].tokens_per_second: expected a number"),
])
def test_malformed_qai_hub_models(tmp_path, capsys, text, where):
    f = _bad(tmp_path, "perf.yaml", text)
    code, out, err = run_main(["import", "qai-hub-models", str(f)], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {f}: ") and where in err, err


def test_unknown_format_and_missing_file(tmp_path, capsys):
    code, _, err = run_main(["import", "llama_bench", str(BENCH_JSON)], capsys)
    assert code == 2 and err.count("\n") == 1 and "did you mean llama-bench" in err, err
    code, _, err = run_main(["import", "llama-bench", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and err.count("\n") == 1 and "nope.json" in err, err
    with pytest.raises(ConfigError):
        reader("mlperf-client")


def test_help_lists_the_formats(capsys):
    code, out, _ = run_main(["import", "--help"], capsys)
    assert code == 0
    for name in ("llama-bench", "qai-hub-models", "ai-hub-profile"):
        assert f"  {name} " in out


# --- into the store, next to measured rows ------------------------------------------------


def test_import_writes_one_session_of_labelled_rows(tmp_path, capsys):
    code, out, err = run_main(["import", "llama-bench", str(BENCH_JSON), "--format", "json"],
                              capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert [r["measurement"] for r in shown] == ["imported:llama-bench"] * 2
    assert "imported 2 row(s) as imported:llama-bench, session" in err
    rows = Store(tmp_path / "store").table().to_pylist()
    assert len(rows) == 2 and len({r["session_id"] for r in rows}) == 1
    assert rows[0]["session_id"] and err.split("session ")[1].startswith(rows[0]["session_id"])
    assert all(provenance.kind(r["measurement"], "timings") == "imported:llama-bench"
               for r in rows)
    assert list(rows[0]["prefill_tok_s_samples"]) == PP_TS
    code, out, _ = run_main(["results", "--format", "json"], capsys)
    assert code == 0 and {r["framework"] for r in json.loads(out)} == {"llama-cpp"}


def test_dry_run_writes_nothing(tmp_path, capsys):
    code, out, err = run_main(["import", "qai-hub-models", str(PERF), "--dry-run",
                               "--format", "csv"], capsys)
    assert code == 0 and "dry run: nothing written" in err
    assert out.count("imported:qai-hub-models") == 6
    assert not (tmp_path / "store").exists()


def test_recommend_snapdragon_shows_qualcomm_figures_labelled(tmp_path, capsys):
    code, _, err = run_main(["import", "qai-hub-models", str(PERF)], capsys)
    assert code == 0, err
    code, out, err = run_main(["recommend", "--device", "snapdragon"], capsys)
    assert code == 0, err
    assert "imported (qai-hub-models): Qualcomm's published figure on Samsung Galaxy S25 " \
           "(Llama-v3.2-1B-Instruct w4a16)" in out
    assert "left out 4 row(s) not measured by edgebench (imported:qai-hub-models)" in err


def test_fixtures_are_vendored_with_their_licence():
    assert "Qualcomm Technologies" in (QHM / "LICENSE").read_text()
    assert (QHM / "qai_hub_models" / "_version.py").read_text().endswith(
        "__version__ = version = '0.65.0'\n")
    assert "llama-bench" in (DATA / "README.md").read_text()
