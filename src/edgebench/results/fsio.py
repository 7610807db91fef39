"""The OS calls behind the store: durable writes, directory fsync, and paths shown in messages."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def shown(path: str | os.PathLike) -> str:
    """A path as text that prints anywhere: bytes that are not UTF-8 become ``\\xNN``."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeError:
        return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8 text: unchanged when it is, else its lone surrogates escaped
    (a path's undecodable byte ``\\udcff`` becomes ``\\xff`` as :func:`shown` writes it,
    another surrogate ``\\ud800``), so Arrow, JSON and the terminal can hold it."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return shown(text)


def os_reason(e: OSError) -> str:
    """The OS's words for an error (``No space left on device``), also for ``OSError(28)``."""
    if e.strerror:
        return e.strerror
    code = e.errno if e.errno is not None else (e.args[0] if len(e.args) == 1 else None)
    if isinstance(code, int):
        return os.strerror(code)
    return str(e) or type(e).__name__


def encoding_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a store's path (not UTF-8, not encodable here), or None."""
    text = os.fspath(path)
    try:
        os.fsencode(text)
    except UnicodeError:
        return "the path cannot be encoded in this system's file name encoding"
    try:
        text.encode("utf-8")
    except UnicodeError:
        return "the path is not valid UTF-8 (use a folder whose name is UTF-8 text)"
    return None


def durable_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and make it durable: write, flush, fsync."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems do not sync folders; nothing to make durable there
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove a temporary file if it is there; an error here must not hide the first one."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def parquet_bytes(table) -> bytes:
    """A Parquet file of ``table`` in memory, with page checksums (a damaged page is caught on
    read), ready for one durable write."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, write_page_checksum=True)
    return sink.getvalue().to_pybytes()
