"""Reports on the context axes: decode speed against depth, KV-cache types, and the chapter's
table kept at depth 0 with the default KV type and the synthetic prompt. Hand-made rows."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from conftest import make_record
from edgebench import api
from edgebench.reports import build_report, context, render, select, tables
from edgebench.reports.build import SECTIONS
from edgebench.reports.claims import load_claims
from edgebench.results.store import Store, records_to_table

MB = 2**20


def speed(framework, precision, decode, *, depth=0, kv=None, cls=None, bpw=None, peak=None,
          key=None, **kw):
    """A measured speed row; its run_key names every axis, as the run identity does."""
    cls = cls or ("high" if precision in ("f16", "fp16") else "low")
    bpw = bpw or (16.0 if cls == "high" else 4.9)
    peak = peak or (1000.0 if cls == "high" else 300.0)
    run_key = key or f"{framework}-{precision}-d{depth}-{kv}-{kw.get('prompt_tokens', 8)}"
    base = dict(framework=framework, precision=precision, run_key=run_key, cpu_model="Test CPU",
                measurement="measured", energy_method="none", framework_version="1.0",
                artifact_precision_class=cls, bits_per_weight=bpw, peak_rss_mb=peak,
                peak_mem_mb=peak, decode_tok_s=decode, ttft_ms=100.0 + depth / 10,
                model_bytes=int(peak * MB), depth=depth, kv_cache=kv,
                decode_tok_s_samples=[decode - 1, decode, decode + 2],
                ttft_ms_samples=[100.0 + depth / 10, 101.0 + depth / 10])
    base.update(kw)
    return make_record(**base)


def quality(framework, precision, kld, ppl, *, kv=None, n_ctx=4096, **kw):
    return make_record(framework=framework, precision=precision, kind="quality",
                       run_key=f"q-{framework}-{precision}-{kv}-{n_ctx}", cpu_model="Test CPU",
                       measurement="measured", energy_method="none", framework_version="1.0",
                       kld_mean=kld, ppl=ppl, n_ctx=n_ctx, chunks=4,
                       quality_reference="llama-cpp:f16", kv_cache=kv, **kw)


def base_rows():
    """Depth 0, default KV, synthetic prompt: what the chapter's table compares."""
    return [speed("llama-cpp", "f16", 20.0, kv_cache_mb=144.0, kv_cache_method="llama.cpp log"),
            speed("llama-cpp", "q4_k_m", 50.0, kv_cache_mb=144.0,
                  kv_cache_method="llama.cpp log"),
            quality("llama-cpp", "f16", 0.0, 20.0, n_ctx=512),
            quality("llama-cpp", "q4_k_m", 0.01, 20.5, n_ctx=512)]


def depth_rows():
    """The same runtimes with the KV cache filled: decode slows, TTFT grows."""
    return [speed("llama-cpp", "q4_k_m", 40.0, depth=512),
            speed("llama-cpp", "q4_k_m", 30.0, depth=2048),
            speed("llama-cpp", "f16", 15.0, depth=2048),
            # another workload (prompt 64): one depth only, so no line of its own
            speed("llama-cpp", "q4_k_m", 35.0, depth=512, prompt_tokens=64),
            # simulated timings are never drawn
            speed("llama-cpp", "q8_0", 99.0, depth=512, measurement="simulated")]


def kv_rows():
    """q4_k_m with a q8_0 KV cache: half the KV size, a little slower, its own quality."""
    return [speed("llama-cpp", "q4_k_m", 45.0, kv="q8_0", kv_cache_mb=72.0,
                  kv_cache_method="llama.cpp log", peak=230.0),
            quality("llama-cpp", "q4_k_m", 0.02, 21.0),  # default KV at n_ctx 4096
            quality("llama-cpp", "q4_k_m", 0.03, 21.4, kv="q8_0")]


def frame(records) -> pd.DataFrame:
    return records_to_table(records).to_pandas()


def prepared(records) -> pd.DataFrame:
    return tables.prepare(frame(records))


# --- decode speed against depth ---------------------------------------------------------------

def test_depth_table_has_one_series_per_runtime_with_two_depths_or_more():
    t = context.depth_table(prepared(base_rows() + depth_rows()))
    q4 = t[t.precision == "q4_k_m"]
    assert q4.depth.tolist() == [0, 512, 2048]
    assert q4.decode_tok_s.tolist() == [50.0, 40.0, 30.0]
    assert q4.decode_min.tolist() == [49.0, 39.0, 29.0]
    assert q4.decode_max.tolist() == [52.0, 42.0, 32.0]
    assert q4.decode_vs_first_pct.tolist() == pytest.approx([0.0, -20.0, -40.0])
    assert q4.ttft_ms.tolist() == pytest.approx([100.0, 151.2, 304.8])  # the rows' medians
    assert q4.ttft_max.tolist() == pytest.approx([101.0, 152.2, 305.8])
    f16 = t[t.precision == "f16"]
    assert f16.depth.tolist() == [0, 2048] and f16.decode_tok_s.tolist() == [20.0, 15.0]
    # the 64-token prompt has one depth; simulated timings never show
    assert set(t.workload) == {"8+4 tokens, 2 threads"} and "q8_0" not in set(t.precision)


