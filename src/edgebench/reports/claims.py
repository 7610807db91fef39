"""The chapter's comparison table as claims: loaded from package data, parsed into ranges.

The claims are never used as measurements; reports print them beside measured values and mark
a measurement that falls outside the claimed range.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from importlib import resources

from edgebench.errors import ConfigError

#: The chapter's framework names -> edgebench runtime names.
RUNTIMES: dict[str, tuple[str, ...]] = {
    "llama.cpp": ("llama-cpp",),
    "Olive": ("ort-genai",),
    "OpenVINO": ("openvino",),
    "QNN": ("qnn", "qai-hub"),
    "MLX": ("mlx",),
}
#: "~4 GB" is read as this relative band around the figure.
APPROX_TOLERANCE = 0.25


@dataclass(frozen=True)
class ClaimRange:
    """A parsed claim: ``kind`` is ``reduction`` (percent), ``ratio`` (x) or ``gb`` (absolute)."""

    kind: str
    low: float
    high: float
    text: str

    def check(self, value: float | None) -> str:
        """``within``, ``outside``, or ``n/a`` when there is no measured value."""
        if value is None or value != value:  # None or NaN
            return "n/a"
        return "within" if self.low <= value <= self.high else "outside"


@dataclass(frozen=True)
class Claim:
    """One row of the chapter's table."""

    framework: str
    quantization: str
    memory_claim: str
    speedup_claim: str
    use_case: str

    @property
    def runtimes(self) -> tuple[str, ...]:
        return RUNTIMES.get(self.framework, (self.framework.lower(),))

    @property
    def memory(self) -> ClaimRange:
        return parse_claim(self.memory_claim)

    @property
    def speedup(self) -> ClaimRange:
        return parse_claim(self.speedup_claim)

    def applies_to(self, precision: str) -> bool:
        """Whether a precision name is one the claim's quantization covers (Q4_K_M, INT4...)."""
        p = precision.lower()
        for q in self.quantization.split("/"):
            q = q.strip().lower()
            if q == p:
                return True
            m = re.fullmatch(r"(?:int|q)?(\d+)(?:-?bit)?", q)
            if m and _bits(p) == int(m.group(1)):
                return True
        return False


_NUM = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(rf"^~?\s*{_NUM}\s*(?:[-\u2013]\s*{_NUM})?\s*(%|x|×|gb|mb)?\s*(.*)$", re.I)


def parse_claim(text: str) -> ClaimRange:
    """Parse "60-75% reduction", "2-3x", "~4 GB" into a range.

    Raises:
        ConfigError: a claim in none of these shapes.
    """
    m = _RANGE.match(text.strip())
    if not m:
        raise ConfigError(f"cannot parse the claim {text!r} (expected e.g. '2-3x', '~4 GB')")
    low = float(m.group(1))
    high = float(m.group(2)) if m.group(2) else low
    unit = (m.group(3) or "").lower()
    if unit == "%":
        return ClaimRange("reduction", low, high, text)
    if unit in ("x", "×"):
        return ClaimRange("ratio", low, high, text)
    if unit in ("gb", "mb"):
        scale = 1 if unit == "gb" else 1 / 1024
        low, high = low * scale, high * scale
        if text.strip().startswith("~") or low == high:
            low, high = low * (1 - APPROX_TOLERANCE), high * (1 + APPROX_TOLERANCE)
        return ClaimRange("gb", low, high, text)
    raise ConfigError(f"cannot parse the claim {text!r}: no unit (%, x or GB)")


def load_claims(text: str | None = None) -> list[Claim]:
    """The chapter's claims: the packaged ``chapter-claims.csv``, or CSV ``text`` of its shape."""
    if text is None:
        text = resources.files("edgebench.reports").joinpath("chapter-claims.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    want = {"framework", "quantization", "memory_claim", "speedup_claim", "use_case"}
    if rows and not want <= set(rows[0]):
        raise ConfigError(f"claims CSV lacks columns: {', '.join(sorted(want - set(rows[0])))}")
    return [Claim(**{k: r[k].strip() for k in want}) for r in rows]


def _bits(precision: str) -> int | None:
    from edgebench.harness.prepare.manifest import NOMINAL_BITS

    if precision in NOMINAL_BITS:
        return NOMINAL_BITS[precision]
    m = re.search(r"(\d+)", precision)
    return int(m.group(1)) if m else None
