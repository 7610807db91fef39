"""Prompt files: JSONL of texts (the format OpenVINO's llm_bench reads), and built-in sets.

One JSON object per line with a ``"prompt"`` key holding the text, as llm_bench's text
generation reads them (``{"prompt": "what is openvino?"}``); other keys (llm_bench's
``media`` and the like) are ignored, blank lines skipped. A suite names a file by its path
or a built-in set by its name (:data:`BUILTIN`, shipped in ``harness/prompts/``).

:func:`read_prompt_file` parses one (a bad line is a ConfigError naming the file and the line
number); :func:`prompt_set_ids` tokenizes every prompt with the model's own tokenizer (BOS
where its vocabulary adds one), once per model and file: the IDs are cached by model hash,
file hash and :data:`~edgebench.harness.prompt.TOKENIZE_VERSION`. A GGUF's vocabulary is
loaded once for all the prompts, in a child process (see ``prompt._llama_facts``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, ModelError

SYNTHETIC = "synthetic"
#: The most prompts one file may hold (each repetition runs them all).
MAX_PROMPTS = 1000
#: The largest prompt file read (bytes).
MAX_BYTES = 64 * 1024 * 1024
#: How a built-in set's file is named in ``harness/prompts/``: ``<name>.jsonl``.
_BUILTIN_DIR = "prompts"


@dataclass(frozen=True)
class PromptFile:
    """A parsed prompt file."""

    name: str  # a built-in set's name, or the path as the suite gave it
    path: Path
    sha256: str  # of the file's bytes (16 hex digits, like every short hash in rows)
    texts: tuple[str, ...]


def builtin_sets() -> tuple[str, ...]:
    """The names of the prompt sets shipped with edgebench, sorted."""
    folder = resources.files("edgebench.harness") / _BUILTIN_DIR
    return tuple(sorted(p.name[:-len(".jsonl")] for p in folder.iterdir()
                        if p.name.endswith(".jsonl")))


def read_prompt_file(ref: str) -> PromptFile:
    """Read and parse a prompt file or built-in set. Raises ConfigError (line number).

    ``ref`` is a built-in set's name (:func:`builtin_sets`) or the path of a JSONL file (a
    file whose path is a set's name is read as ``./name``).

    Raises:
        ConfigError: the file is missing (the message lists the built-in sets), not a regular
            file, too large, not UTF-8, has a line that is not a JSON object with a non-empty
            ``"prompt"`` string, has no prompts or more than :data:`MAX_PROMPTS`.
    """
    from edgebench.suites.yamlfile import regular_file

    if ref in builtin_sets():
        path = Path(str(resources.files("edgebench.harness") / _BUILTIN_DIR / f"{ref}.jsonl"))
    else:
        path = Path(ref)
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"prompt file {ref} does not exist (built-in prompt sets: "
                              f"{', '.join(builtin_sets())}; or 'synthetic')")
    st = regular_file(path, f"prompt file {ref}", "a JSONL file",
                      'one JSON object per line, {"prompt": "..."}')
    if st.st_size > MAX_BYTES:
        raise ConfigError(f"prompt file {ref} is {st.st_size:,} bytes: a prompt file is at "
                          f"most {MAX_BYTES:,}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read prompt file {ref}: {e.strerror or e}") from None
    return PromptFile(name=ref, path=path, sha256=hashlib.sha256(raw).hexdigest()[:16],
                      texts=parse_prompts(raw, ref))


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def parse_prompts(raw: bytes, name: str) -> tuple[str, ...]:
    """The texts of a prompt file's bytes, in file order (``name`` as messages give it).

    Raises:
        ConfigError: ``name:LINE: what is wrong``; or ``name: no prompts`` when it has none.
    """
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as some editors write
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text (bad byte at offset {e.start})") \
            from None
    texts: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            why = f"{e.msg} (column {e.colno})" if isinstance(e, json.JSONDecodeError) else e
            raise ConfigError(f"{name}:{number}: not JSON: {why}") from None
        if not isinstance(obj, dict):
            raise ConfigError(f'{name}:{number}: expected a JSON object with a "prompt" key, '
                              f"got {_json_type(obj)}")
        if "prompt" not in obj:
            keys = ", ".join(sorted(map(str, obj))[:5]) or "none"
            raise ConfigError(f'{name}:{number}: no "prompt" key (keys: {keys}); each line is '
                              f'{{"prompt": "..."}}')
        prompt = obj["prompt"]
        if not isinstance(prompt, str):
            raise ConfigError(f'{name}:{number}: "prompt" must be a string, got '
                              f"{_json_type(prompt)}")
        if not prompt.strip():
            raise ConfigError(f'{name}:{number}: "prompt" is empty')
        if len(texts) == MAX_PROMPTS:
            raise ConfigError(f"{name}:{number}: more than {MAX_PROMPTS:,} prompts")
        texts.append(prompt)
    if not texts:
        raise ConfigError(f'{name}: no prompts (one JSON object per line, {{"prompt": "..."}})')
    return tuple(texts)


# --------------------------------------------------------------------------- token IDs

def prompt_set_ids(pfile: PromptFile, model_sha256: str, source: Path,
                   cache: Path) -> list[list[int]]:
    """Each prompt's token IDs with the model's own tokenizer (BOS where it adds one).

    Cached in ``cache/prompts`` by model hash, file hash and tokenize version.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
        ModelError: the source has no usable tokenizer, or a prompt gives no IDs.
        ConfigError: a prompt longer than the suite's token bound (``MAX_TOKENS``).
    """
    from edgebench.harness.prompt import TOKENIZE_VERSION, write_ids_memo

    memo = cache / "prompts" / f"{model_sha256[:16]}-file-{pfile.sha256}-{TOKENIZE_VERSION}.json"
    got = _read_memo(memo, len(pfile.texts))
    if got is not None:
        return got
    ids = tokenize_texts(source, list(pfile.texts))
    from edgebench.suites.spec import MAX_TOKENS

    for i, one in enumerate(ids, start=1):
        if not one:
            raise ModelError(f"{source}: its tokenizer gives no token for prompt {i} of "
                             f"{pfile.name}")
        if len(one) > MAX_TOKENS:
            raise ConfigError(f"prompt {i} of {pfile.name} is {len(one):,} tokens: at most "
                              f"{MAX_TOKENS:,}")
    write_ids_memo(memo, ids)  # type: ignore[arg-type]  # JSON of a list of lists
    return ids


def _read_memo(memo: Path, count: int) -> list[list[int]] | None:
    """Cached IDs of ``count`` prompts; None when absent, damaged or of another shape."""
    try:
        ids = json.loads(memo.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(ids, list) and len(ids) == count and all(
        isinstance(p, list) and p and all(type(i) is int for i in p) for p in ids)
    return ids if ok else None


def tokenize_texts(source: Path, texts: list[str]) -> list[list[int]]:
    """Every text tokenized by the model's own tokenizer, BOS first where the vocabulary adds
    one (as ``prompt.tokenize_text`` does for one text); a GGUF's vocabulary is loaded once,
    in one child process, for all of them.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
        ModelError: the source has no usable vocabulary or tokenizer.
    """
    from edgebench.harness import prompt as p

    p.check_tokenizer(source)
    with p._guarded(source):
        if source.is_dir():
            bos = p.vocab_bos(source)
            with p._encoder(source) as encode:
                return [p._with_bos(bos, encode(t)) for t in texts]
        facts = _llama_batch(source, texts)
        bos = p._gguf_bos(source, facts)
        return [p._with_bos(bos, ids) for ids in facts["ids"]]


def _batch_work(path: str, texts: list[str]) -> dict[str, Any]:
    """In the child: llama.cpp's BOS defaults for the vocabulary and each text's IDs."""
    from edgebench.harness.prompt import _llama_vocab

    with _llama_vocab(Path(path)) as (lc, vocab):
        v = lc.llama_model_get_vocab(vocab.model)
        return {"add_bos": bool(lc.llama_vocab_get_add_bos(v)),
                "bos": int(lc.llama_vocab_bos(v)),
                "ids": [[int(i) for i in vocab.tokenize(t.encode(), add_bos=False,
                                                        special=False)] for t in texts]}


def _llama_batch(path: Path, texts: list[str]) -> dict[str, Any]:
    """``prompt._llama_facts`` for several texts at once: one child process, one vocabulary
    load (about a second for a 262k-token vocabulary), so a crash or hang of llama.cpp cannot
    end this process.

    Raises:
        RunnerUnavailable: llama-cpp-python is not installed.
        ModelError: llama.cpp failed, crashed or hung on this file (named, with the cause).
    """
    from edgebench.harness.prompt import in_llama_child

    return in_llama_child(path, _batch_work, (str(path), texts), "tokenizing the prompts")

