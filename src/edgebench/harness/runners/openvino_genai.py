"""OpenVINO GenAI (``openvino-genai``): IR folders from optimum-intel; CPU, GPU and NPU when the
OpenVINO device list has them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "openvino"
_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}


def _import():
    try:
        import openvino as ov
        import openvino_genai as ovg
    except ImportError as e:
        raise RunnerUnavailable(f"openvino-genai is not installed ({e})", extra=EXTRA) from e
    return ov, ovg


class OpenVINOGenAIRunner:
    """Greedy generation through ``LLMPipeline.generate`` from token IDs, with a token-level
    streamer (the string streamer can be called fewer times than tokens are made).

    Suite options are OpenVINO properties (e.g. ``PERFORMANCE_HINT: LATENCY``), passed to the
    pipeline as given; ``INFERENCE_NUM_THREADS`` is set from the run's threads.

    Prefix caching is switched off: the default (paged-attention) pipeline otherwise reuses the
    KV cache of the previous repetition's identical prompt, and TTFT falls from ~160 ms to
    ~35 ms on Gemma 3 270M without any prefill being measured.
    """

    LOGITS_METHOD = ("OpenVINO Core on the same IR (LLMPipeline returns no logits): one "
                     "stateful inference over the tokens, state reset first")

    def __init__(self) -> None:
        self._pipe = None
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
             context_tokens: int, logits_only: bool = False) -> LoadInfo:
        _, ovg = _import()
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"openvino has no device {device!r} here (it has: {', '.join(devices)})")
        if not (Path(artifact) / "openvino_model.xml").exists():
            raise ConfigError(f"{artifact} is not an OpenVINO model folder "
                              "(no openvino_model.xml)")
        props = {"INFERENCE_NUM_THREADS": threads, **options} if device == "cpu" else \
            dict(options)
        scheduler = ovg.SchedulerConfig()
        scheduler.enable_prefix_caching = False
        start = time.perf_counter()
        self._pipe = ovg.LLMPipeline(str(artifact), _DEVICES[device], scheduler_config=scheduler,
                                     **props)
        load_s = time.perf_counter() - start
        self._ir = (str(Path(artifact) / "openvino_model.xml"), _DEVICES[device], props)
        return LoadInfo(load_s, _DEVICES[device], {**props, "enable_prefix_caching": False})

    def tokenize(self, text: str) -> list[int]:
        return [int(t) for t in self._pipe.get_tokenizer().encode(text).input_ids.data[0]]

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> TokenTimeline:
        import numpy as np

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
        self._pipe.generate(inputs, cfg, streamer)
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids))

    def logits(self, token_ids: list[int]):
        import numpy as np

        ov, _ = _import()
        if self._request is None:  # compiled once, on first use
            xml, device, props = self._ir
            self._request = ov.Core().compile_model(xml, device, props).create_infer_request()
        ids = np.array([token_ids], dtype=np.int64)
        self._request.reset_state()
        self._request.infer({"input_ids": ids, "attention_mask": np.ones_like(ids),
                             "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None],
                             "beam_idx": np.zeros(1, dtype=np.int32)})
        out = np.array(self._request.get_tensor("logits").data[0], dtype=np.float32)
        if out.shape[0] != len(token_ids):
            from edgebench.errors import RunFailed

            raise RunFailed(f"the OpenVINO model returns logits for {out.shape[0]} of "
                            f"{len(token_ids)} positions (exported with sliced logits)")
        return out

    def close(self) -> None:
        self._pipe = None
        self._request = None
