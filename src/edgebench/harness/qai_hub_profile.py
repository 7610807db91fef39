"""Qualcomm AI Hub profiles -> store columns. Pure: no ``qai_hub`` import, no I/O.

A profile is the dict the ``qai_hub`` client gives (``InferenceJob.download_profile()``, its
``_profile_pb_to_python_dict``), keys verbatim:

- ``execution_summary``: ``estimated_inference_time`` (µs), ``warm_load_time`` (µs),
  ``inference_memory_peak_range`` ([low, high] bytes; profile format >= 1.1),
  ``estimated_inference_peak_memory`` (bytes), ``all_inference_times`` (µs; >= 1.2);
- ``execution_detail``: one dict per layer with ``name``, ``type``, ``compute_unit`` (``NPU``,
  ``GPU``, ``CPU``) and optionally ``execution_time`` / ``execution_cycles``.

The numbers are the service's on-device profile of compiled graphs, not edgebench's token
timeline: every row says ``measurement = "estimated"`` and how TTFT and decode speed were
derived. An LLM exported as prompt-processor and token-generator graphs (names containing
``prompt`` / ``token``; parts such as ``prompt_1_of_4`` add up) gives TTFT = the prompt
processor's latency and decode tok/s = 1000 / the token generator's latency (ms). edgebench's
own ``qnn`` artifact is one static-shape scoring graph ``[1, N]``: its latency is the TTFT of an
N-token prompt, and there is no decode figure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.errors import ConfigError

SERVICE = "Qualcomm AI Hub"
MB = 2**20
US_PER_MS = 1000.0
SUMMARY = "execution_summary"
DETAIL = "execution_detail"
UNITS = ("NPU", "GPU", "CPU")
#: The least a time may be (µs): anything smaller is no measurement (and 1000 / it no speed).
TINY = 1e-6


@dataclass(frozen=True)
class JobFacts:
    """What the jobs say besides the profile (the runner reads them from the client; an
    imported file has none of them)."""

    job_ids: tuple[str, ...] = ()
    device_name: str | None = None
    device_os: str | None = None
    chipset: str | None = None  # a device attribute, e.g. "chipset:qualcomm-snapdragon-8-elite"
    qairt_version: str | None = None
    client_version: str | None = None
    failure: str | None = None  # the failing job's reason (``JobStatus.message``)
    settings: dict[str, Any] = field(default_factory=dict)  # what was asked: runtime, options


@dataclass(frozen=True)
class Graph:
    """One profiled graph's figures."""

    name: str
    inference_ms: float
    inference_ms_samples: tuple[float, ...]
    load_ms: float | None
    peak_range_mb: tuple[float, float] | None
    units: dict[str, int]


def chipset_name(attribute: str | None) -> str | None:
    """``"chipset:qualcomm-snapdragon-8-elite"`` -> ``"Snapdragon 8 Elite"`` (``cpu_model``, so
    the ``snapdragon`` target matches); ``"…-8gen3"`` -> ``"Snapdragon 8 Gen 3"``."""
    if not attribute:
        return None
    name = attribute.split(":", 1)[-1].removeprefix("qualcomm-")
    words = re.split(r"[-\s]+", re.sub(r"(?<=\d)gen(?=\d)", " gen ", name))
    words = [w.capitalize() if w.isalpha() else w.upper() for w in words if w]
    return " ".join(words)


def _num(value: Any, where: str, *, zero: bool = False) -> float:
    """A finite number > 0 (``zero``: >= 0); else a ConfigError naming ``where``: a latency
    of 0, a negative one or NaN is no figure, and 1000 / it no speed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {_short(value)}")
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or f < 0 or (f < TINY and not zero):
        raise ConfigError(f"{where}: expected a finite number "
                          f"{'of at least 0' if zero else 'above 0'}, got {_short(value)}")
    return f


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python converts
        text = "an integer of thousands of digits"
    return _printable(text)


def _printable(text: str, width: int = 40) -> str:
    """``text`` cut to ``width`` characters, on one line: others than printable as ``\\xNN``."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:width])


