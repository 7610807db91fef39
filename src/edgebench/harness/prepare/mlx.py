"""MLX weights through mlx-lm's own converter (``mlx_lm.convert``): fp16, 8-bit, 4-bit.

mlx[cpu] runs this on Linux too. Made from the Hugging Face checkpoint (dequantized from GGUF
first when the source is a GGUF file).
"""

from __future__ import annotations

import contextlib
import io
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import RunFailed, RunnerUnavailable
from edgebench.harness.prepare.recipe import (
    BuildResult,
    SourceModel,
    checkpoint_of,
    need_dependency,
    needs_checkpoint,
)
from edgebench.models.safetensors_file import safetensors_stats

FORMAT = "mlx"
EXTRA = "mlx"
PRECISIONS = ("fp16", "bf16", "8bit", "4bit")
GROUP_SIZE = 64  # mlx-lm's default quantization group


def tools() -> dict[str, str]:
    try:
        return {p: version(p) for p in ("mlx", "mlx-lm")}
    except PackageNotFoundError as e:
        raise RunnerUnavailable(f"{e.name} is needed to write MLX weights", extra=EXTRA) from e


def accepts(source: SourceModel) -> str | None:
    if source.format == "gguf":
        return None  # dequantized to a checkpoint first; the hf recipe checks the architecture
    if source.format != "hf":
        return f"cannot convert {source.format} to MLX"
    import importlib.util

    from edgebench.models.hf_config import read_hf_config

    model_type = read_hf_config(source.path).get("model_type")
    if importlib.util.find_spec("mlx_lm") is None:
        return None  # tools() reports the missing package with its install hint
    if model_type is None or importlib.util.find_spec(f"mlx_lm.models.{model_type}") is None:
        return f"mlx-lm has no implementation of architecture {model_type!r}"
    return None


def dependencies(source: SourceModel, precision: str) -> list:
    return needs_checkpoint(source)


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    from mlx_lm import convert

    hf, params = checkpoint_of(source, dependency)
    dst = out / "mlx"
    bits = {"8bit": 8, "4bit": 4}.get(precision)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            convert(str(hf), mlx_path=str(dst), quantize=bits is not None,
                    q_bits=bits or 4, q_group_size=GROUP_SIZE,
                    dtype="bfloat16" if precision == "bf16" else "float16")
    except Exception as e:  # mlx-lm raises plain exceptions; keep its last words
        tail = " | ".join(log.getvalue().strip().splitlines()[-3:])
        raise RunFailed(f"mlx_lm.convert failed ({precision}): {e} {tail}".strip()) from e
    _, data = safetensors_stats(dst)  # packed words + scales and biases: what is stored
    notes = [f"group size {GROUP_SIZE}; scales and biases included in bits per weight"] if bits \
        else []
    return BuildResult("mlx", params, data, notes)
