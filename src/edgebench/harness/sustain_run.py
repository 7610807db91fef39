"""One sustained run, in the isolated child: generation restarted from the same prompt, window
after window, until the requested duration has passed (``edgebench run --sustain 10m``).

Each window is one ``generate(prompt, new_tokens)`` from an empty context: the context depth is
the same in every window, so a slower window is the machine (frequency, temperature, other
load), never a longer KV cache. Per window the row keeps its end time (seconds since the first
window started), its decode tok/s, and the CPU frequency and temperature read right after it
where readable (``harness.telemetry``; null where not). The headline metrics are those of
every window (``<metric>_samples`` one value per window) and the summary is
``harness.sustain.summarize``'s.
"""

from __future__ import annotations

import time
from dataclasses import replace

import psutil

from edgebench.errors import ConfigError, EdgebenchError
from edgebench.harness import busy, memory, telemetry
from edgebench.harness import metrics as metrics_mod
from edgebench.harness.measure import (
    RunContext,
    _with_metrics,
    close_quietly,
    failed_row,
    now,
    record_for,
    settings_json,
    with_validity,
)
from edgebench.harness.registry import load_runner
from edgebench.harness.run_inputs import context_fill, kv_cache_arg
from edgebench.harness.sustain import summarize
from edgebench.results.schema import RunRecord
from edgebench.suites.expand import PlannedRun

#: Columns only a sustained row has, and how it says what it measured.
METHOD = ("windows of generate(prompt, new_tokens) restarted from the same prompt until the "
          "duration passed; frequency and temperature read after each window")


def measure_sustained(run: PlannedRun, ctx: RunContext) -> RunRecord:
    """Generate on ``run`` for ``run.sustain_s`` seconds and return its row (never raises for
    runtime failures: they become the row's outcome, as in ``measure``)."""
    started = now()
    base = replace(record_for(run, ctx, "ok", started_at=started), sustain_s=run.sustain_s)
    runner = None
    try:
        if not run.sustain_s or run.sustain_s <= 0:
            raise ConfigError("a sustained run needs a duration above 0")
        peak = memory.PeakMemory()
        noise = busy.NoiseProbe().start()
        runner = load_runner(run.framework)
        base = replace(base, framework_version=runner.probe().version,
                       **telemetry.machine_columns())
        if not run.prompt_ids or len(run.prompt_ids) != run.prompt_tokens:
            raise ConfigError(f"run has {len(run.prompt_ids)} prompt IDs, "
                              f"expected {run.prompt_tokens}")
        prompt = list(run.prompt_ids)
        fill = context_fill(run)  # the depth prefix, filled untimed before each generate
        baseline_mb = memory.tree_rss(psutil.Process()) / memory.MB
        t_end, tok_s, freq, temp, timelines = [], [], [], [], []
        with memory.RssSampler() as mem:
            load = runner.load(run.artifact.path, run.device, run.threads, dict(run.options),
                               context_tokens=run.context_tokens, **kv_cache_arg(run))
            for _ in range(run.warmup):
                runner.generate(prompt, run.new_tokens, **fill)
            t0 = time.perf_counter_ns()
            while True:
                with mem.off_the_clock():
                    tl = runner.generate(prompt, run.new_tokens, **fill)
                if len(tl.token_ns) != run.new_tokens:
                    raise EdgebenchError(f"runtime produced {len(tl.token_ns)} tokens, "
                                         f"asked for {run.new_tokens}")
                m = metrics_mod.repetition_metrics(tl.t0_ns, tl.token_ns, tl.prompt_tokens)
                timelines.append(tl)
                t_end.append((tl.token_ns[-1] - t0) / 1e9)
                tok_s.append(m["decode_tok_s"])
                freq.append(telemetry.cpu_freq_mhz())
                temp.append(telemetry.cpu_temp_c())
                mem.sample()
                if t_end[-1] >= run.sustain_s:
                    break
        noise.stop()
        summary = summarize(t_end, tok_s)
        rec = replace(base, device_name=load.device, threads_applied=load.threads_applied,
                      runtime_settings=settings_json({**load.options, "sustain": METHOD}),
                      repetitions=len(timelines))
        rec = replace(_with_metrics(rec, timelines, load.load_s, mem, baseline_mb),
                      measurement=load.measurement)
        rec = replace(
            rec, sustain_t_s=t_end, sustain_tok_s=tok_s,
            sustain_freq_mhz=None if all(f is None for f in freq) else
            [float("nan") if f is None else f for f in freq],
            sustain_temp_c=None if all(t is None for t in temp) else
            [float("nan") if t is None else t for t in temp],
            first_minute_tok_s=summary.first_minute_tok_s, steady_tok_s=summary.steady_tok_s,
            throttle_onset_s=summary.throttle_onset_s)
        return replace(with_validity(rec, peak, mem, noise, runner), finished_at=now())
    except Exception as e:  # noqa: BLE001 - every failure becomes the row's outcome
        return failed_row(base, e)
    finally:
        close_quietly(runner)
