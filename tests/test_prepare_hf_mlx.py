"""The tiny Gemma 3 checkpoint and the MLX recipe on it; the GGUF -> checkpoint recipe on the
real Gemma 3 270M. Skipped with the reason when the conversion stack is not installed."""

import importlib.util

import pytest

from edgebench.harness import prepare as prep
from edgebench.models.registry import resolve_model
from edgebench.models.safetensors_file import safetensors_stats

HAS_CONVERT = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
HAS_MLX = HAS_CONVERT and all(importlib.util.find_spec(m) for m in ("mlx", "mlx_lm"))
needs_convert = pytest.mark.skipif(
    not HAS_CONVERT, reason="torch/transformers not installed (pip install -e '.[convert]')")
needs_mlx = pytest.mark.skipif(
    not HAS_MLX, reason="mlx/mlx-lm not installed (pip install -e '.[mlx,convert]')")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not HAS_CONVERT:
        pytest.skip("torch/transformers not installed (pip install -e '.[convert]')")
    from edgebench.models.tiny import make_tiny_gemma3

    return make_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "tiny-gemma3")


@needs_convert
def test_tiny_checkpoint_resolves_as_hf_source(tiny, tmp_path):
    model = resolve_model(str(tiny), tmp_path)
    (art,) = model.artifacts
    assert art.format == "hf" and art.precision == "f32"
    params, data = safetensors_stats(tiny)
    assert art.parameters == params and data == params * 4  # float32: 4 bytes each
    assert art.bits_per_weight == pytest.approx(32.0)
    src = prep.source_of(model)
    assert (src.format, src.precision) == ("hf", "f32")


@needs_mlx
@pytest.mark.parametrize("precision, low, high", [
    # quantized matrices: b bits + fp16 scale and bias per 64 weights = b + 0.5 bits;
    # norm vectors stay fp16, so the whole model sits a little above that
    ("4bit", 4.5, 5.0), ("8bit", 8.5, 9.0), ("fp16", 16.0, 16.0),
])
def test_mlx_recipe_on_tiny_loads_and_generates(tiny, tmp_path, precision, low, high):
    from mlx_lm import load, stream_generate
    from mlx_lm.sample_utils import make_sampler

    cache = tmp_path / "cache"
    source = prep.source_of(resolve_model(str(tiny), cache))
    man = prep.prepare(source, prep.parse_target(f"mlx:{precision}"), cache)
    assert man.format == "mlx" and man.precision_class == prep.precision_class(precision)
    assert low <= man.bits_per_weight <= high + 1e-9
    assert man.parameters == safetensors_stats(tiny)[0]
    assert man.tool_versions["mlx-lm"]
    model, tok = load(str(prep.artifact_path(man, cache)))
    out = [r.token for r in stream_generate(model, tok, [2, 10, 11, 12], max_tokens=4,
                                            sampler=make_sampler(temp=0.0))]
    assert len(out) == 4
    assert prep.prepare(source, prep.parse_target(f"mlx:{precision}"), cache) == man  # hit


