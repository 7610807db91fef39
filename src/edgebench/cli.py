"""The command line: a thin layer over ``edgebench.api``.

The only place where an EdgebenchError becomes a one-line message and an exit code
(2 for bad input, 1 for a failed run or gate, 130 for Ctrl-C, 143 for SIGTERM, 129 for
SIGHUP: both stop a sweep as Ctrl-C does, keeping its finished rows). An OSError the machine
raised on a user's path is one line and exit 2; anything else is a bug, reported as one
``error: internal error`` line naming a file that holds the traceback, exit 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import NoReturn

import click

from edgebench import __version__, api
from edgebench.errors import (
    ConfigError,
    EdgebenchError,
    Interrupted,
    RunnerUnavailable,
    interrupt_signal,
)
from edgebench.locations import cache_dir as cache_dir_path
from edgebench.locations import store_dir
from edgebench.output import FORMATS, render

_OVERRIDES = (
    ("--model", "models", str, "Model name or path (GGUF file or folder); repeatable."),
    ("--framework", "frameworks", str, "Runtime, e.g. llama-cpp; repeatable."),
    ("--precision", "precisions", str, "Precision, e.g. q4_k_m; repeatable."),
    ("--device", "devices", str, "Device, e.g. cpu, cuda; repeatable."),
    ("--prompt-tokens", "prompt_tokens", int, "Prompt length in tokens; repeatable."),
    ("--new-tokens", "new_tokens", int, "Tokens to generate; repeatable."),
    ("--threads", "threads", str, "CPU threads (a number or 'auto'); repeatable."),
    ("--depth", "depths", int, "Tokens already in the KV cache (filled untimed) before the "
                               "measured prompt; repeatable (default 0)."),
    ("--kv-cache", "kv_cache", str, "KV-cache element type in the runtime's own names "
                                    "(llama.cpp f16/q8_0/q4_0, OpenVINO u8/u4, MLX 8bit/4bit) "
                                    "or 'default'; repeatable."),
    ("--prompt-file", "prompt_files", str, "A JSONL prompt file (llm_bench's format), a "
                                           "built-in prompt set, or 'synthetic'; repeatable."),
)


def sweep_options(f):
    """The suite and the flags that override its axes (shared by ``run`` and ``plan``)."""
    f = click.option("--warmup", type=int, help="Warm-up generations, discarded.")(f)
    f = click.option("--repetitions", type=int, help="Timed repetitions per run.")(f)
    for flag, dest, typ, text in reversed(_OVERRIDES):
        f = click.option(flag, dest, type=typ, multiple=True, help=text)(f)
    f = click.option("--cache-dir", type=click.Path(file_okay=False),
                     help="Cache for models and artifacts (default: $EDGEBENCH_CACHE, "
                          "else the user cache dir).")(f)
    return click.argument("suite", required=False)(f)


def store_option(f):
    return click.option("--store", "store", type=click.Path(file_okay=False),
                        help="Results folder (default: $EDGEBENCH_STORE, else "
                             "./edgebench-results).")(f)


def open_store(path, *, existing: bool = False):
    """The results store at ``--store`` (else its default); each file a read skips (damaged,
    of a newer schema) is named once on stderr.

    ``existing`` (the read-only commands): a ``--store`` folder that does not exist is an
    error (a typo would otherwise read as an empty store); the default location
    ($EDGEBENCH_STORE, else ./edgebench-results) may not exist yet, and the command says how to
    fill it."""
    from edgebench.results.fsio import shown
    from edgebench.results.store import Store

    root = store_dir(path)
    if existing and path is not None and not os.path.lexists(root):
        raise ConfigError(f"the results store {shown(root)} does not exist (fill it with: "
                          f"edgebench run --store {shown(root)})")
    return Store(root, on_skip=lambda msg: click.echo(f"warning: {msg}", err=True))


def format_option(f):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(f)


def _suite(suite, kw):
    axes = {dest: kw.pop(dest) or None for _, dest, _, _ in _OVERRIDES}
    if axes["threads"]:
        axes["threads"] = tuple(t if t == "auto" else _int(t, "--threads") for t in axes["threads"])
    return api.make_suite(suite, **axes, repetitions=kw.pop("repetitions"),
                          warmup=kw.pop("warmup"))


def _int(text: str, flag: str) -> int | str:
    """``text`` as an integer where it is one, else as given: the suite's validator names
    ``flag`` and what it expects (the same line for ``abc`` as for ``-1``)."""
    try:
        return int(text)
    except ValueError:
        return text


def _bandwidth(value: float | None) -> float | None:
    """``--bandwidth-gbs``: a finite number above 0 (click's FloatRange lets nan through)."""
    if value is not None and not 0 < value < float("inf"):
        raise click.BadParameter(f"must be a number above 0, got {value}",
                                 param_hint="'--bandwidth-gbs'")
    return value


def _emit(text: str | None) -> None:
    if text is not None:
        click.echo(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def cli() -> None:
    """Benchmark on-device LLM runtimes under one measurement definition.

    Runs sweeps of model x framework x precision x device, stores every run as a row
    (Parquet, read with DuckDB) and shows the results.
    """


@cli.command()
@sweep_options
@store_option
@click.option("--resume", is_flag=True,
              help="Skip runs that already have an ok row here, measured with the same "
                   "runtime version and artifact (a changed one is measured again).")
@click.option("--launches", type=click.IntRange(min=1), default=1, show_default=True,
              help="Measure each cell in N fresh processes, cells interleaved; one row per "
                   "cell whose samples keep their launch index (between-process variance).")
@click.option("--sustain", "sustain", metavar="DURATION",
              help="Generate continuously on each cell for DURATION (10m, 90s, 1h30m): "
                   "throughput, CPU frequency and temperature over time, the first minute's "
                   "speed, the steady state and the throttle onset.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--bandwidth-gbs", type=float, callback=lambda ctx, param, v: _bandwidth(v),
              help="Memory bandwidth in GB/s for roofline_pct (default: measured once per "
                   "machine and cached; docs/roofline.md).")
@format_option
def run(suite, store, resume, launches, quiet, fmt, cache_dir, sustain, bandwidth_gbs, **kw):
    """Run a suite (default: the built-in 'smoke' suite on Gemma 3 270M).

    SUITE is a built-in suite name or a YAML file. The flags replace the suite's axes, so a
    one-off run needs no YAML: edgebench run --model my.gguf --new-tokens 32
    """
    from rich.console import Console

    from edgebench.progress import SweepProgress

    spec = _suite(suite, kw)
    if sustain is not None:
        spec = spec.override(sustain=sustain)
    cache, st = cache_dir_path(cache_dir), open_store(store)
    runs = api.plan(spec, cache)
    err = Console(stderr=True)
    with SweepProgress(len(runs) * launches, err,
                       enabled=not quiet and err.is_terminal) as prog:
        out = api.run_suite(spec, st, cache, resume=resume, progress=prog.update, runs=runs,
                            launches=launches, bandwidth_gbs=bandwidth_gbs)
    if spec.quality and not out.interrupted:  # the suite's `quality: true` switch
        from edgebench.quality_sweep import quality_runs, run_quality

        n = len(quality_runs(spec, cache)) + 1
        with SweepProgress(n, err, enabled=not quiet and err.is_terminal) as prog:
            qout = run_quality(spec, st, cache, chunks=spec.quality_chunks, resume=resume,
                               progress=prog.update)
        click.echo(f"quality: {', '.join(f'{n} {s}' for s, n in sorted(qout.counts.items()))}"
                   f" -> {qout.path}", err=True)
        out.rows += qout.rows
        out.interrupted, out.interrupted_by = qout.interrupted, qout.interrupted_by
    if out.rows:
        df = api.results(st, latest=False, filters={"session_id": out.session_id})
        _emit(render(df, fmt, title=f"edgebench {spec.name}: session {out.session_id}"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(out.counts.items())) or "no runs"
    if out.resumed:
        counts += f", {len(out.resumed)} already done (--resume)"
    where = f" -> {out.path}" if out.path else ""
    click.echo(f"{counts}{where}", err=True)
    if out.interrupted:
        _exit_interrupted(out.interrupted_by)
    if out.counts.get("error") or out.counts.get("timeout"):
        sys.exit(1)


@cli.command()
@click.argument("model")
@click.option("--framework", "frameworks", multiple=True,
              help="Runtimes to compare (default: all four); the first that runs is the "
                   "reference.")
@click.option("--new-tokens", type=int, default=8, show_default=True)
@click.option("--prompt-tokens", type=int, default=32, show_default=True)
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Cache for models and artifacts.")
@store_option
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@format_option
def check(model, frameworks, new_tokens, prompt_tokens, cache_dir, store, quiet, fmt):
    """Do the runtimes compute the same thing? Compare each one's high-precision greedy tokens.

    Each runtime's high-precision variant (prepared if needed) gets the same prompt token IDs;
    the rows record how many leading tokens agree with the reference runtime (the first that
    runs). A runtime that diverges at the first token is flagged.
    """
    import pandas as pd
    from rich.console import Console

    from edgebench.harness.registry import FRAMEWORKS, check_name
    from edgebench.progress import SweepProgress

    for f in frameworks:
        check_name("framework", f, FRAMEWORKS)
    err = Console(stderr=True)
    st, cache = open_store(store), cache_dir_path(cache_dir)
    n = len(frameworks) or len(api.CHECK_PRECISIONS)
    with SweepProgress(n, err, enabled=not quiet and err.is_terminal) as prog:
        out = api.check(model, st, cache, new_tokens=new_tokens, prompt_tokens=prompt_tokens,
                        frameworks=tuple(frameworks) or None, progress=prog.update)
    df = pd.DataFrame([{
        "framework": r.framework, "precision": r.precision, "status": r.status,
        "agree": f"{r.agree_tokens}/{r.new_tokens}" if r.agree_tokens is not None else "",
        "reference": r.agree_reference or "", "message": r.message or "",
    } for r in out.rows])
    _emit(render(df, fmt, title=f"consistency of {model}: {new_tokens} greedy tokens"))
    if out.interrupted:
        _exit_interrupted(out.interrupted_by)
    if any(r.agree_tokens == 0 for r in out.rows):
        sys.exit(1)


#: Columns `edgebench quality` prints for its session.
QUALITY_COLUMNS = ("model", "framework", "precision", "device", "kv_cache", "n_ctx", "status",
                   "ppl", "ppl_stderr",
                   "ppl_reference", "kld_mean", "kld_p99", "top1_agree", "tokens_scored",
                   "scored_tok_s", "bits_per_weight", "quality_reference", "measurement",
                   "message")


@cli.command()
@sweep_options
@store_option
@click.option("--corpus", type=click.Path(dir_okay=False),
              help="Text file to score (default: a fixed slice of Python's pydoc topics).")
@click.option("--n-ctx", type=int, default=512, show_default=True,
              help="Chunk length; the second half of each chunk is scored.")
@click.option("--chunks", type=int,
              help="Score at most this many chunks (bounds the cost; default: the suite's "
                   "quality_chunks, 4 unless it says otherwise).")
@click.option("--reference", help="framework:precision whose logits KLD is measured against "
                                  "(default: llama-cpp:f16, else the first runtime installed).")
@click.option("--resume", is_flag=True, help="Skip cells that already have an ok row here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@format_option
def quality(suite, store, corpus, n_ctx, chunks, reference, resume, quiet, fmt, cache_dir,
            **kw):
    """Perplexity and KL divergence of every cell of a suite, against one reference.

    llama-perplexity's protocol for every runtime: n_ctx chunks, BOS first, the second half
    scored. KLD, its 99th percentile and top-1 agreement are against the reference's logits,
    computed once and cached. Rows go to the store with kind = 'quality'.
    """
    from rich.console import Console

    from edgebench.progress import SweepProgress
    from edgebench.quality_sweep import quality_runs, run_quality

    spec = _suite(suite, kw)
    cache, st = cache_dir_path(cache_dir), open_store(store)
    err = Console(stderr=True)
    n = len(quality_runs(spec, cache)) + 1
    with SweepProgress(n, err, enabled=not quiet and err.is_terminal) as prog:
        out = run_quality(spec, st, cache, corpus=corpus, n_ctx=n_ctx,
                          chunks=spec.quality_chunks if chunks is None else chunks,
                          reference=reference, resume=resume, progress=prog.update)
    if out.rows:
        df = api.results(st, latest=False, filters={"session_id": out.session_id},
                         columns=QUALITY_COLUMNS)
        _emit(render(df, fmt, title=f"quality of {spec.name}: session {out.session_id}"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(out.counts.items())) or "no runs"
    if out.resumed:
        counts += f", {len(out.resumed)} already done"
    click.echo(f"{counts}{f' -> {out.path}' if out.path else ''}", err=True)
    if out.interrupted:
        _exit_interrupted(out.interrupted_by)
    if out.counts.get("error") or out.counts.get("timeout"):
        sys.exit(1)


@cli.command()
@sweep_options
@format_option
def plan(suite, fmt, cache_dir, **kw):
    """Print the runs a suite expands to, without running them."""
    import pandas as pd

    spec = _suite(suite, kw)
    runs = api.plan(spec, cache_dir_path(cache_dir))
    df = pd.DataFrame([{
        "run_key": r.run_key, "model": r.model, "framework": r.framework,
        "precision": r.precision, "device": r.device, "threads": r.threads,
        "prompt_tokens": r.prompt_tokens, "new_tokens": r.new_tokens, "depth": r.depth,
        "kv_cache": r.kv_cache or "default", "prompt_file": r.prompt_file or "synthetic",
        "repetitions": r.repetitions, "warmup": r.warmup,
        "status": "skipped" if r.skip_reason else "planned",
        "reason": r.skip_reason or (f"will prepare {r.prepare}" if r.prepare else ""),
    } for r in runs])
    _emit(render(df, fmt, title=f"{spec.name}: {len(runs)} runs"))


@cli.command()
@store_option
@format_option
@click.option("--all", "all_rows", is_flag=True, help="Every row, not only the latest per run.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows (1 or more).")
@click.option("--model")
@click.option("--framework")
@click.option("--precision")
@click.option("--device")
@click.option("--status")
@click.option("--suite")
@click.option("--session", "session_id", help="Only rows of this session id.")
def results(store, fmt, all_rows, limit, **filters):
    """Show stored runs (latest per run and machine unless --all)."""

    from edgebench.results.fsio import shown

    st = open_store(store, existing=True)
    df = api.results(st, latest=not all_rows, filters=filters, limit=limit)
    if df.empty and fmt == "table":
        click.echo(f"no rows in {shown(st.root)} (fill it with: edgebench run)", err=True)
        return
    _emit(render(df, fmt))


@cli.command()
@click.argument("query")
@store_option
@format_option
@click.option("--unsafe", is_flag=True,
              help="Skip the sandbox: let the query read and write any file (COPY ... TO, "
                   "read_text, ATTACH, INSTALL). Without it the query sees only the runs "
                   "table and cannot change the store.")
def sql(query, store, fmt, unsafe):
    """Run SQL over the store; the table is named 'runs'.

    The query runs sandboxed: it reads the runs table and nothing else, writes no file, and
    cannot change DuckDB's settings (--unsafe lifts this).
    """
    _emit(render(api.sql(open_store(store, existing=True), query, unsafe=unsafe), fmt))


@cli.group("store")
def store_cmd() -> None:
    """Check and repair the results store.

    'check' verifies every session file (read fully, schema version, column types) and with
    --quarantine moves bad ones aside; 'recover' brings in rows that a failed write saved to a
    rescue file. Commands that read the store skip a bad file with a warning.
    """


@store_cmd.command("check")
@store_option
@click.option("--quarantine", is_flag=True,
              help="Move bad files to <store>/quarantine/ (never deleted).")
@format_option
def store_check(store, quarantine, fmt):
    """Verify every session file: a table of file, rows, schema version, status and reason.

    Exits 1 if any file is bad (also when --quarantine moved it).
    """
    import pandas as pd

    from edgebench.results import rescue
    from edgebench.results.fsio import shown

    st = open_store(store, existing=True)
    checks = st.verify()
    bad = [c for c in checks if not c.ok]
    moved = dict(st.quarantine(bad)) if quarantine else {}
    rows = [{"file": shown(c.path.name), "rows": c.rows, "schema": c.version,
             "status": "ok" if c.ok else ("quarantined" if c.path in moved else "bad"),
             "reason": c.reason or ""} for c in checks]
    if rows:
        _emit(render(pd.DataFrame(rows, dtype=object), fmt, title=f"store {shown(st.root)}"))
    else:
        yet = "" if st.root.exists() else " (it does not exist yet; fill it with: edgebench run)"
        click.echo(f"no session files in {shown(st.root)}{yet}", err=True)
    if moved:
        click.echo(f"moved {len(moved)} bad file(s) to {shown(st.root / 'quarantine')}", err=True)
    waiting, _ = rescue.pending(st.root)
    if waiting:
        click.echo(f"note: {len(waiting)} rescue file(s) hold measured rows not in the store "
                   "yet (bring them in with: edgebench store recover)", err=True)
    if bad:
        sys.exit(1)


@store_cmd.command("recover")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@store_option
@click.option("--force", is_flag=True,
              help="Also take a FILE that is not a rescue file (no rescue metadata), e.g. a "
                   "session file copied from another store; it is removed once its rows are "
                   "in. A store's own session file is always refused.")
@format_option
def store_recover(files, store, force, fmt):
    """Bring rescued rows into the store, then remove each rescue file.

    FILES default to every rescue file of this store: in <store>/.rescue/ and those in the
    cache that name it. Each is verified and merged into its session's file atomically; a row
    already in the store is not added twice, so recovering again changes nothing.
    """
    from pathlib import Path

    import pandas as pd

    from edgebench.errors import StoreError
    from edgebench.results import rescue
    from edgebench.results.fsio import shown

    st = open_store(store)
    todo, others = ([Path(f) for f in files], []) if files else rescue.pending(st.root)
    for path, origin in others:
        click.echo(f"note: {shown(path)} holds rows of the store {origin} (recover them "
                   "with --store)", err=True)
    if not todo:
        click.echo(f"no rescued rows to recover for {shown(st.root)}", err=True)
        return
    done = rescue.recover(st, todo, force=force)
    _emit(render(pd.DataFrame([{
        "file": shown(r.source), "rows": r.rows, "added": r.added,
        "into": shown(r.target) if r.target else "",
        "status": "kept" if r.error else "recovered", "reason": r.error or "",
    } for r in done], dtype=object), fmt))
    failed = [r for r in done if r.error]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise StoreError(f"could not recover {shown(failed[0].source)}: {failed[0].error}{more}")


@cli.command()
@click.argument("model")
@click.option("--target", "targets", multiple=True, required=True,
              help="FORMAT:PRECISION to produce, e.g. gguf:q4_k_m; repeatable.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Artifact cache (default: $EDGEBENCH_CACHE, else the user cache dir).")
@format_option
def prepare(model, targets, cache_dir, fmt):
    """Convert and quantize MODEL into each --target (cached by content hash).

    MODEL is a registered name or a path. A second prepare of the same target is a cache hit.
    """
    import pandas as pd

    cache = cache_dir_path(cache_dir)
    manifests = api.prepare(model, list(targets), cache)
    _emit(render(pd.DataFrame([_manifest_row(m, cache) for m in manifests]), fmt))


def _manifest_row(m, cache) -> dict:
    from edgebench.harness.prepare import artifact_path

    return {"target": f"{m.format}:{m.precision}", "class": m.precision_class,
            "bits_per_weight": round(m.bits_per_weight, 3), "size_mb": m.size_bytes / 2**20,
            "wall_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb, "source": m.source_name,
            "source_precision": m.source_precision, "created": m.created_at,
            "path": str(artifact_path(m, cache)), "notes": "; ".join(m.notes)}


@cli.command("lm-eval")
@click.option("--model-args", required=True,
              help="model=NAME_OR_PATH,framework=...,precision=...,device=...,threads=N")
@click.option("--tasks", required=True, help="Comma-separated lm-eval task, group or tag names.")
@click.option("--include-path", type=click.Path(exists=True, file_okay=False),
              help="Folder of extra task YAML files.")
@click.option("--limit", type=int, help="At most this many documents per task.")
@format_option
def lm_eval_cmd(model_args, tasks, include_path, limit, fmt):
    """Run lm-eval tasks on an edgebench runtime (needs the lm-eval extra)."""
    from edgebench.harness.lm_eval_adapter import evaluate, results_frame

    out = evaluate(model_args, [t for t in tasks.split(",") if t], include_path, limit)
    _emit(render(results_frame(out), fmt, title=f"lm-eval: {model_args}"))


@cli.command("tiny-model")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
def tiny_model(out, seed):
    """Write a tiny random-weight Gemma 3 checkpoint to OUT (to test recipes in seconds)."""
    from edgebench.models.tiny import make_tiny_gemma3

    try:
        click.echo(make_tiny_gemma3(out, seed=seed))
    except ImportError as e:
        raise RunnerUnavailable(f"{e.name} is not installed", extra="convert") from None


@cli.command()
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Artifact cache (default: $EDGEBENCH_CACHE, else the user cache dir).")
@format_option
def artifacts(cache_dir, fmt):
    """List prepared artifacts with their manifests."""
    import pandas as pd

    from edgebench.harness.prepare.cache import ArtifactCache

    cache = cache_dir_path(cache_dir)
    rows = [_manifest_row(m, cache) for m in ArtifactCache(cache).manifests()]
    if not rows and fmt == "table":
        click.echo("no prepared artifacts (make some with: edgebench prepare MODEL --target "
                   "gguf:q8_0)", err=True)
        return
    _emit(render(pd.DataFrame(rows), fmt))


@cli.command()
@format_option
def models(fmt):
    """List registered models (any local GGUF file or folder works too)."""
    import pandas as pd

    from edgebench.models.registry import MODELS

    df = pd.DataFrame([{"name": m.name, "package": m.package, "sha256": m.source_sha256[:16],
                        "description": m.description} for m in MODELS.values()])
    _emit(render(df, fmt))


@cli.command()
@format_option
def suites(fmt):
    """List the built-in suites."""
    import pandas as pd

    from edgebench.suites.spec import builtin_suites, load_suite

    df = pd.DataFrame([{"name": n, "description": load_suite(n).description}
                       for n in builtin_suites()])
    _emit(render(df, fmt))


@cli.command()
@format_option
def frameworks(fmt):
    """List runtimes, whether each is installed here, its version and devices."""
    import pandas as pd

    from edgebench.harness.registry import FRAMEWORKS, installed_version, load_runner

    rows = []
    for spec in FRAMEWORKS.values():
        row = {"name": spec.name, "format": spec.artifact_format, "installed": False,
               "version": "", "devices": "", "note": ""}
        try:
            info = load_runner(spec.name).probe()
            row.update(installed=True, version=info.version, devices=", ".join(info.devices),
                       note=info.details.get("note", ""))
        except EdgebenchError as e:
            row["note"] = str(e)
            # installed is the package, whatever else is missing (a token, a device)
            row["version"] = installed_version(spec.name) or ""
            row["installed"] = bool(row["version"])
        rows.append(row)
    _emit(render(pd.DataFrame(rows), fmt))


@cli.command()
@store_option
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="File to write (default: report.html, or report.md with --format md; "
                   "'-' prints to stdout).")
@click.option("--where", help="SQL condition over the runs table, e.g. \"model = 'gemma-3-270m'\".")
@click.option("--device", "devices", multiple=True, help="Only this device; repeatable.")
@click.option("--format", "fmt", type=click.Choice(("html", "md")), default="html",
              show_default=True, help="One self-contained HTML file, or markdown.")
@click.option("--title", help="Report title.")
@click.option("--across-machines", is_flag=True,
              help="Compare rows of different hardware together (default: each hardware "
                   "fingerprint apart).")
def report(store, out, where, devices, fmt, title, across_machines):
    """The chapter's comparison table, reproduced from measured rows, and more.

    Environment, the chapter's table with its claims beside the measurements, framework x
    precision matrices, Pareto plots, per-token latency, recommendations and history. The HTML
    inlines plotly, so it opens offline.
    """

    st = open_store(store, existing=True)
    if out == "-":
        _emit(api.report(st, where=where, devices=devices, fmt=fmt, title=title,
                         across_machines=across_machines))
        return
    path = api.report(st, out=out or f"report.{fmt}", where=where, devices=devices, fmt=fmt,
                      title=title, across_machines=across_machines)
    click.echo(f"wrote {path}", err=True)


_LIMITS = (
    ("--max-memory-mb", "Peak memory at most this many MB (peak_mem_mb; peak_rss_mb when a "
                        "candidate's row predates it)."),
    ("--min-decode-tok-s", "Decode at least this many tokens/s."),
    ("--max-ttft-ms", "Time to first token at most this many ms."),
    ("--max-kld", "Mean KL divergence from the reference at most this (nats); default 0.05, "
                  "the quality floor of every --optimize mode."),
    ("--max-ppl-increase", "Perplexity at most this much above the reference's (0.05 = 5 %)."),
    ("--max-j-per-token", "Energy per generated token at most this many joules."),
    ("--max-model-mb", "Artifact on disk at most this many MB."),
)


def limit_options(f):
    for flag, text in reversed(_LIMITS):
        f = click.option(flag, type=float, help=text)(f)
    return f


@cli.command()
@click.option("--device", metavar="TARGET",
              help="cpu, intel-cpu, intel-gpu, intel-npu, apple-silicon, snapdragon, "
                   "nvidia-gpu, jetson, arm-cpu or this (default: this machine).")
@limit_options
@click.option("--optimize", type=click.Choice(("speed", "memory", "quality", "energy",
                                               "balanced")),
              default="balanced", show_default=True,
              help="What the score weighs most (weights in docs/decisions.md).")
@click.option("--model", help="Only this model's rows (needed when the target has several).")
@click.option("--explain", is_flag=True, help="Print every step of the decision.")
@click.option("--across-machines", is_flag=True,
              help="Rank rows of different hardware together (default: one hardware "
                   "fingerprint, this machine's if it has rows).")
@click.option("--allow-unmeasured-quality", is_flag=True,
              help="Rank candidates without quality rows too, as if they met the quality "
                   "limits (the headline says so); default: they are not ranked.")
@click.option("--tie-margin", type=click.FloatRange(0, 1, max_open=True), default=0.05,
              show_default=True,
              help="Scores tie when equivalent within this relative margin (95 % interval).")
@store_option
@format_option
def recommend(device, optimize, model, explain, across_machines, allow_unmeasured_quality,
              tie_margin, store, fmt, **limits):
    """Which framework and precision to ship on a device, decided from measured rows.

    Candidates without quality rows are not ranked (a fast broken quantization must not win;
    the command that measures them is printed); every mode has a quality floor, --max-kld
    0.05 by default. Limits reject candidates (a candidate lacking a metric a limit needs is
    rejected, never passed); the rest are ranked on a Pareto front with a weighted score and
    each one's probability of being best, and candidates tie only when their scores are
    equivalent within --tie-margin. With no measured row for the target, the chapter's
    decision tree answers, labelled as guidance, with the command that would measure it.
    Exit 1 when there is no winner: no candidate meets the limits, or none has quality.
    """
    import json

    import pandas as pd

    from edgebench.decision import Constraints, present
    from edgebench.errors import NoCandidate
    from edgebench.output import to_markdown

    rec = api.recommend(open_store(store, existing=True), device, constraints=Constraints(**limits),
                        optimize=optimize, model=model, across_machines=across_machines,
                        allow_unmeasured_quality=allow_unmeasured_quality,
                        tie_margin=tie_margin)
    for note in rec.notes:
        click.echo(f"note: {note}", err=True)
    rows = pd.DataFrame(present.rows(rec))
    if fmt == "json":
        click.echo(json.dumps(rec.as_dict(), indent=2))
    elif fmt == "md":
        click.echo(present.markdown(rec, to_markdown(rows), explain))
    elif fmt == "csv":
        _emit(render(rows, "csv"))
    else:
        if rec.winner is not None or rec.guidance:  # else the error line says it
            click.echo(present.headline(rec))
        if rec.guidance:  # long sentences: lines, not a table that cuts them
            click.echo("\n".join(f"{r['field']:>14}: {r['value']}" for r in present.rows(rec)))
        elif not rows.empty:
            render(rows, "table", title=f"edgebench recommend: {rec.target}")
        if rec.evidence is not None:  # snapdragon: QNN quality and speed by source
            click.echo("\n".join(present.evidence_lines(rec.evidence)))
        if explain:
            click.echo("\n".join(f"{i:2}. {s}" for i, s in enumerate(rec.steps, 1)))
    if rec.winner is None and not rec.guidance:
        raise NoCandidate(present.headline(rec))


#: The word a stopped sweep's last line starts with, per signal; the exit code is 128 + it.
_STOPPED = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
if hasattr(signal, "SIGHUP"):  # not on Windows
    _STOPPED[signal.SIGHUP] = "hung up"


def _exit_interrupted(signum: int | None) -> NoReturn:
    """A sweep stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129): its rows are kept."""
    signum = signum or signal.SIGINT
    click.echo(f"{_STOPPED.get(signum, 'interrupted')}: finished rows are kept", err=True)
    sys.exit(128 + signum)


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def _stop_on_signals() -> dict:
    """SIGTERM and SIGHUP raise ``Interrupted`` (a KeyboardInterrupt) in the main thread, so
    they stop a sweep as Ctrl-C does: the child killed, finished rows kept. Only where the
    signal has its default action (``nohup`` keeps SIGHUP ignored). Returns what to restore."""
    saved = {}
    if threading.current_thread() is not threading.main_thread():
        return saved
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            saved[sig] = signal.signal(sig, _raise_interrupted)
    return saved


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning typed errors into one-line messages."""
    saved = _stop_on_signals()
    try:
        cli.main(args=argv, prog_name="edgebench", standalone_mode=False)
    except click.exceptions.Abort as e:  # a KeyboardInterrupt outside a sweep
        signum = interrupt_signal(e.__cause__) if e.__cause__ else signal.SIGINT
        click.echo("aborted" if signum == signal.SIGINT else _STOPPED.get(signum, "aborted"),
                   err=True)
        sys.exit(128 + signum)
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except EdgebenchError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:  # e.g. `edgebench results | head`: the reader left, say nothing
        _silence_stdout()
        sys.exit(128 + signal.SIGPIPE)
    except OSError as e:  # the machine refused a file operation: a path of the user's
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{e.strerror or e}", err=True)
        sys.exit(2)
    except Exception as e:
        if os.environ.get("EDGEBENCH_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(e).__name__}: {' '.join(str(e).split())}"
                   f"{_crash_file()} (please report it; EDGEBENCH_DEBUG=1 shows the traceback)",
                   err=True)
        sys.exit(1)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _crash_file() -> str:
    """Write the current exception's traceback to a file and name it (or '' when it can't)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="edgebench-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(traceback.format_exc())
    except OSError:
        return ""
    return f"; traceback in {path}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


from edgebench.commands.history import history  # noqa: E402  (it imports cli lazily)

cli.add_command(history)

from edgebench.commands.gate import gate  # noqa: E402  (it imports cli lazily)

cli.add_command(gate)

from edgebench.commands.imports import import_cmd  # noqa: E402  (it imports cli lazily)

cli.add_command(import_cmd)

from edgebench.commands.doctor import doctor  # noqa: E402  (it imports cli lazily)

cli.add_command(doctor)
