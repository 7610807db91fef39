"""Pure table computations over a DataFrame of store rows: the chapter's table, matrices, fronts.

No I/O: every function takes rows (the store's columns) and returns a new DataFrame.
"""

from __future__ import annotations

import pandas as pd

from edgebench.decision import compare
from edgebench.reports import select
from edgebench.reports.claims import Claim
from edgebench.reports.select import latest, latest_ok, ok_speed, prepare  # noqa: F401
from edgebench.results import provenance

#: Rows of one group: same device (hardware), model, runtime, way of measuring, workload and
#: KV-cache type (the workload names an imposed one; ``kv_type`` joins the quality rows).
GROUP = ["device_label", "device", "model", "model_sha256", "framework", "measurement",
         "workload", "kv_type"]
#: Rows of one comparison (every runtime on one device, model and workload, one way of
#: measuring): they share one memory figure.
COMPARISON = ["device_label", "model_sha256", "workload", "measurement"]
QUALITY_KEY = select.QUALITY_KEY
_QUALITY_COLS = select.QUALITY_COLS


def quality(df: pd.DataFrame) -> pd.DataFrame:
    """Latest ok quality row per :data:`QUALITY_KEY`, one protocol per model (see
    :func:`select.quality`, which also returns the notes)."""
    return select.quality(df)[0]


def nominal_bits(rows: pd.DataFrame) -> pd.Series:
    """Bits per weight of each row: measured if present, else its precision's nominal bits."""
    from edgebench.harness.prepare.manifest import NOMINAL_BITS

    nominal = rows["precision"].map(NOMINAL_BITS).astype(float)
    return rows["bits_per_weight"].astype(float).fillna(nominal).fillna(0.0)


_PP_COLUMNS = [*GROUP, "precision", "bits", "decode_tok_s", "roofline_pct", "ttft_ms",
               "memory_mb", "memory_figure", "peak_rss_mb", "model_bytes", "precision_class",
               "j_per_token", "warnings", *_QUALITY_COLS, "kld_at_floor"]


