"""Prompt files: JSONL of texts (the format OpenVINO's llm_bench reads), and built-in sets.

CONTRACT (to be implemented): ``read_prompt_file(ref)`` returns a :class:`PromptFile`;
``prompt_set_ids(pfile, model_sha256, source, cache)`` tokenizes every prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class PromptFile:
    """A parsed prompt file."""

    name: str  # a built-in set's name, or the path as the suite gave it
    path: Path
    sha256: str  # of the file's bytes (16 hex digits, like every short hash in rows)
    texts: tuple[str, ...]


def read_prompt_file(ref: str) -> PromptFile:
    """Read and parse a prompt file or built-in set. Raises ConfigError (line number)."""
    raise NotImplementedError


def prompt_set_ids(pfile: PromptFile, model_sha256: str, source: Path,
                   cache: Path) -> list[list[int]]:
    """Each prompt's token IDs with the model's own tokenizer (BOS where it adds one)."""
    raise NotImplementedError