def test_depth_series_never_mix_machines():
    other = speed("llama-cpp", "q4_k_m", 10.0, depth=512, cpu_model="Other CPU")
    t = context.depth_table(prepared(base_rows() + [other]))
    assert t.empty  # one depth per hardware: no line
    t = context.depth_table(prepared(base_rows() + depth_rows() + [other]))
    assert set(t.device_label) == {"cpu · Test CPU"} and 10.0 not in set(t.decode_tok_s)


def test_depth_section_and_figure_appear_with_depths(tmp_path):
    rep = build_report(frame(base_rows() + depth_rows()))
    assert [k for k, _, _ in rep.sections] == ["recommendation", "chapter", "matrices",
                                               "pareto", "latency", "depth", "history",
                                               "environment"]
    assert rep.heading("depth") == "6. Decode speed vs context depth"
    figs = context.depth_figures(rep.depth)
    assert len(figs) == 1
    names = [t.name for t in figs[0].data if t.showlegend]
    assert sorted(names) == ["llama-cpp f16", "llama-cpp q4_k_m"]
    q4 = next(t for t in figs[0].data if t.name == "llama-cpp q4_k_m" and t.yaxis == "y")
    assert list(q4.x) == [0, 512, 2048] and list(q4.y) == [50.0, 40.0, 30.0]
    assert list(q4.error_y.array) == [2.0, 2.0, 2.0]
    html = render(rep, "html")
    assert re.findall(r'<section id="(\w+)">', html)[5] == "depth"
    assert 'href="#depth"' in html and "Decode speed and TTFT vs context depth" in html
    md = render(rep, "md")
    assert "## 6. Decode speed vs context depth" in md and "## 7. History" in md


def test_no_depth_no_kv_no_sections(tmp_path):
    rep = build_report(frame(base_rows() + [speed("llama-cpp", "q4_k_m", 40.0, depth=512,
                                                  prompt_tokens=64)]))
    assert rep.depth.empty and rep.kv_cache.empty
    assert [k for k, _, _ in rep.sections] == [k for k, _ in SECTIONS]
    html = render(rep, "html")
    assert '<section id="depth">' not in html and '<section id="kvcache">' not in html
    md = render(rep, "md")
    assert "Decode speed vs context depth" not in md and "## 6. History" in md
    assert "## 6. KV-cache type" not in md


# --- KV-cache types ---------------------------------------------------------------------------

def test_kv_table_sets_each_kv_type_beside_the_default():
    t, notes = context.kv_table(prepared(base_rows() + kv_rows()))
    assert t.kv_type.tolist() == ["default", "q8_0"]
    default, q8 = t.iloc[0], t.iloc[1]
    assert (default.precision, q8.precision) == ("q4_k_m", "q4_k_m")
    assert q8.kv_cache_mb == 72.0 and q8.kv_cache_method == "llama.cpp log"
    assert q8.kv_vs_default_pct == pytest.approx(-50.0)
    assert q8.memory_mb == 230.0 and q8.memory_figure == "peak_mem_mb"
    assert q8.decode_tok_s == 45.0 and q8.decode_vs_default_pct == pytest.approx(-10.0)
    # quality matched by KV type, at the long context both were scored at
    assert (default.kld_mean, default.ppl, default.n_ctx) == (0.02, 21.0, 4096)
    assert (q8.kld_mean, q8.ppl, q8.n_ctx) == (0.03, 21.4, 4096)
    assert any("left out 1 quality row" in n for n in notes)  # the n_ctx 512 one
    assert "f16" not in set(t.precision)  # no KV type imposed on it


def test_kv_quality_without_speed_rows_is_listed():
    rows = base_rows() + [quality("llama-cpp", "f16", 0.001, 20.1, kv="q4_0")]
    t, _ = context.kv_table(prepared(rows))
    row = t[t.kv_type == "q4_0"].iloc[0]
    assert row.workload == "quality only" and row.kld_mean == 0.001
    assert row.device_label == "cpu · Test CPU" and row.model == "m"


