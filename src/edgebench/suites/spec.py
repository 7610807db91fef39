"""A suite as frozen data. Unknown keys are rejected, naming the key and the file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from edgebench.errors import ConfigError
from edgebench.harness.registry import DEVICES, FRAMEWORKS, PRECISIONS, check_name, suggest

#: Axes a suite sweeps (each a list; a scalar in YAML means a list of one).
AXES = ("models", "frameworks", "precisions", "devices", "prompt_tokens", "new_tokens", "threads")
#: Singular names of the axes, as used in include/exclude entries and run identities.
AXIS_KEYS = {
    "models": "model", "frameworks": "framework", "precisions": "precision",
    "devices": "device", "prompt_tokens": "prompt_tokens", "new_tokens": "new_tokens",
    "threads": "threads",
}


@dataclass(frozen=True)
class Suite:
    """A sweep: the product of its axes, plus includes, minus excludes."""

    name: str
    description: str = ""
    models: tuple[str, ...] = ("gemma-3-270m",)
    frameworks: tuple[str, ...] = ("llama-cpp",)
    precisions: tuple[str, ...] = ("q4_k_m",)
    devices: tuple[str, ...] = ("cpu",)
    prompt_tokens: tuple[int, ...] = (64,)
    new_tokens: tuple[int, ...] = (64,)
    threads: tuple[int | str, ...] = ("auto",)
    repetitions: int = 5
    warmup: int = 1
    cooldown_s: float = 0.0
    timeout_s: float = 600.0
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    include: tuple[Mapping[str, Any], ...] = ()
    exclude: tuple[Mapping[str, Any], ...] = ()
    #: ``edgebench run`` also scores quality (perplexity, KLD) for every cell after the speed
    #: runs; ``quality_chunks`` bounds its cost (see ``edgebench quality``).
    quality: bool = False
    quality_chunks: int = 4
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        where = self.source
        try:
            for fw in (*self.frameworks, *self.options):
                check_name("framework", fw, FRAMEWORKS)
            for p in self.precisions:
                check_name("precision", p, PRECISIONS)
            for d in self.devices:
                check_name("device", d, DEVICES)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        for axis in ("prompt_tokens", "new_tokens"):
            for v in getattr(self, axis):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ConfigError(f"{where}: {axis} must be positive integers, got {v!r}")
        for t in self.threads:
            if t != "auto" and (not isinstance(t, int) or isinstance(t, bool) or t < 1):
                raise ConfigError(
                    f"{where}: threads must be positive integers or 'auto', got {t!r}"
                )
        if not isinstance(self.repetitions, int) or self.repetitions < 1:
            raise ConfigError(f"{where}: repetitions must be at least 1, got {self.repetitions!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"{where}: warmup must be 0 or more, got {self.warmup!r}")
        if self.timeout_s <= 0 or self.cooldown_s < 0:
            raise ConfigError(f"{where}: timeout_s must be > 0 and cooldown_s >= 0")
        if not isinstance(self.quality, bool):
            raise ConfigError(f"{where}: quality must be true or false, got {self.quality!r}")
        if not isinstance(self.quality_chunks, int) or self.quality_chunks < 1:
            raise ConfigError(f"{where}: quality_chunks must be at least 1, "
                              f"got {self.quality_chunks!r}")
        for kind in ("include", "exclude"):
            for entry in getattr(self, kind):
                if not isinstance(entry, Mapping):
                    raise ConfigError(f"{where}: each {kind} entry must be a mapping")
                for key in entry:
                    if key not in AXIS_KEYS.values():
                        raise ConfigError(
                            f"{where}: unknown key {key!r} in {kind}"
                            f"{suggest(key, AXIS_KEYS.values())}"
                        )

    def override(self, **axes: Any) -> Suite:
        """A copy with some axes or settings replaced (None values are ignored)."""
        changes = {k: _as_tuple(v) if k in AXES else v for k, v in axes.items() if v is not None}
        if not changes:
            return self
        return dataclasses.replace(self, **changes, source=f"{self.source} with command-line flags")


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


_FIELDS = {f.name for f in dataclasses.fields(Suite)} - {"source"}


def suite_from_mapping(data: Any, source: str) -> Suite:
    """Build a Suite from parsed YAML, rejecting unknown keys by name."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a suite must be a YAML mapping, got {type(data).__name__}")
    for key in data:
        if key not in _FIELDS:
            raise ConfigError(f"{source}: unknown key {key!r}{suggest(str(key), _FIELDS)}")
    kwargs = {k: _as_tuple(v) if k in AXES or k in ("include", "exclude") else v
              for k, v in data.items()}
    kwargs.setdefault("name", Path(source).stem)
    if "options" in kwargs and not isinstance(kwargs["options"], Mapping):
        raise ConfigError(f"{source}: options must map a framework to its settings")
    try:
        return Suite(**kwargs, source=source)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from e


def builtin_suites() -> list[str]:
    """Names of the suites shipped with edgebench."""
    folder = resources.files("edgebench.suites") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a YAML file by path.

    Raises:
        ConfigError: missing file, malformed YAML, unknown keys or bad values.
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        text, source = path.read_text(), str(path)
    elif name_or_path in builtin_suites():
        res = resources.files("edgebench.suites") / "builtin" / f"{name_or_path}.yaml"
        text, source = res.read_text(), f"builtin suite {name_or_path}"
    else:
        raise ConfigError(
            f"unknown suite {name_or_path!r}{suggest(name_or_path, builtin_suites())}; "
            f"built-in: {', '.join(builtin_suites())} (or give a path to a YAML file)"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}: malformed YAML{at}: {problem}") from e
    return suite_from_mapping(data, source)
