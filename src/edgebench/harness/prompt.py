"""The benchmark prompt: a fixed text, tokenized once per model, cut to the requested length.

Every runtime receives the same token IDs; rows record their hash (``prompt_ids_sha256``).
BOS is added only where the model's vocabulary says so (:func:`vocab_bos`), never assumed.

A GGUF's vocabulary is read by llama.cpp in a child process (:func:`_llama_facts`): a
vocabulary that its header calls valid can still make llama.cpp abort from C++ (seen: a
byte-fallback tokenizer without byte tokens, ``std::out_of_range``), which would end the
sweep's own process. The child's death becomes a ModelError naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import multiprocessing as mp
import os
import signal
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ModelError

PROMPT_VERSION = "v1"
#: How IDs are made from a text: the text's tokens without special tokens, BOS added from the
#: vocabulary (:func:`vocab_bos`). Joins the cache keys of prompt and corpus IDs.
TOKENIZE_VERSION = "t2"


class PromptTooShort(ModelError):
    """The tokenizer works, but gives fewer IDs than one prompt length asks: a failure of that
    length only (a sweep still asks for its other lengths)."""


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


def read_ids_memo(memo: Path) -> list[int] | None:
    """Token IDs remembered in a cache file; None when it is absent, damaged or empty (the
    caller tokenizes again)."""
    try:
        ids = json.loads(memo.read_text())
    except (OSError, ValueError):
        return None
    return ids if isinstance(ids, list) and ids and all(type(i) is int for i in ids) else None


def write_ids_memo(memo: Path, ids: list[int]) -> None:
    """Remember token IDs in a cache file (temp file, then rename); a cache that cannot be
    written only means tokenizing again next time."""
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(ids))
        os.replace(tmp, memo)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def prompt_ids(model_sha256: str, source: Path, n_tokens: int, cache: Path) -> list[int]:
    """The first ``n_tokens`` token IDs of the prompt text, for this model: BOS first where the
    model's vocabulary adds one (:func:`vocab_bos`), then the text's tokens.

    Tokenized once with the model's own tokenizer, from its source: a GGUF file (llama.cpp,
    vocabulary only) or a checkpoint folder (its ``tokenizer.json``), and cached by model
    hash, prompt version and length, so every later run and every runtime gets the same IDs.

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
        ModelError: the source has no usable vocabulary or tokenizer (the message names the
            file and the cause); :class:`PromptTooShort` when it gives fewer than
            ``n_tokens`` IDs.
    """
    memo = cache / "prompts" / f"{model_sha256[:16]}-{PROMPT_VERSION}-{TOKENIZE_VERSION}-" \
        f"{n_tokens}.json"
    ids = read_ids_memo(memo)
    if ids is not None and len(ids) == n_tokens:
        return ids
    check_tokenizer(source)
    with _guarded(source):
        if source.is_dir():
            bos = vocab_bos(source)
            with _encoder(source) as encode:
                ids = _with_bos(bos, _repeated(encode, n_tokens))[:n_tokens]
        else:
            facts = _llama_facts(source, prompt_text(), n_tokens)
            ids = _with_bos(_gguf_bos(source, facts), facts["ids"])[:n_tokens]
    if len(ids) < n_tokens:
        raise PromptTooShort(f"{source}: its tokenizer gives {len(ids)} tokens for the prompt "
                             f"text, {n_tokens} were asked")
    write_ids_memo(memo, ids)
    return ids


def check_tokenizer(source: Path) -> None:
    """Refuse, from the files alone, a source that cannot tokenize a text: a GGUF header
    without a vocabulary, a checkpoint folder without ``tokenizer.json``.

    Raises:
        ModelError: naming the file and what it lacks.
    """
    if source.is_dir():
        if not (source / "tokenizer.json").is_file():
            raise ModelError(f"{source} has no tokenizer.json: the prompt cannot be tokenized")
        return
    from edgebench.models.gguf_file import read_gguf

    problem = read_gguf(source).vocabulary_problem
    if problem:
        raise ModelError(f"{source} {problem}: the prompt cannot be tokenized")


@contextlib.contextmanager
def _guarded(source: Path):
    """Any failure of a tokenizer library (llama.cpp's ValueError, tokenizers' Exception)
    becomes a ModelError naming the source; edgebench's own errors pass unchanged."""
    try:
        yield
    except EdgebenchError:
        raise
    except Exception as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ModelError(f"cannot tokenize with the tokenizer of {source}: {reason}") from e


