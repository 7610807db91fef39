"""Render a :class:`~edgebench.reports.build.Report` with jinja2: self-contained HTML or markdown.

The HTML inlines plotly.js once, in the page head, so the file opens offline; every figure is a
div plus its data, drawn by that one copy.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

from edgebench.reports import context, figures, sustained, trends
from edgebench.reports.build import Report
from edgebench.results import provenance

FORMATS = ("html", "md")
_CHECK_MARK = {"within": "within claim", "outside": "outside claim", "n/a": ""}


def fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    """A cell: ``—`` for missing, numbers rounded, datetimes to the minute (UTC)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "—"
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.1:
            return f"{value:.3g}{suffix}"
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def table(df: pd.DataFrame, index: bool = False) -> dict[str, list]:
    """A DataFrame as ``{"columns": [...], "rows": [[cell, ...], ...]}`` of formatted strings."""
    if index:
        df = df.reset_index()
    return {"columns": [str(c) for c in df.columns],
            "rows": [[fmt(v) for v in r] for r in df.itertuples(index=False)]}


def chapter_rows(chapter: pd.DataFrame) -> list[dict[str, str]]:
    """The chapter table's cells, with ``memory_check`` / ``speedup_check`` kept for marking.

    A row whose memory figure is the artifact's size (``model_bytes``: timings simulated) shows
    the artifact and its reduction where the others show memory, and no speed."""
    out = []
    for r in chapter.to_dict("records"):
        measured = r["memory_mb"] is not None and r["memory_mb"] == r["memory_mb"]
        base = r["baseline"] if isinstance(r["baseline"], str) else None
        figure = r["memory_figure"] if isinstance(r["memory_figure"], str) else ""
        short = _FIGURE.get(figure, figure)
        memory = f"{fmt(r['memory_mb'], 0)} MB {short}" if measured else "not measured"
        base_note = r["baseline_note"] if isinstance(r["baseline_note"], str) else ""
        warnings = r["warnings"] if isinstance(r["warnings"], str) else ""
        bits = r.get("bits_per_weight")
        cell = {
            "framework": r["framework"], "runtime": r["runtime"], "device": fmt(r["device"]),
            "model": fmt(r["model"]), "precision": r["quantization"], "baseline": base or "",
            "quantization": r["quantization"] + (f" vs {base}" if base else "")
            + (" (highest ok)" if base and base_note else ""),
            "bits": fmt(bits, 2, " bpw") if bits is not None and bits == bits else "",
            "baseline_note": base_note, "workload": fmt(r["workload"]),
            "memory_figure": figure, "warnings": warnings,
            "measurement": (provenance.label(r["measurement"])
                            if isinstance(r["measurement"], str) else ""),
            "memory_value": memory,
            "memory_base": f"vs {fmt(r['base_memory_mb'], 0)} MB" if base else "",
            "memory": memory + (f" (vs {fmt(r['base_memory_mb'], 0)} MB)" if base else ""),
            "rss_reduction": (f"{fmt(r['memory_reduction_pct'], 0, ' %')} {short}" if base
                              else "—"),
            "file_reduction": f"{fmt(r['size_reduction_pct'], 0, ' %')} file" if base else "",
            "reduction": (f"{fmt(r['memory_reduction_pct'], 0, ' %')} {short}, "
                          f"{fmt(r['size_reduction_pct'], 0, ' %')} file" if base else "—"),
            "model_mb": fmt(r["model_mb"], 0, " MB"),
            "memory_claim": r["memory_claim"], "memory_check": r["memory_check"],
            "decode": (fmt(r["decode_tok_s"], 1, " tok/s") + (" ⚠" if warnings else "")
                       if _number(r["decode_tok_s"]) else "not measured"),
            "speedup": fmt(r["speedup"], 2, "×") if base else "—",
            "speedup_claim": r["speedup_claim"], "speedup_check": r["speedup_check"],
            "quality": _quality(r), "use_case": r["use_case"],
            "note": r["note"] if isinstance(r["note"], str) else "",
        }
        if figure == "model_bytes":
            cell.update(_artifact_cells(r, base))
        out.append(cell)
    return out


def _number(v) -> bool:
    return v is not None and v == v


