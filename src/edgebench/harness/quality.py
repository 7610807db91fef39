"""Quality arithmetic, pure (numpy only): llama-perplexity's chunking, perplexity with its
standard error, and KL divergence / top-1 agreement against reference log-probabilities.

The protocol (METRICS.md), as ``llama-perplexity`` does it:

- the text is tokenized once; it is split into non-overlapping chunks of ``n_ctx`` tokens;
- the first token of every chunk is replaced by BOS;
- only the second half of each chunk is scored: the logits at position ``j`` predict token
  ``j + 1`` for ``j`` in ``[n_ctx // 2, n_ctx - 1)``, so a chunk scores ``n_ctx // 2 - 1``
  tokens, each with at least half a context before it;
- PPL = exp(mean NLL), with the standard error of the mean NLL carried through:
  ``ppl * sqrt(var(nll) / (N - 1))`` (var with 1/N, as llama.cpp computes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def chunk_tokens(ids: list[int], n_ctx: int, bos: int, max_chunks: int | None = None
                 ) -> list[list[int]]:
    """Non-overlapping ``n_ctx`` chunks of ``ids`` (a trailing partial chunk is dropped), each
    starting with ``bos``; at most ``max_chunks``."""
    n = len(ids) // n_ctx
    if max_chunks is not None:
        n = min(n, max_chunks)
    return [[bos] + list(ids[i * n_ctx + 1:(i + 1) * n_ctx]) for i in range(n)]


def scored_range(n_ctx: int) -> tuple[int, int]:
    """Positions ``[first, last)`` whose logits are scored (each predicts the next token)."""
    return n_ctx // 2, n_ctx - 1


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities in float32 (stable: the row maximum is subtracted first)."""
    x = np.asarray(logits, dtype=np.float32)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


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
    """KL(P_ref || P) per position over the full vocabulary, in nats."""
    ref = np.asarray(ref_logprobs, dtype=np.float32)
    run = np.asarray(logprobs, dtype=np.float32)
    return (np.exp(ref) * (ref - run)).sum(axis=-1).astype(np.float64)


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
