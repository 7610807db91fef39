"""Apple MLX through mlx-lm: the Apple GPU on macOS ("metal"), the CPU anywhere (mlx[cpu])."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "mlx"
OPTIONS = FRAMEWORKS["mlx"].options or ()  # the suite options it takes
_DTYPES = ("float32", "float16", "bfloat16")
#: Parameter groups ``compute_dtype`` casts: the quantization scales and biases of quantized
#: layers and the weights of norm layers. Weight matrices (packed or float) are never cast.
CAST_GROUPS = ("quant_scales_biases", "norms")
#: KV-cache types -> bits of mlx-lm's QuantizedKVCache
KV_BITS = {"8bit": 8, "4bit": 4}


def _import():
    try:
        import mlx.core as mx
        import mlx_lm
    except ImportError as e:
        raise RunnerUnavailable(f"mlx / mlx-lm is not installed ({e})", extra=EXTRA) from e
    return mx, mlx_lm


def _groups(model):
    """Yield ``(group, module, key)`` for each parameter ``compute_dtype`` may cast."""
    for _, module in model.named_modules():
        if "scales" in module:  # QuantizedLinear, QuantizedEmbedding (and kin)
            yield from (("quant_scales_biases", module, k) for k in ("scales", "biases"))
        elif type(module).__name__.endswith("Norm"):  # nn.RMSNorm, LayerNorm, mlx-lm's own
            yield from (("norms", module, k) for k in ("weight", "bias"))


def _is_quantized(model) -> bool:
    return any(g == "quant_scales_biases" for g, _, _ in _groups(model))


def cast_small_parameters(model, dtype) -> dict[str, int]:
    """Cast quantization scales/biases and norm weights of ``model`` to ``dtype`` in place;
    return how many tensors of each group changed dtype. Weight matrices keep their dtype."""
    import mlx.core as mx

    counts = dict.fromkeys(CAST_GROUPS, 0)
    for group, module, key in _groups(model):
        value = module.get(key)
        if isinstance(value, mx.array) and mx.issubdtype(value.dtype, mx.floating) \
                and value.dtype != dtype:
            setattr(module, key, value.astype(dtype))
            counts[group] += 1
    return counts


def weight_dtypes(model) -> list[str]:
    """The dtypes of the model's weight matrices (``uint32`` for packed quantized ones)."""
    from mlx.utils import tree_flatten

    return sorted({str(v.dtype).removeprefix("mlx.core.")
                   for k, v in tree_flatten(model.parameters())
                   if k.endswith("weight") and v.ndim >= 2})


