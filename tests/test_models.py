"""GGUF header validation and model resolution (names, files, folders)."""

import dataclasses
import os
import re
import struct
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HAS_LLAMA, needs_llama, write_gguf
from edgebench import api
from edgebench.errors import ModelError
from edgebench.harness import prompt as prompt_mod
from edgebench.harness.measure import record_for
from edgebench.models.gguf_file import MAX_ARRAY_DEPTH, read_gguf
from edgebench.models.registry import file_sha256, resolve_model
from edgebench.results.store import Store
from edgebench.suites.spec import Suite


def test_read_tiny_gguf(tiny_gguf):
    info = read_gguf(tiny_gguf)
    assert info.precision == "q8_0" and info.architecture == "gemma3"
    assert info.tensor_count == 2 and info.parameters == 4 * 32 + 64
    # tensor a: 128 f32 = 512 bytes; b starts aligned at 512, 64 f16 = 128 bytes
    assert info.data_bytes == 640
    assert info.context_length == 128
    assert info.tensor_types == {"F32": 1, "F16": 1}


@pytest.mark.parametrize("cut, message", [(10, "cut short"), (-100, "truncated")])
def test_truncated_gguf(tiny_gguf, cut, message):
    data = tiny_gguf.read_bytes()
    tiny_gguf.write_bytes(data[:cut])
    with pytest.raises(ModelError, match=message):
        read_gguf(tiny_gguf)


def test_not_a_gguf(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_text("hello, this is text and not a model at all")
    with pytest.raises(ModelError, match="not a GGUF file"):
        read_gguf(p)


@pytest.mark.parametrize("ftype, precision", [(0, "f32"), (1, "f16"), (15, "q4_k_m"),
                                              (10, "q2_k"), (18, "q6_k"), (32, "bf16")])
def test_file_type_names(tmp_path, ftype, precision):
    assert read_gguf(write_gguf(tmp_path / "m.gguf", file_type=ftype)).precision == precision


def test_resolve_path_and_folder(tmp_path):
    folder = tmp_path / "family"
    folder.mkdir()
    write_gguf(folder / "a-q8.gguf", 7)
    write_gguf(folder / "a-q4.gguf", 15)
    cache = tmp_path / "cache"
    m = resolve_model(str(folder / "a-q8.gguf"), cache)
    assert m.name == "a-q8" and m.artifacts[0].precision == "q8_0"
    assert m.sha256 == file_sha256(folder / "a-q8.gguf", cache)
    fam = resolve_model(str(folder), cache)
    assert {a.precision for a in fam.artifacts} == {"q8_0", "q4_k_m"}
    assert fam.artifact("gguf", "q4_k_m").path.name == "a-q4.gguf"


def test_sha256_memo_follows_file_changes(tmp_path):
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"one")
    assert file_sha256(p, tmp_path / "c") == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two!")  # size changes -> new memo key
    assert file_sha256(p, tmp_path / "c") == hashlib.sha256(b"two!").hexdigest()


@pytest.mark.parametrize("ref, message", [
    ("gemma-3-27m", "did you mean gemma-3-270m?"),
    ("./missing.gguf", "does not exist"),
])
def test_resolve_errors(tmp_path, ref, message):
    with pytest.raises(ModelError, match=message):
        resolve_model(ref, tmp_path)


def test_default_model_resolves_from_pypi_package(tmp_path):
    from edgebench.locations import cache_dir

    m = resolve_model("gemma-3-270m", cache_dir())
    (art,) = m.artifacts
    assert art.precision == "q4_k_m" and art.size_bytes > 200_000_000
    assert m.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


# --- hostile GGUF files (issue 12): every failure is a ModelError naming the file ------------



def _str(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def _kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", vtype) + payload


def _gguf_bytes(kvs=(), tensors=(), *, n_kv=None, n_tensors=None, version=3, pad=64) -> bytes:
    """Raw GGUF bytes: header, metadata, tensor descriptions, then ``pad`` zero bytes."""
    head = struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                       len(kvs) if n_kv is None else n_kv)
    return b"GGUF" + head + b"".join(kvs) + b"".join(tensors) + b"\0" * pad


