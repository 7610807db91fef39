"""The library behind the CLI: plan, run, read results. ``cli.py`` only parses and prints."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgebench.decision import DEFAULT_TIE_MARGIN, Constraints, Recommendation, Weights
from edgebench.decision import targets as decision_targets
from edgebench.decision.decide import recommend_rows
from edgebench.errors import (
    ConfigError,
    DeviceUnavailable,
    EdgebenchError,
    RunnerUnavailable,
    interrupt_signal,
)
from edgebench.harness import launches as launches_mod
from edgebench.harness import prepare as prepare_mod
from edgebench.harness import roofline, tuning
from edgebench.harness.device import fingerprint
from edgebench.harness.isolate import run_isolated
from edgebench.harness.measure import RunContext, record_for
from edgebench.harness.prepare.manifest import Manifest
from edgebench.harness.prompt import PromptTooShort, prompt_ids
from edgebench.harness.registry import FRAMEWORKS, installed_version, load_runner
from edgebench.models.registry import ResolvedModel, resolve_model
from edgebench.results import queries
from edgebench.results.schema import RunRecord
from edgebench.results.store import VIEW, Store
from edgebench.suites.expand import PlannedRun, expand
from edgebench.suites.spec import Suite, load_suite

DEFAULT_SUITE = "smoke"


def make_suite(suite: str | None = None, **overrides: Any) -> Suite:
    """Load a suite (default: the built-in ``smoke``) and apply axis overrides."""
    return load_suite(suite or DEFAULT_SUITE).override(**overrides)


def resolve(name: str, cache: Path) -> ResolvedModel:
    """A model with its own artifacts, those already prepared in the cache, and what could be
    prepared (no runtime is loaded, no conversion runs)."""
    model = resolve_model(name, cache)
    found, todo = prepare_mod.preparable(model, cache)
    return dataclasses.replace(model, artifacts=model.artifacts + tuple(found),
                               preparable=tuple((t.format, t.precision) for t in todo))


def plan(suite: Suite, cache: Path) -> list[PlannedRun]:
    """Expand a suite into planned runs, resolving its models (no runtime is loaded; a
    prompt file's texts are tokenized by the model's own tokenizer, cached)."""
    from edgebench.harness.prompt_file import prompt_set_ids

    def set_ids(model: ResolvedModel, pfile) -> list[list[int]]:
        source = prepare_mod.source_of(model).path
        return prompt_set_ids(pfile, model.sha256, source, cache)

    return expand(suite, lambda name: resolve(name, cache), set_ids)


def prepare(model: str, targets: list[str], cache: Path) -> list[Manifest]:
    """Prepare (or find in the cache) each target of ``model``, e.g. ``gguf:q8_0``."""
    parsed = [prepare_mod.parse_target(t) for t in targets]
    source = prepare_mod.source_of(resolve_model(model, cache))
    return [prepare_mod.prepare(source, t, cache) for t in parsed]


def new_session_id() -> str:
    """Sortable and unique: UTC time plus random hex."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class RunOutcome:
    """What a sweep did: its rows, the file holding them, and runs skipped by ``--resume``."""

    session_id: str
    path: Path | None
    rows: list[RunRecord] = field(default_factory=list)
    resumed: list[PlannedRun] = field(default_factory=list)
    interrupted: bool = False
    #: The signal that stopped the sweep (SIGINT for Ctrl-C, SIGTERM, SIGHUP), None when it
    #: ran to the end; the CLI exits with 128 + it.
    interrupted_by: int | None = None

    @property
    def counts(self) -> Counter:
        return Counter(r.status for r in self.rows)


#: Progress callback: (event, run, row or None). Events: "start", "done", "resumed".
Progress = Callable[[str, PlannedRun, RunRecord | None], None]