class MlxLmRunner:
    """Greedy generation with ``mlx_lm.generate.generate_step`` (no stop at EOS: exactly N
    tokens); each token is stamped when it is yielded, already evaluated (``.item()``).

    Generation runs on a stream of the requested device made at load: mlx-lm's own
    ``generation_stream`` is made on whatever the default device was when ``mlx_lm`` was
    imported (the GPU on a Mac), so a "cpu" row would otherwise run on Metal. The stream is
    synchronized before ``t0`` and after the last token: ``generate_step`` queues the step
    after the one it yields (``mx.async_eval``), and that leftover work must not be billed to
    the next repetition's first token.

    MLX has no thread setting: the requested thread count is recorded, not applied.
    ``compute_dtype`` (``float32``, ``float16``, ``bfloat16`` or ``artifact``) casts exactly
    the quantization scales/biases and the norm weights (recorded per group in ``cast``);
    weight matrices stay as the artifact stores them. Default on the CPU: ``float32`` for a
    quantized artifact (MLX's CPU quantized matmul with float16 activations is ~35x slower:
    the activations take the scales' dtype), ``artifact`` otherwise; on Metal ``artifact``.
    """

    LOGITS_METHOD = "mlx-lm model forward pass over the tokens (fresh cache)"

    def __init__(self) -> None:
        self._model = None
        self._stream = None
        self._options: dict[str, Any] = {}
        self._kv_quant: dict[str, int] | None = None  # QuantizedKVCache(group_size, bits)
        self._cache = None  # the last generation's prompt cache (for kv_cache_mb)

    def probe(self) -> RunnerInfo:
        mx, _ = _import()
        from importlib.metadata import version

        devices = ["cpu"] + (["metal"] if mx.metal.is_available() else [])
        return RunnerInfo("mlx", version("mlx-lm"), tuple(devices),
                          {"mlx": version("mlx")})

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False,
             kv_cache: str | None = None) -> LoadInfo:
        mx, mlx_lm = _import()
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown mlx option(s) {unknown}; known: {', '.join(OPTIONS)}")
        if kv_cache is not None and kv_cache not in KV_BITS:
            raise ConfigError(f"mlx has no KV-cache type {kv_cache} (it has: "
                              f"{', '.join(KV_BITS)})")
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"mlx has no device {device!r} here (it has: {', '.join(devices)})")
        if not (Path(artifact) / "config.json").exists():
            raise ConfigError(f"{artifact} is not an MLX model folder (no config.json)")
        dtype = options.get("compute_dtype")
        if dtype is not None and dtype not in (*_DTYPES, "artifact"):
            raise ConfigError(f"mlx compute_dtype {dtype!r}: expected float32, float16, "
                              "bfloat16 or artifact")
        target = mx.gpu if device == "metal" else mx.cpu
        mx.set_default_device(target)
        self._stream = mx.new_thread_local_stream(target)
        self._metal = device == "metal"
        if self._metal:
            mx.reset_peak_memory()
        start = time.perf_counter()
        self._model, _tok = mlx_lm.load(str(artifact))
        if dtype is None:
            dtype = "float32" if device == "cpu" and _is_quantized(self._model) else "artifact"
        cast = (cast_small_parameters(self._model, getattr(mx, dtype))
                if dtype != "artifact" else dict.fromkeys(CAST_GROUPS, 0))
        mx.eval(self._model.parameters())  # MLX is lazy: make loading real before the clock
        load_s = time.perf_counter() - start
        self._options = {k: v for k, v in options.items() if k != "compute_dtype"}
        self._cache = None
        self._kv_quant = None
        kv: dict[str, Any] = {}
        if kv_cache is not None:
            # group size 64 (mlx-lm's default) unless the head size is not a multiple of it
            head = getattr(getattr(self._model, "args", None), "head_dim", None) or 64
            self._kv_quant = {"bits": KV_BITS[kv_cache],
                              "group_size": 64 if head % 64 == 0 else 32}
            kinds = [type(c).__name__ for c in self._new_cache()]
            kv = {"kv_bits": self._kv_quant["bits"],
                  "kv_group_size": self._kv_quant["group_size"], "quantized_kv_start": 0,
                  "kv_quantized_layers": f"{kinds.count('QuantizedKVCache')} of {len(kinds)}"}
            if "RotatingKVCache" in kinds:
                kv["kv_unquantized"] = ("sliding-window layers (RotatingKVCache): mlx-lm's "
                                        "RotatingKVCache.to_quantized raises 'RotatingKVCache "
                                        "Quantization NYI'; they keep the compute dtype")
        return LoadInfo(
            load_s, str(self._stream.device),
            {**options, "compute_dtype": dtype, "cast": cast,
             "weight_dtypes": weight_dtypes(self._model), "threads_applied": False, **kv},
            threads_applied=False)

    def _new_cache(self):
        """An empty prompt cache as ``generate_step`` makes one (``make_prompt_cache``), with
        each full-attention ``KVCache`` replaced by a ``QuantizedKVCache`` when a KV-cache type
        is imposed: quantized from the first token on. generate_step's own ``kv_bits`` cannot be
        used: its ``maybe_quantize_kv_cache`` calls ``to_quantized`` on every cache that has it,
        and ``RotatingKVCache.to_quantized`` (Gemma 3's sliding-window layers) raises NYI."""
        from mlx_lm.models.cache import KVCache, QuantizedKVCache, make_prompt_cache

        cache = make_prompt_cache(self._model)
        if self._kv_quant is None:
            return cache
        return [QuantizedKVCache(**self._kv_quant) if type(c) is KVCache else c for c in cache]

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError("edgebench feeds prepared token IDs to mlx")

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        mx, _ = _import()
        from mlx_lm.generate import generate_step
        from mlx_lm.sample_utils import make_sampler

        sampler = make_sampler(temp=0.0)
        clock = time.perf_counter_ns
        stamps, ids = [], []
        prompt = mx.array(prompt_ids)
        options = dict(self._options)
        # the cache generate_step would make itself (make_prompt_cache), kept for kv_cache_mb;
        # at a depth it already holds the prefix, filled here, before the clock
        self._cache = None  # the last generation's cache is freed before a new one is filled
        self._cache = (self._filled_cache(mx, list(prefix_ids)) if prefix_ids
                       else self._new_cache())
        options["prompt_cache"] = self._cache
        mx.synchronize(self._stream)  # nothing queued earlier may run inside this call's clock
        mx.synchronize()
        try:
            t0 = clock()
            for token, _ in generate_step(prompt, self._model, stream=self._stream,
                                          max_tokens=max_new_tokens, sampler=sampler,
                                          **options):
                stamps.append(clock())
                ids.append(int(token))
        finally:
            mx.synchronize(self._stream)  # the step generate_step queued past the last token
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids))

    def _filled_cache(self, mx, prefix: list[int]):
        """A prompt cache (:meth:`_new_cache`: quantized as imposed) holding ``prefix``: forward
        passes in chunks of ``prefill_step_size``, each evaluated, as ``generate_step`` fills
        its own cache from a prompt; ``generate_step(prompt_cache=...)`` then appends to it."""
        cache = self._new_cache()
        step = int(self._options.get("prefill_step_size", 2048))
        ids = mx.array(prefix)
        with mx.stream(self._stream):
            for i in range(0, len(prefix), step):
                self._model(ids[i:i + step][None], cache=cache)
                mx.eval([c.state for c in cache])
        return cache

    def logits(self, token_ids: list[int]):
        import numpy as np

        mx, _ = _import()
        with mx.stream(self._stream):
            out = self._model(mx.array([list(token_ids)]))[0].astype(mx.float32)
            mx.eval(out)
        return np.array(out, copy=True)

    def kv_cache_mb(self) -> tuple[float, str] | None:
        """The prompt cache's buffers after the last generation (``nbytes`` of each layer's
        cache: keys and values as allocated, in steps of 256 tokens, plus the scales and biases
        of a quantized cache)."""
        if not self._cache:
            return None
        return (sum(c.nbytes for c in self._cache) / 2**20,
                f"mlx-lm cache nbytes after the last generation (sum of {len(self._cache)} "
                "layers' caches)")

    def accelerator_peak_mb(self) -> tuple[float, str] | None:
        """MLX's own peak of Metal memory since load (``mx.get_peak_memory``); None on the
        CPU, where MLX's allocator figure is ordinary process memory (already counted)."""
        if not getattr(self, "_metal", False):
            return None
        mx, _ = _import()
        return mx.get_peak_memory() / 2**20, "mlx.get_peak_memory (metal, since load)"

    def close(self) -> None:
        self._model = None
        self._stream = None
        self._cache = None