def _artifact_cells(r: dict, base: str | None) -> dict[str, str]:
    """Cells of a chapter row measured on its artifact only (timings simulated)."""
    reduced = r["size_reduction_pct"] is not None and r["size_reduction_pct"] == r[
        "size_reduction_pct"]
    against = f"vs {base}" if base else "vs 16 bits"
    size = f"{fmt(r['model_mb'], 0)} MB artifact"
    reduction = f"{fmt(r['size_reduction_pct'], 0, ' %')} artifact" if reduced else "—"
    return {"memory_value": size, "memory_base": against if reduced else "",
            "memory": size, "rss_reduction": reduction, "file_reduction": "",
            "reduction": f"{reduction} {against}" if reduced else "—",
            "decode": "not measured (simulated timings)", "speedup": "—"}


#: How a cell names its memory figure (docs/validity.md): the kernel's, or sampled RSS.
_FIGURE = {"peak_mem_mb": "peak mem", "peak_rss_mb": "RSS", "model_bytes": "artifact"}


def _quality(r: dict) -> str:
    parts = []
    if r["kld_at_floor"] in (True,):  # below 3x the reference's storage floor
        parts.append("KLD at the floor")
    elif r["kld_mean"] is not None and r["kld_mean"] == r["kld_mean"]:
        parts.append(f"KLD {fmt(r['kld_mean'], 4)}")
    if r["delta_ppl"] is not None and r["delta_ppl"] == r["delta_ppl"]:
        parts.append(f"Δppl {r['delta_ppl']:+.3f}")
    return ", ".join(parts) or "—"


def _figures(report: Report) -> dict[str, Any]:
    """Every figure, grouped by section; None where a section has nothing to draw."""
    pp = report.per_precision
    return {
        "pareto": [figures.speed_memory(pp, d) for d in report.devices
                   if not pp[pp["device_label"] == d].dropna(
                       subset=["decode_tok_s", "memory_mb"]).empty],
        "quality": figures.quality_size(pp),
        "energy": figures.energy(pp),
        "latency": [figures.latency(report.latency, d) for d in report.devices
                    if (report.latency["device_label"] == d).any()],
        "history": figures.history(report.history) if not report.history.empty else None,
        "trends": [trends.figure(found, m) for m, found in report.trends.items()],
        "sustained": sustained.figure(report.sustained_rows),
        "depth": context.depth_figures(report.depth),
        "kvcache": context.kv_figure(report.kv_cache) if not report.kv_cache.empty else None,
    }


def _fig_html(fig, n: int) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{n}",
                       config={"displaylogo": False, "responsive": True})


def _context(report: Report, draw: bool) -> dict[str, Any]:
    env = report.environment
    ctx: dict[str, Any] = {
        "r": report, "fmt": fmt, "check_mark": _CHECK_MARK,
        "chapter": chapter_rows(report.chapter),
        "env": {name: table(getattr(env, name)) for name in
                ("devices", "runtimes", "versions", "dates", "not_measured", "energy",
                 "methods")},
        "matrices": {d: [(h, table(m, index=True)) for h, m in mats if not m.empty]
                     for d, mats in report.matrices.items()},
        "latency": table(report.latency.drop(columns=["lowerfence", "upperfence"])),
        "no_energy": report.per_precision["j_per_token"].isna().all(),
        "memory_label": _FIGURE,
        "trend_steps": trends.step_lines(report.trends),
        "sustained": table(report.sustained) if not report.sustained.empty else "",
        "depth": table(report.depth) if not report.depth.empty else "",
        "kvcache": table(report.kv_cache) if not report.kv_cache.empty else "",
    }
    if draw:
        n = iter(range(10_000))
        figs = _figures(report)
        ctx["figs"] = {k: ([_fig_html(f, next(n)) for f in v] if isinstance(v, list)
                           else (_fig_html(v, next(n)) if v is not None else None))
                       for k, v in figs.items()}
    return ctx


def _env(autoescape: bool):
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("edgebench.reports", "templates"),
                       autoescape=autoescape, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def render(report: Report, fmt_name: str = "html") -> str:
    """The report as one self-contained HTML page (``html``) or markdown (``md``)."""
    if fmt_name == "md":
        return _env(False).get_template("report.md.j2").render(**_context(report, draw=False))
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    ctx = _context(report, draw=True)
    ctx["figs"] = {k: ([Markup(x) for x in v] if isinstance(v, list)
                       else (Markup(v) if v else None)) for k, v in ctx["figs"].items()}
    ctx["plotlyjs"] = Markup(get_plotlyjs())
    return _env(True).get_template("report.html.j2").render(**ctx)
