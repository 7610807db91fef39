"""QNN quality rows through the one perplexity/KLD protocol, on the tiny Gemma 3: prepare
(qnn:w8a16, N = n_ctx) -> the HTP simulator -> a ``kind = "quality"`` row against the ORT GenAI
fp32 reference, like every other runtime's.

Bounds, stated before the first run: the tiny model's logits are small (|logit| < ~1 over 512
tokens: near-uniform distributions), and w8a16 moves them by at most ~0.3 of the largest float
logit (tests/test_prepare_qnn.py's bound), so the KL divergence to the float reference is of
the order of half the variance of that error: mean KLD <= 0.01 nats, and the perplexity within
2 % of the reference's. The whole graph runs on the HTP (no CPU fallback).
"""

import importlib.util

import pytest

from edgebench.results import provenance
from edgebench.results.store import Store

N_CTX = 64
CHUNKS = 2
MAX_KLD = 0.01
MAX_PPL_REL = 0.02
NEEDED = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime_qnn",
          "onnxruntime_genai", "onnx_ir")
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in NEEDED),
    reason="needs the qnn, ort-genai and convert extras "
           "(pip install -e '.[qnn,ort-genai,convert]')")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from edgebench.models.tiny import make_tiny_gemma3
    from edgebench.quality_sweep import run_quality
    from edgebench.suites.spec import Suite

    root = tmp_path_factory.mktemp("qnnq")
    tiny = make_tiny_gemma3(root / "tiny-gemma3")
    store = Store(root / "store")
    suite = Suite(name="qnn-tiny", models=(str(tiny),), frameworks=("qnn",),
                  precisions=("w8a16",), devices=("htp-simulator",), timeout_s=300)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEBENCH_QNN_N_CTX", str(N_CTX))
        out = run_quality(suite, store, root / "cache", n_ctx=N_CTX, chunks=CHUNKS,
                          reference="ort-genai:fp32")
    return out.rows


def test_qnn_quality_row_is_the_protocols(rows):
    ref, row = rows  # the reference's own row first, then the QNN cell
    assert (ref.framework, ref.precision, ref.status) == ("ort-genai", "fp32", "ok")
    assert row.status == "ok", row.message
    assert (row.kind, row.framework, row.precision, row.device) == (
        "quality", "qnn", "w8a16", "htp-simulator")
    assert (row.n_ctx, row.chunks, row.quality_reference) == (N_CTX, CHUNKS, "ort-genai:fp32")
    assert row.corpus_sha256 == ref.corpus_sha256
    assert row.tokens_scored == CHUNKS * (N_CTX // 2 - 1)
    assert len(row.chunk_kld) == CHUNKS


def test_qnn_quality_row_says_numerics_real_timings_simulated(rows):
    row = rows[1]
    assert row.device_name == "htp-simulator"
    assert row.measurement == provenance.SIMULATOR_QUALITY
    assert provenance.numerics_measured(row.measurement)
    assert not provenance.timings_measured(row.measurement)
    assert "QNNExecutionProvider" in row.quality_method


def test_qnn_quality_ran_wholly_on_the_htp(rows):
    row = rows[1]
    assert row.cpu_nodes == 0 and row.accel_nodes > 0


def test_qnn_w8a16_stays_close_to_the_float_reference(rows):
    row = rows[1]
    assert 0 <= row.kld_mean <= MAX_KLD
    assert abs(row.ppl / row.ppl_reference - 1) <= MAX_PPL_REL
    assert row.kld_mean > row.kld_floor_mean  # quantization shows above the storage floor
