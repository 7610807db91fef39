"""The KV-cache type axis on the real runtimes: each runner imposes the type it is given,
records what it applied, and (llama.cpp, MLX) reports the KV cache's size.

llama.cpp runs on Gemma 3 270M (18 layers x 1 KV head x 256; an iSWA model: two caches, both
n_ctx cells with llama-cpp-python's swa_full default), OpenVINO on its int4 IR from the user
cache, MLX on the tiny Gemma 3 (its CPU build is slow)."""

import importlib.util
import json

import pytest

from conftest import needs_llama
from edgebench.errors import ConfigError
from edgebench.harness import registry

HAS_OV = all(importlib.util.find_spec(m) for m in ("openvino_genai", "torch"))
HAS_MLX = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "mlx", "mlx_lm"))


# --------------------------------------------------------------------------- refusals

def test_runner_type_tables_match_the_registry():
    from edgebench.harness.runners.llama_cpp import KV_TYPES
    from edgebench.harness.runners.mlx_lm import KV_BITS

    assert tuple(KV_TYPES) == registry.FRAMEWORKS["llama-cpp"].kv_cache_types
    assert tuple(KV_BITS) == registry.FRAMEWORKS["mlx"].kv_cache_types


def test_llama_cpp_refuses_an_unknown_type_listing_its_own(tiny_gguf):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    with pytest.raises(ConfigError, match=r"^llama-cpp has no KV-cache type q3_k \(it has: "
                                          r"f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, "
                                          r"q5_1\)$"):
        LlamaCppRunner().load(tiny_gguf, "cpu", 2, {}, 64, kv_cache="q3_k")


@pytest.mark.parametrize("options", [{"type_k": 1}, {"type_v": 2}, {"flash_attn": False}])
def test_llama_cpp_refuses_options_that_contradict_the_type(tiny_gguf, options):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    (key, value), = options.items()
    with pytest.raises(ConfigError, match=f"option {key}={value!r} conflicts with kv_cache "
                                          "q8_0"):
        LlamaCppRunner().load(tiny_gguf, "cpu", 2, options, 64, kv_cache="q8_0")


def test_llama_cpp_takes_options_that_agree_with_the_type():
    from edgebench.harness.runners.llama_cpp import kv_settings

    assert kv_settings("q8_0", {"type_k": 8, "type_v": "q8_0", "flash_attn": True}) == {
        "type_k": 8, "type_v": 8, "flash_attn": True}
    assert kv_settings(None, {"type_k": 1}) == {}


def test_openvino_refuses_an_unknown_type_and_a_contradicting_option():
    from edgebench.harness.runners.openvino_genai import kv_settings

    assert kv_settings("u4", {}) == {"KV_CACHE_PRECISION": "u4"}
    assert kv_settings("u4", {"KV_CACHE_PRECISION": "U4"}) == {"KV_CACHE_PRECISION": "u4"}
    with pytest.raises(ConfigError, match=r"openvino has no KV-cache type bf16 \(it has: "
                                          r"f32, f16, u8, u4\)"):
        kv_settings("bf16", {})
    with pytest.raises(ConfigError, match="option KEY_CACHE_PRECISION='f16' conflicts with "
                                          "kv_cache u8"):
        kv_settings("u8", {"KEY_CACHE_PRECISION": "f16"})


@pytest.mark.skipif(not HAS_MLX, reason="mlx/mlx-lm is not installed (pip install -e "
                                        "'.[mlx,convert]')")
def test_mlx_refuses_an_unknown_type(tmp_path):
    from edgebench.harness.runners.mlx_lm import MlxLmRunner

    with pytest.raises(ConfigError, match=r"mlx has no KV-cache type q8_0 \(it has: 8bit, "
                                          r"4bit\)"):
        MlxLmRunner().load(tmp_path, "cpu", 2, {}, 16, kv_cache="q8_0")


# --------------------------------------------------------------------------- llama.cpp

@pytest.fixture(scope="module")
def gemma_gguf():
    from edgebench.locations import cache_dir
    from edgebench.models.registry import resolve_model

    return resolve_model("gemma-3-270m", cache_dir()).artifacts[0]


