"""llama.cpp through llama-cpp-python: GGUF files on CPU, CUDA, Metal or Vulkan."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "llama-cpp"
# Settings a suite may pass through to ``llama_cpp.Llama`` (others are refused by name).
OPTIONS = FRAMEWORKS["llama-cpp"].options or ()  # the suite options it takes
_GPU_BACKENDS = {"cuda": "CUDA", "metal": "METAL", "vulkan": "VULKAN"}


def _import():
    try:
        import llama_cpp
    except ImportError as e:
        raise RunnerUnavailable(f"llama-cpp-python is not installed ({e})", extra=EXTRA) from e
    return llama_cpp


class LlamaCppRunner:
    """Runs a GGUF through ``llama_cpp.Llama``; greedy, from token IDs, timed per token."""

    LOGITS_METHOD = "llama.cpp logits of every position (Llama(logits_all=True).eval)"

    def __init__(self) -> None:
        self._llm = None
        self._load_args: dict[str, Any] = {}
        self._logits_all = False

    def probe(self) -> RunnerInfo:
        lc = _import()
        info = lc.llama_print_system_info().decode(errors="replace")
        devices = ["cpu"]
        if lc.llama_supports_gpu_offload():
            devices += [d for d, tag in _GPU_BACKENDS.items() if tag in info.upper()]
        from importlib.metadata import version

        # the package's version, as `--resume` reads it without importing the runtime
        return RunnerInfo("llama-cpp", version("llama-cpp-python"), tuple(devices),
                          {"system_info": info, "llama_cpp.__version__": lc.__version__})

    def load(
        self, artifact: Path, device: str, threads: int, options: dict[str, Any],
        context_tokens: int, logits_only: bool = False,
    ) -> LoadInfo:
        lc = _import()
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown llama-cpp option(s) {unknown}; known: {', '.join(OPTIONS)}")
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"llama-cpp has no device {device!r} here (it has: {', '.join(devices)})"
            )
        kwargs: dict[str, Any] = {
            "n_ctx": max(512, context_tokens), "n_batch": 512, "seed": 0,
            "n_gpu_layers": 0 if device == "cpu" else -1, **options,
        }
        if kwargs["n_ctx"] < context_tokens:
            raise ConfigError(f"n_ctx {kwargs['n_ctx']} is smaller than the {context_tokens} "
                              "tokens this run needs (depth + prompt + new tokens)")
        self._load_args = dict(model_path=str(artifact), n_threads=threads,
                               n_threads_batch=threads, verbose=False, **kwargs)
        if logits_only:  # logits_all fixes the scores buffer's size: load that way, once
            kwargs["logits_all"] = True
            self._load_args["logits_all"] = True
        start = time.perf_counter()
        self._llm = lc.Llama(**self._load_args)
        self._logits_all = logits_only
        self._cuda = device == "cuda"
        load_s = time.perf_counter() - start
        ctx = self._llm.ctx  # read back from llama.cpp's own context, not the Python params
        applied = (lc.llama_n_threads(ctx), lc.llama_n_threads_batch(ctx)) == (threads, threads)
        return LoadInfo(load_s=load_s, device=self._device_name(lc, device), options=kwargs,
                        threads_applied=applied)

    @staticmethod
    def _device_name(lc, device: str) -> str:
        """The backend llama.cpp itself reports for the device (not the requested name)."""
        if device == "cpu":
            return "CPU (ggml-cpu)"
        info = lc.llama_print_system_info().decode(errors="replace").upper()
        tags = [t for t in _GPU_BACKENDS.values() if t in info]
        return "+".join(tags) or device

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode(), add_bos=True, special=False))

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        llm = self._llm
        llm.reset()  # n_tokens = 0: no prefix reuse, the full prompt is evaluated every call
        if prefix_ids:  # the depth, before the clock: eval() decodes it into the KV cache
            llm.eval(list(prefix_ids))
        stamps: list[int] = []
        ids: list[int] = []
        clock = time.perf_counter_ns
        # reset=False after a prefix: Llama.generate then skips both its prefix-match lookup and
        # its reset, evaluates the prompt after the n_tokens already cached and samples from its
        # last position (sample_idx = n_tokens + len(prompt) - 1)
        gen = llm.generate(prompt_ids, temp=0.0, top_k=1, repeat_penalty=1.0,
                           reset=not prefix_ids)
        t0 = clock()
        for token in gen:  # EOS does not stop the loop: exactly max_new_tokens, like llama-bench
            stamps.append(clock())
            ids.append(token)
            if len(ids) >= max_new_tokens:
                break
        gen.close()
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids))

    def logits(self, token_ids: list[int]):
        import numpy as np

        if not self._logits_all:  # reloaded once: logits_all fixes the scores buffer's size
            self._llm.close()
            n_ctx = max(self._load_args["n_ctx"], len(token_ids))
            self._llm = _import().Llama(**{**self._load_args, "n_ctx": n_ctx,
                                           "logits_all": True})
            self._logits_all = True
        self._llm.reset()
        self._llm.eval(list(token_ids))
        return np.array(self._llm.scores[:len(token_ids)], dtype=np.float32, copy=True)

    def accelerator_peak_mb(self) -> tuple[float, str] | None:
        """GPU memory this process holds on a ``cuda`` run (NVML; ``harness.gpu_memory``)."""
        if not getattr(self, "_cuda", False):
            return None
        from edgebench.harness.gpu_memory import process_gpu_mb

        return process_gpu_mb()

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
