"""Which rows a report compares: ``edgebench.decision.compare``'s rules applied to DataFrames.

The same functions decide for `edgebench recommend` (``results.queries``), so the report and
the recommendation answer from the same rows (docs/validity.md, "Comparisons"). Pure: rows in,
rows (and notes) out.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from edgebench.decision import compare
from edgebench.results import provenance

#: Quality rows join speed rows on these (numerics do not depend on the machine; a quantized KV
#: cache has its own quality: ``kv_type``, see :func:`prepare`).
QUALITY_KEY = ["model_sha256", "framework", "precision", "device", "kv_type"]
QUALITY_COLS = ["ppl", "ppl_stderr", "ppl_reference", "kld_mean", "kld_p99", "top1_agree",
                "quality_reference", "kld_floor_mean"]
ACROSS = "all hardware (--across-machines)"
#: What a report shows for a cell's identity that a row leaves null: a store file that passes
#: verification need only hold ``results.verify.REQUIRED``, so every other column may be null.
UNNAMED = {"model": "unknown model", "framework": "unknown", "precision": "unknown",
           "device": "unknown"}
#: The workload of a cell whose timings are simulated: it shows no timings, only its artifact
#: and numerics, which no workload changes.
NO_TIMINGS = "no timings (simulated)"
#: ``kv_type`` of a row that imposed no KV-cache type (``kv_cache`` null: the runtime's own).
DEFAULT_KV = "default"


def label(measurement) -> str:
    """A runtime's suffix in tables and legends: ``""`` for measured, else e.g.
    ``" (simulated timings)"`` (:func:`provenance.label`)."""
    text = provenance.label(measurement)
    return f" ({text})" if text else ""


def runtime_label(rows: pd.DataFrame) -> pd.Series:
    """``framework`` plus how its numbers were obtained, e.g. "qnn (simulated timings)", so a
    row that is not measured never passes as measured."""
    return rows["framework"].astype(str) + rows["measurement"].map(label).astype(str)


def timings_simulated(rows: pd.DataFrame) -> pd.Series:
    """Rows whose clock is an emulator's (e.g. the HTP simulator): their timings are kept in
    the store but never shown as speed, memory or energy."""
    return rows["measurement"].map(
        lambda m: provenance.kind(m, "timings") == provenance.SIMULATED).astype(bool)


def workload_label(r, *, depth: bool = True, kv: bool = True) -> str:
    """A row's full workload: context depth (when not 0), prompt file (when one), prompt and
    new tokens, threads, KV-cache type (when one is imposed), runtime options. ``depth`` /
    ``kv`` False leave that axis out (the sections that draw it name it themselves)."""
    def num(k):
        v = compare.value(r, k)
        return "?" if v is None else str(int(v))

    text = f"{num('prompt_tokens')}+{num('new_tokens')} tokens, {num('threads')} threads"
    prompts = compare.value(r, "prompt_file")
    if prompts or compare.value(r, "prompt_file_sha256"):  # real prompts: prompt_tokens is
        text = f"prompt file {prompts or '?'}, {text}"  # their mean length
    d = compare.value(r, "depth")
    if depth and d:  # a filled KV cache is another workload; depth 0 reads as before
        text = f"depth {int(d)}, {text}"
    kv_cache = compare.value(r, "kv_cache")
    if kv and kv_cache:  # an imposed KV type is another configuration; the default reads as before
        text = f"{text}, KV {kv_cache}"
    options = compare.value(r, "options")
    return text if options in (None, "", "{}") else f"{text}, options {options}"


def is_default_context(df: pd.DataFrame) -> pd.Series:
    """Rows at depth 0 (an empty KV cache), with the runtime's default KV type and the
    synthetic prompt: the rows the chapter's table compares."""
    def null(col):
        return df[col].isna() if col in df else pd.Series(True, index=df.index)

    depth = (df["depth"].fillna(0) == 0) if "depth" in df else pd.Series(True, index=df.index)
    return (depth & null("kv_cache") & null("prompt_file") & null("prompt_file_sha256")).astype(
        bool)


def prepare(df: pd.DataFrame, across_machines: bool = False) -> pd.DataFrame:
    """Normalise raw rows: ``kind`` and ``measurement`` filled in; ``hardware`` (the device
    fingerprint, :func:`compare.hardware_key`), ``workload``, ``kv_type`` (``kv_cache``, or
    :data:`DEFAULT_KV` where null) and ``device_label`` added.

    A device label names the device and the hardware (its CPU model, or the whole fingerprint
    when two fingerprints share a CPU model), since ``cpu`` on two laptops is two devices; with
    ``across_machines`` it names the device only and every hardware falls under it.
    """
    out = df.copy()
    for col in UNNAMED:  # a store file may hold only the required columns (verify.REQUIRED)
        out[col] = out[col].astype(object).where(out[col].notna(), UNNAMED[col])
    out["kind"] = out["kind"].fillna("speed")
    out["measurement"] = out["measurement"].fillna("measured")
    out["model_sha256"] = out["model_sha256"].fillna(out["model"])
    kv = out["kv_cache"] if "kv_cache" in out else pd.Series(None, index=out.index, dtype=object)
    out["kv_type"] = kv.astype(object).where(kv.notna(), DEFAULT_KV)
    recs = out.to_dict("records")
    out["hardware"] = [compare.hardware_key(r) for r in recs]
    out["workload"] = [workload_label(r) for r in recs]
    if across_machines:
        host = pd.Series(ACROSS, index=out.index)
    else:
        short = out["hardware"].str.split(" · ").str[0]
        shared = short.map(out.groupby(short)["hardware"].nunique()) > 1
        host = short.where(~shared, out["hardware"])
    out["device_label"] = out["device"].astype(str) + " · " + host.astype(str)
    return out