def run_suite(suite: Suite, store: Store, cache: Path, *, resume: bool = False,
              progress: Progress | None = None,
              runs: list[PlannedRun] | None = None, launches: int = 1,
              bandwidth_gbs: float | None = None) -> RunOutcome:
    """Run every planned run of ``suite``, each in its own process, appending rows to ``store``.

    With ``launches`` > 1 each cell is measured in that many fresh processes, the cells
    interleaved (launch 1 of every cell, then launch 2 ...); a cell's launches make one row
    (``harness.launches.merge``). ``resume`` skips a cell only when its latest ok row here was
    measured with the same runtime version and the same artifact (``Store.resume_index``).

    The session's Parquet file is rewritten (atomically) after every run, so a crash or Ctrl-C
    loses nothing that finished. A KeyboardInterrupt (Ctrl-C, or ``errors.Interrupted`` for
    SIGTERM/SIGHUP) stops the sweep and returns with ``interrupted`` and ``interrupted_by``
    set.

    Measured ok speed rows get ``roofline_pct`` (docs/roofline.md) against ``bandwidth_gbs``
    where given, else (CPU rows) this machine's bandwidth: cached per machine in ``cache``,
    measured in this process before the first row that needs it, never inside a run.
    """
    if launches < 1:
        raise ConfigError(f"--launches must be at least 1, got {launches}")
    if bandwidth_gbs is not None and not 0 < bandwidth_gbs < float("inf"):
        raise ConfigError(f"--bandwidth-gbs must be a number above 0, got {bandwidth_gbs}")
    bandwidth = roofline.SweepBandwidth(bandwidth_gbs, cache)
    tuning.check()  # a bad EDGEBENCH_RSS_INTERVAL_S & co. is refused before measuring
    store.ensure_writable()  # a store that cannot be written is refused before measuring
    store.check()  # and its unreadable files are reported (skipped) before any time is spent
    runs = plan(suite, cache) if runs is None else runs
    ctx = RunContext(new_session_id(), fingerprint())
    done = store.resume_index(ctx.fingerprint.machine_id) if resume else {}
    out = RunOutcome(ctx.session_id, None)
    notify = progress or (lambda *_: None)
    prompts: dict[tuple[str, int], list[int] | RunnerUnavailable] = {}
    cells: list[list[RunRecord]] = []  # per cell, the rows of its launches so far
    todo: list[tuple[int, PlannedRun]] = []
    try:
        for run in runs:
            if run.skip_reason is None and run.run_key in done:
                why = remeasure_reason(run, done[run.run_key], cache)
                if why is None:
                    out.resumed.append(run)
                    notify("resumed", run, None)
                    continue
                run = replace(run, note=why)
            todo.append((len(cells), run))
            cells.append([])
        measured_once = False
        for launch in range(launches):
            for i, run in todo:
                if launch and (run.skip_reason is not None or not _measured(cells[i][0])):
                    continue  # skipped, unavailable, or not even prepared: once is enough
                if run.cooldown_s and run.skip_reason is None and measured_once:
                    time.sleep(run.cooldown_s)  # the suite's cool-down between cells, too
                measured_once = measured_once or run.skip_reason is None
                notify("start", run, None)
                row = bandwidth.fill(roofline.with_bytes(_one(run, ctx, cache, prompts)))
                cells[i].append(row)
                out.rows = [_cell_row(c, r) for c, (_, r) in zip(cells, todo) if c]
                out.path = store.write_session(ctx.session_id, out.rows)
                notify("done", run, _cell_row(cells[i], run))
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Interrupted)
        out.interrupted, out.interrupted_by = True, interrupt_signal(e)
        rows = [_cell_row(c, r) for c, (_, r) in zip(cells, todo) if c]
        if rows != out.rows:  # a run finished but the write of its row was interrupted
            out.rows = rows
            out.path = store.write_session(ctx.session_id, rows)
    return out


def _measured(row: RunRecord) -> bool:
    """Whether a launch got as far as measuring (worth launching again)."""
    return row.status in ("ok", "error", "timeout")


