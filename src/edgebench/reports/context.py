"""The context axes in the report: decode speed (and TTFT) against context depth, and what a
KV-cache type costs and saves (its size, peak memory, decode speed, quality).

The chapter's table stays at depth 0 with the runtime's default KV type and the synthetic
prompt (:func:`select.is_default_context`); these sections show the rest, each only when rows
for it exist. Like compares with like only: one device (hardware fingerprint, the report's
device label), model, runtime, precision, KV type and workload (prompt and new tokens, threads,
options, prompt file) per line; only rows whose timings edgebench measured
(:func:`compare.is_measured`) are drawn. Pure: rows in, DataFrames and figures out.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from edgebench.decision import compare
from edgebench.reports import select

#: One line of the depth figure: everything but the depth is the same along it.
SERIES = ["device_label", "model", "model_sha256", "workload", "framework", "precision",
          "kv_type", "measurement"]
DEPTH_COLUMNS = ["device_label", "model", "workload", "framework", "precision", "kv_type",
                 "depth", "rows", "decode_tok_s", "decode_min", "decode_max",
                 "decode_vs_first_pct", "ttft_ms", "ttft_min", "ttft_max", "kv_cache_mb"]
#: A quality row belongs to the speed rows of the same model, runtime, precision, device and
#: KV type (numerics do not depend on the machine).
KV_KEY = ["model_sha256", "framework", "precision", "device", "kv_type"]
QUALITY = ["kld_mean", "ppl", "n_ctx"]
KV_COLUMNS = ["device_label", "model", "framework", "precision", "device", "workload",
              "kv_type", "kv_cache_mb", "kv_cache_method", "kv_vs_default_pct", "memory_mb",
              "memory_figure", "decode_tok_s", "decode_vs_default_pct", "ttft_ms", "kld_mean",
              "ppl", "n_ctx"]


def _measured_speed(df: pd.DataFrame) -> pd.DataFrame:
    """Each speed cell's latest ok row whose timings are edgebench's own."""
    speed = select.ok_speed(df)
    if speed.empty:
        return speed
    return speed[[compare.is_measured(r) for r in speed.to_dict("records")]]


def _spread(samples) -> tuple[float, float]:
    """(min, max) of a row's per-repetition samples; NaN without samples."""
    if samples is None or (isinstance(samples, float) and samples != samples):
        return float("nan"), float("nan")
    v = np.asarray([x for x in samples if x is not None], dtype=float)
    v = v[~np.isnan(v)]
    return (float(v.min()), float(v.max())) if v.size else (float("nan"), float("nan"))


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df else pd.Series(None, index=df.index, dtype=object)


# --- decode speed against depth ---------------------------------------------------------------