def graph(name: str, profile: Mapping[str, Any]) -> Graph:
    """The figures of one profile dict.

    Raises:
        ConfigError: a key missing or of the wrong type (named).
    """
    if not isinstance(profile, Mapping) or SUMMARY not in profile or DETAIL not in profile:
        raise ConfigError(f"graph {name!r}: not an AI Hub profile (expected the keys "
                          f"{SUMMARY!r} and {DETAIL!r})")
    summary, detail = profile[SUMMARY], profile[DETAIL]
    if not isinstance(summary, Mapping) or not isinstance(detail, list):
        raise ConfigError(f"graph {name!r}: {SUMMARY} must be an object, {DETAIL} a list")
    where = f"graph {name!r} {SUMMARY}"
    if summary.get("estimated_inference_time") is None:
        raise ConfigError(f"{where}: no estimated_inference_time")
    inference = _num(summary["estimated_inference_time"], f"{where}.estimated_inference_time")
    times = summary.get("all_inference_times") or ()
    if not isinstance(times, (list, tuple)):
        raise ConfigError(f"{where}.all_inference_times: expected a list of times")
    samples = tuple(_num(t, f"{where}.all_inference_times") / US_PER_MS for t in times)
    load = summary.get("warm_load_time")
    rng = summary.get("inference_memory_peak_range")
    if rng is not None:
        at = f"{where}.inference_memory_peak_range"
        if not isinstance(rng, (list, tuple)) or len(rng) != 2:
            raise ConfigError(f"{at}: expected [low, high]")
        rng = (_num(rng[0], at, zero=True) / MB, _num(rng[1], at, zero=True) / MB)
        if rng[1] < rng[0]:
            raise ConfigError(f"{at}: high {rng[1]:.6g} MB is below low {rng[0]:.6g} MB")
    units = dict.fromkeys(UNITS, 0)
    for i, layer in enumerate(detail):
        unit = layer.get("compute_unit") if isinstance(layer, Mapping) else None
        if not isinstance(unit, str):
            raise ConfigError(f"graph {name!r} {DETAIL}[{i}]: no compute_unit")
        unit = unit if unit in UNITS else _printable(unit)  # printable, one line
        units[unit] = units.get(unit, 0) + 1
    return Graph(name, inference / US_PER_MS, samples,
                 None if load is None else _num(load, f"{where}.warm_load_time", zero=True)
                 / US_PER_MS,
                 rng, units)


def role(name: str) -> str:
    """``prompt``, ``token`` or ``graph`` (neither) from a graph's name: ``prompt`` for a
    prompt processor (``prompt_processor``, ``prompt_1_of_4``), ``token`` for a token generator
    (``token_generator``, ``token_2_of_4``); a ``Generator`` or ``Tokenizer`` is neither."""
    low = name.lower()
    if "prompt" in low:
        return "prompt"
    if re.search(r"token(?!i[sz]er)", low):
        return "token"
    return "graph"


def source(facts: JobFacts, origin: str | None = None) -> str:
    """The ``source`` column: the service, the client and QAIRT versions, or the file."""
    parts = [SERVICE]
    if facts.client_version:
        parts.append(f"qai-hub {facts.client_version}")
    if facts.qairt_version:
        parts.append(f"QAIRT {facts.qairt_version}")
    text = parts[0] + (f" ({', '.join(parts[1:])})" if parts[1:] else "")
    return f"{text}: {origin}" if origin else text