def _tensor(name=b"t", dims=(4,), ttype=0, offset=0, n_dims=None) -> bytes:
    return (_str(name) + struct.pack("<I", len(dims) if n_dims is None else n_dims)
            + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ttype, offset))


def _alignment_gguf(path, value):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_file_type(7)
    if isinstance(value, str):
        w.add_string("general.alignment", value)
    elif value < 0:
        w.add_int32("general.alignment", value)
    else:
        w.add_uint32("general.alignment", value)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("value", [0, "32", -8, 3, 48])
def test_bad_alignment_names_the_key(tmp_path, value):
    path = _alignment_gguf(tmp_path / "a.gguf", value)
    with pytest.raises(ModelError, match=f"{path}: general.alignment must be a power of two, "
                                         f"got {value!r}"):
        read_gguf(path)


def test_good_alignment_is_used(tmp_path):
    assert read_gguf(_alignment_gguf(tmp_path / "a.gguf", 32)).tensor_count == 1


def test_deeply_nested_arrays_are_bounded_not_a_recursion_error(tmp_path):
    nested = struct.pack("<IQ", 9, 1) * 5000 + struct.pack("<IQ", 4, 0)
    path = tmp_path / "deep.gguf"
    path.write_bytes(_gguf_bytes([_kv(b"x.deep", 9, nested)]))
    with pytest.raises(ModelError, match=f"{path}: metadata key 'x.deep': arrays nested more "
                                         f"than {MAX_ARRAY_DEPTH} deep"):
        read_gguf(path)
    shallow = struct.pack("<IQ", 9, 1) * 3 + struct.pack("<IQ", 4, 2) + b"\0" * 8
    path.write_bytes(_gguf_bytes([_kv(b"x.ok", 9, shallow)]))
    info = read_gguf(path)
    assert info.metadata["x.ok"] == "<array of 1>" and info.arrays["x.ok"] == 1


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a directory, not a GGUF file"),
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: os.mkfifo(p), "is not a regular file"),  # opening it would block
    (lambda p: p.write_bytes(_gguf_bytes(n_kv=2**64 - 1)), "claims 18,446,744,073,709,551,615 "
                                                           "metadata entries"),
    (lambda p: p.write_bytes(_gguf_bytes(n_tensors=2**40)), "tensors, more than"),
    (lambda p: p.write_bytes(_gguf_bytes([_kv(b"v", 9, struct.pack("<IQ", 8, 2**62))])),
     "header is cut short"),
    (lambda p: p.write_bytes(_gguf_bytes([_kv(b"v", 13, b"")])), "unknown GGUF value type 13"),
    (lambda p: p.write_bytes(_gguf_bytes(tensors=[_tensor(dims=(2**63, 2**63))])),
     "tensor 't' (9223372036854775808 x 9223372036854775808, F32) needs"),
    (lambda p: p.write_bytes(_gguf_bytes(tensors=[_tensor(offset=2**64 - 32)])),
     "is truncated or corrupt"),
    (lambda p: p.write_bytes(_gguf_bytes(tensors=[_tensor(offset=2**64 - 1)])),
     "not a multiple of general.alignment 32"),
    (lambda p: p.write_bytes(_gguf_bytes(tensors=[_tensor(n_dims=2**31, dims=())])),
     "has 2,147,483,648 dimensions (at most 4)"),
    (lambda p: p.write_bytes(_gguf_bytes(tensors=[_tensor(ttype=999)])), "unknown type 999"),
    (lambda p: p.write_bytes(_gguf_bytes(version=1)), "GGUF version 1 is not supported"),
])
def test_hostile_files_are_model_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "x.gguf"
    make(path)
    with pytest.raises(ModelError) as e:
        read_gguf(path)
    assert message in str(e.value) and str(path) in str(e.value), str(e.value)


