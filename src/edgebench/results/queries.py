"""Named queries over the store; here: the rows the decision module ranks.

Turning rows into Candidates is the decision layer's (``edgebench.decision.candidates``, pure,
shared with the report); this module reads the store for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgebench.decision import compare
from edgebench.decision.candidates import (  # noqa: F401  (re-exported)
    QUALITY_KEY,
    CandidateSet,
    candidates_from_rows,
)
from edgebench.decision.targets import Target
from edgebench.results.schema import COLUMNS
from edgebench.results.store import VIEW, Store

_COLUMNS = (
    "run_key", "machine_id", "session_id", "started_at", "kind", "status", "message",
    "measurement", "suite", "model", "model_sha256", "framework", "precision", "device",
    "threads", "options", "prompt_tokens", "new_tokens", "repetitions", "artifact_sha256",
    "cpu_model", "cpu_cores_logical", "cpu_cores_physical", "ram_total_mb", "accelerators",
    "os", "flags", "machine_busy",
    "decode_tok_s", "decode_tok_s_min", "decode_tok_s_max", "decode_tok_s_stdev",
    "decode_tok_s_samples", "ttft_ms", "ttft_ms_min", "ttft_ms_max", "ttft_ms_stdev",
    "ttft_ms_samples", "peak_rss_mb", "peak_mem_mb", "model_bytes", "j_per_token",
    "kld_mean", "kld_stderr", "kld_floor_mean", "kld_p99", "top1_agree", "ppl", "ppl_stderr",
    "ppl_reference", "corpus", "device_name", "runtime_settings", "framework_version",
    "bits_per_weight", "accel_nodes", "cpu_nodes", "sustain_s", "depth",
    "kv_cache", "kv_cache_mb", "prompt_file", "prompt_file_sha256",
    *compare.PROTOCOL,
)


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


def candidates(store: Store, target: Target, *, machine: Mapping[str, Any] | None = None,
               model: str | None = None, rows: list[Mapping[str, Any]] | None = None,
               across_machines: bool = False) -> CandidateSet:
    """Candidates for ``target`` from ``store`` (see ``decision.candidates``); ``rows``: the
    store's :func:`store_rows`, already read."""
    rows = store_rows(store) if rows is None else rows
    return candidates_from_rows(rows, target, machine=machine, model=model,
                                across_machines=across_machines)
