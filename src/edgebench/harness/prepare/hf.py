"""A Hugging Face checkpoint (float32 safetensors) dequantized from a GGUF source.

transformers reads the GGUF (with the ``gguf`` package) and dequantizes every tensor; the
checkpoint is the common input of the ONNX, OpenVINO and MLX recipes, so every format is made
from the same weights. A model loaded from GGUF refuses ``save_pretrained``, so the weights are
moved into a fresh model built from the same config first.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import ConfigError, RunnerUnavailable
from edgebench.harness.prepare.recipe import BuildResult, SourceModel, need_dependency
from edgebench.models.safetensors_file import safetensors_stats

FORMAT = "hf"
EXTRA = "convert"
PRECISIONS = ("f32",)
# GGUF architectures transformers can dequantize (transformers' GGUF_SUPPORTED_ARCHITECTURES)
_ARCHS = ("gemma3", "gemma2", "gemma", "llama", "mistral", "qwen2", "qwen3", "phi3")


def tools() -> dict[str, str]:
    try:
        return {p: version(p) for p in ("transformers", "torch", "gguf")}
    except PackageNotFoundError as e:
        raise RunnerUnavailable(f"{e.name} is needed to dequantize GGUF into a checkpoint",
                                extra=EXTRA) from e


def accepts(source: SourceModel) -> str | None:
    if source.format != "gguf":
        return f"a Hugging Face checkpoint is made from a GGUF source, not from {source.format}"
    from edgebench.models.gguf_file import read_gguf

    arch = read_gguf(source.path).architecture
    if arch not in _ARCHS:
        return f"transformers cannot dequantize GGUF architecture {arch!r}"
    return None


def dependencies(source: SourceModel, precision: str) -> list:
    return []


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.path.parent), source.path.name
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"transformers cannot read {source.path}: {e}") from e
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ConfigError(f"dequantized weights do not fit the config: missing {missing}, "
                          f"unexpected {unexpected}")
    dst = out / "checkpoint"
    fresh.save_pretrained(dst)
    tok.save_pretrained(dst)
    params, data = safetensors_stats(dst)
    return BuildResult("checkpoint", params, data, [
        f"dequantized from a {source.precision.upper()} GGUF by transformers: the reference "
        f"weights are the {source.precision.upper()} values, not the original training weights"])