def columns(profiles: Mapping[str, Mapping[str, Any]], facts: JobFacts,
            prompt_tokens: int | None = None, imported_from: str | None = None
            ) -> dict[str, Any]:
    """Store columns of one AI Hub result: ``profiles`` maps each graph's name to its profile
    dict (one entry for a single graph). A failed job (``facts.failure``) gives an ``error``
    row whose message is the service's reason and no numbers; graphs that are neither one
    scoring graph nor prompt-processor / token-generator graphs an ``unavailable`` row saying
    which. ``imported_from``: the file a downloaded profile came from (the message says so).

    Raises:
        ConfigError: a profile that is not the client's dict, or a latency that is not a
            finite number above 0 (the key named).
    """
    common: dict[str, Any] = {
        "measurement": "estimated", "framework_version": facts.qairt_version,
        "device_name": facts.device_name, "os": facts.device_os,
        "cpu_model": chipset_name(facts.chipset), "job_ids": ",".join(facts.job_ids) or None,
        "runtime_settings": json.dumps(facts.settings, sort_keys=True, separators=(",", ":"),
                                       default=str) if facts.settings else None,
        "energy_method": "none",
        # this machine's facts do not describe the device that ran the graphs
        "cpu_flags": None, "cpu_cores_physical": None, "cpu_cores_logical": None,
        "ram_total_mb": None, "accelerators": None, "python_version": None,
    }
    if facts.failure is not None:
        return {**common, "status": "error",
                "message": f"{SERVICE} job failed: {facts.failure}"}
    if not profiles:
        return {**common, "status": "error", "message": f"{SERVICE} returned no profile"}
    graphs = [graph(n, p) for n, p in profiles.items()]
    units = {u: sum(g.units.get(u, 0) for g in graphs) for u in UNITS}
    ranges = [g.peak_range_mb for g in graphs if g.peak_range_mb]
    by_role: dict[str, list[Graph]] = {}
    for g in graphs:
        by_role.setdefault(role(g.name), []).append(g)
    cols: dict[str, Any] = {**common, "status": "ok",
                            "accel_nodes": units["NPU"], "gpu_nodes": units["GPU"],
                            "cpu_nodes": units["CPU"]}
    if ranges:
        cols["peak_mem_range_mb"] = [max(r[0] for r in ranges), max(r[1] for r in ranges)]
    loads = [g.load_ms for g in graphs if g.load_ms is not None]
    if loads:
        cols["load_s"] = sum(loads) / 1000
    notes = [f"estimated by {SERVICE}"
             + (f", imported from {imported_from}" if imported_from else "")
             + ": the service's on-device profile of the compiled graphs, not edgebench's "
             "token timeline"]
    prompt = by_role.get("prompt") or (by_role.get("graph") if len(graphs) == 1 else None)
    token = by_role.get("token")
    unused = [g.name for g in by_role.get("graph", []) if not (prompt and g in prompt)]
    if not prompt and not token:
        names = ", ".join(repr(n) for n in unused[:8]) + (", ..." if len(unused) > 8 else "")
        return {**common, "status": "unavailable",
                "message": "; ".join(notes) + f"; no figure: the {len(graphs)} graphs ({names})"
                " are neither one scoring graph nor prompt-processor / token-generator graphs "
                "(names with 'prompt' / 'token')"}
    if unused:
        notes.append("graphs not used: " + ", ".join(repr(n) for n in unused[:8])
                     + (", ..." if len(unused) > 8 else ""))
    if prompt:
        ttft = sum(g.inference_ms for g in prompt)
        cols["ttft_ms"] = ttft
        if len(prompt) == 1 and prompt[0].inference_ms_samples:
            s = list(prompt[0].inference_ms_samples)
            cols.update(ttft_ms_samples=s, ttft_ms_min=min(s), ttft_ms_max=max(s))
        if prompt_tokens:
            cols["prefill_tok_s"] = prompt_tokens / (ttft / 1000)
        what = ("prompt-processor graphs'" if len(prompt) > 1 else "prompt-processor graph's"
                ) if "prompt" in by_role else "scoring graph's"
        notes.append(f"ttft_ms = the {what} latency ({ttft:.3f} ms"
                     + (f", {prompt_tokens} tokens)" if prompt_tokens else ")"))
    if token:
        tg = sum(g.inference_ms for g in token)
        cols["decode_tok_s"] = 1000.0 / tg
        cols["tpot_ms"] = tg
        notes.append(f"decode_tok_s = 1000 / the token-generator graph's latency ({tg:.3f} ms)")
    elif prompt:
        notes.append("no token-generator graph: no decode speed")
    total = sum(sum(g.units.values()) for g in graphs)
    if units["CPU"]:
        notes.append(f"{units['CPU']} of {total} layers fell back to the CPU")
    other: dict[str, int] = {}
    for g in graphs:
        for u, n in g.units.items():
            if u not in UNITS and n:
                other[u] = other.get(u, 0) + n
    if other:
        notes.append(f"{sum(other.values())} of {total} layers on a compute unit edgebench "
                     "does not know (" + ", ".join(f"{u!r}: {n}" for u, n in other.items())
                     + "): not in accel_nodes, gpu_nodes or cpu_nodes")
    for k in ("ttft_ms", "prefill_tok_s", "decode_tok_s", "tpot_ms"):
        if k in cols and not (math.isfinite(cols[k]) and cols[k] > 0):
            raise ConfigError(f"{k} {cols[k]!r} from the profile's latencies is not a finite "
                              "number above 0")
    cols["message"] = "; ".join(notes)
    return cols
