"""Suite validation (issue 12): every bad suite is one ConfigError line naming the file, the key
with its path and what was expected; never a traceback, never a sweep with nothing to run."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from conftest import run_main
from edgebench.errors import ConfigError
from edgebench.suites.expand import cells
from edgebench.suites.spec import (
    AXES,
    MAX_CELLS,
    MAX_SUITE_BYTES,
    Suite,
    load_suite,
    parse_yaml,
    suite_from_mapping,
)

BAD = [
    # axes and settings of the wrong type
    ("frameworks: null\n", "frameworks: expected a framework name or a list of them, got null"),
    ("models: [123]\n", "models[0]: expected a model name or path, got 123"),
    ("models: ['']\n", "models[0]: expected a model name or path, got ''"),
    ("precisions: [1.5]\n", "precisions[0]: expected a precision name, got 1.5"),
    ("devices: [{a: 1}]\n", "devices[0]: expected a device name, got a mapping"),
    ("options: {llama-cpp: 5}\n",
     "options.llama-cpp: expected a mapping of settings (e.g. {n_ctx: 512}), got 5"),
    ("options: [1]\n", "options: expected a mapping of framework to its settings, got a list"),
    ("options: {llamacpp: {n_ctx: 8}}\n", "options: unknown framework 'llamacpp' (did you mean "
                                          "llama-cpp?)"),
    ("options: {llama-cpp: {n_ctx: 2024-01-01}}\n",
     "options.llama-cpp.n_ctx: expected a number, text, true/false, null, a list or a mapping, "
     "got a date"),
    ("options: {llama-cpp: {n_ctx: .nan}}\n", "options.llama-cpp.n_ctx: expected a finite number"),
    ("name: 123\n", "name: expected a name, got 123"),
    ("description: [a]\n", "description: expected a text, got a list"),
    ("quality: yes please\n", "quality: expected true or false, got 'yes please'"),
    ("repetitions: true\n", "repetitions: expected a positive integer, got true"),
    ("repetitions: 0\n", "repetitions: expected a positive integer, got 0"),
    ("warmup: true\n", "warmup: expected an integer of 0 or more, got true"),
    ("warmup: -1\n", "warmup: expected an integer of 0 or more, got -1"),
    ("quality_chunks: 0\n", "quality_chunks: expected a positive integer, got 0"),
    # sane bounds: values land in int64 columns and drive loops and timers
    ("warmup: 99999999999999999999999\n",
     "warmup: expected an integer from 0 to 10,000, got 99999999999999999999999"),
    ("repetitions: 10001\n", "repetitions: expected a positive integer up to 10,000, got 10001"),
    ("prompt_tokens: 10000000000000000000000\n",
     "prompt_tokens[0]: expected a positive integer up to 1,048,576, got 10000000000000000000000"),
    ("new_tokens: [8, 1048577]\n",
     "new_tokens[1]: expected a positive integer up to 1,048,576, got 1048577"),
    ("threads: [4097]\n",
     "threads[0]: expected a positive integer up to 4,096 or 'auto', got 4097"),
    ("threads: [abc]\n", "threads[0]: expected a positive integer or 'auto', got 'abc'"),
    ("threads: ['4']\n", "threads[0]: expected a positive integer or 'auto', got '4'"),
    ("timeout_s: .nan\n", "timeout_s: expected a number of seconds above 0 and at most 604800, "
                          "got nan"),
    ("timeout_s: .inf\n", "timeout_s: expected a number of seconds above 0"),
    ("timeout_s: -5\n", "timeout_s: expected a number of seconds above 0"),
    ("timeout_s: 0\n", "timeout_s: expected a number of seconds above 0"),
    ("timeout_s: 1e400\n", "timeout_s: expected a number of seconds above 0"),
    ("timeout_s: '60'\n", "timeout_s: expected a number of seconds above 0 and at most 604800, "
                          "got '60'"),
    ("cooldown_s: .nan\n", "cooldown_s: expected a number of seconds from 0 to 3600, got nan"),
    ("cooldown_s: -1\n", "cooldown_s: expected a number of seconds from 0 to 3600, got -1"),
    # include / exclude entries: each value checked like its axis, unknown keys refused
    ("include: [{framework: nope}]\n", "include[0].framework: unknown framework 'nope'"),
    ("include: [{framework: llamacpp}]\n", "include[0].framework: unknown framework 'llamacpp' "
                                           "(did you mean llama-cpp?)"),
    ("include: [{precision: q4_k_m}, {precision: fp32}, {threads: abc}]\n",
     "include[2].threads: expected a positive integer or 'auto', got 'abc'"),
    ("include: [{prompt_tokens: -5}]\n",
     "include[0].prompt_tokens: expected a positive integer, got -5"),
    ("include: [{framework: null}]\n", "include[0].framework: expected a framework name, got null"),
    ("include: [{framework: [mlx, openvino]}]\n",
     "include[0].framework: expected a framework name, got a list"),
    ("exclude: [{device: tpu}]\n", "exclude[0].device: unknown device 'tpu'"),
    ("exclude: [{bogus: 1}]\n", "exclude[0]: unknown key 'bogus'; known: model, framework"),
    ("include: [{frameworks: mlx}]\n",
     "include[0]: unknown key 'frameworks' (did you mean framework?)"),
    ("include: [framework]\n", "include[0]: expected a mapping of axis values"),
    ("include: 5\n", "include: expected a list of mappings, got 5"),
    ("exclude: [{}]\n", "exclude[0] is empty"),
    # several problems: the first, and how many more
    ("models: [1, 2]\nrepetitions: 0\n",
     "models[0]: expected a model name or path, got 1 (and 2 more)"),
    # unknown top-level keys keep their did-you-mean
    ("framewrks: [llama-cpp]\n", "unknown key 'framewrks' (did you mean frameworks?)"),
    ("source: x\n", "unknown key 'source'"),
    ("1: x\n", "unknown key 1"),
    # text that is valid UTF-8 YAML but decodes to a lone surrogate: nothing can store it
    ('name: "x\\ud800"\n', "name: expected a name in valid UTF-8 text, got 'x\\ud800'"),
    ('description: "\\udfff"\n', "description: expected a text in valid UTF-8 text"),
    ('models: ["m\\udcff.gguf"]\n',
     "models[0]: expected a model name or path in valid UTF-8 text, got 'm\\udcff.gguf'"),
    ('frameworks: ["llama-cpp\\ud800"]\n', "frameworks[0]: expected a framework name in valid"),
    ('include: [{model: "\\ud800"}]\n', "include[0].model: expected a model name or path in"),
    ('options: {llama-cpp: {n_ctx: "\\ud800"}}\n',
     "options.llama-cpp.n_ctx: expected a text in valid UTF-8 text"),
    ('options: {llama-cpp: {type_k: ["\\ud800"]}}\n', "options.llama-cpp.type_k[0]: expected"),
    ('options: {openvino: {"\\ud800": 1}}\n',
     "options.openvino: expected a setting name in valid UTF-8 text"),
    ('options: {"\\ud800": {}}\n', "options: expected a framework name in valid UTF-8 text"),
    # option names each runner takes are known without importing a runtime (item 14)
    ("options: {llama-cpp: {bogus_option: 1}}\n",
     "options.llama-cpp: unknown llama-cpp option 'bogus_option'; known: n_ctx, n_batch"),
    ("options: {llama-cpp: {nctx: 512}}\n",
     "options.llama-cpp: unknown llama-cpp option 'nctx' (did you mean n_ctx?); known:"),
    ("options: {ort-genai: {intra_op_threads: 2}}\n",
     "unknown ort-genai option 'intra_op_threads' (did you mean intra_op_num_threads?)"),
    ("options: {mlx: {step: 4}}\n", "options.mlx: unknown mlx option 'step'; known: "
                                    "prefill_step_size, compute_dtype"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[t.strip()[:40] for t, _ in BAD])
def test_bad_values_are_one_line_naming_file_key_and_expectation(tmp_path, text, message):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_suite(str(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}: "), msg
    assert message in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("axis", AXES)
def test_an_empty_axis_is_nothing_to_run(tmp_path, axis):
    path = tmp_path / "suite.yaml"
    path.write_text(f"{axis}: []\n")
    with pytest.raises(ConfigError, match=f"suite.yaml: {axis} is empty: nothing to run"):
        load_suite(str(path))


def test_excludes_that_remove_every_run_are_refused():
    s = Suite(name="t", precisions=("q4_k_m", "q8_0"),
              exclude=({"precision": "q4_k_m"}, {"precision": "q8_0"}))
    with pytest.raises(ConfigError, match="nothing to run: the excludes remove all 2 runs"):
        cells(s)


def test_good_values_are_normalised(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("threads: [auto, 2]\nprompt_tokens: 8\ntimeout_s: 60\ncooldown_s: 0\n"
                    "include: {framework: mlx, precision: 4bit}\n"
                    "options: {llama-cpp: {n_ctx: 512}, openvino: {FLAGS: [a, 1.5, null]}}\n")
    s = load_suite(str(path))
    assert s.threads == ("auto", 2) and s.prompt_tokens == (8,)
    assert s.timeout_s == 60.0 and isinstance(s.timeout_s, float)
    assert s.include == ({"framework": "mlx", "precision": "4bit"},)
    assert s.options == {"llama-cpp": {"n_ctx": 512}, "openvino": {"FLAGS": ["a", 1.5, None]}}


def test_every_way_of_making_a_suite_is_validated():
    with pytest.raises(ConfigError, match="<defaults>: threads\\[0\\]"):
        Suite(name="t", threads=(0,))
    s = Suite(name="t")
    with pytest.raises(ConfigError, match="include\\[0\\].threads"):
        dataclasses.replace(s, include=({"threads": "abc"},))
    with pytest.raises(ConfigError, match="x.yaml: a suite must be a YAML mapping, got a list"):
        suite_from_mapping([1], "x.yaml")


@pytest.mark.parametrize("axes, flag, message", [
    (dict(prompt_tokens=[-3]), "--prompt-tokens", "expected a positive integer, got -3"),
    (dict(new_tokens=[8, 0]), "--new-tokens", "expected a positive integer, got 0"),
    (dict(repetitions=0), "--repetitions", "expected a positive integer, got 0"),
    (dict(warmup=-1), "--warmup", "expected an integer of 0 or more, got -1"),
    (dict(threads=[5000]), "--threads", "up to 4,096 or 'auto', got 5000"),
    (dict(frameworks=["llamacpp"]), "--framework", "did you mean llama-cpp?"),
    (dict(models=[""]), "--model", "expected a model name or path, got ''"),
])
def test_override_names_the_flag(axes, flag, message):
    with pytest.raises(ConfigError) as e:
        Suite(name="t").override(**axes)
    assert str(e.value).startswith(f"{flag}: ") and message in str(e.value), str(e.value)


def test_planned_cells_are_bounded_before_expanding(tmp_path):
    models = ", ".join(f"m{i}" for i in range(500))
    tokens = ", ".join(str(i) for i in range(1, 301))
    path = tmp_path / "big.yaml"
    path.write_text(f"models: [{models}]\nprompt_tokens: [{tokens}]\n")
    with pytest.raises(ConfigError, match=f"plans 150,000 runs .*at most {MAX_CELLS:,}"):
        load_suite(str(path))
    with pytest.raises(ConfigError, match="plans 100,500 runs"):
        Suite(name="t", models=tuple(f"m{i}" for i in range(500)),
              prompt_tokens=tuple(range(1, 201)), include=({"prompt_tokens": 999},))


# --- the file itself ---------------------------------------------------------------------------

def test_files_that_are_no_suite(tmp_path):
    cases = {
        "empty.yaml": (b"", "is empty"),
        "comments.yaml": (b"# nothing here\n", "is empty"),
        "latin1.yaml": ("name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        "list.yaml": (b"- a\n- b\n", "a suite must be a YAML mapping, got a list"),
        "scalar.yaml": (b"just words\n", "a suite must be a YAML mapping, got 'just words'"),
        "two.yaml": (b"name: a\n---\nname: b\n", "malformed YAML"),
        "digits.yaml": (b"repetitions: " + b"9" * 5000 + b"\n", "a value cannot be read"),
        "badday.yaml": (b"options: {mlx: {d: 2024-02-30}}\n", "a value cannot be read"),
        "deep.yaml": (b"[" * 3000 + b"]" * 3000, "nested"),
        "deep2.yaml": (b"options: {mlx: {a: " + b"[" * 100 + b"]" * 100 + b"}}",
                       "nested more than 64 levels deep"),
        "big.yaml": (b"# " + b"x" * MAX_SUITE_BYTES + b"\n", "a suite file is at most"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError) as e:
            load_suite(str(tmp_path / name))
        assert message in str(e.value) and name in str(e.value), (name, str(e.value))
        assert "\n" not in str(e.value)


def test_paths_that_are_not_files(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="dir.yaml is a directory, not a YAML file"):
        load_suite(str(tmp_path / "dir.yaml"))
    with pytest.raises(ConfigError, match="/dev/null is not a regular file"):
        load_suite("/dev/null")
    os.mkfifo(tmp_path / "fifo.yaml")  # reading it would block forever
    with pytest.raises(ConfigError, match="fifo.yaml is not a regular file"):
        load_suite(str(tmp_path / "fifo.yaml"))
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_suite(str(tmp_path / "nope.yaml"))


def _laughs(levels: int, merge: bool) -> str:
    """A "billion laughs": each anchor repeats the one before it nine times."""
    lines = ["a0: &a0 {k: v}" if merge else "a0: &a0 [x]"]
    for i in range(1, levels + 1):
        refs = ", ".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} {{<<: [{refs}]}}" if merge else f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\nmodels: *a" + str(levels) + "\n"


@pytest.mark.parametrize("merge", [False, True])
def test_alias_bombs_are_refused_quickly(tmp_path, merge):
    # Merge keys copy what they merge: 8 levels of nine make PyYAML build 9^8 = 43M pairs,
    # minutes and gigabytes. The expanded size is counted on the node graph first.
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs(8, merge))
    start = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        load_suite(str(path))
    assert time.monotonic() - start < 2


def test_small_aliases_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("models: &m [gemma-3-270m]\ninclude:\n  - &inc {framework: mlx, "
                    "precision: 4bit}\n  - {<<: *inc, precision: 8bit}\n")
    s = load_suite(str(path))
    assert s.include == ({"framework": "mlx", "precision": "4bit"},
                         {"framework": "mlx", "precision": "8bit"})


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="refers to itself"):
        parse_yaml("a: &a [1, *a]\n", "r.yaml")


# --- through the CLI: exit 2, one error line, no traceback ---------------------------------------

def _one_error_line(code, err, *expected):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("text, message", [
    ("models: []\n", "models is empty: nothing to run"),
    ("include: [{threads: abc}]\n", "include[0].threads: expected a positive integer or 'auto'"),
    ("include: [{prompt_tokens: -5}]\n", "include[0].prompt_tokens"),
    ("timeout_s: .inf\n", "timeout_s: expected a number of seconds above 0"),
    ("precisions: [q4_k_m]\nexclude: [{precision: q4_k_m}]\n", "nothing to run"),
])
@pytest.mark.parametrize("command", ["plan", "run"])
def test_cli_bad_suite_file(tmp_path, capsys, command, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run_main([command, str(path)], capsys)
    _one_error_line(code, err, str(path), message)
    assert out == ""


@pytest.mark.parametrize("args, message", [
    (["plan", "--prompt-tokens", "-3"], "--prompt-tokens: expected a positive integer, got -3"),
    (["run", "--repetitions", "0"], "--repetitions: expected a positive integer, got 0"),
    (["plan", "--warmup", "-1"], "--warmup: expected an integer of 0 or more, got -1"),
    (["run", "--new-tokens", "2000000"], "--new-tokens: expected a positive integer up to"),
    (["plan", "/dev/null"], "/dev/null is not a regular file"),
    (["plan", "."], "is a directory"),
])
def test_cli_bad_flags_and_paths(capsys, args, message):
    code, out, err = run_main(args, capsys)
    _one_error_line(code, err, message)


def test_known_option_names_and_openvino_properties_pass(tmp_path):
    """Every name a runner takes passes; OpenVINO's options are device properties (any)."""
    from edgebench.harness.registry import FRAMEWORKS

    s = Suite(name="t", options={fw: {n: 1 for n in spec.options}
                                 for fw, spec in FRAMEWORKS.items() if spec.options})
    assert set(s.options) == {"llama-cpp", "ort-genai", "mlx", "qnn", "qai-hub"}
    assert Suite(name="t", options={"openvino": {"PERFORMANCE_HINT": "LATENCY"}}).options