def test_kv_section_appears_only_with_kv_rows(tmp_path):
    rep = build_report(frame(base_rows() + kv_rows()))
    assert "kvcache" in [k for k, _, _ in rep.sections] and rep.depth.empty
    fig = context.kv_figure(rep.kv_cache)
    trace = fig.data[0]
    assert list(trace.x) == [144.0, 72.0] and list(trace.y) == [50.0, 45.0]
    assert list(trace.text) == ["default", "q8_0"]
    kld = fig.data[1]
    assert list(kld.y) == [0.02, 0.03]
    html = render(rep, "html")
    assert '<section id="kvcache">' in html and "KV-cache type: size vs decode" in html
    assert "6. KV-cache type" in render(rep, "md")
    rep = build_report(frame(base_rows()))
    assert rep.kv_cache.empty and "kvcache" not in [k for k, _, _ in rep.sections]


def test_both_sections_are_numbered_in_order():
    rep = build_report(frame(base_rows() + depth_rows() + kv_rows()))
    keys = [k for k, _, _ in rep.sections]
    assert keys[4:8] == ["latency", "depth", "kvcache", "history"]
    assert rep.heading("kvcache") == "7. KV-cache type"


def test_kv_quality_never_joins_the_default_speed_rows():
    pp = tables.per_precision(prepared(base_rows() + kv_rows()))
    q4 = pp[pp.precision == "q4_k_m"].set_index("kv_type")
    assert q4.loc["default", "ppl"] == 20.5  # the default quality sweep's protocol (n_ctx 512)
    assert q4.loc["q8_0", "workload"].endswith("KV q8_0")


# --- the chapter's table stays at depth 0, default KV, synthetic prompt -----------------------

def _chapter(rows):
    t = tables.chapter_table(prepared(rows), load_claims())
    return t[t.runtime == "llama-cpp"]


def test_chapter_table_excludes_depth_kv_and_prompt_file_rows():
    before = _chapter(base_rows())
    others = [speed("llama-cpp", "q4_k_m", 1.0, depth=512, peak=9000.0),
              speed("llama-cpp", "f16", 2.0, depth=512, peak=8000.0),
              speed("llama-cpp", "q4_k_m", 3.0, kv="q4_0", peak=7000.0),
              speed("llama-cpp", "q4_k_m", 4.0, key="pf", prompt_file="chat",
                    prompt_file_sha256="abc", peak=6000.0),
              quality("llama-cpp", "q4_k_m", 0.5, 99.0, kv="q4_0", n_ctx=512)]
    after = _chapter(base_rows() + others)
    cols = ["quantization", "workload", "decode_tok_s", "memory_mb", "speedup", "delta_ppl",
            "kld_mean"]
    pd.testing.assert_frame_equal(before[cols].reset_index(drop=True),
                                  after[cols].reset_index(drop=True))
    assert after.decode_tok_s.tolist() == [50.0] and after.workload.tolist() == [
        "8+4 tokens, 2 threads"]
    # build_report passes its full per-precision table: the chapter still filters
    rep = build_report(frame(base_rows() + others))
    ch = rep.chapter[rep.chapter.runtime == "llama-cpp"]
    assert ch.decode_tok_s.tolist() == [50.0] and ch.delta_ppl.tolist() == [pytest.approx(0.5)]
    assert set(rep.per_precision.workload) > {"8+4 tokens, 2 threads"}  # the rest is shown


def test_chapter_says_when_a_runtime_has_only_other_contexts():
    t = tables.chapter_table(prepared([speed("llama-cpp", "q4_k_m", 30.0, depth=512)]),
                             load_claims())
    note = t[t.runtime == "llama-cpp"].note.iloc[0]
    assert note.startswith("not measured at depth 0")


def test_chapter_caption_says_depth_0_and_default_kv(tmp_path):
    store = Store(tmp_path / "store")
    store.write_session("s1", base_rows() + depth_rows() + kv_rows())
    html = api.report(store, out=tmp_path / "r.html").read_text()
    chapter = html.split('<section id="chapter">')[1].split("</section>")[0]
    assert "at depth 0 (an empty KV cache), with the runtime's" in chapter
    assert "default KV type" in chapter and 'href="#depth"' in chapter
    md = api.report(store, fmt="md")
    assert "at depth 0 (an empty KV cache), with the runtime's default KV type" in md


def test_default_context_rows():
    df = prepared(base_rows() + depth_rows() + kv_rows()
                  + [speed("llama-cpp", "q4_k_m", 4.0, key="pf", prompt_file="chat")])
    keep = df[select.is_default_context(df)]
    assert set(keep.depth.fillna(0)) == {0} and keep.kv_cache.isna().all()
    assert keep.prompt_file.isna().all() and len(keep) == 4 + 1  # + the n_ctx 4096 default
    assert "prompt file chat, 8+4 tokens, 2 threads" in set(df.workload)
