"""The command line: a thin layer over ``edgebench.api``.

The only place where an EdgebenchError becomes a one-line message and an exit code
(2 for bad input, 1 for a failed run or gate, 130 for Ctrl-C).
"""

from __future__ import annotations

import sys

import click

from edgebench import __version__, api
from edgebench.errors import ConfigError, EdgebenchError, RunnerUnavailable
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


def format_option(f):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(f)


def _suite(suite, kw):
    axes = {dest: kw.pop(dest) or None for _, dest, _, _ in _OVERRIDES}
    if axes["threads"]:
        axes["threads"] = tuple(t if t == "auto" else _int(t, "--threads") for t in axes["threads"])
    return api.make_suite(suite, **axes, repetitions=kw.pop("repetitions"),
                          warmup=kw.pop("warmup"))


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{flag} takes a number or 'auto', got {text!r}") from None


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
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@format_option
def run(suite, store, resume, launches, quiet, fmt, cache_dir, **kw):
    """Run a suite (default: the built-in 'smoke' suite on Gemma 3 270M).

    SUITE is a built-in suite name or a YAML file. The flags replace the suite's axes, so a
    one-off run needs no YAML: edgebench run --model my.gguf --new-tokens 32
    """
    from rich.console import Console

    from edgebench.progress import SweepProgress
    from edgebench.results.store import Store

    spec = _suite(suite, kw)
    cache, st = cache_dir_path(cache_dir), Store(store_dir(store))
    runs = api.plan(spec, cache)
    err = Console(stderr=True)
    with SweepProgress(len(runs) * launches, err,
                       enabled=not quiet and err.is_terminal) as prog:
        out = api.run_suite(spec, st, cache, resume=resume, progress=prog.update, runs=runs,
                            launches=launches)
    if spec.quality and not out.interrupted:  # the suite's `quality: true` switch
        from edgebench.quality_sweep import quality_runs, run_quality

        n = len(quality_runs(spec, cache)) + 1
        with SweepProgress(n, err, enabled=not quiet and err.is_terminal) as prog:
            qout = run_quality(spec, st, cache, chunks=spec.quality_chunks, resume=resume,
                               progress=prog.update)
        click.echo(f"quality: {', '.join(f'{n} {s}' for s, n in sorted(qout.counts.items()))}"
                   f" -> {qout.path}", err=True)
        out.rows += qout.rows
        out.interrupted = qout.interrupted
    if out.rows:
        df = api.results(st, latest=False, filters={"session_id": out.session_id})
        _emit(render(df, fmt, title=f"edgebench {spec.name}: session {out.session_id}"))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(out.counts.items())) or "no runs"
    if out.resumed:
        counts += f", {len(out.resumed)} already done (--resume)"
    where = f" -> {out.path}" if out.path else ""
    click.echo(f"{counts}{where}", err=True)
    if out.interrupted:
        click.echo("interrupted: finished rows are kept", err=True)
        sys.exit(130)
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
    from edgebench.results.store import Store

    for f in frameworks:
        check_name("framework", f, FRAMEWORKS)
    err = Console(stderr=True)
    st, cache = Store(store_dir(store)), cache_dir_path(cache_dir)
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
    if any(r.agree_tokens == 0 for r in out.rows):
        sys.exit(1)


#: Columns `edgebench quality` prints for its session.
QUALITY_COLUMNS = ("model", "framework", "precision", "device", "status", "ppl", "ppl_stderr",
                   "ppl_reference", "kld_mean", "kld_p99", "top1_agree", "tokens_scored",
                   "scored_tok_s", "bits_per_weight", "quality_reference", "message")


@cli.command()
@sweep_options
@store_option
@click.option("--corpus", type=click.Path(dir_okay=False),
              help="Text file to score (default: a fixed slice of Python's pydoc topics).")
@click.option("--n-ctx", type=int, default=512, show_default=True,
              help="Chunk length; the second half of each chunk is scored.")
