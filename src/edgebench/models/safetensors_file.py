"""Parameter counts and weight bytes of a Hugging Face checkpoint, from safetensors headers.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
``{"dtype": ..., "shape": [...], "data_offsets": [begin, end]}``, plus an optional
``__metadata__`` mapping of strings), then the tensor data. The reader checks the length
against the file's size before reading, and every value's type; every flaw is a ``ModelError``
naming the file (as ``gguf_file.read_gguf`` does for GGUF).
"""

from __future__ import annotations

import json
import stat
import struct
from pathlib import Path
from typing import Any

from edgebench.errors import ModelError
from edgebench.models.hf_config import read_hf_config

_DTYPE_TO_PRECISION = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
#: The safetensors format's own bound on the header (its reference reader refuses more).
MAX_HEADER_BYTES = 100_000_000


def safetensors_stats(folder: Path) -> tuple[int, int]:
    """(parameters, bytes of tensor data) over every ``*.safetensors`` file in ``folder``.

    Packed quantized tensors (e.g. MLX's uint32 words) count as stored, so use the source
    checkpoint's parameter count for bits per weight.

    Raises:
        ModelError: no safetensors file, or one that is not valid (named, with the flaw).
    """
    params = data = 0
    try:
        files = sorted(Path(folder).glob("*.safetensors"))
    except OSError as e:
        raise ModelError(f"cannot read model folder {folder}: {e.strerror or e}") from None
    if not files:
        raise ModelError(f"{folder} holds no .safetensors file")
    for f in files:
        p, d = read_safetensors(f)
        params += p
        data += d
    return params, data


def read_safetensors(path: str | Path) -> tuple[int, int]:
    """(parameters, bytes of tensor data) of one safetensors file, its header checked.

    Raises:
        ModelError: not a regular file, cut short, a header length the file cannot hold, a
            header that is not a JSON object of tensor entries (``dtype`` text, ``shape`` a
            list of non-negative integers, ``data_offsets`` two ordered non-negative
            integers), or data past the end of the file. Never another exception.
    """
    path = Path(path)
    try:
        return _read(path)
    except ModelError:
        raise
    except Exception as e:  # the rule: a bad file is a ModelError naming it, whatever broke
        raise ModelError(f"{path} is not a valid safetensors file ({type(e).__name__}: "
                         f"{str(e)[:120]})") from e


def _count(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _read(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path} is not a regular file")
    size = st.st_size
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ModelError(f"{path} is not a safetensors file (cut short)")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8 or n > MAX_HEADER_BYTES:
                raise ModelError(f"{path} is not a valid safetensors file: its header length "
                                 f"{n:,} is more than the file's {size:,} bytes can hold")
            blob = fh.read(n)
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    if len(blob) != n:
        raise ModelError(f"{path} is truncated (its header is cut short)")
    try:
        header = json.loads(blob)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ModelError(f"{path} has an unreadable safetensors header ({type(e).__name__})") \
            from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: its safetensors header must be a JSON object")
    params = data = end = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        bad = f"{path}: tensor {name[:80]!r}"
        if not isinstance(t, dict):
            raise ModelError(f"{bad} is not described by a mapping")
        shape, offsets = t.get("shape"), t.get("data_offsets")
        if not isinstance(t.get("dtype"), str):
            raise ModelError(f"{bad} has no dtype")
        if not isinstance(shape, list) or not all(_count(d) for d in shape):
            raise ModelError(f"{bad}: shape must be a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_count(o) for o in offsets) or offsets[0] > offsets[1]):
            raise ModelError(f"{bad}: data_offsets must be two ordered non-negative integers")
        count = 1
        for d in shape:
            count *= d
        params += count
        data += offsets[1] - offsets[0]
        end = max(end, offsets[1])
    if size < 8 + n + end:
        raise ModelError(f"{path} is truncated: its tensors need {8 + n + end:,} bytes, the "
                         f"file has {size:,}")
    return params, data


def checkpoint_precision(folder: Path) -> str:
    """f32 / bf16 / f16 from config.json's dtype (``torch_dtype`` in older files).

    Raises:
        ModelError: config.json is missing or not valid (``hf_config.read_hf_config``).
    """
    cfg = read_hf_config(folder)
    dtype = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return _DTYPE_TO_PRECISION.get(dtype, "f32")
