"""DataFrame -> plotly figures. Inputs are the outputs of ``tables`` and ``series``."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from edgebench.reports.select import runtime_label
from edgebench.reports.series import HISTORY_METRICS
from edgebench.reports.tables import pareto_front
from edgebench.results import provenance

_LAYOUT = dict(template="plotly_white", height=420, margin=dict(l=60, r=20, t=50, b=50),
               legend=dict(title=None))
LABELS = {"decode_tok_s": "decode tok/s", "ttft_ms": "TTFT ms", "memory_mb": "memory MB"}


def _runtime(pp: pd.DataFrame) -> pd.Series:
    """Runtime label; non-measured rows carry their method so they never pass as measured."""
    return runtime_label(pp)


def _front_line(fig: go.Figure, df: pd.DataFrame, x: str, y: str, sign: float = 1,
                part: str = "timings") -> None:
    """The Pareto front of the rows whose ``part`` (``timings`` for speed and memory,
    ``numerics`` for quality) is measured: estimated, simulated or imported points are drawn,
    labelled, but never put on (or take a place off) the front."""
    df = df[df["measurement"].map(lambda m: provenance.kind(m, part) == provenance.MEASURED)
              .astype(bool)]
    on = pareto_front(df.assign(_y=sign * df[y]), x, "_y")
    front = df[on].sort_values(x)
    if not front.empty:  # ringed points, joined when there are several
        fig.add_trace(go.Scatter(
            x=front[x], y=front[y], mode="lines+markers" if len(front) > 1 else "markers",
            name="Pareto front", line=dict(color="grey", dash="dash"), hoverinfo="skip",
            marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(color="grey", width=2))))


def speed_memory(pp: pd.DataFrame, device_label: str) -> go.Figure:
    """Decode tok/s against memory on one device, one trace per runtime (and workload, when
    there are several), each workload's Pareto front of measured rows dashed."""
    d = pp[pp["device_label"] == device_label].dropna(subset=["decode_tok_s", "memory_mb"])
    fig = go.Figure()
    several = d["workload"].nunique() > 1
    name_of = _runtime(d) + (" · " + d["workload"] if several else "")
    for name, g in d.assign(runtime=name_of).groupby("runtime"):
        fig.add_trace(go.Scatter(
            x=g["memory_mb"], y=g["decode_tok_s"], mode="markers+text", name=name,
            text=g["precision"], textposition="top center", marker=dict(size=11),
            customdata=g[["model"]],
            hovertemplate="%{text}<br>%{x:.0f} MB<br>%{y:.1f} tok/s<br>%{customdata[0]}"))
    for _, g in d.groupby("workload"):  # a front per workload: they never mix
        _front_line(fig, g, "memory_mb", "decode_tok_s")
    figures = ", ".join(sorted(d["memory_figure"].dropna().unique()))
    fig.update_layout(title=f"Decode speed vs peak memory — {device_label}",
                      xaxis_title=f"memory (MB, {figures})", yaxis_title="decode tok/s",
                      **_LAYOUT)
    return fig


def quality_size(pp: pd.DataFrame) -> go.Figure | None:
    """KL divergence (else perplexity) against model size; None without quality rows."""
    metric = "kld_mean" if pp["kld_mean"].notna().any() else "ppl"
    d = pp.dropna(subset=[metric, "model_bytes"]).drop_duplicates(
        ["model_sha256", "framework", "precision", "measurement"])
    if d.empty:
        return None
    d = d.assign(model_mb=d["model_bytes"] / 2**20, runtime=_runtime(d))
    fig = go.Figure()
    for name, g in d.groupby("runtime"):
        fig.add_trace(go.Scatter(x=g["model_mb"], y=g[metric], mode="markers+text", name=name,
                                 text=g["precision"], textposition="top center",
                                 marker=dict(size=11)))
    _front_line(fig, d, "model_mb", metric, sign=-1, part="numerics")
    title = "KL divergence vs the reference" if metric == "kld_mean" else "perplexity"
    fig.update_layout(title=f"Quality vs model size ({title}; lower is better)",
                      xaxis_title="model size (MB)", yaxis_title=metric, **_LAYOUT)
    return fig


def energy(pp: pd.DataFrame) -> go.Figure | None:
    """Joules per token where a meter measured it; None where nothing was metered."""
    d = pp.dropna(subset=["j_per_token"])
    if d.empty:
        return None
    fig = go.Figure()
    for device, g in d.groupby("device_label"):
        fig.add_trace(go.Bar(x=_runtime(g) + ":" + g["precision"], y=g["j_per_token"],
                             name=device))
    fig.update_layout(title="Energy per token (metered rows only)", yaxis_title="J / token",
                      barmode="group", **_LAYOUT)
    return fig


def latency(stats: pd.DataFrame, device_label: str) -> go.Figure:
    """Inter-token latency distribution per runtime and precision (boxes from quantiles)."""
    d = stats[stats["device_label"] == device_label]
    fig = go.Figure()
    several = d["workload"].nunique() > 1
    name_of = _runtime(d) + (" · " + d["workload"] if several else "")
    for name, g in d.assign(runtime=name_of).groupby("runtime"):
        fig.add_trace(go.Box(
            name=name, x=g["precision"], q1=g["q1"], median=g["median"], q3=g["q3"],
            lowerfence=g["lowerfence"], upperfence=g["upperfence"], boxpoints=False))
    fig.update_layout(title=f"Inter-token latency — {device_label}", yaxis_title="ms",
                      boxmode="group", **_LAYOUT)
    return fig


def history(h: pd.DataFrame) -> go.Figure:
    """One panel per history metric; one line per device x runtime x precision over sessions."""
    fig = make_subplots(rows=len(HISTORY_METRICS), cols=1, shared_xaxes=True,
                        subplot_titles=[LABELS[m] for m in HISTORY_METRICS])
    h = h.assign(series=h["device_label"] + " · " + _runtime(h) + ":" + h["precision"]
                 + (" · " + h["workload"] if h["workload"].nunique() > 1 else ""))
    for i, (name, g) in enumerate(h.groupby("series")):
        for row, metric in enumerate(HISTORY_METRICS, start=1):
            fig.add_trace(go.Scatter(x=g["started_at"], y=g[metric], mode="lines+markers",
                                     name=name, legendgroup=name, showlegend=row == 1,
                                     line=dict(color=_color(i))), row=row, col=1)
    fig.update_layout(title="Metrics over sessions", **{**_LAYOUT, "height": 760})
    return fig


def _color(i: int) -> str:
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24
    return palette[i % len(palette)]
