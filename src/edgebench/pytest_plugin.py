"""pytest plugin: the ``edgebench`` fixture, to run a planned run in a project's own tests.

Installed with edgebench (the ``pytest11`` entry point), so it loads in every pytest session
where edgebench is installed: this module imports nothing but pytest at import time, and
everything edgebench needs only when a test asks for the fixture.

    def test_decode_is_fast_enough(edgebench):
        row = edgebench.run(model="gemma-3-270m", framework="llama-cpp",
                            precision="q4_k_m", new_tokens=8, repetitions=2)
        assert row.decode_tok_s > 10

``run`` measures one cell (each run in its own process, as ``edgebench run`` does) and returns
its row (a ``RunRecord``: every column of the store, ``row.decode_tok_s_samples`` included);
a row that is not ``ok`` fails the test with its status and message unless ``check=False``.
Rows go to a temporary store per test unless ``--edgebench-store DIR`` keeps them; models and
artifacts are cached in ``--edgebench-cache DIR``, else ``$EDGEBENCH_CACHE``, else the user
cache dir (shared by every test, so a model is assembled once).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from edgebench.results.schema import RunRecord
    from edgebench.results.store import Store

#: Axes ``run`` takes one value (or a list) of, keyed as the suite's fields.
_AXES = {"model": "models", "framework": "frameworks", "precision": "precisions",
         "device": "devices", "prompt_tokens": "prompt_tokens", "new_tokens": "new_tokens",
         "threads": "threads", "depth": "depths", "kv_cache": "kv_cache",
         "prompt_file": "prompt_files"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench", "edgebench fixture")
    group.addoption("--edgebench-store", metavar="DIR", default=None,
                    help="Store the edgebench fixture's rows here (default: a temporary store "
                         "per test).")
    group.addoption("--edgebench-cache", metavar="DIR", default=None,
                    help="Model and artifact cache of the edgebench fixture (default: "
                         "$EDGEBENCH_CACHE, else the user cache dir).")


class EdgebenchFixture:
    """What the ``edgebench`` fixture gives a test: ``run`` and ``run_all``, the ``store``
    they write to, the ``cache`` they use and the ``rows`` measured so far."""

    def __init__(self, store: Path, cache: Path) -> None:
        self.store_path = store
        self.cache = cache
        self.rows: list[RunRecord] = []

    @property
    def store(self) -> Store:
        from edgebench.results.store import Store

        return Store(self.store_path)

    def suite(self, suite: str | None = None, **kw: Any):
        """The suite ``run`` would measure: a built-in name or YAML file (default: ``smoke``),
        with the given axes (one value or a list each) and ``repetitions`` / ``warmup``."""
        from edgebench import api

        axes: dict[str, Any] = {}
        for key, field in _AXES.items():
            value = kw.pop(key, None)
            if value is not None:
                axes[field] = list(value) if isinstance(value, (list, tuple)) else [value]
        extra = {k: kw.pop(k) for k in ("repetitions", "warmup") if k in kw}
        if kw:
            raise TypeError(f"edgebench.run() got unexpected arguments: {', '.join(kw)} "
                            f"(axes: {', '.join(_AXES)}; repetitions, warmup)")
        return api.make_suite(suite, **axes, **extra)

    def run_all(self, suite: str | None = None, *, check: bool = True,
                **kw: Any) -> list[RunRecord]:
        """Measure every cell of the suite; its rows, in plan order."""
        from edgebench import api

        spec = self.suite(suite, **kw)
        out = api.run_suite(spec, self.store, self.cache)
        self.rows.extend(out.rows)
        if out.interrupted:
            raise KeyboardInterrupt
        if check:
            bad = [r for r in out.rows if r.status != "ok"]
            if bad:
                pytest.fail("; ".join(f"{r.framework} {r.precision} {r.device}: {r.status}"
                                      f"{f' ({r.message})' if r.message else ''}"
                                      for r in bad), pytrace=False)
        return list(out.rows)

    def run(self, suite: str | None = None, *, check: bool = True, **kw: Any) -> RunRecord:
        """Measure one cell and return its row (``row.decode_tok_s``, ``row.ttft_ms``,
        ``row.peak_mem_mb`` ...). Axes: model, framework, precision, device, prompt_tokens,
        new_tokens, threads, depth, kv_cache, prompt_file; plus repetitions and warmup. A row
        that is not ``ok`` fails the test unless ``check=False``; a suite of several cells is
        ``run_all``'s."""
        spec = self.suite(suite, **kw)
        from edgebench import api

        planned = api.plan(spec, self.cache)
        if len(planned) != 1:
            raise ValueError(f"edgebench.run() measures one cell; this one plans "
                             f"{len(planned)} (use edgebench.run_all)")
        out = api.run_suite(spec, self.store, self.cache, runs=planned)
        self.rows.extend(out.rows)
        if out.interrupted:
            raise KeyboardInterrupt
        (row,) = out.rows
        if check and row.status != "ok":
            pytest.fail(f"{row.framework} {row.precision} {row.device}: {row.status}"
                        f"{f' ({row.message})' if row.message else ''}", pytrace=False)
        return row


@pytest.fixture
def edgebench(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> EdgebenchFixture:
    """Run edgebench's planned runs from a test: ``edgebench.run(model=..., framework=...,
    precision=..., new_tokens=8, repetitions=2)`` returns the row (see the module's doc)."""
    from pathlib import Path

    from edgebench.locations import cache_dir

    opt = request.config.getoption
    store = opt("edgebench_store") or tmp_path_factory.mktemp("edgebench-store")
    cache = cache_dir(opt("edgebench_cache") or os.environ.get("EDGEBENCH_CACHE") or None)
    return EdgebenchFixture(Path(store), Path(cache))
