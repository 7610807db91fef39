"""OpenVINO GenAI (``openvino-genai``): IR folders from optimum-intel; CPU, GPU and NPU when the
OpenVINO device list has them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunFailed, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "openvino"
_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}
#: ``std::numeric_limits<size_t>::max()``: what openvino.genai's own
#: ``get_latency_oriented_scheduler_config()`` puts in ``max_num_batched_tokens``
UNLIMITED = 2**64 - 1
#: the SchedulerConfig fields recorded in the row's ``runtime_settings``
_SCHEDULER_FIELDS = ("max_num_batched_tokens", "dynamic_split_fuse", "enable_prefix_caching",
                     "cache_size", "num_kv_blocks", "max_num_seqs", "use_cache_eviction",
                     "use_sparse_attention")
#: options LLMPipeline takes itself (not OpenVINO device properties)
_GENAI_KEYS = ("ATTENTION_BACKEND",)
#: the device properties of the KV cache's element type: the hint, and its per-part overrides
_KV_KEYS = ("KV_CACHE_PRECISION", "KEY_CACHE_PRECISION", "VALUE_CACHE_PRECISION")


def _import():
    try:
        import openvino as ov
        import openvino_genai as ovg
    except ImportError as e:
        raise RunnerUnavailable(f"openvino-genai is not installed ({e})", extra=EXTRA) from e
    return ov, ovg


def scheduler_config(ovg):
    """The scheduler ``LLMPipeline`` uses when given none, with prefix caching off.

    Given no ``scheduler_config``, LLMPipeline on x86-64/ARM64 builds its continuous-batching
    (paged-attention) pipeline with ``get_latency_oriented_scheduler_config()``:
    ``max_num_batched_tokens = SIZE_MAX`` ("don't limit total batch size") and
    ``enable_prefix_caching = true``. Passing a bare ``SchedulerConfig()`` instead would replace
    that with the struct's throughput defaults, ``max_num_batched_tokens = 256`` with
    ``dynamic_split_fuse = true``, and a 512-token prompt would be prefilled in two chunks.
    """
    s = ovg.SchedulerConfig()
    s.max_num_batched_tokens = UNLIMITED
    s.enable_prefix_caching = False
    return s


def reported_timing(perf_metrics, n_tokens: int) -> dict[str, float | None]:
    """The pipeline's own timing of one ``generate`` in edgebench's definitions (METRICS.md).

    ``ttft_ms``: GenAI's TTFT (first token's step end minus the start of its ``generate``, C++
    side). ``decode_tok_s``: ``(N - 1) / (tN - t1)`` over GenAI's per-step token times
    (``raw_metrics.m_new_token_times``, ms on the monotonic clock) when every step gave one
    token; otherwise GenAI's ``get_throughput()`` (1 / mean TPOT from the second token on, the
    same quantity when the first step gives one token). None with fewer than two tokens.
    """
    raw = perf_metrics.raw_metrics
    times = list(raw.m_new_token_times)
    batches = list(raw.m_batch_sizes)
    decode = None
    if n_tokens >= 2:
        if len(times) == n_tokens and all(b == 1 for b in batches) and times[-1] > times[0]:
            decode = (n_tokens - 1) / ((times[-1] - times[0]) / 1000.0)
        else:
            decode = float(perf_metrics.get_throughput().mean) or None
    return {"ttft_ms": float(perf_metrics.get_ttft().mean), "decode_tok_s": decode}


class OpenVINOGenAIRunner:
    """Greedy generation through ``LLMPipeline.generate`` from token IDs, with a token-level
    streamer (the string streamer can be called fewer times than tokens are made).

    Suite options are OpenVINO properties (e.g. ``PERFORMANCE_HINT: LATENCY``), passed to the
    pipeline as given; ``INFERENCE_NUM_THREADS`` is set from the run's threads.

    Pipeline: LLMPipeline's default on CPU (continuous batching on paged attention) with its
    own latency-oriented scheduler settings, except prefix caching, which is switched off
    (:func:`scheduler_config`): otherwise the KV cache of the previous repetition's identical
    prompt is reused and TTFT falls from ~160 ms to ~35 ms on Gemma 3 270M without any
    prefill being measured. The prompt is prefilled in one step (no chunking). The scheduler
    fields are recorded in the load's options. The suite option ``ATTENTION_BACKEND: SDPA``
    selects GenAI's stateful pipeline instead (it resets its KV state on every non-chat
    ``generate``, so no scheduler is passed).

    Token stamps are taken in the streamer, which GenAI calls from its own worker thread after
    a queue hand-off; each repetition also carries GenAI's own timing (``reported``) so the
    harness can cross-check the two.
    """

    LOGITS_METHOD = ("OpenVINO Core on the same IR (LLMPipeline returns no logits): one "
                     "stateful inference over the tokens, state reset first")

    def __init__(self) -> None:
        self._pipe = None
        self._tokenizer = None
        self._artifact: Path | None = None
        self._ir: tuple[str, str, dict] | None = None
        self._request = None

    def probe(self) -> RunnerInfo:
        ov, ovg = _import()
        from importlib.metadata import version

        have = ov.Core().available_devices
        devices = [d for d, name in _DEVICES.items() if any(h.startswith(name) for h in have)]
        return RunnerInfo("openvino", version("openvino-genai"), tuple(devices),
                          {"openvino": ov.get_version(), "devices": ", ".join(have)})

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False,
             kv_cache: str | None = None) -> LoadInfo:
        ov, ovg = _import()
        options = {**options, **kv_settings(kv_cache, options)}
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"openvino has no device {device!r} here (it has: {', '.join(devices)})")
        if not (Path(artifact) / "openvino_model.xml").exists():
            raise ConfigError(f"{artifact} is not an OpenVINO model folder "
                              "(no openvino_model.xml)")
        self.close()
        ov_device = _DEVICES[device]
        props = {"INFERENCE_NUM_THREADS": threads, **options} if device == "cpu" else \
            dict(options)
        self._artifact = Path(artifact)
        # for openvino.Core: without GenAI's own keys, which the device plugins reject
        core_props = {k: v for k, v in props.items() if k not in _GENAI_KEYS}
        self._ir = (str(self._artifact / "openvino_model.xml"), ov_device, core_props)
        core = ov.Core()
        if logits_only:
            # quality runs: the IR compiled once, here, off the clock; no LLMPipeline (one copy)
            start = time.perf_counter()
            compiled = core.compile_model(*self._ir)
            self._request = compiled.create_infer_request()
            load_s = time.perf_counter() - start
            used = [str(d) for d in compiled.get_property("EXECUTION_DEVICES")]
            applied = None
            if device == "cpu":  # read back from the compiled model
                applied = int(compiled.get_property("INFERENCE_NUM_THREADS")) == threads
            return LoadInfo(load_s, _device_name(core, used), dict(core_props),
                            threads_applied=applied)
        settings = {**props, **kv_precision(core, ov_device, props)}
        kwargs = dict(props)
        if str(options.get("ATTENTION_BACKEND", "PA")).upper() == "SDPA":
            settings["pipeline"] = "stateful (SDPA)"
        else:
            scheduler = scheduler_config(ovg)
            kwargs["scheduler_config"] = scheduler
            settings["pipeline"] = "continuous batching (paged attention)"
            settings.update({f: getattr(scheduler, f) for f in _SCHEDULER_FIELDS})
        start = time.perf_counter()
        self._pipe = ovg.LLMPipeline(str(artifact), ov_device, **kwargs)
        load_s = time.perf_counter() - start
        # LLMPipeline exposes no compiled model to read INFERENCE_NUM_THREADS back from; the
        # plugin compiled with it (the CPU plugin rejects a property it does not take).
        applied = props.get("INFERENCE_NUM_THREADS") == threads if device == "cpu" else None
        return LoadInfo(load_s, _device_name(core, [ov_device]), settings,
                        threads_applied=applied)

    # No kv_cache_mb(): LLMPipeline reports no KV size (only ContinuousBatchingPipeline's
    # get_metrics().kv_cache_size_in_bytes does, for the blocks allocated so far), and the
    # stateful IR's query_state() returns f32 tensors whatever the stored precision.

    def tokenize(self, text: str) -> list[int]:
        if self._pipe is not None:
            tok = self._pipe.get_tokenizer()
        else:
            if self._tokenizer is None:
                _, ovg = _import()
                self._tokenizer = ovg.Tokenizer(str(self._artifact))
            tok = self._tokenizer
        return [int(t) for t in tok.encode(text).input_ids.data[0]]

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        import numpy as np

        if prefix_ids:  # the planner skips such cells; a direct call is told why
            raise RunFailed(f"openvino cannot measure at depth {len(prefix_ids)}: "
                            f"{FRAMEWORKS['openvino'].no_depth}")
        if self._pipe is None:
            raise RunFailed("the OpenVINO runner was loaded with logits_only=True: no pipeline")
        ov, ovg = _import()
        clock = time.perf_counter_ns
        stamps: list[int] = []
        ids: list[int] = []

        class _Tokens(ovg.StreamerBase):
            def write(self, token):
                now = clock()
                for t in token if isinstance(token, list) else [token]:
                    stamps.append(now)
                    ids.append(int(t))
                return ovg.StreamingStatus.RUNNING

            def end(self):
                pass

        cfg = ovg.GenerationConfig()
        cfg.max_new_tokens, cfg.do_sample, cfg.ignore_eos = max_new_tokens, False, True
        inputs = ov.Tensor(np.array([prompt_ids], dtype=np.int64))
        streamer = _Tokens()
        t0 = clock()
        result = self._pipe.generate(inputs, cfg, streamer)
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids),
                             reported=reported_timing(result.perf_metrics, len(stamps)))

    def logits(self, token_ids: list[int]):
        import numpy as np

        ov, _ = _import()
        if self._request is None:
            # loaded for generation (lm-eval uses both): a second, compiled copy of the IR.
            # Quality runs load with logits_only=True and never get here.
            xml, device, props = self._ir
            self._request = ov.Core().compile_model(xml, device, props).create_infer_request()
        ids = np.array([token_ids], dtype=np.int64)
        self._request.reset_state()
        self._request.infer({"input_ids": ids, "attention_mask": np.ones_like(ids),
                             "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None],
                             "beam_idx": np.zeros(1, dtype=np.int32)})
        out = np.array(self._request.get_tensor("logits").data[0], dtype=np.float32)
        if out.shape[0] != len(token_ids):
            raise RunFailed(f"the OpenVINO model returns logits for {out.shape[0]} of "
                            f"{len(token_ids)} positions (exported with sliced logits)")
        return out

    def close(self) -> None:
        self._pipe = None
        self._tokenizer = None
        self._request = None


def kv_settings(kv_cache: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The device property that imposes KV-cache type ``kv_cache``: the ``KV_CACHE_PRECISION``
    hint (the CPU plugin takes u8, u4, u3, bf16, f16, f32 and rejects others at compile).
    Empty when ``kv_cache`` is None.

    Raises:
        ConfigError: an unknown type, or suite options that set the KV precision otherwise.
    """
    if kv_cache is None:
        return {}
    types = FRAMEWORKS["openvino"].kv_cache_types
    if kv_cache not in types:
        raise ConfigError(f"openvino has no KV-cache type {kv_cache} (it has: "
                          f"{', '.join(types)})")
    for key in _KV_KEYS:
        if key in options and str(options[key]).lower() != kv_cache:
            raise ConfigError(f"openvino option {key}={options[key]!r} conflicts with "
                              f"kv_cache {kv_cache} (which sets KV_CACHE_PRECISION={kv_cache})")
    return {"KV_CACHE_PRECISION": kv_cache}