def tokenize_text(source: Path, text: str) -> list[int]:
    """``text`` tokenized by the model's own tokenizer from its source, BOS first where the
    vocabulary adds one (:func:`vocab_bos`): a GGUF file (llama.cpp, vocabulary only) or a
    checkpoint folder (its ``tokenizer.json``).

    Raises:
        RunnerUnavailable: no tokenizer is installed for this model's format.
        ModelError: the source has no usable vocabulary or tokenizer.
    """
    check_tokenizer(source)
    with _guarded(source):
        if source.is_dir():
            bos = vocab_bos(source)
            with _encoder(source) as encode:
                return _with_bos(bos, encode(text))
        facts = _llama_facts(source, text)
        return _with_bos(_gguf_bos(source, facts), facts["ids"])


def _with_bos(bos: int | None, ids: list[int]) -> list[int]:
    return ([bos] if bos is not None else []) + list(ids)


def _repeated(encode, n_tokens: int) -> list[int]:
    """The prompt text's IDs, the text repeated until there are at least ``n_tokens``."""
    text = prompt_text()
    one = len(encode(text))
    repeats = n_tokens // max(one, 1) + 1
    return encode(" ".join([text] * repeats))


@contextlib.contextmanager
def _encoder(source: Path):
    """A function ``text -> token IDs`` of the model's own tokenizer, without special tokens
    (BOS is added from :func:`vocab_bos`, the same way for every source). In this process:
    call it for a GGUF only inside the child of :func:`_llama_facts`."""
    if source.is_dir():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(source / "tokenizer.json"))
        yield lambda text: list(tok.encode(text, add_special_tokens=False).ids)
        return
    with _llama_vocab(source) as (_, vocab):
        yield lambda text: list(vocab.tokenize(text.encode(), add_bos=False, special=False))


#: How long llama.cpp may take to load a vocabulary and tokenize, in the child (a 262k-token
#: vocabulary loads in about a second).
TOKENIZE_TIMEOUT_S = 300.0


def _llama_work(path: str, text: str | None, n_tokens: int | None) -> dict[str, Any]:
    """In the child: llama.cpp's BOS defaults for the vocabulary and, with ``text``, its IDs
    (``n_tokens`` set: the prompt text repeated to at least that many)."""
    with _llama_vocab(Path(path)) as (lc, vocab):
        v = lc.llama_model_get_vocab(vocab.model)
        facts: dict[str, Any] = {"add_bos": bool(lc.llama_vocab_get_add_bos(v)),
                                 "bos": int(lc.llama_vocab_bos(v)), "ids": None}
        if text is not None:
            def encode(t: str) -> list[int]:
                return [int(i) for i in vocab.tokenize(t.encode(), add_bos=False, special=False)]

            facts["ids"] = _repeated(encode, n_tokens) if n_tokens else encode(text)
    return facts


