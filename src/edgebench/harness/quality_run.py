"""One quality run, in the isolated child: logits of every chunk -> perplexity, and KL divergence
against the reference's cached log-probabilities -> a ``kind = "quality"`` row.

The reference (by default llama.cpp on the F16 GGUF) runs first with ``write_reference``: it
stores each chunk's scored log-probabilities (2 bytes per logit, ``q.REFERENCE_STORAGE``), NLLs
and KLD floor in a folder keyed by model, corpus, n_ctx, chunking, reference artifact and storage
version, so later runs, and later sessions, skip the reference pass.

The KLD floor of a chunk is KL(stored reference || full-precision reference) per scored
position, measured when the reference is written: what storage alone adds to every row's KLD.
Every quality row records its mean and 99th percentile over the same chunks.

The scored positions are processed in blocks of :data:`BLOCK` rows (log-softmax, NLL, top-1,
KLD, the reference's codes read or written), so no ``[n_ctx, vocab]`` array is held beyond what
the runner gives: a runner with the :class:`~edgebench.harness.runner.ScoredLogits` hook
streams its logits block by block (llama.cpp: ``runners/llama_cpp_logits``); others are sliced
from their whole-chunk :meth:`~edgebench.harness.runner.Runner.logits`.

``scored_tok_s`` times only the runtime's forward pass (the ``logits`` call, or each step of the
stream): the runner was loaded with ``logits_only`` before the clock (llama.cpp's
``logits_all`` load, OpenVINO's compile), and the reference's storage and the KLD arithmetic run
outside it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import psutil

from edgebench.errors import EdgebenchError
from edgebench.harness import memory
from edgebench.harness import quality as q
from edgebench.harness.busy import NoiseProbe
from edgebench.harness.measure import (
    RunContext,
    close_quietly,
    failed_row,
    now,
    record_for,
    settings_json,
    with_validity,
)
from edgebench.harness.reference_store import (  # noqa: F401  (reference_complete: API)
    CodesReader,
    CodesWriter,
    reference_complete,
    reference_floor,
    reference_ppl,
    save_npy,
)
from edgebench.harness.registry import load_runner
from edgebench.harness.run_inputs import kv_cache_arg
from edgebench.harness.runner import ScoredLogits
from edgebench.results import provenance
from edgebench.results.schema import RunRecord, run_key
from edgebench.suites.expand import PlannedRun


@dataclass(frozen=True)
class QualitySpec:
    """What every quality run of a session shares (pickled to each child)."""

    corpus: str
    corpus_sha256: str
    n_ctx: int
    chunks: tuple[tuple[int, ...], ...]
    reference_dir: str
    reference_label: str  # "framework:precision"
    reference_sha256: str  # the reference artifact's hash
    write_reference: bool = False


def quality_identity(run: PlannedRun, spec: QualitySpec) -> dict:
    """A quality row's identity: the run's, with the protocol in it: corpus, n_ctx, chunk count,
    the reference (label and artifact hash) and how the reference is stored."""
    return {**run.identity, "prompt_tokens": spec.n_ctx, "new_tokens": 0, "kind": "quality",
            "prompt_file_sha256": None,  # a quality row scores the corpus, never prompts
            "corpus_sha256": spec.corpus_sha256, "chunks": len(spec.chunks),
            "n_ctx": spec.n_ctx, "quality_reference": spec.reference_label,
            "reference_sha256": spec.reference_sha256,
            "reference_storage": q.REFERENCE_STORAGE}


#: Scored positions handled at once: every array of the arithmetic is ``[BLOCK, vocab]``
#: (128 MB of float32 for Gemma 3's 262k-token vocabulary), never ``[n_ctx, vocab]``.
BLOCK = 128


def scored_blocks(runner, ids: list[int], block: int = BLOCK) -> Iterator[np.ndarray]:
    """The logits of ``ids``' scored positions, in order, in arrays of at most ``block`` rows:
    streamed by a runner with the :class:`ScoredLogits` hook, else sliced from its whole-chunk
    :meth:`Runner.logits`.

    Raises:
        EdgebenchError: the runtime gave logits for another number of positions.
    """
    first, last = q.scored_range(len(ids))
    if isinstance(runner, ScoredLogits):
        yield from runner.scored_logits(ids, first, last, block)
        return
    logits = runner.logits(ids)
    if np.shape(logits)[0] != len(ids):
        raise EdgebenchError(f"runtime gave logits for {np.shape(logits)[0]} of {len(ids)} "
                             "positions")
    for start in range(first, last, block):
        yield logits[start:min(start + block, last)]


@dataclass
class ChunkScore:
    """One chunk's per-position results."""

    nll: np.ndarray
    kld: np.ndarray
    top1: np.ndarray