@click.option("--chunks", type=int, default=4, show_default=True,
              help="Score at most this many chunks (bounds the cost).")
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
    from edgebench.results.store import Store

    spec = _suite(suite, kw)
    cache, st = cache_dir_path(cache_dir), Store(store_dir(store))
    err = Console(stderr=True)
    n = len(quality_runs(spec, cache)) + 1
    with SweepProgress(n, err, enabled=not quiet and err.is_terminal) as prog:
        out = run_quality(spec, st, cache, corpus=corpus, n_ctx=n_ctx, chunks=chunks,
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
        click.echo("interrupted: finished rows are kept", err=True)
        sys.exit(130)
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
        "prompt_tokens": r.prompt_tokens, "new_tokens": r.new_tokens,
        "repetitions": r.repetitions, "warmup": r.warmup,
        "status": "skipped" if r.skip_reason else "planned",
        "reason": r.skip_reason or (f"will prepare {r.prepare}" if r.prepare else ""),
    } for r in runs])
    _emit(render(df, fmt, title=f"{spec.name}: {len(runs)} runs"))


@cli.command()
@store_option
@format_option
@click.option("--all", "all_rows", is_flag=True, help="Every row, not only the latest per run.")
@click.option("--limit", type=int, help="At most this many rows.")
@click.option("--model")
@click.option("--framework")
@click.option("--precision")
@click.option("--device")
@click.option("--status")
@click.option("--suite")
@click.option("--session", "session_id", help="Only rows of this session id.")
def results(store, fmt, all_rows, limit, **filters):
    """Show stored runs (latest per run and machine unless --all)."""
    from edgebench.results.store import Store

    st = Store(store_dir(store))
    df = api.results(st, latest=not all_rows, filters=filters, limit=limit)
    if df.empty and fmt == "table":
        click.echo(f"no rows in {st.root} (fill it with: edgebench run)", err=True)
        return
    _emit(render(df, fmt))


@cli.command()
@click.argument("query")
@store_option
@format_option
def sql(query, store, fmt):
    """Run SQL over the store; the table is named 'runs'."""
    from edgebench.results.store import Store

    _emit(render(api.sql(Store(store_dir(store)), query), fmt))


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

    from edgebench.harness.registry import FRAMEWORKS, load_runner

    rows = []
    for spec in FRAMEWORKS.values():
        row = {"name": spec.name, "format": spec.artifact_format, "installed": False,
               "version": "", "devices": "", "note": ""}
        try:
            info = load_runner(spec.name).probe()
            row.update(installed=True, version=info.version, devices=", ".join(info.devices))
        except EdgebenchError as e:
            row["note"] = str(e)
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
    from edgebench.results.store import Store

    st = Store(store_dir(store))
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
    ("--max-kld", "Mean KL divergence from the reference at most this (nats)."),
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
@store_option
@format_option
def recommend(device, optimize, model, explain, across_machines, store, fmt, **limits):
    """Which framework and precision to ship on a device, decided from measured rows.

    Limits reject candidates (a candidate lacking a metric a limit needs is rejected, never
    passed); the rest are ranked on a Pareto front with a weighted score, and candidates whose
    intervals overlap are reported as tied. With no measured row for the target, the chapter's
    decision tree answers, labelled as guidance, with the command that would measure it.
    """
    import json

    import pandas as pd

    from edgebench.decision import Constraints, present
    from edgebench.errors import NoCandidate
    from edgebench.output import to_markdown
    from edgebench.results.store import Store

    rec = api.recommend(Store(store_dir(store)), device, constraints=Constraints(**limits),
                        optimize=optimize, model=model, across_machines=across_machines)
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
        if explain:
            click.echo("\n".join(f"{i:2}. {s}" for i, s in enumerate(rec.steps, 1)))
    if rec.winner is None and not rec.guidance:
        raise NoCandidate(present.headline(rec))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning typed errors into one-line messages."""
    try:
        cli.main(args=argv, prog_name="edgebench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except EdgebenchError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
