"""Hand-computed tables for the metric arithmetic of METRICS.md."""

import math

import pytest

from edgebench.harness.metrics import inter_token_ms, repetition_metrics, summarize

MS = 1_000_000


@pytest.mark.parametrize(
    "t0, tokens, prompt, expected",
    [
        # 10 prompt tokens, first token at 100 ms, then one every 20 ms (4 tokens):
        # ttft 100 ms; prefill 10/0.1 = 100 tok/s; decode 3/0.06 = 50 tok/s; tpot 20 ms;
        # e2e 0.16 s
        (0, [100 * MS, 120 * MS, 140 * MS, 160 * MS], 10,
         dict(ttft_ms=100.0, prefill_tok_s=100.0, decode_tok_s=50.0, tpot_ms=20.0, e2e_s=0.16)),
        # t0 offset must not matter; uneven gaps: decode 2 / (0.030 s) = 66.67 tok/s
        (5 * MS, [55 * MS, 65 * MS, 85 * MS], 64,
         dict(ttft_ms=50.0, prefill_tok_s=1280.0, decode_tok_s=2 / 0.03, tpot_ms=15.0,
              e2e_s=0.08)),
        # one token: no decode metrics
        (0, [40 * MS], 4,
         dict(ttft_ms=40.0, prefill_tok_s=100.0, decode_tok_s=None, tpot_ms=None, e2e_s=0.04)),
    ],
)
def test_repetition_metrics(t0, tokens, prompt, expected):
    got = repetition_metrics(t0, tokens, prompt)
    for key, want in expected.items():
        if want is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(want), key


def test_decode_counts_tokens_after_the_first():
    # mlx-lm's (N+1)/t would give 5/0.04 = 125 here; the definition is (N-1)/(tN-t1) = 3/0.03.
    got = repetition_metrics(0, [10 * MS, 20 * MS, 30 * MS, 40 * MS], 1)
    assert got["decode_tok_s"] == pytest.approx(100.0)
    assert got["tpot_ms"] == pytest.approx(1000 / got["decode_tok_s"])


@pytest.mark.parametrize("tokens", [[], [5 * MS, 4 * MS]])
def test_repetition_metrics_rejects_bad_timelines(tokens):
    with pytest.raises(ValueError):
        repetition_metrics(0, tokens, 1)


def test_timestamp_before_t0_rejected():
    with pytest.raises(ValueError):
        repetition_metrics(10 * MS, [5 * MS], 1)


def test_inter_token_ms():
    assert inter_token_ms([0, 2 * MS, 5 * MS]) == [2.0, 3.0]


@pytest.mark.parametrize(
    "samples, median, mean, stdev, lo, hi",
    [
        # mean 5, deviations -3,-1,1,3 -> ss 20, n-1 = 3 -> stdev sqrt(20/3)
        ([2, 4, 6, 8], 5.0, 5.0, math.sqrt(20 / 3), 2, 8),
        ([10, 10, 40], 10.0, 20.0, math.sqrt(300), 10, 40),  # ss = 100+100+400
        ([3, None, 5], 4.0, 4.0, math.sqrt(2), 3, 5),  # None is left out
    ],
)
def test_summarize(samples, median, mean, stdev, lo, hi):
    s = summarize(samples)
    assert (s.median, s.mean, s.min, s.max) == pytest.approx((median, mean, lo, hi))
    assert s.stdev == pytest.approx(stdev)
    assert s.cv == pytest.approx(stdev / mean)


def test_summarize_one_sample_has_no_spread():
    s = summarize([7.0])
    assert (s.n, s.median, s.stdev, s.cv) == (1, 7.0, None, None)


def test_summarize_empty():
    assert summarize([None]).median is None
