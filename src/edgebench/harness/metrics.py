"""The metric arithmetic of METRICS.md, in one pure module.

Runners only report raw timestamps (a :class:`~edgebench.harness.runner.TokenTimeline`);
every number edgebench stores is computed here, so the definitions hold for all runtimes.
No I/O, no clock, no runtime imports.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

#: Per-repetition timing metrics, in the order they appear in rows and tables.
TIMING_METRICS = ("ttft_ms", "prefill_tok_s", "decode_tok_s", "tpot_ms", "e2e_s")


def repetition_metrics(
    t0_ns: int, token_ns: Sequence[int], prompt_tokens: int
) -> dict[str, float | None]:
    """Timing metrics of one repetition.

    Args:
        t0_ns: the call to generate, prompt token IDs already prepared.
        token_ns: when each new token became available, in order (``t1 .. tN``).
        prompt_tokens: ``P``, the number of prompt tokens fed to the runtime.

    Returns:
        ``ttft_ms = t1 - t0``; ``prefill_tok_s = P / (t1 - t0)``;
        ``decode_tok_s = (N - 1) / (tN - t1)``; ``tpot_ms = (tN - t1) / (N - 1)``;
        ``e2e_s = tN - t0``. Decode metrics are None with fewer than two tokens.

    Raises:
        ValueError: no tokens, or timestamps that go backwards.
    """
    if not token_ns:
        raise ValueError("a repetition produced no tokens")
    if token_ns[0] < t0_ns or any(b < a for a, b in zip(token_ns, token_ns[1:])):
        raise ValueError("token timestamps must not go backwards")
    n = len(token_ns)
    first = token_ns[0] - t0_ns
    out: dict[str, float | None] = {
        "ttft_ms": first / NS_PER_MS,
        "prefill_tok_s": prompt_tokens * NS_PER_S / first if first > 0 else None,
        "decode_tok_s": None,
        "tpot_ms": None,
        "e2e_s": (token_ns[-1] - t0_ns) / NS_PER_S,
    }
    decode_ns = token_ns[-1] - token_ns[0]
    if n >= 2 and decode_ns > 0:
        out["decode_tok_s"] = (n - 1) * NS_PER_S / decode_ns
        out["tpot_ms"] = decode_ns / (n - 1) / NS_PER_MS
    return out


def inter_token_ms(token_ns: Sequence[int]) -> list[float]:
    """Gaps between consecutive tokens (``t(i+1) - t(i)``) in milliseconds."""
    return [(b - a) / NS_PER_MS for a, b in zip(token_ns, token_ns[1:])]


@dataclass(frozen=True)
class Summary:
    """Summary of one metric's samples over repetitions."""

    n: int
    median: float | None
    mean: float | None
    stdev: float | None
    min: float | None
    max: float | None
    cv: float | None


def summary_columns(metric: str, samples: Sequence[float | None]) -> dict:
    """A row's columns of one metric: the headline median, ``_mean _stdev _cv _min _max`` and
    the raw ``_samples``."""
    s = summarize(samples)
    return {metric: s.median, f"{metric}_mean": s.mean, f"{metric}_stdev": s.stdev,
            f"{metric}_cv": s.cv, f"{metric}_min": s.min, f"{metric}_max": s.max,
            f"{metric}_samples": list(samples)}


def summarize(samples: Sequence[float | None]) -> Summary:
    """Median, mean, sample standard deviation (n-1), min, max and coefficient of variation.

    Missing samples (None) are left out. With one sample the spread is None, not 0:
    a single measurement says nothing about its noise.
    """
    xs = [float(x) for x in samples if x is not None and not math.isnan(x)]
    if not xs:
        return Summary(0, None, None, None, None, None, None)
    mean = statistics.fmean(xs)
    stdev = statistics.stdev(xs) if len(xs) >= 2 else None
    cv = stdev / mean if stdev is not None and mean != 0 else None
    return Summary(len(xs), statistics.median(xs), mean, stdev, min(xs), max(xs), cv)
