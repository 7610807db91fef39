"""llama.cpp through llama-cpp-python: GGUF files on CPU, CUDA, Metal or Vulkan."""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline
from edgebench.harness.runners.llama_cpp_logits import METHOD as SCORED_METHOD

EXTRA = "llama-cpp"
# Settings a suite may pass through to ``llama_cpp.Llama`` (others are refused by name).
OPTIONS = FRAMEWORKS["llama-cpp"].options or ()  # the suite options it takes
_GPU_BACKENDS = {"cuda": "CUDA", "metal": "METAL", "vulkan": "VULKAN"}
#: KV-cache type names -> ggml_type (llama_cpp.py GGML_TYPE_*; it defines no BF16 constant:
#: 30 is ggml.h's GGML_TYPE_BF16)
KV_TYPES = {"f32": 0, "f16": 1, "bf16": 30, "q8_0": 8, "q4_0": 2, "q4_1": 3, "iq4_nl": 20,
            "q5_0": 6, "q5_1": 7}
#: one line per KV cache llama.cpp allocates at context creation (llama_kv_cache's constructor;
#: an iSWA model such as Gemma 3 has two: global and sliding-window), e.g. ``llama_kv_cache:
#: size =   12.00 MiB (  4096 cells,   3 layers,  1/1 seqs), K (f16):    6.00 MiB, V (f16): ...``
_KV_LINE = re.compile(r"llama_kv_cache(?:_unified)?: size =\s*([\d.]+) MiB \(\s*(\d+) cells,"
                      r"\s*(\d+) layers.*K \((\w+)\):.*V \((\w+)\):")
#: older llama.cpp logs ``flash_attn = 1``/``0``, newer ``enabled``/``disabled``/``auto``
_FLASH_LINE = re.compile(r"llama_context: flash_attn\s*=\s*(\w+)")
_FLASH_ON, _FLASH_OFF = ("1", "enabled", "true"), ("0", "disabled", "false")
_captured: list[str] | None = None  # llama.cpp's log lines while a context is being made
_log_callback = None  # the installed ctypes callback: must outlive every llama.cpp call


def _capture_log(lc) -> None:
    """Install llama.cpp's (process-global) log callback for one context creation: one that
    collects lines into ``_captured`` while it is a list and passes every line on to
    llama-cpp-python's own (``llama_cpp._logger.llama_log_callback``, which prints or not per
    ``verbose``). llama.cpp calls it whatever ``verbose`` is: ``verbose=False`` only raises that
    logger's level and redirects fds 1/2 around model loading. :func:`_restore_log` puts
    llama-cpp-python's own back once the context exists."""
    global _log_callback
    if _log_callback is None:
        from llama_cpp import _logger

        @lc.llama_log_callback
        def callback(level, text, user_data):
            if _captured is not None:
                _captured.append(text.decode("utf-8", "replace"))
            _logger.llama_log_callback(level, text, user_data)

        _log_callback = callback  # llama_log_set keeps only the C pointer
    lc.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _restore_log(lc) -> None:
    """Give llama.cpp back llama-cpp-python's own log callback (the one it sets at import)."""
    from llama_cpp import _logger

    lc.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def kv_from_log(lines: list[str]) -> dict[str, Any]:
    """What llama.cpp logged of its KV caches at context creation: the caches (MiB, cells,
    layers, K and V types), their total and whether flash attention is on."""
    caches = [{"mib": float(m[1]), "cells": int(m[2]), "layers": int(m[3]), "k": m[4],
               "v": m[5]} for m in (_KV_LINE.search(line) for line in lines) if m]
    flash = [m[1] for m in (_FLASH_LINE.search(line) for line in lines) if m]
    state = flash[-1].lower() if flash else None
    return {"caches": caches, "mib": sum(c["mib"] for c in caches),
            "flash_attn": True if state in _FLASH_ON else False if state in _FLASH_OFF else None}


def _import():
    try:
        import llama_cpp
    except ImportError as e:
        raise RunnerUnavailable(f"llama-cpp-python is not installed ({e})", extra=EXTRA) from e
    return llama_cpp