#: bytes per element of the K and V caches (ggml's block sizes: q8_0 34 B and q4_0 18 B per 32)
BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@needs_llama
@pytest.mark.llama_cpp
def test_llama_cpp_kv_memory_falls_by_the_types_element_size(gemma_gguf):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    got = {}
    for kv in BYTES:
        runner = LlamaCppRunner()
        load = runner.load(gemma_gguf.path, "cpu", 2, {}, context_tokens=4096, kv_cache=kv)
        try:
            got[kv] = runner.kv_cache_mb()
            assert {k: load.options[k] for k in ("type_k", "type_v", "flash_attn", "n_ctx")} \
                == {"type_k": kv, "type_v": kv, "flash_attn": True, "n_ctx": 4096}
            assert load.options["swa_full"] is True  # the SWA cache holds n_ctx cells too
            assert len(runner.generate([2, 651, 1884, 236764], 2).token_ids) == 2
        finally:
            runner.close()
    # 4096 cells x 18 layers x 256 x (K + V): 72 MiB at f16
    assert got["f16"] == (72.0, "llama.cpp log: llama_kv_cache size (sum of 2 caches)")
    for kv, size in BYTES.items():  # each of the two caches is logged to 0.01 MiB
        assert got[kv][0] == pytest.approx(72.0 * size / 2, abs=0.011), kv
    assert got["f16"][0] > got["q8_0"][0] > got["q4_0"][0]


@needs_llama
@pytest.mark.llama_cpp
def test_llama_cpp_default_load_records_what_llama_cpp_chose(gemma_gguf):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    runner = LlamaCppRunner()
    load = runner.load(gemma_gguf.path, "cpu", 2, {}, context_tokens=600)
    try:
        assert (load.options["type_k"], load.options["type_v"]) == ("f16", "f16")
        assert load.options["flash_attn"] is False  # llama-cpp-python's default, read back
        cells = load.options["n_ctx"]  # read back: llama.cpp pads 600 to a multiple of 256
        assert cells == 768
        assert runner.kv_cache_mb()[0] == pytest.approx(cells * 18 * 1024 / 2**20, abs=0.011)
    finally:
        runner.close()


@needs_llama
@pytest.mark.llama_cpp
def test_llama_cpp_measured_row_records_the_type_and_its_size(gemma_gguf):
    from edgebench.harness.device import fingerprint
    from edgebench.harness.measure import RunContext, measure
    from edgebench.suites.expand import PlannedRun

    run = PlannedRun(
        model="gemma-3-270m", model_sha256=None, framework="llama-cpp", precision="q4_k_m",
        device="cpu", prompt_tokens=16, new_tokens=4, threads=2, options={}, suite="t",
        repetitions=1, warmup=0, cooldown_s=0.0, timeout_s=600.0, artifact=gemma_gguf,
        prompt_ids=tuple([2] + [1000 + 7 * i for i in range(15)]), kv_cache="q8_0")
    row = measure(run, RunContext("sess", fingerprint()))
    assert row.status == "ok", row.message
    assert row.kv_cache == "q8_0"
    assert row.kv_cache_method == "llama.cpp log: llama_kv_cache size (sum of 2 caches)"
    # n_ctx = max(512, 20 tokens): 512 cells x 18 layers x 256 x 2 x 34/32 B
    assert row.kv_cache_mb == pytest.approx(512 * 18 * 512 * 34 / 32 / 2**20, abs=0.011)
    settings = json.loads(row.runtime_settings)
    assert (settings["type_k"], settings["type_v"], settings["flash_attn"]) == (
        "q8_0", "q8_0", True)


# --------------------------------------------------------------------------- OpenVINO

PROMPT = [2] + [1000 + 7 * i for i in range(60)]


@pytest.fixture(scope="module")
def ov_int4():
    if not HAS_OV:
        pytest.skip("openvino-genai is not installed (pip install -e '.[openvino,convert]')")
    from edgebench import api
    from edgebench.harness import prepare as prep
    from edgebench.locations import cache_dir

    (man,) = api.prepare("gemma-3-270m", ["openvino:int4"], cache_dir())
    return prep.as_artifact(man, cache_dir())


