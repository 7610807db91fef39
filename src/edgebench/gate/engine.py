"""The gate: two sides' rows and the thresholds in, a :class:`GateReport` out.

Refuses (``ConfigError``, exit 2) what cannot be compared: sides that share no run, rows
measured under different conditions (hardware, model file, artifact) unless allowed, a
threshold on a metric neither side has, timing metrics without samples on either side, and a
gate where nothing could be compared at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgebench.decision.compare import row_warnings, value
from edgebench.errors import ConfigError
from edgebench.gate import pairs as P
from edgebench.gate.refs import Side
from edgebench.gate.thresholds import METRICS, SAMPLES, Threshold
from edgebench.gate.verdicts import Finding, has_metric, has_samples, judge, missing

#: Findings are listed in this order: what is undecided first, then what fails.
ORDER = ("inconclusive", "regressed", "missing", "improved", "unchanged")
ALLOW = "--allow-different-conditions"


@dataclass
class GateReport:
    """Everything a gate found; ``exit_code`` is 1 when a gated metric regressed (or, with
    ``strict``, is inconclusive), else 0."""

    baseline: Side
    candidate: Side
    thresholds: list[Threshold]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # allowed condition differences
    strict: bool = False
    margin: float | None = None

    def having(self, verdict: str) -> list[Finding]:
        return [f for f in self.findings if f.verdict == verdict]

    @property
    def failing(self) -> list[Finding]:
        bad = ("regressed", "inconclusive") if self.strict else ("regressed",)
        return [f for f in self.findings if f.verdict in bad]

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def counts(self) -> dict[str, int]:
        return {v: n for v in ORDER if (n := len(self.having(v)))}

    def as_dict(self) -> dict[str, Any]:
        side = lambda s: {"ref": s.ref, "resolved": s.label, "sessions": s.sessions,  # noqa: E731
                          "rows": len(s.rows)}
        return {"result": "fail" if self.exit_code else "pass", "exit_code": self.exit_code,
                "strict": self.strict, "margin": self.margin, "counts": self.counts(),
                "baseline": side(self.baseline), "candidate": side(self.candidate),
                "thresholds": [{"metric": t.metric, "expression": t.text,
                                "relative": t.relative, "limit": t.limit,
                                "explicit": t.explicit, "method": t.spec.method}
                               for t in self.thresholds],
                "differences": self.differences, "notes": self.notes,
                "findings": [f.as_dict() for f in self.findings]}


def _refuse_conditions(both: Sequence[P.Pair], allow: bool) -> list[str]:
    """The condition differences as lines; raises unless ``allow``."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for p in both:
        for d in p.differs:
            seen.setdefault(d, []).append(P.label(p.row))
    lines = [f"{what}: {b!r} vs {c!r} ({len(runs)} run{'s' if len(runs) != 1 else ''}, e.g. "
             f"{runs[0]})" for (what, b, c), runs in seen.items()]
    if lines and not allow:
        raise ConfigError("refused: baseline and candidate were measured under different "
                          f"conditions: {'; '.join(lines)}; compare anyway with {ALLOW}")
    return lines


def _versions(both: Sequence[P.Pair]) -> list[str]:
    out = []
    for p in both:
        vb, vc = p.versions
        if vb != vc and (vb or vc):
            text = f"{value(p.row, 'framework')} {vb or '?'} -> {vc or '?'}"
            if text not in out:
                out.append(text)
    return out


def _thresholds(thresholds: Sequence[Threshold], both: Sequence[P.Pair],
                notes: list[str]) -> list[Threshold]:
    """The thresholds that apply: explicit ones must name a metric some row has; defaults
    apply where both sides have it."""
    base = [p.base.ok for p in both if p.base and p.base.ok]
    cand = [p.cand.ok for p in both if p.cand and p.cand.ok]
    out = []
    for t in thresholds:
        rows_b = [r for r in base if P.kind(r) == t.spec.kind]
        rows_c = [r for r in cand if P.kind(r) == t.spec.kind]
        in_b, in_c = has_metric(rows_b, t.metric), has_metric(rows_c, t.metric)
        if t.explicit and not in_b and not in_c:
            have = [m for m in METRICS if has_metric(base + cand, m)]
            raise ConfigError(f"--fail-on {t.text}: neither side's shared runs have "
                              f"{t.metric}; they have: {', '.join(have) or 'no gateable metric'}")
        if not t.explicit and not (in_b and in_c):
            if in_b or in_c:
                notes.append(f"{t.metric} is not gated (a default): only the "
                             f"{'baseline' if in_b else 'candidate'} has it")
            continue
        if t.spec.method == SAMPLES and not has_samples(rows_b + rows_c, t.metric):
            raise ConfigError(f"{t.metric}: neither side's rows have {t.spec.samples} (only "
                              "medians, e.g. imported rows): a gate needs the repetitions "
                              "of both sides")
        out.append(t)
    if not out:
        raise ConfigError("nothing to gate: the shared runs have none of the default metrics "
                          f"({', '.join(t.metric for t in thresholds)}); name one with --fail-on")
    return out