def kv_settings(kv_cache: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The ``Llama`` keywords that impose KV-cache type ``kv_cache``: ``type_k = type_v`` and
    ``flash_attn`` (llama.cpp refuses a quantized V cache without it, "quantized V cache
    requires flash_attn to be enabled"; on for every imposed type, f16 too, so that rows of
    different types differ in the type only). Empty when ``kv_cache`` is None.

    Raises:
        ConfigError: an unknown type, or suite options that set these keywords otherwise.
    """
    if kv_cache is None:
        return {}
    if kv_cache not in KV_TYPES:
        raise ConfigError(f"llama-cpp has no KV-cache type {kv_cache} (it has: "
                          f"{', '.join(KV_TYPES)})")
    wanted = {"type_k": KV_TYPES[kv_cache], "type_v": KV_TYPES[kv_cache], "flash_attn": True}
    for key, value in wanted.items():
        if key in options and options[key] != value and options[key] != kv_cache:
            raise ConfigError(f"llama-cpp option {key}={options[key]!r} conflicts with "
                              f"kv_cache {kv_cache} (which sets {key}={value!r})")
    return wanted


class LlamaCppRunner:
    """Runs a GGUF through ``llama_cpp.Llama``; greedy, from token IDs, timed per token."""

    LOGITS_METHOD = "llama.cpp logits of every position (Llama(logits_all=True).eval)"

    def __init__(self) -> None:
        self._llm = None
        self._load_args: dict[str, Any] = {}
        self._logits_all = False
        self._kv: dict[str, Any] = {}

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
        context_tokens: int, logits_only: bool = False, kv_cache: str | None = None,
    ) -> LoadInfo:
        lc = _import()
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown llama-cpp option(s) {unknown}; known: {', '.join(OPTIONS)}")
        imposed = kv_settings(kv_cache, options)
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"llama-cpp has no device {device!r} here (it has: {', '.join(devices)})"
            )
        kwargs: dict[str, Any] = {
            "n_ctx": max(512, context_tokens), "n_batch": 512, "seed": 0,
            "n_gpu_layers": 0 if device == "cpu" else -1, **options, **imposed,
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
        self._llm = self._new_llama(lc, self._load_args)
        self._logits_all = logits_only
        self._cuda = device == "cuda"
        load_s = time.perf_counter() - start
        ctx = self._llm.ctx  # read back from llama.cpp's own context, not the Python params
        applied = (lc.llama_n_threads(ctx), lc.llama_n_threads_batch(ctx)) == (threads, threads)
        return LoadInfo(load_s=load_s, device=self._device_name(lc, device),
                        options={**kwargs, **self._applied_kv(lc)}, threads_applied=applied)

    def _new_llama(self, lc, args: dict[str, Any]):
        """``Llama(**args)``, with what llama.cpp logs of its KV caches kept in ``self._kv``."""
        global _captured
        _capture_log(lc)
        _captured = []
        try:
            llm = lc.Llama(**args)
        finally:
            lines, _captured = _captured, None
            _restore_log(lc)
        self._kv = kv_from_log(lines)
        return llm

    def _applied_kv(self, lc) -> dict[str, Any]:
        """The KV settings as llama.cpp applied them: the K/V types and flash attention from its
        own log, ``n_ctx`` from the context and ``swa_full`` as passed to it (the C default,
        true, unless a suite set it: SWA layers then hold n_ctx cells, not the window)."""
        caches = self._kv.get("caches") or []
        got: dict[str, Any] = {"n_ctx": lc.llama_n_ctx(self._llm.ctx),
                               "swa_full": bool(self._llm.context_params.swa_full)}
        if caches:
            got["type_k"] = "+".join(dict.fromkeys(c["k"] for c in caches))
            got["type_v"] = "+".join(dict.fromkeys(c["v"] for c in caches))
        if self._kv.get("flash_attn") is not None:
            got["flash_attn"] = self._kv["flash_attn"]
        return got

    def kv_cache_mb(self) -> tuple[float, str] | None:
        """The KV buffers llama.cpp allocated for the loaded context, summed over its caches
        (an iSWA model has two), as it logged them (``%.2f MiB`` each)."""
        caches = self._kv.get("caches")
        if not caches:
            return None
        return self._kv["mib"], (f"llama.cpp log: llama_kv_cache size (sum of {len(caches)} "
                                 f"cache{'s' if len(caches) > 1 else ''})")

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
            self._llm = self._new_llama(_import(), {**self._load_args, "n_ctx": n_ctx,
                                                    "logits_all": True})
            self._logits_all = True
        self._llm.reset()
        self._llm.eval(list(token_ids))
        return np.array(self._llm.scores[:len(token_ids)], dtype=np.float32, copy=True)

    SCORED_LOGITS_METHOD = SCORED_METHOD

    def scored_logits(self, token_ids, first: int, last: int, block: int):
        """ScoredLogits hook: the rows of positions ``[first, last)`` in blocks, never the whole
        chunk's logits (``runners/llama_cpp_logits``)."""
        from edgebench.harness.runners.llama_cpp_logits import stream_scored_logits

        return stream_scored_logits(_import(), self._llm, list(token_ids), first, last, block)

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
