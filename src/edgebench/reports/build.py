"""Everything a report shows, computed once from rows; ``html`` renders it as HTML or markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from edgebench.reports import series, tables
from edgebench.reports.claims import Claim, load_claims
from edgebench.reports.environment import Environment, environment
from edgebench.reports.recommend import DeviceRecommendation, Recommender, recommendations

#: Per-device matrices: (metric column, heading).
MATRICES = (("decode_tok_s", "decode tok/s"), ("ttft_ms", "TTFT ms"),
            ("peak_rss_mb", "peak RSS MB"), ("ppl", "perplexity"))


@dataclass
class Report:
    """The computed content of a report (DataFrames and lists; no markup)."""

    title: str
    filters: str
    generated_at: datetime
    rows: int
    edgebench_version: str
    devices: list[str]
    claims: list[Claim]
    environment: Environment
    chapter: pd.DataFrame
    per_precision: pd.DataFrame
    matrices: dict[str, list[tuple[str, pd.DataFrame]]]  # "device · model" -> tables
    latency: pd.DataFrame
    history: pd.DataFrame
    recommendations: list[DeviceRecommendation]
    non_measured: list[str] = field(default_factory=list)


def build_report(rows: pd.DataFrame, *, title: str = "edgebench report", filters: str = "",
                 claims: list[Claim] | None = None,
                 recommender: Recommender | None = None) -> Report:
    """Compute every section of the report from store rows (all columns, all sessions)."""
    from edgebench import __version__

    claims = claims if claims is not None else load_claims()
    df = tables.prepare(rows)
    devices = sorted(df["device_label"].unique())
    pp = tables.per_precision(df)
    mats = {f"{label} · {model}": [(heading, tables.matrix(pp, label, model, metric))
                                   for metric, heading in MATRICES]
            for label in devices
            for model in sorted(pp.loc[pp["device_label"] == label, "model"].unique())}
    methods = sorted(m for m in df["measurement"].unique() if m != "measured")
    return Report(
        title=title, filters=filters, generated_at=datetime.now(timezone.utc), rows=len(df),
        edgebench_version=__version__, devices=devices,
        claims=claims, environment=environment(df), chapter=tables.chapter_table(df, claims, pp),
        per_precision=pp, matrices=mats, latency=series.latency_stats(df),
        history=series.history(df), recommendations=recommendations(df, recommender),
        non_measured=methods,
    )
