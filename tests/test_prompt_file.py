"""Prompt files (issue 17, "Prompt sets"): JSONL of texts in llm_bench's format, the built-in
set, their tokenization, one row per cell and file with a sample per prompt and repetition."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import fakes
from conftest import needs_llama, run_main
from edgebench import api
from edgebench.errors import ConfigError, ModelError
from edgebench.harness import prompt_file as pf
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, measure
from edgebench.harness.run_inputs import tokens_per_generate
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun
from edgebench.suites.spec import Suite

CTX = RunContext("sess", fingerprint())


# --------------------------------------------------------------------------- parsing

GOOD = [  # (file's text, the prompts)
    ('{"prompt": "what is openvino?"}\n', ("what is openvino?",)),
    ('{"prompt": "a"}\n{"prompt": "b"}', ("a", "b")),  # no newline at the end
    ('\n{"prompt": "a"}\n\n   \n{"prompt": "b"}\n\n', ("a", "b")),  # blank lines skipped
    ('{"prompt": "a"}\r\n{"prompt": "b"}\r\n', ("a", "b")),  # Windows line ends
    ('\ufeff{"prompt": "a"}\n', ("a",)),  # a byte-order mark
    ('{"prompt": "look", "media": "cat.png", "steps": "10"}\n', ("look",)),  # llm_bench keys
    ('{"prompt": "line one\\nline two"}\n', ("line one\nline two",)),  # escaped newline
    ('{"prompt": "caf\u00e9 \\u2603 \u2028 x"}\n', ("caf\u00e9 \u2603 \u2028 x",)),
    ('{"prompt": " a "}\n', (" a ",)),  # the text as written
]

BAD = [  # (file's text, the error after "p.jsonl")
    ('{"prompt": "a"}\n{"prompt": "b"\n', ":2: not JSON: Expecting ',' delimiter (column 15)"),
    ("prompt: a\n", ":1: not JSON: Expecting value (column 1)"),
    ('{"prompt": "a"}\n\n{"prompt": "a"} x\n', ":3: not JSON: Extra data (column 17)"),
    ('["a", "b"]\n', ':1: expected a JSON object with a "prompt" key, got an array'),
    ('"just text"\n', ':1: expected a JSON object with a "prompt" key, got a string'),
    ("null\n", ':1: expected a JSON object with a "prompt" key, got null'),
    ('{"text": "a", "id": 1}\n', ':1: no "prompt" key (keys: id, text); each line is '
                                 '{"prompt": "..."}'),
    ("{}\n", ':1: no "prompt" key (keys: none); each line is {"prompt": "..."}'),
    ('{"prompt": 3}\n', ':1: "prompt" must be a string, got a number'),
    ('{"prompt": ["a"]}\n', ':1: "prompt" must be a string, got an array'),
    ('{"prompt": null}\n', ':1: "prompt" must be a string, got null'),
    ('{"prompt": "a"}\n{"prompt": ""}\n', ':2: "prompt" is empty'),
    ('{"prompt": " \\n "}\n', ':1: "prompt" is empty'),
    ("\n \n\n", ': no prompts (one JSON object per line, {"prompt": "..."})'),
]


@pytest.mark.parametrize(("text", "prompts"), GOOD)
def test_good_files_parse(text, prompts, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8", newline="")
    got = pf.read_prompt_file(str(path))
    assert got.texts == prompts and got.name == str(path) and got.path == path
    assert re.fullmatch(r"[0-9a-f]{16}", got.sha256)


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_name_the_line(text, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("p.jsonl").write_text(text, encoding="utf-8", newline="")
    with pytest.raises(ConfigError) as e:
        pf.read_prompt_file("p.jsonl")
    assert str(e.value) == "p.jsonl" + message


def test_not_utf8_names_the_line():
    with pytest.raises(ConfigError) as e:
        pf.parse_prompts(b'{"prompt": "a"}\n{"prompt": "caf\xe9"}\n', "p.jsonl")
    assert str(e.value) == "p.jsonl:2: not UTF-8 text (bad byte at offset 31)"


def test_too_many_prompts_names_the_first_line_over(monkeypatch):
    monkeypatch.setattr(pf, "MAX_PROMPTS", 3)
    raw = b'{"prompt": "a"}\n\n' * 4
    with pytest.raises(ConfigError) as e:
        pf.parse_prompts(raw, "p.jsonl")
    assert str(e.value) == "p.jsonl:7: more than 3 prompts"
    assert len(pf.parse_prompts(raw[:-17 * 1], "p.jsonl")) == 3


def test_the_hash_is_of_the_bytes(tmp_path):
    import hashlib

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"prompt": "x"}\n')
    b.write_text('{"prompt": "x"}\n\n')  # the same prompts, other bytes: another file
    assert pf.read_prompt_file(str(a)).sha256 == hashlib.sha256(a.read_bytes()).hexdigest()[:16]
    assert pf.read_prompt_file(str(a)).sha256 != pf.read_prompt_file(str(b)).sha256


def test_files_that_are_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        pf.read_prompt_file("nope.jsonl")
    assert str(e.value) == ("prompt file nope.jsonl does not exist (built-in prompt sets: "
                            "mixed; or 'synthetic')")
    Path("d").mkdir()
    with pytest.raises(ConfigError, match="prompt file d is a directory, not a JSONL file"):
        pf.read_prompt_file("d")
    Path("e.jsonl").write_text("")
    with pytest.raises(ConfigError, match="prompt file e.jsonl is empty"):
        pf.read_prompt_file("e.jsonl")


# --------------------------------------------------------------------------- the built-in set

def test_builtin_set_loads_with_varied_lengths():
    assert "mixed" in pf.builtin_sets()
    got = pf.read_prompt_file("mixed")
    assert got.name == "mixed" and got.path.name == "mixed.jsonl" and got.path.is_file()
    assert 8 <= len(got.texts) <= 12
    words = [len(t.split()) for t in got.texts]
    assert min(words) < 20 and max(words) > 300  # from a question to a speech
    assert len(set(words)) == len(words)
    sources = (got.path.parent / "SOURCES.md").read_text()
    assert "public domain" in sources and "Apache-2.0" in sources


def test_a_local_file_named_like_a_set_is_read_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mixed").write_text('{"prompt": "mine"}\n')
    assert pf.read_prompt_file("mixed").texts != ("mine",)
    assert pf.read_prompt_file("./mixed").texts == ("mine",)


# --------------------------------------------------------------------------- token IDs

def _words(source, texts):
    """A stand-in tokenizer: BOS 2, then an ID per word."""
    return [[2] + [100 + len(w) for w in t.split()] for t in texts]


def test_ids_are_cached_by_model_and_file(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pf, "tokenize_texts", lambda s, t: calls.append(t) or _words(s, t))
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a bb"}\n{"prompt": "ccc"}\n')
    pfile = pf.read_prompt_file(str(path))
    cache = tmp_path / "cache"
    first = pf.prompt_set_ids(pfile, "f" * 64, tmp_path / "m.gguf", cache)
    assert first == [[2, 101, 102], [2, 103]] and len(calls) == 1
    assert pf.prompt_set_ids(pfile, "f" * 64, tmp_path / "m.gguf", cache) == first
    assert len(calls) == 1  # from the cache
    pf.prompt_set_ids(pfile, "e" * 64, tmp_path / "m.gguf", cache)  # another model
    assert len(calls) == 2
    (memo,) = (cache / "prompts").glob("ffff*")
    memo.write_text("[[1, 2], []]")  # damaged: tokenized again
    assert pf.prompt_set_ids(pfile, "f" * 64, tmp_path / "m.gguf", cache) == first
    assert len(calls) == 3


def test_a_prompt_without_ids_is_a_model_error(tmp_path, monkeypatch):
    from edgebench.errors import ModelError

    monkeypatch.setattr(pf, "tokenize_texts", lambda s, t: [[5], []])
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    with pytest.raises(ModelError, match="no token for prompt 2 of"):
        pf.prompt_set_ids(pf.read_prompt_file(str(path)), "f" * 64, tmp_path, tmp_path / "c")


def test_checkpoint_folder_tokenizes_with_its_tokenizer_json(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = tokenizers.Tokenizer(WordLevel({"<unk>": 0, "<bos>": 1, "hello": 5, "world": 6},
                                         unk_token="<unk>"))
    tok.pre_tokenizer = Whitespace()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "bos_token": "<bos>"}))
    assert pf.tokenize_texts(folder, ["hello world", "world"]) == [[1, 5, 6], [1, 6]]


def test_a_gguf_without_a_usable_vocabulary_is_a_model_error(tiny_gguf):
    from edgebench.errors import EdgebenchError

    pytest.importorskip("llama_cpp")
    # the fixture's 4-token vocabulary makes llama.cpp abort: the child's death, named
    with pytest.raises(EdgebenchError, match="tiny-q8.gguf: llama.cpp crashed"):
        pf.tokenize_texts(tiny_gguf, ["a a"])


@needs_llama
@pytest.mark.llama_cpp
def test_gemma_ids_equal_the_one_text_tokenizer_and_the_set_fits_the_smoke_suite():
    from edgebench.harness.prompt import tokenize_text
    from edgebench.locations import cache_dir
    from edgebench.models.registry import resolve_model

    gemma = resolve_model("gemma-3-270m", cache_dir())
    source = gemma.artifacts[0].path
    mixed = pf.read_prompt_file("mixed")
    ids = pf.tokenize_texts(source, list(mixed.texts))
    assert ids[1] == tokenize_text(source, mixed.texts[1])  # one child, the same IDs
    lengths = [len(i) for i in ids]
    assert all(i[0] == 2 for i in ids)  # Gemma's BOS
    assert 10 <= min(lengths) <= 24 and 300 <= max(lengths), lengths
    smoke = api.make_suite("smoke")  # the longest prompt and 64 new tokens fit its n_ctx
    assert max(lengths) + 64 <= smoke.options["llama-cpp"]["n_ctx"]


# --------------------------------------------------------------------------- planning

@pytest.fixture
def words_tokenizer(monkeypatch):
    monkeypatch.setattr(pf, "tokenize_texts", _words)


def _file(tmp_path, *texts) -> str:
    path = tmp_path / "three.jsonl"
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return str(path)


def test_plan_gives_one_run_per_cell_and_file(tiny_gguf, tmp_path, words_tokenizer):
    three = _file(tmp_path, "a b", "a b c d e f", "a b c d e f g h i j")  # 3, 7, 11 IDs
    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"],
                  prompt_tokens=[8, 16], new_tokens=[4], prompt_files=["synthetic", three])
    runs = api.plan(suite, Path("cache"))
    synthetic = [r for r in runs if r.prompt_file is None]
    filed = [r for r in runs if r.prompt_file is not None]
    assert sorted(r.prompt_tokens for r in synthetic) == [8, 16]
    (run,) = filed  # the file decides the prompts: one run, whatever prompt_tokens says
    assert run.skip_reason is None and run.prompt_file == three
    assert run.prompt_tokens == 7 and [len(p) for p in run.prompt_set_ids] == [3, 7, 11]
    assert run.prompt_file_sha256 == pf.read_prompt_file(three).sha256
    assert run.context_tokens == 11 + 4  # the longest prompt
    assert run.run_key not in {r.run_key for r in synthetic}


def test_plan_skips_a_file_whose_longest_prompt_exceeds_the_context(tiny_gguf, tmp_path,
                                                                     words_tokenizer):
    long = _file(tmp_path, "a", " ".join(["w"] * 130))  # the fixture's context is 128
    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], new_tokens=[4],
                  prompt_files=[long])
    (run,) = api.plan(suite, Path("cache"))
    assert "exceed tiny-q8's context length of 128 tokens" in run.skip_reason


def test_cli_plan_with_a_prompt_file(tiny_gguf, tmp_path, words_tokenizer, capsys):
    three = _file(tmp_path, "a b", "a b c d e f", "a b c d e f g h i j")
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--precision", "q8_0",
                               "--new-tokens", "4", "--prompt-file", three,
                               "--format", "json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["prompt_file"] == three and row["prompt_tokens"] == 7
    assert row["status"] == "planned"


@pytest.mark.parametrize(("text", "message"), [
    ('{"prompt": "a"}\n{"prompt": "b",}\n', "bad.jsonl:2: not JSON: "),
    ('{"prompt": "a"}\n\n{"prompt": 7}\n', 'bad.jsonl:3: "prompt" must be a string'),
])
def test_cli_plan_with_a_bad_prompt_file_is_one_error_line(text, message, tiny_gguf, capsys):
    Path("bad.jsonl").write_text(text)
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--prompt-file",
                               "bad.jsonl"], capsys)
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err


def test_cli_plan_with_a_missing_prompt_file_lists_the_sets(tiny_gguf, capsys):
    code, _, err = run_main(["plan", "--model", str(tiny_gguf), "--prompt-file",
                             "nope.jsonl"], capsys)
    assert code == 2 and "prompt file nope.jsonl does not exist (built-in prompt sets: mixed" \
        in err and "Traceback" not in err


# --------------------------------------------------------------------------- measuring

SET = ((2, 5, 6), (2, 7), (2, 8, 9, 10, 11))  # 3, 2, 5 IDs: mean 3.33 -> 3


def _run(framework="fake", prompt_set=SET, depth=0, prefix=(), **kw):
    return PlannedRun(
        model="m", model_sha256="sha", framework=framework, precision="q4_k_m", device="cpu",
        prompt_tokens=3, new_tokens=4, threads=2, options={}, suite="t", repetitions=2,
        warmup=1, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", "q4_k_m", Path("/nowhere.gguf"), 123, "asha"),
        prompt_file="three.jsonl", prompt_file_sha256="0123456789abcdef",
        prompt_set_ids=prompt_set, depth=depth, prefix_ids=tuple(prefix), **kw)


def test_every_repetition_runs_every_prompt_in_file_order(fake_framework):
    row = measure(_run(), CTX)
    assert row.status == "ok", row.message
    prompts = [c[1] for c in fakes.FakeRunner.calls if c[0] == "generate"]
    assert prompts == list(SET) * 3  # the warm-up, then 2 repetitions, each every prompt
    load = next(c for c in fakes.FakeRunner.calls if c[0] == "load")
    assert load[-1] == 5 + 4  # context: the longest prompt + new tokens
    assert row.prompt_file == "three.jsonl" and row.prompt_file_sha256 == "0123456789abcdef"
    assert row.prompt_lengths == [3, 2, 5] and row.prompt_tokens == 3
    assert len(row.token_ms_samples) == 6 and all(len(s) == 4 for s in row.token_ms_samples)
    assert row.output_ids == [0, 1, 2, 3]  # of the first prompt's first repetition
    # each sample's prefill speed from its own prompt length (TTFT 100 ms for all): the
    # median of 30, 20, 50, 30, 20, 50 tok/s
    assert row.prefill_tok_s == pytest.approx(30.0)


def test_samples_keep_their_order_repetition_by_repetition(fake_framework):
    row = measure(_run(), CTX)
    # the fake's gap grows by 1 ms per generate (20, 21, 22 ms: the warm-up's three), so
    # samples 1-3 are repetition 1's prompts in file order, 4-6 repetition 2's
    gaps = [s[1] - s[0] for s in row.token_ms_samples]
    assert gaps == pytest.approx([23.0, 24.0, 25.0, 26.0, 27.0, 28.0])


def test_a_prompt_set_at_depth_fills_the_prefix_before_each_prompt(monkeypatch):
    from edgebench.harness import registry

    spec = dataclasses.replace(registry.FRAMEWORKS["llama-cpp"], name="fake-depth",
                               target="test_depth:DepthRunner", extra="fake")
    monkeypatch.setitem(registry.FRAMEWORKS, "fake-depth", spec)
    fakes.FakeRunner.calls.clear()
    row = measure(_run("fake-depth", depth=2, prefix=(2, 40)), CTX)
    assert row.status == "ok", row.message
    prefixes = [c[1] for c in fakes.FakeRunner.calls if c[0] == "prefix"]
    assert prefixes == [(2, 40)] * 9
    load = next(c for c in fakes.FakeRunner.calls if c[0] == "load")
    assert load[-1] == 2 + 5 + 4


@pytest.mark.parametrize(("prompt_set", "message"), [
    (((2, 5), ()), "prompt 2 of three.jsonl has no IDs"),
    (((2, 5), (2, 6, 7, 8, 9, 10)), "run has prompts of 4 IDs on average, expected 3"),
])
def test_prompt_sets_that_do_not_match_the_plan_are_error_rows(prompt_set, message,
                                                                fake_framework):
    row = measure(_run(prompt_set=prompt_set), CTX)
    assert row.status == "error" and message in row.message


def test_energy_counts_each_generate_with_its_mean_length():
    assert tokens_per_generate(_run()) == pytest.approx(10 / 3 + 4)
    synthetic = dataclasses.replace(_run(), prompt_set_ids=(), prompt_file=None,
                                    prompt_ids=(1, 2, 3))
    assert tokens_per_generate(synthetic) == 3 + 4


def test_the_sweep_passes_the_prompt_set_and_cuts_only_the_depth_prefix(monkeypatch):
    asked, got = [], []
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, cache: asked.append(n)
                        or list(range(100, 100 + n)))
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a: got.append(run))
    for depth in (0, 3):
        api._one(_run("llama-cpp", depth=depth), CTX, Path("cache"), {})
    assert asked == [3]  # nothing tokenized at depth 0; the prefix alone at depth 3
    assert got[0].prefix_ids == () and got[0].prompt_ids == () and got[0].prompt_set_ids == SET
    assert got[1].prefix_ids == (100, 101, 102) and got[1].prompt_ids == ()


def test_a_prompt_file_at_depth_is_a_skipped_row_and_one_run_when_untokenizable(
        tiny_gguf, tmp_path, words_tokenizer):
    three = _file(tmp_path, "a b", "a b c d e f", "a b c d e f g h i j")
    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], new_tokens=[4],
                  prompt_files=[three], depths=[0, 16])
    runs = {r.depth: r for r in api.plan(suite, Path("cache"))}
    assert runs[0].skip_reason is None
    assert runs[16].skip_reason.startswith(f"prompt file {three} at depth 16: its prompts "
                                           "start with the model's BOS")


def test_an_untokenizable_prompt_file_is_one_skipped_run(tiny_gguf, tmp_path):
    from edgebench.models.registry import resolve_model
    from edgebench.suites.expand import expand

    def fails(model, pfile):
        raise ModelError("no vocabulary")

    three = _file(tmp_path, "a b", "c")
    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], new_tokens=[4],
                  prompt_tokens=[8, 16], prompt_files=[three])
    (run,) = expand(suite, lambda name: resolve_model(name, tmp_path), fails)
    assert run.skip_reason == f"cannot tokenize prompt file {three}: no vocabulary"


def test_a_sustained_prompt_set_is_a_skipped_row(tiny_gguf, tmp_path, words_tokenizer):
    three = _file(tmp_path, "a b", "a b c d e f", "a b c d e f g h i j")
    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], new_tokens=[4],
                  prompt_files=[three], sustain=30.0)
    (run,) = api.plan(suite, Path("cache"))
    assert run.skip_reason == ("a sustained run takes the synthetic prompt, not prompt file "
                               f"{three}")


@needs_llama
@pytest.mark.llama_cpp
def test_gemma_measures_a_three_prompt_file_into_one_stored_row(tmp_path):
    from edgebench.locations import cache_dir
    from edgebench.results.store import Store

    three = _file(tmp_path, "Name a colour.",
                  "Explain in two sentences why the sky looks blue on a clear day.",
                  "Write a haiku about a lighthouse keeper who counts the ships at night, "
                  "and then explain the image in the last line of it.")
    suite = api.make_suite("smoke", prompt_files=[three], new_tokens=[4], repetitions=2,
                           threads=[2])
    suite = dataclasses.replace(suite, warmup=0)
    store = Store(tmp_path / "store")
    out = api.run_suite(suite, store, cache_dir())
    (row,) = out.rows
    assert row.status == "ok", row.message
    assert row.prompt_file == three and len(row.prompt_lengths) == 3
    assert row.prompt_lengths[0] < row.prompt_lengths[1] < row.prompt_lengths[2]
    assert row.prompt_tokens == round(sum(row.prompt_lengths) / 3)
    assert len(row.token_ms_samples) == 2 * 3 and len(row.output_ids) == 4
    assert row.prefill_tok_s > 0 and row.decode_tok_s > 0
    df = store.query("SELECT prompt_file, prompt_file_sha256, prompt_lengths, prompt_tokens "
                     "FROM runs")
    assert len(df) == 1 and df["prompt_file"][0] == three
    assert list(df["prompt_lengths"][0]) == row.prompt_lengths
    assert df["prompt_file_sha256"][0] == pf.read_prompt_file(three).sha256
