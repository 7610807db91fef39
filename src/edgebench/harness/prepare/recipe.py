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


#: A recipe asks for another artifact of the same source (e.g. GGUF F16) through this.
need_dependency = Callable[[str, str], Path]
