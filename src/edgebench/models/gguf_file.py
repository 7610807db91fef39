"""A fast, strict reader of a GGUF file's header: metadata and tensor extents.

``gguf.GGUFReader`` builds arrays for every field (about 40 s on the default model's 262k-token
vocabulary); validating a file before a sweep must take well under a second, so this walks the
header with ``struct`` over an mmap and checks that every tensor's data lies inside the file.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.errors import ModelError

_MAGIC = b"GGUF"
# value type -> struct format of a scalar
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}
_STRING, _ARRAY = 8, 9
# general.file_type (llama_ftype) -> edgebench precision name
FILE_TYPES = {
    0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 10: "q2_k",
    11: "q3_k_s", 12: "q3_k_m", 13: "q3_k_l", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s",
    17: "q5_k_m", 18: "q6_k", 32: "bf16",
}


@dataclass(frozen=True)
class GGUFInfo:
    """What the header says: metadata scalars (arrays summarized by length) and sizes."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    parameters: int
    data_bytes: int
    tensor_types: dict[str, int]  # ggml type name -> number of tensors stored in it

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def precision(self) -> str | None:
        """The file's precision as an edgebench name (from ``general.file_type``)."""
        ftype = self.metadata.get("general.file_type")
        return FILE_TYPES.get(ftype) if isinstance(ftype, int) else None

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        return self.metadata.get(f"{arch}.context_length") if arch else None


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise EOFError
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.unpack("Q")
        if self.pos + n > len(self.buf):
            raise EOFError
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.unpack("I"), self.unpack("Q")
            if etype in _SCALARS:  # skip fixed-size elements without decoding them
                self.pos += count * struct.calcsize("<" + _SCALARS[etype])
                if self.pos > len(self.buf):
                    raise EOFError
            elif etype == _STRING:  # hot path: a vocabulary is ~10^5 strings
                buf, pos, unpack_from = self.buf, self.pos, struct.unpack_from
                for _ in range(count):
                    pos += 8 + unpack_from("<Q", buf, pos)[0]
                self.pos = pos
                if pos > len(buf):
                    raise EOFError
            else:
                for _ in range(count):
                    self.value(etype)
            return f"<array of {count}>"
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf(path: str | Path) -> GGUFInfo:
    """Read and check a GGUF header.

    Raises:
        ModelError: not a GGUF file, an unsupported version, a header that ends early, or
            tensor data that extends past the end of the file (a truncated download).
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType  # pure Python

    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror}") from e
    with fh:
        if fh.read(4) != _MAGIC:
            raise ModelError(f"{path} is not a GGUF file (bad magic bytes)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            cur = _Cursor(buf)
            cur.pos = 4
            try:
                version = cur.unpack("I")
                if version not in (2, 3):
                    raise ModelError(f"{path}: GGUF version {version} is not supported (2 or 3)")
                n_tensors, n_kv = cur.unpack("Q"), cur.unpack("Q")
                meta: dict[str, Any] = {}
                for _ in range(n_kv):
                    key = cur.string()
                    meta[key] = cur.value(cur.unpack("I"))
                params, end, types = 0, 0, {}
                for _ in range(n_tensors):
                    name = cur.string()
                    dims = [cur.unpack("Q") for _ in range(cur.unpack("I"))]
                    ttype, offset = cur.unpack("I"), cur.unpack("Q")
                    count = 1
                    for d in dims:
                        count *= d
                    try:
                        block, type_size = GGML_QUANT_SIZES[ttype]
                    except (KeyError, ValueError) as e:
                        raise ModelError(f"{path}: tensor {name} has unknown type {ttype}") from e
                    params += count
                    tname = GGMLQuantizationType(ttype).name
                    types[tname] = types.get(tname, 0) + 1
                    end = max(end, offset + count // block * type_size)
            except (EOFError, ValueError, UnicodeDecodeError, struct.error) as e:
                raise ModelError(f"{path} is not a valid GGUF file (header is cut short)") from e
    align = int(meta.get("general.alignment", 32))
    data_start = (cur.pos + align - 1) // align * align
    if data_start + end > size:
        raise ModelError(
            f"{path} is truncated: tensor data needs {data_start + end:,} bytes, "
            f"the file has {size:,}"
        )
    return GGUFInfo(path, version, meta, n_tensors, params, end, types)
