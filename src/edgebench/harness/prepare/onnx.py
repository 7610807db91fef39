"""ONNX Runtime GenAI models through its own model builder (fp32, fp16, int8, int4; cpu).

The builder runs as a subprocess of this environment (it needs transformers 5, onnx,
onnx_ir, onnxscript: the ``ort-genai`` and ``convert`` extras) on the Hugging Face checkpoint,
dequantized from GGUF first when the source is a GGUF file. See ``ort_builder.py`` for the two
fixes Gemma 3 needs.
"""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import RunnerUnavailable
from edgebench.harness.prepare.envs import run_logged
from edgebench.harness.prepare.recipe import (
    BuildResult,
    SourceModel,
    checkpoint_of,
    need_dependency,
    needs_checkpoint,
)

FORMAT = "onnx"
EXTRA = "ort-genai"
PRECISIONS = ("fp32", "fp16", "int8", "int4")


def tools() -> dict[str, str]:
    try:
        found = {p: version(p) for p in ("onnxruntime-genai", "onnxruntime", "onnx", "onnx-ir",
                                         "onnxscript", "transformers", "torch")}
    except PackageNotFoundError as e:
        raise RunnerUnavailable(f"{e.name} is needed by the ONNX Runtime GenAI model builder",
                                extra=EXTRA) from e
    return {**found, "recipe": "onnx-v1"}


def accepts(source: SourceModel) -> str | None:
    return None if source.format in ("hf", "gguf") else f"cannot build ONNX from {source.format}"


def dependencies(source: SourceModel, precision: str) -> list:
    return needs_checkpoint(source)


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    hf, params = checkpoint_of(source, dependency)
    dst = out / "onnx"
    run_logged([sys.executable, "-m", "edgebench.harness.prepare.ort_builder", str(hf),
                str(dst), precision, "cpu"], what=f"ONNX Runtime GenAI builder ({precision})")
    shutil.rmtree(str(dst) + ".cache", ignore_errors=True)
    weights = sum(p.stat().st_size for p in dst.iterdir()
                  if p.suffix in (".onnx", ".data") or p.name.endswith(".onnx.data"))
    return BuildResult("onnx", params, weights, [
        "builder run with Gemma 3 rope settings flattened (global 1e6, local 1e4)"
        + ("; GroupQueryAttention forced for fp16 on cpu" if precision == "fp16" else ""),
        "weights include the builder's rotary cos/sin caches"])