def _cell_row(rows: list[RunRecord], run: PlannedRun) -> RunRecord:
    row = rows[0] if rows[0].status == "skipped" else launches_mod.merge(rows)
    row = roofline.with_pct(row)  # from the merged decode speed
    if run.note:
        row = replace(row, message="; ".join(m for m in (run.note, row.message) if m))
    return row


def remeasure_reason(run: PlannedRun, stored: Mapping[str, Any], cache: Path) -> str | None:
    """Why ``--resume`` must measure ``run`` again although it has an ok row here (``stored``:
    its entry of ``Store.resume_index``): the runtime was upgraded or the artifact re-made
    since. None when the row still stands. Speed and quality sweeps both ask this."""
    version = installed_version(run.framework)
    if version is not None and stored.get("framework_version") not in (None, version):
        return (f"re-measured: {run.framework} {stored['framework_version']} -> {version} "
                "since the resumed row")
    artifact = run.artifact
    if artifact is None and run.prepare is not None:
        try:
            artifact = _prepared(run, cache).artifact
        except EdgebenchError:
            return "re-measured: the artifact must be prepared again"
    sha = artifact.sha256 if artifact is not None else None
    if sha and stored.get("artifact_sha256") not in (None, sha):
        return (f"re-measured: artifact changed ({str(stored['artifact_sha256'])[:12]} -> "
                f"{sha[:12]}) since the resumed row")
    return None


#: What a device needs that the runtime's default install lacks.
DEVICE_HINTS = {
    ("llama-cpp", "cuda"): "a llama-cpp-python built with CUDA (CMAKE_ARGS=\"-DGGML_CUDA=on\" "
                           "pip install llama-cpp-python --no-binary llama-cpp-python)",
    ("llama-cpp", "metal"): "a llama-cpp-python built with Metal (the default on macOS arm64)",
    ("llama-cpp", "vulkan"): "a llama-cpp-python built with -DGGML_VULKAN=on",
    ("ort-genai", "cuda"): "pip install onnxruntime-genai-cuda (and a CUDA driver)",
}


def option_problem(run: PlannedRun) -> str | None:
    """What is wrong with ``run``'s runtime options, where its runner module checks them
    without its runtime (a module-level ``check_options(options, precision)``, e.g. qai-hub's,
    whose options would otherwise be checked only once a token exists). None when fine."""
    spec = FRAMEWORKS.get(run.framework)
    if spec is None:
        return None
    import importlib

    check = getattr(importlib.import_module(spec.target.partition(":")[0]), "check_options",
                    None)
    if check is None:
        return None
    try:
        check(dict(run.options), run.precision)
    except ConfigError as e:
        return str(e)
    return None


def unavailable_before_preparing(run: PlannedRun) -> str | None:
    """Why ``run`` cannot run here, found by probing its runner in this process before its
    artifact is prepared: for runners marked ``probe_first`` (a remote service without a
    token) and for devices other than the CPU (an accelerator this machine lacks). None when
    it may run (or when that is only known in the measuring child)."""
    spec = FRAMEWORKS.get(run.framework)  # a runner registered at run time has no spec
    if not ((spec is not None and spec.probe_first) or run.device != "cpu"):
        return None
    try:
        info = load_runner(run.framework).probe()
    except (RunnerUnavailable, DeviceUnavailable) as e:
        return str(e)
    if run.device in info.devices:
        return None
    hint = DEVICE_HINTS.get((run.framework, run.device))
    return (f"{run.framework} has no device {run.device!r} here (it has: "
            f"{', '.join(info.devices) or 'none'})" + (f"; it needs {hint}" if hint else ""))


