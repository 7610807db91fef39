"""The benchmark prompt: a fixed text, tokenized once per model, cut to the requested length.

Every runtime receives the same token IDs; rows record their hash (``prompt_ids_sha256``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

PROMPT_VERSION = "v1"


def prompt_text() -> str:
    """The fixed English text prompts are cut from (shipped with edgebench, versioned)."""
    return (resources.files("edgebench.harness") / "prompt.txt").read_text().strip()


def ids_sha256(ids: list[int] | tuple[int, ...]) -> str:
    """A short hash of a token-ID sequence, to show two runs got the same input."""
    return hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()[:16]


@contextlib.contextmanager
def quiet_stderr():
    """Send file descriptor 2 (where C libraries log) to /dev/null for the block."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def prompt_ids(model_sha256: str, gguf_path: Path, n_tokens: int, cache: Path) -> list[int]:
    """The first ``n_tokens`` token IDs (BOS first) of the prompt text, for this model.

    Tokenized with the model's own tokenizer (llama.cpp, vocabulary only) and cached by model
    hash, prompt version and length, so every later run and runtime reuses the same IDs.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
    """
    memo = cache / "prompts" / f"{model_sha256[:16]}-{PROMPT_VERSION}-{n_tokens}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    from edgebench.harness.runners.llama_cpp import _import

    lc = _import()
    with quiet_stderr():  # llama.cpp warns from C about the context of a vocab-only load
        vocab = lc.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        text = prompt_text()
        one = len(vocab.tokenize(text.encode(), add_bos=False))
        repeats = n_tokens // max(one, 1) + 1
        ids = vocab.tokenize((" ".join([text] * repeats)).encode(), add_bos=True)[:n_tokens]
    finally:
        vocab.close()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ids))
    os.replace(tmp, memo)
    return ids
