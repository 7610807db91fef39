"""Where a row's numbers come from: the one ``measurement`` column, per part where a row mixes
them. Pure (no I/O).

A row's numbers fall in two parts:

- ``timings``: everything a clock or a meter gives: TTFT, tok/s, load time, scored tok/s,
  memory, energy;
- ``numerics``: everything the arithmetic gives: output tokens, perplexity, KLD, top-1.

Each part has one kind: ``measured`` (edgebench measured it here), ``simulated`` (an emulator
ran it, e.g. Qualcomm's HTP simulator on x86-64), ``estimated`` (a service's model or its
on-device profile of compiled graphs, not edgebench's token timeline, e.g. Qualcomm AI Hub) or
``imported:<format>`` (measured elsewhere, brought in by ``edgebench import``).

The column holds one kind when both parts share it (``"measured"``, ``"simulated"``, NULL in
older files meaning measured), else ``"numerics=<kind>;timings=<kind>"``: a quality row scored
on the HTP simulator is ``"numerics=measured;timings=simulated"``: its perplexity and KLD are the
NPU's quantized arithmetic, computed here (rankable), its scored tok/s and load time an
emulator's (never ranked, reported or gated as device speed).
"""

from __future__ import annotations

import math
from typing import Any

MEASURED = "measured"
SIMULATED = "simulated"
ESTIMATED = "estimated"
IMPORTED = "imported"
PARTS = ("numerics", "timings")
#: Quality rows of the HTP simulator: real quantized arithmetic, an emulator's clock.
SIMULATOR_QUALITY = f"numerics={MEASURED};timings={SIMULATED}"


def _valid_kind(kind: str) -> bool:
    return kind in (MEASURED, SIMULATED, ESTIMATED) or (
        kind.startswith(f"{IMPORTED}:") and len(kind) > len(IMPORTED) + 1)


def compose(*, numerics: str, timings: str) -> str:
    """The column's value for a row whose parts have these kinds (one word when they agree).

    Raises:
        ValueError: a kind that is not measured, simulated, estimated or imported:<format>.
    """
    for kind in (numerics, timings):
        if not _valid_kind(kind):
            raise ValueError(f"unknown measurement kind {kind!r}")
    return numerics if numerics == timings else f"numerics={numerics};timings={timings}"


def parse(value: Any) -> dict[str, str]:
    """``{"numerics": kind, "timings": kind}`` of a column value (NULL/NaN/"" read as
    measured; a part a compound value leaves out is measured). Never raises: an unknown word
    is kept as the kind of both parts, so it is never taken for ``measured``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return dict.fromkeys(PARTS, MEASURED)
    text = str(value)
    if "=" not in text:
        return dict.fromkeys(PARTS, text)
    out = dict.fromkeys(PARTS, MEASURED)
    for item in text.split(";"):
        name, _, kind = item.partition("=")
        name, kind = name.strip(), kind.strip()
        if name in PARTS and kind:
            out[name] = kind
        else:  # a part we do not know: nothing of the row counts as measured
            return dict.fromkeys(PARTS, text)
    return out


def kind(value: Any, part: str) -> str:
    """The kind of one part (``"numerics"`` or ``"timings"``) of a column value."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    return parse(value)[part]


def timings_measured(value: Any) -> bool:
    """Whether a row's clock and meters are edgebench's own measurement (speed is rankable)."""
    return kind(value, "timings") == MEASURED


def numerics_measured(value: Any) -> bool:
    """Whether a row's arithmetic was computed here, on the device's numerics or an emulator
    of them (perplexity and KLD are rankable)."""
    return kind(value, "numerics") == MEASURED


def label(value: Any) -> str:
    """Short words for tables: ``""`` for measured, else e.g. ``"simulated"`` or
    ``"simulated timings"``."""
    parts = parse(value)
    if parts["numerics"] == parts["timings"]:
        return "" if parts["timings"] == MEASURED else parts["timings"]
    return ", ".join(f"{k} {p}" for p, k in parts.items() if k != MEASURED)
