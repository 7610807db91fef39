"""Models by name or path, resolved to files on disk with their hashes."""

from edgebench.models.registry import MODELS, Artifact, ResolvedModel, resolve_model

__all__ = ["MODELS", "Artifact", "ResolvedModel", "resolve_model"]
