"""OpenVINO IR through optimum-intel's exporter, NNCF weight compression for int8/int4,
plus the tokenizer/detokenizer models openvino-genai needs (openvino-tokenizers).

optimum-intel 2.2 refuses transformers >= 5, so the export runs in its own pinned converter
environment (see ``envs.py``), made from the Hugging Face checkpoint (dequantized from GGUF
first when the source is a GGUF file).
"""

from __future__ import annotations

import re
from pathlib import Path

from edgebench.errors import RunFailed
from edgebench.harness.prepare.envs import ConverterEnv
from edgebench.harness.prepare.recipe import (
    BuildResult,
    SourceModel,
    checkpoint_of,
    need_dependency,
    needs_checkpoint,
)
from edgebench.models.hf_config import read_hf_config

FORMAT = "openvino"
PRECISIONS = ("fp32", "fp16", "int8", "int4")
PINS = {
    "torch": "2.13.0", "transformers": "4.57.6", "optimum": "2.3.0", "optimum-intel": "2.2.0",
    "nncf": "3.4.0", "openvino": "2026.4.1", "openvino-tokenizers": "2026.4.1.0",
}
ENV = ConverterEnv("optimum-intel", (
    f"torch=={PINS['torch']}",  # alone first: the CPU build (a plain 'torch' pulls CUDA)
    " ".join(f"{p}=={v}" for p, v in PINS.items() if p != "torch")
    + " accelerate sentencepiece",
))
_EXPORT = ("import sys; from optimum.commands.optimum_cli import main; "
           "sys.argv = ['optimum-cli'] + sys.argv[1:]; main()")


def tools() -> dict[str, str]:
    """The pinned converter stack (the environment is made only when a build needs it)."""
    return {**PINS, "recipe": "openvino-v1"}


def accepts(source: SourceModel) -> str | None:
    return None if source.format in ("hf", "gguf") else f"cannot export {source.format}"


def dependencies(source: SourceModel, precision: str) -> list:
    return needs_checkpoint(source)


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    from edgebench.locations import cache_dir

    hf, params = checkpoint_of(source, dependency)
    dst = out / "openvino"
    args = ["-c", _EXPORT, "export", "openvino", "-m", str(hf), "--task",
            "text-generation-with-past", "--weight-format", precision]
    notes = [f"optimum-intel {PINS['optimum-intel']} export, transformers {PINS['transformers']}"]
    if precision == "int4":
        # NNCF's usual group of 128 must divide every weight's input channels
        hidden = read_hf_config(hf).get("hidden_size") or 128
        group = 128 if hidden % 128 == 0 else 64
        args += ["--group-size", str(group)]
        notes.append(f"int4 group size {group}")
    log = ENV.run(cache_dir(), [*args, str(dst)],
                  what=f"optimum-cli export openvino ({precision})")
    # NNCF prints how the weights were really compressed: keep those rows
    rows = [re.sub(r"[│┃|]+", "|", line).strip(" |") for line in log.splitlines()
            if re.search(r"(int[48]|float|fp16).*\(\d+ / \d+\)", line)]
    if rows:
        notes.append("NNCF: " + "; ".join(re.sub(r"\s+", " ", r) for r in rows))
    missing = [f for f in ("openvino_tokenizer.xml", "openvino_detokenizer.xml")
               if not (dst / f).exists()]
    if missing:  # optimum-intel only warns; openvino-genai cannot run without them
        said = [line.strip() for line in log.splitlines() if "okenizer" in line][-2:]
        raise RunFailed(f"optimum-cli wrote no {', '.join(missing)}: {' | '.join(said)}")
    weights = dst / "openvino_model.bin"
    return BuildResult("openvino", params, weights.stat().st_size, notes)
