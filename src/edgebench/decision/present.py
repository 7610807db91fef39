"""A Recommendation as text and table rows (plain dicts; the CLI renders them)."""

from __future__ import annotations

from typing import Any

from edgebench.decision.model import (
    GUIDANCE_LABEL,
    Candidate,
    Estimate,
    Ranked,
    Recommendation,
    fmt,
)

_COLUMNS = (("decode tok/s", "decode_tok_s"), ("TTFT ms", "ttft_ms"),
            ("peak RSS MB", "peak_rss_mb"), ("model MB", "model_mb"), ("KLD", "kld_mean"))


def _cell(e: Estimate | None) -> str:
    if e is None:
        return ""
    lo, hi = e.interval
    return fmt(e.value) if lo == hi else f"{fmt(e.value)} ({fmt(lo)}-{fmt(hi)})"


def _metrics(c: Candidate) -> dict[str, str]:
    out = {label: _cell(c.metric(m)) for label, m in _COLUMNS}
    inc = c.metric("ppl_increase")
    out["PPL vs ref"] = "" if inc is None else f"{inc.value:+.1%}"
    return out


def _ranked(verdict: str, r: Ranked) -> dict[str, Any]:
    return {"verdict": verdict, "candidate": r.candidate.name, **_metrics(r.candidate),
            "score": f"{r.score:.2f}", "why": r.reason}


def rows(rec: Recommendation) -> list[dict[str, Any]]:
    """One row per candidate: winner, tied, runner-up, rejected; or the guidance's fields."""
    if rec.guidance and rec.advice is not None:
        a = rec.advice
        return [{"field": k, "value": v} for k, v in (
            ("label", GUIDANCE_LABEL), ("target", a.target), ("situation", a.situation),
            ("framework", a.framework), ("precision", a.precision), ("device", a.device),
            ("why", a.reason), ("claim", a.claim), ("measure with", a.measure),
            ("note", a.note), ("runs there", "; ".join(a.alternatives))) if v]
    out = [_ranked("winner", rec.winner)] if rec.winner else []
    out += [_ranked("tied", r) for r in rec.ties]
    out += [_ranked("runner-up", r) for r in rec.runners_up]
    out += [{"verdict": "rejected", "candidate": r.candidate.name, **_metrics(r.candidate),
             "score": "", "why": "; ".join(r.reasons)} for r in rec.rejected]
    return out


def headline(rec: Recommendation) -> str:
    """One line: the winner, the guidance, or why there is none."""
    if rec.guidance and rec.advice is not None:
        a = rec.advice
        where = rec.target if a.target == rec.target else f"{rec.target} ({a.target})"
        return (f"{GUIDANCE_LABEL.upper()}: for {where}, {a.situation}, the chapter's tree "
                f"suggests {a.framework} {a.precision} on {a.device}; measure it with: "
                f"{a.measure}")
    if rec.winner is None:
        if rec.eliminated_by:
            return (f"no candidate on {rec.target} meets the limits: {rec.eliminated_by} "
                    f"eliminated the last one")
        return f"no measured candidate on {rec.target}"
    head = f"recommended on {rec.target} (optimize {rec.optimize}): {rec.winner.candidate.name}"
    if rec.ties:
        head += (f"; TIED within noise with {', '.join(r.candidate.name for r in rec.ties)} "
                 "(the smaller artifact wins a tie)")
    return head


def markdown(rec: Recommendation, table: str, explain: bool = False) -> str:
    """A markdown section: the headline, ``table`` (rows already as markdown), notes, steps."""
    parts = [f"## edgebench recommend: {rec.target}", "", f"**{headline(rec)}**", "", table]
    if rec.notes:
        parts += ["", *(f"- {n}" for n in rec.notes)]
    if explain:
        parts += ["", "### Steps", "", *(f"{i}. {s}" for i, s in enumerate(rec.steps, 1))]
    return "\n".join(parts)
