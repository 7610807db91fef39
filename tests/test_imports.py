"""`edgebench import FORMAT FILE`: each importer against real output of its tool (fixtures in
tests/data/imports, provenance in its README.md), malformed files, and the imported rows in
the store next to measured ones, labelled."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from conftest import run_main
from edgebench.errors import ConfigError
from edgebench.imports import files, llama_bench, qai_hub_models, reader
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
    # recomputed from samples_ns: llama-bench's samples_ts, to the digits it prints
    assert pp.prefill_tok_s_samples == pytest.approx(PP_TS, rel=1e-5)
    assert pp.prefill_tok_s == pytest.approx(sum(PP_TS) / 2, rel=1e-5)  # median of two
    assert pp.decode_tok_s is None and pp.prompt_tokens == 16 and pp.new_tokens == 0
    assert tg.decode_tok_s_samples == pytest.approx(TG_TS, rel=1e-5)
    assert tg.decode_tok_s == pytest.approx(sum(TG_TS) / 2, rel=1e-5)
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
    assert b[0].prefill_tok_s_samples == pytest.approx(JSONL_PP_TS, rel=1e-5)


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
    ("empty.json", "", "is empty: expected llama-bench"),
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
    assert err.count("\n") == 1 and err.startswith(f"error: {f}") and where in err, err
    assert not (tmp_path / "store").exists()  # nothing written


@pytest.mark.parametrize("text, where", [
    ("", "is empty: expected a qai-hub-models perf.yaml"),
    ("precisions: [\n", "malformed YAML at line 2"),
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
     "llm_metrics[0].tokens_per_second: expected a finite number"),
])
def test_malformed_qai_hub_models(tmp_path, capsys, text, where):
    f = _bad(tmp_path, "perf.yaml", text)
    code, out, err = run_main(["import", "qai-hub-models", str(f)], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {f}") and where in err, err


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
    assert list(rows[0]["prefill_tok_s_samples"]) == pytest.approx(PP_TS, rel=1e-5)
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


# --- hostile files: one `error:` line, exit code 2, never a hang or a traceback -------------

FORMATS = ("llama-bench", "qai-hub-models", "ai-hub-profile")
TEST = {"build_commit": "0c1e570", "build_number": 1, "cpu_info": "AMD EPYC", "gpu_info": "",
        "backends": "CPU", "model_filename": "m.gguf", "model_type": "gemma3 270M Q4_K - Medium",
        "model_size": 100, "n_threads": 2, "n_prompt": 16, "n_gen": 0,
        "test_time": "2026-11-24T08:03:00Z", "samples_ns": [100000000, 200000000],
        "samples_ts": [160.0, 80.0]}


def one_error(capsys, fmt, f, *more):
    code, out, err = run_main(["import", fmt, str(f) if not isinstance(f, bytes) else
                               os.fsdecode(f), "--dry-run", *more], capsys)
    assert code == 2, (code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("fmt", FORMATS)
def test_fifo_is_refused_not_read(tmp_path, capsys, fmt):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is not a regular file" in one_error(capsys, fmt, fifo)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path, what", [("/dev/zero", "is not a regular file"),
                                        (".", "is a directory")])
def test_devices_and_directories_are_refused(capsys, fmt, path, what):
    assert what in one_error(capsys, fmt, path)


@pytest.mark.parametrize("fmt, cap", [("llama-bench", files.MAX_JSON_BYTES),
                                      ("ai-hub-profile", files.MAX_JSON_BYTES),
                                      ("qai-hub-models", files.MAX_YAML_BYTES)])
def test_files_over_the_cap_are_refused(tmp_path, capsys, fmt, cap):
    big = tmp_path / "big"
    with big.open("wb") as fh:  # sparse: no disk used
        fh.truncate(cap + 1)
    assert f"at most {cap:,} bytes" in one_error(capsys, fmt, big)


def _jsonl(tmp_path, name, **change):
    t = {**TEST, **change}
    f = tmp_path / name
    f.write_text(json.dumps({k: v for k, v in t.items() if v is not ...}) + "\n")
    return f


@pytest.mark.parametrize("change, where", [
    ({"samples_ts": [float("nan"), 1.0]}, "NaN is not a number"),
    ({"samples_ts": [-5, 0]}, "'samples_ts' must be a list of finite positive numbers"),
    ({"samples_ts": [1000, 1000]}, "samples_ts[0] 1000 contradicts samples_ns[0]"),
    ({"samples_ts": [float("inf"), 1.0]}, "Infinity is not a number"),
    ({"samples_ns": [0, 5]}, "'samples_ns' must be a non-empty list of positive integers"),
    ({"samples_ns": [-5, 5]}, "'samples_ns' must be a non-empty list of positive integers"),
    ({"samples_ns": [10**400, 5], "samples_ts": ...}, "'samples_ns' must be a non-empty list"),
    ({"model_size": -5}, "'model_size' -5 is out of range"),
    ({"n_prompt": 10**40}, "is out of range (0 to 2147483648)"),
    ({"backends": {"a": 1}}, "'backends' must be a str"),
    ({"cpu_info": {"x": 1}}, "'cpu_info' must be a str"),
    ({"build_commit": {"x": 1}}, "'build_commit' must be a str"),
    ({"test_time": 12}, "'test_time' must be a str"),
    ({"test_time": "9999-99-99"}, "'test_time' '9999-99-99' is not an ISO time"),
])
def test_llama_bench_bad_figures_and_fields(tmp_path, capsys, change, where):
    f = _jsonl(tmp_path, "t.jsonl", **change)
    err = one_error(capsys, "llama-bench", f)
    assert err.startswith(f"error: {f}: line 1: ") and where in err, err


@pytest.mark.parametrize("text, where", [
    ('{"samples_ts": 1e999}', "1e999 is not a finite number"),
    ('{"n_prompt": ' + "9" * 5000 + "}", "a value cannot be read"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nests more than 32 levels"),
])
def test_llama_bench_huge_and_deep_values(tmp_path, capsys, text, where):
    for name, body in (("t.jsonl", text), ("t.json", f"[\n{text}\n]")):
        f = tmp_path / name
        f.write_text(body + "\n")
        err = one_error(capsys, "llama-bench", f)
        assert where in err and ": line " in err, err


def test_llama_bench_rates_are_recomputed_and_noted(tmp_path):
    (row,) = llama_bench.read(_jsonl(tmp_path, "ok.jsonl", samples_ts=...))
    assert row.prefill_tok_s_samples == [160.0, 80.0]
    assert "decode tok/s counts every generated token" in row.message


def test_llama_bench_control_characters_are_escaped(tmp_path, capsys):
    f = _jsonl(tmp_path, "ctrl.jsonl", model_filename="evil\x1b[31mred\nnewline.gguf",
               model_type="x\x00y", cpu_info="A\nB")
    (row,) = llama_bench.read(f)
    for text in (row.model, row.precision, row.cpu_model, row.source):
        assert not any(ord(c) < 32 for c in text), text
    assert row.model == "evil\\x1b[31mred\\x0anewline" and row.precision == "x\\x00y"
    bad = tmp_path / "bad\nname.jsonl"
    bad.write_text("{}\n")
    assert "bad\\x0aname.jsonl" in one_error(capsys, "llama-bench", bad)


def test_non_utf8_file_names_are_shown_escaped(tmp_path, capsys):
    lb = os.path.join(os.fsencode(tmp_path), b"bad\xffname.jsonl")
    with open(lb, "wb") as fh:
        fh.write(BENCH_JSONL.read_bytes())
    code, out, err = run_main(["import", "llama-bench", os.fsdecode(lb), "--format", "json"],
                              capsys)
    assert code == 0, err
    assert "bad\\xffname.jsonl" in json.loads(out)[0]["source"]
    hub = os.path.join(os.fsencode(tmp_path), b"gem\xffma_j1abc_results.json")
    with open(hub, "wb") as fh:
        fh.write((Path(__file__).parent / "data" / "qai_hub" / "llm_split.json").read_bytes())
    code, out, err = run_main(["import", "ai-hub-profile", os.fsdecode(hub)], capsys)
    assert code == 0, err
    code, out, _ = run_main(["sql", "SELECT model, source FROM runs WHERE framework = "
                             "'qai-hub'", "--format", "json"], capsys)
    assert json.loads(out)[0]["model"] == "gem\\xffma"
    empty = os.path.join(os.fsencode(tmp_path), b"e\xff.json")
    open(empty, "wb").close()
    assert "e\\xff.json is empty" in one_error(capsys, "llama-bench", empty)


def test_llama_bench_json_array_is_read_in_linear_time(tmp_path):
    import time

    tests = [{**TEST, "n_threads": i % 64 + 1} for i in range(20_000)]
    f = tmp_path / "many.json"
    f.write_text("[\n" + ",\n".join(json.dumps(t, indent=2) for t in tests) + "\n]\n")
    start = time.perf_counter()
    rows = llama_bench.read(f)
    assert len(rows) == 20_000 and time.perf_counter() - start < 30
    bad = tmp_path / "bad.json"
    bad.write_text("[\n" + ",\n".join(json.dumps(t) for t in tests[:3]) + ",\n{\"x\": NaN}\n]")
    with pytest.raises(ConfigError, match=r"line 5: not valid JSON \(NaN"):
        llama_bench.read(bad)


def test_machines_of_other_computers_keep_their_own_rows(tmp_path):
    a = llama_bench.read(BENCH_JSONL)
    b = llama_bench.read(_copy(tmp_path, "m2.jsonl", BENCH_JSONL.read_text().replace(
        '"cpu_info": "AMD EPYC"', '"cpu_info": "Apple M2 Max"')))
    assert {r.machine_id for r in a}.isdisjoint(r.machine_id for r in b)
    assert {r.run_key for r in a}.isdisjoint(r.run_key for r in b)
    assert all(r.machine_id.startswith("elsewhere:") for r in a + b)


def _copy(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


# qai-hub-models: YAML bombs, wheel bombs, bad figures

BOMB = "a: &a [" + ", ".join(["x"] * 10) + "]\n" + "".join(
    f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n"
    for p, c in zip("abcdefgh", "bcdefghi"))
ALIASED = """\
d: &d {genie: {llm_metrics: [{context_length: 4096, tokens_per_second: 9.0,
        time_to_first_token_range_milliseconds: {min: 1.0, max: 32.0}}]}}
