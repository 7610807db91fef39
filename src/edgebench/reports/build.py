"""Everything a report shows, computed once from rows; ``html`` renders it as HTML or markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from edgebench.reports import context, select, series, sustained, tables, trends
from edgebench.reports.claims import Claim, load_claims
from edgebench.reports.environment import Environment, environment
from edgebench.reports.recommend import DeviceRecommendation, Recommender, recommendations
from edgebench.results import provenance

#: The report's sections in the order it shows them (its id, heading): the answer first — the
#: recommendation per device and the chapter's table — then the detail, then environment and
#: method (how rows were obtained and compared).
SECTIONS = (("recommendation", "Recommendation"), ("chapter", "The chapter's table, measured"),
            ("matrices", "Framework × precision, per device"), ("pareto", "Pareto fronts"),
            ("latency", "Per-token latency distributions"), ("history", "History"),
            ("environment", "Environment and method"))
#: Sections shown only when rows for them exist (id, heading, the section they follow): decode
#: speed against context depth (some series measured at two depths or more), and KV-cache
#: types (some row imposed one).
OPTIONAL_SECTIONS = (("depth", "Decode speed vs context depth", "latency"),
                     ("kvcache", "KV-cache type", "latency"))

#: Per-device matrices: (metric column, heading).
MATRICES = (("decode_tok_s", "decode tok/s"),
            ("roofline_pct", "decode as % of the memory-bandwidth limit (docs/roofline.md)"),
            ("ttft_ms", "TTFT ms"),
            ("memory_mb", "memory MB"), ("ppl", "perplexity"))


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
    matrices: dict[str, list[tuple[str, pd.DataFrame]]]  # "device · model · workload" -> tables
    latency: pd.DataFrame
    history: pd.DataFrame
    recommendations: list[DeviceRecommendation]
    non_measured: list[str] = field(default_factory=list)
    #: How rows were selected for comparison (hardware, quality protocol, memory figure).
    notes: list[str] = field(default_factory=list)
    #: Rows shown with a warning: busy machine, disagreeing timings, a later failed run.
    warnings: list[str] = field(default_factory=list)
    across_machines: bool = False
    #: Per trend metric, each run's series over sessions with its steps (``reports.trends``).
    trends: dict = field(default_factory=dict)
    #: Sustained runs' summaries (``reports.sustained.table``) and their rows (drawn).
    sustained: pd.DataFrame = field(default_factory=pd.DataFrame)
    sustained_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Decode tok/s and TTFT per series and depth (``reports.context.depth_table``).
    depth: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Size, memory, speed and quality per KV type (``reports.context.kv_table``).
    kv_cache: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: (id, number, heading) of each section, in the order shown (:data:`SECTIONS`).
    sections: list[tuple[str, int, str]] = field(
        default_factory=lambda: [(k, i, h) for i, (k, h) in enumerate(SECTIONS, 1)])

    def heading(self, key: str) -> str:
        """A section's numbered heading, e.g. "4. Pareto fronts"."""
        return next(f"{n}. {h}" for k, n, h in self.sections if k == key)


def build_report(rows: pd.DataFrame, *, title: str = "edgebench report", filters: str = "",
                 claims: list[Claim] | None = None,
                 recommender: Recommender | None = None,
                 across_machines: bool = False) -> Report:
    """Compute every section of the report from store rows (all columns, all sessions).

    Rows of different hardware fall under different device labels unless ``across_machines``
    (docs/validity.md, "Comparisons")."""
    from edgebench import __version__

    claims = claims if claims is not None else load_claims()
    df = tables.prepare(rows, across_machines)
    devices = sorted(df["device_label"].unique())
    pp = tables.per_precision(df)
    mats = _matrices(pp, devices)
    methods = sorted({provenance.label(m) for m in df["measurement"].unique()} - {""})
    depth = context.depth_table(df)
    kv_cache, kv_notes = context.kv_table(df)
    notes = (select.hardware_notes(df, across_machines) + select.quality(df)[1] + _memory(pp)
             + kv_notes)
    return Report(
        title=title, filters=filters, generated_at=datetime.now(timezone.utc), rows=len(df),
        edgebench_version=__version__, devices=devices,
        claims=claims, environment=environment(df), chapter=tables.chapter_table(df, claims, pp),
        per_precision=pp, matrices=mats, latency=series.latency_stats(df),
        history=series.history(df), trends=trends.trends(df),
        sustained=sustained.table(df), sustained_rows=sustained.rows(df),
        recommendations=recommendations(df, recommender, across_machines=across_machines),
        non_measured=methods, notes=notes, warnings=_warnings(pp),
        across_machines=across_machines, depth=depth, kv_cache=kv_cache,
        sections=_sections({"depth": not depth.empty, "kvcache": not kv_cache.empty}),
    )


def _sections(shown: dict[str, bool]) -> list[tuple[str, int, str]]:
    """(id, number, heading) of :data:`SECTIONS` plus the optional ones that have rows."""
    keys = list(SECTIONS)
    optional = {k for k, _, _ in OPTIONAL_SECTIONS}
    for key, heading, after in OPTIONAL_SECTIONS:
        if shown.get(key):  # after its section and the optional ones already put there
            at = next(i for i, (k, _) in enumerate(keys) if k == after)
            while at + 1 < len(keys) and keys[at + 1][0] in optional:
                at += 1
            keys.insert(at + 1, (key, heading))
    return [(k, i, h) for i, (k, h) in enumerate(keys, 1)]


def _matrices(pp: pd.DataFrame, devices: list[str]) -> dict[str, list[tuple[str, pd.DataFrame]]]:
    """Per device, model and workload (named when there are several): a table per metric."""
    out = {}
    for label in devices:
        for model in sorted(pp.loc[pp["device_label"] == label, "model"].unique()):
            loads = tables.workloads(pp, label, model)
            for load in loads:
                mine = pp[(pp["device_label"] == label) & (pp["model"] == model)
                          & (pp["workload"] == load)]
                key = f"{label} · {model}" + (f" · {load}" if len(loads) > 1 else "")
                out[key] = [(_heading(metric, heading, mine),
                             tables.matrix(pp, label, model, metric, load))
                            for metric, heading in MATRICES]
    return out


def _heading(metric: str, heading: str, rows: pd.DataFrame) -> str:
    if metric != "memory_mb":
        return heading
    return f"{heading} ({', '.join(sorted(rows['memory_figure'].dropna().unique()))})"


def _memory(pp: pd.DataFrame) -> list[str]:
    """One note per memory figure in use: which comparisons fall back to peak_rss_mb."""
    if pp.empty:
        return []
    rss = pp[pp["memory_figure"] == "peak_rss_mb"]
    if rss.empty:
        return ["memory is peak_mem_mb everywhere (the kernel's high-water mark of the "
                "measuring process minus its baseline before importing the runtime)"]
    where = sorted({f"{r.device_label} · {r.model} · {r.workload}"
                    for r in rss.itertuples()})
    return [f"memory is peak_rss_mb (sampled RSS) in {len(where)} comparison(s) where some row "
            f"lacks peak_mem_mb (older schema): {'; '.join(where)}; each cell names its figure"]


def _warnings(pp: pd.DataFrame) -> list[str]:
    if pp.empty:
        return []
    bad = pp[pp["warnings"].fillna("") != ""]
    return [f"{r.device_label} · {r.model} · {r.workload}: {r.framework} {r.precision}"
            f"{select.label(r.measurement)}: {r.warnings}"
            for r in bad.sort_values(["device_label", "model", "workload", "framework",
                                      "precision"]).itertuples()]
