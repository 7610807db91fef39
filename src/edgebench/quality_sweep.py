"""`edgebench quality`: perplexity and KL divergence for every cell of a suite, one protocol and
one reference for all runtimes (METRICS.md). Rows land in the same store, ``kind = "quality"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import partial
from pathlib import Path

from edgebench import api
from edgebench.errors import (
    ConfigError,
    DeviceUnavailable,
    EdgebenchError,
    RunnerUnavailable,
    interrupt_signal,
)
from edgebench.harness import prepare as prepare_mod
from edgebench.harness import quality as q
from edgebench.harness import tuning
from edgebench.harness.corpus import Corpus, corpus_ids, load_corpus
from edgebench.harness.device import fingerprint
from edgebench.harness.isolate import run_isolated
from edgebench.harness.measure import RunContext, record_for
from edgebench.harness.prompt import ids_sha256, vocab_bos
from edgebench.harness.quality_run import (
    QualitySpec,
    measure_quality,
    quality_identity,
    reference_complete,
)
from edgebench.models.gguf_file import read_gguf
from edgebench.models.hf_config import read_hf_config
from edgebench.models.registry import resolve_model
from edgebench.results.schema import run_key
from edgebench.results.store import Store
from edgebench.suites.expand import PlannedRun
from edgebench.suites.spec import Suite

DEFAULT_N_CTX = 512
DEFAULT_CHUNKS = 4
#: The reference is the first of these whose runtime is installed: the same weights at the
#: highest precision each runtime has (the F16 GGUF holds the shipped model's exact values).
#: MLX fp16 is not among them: mlx-lm's Gemma 3 keeps its residual stream in float16, so its
#: fp16 artifact computes in fp16 (KLD ~0.013 against llama.cpp F16), not reference-grade.
REFERENCES = ("llama-cpp:f16", "ort-genai:fp32", "openvino:fp16")


def quality_runs(suite: Suite, cache: Path) -> list[PlannedRun]:
    """The suite's cells, one per model x framework x precision x device x threads x options x
    KV-cache type (prompt, prompt-file, token-count, depth and sustain axes do not apply to
    quality: a quality row scores the corpus, never the suite's prompts)."""
    cells: dict[tuple, PlannedRun] = {}
    for run in api.plan(suite, cache):
        key = (run.model_ref, run.framework, run.precision, run.device, run.threads,
               run.options_json, run.kv_cache)
        if key not in cells or _rank(run) < _rank(cells[key]):
            cells[key] = run  # a plain cell (depth 0, not sustained, no file) stands for others
    return [run if _plain(run) else dataclasses.replace(
        run, depth=0, sustain_s=None, prefix_ids=(), prompt_file=None, prompt_file_sha256=None,
        prompt_set_ids=()) for run in cells.values()]


def _plain(run: PlannedRun) -> bool:
    return run.depth == 0 and run.sustain_s is None and run.prompt_file is None


def _rank(run: PlannedRun) -> tuple[bool, bool]:
    """Which of a quality cell's runs stands for it: plain first, then one not skipped (a
    workload axis, e.g. a depth beyond the context, may have skipped the others)."""
    return (not _plain(run), run.skip_reason is not None)


def fit_context(run: PlannedRun, n_ctx: int) -> PlannedRun:
    """``run`` with its runtime's context option (llama.cpp's ``n_ctx``,
    ``FrameworkSpec.context_option``) raised to the quality protocol's ``n_ctx`` where the suite
    set it lower for its speed cells (smoke's 512): a quality run holds ``n_ctx`` tokens."""
    from edgebench.harness.registry import FRAMEWORKS

    spec = FRAMEWORKS.get(run.framework)
    option = spec.context_option if spec else None
    cap = run.options.get(option) if option else None
    if not isinstance(cap, int) or isinstance(cap, bool) or cap >= n_ctx:
        return run
    return dataclasses.replace(run, options={**run.options, option: n_ctx})


def _context_length(source: Path) -> int | None:
    if source.is_dir():
        cfg = read_hf_config(source)
        cfg = cfg.get("text_config") or cfg
        return cfg.get("max_position_embeddings")
    return read_gguf(source).context_length


def corpus_chunks(corpus: Corpus, model_ref: str, cache: Path, n_ctx: int,
                  chunks: int) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """The model's sha256 and the first ``chunks`` chunks of the tokenized corpus, each starting
    with BOS where the model's vocabulary adds one (plain slices where it adds none).

    Raises:
        ConfigError: n_ctx beyond the model's context, or a corpus too short for one chunk.
    """
    model = resolve_model(model_ref, cache)
    source = prepare_mod.source_of(model).path
    limit = _context_length(source)
    if limit and n_ctx > limit:
        raise ConfigError(f"n_ctx {n_ctx} is larger than {model.name}'s context of {limit} "
                          "tokens")
    if n_ctx < 8:
        raise ConfigError(f"n_ctx {n_ctx} is too small: at least 8 tokens")
    ids = corpus_ids(corpus, model.sha256, source, cache)
    out = q.chunk_tokens(ids, n_ctx, bos=vocab_bos(source), max_chunks=chunks)
    if not out:
        raise ConfigError(f"corpus {corpus.name} is {len(ids)} tokens for {model.name}: "
                          f"n_ctx {n_ctx} needs at least {n_ctx} tokens for one chunk")
    return model.sha256, tuple(tuple(c) for c in out)


def _reference_run(label: str, like: PlannedRun, suite: Suite, cache: Path) -> PlannedRun:
    fw, precision = label.split(":")
    # the runtime's default KV cache (never a quantized one), depth 0, the synthetic prompt,
    # not sustained: the reference is the highest-precision run there is
    ref_suite = dataclasses.replace(suite.override(
        models=[like.model_ref], frameworks=[fw], precisions=[precision], devices=["cpu"],
        threads=[like.threads], prompt_tokens=[like.prompt_tokens],
        new_tokens=[like.new_tokens], depths=[0], kv_cache=["default"],
        prompt_files=["synthetic"]), include=(), exclude=(), sustain=None)
    (run,) = api.plan(ref_suite, cache)
    if run.skip_reason:
        raise ConfigError(f"reference {label} cannot run: {run.skip_reason}")
    return api._prepared(run, cache) if run.prepare else run


def _pick_reference(reference: str | None) -> str:
    if reference:
        if reference.count(":") != 1:
            raise ConfigError(f"reference {reference!r}: expected framework:precision, "
                              f"e.g. {REFERENCES[0]}")
        return reference
    from edgebench.harness.registry import load_runner

    for label in REFERENCES:
        try:
            load_runner(label.split(":")[0]).probe()
            return label
        except (RunnerUnavailable, EdgebenchError):
            continue
    raise RunnerUnavailable("no runtime is installed to compute reference logits",
                            extra="llama-cpp")


def run_quality(suite: Suite, store: Store, cache: Path, *, corpus: str | None = None,
                n_ctx: int = DEFAULT_N_CTX, chunks: int = DEFAULT_CHUNKS,
                reference: str | None = None, resume: bool = False,
                progress: api.Progress | None = None) -> api.RunOutcome:
    """Score every cell of ``suite`` on the corpus; returns the session's quality rows.

    The reference runs first (or is found in the cache) and gets a row of its own.
    """
    if chunks < 1:
        raise ConfigError(f"--chunks must be at least 1, got {chunks}")
    tuning.check()  # a bad EDGEBENCH_RSS_INTERVAL_S & co. is refused before measuring
    store.ensure_writable()  # refused before measuring; a later failed write is rescued
    store.check()
    corp = load_corpus(corpus)
    label = _pick_reference(reference)
    runs = [fit_context(run, n_ctx) for run in quality_runs(suite, cache)]
    ctx = RunContext(api.new_session_id(), fingerprint())
    # keys measured before (--resume: with the runtime version and artifact hash the row was
    # measured with) or in this session so far, the reference's row included as soon as it is
    # kept: the reference cell is never scored twice
    done = dict(store.resume_index(ctx.fingerprint.machine_id)) if resume else {}
    out = api.RunOutcome(ctx.session_id, None)
    notify = progress or (lambda *_: None)
    specs: dict[str, QualitySpec] = {}

    def spec_for(run: PlannedRun) -> QualitySpec:
        if run.model_ref not in specs:
            sha, chunk_ids = corpus_chunks(corp, run.model_ref, cache, n_ctx, chunks)
            ref = fit_context(_reference_run(label, run, suite, cache), n_ctx)
            # the first chunk's IDs stand for the tokenization and BOS; the storage version keeps
            # a cache of another format (float16 before) from being read as this one
            key = hashlib.sha256(json.dumps([
                sha, corp.sha256, n_ctx, label, ref.artifact.sha256, ids_sha256(chunk_ids[0]),
                q.REFERENCE_STORAGE_VERSION]).encode()).hexdigest()[:16]
            spec = QualitySpec(corp.name, corp.sha256, n_ctx, chunk_ids,
                               str(cache / "quality-ref" / key), label, ref.artifact.sha256)
            if not reference_complete(Path(spec.reference_dir), len(chunk_ids)):
                notify("start", ref, None)
                ref = dataclasses.replace(ref, timeout_s=ref.timeout_s + TIMEOUT_PER_CHUNK_S
                                          * len(chunk_ids))
                row = _as_quality(run_isolated(ref, ctx, partial(
                    measure_quality, spec=dataclasses.replace(spec, write_reference=True))),
                    ref, spec)
                _keep(out, store, row)
                done[row.run_key] = {}
                notify("done", ref, row)
                if row.status != "ok":
                    raise EdgebenchError(f"reference {label} failed: {row.message}")
            specs[run.model_ref] = spec
        return specs[run.model_ref]

    try:
        for run in runs:
            notify("start", run, None)
            row = _one(run, ctx, cache, spec_for, done)
            if row is None:
                out.resumed.append(run)
                notify("resumed", run, None)
                continue
            _keep(out, store, row)
            done[row.run_key] = {}
            notify("done", run, row)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Interrupted)
        out.interrupted, out.interrupted_by = True, interrupt_signal(e)
        if out.rows:  # a row kept in memory but its write interrupted: write it now
            out.path = store.write_session(out.session_id, out.rows)
    return out


