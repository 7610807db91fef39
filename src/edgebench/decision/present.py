"""A Recommendation as text and table rows (plain dicts; the CLI renders them)."""

from __future__ import annotations

from typing import Any

from edgebench.decision.compare import floor_text
from edgebench.decision.model import Candidate, Estimate, fmt, fmt_pair
from edgebench.decision.result import GUIDANCE_LABEL, Ranked, Recommendation
from edgebench.decision.snapdragon import Line, Quality, SnapdragonEvidence

_COLUMNS = (("decode tok/s", "decode_tok_s"), ("TTFT ms", "ttft_ms"),
            ("memory MB", "memory_mb"), ("model MB", "model_mb"), ("KLD", "kld_mean"))
#: How the memory column is headed, per figure (compare.memory_figure).
MEMORY_HEADER = {"peak_mem_mb": "peak mem MB", "peak_rss_mb": "peak RSS MB"}
WARN = "⚠"


def _cell(e: Estimate | None) -> str:
    if e is None:
        return ""
    lo, hi = e.interval
    return fmt(e.value) if lo == hi else f"{fmt(e.value)} ({fmt(lo)}-{fmt(hi)})"


def _metrics(c: Candidate, memory: str, assumed: bool) -> dict[str, str]:
    out = {(MEMORY_HEADER.get(memory, memory) if m == "memory_mb" else label): _cell(c.metric(m))
           for label, m in _COLUMNS}
    if c.kld_mean is None:
        out["KLD"] = "NOT MEASURED (assumed)" if assumed else "not measured"
    elif c.quality_note:  # the quality reference, without a row of its own
        out["KLD"] = "0 (the reference)"
    elif c.kld_at_floor:  # below 3x the storage floor: a number would pretend precision
        out["KLD"] = floor_text(c.kld_floor)
    else:
        out["KLD"] = _cell(c.kld_mean)
    inc = c.metric("ppl_increase")
    out["PPL vs ref"] = "" if inc is None else f"{inc.value:+.1%}"
    return out


def _name(c: Candidate) -> str:
    return f"{WARN} {c.name}" if c.warnings else c.name


def _row(verdict: str, c: Candidate, rec: Recommendation, score: str, p_best: str,
         why: str) -> dict[str, Any]:
    return {"verdict": verdict, "candidate": _name(c),
            **_metrics(c, rec.memory_figure, rec.quality_assumed), "score": score,
            "P(best)": p_best, "why": why, "warnings": "; ".join(c.warnings)}


def _ranked(verdict: str, r: Ranked, rec: Recommendation) -> dict[str, Any]:
    return _row(verdict, r.candidate, rec, f"{r.score:.2f}", f"{r.p_best:.2f}", r.reason)


def rows(rec: Recommendation) -> list[dict[str, Any]]:
    """One row per candidate: winner, tied, runner-up, rejected; or the guidance's fields."""
    if rec.guidance and rec.advice is not None:
        a = rec.advice
        return [{"field": k, "value": v} for k, v in (
            ("label", GUIDANCE_LABEL), ("target", a.target), ("situation", a.situation),
            ("framework", a.framework), ("precision", a.precision), ("device", a.device),
            ("why", a.reason), ("claim", a.claim), ("measure with", a.measure),
            ("note", a.note), ("runs there", "; ".join(a.alternatives))) if v]
    out = [_ranked("winner", rec.winner, rec)] if rec.winner else []
    out += [_ranked("tied", r, rec) for r in rec.ties]
    out += [_ranked("runner-up", r, rec) for r in rec.runners_up]
    out += [_row("rejected", r.candidate, rec, "", "", "; ".join(r.reasons))
            for r in rec.rejected]
    if not any(r["warnings"] for r in out):
        for r in out:
            del r["warnings"]
    return out