def test_resolve_refuses_directories_devices_and_bad_files_by_name(tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "x.gguf").mkdir()
    with pytest.raises(ModelError, match="x.gguf is a directory, not a GGUF file"):
        resolve_model(str(tmp_path / "x.gguf"), cache)
    os.mkfifo(tmp_path / "f.gguf")
    with pytest.raises(ModelError, match="f.gguf is not a regular file or folder"):
        resolve_model(str(tmp_path / "f.gguf"), cache)
    folder = tmp_path / "family"
    folder.mkdir()
    write_gguf(folder / "good-q8.gguf", 7)
    (folder / "bad-q4.gguf").write_bytes(write_gguf(tmp_path / "t.gguf").read_bytes()[:-64])
    with pytest.raises(ModelError, match="bad-q4.gguf is truncated"):
        resolve_model(str(folder), cache)
    with pytest.raises(ModelError, match="cannot read model path"):
        resolve_model(str(tmp_path / ("n" * 300) / "m.gguf"), cache)


def test_unreadable_file_is_a_model_error(tmp_path, monkeypatch):
    """Sessions run as root, so chmod proves nothing: opening raises EACCES by injection."""
    from pathlib import Path

    path = write_gguf(tmp_path / "locked.gguf")
    real_open = Path.open

    def locked(self, *a, **k):
        if self.name == "locked.gguf":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", locked)
    with pytest.raises(ModelError, match="cannot read model file .*locked.gguf: Permission"):
        resolve_model(str(path), tmp_path / "cache")


def test_resolve_validates_the_header_before_hashing(tmp_path, monkeypatch):
    from edgebench.models import registry

    path = tmp_path / "text.gguf"
    path.write_text("not a model")
    monkeypatch.setattr(registry, "file_sha256", lambda *a: pytest.fail("hashed first"))
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(str(path), tmp_path / "cache")


def test_hash_memo_damaged_or_unwritable_is_only_a_miss(tmp_path):
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"one")
    cache = tmp_path / "c"
    file_sha256(p, cache)
    for memo in (cache / "hashes").iterdir():
        memo.write_text("{not json")
    assert file_sha256(p, cache) == hashlib.sha256(b"one").hexdigest()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    assert file_sha256(p, blocked) == hashlib.sha256(b"one").hexdigest()


# --- a GGUF without a vocabulary ---------------------------------------------------------------

def test_vocabulary_problem_from_the_header(tmp_path):
    assert read_gguf(write_gguf(tmp_path / "v.gguf")).vocabulary_problem is None
    problem = read_gguf(write_gguf(tmp_path / "n.gguf", vocab=False)).vocabulary_problem
    assert problem == "has no vocabulary (no tokenizer.ggml.tokens in its GGUF header)"


def test_plan_skips_a_model_without_vocabulary_and_keeps_the_others(tmp_path):
    good = write_gguf(tmp_path / "good.gguf", 15)
    bad = write_gguf(tmp_path / "novocab.gguf", 15, vocab=False)
    suite = Suite(name="t", models=(str(good), str(bad)), new_tokens=(4, 8), threads=(1,))
    runs = api.plan(suite, tmp_path / "cache")
    by = {(r.model, r.new_tokens): r for r in runs}
    assert by[("good", 4)].skip_reason is None and by[("good", 8)].skip_reason is None
    want = ("cannot tokenize the prompt: novocab.gguf has no vocabulary "
            "(no tokenizer.ggml.tokens in its GGUF header)")
    assert by[("novocab", 4)].skip_reason == by[("novocab", 8)].skip_reason == want


