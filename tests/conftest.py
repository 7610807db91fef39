"""Shared fixtures: isolated cache and store folders, tiny GGUF files made on the fly."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(
    not HAS_LLAMA, reason="llama-cpp-python is not installed (pip install -e '.[llama-cpp]')"
)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own store; the model cache is shared so Gemma is assembled once."""
    monkeypatch.setenv("EDGEBENCH_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)


def write_gguf(path: Path, file_type: int = 7, arch: str = "gemma3",
               vocab: bool = True) -> Path:
    """A small valid GGUF (two tensors, no usable weights) with a given general.file_type and,
    unless ``vocab`` is False, a four-token vocabulary in its header (a file without one is
    refused by ``plan``: its prompt cannot be tokenized)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_file_type(file_type)
    w.add_context_length(128)
    if vocab:
        w.add_tokenizer_model("llama")
        w.add_token_list(["<unk>", "<s>", "</s>", "a"])
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.add_tensor("b", np.ones((64,), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path) -> Path:
    return write_gguf(tmp_path / "tiny-q8.gguf")


def make_record(**overrides):
    """A RunRecord with plausible identity and provenance, for store and query tests."""
    from edgebench.results.schema import SCHEMA_VERSION, RunRecord

    base = dict(
        model="m", model_sha256="abc", framework="llama-cpp", precision="q4_k_m", device="cpu",
        prompt_tokens=8, new_tokens=4, threads=2, options="{}", suite="t", run_key="k1",
        session_id="s1", machine_id="mach", started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        finished_at=None, edgebench_version="0", schema_version=SCHEMA_VERSION, status="ok",
    )
    base.update(overrides)
    return RunRecord(**base)


def run_main(args, capsys):
    """Run the real entry point; return (exit code, stdout, stderr)."""
    from edgebench.cli import main

    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def fake_specs() -> dict:
    """Registry entries of the in-process fake runtimes (tests/fakes.py): ``fake`` runs,
    ``missing`` is not installed."""
    import dataclasses

    from edgebench.harness import registry

    base = registry.FRAMEWORKS["llama-cpp"]
    return {name: dataclasses.replace(base, name=name, target=f"fakes:{cls}", extra="fake")
            for name, cls in (("fake", "FakeRunner"), ("missing", "MissingRunner"))}


@pytest.fixture
def fake_framework(monkeypatch):
    """The fake runtimes registered (``fake``, ``missing``), the fake's call log cleared."""
    import fakes
    from edgebench.harness import registry

    for name, spec in fake_specs().items():
        monkeypatch.setitem(registry.FRAMEWORKS, name, spec)
    fakes.FakeRunner.calls.clear()

