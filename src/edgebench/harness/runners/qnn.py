"""Qualcomm QNN (``onnxruntime-qnn``): ONNX Runtime with the QNN execution provider, loaded
through ONNX Runtime's plugin-device API, on the Hexagon NPU's HTP backend.

On x86-64 the wheel's HTP backend is Qualcomm's **simulator**: numerics are the HTP's (the same
quantized arithmetic), timings are an emulator's, so speed rows say ``device_name =
"htp-simulator"`` and ``measurement = "simulated"`` (kept, never ranked or gated), quality
rows ``numerics=measured;timings=simulated`` (``results.provenance``). On an arm64 Snapdragon
host (Windows on Arm, or Linux with the same wheel family) ONNX Runtime lists the NPU as an
``OrtHardwareDeviceType.NPU`` device: rows say ``htp-npu`` and ``measured``.

The artifact (``edgebench prepare MODEL --target qnn:w8a16``) is a static-shape ONNX model
mapping ``input_ids [1, N]`` to ``logits [1, N, vocab]`` with no KV cache: ``logits`` runs the
graph once, ``generate`` re-runs the whole graph for each new token (greedy).

The provider is added for the QNN devices ONNX Runtime lists (``qnn_session``: never the old
``providers=[...]`` form, which falls back to the CPU without a word), CPU fallback is
disabled (``session.disable_cpu_ep_fallback``; suite option ``cpu_fallback: true`` allows it,
and the row's ``cpu_nodes`` then says how much ran on the CPU), and the session must report
``QNNExecutionProvider`` first.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunFailed, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline
from edgebench.harness.runners import qnn_session as ep
from edgebench.harness.runners.qnn_session import EP, EXTRA

#: Suite options: QNN provider options passed through, plus edgebench's ``cpu_fallback``.
OPTIONS = FRAMEWORKS["qnn"].options or ()
#: The HTP the x86-64 simulator emulates unless a suite says otherwise (v75, soc 57: the
#: Snapdragon 8 Gen 3 / X Elite generation). Without an architecture the simulator cannot
#: finalize a float graph (QNN_COMMON_ERROR_MEM_ALLOC).
SIMULATOR_DEFAULTS = {"htp_arch": "75", "soc_model": "57"}
#: The device name of the x86-64 simulator, on the device axis and in every row: its runs
#: have their own run_keys, apart from a real NPU's ``htp``.
SIMULATOR = "htp-simulator"
_probe_cache: RunnerInfo | None = None
QDQ_HINT = ("the HTP backend needs a quantized (QDQ) model: prepare it with "
            "`edgebench prepare MODEL --target qnn:w8a16`")


def _find_model(artifact: Path) -> Path:
    artifact = Path(artifact)
    if artifact.is_file():
        return artifact
    if (artifact / "model.onnx").exists():
        return artifact / "model.onnx"
    found = sorted(artifact.glob("*.onnx"))
    if len(found) != 1:
        raise ConfigError(f"{artifact} is not a qnn artifact: expected model.onnx (or one "
                          f".onnx file), found {len(found)}")
    return found[0]


class QnnRunner:
    """ONNX Runtime + the QNN execution provider on the HTP (simulator on x86-64)."""

    LOGITS_METHOD = ("onnxruntime QNNExecutionProvider (HTP): one run of the static-shape graph "
                     "input_ids [1, N] -> logits [1, N, vocab]; a shorter sequence is padded "
                     "on the right (the model is causal) and its rows kept")

    def __init__(self) -> None:
        self._sess = None
        self._n = 0
        self._input = "input_ids"
        self._dtype = None
        self._mask: str | None = None
        self._tokenizer = None
        self._artifact: Path | None = None
        self._placement: tuple[int, int] | None = None

    def probe(self) -> RunnerInfo:
        global _probe_cache
        if _probe_cache is not None:
            return _probe_cache
        ort, oq = ep.import_ort()
        from importlib.metadata import version

        devs = ep.qnn_devices(ort, oq)
        if not devs:
            raise RunnerUnavailable("ONNX Runtime lists no QNNExecutionProvider device after "
                                    "registering the provider library", extra=EXTRA)
        simulated = not ep.real_npu(ort, devs)
        details = {"qnn_version": getattr(oq.build_and_package_info, "qnn_version", "?"),
                   "onnxruntime": ort.__version__, "machine": platform.machine()}
        devices, notes = [], []
        for backend in ep.BACKENDS:
            why = ep.backend_check(ort, oq, devs, backend)
            if why is None:
                details[f"backend {backend}"] = "loads" + (
                    " (the HTP simulator: timings simulated)" if simulated and backend == "htp"
                    else "")
                if backend == "htp":  # the device axis says which: a simulator is no NPU
                    devices.append(SIMULATOR if simulated else "htp")
            else:
                details[f"backend {backend}"] = f"unavailable: {why}"
                notes.append(f"{backend}: {why}")
        if simulated:
            notes.insert(0, "htp is the simulator here: timings simulated, never ranked")
        details["note"] = "; ".join(notes)
        _probe_cache = RunnerInfo("qnn", version("onnxruntime-qnn"), tuple(devices), details)
        return _probe_cache

    def load(self, artifact: Path, device: str, threads: int, options: dict[str, Any],
             context_tokens: int, logits_only: bool = False) -> LoadInfo:
        ort, oq = ep.import_ort()
        import onnx

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown qnn option(s) {unknown}; known: {', '.join(OPTIONS)}")
        info = self.probe()
        if device not in info.devices:
            hint = ""
            if device == "htp" and SIMULATOR in info.devices:
                hint = (f"; this machine has no Hexagon NPU, only Qualcomm's HTP simulator: "
                        f"run --device {SIMULATOR} (the NPU's numerics, simulated timings)")
            raise DeviceUnavailable(
                f"qnn has no device {device!r} here (it has: {', '.join(info.devices) or 'none'}"
                f"; {info.details.get('note', '')}){hint}")
        path = _find_model(artifact)
        self._artifact = path.parent
        devs = ep.qnn_devices(ort, oq)
        simulated = not ep.real_npu(ort, devs)
        fallback = str(options.get("cpu_fallback", False)).lower() in ("1", "true", "yes")
        provider = {"backend_path": oq.get_qnn_htp_path()}
        if simulated:
            provider.update(SIMULATOR_DEFAULTS)
        provider.update({k: str(v) for k, v in options.items() if k != "cpu_fallback"})

        start = time.perf_counter()
        model = onnx.load(str(path), load_external_data=False)
        if not ep.is_qdq(model) and options.get("enable_htp_fp16_precision") is None:
            raise ConfigError(f"{path}: a float model (no QuantizeLinear/DequantizeLinear "
                              f"nodes): {QDQ_HINT} (or set the option "
                              "enable_htp_fp16_precision: 1 to run it in fp16 on the HTP)")
        inputs = {i.name: i for i in model.graph.input}
        del model
        lines: list[str] = []
        try:
            sess = ep.session(ort, devs, str(path), provider, threads, fallback, lines)
        except Exception as e:  # noqa: BLE001
            raise RunFailed(self._explain(ort, devs, path, provider, threads, e, lines)) from e
        load_s = time.perf_counter() - start
        if sess.get_providers()[0] != EP:
            raise RunFailed(f"the session runs on {sess.get_providers()[0]}, not {EP}")
        self._sess = sess
        self._placement = ep.placement(sess)

        names = [i.name for i in sess.get_inputs()]
        self._input = "input_ids" if "input_ids" in names else names[0]
        self._mask = "attention_mask" if "attention_mask" in names else None
        extra_inputs = set(names) - {self._input, self._mask}
        if extra_inputs:
            raise ConfigError(f"{path}: unexpected inputs {sorted(extra_inputs)} (a qnn "
                              "artifact takes input_ids [1, N], optionally attention_mask)")
        shape = sess.get_inputs()[names.index(self._input)].shape
        if len(shape) != 2 or not all(isinstance(d, int) for d in shape) or shape[0] != 1:
            raise ConfigError(f"{path}: input {self._input} has shape {shape}; a qnn artifact "
                              "has a static shape [1, N]")
        self._n = int(shape[1])
        elem = inputs[self._input].type.tensor_type.elem_type
        import numpy as np

        self._dtype = np.int32 if elem == onnx.TensorProto.INT32 else np.int64
        if context_tokens > self._n:
            raise ConfigError(f"{path} has a static sequence length N = {self._n}; this run "
                              f"needs {context_tokens} tokens (prepare the artifact with N >= "
                              f"{context_tokens}, or use a shorter prompt / n_ctx)")
        settings = {**provider, "cpu_fallback": fallback, "sequence_length": self._n,
                    "qnn_version": info.details.get("qnn_version", "?"),
                    "intra_op_num_threads": threads, "backend": "htp",
                    "simulated": simulated}
        return LoadInfo(load_s, SIMULATOR if simulated else "htp-npu", settings,
                        threads_applied=None,  # the HTP takes no thread count
                        measurement="simulated" if simulated else "measured")

    def _explain(self, ort, devs, path, provider, threads, err, lines) -> str:
        """Why the HTP could not take the graph: the nodes it leaves to the CPU (found by
        partitioning again with fallback allowed), or QNN's own log."""
        log = ep.log_errors(lines)
        msg = f"the QNN HTP backend could not take {path.name}: {err}"
        if "fallback to CPU EP has been explicitly disabled" in str(err):
            try:
                sess = ep.session(ort, devs, str(path), provider, threads, True, [])
                cpu = [f"{n.op_type} {n.name!r}" if n.name else n.op_type
                       for sub in sess.get_provider_graph_assignment_info() if sub.ep_name != EP
                       for n in sub.get_nodes()]
                if cpu:
                    shown = ", ".join(cpu[:10]) + (f" and {len(cpu) - 10} more"
                                                   if len(cpu) > 10 else "")
                    msg = (f"the QNN HTP backend cannot run {len(cpu)} node(s) of {path.name}, "
                           f"which would fall back to the CPU: {shown} (CPU fallback is "
                           "disabled; the suite option cpu_fallback: true allows it)")
            except Exception:  # noqa: BLE001
                pass
        return msg + (f" [QNN log: {log}]" if log and log not in msg else "")

    def graph_placement(self) -> tuple[int, int] | None:
        return self._placement

    def tokenize(self, text: str) -> list[int]:
        if self._tokenizer is None:
            try:
                from tokenizers import Tokenizer
            except ImportError as e:
                raise RunnerUnavailable(f"tokenizers is not installed ({e})", extra=EXTRA) from e
            path = (self._artifact or Path(".")) / "tokenizer.json"
            if not path.exists():
                raise RunFailed(f"no tokenizer.json beside the qnn model in {self._artifact}")
            self._tokenizer = Tokenizer.from_file(str(path))
        return list(self._tokenizer.encode(text).ids)

    def _run(self, ids: list[int]):
        """Logits [len(ids), vocab] of one run of the static graph, ``ids`` padded on the right
        to N (position i sees only positions <= i in a causal model)."""
        import numpy as np

        n = len(ids)
        if not 0 < n <= self._n:
            raise RunFailed(f"the qnn artifact has a static sequence length N = {self._n}; "
                            f"got {n} tokens (prepare it with N = n_ctx for quality runs)")
        feed = {self._input: np.zeros((1, self._n), dtype=self._dtype)}
        feed[self._input][0, :n] = ids
        if self._mask:
            mask = np.zeros((1, self._n), dtype=self._dtype)
            mask[0, :n] = 1
            feed[self._mask] = mask
        out = self._sess.run(None, feed)[0]
        return np.asarray(out, dtype=np.float32).reshape(self._n, -1)[:n]

    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 prefix_ids: Sequence[int] = ()) -> TokenTimeline:
        """Greedy: the whole static graph runs again for each new token (no KV cache)."""
        if prefix_ids:  # the planner skips such cells; a direct call is told why
            raise RunFailed(f"qnn cannot measure at depth {len(prefix_ids)}: "
                            f"{FRAMEWORKS['qnn'].no_depth}")
        if len(prompt_ids) + max_new_tokens - 1 > self._n:
            raise RunFailed(f"{len(prompt_ids)} prompt + {max_new_tokens} new tokens do not fit "
                            f"the artifact's static sequence length N = {self._n}")
        clock = time.perf_counter_ns
        seq = list(prompt_ids)
        stamps, new = [], []
        t0 = clock()
        while len(new) < max_new_tokens:
            tok = int(self._run(seq)[-1].argmax())
            stamps.append(clock())
            new.append(tok)
            seq.append(tok)
        return TokenTimeline(t0, tuple(stamps), tuple(new), len(prompt_ids))

    def logits(self, token_ids: list[int]):
        return self._run(list(token_ids))

    def close(self) -> None:
        self._sess = None
        self._tokenizer = None