def test_cli_run_over_a_model_without_vocabulary(tmp_path, capsys, monkeypatch):
    from conftest import run_main

    good = write_gguf(tmp_path / "good.gguf", 15)
    bad = write_gguf(tmp_path / "novocab.gguf", 15, vocab=False)
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a, **k: record_for(run, ctx, "ok"))
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, cache: list(range(n)))
    code, out, err = run_main(["run", "--model", str(good), "--model", str(bad), "-q",
                               "--format", "csv"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert "1 ok, 1 skipped" in err and "has no vocabulary" in out


def test_prompt_ids_refuse_a_source_without_vocabulary_or_tokenizer(tmp_path):
    bad = write_gguf(tmp_path / "novocab.gguf", vocab=False)
    with pytest.raises(ModelError, match="novocab.gguf has no vocabulary .*: the prompt cannot "
                                         "be tokenized"):
        prompt_mod.prompt_ids("a" * 64, bad, 8, tmp_path / "cache")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with pytest.raises(ModelError, match="ckpt has no tokenizer.json"):
        prompt_mod.prompt_ids("b" * 64, folder, 8, tmp_path / "cache")
    (folder / "tokenizer.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot tokenize with the tokenizer of .*ckpt"):
        prompt_mod.prompt_ids("c" * 64, folder, 8, tmp_path / "cache")


def _gguf_with_tokenizer(path, model, tokens):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_file_type(7)
    w.add_tokenizer_model(model)
    w.add_token_list(tokens)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@needs_llama
def test_llama_cpp_aborting_on_a_vocabulary_is_a_model_error_not_the_end(tmp_path):
    # A byte-fallback ("llama") vocabulary without byte tokens: llama.cpp throws
    # std::out_of_range from C++ and aborts the process that tokenizes. That process is a child.
    path = write_gguf(tmp_path / "v.gguf")
    start = time.monotonic()
    with pytest.raises(ModelError, match="v.gguf: llama.cpp crashed reading its vocabulary "
                                         "\\(killed by SIGABRT\\): .*out_of_range"):
        prompt_mod.prompt_ids("d" * 64, path, 8, tmp_path / "cache")
    with pytest.raises(ModelError, match="crashed"):
        prompt_mod.tokenize_text(path, "the a of")
    assert prompt_mod.vocab_bos(path) == 1  # loading it is fine: llama.cpp's SPM default BOS
    assert time.monotonic() - start < 30  # no gdb backtrace of the abort


@needs_llama
def test_llama_cpp_refusing_a_vocabulary_is_a_model_error(tmp_path):
    path = _gguf_with_tokenizer(tmp_path / "bogus.gguf", "bogus", ["a", "b"])
    with pytest.raises(ModelError, match="bogus.gguf: llama.cpp cannot read its vocabulary: "
                                         "ValueError: Failed to load model"):
        prompt_mod.prompt_ids("e" * 64, path, 8, tmp_path / "cache")


@needs_llama
def test_cli_sweep_survives_a_vocabulary_that_aborts_llama_cpp(tmp_path, capsys, monkeypatch):
    from conftest import run_main

    good = write_gguf(tmp_path / "crashy.gguf", 15)  # its vocabulary aborts llama.cpp
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a, **k: record_for(run, ctx, "ok"))
    code, out, err = run_main(["run", "--model", str(good), "--new-tokens", "4", "--new-tokens",
                               "8", "-q", "--format", "csv"], capsys)
    assert code == 1 and "Traceback" not in err and "2 error" in err, err
    assert out.count("llama.cpp crashed reading its vocabulary (killed by SIGABRT)") == 2


@pytest.mark.skipif(HAS_LLAMA, reason="checks the path where llama-cpp-python is missing")
def test_missing_tokenizer_runtime_stays_runner_unavailable(tmp_path):
    from edgebench.errors import RunnerUnavailable

    with pytest.raises(RunnerUnavailable):
        prompt_mod.prompt_ids("e" * 64, write_gguf(tmp_path / "v.gguf"), 8, tmp_path / "cache")


@pytest.fixture
def fake_sweep(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a, **k: calls.append(run)
                        or record_for(run, ctx, "ok"))
    model = write_gguf(tmp_path / "tiny.gguf", 15)
    suite = Suite(name="t", models=(str(model),), new_tokens=(4, 8), prompt_tokens=(8, 16),
                  threads=(1,))
    return suite, Store(tmp_path / "store"), tmp_path / "cache", calls


@pytest.mark.parametrize("failure, message", [
    (ValueError("Failed to load model from file"),
     "cannot tokenize the prompt of tiny: ValueError: Failed to load model from file"),
    (ModelError("tiny.gguf: the vocabulary adds BOS but names no BOS token"),
     "cannot tokenize the prompt of tiny: tiny.gguf: the vocabulary adds BOS but names no BOS"),
    (OSError(28, "No space left on device"),
     "cannot tokenize the prompt of tiny: OSError: [Errno 28] No space left on device"),
])
def test_any_tokenization_failure_becomes_error_rows_once_per_model(fake_sweep, monkeypatch,
                                                                     failure, message):
    suite, store, cache, calls = fake_sweep
    asked = []

    def failing(sha, src, n, cache_root):
        asked.append(n)
        raise failure

    monkeypatch.setattr(api, "prompt_ids", failing)
    out = api.run_suite(suite, store, cache)
    assert out.counts == {"error": 4} and not calls and len(asked) == 1
    assert all(message in r.message for r in out.rows), [r.message for r in out.rows]
    assert out.path is not None


def test_a_failure_of_one_prompt_length_keeps_the_other_lengths(fake_sweep, monkeypatch):
    """Too few IDs for 16 tokens fails the 16-token rows only; the 8-token rows (asked before
    and after it) still run, and each length is asked once."""
    suite, store, cache, calls = fake_sweep
    suite = dataclasses.replace(suite, include=({"prompt_tokens": 8, "threads": 2},))
    asked = []

    def short(sha, src, n, cache_root):
        asked.append(n)
        if n > 8:
            raise prompt_mod.PromptTooShort(f"tiny.gguf: gives 8 tokens, {n} were asked")
        return list(range(n))

    monkeypatch.setattr(api, "prompt_ids", short)
    out = api.run_suite(suite, store, cache)
    by_length = {(r.prompt_tokens, r.new_tokens): r.status for r in out.rows}
    assert by_length == {(8, 4): "ok", (8, 8): "ok", (16, 4): "error", (16, 8): "error"}
    assert out.rows[-1].threads == 2 and out.rows[-1].status == "ok"  # 8 again, after 16
    assert asked == [8, 16] and len(calls) == 4


def test_a_model_wide_failure_after_a_length_worked_keeps_that_length(fake_sweep,
                                                                     monkeypatch):
    """A length whose IDs are known (here from before the tokenizer broke) keeps running; the
    model-wide failure is asked once and answers every other length."""
    suite, store, cache, calls = fake_sweep
    suite = dataclasses.replace(suite, prompt_tokens=(8, 16, 32), new_tokens=(4,),
                                include=({"prompt_tokens": 8, "threads": 2},
                                         {"prompt_tokens": 32, "threads": 2}))
    asked = []

    def broken_after_8(sha, src, n, cache_root):
        asked.append(n)
        if n > 8:
            raise ModelError("tiny.gguf: llama.cpp cannot read its vocabulary")
        return list(range(n))

    monkeypatch.setattr(api, "prompt_ids", broken_after_8)
    out = api.run_suite(suite, store, cache)
    status = [(r.prompt_tokens, r.threads, r.status) for r in out.rows]
    assert status == [(8, 1, "ok"), (16, 1, "error"), (32, 1, "error"), (8, 2, "ok"),
                      (32, 2, "error")]
    assert asked == [8, 16]  # 32 is answered by the model-wide failure, not asked


def test_ctrl_c_during_tokenization_still_stops_the_sweep(fake_sweep, monkeypatch):
    suite, store, cache, calls = fake_sweep

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "prompt_ids", interrupted)
    out = api.run_suite(suite, store, cache)
    assert out.interrupted and not out.rows and not calls


