"""Content-addressed artifact cache: a folder per (source, target, precision, tool versions).

An artifact is built in a temporary folder beside its final place and renamed into it only once
complete, so the cache never holds a half-written artifact (a full disk or a crash leaves only
a temporary folder, removed on the next build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgebench.harness.prepare.manifest import MANIFEST_NAME, Manifest

RECIPE_VERSION = 1  # bump when the cache layout changes; recipes version themselves in tools()


def artifact_key(source_sha256: str, fmt: str, precision: str, tools: dict[str, str]) -> str:
    """Hash of everything that decides an artifact's bytes."""
    blob = json.dumps([source_sha256, fmt, precision, sorted(tools.items()), RECIPE_VERSION])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ArtifactCache:
    """``<cache>/artifacts/<format>/<key>/`` holding the artifact and its manifest."""

    def __init__(self, cache_root: Path) -> None:
        self.root = Path(cache_root) / "artifacts"

    def folder(self, fmt: str, key: str) -> Path:
        return self.root / fmt / key

    def get(self, fmt: str, key: str) -> Manifest | None:
        """The manifest of a complete artifact, or None."""
        folder = self.folder(fmt, key)
        if not (folder / MANIFEST_NAME).exists():
            return None
        return Manifest.read(folder)

    def manifests(self) -> list[Manifest]:
        """Every complete artifact in the cache."""
        if not self.root.is_dir():
            return []
        return [Manifest.read(m.parent) for m in sorted(self.root.glob(f"*/*/{MANIFEST_NAME}"))]

    @contextmanager
    def building(self, fmt: str, key: str) -> Iterator[Path]:
        """A temporary folder to build in; renamed to the artifact's folder on success."""
        final = self.folder(fmt, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".{key}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{key}.{os.getpid()}.tmp"
        tmp.mkdir()
        try:
            yield tmp
            if not (tmp / MANIFEST_NAME).exists():
                raise RuntimeError("recipe finished without writing a manifest")
            if not (final / MANIFEST_NAME).exists():  # else another process finished first
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