def depth_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per series (:data:`SERIES`) and depth, for the series measured at two depths or
    more: decode tok/s median (of the cells' medians) with the min and max of the repetitions,
    its change against the series' shallowest depth, TTFT the same way, and the KV cache's size
    where the runtime reported it. Empty when no series has two depths."""
    speed = _measured_speed(df)
    if speed.empty:
        return pd.DataFrame(columns=DEPTH_COLUMNS)
    recs = speed.to_dict("records")
    dec = [_spread(r.get("decode_tok_s_samples")) for r in recs]
    ttft = [_spread(r.get("ttft_ms_samples")) for r in recs]
    speed = speed.assign(
        depth=_col(speed, "depth").fillna(0).astype(int),
        workload=[select.workload_label(r, depth=False) for r in recs],
        decode_min=[d[0] for d in dec], decode_max=[d[1] for d in dec],
        ttft_min=[t[0] for t in ttft], ttft_max=[t[1] for t in ttft],
        kv_cache_mb=_col(speed, "kv_cache_mb").astype(float))
    depths = speed.groupby(SERIES, dropna=False)["depth"].transform("nunique")
    speed = speed[depths >= 2]
    if speed.empty:
        return pd.DataFrame(columns=DEPTH_COLUMNS)
    out = speed.groupby([*SERIES, "depth"], dropna=False).agg(
        rows=("depth", "size"), decode_tok_s=("decode_tok_s", "median"),
        decode_min=("decode_min", "min"), decode_max=("decode_max", "max"),
        ttft_ms=("ttft_ms", "median"), ttft_min=("ttft_min", "min"),
        ttft_max=("ttft_max", "max"), kv_cache_mb=("kv_cache_mb", "median"),
    ).reset_index().sort_values([*SERIES, "depth"], kind="stable")
    first = out.groupby(SERIES, dropna=False)["decode_tok_s"].transform("first")
    out["decode_vs_first_pct"] = 100 * (out["decode_tok_s"] / first - 1)
    return out[DEPTH_COLUMNS].reset_index(drop=True)


def series_name(r) -> str:
    """A line's name: runtime, precision and, when one is imposed, the KV type."""
    kv = r["kv_type"]
    return f"{r['framework']} {r['precision']}" + ("" if kv == select.DEFAULT_KV else f" · KV {kv}")


def depth_figures(table: pd.DataFrame) -> list[go.Figure]:
    """Per device, model and workload: decode tok/s (top) and TTFT (bottom) against depth, one
    line per runtime x precision (x KV type), bars from the repetitions' min to max."""
    figs = []
    if table.empty:
        return figs
    for (device, model, load), g in table.groupby(["device_label", "model", "workload"],
                                                   sort=True):
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                            subplot_titles=["decode tok/s", "TTFT ms"])
        for i, (name, s) in enumerate(g.assign(_name=[series_name(r) for r in
                                                      g.to_dict("records")]).groupby("_name")):
            s = s.sort_values("depth")
            color = _color(i)
            for row, (y, lo, hi) in enumerate((("decode_tok_s", "decode_min", "decode_max"),
                                               ("ttft_ms", "ttft_min", "ttft_max")), start=1):
                fig.add_trace(go.Scatter(
                    x=s["depth"], y=s[y], mode="lines+markers", name=name, legendgroup=name,
                    showlegend=row == 1, line=dict(color=color),
                    error_y=dict(type="data", symmetric=False, array=(s[hi] - s[y]).tolist(),
                                 arrayminus=(s[y] - s[lo]).tolist(), visible=True)),
                    row=row, col=1)
        fig.update_xaxes(title_text="context depth (tokens in the KV cache before the prompt)",
                         row=2, col=1)
        fig.update_layout(title=f"Decode speed and TTFT vs context depth — {device} · {model} · "
                                f"{load}", template="plotly_white", height=640,
                          margin=dict(l=60, r=20, t=70, b=50), legend=dict(title=None))
        figs.append(fig)
    return figs


# --- KV-cache type ----------------------------------------------------------------------------

def _kv_keys(df: pd.DataFrame) -> set[tuple]:
    """(model, runtime, precision, device) of every row that imposed a KV type."""
    mine = df[df["kv_type"] != select.DEFAULT_KV]
    return set(mine[KV_KEY[:-1]].itertuples(index=False, name=None))


def _in(df: pd.DataFrame, keys: set[tuple], cols: list[str]) -> pd.Series:
    return pd.Series([k in keys for k in df[cols].itertuples(index=False, name=None)],
                     index=df.index, dtype=bool)


