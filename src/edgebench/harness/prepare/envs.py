"""Converter environments: a virtual environment per converter, made on demand from pinned
requirements (as asv does per benchmark environment).

Converters pin incompatible stacks (optimum-intel needs transformers < 5; the ONNX Runtime
GenAI builder needs transformers 5), so one environment cannot hold them all. Each lives in
``<cache>/envs/<name>-<hash of its requirements>``, is created once with ``pip`` from the
package index, and runs converters as subprocesses whose log's last lines explain a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import RunFailed, RunnerUnavailable


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(t.strip() for t in text.strip().splitlines()[-lines:] if t.strip())


@dataclass(frozen=True)
class ConverterEnv:
    """A pinned environment for one converter."""

    name: str
    requirements: tuple[str, ...]  # installed in order, one pip call each (torch first)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.requirements).encode()).hexdigest()[:12]

    def path(self, cache_root: Path) -> Path:
        return Path(cache_root) / "envs" / f"{self.name}-{self.digest}"

    def python(self, cache_root: Path) -> Path:
        """The environment's interpreter, creating the environment first if needed.

        Raises:
            RunnerUnavailable: pip could not install the requirements (e.g. no package index).
        """
        final = self.path(cache_root)
        py = final / "bin" / "python"
        if self.ready(cache_root):
            return py
        # built in place (a venv cannot move: its scripts hold its path); ".complete" is
        # written last, so a half-made environment is never used and is rebuilt next time
        shutil.rmtree(final, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(final)
        for req in self.requirements:
            done = subprocess.run(
                [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 *req.split()],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise RunnerUnavailable(
                    f"cannot create the {self.name} converter environment: pip install "
                    f"{req} failed: {_tail(done.stderr or done.stdout, 3)}")
        (final / ".complete").write_text(json.dumps(self.requirements))
        return py

    def ready(self, cache_root: Path) -> bool:
        """Whether the environment is already made (costs nothing; makes nothing)."""
        return (self.path(cache_root) / ".complete").exists()

    def run(self, cache_root: Path, args: list[str], what: str, timeout_s: float = 3600,
            extra_env: dict[str, str] | None = None) -> str:
        """Run ``python args...`` in the environment; return its output.

        Raises:
            RunFailed: non-zero exit, with the converter's own last log lines.
        """
        env = {**os.environ, "PYTHONNOUSERSITE": "1", **(extra_env or {})}
        env.pop("PYTHONPATH", None)
        return run_logged([str(self.python(cache_root)), *args], what, timeout_s, env)


def run_logged(cmd: list[str], what: str, timeout_s: float = 3600,
               env: dict[str, str] | None = None) -> str:
    """Run a converter command; return its output.

    Raises:
        RunFailed: non-zero exit or timeout, with the converter's own last log lines.
    """
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=env, check=False)
    except subprocess.TimeoutExpired as e:
        raise RunFailed(f"{what} did not finish in {timeout_s:g} s") from e
    out = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise RunFailed(f"{what} failed (exit {done.returncode}): {_tail(out)}")
    return out