def test_runners_take_the_option_names_the_planner_checks():
    from edgebench.harness.registry import FRAMEWORKS
    from edgebench.harness.runners import llama_cpp, mlx_lm, ort_genai, qnn

    assert llama_cpp.OPTIONS == FRAMEWORKS["llama-cpp"].options
    assert mlx_lm.OPTIONS == FRAMEWORKS["mlx"].options
    assert ort_genai.OPTIONS == FRAMEWORKS["ort-genai"].options
    assert qnn.OPTIONS == FRAMEWORKS["qnn"].options
    assert FRAMEWORKS["openvino"].options is None


@pytest.mark.parametrize("command", ["plan", "run"])
def test_cli_unknown_option_is_one_line_before_anything_runs(tmp_path, capsys, monkeypatch,
                                                            command):
    from edgebench import api

    monkeypatch.setattr(api, "run_isolated", lambda *a, **k: pytest.fail("measured"))
    path = tmp_path / "s.yaml"
    path.write_text("options: {llama-cpp: {bogus_option: 1}}\n")
    code, out, err = run_main([command, str(path)], capsys)
    _one_error_line(code, err, "unknown llama-cpp option 'bogus_option'", "known: n_ctx")


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", "1e400", "4097"])
def test_cli_threads_flag_speaks_like_the_suite(capsys, value):
    """``--threads abc`` and ``--threads -1`` get the same kind of line: the validator's."""
    code, out, err = run_main(["plan", "--threads", value], capsys)
    _one_error_line(code, err, "--threads: expected a positive integer", "or 'auto', got ")
    assert "takes a number" not in err


def test_cli_model_flag_not_utf8(tmp_path, capsys):
    """A file name's undecodable byte arrives as a lone surrogate: refused by name."""
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/m\xff.gguf")
    code, out, err = run_main(["plan", "--model", bad], capsys)
    _one_error_line(code, err, "--model: expected a model name or path in valid UTF-8 text")


def test_keys_left_empty_mean_none_where_that_is_harmless(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("description:\noptions:\ninclude:\nexclude:\n")
    s = load_suite(str(path))
    assert (s.description, s.options, s.include, s.exclude) == ("", {}, (), ())


def test_override_of_entries_keeps_their_path():
    with pytest.raises(ConfigError, match="with command-line flags: include\\[1\\].threads: "
                                          "expected a positive integer or 'auto', got 'abc'"):
        Suite(name="t").override(include=({"threads": 2}, {"threads": "abc"}))
