"""A suite as frozen data, validated by a pydantic model.

Every value is checked where the suite is made (a YAML file, a ``Suite(...)`` call, a
``Suite.override`` from command-line flags, ``dataclasses.replace``), and any problem becomes
one ``ConfigError`` line naming the file, the key with its path (``include[2].threads``) and
what was expected, e.g. ``suite.yaml: include[0].threads: expected a positive integer or
'auto', got 'abc'``.

Bounds (values land in the store's int64 columns and drive loops and timers):

- ``prompt_tokens``, ``new_tokens``: 1 to ``MAX_TOKENS`` (1,048,576)
- ``depths`` (tokens already in the KV cache when the measured prompt starts): 0 to
  ``MAX_TOKENS``
- ``kv_cache``: a KV-cache type some runtime has (``registry.KV_CACHE_TYPES``) or ``default``
- ``prompt_files``: ``synthetic``, a built-in prompt set or a JSONL file (at most
  ``prompt_file.MAX_PROMPTS`` prompts, each at most ``MAX_TOKENS`` tokens)
- ``threads``: 1 to ``MAX_THREADS`` (4096), or ``auto``
- ``repetitions``: 1 to ``MAX_REPETITIONS`` (10,000); ``warmup``: 0 to 10,000
- ``quality_chunks``: 1 to ``MAX_QUALITY_CHUNKS`` (10,000)
- ``timeout_s``: finite, > 0 and at most ``MAX_TIMEOUT_S`` (one week);
  ``cooldown_s``: finite, 0 to ``MAX_COOLDOWN_S`` (one hour)
- a suite plans at most ``MAX_CELLS`` (100,000) runs, counted before expanding
- a suite file is at most ``MAX_SUITE_BYTES`` (1 MiB), UTF-8, and its YAML expands (aliases
  included) to at most ``MAX_YAML_NODES`` (100,000) values, nested at most ``MAX_YAML_DEPTH``
  (64) deep
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.harness.registry import suggest
from edgebench.suites.validate import (  # noqa: F401  (the bounds are part of this API)
    AXES,
    AXIS_KEYS,
    FIELDS,
    MAX_CELLS,
    MAX_REPETITIONS,
    MAX_THREADS,
    MAX_TOKENS,
    MAX_WARMUP,
    planned_cells,
    show,
    validate,
)
from edgebench.suites.yamlfile import MAX_SUITE_BYTES, parse_yaml, read_file  # noqa: F401

#: Command-line flags that set a suite's fields (``Suite.override`` names them in errors).
FLAGS = {
    "models": "--model", "frameworks": "--framework", "precisions": "--precision",
    "devices": "--device", "prompt_tokens": "--prompt-tokens", "new_tokens": "--new-tokens",
    "threads": "--threads", "repetitions": "--repetitions", "warmup": "--warmup",
    "sustain": "--sustain", "depths": "--depth", "kv_cache": "--kv-cache",
    "prompt_files": "--prompt-file",
}


@dataclass(frozen=True)
class Suite:
    """A sweep: the product of its axes, plus includes, minus excludes.

    Validated on construction (``__post_init__``); values are normalised (axes to tuples,
    include/exclude entries to dicts). Raises ConfigError naming ``source`` and the key.
    """

    name: str
    description: str = ""
    models: tuple[str, ...] = ("gemma-3-270m",)
    frameworks: tuple[str, ...] = ("llama-cpp",)
    precisions: tuple[str, ...] = ("q4_k_m",)
    devices: tuple[str, ...] = ("cpu",)
    prompt_tokens: tuple[int, ...] = (64,)
    new_tokens: tuple[int, ...] = (64,)
    threads: tuple[int | str, ...] = ("auto",)
    #: tokens already in the KV cache (filled untimed before each repetition) when the
    #: measured prompt starts; 0: an empty cache, as before the axis existed
    depths: tuple[int, ...] = (0,)
    #: the KV cache's element type, in the runtime's own names (llama.cpp ``q8_0``, OpenVINO
    #: ``u8``, MLX ``8bit``); ``default``: the runtime's own, nothing imposed (as before the
    #: axis existed). A type a runtime lacks is a ``skipped`` row listing the ones it has.
    kv_cache: tuple[str, ...] = ("default",)
    #: ``synthetic``: the fixed prompt text cut to ``prompt_tokens`` (as before the axis
    #: existed); else a JSONL prompt file (llm_bench's format) or a built-in set's name: every
    #: repetition runs each of its prompts, one row per cell and file
    prompt_files: tuple[str, ...] = ("synthetic",)
    repetitions: int = 5
    warmup: int = 1
    #: seconds of rest before each timed repetition after the first (in the measuring child)
    #: and before each measured cell after the first (in the sweep); recorded in every row
    cooldown_s: float = 0.0
    timeout_s: float = 600.0
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    include: tuple[Mapping[str, Any], ...] = ()
    exclude: tuple[Mapping[str, Any], ...] = ()
    #: ``edgebench run`` also scores quality (perplexity, KLD) for every cell after the speed
    #: runs; ``quality_chunks`` bounds its cost (see ``edgebench quality``).
    quality: bool = False
    quality_chunks: int = 4
    #: seconds of continuous generation per cell (``edgebench run --sustain 10m``; an include
    #: entry's ``sustain`` asks it for that cell only); None: the usual repetitions
    sustain: float | None = None
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        values = validate({f: getattr(self, f) for f in FIELDS}, str(self.source))
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def override(self, **axes: Any) -> Suite:
        """A copy with some axes or settings replaced (None values are ignored).

        Raises:
            ConfigError: a bad value, named by its flag (``--prompt-tokens: expected ...``).
        """
        changes = {k: _as_tuple(v) if k in AXES else v for k, v in axes.items() if v is not None}
        if not changes:
            return self
        unknown = [k for k in changes if k not in FIELDS]
        if unknown:
            raise TypeError(f"Suite.override: unknown field {unknown[0]!r}")
        source = f"{self.source} with command-line flags"
        merged = {f: getattr(self, f) for f in FIELDS} | changes
        validate(merged, source, flags={k: FLAGS[k] for k in changes if k in FLAGS})
        return dataclasses.replace(self, **changes, source=source)


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


_DEFAULTS = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
             else f.default for f in dataclasses.fields(Suite)
             if f.name != "source" and (f.default is not dataclasses.MISSING
                                        or f.default_factory is not dataclasses.MISSING)}


# --------------------------------------------------------------------------- value checks

def suite_from_mapping(data: Any, source: str) -> Suite:
    """Build a Suite from parsed YAML, rejecting unknown keys and bad values by name."""
    if data is None:
        raise ConfigError(f"{source} is empty: a suite is a YAML mapping of settings")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a suite must be a YAML mapping, got {show(data)}")
    values = {**_DEFAULTS, "name": Path(source).stem, **data}
    return Suite(**validate(values, source), source=source)


def builtin_suites() -> list[str]:
    """Names of the suites shipped with edgebench."""
    folder = resources.files("edgebench.suites") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a YAML file by path.

    Raises:
        ConfigError: missing or unreadable file (a directory, a device, empty, not UTF-8),
            malformed YAML, unknown keys or bad values.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        text, source = read_file(path), str(path)
    elif name_or_path in builtin_suites():
        res = resources.files("edgebench.suites") / "builtin" / f"{name_or_path}.yaml"
        text, source = res.read_text(encoding="utf-8"), f"builtin suite {name_or_path}"
    else:
        raise ConfigError(
            f"unknown suite {name_or_path!r}{suggest(name_or_path, builtin_suites())}; "
            f"built-in: {', '.join(builtin_suites())} (or give a path to a YAML file)"
        )
    return suite_from_mapping(parse_yaml(text, source), source)
