"""Apple MLX through mlx-lm: the Apple GPU on macOS ("metal"), the CPU anywhere (mlx[cpu])."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "mlx"
OPTIONS = ("prefill_step_size", "compute_dtype")
#: Activations and scales in float32 on the CPU: MLX's CPU kernels emulate float16, and its
#: quantized matmul with float16 scales is ~40x slower than with float32 ones (measured:
#: 7.6 s vs 0.19 s for the 262k x 640 Gemma head). Weights stay as the artifact stores them.
_DEFAULT_DTYPE = {"cpu": "float32", "metal": "artifact"}


def _import():
    try:
        import mlx.core as mx
        import mlx_lm
    except ImportError as e:
        raise RunnerUnavailable(f"mlx / mlx-lm is not installed ({e})", extra=EXTRA) from e
    return mx, mlx_lm


class MlxLmRunner:
    """Greedy generation with ``mlx_lm.generate.generate_step`` (no stop at EOS: exactly N
    tokens); each token is stamped when it is yielded, already evaluated (``.item()``).

    MLX has no thread setting: the requested thread count is recorded, not applied.
    ``compute_dtype`` (``float32``, ``float16``, ``bfloat16`` or ``artifact``) casts the float
    parameters (norms, quantization scales and biases, unquantized weights) after loading.
    """

    LOGITS_METHOD = "mlx-lm model forward pass over the tokens (fresh cache)"

    def __init__(self) -> None:
        self._model = None
        self._options: dict[str, Any] = {}

    def probe(self) -> RunnerInfo:
        mx, _ = _import()
        from importlib.metadata import version

        devices = ["cpu"] + (["metal"] if mx.metal.is_available() else [])
        return RunnerInfo("mlx", version("mlx-lm"), tuple(devices),
                          {"mlx": version("mlx")})

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False) -> LoadInfo:
        mx, mlx_lm = _import()
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown mlx option(s) {unknown}; known: {', '.join(OPTIONS)}")
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"mlx has no device {device!r} here (it has: {', '.join(devices)})")
        if not (Path(artifact) / "config.json").exists():
            raise ConfigError(f"{artifact} is not an MLX model folder (no config.json)")
        mx.set_default_device(mx.gpu if device == "metal" else mx.cpu)
        start = time.perf_counter()
        self._model, _tok = mlx_lm.load(str(artifact))
        dtype = str(options.get("compute_dtype", _DEFAULT_DTYPE[device]))
        if dtype != "artifact":
            if dtype not in ("float32", "float16", "bfloat16"):
                raise ConfigError(f"mlx compute_dtype {dtype!r}: expected float32, float16, "
                                  "bfloat16 or artifact")
            self._model.set_dtype(getattr(mx, dtype))
        mx.eval(self._model.parameters())  # MLX is lazy: make loading real before the clock
        load_s = time.perf_counter() - start
        self._options = {k: v for k, v in options.items() if k != "compute_dtype"}
        return LoadInfo(load_s, str(mx.default_device()),
                        {**options, "compute_dtype": dtype, "threads_applied": False})

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError("edgebench feeds prepared token IDs to mlx")

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> TokenTimeline:
        mx, _ = _import()
        from mlx_lm.generate import generate_step
        from mlx_lm.sample_utils import make_sampler

        sampler = make_sampler(temp=0.0)
        clock = time.perf_counter_ns
        stamps, ids = [], []
        prompt = mx.array(prompt_ids)
        t0 = clock()
        for token, _ in generate_step(prompt, self._model, max_tokens=max_new_tokens,
                                      sampler=sampler, **self._options):
            stamps.append(clock())
            ids.append(int(token))
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids))

    def logits(self, token_ids: list[int]):
        import numpy as np

        mx, _ = _import()
        out = self._model(mx.array([list(token_ids)]))[0].astype(mx.float32)
        mx.eval(out)
        return np.array(out, copy=True)

    def close(self) -> None:
        self._model = None