def kv_precision(core, ov_device: str, props: dict[str, Any]) -> dict[str, Any]:
    """The KV cache's element types for ``runtime_settings`` (:data:`_KV_KEYS`) and where they
    come from. A requested value is recorded as requested: LLMPipeline exposes no compiled model
    to read it back from (compiling the IR a second time would cost seconds and its memory
    inside the load); a compiled model reads back KEY/VALUE_CACHE_PRECISION = the
    KV_CACHE_PRECISION hint unless set themselves. Without a request, the device plugin's
    default from ``Core.get_property`` (u8 on the CPU plugin: its default cache is quantized)."""
    hint = props.get("KV_CACHE_PRECISION")
    out: dict[str, Any] = {}
    for key in _KV_KEYS:
        value = props.get(key, hint)
        if value is None:
            try:
                value = core.get_property(ov_device, key)
            except Exception:  # noqa: BLE001 - a plugin without the property: not recorded
                continue
        out[key] = value.to_string() if hasattr(value, "to_string") else str(value).lower()
    if out:
        out["kv_cache_precision_from"] = (
            "requested (LLMPipeline exposes no compiled model to read it back)"
            if any(k in props for k in _KV_KEYS)
            else f"plugin default: Core.get_property({ov_device})")
    return out


def _device_name(core, devices: list[str]) -> str:
    """The devices as OpenVINO names them: ``"CPU: <FULL_DEVICE_NAME>"`` for each."""
    names = []
    for d in devices:
        try:
            names.append(f"{d}: {core.get_property(d, 'FULL_DEVICE_NAME')}")
        except Exception:  # noqa: BLE001 - a device without the property keeps its own name
            names.append(d)
    return ", ".join(names)
