"""Expand a suite into planned runs: product of axes, includes, excludes, skipped combos."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from edgebench.errors import ConfigError, EdgebenchError
from edgebench.harness.registry import FRAMEWORKS, kv_cache_problem
from edgebench.models.registry import Artifact, ResolvedModel
from edgebench.results.schema import run_key
from edgebench.suites.limits import (
    context_length,
    context_problem,
    option_problem,
    tokenizer_problem,
)
from edgebench.suites.spec import AXES, AXIS_KEYS, Suite


@dataclass(frozen=True)
class PlannedRun:
    """One cell of a sweep, ready to measure (or skipped, with the reason)."""

    model: str
    model_sha256: str | None
    framework: str
    precision: str
    device: str
    prompt_tokens: int
    new_tokens: int
    threads: int
    options: Mapping[str, Any]
    suite: str
    repetitions: int
    warmup: int
    cooldown_s: float
    timeout_s: float
    artifact: Artifact | None = None
    skip_reason: str | None = None
    prepare: str | None = None  # "format:precision" to prepare before measuring
    model_ref: str = ""  # the model as the suite named it (registered name or path)
    prompt_ids: tuple[int, ...] = field(default=(), compare=False)
    note: str | None = field(default=None, compare=False)  # e.g. why --resume measures again
    #: seconds of continuous generation (a sustained run), None for the usual repetitions
    sustain_s: float | None = None
    #: tokens already in the KV cache when the measured prompt starts, filled untimed before
    #: each repetition (part of the identity; 0 hashes as rows made before the axis existed)
    depth: int = 0
    #: the ``depth`` IDs evaluated into the KV cache before the prompt: the start of the same
    #: text whose next ``prompt_tokens`` IDs are ``prompt_ids``
    prefix_ids: tuple[int, ...] = field(default=(), compare=False)
    #: the KV cache's element type imposed on the runtime (its own name); None: its default
    kv_cache: str | None = None
    #: a prompt file's name (``prompt_file.PromptFile.name``) and the hash of its bytes; None:
    #: the synthetic prompt of ``prompt_tokens`` IDs. With a file, ``prompt_tokens`` is the
    #: prompts' mean length and ``prompt_set_ids`` holds each prompt's IDs.
    prompt_file: str | None = None
    prompt_file_sha256: str | None = None
    prompt_set_ids: tuple[tuple[int, ...], ...] = field(default=(), compare=False)

    @property
    def context_tokens(self) -> int:
        """The longest sequence a repetition holds: depth + the longest prompt + new tokens."""
        longest = max((len(p) for p in self.prompt_set_ids), default=self.prompt_tokens)
        return self.depth + longest + self.new_tokens

    @property
    def options_json(self) -> str:
        return json.dumps(dict(self.options), sort_keys=True, separators=(",", ":"))

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256, "framework": self.framework,
            "precision": self.precision, "device": self.device,
            "prompt_tokens": self.prompt_tokens, "new_tokens": self.new_tokens,
            "threads": self.threads, "options": self.options_json,
            "sustain_s": self.sustain_s, "depth": self.depth, "kv_cache": self.kv_cache,
            "prompt_file_sha256": self.prompt_file_sha256,
        }

    @property
    def run_key(self) -> str:
        return run_key(self.identity)


def auto_threads() -> int:
    """Physical cores (what llama.cpp and most runtimes default to), else logical."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def _matches(cell: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(cell.get(k) == v for k, v in pattern.items())


def cells(suite: Suite) -> list[dict[str, Any]]:
    """The suite's axis combinations (singular keys), includes added, excludes removed.

    Raises:
        ConfigError: the excludes remove every run (a sweep with nothing to run is a mistake).
    """
    axes = {AXIS_KEYS[a]: list(getattr(suite, a)) for a in AXES}
    out = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    for inc in suite.include:
        free = {k: v for k, v in axes.items() if k not in inc}
        for combo in itertools.product(*free.values()):
            out.append({**dict(zip(free, combo)), **inc})
    kept = [c for c in out if not any(_matches(c, ex) for ex in suite.exclude)]
    if out and not kept:
        raise ConfigError(f"{suite.source}: nothing to run: the excludes remove all "
                          f"{len(out):,} runs")
    out = kept
    unique: dict[str, dict[str, Any]] = {}
    for c in out:
        unique.setdefault(json.dumps(c, sort_keys=True, default=str), c)
    return list(unique.values())


