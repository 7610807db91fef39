"""Sustained runs in the report: a table (first minute, steady state, throttle onset) and
decode tok/s over time, one line per run. Sustained rows are shown here only: they measure
what continuous generation does, not the cell's usual repetitions."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from edgebench.reports.select import latest_ok

COLUMNS = ["device_label", "model", "framework", "precision", "device", "sustain_s", "windows",
           "first_minute_tok_s", "steady_tok_s", "steady_vs_first_pct", "throttle_onset_s",
           "temp_c_max", "freq_mhz_min"]


def is_sustained(df: pd.DataFrame) -> pd.Series:
    """Rows of a sustained run (``sustain_s`` set)."""
    if "sustain_s" not in df:
        return pd.Series(False, index=df.index)
    return df["sustain_s"].notna()


def rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each sustained run's latest ok row."""
    mine = df[(df["kind"] == "speed") & is_sustained(df)]
    return latest_ok(mine) if not mine.empty else mine


def _finite(values) -> list[float]:
    return [float(v) for v in (values if values is not None else [])
            if v is not None and not (isinstance(v, float) and math.isnan(v))]


def table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per sustained run: its summary, the steady state against the first minute."""
    out = []
    for r in rows(df).to_dict("records"):
        first, steady = r.get("first_minute_tok_s"), r.get("steady_tok_s")
        temps, freqs = _finite(r.get("sustain_temp_c")), _finite(r.get("sustain_freq_mhz"))
        out.append({
            "device_label": r["device_label"], "model": r["model"],
            "framework": r["framework"], "precision": r["precision"], "device": r["device"],
            "sustain_s": r["sustain_s"], "windows": len(_finite(r.get("sustain_tok_s"))),
            "first_minute_tok_s": first, "steady_tok_s": steady,
            "steady_vs_first_pct": 100 * (steady / first - 1) if first and steady else None,
            "throttle_onset_s": r.get("throttle_onset_s"),
            "temp_c_max": max(temps) if temps else None,
            "freq_mhz_min": min(freqs) if freqs else None,
        })
    return pd.DataFrame(out, columns=COLUMNS)


def figure(found: pd.DataFrame) -> go.Figure | None:
    """Decode tok/s of every window against time, one line per sustained run (``found``: the
    rows of :func:`rows`); the throttle onset marked where there is one. None without rows."""
    if found.empty:
        return None
    fig = go.Figure()
    for r in found.to_dict("records"):
        name = f"{r['framework']} {r['precision']} {r['device']} ({r['device_label']})"
        t, v = _finite(r.get("sustain_t_s")), _finite(r.get("sustain_tok_s"))
        fig.add_trace(go.Scatter(x=t, y=v, mode="lines+markers", name=name))
        onset = r.get("throttle_onset_s")
        if onset is not None and not (isinstance(onset, float) and math.isnan(onset)):
            fig.add_vline(x=onset, line_dash="dot",
                          annotation_text=f"throttle onset {onset:.0f} s")
    fig.update_layout(title="Sustained runs: decode tok/s over time (each window restarted "
                            "from the same prompt)", xaxis_title="seconds since the start",
                      yaxis_title="decode tok/s", template="plotly_white", height=420)
    return fig
