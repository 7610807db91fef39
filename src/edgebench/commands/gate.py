"""``edgebench gate``: fail a pull request on a real regression, never on noise.

Imports nothing from ``edgebench.cli`` at module level (cli.py registers this command at its
end), so either module can be imported first. Errors are ``ConfigError``s; ``cli.main`` turns
them into one ``error:`` line and exit 2.
"""

from __future__ import annotations

import sys

import click

from edgebench.output import FORMATS

_REF = ("REF: latest, latest~N (N sessions before the newest), a session id of the store, a "
        "Parquet file, or a folder of Parquet files (a store).")


@click.command()
@click.option("--baseline", required=True, metavar="REF", help=f"What to compare against. {_REF}")
@click.option("--candidate", required=True, metavar="REF", help="What is judged (same forms).")
@click.option("--fail-on", "fail_on", multiple=True, metavar="EXPR",
              help="METRIC:+N% / METRIC:-N% (relative; the sign is the bad direction) or "
                   "METRIC:+X (absolute, the metric's units); repeatable. Default: "
                   "decode_tok_s:-5% ttft_ms:+10% peak_mem_mb:+5% kld_mean:+0.01, each where "
                   "both sides have it.")
@click.option("--margin", metavar="N%",
              help="Equivalence band for 'unchanged' on relative thresholds (default: each "
                   "threshold's own size).")
@click.option("--strict", is_flag=True, help="An inconclusive gated metric fails the gate.")
@click.option("--allow-different-conditions", "allow", is_flag=True,
              help="Compare rows of different hardware, model file or artifact, and quality "
                   "across runtime builds (refused by default).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="md: a PR comment; json: every figure.")
@click.option("--junit", type=click.Path(dir_okay=False),
              help="Also write JUnit XML here (one testcase per run x gated metric).")
@click.option("--store", "store", type=click.Path(file_okay=False),
              help="Results folder session ids and latest refer to (default: "
                   "$EDGEBENCH_STORE, else ./edgebench-results).")
def gate(baseline, candidate, fail_on, margin, strict, allow, fmt, junit, store):
    """Does CANDIDATE regress against BASELINE beyond noise? Exit 0 pass, 1 fail, 2 bad input.

    Per run and gated metric: baseline, candidate, the change with its 95 % interval, the
    p-value and a verdict (improved, regressed, unchanged, inconclusive, missing) from
    edgebench.stats. Rows of different hardware, model file or artifact are refused unless
    --allow-different-conditions; a different runtime version is allowed and shown. An
    inconclusive metric is shown first, with the samples that would settle it.
    """
    from pathlib import Path

    import pandas as pd

    from edgebench.cli import _emit, open_store
    from edgebench.gate import engine, present, refs, thresholds
    from edgebench.output import render

    gated = thresholds.parse_all(fail_on)
    band = thresholds.parse_margin(margin)
    base, cand = refs.resolve_pair(baseline, candidate, open_store(store))
    rep = engine.run_gate(base, cand, gated, margin=band, strict=strict, allow_different=allow)
    if junit:
        Path(junit).write_text(present.junit(rep), encoding="utf-8")
    if fmt == "json":
        click.echo(present.to_json(rep))
    elif fmt == "md":
        click.echo(present.markdown(rep))
    else:
        if fmt == "table":  # what is undecided first, the verdict last (a CI log's tail)
            for line in present.loud(rep):
                click.echo(line)
        _emit(render(pd.DataFrame(present.rows(rep, full=fmt == "csv")), fmt,
                     title=f"edgebench gate: {base.label} -> {cand.label}"))
        for line in present.remarks(rep):
            click.echo(line, err=fmt == "csv")
        click.echo(present.headline(rep), err=fmt == "csv")
    if rep.exit_code:
        sys.exit(rep.exit_code)
