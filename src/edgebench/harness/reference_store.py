"""The quality reference's cache folder: each chunk's stored log-probabilities (uint16 codes,
``quality.REFERENCE_STORAGE``), KLD floor and NLLs, as ``chunk{i}.<name>.npy`` files.

The log-probabilities are read and written a block of rows at a time through plain file I/O,
in exactly the bytes one ``np.save`` of the whole ``[scored positions, vocab]`` array writes: a
memory map's touched pages would count in the quality row's RSS (1 GB for a 4096-token chunk
of Gemma 3's 262k-token vocabulary).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgebench.errors import EdgebenchError
from edgebench.harness import quality as q

_REFERENCE_FILES = ("lp", "floor", "nll")  # chunk{i}.<name>.npy; nll is written last


def reference_complete(ref_dir: Path, n_chunks: int) -> bool:
    """Whether the cached reference holds the first ``n_chunks`` chunks (log-probs, KLD floor
    and NLLs)."""
    return all((ref_dir / f"chunk{i}.{name}.npy").exists()
               for i in range(n_chunks) for name in _REFERENCE_FILES)


def reference_floor(ref_dir: Path, n_chunks: int) -> tuple[float, float]:
    """Mean and 99th percentile of the KLD floor over the first ``n_chunks`` cached chunks."""
    floor = np.concatenate([np.load(ref_dir / f"chunk{i}.floor.npy") for i in range(n_chunks)])
    return float(floor.mean()), float(np.percentile(floor, 99))


def reference_ppl(ref_dir: Path, n_chunks: int) -> q.Perplexity:
    """The reference's perplexity over its first ``n_chunks`` cached chunks."""
    return q.perplexity(np.concatenate([np.load(ref_dir / f"chunk{i}.nll.npy")
                                        for i in range(n_chunks)]))


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary name, then renamed: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class CodesReader:
    """Chunk ``i``'s stored log-prob codes, read ``rows`` at a time.

    Raises:
        EdgebenchError: (on opening) a file that is missing, not uint16 codes of a 2-D array,
            or holds another number of scored positions than ``n``.
    """

    def __init__(self, ref_dir: Path, i: int, n: int) -> None:
        self._where, self._i = ref_dir, i
        self._f = None
        try:
            self._f = open(ref_dir / f"chunk{i}.lp.npy", "rb")  # noqa: SIM115 - close()
            version = np.lib.format.read_magic(self._f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(self._f)
        except (OSError, ValueError) as e:
            self.close()
            raise EdgebenchError(f"reference cache {ref_dir}: {e}") from e
        if dtype != np.uint16 or fortran or len(shape) != 2:
            self.close()
            raise EdgebenchError(f"reference cache {ref_dir}: reference log-probs are "
                                 f"{dtype}, expected uint16 codes")
        if shape[0] != n:
            self.close()
            raise EdgebenchError(f"reference cache {ref_dir}: chunk {i} holds {shape[0]} "
                                 f"scored positions, expected {n}")
        self.vocab = int(shape[1])

    def read(self, rows: int, vocab: int) -> np.ndarray:
        """The next ``rows`` positions' codes, ``[rows, vocab]``.

        Raises:
            EdgebenchError: the runtime's vocabulary differs from the stored one, or the file
                ends early.
        """
        if vocab != self.vocab:
            raise EdgebenchError(f"reference cache {self._where}: {self.vocab} logits a "
                                 f"position, the runtime gave {vocab}")
        codes = np.fromfile(self._f, dtype=np.uint16, count=rows * vocab)
        if codes.size != rows * vocab:
            raise EdgebenchError(f"reference cache {self._where}: chunk {self._i} is truncated")
        return codes.reshape(rows, vocab)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class CodesWriter:
    """Chunk ``i``'s log-prob codes written as they come, to a temporary file renamed into
    place by :meth:`commit` (a chunk left unfinished leaves no file)."""

    def __init__(self, ref_dir: Path, i: int, n: int) -> None:
        self._dir, self._n = ref_dir, n
        self._path = ref_dir / f"chunk{i}.lp.npy"
        self._tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp.npy")
        self._f = None

    def write(self, codes: np.ndarray) -> None:
        """Append a block of rows (the header np.save writes comes first, on the first one)."""
        if self._f is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._f = open(self._tmp, "wb")  # noqa: SIM115 - close()
            np.lib.format.write_array_header_1_0(self._f, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint16)),
                "fortran_order": False, "shape": (self._n, codes.shape[1])})
        self._f.write(np.ascontiguousarray(codes, dtype=np.uint16).tobytes())

    def commit(self) -> None:
        """Close and rename the file into place."""
        self._f.close()
        self._f = None
        os.replace(self._tmp, self._path)

    def close(self) -> None:
        """Close, and remove what was not committed."""
        if self._f is not None:
            self._f.close()
            self._f = None
        self._tmp.unlink(missing_ok=True)
