"""ONNX Runtime's QNN execution provider, as the qnn runner drives it: the provider library
registered once per process, sessions through the plugin-device API with CPU fallback off and
graph-assignment recording on, which backends initialize, and how many nodes each provider took.

Never the old ``providers=[("QNNExecutionProvider", {...})]`` form: with it ONNX Runtime falls
back to the CPU without a word.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from edgebench.errors import RunnerUnavailable

EXTRA = "qnn"
EP = "QNNExecutionProvider"
BACKENDS = ("htp", "gpu", "cpu")
_registered = False


def import_ort():
    try:
        import onnxruntime as ort
        import onnxruntime_qnn as oq
    except ImportError as e:
        raise RunnerUnavailable(f"onnxruntime-qnn is not installed ({e})", extra=EXTRA) from e
    return ort, oq


def qnn_devices(ort, oq) -> list:
    """The QNN entries of ``ort.get_ep_devices()``, the provider library registered once per
    process; NPU-typed entries (a real Snapdragon) first, alone when there are any."""
    global _registered
    name = oq.get_ep_name()
    if not _registered and not any(d.ep_name == name for d in ort.get_ep_devices()):
        try:
            with stderr_lines([]):
                ort.register_execution_provider_library(name, oq.get_library_path())
        except Exception as e:  # noqa: BLE001
            raise RunnerUnavailable(f"the QNN provider library {oq.get_library_path()} does "
                                    f"not load: {e}", extra=EXTRA) from e
    _registered = True
    devs = [d for d in ort.get_ep_devices() if d.ep_name == name]
    npu = [d for d in devs if d.device.type == ort.OrtHardwareDeviceType.NPU]
    return npu or devs


def real_npu(ort, devs) -> bool:
    return any(d.device.type == ort.OrtHardwareDeviceType.NPU for d in devs)


@contextlib.contextmanager
def stderr_lines(out: list[str]):
    """Collect what native code writes to file descriptors 1 and 2 meanwhile: QNN reports why a
    backend does not load only in ONNX Runtime's log, not in the exception, and its HTP library
    prints a line of its own to standard output (which would corrupt ``--format json``)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        for fd in saved:
            os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            for fd, keep in saved.items():
                os.dup2(keep, fd)
                os.close(keep)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            out.extend(line for line in text.splitlines() if line.strip())


def log_errors(lines: list[str], first: bool = False) -> str:
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


def session(ort, devs, model: bytes | str, provider_options: dict[str, str], threads: int,
             fallback: bool, lines: list[str]):
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: QNN warns about Windows-only features here
    so.intra_op_num_threads = threads
    so.add_provider_for_devices(devs, provider_options)
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if fallback else "1")
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    with stderr_lines(lines):
        return ort.InferenceSession(model, sess_options=so)


def tiny_model() -> bytes:
    """A one-node float graph (Add), to see whether a backend initializes."""
    from onnx import TensorProto, helper

    t = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Add", ["a", "a"], ["b"])], "probe",
                              [t("a", TensorProto.FLOAT, [1, 4])],
                              [t("b", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model.SerializeToString()


def backend_check(ort, oq, devs, backend: str) -> str | None:
    """None when ``backend`` initializes and takes a one-node graph; else why not."""
    path = {"htp": oq.get_qnn_htp_path, "gpu": oq.get_qnn_gpu_path,
            "cpu": oq.get_qnn_cpu_path}[backend]()
    if not Path(path).exists():
        return f"not in this onnxruntime-qnn wheel (no {Path(path).name})"
    lines: list[str] = []
    try:
        sess = session(ort, devs, tiny_model(), {"backend_path": path}, 1, False, lines)
    except Exception as e:  # noqa: BLE001
        return log_errors(lines, first=True) or str(e)
    if sess.get_providers()[0] != EP:
        return f"session runs on {sess.get_providers()[0]}, not {EP}"
    return None


def placement(sess) -> tuple[int, int]:
    """(nodes on QNN, nodes on any other provider) as ONNX Runtime partitioned the graph."""
    accel = other = 0
    for sub in sess.get_provider_graph_assignment_info():
        n = len(sub.get_nodes())
        if sub.ep_name == EP:
            accel += n
        else:
            other += n
    return accel, other


def is_qdq(model) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
