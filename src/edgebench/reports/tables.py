"""Pure table computations over a DataFrame of store rows: the chapter's table, matrices, fronts.

No I/O: every function takes rows (the store's columns) and returns a new DataFrame.
"""

from __future__ import annotations

import pandas as pd

from edgebench.reports.claims import Claim

#: Rows of one comparison: same device, model, runtime and way of measuring.
GROUP = ["device_label", "device", "model", "model_sha256", "framework", "measurement"]
#: Quality rows join speed rows on these (numerics do not depend on the machine).
QUALITY_KEY = ["model_sha256", "framework", "precision", "device"]
_QUALITY_COLS = ["ppl", "ppl_stderr", "ppl_reference", "kld_mean", "kld_p99", "top1_agree",
                 "quality_reference"]


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Normalise raw rows: ``kind`` and ``measurement`` filled in, a ``device_label`` added.

    A device label names the device and the machine (its CPU model, or its id when two machines
    share a CPU model), since ``cpu`` on two laptops is two devices.
    """
    out = df.copy()
    out["kind"] = out["kind"].fillna("speed")
    out["measurement"] = out["measurement"].fillna("measured")
    out["model_sha256"] = out["model_sha256"].fillna(out["model"])
    cpu = out["cpu_model"].fillna(out["machine_id"])
    shared = cpu.map(out.groupby(cpu)["machine_id"].nunique()) > 1
    host = cpu.where(~shared, cpu + " (" + out["machine_id"].astype(str).str[:8] + ")")
    out["device_label"] = out["device"].astype(str) + " · " + host.astype(str)
    return out


def latest(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row per run_key and machine."""
    return (df.sort_values("started_at", kind="stable")
              .drop_duplicates(["run_key", "machine_id"], keep="last"))


def ok_speed(df: pd.DataFrame) -> pd.DataFrame:
    """Latest ``ok`` speed rows."""
    return latest(df[(df["kind"] == "speed") & (df["status"] == "ok")])


def quality(df: pd.DataFrame) -> pd.DataFrame:
    """Latest ``ok`` quality row per :data:`QUALITY_KEY`, its quality columns only."""
    q = latest(df[(df["kind"] == "quality") & (df["status"] == "ok")])
    q = q.sort_values("started_at", kind="stable").drop_duplicates(QUALITY_KEY, keep="last")
    return q[QUALITY_KEY + _QUALITY_COLS]


def nominal_bits(rows: pd.DataFrame) -> pd.Series:
    """Bits per weight of each row: measured if present, else its precision's nominal bits."""
    from edgebench.harness.prepare.manifest import NOMINAL_BITS

    nominal = rows["precision"].map(NOMINAL_BITS).astype(float)
    return rows["bits_per_weight"].astype(float).fillna(nominal).fillna(0.0)


def per_precision(df: pd.DataFrame) -> pd.DataFrame:
    """One row per group and precision: medians of the latest ok speed rows, quality joined."""
    speed = ok_speed(df)
    if speed.empty:
        return pd.DataFrame(columns=[*GROUP, "precision", "bits", "decode_tok_s", "ttft_ms",
                                     "peak_rss_mb", "model_bytes", "precision_class",
                                     "j_per_token", *_QUALITY_COLS])
    speed = speed.assign(bits=nominal_bits(speed))
    agg = speed.groupby([*GROUP, "precision"], dropna=False).agg(
        bits=("bits", "max"), decode_tok_s=("decode_tok_s", "median"),
        ttft_ms=("ttft_ms", "median"), peak_rss_mb=("peak_rss_mb", "median"),
        model_bytes=("model_bytes", "median"), j_per_token=("j_per_token", "median"),
        precision_class=("artifact_precision_class", "first"),
    ).reset_index()
    return agg.merge(quality(df), on=QUALITY_KEY, how="left")


def with_baselines(pp: pd.DataFrame) -> pd.DataFrame:
    """Each row of :func:`per_precision` with its group's high-precision run beside it.

    The baseline is the group's ``high`` precision-class row, else its highest-bits row; among
    several, the one with most bits. Columns ``base_*`` hold the baseline's figures.
    """
    if pp.empty:
        return pp.assign(baseline=pd.Series(dtype=object), is_high=pd.Series(dtype=bool))
    cls = pp["precision_class"]
    pp = pp.assign(is_high=(cls == "high") | (cls.isna() & (pp["bits"] >= 16)))
    ranked = pp.sort_values(["is_high", "bits", "precision"], kind="stable")
    base = ranked.groupby(GROUP, dropna=False).tail(1)
    cols = {"precision": "baseline", "decode_tok_s": "base_decode_tok_s",
            "peak_rss_mb": "base_peak_rss_mb", "model_bytes": "base_model_bytes",
            "ppl": "base_ppl"}
    base = base[GROUP + list(cols)].rename(columns=cols)
    out = pp.merge(base, on=GROUP, how="left")
    out["memory_reduction_pct"] = 100 * (1 - out["peak_rss_mb"] / out["base_peak_rss_mb"])
    out["size_reduction_pct"] = 100 * (1 - out["model_bytes"] / out["base_model_bytes"])
    out["speedup"] = out["decode_tok_s"] / out["base_decode_tok_s"]
    ref = out["ppl_reference"].where(out["ppl_reference"].notna(), out["base_ppl"])
    out["delta_ppl"] = out["ppl"] - ref
    itself = out["precision"] == out["baseline"]
    out.loc[itself, ["memory_reduction_pct", "size_reduction_pct", "speedup"]] = float("nan")
    out.loc[itself, "baseline"] = None
    return out


