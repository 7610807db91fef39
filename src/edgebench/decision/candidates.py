"""Store rows (plain dicts) -> the Candidates of one device target, under ``compare``'s rules.

The comparison rules are shared with the report (docs/validity.md, "Comparisons"): a cell
(run_key, hardware, measurement) counts by its latest ``ok`` row, a later failure being a
warning beside it; one hardware fingerprint is ranked unless ``across_machines``; one
(prompt, new tokens) workload; one quality protocol, joined on (model_sha256, framework,
precision, device), preferring the same hardware.

**The quality reference counts as measured.** A speed cell with no quality row of its own whose
framework:precision is the chosen protocol's ``quality_reference``, on ``cpu`` (the device the
reference logits are computed on), gets KLD 0 and the reference perplexity: the measured rows
are compared against its logits, so its distance to them is 0 by definition. (Were the
reference's artifact hash known on both sides, it would have to match; store rows do not carry
``reference_sha256`` yet.) Any other cell without a quality row has no quality. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgebench.decision import compare
from edgebench.decision.model import Candidate, Estimate
from edgebench.decision.targets import Target
from edgebench.errors import ConfigError
from edgebench.harness.registry import suggest

#: A quality row belongs to the speed cells of the same model, runtime, precision, device and
#: KV-cache type (a quantized KV cache has its own quality; null is the runtime's default).
QUALITY_KEY = ("model_sha256", "framework", "precision", "device", "kv_cache")
#: ``harness.corpus.DEFAULT_CORPUS`` (not imported: it pulls in the tokenizers).
DEFAULT_CORPUS = "pydoc-topics-v1"
#: ``edgebench quality``'s defaults (``quality_sweep``): flags equal to them are not written.
QUALITY_DEFAULTS = {"n_ctx": 512, "chunks": 4}


@dataclass(frozen=True)
class CandidateSet:
    """Candidates for one target, with what was left out and why (for ``--explain``), and
    the command that measures the quality of those without it."""

    candidates: tuple[Candidate, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    rows_in_store: int
    measure_quality: str = ""


def candidates_from_rows(rows: list[Mapping[str, Any]], target: Target, *,
                         machine: Mapping[str, Any] | None = None, model: str | None = None,
                         across_machines: bool = False) -> CandidateSet:
    """Speed cells of ``target`` (one model, one hardware, one workload) as Candidates with
    their quality. ``machine``: this machine's facts (``machine_id`` and fingerprint columns).

    Raises:
        ConfigError: the rows hold several models and ``model`` does not pick one, or
            ``model`` names no row of the store (with the closest name).
    """
    steps: list[str] = [f"target {target.name}: {target.description}"]
    notes: list[str] = []
    here = compare.hardware_key(machine) if machine else None
    mid = machine.get("machine_id") if machine else None
    # a sustained run (``sustain_s``) measures what continuous generation does: never a
    # candidate's speed, which is its cell's usual repetitions
    speed = [r for r in rows if r.get("kind") in (None, "speed") and target.matches(r, mid, here)
             and r.get("sustain_s") is None]
    ok = [{**speed[i], "later_failure": w} for i, w in compare.latest_ok(speed)]
    steps.append(f"{len(rows)} row(s) in the store; {len(speed)} speed row(s) on "
                 f"{target.name}; {len(ok)} cell(s) with an ok row (the latest ok row counts)")
    if model is not None:
        known = {str(r.get("model")) for r in rows if r.get("model") is not None}
        if rows and not any(model in (r.get("model"), r.get("model_sha256")) for r in rows):
            raise ConfigError(f"--model {model}: no row of that model in the store"
                              f"{suggest(model, known)}; models there: "
                              f"{', '.join(sorted(known)) or 'none'}")
        ok = [r for r in ok if model in (r.get("model"), r.get("model_sha256"))]
        steps.append(f"--model {model}: {len(ok)} row(s)")
    # the models edgebench measured decide (imported or estimated rows of other models, e.g.
    # Qualcomm's published figures, never make a store "of several models")
    models = sorted({str(r.get("model")) for r in ok if compare.is_measured(r)}
                    or {str(r.get("model")) for r in ok})
    if len(models) == 1 and any(str(r.get("model")) != models[0] for r in ok):
        others = [r for r in ok if str(r.get("model")) != models[0]]
        kinds = ", ".join(sorted({compare.measurement_kind(r) for r in others}))
        notes.append(f"left out {len(others)} row(s) of other models not measured by "
                     f"edgebench ({kinds}): "
                     f"{', '.join(sorted({str(r.get('model')) for r in others}))}")
        ok = [r for r in ok if str(r.get("model")) == models[0]]
    if len(models) > 1:
        raise ConfigError(f"rows of {len(models)} models on {target.name}: "
                          f"{', '.join(models)}; choose one with --model")
    if not ok:
        return CandidateSet((), tuple(steps), tuple(notes), len(rows))
    ok = _one_hardware(ok, here, across_machines, steps, notes)
    ok = _one_workload(ok, steps, notes)
    steps.append(f"model {models[0]}: {len(ok)} row(s)")
    quality, chosen = _quality(rows, ok, steps, notes)
    names = _names(ok)
    out = [_candidate(r, quality.get(id(r)) or {}, names[id(r)]) for r in ok]
    steps.append(f"{sum(c.kld_mean is not None for c in out)} of {len(out)} candidate(s) with "
                 "quality")
    missing = [r for r, c in zip(ok, out) if c.kld_mean is None]
    return CandidateSet(tuple(out), tuple(steps), tuple(notes), len(rows),
                        _command(missing, chosen, list(quality.values())))


def _command(missing: list[Mapping[str, Any]], protocol: tuple | None,
             measured: list[Mapping[str, Any]]) -> str:
    """``edgebench quality <suite> --resume`` for the suites of the rows lacking quality, with
    the flags of the protocol the others were measured under (so the new rows compare)."""
    if not missing:
        return ""
    flags = ""
    if protocol is not None:
        d = dict(zip(compare.PROTOCOL, protocol))
        for key in ("n_ctx", "chunks"):
            if d[key] is not None and int(d[key]) != QUALITY_DEFAULTS[key]:
                flags += f" --{key.replace('_', '-')} {int(d[key])}"
        if d["quality_reference"]:
            flags += f" --reference {d['quality_reference']}"
    corpora = {str(q.get("corpus")) for q in measured if q.get("corpus")} - {DEFAULT_CORPUS}
    flags += "".join(f" --corpus {c}" for c in sorted(corpora))
    suites = sorted({str(r.get("suite")) for r in missing if r.get("suite")}) or ["<suite>"]
    return " && ".join(f"edgebench quality {s} --resume{flags}" for s in suites)


def _counts(rows: list[Mapping[str, Any]], key) -> Counter:
    """Counts of ``key`` over the measured rows (over all rows when none is measured)."""
    return (Counter(key(r) for r in rows if compare.is_measured(r))
            or Counter(key(r) for r in rows))


def _one_hardware(ok: list[dict], here: str | None, across: bool, steps: list[str],
                  notes: list[str]) -> list[dict]:
    every = Counter(compare.hardware_key(r) for r in ok)
    if len(every) == 1:
        steps.append(f"hardware: {next(iter(every))}")
        return ok
    listing = "; ".join(f"{k} ({n} row(s))" for k, n in sorted(every.items()))
    if across:
        line = (f"--across-machines: ranking rows of {len(every)} different hardware "
                f"fingerprints together: {listing}")
        steps.append(line)
        notes.append(line)
        return ok
    hw = compare.choose_hardware(_counts(ok, compare.hardware_key), here)
    why = "this machine's" if hw == here else "the one with most rows"
    left = {k: n for k, n in sorted(every.items()) if k != hw}
    line = (f"ranking one hardware, {hw} ({why}); left out {sum(left.values())} row(s) of "
            f"other hardware: {'; '.join(f'{k} ({n})' for k, n in left.items())} "
            "(--across-machines ranks them together)")
    steps.append(line)
    notes.append(line)
    return [r for r in ok if compare.hardware_key(r) == hw]


def _one_workload(ok: list[dict], steps: list[str], notes: list[str]) -> list[dict]:
    def load(r):  # a context depth is another workload (decode slows as the cache fills), and
        # so is a prompt file (its prompts, not prompt_tokens synthetic IDs)
        return (r.get("prompt_tokens"), r.get("new_tokens"), int(r.get("depth") or 0),
                r.get("prompt_file_sha256"), r.get("prompt_file"))

    loads = _counts(ok, load)
    # the most rows; ties: depth 0 (the chapter's table), the synthetic prompt, then the
    # longer generation, prompt
    (p, n, d, f, fname), _ = max(loads.items(), key=lambda kv: (
        kv[1], -kv[0][2], kv[0][3] is None, kv[0][1] or 0, kv[0][0] or 0))
    at = (f" at depth {d}" if d else "") + (f" with prompt file {fname}" if f else "")
    left = sum(load(r) != (p, n, d, f, fname) for r in ok)
    if left:
        notes.append(f"ranking the {p}-token prompt, {n}-token workload{at}; {left} row(s) of "
                     "other workloads left out")
    steps.append(f"workload {p}+{n} tokens{at}")
    return [r for r in ok if load(r) == (p, n, d, f, fname)]


def _quality(rows: list[Mapping[str, Any]], ok: list[dict], steps: list[str],
             notes: list[str]) -> tuple[dict[int, Mapping[str, Any]], tuple | None]:
    """The quality row of each candidate (by id), all under one protocol, and that protocol
    (None without any); the reference's speed cell gets KLD 0 (module docstring)."""
    qrows = [r for r in rows if r.get("kind") == "quality" and compare.numerics_measured(r)]
    index: dict[tuple, list[Mapping[str, Any]]] = {}
    for i, _ in compare.latest_ok(qrows):
        index.setdefault(tuple(qrows[i].get(k) for k in QUALITY_KEY), []).append(qrows[i])
    mine = {id(r): index.get(tuple(r.get(k) for k in QUALITY_KEY), []) for r in ok}
    counts = Counter(p for qs in mine.values() for p in {compare.protocol(q) for q in qs})
    if not counts:
        return {}, None
    chosen = compare.choose_protocol(counts)
    label = compare.protocol_label(chosen)
    steps.append(f"quality protocol: {label} ({counts[chosen]} of {len(ok)} candidate(s))")
    others = Counter(compare.protocol(q) for qs in mine.values() for q in qs
                     if compare.protocol(q) != chosen)
    if others:
        notes.append(f"quality compared under one protocol: {label} ({counts[chosen]} of "
                     f"{len(ok)} candidate(s)); left out {sum(others.values())} quality row(s) "
                     "of other protocols: " + "; ".join(
                         f"{compare.protocol_label(p)} ({n})" for p, n in sorted(
                             others.items(), key=lambda kv: compare.protocol_label(kv[0]))))
    out: dict[int, Mapping[str, Any]] = {}
    for r in ok:
        qs = [q for q in mine[id(r)] if compare.protocol(q) == chosen]
        if qs:
            out[id(r)] = max(qs, key=lambda q: (
                compare.hardware_key(q) == compare.hardware_key(r),
                q.get("machine_id") == r.get("machine_id"), str(q.get("started_at")),
                str(q.get("run_key"))))
    measured = [q for r in ok if id(r) in out for q in [out[id(r)]]]
    for r in ok:
        if id(r) not in out and _is_reference(r, chosen):
            out[id(r)] = _reference_quality(measured, chosen)
            steps.append(f"{r['framework']} {r['precision']} {r['device']}: no quality row of "
                         f"its own; the quality reference: KLD 0 by definition")
    return out, chosen


