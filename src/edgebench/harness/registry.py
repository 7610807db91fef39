"""Names -> runners, imported lazily; an unknown name answers with the closest names.

Adding a runtime is one file under ``harness/runners/`` plus one entry in ``FRAMEWORKS``.
Capabilities are data here, so planning a sweep never imports a runtime.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from edgebench.errors import ConfigError
from edgebench.harness.runner import Runner

#: Every precision name edgebench knows, whatever the runtime (for did-you-mean).
PRECISIONS = (
    "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_k_s", "q4_0",
    "q3_k_m", "q3_k_s", "q2_k", "fp32", "fp16", "int8", "int4", "8bit", "4bit", "w8a16", "w4a16",
    "w8a8",
)

#: Every device name edgebench knows, whatever the runtime.
DEVICES = ("cpu", "cuda", "metal", "vulkan", "gpu", "npu", "htp", "htp-simulator", "snapdragon")


@dataclass(frozen=True)
class FrameworkSpec:
    """A runtime as the planner sees it, without importing it."""

    name: str
    target: str  # "module:Class"
    extra: str  # the pip extra that installs the runtime
    artifact_format: str
    precisions: tuple[str, ...]
    devices: tuple[str, ...]
    description: str
    package: str = ""  # the distribution whose version rows record as framework_version
    #: The suite ``options`` names the runner takes (checked when a suite is made, before
    #: anything runs); None: any name (OpenVINO's are device properties, an open set).
    options: tuple[str, ...] | None = None
    #: Probe the runner in the sweep's own process before preparing its artifact: for a runner
    #: whose probe is cheap and decides everything (a remote service without a token gives its
    #: ``unavailable`` row at once, not after minutes of export and quantization).
    probe_first: bool = False
    #: Why the runner cannot fill the KV cache before a measured prompt (the ``depths`` axis):
    #: cells with a depth above 0 are planned as ``skipped`` rows with this reason; None: it can.
    no_depth: str | None = None
    #: The suite option that caps the tokens a run may hold (llama.cpp's ``n_ctx``): a cell
    #: whose depth + prompt + new tokens exceed a value set there is planned as ``skipped``.
    context_option: str | None = None
    #: KV-cache element types the runner can impose (the ``kv_cache`` axis), in the runtime's
    #: own names; empty: the runtime exposes no choice (``no_kv_cache`` says why).
    kv_cache_types: tuple[str, ...] = ()
    no_kv_cache: str = "its API exposes no KV-cache type"
    #: suite options that set the KV type themselves: refused beside an imposed ``kv_cache``
    kv_cache_options: tuple[str, ...] = ()


FRAMEWORKS: dict[str, FrameworkSpec] = {
    spec.name: spec
    for spec in (
        FrameworkSpec(
            name="llama-cpp",
            target="edgebench.harness.runners.llama_cpp:LlamaCppRunner",
            extra="llama-cpp",
            artifact_format="gguf",
            precisions=("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m",
                        "q4_k_s", "q4_0", "q3_k_m", "q3_k_s", "q2_k"),
            devices=("cpu", "cuda", "metal", "vulkan"),
            description="llama.cpp through llama-cpp-python (GGUF)",
            package="llama-cpp-python",
            options=("n_ctx", "n_batch", "n_ubatch", "n_gpu_layers", "flash_attn", "use_mmap",
                     "use_mlock", "offload_kqv", "type_k", "type_v", "seed"),
            context_option="n_ctx",
            # llama.cpp's --cache-type-k/-v set (type_k/type_v; a quantized V needs flash
            # attention, which the runner turns on for every imposed type alike)
            kv_cache_types=("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0",
                            "q5_1"),
            kv_cache_options=("type_k", "type_v"),
        ),
        FrameworkSpec(
            name="ort-genai",
            target="edgebench.harness.runners.ort_genai:OrtGenAIRunner",
            extra="ort-genai", artifact_format="onnx",
            precisions=("fp32", "fp16", "int8", "int4"), devices=("cpu", "cuda"),
            description="ONNX Runtime GenAI (model builder output)",
            package="onnxruntime-genai",
            # session options (written into the config overlay) and the KV cache's length
            options=("intra_op_num_threads", "inter_op_num_threads", "enable_profiling",
                     "graph_optimization_level", "max_length"),
            no_kv_cache="onnxruntime-genai allocates the KV cache in the model's own I/O type "
                        "(genai_config past_present types); it has no setting for another",
        ),
        FrameworkSpec(
            name="openvino",
            target="edgebench.harness.runners.openvino_genai:OpenVINOGenAIRunner",
            extra="openvino", artifact_format="openvino",
            precisions=("fp32", "fp16", "int8", "int4"), devices=("cpu", "gpu", "npu"),
            description="OpenVINO GenAI (IR with NNCF weight compression)",
            package="openvino-genai",
            no_depth="openvino-genai's LLMPipeline has no call that fills the KV cache without "
                     "generating (its API: generate, start_chat, finish_chat); a cache is reused "
                     "only by prefix caching or chat mode, which would also serve the timed "
                     "prompt from cache or add generated tokens to the prefix",
            # the CPU plugin's KV_CACHE_PRECISION hint (its default: u8). The plugin also takes
            # bf16 and u3, but with paged attention on a CPU without bf16 both fail at load
            # (2026.4: "Check 'all_of(ov::element::f32, key_cache_type, value_cache_type)'")
            kv_cache_types=("f32", "f16", "u8", "u4"),
            kv_cache_options=("KV_CACHE_PRECISION", "KEY_CACHE_PRECISION",
                              "VALUE_CACHE_PRECISION"),
        ),
        FrameworkSpec(
            name="mlx",
            target="edgebench.harness.runners.mlx_lm:MlxLmRunner",
            extra="mlx", artifact_format="mlx",
            precisions=("fp16", "bf16", "8bit", "4bit"), devices=("cpu", "metal"),
            description="Apple MLX through mlx-lm (Apple GPU on macOS, CPU anywhere)",
            package="mlx-lm",
            options=("prefill_step_size", "compute_dtype"),
            # mlx-lm's quantized KV cache (generate_step kv_bits, group size 64)
            kv_cache_types=("8bit", "4bit"),
        ),
        FrameworkSpec(
            name="qnn",
            target="edgebench.harness.runners.qnn:QnnRunner",
            extra="qnn", artifact_format="qnn",
            precisions=("fp32", "w8a16", "w8a8"), devices=("htp", "htp-simulator"),
            description="ONNX Runtime + Qualcomm QNN EP, Hexagon NPU (HTP; simulator on x86-64)",
            package="onnxruntime-qnn",
            no_depth="the QNN artifact is a static graph of a fixed sequence length without a "
                     "KV cache: there is no cache to fill before the prompt",
            # QNN provider options passed through, and edgebench's cpu_fallback (default off)
            options=("cpu_fallback", "htp_arch", "soc_model", "htp_performance_mode",
                     "enable_htp_fp16_precision", "htp_graph_finalization_optimization_mode",
                     "vtcm_mb", "profiling_level", "profiling_file_path"),
        ),
        FrameworkSpec(
            name="qai-hub",
            target="edgebench.harness.runners.qai_hub:QaiHubRunner",
            extra="qai-hub", artifact_format="qnn",
            # the qnn recipe's QDQ artifacts; option quantize (w8a8, w8a16, w4a16, w4a8) has
            # AI Hub quantize the fp32 one
            precisions=("fp32", "w8a16", "w8a8"), devices=("snapdragon",),
            description="Qualcomm AI Hub: compile + profile on a cloud Snapdragon device "
                        "(estimated; needs an API token)",
            package="qai-hub",
            options=("hub_device", "target_runtime", "quantize", "calibration_samples",
                     "qairt_version", "compile_options", "profile_options"),
            probe_first=True,  # reads the client's token file: no network, no runtime
            no_depth="Qualcomm AI Hub profiles the graph remotely: it takes no KV cache filled "
                     "before the prompt",
        ),
    )
}


#: Every KV-cache type some runtime takes, and ``default`` (impose nothing).
KV_CACHE_TYPES = ("default", *dict.fromkeys(t for s in FRAMEWORKS.values()
                                           for t in s.kv_cache_types))


def kv_cache_problem(spec: FrameworkSpec, kv_cache: str | None) -> str | None:
    """Why ``spec`` cannot run with KV-cache type ``kv_cache`` (None: it can, or none asked),
    listing the types it has."""
    if kv_cache in (None, "default") or kv_cache in spec.kv_cache_types:
        return None
    if not spec.kv_cache_types:
        return f"{spec.name} has no KV-cache type {kv_cache}: {spec.no_kv_cache}"
    return (f"{spec.name} has no KV-cache type {kv_cache} (it has: "
            f"{', '.join(spec.kv_cache_types)})")


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean x?)' for the closest choice, or '' when none is close."""
    norm = {c.replace("-", "").replace("_", "").lower(): c for c in choices}
    key = name.replace("-", "").replace("_", "").lower()
    if key in norm:
        return f" (did you mean {norm[key]}?)"
    close = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def check_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``choices``, else raise a ConfigError with did-you-mean."""
    choices = list(choices)
    if name in choices:
        return name
    raise ConfigError(
        f"unknown {kind} {name!r}{suggest(name, choices)}; known: {', '.join(choices)}"
    )


def framework(name: str) -> FrameworkSpec:
    """The spec registered under ``name``."""
    return FRAMEWORKS[check_name("framework", name, FRAMEWORKS)]


def installed_version(name: str) -> str | None:
    """The installed version of a framework's package (what its rows record as
    ``framework_version``), read from package metadata without importing it; None when it is
    not installed."""
    from importlib.metadata import PackageNotFoundError, version

    spec = FRAMEWORKS.get(name)
    if spec is None or not spec.package:
        return None
    try:
        return version(spec.package)
    except PackageNotFoundError:
        return None


def load_runner(name: str) -> Runner:
    """Import the runner registered under ``name`` and return a new instance."""
    module_name, _, class_name = framework(name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
