"""End to end on real rows: the built-in cpu-laptop suite (its llama.cpp cells, the runtime that
is fast to prepare in CI) measured for speed and quality, then `recommend` and `report`."""

import dataclasses
import importlib.util

import pytest

from edgebench import api
from edgebench.decision import Constraints
from edgebench.locations import cache_dir
from edgebench.quality_sweep import run_quality
from edgebench.results.store import Store

pytestmark = pytest.mark.skipif(not importlib.util.find_spec("llama_cpp"),
                                reason="llama-cpp-python is not installed")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = Store(tmp_path_factory.mktemp("e2e") / "store")
    suite = api.make_suite("cpu-laptop", prompt_tokens=32, new_tokens=16, repetitions=3)
    suite = dataclasses.replace(suite, include=())  # the llama.cpp cells: f16, q8_0, q4_k_m
    cache = cache_dir()
    speed = api.run_suite(suite, st, cache)
    assert [r.status for r in speed.rows] == ["ok"] * 3, [r.message for r in speed.rows]
    quality = run_quality(suite, st, cache, n_ctx=256, chunks=2)
    assert {r.status for r in quality.rows} == {"ok"}
    return st


def test_recommend_ranks_the_measured_cells(store):
    rec = api.recommend(store, "this")
    assert not rec.guidance and rec.winner is not None
    ranked = [rec.winner, *rec.ties, *rec.runners_up]
    assert {r.candidate.precision for r in ranked} | {
        r.candidate.precision for r in rec.rejected} == {"f16", "q8_0", "q4_k_m"}


def test_recommend_quality_limit_rejects_with_the_measured_reason(store):
    rec = api.recommend(store, "this", constraints=Constraints(max_kld=1e-9))
    survivors = [r.candidate.precision for r in [rec.winner, *rec.ties, *rec.runners_up] if r]
    assert survivors in ([], ["f16"])
    reasons = {r.candidate.precision: r.reasons for r in rec.rejected}
    assert any("kld_mean" in why and "> 1e-09" in why for why in reasons["q4_k_m"])


def test_report_from_the_same_rows(store, tmp_path):
    out = api.report(store, out=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert out == tmp_path / "r.html"
    assert "llama-cpp" in html and "Q4_K_M" in html
