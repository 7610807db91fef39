"""A fast, strict reader of a GGUF file's header: metadata and tensor extents.

``gguf.GGUFReader`` builds arrays for every field (about 40 s on the default model's 262k-token
vocabulary); validating a file before a sweep must take well under a second, so this walks the
header with ``struct`` over an mmap and checks that every tensor's data lies inside the file.
"""

from __future__ import annotations

import mmap
import stat
import struct
from dataclasses import dataclass, field
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


#: Nesting of arrays of arrays a header may use (llama.cpp writes none; deeper is garbage).
MAX_ARRAY_DEPTH = 8
#: GGML_MAX_DIMS: a tensor has at most this many dimensions.
MAX_DIMS = 4
#: The smallest encodings of a metadata entry (key length, empty key, value type, a u8) and
#: of a tensor description (name length, empty name, n_dims, type, offset), to bound the
#: counts a header claims by the bytes the file has.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8
_VOCAB_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.tokens")


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
    arrays: dict[str, int] = field(default_factory=dict)  # array key -> number of elements

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` when it is text (None when absent or of another type)."""
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) and not arch.startswith("<array of ") else None

    def integer(self, key: str) -> int | None:
        """A metadata value used as a number: an integer, else None (absent, text, a float,
        true/false, an array). A header is anyone's file: ``"abc"`` where a count belongs
        must read as unknown, never reach arithmetic."""
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def precision(self) -> str | None:
        """The file's precision as an edgebench name (from ``general.file_type``)."""
        ftype = self.integer("general.file_type")
        return FILE_TYPES.get(ftype) if ftype is not None else None

    @property
    def context_length(self) -> int | None:
        """``<arch>.context_length`` when it is a positive integer, else None (unknown)."""
        arch = self.architecture
        n = self.integer(f"{arch}.context_length") if arch else None
        return n if n is not None and n > 0 else None

    @property
    def vocabulary_problem(self) -> str | None:
        """Why the file's vocabulary cannot tokenize a text (llama.cpp needs
        ``tokenizer.ggml.model`` and a non-empty ``tokenizer.ggml.tokens``), or None."""
        model = self.metadata.get("tokenizer.ggml.model")
        tokens = self.arrays.get("tokenizer.ggml.tokens")
        if model is None and tokens is None:
            return "has no vocabulary (no tokenizer.ggml.tokens in its GGUF header)"
        if model is None:
            return "has no tokenizer type (no tokenizer.ggml.model in its GGUF header)"
        if not isinstance(model, str) or model in ("none", "no_vocab"):
            return f"has no vocabulary (tokenizer.ggml.model is {model!r})"
        if not tokens:
            return ("has no vocabulary (tokenizer.ggml.tokens is "
                    f"{'empty' if tokens == 0 else 'missing or not an array'})")
        return None


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

    def value(self, vtype: int, depth: int = 0) -> Any:
        """One metadata value; arrays become ``"<array of N>"`` (``self.count`` keeps N)."""
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise _Bad(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
            etype, count = self.unpack("I"), self.unpack("Q")
            if etype in _SCALARS:  # skip fixed-size elements without decoding them
                self.pos += count * struct.calcsize("<" + _SCALARS[etype])
                if self.pos > len(self.buf):
                    raise EOFError
            elif etype == _STRING:  # hot path: a vocabulary is ~10^5 strings
                if count * 8 > len(self.buf) - self.pos:
                    raise EOFError
                buf, pos, unpack_from = self.buf, self.pos, struct.unpack_from
                for _ in range(count):
                    pos += 8 + unpack_from("<Q", buf, pos)[0]
                self.pos = pos
                if pos > len(buf):
                    raise EOFError
            elif etype == _ARRAY:
                if count * 12 > len(self.buf) - self.pos:  # each inner array: type + count
                    raise EOFError
                for _ in range(count):
                    self.value(etype, depth + 1)
            else:
                raise _Bad(f"unknown GGUF array element type {etype}")
            self.count = count
            return f"<array of {count}>"
        raise _Bad(f"unknown GGUF value type {vtype}")


class _Bad(Exception):
    """A header that is malformed in a way its message names (becomes a ModelError)."""


def read_gguf(path: str | Path) -> GGUFInfo:
    """Read and check a GGUF header.

    Raises:
        ModelError: not a regular file (a directory, a device), empty, not a GGUF file, an
            unsupported version, a header that ends early or claims more entries than the
            file can hold, arrays nested deeper than ``MAX_ARRAY_DEPTH``, a bad
            ``general.alignment``, a tensor with too many dimensions, an unknown type or a
            misaligned offset, or tensor data that extends past the end of the file (a
            truncated download). Never another exception.
    """
    path = Path(path)
    try:
        return _read(path)
    except ModelError:
        raise
    except Exception as e:  # the rule: a bad file is a ModelError naming it, whatever broke
        raise ModelError(f"{path} is not a valid GGUF file ({type(e).__name__}: "
                         f"{str(e)[:120]})") from e


def _read(path: Path) -> GGUFInfo:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType  # pure Python

    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read model file {path}: "
                         f"{getattr(e, 'strerror', None) or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"model file {path} is a directory, not a GGUF file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"model file {path} is not a regular file")
    size = st.st_size
    if size == 0:
        raise ModelError(f"model file {path} is empty (0 bytes)")
    try:
        fh = path.open("rb")
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e
    with fh:
        if fh.read(4) != _MAGIC:
            raise ModelError(f"{path} is not a GGUF file (bad magic bytes)")
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read model file {path}: {e}") from e
        with buf:
            cur = _Cursor(buf)
            cur.pos = 4
            try:
                version = cur.unpack("I")
                if version not in (2, 3):
                    raise ModelError(f"{path}: GGUF version {version} is not supported (2 or 3)")
                n_tensors, n_kv = cur.unpack("Q"), cur.unpack("Q")
                room = size - cur.pos
                if n_kv * _MIN_KV_BYTES > room or n_tensors * _MIN_TENSOR_BYTES > room:
                    raise ModelError(
                        f"{path} is not a valid GGUF file: its header claims {n_kv:,} metadata "
                        f"entries and {n_tensors:,} tensors, more than {size:,} bytes can hold")
                meta: dict[str, Any] = {}
                arrays: dict[str, int] = {}
                for _ in range(n_kv):
                    key = cur.string()
                    try:
                        meta[key] = cur.value(cur.unpack("I"))
                    except _Bad as e:
                        raise ModelError(f"{path}: metadata key {key!r}: {e}") from None
                    if isinstance(meta[key], str) and meta[key].startswith("<array of "):
                        arrays[key] = cur.count
                align = _alignment(path, meta)
                params, end, types = 0, 0, {}
                for _ in range(n_tensors):
                    name = cur.string()
                    n_dims = cur.unpack("I")
                    if n_dims > MAX_DIMS:
                        raise ModelError(f"{path}: tensor {name!r} has {n_dims:,} dimensions "
                                         f"(at most {MAX_DIMS})")
                    dims = [cur.unpack("Q") for _ in range(n_dims)]
                    ttype, offset = cur.unpack("I"), cur.unpack("Q")
                    count = 1
                    for d in dims:
                        count *= d
                    try:
                        block, type_size = GGML_QUANT_SIZES[ttype]
                        tname = GGMLQuantizationType(ttype).name
                    except (KeyError, ValueError):
                        raise ModelError(f"{path}: tensor {name!r} has unknown type {ttype}") \
                            from None
                    if offset % align:
                        raise ModelError(f"{path}: tensor {name!r} starts at offset {offset:,}, "
                                         f"not a multiple of general.alignment {align}")
                    nbytes = count // block * type_size
                    if offset + nbytes > size:  # cannot fit, wherever the data starts
                        raise ModelError(
                            f"{path} is truncated or corrupt: tensor {name!r} "
                            f"({' x '.join(map(str, dims)) or 'scalar'}, {tname}) needs "
                            f"{offset + nbytes:,} bytes of data, the file has {size:,}")
                    params += count
                    types[tname] = types.get(tname, 0) + 1
                    end = max(end, offset + nbytes)
            except (EOFError, _Bad, ValueError, UnicodeDecodeError, struct.error) as e:
                raise ModelError(f"{path} is not a valid GGUF file (header is cut short)") from e
    data_start = (cur.pos + align - 1) // align * align
    if data_start + end > size:
        raise ModelError(
            f"{path} is truncated: tensor data needs {data_start + end:,} bytes, "
            f"the file has {size:,}"
        )
    return GGUFInfo(path, version, meta, n_tensors, params, end, types, arrays)


def _alignment(path: Path, meta: dict[str, Any]) -> int:
    """``general.alignment`` (default 32): a power of two that fits 32 bits."""
    align = meta.get("general.alignment", 32)
    if (not isinstance(align, int) or isinstance(align, bool) or align <= 0
            or align >= 2**32 or align & (align - 1)):
        raise ModelError(f"{path}: general.alignment must be a power of two, got {align!r}")
    return align
