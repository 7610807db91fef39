"""The checks behind ``Suite``: a pydantic model of its fields, and one-line errors.

Every problem becomes one ``ConfigError`` line naming the source, the key with its path
(``include[2].threads``) and what was expected. The bounds are listed in ``suites/spec.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edgebench.errors import ConfigError
from edgebench.harness.registry import (
    DEVICES,
    FRAMEWORKS,
    KV_CACHE_TYPES,
    PRECISIONS,
    check_name,
    suggest,
)

#: Axes a suite sweeps (each a list; a scalar in YAML means a list of one).
AXES = ("models", "frameworks", "precisions", "devices", "prompt_tokens", "new_tokens", "threads",
        "depths", "kv_cache", "prompt_files")
#: Singular names of the axes, as used in include/exclude entries and run identities.
AXIS_KEYS = {
    "models": "model", "frameworks": "framework", "precisions": "precision",
    "devices": "device", "prompt_tokens": "prompt_tokens", "new_tokens": "new_tokens",
    "threads": "threads", "depths": "depth", "kv_cache": "kv_cache",
    "prompt_files": "prompt_file",
}

MAX_TOKENS = 1_048_576
MAX_THREADS = 4096
MAX_REPETITIONS = 10_000
MAX_WARMUP = 10_000
MAX_QUALITY_CHUNKS = 10_000
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_COOLDOWN_S = 3600.0
MAX_CELLS = 100_000
#: Bounds of a framework's ``options`` (values passed to the runtime, stored as JSON).
MAX_OPTION_VALUES = 10_000
MAX_OPTION_DEPTH = 16
MAX_TEXT = 4096


def show(value: Any) -> str:
    """A value as the user wrote it, short: null, true, 'abc', 1.5, a list, a mapping."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            text = repr(value)
        except ValueError:  # more digits than Python converts to text
            return f"an integer of {value.bit_length()} bits"
        return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
    if isinstance(value, (str, float)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "...'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _fail(text: str, at: tuple = ()) -> NoReturn:
    """Raise the error pydantic collects; ``at`` extends its location (keys inside a value)."""
    raise PydanticCustomError("edgebench", "{text}", {"text": text, "at": at})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(lo: int, hi: int, also: str = "") -> Callable[[Any], int]:
    """An integer from ``lo`` (0 or 1) to ``hi`` (or the word ``also``); bool is no integer."""
    what = "a positive integer" if lo == 1 else f"an integer of {lo} or more"
    bounded = (f"a positive integer up to {hi:,}" if lo == 1
               else f"an integer from {lo} to {hi:,}")

    def check(value: Any) -> int:
        if also and isinstance(value, str) and value == also:
            return value
        alt = f" or {also!r}" if also else ""
        if not _is_int(value) or value < lo:
            _fail(f"expected {what}{alt}, got {show(value)}")
        if value > hi:
            _fail(f"expected {bounded}{alt}, got {show(value)}")
        return int(value)

    return check


def _seconds(lo_open: bool, hi: float) -> Callable[[Any], float]:
    """A finite number of seconds, above 0 (``lo_open``) or from 0, at most ``hi``."""
    what = (f"a number of seconds above 0 and at most {hi:g}" if lo_open
            else f"a number of seconds from 0 to {hi:g}")

    def check(value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            _fail(f"expected {what}, got {show(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isnan(number) or number < 0 or (lo_open and number == 0) or number > hi:
            _fail(f"expected {what}, got {show(value)}")
        return number

    return check


def _utf8(value: str, what: str, at: tuple = ()) -> str:
    """``value`` if it encodes as UTF-8; a lone surrogate (``"\\ud800"`` in YAML, a file name's
    undecodable byte from the command line) cannot be stored, printed or passed to a runtime."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        _fail(f"expected {what} in valid UTF-8 text, got {show(value)} (character "
              f"{e.start + 1} is a lone surrogate)", at)
    return value


def _text(what: str, empty: bool = True) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None and empty:  # `description:` with nothing after it
            return ""
        if not isinstance(value, str) or (not empty and not value.strip()):
            _fail(f"expected {what}, got {show(value)}")
        if len(value) > MAX_TEXT or "\x00" in value:
            _fail(f"expected {what} (at most {MAX_TEXT} characters, no NUL), "
                  f"got {show(value)}")
        return _utf8(value, what)

    return check


def _known(kind: str, choices: Iterable[str]) -> Callable[[Any], str]:
    names = tuple(choices)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            _fail(f"expected a {kind} name, got {show(value)}")
        _utf8(value, f"a {kind} name")
        try:
            return check_name(kind, value, names)
        except ConfigError as e:
            _fail(str(e))

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(f"expected true or false, got {show(value)}")
    return value


def _check_sustain(value: Any) -> float | None:
    """A sustained-run duration: ``10m``, ``90s``, ``1h30m`` or seconds; null: none."""
    from edgebench.harness.sustain import parse_duration

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        _fail(f"expected a duration such as 10m, 90s or 1h30m, got {show(value)}")
    try:
        return parse_duration(str(value))
    except ConfigError as e:
        _fail(str(e).removeprefix("--sustain: "))


_check_model = _text("a model name or path", empty=False)
_check_framework = _known("framework", FRAMEWORKS)
_check_precision = _known("precision", PRECISIONS)
_check_device = _known("device", DEVICES)
_check_tokens = _integer(1, MAX_TOKENS)
_check_threads = _integer(1, MAX_THREADS, also="auto")
#: tokens in the KV cache before the measured prompt (0: none), bounded like the lengths
_check_depth = _integer(0, MAX_TOKENS)
#: a KV-cache element type some runtime has, or ``default`` (the runtime's own, nothing imposed)
_check_kv_cache = _known("KV-cache type", KV_CACHE_TYPES)
#: ``synthetic`` (the fixed prompt text cut to ``prompt_tokens``), a built-in prompt set's name
#: or the path of a JSONL prompt file (read when the suite is planned)
_check_prompt_file = _text("a prompt file path, a built-in prompt set or 'synthetic'",
                           empty=False)

#: axis -> (check of one value, what one value is)
_AXIS_CHECKS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "models": (_check_model, "a model name or path"),
    "frameworks": (_check_framework, "a framework name"),
    "precisions": (_check_precision, "a precision name"),
    "devices": (_check_device, "a device name"),
    "prompt_tokens": (_check_tokens, "a positive integer"),
    "new_tokens": (_check_tokens, "a positive integer"),
    "threads": (_check_threads, "a positive integer or 'auto'"),
    "depths": (_check_depth, "an integer of 0 or more"),
    "kv_cache": (_check_kv_cache, "a KV-cache type"),
    "prompt_files": (_check_prompt_file, "a prompt file"),
}


def _listify(what: str) -> Callable[[Any], tuple]:
    def before(value: Any) -> tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
        if value is None or isinstance(value, Mapping):
            _fail(f"expected {what} or a list of them, got {show(value)}")
        return (value,)

    return before


def _nonempty(value: tuple) -> tuple:
    if not value:
        raise PydanticCustomError("empty", "is empty: nothing to run")
    return value


def _axis(axis: str) -> Any:
    check, what = _AXIS_CHECKS[axis]
    return Annotated[tuple[Annotated[Any, PlainValidator(check)], ...],
                     BeforeValidator(_listify(what)), AfterValidator(_nonempty)]


def _json_value(value: Any, at: tuple, budget: list[int]) -> Any:
    """An option value as JSON data (the row stores it), bounded in size and depth."""
    budget[0] -= 1
    if budget[0] < 0:
        _fail(f"more than {MAX_OPTION_VALUES:,} values", at)
    if len(at) > MAX_OPTION_DEPTH:
        _fail(f"nested more than {MAX_OPTION_DEPTH} levels deep", at)
    if isinstance(value, str):
        return _utf8(value, "a text", at)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            _fail(f"expected an integer that fits 64 bits, got {show(value)}", at)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(f"expected a finite number, got {show(value)}", at)
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, (*at, i), budget) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(f"expected setting names to be text, got {show(k)}", at)
            _utf8(k, "a setting name", at)
            out[k] = _json_value(v, (*at, k), budget)
        return out
    _fail("expected a number, text, true/false, null, a list or a mapping, "
          f"got {show(value)}", at)


def _check_options(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:  # `options:` with nothing under it
        return {}
    if not isinstance(value, Mapping):
        _fail(f"expected a mapping of framework to its settings, got {show(value)}")
    budget = [MAX_OPTION_VALUES]
    out: dict[str, dict[str, Any]] = {}
    for fw, settings in value.items():
        if not isinstance(fw, str):
            _fail(f"expected a framework name, got {show(fw)}")
        _utf8(fw, "a framework name")
        try:
            check_name("framework", fw, FRAMEWORKS)
        except ConfigError as e:
            _fail(str(e))
        if not isinstance(settings, Mapping):
            _fail(f"expected a mapping of settings (e.g. {{n_ctx: 512}}), got {show(settings)}",
                  (fw,))
        known = FRAMEWORKS[fw].options
        for name in settings if known is not None else ():
            if isinstance(name, str) and name not in known:
                _fail(f"unknown {fw} option {show(name)}{suggest(name, known)}; known: "
                      f"{', '.join(known)}", (fw,))
        out[fw] = _json_value(settings, (fw,), budget)
    return out


_ENTRY_KEYS = (*AXIS_KEYS.values(), "sustain")
_UNSET: Any = object()


class _Entry(BaseModel):
    """One include/exclude entry: some axes (singular keys), each one value of that axis."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Annotated[Any, PlainValidator(_check_model)] = _UNSET
    framework: Annotated[Any, PlainValidator(_check_framework)] = _UNSET
    precision: Annotated[Any, PlainValidator(_check_precision)] = _UNSET
    device: Annotated[Any, PlainValidator(_check_device)] = _UNSET
    prompt_tokens: Annotated[Any, PlainValidator(_check_tokens)] = _UNSET
    new_tokens: Annotated[Any, PlainValidator(_check_tokens)] = _UNSET
    threads: Annotated[Any, PlainValidator(_check_threads)] = _UNSET
    depth: Annotated[Any, PlainValidator(_check_depth)] = _UNSET
    kv_cache: Annotated[Any, PlainValidator(_check_kv_cache)] = _UNSET
    prompt_file: Annotated[Any, PlainValidator(_check_prompt_file)] = _UNSET
    sustain: Annotated[Any, PlainValidator(_check_sustain)] = _UNSET


def _entry_before(value: Any) -> Any:
    if isinstance(value, _Entry):
        return value
    if not isinstance(value, Mapping):
        _fail(f"expected a mapping of axis values, e.g. {{framework: ort-genai, precision: "
              f"int4}}, got {show(value)}")
    if not value:
        raise PydanticCustomError("empty_entry", "is empty")
    for key in value:
        if not isinstance(key, str):
            _fail(f"unknown key {key!r}; known: {', '.join(_ENTRY_KEYS)}")
    return dict(value)


def _entry_after(entry: _Entry) -> dict[str, Any]:
    return {k: getattr(entry, k) for k in _ENTRY_KEYS if k in entry.model_fields_set}


_EntryT = Annotated[_Entry, BeforeValidator(_entry_before), AfterValidator(_entry_after)]


def _entries(value: Any) -> Any:
    if value is None:  # `include:` with nothing under it
        return ()
    if isinstance(value, Mapping):  # one entry without the list
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    _fail(f"expected a list of mappings, got {show(value)}")


class _SuiteModel(BaseModel):
    """The validated fields of a Suite (the dataclass keeps the public shape)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: Annotated[Any, PlainValidator(_text("a name", empty=False))]
    description: Annotated[Any, PlainValidator(_text("a text"))]
    models: _axis("models")
    frameworks: _axis("frameworks")
    precisions: _axis("precisions")
    devices: _axis("devices")
    prompt_tokens: _axis("prompt_tokens")
    new_tokens: _axis("new_tokens")
    threads: _axis("threads")
    depths: _axis("depths")
    kv_cache: _axis("kv_cache")
    prompt_files: _axis("prompt_files")
    repetitions: Annotated[Any, PlainValidator(_integer(1, MAX_REPETITIONS))]
    warmup: Annotated[Any, PlainValidator(_integer(0, MAX_WARMUP))]
    cooldown_s: Annotated[Any, PlainValidator(_seconds(False, MAX_COOLDOWN_S))]
    timeout_s: Annotated[Any, PlainValidator(_seconds(True, MAX_TIMEOUT_S))]
    options: Annotated[Any, PlainValidator(_check_options)]
    include: Annotated[tuple[_EntryT, ...], BeforeValidator(_entries)] = Field(default=())
    exclude: Annotated[tuple[_EntryT, ...], BeforeValidator(_entries)] = Field(default=())
    quality: Annotated[Any, PlainValidator(_flag)]
    quality_chunks: Annotated[Any, PlainValidator(_integer(1, MAX_QUALITY_CHUNKS))]
    sustain: Annotated[Any, PlainValidator(_check_sustain)]

    @model_validator(mode="after")
    def _bounded(self) -> _SuiteModel:
        n = planned_cells(self)
        if n > MAX_CELLS:
            sizes = " x ".join(f"{len(getattr(self, a))} {a}" for a in AXES)
            extra = f", plus {len(self.include)} include entries" if self.include else ""
            raise PydanticCustomError(
                "edgebench", "{text}",
                {"text": f"the suite plans {n:,} runs ({sizes}{extra}); at most "
                         f"{MAX_CELLS:,}: split it into smaller suites", "at": ()})
        return self


def planned_cells(suite: Any) -> int:
    """An upper bound of a suite's runs (the axes' product plus each include's), computed
    without expanding (excludes only remove)."""
    sizes = {AXIS_KEYS[a]: len(getattr(suite, a)) for a in AXES}
    n = math.prod(sizes.values())
    for entry in suite.include:
        n += math.prod(v for k, v in sizes.items() if k not in entry)
    return n


# --------------------------------------------------------------------------- errors

def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Mapping[str, Any], flags: Mapping[str, str] | None) -> tuple[bool, str]:
    """One pydantic error as ``path: message``; True first when it names a flag."""
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    kind = err.get("type")
    by_flag = bool(flags) and bool(loc) and loc[0] in flags
    if kind == "extra_forbidden":
        key = loc[-1]
        known = _ENTRY_KEYS if len(loc) > 1 else FIELDS
        where = _path(loc[:-1])
        hint = suggest(str(key), known)
        text = f"unknown key {key!r}{hint}"
        if len(loc) > 1:
            text += f"; known: {', '.join(known)}"
        return by_flag, f"{where}: {text}" if where else text
    loc = loc + tuple(ctx.get("at", ()))
    where = flags[loc[0]] if by_flag else _path(loc)
    if kind == "empty":
        return by_flag, f"{where} is empty: nothing to run"
    if kind == "empty_entry":
        return by_flag, f"{where} is empty: name at least one axis value, e.g. {{framework: mlx}}"
    text = ctx.get("text") or err.get("msg", "invalid value")
    return by_flag, f"{where}: {text}" if where else text


def _config_error(exc: ValidationError, source: str,
                  flags: Mapping[str, str] | None = None) -> ConfigError:
    errors = exc.errors(include_url=False)
    by_flag, first = _describe(errors[0], flags)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    text = first if by_flag else f"{source}: {first}"
    return ConfigError(" ".join(f"{text}{more}".split("\n")))


def validate(values: Mapping[str, Any], source: str,
              flags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values of a suite's fields, checked and normalised, or a one-line ConfigError."""
    for key in values:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: unknown key {show(key)}")
    try:
        model = _SuiteModel.model_validate(dict(values))
    except ValidationError as e:
        raise _config_error(e, source, flags) from None
    except RecursionError:  # a structure built in Python, nested past the interpreter's limit
        raise ConfigError(f"{source}: a value is nested too deeply") from None
    return {f: getattr(model, f) for f in FIELDS}


#: The fields a suite sets (all but its ``source``).
FIELDS = tuple(_SuiteModel.model_fields)