def _join(values) -> str:
    return "; ".join(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def per_precision(df: pd.DataFrame) -> pd.DataFrame:
    """One row per group and precision: medians of each cell's latest ok speed row, quality
    joined (one protocol), memory as ``memory_mb`` of the comparison's one figure
    (``memory_figure``: ``peak_mem_mb`` when every row of the comparison has it, else
    ``peak_rss_mb``), and the rows' ``warnings``.

    Cells whose timings are simulated (:func:`select.simulated`) get one row per runtime and
    precision on their device, workload :data:`select.NO_TIMINGS`, with the artifact's bits and
    size and their quality but no timing, memory or energy figure: an emulator's clock is never
    shown as the device's."""
    parts = [_speed_cells(df), _simulated_cells(df)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=_PP_COLUMNS)
    out = (pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
    out = out.merge(quality(df), on=QUALITY_KEY, how="left")
    out["kld_at_floor"] = [compare.at_floor(k, f) for k, f in
                           zip(out["kld_mean"], out["kld_floor_mean"])]
    return out


def _speed_cells(df: pd.DataFrame) -> pd.DataFrame:
    speed = ok_speed(df)
    if speed.empty:
        return pd.DataFrame()
    kernel = (speed.groupby(COMPARISON, dropna=False)["peak_mem_mb"]
                   .transform(lambda s: compare.memory_figure(s.tolist()) == "peak_mem_mb")
                   .astype(bool))
    speed = speed.assign(
        bits=nominal_bits(speed), memory_figure=kernel.map({True: "peak_mem_mb",
                                                            False: "peak_rss_mb"}),
        memory_mb=speed["peak_mem_mb"].where(kernel, speed["peak_rss_mb"]).astype(float))
    return speed.groupby([*GROUP, "precision"], dropna=False).agg(
        bits=("bits", "max"), decode_tok_s=("decode_tok_s", "median"),
        roofline_pct=("roofline_pct", "median"),
        ttft_ms=("ttft_ms", "median"), memory_mb=("memory_mb", "median"),
        memory_figure=("memory_figure", "first"), peak_rss_mb=("peak_rss_mb", "median"),
        model_bytes=("model_bytes", "median"), j_per_token=("j_per_token", "median"),
        precision_class=("artifact_precision_class", "first"), warnings=("warnings", _join),
    ).reset_index()


def _simulated_cells(df: pd.DataFrame) -> pd.DataFrame:
    rows = select.simulated(df)
    if rows.empty:
        return pd.DataFrame()
    # what these rows show is the artifact and the arithmetic, both real; only the clock is not
    shown = rows["measurement"].map(lambda m: provenance.compose(
        numerics=provenance.MEASURED, timings=provenance.kind(m, "timings")))
    rows = rows.assign(bits=nominal_bits(rows), measurement=shown, workload=select.NO_TIMINGS)
    out = rows.groupby([*GROUP, "precision"], dropna=False).agg(
        bits=("bits", "max"), model_bytes=("model_bytes", "median"),
        precision_class=("artifact_precision_class", "first"),
    ).reset_index()
    nan = float("nan")
    return out.assign(decode_tok_s=nan, roofline_pct=nan, ttft_ms=nan, memory_mb=nan,
                      memory_figure=None, peak_rss_mb=nan, j_per_token=nan, warnings="")


def _is_high(rows: pd.DataFrame) -> pd.Series:
    """The high-precision (fp16/f32) rows: precision class ``high``, else >= 16 bits."""
    cls = rows["precision_class"]
    return (cls == "high") | (cls.isna() & (rows["bits"] >= 16))


def _failed_high(df: pd.DataFrame | None) -> dict[tuple, str]:
    """Per group: the high-precision cells with no ok row, as "fp16: timeout"."""
    if df is None or df.empty:
        return {}
    bad = select.not_measured(df[df["kind"] == "speed"])
    bad = bad.assign(bits=nominal_bits(bad), precision_class=bad["artifact_precision_class"])
    bad = bad[_is_high(bad)]
    out: dict[tuple, list[str]] = {}
    for r in bad.sort_values("precision").to_dict("records"):
        out.setdefault(tuple(r[c] for c in GROUP), []).append(f"{r['precision']}: "
                                                              f"{r['status']}")
    return {k: ", ".join(v) for k, v in out.items()}


def with_baselines(pp: pd.DataFrame, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each row of :func:`per_precision` with its group's high-precision run beside it.

    The baseline is the group's ``high`` precision-class row, else its highest-bits ok row;
    among several, the one with most bits. Columns ``base_*`` hold the baseline's figures;
    ``baseline_note`` says when the baseline is not a high-precision run and why (the high
    precision's failed cells of ``df``, e.g. "fp16: timeout").
    """
    if pp.empty:
        return pp.assign(baseline=pd.Series(dtype=object), is_high=pd.Series(dtype=bool),
                         baseline_note=pd.Series(dtype=object),
                         missing_high=pd.Series(dtype=object))
    pp = pp.assign(is_high=_is_high(pp))
    ranked = pp.sort_values(["is_high", "bits", "precision"], kind="stable")
    base = ranked.groupby(GROUP, dropna=False).tail(1)
    failed = _failed_high(df)
    missing = [failed.get(key, "") for key in base[GROUP].itertuples(index=False, name=None)]
    notes = ["" if high else f"the highest-precision ok run ({m or 'no fp16/f32 run'})"
             for high, m in zip(base["is_high"], missing)]
    cols = {"precision": "baseline", "decode_tok_s": "base_decode_tok_s",
            "memory_mb": "base_memory_mb", "model_bytes": "base_model_bytes",
            "ppl": "base_ppl"}
    base = (base[GROUP + list(cols)].rename(columns=cols)
                .assign(baseline_note=notes, missing_high=missing))
    out = pp.merge(base, on=GROUP, how="left")
    out["memory_reduction_pct"] = 100 * (1 - out["memory_mb"] / out["base_memory_mb"])
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
    "framework", "runtime", "device", "model", "workload", "quantization", "measurement",
    "baseline", "baseline_note", "memory_figure", "memory_mb", "base_memory_mb",
    "memory_reduction_pct", "bits_per_weight", "model_mb", "size_reduction_pct", "memory_claim",
    "memory_check",
    "decode_tok_s", "speedup", "speedup_claim", "speedup_check", "kld_mean", "kld_at_floor",
    "delta_ppl", "warnings", "use_case", "note",
]


def chapter_table(df: pd.DataFrame, claims: list[Claim],
                  pp: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter's comparison table from measured rows, each claim beside its measurement.

    One row per claimed framework x device x model x quantized precision; a framework with no
    measured quantized run gets one ``not measured`` row saying why (the store's message).
    ``memory_check`` / ``speedup_check`` are ``within``, ``outside`` or ``n/a`` (no baseline,
    or a precision the claim does not cover). ``pp``: :func:`per_precision` of ``df``, if known.

    A cell whose timings are simulated (e.g. the HTP simulator's) shows only what is real in it:
    precision, bits per weight, artifact size and its reduction — against the same runtime's
    high-precision artifact, else the same parameter count at 16 bits — checked against the
    memory claim as artifact size (not device memory), and KLD; speed is left empty.

    Only rows at depth 0 (an empty KV cache), with the runtime's default KV type and the
    synthetic prompt enter it (:func:`select.is_default_context`): the chapter's claims are
    about that setting; other depths, KV types and prompt files have their own sections.
    """
    base = df[select.is_default_context(df)]
    if pp is None or len(base) != len(df):
        pp = per_precision(base)
    full, df = df, base
    table = with_baselines(pp, df)
    rows: list[dict] = []
    for claim in claims:
        mine = table[table["framework"].isin(claim.runtimes)] if not table.empty else table
        mine = mine[~mine["is_high"]] if not mine.empty else mine
        if mine.empty:
            rows.append(_not_measured(claim, df, full))
            continue
        for r in mine.sort_values(["device_label", "model", "workload", "framework", "bits"],
                                  ascending=[True, True, True, True, False]).to_dict("records"):
            rows.append(_simulated(claim, r) if _timings(r) == provenance.SIMULATED
                        else _measured(claim, r))
    return pd.DataFrame(rows, columns=CHAPTER_COLUMNS)


def _measured(claim: Claim, r: dict) -> dict:
    # figures from elsewhere (imported, estimated) compare among themselves, against their own
    # high-precision figure; against a mere highest-ok one (w4 vs w4a16) they are shown, not
    # checked: such a check would read as a verdict on the chapter's claim
    elsewhere = provenance.kind(r["measurement"], "timings") != provenance.MEASURED
    high_base = isinstance(r["baseline"], str) and not (
        isinstance(r["baseline_note"], str) and r["baseline_note"])
    covered = claim.applies_to(str(r["precision"]))
    applies = covered and (high_base or not elsewhere)
    mem, speed = claim.memory, claim.speedup
    mem_value = (r["memory_mb"] / 1024 if mem.kind == "gb" else r["memory_reduction_pct"])
    note = "" if covered else f"the claim is for {claim.quantization}"
    if applies and mem.kind == "gb":
        note = "the memory claim is an absolute size (it depends on the model)"
    base_note = r["baseline_note"] if isinstance(r["baseline_note"], str) else ""
    if not isinstance(r["baseline"], str):
        missing = f" ({r['missing_high']})" if r["missing_high"] else ""
        note = "; ".join(filter(None, [f"no higher-precision run to compare with{missing}",
                                       note]))
        base_note = ""
    elif base_note:
        note = "; ".join(filter(None, [f"baseline {r['baseline']}: {base_note}", note]))
    if elsewhere and covered and not applies:
        note = "; ".join(filter(None, [
            f"{provenance.label(r['measurement'])} figures without their own high-precision "
            "figure: not checked against the claim", note]))
    return {
        "framework": claim.framework, "runtime": r["framework"], "device": r["device_label"],
        "model": r["model"], "workload": r["workload"], "quantization": r["precision"],
        "measurement": r["measurement"],
        "baseline": r["baseline"] if isinstance(r["baseline"], str) else None,
        "baseline_note": base_note, "memory_figure": r["memory_figure"],
        "memory_mb": r["memory_mb"], "base_memory_mb": r["base_memory_mb"],
        "memory_reduction_pct": r["memory_reduction_pct"], "bits_per_weight": _bpw(r),
        "model_mb": r["model_bytes"] / 2**20 if r["model_bytes"] == r["model_bytes"] else None,
        "size_reduction_pct": r["size_reduction_pct"], "memory_claim": claim.memory_claim,
        "memory_check": mem.check(_num(mem_value)) if applies else "n/a",
        "decode_tok_s": r["decode_tok_s"], "speedup": r["speedup"],
        "speedup_claim": claim.speedup_claim,
        "speedup_check": speed.check(_num(r["speedup"])) if applies else "n/a",
        "kld_mean": r["kld_mean"], "kld_at_floor": bool(r["kld_at_floor"]),
        "delta_ppl": r["delta_ppl"], "warnings": r["warnings"] or "",
        "use_case": claim.use_case, "note": note,
    }


#: Bits per weight of the 16-bit copy a quantized artifact is compared with when its runtime has
#: no high-precision artifact.
BASE_BITS = 16


def _timings(r: dict) -> str:
    return provenance.kind(r["measurement"], "timings")


def _bpw(r: dict) -> float | None:
    bits = _num(r["bits"])
    return bits if bits else None


def _simulated(claim: Claim, r: dict) -> dict:
    """A chapter row of a cell whose timings are simulated: the artifact and KLD, no speed."""
    applies = claim.applies_to(str(r["precision"]))
    mem = claim.memory
    size, bits = _num(r["model_bytes"]), _bpw(r)
    base_size = _num(r["base_model_bytes"])
    high_base = isinstance(r["baseline"], str) and not r["baseline_note"] and base_size
    # baseline_note, as elsewhere, is said only when the baseline is not a high-precision run
    if high_base:
        baseline, against, base_note = r["baseline"], f"the {r['baseline']} artifact", ""
    elif size and bits:  # parameters = bytes x 8 / bits per weight, stored at 16 bits
        baseline, base_size = None, size * 8 / bits * BASE_BITS / 8
        against = base_note = (f"the same parameter count at {BASE_BITS} bits per weight (no "
                               f"high-precision {r['framework']} artifact)")
    else:
        baseline, base_size, against, base_note = None, None, "", ""
    reduction = 100 * (1 - size / base_size) if size and base_size else None
    value = reduction if mem.kind == "reduction" else (
        size / 2**30 if mem.kind == "gb" and size else None)
    note = [f"artifact size reduction against {against}" if against else
            "no artifact size to compare with",
            "the memory claim is checked against the artifact's size, not device memory "
            f"(the {r['device']} run's RSS is the host's)",
            f"speed not measured: {r['device']} timings are simulated"]
    if not applies:
        note.append(f"the claim is for {claim.quantization}")
    row = dict.fromkeys(CHAPTER_COLUMNS)
    row.update({
        "framework": claim.framework, "runtime": r["framework"], "device": r["device_label"],
        "model": r["model"], "workload": r["workload"], "quantization": r["precision"],
        "measurement": r["measurement"], "baseline": baseline, "baseline_note": base_note,
        "memory_figure": "model_bytes", "bits_per_weight": bits,
        "model_mb": size / 2**20 if size else None, "size_reduction_pct": reduction,
        "memory_claim": claim.memory_claim,
        "memory_check": mem.check(value) if applies else "n/a",
        "speedup_claim": claim.speedup_claim, "speedup_check": "n/a",
        "kld_mean": r["kld_mean"], "kld_at_floor": bool(r["kld_at_floor"]),
        "delta_ppl": r["delta_ppl"], "warnings": r["warnings"] or "",
        "use_case": claim.use_case, "note": "; ".join(note),
    })
    return row


def _not_measured(claim: Claim, df: pd.DataFrame, full: pd.DataFrame | None = None) -> dict:
    why = df[df["framework"].isin(claim.runtimes) & (df["status"] != "ok")]
    elsewhere = (full is not None and df[df["framework"].isin(claim.runtimes)].empty
                 and not full[full["framework"].isin(claim.runtimes)].empty)
    if elsewhere:
        note = ("not measured at depth 0 with the default KV type and the synthetic prompt "
                "(rows of other depths, KV types or prompt files only: see their sections)")
    elif not why.empty:
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


def workloads(pp: pd.DataFrame, device_label: str, model: str) -> list[str]:
    """The workloads measured on a device for a model, the one with most rows first."""
    pp = pp[(pp["device_label"] == device_label) & (pp["model"] == model)]
    counts = pp.groupby("workload").size()
    return sorted(counts.index, key=lambda w: (-counts[w], w))


def matrix(pp: pd.DataFrame, device_label: str, model: str, metric: str,
           workload: str | None = None) -> pd.DataFrame:
    """Runtime x precision table of one metric on one device, model and workload (default:
    the one with most rows), from :func:`per_precision` (``ppl`` from quality rows, the rest
    from speed rows). Workloads never mix in one table.

    Columns run from most to fewest bits. Non-measured rows keep how they were obtained in the
    runtime label (:func:`select.runtime_label`, e.g. "qnn (simulated timings)"), so they never
    mix silently with measured ones.
    """
    if workload is None:
        workload = next(iter(workloads(pp, device_label, model)), None)
    pp = pp[(pp["device_label"] == device_label) & (pp["model"] == model)
            & (pp["workload"] == workload)]
    if pp.empty or pp[metric].isna().all():
        return pd.DataFrame()
    label = select.runtime_label(pp)
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
