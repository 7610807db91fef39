"""One quality run, in the isolated child: logits of every chunk -> perplexity, and KL divergence
against the reference's cached log-probabilities -> a ``kind = "quality"`` row.

The reference (by default llama.cpp on the F16 GGUF) runs first with ``write_reference``: it
stores each chunk's scored log-probabilities (float16, half the size of float32) and NLLs in a
folder keyed by model, corpus, n_ctx and reference artifact, so later runs, and later sessions,
skip the reference pass.
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
from edgebench.harness.measure import (
    RunContext,
    close_quietly,
    failed_row,
    now,
    record_for,
    settings_json,
)
from edgebench.harness.registry import load_runner
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
    write_reference: bool = False


def reference_complete(ref_dir: Path, n_chunks: int) -> bool:
    """Whether the cached reference holds the first ``n_chunks`` chunks."""
    return all((ref_dir / f"chunk{i}.nll.npy").exists() for i in range(n_chunks))


def reference_ppl(ref_dir: Path, n_chunks: int) -> q.Perplexity:
    """The reference's perplexity over its first ``n_chunks`` cached chunks."""
    return q.perplexity(np.concatenate([np.load(ref_dir / f"chunk{i}.nll.npy")
                                        for i in range(n_chunks)]))


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def quality_identity(run: PlannedRun, spec: QualitySpec) -> dict:
    """A quality row's identity: the run's, with the corpus, n_ctx and chunk count in it."""
    return {**run.identity, "prompt_tokens": spec.n_ctx, "new_tokens": 0, "kind": "quality",
            "corpus_sha256": spec.corpus_sha256, "chunks": len(spec.chunks)}


def measure_quality(run: PlannedRun, ctx: RunContext, spec: QualitySpec) -> RunRecord:
    """Score every chunk of ``spec`` with ``run``'s runtime; never raises for runtime failures."""
    started = now()
    base = replace(
        record_for(run, ctx, "ok", started_at=started), kind="quality",
        prompt_tokens=spec.n_ctx, new_tokens=0, run_key=run_key(quality_identity(run, spec)),
        corpus=spec.corpus, corpus_sha256=spec.corpus_sha256, n_ctx=spec.n_ctx,
        chunks=len(spec.chunks), quality_reference=spec.reference_label,
        repetitions=None, warmup=None, prompt_ids_sha256=None,
    )
    ref_dir = Path(spec.reference_dir)
    runner = None
    try:
        runner = load_runner(run.framework)
        base = replace(base, framework_version=runner.probe().version)
        baseline_mb = memory.tree_rss(psutil.Process()) / memory.MB
        nll, kld, top1 = [], [], []
        with memory.RssSampler() as mem:
            load = runner.load(run.artifact.path, run.device, run.threads, dict(run.options),
                               context_tokens=spec.n_ctx, logits_only=True)
            busy = 0.0
            for i, chunk in enumerate(spec.chunks):
                t = time.perf_counter()
                logits = runner.logits(list(chunk))
                busy += time.perf_counter() - t
                if np.shape(logits)[0] != len(chunk):
                    raise EdgebenchError(f"runtime gave logits for {np.shape(logits)[0]} of "
                                         f"{len(chunk)} positions")
                lp = q.scored_logprobs(logits, spec.n_ctx)
                del logits
                nll.append(q.chunk_nll(lp, list(chunk)))
                if spec.write_reference:
                    ref_dir.mkdir(parents=True, exist_ok=True)
                    _save(ref_dir / f"chunk{i}.lp.npy", lp.astype(np.float16))
                    _save(ref_dir / f"chunk{i}.nll.npy", nll[-1])
                ref = np.load(ref_dir / f"chunk{i}.lp.npy").astype(np.float32)
                kld.append(q.kl_divergence(ref, lp))
                top1.append(q.top1_matches(ref, lp))
        ppl = q.perplexity(np.concatenate(nll))
        div = q.divergence(np.concatenate(kld), np.concatenate(top1))
        return replace(
            base, device_name=load.device, finished_at=now(), measurement="measured",
            threads_applied=load.threads_applied,
            runtime_settings=settings_json(load.options),
            quality_method=f"full-vocabulary logits: {type(runner).LOGITS_METHOD}",
            tokens_scored=ppl.tokens, scored_tok_s=ppl.tokens / busy if busy else None,
            ppl=ppl.ppl, ppl_stderr=ppl.stderr,
            ppl_reference=reference_ppl(ref_dir, len(spec.chunks)).ppl,
            kld_mean=div.kld_mean, kld_stderr=div.kld_stderr, kld_p99=div.kld_p99,
            top1_agree=div.top1_agree, load_s=load.load_s, peak_rss_mb=mem.peak_mb,
            rss_baseline_mb=baseline_mb, rss_delta_mb=mem.peak_mb - baseline_mb,
            memory_method=mem.method, energy_method="none",
        )
    except Exception as e:  # noqa: BLE001 - every failure becomes the row's outcome
        return failed_row(base, e)
    finally:
        close_quietly(runner)