def quality_gap(rec: Recommendation) -> str:
    """What the answer assumed or left out for lack of quality rows, with the command that
    measures it ('' when every candidate has quality)."""
    if not rec.unmeasured_quality:
        return ""
    names = ", ".join(rec.unmeasured_quality)
    if rec.quality_assumed:
        mine = (rec.winner is not None and rec.winner.candidate.name in rec.unmeasured_quality)
        return (f"{WARN} QUALITY ASSUMED, NOT MEASURED for {names}"
                + (" (the winner among them)" if mine else "")
                + f": ranked as if kld_mean <= {fmt(rec.quality_floor)}; measure it: "
                  f"{rec.measure_quality}")
    return (f"NOT RANKED, quality not measured (could be a broken quantization): {names}; "
            f"measure it: {rec.measure_quality}")


def headline(rec: Recommendation) -> str:
    """One line: the winner, the guidance, or why there is none; what it assumed or lacks
    about quality is part of it, never a footnote."""
    if rec.guidance and rec.advice is not None:
        a = rec.advice
        where = rec.target if a.target == rec.target else f"{rec.target} ({a.target})"
        return (f"{GUIDANCE_LABEL.upper()}: for {where}, {a.situation}, the chapter's tree "
                f"suggests {a.framework} {a.precision} on {a.device}; measure it with: "
                f"{a.measure}")
    gap = quality_gap(rec)
    if rec.needs_quality:
        return (f"MEASURE QUALITY FIRST on {rec.target}: none of the "
                f"{len(rec.unmeasured_quality)} measured candidate(s) has a quality row, and "
                f"a winner on speed alone could be a broken quantization; run: "
                f"{rec.measure_quality} (--allow-unmeasured-quality ranks them anyway)")
    if rec.winner is None:
        if rec.eliminated_by:
            head = (f"no candidate on {rec.target} meets the limits: {rec.eliminated_by} "
                    f"eliminated the last one")
            return f"{head}; {gap}" if gap else head
        return f"no measured candidate on {rec.target}"
    head = (f"recommended on {rec.target} (optimize {rec.optimize}): "
            f"{rec.winner.candidate.name} (P(best) {rec.winner.p_best:.2f})")
    if rec.ties:
        head += (f"; TIED (equivalent within ±{rec.tie_margin * 100:g}%) with "
                 f"{', '.join(r.candidate.name for r in rec.ties)} "
                 "(the smaller artifact wins a tie)")
    if rec.quality_assumed:
        return f"{gap} — {head}"
    return f"{head}; {gap}" if gap else head


def markdown(rec: Recommendation, table: str, explain: bool = False) -> str:
    """A markdown section: the headline, ``table`` (rows already as markdown), notes, the
    Snapdragon evidence, steps."""
    parts = [f"## edgebench recommend: {rec.target}", "", f"**{headline(rec)}**", "", table]
    if rec.notes:
        parts += ["", *(f"- {n}" for n in rec.notes)]
    if rec.evidence is not None:
        parts += ["", *evidence_markdown(rec.evidence)]
    if explain:
        parts += ["", "### Steps", "", *(f"{i}. {s}" for i, s in enumerate(rec.steps, 1))]
    return "\n".join(parts)


# --- Snapdragon evidence (decision.snapdragon) ------------------------------------------------

EVIDENCE_TITLE = "Snapdragon evidence by source"
EVIDENCE_COLUMNS = ("model", "precision", "quality", "quality source", "speed", "speed source",
                    "notes")
AT_FLOOR_WORDS = "at the floor (counts as 0)"


