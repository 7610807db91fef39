"""Smaller hostile inputs (issue 12): each ends in one ``error:`` line and exit 2."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from conftest import make_record, run_main
from edgebench.results.store import Store


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"  # the conftest's EDGEBENCH_STORE
    Store(root).write_session("s1", [make_record(model="gemma-3-270m", ttft_ms=10.0)])
    return root


def one_error_line(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]


def test_recommend_model_typo_is_an_error_with_did_you_mean(store, capsys):
    code, out, err = run_main(["recommend", "--device", "cpu", "--model", "gemma-3-207m"], capsys)
    one_error_line(code, err, "--model gemma-3-207m", "did you mean gemma-3-270m?")
    assert out == ""


def test_report_out_under_a_file(store, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_main(["report", "--out", str(tmp_path / "afile" / "r.html")], capsys)
    one_error_line(code, err, "afile is a file, not a folder")


def test_report_out_on_a_read_only_filesystem(store, tmp_path, capsys, monkeypatch):
    """Sessions run as root, so chmod proves nothing: the write raises EROFS by injection."""
    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_text", read_only)
    code, _, err = run_main(["report", "--out", str(tmp_path / "r.html")], capsys)
    one_error_line(code, err, "cannot write the report", "Read-only file system")


def test_plan_with_a_cache_under_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_main(["plan", "--cache-dir", str(tmp_path / "afile" / "cache")], capsys)
    one_error_line(code, err, "afile", "Not a directory")


def test_plan_with_a_read_only_new_cache(tmp_path, capsys, monkeypatch):
    """A cache that cannot be written (EROFS injected on its folders): one line, exit 2."""
    cache = tmp_path / "ro-cache"
    real_mkdir = Path.mkdir

    def mkdir(self, *a, **k):
        if str(self).startswith(str(cache)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    code, _, err = run_main(["plan", "--cache-dir", str(cache)], capsys)
    one_error_line(code, err, str(cache), "Read-only file system")


def test_a_bug_is_one_line_naming_the_traceback_file(capsys, monkeypatch):
    from edgebench import api

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.delenv("EDGEBENCH_DEBUG", raising=False)
    monkeypatch.setattr(api, "plan", broken)
    code, _, err = run_main(["plan"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: internal error: ZeroDivisionError: a bug; traceback in ")
    crash = Path(err.split("traceback in ")[1].split(" (please")[0])
    assert "ZeroDivisionError" in crash.read_text()
    crash.unlink()


def test_table_cells_are_data_not_rich_markup():
    import pandas as pd
    from rich.console import Console

    from edgebench.output import render

    console = Console(record=True, width=120)
    render(pd.DataFrame({"flags": [["machine-busy"]], "message": ["[bold]x[/bold]"]}), "table",
           console=console)
    text = console.export_text()
    assert "[machine-busy]" in text and "[bold]x[/bold]" in text


# --- Hugging Face folders: config.json is checked (review item 4) -----------------------------

@pytest.mark.parametrize("content, message", [
    (b"{", "config.json is not valid JSON (line 1, column 2"),
    (b"[]", "config.json must hold a JSON object {...}, got an array"),
    (b"null", "config.json must hold a JSON object {...}, got null"),
    (b'{"architectures": 5}', "config.json: architectures must be a list of names, got 5"),
    (b'{"architectures": [5]}', "config.json: architectures must be a list of names, got [5]"),
    (b'{"torch_dtype": 16}', "config.json: torch_dtype must be a dtype name, got 16"),
    (b'{"model_type": ["gemma3"]}', "config.json: model_type must be a name"),
    (b'{"hidden_size": "x"}', "config.json: hidden_size must be a positive integer"),
    (b'{"eos_token_id": "1"}', "config.json: eos_token_id must be a token ID or a list of them"),
    (b'{"text_config": 5}', "config.json: text_config must be a mapping, got 5"),
    (b'{"text_config": {"max_position_embeddings": "8k"}}',
     "config.json: text_config.max_position_embeddings must be a positive integer"),
    (b'{"a": "\xff"}', "config.json is not UTF-8 text (bad byte at offset 7)"),
    (b"", "config.json is not valid JSON"),
    (b"[" * 100_000, "config.json is not valid JSON"),
])
def test_plan_a_checkpoint_folder_with_a_bad_config(tmp_path, capsys, content, message):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_bytes(content)
    code, out, err = run_main(["plan", "--model", str(folder)], capsys)
    one_error_line(code, err, f"{folder}/", message)


def test_plan_a_checkpoint_folder_whose_config_is_not_a_file(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    (folder / "config.json").mkdir(parents=True)
    code, out, err = run_main(["plan", "--model", str(folder)], capsys)
    one_error_line(code, err, "config.json is not a regular file")


# --- model paths that are not UTF-8 (review item 2) -------------------------------------------

def test_model_path_not_utf8_is_refused_before_measuring(tmp_path, capsys, monkeypatch):
    """A symlink named ``m\\xff.gguf`` to a good model: refused by name at plan time (the
    runtimes take their path as UTF-8 text); nothing is measured."""
    from conftest import write_gguf
    from edgebench import api
    from edgebench.errors import ModelError
    from edgebench.models.registry import resolve_model

    model = write_gguf(tmp_path / "good.gguf")
    link = os.fsencode(str(tmp_path)) + b"/m\xff.gguf"
    os.symlink(os.fsencode(str(model)), link)
    measured = []
    monkeypatch.setattr(api, "run_isolated", lambda run, *a, **k: measured.append(run))
    for cmd in (["plan"], ["run", "-q"]):
        code, out, err = run_main([*cmd, "--model", os.fsdecode(link)], capsys)
        one_error_line(code, err, "--model: expected a model name or path in valid UTF-8 text")
    assert not measured
    with pytest.raises(ModelError, match=r"model path .*m\\xff\.gguf is not valid UTF-8"):
        resolve_model(os.fsdecode(link), tmp_path / "cache")
    code, out, err = run_main(["prepare", os.fsdecode(link), "--target", "gguf:q8_0",
                               "--cache-dir", str(tmp_path / "cache")], capsys)
    one_error_line(code, err, "m\\xff.gguf is not valid UTF-8")
    assert "\udcff" not in err


# --- tuning variables (review item 9) ---------------------------------------------------------

@pytest.mark.parametrize("name", ["EDGEBENCH_RSS_INTERVAL_S", "EDGEBENCH_BUSY_BEFORE_S"])
@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "1e400", "100"])
def test_bad_tuning_variable_is_one_line_before_measuring(tmp_path, capsys, monkeypatch, name,
                                                          value):
    from conftest import write_gguf
    from edgebench import api

    monkeypatch.setattr(api, "run_isolated", lambda *a, **k: pytest.fail("measured"))
    monkeypatch.setenv(name, value)
    model = write_gguf(tmp_path / "m.gguf")
    code, out, err = run_main(["run", "-q", "--model", str(model)], capsys)
    one_error_line(code, err, f"{name}={value!r}: expected a number of seconds from")
    assert not list((tmp_path / "store").glob("*.parquet"))


@pytest.mark.parametrize("name, value", [("EDGEBENCH_RSS_INTERVAL_S", "0"),
                                         ("EDGEBENCH_RSS_INTERVAL_S", "0.001"),
                                         ("EDGEBENCH_RSS_INTERVAL_S", "11")])
def test_sampler_interval_that_would_spin_a_core_is_refused(monkeypatch, name, value):
    from edgebench.errors import ConfigError
    from edgebench.harness import memory, tuning

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name}='{value}': expected a number of seconds "
                                          "from 0.01 to 10"):
        tuning.check()
    with pytest.raises(ConfigError):
        memory.RssSampler()


def test_good_tuning_variables_are_used(monkeypatch):
    from edgebench.harness import busy, memory, tuning

    monkeypatch.setenv("EDGEBENCH_RSS_INTERVAL_S", "0.5")
    monkeypatch.setenv("EDGEBENCH_BUSY_BEFORE_S", "0")
    tuning.check()
    assert memory.RssSampler()._interval == 0.5 and busy.NoiseProbe().before_s == 0.0
    monkeypatch.setenv("EDGEBENCH_RSS_INTERVAL_S", "")  # empty: the default
    assert tuning.rss_interval_s() == memory.DEFAULT_INTERVAL_S


def test_quality_refuses_a_bad_tuning_variable_before_anything(tmp_path, monkeypatch):
    from edgebench import api
    from edgebench.errors import ConfigError
    from edgebench.quality_sweep import run_quality

    monkeypatch.setenv("EDGEBENCH_BUSY_BEFORE_S", "-1")
    with pytest.raises(ConfigError, match="EDGEBENCH_BUSY_BEFORE_S='-1'"):
        run_quality(api.make_suite("smoke"), Store(tmp_path / "q"), tmp_path / "cache")
    assert not (tmp_path / "q").exists()


# --- the corpus file (review item 10) ---------------------------------------------------------

def _no_hang(seconds: int = 20):
    """Fail instead of hanging forever (a named pipe's open blocks until a writer comes)."""
    import signal

    def alarm(*_):
        raise AssertionError(f"still blocked after {seconds} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "is not a regular file"),
    (lambda p: p.mkdir(), "is a directory, not a text file"),
    (lambda p: p.write_bytes(b""), "is empty: nothing to score"),
    (lambda p: p.write_bytes(b"ok \xff"), "is not UTF-8 text (bad byte at offset 3)"),
    (lambda p: None, "does not exist"),
])
def test_corpus_that_is_not_a_text_file(tmp_path, make, message):
    import signal

    from edgebench.errors import ConfigError
    from edgebench.harness.corpus import load_corpus

    path = tmp_path / "corpus.txt"
    make(path)
    _no_hang()
    try:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_corpus(path)
    finally:
        signal.alarm(0)


