"""Hostile inputs through the real CLI: every one ends in rows or in one ``error:`` line.

Hypothesis generates suites (plausible and wild values for every key) and GGUF headers; each
goes through ``edgebench run`` in-process with the measuring child replaced by a fake row, so
an example costs milliseconds. The rule checked (issue 12): exit 2 with exactly one line that
starts with ``error:`` and no traceback, or exit 0/1 with one row per planned run in an intact
store. An "internal error" line is a failure too: it is the last-resort handler, not an answer.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import run_main
from edgebench import api
from edgebench.errors import EdgebenchError
from edgebench.harness.measure import record_for

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# -- values ------------------------------------------------------------------------------------
#: Text that is not valid UTF-8 once decoded: lone surrogates, which YAML writes escaped
#: ("\ud800") and a command line passes for undecodable bytes.
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                                   categories=["Cs"]), min_size=1, max_size=2)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(-(10**25), 10**25),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.tuples(st.text(max_size=3), surrogates).map("".join),
    st.sampled_from(["auto", "llama-cpp", "q4_k_m", "cpu", "nope", "", "64"]),
)
wild = st.one_of(scalars, st.lists(scalars, max_size=3),
                 st.dictionaries(st.text(max_size=6), scalars, max_size=2))

PLAUSIBLE = {
    "name": st.one_of(st.text(min_size=1, max_size=8), st.integers()),
    "description": st.text(max_size=10),
    "models": st.lists(st.one_of(st.sampled_from(["gemma-3-270m", "nope", "x.gguf", ""]),
                                 surrogates), max_size=2),
    "frameworks": st.lists(st.sampled_from(["llama-cpp", "ort-genai", "llama_cpp", "nope"]),
                           max_size=2),
    "precisions": st.lists(st.sampled_from(["q4_k_m", "q8_0", "int4", "Q4_K_M", 1.5]),
                           max_size=2),
    "devices": st.lists(st.sampled_from(["cpu", "cuda", "tpu"]), max_size=2),
    "prompt_tokens": st.lists(st.integers(-2, 40), max_size=2),
    "new_tokens": st.lists(st.integers(-2, 8), max_size=2),
    "threads": st.lists(st.one_of(st.just("auto"), st.integers(-1, 4), st.just("abc")),
                        max_size=2),
    "repetitions": st.integers(-1, 3),
    "warmup": st.integers(-1, 2),
    "cooldown_s": st.floats(-1, 1, allow_nan=False),
    "timeout_s": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 60)),
    "options": st.dictionaries(st.sampled_from(["llama-cpp", "mlx", "nope"]),
                               st.one_of(st.dictionaries(st.sampled_from(["n_ctx", "x"]),
                                                         scalars, max_size=2), scalars),
                               max_size=2),
    "include": st.lists(st.dictionaries(
        st.sampled_from(["framework", "precision", "threads", "prompt_tokens", "bogus"]),
        scalars, max_size=2), max_size=2),
    "exclude": st.lists(st.dictionaries(
        st.sampled_from(["framework", "precision", "prompt_tokens"]), scalars, max_size=2),
        max_size=2),
    "quality": st.booleans(),
    "quality_chunks": st.integers(-1, 3),
    "unknown_key": scalars,
}
suites = st.dictionaries(st.sampled_from(sorted(PLAUSIBLE)), st.none(), max_size=8).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.one_of(PLAUSIBLE[k], wild) for k in keys if k != "quality"}))


# -- the harness around the CLI -----------------------------------------------------------------
@pytest.fixture
def fake_measuring(monkeypatch):
    """No child process, no preparation, no tokenizer: a fake ok row per run."""
    def fake_isolated(run, ctx, *a, **k):
        return record_for(run, ctx, "ok", "fake")

    def fake_prepared(run, cache):
        raise EdgebenchError("preparation is not part of this test")

    monkeypatch.setattr(api, "run_isolated", fake_isolated)
    monkeypatch.setattr(api, "_prepared", fake_prepared)


def check_outcome(code: int, out: str, err: str, store: Path) -> None:
    assert "Traceback" not in out + err, err
    assert "internal error" not in err, err
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    else:
        assert code in (0, 1), (code, err)
        files = sorted(store.glob("*.parquet"))
        assert len(files) == 1, (err, files)
        table = pq.read_table(files[0])  # intact: it reads
        assert table.num_rows >= 1
    for f in store.glob("*.parquet"):
        pq.read_table(f)


@SETTINGS
@given(suite=suites)
@example(suite={"name": "x\ud800"})
@example(suite={"models": ["m\udcff.gguf"]})
@example(suite={"description": "\udfff", "frameworks": ["llama-cpp\ud800"]})
@example(suite={"options": {"llama-cpp": {"n_ctx": "\ud800"}}})
@example(suite={"options": {"llama-cpp": {"\ud800": 1}}})
@example(suite={"include": [{"model": "\ud800"}]})
def test_any_suite_ends_in_rows_or_one_error_line(suite, fake_measuring, capsys, monkeypatch):
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, cache: list(range(n)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.yaml"
        # escaped, so a lone surrogate is valid UTF-8 YAML ("x\ud800") that decodes to one
        path.write_text(yaml.safe_dump(suite, allow_unicode=False), encoding="utf-8")
        store = Path(tmp) / "store"
        code, out, err = run_main(["run", str(path), "--store", str(store), "-q",
                                   "--format", "json"], capsys)
        check_outcome(code, out, err, store)


# -- GGUF headers -------------------------------------------------------------------------------
def _string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


kv_values = st.one_of(
    st.tuples(st.just(4), st.integers(0, 2**32 - 1).map(lambda v: struct.pack("<I", v))),
    st.tuples(st.just(8), st.binary(max_size=12).map(_string)),
    st.tuples(st.just(6), st.floats(width=32).map(lambda v: struct.pack("<f", v))),
    st.tuples(st.integers(0, 14), st.binary(max_size=9)),  # any type, any bytes
    st.tuples(st.just(9), st.tuples(st.integers(0, 12), st.integers(0, 2**64 - 1),
                                    st.binary(max_size=16))
              .map(lambda t: struct.pack("<IQ", t[0], t[1]) + t[2])),
)
KEYS = [b"general.architecture", b"general.file_type", b"general.alignment",
        b"tokenizer.ggml.tokens", b"gemma3.context_length", b"x"]


@st.composite
def gguf_headers(draw) -> bytes:
    version = draw(st.sampled_from([2, 3, 3, 3, 0, 99]))
    kvs = draw(st.lists(st.tuples(st.sampled_from(KEYS), kv_values), max_size=5))
    n_tensors = draw(st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)))
    n_kv = draw(st.one_of(st.just(len(kvs)), st.integers(0, 2**64 - 1)))
    body = b"".join(_string(k) + struct.pack("<I", t) + v for k, (t, v) in kvs)
    tensors = draw(st.binary(max_size=64))
    data = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + body + tensors
    cut = draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))
    return data[:cut] + draw(st.binary(max_size=64))


def _written_gguf(path: Path, file_type: int, alignment, vocab: bool, arch: str) -> bytes:
    """A GGUF written by the gguf package: plausible, with the chosen flaws."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), arch)
    w.add_file_type(file_type)
    w.add_context_length(128)
    if alignment is not None:
        if isinstance(alignment, str):
            w.add_string("general.alignment", alignment)
        else:
            w.add_uint32("general.alignment", alignment)
    if vocab:
        w.add_tokenizer_model("llama")
        w.add_token_list(["<pad>", "<bos>", "a", "b"])
        w.add_bos_token_id(1)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


