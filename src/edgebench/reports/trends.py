"""The report's trends: each run's median over sessions, with the steps that persist marked.

``trends`` is pure (rows in, ``history.Series`` out: the same series and change points as
``edgebench history``); ``figure`` draws one metric with plotly (imported when drawn).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from edgebench import history
from edgebench.history import Series

#: Metrics the report follows over sessions; their ``<metric>_samples`` are read with the rows
#: (``reports.load_rows``) so change points see every repetition.
TREND_METRICS = ("decode_tok_s", "ttft_ms")
LABELS = {"decode_tok_s": "decode tok/s", "ttft_ms": "TTFT ms"}


def trends(df: pd.DataFrame) -> dict[str, list[Series]]:
    """Per trend metric, every measured speed run seen in two sessions or more (empty when no
    run has two)."""
    if df.empty:
        return {}
    kind = df["kind"].fillna("speed") if "kind" in df else pd.Series("speed", index=df.index)
    measured = (df["measurement"].fillna("measured") == "measured" if "measurement" in df
                else pd.Series(True, index=df.index))
    rows = df[(kind == "speed") & measured].to_dict("records")
    out = {m: [s for s in history.series(rows, m) if len(s.points) > 1]
           for m in TREND_METRICS if m in df}
    return {m: found for m, found in out.items() if found}


def step_lines(found: dict[str, list[Series]]) -> list[str]:
    """One line per detected step: metric, run, session, before -> after, change."""
    several = len({s.hardware for v in found.values() for s in v}) > 1
    return [f"{LABELS.get(m, m)}: {s.name}{f' on {s.hardware}' if several else ''}: "
            f"{step.text()}"
            for m, v in found.items() for s in v for step in s.steps]


def figure(found: Sequence[Series], metric: str):
    """One line per run (its session medians over time), each detected step marked where the
    new level starts, and each level drawn dotted."""
    import plotly.graph_objects as go

    from edgebench.reports.figures import _LAYOUT, _color

    several = len({s.hardware for s in found}) > 1
    fig = go.Figure()
    for i, s in enumerate(found):
        name = s.name + (f" · {s.hardware.split(' · ')[0]}" if several else "")
        color = _color(i)
        x = [p.started_at for p in s.points]
        fig.add_trace(go.Scatter(
            x=x, y=[p.value for p in s.points], mode="lines+markers", name=name,
            legendgroup=name, line=dict(color=color),
            customdata=[[p.session_id, len(p.samples)] for p in s.points],
            hovertemplate="%{y:.4g}<br>session %{customdata[0]}<br>%{customdata[1]} samples"
                          "<extra></extra>"))
        bounds = [0, *(st.index for st in s.steps), len(s.points)]
        levels = history.levels(s.points, [st.index for st in s.steps])
        for (a, b), level in zip(zip(bounds, bounds[1:]), levels):
            fig.add_trace(go.Scatter(x=[x[a], x[b - 1]], y=[level, level], mode="lines",
                                     legendgroup=name, showlegend=False, hoverinfo="skip",
                                     line=dict(color=color, dash="dot", width=1)))
        if s.steps:
            fig.add_trace(go.Scatter(
                x=[st.started_at for st in s.steps], y=[s.points[st.index].value
                                                        for st in s.steps],
                mode="markers", name=f"step · {name}", legendgroup=name, showlegend=False,
                marker=dict(symbol="diamond-open", size=16, color=color, line=dict(width=2)),
                text=[st.text() for st in s.steps], hovertemplate="step %{text}<extra></extra>"))
    fig.update_layout(title=f"{LABELS.get(metric, metric)} per run over sessions (steps marked "
                            "◇, levels dotted)",
                      xaxis_title="session", yaxis_title=LABELS.get(metric, metric), **_LAYOUT)
    return fig
