"""ORT GenAI, OpenVINO GenAI and MLX runners on the tiny Gemma 3, each from the artifact its
recipe makes; the high-precision ones must give transformers' greedy tokens for the same IDs."""

import importlib.util

import pytest

from edgebench.errors import ConfigError, DeviceUnavailable
from edgebench.harness import prepare as prep
from edgebench.harness.registry import load_runner
from edgebench.models.registry import resolve_model

PROMPT = [2, 10, 11, 12, 13, 14]
CASES = {  # framework -> (target, modules it needs, exact match with transformers expected)
    "ort-genai": ("onnx:fp32", ("onnxruntime_genai", "onnx_ir", "onnxscript"), True),
    "mlx": ("mlx:fp16", ("mlx", "mlx_lm"), True),
    "openvino": ("openvino:fp16", ("openvino_genai",), True),
}


def _have(mods):
    return all(importlib.util.find_spec(m) for m in ("torch", "transformers", *mods))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not _have(()):
        pytest.skip("torch/transformers not installed (pip install -e '.[convert]')")
    from edgebench.models.tiny import make_tiny_gemma3

    return make_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "tiny-gemma3")


@pytest.fixture(scope="module")
def reference(tiny):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    out = model.generate(torch.tensor([PROMPT]), max_new_tokens=6, do_sample=False,
                         min_new_tokens=6)
    return out[0, len(PROMPT):].tolist()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("framework", sorted(CASES))
def test_runner_generates_from_token_ids(framework, tiny, reference, cache):
    target, mods, exact = CASES[framework]
    if not _have(mods):
        pytest.skip(f"{framework} is not installed (pip install -e '.[{framework}]')")
    source = prep.source_of(resolve_model(str(tiny), cache))
    man = prep.prepare(source, prep.parse_target(target), cache)
    runner = load_runner(framework)
    info = runner.probe()
    assert info.version and "cpu" in info.devices
    load = runner.load(prep.artifact_path(man, cache), "cpu", 2, {}, context_tokens=12)
    try:
        assert load.load_s > 0 and load.device
        a = runner.generate(PROMPT, 6)
        b = runner.generate(PROMPT, 6)
    finally:
        runner.close()
    assert len(a.token_ns) == len(a.token_ids) == 6 and a.prompt_tokens == len(PROMPT)
    assert a.t0_ns < a.token_ns[0] and list(a.token_ns) == sorted(a.token_ns)
    assert a.token_ids == b.token_ids  # greedy, and no state carried between calls
    if exact:
        assert list(a.token_ids) == reference


@pytest.mark.parametrize("framework", sorted(CASES))
def test_runner_refuses_wrong_artifact_and_device(framework, tmp_path):
    if not _have(CASES[framework][1]):
        pytest.skip(f"{framework} is not installed")
    runner = load_runner(framework)
    with pytest.raises(ConfigError, match="is not an"):
        runner.load(tmp_path, "cpu", 2, {}, context_tokens=8)
    missing = next(d for d in ("npu", "cuda", "metal", "gpu") if d not in runner.probe().devices)
    with pytest.raises(DeviceUnavailable, match=r"it has: .*cpu"):
        runner.load(tmp_path, missing, 2, {}, context_tokens=8)
