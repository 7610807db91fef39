"""Quality arithmetic, pure (numpy only): llama-perplexity's chunking, perplexity with its
standard error, and KL divergence / top-1 agreement against reference log-probabilities.

The protocol (METRICS.md), as ``llama-perplexity`` does it:

- the text is tokenized once (BOS first where the model's vocabulary adds one); it is split
  into non-overlapping chunks of ``n_ctx`` tokens;
- the first token of every chunk is replaced by BOS, where the vocabulary adds one (a model
  without BOS scores plain slices of the text);
- only the second half of each chunk is scored: the logits at position ``j`` predict token
  ``j + 1`` for ``j`` in ``[n_ctx // 2, n_ctx - 1)``, so a chunk scores ``n_ctx // 2 - 1``
  tokens, each with at least half a context before it;
- PPL = exp(mean NLL), with the standard error of the mean NLL carried through:
  ``ppl * sqrt(var(nll) / (N - 1))`` (var with 1/N, as llama.cpp computes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def chunk_tokens(ids: list[int], n_ctx: int, bos: int | None, max_chunks: int | None = None
                 ) -> list[list[int]]:
    """Non-overlapping ``n_ctx`` chunks of ``ids`` (a trailing partial chunk is dropped); at
    most ``max_chunks``.

    ``bos``: the vocabulary's BOS id (``ids`` then start with it, as the tokenizer put it), which
    replaces the first token of every chunk, as llama-perplexity does; ``None`` when the
    vocabulary adds no BOS: the chunks are plain slices of ``ids``.
    """
    n = len(ids) // n_ctx
    if max_chunks is not None:
        n = min(n, max_chunks)
    if bos is None:
        return [list(ids[i * n_ctx:(i + 1) * n_ctx]) for i in range(n)]
    return [[bos] + list(ids[i * n_ctx + 1:(i + 1) * n_ctx]) for i in range(n)]


def scored_range(n_ctx: int) -> tuple[int, int]:
    """Positions ``[first, last)`` whose logits are scored (each predicts the next token)."""
    return n_ctx // 2, n_ctx - 1


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities in float32 (stable: the row maximum is subtracted first; the
    normalizer is summed in float64, so a 262k-token row is normalized to float32 rounding)."""
    x = np.asarray(logits, dtype=np.float32)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True, dtype=np.float64)).astype(np.float32)


def scored_logprobs(logits: np.ndarray, n_ctx: int) -> np.ndarray:
    """Log-probabilities at the scored positions of one chunk's ``[n_ctx, vocab]`` logits."""
    first, last = scored_range(n_ctx)
    return log_softmax(np.asarray(logits)[first:last])


def chunk_nll(logprobs: np.ndarray, chunk: list[int]) -> np.ndarray:
    """Negative log-likelihood of each scored token, from :func:`scored_logprobs`."""
    first, last = scored_range(len(chunk))
    targets = np.asarray(chunk[first + 1:last + 1])
    return -logprobs[np.arange(len(targets)), targets].astype(np.float64)


def kl_divergence(ref_logprobs: np.ndarray, logprobs: np.ndarray) -> np.ndarray:
    """KL(P_ref || P) per position over the full vocabulary, in nats (terms in float32, summed
    in float64)."""
    ref = np.asarray(ref_logprobs, dtype=np.float32)
    run = np.asarray(logprobs, dtype=np.float32)
    return (np.exp(ref) * (ref - run)).sum(axis=-1, dtype=np.float64)


#: Reference log-probs are cached in 2 bytes per logit as a fixed-point code of the log-prob:
#: ``code = round(-lp / LP_STEP)``, clamped to ``[0, 65535]``, so log-probs in ``[-32, 0]``
#: (p >= 1.3e-14) keep a step of 2^-11 everywhere (float16's step grows with |lp|: 2^-8 at
#: |lp| in [4, 8)); lower ones read as -32. On read the codes are renormalized (log-softmax),
#: so the stored reference is a distribution and its KLD floor is second order in the step.
LP_STEP = 2.0 ** -11
LP_CODE_MAX = 65535
REFERENCE_STORAGE = ("uint16 fixed-point log-probs over [-32, 0], step 2^-11, renormalized on "
                     "read")
#: Joins the reference cache's key: a cache written in another storage is never read as this.
REFERENCE_STORAGE_VERSION = "lp-u16-2^-11-v2"


def encode_logprobs(logprobs: np.ndarray) -> np.ndarray:
    """Log-probabilities as uint16 fixed-point codes (see :data:`LP_STEP`)."""
    codes = np.rint(np.asarray(logprobs, dtype=np.float32) * np.float32(-1.0 / LP_STEP))
    return np.clip(codes, 0, LP_CODE_MAX, out=codes).astype(np.uint16)


def decode_logprobs(codes: np.ndarray) -> np.ndarray:
    """float32 log-probabilities from :func:`encode_logprobs` codes, renormalized per row.

    Raises:
        ValueError: not uint16 codes (e.g. a float16 cache of an older edgebench).
    """
    codes = np.asarray(codes)
    if codes.dtype != np.uint16:
        raise ValueError(f"reference log-probs are {codes.dtype}, expected uint16 codes")
    return log_softmax(codes.astype(np.float32) * np.float32(-LP_STEP))


def top1_matches(ref_logprobs: np.ndarray, logprobs: np.ndarray) -> np.ndarray:
    """Whether each position's most likely token is the same as the reference's."""
    return np.asarray(ref_logprobs).argmax(axis=-1) == np.asarray(logprobs).argmax(axis=-1)


@dataclass(frozen=True)
class Perplexity:
    ppl: float
    stderr: float
    tokens: int


def perplexity(nll: np.ndarray) -> Perplexity:
    """exp(mean NLL) ± its standard error, llama-perplexity's formula.

    Raises:
        ValueError: fewer than two scored tokens (no standard error exists).
    """
    nll = np.asarray(nll, dtype=np.float64)
    n = len(nll)
    if n < 2:
        raise ValueError(f"perplexity needs at least 2 scored tokens, got {n}")
    mean = float(nll.mean())
    var = float((nll * nll).mean() - mean * mean)
    ppl = float(np.exp(mean))
    return Perplexity(ppl, ppl * float(np.sqrt(max(var, 0.0) / (n - 1))), n)


@dataclass(frozen=True)
class Divergence:
    kld_mean: float
    kld_stderr: float
    kld_p99: float
    top1_agree: float


def divergence(kld: np.ndarray, top1: np.ndarray) -> Divergence:
    """Mean KLD with its standard error, 99th percentile KLD, and top-1 agreement share."""
    kld = np.asarray(kld, dtype=np.float64)
    n = len(kld)
    stderr = float(kld.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Divergence(float(kld.mean()), stderr, float(np.percentile(kld, 99)),
                      float(np.mean(top1)))
