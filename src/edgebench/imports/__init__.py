"""`edgebench import FORMAT FILE`: numbers measured elsewhere, brought into the store as rows
whose ``measurement`` is ``imported:<format>`` (``results.provenance``), never mixed with
edgebench's own measurements.

A lazy registry, as lm-eval's: each format names the module and function that reads it; nothing
is imported until a format is used. Every reader has the contract of :data:`Reader`: it takes
the file's path and returns store rows (``imports.rows.imported_row``), and raises
``ConfigError`` with one line naming the file (and the line or key) for a malformed file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError

Reader = Callable[[Path], list[Any]]  # list[RunRecord]

#: format -> "module:function"; ``--help`` lists them in this order.
IMPORTERS: dict[str, str] = {
    "llama-bench": "edgebench.imports.llama_bench:read",
    "qai-hub-models": "edgebench.imports.qai_hub_models:read",
    "ai-hub-profile": "edgebench.imports.ai_hub_profile:read",
}
#: What each format is, for ``edgebench import --help`` and errors.
DESCRIPTIONS: dict[str, str] = {
    "llama-bench": "llama.cpp's llama-bench output (-o json or -o jsonl), samples_ns kept",
    "qai-hub-models": "Qualcomm's published LLM figures: a perf.yaml of the qai-hub-models "
                      "wheel, or the whole wheel (tok/s, TTFT per Snapdragon device, "
                      "precision, context; the extrapolated TTFT kept apart)",
    "ai-hub-profile": "a Qualcomm AI Hub profile job's results, downloaded as JSON",
}


def reader(fmt: str) -> Reader:
    """The reader of ``fmt``.

    Raises:
        ConfigError: an unknown format (with the list, and did-you-mean).
    """
    from edgebench.harness.registry import suggest

    if fmt not in IMPORTERS:
        raise ConfigError(f"unknown import format {fmt!r}{suggest(fmt, IMPORTERS)}; formats: "
                          f"{', '.join(IMPORTERS)}")
    module, func = IMPORTERS[fmt].split(":")
    return getattr(importlib.import_module(module), func)