def latest(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each cell (run_key, hardware, measurement), whatever its status."""
    if df.empty:
        return df
    return df.iloc[sorted(c.latest for c in compare.cells(df.to_dict("records")))]


def latest_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Each cell's measurement: its latest ``ok`` row, with ``later_failure`` saying when a
    later run of the cell failed (error/timeout) — the same rule as `recommend`."""
    picks = compare.latest_ok(df.to_dict("records")) if not df.empty else []
    out = df.iloc[[i for i, _ in picks]].copy()
    out["later_failure"] = pd.Series([w for _, w in picks], index=out.index, dtype=object)
    return out


def not_measured(df: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each cell that has no ok row at all."""
    if df.empty:
        return df
    return df.iloc[sorted(c.latest for c in compare.cells(df.to_dict("records"))
                          if c.ok is None)]


def ok_speed(df: pd.DataFrame) -> pd.DataFrame:
    """Each speed cell's latest ok row, with ``warnings`` (busy machine, disagreeing timings,
    a later failed run) joined in one text. Rows whose timings are simulated are left out
    (what they tell that is real is in :func:`simulated`)."""
    speed = df[df["kind"] == "speed"]
    sustained = speed["sustain_s"].notna() if "sustain_s" in speed else False
    # sustained runs have their own section (reports.sustained), never a cell's usual figure
    speed = latest_ok(speed[~timings_simulated(speed) & ~sustained])
    warn = ["; ".join(compare.row_warnings(r) + ([r["later_failure"]] if r["later_failure"]
                                                  else []))
            for r in speed.to_dict("records")]
    return speed.assign(warnings=pd.Series(warn, index=speed.index, dtype=object))


def simulated(df: pd.DataFrame) -> pd.DataFrame:
    """The latest ok speed and quality rows whose timings are simulated: shown only for what is
    real in them (the artifact's precision, bits per weight and size; quality through
    :func:`quality` where their numerics are measured), never for their timings."""
    rows = df[df["kind"].isin(["speed", "quality"])]
    return latest_ok(rows[timings_simulated(rows)])


def quality(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The quality columns of one row per :data:`QUALITY_KEY` — each cell's latest ok row whose
    numerics are measured (an emulator's timings do not matter: e.g. the HTP simulator's
    ``numerics=measured;timings=simulated``), all of one model under one protocol
    (:func:`compare.choose_protocol`: the one most runtime x precision cells have) — and notes
    naming the protocol and what was left out."""
    q = df[df["kind"] == "quality"]
    q = latest_ok(q[q["measurement"].map(provenance.numerics_measured).astype(bool)])
    if q.empty:
        return pd.DataFrame(columns=QUALITY_KEY + QUALITY_COLS), []
    q = q.assign(_protocol=[compare.protocol(r) for r in q.to_dict("records")])
    keep, notes = [], []
    for _, g in q.groupby("model_sha256", sort=True):
        cells = {}  # (framework, precision, device, KV type) -> its protocols
        for key, p in zip(zip(g["framework"], g["precision"], g["device"], g["kv_type"]),
                          g["_protocol"]):
            cells.setdefault(key, set()).add(p)
        counts = Counter(p for ps in cells.values() for p in ps)
        # the protocol is the default KV type's: an imposed KV type's quality is scored at a
        # long context of its own (reports.context shows it) and never picks the model's
        default = Counter(p for k, ps in cells.items() if k[3] == DEFAULT_KV for p in ps)
        chosen = compare.choose_protocol(default or counts)
        mine = g["_protocol"].map(lambda p, c=chosen: p == c)
        if len(counts) > 1:
            left = Counter(p for p in g["_protocol"] if p != chosen)
            notes.append(
                f"{g['model'].iloc[0]}: quality compared under one protocol: "
                f"{compare.protocol_label(chosen)} ({counts[chosen]} of {len(cells)} "
                f"runtime x precision cell(s)); left out {sum(left.values())} quality row(s) "
                "of other protocols: " + "; ".join(
                    f"{compare.protocol_label(p)} ({n})"
                    for p, n in sorted(left.items(), key=lambda kv: compare.protocol_label(
                        kv[0]))))
        keep.append(g[mine])
    q = pd.concat(keep).sort_values("started_at", kind="stable")
    q = q.drop_duplicates(QUALITY_KEY, keep="last")
    return q[QUALITY_KEY + QUALITY_COLS], notes


def hardware_notes(df: pd.DataFrame, across_machines: bool) -> list[str]:
    """What the report says about the hardware its rows come from."""
    hw = df.groupby("hardware")["run_key"].size().sort_index()
    if len(hw) < 2:
        return []
    listing = "; ".join(f"{k} ({n} row(s))" for k, n in hw.items())
    if across_machines:
        return [f"--across-machines: rows of {len(hw)} different hardware fingerprints are "
                f"compared together: {listing}"]
    return [f"rows of {len(hw)} hardware fingerprints, each compared apart (one device label "
            f"each; --across-machines compares them together): {listing}"]