def _llama_child(conn, work, args: tuple, stderr_path: str) -> None:
    """In the child: ``work(*args)`` sent back, or its error, with llama.cpp's stderr kept."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C stops
    os.environ["GGML_NO_BACKTRACE"] = "1"  # an abort would otherwise attach gdb for seconds
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)  # llama.cpp logs from C; keep it for the error message
    os.close(fd)
    try:
        conn.send(("ok", work(*args)))
    except Exception as e:
        conn.send(("error", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"))
    conn.close()


def _stderr_tail(path: Path, lines: int = 2) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[:300]


def _llama_facts(path: Path, text: str | None = None,
                 n_tokens: int | None = None) -> dict[str, Any]:
    """llama.cpp's answers about a GGUF's vocabulary (see :func:`_llama_work`), computed in a
    child process so that an abort or a hang of llama.cpp cannot end this one.

    Raises:
        RunnerUnavailable: llama-cpp-python is not installed.
        ModelError: llama.cpp failed, crashed or hung on this file (named, with the cause).
    """
    return in_llama_child(path, _llama_work, (str(path), text, n_tokens))


def in_llama_child(path: Path, work, args: tuple, doing: str = "reading its vocabulary") -> Any:
    """``work(*args)`` (a module-level function, as spawn pickles it) run in a child process,
    so that an abort or a hang of llama.cpp on ``path`` cannot end this one; ``doing`` names
    the work in the timeout's message.

    Raises:
        RunnerUnavailable: llama-cpp-python is not installed.
        ModelError: llama.cpp failed, crashed or hung on this file (named, with the cause).
    """
    if importlib.util.find_spec("llama_cpp") is None:
        from edgebench.harness.runners.llama_cpp import _import

        _import()  # raises RunnerUnavailable with the install hint
    spawn = mp.get_context("spawn")
    recv, send = spawn.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="edgebench-tokenize-") as tmp:
        stderr_path = Path(tmp) / "stderr.log"
        proc = spawn.Process(target=_llama_child, daemon=True,
                             args=(send, work, args, str(stderr_path)))
        proc.start()
        send.close()
        answer = None
        try:
            if recv.poll(TOKENIZE_TIMEOUT_S):
                with contextlib.suppress(EOFError):  # died while or before sending
                    answer = recv.recv()
        except KeyboardInterrupt:
            proc.kill()
            proc.join()
            raise
        finally:
            recv.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
            if answer is None:
                raise ModelError(f"{path}: llama.cpp did not finish {doing} in "
                                 f"{TOKENIZE_TIMEOUT_S:g} s")
        tail = _stderr_tail(stderr_path)
    if answer is None:
        code = proc.exitcode
        try:
            how = f"killed by {signal.Signals(-code).name}" if code and code < 0 \
                else f"exit code {code}"
        except ValueError:
            how = f"killed by signal {-code}"
        raise ModelError(f"{path}: llama.cpp crashed reading its vocabulary ({how})"
                         + (f": {tail}" if tail else ""))
    status, value = answer
    if status != "ok":
        raise ModelError(f"{path}: llama.cpp cannot read its vocabulary: {value}")
    return value


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
    with _guarded(source):
        return _hf_bos(source) if source.is_dir() else _gguf_bos(source)


def _gguf_bos(path: Path, facts: dict[str, Any] | None = None) -> int | None:
    """BOS from the header's keys; where one is absent, from llama.cpp's defaults (``facts``
    of :func:`_llama_facts`, asked for when not given)."""
    from edgebench.models.gguf_file import read_gguf

    info = read_gguf(path)
    add = info.metadata.get("tokenizer.ggml.add_bos_token")
    add = add if isinstance(add, bool) else None  # another type: as if absent
    bos = info.integer("tokenizer.ggml.bos_token_id")
    if add is None or (add and bos is None):
        facts = facts or _llama_facts(path)
        add = facts["add_bos"] if add is None else add
        bos = facts["bos"] if bos is None else bos
    if not add:
        return None
    if not isinstance(bos, int) or bos < 0:
        raise ModelError(f"{path}: the vocabulary adds BOS but names no BOS token")
    return int(bos)


def _hf_bos(folder: Path) -> int | None:
    from tokenizers import Tokenizer

    from edgebench.models.hf_config import read_hf_config

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    cfg = read_hf_config(folder, "tokenizer_config.json", missing_ok=True)
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
