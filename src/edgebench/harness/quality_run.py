"""One quality run, in the isolated child: logits of every chunk -> perplexity, and KL divergence
against the reference's cached log-probabilities -> a ``kind = "quality"`` row.

The reference (by default llama.cpp on the F16 GGUF) runs first with ``write_reference``: it
stores each chunk's scored log-probabilities (2 bytes per logit, ``q.REFERENCE_STORAGE``), NLLs
and KLD floor in a folder keyed by model, corpus, n_ctx, chunking, reference artifact and storage
version, so later runs, and later sessions, skip the reference pass.

The KLD floor of a chunk is KL(stored reference || full-precision reference) per scored
position, measured when the reference is written: what storage alone adds to every row's KLD.
Every quality row records its mean and 99th percentile over the same chunks.

``scored_tok_s`` times only the ``logits`` calls: the runner was loaded with ``logits_only``
before the clock (llama.cpp's ``logits_all`` load, OpenVINO's compile), and the reference's
storage and the KLD arithmetic run outside it.
"""

from __future__ import annotations

import os
import time
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
    kv_cache_arg,
    now,
    record_for,
    settings_json,
    with_validity,
)
from edgebench.harness.registry import load_runner
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


_REFERENCE_FILES = ("lp", "floor", "nll")  # chunk{i}.<name>.npy; nll is written last


def reference_complete(ref_dir: Path, n_chunks: int) -> bool:
    """Whether the cached reference holds the first ``n_chunks`` chunks (log-probs, KLD floor
    and NLLs)."""
    return all((ref_dir / f"chunk{i}.{name}.npy").exists()
               for i in range(n_chunks) for name in _REFERENCE_FILES)


def reference_floor(ref_dir: Path, n_chunks: int) -> tuple[float, float]:
    """Mean and 99th percentile of the KLD floor over the first ``n_chunks`` cached chunks."""
    floor = np.concatenate([np.load(ref_dir / f"chunk{i}.floor.npy") for i in range(n_chunks)])
    return float(floor.mean()), float(np.percentile(floor, 99))


def reference_ppl(ref_dir: Path, n_chunks: int) -> q.Perplexity:
    """The reference's perplexity over its first ``n_chunks`` cached chunks."""
    return q.perplexity(np.concatenate([np.load(ref_dir / f"chunk{i}.nll.npy")
                                        for i in range(n_chunks)]))


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def quality_identity(run: PlannedRun, spec: QualitySpec) -> dict:
    """A quality row's identity: the run's, with the protocol in it: corpus, n_ctx, chunk count,
    the reference (label and artifact hash) and how the reference is stored."""
    return {**run.identity, "prompt_tokens": spec.n_ctx, "new_tokens": 0, "kind": "quality",
            "prompt_file_sha256": None,  # a quality row scores the corpus, never prompts
            "corpus_sha256": spec.corpus_sha256, "chunks": len(spec.chunks),
            "n_ctx": spec.n_ctx, "quality_reference": spec.reference_label,
            "reference_sha256": spec.reference_sha256,
            "reference_storage": q.REFERENCE_STORAGE}


def _reference_logprobs(ref_dir: Path, i: int, lp: np.ndarray, write: bool) -> np.ndarray:
    """Chunk ``i``'s stored reference log-probs, as every row reads them; when ``write``,
    ``lp`` (the reference's own, full precision) is stored first with its KLD floor."""
    if write:
        ref_dir.mkdir(parents=True, exist_ok=True)
        codes = q.encode_logprobs(lp)
        ref = q.decode_logprobs(codes)
        _save(ref_dir / f"chunk{i}.lp.npy", codes)
        _save(ref_dir / f"chunk{i}.floor.npy", q.kl_divergence(ref, lp))
        return ref
    try:
        return q.decode_logprobs(np.load(ref_dir / f"chunk{i}.lp.npy"))
    except ValueError as e:
        raise EdgebenchError(f"reference cache {ref_dir}: {e}") from e


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
            busy = 0.0  # seconds inside runner.logits only: scored_tok_s
            for i, chunk in enumerate(spec.chunks):
                ids = list(chunk)
                with mem.off_the_clock():  # no sampler wake-ups inside the timed pass
                    t = time.perf_counter()
                    logits = runner.logits(ids)
                    busy += time.perf_counter() - t
                if np.shape(logits)[0] != len(chunk):
                    raise EdgebenchError(f"runtime gave logits for {np.shape(logits)[0]} of "
                                         f"{len(chunk)} positions")
                lp = q.scored_logprobs(logits, spec.n_ctx)
                del logits
                nll.append(q.chunk_nll(lp, ids))
                ref = _reference_logprobs(ref_dir, i, lp, spec.write_reference)
                if spec.write_reference:
                    _save(ref_dir / f"chunk{i}.nll.npy", nll[-1])
                kld.append(q.kl_divergence(ref, lp))
                top1.append(q.top1_matches(ref, lp))
                del ref, lp
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
            quality_method=f"full-vocabulary logits: {type(runner).LOGITS_METHOD}",
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
