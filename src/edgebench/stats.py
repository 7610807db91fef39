"""Telling change from noise: one statistics layer for ``gate``, ``history`` and ``recommend``.

Pure functions over sample lists (numpy, scipy). Two sample sets of one metric are compared by
the ratio of their medians with a bootstrap confidence interval, the Hodges-Lehmann shift and
the Mann-Whitney U p-value; quality is compared paired, over the same chunks, with a block
bootstrap by chunk. A verdict is one of ``VERDICTS``:

- **regressed**: the point estimate is worse than the limit, the interval excludes no change
  and the p-value reaches ``alpha``;
- **improved**: likewise, better by more than the limit;
- **unchanged**: the interval lies inside +/- the margin (equivalence, not overlap);
- **inconclusive**: anything else, with how many samples per side would likely settle it.

Every resampling is seeded, so one input gives one answer. docs/statistics.md has the method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("improved", "regressed", "unchanged", "inconclusive")
#: Resamples of every bootstrap (the interval's endpoints move by well under 1 % between seeds
#: at this count for 5-50 samples).
N_BOOT = 4000
#: Most samples per side ``samples_needed`` will suggest (beyond it: "more than this").
MAX_SUGGESTED = 1000
#: Fewest values a side for an "unchanged" verdict: the bootstrap interval of a median of 2 or
#: 3 values takes so few distinct values that it looks tight whatever the noise.
MIN_UNCHANGED = 4


@dataclass(frozen=True)
class Comparison:
    """Baseline ``a`` against candidate ``b`` for one metric (``change`` is candidate relative
    to baseline: a ratio for relative limits, a difference for absolute ones)."""

    n_baseline: int
    n_candidate: int
    baseline: float  # median of a
    candidate: float  # median of b
    relative: bool  # True: change is b/a; False: change is b - a
    change: float
    low: float  # confidence interval of ``change``
    high: float
    confidence: float
    shift: float  # Hodges-Lehmann estimate of b - a (median of pairwise differences)
    p_value: float  # Mann-Whitney U, two-sided (1.0 when it cannot be computed)
    p_floor: float  # the smallest two-sided p-value these sample sizes can reach
    verdict: str
    reason: str
    samples_needed: int | None = None  # per side, to likely settle an inconclusive verdict

    @property
    def change_pct(self) -> float | None:
        """The relative change in percent (None for absolute comparisons)."""
        return (self.change - 1.0) * 100.0 if self.relative else None


def _clean(x: Sequence[float]) -> np.ndarray:
    arr = np.asarray([v for v in x if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def p_floor(n: int, m: int) -> float:
    """The smallest two-sided Mann-Whitney p-value reachable with ``n`` and ``m`` samples:
    every ordering is equally likely under no change, so the most extreme one has probability
    1 / C(n+m, n), doubled for two sides (5 vs 5: 2/252 = 0.0079)."""
    if n < 1 or m < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n + m, n))


def hodges_lehmann(a: Sequence[float], b: Sequence[float]) -> float:
    """The Hodges-Lehmann shift: the median of all pairwise differences ``b_j - a_i``."""
    a, b = _clean(a), _clean(b)
    return float(np.median(b[:, None] - a[None, :]))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (exact when small and without ties, else normal)."""
    from scipy.stats import mannwhitneyu

    a, b = _clean(a), _clean(b)
    if len(a) < 1 or len(b) < 1 or (np.ptp(np.concatenate([a, b])) == 0):
        return 1.0
    return float(mannwhitneyu(b, a, alternative="two-sided").pvalue)


