"""GGUF targets through llama.cpp's own quantizer (``llama_model_quantize``).

F16/BF16/F32 are written from the source (dequantizing it when the source is quantized, which
needs ``allow_requantize``); every quantized type is made from the F16 artifact, as
``llama-quantize`` is meant to be used.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import RunFailed, RunnerUnavailable
from edgebench.harness.prepare.recipe import BuildResult, SourceModel, Target, need_dependency
from edgebench.models.gguf_file import read_gguf

FORMAT = "gguf"
EXTRA = "llama-cpp"
PRECISIONS = ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_k_s",
              "q4_0", "q3_k_m", "q3_k_s", "q2_k")
HIGH = ("f32", "f16", "bf16")
_FTYPE = {  # edgebench name -> llama_ftype name in llama_cpp
    "f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
    "q6_k": "MOSTLY_Q6_K", "q5_k_m": "MOSTLY_Q5_K_M", "q5_0": "MOSTLY_Q5_0",
    "q4_k_m": "MOSTLY_Q4_K_M", "q4_k_s": "MOSTLY_Q4_K_S", "q4_0": "MOSTLY_Q4_0",
    "q3_k_m": "MOSTLY_Q3_K_M", "q3_k_s": "MOSTLY_Q3_K_S", "q2_k": "MOSTLY_Q2_K",
}


def tools() -> dict[str, str]:
    """Versions that decide the bytes written (read from metadata: nothing is imported)."""
    try:
        # "recipe" changes whenever this file changes what it writes (v2: tensor-type notes)
        return {"llama-cpp-python": version("llama-cpp-python"), "recipe": "gguf-v2"}
    except PackageNotFoundError as e:
        raise RunnerUnavailable("llama-cpp-python is needed to write GGUF files",
                                extra=EXTRA) from e


def accepts(source: SourceModel) -> str | None:
    """None if this recipe can convert ``source``, else the reason it cannot."""
    if source.format == "gguf":
        return None
    arch = ""
    if source.format == "hf":
        from edgebench.models.hf_config import read_hf_config

        cfg = read_hf_config(source.path)
        arch = f" (architecture {', '.join(cfg.get('architectures') or ['unknown'])})"
    return (f"gguf targets are made from a GGUF source here, not from a {source.format} "
            f"checkpoint{arch}: llama.cpp's convert_hf_to_gguf.py is not shipped in any "
            "installable package")


def dependencies(source: SourceModel, precision: str) -> list:
    """Quantized types are made from the F16 artifact unless the source is high precision."""
    if precision in HIGH or source.precision in HIGH:
        return []
    return [Target(FORMAT, "f16")]


def _log_tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(t.strip() for t in text[-lines:])


def quantize(src: Path, dst: Path, precision: str, threads: int | None = None) -> None:
    """Run llama.cpp's quantizer; its log goes to a file whose last lines explain a failure."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{_FTYPE[precision]}")
    params.allow_requantize = True  # only ever used to dequantize a quantized source
    params.nthread = threads or os.cpu_count() or 1
    with tempfile.NamedTemporaryFile(prefix="edgebench-quantize-", suffix=".log") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)  # llama.cpp's C code logs to fd 2 ...
        # ... and llama-cpp-python's log callback to sys.stderr, filtered by its logger's level,
        # which an earlier ``Llama(verbose=False)`` in this process may have raised to ERROR.
        logger = logging.getLogger("llama-cpp-python")
        level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            with open(log.name, "a") as text, contextlib.redirect_stderr(text):
                rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(),
                                                    ctypes.byref(params))
        finally:
            logger.setLevel(level)
            os.dup2(saved, 2)
            os.close(saved)
        if rc != 0 or not dst.exists():
            tail = _log_tail(Path(log.name))
            disk = os.statvfs(dst.parent)
            if disk.f_bavail * disk.f_frsize < 64 * 2**20:
                tail = f"out of disk space in {dst.parent}; {tail}"
            raise RunFailed(f"llama.cpp quantizer failed ({precision}, code {rc}): {tail}")


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    """Write ``<out>/<name>-<precision>.gguf``."""
    dst = out / f"{source.name}-{precision}.gguf"
    notes = []
    if precision in HIGH or source.precision in HIGH:
        src = source.path
        if source.precision not in HIGH:
            notes.append(f"dequantized from a {source.precision.upper()} source: values are "
                         f"those of the {source.precision.upper()} weights")
    else:
        src = dependency(FORMAT, "f16")
        notes.append("quantized from the F16 artifact"
                     + (f" (itself dequantized from {source.precision.upper()})"
                        if source.precision not in HIGH else ""))
    quantize(src, dst, precision)
    info = read_gguf(dst)
    counts = ", ".join(f"{t} x{n}" for t, n in sorted(info.tensor_types.items(),
                                                       key=lambda kv: -kv[1]))
    notes.append(f"tensor types: {counts}")
    nominal = _FTYPE[precision].split("_", 1)[1].removesuffix("_M").removesuffix("_S")
    if precision not in HIGH and not any(t.startswith(nominal) for t in info.tensor_types):
        notes.append(f"no tensor is stored as {nominal}: llama.cpp fell back to other types "
                     "for every tensor of this model")
    return BuildResult(dst.name, info.parameters, info.data_bytes, notes)
