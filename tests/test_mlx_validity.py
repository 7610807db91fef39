"""What the MLX runner measures, on the tiny Gemma 3 (docs/validity.md "MLX"): no queued work
left behind by a generation, generation on the requested device's stream, and an fp16 artifact
computed with its own float16 weights."""

import importlib.util
import inspect
import time

import pytest

from edgebench.harness import prepare as prep
from edgebench.models.registry import resolve_model

HAS_MLX = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "mlx", "mlx_lm"))
pytestmark = pytest.mark.skipif(
    not HAS_MLX, reason="mlx/mlx-lm or the conversion stack is not installed "
                        "(pip install -e '.[mlx,convert]')")

PROMPT = [2, 10, 11, 12, 13, 14]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The tiny checkpoint prepared as mlx:fp16 and mlx:4bit."""
    from edgebench.models.tiny import make_tiny_gemma3

    root = tmp_path_factory.mktemp("mlx-validity")
    cache = root / "cache"
    source = prep.source_of(resolve_model(str(make_tiny_gemma3(root / "tiny")), cache))
    return {p: prep.artifact_path(prep.prepare(source, prep.parse_target(f"mlx:{p}"), cache),
                                  cache)
            for p in ("fp16", "4bit")}


def _runner(artifact, options=None):
    from edgebench.harness.runners.mlx_lm import MlxLmRunner

    runner = MlxLmRunner()
    return runner, runner.load(artifact, "cpu", 2, dict(options or {}), context_tokens=16)


def _generate_module():
    # not ``import mlx_lm.generate``: mlx_lm's __init__ rebinds that name to the function
    return importlib.import_module("mlx_lm.generate")


@pytest.fixture
def streams_used(monkeypatch):
    """Record the stream every ``generate_step`` call really computes on (the one passed, or
    mlx-lm's default ``generation_stream`` when none is)."""
    gen = _generate_module()
    original = gen.generate_step
    used = []

    def recording(*args, **kwargs):
        bound = inspect.signature(original).bind(*args, **kwargs)
        bound.apply_defaults()
        used.append(bound.arguments["stream"])
        return original(*args, **kwargs)

    recording.original = original
    monkeypatch.setattr(gen, "generate_step", recording)
    return used


def test_no_queued_step_is_left_running_after_generate(artifacts, streams_used, monkeypatch):
    """generate_step queues token N+1 (mx.async_eval) before yielding token N; after the last
    token that step is still queued. generate() must wait for it (outside the clock), or the
    next repetition's first token pays for it. Each forward pass is made slow here by lazy
    extra work folded into its logits, so a leftover step is a long wait."""
    import mlx.core as mx

    runner, _ = _runner(artifacts["fp16"])
    model_cls = type(runner._model)
    forward = model_cls.__call__
    big = None

    def extra():
        return (big @ big @ big @ big).sum() * 0

    size = 256
    while True:  # the extra work takes at least 0.15 s here, whatever this machine's speed
        big = mx.random.normal((size, size))
        mx.eval(big)
        start = time.perf_counter()
        mx.eval(extra())
        heavy_s = time.perf_counter() - start
        if heavy_s >= 0.15 or size >= 2048:
            break
        size *= 2

    def slow_forward(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        return out + extra().astype(out.dtype)

    monkeypatch.setattr(model_cls, "__call__", slow_forward)
    try:
        timeline = runner.generate(PROMPT, 2)
        start = time.perf_counter()
        for stream in streams_used:
            mx.synchronize(stream)
        mx.synchronize()
        left_s = time.perf_counter() - start
    finally:
        runner.close()
    assert len(timeline.token_ids) == 2
    assert left_s < heavy_s / 4, (f"{left_s:.3f} s of queued work was still running after "
                                  f"generate() returned (one forward pass: {heavy_s:.3f} s)")


def test_generates_on_the_requested_device_not_mlx_lm_import_default(artifacts, streams_used,
                                                                       monkeypatch):
    """On a Mac mlx_lm.generate makes ``generation_stream`` on the GPU when it is imported,
    before load() makes the CPU the default: generate_step's default stream is that one. Here
    the default is made a GPU stream as on a Mac; a "cpu" run must not use it."""
    import mlx.core as mx

    gen = _generate_module()
    mac_stream = mx.new_thread_local_stream(mx.gpu)  # lazily made; unusable without Metal
    # generate_step's default stream was bound when it was defined, at import
    monkeypatch.setattr(gen.generate_step.original, "__defaults__", (mac_stream,))
    monkeypatch.setattr(gen, "generation_stream", mac_stream)

    runner, load = _runner(artifacts["fp16"])
    try:
        timeline = runner.generate(PROMPT, 3)
    finally:
        runner.close()
    assert len(timeline.token_ids) == 3
    assert streams_used and all(s.device == mx.cpu for s in streams_used), streams_used
    # the row names the device of the stream generation ran on
    assert load.device == str(streams_used[0].device) == str(mx.Device(mx.cpu))
    assert load.threads_applied is False and load.options["threads_applied"] is False


def _dtype(a):
    return str(a.dtype).removeprefix("mlx.core.")


def test_fp16_artifact_keeps_float16_weights(artifacts):
    """Casting every float parameter (Module.set_dtype) made "mlx fp16" an fp32 model."""
    runner, load = _runner(artifacts["fp16"])
    try:
        m = runner._model.model
        assert _dtype(m.embed_tokens.weight) == "float16"  # also the tied output head
        assert _dtype(m.layers[0].mlp.gate_proj.weight) == "float16"
        assert _dtype(m.layers[0].self_attn.q_proj.weight) == "float16"
        assert _dtype(m.norm.weight) == "float16"  # nothing cast by default: real fp16
        assert len(runner.generate(PROMPT, 3).token_ids) == 3
    finally:
        runner.close()
    assert load.options["compute_dtype"] == "artifact"
    assert load.options["cast"] == {"quant_scales_biases": 0, "norms": 0}
    assert load.options["weight_dtypes"] == ["float16"]


def test_compute_dtype_casts_norms_and_scales_only(artifacts):
    runner, load = _runner(artifacts["fp16"], {"compute_dtype": "float32"})
    try:
        m = runner._model.model
        assert _dtype(m.norm.weight) == _dtype(m.layers[0].input_layernorm.weight) == "float32"
        assert _dtype(m.embed_tokens.weight) == "float16"
        assert _dtype(m.layers[0].mlp.gate_proj.weight) == "float16"
    finally:
        runner.close()
    assert load.options["compute_dtype"] == "float32"
    assert load.options["cast"]["norms"] > 0 and load.options["cast"]["quant_scales_biases"] == 0
    assert load.options["weight_dtypes"] == ["float16"]


def test_4bit_artifact_gets_float32_scales_on_cpu(artifacts):
    """MLX's CPU quantized matmul in float16 is ~35x slower than in float32; the activations
    take the dtype of the (embedding's) scales, so those are cast; the packed weights not."""
    runner, load = _runner(artifacts["4bit"])
    try:
        m = runner._model.model
        for layer in (m.embed_tokens, m.layers[0].mlp.gate_proj, m.layers[-1].self_attn.o_proj):
            assert _dtype(layer.weight) == "uint32"
            assert _dtype(layer.scales) == _dtype(layer.biases) == "float32"
        assert _dtype(m.norm.weight) == "float32"
        assert len(runner.generate(PROMPT, 3).token_ids) == 3
    finally:
        runner.close()
    assert load.options["compute_dtype"] == "float32"
    n_layers = len(m.layers)
    assert load.options["cast"] == {"quant_scales_biases": 2 * (7 * n_layers + 1),
                                    "norms": 6 * n_layers + 1}
    assert load.options["weight_dtypes"] == ["uint32"]