# --- property: any header is read or refused with a ModelError --------------------------------

_scalar_payloads = st.sampled_from([(0, 1), (1, 1), (2, 2), (3, 2), (4, 4), (5, 4), (6, 4),
                                    (7, 1), (10, 8), (11, 8), (12, 8)])


@st.composite
def _values(draw, depth=0):
    """(vtype, payload) of one metadata value, arrays nested up to 12 deep (beyond the bound)."""
    kind = draw(st.sampled_from(["scalar", "string", "array", "junk"] if depth < 12
                                else ["scalar", "string", "junk"]))
    if kind == "scalar":
        vtype, size = draw(_scalar_payloads)
        return vtype, draw(st.binary(min_size=size, max_size=size))
    if kind == "string":
        return 8, _str(draw(st.binary(max_size=8)))
    if kind == "junk":
        return draw(st.integers(0, 2**32 - 1)), draw(st.binary(max_size=12))
    items = draw(st.lists(_values(depth + 1), max_size=3))
    etype = items[0][0] if items else draw(st.integers(0, 12))
    count = draw(st.one_of(st.just(len(items)), st.integers(0, 2**64 - 1)))
    return 9, struct.pack("<IQ", etype, count) + b"".join(p for _, p in items)


@st.composite
def _headers(draw) -> bytes:
    keys = [b"general.alignment", b"general.file_type", b"general.architecture",
            b"tokenizer.ggml.tokens", b"tokenizer.ggml.model", b"x", b"llama.context_length",
            b"tokenizer.ggml.bos_token_id", b"tokenizer.ggml.add_bos_token"]
    kvs = []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(keys))
        if key == b"general.alignment" and draw(st.booleans()):
            kvs.append(_kv(key, 4, struct.pack("<I", draw(st.sampled_from(
                [0, 1, 3, 32, 64, 48, 2**31, 2**32 - 1])))))
        else:
            kvs.append(_kv(key, *draw(_values())))
    tensors = [_tensor(name=draw(st.binary(max_size=4)),
                       dims=draw(st.lists(st.one_of(st.integers(0, 64),
                                                    st.integers(0, 2**64 - 1)), max_size=5)),
                       ttype=draw(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1))),
                       offset=draw(st.one_of(st.sampled_from([0, 32, 64]),
                                             st.integers(0, 2**64 - 1))))
               for _ in range(draw(st.integers(0, 3)))]
    data = _gguf_bytes(kvs, tensors,
                       n_kv=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
                       n_tensors=draw(st.one_of(st.none(), st.integers(0, 8),
                                                st.integers(0, 2**64 - 1))),
                       version=draw(st.sampled_from([3, 3, 2, 1, 0, 2**32 - 1])),
                       pad=draw(st.sampled_from([0, 64, 4096])))
    cut = draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))
    return data[:cut]


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(header=_headers())
def test_any_header_is_read_or_a_model_error(header):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h.gguf")
        with open(path, "wb") as fh:
            fh.write(header)
        try:
            info = read_gguf(path)
        except ModelError as e:
            assert path in str(e) and "\n" not in str(e)
        else:
            assert info.tensor_count >= 0 and info.data_bytes >= 0
            # what callers compute with has the type they compute with, whatever the header
            assert info.architecture is None or isinstance(info.architecture, str)
            assert info.precision is None or isinstance(info.precision, str)
            ctx = info.context_length
            assert ctx is None or (type(ctx) is int and ctx > 0)
            for key in ("general.file_type", "tokenizer.ggml.bos_token_id"):
                n = info.integer(key)
                assert n is None or type(n) is int
            assert info.vocabulary_problem is None or isinstance(info.vocabulary_problem, str)


