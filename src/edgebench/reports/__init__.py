"""Reports: the chapter's comparison table reproduced from measured rows, as HTML or markdown.

``load_rows`` reads the store, ``build_report`` computes every section (pure), ``render`` lays
it out with jinja2 templates (plotly figures inlined in the HTML).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from edgebench.errors import ConfigError
from edgebench.harness.metrics import TIMING_METRICS
from edgebench.reports.build import Report, build_report
from edgebench.reports.html import FORMATS, render
from edgebench.results.store import VIEW, Store

__all__ = ["FORMATS", "Report", "build_report", "describe_filters", "load_rows", "render"]


def describe_filters(where: str | None, devices: Sequence[str]) -> str:
    """The filters as the user gave them, for messages and the report's header."""
    parts = [f"--where {where!r}"] if where else []
    parts += [f"--device {d}" for d in devices]
    return " ".join(parts)


def load_rows(store: Store, *, where: str | None = None,
              devices: Sequence[str] = ()) -> pd.DataFrame:
    """Every row of the store (all sessions) matching an SQL condition and devices.

    Raises:
        ConfigError: the condition does not parse, or no row matches (naming the filter).
    """
    import duckdb

    clauses, params = [], []
    if where:
        clauses.append(f"({where})")
    if devices:
        clauses.append(f"device IN ({', '.join('?' for _ in devices)})")
        params.extend(devices)
    from edgebench.reports.trends import TREND_METRICS  # their samples feed change points

    unused = ", ".join(["output_ids", *(f"{m}_samples" for m in TIMING_METRICS
                                        if m not in TREND_METRICS)])
    sql = f"SELECT * EXCLUDE ({unused}) FROM {VIEW}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    try:
        df = store.query(sql, params or None)
    except duckdb.Error as e:
        raise ConfigError(f"--where {where!r}: {str(e).splitlines()[0]}") from e
    if df.empty:
        what = describe_filters(where, devices)
        raise ConfigError(f"no rows match {what} in {store.root}" if what
                          else f"no rows in {store.root} (fill it with: edgebench run)")
    return df