def kv_quality(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Quality per :data:`KV_KEY` for the runtimes that imposed a KV type: each cell's latest ok
    row whose numerics are measured, one protocol per model (the one most runtime x precision x
    KV-type cells have: a KV type's quality is read at a long context, so its rows seldom share
    the default quality sweep's), and notes on what was left out."""
    cols = [*KV_KEY, "kld_mean", "ppl", "n_ctx", "model", "device_label"]
    q = df[(df["kind"] == "quality") & _in(df, _kv_keys(df), KV_KEY[:-1])]
    q = select.latest_ok(q[[compare.numerics_measured(r) for r in q.to_dict("records")]]) \
        if not q.empty else q
    if q.empty:
        return pd.DataFrame(columns=cols), []
    q = q.assign(_protocol=[compare.protocol(r) for r in q.to_dict("records")])
    keep, notes = [], []
    for _, g in q.groupby("model_sha256", sort=True):
        cells = set(zip(g["framework"], g["precision"], g["device"], g["kv_type"],
                        g["_protocol"]))
        counts = Counter(c[-1] for c in cells)  # protocol -> how many cells have it
        chosen = compare.choose_protocol(counts)
        mine = g["_protocol"].map(lambda p, c=chosen: p == c).astype(bool)
        if (~mine).any():
            notes.append(f"{g['model'].iloc[0]}: KV-type quality compared under one protocol: "
                         f"{compare.protocol_label(chosen)}; left out {int((~mine).sum())} "
                         "quality row(s) of other protocols")
        keep.append(g[mine])
    q = pd.concat(keep).sort_values("started_at", kind="stable").drop_duplicates(KV_KEY,
                                                                                 keep="last")
    return q[cols], notes


#: The imposed type a cell's other KV types are compared against, where measured.
BASELINE_KV = "f16"


def kv_table(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per device, model, runtime, precision, workload and KV type where some KV type
    was imposed, beside the same workload's default-KV row: the KV cache's size as the runtime
    reports it (with its method), peak memory (one figure per comparison), decode tok/s and
    TTFT, and the quality of that KV type (KLD, perplexity, the quality run's n_ctx). Quality
    rows with no speed row of theirs are listed too (workload "quality only"). Also notes."""
    empty = pd.DataFrame(columns=KV_COLUMNS)
    if "kv_type" not in df or not (df["kv_type"] != select.DEFAULT_KV).any():
        return empty, []
    quality, notes = kv_quality(df)
    speed = _measured_speed(df)
    if not speed.empty:
        recs = speed.to_dict("records")
        speed = speed.assign(workload=[select.workload_label(r, kv=False) for r in recs])
        comp = ["device_label", "model_sha256", "framework", "precision", "device", "workload"]
        imposed = speed.groupby(comp, dropna=False)["kv_type"].transform(
            lambda s: (s != select.DEFAULT_KV).any()).astype(bool)
        speed = speed[imposed]
    if not speed.empty:
        comparison = ["device_label", "model_sha256", "workload"]
        kernel = (speed.groupby(comparison, dropna=False)["peak_mem_mb"]
                  .transform(lambda s: compare.memory_figure(s.tolist()) == "peak_mem_mb")
                  .astype(bool))
        speed = speed.assign(
            memory_figure=kernel.map({True: "peak_mem_mb", False: "peak_rss_mb"}),
            memory_mb=speed["peak_mem_mb"].where(kernel, speed["peak_rss_mb"]).astype(float),
            kv_cache_mb=_col(speed, "kv_cache_mb").astype(float),
            kv_cache_method=_col(speed, "kv_cache_method"))
        speed = speed.groupby(["device_label", "model", *KV_KEY, "workload"], dropna=False).agg(
            kv_cache_mb=("kv_cache_mb", "median"),
            kv_cache_method=("kv_cache_method", lambda s: "; ".join(
                dict.fromkeys(v for v in s if isinstance(v, str) and v))),
            memory_mb=("memory_mb", "median"), memory_figure=("memory_figure", "first"),
            decode_tok_s=("decode_tok_s", "median"), ttft_ms=("ttft_ms", "median"),
        ).reset_index()
        cell = ["device_label", "model_sha256", "framework", "precision", "device", "workload"]
        # the baseline of a cell's % changes: its imposed f16 row where there is one (an
        # imposed type changes more than the type: llama.cpp turns flash attention on for every
        # imposed type, never for its default), else its default-KV row
        base = speed[speed["kv_type"].isin([BASELINE_KV, select.DEFAULT_KV])]
        base = base.assign(_rank=(base["kv_type"] == BASELINE_KV).astype(int))
        default = base.sort_values("_rank", kind="stable").set_index(cell)
        default = default[~default.index.duplicated(keep="last")]
        if (speed["kv_type"] == BASELINE_KV).any():
            notes.append(f"% changes against the imposed {BASELINE_KV} KV cache of the same cell "
                         "where there is one (llama.cpp runs every imposed type with flash "
                         "attention, its default without), else against the default")
        at = speed.set_index(cell).index
        base_kv = default["kv_cache_mb"].reindex(at).to_numpy()
        base_dec = default["decode_tok_s"].reindex(at).to_numpy()
        speed["kv_vs_default_pct"] = 100 * (speed["kv_cache_mb"].to_numpy() / base_kv - 1)
        speed["decode_vs_default_pct"] = 100 * (speed["decode_tok_s"].to_numpy() / base_dec - 1)
        out = speed.merge(quality[[*KV_KEY, *QUALITY]], on=KV_KEY, how="left")
    else:
        out = pd.DataFrame(columns=[*KV_COLUMNS, "model_sha256"])
    shown = set(out[KV_KEY].itertuples(index=False, name=None)) if not out.empty else set()
    alone = quality[[k not in shown for k in quality[KV_KEY].itertuples(index=False,
                                                                          name=None)]]
    if not alone.empty:
        alone = alone.assign(workload="quality only")
        out = pd.concat([out, alone], ignore_index=True) if not out.empty else alone
    if out.empty:
        return empty, notes
    out = out.assign(_default=out["kv_type"] != select.DEFAULT_KV)
    out = out.sort_values(["device_label", "model", "framework", "precision", "device",
                           "workload", "_default", "kv_type"], kind="stable")
    out = out.reindex(columns=KV_COLUMNS).reset_index(drop=True)
    out["n_ctx"] = pd.Series([None if v is None or v != v else int(v) for v in out["n_ctx"]],
                             index=out.index, dtype=object)
    return out, notes


def kv_figure(table: pd.DataFrame) -> go.Figure | None:
    """Decode tok/s (left) and KLD (right, where quality was scored) against the KV cache's
    size, one marker per KV type, one trace per device x runtime x precision x workload."""
    d = table.dropna(subset=["kv_cache_mb"])
    if d.empty:
        return None
    kld = table.dropna(subset=["kld_mean"])
    cols = 2 if not kld.empty else 1
    fig = make_subplots(rows=1, cols=cols, subplot_titles=(
        ["decode tok/s", "KL divergence vs the reference (lower is better)"][:cols]))
    for i, (name, g) in enumerate(d.groupby(["device_label", "framework", "precision",
                                             "workload"], sort=True)):
        label = " · ".join(str(x) for x in name)
        fig.add_trace(go.Scatter(x=g["kv_cache_mb"], y=g["decode_tok_s"], mode="markers+text",
                                 text=g["kv_type"], textposition="top center", name=label,
                                 legendgroup=label, marker=dict(size=11, color=_color(i))),
                      row=1, col=1)
        if cols == 2 and g["kld_mean"].notna().any():
            fig.add_trace(go.Scatter(x=g["kv_cache_mb"], y=g["kld_mean"], mode="markers+text",
                                     text=g["kv_type"], textposition="top center", name=label,
                                     legendgroup=label, showlegend=False,
                                     marker=dict(size=11, color=_color(i))), row=1, col=2)
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text="KV cache MB (as the runtime reports it)", row=1, col=c)
    fig.update_layout(title="KV-cache type: size vs decode speed and quality",
                      template="plotly_white", height=460, margin=dict(l=60, r=20, t=70, b=50),
                      legend=dict(title=None))
    return fig


def _color(i: int) -> str:
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly + plotly.colors.qualitative.Dark24
    return palette[i % len(palette)]