@needs_convert
def test_gemma_gguf_dequantized_to_checkpoint():
    """GGUF Q4_K_M -> float32 checkpoint (about 1.5 minutes the first time, then cached)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgebench import api
    from edgebench.locations import cache_dir

    cache = cache_dir()
    (man,) = api.prepare("gemma-3-270m", ["hf:f32"], cache)
    assert man.parameters == 268_098_176 and man.bits_per_weight == pytest.approx(32.0)
    assert "Q4_K_M" in man.notes[0]
    folder = prep.artifact_path(man, cache)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    text = "The capital of France is"
    ids = tok(text).input_ids
    assert ids[0] == 2  # BOS
    hf_out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
    hf_out = hf_out[0, len(ids):].tolist()
    if importlib.util.find_spec("llama_cpp") is None:
        return
    # the same weights in llama.cpp (the Q4_K_M source): same tokens in, same greedy tokens out
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    r = LlamaCppRunner()
    r.load(resolve_model("gemma-3-270m", cache).artifacts[0].path, "cpu", 2, {}, 64)
    try:
        assert r.tokenize(text) == ids
        assert list(r.generate(ids, 8).token_ids) == hf_out
    finally:
        r.close()


@needs_mlx
def test_mlx_refuses_an_architecture_it_lacks_by_name(tiny, tmp_path):
    import json
    import shutil

    from edgebench.errors import ConfigError

    copy = tmp_path / "odd"
    shutil.copytree(tiny, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["model_type"] = "no_such_arch"
    (copy / "config.json").write_text(json.dumps(cfg))
    source = prep.source_of(resolve_model(str(copy), tmp_path))
    with pytest.raises(ConfigError, match="cannot prepare mlx:4bit from odd: mlx-lm has no "
                                          "implementation of architecture 'no_such_arch'"):
        prep.prepare(source, prep.parse_target("mlx:4bit"), tmp_path / "cache")


@needs_convert
def test_truncated_checkpoint_is_refused(tiny, tmp_path):
    import shutil

    from edgebench.errors import ModelError

    copy = tmp_path / "cut"
    shutil.copytree(tiny, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ModelError, match="model.safetensors is truncated"):
        resolve_model(str(copy), tmp_path)


HAS_ORT = HAS_CONVERT and all(importlib.util.find_spec(m) for m in
                              ("onnxruntime_genai", "onnx", "onnx_ir", "onnxscript"))
HAS_OV = importlib.util.find_spec("openvino_genai") is not None


@pytest.mark.skipif(not HAS_ORT, reason="ONNX Runtime GenAI builder stack not installed "
                                        "(pip install -e '.[ort-genai,convert]')")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int4"])
def test_onnx_recipe_on_tiny_loads_and_generates(tiny, tmp_path, precision):
    import onnxruntime_genai as og

    cache = tmp_path / "cache"
    source = prep.source_of(resolve_model(str(tiny), cache))
    man = prep.prepare(source, prep.parse_target(f"onnx:{precision}"), cache)
    assert man.format == "onnx" and man.tool_versions["onnxruntime-genai"]
    model = og.Model(str(prep.artifact_path(man, cache)))
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False)
    gen = og.Generator(model, params)
    gen.append_tokens([2, 10, 11, 12])
    out = []
    for _ in range(4):
        gen.generate_next_token()
        out.append(int(gen.get_next_tokens()[0]))
    assert len(out) == 4 and all(0 <= t < 512 for t in out)
    if precision == "fp32":  # same weights as transformers: same greedy tokens
        import torch
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
        want = ref.generate(torch.tensor([[2, 10, 11, 12]]), max_new_tokens=4,
                            do_sample=False)[0, 4:].tolist()
        assert out == want


@pytest.mark.skipif(not (HAS_CONVERT and HAS_OV), reason="openvino-genai or the conversion stack "
                    "is not installed (pip install -e '.[openvino,convert]')")
def test_openvino_recipe_on_tiny_loads_and_generates(tiny, tmp_path):
    """Exports in a pinned converter environment (made once under the user cache, ~2 min)."""
    import numpy as np
    import openvino as ov
    import openvino_genai as ovg

    cache = tmp_path / "cache"
    source = prep.source_of(resolve_model(str(tiny), cache))
    man = prep.prepare(source, prep.parse_target("openvino:int4"), cache)
    folder = prep.artifact_path(man, cache)
    assert (folder / "openvino_tokenizer.xml").exists()
    assert (folder / "openvino_detokenizer.xml").exists()
    assert "int4 group size 64" in man.notes
    assert any(n.startswith("NNCF:") for n in man.notes)
    pipe = ovg.LLMPipeline(str(folder), "CPU")
    cfg = ovg.GenerationConfig()
    cfg.max_new_tokens, cfg.do_sample = 4, False
    cfg.ignore_eos = True
    res = pipe.generate(ov.Tensor(np.array([[2, 10, 11, 12]], dtype=np.int64)), cfg)
    assert len(list(res.tokens[0])) == 4
