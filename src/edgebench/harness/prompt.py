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


def prompt_ids(model_sha256: str, source: Path, n_tokens: int, cache: Path) -> list[int]:
    """The first ``n_tokens`` token IDs (BOS first) of the prompt text, for this model.

    Tokenized once with the model's own tokenizer, from its source: a GGUF file (llama.cpp,
    vocabulary only) or a checkpoint folder (its ``tokenizer.json``), and cached by model
    hash, prompt version and length, so every later run and every runtime gets the same IDs.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
    """
    memo = cache / "prompts" / f"{model_sha256[:16]}-{PROMPT_VERSION}-{n_tokens}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    ids = _hf_ids(source, n_tokens) if source.is_dir() else _gguf_ids(source, n_tokens)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ids))
    os.replace(tmp, memo)
    return ids


def tokenize_text(source: Path, text: str) -> list[int]:
    """``text`` tokenized by the model's own tokenizer from its source (BOS first): a GGUF
    file (llama.cpp, vocabulary only) or a checkpoint folder (its ``tokenizer.json``).

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
    """
    if source.is_dir():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(source / "tokenizer.json")).encode(text).ids
    from edgebench.harness.runners.llama_cpp import _import

    lc = _import()
    with quiet_stderr():
        vocab = lc.Llama(model_path=str(source), vocab_only=True, verbose=False)
    try:
        return list(vocab.tokenize(text.encode(), add_bos=True, special=False))
    finally:
        vocab.close()


def _hf_ids(folder: Path, n_tokens: int) -> list[int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = prompt_text()
    one = len(tok.encode(text, add_special_tokens=False).ids)
    ids = tok.encode(" ".join([text] * (n_tokens // max(one, 1) + 1))).ids
    return ids[:n_tokens]


def _gguf_ids(gguf_path: Path, n_tokens: int) -> list[int]:
    from edgebench.harness.runners.llama_cpp import _import

    lc = _import()
    with quiet_stderr():  # llama.cpp warns from C about the context of a vocab-only load
        vocab = lc.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    try:
        text = prompt_text()
        one = len(vocab.tokenize(text.encode(), add_bos=False))
        repeats = n_tokens // max(one, 1) + 1
        return vocab.tokenize((" ".join([text] * repeats)).encode(), add_bos=True)[:n_tokens]
    finally:
        vocab.close()