def _one(run: PlannedRun, ctx: RunContext, cache: Path,
         prompts: dict[tuple[str, int], list[int] | RunnerUnavailable]) -> RunRecord:
    if run.skip_reason is not None:
        return record_for(run, ctx, "skipped", run.skip_reason)
    if (why := option_problem(run)) is not None:
        return record_for(run, ctx, "error", why)
    if (why := unavailable_before_preparing(run)) is not None:
        return record_for(run, ctx, "unavailable", why)
    if run.prepare is not None:
        try:
            run = _prepared(run, cache)
        except (RunnerUnavailable, DeviceUnavailable) as e:
            return record_for(run, ctx, "unavailable", f"cannot prepare {run.prepare}: {e}")
        except EdgebenchError as e:
            return record_for(run, ctx, "error", f"preparing {run.prepare} failed: {e}")
    # depth + prompt is one continuous text: the first `depth` IDs fill the KV cache, the next
    # `prompt_tokens` are the measured prompt (at depth 0, exactly the IDs of before). A prompt
    # file's prompts come tokenized with the plan (run.prompt_set_ids): only the depth prefix
    # is cut from the synthetic text, and nothing is tokenized at depth 0.
    from_file = run.prompt_file is not None  # (a sustained run with one: skipped at planning)
    key = (run.model_sha256, run.depth if from_file else run.depth + run.prompt_tokens)
    failed = (run.model_sha256, None)  # a tokenizer that cannot work fails every length
    if not key[1]:  # a prompt file at depth 0: nothing to cut from the synthetic text
        prompts.setdefault(key, [])
    if key not in prompts and failed not in prompts:
        try:  # the model's own tokenizer, from its source: the same IDs for every runtime
            source = prepare_mod.source_of(resolve_model(run.model_ref, cache)).path \
                if run.model_ref else run.artifact.path
            prompts[key] = prompt_ids(run.model_sha256, source, key[1], cache)
        except Exception as e:  # any failure is this model's rows, never the sweep's end
            # too few IDs for this length (or no memory for it): another length may work;
            # anything else (no vocabulary, a tokenizer that does not load): asked once
            prompts[key if isinstance(e, (PromptTooShort, MemoryError)) else failed] = e
    ids = prompts[key] if key in prompts else prompts.get(failed)  # a length that worked stays
    if isinstance(ids, RunnerUnavailable):
        return record_for(run, ctx, "unavailable", f"cannot tokenize the prompt: {ids}")
    if isinstance(ids, Exception):
        why = str(ids) if isinstance(ids, EdgebenchError) else f"{type(ids).__name__}: {ids}"
        return record_for(run, ctx, "error", f"cannot tokenize the prompt of {run.model}: "
                                             f"{' '.join(why.split())}")
    run = replace(run, prefix_ids=tuple(ids[:run.depth]))
    ids = [] if from_file else ids[run.depth:]
    if run.sustain_s:  # continuous generation for the duration: the timeout grows with it
        from edgebench.harness.sustain_run import measure_sustained

        return run_isolated(replace(run, prompt_ids=tuple(ids),
                                    timeout_s=run.timeout_s + run.sustain_s), ctx,
                            measure_sustained)
    return run_isolated(replace(run, prompt_ids=tuple(ids)), ctx)


#: The high-precision variant of each runtime, compared by `edgebench check`; the first one
#: that runs is the reference.
CHECK_PRECISIONS = {"llama-cpp": "f16", "ort-genai": "fp32", "openvino": "fp16", "mlx": "fp16"}


def agreement(reference: list[int], output: list[int]) -> int:
    """How many leading tokens two greedy outputs share."""
    n = 0
    for a, b in zip(reference, output):
        if a != b:
            break
        n += 1
    return n