def _ov(artifact, kv_cache):
    from edgebench.harness.runners.openvino_genai import OpenVINOGenAIRunner

    runner = OpenVINOGenAIRunner()
    load = runner.load(artifact.path, "cpu", 2, {}, context_tokens=len(PROMPT) + 8,
                       kv_cache=kv_cache)
    try:
        return load, runner.generate(PROMPT, 8).token_ids, runner._ir
    finally:
        runner.close()


def test_openvino_applies_the_kv_precision_hint(ov_int4):
    import openvino as ov

    default, default_ids, _ = _ov(ov_int4, None)
    # the CPU plugin's own default, read from it: already an 8-bit cache
    assert {k: default.options[k] for k in ("KV_CACHE_PRECISION", "KEY_CACHE_PRECISION",
                                            "VALUE_CACHE_PRECISION")} == dict.fromkeys(
        ("KV_CACHE_PRECISION", "KEY_CACHE_PRECISION", "VALUE_CACHE_PRECISION"), "u8")
    assert default.options["kv_cache_precision_from"] == "plugin default: Core.get_property(CPU)"
    u4, u4_ids, (xml, device, props) = _ov(ov_int4, "u4")
    assert u4.options["KV_CACHE_PRECISION"] == "u4"
    assert u4.options["kv_cache_precision_from"].startswith("requested")
    # the same properties, compiled by OpenVINO Core, read back as applied
    compiled = ov.Core().compile_model(xml, device, props)
    assert compiled.get_property("KV_CACHE_PRECISION").to_string() == "u4"
    assert compiled.get_property("VALUE_CACHE_PRECISION").to_string() == "u4"
    del compiled
    f32, f32_ids, _ = _ov(ov_int4, "f32")
    assert f32.options["KV_CACHE_PRECISION"] == "f32"
    assert u4_ids != f32_ids  # the pipeline really used a 4-bit cache: greedy tokens change


# --------------------------------------------------------------------------- MLX

@pytest.fixture(scope="module")
def mlx_tiny(tmp_path_factory):
    if not HAS_MLX:
        pytest.skip("mlx/mlx-lm or the conversion stack is not installed "
                    "(pip install -e '.[mlx,convert]')")
    from edgebench.harness import prepare as prep
    from edgebench.models.registry import resolve_model
    from edgebench.models.tiny import make_tiny_gemma3

    root = tmp_path_factory.mktemp("mlx-kv")
    source = prep.source_of(resolve_model(str(make_tiny_gemma3(root / "tiny")), root / "c"))
    return prep.artifact_path(prep.prepare(source, prep.parse_target("mlx:fp16"), root / "c"),
                              root / "c")


def test_mlx_quantized_kv_cache_is_applied_and_generates(mlx_tiny):
    from edgebench.harness.runners.mlx_lm import MlxLmRunner

    prefix = [2] + [10 + (7 * i) % 400 for i in range(47)]  # past the sliding window (32)
    prompt = [10 + (13 * i) % 400 for i in range(8)]
    sizes = {}
    for kv in (None, "8bit", "4bit"):
        runner = MlxLmRunner()
        load = runner.load(mlx_tiny, "cpu", 2, {"compute_dtype": "float32"}, 64, kv_cache=kv)
        try:
            if kv:
                assert (load.options["kv_bits"], load.options["quantized_kv_start"]) == (
                    int(kv[0]), 0)
                assert load.options["kv_group_size"] == 32  # the tiny model's head size
                assert load.options["kv_quantized_layers"] == "1 of 6"  # 5 sliding-window
                assert "RotatingKVCache" in load.options["kv_unquantized"]
                assert type(runner._new_cache()[-1]).__name__ == "QuantizedKVCache"
            else:
                assert "kv_bits" not in load.options
            assert len(runner.generate(prompt, 4).token_ids) == 4
            filled = runner.generate(prompt, 4, prefix_ids=prefix)
            assert len(filled.token_ids) == 4
            assert type(runner._cache[-1]).__name__ == (
                "QuantizedKVCache" if kv else "KVCache")  # the prefix went in quantized
            sizes[kv] = runner.kv_cache_mb()
        finally:
            runner.close()
    assert sizes[None][1].startswith("mlx-lm cache nbytes")
    assert sizes[None][0] > sizes["8bit"][0] > sizes["4bit"][0]
