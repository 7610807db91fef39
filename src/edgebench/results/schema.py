"""RunRecord: one row per planned run, whatever its outcome; its Arrow schema and run_key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from edgebench.harness.metrics import TIMING_METRICS

#: Bumped whenever a column changes meaning, type or name. Checked on every read.
SCHEMA_VERSION = 9
#: Older versions this one reads: their files lack only columns added since (read as null).
#: v2 added ``kind`` and the quality columns; v3 the validity columns (flags, machine_busy,
#: launches, the kernel's memory figures, runtime cross-checks, the KLD floor); v4 the
#: per-chunk quality values that paired comparisons resample (``chunk_nll``, ``chunk_kld``);
#: v5 where an accelerator execution provider ran the graph (``accel_nodes``, ``cpu_nodes``);
#: v6 numbers from elsewhere (``source``, ``job_ids``, ``gpu_nodes``, ``peak_mem_range_mb``,
#: ``ttft_ms_extrapolated``); v7 energy net of idle, telemetry, the roofline and sustained runs;
#: v8 the context-depth axis (``depth``: tokens in the KV cache before the measured prompt);
#: v9 the KV-cache type axis (``kv_cache``, ``kv_cache_mb``, ``kv_cache_method``) and prompt
#: files (``prompt_file``, ``prompt_file_sha256``, ``prompt_lengths``).
UPGRADABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8)
KINDS = ("speed", "quality")

STATUSES = ("ok", "error", "timeout", "unavailable", "skipped")
#: Fields whose values make up a run's identity, hashed into ``run_key``.
IDENTITY_FIELDS = (
    "model_sha256", "framework", "precision", "device",
    "prompt_tokens", "new_tokens", "threads", "options",
)
#: Identity axes added after schema v2, with the value every earlier row implicitly had. An
#: axis at its default is left out of the hash, so adding one (e.g. a context depth or a KV
#: cache type) keeps every existing run_key: ``gate`` and ``--resume`` still match old rows.
#: ``tests/test_run_key_stability.py`` checks this against a committed v2 row.
LATER_IDENTITY_DEFAULTS: dict[str, Any] = {"sustain_s": None, "depth": 0, "kv_cache": None,
                                           "prompt_file_sha256": None}


def run_key(identity: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of the identity fields (key order and extra keys ignored).

    A row's ``kind`` joins the identity when it is not ``speed``, so speed keys are those of v1;
    a quality row's protocol joins it too: corpus hash, n_ctx, chunk count, the reference
    (``framework:precision`` and its artifact's hash) and how the reference is stored, so a
    rerun against another reference is another row, never skipped by ``--resume``.
    """
    canon = {k: identity.get(k) for k in IDENTITY_FIELDS}
    canon.update({k: identity[k] for k, default in LATER_IDENTITY_DEFAULTS.items()
                  if identity.get(k, default) != default})
    if identity.get("kind") not in (None, "speed"):
        canon.update({k: identity.get(k) for k in (
            "kind", "corpus_sha256", "chunks", "n_ctx", "quality_reference", "reference_sha256",
            "reference_storage")})
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _timing_fields() -> dict[str, Any]:
    """The headline (median) column of each timing metric and its spread columns."""
    out: dict[str, Any] = {}
    for m in TIMING_METRICS:
        out[m] = float | None
        for suffix in ("mean", "stdev", "cv", "min", "max"):
            out[f"{m}_{suffix}"] = float | None
        out[f"{m}_samples"] = list[float] | None
    return out


@dataclass
class _Base:
    # identity
    model: str
    model_sha256: str | None
    framework: str
    precision: str
    device: str
    prompt_tokens: int
    new_tokens: int
    threads: int
    options: str  # canonical JSON of runtime options
    suite: str | None
    # provenance
    run_key: str
    session_id: str
    machine_id: str
    started_at: datetime
    finished_at: datetime | None
    edgebench_version: str
    schema_version: int
    # outcome
    status: str
    message: str | None = None


