"""The KV-cache type axis as the planner sees it: suite values, skipped cells, identity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conftest import run_main
from edgebench.errors import ConfigError
from edgebench.harness.registry import FRAMEWORKS, KV_CACHE_TYPES, kv_cache_problem
from edgebench.suites.spec import Suite


def _plan(model: Path, **axes):
    from edgebench import api

    axes.setdefault("precisions", ["q8_0"])
    return api.plan(Suite(name="s", models=[str(model)], **axes), Path("cache"))


def test_default_is_the_runtimes_own():
    assert Suite(name="s").kv_cache == ("default",)


@pytest.mark.parametrize(("value", "expected"), [
    (["f16", "q8_0", "q4_0"], ("f16", "q8_0", "q4_0")), ("u8", ("u8",)),
    (["default", "8bit"], ("default", "8bit")),
])
def test_kv_cache_values_accepted(value, expected):
    assert Suite(name="s", kv_cache=value).kv_cache == expected


@pytest.mark.parametrize(("value", "message"), [
    ("q8", "unknown KV-cache type 'q8'"),
    ("Q8_0", "unknown KV-cache type 'Q8_0' (did you mean q8_0?)"),
    (3, "expected a KV-cache type"),
])
def test_kv_cache_values_refused_by_key(value, message):
    with pytest.raises(ConfigError, match=r"^<defaults>: kv_cache\[0\]: ") as e:
        Suite(name="s", kv_cache=value)
    assert message in str(e.value)


def test_every_runtime_type_is_known_to_the_suite():
    for spec in FRAMEWORKS.values():
        assert set(spec.kv_cache_types) <= set(KV_CACHE_TYPES)


@pytest.mark.parametrize(("framework", "kv", "expected"), [
    ("llama-cpp", None, None),
    ("llama-cpp", "default", None),
    ("llama-cpp", "q8_0", None),
    ("llama-cpp", "u8", "llama-cpp has no KV-cache type u8 (it has: f32, f16, bf16, q8_0, "),
    ("openvino", "q4_0", "openvino has no KV-cache type q4_0 (it has: "),
    ("ort-genai", "f16", "ort-genai has no KV-cache type f16: onnxruntime-genai allocates"),
])
def test_kv_cache_problem_lists_what_the_runtime_has(framework, kv, expected):
    got = kv_cache_problem(FRAMEWORKS[framework], kv)
    assert got == expected if expected is None else got.startswith(expected)


def test_each_type_is_a_run_of_its_own_and_default_hashes_as_before(tiny_gguf):
    runs = _plan(tiny_gguf, kv_cache=["default", "f16", "q8_0"], prompt_tokens=[8],
                 new_tokens=[4])
    assert [r.kv_cache for r in runs] == [None, "f16", "q8_0"]
    assert len({r.run_key for r in runs}) == 3 and not any(r.skip_reason for r in runs)
    plain = _plan(tiny_gguf, prompt_tokens=[8], new_tokens=[4])[0]
    assert runs[0].run_key == plain.run_key  # the axis at its default: the key of before
    assert dataclasses.replace(plain, kv_cache="f16").run_key == runs[1].run_key


def test_a_type_one_runtime_lacks_is_a_skipped_row(tiny_gguf):
    runs = _plan(tiny_gguf, frameworks=["llama-cpp", "openvino"], kv_cache=["q8_0"],
                 prompt_tokens=[8], new_tokens=[4], precisions=["q8_0", "int8"])
    by = {(r.framework, r.precision): r for r in runs}
    ov = by[("openvino", "int8")]
    assert ov.skip_reason.startswith("openvino has no KV-cache type q8_0 (it has: f32, f16")
    assert by[("llama-cpp", "q8_0")].skip_reason is None


def test_a_type_no_runtime_of_the_suite_has_is_refused(tiny_gguf):
    with pytest.raises(ConfigError, match="kv_cache u8: llama-cpp has no KV-cache type u8 "
                                          r"\(it has: f32, f16"):
        _plan(tiny_gguf, kv_cache=["u8"], prompt_tokens=[8], new_tokens=[4])
    with pytest.raises(ConfigError, match="kv_cache f16: ort-genai has no KV-cache type f16"):
        _plan(tiny_gguf, frameworks=["ort-genai"], precisions=["int4"], kv_cache=["f16"])


def test_include_takes_kv_cache(tiny_gguf):
    s = Suite(name="s", include=[{"kv_cache": "q4_0", "framework": "llama-cpp"}])
    assert s.include == ({"kv_cache": "q4_0", "framework": "llama-cpp"},)
    with pytest.raises(ConfigError, match=r"include\[0\]\.kv_cache: unknown KV-cache type"):
        Suite(name="s", include=[{"kv_cache": "q9"}])


def test_cli_kv_cache_flag(tiny_gguf, capsys):
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--precision", "q8_0",
                               "--prompt-tokens", "8", "--new-tokens", "4", "--kv-cache", "f16",
                               "--kv-cache", "q4_0", "--format", "json"], capsys)
    assert code == 0, err
    assert sorted(r["kv_cache"] for r in json.loads(out)) == ["f16", "q4_0"]
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--kv-cache", "u4"], capsys)
    assert code == 2 and "llama-cpp has no KV-cache type u4" in err
    assert "Traceback" not in err


def test_options_that_set_the_kv_type_beside_the_axis_are_refused(tiny_gguf):
    with pytest.raises(ConfigError, match=r"options\.llama-cpp\.type_k and kv_cache q8_0 both "
                                          "set llama-cpp's KV-cache type: set it with kv_cache"):
        _plan(tiny_gguf, kv_cache=["q8_0"], options={"llama-cpp": {"type_k": 8}})
    # without an imposed type the option passes through as before
    (run,) = _plan(tiny_gguf, options={"llama-cpp": {"type_k": 8}}, prompt_tokens=[8],
                   new_tokens=[4])
    assert run.skip_reason is None