#: ``(model, prompt file) -> each prompt's token IDs`` with the model's own tokenizer (api.plan
#: passes one that caches them); it raises EdgebenchError when the model cannot tokenize.
PromptSetIds = Callable[[ResolvedModel, Any], list[list[int]]]


def expand(suite: Suite, resolve: Callable[[str], ResolvedModel],
           prompt_set_ids: PromptSetIds | None = None) -> list[PlannedRun]:
    """Planned runs of a suite, in a deterministic order.

    Combinations a framework cannot run (precision, device), whose artifact is absent or
    known not to load (``Artifact.problem``), or whose model's prompt cannot be tokenized
    (:func:`tokenizer_problem`) become runs with ``skip_reason`` set, so they land in the
    store as ``skipped`` rows while the sweep runs the other models. So do cells whose depth +
    prompt + new tokens exceed the model's context length (:func:`context_length`, named in
    the reason), and cells with a depth above 0 on a runtime that cannot fill its KV cache
    before the prompt (``FrameworkSpec.no_depth``), and cells with a KV-cache type the
    runtime lacks (the reason lists the ones it has).

    A cell with a prompt file (``prompt_files``) reads the file (a bad one is a ConfigError
    naming its line) and tokenizes its prompts with ``prompt_set_ids``: the run's
    ``prompt_tokens`` is their mean length, and the longest one must fit the context.

    Raises:
        ConfigError: a prompt file that cannot be read or parsed; a KV-cache type that no
            runtime of the suite has.
    """
    _check_kv_cache_types(suite)
    files: dict[str, Any] = {}
    sets: dict[tuple[str, str], list[list[int]] | str] = {}
    models: dict[str, ResolvedModel] = {}
    problems: dict[str, str | None] = {}
    limits: dict[str, int | None] = {}
    runs = []
    for c in cells(suite):
        if c["model"] not in models:
            models[c["model"]] = resolve(c["model"])
            problems[c["model"]] = tokenizer_problem(models[c["model"]])
            limits[c["model"]] = context_length(models[c["model"]])
        model = models[c["model"]]
        spec = FRAMEWORKS[c["framework"]]
        threads = auto_threads() if c["threads"] == "auto" else int(c["threads"])
        artifact = model.artifact(spec.artifact_format, c["precision"])
        reason, prepare = None, None
        depth = c.get("depth", 0)
        kv_cache = None if c.get("kv_cache", "default") == "default" else c["kv_cache"]
        options = dict(suite.options.get(spec.name, {}))
        prompt_tokens, longest, pfile, set_ids = c["prompt_tokens"], None, None, ()
        set_problem = None
        if c.get("prompt_file", "synthetic") != "synthetic":
            pfile, got = _prompt_set(c["prompt_file"], model, files, sets, prompt_set_ids)
            if isinstance(got, str):  # one skipped run per file, whatever prompt_tokens says
                set_problem, prompt_tokens = got, suite.prompt_tokens[0]
            else:
                set_ids = tuple(tuple(ids) for ids in got)
                lengths = [len(ids) for ids in set_ids]
                prompt_tokens, longest = round(sum(lengths) / len(lengths)), max(lengths)
        longest = longest or prompt_tokens
        too_long = context_problem(depth, longest, c["new_tokens"],
                                   limits[c["model"]], model.name) \
            or option_problem(depth, longest, c["new_tokens"], spec.context_option,
                              options)
        if c["precision"] not in spec.precisions:
            reason = (f"{spec.name} does not run precision {c['precision']} "
                      f"(it runs {', '.join(spec.precisions)})")
        elif c["device"] not in spec.devices:
            reason = (f"{spec.name} has no device {c['device']} "
                      f"(it has {', '.join(spec.devices)})")
        elif depth and spec.no_depth:
            reason = f"{spec.name} cannot measure at depth {depth}: {spec.no_depth}"
        elif kv_problem := kv_cache_problem(spec, kv_cache):
            reason = kv_problem
        elif set_problem:
            reason = set_problem
        elif pfile and depth:
            reason = (f"prompt file {pfile.name} at depth {depth}: its prompts start with the "
                      "model's BOS, which a filled cache before them would put mid-context; "
                      "prompt files are measured at depth 0")
        elif pfile and c.get("sustain", suite.sustain):
            reason = f"a sustained run takes the synthetic prompt, not prompt file {pfile.name}"
        elif problems[c["model"]]:
            reason = problems[c["model"]]
        elif too_long:
            reason = too_long
        elif artifact is None and (spec.artifact_format, c["precision"]) in model.preparable:
            prepare = f"{spec.artifact_format}:{c['precision']}"
        elif artifact is None:
            from edgebench.harness.prepare import refusal

            have = ", ".join(f"{a.format}:{a.precision}" for a in model.artifacts) or "none"
            why = refusal(model, spec.artifact_format)
            reason = (f"no {spec.artifact_format} {c['precision']} artifact of {model.name} "
                      f"(available: {have})" + (f"; it cannot be prepared: {why}" if why else ""))
        elif artifact.problem:
            reason = f"{artifact.path.name} {artifact.problem}: {spec.name} cannot load it"
        runs.append(PlannedRun(
            model=model.name, model_ref=c["model"], model_sha256=model.sha256,
            framework=spec.name,
            precision=c["precision"], device=c["device"], prompt_tokens=prompt_tokens,
            new_tokens=c["new_tokens"], threads=threads,
            options=options, suite=suite.name,
            repetitions=suite.repetitions, warmup=suite.warmup, cooldown_s=suite.cooldown_s,
            timeout_s=suite.timeout_s, artifact=artifact, skip_reason=reason, prepare=prepare,
            sustain_s=c.get("sustain", suite.sustain), depth=depth, kv_cache=kv_cache,
            prompt_file=pfile.name if pfile else None,
            prompt_file_sha256=pfile.sha256 if pfile else None, prompt_set_ids=set_ids,
        ))
    return _unique(runs)


