"""Measure one planned run: load, warm-up, repetitions -> a RunRecord.

Runs inside the isolated child process (see ``isolate.py``), or in-process for tests and
benchmarks. Every statistic comes from ``metrics.py``; the runner only reports timestamps.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import psutil

from edgebench import __version__
from edgebench.errors import DeviceUnavailable, EdgebenchError, RunnerUnavailable
from edgebench.harness import busy, memory, metrics, telemetry
from edgebench.harness.device import Fingerprint
from edgebench.harness.energy.recorder import EnergyRecorder
from edgebench.harness.prepare.manifest import NOMINAL_BITS, precision_class
from edgebench.harness.prompt import ids_sha256
from edgebench.harness.registry import load_runner
from edgebench.harness.run_inputs import (
    context_fill,
    kv_cache_arg,
    prefill_ns,
    run_prompts,
    tokens_per_generate,
)
from edgebench.harness.runner import AcceleratorMemory, GraphPlacement, KvCacheSize, RemoteProfile
from edgebench.results.schema import SCHEMA_VERSION, RunRecord
from edgebench.suites.expand import PlannedRun


@dataclass(frozen=True)
class RunContext:
    """What every row of one session shares."""

    session_id: str
    fingerprint: Fingerprint


def now() -> datetime:
    return datetime.now(timezone.utc)


def record_for(run: PlannedRun, ctx: RunContext, status: str, message: str | None = None,
               started_at: datetime | None = None) -> RunRecord:
    """A row for ``run`` with identity and provenance filled in and no metrics."""
    fp = ctx.fingerprint
    art = run.artifact
    return RunRecord(
        model=run.model, model_sha256=run.model_sha256, framework=run.framework,
        precision=run.precision, device=run.device, prompt_tokens=run.prompt_tokens,
        new_tokens=run.new_tokens, threads=run.threads, options=run.options_json,
        suite=run.suite, run_key=run.run_key, session_id=ctx.session_id,
        machine_id=fp.machine_id, started_at=started_at or now(), finished_at=now(),
        edgebench_version=__version__, schema_version=SCHEMA_VERSION,
        status=status, message=message, kind="speed",
        artifact_format=art.format if art else None,
        artifact_sha256=art.sha256 if art else None,
        artifact_path=str(art.path) if art else None,
        model_bytes=art.size_bytes if art else None,
        bits_per_weight=art.bits_per_weight if art else None,
        artifact_precision_class=precision_class(run.precision)
        if run.precision in NOMINAL_BITS else None,
        # a prompt file's: the hash of every prompt's IDs, in file order
        prompt_ids_sha256=ids_sha256(run.prompt_ids) if run.prompt_ids else
        ids_sha256([list(p) for p in run.prompt_set_ids]) if run.prompt_set_ids else None,
        repetitions=run.repetitions, warmup=run.warmup, cooldown_s=run.cooldown_s,
        timeout_s=run.timeout_s, sustain_s=run.sustain_s, depth=run.depth,
        kv_cache=run.kv_cache, prompt_file=run.prompt_file,
        prompt_file_sha256=run.prompt_file_sha256,
        prompt_lengths=[len(p) for p in run.prompt_set_ids] or None,
        cpu_model=fp.cpu_model, cpu_flags=fp.cpu_flags,
        cpu_cores_physical=fp.cpu_cores_physical, cpu_cores_logical=fp.cpu_cores_logical,
        ram_total_mb=fp.ram_total_mb, os=fp.os, python_version=fp.python_version,
        accelerators=fp.accelerators or None,
    )


def _with_metrics(rec: RunRecord, timelines: list, load_s: float, mem: memory.RssSampler,
                  baseline_mb: float) -> RunRecord:
    per_rep = [metrics.repetition_metrics(t.t0_ns, t.token_ns, t.prompt_tokens)
               for t in timelines]
    cols: dict = {}
    for m in metrics.TIMING_METRICS:
        cols.update(metrics.summary_columns(m, [r[m] for r in per_rep]))
    cols.update(crosscheck(timelines, cols))
    flags = list(rec.flags or [])
    if cols.get("timing_flag"):
        flags.append("timing-disagreement")
    cols.pop("timing_flag", None)
    return replace(
        rec, **cols, flags=flags or None,
        load_s=load_s, peak_rss_mb=mem.peak_mb, rss_baseline_mb=baseline_mb,
        rss_delta_mb=mem.peak_mb - baseline_mb, system_used_peak_mb=mem.system_used_peak_mb,
        measurement="measured", energy_method="none",
        token_ms_samples=[[(ns - t.t0_ns) / metrics.NS_PER_MS for ns in t.token_ns]
                          for t in timelines],
        output_ids=list(timelines[0].token_ids),
    )


#: edgebench's and the runtime's own TTFT or decode speed may differ by this much (percent)
#: before the row is flagged ``timing-disagreement``.
CROSSCHECK_TOLERANCE_PCT = 5.0


def crosscheck(timelines: list, cols: dict) -> dict:
    """Compare edgebench's medians with the runtime's own per-repetition timings, where the
    runtime reports them (``TokenTimeline.reported``): the runtime's medians, the difference in
    percent of the runtime's figure, and ``timing_flag`` when either is beyond
    :data:`CROSSCHECK_TOLERANCE_PCT`. Empty when the runtime reports nothing."""
    reported = [t.reported for t in timelines if t.reported]
    if len(reported) != len(timelines):
        return {}
    out: dict = {"timing_flag": False}
    for metric, col in (("ttft_ms", "ttft"), ("decode_tok_s", "decode")):
        theirs = metrics.summarize([r.get(metric) for r in reported]).median
        out[f"runtime_{metric}"] = theirs
        if theirs and cols.get(metric) is not None:
            pct = (cols[metric] - theirs) / theirs * 100
            out[f"{col}_disagree_pct"] = pct
            out["timing_flag"] |= abs(pct) > CROSSCHECK_TOLERANCE_PCT
    return out


def accelerator_memory(runner) -> dict:
    """``accel_peak_mb`` and ``accel_memory_method`` from the runner's optional
    ``accelerator_peak_mb()`` hook (:class:`~edgebench.harness.runner.AcceleratorMemory`); a
    failing hook is recorded in the method, never fails the run."""
    if not isinstance(runner, AcceleratorMemory):
        return {}
    try:
        got = runner.accelerator_peak_mb()
    except Exception as e:  # noqa: BLE001
        return {"accel_memory_method": f"failed: {type(e).__name__}: {e}"}
    if got is None:
        return {}
    mb, method = got
    return {"accel_peak_mb": float(mb), "accel_memory_method": method}


def _hook(runner, protocol, call):
    """What the runner's optional ``protocol`` hook returns (``call(runner)``); None without
    the hook, when it returns None, or when it fails (a hook never fails the run)."""
    if not isinstance(runner, protocol):
        return None
    try:
        return call(runner)
    except Exception:  # noqa: BLE001
        return None


def kv_cache_size(runner) -> dict:
    """``kv_cache_mb`` and ``kv_cache_method`` from the runner's optional ``kv_cache_mb()``
    hook (:class:`~edgebench.harness.runner.KvCacheSize`); empty without it or when it
    fails."""
    got = _hook(runner, KvCacheSize, lambda r: r.kv_cache_mb())
    return {} if got is None else {"kv_cache_mb": float(got[0]), "kv_cache_method": got[1]}


def graph_placement(runner) -> dict:
    """``accel_nodes`` and ``cpu_nodes`` from the runner's optional ``graph_placement()`` hook
    (:class:`~edgebench.harness.runner.GraphPlacement`); empty without it or when it fails."""
    got = _hook(runner, GraphPlacement, lambda r: r.graph_placement())
    return {} if got is None else {"accel_nodes": int(got[0]), "cpu_nodes": int(got[1])}


def with_validity(rec: RunRecord, peak: memory.PeakMemory, sampler: memory.RssSampler,
                  noise: busy.NoiseProbe, runner) -> RunRecord:
    """``rec`` with the memory columns (docs/validity.md "Memory"), the accelerator's peak
    where the runner reports one, and ``machine_busy`` / ``busy_evidence`` ("Noise"); a busy
    row is flagged ``machine-busy``. Call while the model is still loaded."""
    cols = {**peak.columns(sampler), **noise.columns(), **accelerator_memory(runner),
            **graph_placement(runner), **kv_cache_size(runner)}
    flags = list(rec.flags or [])
    if cols["machine_busy"] and "machine-busy" not in flags:
        flags.append("machine-busy")
    flags += [f for f in placement_flags(cols.get("accel_nodes"), cols.get("cpu_nodes"))
              if f not in flags]
    return replace(rec, **cols, flags=flags or None)


def placement_flags(accel: int | None, cpu: int | None) -> list[str]:
    """``cpu-fallback`` when any node of an accelerator's graph ran on the CPU, and
    ``mostly-cpu`` when most did: such a row is not a measurement of the accelerator."""
    if not cpu:
        return []
    return ["cpu-fallback"] + (["mostly-cpu"] if cpu >= (accel or 0) else [])


def settings_json(options: dict) -> str:
    """The settings a runner applied at load, as canonical JSON for ``runtime_settings``."""
    return json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)


def failed_row(base: RunRecord, e: Exception) -> RunRecord:
    """``base`` with the outcome of a failure: ``unavailable`` (missing runtime or device, the
    install hint in the message), or ``error`` (a runtime's own exception keeps its type and
    last frame)."""
    if isinstance(e, (RunnerUnavailable, DeviceUnavailable)):
        return replace(base, status="unavailable", message=str(e), finished_at=now())
    if isinstance(e, EdgebenchError):
        return replace(base, status="error", message=str(e), finished_at=now())
    where = traceback.extract_tb(e.__traceback__)[-1]
    msg = f"{type(e).__name__}: {e} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
    return replace(base, status="error", message=msg, finished_at=now())


def remote_row(base: RunRecord, runner: RemoteProfile, run: PlannedRun) -> RunRecord:
    """``base`` with the columns a :class:`~edgebench.harness.runner.RemoteProfile` runner
    returns: a service's figures of a device edgebench never saw, so the row's machine is
    that device (``imports.rows.elsewhere_id``), never this one."""
    from edgebench.imports.rows import elsewhere_id

    cols = runner.profile(run)
    device = cols.get("device_name") or run.device
    return replace(base, **cols, machine_id=elsewhere_id("estimated", device),
                   finished_at=now())


def close_quietly(runner) -> None:
    """Close ``runner`` if there is one; closing must not hide the run's outcome."""
    if runner is not None:
        try:
            runner.close()
        except Exception:  # noqa: BLE001
            pass