# --- Hugging Face folders: config files (review item 4) ---------------------------------------

def _tokenizer_json(folder) -> None:
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"<bos>": 0, "a": 1, "<unk>": 2}, unk_token="<unk>")).save(
        str(folder / "tokenizer.json"))


BAD_CONFIGS = [
    (b"{", "is not valid JSON (line 1, column 2"),
    (b"[]", "must hold a JSON object {...}, got an array"),
    (b'{"architectures": 5}', "architectures must be a list of names, got 5"),
    (b'{"model_type": 3}', "model_type must be a name, got 3"),
    (b'{"hidden_size": true}', "hidden_size must be a positive integer, got true"),
    (b'{"eos_token_id": [1, "x"]}', "eos_token_id must be a token ID or a list of them"),
    (b'{"text_config": {"max_position_embeddings": -1}}',
     "text_config.max_position_embeddings must be a positive integer, got -1"),
    (b"\xff\xfe{}", "is not UTF-8 text (bad byte at offset 0)"),
]


@pytest.mark.parametrize("content, message", BAD_CONFIGS)
def test_every_reader_of_config_json_refuses_a_bad_one_by_name(tmp_path, content, message):
    """Each place that reads a checkpoint's config.json gets one ModelError naming the file."""
    from edgebench import quality_sweep
    from edgebench.harness.prepare import gguf as gguf_recipe
    from edgebench.harness.prepare import mlx as mlx_recipe
    from edgebench.harness.prepare.recipe import SourceModel
    from edgebench.models.hf_config import read_hf_config
    from edgebench.models.safetensors_file import checkpoint_precision

    (tmp_path / "config.json").write_bytes(content)
    source = SourceModel("m", "0" * 64, tmp_path, "hf", "f32")
    readers = [lambda: read_hf_config(tmp_path), lambda: checkpoint_precision(tmp_path),
               lambda: gguf_recipe.accepts(source), lambda: mlx_recipe.accepts(source),
               lambda: quality_sweep._context_length(tmp_path),
               lambda: resolve_model(str(tmp_path), tmp_path / "cache")]
    for read in readers:
        with pytest.raises(ModelError) as e:
            read()
        assert f"{tmp_path}/config.json" in str(e.value) and message in str(e.value)


