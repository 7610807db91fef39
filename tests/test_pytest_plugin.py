"""The pytest plugin (``pytest11`` entry point): the ``edgebench`` fixture in a project's tests.

Each test writes a tiny test file and runs pytest on it with ``pytester``, so the plugin is
loaded the way another project would load it: from the installed entry point.
"""

from __future__ import annotations

import sys

import pytest

from conftest import needs_llama

pytest_plugins = ["pytester"]

FAKE = '''
import dataclasses
from datetime import datetime, timezone

import pytest

from edgebench import api
from edgebench.results.schema import SCHEMA_VERSION, RunRecord

CALLS = []


def row(status="ok", **kw):
    base = dict(model="gemma-3-270m", model_sha256="x", framework="llama-cpp",
                precision="q4_k_m", device="cpu", prompt_tokens=64, new_tokens=8, threads=2,
                options="{}", suite="smoke", run_key="k", session_id="s", machine_id="m",
                started_at=datetime.now(timezone.utc), finished_at=None,
                edgebench_version="0", schema_version=SCHEMA_VERSION, status=status)
    base.update(kw)
    return RunRecord(**base)


@pytest.fixture
def fake(monkeypatch):
    def run_suite(suite, store, cache, *, runs=None, **kw):
        CALLS.append((suite, store.root, cache))
        status = "error" if suite.precisions == ("q2_k",) else "ok"
        return api.RunOutcome("s", None, rows=[row(status, precision=suite.precisions[0],
                                                   decode_tok_s=42.0,
                                                   message="boom" if status != "ok" else None)])

    monkeypatch.setattr(api, "run_suite", run_suite)
    monkeypatch.setattr(api, "plan", lambda suite, cache: [object()] * len(suite.precisions))


def test_run_returns_the_row(edgebench, fake, tmp_path_factory):
    row = edgebench.run(model="gemma-3-270m", framework="llama-cpp", precision="q4_k_m",
                        new_tokens=8, repetitions=2)
    assert row.decode_tok_s > 10 and row.status == "ok"
    suite, store, cache = CALLS[-1]
    assert suite.new_tokens == (8,) and suite.repetitions == 2
    assert suite.frameworks == ("llama-cpp",) and suite.models == ("gemma-3-270m",)
    assert store == edgebench.store_path and "edgebench-store" in store.name
    assert edgebench.rows == [row]


def test_a_failed_row_fails_the_test(edgebench, fake):
    edgebench.run(precision="q2_k")


def test_check_false_returns_a_failed_row(edgebench, fake):
    assert edgebench.run(precision="q2_k", check=False).status == "error"


def test_one_cell_only(edgebench, fake):
    with pytest.raises(ValueError, match="run_all"):
        edgebench.run(precision=["q4_k_m", "q8_0"])
    assert [r.precision for r in edgebench.run_all(precision=["q4_k_m"])] == ["q4_k_m"]


def test_unknown_argument(edgebench):
    with pytest.raises(TypeError, match="new_token"):
        edgebench.run(new_token=8)
'''


def test_the_plugin_is_registered_by_the_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "edgebench"]
    assert ep.value == "edgebench.pytest_plugin"


def test_importing_the_plugin_imports_no_edgebench_machinery():
    import subprocess

    code = ("import sys, pytest; import edgebench.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('edgebench')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['edgebench', 'edgebench.pytest_plugin']"


def test_fixture_runs_and_checks_rows(pytester):
    pytester.makepyfile(test_fake=FAKE)
    res = pytester.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(passed=4, failed=1)
    res.stdout.fnmatch_lines(["*test_a_failed_row_fails_the_test*",
                              "*llama-cpp q2_k cpu: error (boom)*"])


def test_store_option_keeps_the_rows(pytester, tmp_path):
    kept = str(tmp_path / "kept")
    pytester.makepyfile(test_fake=FAKE + f'''

def test_store_option(edgebench, fake):
    assert str(edgebench.store_path) == {kept!r}
''')
    res = pytester.runpytest("-p", "no:cacheprovider", "--edgebench-store",
                             str(tmp_path / "kept"), "-k", "store_option")
    res.assert_outcomes(passed=1)


@needs_llama
@pytest.mark.llama_cpp
def test_real_llama_cpp_run_through_the_fixture(pytester):
    pytester.makepyfile(test_real='''
def test_decode(edgebench):
    row = edgebench.run(model="gemma-3-270m", framework="llama-cpp", precision="q4_k_m",
                        new_tokens=4, repetitions=1, warmup=0)
    assert row.status == "ok" and row.decode_tok_s > 1
    assert len(row.decode_tok_s_samples) == 1 and row.new_tokens == 4
    (stored,) = edgebench.store.query("SELECT status, new_tokens FROM runs").itertuples()
    assert stored.status == "ok" and stored.new_tokens == 4
''')
    from edgebench.locations import cache_dir

    # in a child process, as a project's own pytest run would be; the model cache shared
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--edgebench-cache",
                                        str(cache_dir()), timeout=300)
    res.assert_outcomes(passed=1)
