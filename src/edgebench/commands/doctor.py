"""``edgebench doctor``: what this machine can measure, and what is missing to measure more.

Imports nothing from ``edgebench.cli`` at module level (cli.py registers this command at its
end), so either module can be imported first. Every section is gathered on its own: a section
that fails says so in its rows and the others still print; the command reports, so it exits 0
(2 only for a bad flag, from click).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import sys
from collections.abc import Callable

import click

#: The sections, in the order they print.
SECTIONS = ("runtimes", "devices", "meters", "bandwidth", "converters", "telemetry")
_FORMATS = ("table", "md", "json")


def _optional(module: str, attr: str) -> Callable | None:
    """``module.attr`` where another part of edgebench provides it; None when that module is
    not part of this build (any other import failure propagates to the section's guard)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            return None
        raise
    return getattr(mod, attr, None)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Native libraries a probe loads may print to file descriptor 1 (QNN's does); that text
    goes to stderr so ``--format json`` stays JSON."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _probes() -> dict:
    """Each runtime's spec and its probe: (spec, RunnerInfo, None) or (spec, None, why not)."""
    from edgebench.errors import EdgebenchError
    from edgebench.harness.registry import FRAMEWORKS, load_runner

    out = {}
    with _stdout_to_stderr():
        for spec in FRAMEWORKS.values():
            try:
                out[spec.name] = (spec, load_runner(spec.name).probe(), None)
            except EdgebenchError as e:
                out[spec.name] = (spec, None, str(e))
            except Exception as e:  # noqa: BLE001 - a broken install is reported, not raised
                out[spec.name] = (spec, None, f"probe failed: {type(e).__name__}: {e}")
    return out


def runtimes(probes: dict) -> list[dict]:
    """What ``edgebench frameworks`` lists: installed, version, devices, note (the install
    hint when missing)."""
    rows = []
    for name, (spec, info, why) in probes.items():
        rows.append({"name": name, "format": spec.artifact_format, "installed": info is not None,
                     "version": info.version if info else "",
                     "devices": ", ".join(info.devices) if info else "",
                     "note": info.details.get("note", "") if info else why})
    return rows


def devices(probes: dict) -> list[dict]:
    """One row per runtime and device it supports: available here, or why not."""
    rows = []
    for name, (spec, info, why) in probes.items():
        offered = tuple(info.devices) if info else ()
        for dev in dict.fromkeys((*spec.devices, *offered)):
            if info is None:
                reason = f"runtime not installed: {why}"
            elif dev in offered:
                reason = ""
            else:
                note = info.details.get("note", "")
                reason = (f"{name} {info.version} offers only {', '.join(offered) or 'none'} "
                          "here (this build or this machine lacks it)"
                          + (f"; {note}" if note else ""))
            rows.append({"runtime": name, "device": dev, "available": dev in offered,
                         "why": reason})
    return rows


def meters() -> list[dict]:
    """``edgebench.harness.energy.select.meters_report()``: each energy meter, whether it is
    present and readable, why not and what would enable it."""
    report = _optional("edgebench.harness.energy.select", "meters_report")
    if report is None:
        return [{"name": "energy", "present": False, "readable": False,
                 "why": "this edgebench has no energy meters (edgebench.harness.energy)",
                 "enable": ""}]
    keys = ("name", "present", "readable", "why", "enable")
    return [{**{k: m.get(k) for k in keys}, **m} for m in (dict(m) for m in report())]


def bandwidth() -> list[dict]:
    """The memory bandwidth cached for the roofline (``edgebench.harness.roofline``)."""
    cached = _optional("edgebench.harness.roofline", "cached_bandwidth")
    if cached is None:
        return [{"cached": False, "bandwidth": None,
                 "why": "this edgebench has no roofline (edgebench.harness.roofline)"}]
    got = cached()
    return [{"cached": got is not None, "bandwidth": got,
             "why": "" if got is not None else ("not measured on this machine yet (a sweep "
                                                "measures it between runs)")}]


def converters() -> list[dict]:
    """Per prepare target format: whether its recipe's tools are installed (``tools()``), the
    versions found, what it is made from, and what is missing."""
    from edgebench.errors import EdgebenchError
    from edgebench.harness.prepare import PRECISIONS, RECIPES, recipe
    from edgebench.harness.prepare.recipe import SourceModel

    gguf_source = SourceModel("doctor", "", None, "gguf", "q8_0")  # a GGUF-shipped model
    rows = []
    for fmt in RECIPES:
        row = {"target": fmt, "ready": False, "missing": "", "needs": "", "tools": "",
               "precisions": ", ".join(PRECISIONS[fmt])}
        try:
            mod = recipe(fmt)
            tools = mod.tools()
            row.update(ready=True, tools=", ".join(f"{k} {v}" for k, v in tools.items()))
            deps = {str(t).split(":")[0] for p in PRECISIONS[fmt]
                    for t in mod.dependencies(gguf_source, p)} - {fmt}
            row["needs"] = ", ".join(f"{d} (from a GGUF source)" for d in sorted(deps))
            env = getattr(mod, "ENV", None)
            if env is not None:  # a pinned converter environment, made on the first build
                from edgebench.locations import cache_dir

                if not (env.path(cache_dir()) / ".complete").exists():
                    row["missing"] = (f"the {env.name} converter environment is made on the "
                                      "first build with pip (needs the package index)")
        except EdgebenchError as e:
            row["missing"] = str(e)
        except Exception as e:  # noqa: BLE001
            row["missing"] = f"{type(e).__name__}: {e}"
        rows.append(row)
    return rows


def telemetry() -> list[dict]:
    """What a row's telemetry columns read on this machine, and from where (or why not)."""
    from edgebench.harness import telemetry as t

    isa = t.cpu_isa()
    freq, freq_src = t.cpu_freq_why()
    temp, temp_src = t.cpu_temp_why()
    model, driver, gpu_src = t.gpu_why()
    cpus = t.affinity_cpus()
    return [
        {"reading": "cpu_isa", "readable": isa is not None, "value": isa,
         "source": ("sysctl" if platform.system() == "Darwin" else "/proc/cpuinfo")
         if isa is not None else "neither /proc/cpuinfo nor sysctl answers here"},
        {"reading": "cpu_freq_mhz", "readable": freq is not None, "value": freq,
         "source": freq_src},
        {"reading": "cpu_temp_c", "readable": temp is not None, "value": temp,
         "source": temp_src},
        {"reading": "gpu_model, gpu_driver", "readable": model is not None,
         "value": f"{model}, {driver}" if model else None, "source": gpu_src},
        {"reading": "cores (affinity)", "readable": cpus is not None, "value": cpus,
         "source": "sched_getaffinity"},
    ]


def report() -> dict[str, list[dict]]:
    """Every section's rows; a section that fails is one row naming the failure."""
    probes: dict | None = None

    def probed() -> dict:
        nonlocal probes
        if probes is None:
            probes = _probes()
        return probes

    gather = {"runtimes": lambda: runtimes(probed()), "devices": lambda: devices(probed()),
              "meters": meters, "bandwidth": bandwidth, "converters": converters,
              "telemetry": telemetry}
    out = {}
    for name in SECTIONS:
        try:
            out[name] = gather[name]()
        except Exception as e:  # noqa: BLE001 - doctor reports; it does not fail
            out[name] = [{"error": f"{type(e).__name__}: {e}"}]
    return out


@click.command()
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table",
              show_default=True, help="Output format (json: every section as a list).")
def doctor(fmt):
    """What this machine can measure, and what is missing to measure more.

    Sections: runtimes (installed, version), devices (per runtime: available, or why not),
    meters (energy: present, readable, or what would enable each: a permission, a package, a
    kernel module), bandwidth (the roofline's cached memory bandwidth), converters (which
    prepare targets can be made, what is missing), telemetry (CPU ISA flags, frequency,
    temperature, GPU: readable here or not). Always exits 0: it reports.
    """
    import pandas as pd

    from edgebench.cli import _emit
    from edgebench.output import render

    found = report()
    if fmt == "json":
        click.echo(json.dumps(found, indent=2, default=str))
        return
    for name in SECTIONS:
        df = pd.DataFrame(found[name])
        if fmt == "md":
            click.echo(f"### {name}\n")
            _emit(render(df, fmt))
            click.echo()
        else:
            _emit(render(df, fmt, title=name))