def _why_absent(entry: P.Entry | None, side: str) -> str | None:
    if entry is None:
        other = "candidate" if side == "baseline" else "baseline"
        return f"only in the {other}: the {side} has no run of it"
    if entry.ok is None:
        msg = str(value(entry.latest, "message") or "no message").splitlines()[0][:120]
        return f"the {side} has no ok row (latest: {value(entry.latest, 'status')}: {msg})"
    return None


def _warnings(p: P.Pair) -> list[str]:
    out = [f"{side}: {w}" for side, e in (("baseline", p.base), ("candidate", p.cand))
           if e is not None and e.ok is not None for w in row_warnings(e.ok)]
    return out + [f"{what} differs" for what, _, _ in p.differs]


def run_gate(baseline: Side, candidate: Side, thresholds: Sequence[Threshold], *,
             margin: float | None = None, strict: bool = False,
             allow_different: bool = False) -> GateReport:
    """Compare every gated metric of every run the two sides share.

    Raises:
        ConfigError: see the module docstring (one line each, naming what is wrong).
    """
    pairs = P.match(baseline.rows, candidate.rows)
    both = [p for p in pairs if p.base is not None and p.cand is not None]
    if not both:
        few_b, few_c = P.unmatched_hint(pairs)
        raise ConfigError(f"baseline {baseline.ref!r} ({baseline.label}) and candidate "
                          f"{candidate.ref!r} ({candidate.label}) share no run: baseline has "
                          f"{few_b}; candidate has {few_c}")
    notes: list[str] = []
    differences = _refuse_conditions(both, allow_different)
    bumps = _versions(both)
    if bumps:
        notes.append(f"runtime version differs: {', '.join(bumps)} (allowed: speed compares "
                     f"across builds; quality only within one build unless {ALLOW})")
    active = _thresholds(thresholds, both, notes)
    findings: list[Finding] = []
    for p in pairs:
        for t in (t for t in active if t.spec.kind == p.kind):
            f = Finding(str(value(p.row, "run_key")), P.label(p.row), p.kind, t.metric, t.text,
                        t.spec.method, "", "", warnings=_warnings(p), versions=p.versions)
            absent = _why_absent(p.base, "baseline") or _why_absent(p.cand, "candidate")
            vb, vc = p.versions
            if absent:
                findings.append(missing(f, absent))
            elif p.kind == "quality" and vb != vc and not allow_different:
                findings.append(missing(f, f"not compared: quality across builds ({vb} vs "
                                           f"{vc}); quantized perplexity moves ~0.4 % between "
                                           f"llama.cpp builds ({ALLOW} compares them)"))
            else:
                findings.append(judge(f, t, p.base.ok, p.cand.ok, margin))
    if not findings or all(f.verdict == "missing" for f in findings):
        why = "; ".join(dict.fromkeys(f.reason for f in findings))
        raise ConfigError(f"nothing could be compared: {why[:400]}")
    busy = [f"{P.label(p.row)} ({', '.join(w)})" for p in both
            if (w := [x for x in _warnings(p) if not x.endswith(" differs")])]
    if busy:
        notes.append(f"doubtful rows, re-measure on a quiet machine: {'; '.join(busy[:5])}"
                     + (f" and {len(busy) - 5} more" if len(busy) > 5 else ""))
    if any(p.loose for p in both):
        notes.append(f"{sum(p.loose for p in both)} run(s) paired across model files "
                     f"({ALLOW})")
    findings.sort(key=lambda f: ORDER.index(f.verdict))
    return GateReport(baseline, candidate, list(active), findings, notes, differences,
                      strict, margin)
