"""The benchmark prompt: a fixed text, tokenized once per model, cut to the requested length.

Every runtime receives the same token IDs; rows record their hash (``prompt_ids_sha256``).
BOS is added only where the model's vocabulary says so (:func:`vocab_bos`), never assumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

PROMPT_VERSION = "v1"
#: How IDs are made from a text: the text's tokens without special tokens, BOS added from the
#: vocabulary (:func:`vocab_bos`). Joins the cache keys of prompt and corpus IDs.
TOKENIZE_VERSION = "t2"


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
    """The first ``n_tokens`` token IDs of the prompt text, for this model: BOS first where the
    model's vocabulary adds one (:func:`vocab_bos`), then the text's tokens.

    Tokenized once with the model's own tokenizer, from its source: a GGUF file (llama.cpp,
    vocabulary only) or a checkpoint folder (its ``tokenizer.json``), and cached by model
    hash, prompt version and length, so every later run and every runtime gets the same IDs.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
    """
    memo = cache / "prompts" / f"{model_sha256[:16]}-{PROMPT_VERSION}-{TOKENIZE_VERSION}-" \
        f"{n_tokens}.json"
    if memo.exists():
        return json.loads(memo.read_text())
    bos = vocab_bos(source)
    with _encoder(source) as encode:
        text = prompt_text()
        one = len(encode(text))
        repeats = n_tokens // max(one, 1) + 1
        ids = _with_bos(bos, encode(" ".join([text] * repeats)))[:n_tokens]
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(ids))
    os.replace(tmp, memo)
    return ids


def tokenize_text(source: Path, text: str) -> list[int]:
    """``text`` tokenized by the model's own tokenizer from its source, BOS first where the
    vocabulary adds one (:func:`vocab_bos`): a GGUF file (llama.cpp, vocabulary only) or a
    checkpoint folder (its ``tokenizer.json``).

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
    """
    bos = vocab_bos(source)
    with _encoder(source) as encode:
        return _with_bos(bos, encode(text))


def _with_bos(bos: int | None, ids: list[int]) -> list[int]:
    return ([bos] if bos is not None else []) + list(ids)


@contextlib.contextmanager
def _encoder(source: Path):
    """A function ``text -> token IDs`` of the model's own tokenizer, without special tokens
    (BOS is added from :func:`vocab_bos`, the same way for every source)."""
    if source.is_dir():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(source / "tokenizer.json"))
        yield lambda text: list(tok.encode(text, add_special_tokens=False).ids)
        return
    with _llama_vocab(source) as (_, vocab):
        yield lambda text: list(vocab.tokenize(text.encode(), add_bos=False, special=False))


@contextlib.contextmanager
def _llama_vocab(path: Path):
    """``(llama_cpp, Llama)`` of a GGUF's vocabulary only (no weights), closed after use."""
    from edgebench.harness.runners.llama_cpp import _import

    lc = _import()
    with quiet_stderr():  # llama.cpp warns from C about the context of a vocab-only load
        vocab = lc.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        yield lc, vocab
    finally:
        vocab.close()


def vocab_bos(source: Path) -> int | None:
    """The BOS token ID the model's vocabulary puts before a text, or None when it adds none.

    A GGUF file says so in ``tokenizer.ggml.add_bos_token`` and ``tokenizer.ggml.bos_token_id``
    (where a key is absent, llama.cpp's own default for the tokenizer type answers); a checkpoint
    folder in ``tokenizer_config.json`` (``add_bos_token`` and ``bos_token``), else in what its
    ``tokenizer.json`` post-processor puts before a text.

    Raises:
        ModelError: the vocabulary asks for BOS but names none, or adds several tokens.
    """
    return _hf_bos(source) if source.is_dir() else _gguf_bos(source)


def _gguf_bos(path: Path) -> int | None:
    from edgebench.models.gguf_file import read_gguf

    meta = read_gguf(path).metadata
    add, bos = meta.get("tokenizer.ggml.add_bos_token"), meta.get("tokenizer.ggml.bos_token_id")
    if add is None or (add and bos is None):
        with _llama_vocab(path) as (lc, vocab):
            v = lc.llama_model_get_vocab(vocab.model)
            add = bool(lc.llama_vocab_get_add_bos(v)) if add is None else add
            bos = int(lc.llama_vocab_bos(v)) if bos is None else bos
    if not add:
        return None
    if bos is None or bos < 0:
        from edgebench.errors import ModelError

        raise ModelError(f"{path}: the vocabulary adds BOS but names no BOS token")
    return int(bos)


def _hf_bos(folder: Path) -> int | None:
    from tokenizers import Tokenizer

    from edgebench.errors import ModelError

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    add = cfg.get("add_bos_token")
    if isinstance(add, bool):  # transformers rebuilds the post-processor from this flag
        if not add:
            return None
        name = cfg.get("bos_token")
        name = name.get("content") if isinstance(name, dict) else name
        bos = tok.token_to_id(name) if name else None
        if bos is None:
            raise ModelError(f"{folder}: tokenizer_config.json sets add_bos_token but its "
                             f"bos_token {name!r} is not in the vocabulary")
        return bos
    probe = "a"
    full = tok.encode(probe).ids
    plain = tok.encode(probe, add_special_tokens=False).ids
    start = next((k for k in range(len(full) - len(plain) + 1)
                  if full[k:k + len(plain)] == plain), 0)
    if start == 0:
        return None
    if start > 1:
        raise ModelError(f"{folder}: the tokenizer puts {start} tokens before a text "
                         f"({full[:start]}); edgebench handles one BOS token")
    return full[0]
