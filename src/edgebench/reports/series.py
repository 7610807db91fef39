"""Pure per-token latency summaries and per-session history, from store rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgebench.decision import compare
from edgebench.reports.select import ok_speed, timings_simulated

#: Metrics whose trend over sessions the history section draws (``memory_mb``: one figure per
#: series, ``memory_figure``).
HISTORY_METRICS = ("decode_tok_s", "ttft_ms", "memory_mb")
#: One series: never two devices (hardware), runtimes, precisions, workloads or ways of
#: measuring in one line or one box.
_SERIES = ["device_label", "framework", "precision", "measurement", "workload"]


def inter_token_ms(token_ms_samples) -> np.ndarray:
    """Inter-token latencies (ms) of one row: per repetition, the differences of ``t_i - t0``.

    The first token's time is TTFT, not an inter-token latency, so it is not included.
    """
    if token_ms_samples is None:
        return np.empty(0)
    parts = [np.diff(np.asarray(rep, dtype=float)) for rep in token_ms_samples
             if rep is not None and len(rep) > 1]
    return np.concatenate(parts) if parts else np.empty(0)


def latency_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Per device x runtime x precision: quantiles of inter-token latency (latest ok rows).

    Columns: n, min, q1, median, q3, p99, max, lowerfence, upperfence (Tukey, 1.5 IQR).
    """
    speed = ok_speed(df)
    rows = []
    for key, g in speed.groupby(_SERIES, dropna=False):
        ms = [inter_token_ms(s) for s in g["token_ms_samples"]]
        ms = [m for m in ms if m.size]
        if not ms:
            continue
        v = np.concatenate(ms)
        q1, med, q3, p99 = np.percentile(v, [25, 50, 75, 99])
        iqr = q3 - q1
        rows.append({**dict(zip(_SERIES, key)), "n": int(v.size), "min": v.min(), "q1": q1,
                     "median": med, "q3": q3, "p99": p99, "max": v.max(),
                     "lowerfence": max(v.min(), q1 - 1.5 * iqr),
                     "upperfence": min(v.max(), q3 + 1.5 * iqr)})
    return pd.DataFrame(rows, columns=[*_SERIES, "n", "min", "q1", "median", "q3", "p99", "max",
                                       "lowerfence", "upperfence"])


def history(df: pd.DataFrame) -> pd.DataFrame:
    """Per session and series: the median of each history metric over the session's ok speed rows.

    Every session counts (not only the latest row per run). Empty with fewer than two sessions.
    Memory is ``peak_mem_mb`` where every row of the series has it, else ``peak_rss_mb``. Rows
    whose timings are simulated are left out.
    """
    speed = df[(df["kind"] == "speed") & (df["status"] == "ok")]
    speed = speed[~timings_simulated(speed)]
    if speed["session_id"].nunique() < 2:
        return pd.DataFrame(columns=["session_id", "started_at", *_SERIES, *HISTORY_METRICS,
                                     "memory_figure"])
    kernel = (speed.groupby(_SERIES, dropna=False)["peak_mem_mb"]
                   .transform(lambda s: compare.memory_figure(s.tolist()) == "peak_mem_mb")
                   .astype(bool))
    speed = speed.assign(
        memory_mb=speed["peak_mem_mb"].where(kernel, speed["peak_rss_mb"]).astype(float),
        memory_figure=kernel.map({True: "peak_mem_mb", False: "peak_rss_mb"}))
    start = speed.groupby("session_id")["started_at"].min().rename("session_start")
    out = (speed.groupby(["session_id", *_SERIES], dropna=False)
                .agg(**{m: (m, "median") for m in HISTORY_METRICS},
                     memory_figure=("memory_figure", "first")).reset_index()
                .merge(start, on="session_id")
                .rename(columns={"session_start": "started_at"}))
    return out.sort_values(["started_at", *_SERIES]).reset_index(drop=True)
