"""Store rows for numbers measured elsewhere: identity, provenance and the ``measurement`` kind
filled in one way for every importer (and for estimated rows of a service, e.g. AI Hub)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from edgebench import __version__
from edgebench.results import provenance
from edgebench.results.schema import SCHEMA_VERSION, RunRecord, run_key


def name_sha256(model: str) -> str:
    """A stand-in for ``model_sha256`` where no model file exists here (a model known only by
    its name, e.g. Qualcomm's list): ``name:`` + the sha256 of the name, never taken for a
    file's hash, and distinct per name so different models never share a run_key."""
    return "name:" + hashlib.sha256(model.encode("utf-8", "backslashreplace")).hexdigest()


def elsewhere_id(kind: str, device: str, machine: dict[str, Any] | None = None) -> str:
    """The ``machine_id`` of rows measured on a device edgebench never saw: per kind, device
    name and the source's facts identifying the machine (``machine``, e.g. llama-bench's
    cpu_info and gpu_info), ``elsewhere:`` + 16 hex digits, so they never pass for this
    machine's, and rows from two machines never share one."""
    text = f"{kind}|{device}"
    if machine:
        text += "|" + json.dumps(machine, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
    return "elsewhere:" + digest[:16]


def imported_row(kind: str, *, session_id: str, model: str, framework: str, precision: str,
                 device: str, source: str, model_sha256: str | None = None,
                 prompt_tokens: int | None = None, new_tokens: int | None = None,
                 threads: int | None = None, options: dict[str, Any] | None = None,
                 started_at: datetime | None = None, status: str = "ok",
                 machine: dict[str, Any] | None = None, **columns: Any) -> RunRecord:
    """One speed row of numbers measured elsewhere.

    ``kind``: ``"imported:<format>"`` or ``"estimated"`` (``results.provenance``). The row's
    options carry the kind, so its run_key never equals that of a run edgebench measured
    (the same model, runtime and workload measured here is another cell). ``device`` is the
    device as the source names it; ``columns`` are further store columns (``decode_tok_s``,
    ``ttft_ms``, ``cpu_model``, ``os``, ``job_ids`` ...). ``machine``: what the source says
    identifies the machine it measured on (llama-bench's cpu_info, an AI Hub device name, a
    profile file's hash): hashed into ``machine_id`` and kept in the options (so the run_key of
    another machine's row differs, and neither hides the other as an older run).

    Raises:
        ValueError: an unknown measurement kind, or an unknown column.
    """
    provenance.compose(numerics=kind, timings=kind)  # checks the kind
    facts = {k: v for k, v in (machine or {}).items() if v is not None}
    extra = {"source_machine": facts} if facts else {}
    opts = json.dumps({"source_kind": kind, **(options or {}), **extra}, sort_keys=True)
    sha = model_sha256 or name_sha256(model)
    identity = dict(model_sha256=sha, framework=framework, precision=precision, device=device,
                    prompt_tokens=prompt_tokens, new_tokens=new_tokens, threads=threads,
                    options=opts)
    now = datetime.now(timezone.utc)
    return RunRecord(
        model=model, model_sha256=sha, framework=framework, precision=precision, device=device,
        prompt_tokens=prompt_tokens, new_tokens=new_tokens, threads=threads, options=opts,
        suite=f"import:{kind.split(':', 1)[-1]}", run_key=run_key(identity),
        session_id=session_id, machine_id=elsewhere_id(kind, device, facts),
        started_at=started_at or now, finished_at=now,
        edgebench_version=__version__, schema_version=SCHEMA_VERSION, status=status,
        kind="speed", measurement=kind, source=source, energy_method="none", **columns)
