"""Quality arithmetic against hand-computed answers (pure, numpy only)."""

import math

import numpy as np
import pytest

from edgebench.harness import quality as q


def test_chunks_replace_first_token_with_bos_and_drop_the_tail():
    ids = list(range(10, 31))  # 21 tokens
    assert q.chunk_tokens(ids, 8, bos=2) == [[2, 11, 12, 13, 14, 15, 16, 17],
                                             [2, 19, 20, 21, 22, 23, 24, 25]]
    assert q.chunk_tokens(ids, 8, bos=2, max_chunks=1) == [[2, 11, 12, 13, 14, 15, 16, 17]]
    assert q.chunk_tokens(ids, 32, bos=2) == []


@pytest.mark.parametrize("n_ctx, first, last", [(512, 256, 511), (8, 4, 7), (9, 4, 8)])
def test_scored_range_is_the_second_half(n_ctx, first, last):
    assert q.scored_range(n_ctx) == (first, last)


def test_nll_of_known_logits():
    """Vocab of 4, n_ctx 4: only position 2 is scored (range [2, 3)); it predicts token 1,
    and its logits make P(1) = e^2 / (e^2 + 3)."""
    chunk = [0, 3, 2, 1]
    logits = np.zeros((4, 4), dtype=np.float32)
    logits[2, 1] = 2.0
    lp = q.scored_logprobs(logits, 4)
    assert lp.shape == (1, 4)
    nll = q.chunk_nll(lp, chunk)
    assert nll == pytest.approx([-(2.0 - math.log(math.e ** 2 + 3))], rel=1e-6)


def test_perplexity_and_standard_error_by_hand():
    nll = np.array([1.0, 2.0, 3.0])
    # mean 2, var (1/N) = (1+4+9)/3 - 4 = 2/3, stderr of mean = sqrt((2/3) / 2) = 0.57735
    p = q.perplexity(nll)
    assert p.ppl == pytest.approx(math.e ** 2)
    assert p.stderr == pytest.approx(math.e ** 2 * math.sqrt(1 / 3))
    assert p.tokens == 3


def test_uniform_model_has_perplexity_equal_to_vocab_size():
    chunk = [0, 1, 2, 3, 0, 1, 2, 3]
    lp = q.scored_logprobs(np.zeros((8, 5)), 8)
    assert q.perplexity(q.chunk_nll(lp, chunk)).ppl == pytest.approx(5.0)


def test_perplexity_needs_two_tokens():
    with pytest.raises(ValueError, match="at least 2"):
        q.perplexity(np.array([1.0]))


def test_kl_divergence_by_hand():
    ref = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    run = np.log(np.array([[0.25, 0.75], [0.9, 0.1]]))
    # 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln 2 + 0.5 ln(2/3)
    expected = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert q.kl_divergence(ref, run) == pytest.approx([expected, 0.0], abs=1e-6)
    assert q.kl_divergence(ref, ref) == pytest.approx([0.0, 0.0], abs=1e-7)
    assert list(q.top1_matches(ref, run)) == [False, True]  # a tie's argmax is the first


def test_divergence_summary():
    kld = np.array([0.0, 0.1, 0.2, 0.3])
    d = q.divergence(kld, np.array([True, False, True, True]))
    assert d.kld_mean == pytest.approx(0.15)
    assert d.kld_stderr == pytest.approx(np.std(kld, ddof=1) / 2)
    assert d.kld_p99 == pytest.approx(0.297)  # linear interpolation: 0.2 + 0.97 * 0.1
    assert d.top1_agree == 0.75


def test_log_softmax_is_stable_for_large_logits():
    lp = q.log_softmax(np.array([[1000.0, 1000.0]]))
    np.testing.assert_allclose(lp, [[-math.log(2), -math.log(2)]], rtol=1e-6)
