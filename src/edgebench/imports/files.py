"""What every importer reads through: regular files of bounded size (a named pipe, a device or
a directory is refused before it is opened: a read would block or never end), paths and text
fields made printable on one line, JSON without non-finite numbers and of bounded depth.
Every failure is one ``ConfigError`` line naming the file."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.results.fsio import safe_text
from edgebench.results.fsio import shown as _fs_shown
from edgebench.suites.yamlfile import regular_file

MB = 1 << 20
#: The largest file each format may be (a real one is far smaller).
MAX_JSON_BYTES = 64 * MB  # llama-bench output, an AI Hub profile
MAX_YAML_BYTES = 8 * MB  # a perf.yaml, devices_and_chipsets.yaml
MAX_WHEEL_BYTES = 1024 * MB  # a qai-hub-models wheel (zip)
MAX_WHEEL_READ_BYTES = 256 * MB  # all members read from one wheel, uncompressed
#: How deeply an imported JSON value may nest (a llama-bench test is 2 levels deep).
MAX_DEPTH = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` printable on one line: control characters (newline, ESC, NUL ...) as ``\\xNN``,
    lone surrogates escaped (``fsio.safe_text``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", safe_text(text))


def show(value: Any, width: int = 40) -> str:
    """A value for a message: its repr, cut to ``width`` characters, on one line (an integer of
    more digits than Python converts to text is named, not shown)."""
    try:
        text = repr(value)
    except ValueError:
        text = "an integer of thousands of digits"
    return clean(text[:width])


def shown(path: str | os.PathLike) -> str:
    """A path as one printable line (``fsio.shown``, control characters escaped)."""
    return clean(_fs_shown(path))


def read_bytes(path: Path, kind: str, cap: int, empty: str) -> bytes:
    """The bytes of ``path`` when it is a regular, non-empty file of at most ``cap`` bytes.

    Args:
        kind: what the file should be, e.g. ``llama-bench output``.
        empty: why an empty file is refused.

    Raises:
        ConfigError: not a regular file, empty, too large or unreadable (one line).
    """
    what = shown(path)
    st = regular_file(Path(path), what, kind, empty)
    if st.st_size > cap:
        raise ConfigError(f"{what} is {st.st_size:,} bytes: {kind} is at most {cap:,} bytes "
                          "here; refused")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise ConfigError(f"{what} cannot be read: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since it was looked at
            raise ConfigError(f"{what} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(cap + 1)
    except OSError as e:
        raise ConfigError(f"{what} cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > cap:
        raise ConfigError(f"{what} grew past {cap:,} bytes while read; refused")
    return data


class NotFinite(ValueError):
    """A JSON number that is NaN, infinite or too large for a float."""


def _constant(name: str) -> float:
    raise NotFinite(f"{name} is not a number edgebench takes")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(f"{text[:40]} is not a finite number")
    return value


#: A JSON decoder that refuses NaN, Infinity and 1e999 (``NotFinite``).
DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float)


def json_problem(e: BaseException) -> str:
    """Why a JSON text could not be decoded, as words (for an error without a position)."""
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, NotFinite):
        return str(e)
    if "int_max_str_digits" in str(e):
        return "a value cannot be read (an integer of more than 4300 digits)"
    text = " ".join(str(e).split())[:120]
    return f"a value cannot be read ({text})"


def check_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests at most ``limit`` lists/objects deep (checked without
    recursion)."""
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            if d >= limit:
                return False
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


def finite(value: Any, *, positive: bool = True) -> bool:
    """Whether ``value`` is a real number (not bool), finite as a float, and > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        f = float(value)
    except OverflowError:
        return False
    return math.isfinite(f) and (f > 0 if positive else f >= 0)
