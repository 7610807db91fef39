"""Device targets for ``edgebench recommend --device``: what runs there, which rows are theirs.

A store row belongs to a target by its ``device`` column and the machine's fingerprint columns
(``cpu_model``, ``accelerators``, ``os``). ``this`` is the current machine: its rows by
``machine_id`` or by hardware fingerprint (``compare.hardware_key``: last night's CI runner is
another machine but the same hardware); its facts are passed in by the caller; nothing here
probes the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgebench.decision.compare import hardware_key
from edgebench.errors import ConfigError
from edgebench.harness.registry import suggest

#: The facts about a machine that targets read (a subset of a store row / Fingerprint).
FACTS = ("machine_id", "cpu_model", "accelerators", "os")


@dataclass(frozen=True)
class Target:
    """A kind of device, the frameworks that can run there and how to find its rows.

    A row matches when its ``device`` is in ``devices`` (any if empty) and its fingerprint
    contains one of ``fingerprint`` (any if empty) and none of ``exclude``; a row whose device
    is in ``own_devices`` (only this target has them, e.g. ``metal``) matches regardless.
    """

    name: str
    description: str
    frameworks: tuple[str, ...]
    measure: str  # the edgebench command that measures it, run on such a device
    note: str = ""  # what that command cannot measure yet
    devices: tuple[str, ...] = ()
    fingerprint: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    own_devices: tuple[str, ...] = ()

    def matches(self, row: Mapping[str, Any], machine_id: str | None = None,
                hardware: str | None = None) -> bool:
        """Whether a store row (a mapping of its columns) was measured on this target;
        ``this``: on the machine ``machine_id`` or on hardware of the fingerprint ``hardware``."""
        if self.name == "this":
            return (machine_id is not None and row.get("machine_id") == machine_id
                    or hardware is not None and hardware_key(row) == hardware)
        device = str(row.get("device") or "")
        if device in self.own_devices:
            return True
        if self.devices and device not in self.devices:
            return False
        text = _facts_text(row)
        if any(x in text for x in self.exclude):
            return False
        return not self.fingerprint or any(x in text for x in self.fingerprint)


def _facts_text(row: Mapping[str, Any]) -> str:
    return " | ".join(str(row.get(k) or "") for k in ("cpu_model", "accelerators", "os")).lower()


_JETSON = ("orin", "jetson", "tegra", "xavier")
_QCOM = ("snapdragon", "qualcomm", "oryon", "adreno", "kryo")
_ARM = ("aarch64", "arm64", "armv8", "armv9")
_CPU = "edgebench run cpu-laptop"
_CUDA = "edgebench run --device cuda --precision f16 --precision q8_0 --precision q4_k_m"

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("cpu", "any CPU (rows with device cpu)",
           ("llama.cpp (llama-cpp)", "ONNX Runtime GenAI / Olive (ort-genai)",
            "OpenVINO (openvino)", "MLX on CPU (mlx)"), _CPU, devices=("cpu",)),
    Target("intel-cpu", "Intel CPU",
           ("OpenVINO (openvino)", "llama.cpp (llama-cpp)", "ONNX Runtime GenAI (ort-genai)"),
           _CPU, devices=("cpu",), fingerprint=("intel",)),
    Target("intel-gpu", "Intel integrated or Arc GPU",
           ("OpenVINO GPU plugin (openvino)", "llama.cpp Vulkan/SYCL (llama-cpp)"),
           "edgebench run --framework openvino --precision int4 --precision int8 "
           "--precision fp16 --device gpu", devices=("gpu", "vulkan"), fingerprint=("intel",)),
    Target("intel-npu", "Intel NPU (Core Ultra)", ("OpenVINO NPU plugin (openvino)",),
           "edgebench run --framework openvino --precision int4 --precision int8 --device npu",
           devices=("npu",), fingerprint=("intel",)),
    Target("apple-silicon", "Apple M-series (macOS, arm64)",
           ("MLX (mlx)", "llama.cpp Metal (llama-cpp)"),
           "edgebench run --framework mlx --precision 4bit --precision 8bit --precision fp16 "
           "--device metal", fingerprint=("apple silicon", "apple m"), own_devices=("metal",)),
    Target("snapdragon", "Qualcomm Snapdragon (Hexagon NPU, Adreno GPU, Oryon/Kryo CPU)",
           ("QNN / Qualcomm AI Hub (HTP NPU)", "ONNX Runtime GenAI with the QNN EP",
            "llama.cpp on the Arm CPU or Adreno (OpenCL)"),
           "edgebench run snapdragon",
           note="on x86-64 the snapdragon suite runs the HTP simulator: the NPU's numerics "
                "(quality), never its speed; on the Snapdragon itself `edgebench run snapdragon "
                "--device htp` measures NPU speed too (and `edgebench run cpu-laptop` its CPU "
                "runtimes); with an AI Hub token, `edgebench run --framework qai-hub "
                "--precision w8a16 --device snapdragon --prompt-tokens 512` gives AI Hub's "
                "estimate; `edgebench import qai-hub-models` brings Qualcomm's published "
                "figures (of its own models)",
           fingerprint=_QCOM, own_devices=("htp",)),
    Target("nvidia-gpu", "NVIDIA discrete GPU (CUDA)",
           ("llama.cpp CUDA (llama-cpp)", "ONNX Runtime GenAI CUDA / Olive (ort-genai)"),
           _CUDA, devices=("cuda",), exclude=_JETSON),
    Target("jetson", "NVIDIA Jetson (Orin, unified memory)",
           ("llama.cpp CUDA (llama-cpp)", "ONNX Runtime GenAI CUDA (ort-genai)"),
           _CUDA, fingerprint=_JETSON),
    Target("arm-cpu", "Arm CPU (aarch64 Linux, Android, Windows on Arm)",
           ("llama.cpp (llama-cpp)", "ONNX Runtime GenAI (ort-genai)"), _CPU,
           devices=("cpu",), fingerprint=_ARM),
    Target("this", "this machine (rows with its machine_id or its hardware fingerprint)",
           ("whatever `edgebench frameworks` lists as installed",), _CPU),
)}


def every_row(name: str, description: str) -> Target:
    """A target that matches every row given to it (rows the caller selected, e.g. a report's
    rows of one device); the decision tree answers for it by the machine's facts."""
    return Target(name, description, ("the runtimes measured there",), _CPU)


def get(name: str) -> Target:
    """The target named ``name``.

    Raises:
        ConfigError: an unknown name, with did-you-mean and the list.
    """
    if name in TARGETS:
        return TARGETS[name]
    raise ConfigError(f"unknown device target {name!r}{suggest(name, TARGETS)}; "
                      f"known: {', '.join(TARGETS)}")


def for_machine(facts: Mapping[str, Any]) -> Target:
    """The most specific target describing a machine (for ``this`` when it has no rows)."""
    text = _facts_text(facts)
    if any(x in text for x in _JETSON):
        return TARGETS["jetson"]
    if any(x in text for x in _QCOM):
        return TARGETS["snapdragon"]
    if "apple" in text or ("darwin" in text and "arm64" in text):
        return TARGETS["apple-silicon"]
    if "nvidia" in str(facts.get("accelerators") or "").lower():
        return TARGETS["nvidia-gpu"]
    if "intel" in str(facts.get("cpu_model") or "").lower():
        return TARGETS["intel-cpu"]
    if any(x in text for x in _ARM):
        return TARGETS["arm-cpu"]
    return TARGETS["cpu"]