#: Seconds per chunk added to a suite's timeout for quality runs (MLX's Linux CPU backend
#: needs minutes for one 512-token chunk of Gemma 3 270M).
TIMEOUT_PER_CHUNK_S = 300.0


def _as_quality(row, run: PlannedRun, spec: QualitySpec | None):
    """A row made outside ``measure_quality`` (skipped, unavailable, crashed) as a quality row."""
    if row.kind == "quality":
        return row
    extra = {}
    if spec is not None:
        extra = dict(run_key=run_key(quality_identity(run, spec)), corpus=spec.corpus,
                     corpus_sha256=spec.corpus_sha256, n_ctx=spec.n_ctx,
                     chunks=len(spec.chunks), prompt_tokens=spec.n_ctx,
                     quality_reference=spec.reference_label,
                     reference_storage=q.REFERENCE_STORAGE)
    return dataclasses.replace(row, kind="quality", new_tokens=0, repetitions=None,
                               warmup=None, prompt_ids_sha256=None, **extra)


def _one(run: PlannedRun, ctx: RunContext, cache: Path, spec_for, done: dict[str, dict]):
    """One cell's quality row, or None when ``done`` already holds its key and the row stands
    (``api.remeasure_reason``; checked after ``spec_for``, which may have just scored this very
    cell as the reference)."""
    if run.skip_reason is not None:
        return _as_quality(record_for(run, ctx, "skipped", run.skip_reason), run, None)
    if (why := api.unavailable_before_preparing(run)) is not None:
        return _as_quality(record_for(run, ctx, "unavailable", why), run, None)
    try:
        spec = spec_for(run)
    except ConfigError:
        raise
    except (RunnerUnavailable, DeviceUnavailable) as e:
        return _as_quality(record_for(run, ctx, "unavailable", str(e)), run, None)
    except EdgebenchError as e:
        return _as_quality(record_for(run, ctx, "error", str(e)), run, None)
    key = run_key(quality_identity(run, spec))
    note = api.remeasure_reason(run, done[key], cache) if key in done else None
    if key in done and note is None:
        return None
    if run.prepare is not None:
        try:
            run = api._prepared(run, cache)
        except (RunnerUnavailable, DeviceUnavailable) as e:
            return _as_quality(record_for(run, ctx, "unavailable",
                                          f"cannot prepare {run.prepare}: {e}"), run, spec)
        except EdgebenchError as e:
            return _as_quality(record_for(run, ctx, "error",
                                          f"preparing {run.prepare} failed: {e}"), run, spec)
    run = dataclasses.replace(run, timeout_s=run.timeout_s + TIMEOUT_PER_CHUNK_S
                              * len(spec.chunks))
    row = _as_quality(run_isolated(run, ctx, partial(measure_quality, spec=spec)), run, spec)
    if note:
        row = dataclasses.replace(row, message="; ".join(m for m in (note, row.message) if m))
    return row


def _keep(out: api.RunOutcome, store: Store, row) -> None:
    out.rows.append(row)
    out.path = store.write_session(out.session_id, out.rows)