def test_lm_eval_tokenizer_reads_config_json_checked(tmp_path):
    pytest.importorskip("tokenizers")
    from edgebench.harness.lm_eval_adapter import _Tokenizer

    _tokenizer_json(tmp_path)
    (tmp_path / "config.json").write_text('{"eos_token_id": "2"}')
    with pytest.raises(ModelError, match="eos_token_id must be a token ID"):
        _Tokenizer(tmp_path)
    (tmp_path / "config.json").write_text('{"eos_token_id": [2, 1]}')
    assert _Tokenizer(tmp_path).eos == 2


@pytest.mark.parametrize("content, message", [
    (b"{", "tokenizer_config.json is not valid JSON"),
    (b"[1]", "tokenizer_config.json must hold a JSON object {...}, got an array"),
    (b'{"add_bos_token": "yes"}', "add_bos_token must be true or false, got \"yes\""),
    (b'{"add_bos_token": true, "bos_token": 5}', "bos_token must be a token text or"),
])
def test_bos_from_a_bad_tokenizer_config_is_a_model_error(tmp_path, content, message):
    pytest.importorskip("tokenizers")
    _tokenizer_json(tmp_path)
    (tmp_path / "tokenizer_config.json").write_bytes(content)
    with pytest.raises(ModelError, match=re.escape(message)):
        prompt_mod.vocab_bos(tmp_path)


def test_bos_from_a_good_tokenizer_config(tmp_path):
    pytest.importorskip("tokenizers")
    _tokenizer_json(tmp_path)
    assert prompt_mod.vocab_bos(tmp_path) is None  # no config, no post-processor: no BOS
    (tmp_path / "tokenizer_config.json").write_text(
        '{"add_bos_token": true, "bos_token": {"content": "<bos>"}}')
    assert prompt_mod.vocab_bos(tmp_path) == 0


def test_no_config_file_is_read_unchecked_under_src():
    """Every JSON config of a checkpoint goes through ``read_hf_config`` (grep, so a new
    reader cannot slip in): no ``json.load(s)`` of a ``*config.json`` path under src/."""
    import pathlib

    src = pathlib.Path(__file__).parents[1] / "src" / "edgebench"
    pattern = re.compile(r"json\.loads?\([^)\n]*config\.json")
    hits = [f"{p}:{i}" for p in src.rglob("*.py") if p.name != "tiny.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


# --- safetensors headers (review item 5) ------------------------------------------------------

def _safetensors(path, header, *, length=None, data=b"", raw=None) -> None:
    import json

    blob = raw if raw is not None else json.dumps(header).encode()
    n = len(blob) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + blob + data)


