"""What every recipe (one file per target format) receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceModel:
    """The weights every target is made from."""

    name: str
    sha256: str
    path: Path
    format: str
    precision: str


@dataclass(frozen=True)
class BuildResult:
    """What a recipe wrote: the artifact's path inside the build folder and its weights."""

    path: str
    parameters: int
    weight_bytes: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A format and precision to prepare, written ``format:precision``."""

    format: str
    precision: str

    def __str__(self) -> str:
        return f"{self.format}:{self.precision}"


#: A recipe asks for another artifact of the same source (e.g. GGUF F16) through this.
need_dependency = Callable[[str, str], Path]


def needs_checkpoint(source: SourceModel) -> list[Target]:
    """Dependencies of a recipe that reads a Hugging Face checkpoint: the dequantized one when
    the source is a GGUF file, none when the source is a checkpoint."""
    return [Target("hf", "f32")] if source.format == "gguf" else []


def checkpoint_of(source: SourceModel, dependency: need_dependency) -> tuple[Path, int]:
    """The checkpoint a recipe converts, and its parameter count (for bits per weight)."""
    from edgebench.models.safetensors_file import safetensors_stats

    folder = dependency("hf", "f32") if source.format == "gguf" else source.path
    return folder, safetensors_stats(folder)[0]
