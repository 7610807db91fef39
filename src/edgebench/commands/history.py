"""``edgebench history METRIC``: each run's metric over sessions, with the steps that persist.

Imports nothing from ``edgebench.cli`` at module level (cli.py registers this command at its
end), so either module can be imported first.
"""

from __future__ import annotations

import click

from edgebench.output import FORMATS


@click.command()
@click.argument("metric")
@click.option("--where",
              help="SQL condition over the runs table, e.g. \"framework = 'llama-cpp'\".")
@click.option("--store", "store", type=click.Path(file_okay=False),
              help="Results folder (default: $EDGEBENCH_STORE, else ./edgebench-results).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format (json: every point and step).")
@click.option("--min-sessions", type=click.IntRange(min=1), default=2, show_default=True,
              help="Sessions a new level must hold on each side of a step (1 would let one "
                   "outlier count).")
@click.option("--min-shift", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Smallest relative change of the median that counts as a step.")
@click.option("--alpha", type=click.FloatRange(min=0, max=1, min_open=True), default=0.01,
              show_default=True, help="Mann-Whitney p-value a step must reach.")
def history(metric, where, store, fmt, min_sessions, min_shift, alpha):
    """METRIC of every run over sessions, with the steps that persist.

    One line per run (run_key) and hardware: its latest value, the sessions it has, and each
    detected step (the session where it stepped, before -> after, relative change). A step is
    found by change-point detection over every session's samples (edgebench.stats): a new
    level that holds for --min-sessions sessions, not one outlier. METRIC is a column such as
    decode_tok_s, ttft_ms, peak_mem_mb or kld_mean.
    """
    import json

    import pandas as pd

    from edgebench import history as hist
    from edgebench.cli import _emit, open_store
    from edgebench.output import render

    hist.check_metric(metric)
    st = open_store(store, existing=True)  # a mistyped --store is an error, not empty
    rows = load_rows(st, metric, where)
    found = hist.series(rows, metric, min_size=min_sessions, alpha=alpha, min_shift=min_shift)
    if fmt == "json":
        click.echo(json.dumps(hist.as_json(found), indent=2, default=str))
    else:
        _emit(render(pd.DataFrame(hist.summary(found)), fmt, title=f"history of {metric}"))
    sessions = len({p.session_id for s in found for p in s.points})
    steps = sum(len(s.steps) for s in found)
    click.echo(f"{len(found)} run(s) over {sessions} session(s); {steps} step(s) in {metric}",
               err=True)


def load_rows(store, metric: str, where: str | None) -> list[dict]:
    """The ok rows of ``store`` that have ``metric`` and match ``where``, as records.

    Raises:
        ConfigError: the condition does not parse, or no row matches (naming why).
    """
    import duckdb

    from edgebench import history as hist
    from edgebench.errors import ConfigError
    from edgebench.results.queries import records
    from edgebench.results.store import VIEW

    cols = [*hist.COLUMNS, metric]
    if hist.samples_column(metric):
        cols.append(hist.samples_column(metric))
    sql = (f"SELECT {', '.join(cols)} FROM {VIEW} WHERE status = 'ok' "
           f"AND {metric} IS NOT NULL")
    if where:
        sql += f" AND ({where})"
    try:
        df = store.query(sql)
    except duckdb.Error as e:
        raise ConfigError(f"--where {where!r}: {str(e).splitlines()[0]}") from e
    if df.empty:
        what = f" matching --where {where!r}" if where else ""
        raise ConfigError(f"no ok row with {metric}{what} in {store.root} (fill it with: "
                          "edgebench run)")
    return records(df)