def _is_reference(r: Mapping[str, Any], protocol: tuple) -> bool:
    d = dict(zip(compare.PROTOCOL, protocol))
    ref, sha = d["quality_reference"], d["reference_sha256"]
    if not ref or f"{r.get('framework')}:{r.get('precision')}" != ref or r.get("device") != "cpu":
        return False
    if r.get("kv_cache") is not None:  # the reference's logits come from its default KV cache
        return False
    return not (sha and r.get("artifact_sha256") and r.get("artifact_sha256") != sha)


def _reference_quality(measured: list[Mapping[str, Any]], protocol: tuple) -> dict[str, Any]:
    refs = sorted(q["ppl_reference"] for q in measured if _number(q.get("ppl_reference")))
    ppl = refs[len(refs) // 2] if refs else None
    ref = dict(zip(compare.PROTOCOL, protocol))["quality_reference"]
    return {"kld_mean": 0.0, "ppl": ppl, "ppl_reference": ppl, "quality_reference": ref,
            "quality_note": f"the quality reference ({ref}) of {len(measured)} measured "
                            "row(s): KLD 0 by definition, no quality row of its own"}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _names(rows: list[Mapping[str, Any]]) -> dict[int, str]:
    """Unique, short names: framework precision device, plus the measurement kind, threads,
    options, hardware and run_key as far as needed (hardware always when rows span several)."""
    # a KV-cache type imposed is part of what one would ship: always named
    parts = {id(r): [str(r["framework"]), str(r["precision"]), str(r["device"])]
             + ([f"kv:{r['kv_cache']}"] if r.get("kv_cache") else []) for r in rows}
    hw = {id(r): compare.hardware_key(r) for r in rows}
    cpus = {h.split(" · ")[0] for h in hw.values()}
    short = {k: h.split(" · ")[0] if len(cpus) == len(set(hw.values())) else h
             for k, h in hw.items()}
    extras = (lambda r: "" if compare.is_measured(r) else f"({compare.measurement_kind(r)})",
              lambda r: f"{r.get('threads')}t",
              lambda r: "" if r.get("options") in (None, "{}") else str(r.get("options")),
              lambda r: f"@{short[id(r)]}",
              lambda r: f"#{str(r.get('run_key'))[:6]}")
    several = len(set(hw.values())) > 1
    for i, extra in enumerate(extras):
        clashes: dict[str, list] = {}
        for r in rows:
            clashes.setdefault(" ".join(parts[id(r)]), []).append(r)
        tells = any(len({extra(r) for r in rs}) > 1 for rs in clashes.values() if len(rs) > 1)
        if tells or (i == 3 and several):
            for r in rows:
                if x := extra(r):
                    parts[id(r)].append(x)
    return {k: " ".join(p) for k, p in parts.items()}


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _est(row: Mapping[str, Any], m: str) -> Estimate | None:
    v = row.get(m)
    if v is None:
        return None
    samples = tuple(float(x) for x in (row.get(f"{m}_samples") or ()) if _number(x))
    return Estimate(float(v), low=row.get(f"{m}_min"), high=row.get(f"{m}_max"),
                    stdev=row.get(f"{m}_stdev"), n=_int(row.get("repetitions")),
                    samples=samples)


def _candidate(r: Mapping[str, Any], q: Mapping[str, Any], name: str) -> Candidate:
    def quality(m: str) -> Estimate | None:
        v = q.get(m)
        se = q.get("kld_stderr" if m == "kld_mean" else f"{m}_stderr")
        return None if v is None else Estimate(float(v), stderr=se)

    warnings = compare.row_warnings(r) + ([r["later_failure"]] if r.get("later_failure") else [])
    return Candidate(
        framework=r["framework"], precision=r["precision"], device=r["device"],
        model=str(r.get("model") or ""), name=name, machine_id=str(r.get("machine_id") or ""),
        threads=_int(r.get("threads")), measurement=r.get("measurement"),
        decode_tok_s=_est(r, "decode_tok_s"), ttft_ms=_est(r, "ttft_ms"),
        peak_rss_mb=r.get("peak_rss_mb"), peak_mem_mb=r.get("peak_mem_mb"),
        model_bytes=_int(r.get("model_bytes")), j_per_token=r.get("j_per_token"),
        kld_mean=quality("kld_mean"), ppl=quality("ppl"), ppl_reference=q.get("ppl_reference"),
        quality_reference=q.get("quality_reference"), kld_floor=q.get("kld_floor_mean"),
        hardware=compare.hardware_key(r), warnings=tuple(warnings),
        suite=str(r.get("suite") or ""), quality_note=str(q.get("quality_note") or ""),
    )
