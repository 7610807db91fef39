"""Gemma 3 270M end to end on the Hexagon NPU's numerics: prepare ``qnn:w8a16`` (N = 512) ->
the HTP simulator -> a quality row under the default protocol (n_ctx 512, 2 chunks, against
llama.cpp's F16 reference), like the builtin ``snapdragon`` suite.

Marked ``slow`` (deselected by default; ``python -m pytest -m slow`` runs it): on a 2-core VM
the simulator needs about 5 minutes per 512-token chunk (12 min for the two, plus a ~4 min
prepare into an empty cache whose quantization peaks at 11 GB of RSS). The CI test of the same
path is tests/test_qnn_quality.py, on the tiny model.

Bounds: the whole graph on the HTP (no CPU node); the row says its numerics are measured and its
timings simulated. Quality bounds were set from the first measurement (KLD 0.11, top-1 0.82,
perplexity +9 % over the reference), with room for calibration changes, and are a floor against
a broken quantization, not a claim: KLD < 0.25 nats, top-1 agreement > 0.7, perplexity within
20 % of the reference.
"""

import importlib.util

import pytest

from edgebench.locations import cache_dir
from edgebench.results import provenance
from edgebench.results.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in (
        "onnxruntime_qnn", "torch", "transformers", "onnxscript", "llama_cpp")),
        reason="needs the qnn, convert and llama-cpp extras"),
]


def test_gemma_w8a16_on_the_htp_simulator(tmp_path):
    from edgebench.quality_sweep import run_quality
    from edgebench.suites.spec import load_suite

    suite = load_suite("snapdragon")
    out = run_quality(suite, Store(tmp_path / "store"), cache_dir(), chunks=2)
    (row,) = [r for r in out.rows if r.framework == "qnn"]
    assert row.status == "ok", row.message
    assert (row.device, row.device_name, row.n_ctx, row.chunks) == (
        "htp-simulator", "htp-simulator", 512, 2)
    assert row.measurement == provenance.SIMULATOR_QUALITY
    assert row.cpu_nodes == 0 and row.accel_nodes > 1000
    assert row.quality_reference == "llama-cpp:f16"
    assert 7.9 < row.bits_per_weight < 8.5
    assert row.kld_mean < 0.25 and row.top1_agree > 0.7
    assert abs(row.ppl / row.ppl_reference - 1) < 0.2
