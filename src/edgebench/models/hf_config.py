"""The JSON files of a Hugging Face checkpoint folder (``config.json``,
``tokenizer_config.json``), read strictly: every flaw is one ``ModelError`` naming the file.

A folder is anyone's download; its ``config.json`` can be cut short, not UTF-8, a list, or
hold a key of another type than Hugging Face writes. Each value edgebench reads is checked
here (``KEYS``), so a caller can use it without a check of its own.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from edgebench.errors import ModelError

#: A config file is small (a chat template makes tokenizer_config.json the largest, ~100 KB).
MAX_CONFIG_BYTES = 16 << 20


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _token_ids(v: Any) -> bool:
    return _int(v) or (isinstance(v, list) and bool(v) and all(_int(x) for x in v))


def _token(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("content"), str))


#: file -> key -> (check, what it must be). null is accepted for every key (absent).
KEYS: dict[str, dict[str, tuple[Any, str]]] = {
    "config.json": {
        "architectures": (_names, "a list of names"),
        "model_type": (lambda v: isinstance(v, str), "a name"),
        "dtype": (lambda v: isinstance(v, str), "a dtype name"),
        "torch_dtype": (lambda v: isinstance(v, str), "a dtype name"),
        "hidden_size": (lambda v: _int(v) and v > 0, "a positive integer"),
        "max_position_embeddings": (lambda v: _int(v) and v > 0, "a positive integer"),
        "eos_token_id": (_token_ids, "a token ID or a list of them"),
        "text_config": (lambda v: isinstance(v, dict), "a mapping"),
    },
    "tokenizer_config.json": {
        "add_bos_token": (lambda v: isinstance(v, bool), "true or false"),
        "bos_token": (_token, "a token text or {content: text}"),
    },
}


def _kind(value: Any) -> str:
    """A JSON value's kind, as the file's author would name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(path: Path, cfg: dict[str, Any], keys: dict[str, tuple[Any, str]],
           at: str = "") -> None:
    for key, (ok, what) in keys.items():
        value = cfg.get(key)
        if value is not None and not ok(value):
            raise ModelError(f"{path}: {at}{key} must be {what}, got {_show(value)}")
    nested = cfg.get("text_config")
    if not at and isinstance(nested, dict):  # multimodal configs keep the text model's here
        _check(path, nested, {k: v for k, v in keys.items() if k != "text_config"},
               "text_config.")


def read_hf_config(folder: str | Path, name: str = "config.json", *,
                   missing_ok: bool = False) -> dict[str, Any]:
    """The JSON object in ``folder/name``, its known keys (``KEYS``) of the right types.

    Args:
        missing_ok: an absent file reads as ``{}`` (``tokenizer_config.json`` is optional).

    Raises:
        ModelError: naming the file and what is wrong: missing, not a regular file, too large,
            unreadable, not UTF-8, not JSON, not a JSON object, or a known key of another type.
    """
    path = Path(folder) / name
    try:
        st = path.stat()
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise ModelError(f"{path} does not exist: a Hugging Face checkpoint folder needs "
                         f"its {name}") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path} is not a regular file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{path} is {st.st_size:,} bytes: not a config file (at most "
                         f"{MAX_CONFIG_BYTES:,})")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ModelError(f"{path} is not UTF-8 text (bad byte at offset {e.start})") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: "
                         f"{e.msg})") from None
    except (ValueError, RecursionError) as e:  # e.g. nested past the interpreter's limit
        raise ModelError(f"{path} is not valid JSON ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{path} must hold a JSON object {{...}}, got {_kind(cfg)}")
    _check(path, cfg, KEYS.get(name, {}))
    return cfg
