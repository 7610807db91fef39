"""The chapter's framework-selection tree, as data: (target, situation) -> what to try first.

Used only when the store has no measured row for a target. Its answers are labelled
"guidance, not measured on this device" and carry the command that would measure them; the
chapter's figures (``CLAIMS``, a copy of ``chapter-claims.csv``) are quoted as claims, never
as measurements.
"""

from __future__ import annotations

import dataclasses

from edgebench.decision.objective import Constraints
from edgebench.decision.result import GUIDANCE_LABEL, Advice, Recommendation
from edgebench.decision.targets import Target

#: The chapter's comparison table: framework -> (quantization, memory, speed-up, use case).
CLAIMS: dict[str, tuple[str, str, str, str]] = {
    "llama.cpp": ("Q4_K_M", "~4 GB", "2-3x", "cross-platform deployment"),
    "Olive": ("INT4", "60-75% reduction", "2-6x", "enterprise workflows"),
    "OpenVINO": ("INT8/INT4", "50-75% reduction", "2-5x", "Intel hardware optimization"),
    "QNN": ("INT8/INT4", "50-80% reduction", "5-15x", "Qualcomm mobile/edge"),
    "MLX": ("4-bit", "~4 GB", "2-4x", "Apple Silicon optimization"),
}

SITUATIONS = ("balanced", "memory-tight", "quality-first", "speed-first", "energy-first")

#: (framework as the chapter names it, edgebench precision, device, why).
Branch = tuple[str, str, str, str]
_Q4_CPU = ("llama.cpp", "q4_k_m", "cpu",
           "runs on every CPU; Q4_K_M keeps most of the quality at about a quarter of f16's "
           "memory, and CPU decode is memory-bandwidth bound, so fewer bytes mean more tok/s")
_Q8 = "8-bit weights are close to lossless (KLD near 0) at half of f16's memory"

TREE: dict[str, dict[str, Branch]] = {
    "cpu": {
        "balanced": _Q4_CPU,
        "memory-tight": ("llama.cpp", "q4_k_m", "cpu", "the smallest quant that stays close "
                         "to the reference; below 4 bits quality falls quickly"),
        "quality-first": ("llama.cpp", "q8_0", "cpu", _Q8),
    },
    "intel-cpu": {
        "balanced": ("OpenVINO", "int4", "cpu", "Intel's own CPU kernels (VNNI/AMX) with "
                     "NNCF 4-bit weight compression"),
        "quality-first": ("OpenVINO", "int8", "cpu", _Q8),
    },
    "intel-gpu": {
        "balanced": ("OpenVINO", "int4", "gpu", "the OpenVINO GPU plugin is the supported "
                     "path to Intel GPUs; 4-bit weights halve the bytes read per token"),
        "quality-first": ("OpenVINO", "int8", "gpu", _Q8),
    },
    "intel-npu": {
        "balanced": ("OpenVINO", "int4", "npu", "the NPU draws the least power per token; "
                     "it wants static shapes and symmetric 4-bit weights"),
        "quality-first": ("OpenVINO", "int8", "npu", _Q8),
        "speed-first": ("OpenVINO", "int4", "gpu", "for peak tok/s the integrated GPU "
                        "usually beats the NPU; the NPU wins on energy"),
    },
    "apple-silicon": {
        "balanced": ("MLX", "4bit", "metal", "MLX's Metal kernels on unified memory; "
                     "llama.cpp Metal is the portable alternative"),
        "quality-first": ("MLX", "8bit", "metal", _Q8),
    },
    "snapdragon": {
        "balanced": ("QNN", "int4", "htp", "the Hexagon NPU through QNN (compiled with "
                     "Qualcomm AI Hub) gives the chapter's largest speed-up and the lowest "
                     "energy per token"),
        "quality-first": ("QNN", "int8", "htp", "8-bit weights (w8a16) on the NPU stay "
                          "close to the reference"),
        "memory-tight": ("QNN", "int4", "htp", "4-bit weights (w4a16): the chapter's "
                         "50-80 % memory reduction"),
    },
    "nvidia-gpu": {
        "balanced": ("llama.cpp", "q4_k_m", "cuda", "CUDA kernels for every GGUF quant, "
                     "one file from laptop to server"),
        "quality-first": ("llama.cpp", "q8_0", "cuda", _Q8),
        "speed-first": ("Olive", "int4", "cuda", "ONNX Runtime GenAI with Olive's INT4 "
                        "(2-6x in the chapter) on the CUDA execution provider"),
    },
    "jetson": {
        "balanced": ("llama.cpp", "q4_k_m", "cuda", "memory is shared with the OS: a 4-bit "
                     "model leaves room, and llama.cpp builds for Orin's CUDA"),
        "quality-first": ("llama.cpp", "q8_0", "cuda", _Q8),
    },
    "arm-cpu": {
        "balanced": ("llama.cpp", "q4_0", "cpu", "llama.cpp repacks Q4_0 for the Arm "
                     "dot-product / i8mm kernels, usually the fastest CPU path on Arm"),
        "quality-first": ("llama.cpp", "q8_0", "cpu", _Q8),
    },
}


#: Measure commands whose suite scores quality too (``quality: true``): nothing to add.
MEASURES_QUALITY = ("edgebench run cpu-laptop", "edgebench run snapdragon")


def situation(optimize: str, constraints: Constraints) -> str:
    """The tree's situation for an ``--optimize`` mode and the limits given."""
    direct = {"speed": "speed-first", "memory": "memory-tight", "quality": "quality-first",
              "energy": "energy-first"}
    if optimize in direct:
        return direct[optimize]
    c = constraints
    if c.max_memory_mb is not None or c.max_model_mb is not None:
        return "memory-tight"
    if c.max_kld is not None or c.max_ppl_increase is not None:
        return "quality-first"
    if c.min_decode_tok_s is not None or c.max_ttft_ms is not None:
        return "speed-first"
    return "balanced"


def claim(framework: str) -> str:
    """The chapter's claim for a framework, quoted as a claim."""
    q, mem, speed, use = CLAIMS[framework]
    return f"chapter claim for {framework} {q}: memory {mem}, speed-up {speed} ({use})"


def advise(target: Target, optimize: str, constraints: Constraints) -> Advice:
    """What the tree says for ``target`` (situations it has no branch for use ``balanced``)."""
    sit = situation(optimize, constraints)
    branches = TREE[target.name]
    fw, precision, device, reason = branches.get(sit, branches["balanced"])
    measure = target.measure
    if measure not in MEASURES_QUALITY:  # `recommend` ranks only rows with quality
        measure += " && " + measure.replace("edgebench run", "edgebench quality", 1)
    return Advice(target=target.name, situation=sit, framework=fw, precision=precision,
                  device=device, reason=reason, claim=claim(fw), measure=measure,
                  alternatives=target.frameworks, note=target.note)


def guidance(rec: Recommendation, target: Target, *, asked: str | None = None) -> Recommendation:
    """``rec`` (which has no winner) answered from the tree instead, labelled as guidance.

    ``asked`` is the target the user named when it differs (``this`` -> the machine's kind).
    """
    advice = advise(target, rec.optimize, rec.constraints)
    where = target.name if asked in (None, target.name) else f"{asked} ({target.name})"
    steps = (*rec.steps,
             f"no measured row for {where}: answering from the chapter's decision tree "
             f"({advice.situation})",
             f"{GUIDANCE_LABEL}: {advice.framework} {advice.precision} on {advice.device}",
             f"measure it with: {advice.measure}")
    return dataclasses.replace(rec, guidance=True, advice=advice, steps=steps)
