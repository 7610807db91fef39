"""Reading a suite file safely: a regular UTF-8 file of bounded size whose YAML, aliases
expanded, stays bounded in size and depth. Every failure is one ``ConfigError`` line."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from edgebench.errors import ConfigError

MAX_SUITE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


def regular_file(path: Path, what: str, kind: str, empty: str) -> os.stat_result:
    """``path``'s status when it is a regular, non-empty file (checked before opening it: a
    named pipe or a device would block or never end a read), else a ConfigError saying what
    the path is instead.

    Args:
        what: the file as messages name it, e.g. ``suite file s.yaml``.
        kind: what it should be, e.g. ``a YAML file`` ("is a directory, not ...").
        empty: why an empty one is refused, e.g. ``a suite is a YAML mapping of settings``.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} does not exist") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} is a directory, not {kind}")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} is not a regular file")
    if st.st_size == 0:
        raise ConfigError(f"{what} is empty: {empty}")
    return st


def read_file(path: Path) -> str:
    """A suite file's text, or a ConfigError saying what the path is instead."""
    what = f"suite file {path}"
    st = regular_file(path, what, "a YAML file", "a suite is a YAML mapping of settings")
    if st.st_size > MAX_SUITE_BYTES:
        raise ConfigError(f"{what} is {st.st_size:,} bytes: a suite file is at most "
                          f"{MAX_SUITE_BYTES:,}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} cannot be read: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} is not UTF-8 text (bad byte at offset {e.start})") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Refuse a YAML graph whose aliases expand to an absurd size (a "billion laughs"),
    a recursive alias, or nesting past ``MAX_YAML_DEPTH``, before constructing it (PyYAML's
    merge keys copy what they merge, so constructing such a graph can take minutes and GBs).
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > MAX_YAML_NODES:
                raise ConfigError(
                    f"{source}: the YAML expands to more than {MAX_YAML_NODES:,} values "
                    "(aliases repeat what their anchors hold); refused")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ConfigError(f"{source}: a YAML alias refers to itself (recursive anchor)")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{source}: the YAML is nested more than {MAX_YAML_DEPTH} "
                              "levels deep")
        open_nodes.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in sizes)


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document safely: bounded in size after aliases, in depth, and every
    failure a one-line ConfigError naming ``source`` (and the line where YAML says)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}: malformed YAML{at}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML is nested too deeply") from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of 5000 digits, 2024-02-30
        reason = (str(e).splitlines() or ["bad value"])[0][:120]
        raise ConfigError(f"{source}: malformed YAML: a value cannot be read ({reason})") \
            from None
    finally:
        loader.dispose()