@st.composite
def written_ggufs(draw) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        data = _written_gguf(Path(tmp) / "w.gguf", draw(st.sampled_from([7, 15, 0, 99])),
                             draw(st.sampled_from([None, 32, 0, 3, "x"])), draw(st.booleans()),
                             draw(st.sampled_from(["gemma3", "llama", ""])))
    cut = draw(st.one_of(st.just(len(data)), st.integers(0, len(data))))
    return data[:cut]


@SETTINGS
@given(header=st.one_of(gguf_headers(), written_ggufs()))
def test_any_gguf_header_ends_in_rows_or_one_error_line(header, fake_measuring, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "m.gguf"
        model.write_bytes(header)
        store = Path(tmp) / "store"
        code, out, err = run_main(["run", "--model", str(model), "--store", str(store),
                                   "--cache-dir", str(Path(tmp) / "cache"), "-q",
                                   "--format", "json"], capsys)
        check_outcome(code, out, err, store)


# -- flags of the read-only commands ------------------------------------------------------------
flag_values = st.one_of(st.sampled_from(["-1", "0", "1", "1e309", "nan", "abc", "", "cpu",
                                         "gemma-3-270m", "q4_k_m", "this", "'", "1; DROP"]),
                        st.text(max_size=6))
COMMANDS = {
    "results": ["--limit", "--model", "--framework", "--status", "--session", "--format"],
    "recommend": ["--device", "--model", "--max-memory-mb", "--min-decode-tok-s", "--max-kld",
                  "--optimize", "--format"],
    "plan": ["--model", "--framework", "--precision", "--prompt-tokens", "--threads",
             "--repetitions", "--warmup", "--format"],
    "sql": [],
    "report": ["--where", "--device", "--format", "--out"],
}


@st.composite
def command_lines(draw) -> list[str]:
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [cmd]
    if cmd == "sql":
        argv.append(draw(st.one_of(st.sampled_from([
            "SELECT * FROM runs", "SELECT 1 UNION SELECT 'a'", "SELECT 'infinity'::TIMESTAMP",
            "SELECT [1, 2] AS l, {'a': 1} AS s", "SELECT 1/0", "COPY runs TO 'x.csv'",
            "SELECT * FROM read_text('/etc/hostname')", "PRAGMA version"]), flag_values)))
    for flag in draw(st.lists(st.sampled_from(COMMANDS[cmd] or ["--format"]), max_size=3)):
        argv += [flag, draw(flag_values)]
    return argv


@SETTINGS
@given(argv=command_lines())
@example(argv=["results", "--limit", "-1"])
@example(argv=["results", "--limit", "0"])
@example(argv=["sql", "SELECT 1 UNION SELECT 'a'"])
@example(argv=["sql", "SELECT 'infinity'::TIMESTAMP"])
@example(argv=["sql", "COPY runs TO 'out.csv'"])
@example(argv=["recommend", "--model", "typo"])
@example(argv=["report", "--out", "/proc/x/r.html"])
def test_any_flags_end_in_output_or_one_error_line(argv, capsys, monkeypatch):
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, cache: list(range(n)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        for i in range(2):  # a store with rows, so the commands have something to read
            from conftest import make_record
            from edgebench.results.store import Store
            Store(store).write_session(f"s{i}", [make_record(session_id=f"s{i}",
                                                             run_key=f"k{i}", ttft_ms=10.0)])
        if argv[0] == "report":
            if "--out" not in argv:
                argv += ["--out", str(Path(tmp) / "r.html")]
        code, out, err = run_main([*argv, "--store", str(store)] if argv[0] != "plan"
                                  else argv, capsys)
        assert "Traceback" not in out + err, err
        assert "internal error" not in err, err
        if code == 2:
            lines = [ln for ln in err.splitlines()
                     if ln.strip() and not ln.startswith(("warning:", "note:"))]
            assert len(lines) == 1 and lines[0].startswith("error: "), err
        else:
            assert code in (0, 1), (code, err)
        for f in store.glob("*.parquet"):  # nothing a read-only command does harms the store
            pq.read_table(f)
        assert len(list(store.glob("*.parquet"))) == 2