def measure(run: PlannedRun, ctx: RunContext) -> RunRecord:
    """Measure ``run`` in this process and return its row (never raises for runtime failures).

    A missing runtime or device gives an ``unavailable`` row with the install hint; any other
    failure an ``error`` row with the message. Energy comes from the best meter for the
    run's device, net of idle power measured with the model loaded (docs/energy.md); with no
    meter ``energy_method = "none"`` and the energy columns stay null. Memory and noise are
    measured from the start of this call (see :func:`with_validity`), so in a fresh process the
    baseline is the harness without the runtime.

    A prompt-file run (``prompt_set_ids``) runs every prompt, in file order, in each warm-up
    and each repetition: one sample (timeline) per prompt and repetition, each with its own
    prompt length, and the row's statistics over all of them (docs/prompts.md).
    """
    started = now()
    base = record_for(run, ctx, "ok", started_at=started)
    runner = energy = None
    try:
        peak = memory.PeakMemory()  # the baseline: before the runtime is imported
        noise = busy.NoiseProbe().start()
        runner = load_runner(run.framework)
        info = runner.probe()
        base = replace(base, framework_version=info.version)
        if isinstance(runner, RemoteProfile):  # a service profiles it: no local clock
            return remote_row(base, runner, run)
        base = replace(base, **telemetry.machine_columns())  # this machine's, not a remote's
        prompts = run_prompts(run)  # one prompt, or a prompt file's, in file order
        fill = context_fill(run)  # the depth prefix, evaluated before t0 of every generate
        energy = EnergyRecorder.for_device(run.device)
        baseline_mb = memory.tree_rss(psutil.Process()) / memory.MB
        with memory.RssSampler() as mem:
            load = runner.load(run.artifact.path, run.device, run.threads, dict(run.options),
                               context_tokens=run.context_tokens,
                               **kv_cache_arg(run))
            energy.idle()  # idle power with the model loaded; no meter: no delay
            warm = None  # the warm-up with the shortest prefill decides the energy resolution
            for _ in range(run.warmup):
                for prompt in prompts:
                    tl = runner.generate(prompt, run.new_tokens, **fill)
                    if warm is None or prefill_ns(tl) < prefill_ns(warm):
                        warm = tl
            timelines = []
            before = telemetry.snapshot("before")  # frequency, temperature: off the clock
            energy.begin(warm)
            with mem.off_the_clock():  # no sampler wake-ups inside a timed repetition
                for i in range(run.repetitions):
                    if i and run.cooldown_s:
                        time.sleep(run.cooldown_s)
                    for prompt in prompts:  # a sample per prompt, each its own prompt length
                        energy.before()
                        tl = runner.generate(prompt, run.new_tokens, **fill)
                        energy.after()
                        mem.sample()
                        if len(tl.token_ns) != run.new_tokens:
                            raise EdgebenchError(f"runtime produced {len(tl.token_ns)} tokens, "
                                                 f"asked for {run.new_tokens}")
                        timelines.append(tl)
            energy.end()
            after = telemetry.snapshot("after")
        noise.stop()
        rec = replace(base, **before, **after,
                      cores_used=telemetry.cores_used(run.threads, load.threads_applied),
                      device_name=load.device, threads_applied=load.threads_applied,
                      runtime_settings=settings_json(load.options))
        rec = replace(_with_metrics(rec, timelines, load.load_s, mem, baseline_mb),
                      measurement=load.measurement)
        rec = replace(rec, **energy.columns(timelines, tokens_per_generate(run)))
        return replace(with_validity(rec, peak, mem, noise, runner), finished_at=now())
    except Exception as e:  # noqa: BLE001 - every failure becomes the row's outcome
        return failed_row(base, e)
    finally:
        close_quietly(energy)
        close_quietly(runner)