m: &m {performance_metrics: {""" + ", ".join(f"D{i}: *d" for i in range(400)) + """}}
p: &p {components: {""" + ", ".join(f"M{i}: *m" for i in range(400)) + """}}
precisions: {w4: *p, w8: *p}
"""


def _perf(figure: str) -> str:
    return ("precisions:\n  w4a16:\n    components:\n      M:\n        performance_metrics:\n"
            "          Dev:\n            genie:\n              llm_metrics:\n"
            "              - context_length: 4096\n" + figure)


@pytest.mark.parametrize("text, where", [
    (BOMB + "precisions: *i\n", "expands to more than 100,000 values"),
    (ALIASED, "expands to more than 100,000 values"),
    ("a: &a [*a]\nprecisions: {}\n", "alias refers to itself"),
    ("[" * 5000 + "]" * 5000, "nested"),
    ("precisions: " + "9" * 5000 + "\n", "a value cannot be read"),
    (_perf("                tokens_per_second: .inf\n"
           "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n"),
     "tokens_per_second: expected a finite number of at least 0, got inf"),
    (_perf("                tokens_per_second: .nan\n"
           "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n"),
     "tokens_per_second: expected a finite number"),
    (_perf("                tokens_per_second: -3\n"
           "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n"),
     "tokens_per_second: expected a finite number of at least 0, got -3"),
    (_perf("                tokens_per_second: 9\n"
           "                time_to_first_token_range_milliseconds: {min: -1, max: 32}\n"),
     "min: expected a finite number of at least 0, got -1"),
    (_perf("                tokens_per_second: 9\n                prefill_tokens_per_second: "
           + "1" * 400 + "\n"
           "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n"),
     "prefill_tokens_per_second: expected a finite number"),
    (_perf("                tokens_per_second: 9\n                desired_compute_unit: {a: 1}\n"
           "                time_to_first_token_range_milliseconds: {min: 1, max: 32}\n"),
     "desired_compute_unit: expected a name"),
])
def test_qai_hub_models_hostile_yaml(tmp_path, capsys, text, where):
    f = _copy(tmp_path, "perf.yaml", text)
    err = one_error(capsys, "qai-hub-models", f)
    assert err.startswith(f"error: {f}: ") and where in err, err


def test_qai_hub_models_devices_yaml_bomb_is_refused(tmp_path, capsys):
    root = tmp_path / "qai_hub_models"
    (root / "models" / "x").mkdir(parents=True)
    perf = root / "models" / "x" / "perf.yaml"
    perf.write_text(PERF.read_text())
    (root / "devices_and_chipsets.yaml").write_text(BOMB + "devices: *i\n")
    assert "devices_and_chipsets.yaml): the YAML expands" in one_error(
        capsys, "qai-hub-models", perf)


def test_qai_hub_models_wheel_members_are_capped_before_reading(tmp_path, capsys):
    whl = tmp_path / "bomb.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("qai_hub_models/models/x/perf.yaml",
                   "llm_metrics: " + " " * (files.MAX_YAML_BYTES + 10))
    err = one_error(capsys, "qai-hub-models", whl)
    assert "qai_hub_models/models/x/perf.yaml is" in err and "uncompressed" in err
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("qai_hub_models/models/x/perf.yaml", BOMB + "precisions: *i\n# llm_metrics\n")
    assert "expands to more than" in one_error(capsys, "qai-hub-models", whl)


def test_qai_hub_models_rows_say_what_prefill_is():
    row = by(qai_hub_models.read(PERF), precision="w4a16", device="Samsung Galaxy S25",
             profile_path="genie")
    assert "prefill_tok_s is Qualcomm's own figure, not prompt / TTFT" in row.message
    assert "ttft_ms for a 128-token prompt" in row.message
    assert "not prompt_tokens / ttft_ms" in json.loads(row.runtime_settings)["prefill_tok_s"]