@pytest.mark.parametrize("header, kw, message", [
    ([], {}, "its safetensors header must be a JSON object"),
    ({"w": 5}, {}, "tensor 'w' is not described by a mapping"),
    ({"w": {"shape": "ab"}}, {}, "tensor 'w' has no dtype"),
    ({"w": {"dtype": "F32", "shape": "ab", "data_offsets": [0, 0]}}, {},
     "tensor 'w': shape must be a list of non-negative integers"),
    ({"w": {"dtype": "F32", "shape": [2]}}, {}, "data_offsets must be two ordered"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, {}, "data_offsets must be"),
    ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, {}, "shape must be"),
    ({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 8]}}, {}, "shape must be"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, {}, "is truncated"),
    ({}, {"length": 2**64 - 1}, "header length 18,446,744,073,709,551,615 is more than"),
    ({}, {"length": 1000}, "header length 1,000 is more than the file's"),
    ({}, {"raw": b"{\xff}"}, "has an unreadable safetensors header"),
    ({}, {"raw": b"[" * 100_000}, "has an unreadable safetensors header"),
    ({}, {"raw": b"abc"}, "has an unreadable safetensors header"),
])
def test_bad_safetensors_headers_are_model_errors(tmp_path, header, kw, message):
    from edgebench.models.safetensors_file import safetensors_stats

    _safetensors(tmp_path / "model.safetensors", header, **kw)
    with pytest.raises(ModelError) as e:
        safetensors_stats(tmp_path)
    assert "model.safetensors" in str(e.value) and message in str(e.value), str(e.value)


def test_safetensors_that_are_not_regular_files(tmp_path):
    from edgebench.models.safetensors_file import safetensors_stats

    os.mkfifo(tmp_path / "a.safetensors")  # reading it would block
    with pytest.raises(ModelError, match="a.safetensors is not a regular file"):
        safetensors_stats(tmp_path)


def test_good_safetensors_header_counts(tmp_path):
    from edgebench.models.safetensors_file import safetensors_stats

    _safetensors(tmp_path / "m.safetensors",
                 {"__metadata__": {"format": "pt"},
                  "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                  "b": {"dtype": "F16", "shape": [], "data_offsets": [24, 26]}},
                 data=b"\0" * 26)
    assert safetensors_stats(tmp_path) == (7, 26)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**64), st.text(max_size=4),
                       st.floats(allow_nan=False, allow_infinity=False))
_json = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)
_entries = st.fixed_dictionaries({}, optional={
    "dtype": st.one_of(st.sampled_from(["F32", "BF16", "U32"]), _json),
    "shape": st.one_of(st.lists(st.integers(0, 64), max_size=4), _json),
    "data_offsets": st.one_of(st.lists(st.integers(0, 2**64), min_size=2, max_size=2), _json),
})


@st.composite
def _safetensors_files(draw) -> bytes:
    import json

    header = draw(st.one_of(st.dictionaries(st.text(max_size=4), st.one_of(_entries, _json),
                                            max_size=4), _json))
    blob = json.dumps(header).encode()
    n = draw(st.one_of(st.just(len(blob)), st.integers(0, 2**64 - 1)))
    data = draw(st.binary(max_size=64))
    whole = struct.pack("<Q", n) + blob + data
    cut = draw(st.one_of(st.just(len(whole)), st.integers(0, len(whole))))
    return whole[:cut]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(blob=_safetensors_files())
def test_any_safetensors_header_is_read_or_a_model_error(blob):
    from edgebench.models.safetensors_file import read_safetensors

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        with open(path, "wb") as fh:
            fh.write(blob)
        try:
            params, data = read_safetensors(path)
        except ModelError as e:
            assert path in str(e) and "\n" not in str(e)
        else:
            assert params >= 0 and 0 <= data <= len(blob)


# --- GGUF metadata used as a number (review item 6) -------------------------------------------

def _gguf_with(path, **values):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    if "general__file_type" not in values:
        w.add_file_type(7)
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, str):
            w.add_string(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_uint32(key, value)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("value, expected", [("abc", None), (2.5, None), (0, None), (4096, 4096)])
def test_context_length_is_an_integer_or_unknown(tmp_path, value, expected):
    from edgebench import quality_sweep

    path = _gguf_with(tmp_path / "ctx.gguf", llama__context_length=value)
    assert read_gguf(path).context_length == expected
    assert quality_sweep._context_length(path) == expected  # was a TypeError in quality


def test_file_type_and_bos_of_the_wrong_type_read_as_unknown(tmp_path):
    path = _gguf_with(tmp_path / "t.gguf", general__file_type="7",
                      tokenizer__ggml__bos_token_id="1")
    info = read_gguf(path)
    assert info.precision is None and info.integer("tokenizer.ggml.bos_token_id") is None
    assert info.integer("general.file_type") is None and info.architecture == "llama"
