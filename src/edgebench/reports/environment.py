"""Pure summaries of where and how rows were measured, and of what was not measured and why."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from edgebench.reports import select
from edgebench.results import provenance


@dataclass
class Environment:
    """The report's first section, as tables."""

    devices: pd.DataFrame
    runtimes: pd.DataFrame
    versions: pd.DataFrame
    dates: pd.DataFrame
    not_measured: pd.DataFrame
    energy: pd.DataFrame
    methods: pd.DataFrame


def _first(s: pd.Series):
    s = s.dropna()
    return s.iloc[0] if len(s) else None


def _names(s: pd.Series, sep: str = ", ") -> str:
    """The distinct values of a column, sorted and joined; nulls left out (a row may hold
    only the columns a store file requires)."""
    return sep.join(sorted({str(v) for v in s.dropna()}))


def environment(df: pd.DataFrame) -> Environment:
    """Devices, runtimes and versions, run dates, methods, and rows that measured nothing."""
    g = df.groupby("device_label", dropna=False)
    devices = g.agg(
        device=("device", "first"), hardware=("hardware", lambda s: _names(s, "; ")),
        cpu_model=("cpu_model", _first),
        cores=("cpu_cores_physical", _first), ram_mb=("ram_total_mb", _first),
        accelerators=("accelerators", _first), os=("os", _first),
        python=("python_version", _first), machines=("machine_id", "nunique"),
        rows=("run_key", "size"),
    ).reset_index()
    runtimes = (df.assign(framework_version=df["framework_version"].fillna("unknown"))
                  .groupby(["framework", "framework_version"], dropna=False)
                  .agg(devices=("device_label", _names),
                       rows=("run_key", "size"), ok=("status", lambda s: int((s == "ok").sum())))
                  .reset_index())
    versions = (df.groupby(["edgebench_version", "schema_version"], dropna=False)
                  .size().rename("rows").reset_index())
    dates = (df.groupby("session_id")
               .agg(started=("started_at", "min"), finished=("finished_at", "max"),
                    suite=("suite", _first), rows=("run_key", "size"),
                    devices=("device_label", _names))
               .reset_index().sort_values("started"))
    return Environment(devices, runtimes, versions, dates, not_measured(df),
                       energy_methods(df), measurement_methods(df))


def not_measured(df: pd.DataFrame) -> pd.DataFrame:
    """Cells that never measured (no ok row; their newest row), grouped by their message.
    A failure after an ok row is not here: it is a warning beside that row's numbers."""
    bad = select.not_measured(df)
    cols = ["framework", "precision", "device_label", "kind", "status", "message"]
    if bad.empty:
        return pd.DataFrame(columns=[*cols, "rows"])
    bad = bad.assign(message=bad["message"].fillna("no message"))
    return (bad.groupby(cols, dropna=False).size().rename("rows").reset_index()
               .sort_values(["status", "framework", "precision"]))


def energy_methods(df: pd.DataFrame) -> pd.DataFrame:
    """Per device, how energy was measured; ``none`` reads as "no energy meter"."""
    ok = df[df["status"] == "ok"]
    method = ok["energy_method"].fillna("none")
    out = (ok.assign(energy_method=method)
             .groupby(["device_label", "energy_method"]).size().rename("rows").reset_index())
    out["meaning"] = out["energy_method"].map(
        lambda m: "no energy meter: energy not measured" if m == "none" else f"measured by {m}")
    return out


def measurement_methods(df: pd.DataFrame) -> pd.DataFrame:
    """Row counts per way of obtaining them, one column per part (``results.provenance``):
    ``numerics`` and ``timings`` (measured, estimated, simulated, imported:*), and ``method``
    in words (e.g. "simulated timings"; "measured" when both parts are)."""
    cols = ["method", *provenance.PARTS, "rows"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    parts = df["measurement"].map(provenance.parse)
    out = df.assign(method=df["measurement"].map(lambda m: provenance.label(m) or "measured"),
                    **{p: parts.map(lambda d, p=p: d[p]) for p in provenance.PARTS})
    return out.groupby(cols[:-1]).size().rename("rows").reset_index()