def score_chunk(blocks: Iterator[np.ndarray], ids: list[int], ref_dir: Path, i: int,
                write: bool, clock=None) -> ChunkScore:
    """NLL, KLD and top-1 agreement of chunk ``i`` (``ids``) from its scored logits, block by
    block; when ``write`` (the reference run), chunk ``i``'s stored log-probs, KLD floor and NLLs
    are written as they come (``chunk{i}.lp.npy`` row block after row block: the same bytes as
    one ``np.save`` of the whole array). ``clock``: a context manager entered around each step of
    ``blocks`` (the runtime's forward pass), to time it.

    Raises:
        EdgebenchError: a reference cache that is not uint16 codes of this chunk's shape, or
            logits for another number of positions than the chunk scores.
    """
    first, last = q.scored_range(len(ids))
    n = last - first
    targets = np.asarray(ids[first + 1:last + 1])
    nll, kld, top1, floor = [], [], [], []
    # the stored reference, read or written a block at a time (reference_store)
    store = CodesWriter(ref_dir, i, n) if write else CodesReader(ref_dir, i, n)
    done = 0
    it = iter(blocks)
    try:
        while True:
            if clock is None:
                logits = next(it, None)
            else:
                with clock():
                    logits = next(it, None)
            if logits is None:
                break
            rows = np.shape(logits)[0]
            if done + rows > n:
                raise EdgebenchError(f"runtime gave logits for more than the {n} scored "
                                     "positions")
            lp = q.log_softmax(logits)
            del logits
            at = slice(done, done + rows)
            nll.append(-lp[np.arange(rows), targets[at]].astype(np.float64))
            if write:
                block_codes = q.encode_logprobs(lp)
                store.write(block_codes)
                ref = q.decode_logprobs(block_codes)
                del block_codes
                floor.append(q.kl_divergence(ref, lp))
            else:
                ref = q.decode_logprobs(store.read(rows, lp.shape[1]))
            kld.append(q.kl_divergence(ref, lp))
            top1.append(q.top1_matches(ref, lp))
            del ref, lp
            done += rows
        if done != n:
            raise EdgebenchError(f"runtime gave logits for {done} of the {n} scored positions")
        if write:
            store.commit()
            save_npy(ref_dir / f"chunk{i}.floor.npy", np.concatenate(floor))
    finally:
        store.close()
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a runner's stream frees its batch now, not when collected
    score = ChunkScore(np.concatenate(nll), np.concatenate(kld), np.concatenate(top1))
    if write:  # the NLLs last: reference_complete reads their presence as a whole chunk
        save_npy(ref_dir / f"chunk{i}.nll.npy", score.nll)
    return score


def _logits_method(runner) -> str:
    if isinstance(runner, ScoredLogits):
        return getattr(runner, "SCORED_LOGITS_METHOD", None) or type(runner).LOGITS_METHOD
    return type(runner).LOGITS_METHOD


def measure_quality(run: PlannedRun, ctx: RunContext, spec: QualitySpec) -> RunRecord:
    """Score every chunk of ``spec`` with ``run``'s runtime; never raises for runtime failures."""
    started = now()
    base = replace(
        record_for(run, ctx, "ok", started_at=started), kind="quality",
        prompt_tokens=spec.n_ctx, new_tokens=0, run_key=run_key(quality_identity(run, spec)),
        corpus=spec.corpus, corpus_sha256=spec.corpus_sha256, n_ctx=spec.n_ctx,
        chunks=len(spec.chunks), quality_reference=spec.reference_label,
        reference_storage=q.REFERENCE_STORAGE,
        repetitions=None, warmup=None, prompt_ids_sha256=None,
    )
    ref_dir = Path(spec.reference_dir)
    runner = None
    try:
        peak = memory.PeakMemory()  # the baseline: before the runtime is imported
        noise = NoiseProbe().start()
        runner = load_runner(run.framework)
        base = replace(base, framework_version=runner.probe().version)
        baseline_mb = memory.tree_rss(psutil.Process()) / memory.MB
        nll, kld, top1 = [], [], []
        with memory.RssSampler() as mem:
            # logits_only: any reload or compile the logits need happens here, off the clock
            load = runner.load(run.artifact.path, run.device, run.threads, dict(run.options),
                               context_tokens=spec.n_ctx, logits_only=True,
                               **kv_cache_arg(run))
            busy = 0.0  # seconds inside the runtime's forward pass only: scored_tok_s

            @contextlib.contextmanager
            def timed():
                nonlocal busy
                with mem.off_the_clock():  # no sampler wake-ups inside the timed pass
                    t = time.perf_counter()
                    try:
                        yield
                    finally:
                        busy += time.perf_counter() - t

            for i, chunk in enumerate(spec.chunks):
                ids = list(chunk)
                # one block of scored positions at a time: neither the [n_ctx, vocab] logits
                # (a runner with ScoredLogits) nor the chunk's log-probs are ever held
                score = score_chunk(scored_blocks(runner, ids), ids, ref_dir, i,
                                    spec.write_reference, clock=timed)
                nll.append(score.nll)
                kld.append(score.kld)
                top1.append(score.top1)
        noise.stop()
        ppl = q.perplexity(np.concatenate(nll))
        div = q.divergence(np.concatenate(kld), np.concatenate(top1))
        floor_mean, floor_p99 = reference_floor(ref_dir, len(spec.chunks))
        row = replace(
            base, device_name=load.device, finished_at=now(),
            # the arithmetic is computed here even on an emulator; its clock is the emulator's
            measurement=provenance.compose(numerics=provenance.MEASURED,
                                           timings=load.measurement),
            threads_applied=load.threads_applied,
            runtime_settings=settings_json(load.options),
            quality_method=f"full-vocabulary logits: {_logits_method(runner)}",
            tokens_scored=ppl.tokens, scored_tok_s=ppl.tokens / busy if busy else None,
            ppl=ppl.ppl, ppl_stderr=ppl.stderr,
            ppl_reference=reference_ppl(ref_dir, len(spec.chunks)).ppl,
            kld_mean=div.kld_mean, kld_stderr=div.kld_stderr, kld_p99=div.kld_p99,
            top1_agree=div.top1_agree, kld_floor_mean=floor_mean, kld_floor_p99=floor_p99,
            chunk_nll=[float(np.mean(c)) for c in nll],
            chunk_kld=[float(np.mean(c)) for c in kld],
            load_s=load.load_s, peak_rss_mb=mem.peak_mb,
            rss_baseline_mb=baseline_mb, rss_delta_mb=mem.peak_mb - baseline_mb,
            energy_method="none",
        )
        return with_validity(row, peak, mem, noise, runner)
    except Exception as e:  # noqa: BLE001 - every failure becomes the row's outcome
        return failed_row(base, e)
    finally:
        close_quietly(runner)