def test_cli_quality_with_a_named_pipe_corpus(tmp_path, capsys):
    import signal

    from conftest import write_gguf

    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    model = write_gguf(tmp_path / "m.gguf")
    _no_hang(60)
    try:
        code, out, err = run_main(["quality", "--model", str(model), "--corpus", str(fifo),
                                   "-q", "--reference", "llama-cpp:f16"], capsys)
    finally:
        signal.alarm(0)
    one_error_line(code, err, f"corpus {fifo} is not a regular file")


# --- read-only commands on a store that does not exist (review item 13) -----------------------

@pytest.mark.parametrize("args", [
    ["results"], ["results", "--format", "csv"], ["store", "check"], ["sql", "SELECT 1"],
    ["report", "--out", "r.md", "--format", "md"], ["recommend", "--device", "cpu"],
])
def test_read_only_commands_on_a_store_that_does_not_exist(tmp_path, capsys, args):
    missing = tmp_path / "typo"
    code, out, err = run_main([*args, "--store", str(missing)], capsys)
    one_error_line(code, err, f"the results store {missing} does not exist")
    assert not missing.exists()


@pytest.mark.parametrize("args, hint", [
    (["results"], "no rows in"), (["store", "check"], "does not exist yet; fill it with"),
])
def test_the_default_store_not_made_yet_is_a_hint(tmp_path, capsys, args, hint):
    """$EDGEBENCH_STORE (the conftest's) or ./edgebench-results: not there yet, exit 0."""
    code, out, err = run_main(args, capsys)
    assert code == 0 and hint in err and "edgebench run" in err, err


def test_results_shows_a_store_path_that_is_not_utf8_escaped(tmp_path, capsys):
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff")
    os.mkdir(bad)
    code, out, err = run_main(["results", "--store", bad], capsys)
    assert code == 0 and "bad\\xff" in err and "\udcff" not in err, err
