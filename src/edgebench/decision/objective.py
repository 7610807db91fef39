"""What a ranking optimizes and what it refuses: ``--optimize`` weights, limits, the defaults.

Objectives (``--optimize``) are weighted sums of normalized metrics; the weights:

========  ==========================================================================
mode      weights
========  ==========================================================================
speed     decode_tok_s 0.6, ttft_ms 0.3, memory_mb 0.1
memory    memory_mb 0.6, model_mb 0.2, decode_tok_s 0.2
quality   kld_mean 0.6, decode_tok_s 0.3, memory_mb 0.1
energy    j_per_token 0.6, decode_tok_s 0.3, memory_mb 0.1
balanced  decode_tok_s 0.35, memory_mb 0.25, kld_mean 0.25, ttft_ms 0.15
========  ==========================================================================

Every mode has a quality floor: ``kld_mean <= DEFAULT_MAX_KLD`` (0.05 nats) unless
``--max-kld`` sets another, so a broken 4-bit variant cannot win on speed alone. Two
candidates tie only when their scores are equivalent within ``DEFAULT_TIE_MARGIN`` (5 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from edgebench.errors import ConfigError

OPTIMIZE: dict[str, tuple[tuple[str, float], ...]] = {
    "speed": (("decode_tok_s", 0.6), ("ttft_ms", 0.3), ("memory_mb", 0.1)),
    "memory": (("memory_mb", 0.6), ("model_mb", 0.2), ("decode_tok_s", 0.2)),
    "quality": (("kld_mean", 0.6), ("decode_tok_s", 0.3), ("memory_mb", 0.1)),
    "energy": (("j_per_token", 0.6), ("decode_tok_s", 0.3), ("memory_mb", 0.1)),
    "balanced": (("decode_tok_s", 0.35), ("memory_mb", 0.25), ("kld_mean", 0.25),
                 ("ttft_ms", 0.15)),
}
#: KL divergence (nats) at which the quality term falls to 1/e.
KLD_SCALE = 0.05
#: The quality floor of every mode when ``--max-kld`` is not given (nats): a quantization
#: above it has visibly drifted (the 4-bit variants of ORT GenAI, OpenVINO and MLX measured
#: 0.48-0.56 on Gemma 3 270M, +49-66 % perplexity; llama.cpp Q4_K_M 0.005).
DEFAULT_MAX_KLD = 0.05
#: Two scores are equivalent (a tie) when the 95 % interval of their ratio lies within +-5 %.
DEFAULT_TIE_MARGIN = 0.05


@dataclass(frozen=True)
class Constraints:
    """Hard limits; None = no limit (``max_kld`` None: the default floor,
    :data:`DEFAULT_MAX_KLD`). ``max_ppl_increase`` is relative (0.05 = 5 %)."""

    max_memory_mb: float | None = None
    min_decode_tok_s: float | None = None
    max_ttft_ms: float | None = None
    max_kld: float | None = None
    max_ppl_increase: float | None = None
    max_j_per_token: float | None = None
    max_model_mb: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ConfigError(f"--{f.name.replace('_', '-')} must be >= 0, got {v}")

    @property
    def quality_floor(self) -> float:
        """The KLD limit in effect: ``max_kld``, else the default floor."""
        return DEFAULT_MAX_KLD if self.max_kld is None else float(self.max_kld)

    def checks(self) -> list[tuple[str, str, bool, float]]:
        """(flag, metric, is an upper bound, limit) of each limit in effect, in a fixed order;
        the quality floor is always one of them (flag ``--max-kld``)."""
        out = []
        for f in fields(self):
            limit = getattr(self, f.name)
            if f.name == "max_kld":
                limit = self.quality_floor
            if limit is not None:
                out.append((f"--{f.name.replace('_', '-')}", CHECKED[f.name],
                            f.name.startswith("max_"), float(limit)))
        return out

    def as_dict(self) -> dict[str, float]:
        """The limits given (the default floor is not one: see ``quality_floor``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


#: Constraint field -> the metric it limits.
CHECKED = {"max_memory_mb": "memory_mb", "min_decode_tok_s": "decode_tok_s",
           "max_ttft_ms": "ttft_ms", "max_kld": "kld_mean", "max_ppl_increase": "ppl_increase",
           "max_j_per_token": "j_per_token", "max_model_mb": "model_mb"}
#: Metrics a quality row measures (``--allow-unmeasured-quality`` assumes them).
QUALITY_METRICS = ("kld_mean", "ppl_increase")


@dataclass(frozen=True)
class Weights:
    """The objective: (metric, weight) terms; see the module docstring for each mode's."""

    mode: str
    terms: tuple[tuple[str, float], ...]

    @classmethod
    def for_mode(cls, optimize: str) -> Weights:
        if optimize not in OPTIMIZE:
            raise ConfigError(f"unknown --optimize {optimize!r}; choose one of "
                              f"{', '.join(OPTIMIZE)}")
        return cls(optimize, OPTIMIZE[optimize])
