"""Named queries over the store; here: the decision module's Candidates for a device target.

The newest row per (run_key, machine_id), as ``api.results`` shows them. Speed rows have
``kind`` 'speed' or NULL (files older than schema 2); each is joined with the newest ``ok``
quality row of the same (model_sha256, framework, precision, device), preferring one from the
same machine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgebench.decision.model import Candidate, Estimate
from edgebench.decision.targets import Target
from edgebench.errors import ConfigError
from edgebench.results.store import VIEW, Store

_COLUMNS = (
    "run_key", "machine_id", "started_at", "kind", "status", "measurement", "model",
    "model_sha256", "framework", "precision", "device", "threads", "prompt_tokens", "new_tokens",
    "repetitions", "cpu_model", "accelerators", "os",
    "decode_tok_s", "decode_tok_s_min", "decode_tok_s_max", "decode_tok_s_stdev",
    "ttft_ms", "ttft_ms_min", "ttft_ms_max", "ttft_ms_stdev",
    "peak_rss_mb", "model_bytes", "j_per_token",
    "kld_mean", "kld_stderr", "ppl", "ppl_stderr", "ppl_reference", "quality_reference",
)
LATEST_SQL = (
    f"SELECT {', '.join(_COLUMNS)} FROM {VIEW} QUALIFY row_number() OVER "
    "(PARTITION BY run_key, machine_id ORDER BY started_at DESC) = 1 "
    "ORDER BY started_at, run_key, machine_id"
)
QUALITY_KEY = ("model_sha256", "framework", "precision", "device")


@dataclass(frozen=True)
class CandidateSet:
    """Candidates for one target, with what was left out and why (for ``--explain``)."""

    candidates: tuple[Candidate, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    rows_in_store: int


def latest_rows(store: Store) -> list[dict[str, Any]]:
    """The newest row per run_key and machine, as dicts (NaN read as None)."""
    if not store.files():
        return []
    df = store.query(LATEST_SQL)
    return [{k: _none(v) for k, v in r.items()} for r in df.to_dict("records")]


def _none(v: Any) -> Any:
    if type(v).__module__ == "numpy":  # numpy scalars -> Python numbers (JSON, hashing)
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def candidates(store: Store, target: Target, *, machine_id: str | None = None,
               model: str | None = None,
               rows: list[Mapping[str, Any]] | None = None) -> CandidateSet:
    """Candidates for ``target`` from ``store`` (see :func:`candidates_from_rows`); ``rows``:
    the store's :func:`latest_rows`, already read (a report asks for many targets)."""
    rows = latest_rows(store) if rows is None else rows
    return candidates_from_rows(rows, target, machine_id=machine_id, model=model)


def candidates_from_rows(rows: list[Mapping[str, Any]], target: Target, *,
                         machine_id: str | None = None,
                         model: str | None = None) -> CandidateSet:
    """Ok speed rows of ``target`` (one model, one workload) as Candidates with their quality.

    When the rows hold several (prompt_tokens, new_tokens) workloads, the one with the most
    rows is ranked and the others are named in the notes.

    Raises:
        ConfigError: the rows hold several models and ``model`` does not pick one.
    """
    steps: list[str] = [f"target {target.name}: {target.description}"]
    notes: list[str] = []
    speed = [r for r in rows if r.get("kind") in (None, "speed")
             and target.matches(r, machine_id)]
    ok = [r for r in speed if r.get("status") == "ok"]
    steps.append(f"{len(rows)} latest row(s) in the store; {len(speed)} speed row(s) on "
                 f"{target.name}, {len(ok)} of them ok")
    if model is not None:
        ok = [r for r in ok if model in (r.get("model"), r.get("model_sha256"))]
        steps.append(f"--model {model}: {len(ok)} row(s)")
    models = sorted({str(r.get("model")) for r in ok})
    if len(models) > 1:
        raise ConfigError(f"rows of {len(models)} models on {target.name}: "
                          f"{', '.join(models)}; choose one with --model")
    if not ok:
        return CandidateSet((), tuple(steps), tuple(notes), len(rows))
    loads = Counter((r.get("prompt_tokens"), r.get("new_tokens")) for r in ok)
    (p, n), _ = max(loads.items(), key=lambda kv: (kv[1], kv[0][1] or 0, kv[0][0] or 0))
    if len(loads) > 1:
        left = sum(c for k, c in loads.items() if k != (p, n))
        notes.append(f"ranking the {p}-token prompt, {n}-token workload; {left} row(s) of "
                     "other workloads left out")
    ok = [r for r in ok if (r.get("prompt_tokens"), r.get("new_tokens")) == (p, n)]
    steps.append(f"model {models[0]}, workload {p}+{n} tokens: {len(ok)} row(s)")
    quality = _quality_index(rows)
    names = _names(ok)
    out = []
    joined = 0
    for r in ok:
        q = _pick_quality(quality.get(tuple(r.get(k) for k in QUALITY_KEY), []), r)
        joined += q is not None
        out.append(_candidate(r, q or {}, names[id(r)]))
    steps.append(f"{joined} of {len(out)} candidate(s) joined with a quality row")
    return CandidateSet(tuple(out), tuple(steps), tuple(notes), len(rows))


def _quality_index(rows: list[Mapping[str, Any]]) -> dict[tuple, list[Mapping[str, Any]]]:
    index: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("kind") == "quality" and r.get("status") == "ok":
            index.setdefault(tuple(r.get(k) for k in QUALITY_KEY), []).append(r)
    return index


def _pick_quality(qs: list[Mapping[str, Any]], row: Mapping[str, Any]) -> Mapping | None:
    if not qs:
        return None
    return max(qs, key=lambda q: (q.get("machine_id") == row.get("machine_id"),
                                  str(q.get("started_at")), str(q.get("run_key"))))


def _names(rows: list[Mapping[str, Any]]) -> dict[int, str]:
    """Unique, short names: framework precision device, plus threads and machine if needed."""
    base = Counter((r["framework"], r["precision"], r["device"]) for r in rows)
    machines = len({r.get("machine_id") for r in rows}) > 1
    threads = any(c > 1 for c in base.values())
    out = {}
    for r in rows:
        parts = [r["framework"], r["precision"], r["device"]]
        if threads:
            parts.append(f"{r.get('threads')}t")
        if machines:
            parts.append(f"@{str(r.get('machine_id'))[:6]}")
        out[id(r)] = " ".join(map(str, parts))
    return out


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

    return Candidate(
        framework=r["framework"], precision=r["precision"], device=r["device"],
        model=str(r.get("model") or ""), name=name, machine_id=str(r.get("machine_id") or ""),
        threads=_int(r.get("threads")), measurement=r.get("measurement"),
        decode_tok_s=_est(r, "decode_tok_s"), ttft_ms=_est(r, "ttft_ms"),
        peak_rss_mb=r.get("peak_rss_mb"), model_bytes=_int(r.get("model_bytes")),
        j_per_token=r.get("j_per_token"), kld_mean=quality("kld_mean"), ppl=quality("ppl"),
        ppl_reference=q.get("ppl_reference"), quality_reference=q.get("quality_reference"),
    )
