"""Convert and quantize one source model into each runtime's format, cached by content.

One recipe file per target format; this module parses targets, finds cached artifacts and
runs recipes (with their dependencies, e.g. GGUF F16 before Q4_K_M) through the cache.
"""

from __future__ import annotations

import importlib
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from edgebench import __version__
from edgebench.errors import ConfigError
from edgebench.harness.memory import RssSampler
from edgebench.harness.prepare.cache import ArtifactCache, artifact_key
from edgebench.harness.prepare.manifest import Manifest, bits_per_weight, precision_class
from edgebench.harness.prepare.recipe import SourceModel, Target
from edgebench.harness.registry import suggest
from edgebench.models.registry import Artifact, ResolvedModel, file_sha256

#: format -> recipe module (imported lazily) and the precisions it writes.
RECIPES = {
    "gguf": "edgebench.harness.prepare.gguf",
    "hf": "edgebench.harness.prepare.hf",
    "mlx": "edgebench.harness.prepare.mlx",
    "openvino": "edgebench.harness.prepare.openvino",
    "onnx": "edgebench.harness.prepare.onnx",
    "qnn": "edgebench.harness.prepare.qnn",
}
PRECISIONS = {
    "gguf": ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_k_s",
             "q4_0", "q3_k_m", "q3_k_s", "q2_k"),
    "hf": ("f32",),
    "mlx": ("fp16", "bf16", "8bit", "4bit"),
    "openvino": ("fp32", "fp16", "int8", "int4"),
    "onnx": ("fp32", "fp16", "int8", "int4"),
    "qnn": ("fp32", "w8a16", "w8a8"),
}
_RANK = ("f32", "bf16", "f16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_k_s", "q4_0",
         "q3_k_m", "q3_k_s", "q2_k")


def parse_target(text: str) -> Target:
    """``gguf:q4_k_m`` -> Target; unknown formats or precisions list the valid ones."""
    fmt, sep, precision = text.partition(":")
    if not sep:
        raise ConfigError(f"target {text!r} must be FORMAT:PRECISION, e.g. gguf:q4_k_m")
    if fmt not in RECIPES:
        raise ConfigError(f"unknown target format {fmt!r}{suggest(fmt, RECIPES)}; "
                          f"known: {', '.join(RECIPES)}")
    if precision not in PRECISIONS[fmt]:
        raise ConfigError(f"unknown {fmt} precision {precision!r}"
                          f"{suggest(precision, PRECISIONS[fmt])}; valid: "
                          f"{', '.join(PRECISIONS[fmt])}")
    return Target(fmt, precision)


def recipe(fmt: str) -> ModuleType:
    return importlib.import_module(RECIPES[fmt])


def source_of(model: ResolvedModel) -> SourceModel:
    """What every target is made from: the model's Hugging Face checkpoint if it came as one,
    else its highest-precision GGUF file."""
    own = [a for a in model.artifacts if a.format == "hf"] or sorted(
        (a for a in model.artifacts if a.format == "gguf" and a.precision in _RANK),
        key=lambda a: _RANK.index(a.precision))
    if not own:
        raise ConfigError(f"model {model.name} has no GGUF file or checkpoint to prepare from")
    best = own[0]
    return SourceModel(model.name, model.sha256, best.path, best.format, best.precision)


def _tools(mod: ModuleType, source: SourceModel) -> dict[str, str]:
    """The versions that decide what a recipe writes for this source (``tools_for`` where a
    recipe's stack depends on the source, e.g. GGUF from a checkpoint)."""
    return mod.tools_for(source) if hasattr(mod, "tools_for") else mod.tools()


def _key(source: SourceModel, target: Target) -> str:
    return artifact_key(source.sha256, target.format, target.precision,
                        _tools(recipe(target.format), source))


def cached(source: SourceModel, target: Target, cache_root: Path) -> Manifest | None:
    """The cached artifact for ``target``, if it exists (costs no conversion)."""
    return ArtifactCache(cache_root).get(target.format, _key(source, target))


