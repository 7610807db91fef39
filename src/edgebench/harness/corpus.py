"""Texts for perplexity: a default that ships with Python, or any file; tokenized once per model.

The default is a fixed, versioned slice of CPython's ``pydoc_data.topics`` (English reference
prose, present in every Python). Its text can differ between Python releases, so rows record
its sha256 next to its name: equal hashes mean the same text was scored.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import ConfigError
from edgebench.harness.prompt import (
    TOKENIZE_VERSION,
    read_ids_memo,
    tokenize_text,
    write_ids_memo,
)

DEFAULT_CORPUS = "pydoc-topics-v1"
_DEFAULT_CHARS = 200_000  # v1: topics in sorted key order, joined by blank lines, first 200k


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    sha256: str


def load_corpus(path: str | os.PathLike | None = None) -> Corpus:
    """The default corpus, or the UTF-8 text of ``path``.

    Raises:
        ConfigError: the file is missing, not a regular file (a folder, a named pipe, a
            device: checked before reading, which would block), unreadable, not UTF-8 or
            empty.
    """
    if path is None:
        from pydoc_data.topics import topics

        text = "\n\n".join(topics[k] for k in sorted(topics))[:_DEFAULT_CHARS]
        name = DEFAULT_CORPUS
    else:
        from edgebench.suites.yamlfile import regular_file

        p = Path(path)
        regular_file(p, f"corpus {p}", "a text file", "nothing to score")
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read corpus {p}: {e.strerror or e}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"corpus {p} is not UTF-8 text (bad byte at offset {e.start})") \
                from None
        name = p.name
    if not text.strip():
        raise ConfigError(f"corpus {name} is empty")
    return Corpus(name, text, hashlib.sha256(text.encode()).hexdigest())


def corpus_ids(corpus: Corpus, model_sha256: str, source: Path, cache: Path) -> list[int]:
    """The corpus's token IDs for this model (BOS first where the model's vocabulary adds one),
    cached by model and corpus hash."""
    memo = cache / "corpora" / f"{model_sha256[:16]}-{corpus.sha256[:16]}-{TOKENIZE_VERSION}.json"
    ids = read_ids_memo(memo)
    if ids is None:
        ids = tokenize_text(source, corpus.text)
        write_ids_memo(memo, ids)
    return ids