# Everything below is optional; timing columns are generated from TIMING_METRICS.
_OPTIONAL: dict[str, Any] = {
    "framework_version": str | None,
    "device_name": str | None,  # the device as the runtime named it
    # what the runner really applied at load (JSON): the suite's options plus its own settings,
    # e.g. threads, MLX compute_dtype, OpenVINO enable_prefix_caching
    "runtime_settings": str | None,
    "artifact_format": str | None,
    "artifact_sha256": str | None,
    "artifact_path": str | None,
    "model_bytes": int | None,
    "artifact_precision_class": str | None,  # ultra-low / low / medium / high
    "bits_per_weight": float | None,  # measured from the artifact: weight bytes x 8 / params
    "prompt_ids_sha256": str | None,
    "repetitions": int | None,
    "warmup": int | None,
    "cooldown_s": float | None,
    "timeout_s": float | None,
    # measured | estimated | simulated | imported:<format>, or per part where a row mixes
    # them: "numerics=measured;timings=simulated" (results.provenance)
    "measurement": str | None,
    "cpu_model": str | None,
    "cpu_flags": str | None,
    "cpu_cores_physical": int | None,
    "cpu_cores_logical": int | None,
    "ram_total_mb": float | None,
    "os": str | None,
    "python_version": str | None,
    "accelerators": str | None,
    "load_s": float | None,
    "peak_rss_mb": float | None,
    "rss_baseline_mb": float | None,
    "rss_delta_mb": float | None,
    "system_used_peak_mb": float | None,
    "memory_method": str | None,
    "energy_j": float | None,
    "j_per_token": float | None,
    "energy_method": str | None,
    **_timing_fields(),
    "token_ms_samples": list[list[float]] | None,  # per repetition: t_i - t0 for each token
    "output_ids": list[int] | None,  # tokens generated in the first timed repetition
    # consistency check (`edgebench check`): greedy tokens agreeing with the reference runtime
    "agree_tokens": int | None,
    "agree_reference": str | None,  # "framework:precision" of the reference
    # what the row measured: "speed" (None in v1 files means speed) or "quality"
    "kind": str | None,
    # quality rows (`edgebench quality`, METRICS.md): llama-perplexity protocol on a corpus
    "quality_method": str | None,  # e.g. "full-vocabulary logits", or why there are none
    "corpus": str | None,  # corpus name, e.g. "pydoc-topics-v1" or a file name
    "corpus_sha256": str | None,
    "n_ctx": int | None,  # chunk length; the second half of each chunk is scored
    "chunks": int | None,
    "tokens_scored": int | None,
    "scored_tok_s": float | None,  # tokens scored per second (the logits passes, wall clock)
    "ppl": float | None,
    "ppl_stderr": float | None,
    "quality_reference": str | None,  # "framework:precision" whose logits KLD is against
    "ppl_reference": float | None,  # the reference's perplexity on the same chunks
    "kld_mean": float | None,
    "kld_p99": float | None,
    "kld_stderr": float | None,
    "top1_agree": float | None,  # share of scored positions whose argmax matches the reference
    # --- v3: validity ---
    # warnings about what a number means, e.g. "machine-busy", "timing-disagreement"
    "flags": list[str] | None,
    "threads_applied": bool | None,  # whether the runtime really took the `threads` setting
    # noise: other work on the machine before/during the run (docs/validity.md thresholds)
    "machine_busy": bool | None,
    "busy_evidence": str | None,  # JSON: load averages, steal %, others' CPU share
    # --launches N: the cell measured in N fresh processes; launch index of each sample
    "launches": int | None,
    "sample_launch": list[int] | None,
    # memory (docs/validity.md): the kernel's exact figures of the measuring process
    "peak_mem_mb": float | None,  # THE memory figure ranked and reported (see docs)
    "mem_baseline_mb": float | None,  # the child's RSS before it imported the runtime
    "vm_hwm_mb": float | None,  # kernel high-water mark of resident memory (VmHWM)
    "rss_anon_mb": float | None,  # RssAnon at the end of the run
    "rss_file_mb": float | None,  # RssFile (mapped files: mmapped weights) at the end
    "accel_peak_mb": float | None,  # accelerator memory peak where the runtime reports it
    "accel_memory_method": str | None,
    # the runtime's own timing of the same repetitions, against edgebench's token stamps
    "runtime_ttft_ms": float | None,
    "runtime_decode_tok_s": float | None,
    "ttft_disagree_pct": float | None,  # (edgebench - runtime) / runtime x 100, medians
    "decode_disagree_pct": float | None,
    # quality: the reference's storage floor (reference scored against its own stored copy)
    "kld_floor_mean": float | None,
    "kld_floor_p99": float | None,
    "reference_storage": str | None,  # how the reference log-probs are stored
    # --- v4: per-chunk quality, in chunk order (every candidate scores the same chunks, so
    # two rows compare paired, chunk by chunk: edgebench.stats.block_bootstrap)
    "chunk_nll": list[float] | None,  # mean negative log-likelihood of each chunk
    "chunk_kld": list[float] | None,  # mean KL divergence from the reference of each chunk
    # --- v5: graph placement, for runtimes that split a graph between execution providers
    # (QNN): how many nodes the accelerator's provider took and how many fell back to the CPU.
    # A row whose graph ran mostly on the CPU is not an accelerator measurement.
    "accel_nodes": int | None,
    "cpu_nodes": int | None,
    # --- v6: numbers measured elsewhere (``measurement`` estimated or imported:<format>)
    # where they come from: the service, tool or file (with its sha256) and its version
    "source": str | None,
    # the service's job ids (Qualcomm AI Hub: compile, quantize, profile), comma-separated
    "job_ids": str | None,
    # layers or nodes the GPU took (AI Hub's compute-unit breakdown: NPU -> accel_nodes, GPU
    # -> gpu_nodes, CPU -> cpu_nodes)
    "gpu_nodes": int | None,
    # a peak memory the source reports as a range [low, high] in MB (AI Hub's profile)
    "peak_mem_range_mb": list[float] | None,
    # a TTFT the source extrapolated rather than measured (Qualcomm's perf.yaml: the upper end
    # of time_to_first_token_range, scaled to the context length); ``ttft_ms`` stays the
    # measured one
    "ttft_ms_extrapolated": float | None,
    # --- v7: energy (docs/energy.md). ``energy_j`` / ``j_per_token`` are net of idle (the
    # idle power measured before the run times the run's duration, subtracted); the gross
    # figures beside them. All null with ``energy_method = "none"``: never an estimate.
    "energy_gross_j": float | None,
    "j_per_token_gross": float | None,
    "tokens_per_j": float | None,  # net
    "idle_power_w": float | None,  # measured before the run, over ``idle_window_s``
    "idle_window_s": float | None,
    "energy_prefill_j": float | None,  # net; null unless the meter's interval < the phase
    "energy_decode_j": float | None,
    "energy_interval_ms": float | None,  # the meter's update/sampling interval
    "energy_domains": str | None,  # what the meter covers, e.g. "package-0,dram" or "gpu:0"
    "energy_note": str | None,  # why a meter present gave no number (permission denied ...)
    # --- v7: telemetry around the run
    "cpu_isa": str | None,  # the flags that decide quantized-kernel speed: avx2,avx512_vnni,...
    "cores_used": int | None,
    "gpu_model": str | None,
    "gpu_driver": str | None,
    "cpu_freq_mhz_before": float | None,
    "cpu_freq_mhz_after": float | None,
    "cpu_temp_c_before": float | None,
    "cpu_temp_c_after": float | None,
    # --- v7: the physical limit: decode tok/s x bytes read per token / memory bandwidth
    "roofline_pct": float | None,
    "bytes_per_token": float | None,  # weights + KV cache read per decoded token (docs/roofline)
    "bandwidth_gbs": float | None,
    "bandwidth_method": str | None,
    # --- v7: sustained runs (``edgebench run --sustain``): throughput over time
    "sustain_s": float | None,  # the requested duration
    "sustain_t_s": list[float] | None,  # each window's end, seconds since the start
    "sustain_tok_s": list[float] | None,  # each window's decode tok/s
    "sustain_freq_mhz": list[float] | None,
    "sustain_temp_c": list[float] | None,
    "first_minute_tok_s": float | None,
    "steady_tok_s": float | None,  # median of the last 20 % of windows
    "throttle_onset_s": float | None,  # null: no throttling seen
    # --- v8: context depth: tokens already in the KV cache (filled untimed before each
    # repetition) when the measured prompt starts; null in older rows means 0
    "depth": int | None,
    # --- v9: the KV cache's element type as the suite asked it (``kv_cache`` axis; null: the
    # runtime's default, nothing imposed; what the runtime applied is in runtime_settings),
    # and its size as the runtime itself reports it for the run's context, with the method
    "kv_cache": str | None,
    "kv_cache_mb": float | None,
    "kv_cache_method": str | None,
    # --- v9: prompt files (``prompt_files`` axis): the set's name, the hash of its bytes and
    # each prompt's length in tokens; samples are ordered repetition by repetition, each
    # repetition running every prompt in file order; prompt_tokens holds the mean length
    "prompt_file": str | None,
    "prompt_file_sha256": str | None,
    "prompt_lengths": list[int] | None,
}

RunRecord = dataclasses.make_dataclass(
    "RunRecord",
    [(name, tp, field(default=None)) for name, tp in _OPTIONAL.items()],
    bases=(_Base,),
)
RunRecord.__doc__ = """One row of the store: identity, provenance, outcome, method and metrics.

Metric columns are None unless ``status == "ok"``. Headline metric columns hold the median
over repetitions; ``<metric>_samples`` the raw per-repetition values (METRICS.md).
"""

_ARROW = {
    str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}


def _arrow_type(tp: Any) -> pa.DataType:
    if isinstance(tp, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is list:
        return pa.list_(_arrow_type(typing.get_args(tp)[0]))
    return _ARROW[tp]


def arrow_schema() -> pa.Schema:
    """The Parquet schema of a store file, with the schema version in its metadata."""
    hints = typing.get_type_hints(RunRecord)
    fields = [pa.field(f.name, _arrow_type(hints[f.name])) for f in dataclasses.fields(RunRecord)]
    return pa.schema(fields, metadata={b"edgebench.schema_version": str(SCHEMA_VERSION).encode()})


COLUMNS = tuple(f.name for f in dataclasses.fields(RunRecord))