def artifact_path(manifest: Manifest, cache_root: Path) -> Path:
    return ArtifactCache(cache_root).folder(manifest.format, manifest.key) / manifest.path


def as_artifact(manifest: Manifest, cache_root: Path) -> Artifact:
    return Artifact(manifest.format, manifest.precision, artifact_path(manifest, cache_root),
                    manifest.size_bytes, manifest.sha256, manifest.parameters,
                    manifest.weight_bytes)


def preparable(model: ResolvedModel, cache_root: Path) -> tuple[list[Artifact], list[Target]]:
    """Artifacts of ``model`` already in the cache, and the targets that could be prepared.

    Formats whose converter is not installed are left out of both.
    """
    from edgebench.errors import EdgebenchError

    have = {(a.format, a.precision) for a in model.artifacts}
    try:
        source = source_of(model)
    except ConfigError:
        return [], []
    found, todo = [], []
    for fmt, precisions in PRECISIONS.items():
        try:
            if recipe(fmt).accepts(source) is not None:
                continue
            for precision in precisions:
                if (fmt, precision) in have:
                    continue
                target = Target(fmt, precision)
                hit = cached(source, target, cache_root)
                if hit is not None:
                    found.append(as_artifact(hit, cache_root))
                else:
                    todo.append(target)
        except EdgebenchError:  # converter not installed: nothing to offer for this format
            continue
    return found, todo


def refusal(model: ResolvedModel, fmt: str) -> str | None:
    """Why ``fmt`` artifacts cannot be prepared from ``model``'s source (the recipe's own
    reason, e.g. an architecture the converter does not know); None when they can, or when
    the source or the recipe cannot be read here."""
    from edgebench.errors import EdgebenchError

    try:
        return recipe(fmt).accepts(source_of(model))
    except (EdgebenchError, KeyError):
        return None


def prepare(source: SourceModel, target: Target, cache_root: Path) -> Manifest:
    """The artifact for ``target``: from the cache, else built (dependencies first).

    Raises:
        ConfigError: the recipe cannot convert this source (names target and architecture).
        RunnerUnavailable: the converter's package is not installed.
        RunFailed: the converter failed; the message carries its last log lines.
    """
    mod = recipe(target.format)
    if (reason := mod.accepts(source)) is not None:
        raise ConfigError(f"cannot prepare {target} from {source.name}: {reason}")
    tools = _tools(mod, source)
    store = ArtifactCache(cache_root)
    key = _key(source, target)
    if (hit := store.get(target.format, key)) is not None:
        return hit

    deps = {(d.format, d.precision): artifact_path(prepare(source, d, cache_root), cache_root)
            for d in mod.dependencies(source, target.precision)}  # built before the clock starts

    def dependency(fmt: str, precision: str) -> Path:
        return deps[(fmt, precision)]

    with store.building(target.format, key) as tmp:
        start = time.perf_counter()
        with RssSampler(interval_s=0.05) as mem:
            built = mod.build(source, target.precision, tmp, dependency)
        wall = time.perf_counter() - start
        art = tmp / built.path
        size = sum(p.stat().st_size for p in ([art] if art.is_file() else art.rglob("*"))
                   if p.is_file())
        Manifest(
            key=key, format=target.format, precision=target.precision,
            precision_class=precision_class(target.precision), path=built.path,
            parameters=built.parameters, weight_bytes=built.weight_bytes,
            bits_per_weight=bits_per_weight(built.weight_bytes, built.parameters),
            size_bytes=size, sha256=file_sha256(art, cache_root) if art.is_file() else "",
            source_name=source.name, source_sha256=source.sha256,
            source_precision=source.precision,
            tool_versions={**tools, "edgebench": __version__}, wall_s=round(wall, 3),
            peak_rss_mb=round(mem.peak_mb, 1),
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            notes=built.notes,
        ).write(tmp)
    return store.get(target.format, key)
