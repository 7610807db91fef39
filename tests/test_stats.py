"""edgebench.stats: hand-computed answers, seeded synthetic samples, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench import stats


@pytest.mark.parametrize("n, m, floor", [
    (5, 5, 2 / 252), (2, 2, 2 / 6), (3, 3, 2 / 20), (10, 10, 2 / math.comb(20, 10)),
    (1, 1, 1.0), (0, 5, 1.0),
])
def test_p_floor(n, m, floor):
    assert stats.p_floor(n, m) == pytest.approx(floor)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    # b - a over all pairs: 1 0 -1 3 2 1 5 4 3 -> sorted -1 0 1 1 [2] 3 3 4 5
    assert stats.hodges_lehmann([1, 2, 3], [2, 4, 6]) == 2.0


def test_mann_whitney_exact_small_samples():
    # [4,5,6] above all of [1,2,3]: one of C(6,3) = 20 orderings each way -> p = 2/20
    assert stats.mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert stats.mann_whitney_p([1, 1], [1, 1]) == 1.0


def synthetic(median: float, n: int, cv: float = 0.03, seed: int = 0) -> np.ndarray:
    return median * (1 + cv * np.random.default_rng(seed).standard_normal(n))


def test_ten_percent_regression_over_ten_samples_is_regressed():
    c = stats.compare(synthetic(100, 10, seed=1), synthetic(90, 10, seed=2), worse="lower",
                      limit=0.05)
    assert c.verdict == "regressed", c.reason
    assert c.change == pytest.approx(0.9, abs=0.03) and c.high < 1 and c.p_value < 0.01


@pytest.mark.parametrize("seed", range(5))
def test_two_percent_noise_is_never_regressed(seed):
    c = stats.compare(synthetic(100, 10, 0.02, seed), synthetic(100, 10, 0.02, seed + 100),
                      worse="lower", limit=0.05)
    assert c.verdict in ("unchanged", "inconclusive"), c.reason


def test_thirty_percent_with_two_samples_each_is_inconclusive_and_says_why():
    c = stats.compare([100, 101], [70, 71], worse="lower", limit=0.05)
    assert c.verdict == "inconclusive"
    assert "cannot reach p <= 0.05" in c.reason and "0.33" in c.reason
    assert c.samples_needed == 4  # p_floor(4, 4) = 2/70 = 0.029


def test_unchanged_needs_the_interval_inside_the_margin_not_overlap():
    wide_a, wide_b = [80, 100, 120, 90, 110], [82, 101, 119, 91, 108]
    c = stats.compare(wide_a, wide_b, worse="lower", limit=0.05)
    assert c.verdict == "inconclusive" and c.samples_needed > 5
    tight = stats.compare(synthetic(100, 20, 0.005, 1), synthetic(100, 20, 0.005, 2),
                          worse="lower", limit=0.05)
    assert tight.verdict == "unchanged"


def test_absolute_limits_compare_differences():
    c = stats.compare([0.010, 0.011, 0.012, 0.010, 0.011] * 2,
                      [0.031, 0.030, 0.032, 0.031, 0.030] * 2, worse="higher", limit=0.01,
                      relative=False)
    assert c.verdict == "regressed" and c.change == pytest.approx(0.031 - 0.011)  # medians
    assert c.change_pct is None


def test_one_sample_a_side_is_never_decided():
    c = stats.compare([100], [50], worse="lower", limit=0.05)
    assert c.verdict == "inconclusive"


@pytest.mark.parametrize("bad", [dict(worse="up"), dict(limit=-1)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        stats.compare([1, 2], [1, 2], **{"worse": "lower", "limit": 0.05, **bad})


# -- properties -------------------------------------------------------------------------------
effects = st.one_of(st.floats(0.6, 0.85), st.floats(1.2, 1.6))


@settings(max_examples=40, deadline=None)
@given(effect=effects, seed=st.integers(0, 1000), n=st.integers(6, 15))
def test_swapping_baseline_and_candidate_flips_the_verdict(effect, seed, n):
    a, b = synthetic(100, n, seed=seed), synthetic(100 * effect, n, seed=seed + 1)
    one = stats.compare(a, b, worse="lower", limit=0.05).verdict
    two = stats.compare(b, a, worse="lower", limit=0.05).verdict
    flip = {"improved": "regressed", "regressed": "improved"}
    assert two == flip.get(one, one)


@settings(max_examples=40, deadline=None)
@given(shift=st.floats(-0.5, 0.5), const=st.floats(-100, 100), seed=st.integers(0, 1000))
def test_adding_a_constant_to_both_changes_nothing(shift, const, seed):
    a, b = synthetic(1, 8, 0.05, seed), synthetic(1 + shift, 8, 0.05, seed + 1)
    one = stats.compare(a, b, worse="higher", limit=0.1, relative=False)
    two = stats.compare(a + const, b + const, worse="higher", limit=0.1, relative=False)
    assert one.verdict == two.verdict
    assert one.change == pytest.approx(two.change, abs=1e-9)


# -- paired quality, ranking, trends ---------------------------------------------------------
def test_block_bootstrap_pairs_chunks():
    a = [2.0, 3.0, 4.0, 5.0]
    est, low, high = stats.block_bootstrap(a, [x + 0.1 for x in a])
    assert est == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    with pytest.raises(ValueError):
        stats.block_bootstrap([1, 2], [1])


def test_probability_best():
    p = stats.probability_best({"a": [10, 11, 12], "b": [20, 21, 22], "c": [30]},
                               higher_is_better=True)
    assert p == {"a": 0.0, "b": 0.0, "c": 1.0}
    even = stats.probability_best({"a": [5, 5], "b": [5, 5]}, higher_is_better=False)
    assert even == {"a": 0.5, "b": 0.5}


def test_equivalent_only_on_a_tight_interval():
    assert stats.equivalent(synthetic(100, 20, 0.005, 1), synthetic(101, 20, 0.005, 2))
    assert not stats.equivalent([80, 120, 100], [81, 119, 100])  # overlap is not equality


def test_change_points_find_a_persisting_step_not_an_outlier():
    steady = [[100, 101, 99]] * 5
    assert stats.change_points(steady + [[90, 91, 89]] * 5) == [5]
    assert stats.change_points([[100, 101, 99]] * 5 + [[200, 201, 199]]
                               + [[100, 101, 99]] * 4) == []
    assert stats.change_points(steady) == []


def test_launches_widen_the_interval_when_processes_differ():
    """Four launches, each tight inside but at levels 6 % apart: pooled, 20 samples look
    like a tight "unchanged"; resampled by launch, the between-process spread counts."""
    rng = np.random.default_rng(0)
    a = np.concatenate([lv * (1 + 0.003 * rng.standard_normal(5)) for lv in (100, 106, 95, 102)])
    labels = [i for i in range(4) for _ in range(5)]
    b = 101 * (1 + 0.003 * rng.standard_normal(20))
    pooled = stats.compare(a, b, worse="lower", limit=0.05)
    clustered = stats.compare(a, b, worse="lower", limit=0.05, launches=(labels, None))
    assert pooled.verdict == "unchanged" and clustered.verdict == "inconclusive"
    assert clustered.high - clustered.low > 3 * (pooled.high - pooled.low)
    assert "by launch" in clustered.reason
    with pytest.raises(ValueError):
        stats.compare(a, b, worse="lower", limit=0.05, launches=([0, 1], None))


def test_too_few_values_never_claim_no_change():
    c = stats.compare([100, 100.1, 99.9], [100, 100.1, 99.9], worse="lower", limit=0.05)
    assert c.verdict == "inconclusive" and "too few to claim no change" in c.reason
    assert c.samples_needed >= stats.MIN_UNCHANGED


def test_paired_compare_kld_and_perplexity():
    base = [0.010, 0.012, 0.011, 0.013, 0.010, 0.012]
    worse = [x + 0.03 for x in base]
    kld = stats.paired_compare(base, worse, worse="higher", limit=0.01)
    assert kld.verdict == "regressed" and kld.change == pytest.approx(0.03)
    assert math.isnan(kld.p_value)
    nll = [2.0, 2.5, 3.0, 2.2, 2.8, 2.4]
    same = stats.paired_compare(nll, [x + 0.001 for x in nll], worse="higher", limit=0.05,
                                relative=True)
    assert same.verdict == "unchanged" and same.change == pytest.approx(math.exp(0.001))
    assert same.baseline == pytest.approx(math.exp(np.mean(nll)))


@pytest.mark.parametrize("series", [
    [[100, 101, 99]] * 8 + [[80, 81, 79]],  # one bad night at the end
    [[80, 81, 79]] + [[100, 101, 99]] * 8,  # and at the start
])
def test_one_bad_night_at_an_end_is_no_step(series):
    assert stats.change_points(series) == []
