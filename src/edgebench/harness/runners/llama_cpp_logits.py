"""Streamed full-vocabulary logits from llama.cpp's low-level API, for quality runs at long
contexts: a chunk is decoded in ``n_batch`` pieces with logits requested only for the scored
positions, and each piece's rows are copied out in blocks, so neither llama.cpp's output buffer
(at most ``n_batch`` rows) nor this process ever holds ``[n_ctx, vocab]`` logits (4.3 GB of
float32 for a 4096-token chunk of Gemma 3's 262k-token vocabulary).

The batches are the ones ``Llama.eval`` builds (consecutive ``n_batch`` pieces, positions from
0, one sequence), so the logits are those of ``LlamaCppRunner.logits`` without its
``logits_all`` scores buffer.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgebench.errors import RunFailed

#: How a quality row names this path (``quality_method``).
METHOD = ("llama.cpp logits of the scored positions only (llama_decode in n_batch pieces, "
          "llama_get_logits rows streamed in blocks)")


def stream_scored_logits(lc: Any, llm: Any, token_ids: list[int], first: int, last: int,
                         block: int) -> Iterator[np.ndarray]:
    """Decode ``token_ids`` from an empty KV cache with ``llm`` (a loaded ``llama_cpp.Llama``;
    ``lc`` the ``llama_cpp`` module) and yield the float32 logits of positions
    ``[first, last)``, in order, as copies of at most ``block`` rows.

    Raises:
        RunFailed: the context is shorter than the chunk, or llama_decode fails.
    """
    n = len(token_ids)
    if not 0 <= first <= last <= n:
        raise ValueError(f"scored positions [{first}, {last}) outside a {n}-token chunk")
    if block < 1:
        raise ValueError(f"block must be at least 1 row, got {block}")
    ctx = llm.ctx
    n_ctx, n_batch = lc.llama_n_ctx(ctx), lc.llama_n_batch(ctx)
    if n > n_ctx:
        raise RunFailed(f"llama.cpp context of {n_ctx} tokens is shorter than the "
                        f"{n}-token chunk")
    n_vocab = llm.n_vocab()
    llm.reset()  # the Llama object's own token count: 0, as its cache is emptied below
    memory = lc.llama_get_memory(ctx)
    if memory is not None:
        lc.llama_memory_clear(memory, True)
    batch = lc.llama_batch_init(n_batch, 0, 1)
    try:
        for start in range(0, n, n_batch):
            piece = token_ids[start:start + n_batch]
            batch.n_tokens = len(piece)
            wanted = 0
            for i, token in enumerate(piece):
                pos = start + i
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = first <= pos < last
                wanted += first <= pos < last
            rc = lc.llama_decode(ctx, batch)
            if rc != 0:
                raise RunFailed(f"llama_decode returned {rc} for positions "
                                f"[{start}, {start + len(piece)})")
            if not wanted:
                continue
            # the requested rows, contiguous in batch order (llama_get_logits' contract)
            ptr = lc.llama_get_logits(ctx)
            rows = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                         shape=(wanted, n_vocab))
            for r in range(0, wanted, block):
                yield np.array(rows[r:r + block], dtype=np.float32, copy=True)
            del rows
    finally:
        lc.llama_batch_free(batch)
        llm.reset()
