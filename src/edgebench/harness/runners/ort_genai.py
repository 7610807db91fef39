"""ONNX Runtime GenAI (``onnxruntime-genai``): models made by its model builder; cpu (cuda when
the cuda package is installed)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "ort-genai"
# Session options a suite may pass (written into the config overlay, recorded in the row).
OPTIONS = FRAMEWORKS["ort-genai"].options or ()
_MIN_LENGTH = 512  # a windowed KV cache needs capacity >= the model's sliding window


def _import():
    try:
        import onnxruntime_genai as og
    except ImportError as e:
        raise RunnerUnavailable(f"onnxruntime-genai is not installed ({e})", extra=EXTRA) from e
    return og


class OrtGenAIRunner:
    """Greedy generation through ``og.Generator``; the clock starts before ``append_tokens``,
    which runs the prefill."""

    LOGITS_METHOD = "onnxruntime-genai Generator.get_output('logits') after the prompt"

    def __init__(self) -> None:
        self._model = None
        self._max_length = 0

    def probe(self) -> RunnerInfo:
        og = _import()
        from importlib.metadata import PackageNotFoundError, version

        devices = ["cpu"]
        for pkg in ("onnxruntime-genai-cuda",):
            try:
                version(pkg)
                devices.append("cuda")
            except PackageNotFoundError:
                pass
        return RunnerInfo("ort-genai", version("onnxruntime-genai"), tuple(devices),
                          {"onnxruntime_genai.__version__": og.__version__})

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False) -> LoadInfo:
        og = _import()
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown ort-genai option(s) {unknown}; known: {', '.join(OPTIONS)}")
        devices = self.probe().devices
        if device not in devices:
            raise DeviceUnavailable(
                f"ort-genai has no device {device!r} here (it has: {', '.join(devices)})")
        if not (Path(artifact) / "genai_config.json").exists():
            raise ConfigError(f"{artifact} is not an ONNX Runtime GenAI model folder "
                              "(no genai_config.json)")
        session = {"intra_op_num_threads": threads,
                   **{k: v for k, v in options.items() if k != "max_length"}}
        self._max_length = int(options.get("max_length", max(context_tokens, _MIN_LENGTH)))
        start = time.perf_counter()
        config = og.Config(str(artifact))
        config.clear_providers()
        self._cuda = device == "cuda"
        if self._cuda:
            config.append_provider("cuda")
        config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
        self._model = og.Model(config)
        load_s = time.perf_counter() - start
        return LoadInfo(load_s, f"onnxruntime-genai {self._model.device_type}",
                        {**session, "max_length": self._max_length},
                        # the session option is set in the config the model is built from
                        threads_applied=session.get("intra_op_num_threads") == threads)

    def tokenize(self, text: str) -> list[int]:
        og = _import()
        ids = list(og.Tokenizer(self._model).encode(text))
        return ids  # note: og's encode adds no BOS; edgebench feeds prepared IDs instead

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        og = _import()
        total = len(prefix_ids) + len(prompt_ids) + max_new_tokens
        params = og.GeneratorParams(self._model)
        params.set_search_options(do_sample=False, max_length=max(total, self._max_length),
                                  min_length=total)  # min_length: EOS does not stop the run
        gen = og.Generator(self._model, params)
        if prefix_ids:  # the depth, before the clock: a first append_tokens fills the KV cache
            gen.append_tokens(list(prefix_ids))
        clock = time.perf_counter_ns
        stamps, ids = [], []
        t0 = clock()
        gen.append_tokens(prompt_ids)  # the prefill runs here (after the depth, if any)
        while len(ids) < max_new_tokens:
            gen.generate_next_token()
            ids.append(int(gen.get_next_tokens()[0]))
            stamps.append(clock())
        del gen
        return TokenTimeline(t0, tuple(stamps), tuple(ids), len(prompt_ids))

    def logits(self, token_ids: list[int]):
        import numpy as np

        og = _import()
        params = og.GeneratorParams(self._model)
        params.set_search_options(max_length=max(len(token_ids) + 1, self._max_length))
        gen = og.Generator(self._model, params)
        gen.append_tokens(list(token_ids))
        out = np.asarray(gen.get_output("logits"), dtype=np.float32)[0]
        del gen
        if out.shape[0] != len(token_ids):
            from edgebench.errors import RunFailed

            raise RunFailed(f"onnxruntime-genai returned logits for {out.shape[0]} of "
                            f"{len(token_ids)} positions; this model gives no full logits")
        return out

    def accelerator_peak_mb(self) -> tuple[float, str] | None:
        """GPU memory this process holds on a ``cuda`` run (NVML; ``harness.gpu_memory``)."""
        if not getattr(self, "_cuda", False):
            return None
        from edgebench.harness.gpu_memory import process_gpu_mb

        return process_gpu_mb()

    def close(self) -> None:
        self._model = None
