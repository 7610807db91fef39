"""CLI: every command has --help; bad input gives one line on stderr and exit code 2."""

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import make_record, run_main
from edgebench.cli import cli
from edgebench.results.store import Store

COMMANDS = sorted(cli.commands)


def test_expected_commands_exist():
    assert {"run", "plan", "results", "sql", "models", "suites", "frameworks"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize("args, message", [
    (["run", "missing.yaml"], "suite file missing.yaml does not exist"),
    (["run", "bad.yaml"], "malformed YAML"),
    (["plan", "--framework", "llamacpp"], "did you mean llama-cpp?"),
    (["plan", "--precision", "q4km"], "did you mean q4_k_m?"),
    (["plan", "--device", "cuda0"], "did you mean cuda?"),
    (["run", "--model", "gemma-3-27m"], "did you mean gemma-3-270m?"),
    (["run", "--model", "trunc.gguf"], "trunc.gguf is truncated"),
    (["run", "--model", "text.gguf"], "not a GGUF file"),
    (["run", "--repetitions", "0"], "--repetitions: expected a positive integer, got 0"),
    (["run", "--threads", "many"], "--threads: expected a positive integer or 'auto', got 'many'"),
    (["run", "--no-such-flag"], "No such option"),
    (["sql", "SELEC 1"], "SQL error"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    from conftest import write_gguf

    (tmp_path / "bad.yaml").write_text("frameworks: [llama-cpp\n")
    good = write_gguf(tmp_path / "trunc.gguf").read_bytes()
    (tmp_path / "trunc.gguf").write_bytes(good[:-64])
    (tmp_path / "text.gguf").write_text("plain text")
    code, out, err = run_main(args, capsys)
    assert code == 2, err
    assert message in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def test_other_schema_in_store_is_skipped_and_store_intact(tmp_path, capsys):
    """A file of a schema this edgebench does not read is named once and skipped; the rest of
    the store answers (``run`` with such a file: tests/test_store_faults.py)."""
    store = tmp_path / "store"
    Store(store).write_session("good", [make_record()])
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata(
        {b"edgebench.schema_version": b"0"}), store / "old.parquet")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    for args in (["results", "--format", "csv"], ["sql", "SELECT count(*) AS n FROM runs"]):
        code, _, err = run_main(args, capsys)
        assert code == 0 and err.count("warning: skipped store file") == 1, err
        assert "old.parquet: schema version 0 is not one this edgebench reads" in err
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before


def test_results_formats(tmp_path, capsys):
    Store(tmp_path / "store").write_session("s1", [make_record(decode_tok_s=42.5)])
    code, out, _ = run_main(["results", "--format", "csv"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("model,framework,precision")
    assert "42.5" in out
    code, out, _ = run_main(["results", "--format", "json"], capsys)
    assert '"decode_tok_s":42.5' in out.replace(" ", "")
    code, out, _ = run_main(["results", "--format", "md"], capsys)
    assert out.startswith("| model | framework |") and "|---|" in out
    code, out, _ = run_main(["results", "--framework", "nope", "--format", "csv"], capsys)
    assert len(out.strip().splitlines()) == 1  # header only


def test_sql_over_runs(tmp_path, capsys):
    Store(tmp_path / "store").write_session("s1", [make_record(), make_record(run_key="b")])
    code, out, _ = run_main(["sql", "SELECT count(*) AS n FROM runs", "--format", "csv"], capsys)
    assert code == 0 and out.split() == ["n", "2"]


def test_empty_store_says_how_to_fill_it(capsys):
    code, out, err = run_main(["results"], capsys)
    assert code == 0 and "edgebench run" in err


def test_plan_and_models_and_suites(capsys):
    code, out, _ = run_main(["plan", "--new-tokens", "8", "--new-tokens", "16",
                             "--format", "csv"], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3 and "planned" in lines[1]
    code, out, _ = run_main(["models", "--format", "csv"], capsys)
    assert "gemma-3-270m" in out
    code, out, _ = run_main(["suites", "--format", "csv"], capsys)
    assert "smoke" in out


def test_console_script_help():
    done = subprocess.run([sys.executable, "-m", "edgebench", "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "run" in done.stdout


def test_importing_edgebench_imports_no_runtime():
    code = ("import sys, edgebench.cli, edgebench.api; "
            "bad = [m for m in ('llama_cpp', 'onnxruntime_genai', 'openvino_genai', 'mlx') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
