"""A :class:`GateReport` as text: headline, the loud inconclusive block, table rows, a PR
comment in markdown, JSON, and JUnit XML (``xml.etree``)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from typing import Any

from edgebench.gate.engine import GateReport
from edgebench.gate.verdicts import Finding

#: Text markers (no emoji) of each verdict, as a reviewer scans them.
MARK = {"regressed": "REGRESSED", "inconclusive": "INCONCLUSIVE", "missing": "missing",
        "improved": "improved", "unchanged": "unchanged"}
#: Above this many rows, the markdown comment folds the unchanged ones away.
MD_FOLD = 20


def _num(v: float | None) -> str:
    """A number as people read it: 812, 31.2, 0.0123."""
    if v is None or not math.isfinite(v):
        return "?"
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 1 else "0" if a == 0 else f"{v:.3g}"


def values(f: Finding) -> str:
    """``baseline -> candidate`` (medians, means of chunks, or the single values)."""
    if f.baseline is None and f.candidate is None:
        return ""
    return f"{_num(f.baseline)} -> {_num(f.candidate)}"


def change(f: Finding) -> str:
    """The change with its interval, or what stands in for an interval."""
    if f.change is None:
        return ""
    if f.relative:
        point = f"{(f.change - 1) * 100:+.1f} %"
        ends = [None if v is None or not math.isfinite(v) or v <= 0 else (v - 1) * 100
                for v in (f.low, f.high)]
        inner = ", ".join("?" if e is None else f"{e:+.1f}" for e in ends)
    else:
        point = f"{f.change:+.3g}"
        ends = [None if v is None or not math.isfinite(v) else v for v in (f.low, f.high)]
        inner = ", ".join("?" if e is None else f"{e:+.3g}" for e in ends)
    if f.low is None and f.high is None:
        return f"{point} (single value, no interval)"
    return f"{point} [{inner}]"


def p_text(f: Finding) -> str:
    return "" if f.p_value is None else f"{f.p_value:.2g}"


def verdict_text(f: Finding, strict: bool) -> str:
    if f.verdict == "inconclusive" and strict:
        return "INCONCLUSIVE (fails: --strict)"
    return MARK[f.verdict]


def headline(rep: GateReport) -> str:
    """One short line: PASS or FAIL, the first failing metric, the counts."""
    counts = ", ".join(f"{n} {v}" for v, n in rep.counts().items())
    if rep.exit_code:
        f = rep.failing[0]
        first = f"{f.metric} {change(f).split(' [')[0].split(' (')[0] or f.verdict} on {f.run}"
        more = f" and {len(rep.failing) - 1} more" if len(rep.failing) > 1 else ""
        return f"edgebench gate: FAIL - {first}{more} ({counts})"
    undecided = " - INCONCLUSIVE metrics are not decided" if rep.having("inconclusive") else ""
    return f"edgebench gate: PASS ({counts}){undecided}"


def loud(rep: GateReport) -> list[str]:
    """The inconclusive gated metrics, first and loudly, with what would settle each."""
    inc = rep.having("inconclusive")
    if not inc:
        return []
    fails = "they FAIL this gate (--strict)" if rep.strict else \
        "this gate does not fail on them; --strict would"
    out = [f"!! {len(inc)} gated metric{'s are' if len(inc) != 1 else ' is'} INCONCLUSIVE: "
           f"the data cannot tell change from noise ({fails})"]
    for f in inc:
        need = f"; to settle: {f.needed}" if f.needed else ""
        out.append(f"!!   {f.metric} of {f.run}: {change(f) or '?'} - {f.reason}{need}")
    return out


def rows(rep: GateReport, *, full: bool = True) -> list[dict[str, Any]]:
    """One table row per finding; ``full`` adds the reason and warnings (CSV), which the
    terminal table leaves to the lines below it (:func:`remarks`)."""
    out = []
    for f in rep.findings:
        row = {"run": f.run, "metric": f.metric, "baseline -> candidate": values(f),
               "change [95 % interval]": change(f), "p": p_text(f),
               "verdict": verdict_text(f, rep.strict), "method": f.method,
               "n": "" if f.n_baseline is None else f"{f.n_baseline} vs {f.n_candidate}"}
        if full:
            row.update(why=f.reason, warnings="; ".join(f.warnings))
        out.append(row)
    return out


def remarks(rep: GateReport, limit: int = 10) -> list[str]:
    """Why each regressed or missing metric is so, then the notes (condition differences,
    runtime versions, doubtful rows)."""
    odd = [f for f in rep.findings if f.verdict in ("regressed", "missing")]
    out = [f"{MARK[f.verdict]}: {f.metric} of {f.run}: {f.reason}" for f in odd[:limit]]
    if len(odd) > limit:
        out.append(f"... and {len(odd) - limit} more (--format json lists them all)")
    return out + [f"note: {n}" for n in (*rep.differences, *rep.notes)]


def _side(s: Any) -> str:
    return s.label if s.label == f"session {s.ref}" else f"`{s.ref}` ({s.label})"


def _md_table(found: list[Finding], strict: bool) -> list[str]:
    out = ["| run | metric | baseline -> candidate | change [95 % interval] | p | verdict |",
           "|---|---|---|---|---|---|"]
    for f in found:
        cells = [f.run, f.metric, values(f), change(f), p_text(f),
                 f"**{verdict_text(f, strict)}**" if f.verdict in ("regressed", "inconclusive")
                 else verdict_text(f, strict)]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out


def markdown(rep: GateReport) -> str:
    """A PR comment: the headline in bold, the inconclusive block, one table, then notes."""
    lines = [f"**{headline(rep)}**", ""]
    if inc := loud(rep):
        lines += [f"> {x.removeprefix('!!').strip()}" for x in inc] + [""]
    shown = rep.findings
    quiet = [f for f in rep.findings if f.verdict == "unchanged"]
    if len(rep.findings) > MD_FOLD and quiet:
        shown = [f for f in rep.findings if f.verdict != "unchanged"]
    if shown:
        lines += _md_table(shown, rep.strict)
    if shown is not rep.findings:
        lines += ["", f"<details><summary>{len(quiet)} unchanged</summary>", "",
                  *_md_table(quiet, rep.strict), "", "</details>"]
    lines += ["", f"Baseline: {_side(rep.baseline)}; candidate: {_side(rep.candidate)}; "
                  "thresholds " + ", ".join(f"`{t.text}`" for t in rep.thresholds) + "."]
    lines += [f"- {x}" for x in remarks(rep)]
    return "\n".join(lines)


def to_json(rep: GateReport) -> str:
    return json.dumps(rep.as_dict(), indent=2, default=str)


def junit(rep: GateReport) -> str:
    """JUnit XML: one testcase per run x gated metric; regressed is a failure, inconclusive
    a skip with its reason (a failure under --strict), missing a skip."""
    failures = len(rep.failing)
    skipped = sum(f.verdict in ("inconclusive", "missing") for f in rep.findings) - \
        (len(rep.having("inconclusive")) if rep.strict else 0)
    attrs = {"name": "edgebench gate", "tests": str(len(rep.findings)),
             "failures": str(failures), "errors": "0", "skipped": str(skipped), "time": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {
        **attrs, "name": f"edgebench gate {rep.baseline.ref} -> {rep.candidate.ref}"})
    props = ET.SubElement(suite, "properties")
    for name, val in (("baseline", rep.baseline.label), ("candidate", rep.candidate.label),
                      ("thresholds", " ".join(t.text for t in rep.thresholds)),
                      ("strict", str(rep.strict).lower())):
        ET.SubElement(props, "property", {"name": name, "value": val})
    failing = {id(f) for f in rep.failing}
    for f in rep.findings:
        case = ET.SubElement(suite, "testcase", {"classname": f.run, "name": f.threshold,
                                                 "time": "0"})
        text = f"{values(f)} {change(f)} p={p_text(f) or '-'}: {f.reason}"
        if id(f) in failing:
            el = ET.SubElement(case, "failure", {"type": f.verdict,
                                                 "message": f"{f.verdict}: {f.reason}"})
            el.text = text
        elif f.verdict in ("inconclusive", "missing"):
            need = f"; to settle: {f.needed}" if f.needed else ""
            ET.SubElement(case, "skipped", {"message": f"{f.verdict}: {f.reason}{need}"})
        ET.SubElement(case, "system-out").text = f"{f.verdict}: {text}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
