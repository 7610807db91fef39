"""What is known about a Snapdragon, per model and precision, each part labelled by its source.

``recommend --device snapdragon`` ranks measured speed rows as on any target; beside that,
:func:`evidence` combines for each (model, precision) of QNN:

- **quality** from ``qnn`` quality rows whose numerics are measured (``results.provenance``):
  on x86-64 the HTP simulator's (the NPU's quantized arithmetic, an emulator's clock),
  labelled "simulated numerics"; one protocol per model; ordered on KLD only, and called
  equivalent where the KLD intervals (±2 stderr) overlap;
- **speed** from Snapdragon speed rows whose timings are ``estimated`` (AI Hub),
  ``imported:*`` or measured on a Snapdragon, matched to quality by equal precision names only
  (no mapping is assumed) and saying so when the speed row is of another model;
- otherwise the chapter's guidance and QNN claim, labelled as not measured.

Simulated timings are never speed. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edgebench.decision import compare, tree
from edgebench.decision.model import fmt
from edgebench.decision.objective import Constraints
from edgebench.decision.targets import TARGETS
from edgebench.results import provenance

#: The qnn runner's device for Qualcomm's x86-64 HTP simulator (``runners.qnn.SIMULATOR``).
SIMULATOR = "htp-simulator"
#: Device names of a real Hexagon NPU (the device axis, the runtime's own name).
NPU_DEVICES = ("htp", "htp-npu")
#: Frameworks whose estimated or imported speed rows are Snapdragon figures by definition.
SPEED_FRAMEWORKS = ("qnn", "qai-hub")
CLAIM_LABEL = "chapter claim, not measured"
GUIDANCE_LABEL = "chapter guidance, not measured"
EQUIVALENT = "equivalent: KLD intervals (±2 stderr) overlap"
_Row = Mapping[str, Any]


@dataclass(frozen=True)
class Quality:
    """A QNN quality row's numbers, its place in its model's KLD order and its source."""

    kld_mean: float | None
    kld_stderr: float | None
    kld_p99: float | None
    top1_agree: float | None
    ppl: float | None
    ppl_reference: float | None
    at_floor: bool
    position: int  # 1: the least KLD among the model's precisions (quality only)
    equivalent: tuple[str, ...]  # precisions whose KLD interval overlaps this one's
    over_limit: bool
    device: str
    source: str


@dataclass(frozen=True)
class Speed:
    """A Snapdragon speed figure (never a simulator's) and where it comes from."""

    model: str
    framework: str
    precision: str
    device: str
    measurement: str  # the timings kind: measured, estimated or imported:<format>
    decode_tok_s: float | None
    ttft_ms: float | None
    source: str
    prompt_tokens: int | None  # the prompt the TTFT is of
    whose: str  # "Qualcomm's figure", ...: for the note when the model differs


@dataclass(frozen=True)
class Line:
    """One (model, precision): its quality (None: speed only) and the speed rows matched to it."""

    model: str
    precision: str
    quality: Quality | None
    speed: tuple[Speed, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SnapdragonEvidence:
    """Lines in each model's KLD order, then speed-only lines; ``order`` says each model's
    order in words; ``guidance`` and ``claim`` are set where a line has no speed."""

    lines: tuple[Line, ...]
    order: tuple[str, ...]
    quality_limit: float
    guidance: str = ""
    claim: str = ""
    notes: tuple[str, ...] = ()
    #: per model, the other runtimes' KLD under the same protocol, to weigh the NPU's loss
    others: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def evidence(rows: Sequence[_Row], *, model: str | None = None,
             constraints: Constraints | None = None,
             optimize: str = "balanced") -> SnapdragonEvidence:
    """The Snapdragon evidence of store ``rows`` (plain dicts of store columns).

    Args:
        rows: store rows, every kind and status.
        model: only this model's quality rows (name or sha256); speed rows of every model are
            kept, labelled with their model.
        constraints: ``quality_floor`` (``--max-kld``, else the default) marks precisions over
            it; ``optimize`` and the limits pick the chapter's branch.
    """
    limits = constraints or Constraints()
    notes: list[str] = []
    speeds = _speed_rows(rows, notes)
    lines: list[Line] = []
    order: list[str] = []
    others: list[str] = []
    for name, (qrows, protocol) in _quality_rows(rows, model, notes).items():
        ranked = _rank(qrows, limits.quality_floor)
        order.append(_order_text(name, ranked))
        lines += [Line(name, p, q, ()) for p, q in ranked]
        if line := _others(rows, name, protocol):
            others.append(line)
    lines = _attach(lines, speeds)
    if not any(line.quality for line in lines):
        notes.append("no QNN quality row" + (f" of {model}" if model else "") + ": measure it "
                     "on any x86-64 machine with `edgebench quality snapdragon` (HTP simulator)")
    if limits.max_kld is None and any(line.quality and line.quality.over_limit
                                      for line in lines):
        notes.append(f"over the limit: KLD above the default quality floor "
                     f"{fmt(limits.quality_floor)} (--max-kld sets another)")
    guidance = claim = ""
    if not lines or any(not line.speed for line in lines):
        a = tree.advise(TARGETS["snapdragon"], optimize, limits)
        guidance = (f"{GUIDANCE_LABEL}: {a.framework} {a.precision} on {a.device} "
                    f"({a.situation}): {a.reason}")
        q, memory, speedup, use = tree.CLAIMS["QNN"]
        claim = f"{CLAIM_LABEL}: QNN {q}: memory {memory}, speed-up {speedup} ({use})"
    return SnapdragonEvidence(tuple(lines), tuple(order), limits.quality_floor, guidance, claim,
                              tuple(notes), tuple(others))


def _of(row: _Row, model: str | None) -> bool:
    return model is None or model in (compare.value(row, "model"),
                                      compare.value(row, "model_sha256"))


def _is_npu(row: _Row) -> bool:
    return bool({compare.value(row, "device"), compare.value(row, "device_name")}
                & set(NPU_DEVICES))


def _quality_rows(rows: Sequence[_Row], model: str | None,
                  notes: list[str]) -> dict[str, tuple[list[_Row], tuple]]:
    """Per model, one latest ok row per precision under the model's most common protocol (a
    real NPU's row before the simulator's, then the newest), and that protocol."""
    qrows = [r for r in rows if compare.value(r, "framework") == "qnn"
             and compare.value(r, "kind") == "quality" and compare.numerics_measured(r)
             and _of(r, model)]
    by_model: dict[str, list[_Row]] = {}
    for i, _ in compare.latest_ok(qrows):
        by_model.setdefault(str(compare.value(qrows[i], "model")), []).append(qrows[i])
    out: dict[str, tuple[list[_Row], tuple]] = {}
    for name, rs in sorted(by_model.items()):
        counts = Counter(compare.protocol(r) for r in rs)
        chosen = compare.choose_protocol(counts)
        if len(counts) > 1:
            notes.append(f"{name}: QNN quality compared under one protocol, "
                         f"{compare.protocol_label(chosen)}; left out "
                         f"{len(rs) - counts[chosen]} row(s) of other protocols")
        keep: dict[str, _Row] = {}
        for r in sorted((r for r in rs if compare.protocol(r) == chosen),
                        key=lambda r: (_is_npu(r), str(compare.value(r, "started_at")))):
            keep[str(compare.value(r, "precision"))] = r  # the last (preferred) wins
        if counts[chosen] > len(keep):
            notes.append(f"{name}: one QNN quality row per precision (a real NPU's before the "
                         f"simulator's, then the newest); left out "
                         f"{counts[chosen] - len(keep)} row(s)")
        out[name] = list(keep.values()), chosen
    return out


def _others(rows: Sequence[_Row], model: str, protocol: tuple) -> str:
    """The other runtimes' KLD for ``model`` under ``protocol`` (their latest ok quality rows
    with measured numerics), least first: what the NPU's precision loss is weighed against."""
    qrows = [r for r in rows if compare.value(r, "kind") == "quality"
             and compare.value(r, "framework") != "qnn" and compare.numerics_measured(r)
             and str(compare.value(r, "model")) == model and compare.protocol(r) == protocol
             and compare.value(r, "kld_mean") is not None
             and f"{compare.value(r, 'framework')}:{compare.value(r, 'precision')}"
             != compare.value(r, "quality_reference")]  # the reference itself: KLD 0
    found = sorted((qrows[i] for i, _ in compare.latest_ok(qrows)),
                   key=lambda r: (compare.value(r, "kld_mean"), str(compare.value(r, "framework")),
                                  str(compare.value(r, "precision"))))
    if not found:
        return ""
    return (f"{model}, other runtimes under the same protocol (KLD, for weighing the NPU's "
            "precision loss): " + "; ".join(
                f"{compare.value(r, 'framework')} {compare.value(r, 'precision')} "
                f"{compare.value(r, 'device')} {fmt(compare.value(r, 'kld_mean'))}"
                for r in found))


def _interval(row: _Row) -> tuple[float, float] | None:
    kld = compare.value(row, "kld_mean")
    if kld is None:
        return None
    if compare.at_floor(kld, compare.value(row, "kld_floor_mean")):
        return 0.0, 0.0  # at the floor counts as 0, the reference's own value
    se = compare.value(row, "kld_stderr") or 0.0
    return kld - 2 * se, kld + 2 * se


def _effective(row: _Row) -> float | None:
    iv = _interval(row)
    return None if iv is None else (0.0 if iv == (0.0, 0.0) else compare.value(row, "kld_mean"))


def _overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def _rank(rows: list[_Row], limit: float) -> list[tuple[str, Quality]]:
    """(precision, Quality) in KLD order (at the floor: 0; no KLD: last), quality only."""
    def key(r: _Row) -> tuple:
        k = _effective(r)
        return k is None, k or 0.0, str(compare.value(r, "precision"))

    ordered = sorted(rows, key=key)
    out = []
    for pos, r in enumerate(ordered, 1):
        iv, k = _interval(r), _effective(r)
        same = tuple(str(compare.value(o, "precision")) for o in ordered
                     if o is not r and _overlap(iv, _interval(o)))
        v = {c: compare.value(r, c) for c in ("kld_mean", "kld_stderr", "kld_p99", "top1_agree",
                                              "ppl", "ppl_reference")}
        out.append((str(compare.value(r, "precision")), Quality(
            **v, at_floor=iv == (0.0, 0.0), position=pos, equivalent=same,
            over_limit=k is not None and k > limit,
            device=str(compare.value(r, "device") or ""), source=_quality_source(r))))
    return out


def _order_text(model: str, ranked: list[tuple[str, Quality]]) -> str:
    text = ranked[0][0]
    for (prev, _), (p, q) in zip(ranked, ranked[1:]):
        text += f" ≈ {p}" if prev in q.equivalent else f" < {p}"
    return (f"{model} on QNN, by KLD (quality only, never simulated speed): {text}"
            + (f" (≈ {EQUIVALENT})" if "≈" in text else ""))


def _quality_source(row: _Row) -> str:
    device = compare.value(row, "device")
    if SIMULATOR in (device, compare.value(row, "device_name")):
        return ("simulated numerics: QNN HTP simulator on x86-64 (the NPU's quantized "
                "arithmetic)" + _version(row))
    if _is_npu(row):
        return "measured on a Snapdragon NPU" + _version(row)
    return f"measured on {device}" + _version(row)


def _version(row: _Row) -> str:
    try:
        settings = json.loads(compare.value(row, "runtime_settings") or "{}")
    except (TypeError, ValueError):
        settings = {}
    qnn = settings.get("qnn_version") if isinstance(settings, dict) else None
    if qnn and qnn != "?":
        return f", QNN {qnn}"
    ort = compare.value(row, "framework_version")
    return f", onnxruntime-qnn {ort}" if ort else ""


def _speed_rows(rows: Sequence[_Row], notes: list[str]) -> list[Speed]:
    """The latest ok Snapdragon speed row of each cell whose timings are not simulated."""
    snapdragon = TARGETS["snapdragon"]
    keep, simulated = [], 0
    for r in rows:
        if compare.value(r, "kind") not in (None, "speed"):
            continue
        timings = provenance.kind(compare.value(r, "measurement"), "timings")
        if timings == provenance.SIMULATED:
            simulated += 1
        elif timings == provenance.MEASURED:
            if snapdragon.matches(r):
                keep.append(r)
        elif (timings == provenance.ESTIMATED or timings.startswith(f"{provenance.IMPORTED}:")) \
                and (compare.value(r, "framework") in SPEED_FRAMEWORKS or snapdragon.matches(r)):
            keep.append(r)
    if simulated:
        notes.append(f"{simulated} simulated speed row(s) left out: an emulator's timings are "
                     "never speed")
    return [_speed(keep[i]) for i, _ in compare.latest_ok(keep)]


def _speed(r: _Row) -> Speed:
    timings = provenance.kind(compare.value(r, "measurement"), "timings")
    fw, device = str(compare.value(r, "framework")), str(compare.value(r, "device") or "?")
    where = compare.value(r, "device_name") or device
    if timings == provenance.MEASURED:
        cpu = compare.value(r, "cpu_model")
        source = f"measured on a Snapdragon: {fw} on {where}" + (f" ({cpu})" if cpu else "")
        whose = "a measurement"
    elif timings == provenance.ESTIMATED:
        source = (f"estimated by Qualcomm AI Hub on {where}" if fw == "qai-hub"
                  else f"estimated ({fw}) on {where}")
        whose = "Qualcomm AI Hub's estimate" if fw == "qai-hub" else "an estimate"
    else:
        fmt_ = timings.split(":", 1)[1]
        qualcomm = fmt_.startswith("qai-hub")
        hub = fmt_.startswith("ai-hub")
        what = ("Qualcomm's published figure" if qualcomm else
                "estimated by Qualcomm AI Hub" if hub else "measured elsewhere")
        source = f"imported ({fmt_}): {what} on {where}"
        whose = ("Qualcomm's figure" if qualcomm else "Qualcomm AI Hub's estimate" if hub
                 else f"an imported {fmt_} figure")
    prompt = compare.value(r, "prompt_tokens")
    return Speed(str(compare.value(r, "model")), fw, str(compare.value(r, "precision")), where,
                 timings, compare.value(r, "decode_tok_s"), compare.value(r, "ttft_ms"), source,
                 int(prompt) if prompt else None, whose)


def _attach(lines: list[Line], speeds: list[Speed]) -> list[Line]:
    """Each speed row goes to the quality lines of its precision name (its own model's if any),
    else to a line of its own: precisions are never mapped onto one another."""
    matched: dict[int, list[Speed]] = {}
    alone: dict[tuple[str, str], list[Speed]] = {}
    for s in speeds:
        same = [i for i, ln in enumerate(lines) if ln.precision.lower() == s.precision.lower()]
        own = [i for i in same if lines[i].model == s.model]
        for i in own or same:
            matched.setdefault(i, []).append(s)
        if not same:
            alone.setdefault((s.model, s.precision), []).append(s)
    out = []
    for i, ln in enumerate(lines):
        sp = tuple(matched.get(i, ()))
        notes = tuple(f"speed is {s.whose} for {s.model}, not {ln.model}" for s in sp
                      if s.model != ln.model)
        out.append(Line(ln.model, ln.precision, ln.quality, sp, notes))
    for (m, p), sp in alone.items():
        out.append(Line(m, p, None, tuple(sp), (
            f"no QNN quality row of precision {p}: speed only (no precision mapping is "
            "assumed)",)))
    return out