#: Columns of :func:`chapter_table`, in order.
CHAPTER_COLUMNS = [
    "framework", "runtime", "device", "model", "quantization", "measurement", "baseline",
    "peak_rss_mb", "base_peak_rss_mb", "memory_reduction_pct", "model_mb",
    "size_reduction_pct", "memory_claim", "memory_check", "decode_tok_s", "speedup",
    "speedup_claim", "speedup_check", "kld_mean", "delta_ppl", "use_case", "note",
]


def chapter_table(df: pd.DataFrame, claims: list[Claim],
                  pp: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter's comparison table from measured rows, each claim beside its measurement.

    One row per claimed framework x device x model x quantized precision; a framework with no
    measured quantized run gets one ``not measured`` row saying why (the store's message).
    ``memory_check`` / ``speedup_check`` are ``within``, ``outside`` or ``n/a`` (no baseline,
    or a precision the claim does not cover). ``pp``: :func:`per_precision` of ``df``, if known.
    """
    table = with_baselines(per_precision(df) if pp is None else pp)
    rows: list[dict] = []
    for claim in claims:
        mine = table[table["framework"].isin(claim.runtimes)] if not table.empty else table
        mine = mine[~mine["is_high"]] if not mine.empty else mine
        if mine.empty:
            rows.append(_not_measured(claim, df))
            continue
        for r in mine.sort_values(["device_label", "model", "framework", "bits"],
                                  ascending=[True, True, True, False]).to_dict("records"):
            rows.append(_measured(claim, r))
    return pd.DataFrame(rows, columns=CHAPTER_COLUMNS)


def _measured(claim: Claim, r: dict) -> dict:
    applies = claim.applies_to(str(r["precision"]))
    mem, speed = claim.memory, claim.speedup
    mem_value = (r["peak_rss_mb"] / 1024 if mem.kind == "gb" else r["memory_reduction_pct"])
    note = "" if applies else f"the claim is for {claim.quantization}"
    if applies and mem.kind == "gb":
        note = "the memory claim is an absolute size (it depends on the model)"
    if not isinstance(r["baseline"], str):
        note = "; ".join(filter(None, ["no higher-precision run to compare with", note]))
    return {
        "framework": claim.framework, "runtime": r["framework"], "device": r["device_label"],
        "model": r["model"], "quantization": r["precision"], "measurement": r["measurement"],
        "baseline": r["baseline"] if isinstance(r["baseline"], str) else None,
        "peak_rss_mb": r["peak_rss_mb"],
        "base_peak_rss_mb": r["base_peak_rss_mb"],
        "memory_reduction_pct": r["memory_reduction_pct"],
        "model_mb": r["model_bytes"] / 2**20 if r["model_bytes"] == r["model_bytes"] else None,
        "size_reduction_pct": r["size_reduction_pct"], "memory_claim": claim.memory_claim,
        "memory_check": mem.check(_num(mem_value)) if applies else "n/a",
        "decode_tok_s": r["decode_tok_s"], "speedup": r["speedup"],
        "speedup_claim": claim.speedup_claim,
        "speedup_check": speed.check(_num(r["speedup"])) if applies else "n/a",
        "kld_mean": r["kld_mean"], "delta_ppl": r["delta_ppl"], "use_case": claim.use_case,
        "note": note,
    }


def _not_measured(claim: Claim, df: pd.DataFrame) -> dict:
    why = df[df["framework"].isin(claim.runtimes) & (df["status"] != "ok")]
    if not why.empty:
        last = latest(why).iloc[-1]
        note = f"not measured: {last['status']}: {last['message'] or 'no message'}"
    elif not df[df["framework"].isin(claim.runtimes)].empty:
        note = "not measured: no quantized run beside a high-precision run"
    else:
        note = f"not measured: no {'/'.join(claim.runtimes)} rows"
    row = dict.fromkeys(CHAPTER_COLUMNS)
    row.update(framework=claim.framework, runtime="/".join(claim.runtimes),
               quantization=claim.quantization, memory_claim=claim.memory_claim,
               speedup_claim=claim.speedup_claim, use_case=claim.use_case,
               memory_check="n/a", speedup_check="n/a", note=note)
    return row


def _num(v) -> float | None:
    return None if v is None or v != v else float(v)


def matrix(pp: pd.DataFrame, device_label: str, model: str, metric: str) -> pd.DataFrame:
    """Runtime x precision table of one metric on one device and model, from
    :func:`per_precision` (``ppl`` from quality rows, the rest from speed rows).

    Columns run from most to fewest bits. Non-measured rows keep their ``measurement`` in the
    runtime label, so they never mix silently with measured ones.
    """
    pp = pp[(pp["device_label"] == device_label) & (pp["model"] == model)]
    if pp.empty or pp[metric].isna().all():
        return pd.DataFrame()
    label = pp["framework"].where(pp["measurement"] == "measured",
                                  pp["framework"] + " (" + pp["measurement"] + ")")
    order = (pp.sort_values(["bits", "precision"], ascending=[False, True])["precision"]
               .drop_duplicates().tolist())
    return (pp.assign(runtime=label)
              .pivot_table(index="runtime", columns="precision", values=metric, aggfunc="median")
              .reindex(columns=[c for c in order])
              .dropna(axis=1, how="all")
              .rename_axis(columns=None))


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.Series:
    """True for rows no other row beats: lower-or-equal ``x`` and higher-or-equal ``y``, one
    strictly. NaN rows are never on the front."""
    valid = df[[x, y]].dropna()
    xs, ys = valid[x].to_numpy(), valid[y].to_numpy()
    on = pd.Series(False, index=df.index)
    for i, idx in enumerate(valid.index):
        dominated = ((xs <= xs[i]) & (ys >= ys[i]) & ((xs < xs[i]) | (ys > ys[i]))).any()
        on[idx] = not dominated
    return on