def _boot_medians(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return np.median(x[idx], axis=1)


def bootstrap_interval(a: Sequence[float], b: Sequence[float], *, relative: bool = True,
                       confidence: float = 0.95, n_boot: int = N_BOOT,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(b)/median(a) (``relative``) or of
    median(b) - median(a), resampling each side on its own."""
    a, b = _clean(a), _clean(b)
    rng = np.random.default_rng(seed)
    ma, mb = _boot_medians(a, rng, n_boot), _boot_medians(b, rng, n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = mb / ma if relative else mb - ma
    stat = stat[np.isfinite(stat)]
    tail = (1 - confidence) / 2
    return float(np.quantile(stat, tail)), float(np.quantile(stat, 1 - tail))


def _needed(n: int, low: float, high: float, change: float, no_change: float,
            margin: float, relative: bool) -> int | None:
    """Samples per side that would likely shrink the interval enough to decide: the
    half-width scales as 1/sqrt(n), so n' = n (half / room)^2, where room is the distance
    to the nearer decision (inside the margin, or clear of no change)."""
    tx = math.log if relative else (lambda v: v)
    try:
        est, lo, hi, zero = tx(change), tx(low), tx(high), tx(no_change)
        band = math.log1p(margin) if relative else margin
    except ValueError:
        return None
    half = (hi - lo) / 2
    room = max(band - abs(est - zero), abs(est - zero))
    if half <= 0 or room <= 0:
        return None
    return min(MAX_SUGGESTED + 1, max(n + 1, math.ceil(n * (half / room) ** 2)))


def _groups(x: Sequence[float], groups: Sequence[int] | None) -> list[np.ndarray] | None:
    """Samples split by launch (None when there is one launch or no labels)."""
    if groups is None:
        return None
    vals = list(x)
    if len(groups) != len(vals):
        raise ValueError(f"{len(groups)} launch labels for {len(vals)} samples")
    by: dict[int, list[float]] = {}
    for g, v in zip(groups, vals):
        if v is not None and math.isfinite(v):
            by.setdefault(int(g), []).append(float(v))
    return [np.asarray(v) for v in by.values()] if len(by) > 1 else None


def _cluster_medians(parts: list[np.ndarray], rng: np.random.Generator,
                     n_boot: int) -> np.ndarray:
    """Medians of a two-level bootstrap: draw launches with replacement, then samples within
    each drawn launch (between-process variance counts, not only within-process)."""
    out = np.empty(n_boot)
    picks = rng.integers(0, len(parts), size=(n_boot, len(parts)))
    for i in range(n_boot):
        drawn = [parts[j][rng.integers(0, len(parts[j]), len(parts[j]))] for j in picks[i]]
        out[i] = np.median(np.concatenate(drawn))
    return out


def _verdict(*, change: float, low: float, high: float, p: float | None, floor: float | None,
             relative: bool, worse: str, limit: float, margin: float, alpha: float, n: int,
             interval: str) -> tuple[str, str, int | None]:
    """The verdict rule (module docstring) for a change and its interval; ``p`` None for a
    paired comparison, which decides on the interval alone."""
    no_change = 1.0 if relative else 0.0
    sign = 1.0 if worse == "higher" else -1.0  # worse direction of change - no_change
    if relative:
        worse_edge, better_edge = 1 + sign * limit, 1 - sign * limit
        band = (1 - margin, 1 + margin)
    else:
        worse_edge, better_edge, band = sign * limit, -sign * limit, (-margin, margin)
    excludes = low > no_change or high < no_change
    significant = p is None or p <= alpha
    at_p = f", p = {p:.2g}" if p is not None else ""
    if excludes and significant and sign * (change - worse_edge) > 0:
        return ("regressed", f"worse than the limit; interval {interval} excludes no change"
                f"{at_p}", None)
    if excludes and significant and sign * (better_edge - change) > 0:
        return ("improved", f"better beyond the limit; interval {interval} excludes no "
                f"change{at_p}", None)
    if band[0] <= low and high <= band[1] and n >= MIN_UNCHANGED:
        return ("unchanged", f"interval {interval} inside +/-{margin:g}"
                f"{' (relative)' if relative else ''}", None)
    needed = _needed(n, low, high, change, no_change, margin, relative)
    if n < MIN_UNCHANGED and band[0] <= low and high <= band[1]:
        reason = (f"interval {interval} inside the margin, but {n} values a side are too few "
                  f"to claim no change (at least {MIN_UNCHANGED}): measure more")
        needed = max(needed or 0, MIN_UNCHANGED)
    elif floor is not None and floor > alpha:
        reason = (f"{n} samples a side cannot reach p <= {alpha:g} (the smallest possible p "
                  f"is {floor:.2g}): measure more")
        k = n
        while p_floor(k, k) > alpha:
            k += 1
        needed = max(needed or 0, k)
    else:
        reason = (f"interval {interval} neither inside the margin nor clear of no change: "
                  "measure more")
    return "inconclusive", reason, needed


def compare(a: Sequence[float], b: Sequence[float], *, worse: str, limit: float,
            relative: bool = True, margin: float | None = None, confidence: float = 0.95,
            alpha: float = 0.05, n_boot: int = N_BOOT, seed: int = 0,
            launches: tuple[Sequence[int] | None, Sequence[int] | None] = (None, None),
            ) -> Comparison:
    """Compare candidate ``b`` to baseline ``a``.

    Args:
        a, b: samples of one metric (None and non-finite values are dropped).
        worse: ``"higher"`` when a higher value is worse (latency, memory, KLD), ``"lower"``
            when a lower one is (tokens/s).
        limit: how much worse counts as a regression, as a positive fraction for a
            ``relative`` comparison (0.05: 5 %) or in the metric's units otherwise.
        margin: the equivalence band (default: ``limit``), same units.
        confidence: of the bootstrap interval; alpha: the p-value a verdict must reach.
        launches: the launch index of each sample of ``a`` and of ``b`` (a row's
            ``sample_launch``); a side with two or more launches is resampled launch first,
            then samples within (a cluster bootstrap), so between-process variance counts.

    Raises:
        ValueError: ``worse`` not higher/lower, a negative limit or margin, a side with no
            finite sample, or launch labels that do not match the samples.
    """
    if worse not in ("higher", "lower"):
        raise ValueError(f"worse must be 'higher' or 'lower', got {worse!r}")
    margin = limit if margin is None else margin
    if limit < 0 or margin < 0:
        raise ValueError("limit and margin are sizes: give them as positive numbers")
    ga, gb = _groups(a, launches[0]), _groups(b, launches[1])
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        raise ValueError("both sides need at least one finite sample")
    ma, mb = float(np.median(xa)), float(np.median(xb))
    if relative and ma == 0:
        raise ValueError("a relative comparison needs a non-zero baseline median")
    change = mb / ma if relative else mb - ma
    if len(xa) > 1 and len(xb) > 1:
        if ga is None and gb is None:
            low, high = bootstrap_interval(xa, xb, relative=relative, confidence=confidence,
                                           n_boot=n_boot, seed=seed)
        else:
            rng = np.random.default_rng(seed)
            ba = _cluster_medians(ga, rng, n_boot) if ga else _boot_medians(xa, rng, n_boot)
            bb = _cluster_medians(gb, rng, n_boot) if gb else _boot_medians(xb, rng, n_boot)
            with np.errstate(divide="ignore", invalid="ignore"):
                stat = bb / ba if relative else bb - ba
            stat, tail = stat[np.isfinite(stat)], (1 - confidence) / 2
            low, high = float(np.quantile(stat, tail)), float(np.quantile(stat, 1 - tail))
    else:  # one value on a side: no spread to resample; the interval is unknown
        low, high = (0.0 if relative else -math.inf), math.inf
    p, floor = mann_whitney_p(xa, xb), p_floor(len(xa), len(xb))
    unit = "x" if relative else ""
    by = " by launch" if ga or gb else ""
    interval = f"{low:.3g}{unit}..{high:.3g}{unit} ({confidence:.0%}{by})"
    verdict, reason, needed = _verdict(
        change=change, low=low, high=high, p=p, floor=floor, relative=relative, worse=worse,
        limit=limit, margin=margin, alpha=alpha, n=min(len(xa), len(xb)), interval=interval)
    return Comparison(len(xa), len(xb), ma, mb, relative, change, low, high, confidence,
                      hodges_lehmann(xa, xb), p, floor, verdict, reason, needed)


def paired_compare(a: Sequence[float], b: Sequence[float], *, worse: str, limit: float,
                   relative: bool = False, margin: float | None = None,
                   confidence: float = 0.95, n_boot: int = N_BOOT,
                   seed: int = 0) -> Comparison:
    """Compare per-block values scored on the same blocks (quality chunks), paired.

    ``change`` is the mean per-block difference b - a (``relative`` False, e.g. KLD) or
    exp of it (``relative`` True: ``a`` and ``b`` are per-chunk mean NLLs, so the change is
    the perplexity ratio); its interval comes from ``block_bootstrap``. The verdict follows the
    module's rule on the interval alone (``p_value`` is NaN: no test is run).

    Raises:
        ValueError: bad ``worse``/limit/margin, or block counts that differ.
    """
    if worse not in ("higher", "lower"):
        raise ValueError(f"worse must be 'higher' or 'lower', got {worse!r}")
    margin = limit if margin is None else margin
    if limit < 0 or margin < 0:
        raise ValueError("limit and margin are sizes: give them as positive numbers")
    est, lo, hi = block_bootstrap(a, b, confidence=confidence, n_boot=n_boot, seed=seed)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if relative:
        change, low, high = math.exp(est), math.exp(lo), math.exp(hi)
        base, cand = math.exp(xa.mean()), math.exp(xb.mean())
    else:
        change, low, high, base, cand = est, lo, hi, float(xa.mean()), float(xb.mean())
    unit = "x" if relative else ""
    interval = f"{low:.3g}{unit}..{high:.3g}{unit} ({confidence:.0%}, {xa.size} blocks paired)"
    verdict, reason, needed = _verdict(
        change=change, low=low, high=high, p=None, floor=None, relative=relative, worse=worse,
        limit=limit, margin=margin, alpha=1.0, n=xa.size, interval=interval)
    return Comparison(xa.size, xb.size, base, cand, relative, change, low, high, confidence,
                      float(np.median(xb - xa)), math.nan, math.nan, verdict, reason, needed)


def block_bootstrap(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                    n_boot: int = N_BOOT, seed: int = 0,
                    stat: Callable[[np.ndarray], np.ndarray] | None = None,
                    ) -> tuple[float, float, float]:
    """Paired comparison over the same blocks (quality chunks): the mean of ``b - a`` per
    block and its percentile interval, resampling whole blocks (both sides together, so what
    the chunks share cancels). Returns (estimate, low, high).

    Raises:
        ValueError: the two sides have different block counts, or none.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape or xa.size == 0:
        raise ValueError(f"paired blocks must match: {xa.size} vs {xb.size}")
    d = xb - xa
    f = stat or (lambda m: m.mean(axis=-1))
    rng = np.random.default_rng(seed)
    boots = f(d[rng.integers(0, d.size, size=(n_boot, d.size))])
    tail = (1 - confidence) / 2
    return float(f(d[None, :])[0]), float(np.quantile(boots, tail)), \
        float(np.quantile(boots, 1 - tail))


def probability_best(samples: Mapping[str, Sequence[float]], *, higher_is_better: bool,
                     n_boot: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """Each candidate's probability of having the best median, by bootstrapping every
    candidate's samples on its own (ties split evenly). A candidate with one sample keeps it
    in every resample (it has no spread to draw from)."""
    names = [k for k, v in samples.items() if len(_clean(v))]
    if not names:
        return {}
    rng = np.random.default_rng(seed)
    meds = np.stack([_boot_medians(_clean(samples[k]), rng, n_boot) for k in names])
    best = meds.max(axis=0) if higher_is_better else meds.min(axis=0)
    wins = (meds == best[None, :]).astype(float)
    wins /= wins.sum(axis=0, keepdims=True)
    return {k: float(w) for k, w in zip(names, wins.mean(axis=1))} | \
        {k: 0.0 for k in samples if k not in names}


def equivalent(a: Sequence[float], b: Sequence[float], *, margin: float = 0.05,
               confidence: float = 0.95, seed: int = 0) -> bool:
    """Whether the ratio of medians b/a lies, with its whole interval, inside +/- ``margin``
    (equivalence; overlapping ranges are not evidence of it)."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2:
        return False
    low, high = bootstrap_interval(xa, xb, confidence=confidence, seed=seed)
    return 1 - margin <= low and high <= 1 + margin


def change_points(points: Sequence[float | Sequence[float]], *, min_size: int = 2,
                  alpha: float = 0.01, min_shift: float = 0.05) -> list[int]:
    """Indices where a series steps to a new level that persists (binary segmentation).

    ``points`` are in time order, each one value or the samples of one session (a nightly
    run's repetitions: more samples, more power). A split at ``i`` is kept when both sides
    hold at least ``min_size`` points nearer their own side's level than the other's (one
    outlier, even at an end, is no step), the medians of their samples
    differ by more than ``min_shift`` (relative), and a Mann-Whitney test over their samples
    separates them at ``alpha``; each side is then searched again.
    """
    pts = [_clean(p if isinstance(p, (list, tuple, np.ndarray)) else [p]) for p in points]
    levels = [float(np.median(p)) if len(p) else math.nan for p in pts]
    found: list[int] = []

    def search(lo: int, hi: int) -> None:
        best, best_p = None, alpha
        for i in range(lo + min_size, hi - min_size + 1):
            left, right = np.concatenate(pts[lo:i]), np.concatenate(pts[i:hi])
            if not len(left) or not len(right):
                continue
            ml, mr = float(np.median(left)), float(np.median(right))
            if ml == 0 or abs(mr / ml - 1) <= min_shift:
                continue
            # persistence: at least min_size sessions on each side sit at their side's level
            # (one bad night at an end drags a median but stays nearer the other level)
            own = sum(abs(m - ml) < abs(m - mr) for m in levels[lo:i])
            new = sum(abs(m - mr) < abs(m - ml) for m in levels[i:hi])
            if own < min_size or new < min_size:
                continue
            p = mann_whitney_p(left, right)
            if p <= best_p:
                best, best_p = i, p
        if best is not None:
            found.append(best)
            search(lo, best)
            search(best, hi)

    search(0, len(pts))
    return sorted(found)
