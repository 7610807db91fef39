"""Qualcomm QNN (``onnxruntime-qnn``): ONNX Runtime with the QNN execution provider, loaded
through ONNX Runtime's plugin-device API, on the Hexagon NPU's HTP backend.

On x86-64 the wheel's HTP backend is Qualcomm's **simulator**: numerics are the HTP's (the same
quantized arithmetic), timings are an emulator's, so rows say ``device_name = "htp-simulator"``
and ``measurement = "simulated"`` (kept, never ranked or gated). On an arm64 Snapdragon host
(Windows on Arm, or Linux with the same wheel family) ONNX Runtime lists the NPU as an
``OrtHardwareDeviceType.NPU`` device: rows say ``htp-npu`` and ``measured``.

The artifact (``edgebench prepare MODEL --target qnn:w8a16``) is a static-shape ONNX model
mapping ``input_ids [1, N]`` to ``logits [1, N, vocab]`` with no KV cache: ``logits`` runs the
graph once, ``generate`` re-runs the whole graph for each new token (greedy).

Never the old ``providers=[("QNNExecutionProvider", {...})]`` form: with it ONNX Runtime falls
back to the CPU without a word. The provider is added for the QNN devices ONNX Runtime lists,
CPU fallback is disabled (``session.disable_cpu_ep_fallback``; suite option
``cpu_fallback: true`` allows it, and the row's ``cpu_nodes`` then says how much ran on the
CPU), and the session must report ``QNNExecutionProvider`` first.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, DeviceUnavailable, RunFailed, RunnerUnavailable
from edgebench.harness.registry import FRAMEWORKS
from edgebench.harness.runner import LoadInfo, RunnerInfo, TokenTimeline

EXTRA = "qnn"
EP = "QNNExecutionProvider"
#: Suite options: QNN provider options passed through, plus edgebench's ``cpu_fallback``.
OPTIONS = FRAMEWORKS["qnn"].options or ()
#: The HTP the x86-64 simulator emulates unless a suite says otherwise (v75, soc 57: the
#: Snapdragon 8 Gen 3 / X Elite generation). Without an architecture the simulator cannot
#: finalize a float graph (QNN_COMMON_ERROR_MEM_ALLOC).
SIMULATOR_DEFAULTS = {"htp_arch": "75", "soc_model": "57"}
#: The device name of the x86-64 simulator, on the device axis and in every row: its runs
#: have their own run_keys, apart from a real NPU's ``htp``.
SIMULATOR = "htp-simulator"
QDQ_HINT = ("the HTP backend needs a quantized (QDQ) model: prepare it with "
            "`edgebench prepare MODEL --target qnn:w8a16`")
_BACKENDS = ("htp", "gpu", "cpu")
_registered = False
_probe_cache: RunnerInfo | None = None


def _import():
    try:
        import onnxruntime as ort
        import onnxruntime_qnn as oq
    except ImportError as e:
        raise RunnerUnavailable(f"onnxruntime-qnn is not installed ({e})", extra=EXTRA) from e
    return ort, oq


def _qnn_devices(ort, oq) -> list:
    """The QNN entries of ``ort.get_ep_devices()``, the provider library registered once per
    process; NPU-typed entries (a real Snapdragon) first, alone when there are any."""
    global _registered
    name = oq.get_ep_name()
    if not _registered and not any(d.ep_name == name for d in ort.get_ep_devices()):
        try:
            ort.register_execution_provider_library(name, oq.get_library_path())
        except Exception as e:  # noqa: BLE001
            raise RunnerUnavailable(f"the QNN provider library {oq.get_library_path()} does "
                                    f"not load: {e}", extra=EXTRA) from e
    _registered = True
    devs = [d for d in ort.get_ep_devices() if d.ep_name == name]
    npu = [d for d in devs if d.device.type == ort.OrtHardwareDeviceType.NPU]
    return npu or devs


def _real_npu(ort, devs) -> bool:
    return any(d.device.type == ort.OrtHardwareDeviceType.NPU for d in devs)


@contextlib.contextmanager
def _stderr_lines(out: list[str]):
    """Collect what native code writes to file descriptor 2 meanwhile (QNN reports why a
    backend does not load only in ONNX Runtime's log, not in the exception)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            out.extend(line for line in text.splitlines() if line.strip())


def _log_errors(lines: list[str], first: bool = False) -> str:
    """The error lines of ONNX Runtime's log, without colour codes and prefixes, deduplicated
    (``first``: only the first, the root cause)."""
    seen: list[str] = []
    for line in lines:
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if "[E:" not in line:
            continue
        msg = re.sub(r"^.*?\] ", "", line).strip()
        if msg and msg not in seen:
            seen.append(msg)
    return "; ".join(seen[:1] if first else seen)


def _session(ort, devs, model: bytes | str, provider_options: dict[str, str], threads: int,
             fallback: bool, lines: list[str]):
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: QNN warns about Windows-only features here
    so.intra_op_num_threads = threads
    so.add_provider_for_devices(devs, provider_options)
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if fallback else "1")
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    with _stderr_lines(lines):
        return ort.InferenceSession(model, sess_options=so)