def check(model: str, store: Store, cache: Path, *, new_tokens: int = 8,
          prompt_tokens: int = 32, frameworks: tuple[str, ...] | None = None,
          progress: Progress | None = None) -> RunOutcome:
    """Consistency check: each runtime's high-precision variant, same prompt IDs, one greedy
    generation; rows record how many leading tokens agree with the reference runtime's.

    A runtime whose first token already differs computes something else: its speed would not
    compare, and its row says so.
    """
    names = frameworks or tuple(CHECK_PRECISIONS)
    first = names[0]
    suite = make_suite(
        "smoke", models=[model], frameworks=[first], precisions=[CHECK_PRECISIONS[first]],
        prompt_tokens=[prompt_tokens], new_tokens=[new_tokens], repetitions=1, warmup=0,
    )
    suite = dataclasses.replace(suite, name="check", include=tuple(
        {"framework": f, "precision": CHECK_PRECISIONS[f]} for f in names[1:]))
    out = run_suite(suite, store, cache, progress=progress)
    ok = [r for r in out.rows if r.status == "ok" and r.output_ids]
    if not ok:
        return out
    ref = ok[0]
    label = f"{ref.framework}:{ref.precision}"
    out.rows = [replace(r, agree_tokens=agreement(ref.output_ids, r.output_ids),
                        agree_reference=label,
                        message=r.message or (f"diverges from {label} at the first token"
                                              if agreement(ref.output_ids, r.output_ids) == 0
                                              else None))
                if r in ok else r for r in out.rows]
    out.path = store.write_session(out.session_id, out.rows)
    return out


def _prepared(run: PlannedRun, cache: Path) -> PlannedRun:
    """``run`` with its artifact prepared (a cache hit after the first run that needs it)."""
    model = resolve_model(run.model_ref, cache)
    manifest = prepare_mod.prepare(prepare_mod.source_of(model),
                                   prepare_mod.parse_target(run.prepare), cache)
    return replace(run, artifact=prepare_mod.as_artifact(manifest, cache), prepare=None)


#: Columns `edgebench results` shows by default, in order.
RESULT_COLUMNS = (
    "model", "framework", "precision", "device", "threads", "prompt_tokens", "new_tokens",
    "depth", "kv_cache",
    "status", "ttft_ms", "prefill_tok_s", "decode_tok_s", "decode_tok_s_cv", "roofline_pct",
    "load_s", "peak_mem_mb", "flags", "measurement", "framework_version", "started_at", "message",
)
FILTERS = ("model", "framework", "precision", "device", "status", "session_id", "suite")


