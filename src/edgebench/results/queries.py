"""Named queries over the store; here: the decision module's Candidates for a device target.

The comparison rules are ``edgebench.decision.compare``'s, shared with the report
(docs/validity.md, "Comparisons"): a cell (run_key, hardware, measurement) counts by its
latest ``ok`` row, a later failure being a warning beside it; one hardware fingerprint is
ranked unless ``across_machines``; one (prompt, new tokens) workload; one quality protocol,
joined on (model_sha256, framework, precision, device), preferring the same hardware.
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
from edgebench.results.schema import COLUMNS
from edgebench.results.store import VIEW, Store

_COLUMNS = (
    "run_key", "machine_id", "session_id", "started_at", "kind", "status", "message",
    "measurement", "model", "model_sha256", "framework", "precision", "device", "threads",
    "options", "prompt_tokens", "new_tokens", "repetitions", "cpu_model", "cpu_cores_logical",
    "cpu_cores_physical", "ram_total_mb", "accelerators", "os", "flags", "machine_busy",
    "decode_tok_s", "decode_tok_s_min", "decode_tok_s_max", "decode_tok_s_stdev",
    "ttft_ms", "ttft_ms_min", "ttft_ms_max", "ttft_ms_stdev",
    "peak_rss_mb", "peak_mem_mb", "model_bytes", "j_per_token",
    "kld_mean", "kld_stderr", "kld_floor_mean", "ppl", "ppl_stderr", "ppl_reference",
    *compare.PROTOCOL,
)
QUALITY_KEY = ("model_sha256", "framework", "precision", "device")


@dataclass(frozen=True)
class CandidateSet:
    """Candidates for one target, with what was left out and why (for ``--explain``)."""

    candidates: tuple[Candidate, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    rows_in_store: int


def store_rows(store: Store) -> list[dict[str, Any]]:
    """Every row of the store (all sessions, every status), the columns candidates need."""
    if not store.files():
        return []
    cols = ", ".join(dict.fromkeys(c for c in _COLUMNS if c in COLUMNS))
    return records(store.query(f"SELECT {cols} FROM {VIEW} ORDER BY started_at, run_key"))


def records(df) -> list[dict[str, Any]]:
    """A DataFrame's rows as dicts of plain Python values (NaN/NaT read as None)."""
    return [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]


def _plain(v: Any) -> Any:
    if type(v).__module__ == "numpy":  # numpy scalars -> Python numbers, arrays -> lists
        v = v.tolist()
    if v is None or type(v).__name__ == "NaTType" or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def candidates(store: Store, target: Target, *, machine: Mapping[str, Any] | None = None,
               model: str | None = None, rows: list[Mapping[str, Any]] | None = None,
               across_machines: bool = False) -> CandidateSet:
    """Candidates for ``target`` from ``store`` (see :func:`candidates_from_rows`); ``rows``:
    the store's :func:`store_rows`, already read."""
    rows = store_rows(store) if rows is None else rows
    return candidates_from_rows(rows, target, machine=machine, model=model,
                                across_machines=across_machines)


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
    speed = [r for r in rows if r.get("kind") in (None, "speed") and target.matches(r, mid, here)]
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
    models = sorted({str(r.get("model")) for r in ok})
    if len(models) > 1:
        raise ConfigError(f"rows of {len(models)} models on {target.name}: "
                          f"{', '.join(models)}; choose one with --model")
    if not ok:
        return CandidateSet((), tuple(steps), tuple(notes), len(rows))
    ok = _one_hardware(ok, here, across_machines, steps, notes)
    ok = _one_workload(ok, steps, notes)
    steps.append(f"model {models[0]}: {len(ok)} row(s)")
    quality = _quality(rows, ok, steps, notes)
    names = _names(ok)
    out = [_candidate(r, quality.get(id(r)) or {}, names[id(r)]) for r in ok]
    steps.append(f"{len(quality)} of {len(out)} candidate(s) joined with a quality row")
    return CandidateSet(tuple(out), tuple(steps), tuple(notes), len(rows))


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
    def load(r):
        return r.get("prompt_tokens"), r.get("new_tokens")

    loads = _counts(ok, load)
    (p, n), _ = max(loads.items(), key=lambda kv: (kv[1], kv[0][1] or 0, kv[0][0] or 0))
    left = sum(load(r) != (p, n) for r in ok)
    if left:
        notes.append(f"ranking the {p}-token prompt, {n}-token workload; {left} row(s) of "
                     "other workloads left out")
    steps.append(f"workload {p}+{n} tokens")
    return [r for r in ok if load(r) == (p, n)]


def _quality(rows: list[Mapping[str, Any]], ok: list[dict], steps: list[str],
             notes: list[str]) -> dict[int, Mapping[str, Any]]:
    """The quality row of each candidate (by id), all under one protocol."""
    qrows = [r for r in rows if r.get("kind") == "quality" and compare.is_measured(r)]
    index: dict[tuple, list[Mapping[str, Any]]] = {}
    for i, _ in compare.latest_ok(qrows):
        index.setdefault(tuple(qrows[i].get(k) for k in QUALITY_KEY), []).append(qrows[i])
    mine = {id(r): index.get(tuple(r.get(k) for k in QUALITY_KEY), []) for r in ok}
    counts = Counter(p for qs in mine.values() for p in {compare.protocol(q) for q in qs})
    if not counts:
        return {}
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
    out = {}
    for r in ok:
        qs = [q for q in mine[id(r)] if compare.protocol(q) == chosen]
        if qs:
            out[id(r)] = max(qs, key=lambda q: (
                compare.hardware_key(q) == compare.hardware_key(r),
                q.get("machine_id") == r.get("machine_id"), str(q.get("started_at")),
                str(q.get("run_key"))))
    return out


def _names(rows: list[Mapping[str, Any]]) -> dict[int, str]:
    """Unique, short names: framework precision device, plus the measurement kind, threads,
    options, hardware and run_key as far as needed (hardware always when rows span several)."""
    parts = {id(r): [str(r["framework"]), str(r["precision"]), str(r["device"])] for r in rows}
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


def _est(row: Mapping[str, Any], m: str) -> Estimate | None:
    v = row.get(m)
    if v is None:
        return None
    return Estimate(float(v), low=row.get(f"{m}_min"), high=row.get(f"{m}_max"),
                    stdev=row.get(f"{m}_stdev"), n=_int(row.get("repetitions")))


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
    )