def _tiny_model() -> bytes:
    """A one-node float graph (Add), to see whether a backend initializes."""
    from onnx import TensorProto, helper

    t = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Add", ["a", "a"], ["b"])], "probe",
                              [t("a", TensorProto.FLOAT, [1, 4])],
                              [t("b", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model.SerializeToString()


def _backend_check(ort, oq, devs, backend: str) -> str | None:
    """None when ``backend`` initializes and takes a one-node graph; else why not."""
    path = {"htp": oq.get_qnn_htp_path, "gpu": oq.get_qnn_gpu_path,
            "cpu": oq.get_qnn_cpu_path}[backend]()
    if not Path(path).exists():
        return f"not in this onnxruntime-qnn wheel (no {Path(path).name})"
    lines: list[str] = []
    try:
        sess = _session(ort, devs, _tiny_model(), {"backend_path": path}, 1, False, lines)
    except Exception as e:  # noqa: BLE001
        return _log_errors(lines, first=True) or str(e)
    if sess.get_providers()[0] != EP:
        return f"session runs on {sess.get_providers()[0]}, not {EP}"
    return None


def _count(sess) -> tuple[int, int]:
    """(nodes on QNN, nodes on any other provider) as ONNX Runtime partitioned the graph."""
    accel = other = 0
    for sub in sess.get_provider_graph_assignment_info():
        n = len(sub.get_nodes())
        if sub.ep_name == EP:
            accel += n
        else:
            other += n
    return accel, other


def _is_qdq(model) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


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
        ort, oq = _import()
        from importlib.metadata import version

        devs = _qnn_devices(ort, oq)
        if not devs:
            raise RunnerUnavailable("ONNX Runtime lists no QNNExecutionProvider device after "
                                    "registering the provider library", extra=EXTRA)
        simulated = not _real_npu(ort, devs)
        details = {"qnn_version": getattr(oq.build_and_package_info, "qnn_version", "?"),
                   "onnxruntime": ort.__version__, "machine": platform.machine()}
        devices, notes = [], []
        for backend in _BACKENDS:
            why = _backend_check(ort, oq, devs, backend)
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
        ort, oq = _import()
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
        devs = _qnn_devices(ort, oq)
        simulated = not _real_npu(ort, devs)
        fallback = str(options.get("cpu_fallback", False)).lower() in ("1", "true", "yes")
        provider = {"backend_path": oq.get_qnn_htp_path()}
        if simulated:
            provider.update(SIMULATOR_DEFAULTS)
        provider.update({k: str(v) for k, v in options.items() if k != "cpu_fallback"})

        start = time.perf_counter()
        model = onnx.load(str(path), load_external_data=False)
        if not _is_qdq(model) and options.get("enable_htp_fp16_precision") is None:
            raise ConfigError(f"{path}: a float model (no QuantizeLinear/DequantizeLinear "
                              f"nodes): {QDQ_HINT} (or set the option "
                              "enable_htp_fp16_precision: 1 to run it in fp16 on the HTP)")
        inputs = {i.name: i for i in model.graph.input}
        del model
        lines: list[str] = []
        try:
            sess = _session(ort, devs, str(path), provider, threads, fallback, lines)
        except Exception as e:  # noqa: BLE001
            raise RunFailed(self._explain(ort, devs, path, provider, threads, e, lines)) from e
        load_s = time.perf_counter() - start
        if sess.get_providers()[0] != EP:
            raise RunFailed(f"the session runs on {sess.get_providers()[0]}, not {EP}")
        self._sess = sess
        self._placement = _count(sess)

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
                    "intra_op_num_threads": threads, "backend": "htp",
                    "simulated": simulated}
        return LoadInfo(load_s, SIMULATOR if simulated else "htp-npu", settings,
                        threads_applied=None,  # the HTP takes no thread count
                        measurement="simulated" if simulated else "measured")

    def _explain(self, ort, devs, path, provider, threads, err, lines) -> str:
        """Why the HTP could not take the graph: the nodes it leaves to the CPU (found by
        partitioning again with fallback allowed), or QNN's own log."""
        log = _log_errors(lines)
        msg = f"the QNN HTP backend could not take {path.name}: {err}"
        if "fallback to CPU EP has been explicitly disabled" in str(err):
            try:
                sess = _session(ort, devs, str(path), provider, threads, True, [])
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

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> TokenTimeline:
        """Greedy: the whole static graph runs again for each new token (no KV cache)."""
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
