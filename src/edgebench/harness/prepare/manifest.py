"""The manifest written beside every prepared artifact, and the chapter's precision classes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.errors import SchemaMismatch

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"

# Nominal bits of each precision name, for the chapter's classes (the measured bits per weight
# is in the manifest beside it: K-quants keep some tensors at higher precision).
NOMINAL_BITS = {
    "f32": 32, "fp32": 32, "f16": 16, "fp16": 16, "bf16": 16, "q8_0": 8, "int8": 8, "8bit": 8,
    "w8a16": 8, "w8a8": 8, "q6_k": 6, "q5_k_m": 5, "q5_0": 5, "q4_k_m": 4, "q4_k_s": 4, "q4_0": 4,
    "int4": 4, "4bit": 4, "w4a16": 4, "q3_k_m": 3, "q3_k_s": 3, "q2_k": 2,
}


def precision_class(precision: str) -> str:
    """The chapter's class: ultra-low (1-2 bit), low (3-4), medium (5-8), high (16/32)."""
    bits = NOMINAL_BITS[precision]
    if bits <= 2:
        return "ultra-low"
    if bits <= 4:
        return "low"
    if bits <= 8:
        return "medium"
    return "high"


def bits_per_weight(weight_bytes: int, parameters: int) -> float:
    """Measured bits per weight: bytes of weight data x 8 / number of parameters."""
    return weight_bytes * 8 / parameters


@dataclass(frozen=True)
class Manifest:
    """What an artifact is, how it was made, and what it measures as."""

    key: str
    format: str
    precision: str
    precision_class: str
    path: str  # relative to the artifact's folder
    parameters: int
    weight_bytes: int
    bits_per_weight: float
    size_bytes: int
    sha256: str
    source_name: str
    source_sha256: str
    source_precision: str
    tool_versions: dict[str, str]
    wall_s: float
    peak_rss_mb: float | None
    created_at: str
    notes: list[str] = field(default_factory=list)
    manifest_version: int = MANIFEST_VERSION

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Read a manifest, refusing another version by name."""
        data: dict[str, Any] = json.loads((folder / MANIFEST_NAME).read_text())
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise SchemaMismatch(
                f"{folder / MANIFEST_NAME} has manifest version {data.get('manifest_version')}, "
                f"this edgebench reads {MANIFEST_VERSION}; delete the folder to prepare it again"
            )
        return cls(**data)
