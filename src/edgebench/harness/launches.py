"""Several launches of one cell -> one row (``edgebench run --launches N``).

Repetitions inside one process share its memory layout, thread placement and warm caches, so
their spread misses the variance between processes. With ``--launches N`` every cell is
measured in N fresh processes, the cells interleaved (launch 1 of every cell, then launch 2 ...)
so slow drifts of the machine spread over all cells instead of landing on one. The launches of
a cell become one row: its samples are all the launches' repetitions, in launch order, and
``sample_launch`` keeps the launch index of each (the statistics resample by launch).

Pure: rows in, a row out.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

from edgebench.harness import metrics
from edgebench.results.schema import RunRecord

#: Per-run scalars summarised over launches by their median (each launch measured them once).
_MEDIAN = ("load_s", "runtime_ttft_ms", "runtime_decode_tok_s", "ttft_disagree_pct",
           "decode_disagree_pct")
#: Memory figures: the largest launch's (a peak is a peak).
_MAX = ("peak_rss_mb", "rss_delta_mb", "system_used_peak_mb", "peak_mem_mb", "vm_hwm_mb",
        "rss_anon_mb", "rss_file_mb", "accel_peak_mb")


def _median(values: list) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def _max(values: list) -> float | None:
    xs = [v for v in values if v is not None]
    return max(xs) if xs else None


def merge(launches: list[RunRecord]) -> RunRecord:
    """One row from the rows of one cell's launches, in launch order.

    The ok launches' samples are pooled and summarised again (metrics.summarize); failed
    launches are named in the message and flagged ``launch-failed``. With no ok launch the
    last launch's row is returned as it is.
    """
    if not launches:
        raise ValueError("no launches to merge")
    ok = [(i, r) for i, r in enumerate(launches) if r.status == "ok"]
    failed = [(i, r) for i, r in enumerate(launches) if r.status != "ok"]
    if not ok:
        return replace(launches[-1], launches=len(launches))
    first = ok[0][1]
    cols: dict = {}
    for m in metrics.TIMING_METRICS:
        cols.update(metrics.summary_columns(
            m, [x for _, r in ok for x in (getattr(r, f"{m}_samples") or [])]))
    cols["sample_launch"] = [i for i, r in ok for _ in range(len(r.decode_tok_s_samples or []))]
    cols["token_ms_samples"] = [t for _, r in ok for t in (r.token_ms_samples or [])]
    for c in _MEDIAN:
        cols[c] = _median([getattr(r, c) for _, r in ok])
    for c in _MAX:
        cols[c] = _max([getattr(r, c) for _, r in ok])
    cols["mem_baseline_mb"] = _median([r.mem_baseline_mb for _, r in ok])
    busy = [r.machine_busy for _, r in ok if r.machine_busy is not None]
    cols["machine_busy"] = any(busy) if busy else None
    evidence = [json.loads(r.busy_evidence) for _, r in ok if r.busy_evidence]
    cols["busy_evidence"] = json.dumps(evidence) if evidence else None
    flags = sorted({f for _, r in ok for f in (r.flags or [])}
                   | ({"launch-failed"} if failed else set()))
    cols["flags"] = flags or None
    outputs = {tuple(r.output_ids or ()) for _, r in ok}
    if len(outputs) > 1:  # greedy decoding must not change between processes
        cols["flags"] = sorted({*(cols["flags"] or []), "output-differs-between-launches"})
    msg = "; ".join(f"launch {i + 1} {r.status}: {r.message}" for i, r in failed) or None
    return replace(first, **cols, launches=len(ok), message=msg,
                   finished_at=ok[-1][1].finished_at)
