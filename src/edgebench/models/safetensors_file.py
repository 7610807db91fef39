"""Parameter counts and weight bytes of a Hugging Face checkpoint, from safetensors headers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from edgebench.errors import ModelError

_DTYPE_TO_PRECISION = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def safetensors_stats(folder: Path) -> tuple[int, int]:
    """(parameters, bytes of tensor data) over every ``*.safetensors`` file in ``folder``.

    Packed quantized tensors (e.g. MLX's uint32 words) count as stored, so use the source
    checkpoint's parameter count for bits per weight.
    """
    params = data = 0
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise ModelError(f"{folder} holds no .safetensors file")
    for f in files:
        with f.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ModelError(f"{f} is not a safetensors file (cut short)")
            (n,) = struct.unpack("<Q", raw)
            try:
                header = json.loads(fh.read(n))
            except (ValueError, UnicodeDecodeError) as e:
                raise ModelError(f"{f} has an unreadable safetensors header") from e
        for name, t in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for d in t["shape"]:
                count *= d
            params += count
            data += t["data_offsets"][1] - t["data_offsets"][0]
        if f.stat().st_size < 8 + n + max((t["data_offsets"][1] for k, t in header.items()
                                           if k != "__metadata__"), default=0):
            raise ModelError(f"{f} is truncated")
    return params, data


def checkpoint_precision(folder: Path) -> str:
    """f32 / bf16 / f16 from config.json's dtype (``torch_dtype`` in older files)."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    dtype = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return _DTYPE_TO_PRECISION.get(dtype, "f32")
