"""Limits a planned cell is checked against before anything runs: a prompt the model's
tokenizer cannot make, and depth + prompt + new tokens beyond the model's context or a
runtime's context option. Each answers with the reason a ``skipped`` row gives, or None."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgebench.errors import EdgebenchError
from edgebench.models.registry import ResolvedModel


def tokenizer_problem(model: ResolvedModel) -> str | None:
    """Why the prompt cannot be tokenized for ``model``, seen before any run: every runtime
    gets the IDs of the model's source (``prepare.source_of``), so a source without a
    vocabulary (a GGUF header without ``tokenizer.ggml.tokens``) fails every cell of it."""
    from edgebench.harness import prepare as prepare_mod

    try:
        source = prepare_mod.source_of(model)
    except EdgebenchError as e:
        return f"cannot tokenize the prompt: {e}"
    art = next((a for a in model.artifacts if a.path == source.path), None)
    if art is not None and art.problem:
        return f"cannot tokenize the prompt: {source.path.name} {art.problem}"
    return None


def context_length(model: ResolvedModel) -> int | None:
    """The model's context length in tokens, from its source: a GGUF's ``context_length``, a
    checkpoint's ``max_position_embeddings``; None when unknown (no limit is checked)."""
    from edgebench.harness import prepare as prepare_mod
    from edgebench.models.gguf_file import read_gguf
    from edgebench.models.hf_config import read_hf_config

    try:
        source = prepare_mod.source_of(model).path
        if source.is_dir():
            cfg = read_hf_config(source)
            cfg = cfg.get("text_config") or cfg
            n = cfg.get("max_position_embeddings")
        else:
            n = read_gguf(source).context_length
    except (EdgebenchError, OSError, ValueError, AttributeError):
        return None  # the tokenizer check names a source that cannot be read
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def context_problem(depth: int, prompt: int, new: int, limit: int | None,
                    name: str) -> str | None:
    """Why ``depth + prompt + new`` tokens do not fit the model's context, naming the limit."""
    if limit is None or depth + prompt + new <= limit:
        return None
    return (f"depth {depth} + prompt {prompt} + new {new} = {depth + prompt + new:,} tokens "
            f"exceed {name}'s context length of {limit:,} tokens")


def option_problem(depth: int, prompt: int, new: int, option: str | None,
                   options: Mapping[str, Any]) -> str | None:
    """Why ``depth + prompt + new`` tokens do not fit the runtime's context option (the suite
    set llama.cpp's ``n_ctx`` lower), naming the option and its value."""
    cap = options.get(option) if option else None
    if not isinstance(cap, int) or isinstance(cap, bool) or depth + prompt + new <= cap:
        return None
    return (f"depth {depth} + prompt {prompt} + new {new} = {depth + prompt + new:,} tokens "
            f"exceed the suite's {option} of {cap:,}: raise {option} in the suite's options")