def _quality_cell(q: Quality | None) -> str:
    if q is None:
        return "no QNN quality row"
    if q.kld_mean is None:
        kld = "KLD not measured"
    elif q.at_floor:
        kld = f"KLD {AT_FLOOR_WORDS}"
    else:
        kld = f"KLD {fmt(q.kld_mean)}" + (f" ± {fmt(q.kld_stderr)}" if q.kld_stderr else "")
    parts = [f"#{q.position} {kld}"]
    if q.top1_agree is not None:
        parts.append(f"top-1 {q.top1_agree:.1%}")
    if q.ppl is not None:
        ppl, ref = fmt_pair(q.ppl, q.ppl_reference or q.ppl)
        parts.append(f"PPL {ppl}" + (f" vs {ref}" if q.ppl_reference else ""))
    if q.equivalent:
        parts.append(f"equivalent to {', '.join(q.equivalent)}")
    if q.over_limit:
        parts.append("OVER THE KLD LIMIT")
    return ", ".join(parts)


def _speed_cell(line: Line) -> tuple[str, str]:
    if not line.speed:
        return "not measured", ""
    cells = []
    for s in line.speed:
        bits = [f"decode {fmt(s.decode_tok_s)} tok/s" if s.decode_tok_s is not None else "",
                (f"TTFT {fmt(s.ttft_ms)} ms"
                 + (f" ({s.prompt_tokens}-token prompt)" if s.prompt_tokens else ""))
                if s.ttft_ms is not None else ""]
        cells.append((", ".join(b for b in bits if b) or "no figure") + f" on {s.device}")
    return "; ".join(cells), "; ".join(dict.fromkeys(
        f"{s.source} ({s.model} {s.precision})" for s in line.speed))


def evidence_rows(ev: SnapdragonEvidence) -> list[dict[str, str]]:
    """One row per model and precision (:data:`EVIDENCE_COLUMNS`); a line without speed names
    the chapter's claim as its speed source."""
    out = []
    for line in ev.lines:
        speed, source = _speed_cell(line)
        out.append(dict(zip(EVIDENCE_COLUMNS, (
            line.model, line.precision, _quality_cell(line.quality),
            line.quality.source if line.quality else "", speed, source or ev.claim,
            "; ".join(line.notes)))))
    return out


def evidence_lines(ev: SnapdragonEvidence) -> list[str]:
    """The evidence as text: each model's KLD order, a block per model and precision (quality
    and speed, each with its source), the chapter's guidance and claim, notes."""
    out = [f"{EVIDENCE_TITLE} (simulated timings are never speed; the quality limit is KLD "
           f"{fmt(ev.quality_limit)}):", *(f"  {o}" for o in ev.order)]
    for row in evidence_rows(ev):
        out.append(f"  {row['model']} {row['precision']}")
        if row["quality source"] or row["quality"] != "no QNN quality row":
            out.append(f"    quality: {row['quality']} [{row['quality source']}]")
        out.append(f"    speed:   {row['speed']} [{row['speed source']}]")
        if row["notes"]:
            out.append(f"    notes:   {row['notes']}")
    if not ev.lines:
        out.append("  no QNN quality row and no Snapdragon speed row")
    out += [f"  {x}" for x in (*ev.others, ev.guidance, ev.claim) if x]
    out += [f"  note: {n}" for n in ev.notes]
    return out


def evidence_markdown(ev: SnapdragonEvidence) -> list[str]:
    """The evidence as a markdown section (lines): orders, a table, guidance, claim, notes."""
    out = [f"### {EVIDENCE_TITLE}", "",
           f"Simulated timings are never speed; the quality limit is KLD {fmt(ev.quality_limit)}.",
           ""]
    out += [f"- {o}" for o in ev.order]
    rows = evidence_rows(ev)
    if rows:
        cells = [[c.replace("|", "\\|") for c in r.values()] for r in rows]
        out += ["", "| " + " | ".join(EVIDENCE_COLUMNS) + " |",
                "|" + "---|" * len(EVIDENCE_COLUMNS), *("| " + " | ".join(c) + " |" for c in cells)]
    else:
        out.append("- no QNN quality row and no Snapdragon speed row")
    out += [""] + [f"- {x}" for x in (*ev.others, ev.guidance, ev.claim, *ev.notes) if x]
    return out