def results(store: Store, *, latest: bool = True, filters: dict[str, str] | None = None,
            columns: tuple[str, ...] = RESULT_COLUMNS, limit: int | None = None):
    """Rows of the store as a DataFrame: the latest per run_key and machine unless ``latest`` is
    False, filtered by exact column values.

    Raises:
        ConfigError: ``limit`` below 1.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    where, params = [], []
    for col, value in (filters or {}).items():
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    source = VIEW
    if latest:
        source = (f"(SELECT * FROM {VIEW} {clause} QUALIFY row_number() OVER "
                  "(PARTITION BY run_key, machine_id ORDER BY started_at DESC) = 1)")
        clause = ""
    cols = ", ".join(columns)
    query = f"SELECT {cols} FROM {source} {clause} ORDER BY started_at, model, framework, precision"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return store.query(query, params)


def sql(store: Store, query: str, *, unsafe: bool = False):
    """Run any SQL over the ``runs`` view; returns a DataFrame (columns pandas cannot hold or
    print, e.g. an ``infinity`` timestamp or a UNION type, come back as text).

    The connection is sandboxed unless ``unsafe``: it reads the ``runs`` view and no file, and
    writes nothing (``results.sqlsafe``).

    Raises:
        ConfigError: the query does not parse or bind, or the sandbox refused it (DuckDB's own
            message).
    """
    import duckdb

    from edgebench.results.sqlsafe import to_frame

    try:
        return to_frame(store.query_arrow(query, sandbox=not unsafe))
    except duckdb.Error as e:
        raise ConfigError(f"SQL error: {str(e).splitlines()[0]}") from e


def report(store: Store, *, out: str | Path | None = None, where: str | None = None,
           devices: tuple[str, ...] | list[str] = (), fmt: str = "html",
           title: str | None = None, across_machines: bool = False) -> str | Path:
    """The chapter's comparison table and the rest of the report, from the store's rows.

    Writes one self-contained HTML file (plotly inlined, opens offline) or markdown to ``out``
    and returns its path; with ``out`` None, returns the text. Rows of different hardware are
    compared only with ``across_machines`` (the report then says so).

    Raises:
        ConfigError: an unknown format, an SQL condition that does not parse, no row matches
            the filters (the message names them), or ``out`` cannot be written.
    """
    from edgebench import reports

    if fmt not in reports.FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(reports.FORMATS)}")
    rows = reports.load_rows(store, where=where, devices=devices)
    text = reports.render(reports.build_report(
        rows, title=title or "edgebench report",
        filters=reports.describe_filters(where, devices), across_machines=across_machines), fmt)
    if out is None:
        return text
    path = Path(out)
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"cannot write the report to {out!r}: {blocked} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except (OSError, UnicodeEncodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"cannot write the report to {out!r}: {reason}") from e
    return path


def recommend(store: Store, device: str | decision_targets.Target | None = None, *,
              constraints: Constraints | None = None, optimize: str = "balanced",
              model: str | None = None,
              machine: Mapping[str, Any] | None = None,
              rows: list[Mapping[str, Any]] | None = None,
              across_machines: bool = False, allow_unmeasured_quality: bool = False,
              tie_margin: float = DEFAULT_TIE_MARGIN) -> Recommendation:
    """What to ship on a device target, from the store's measured rows
    (``edgebench.decision.decide.recommend_rows``, which the report calls too).

    Rows are compared under ``edgebench.decision.compare``'s rules (docs/validity.md): one
    hardware fingerprint unless ``across_machines``, the latest ok row of each cell, measured
    rows only, one quality protocol, one memory figure; the notes say what was left out.
    Candidates without quality are not ranked unless ``allow_unmeasured_quality``; every
    mode has the quality floor (``kld_mean <= 0.05`` unless ``constraints.max_kld``).

    Args:
        store: the results store.
        device: a target of ``edgebench.decision.TARGETS`` (default ``this``: this machine's
            rows, by machine id or hardware fingerprint), or a ``Target`` of the caller's.
        constraints: hard limits; a candidate lacking a metric a limit needs is rejected.
        optimize: ``speed``, ``memory``, ``quality``, ``energy`` or ``balanced``.
        model: the model whose rows to rank (needed when the target has several).
        machine: this machine's facts (``machine_id`` and the fingerprint columns
            ``cpu_model``, ``cpu_cores_logical``, ``ram_total_mb``, ``os``, ``accelerators``);
            default: its fingerprint.
        rows: the store's rows (``queries.store_rows``), when the caller has read them.
        across_machines: rank rows of different hardware together (said in the notes).
        allow_unmeasured_quality: rank candidates without quality rows too, as if they met
            the quality limits (the headline says so).
        tie_margin: scores tie when equivalent within this relative margin (default 5 %).

    Returns:
        The ranking, or, with no measured row for the target, the decision tree's guidance
        (``guidance`` True). ``winner`` None with ``eliminated_by`` set: no candidate meets
        the limits; with ``needs_quality``: no candidate has quality measured.

    Raises:
        ConfigError: an unknown target or mode, or several models and no ``model``.
    """
    target = (device if isinstance(device, decision_targets.Target)
              else decision_targets.get(device or "this"))
    Weights.for_mode(optimize)  # an unknown mode is refused before the store is read
    facts = dict(machine) if machine is not None else dataclasses.asdict(fingerprint())
    rows = queries.store_rows(store) if rows is None else rows
    empty = () if rows else (
        f"the store {store.root} has no rows: fill it with `edgebench run cpu-laptop`",)
    return recommend_rows(rows, target, machine=facts, constraints=constraints,
                          optimize=optimize, model=model, across_machines=across_machines,
                          allow_unmeasured_quality=allow_unmeasured_quality,
                          tie_margin=tie_margin, notes=empty)
