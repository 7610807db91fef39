"""Smaller hostile inputs (issue 12): each ends in one ``error:`` line and exit 2."""

from __future__ import annotations

import errno
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