def _unique(runs: list[PlannedRun]) -> list[PlannedRun]:
    """Runs with distinct identities, first kept: a prompt file's cells are the same run
    whatever the suite's ``prompt_tokens`` (the file decides the prompts)."""
    seen: set[str] = set()
    out = []
    for r in runs:
        if r.run_key not in seen:
            seen.add(r.run_key)
            out.append(r)
    return out


def _check_kv_cache_types(suite: Suite) -> None:
    """Refuse a KV-cache type that no runtime of the suite has (a typo or a runtime's type
    asked of another); a type only some have leaves ``skipped`` rows for the others."""
    frameworks = set(suite.frameworks) | {e["framework"] for e in suite.include
                                           if "framework" in e}
    asked = set(suite.kv_cache) | {e["kv_cache"] for e in suite.include if "kv_cache" in e}
    for kv in sorted(asked - {"default"}):
        problems = [kv_cache_problem(FRAMEWORKS[f], kv) for f in sorted(frameworks)]
        if all(problems):
            raise ConfigError(f"{suite.source}: kv_cache {kv}: " + "; ".join(problems))
        for f in sorted(frameworks):  # two ways of setting one thing: which would win is unclear
            spec = FRAMEWORKS[f]
            both = [k for k in spec.kv_cache_options if k in suite.options.get(f, {})]
            if both and kv in spec.kv_cache_types:
                raise ConfigError(f"{suite.source}: options.{f}.{both[0]} and kv_cache {kv} both "
                                  f"set {f}'s KV-cache type: set it with kv_cache only")


def _prompt_set(ref: str, model: ResolvedModel, files: dict, sets: dict,
                prompt_set_ids: PromptSetIds | None) -> tuple[Any, list[list[int]] | str]:
    """The prompt file ``ref`` (read once) and its prompts' IDs for ``model``, or why they
    cannot be tokenized (a ``skipped`` row's reason)."""
    from edgebench.harness.prompt_file import read_prompt_file

    if ref not in files:
        files[ref] = read_prompt_file(ref)
    pfile = files[ref]
    key = (model.name, pfile.sha256)
    if key not in sets:
        if prompt_set_ids is None:
            sets[key] = f"prompt file {pfile.name}: no tokenizer was given to the planner"
        else:
            try:
                sets[key] = prompt_set_ids(model, pfile)
            except EdgebenchError as e:
                sets[key] = f"cannot tokenize prompt file {pfile.name}: {e}"
    return pfile, sets[key]


