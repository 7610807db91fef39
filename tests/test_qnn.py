"""The qnn runner on the real QNN HTP backend (the simulator on x86-64): a tiny static-shape LM
built here, QDQ-quantized with ONNX Runtime's QNN config (w8a16), against the float model on
ONNX Runtime's CPU provider.

Bounds, stated before the first run: w8a16 keeps 8-bit weights (relative step 1/255 of each
tensor's range) and 16-bit activations, so across three quantized matmul/elementwise stages the
logits may move by a few percent of their range. Agreement: max |HTP - float CPU| <= 5 % of
max |float CPU| (about 0.15 on this model's ~3-wide logits), top-1 equal on at least 7 of the 8
positions. Against the same QDQ model on the CPU provider (both compute the quantized graph)
the HTP must stay within 2 % of the range. Placement: with CPU fallback disabled (the default)
every node is on QNN: cpu_nodes == 0 and accel_nodes / all >= 0.95.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime_qnn", reason="onnxruntime-qnn is not installed "
                    "(pip install 'edgebench[qnn]'); the qnn runner cannot be tested")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgebench.errors import ConfigError, RunFailed  # noqa: E402
from edgebench.harness.runners import qnn  # noqa: E402

V, D, H, N = 64, 32, 32, 8
MAX_ABS_VS_FLOAT = 0.05  # of max |float logits|
MAX_ABS_VS_QDQ_CPU = 0.02  # of max |float logits|
MIN_TOP1_AGREE = 7  # of N positions
MIN_QNN_SHARE = 0.95


def _float_model(path, mod_node: bool = False):
    """input_ids [1, N] -> Gather(embedding) -> MatMul -> Add -> Tanh -> MatMul -> logits
    [1, N, V]; ``mod_node`` appends a float Mod (fmod, by 1000: the identity on these values),
    an op the HTP does not take."""
    rng = np.random.default_rng(0)
    inits = {
        "emb": rng.normal(0, 1, (V, D)),
        "W1": rng.normal(0, 1 / np.sqrt(D), (D, H)),
        "b1": rng.normal(0, 0.1, (H,)),
        "W2": rng.normal(0, 2 / np.sqrt(H), (H, V)),
    }
    last = "logits_pre" if mod_node else "logits"
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["x"], axis=0),
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Tanh", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "W2"], [last]),
    ]
    if mod_node:
        inits["thousand"] = np.array(1000.0)
        nodes.append(helper.make_node("Mod", ["logits_pre", "thousand"], ["logits"], fmod=1,
                                      name="the_mod"))
    graph = helper.make_graph(
        nodes, "tiny-lm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, N])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, N, V])],
        [numpy_helper.from_array(np.asarray(a, dtype=np.float32), k) for k, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _quantize(src, dst):
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    rng = np.random.default_rng(1)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input_ids": rng.integers(0, V, (1, N)).astype(np.int64)}
                            for _ in range(16)])

        def get_next(self):
            return next(self.it, None)

    cfg = get_qnn_qdq_config(str(src), Reader(), activation_type=QuantType.QUInt16,
                             weight_type=QuantType.QUInt8)
    quantize(str(src), str(dst), cfg)
    return dst


def _tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(V)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("qnn")
    fdir, qdir, mdir = root / "fp32", root / "w8a16", root / "mod"
    for d in (fdir, qdir, mdir):
        d.mkdir()
    _float_model(fdir / "model.onnx")
    _quantize(fdir / "model.onnx", qdir / "model.onnx")
    _tokenizer(qdir / "tokenizer.json")
    _float_model(root / "mod-float.onnx", mod_node=True)
    _quantize(root / "mod-float.onnx", mdir / "model.onnx")
    return {"fp32": fdir, "w8a16": qdir, "mod": mdir}


def _cpu(path, ids):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})[0]
    return out.reshape(len(ids), V)


@pytest.fixture
def runner():
    r = qnn.QnnRunner()
    yield r
    r.close()


IDS = [5, 17, 42, 3, 63, 0, 29, 11]


def test_logits_on_htp_agree_with_float_cpu(models, runner):
    load = runner.load(models["w8a16"], "htp-simulator", 1, {}, context_tokens=N, logits_only=True)
    got = runner.logits(IDS)
    assert got.shape == (N, V) and got.dtype == np.float32
    ref = _cpu(models["fp32"] / "model.onnx", IDS)
    scale = float(np.abs(ref).max())
    assert float(np.abs(got - ref).max()) <= MAX_ABS_VS_FLOAT * scale
    assert int((got.argmax(-1) == ref.argmax(-1)).sum()) >= MIN_TOP1_AGREE
    qdq_cpu = _cpu(models["w8a16"] / "model.onnx", IDS)
    assert float(np.abs(got - qdq_cpu).max()) <= MAX_ABS_VS_QDQ_CPU * scale
    # a shorter sequence is padded on the right; each position sees only itself here
    assert np.allclose(runner.logits(IDS[:5]), got[:5], atol=1e-6)
    simulated = platform.machine().lower() in ("x86_64", "amd64")
    if simulated:
        assert load.device == "htp-simulator" and load.measurement == "simulated"
    assert load.options["cpu_fallback"] is False and load.options["sequence_length"] == N


def test_every_node_runs_on_qnn(models, runner):
    runner.load(models["w8a16"], "htp-simulator", 1, {}, context_tokens=N)
    accel, cpu = runner.graph_placement()
    assert cpu == 0, f"{cpu} node(s) ran on the CPU provider"
    assert accel / (accel + cpu) >= MIN_QNN_SHARE and accel >= 5


def test_unsupported_node_is_named_or_counted(models, runner):
    with pytest.raises(RunFailed, match=r"cannot run \d+ node\(s\).*Mod 'the_mod'.*cpu_fallback"):
        runner.load(models["mod"], "htp-simulator", 1, {}, context_tokens=N)
    runner.load(models["mod"], "htp-simulator", 1, {"cpu_fallback": True}, context_tokens=N)
    accel, cpu = runner.graph_placement()
    assert cpu >= 1 and accel >= 5


def test_longer_than_static_n_is_refused(models, runner):
    with pytest.raises(ConfigError, match="static sequence length N = 8"):
        runner.load(models["w8a16"], "htp-simulator", 1, {}, context_tokens=N + 1)
    runner.load(models["w8a16"], "htp-simulator", 1, {}, context_tokens=N)
    with pytest.raises(RunFailed, match="N = 8"):
        runner.logits(list(range(N + 1)))


def test_generate_is_greedy_over_the_static_graph(models, runner):
    runner.load(models["w8a16"], "htp-simulator", 1, {}, context_tokens=N)
    prompt = runner.tokenize("w5 w17 w42")
    assert prompt == [5, 17, 42]
    tl = runner.generate(prompt, 4)
    assert len(tl.token_ids) == len(tl.token_ns) == 4 and tl.prompt_tokens == 3
    assert tl.t0_ns < tl.token_ns[0] <= tl.token_ns[-1]
    seq = list(prompt)
    for tok in tl.token_ids:  # each token is the argmax of the last row of logits()
        assert tok == int(runner.logits(seq)[-1].argmax())
        seq.append(tok)


def test_float_model_is_refused_with_the_prepare_hint(models, runner):
    with pytest.raises(ConfigError, match=r"needs a quantized \(QDQ\) model.*qnn:w8a16"):
        runner.load(models["fp32"], "htp-simulator", 1, {}, context_tokens=N)
    # asked for explicitly, the HTP runs the float graph in fp16 (within the w8a16 bound)
    runner.load(models["fp32"], "htp-simulator", 1, {"enable_htp_fp16_precision": 1},
                context_tokens=N)
    ref = _cpu(models["fp32"] / "model.onnx", IDS)
    assert np.abs(runner.logits(IDS) - ref).max() <= MAX_ABS_VS_FLOAT * np.abs(ref).max()


def test_probe_lists_htp_and_explains_the_others():
    info = qnn.QnnRunner().probe()
    assert info.devices == ("htp-simulator",)
    assert info.details["qnn_version"] and info.details["onnxruntime"]
    assert "libQnnCpu.so" in info.details["backend cpu"] or info.details["backend cpu"] == "loads"
    assert info.details["backend gpu"].startswith(("unavailable: ", "loads"))
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "unavailable" in info.details["backend gpu"]
        assert "simulator" in info.details["note"]


def test_frameworks_command_shows_qnn():
    from click.testing import CliRunner

    from edgebench.cli import cli

    t = time.perf_counter()
    res = CliRunner().invoke(cli, ["frameworks", "--format", "csv"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("qnn,"))
    assert ",qnn,True," in line and "htp" in line and "libQnnCpu.so" in line
    assert time.perf_counter() - t < 30


def _planned(art_dir, options=None):
    from edgebench.models.registry import Artifact
    from edgebench.suites.expand import PlannedRun

    return PlannedRun(
        model="tiny", model_sha256="sha", framework="qnn", precision="w8a16",
        device="htp-simulator", prompt_tokens=4, new_tokens=3, threads=1,
        options=options or {}, suite="t",
        repetitions=2, warmup=1, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("qnn", "w8a16", art_dir, 1, "asha"), prompt_ids=(5, 17, 42, 3))


def test_rows_record_placement_and_simulation(models):
    from edgebench.harness.device import fingerprint
    from edgebench.harness.measure import RunContext, measure

    ctx = RunContext("sess", fingerprint())
    row = measure(_planned(models["w8a16"]), ctx)
    assert row.status == "ok", row.message
    assert row.cpu_nodes == 0 and row.accel_nodes >= 5
    assert "cpu-fallback" not in (row.flags or [])
    assert row.decode_tok_s > 0 and len(row.output_ids) == 3
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert row.measurement == "simulated" and row.device_name == "htp-simulator"
    row = measure(_planned(models["mod"], {"cpu_fallback": True}), ctx)
    assert row.status == "ok" and row.cpu_nodes >= 1, row.message
    assert "cpu-fallback" in row.flags  # a node on the CPU is said in the row's flags
    row = measure(_planned(models["fp32"]), ctx)
    assert row.status == "error" and "qnn:w8a16" in row.message


def test_quality_row_on_the_htp(models, tmp_path):
    from edgebench.harness.device import fingerprint
    from edgebench.harness.measure import RunContext
    from edgebench.harness.quality_run import QualitySpec, measure_quality

    spec = QualitySpec(corpus="c", corpus_sha256="c", n_ctx=N,
                       chunks=(tuple(IDS), tuple(reversed(IDS))), reference_dir=str(tmp_path),
                       reference_label="qnn:w8a16", reference_sha256="asha",
                       write_reference=True)
    row = measure_quality(_planned(models["w8a16"]), RunContext("s", fingerprint()), spec)
    assert row.status == "ok", row.message
    assert row.tokens_scored > 0 and row.kld_mean < 1e-3 and row.cpu_nodes == 0
    assert row.quality_method.startswith("full-vocabulary logits: onnxruntime QNN")


def test_the_simulator_is_its_own_device_never_htp(models):
    """On x86-64 the device axis says htp-simulator (its own run_keys); asking for the NPU
    (`htp`) is refused with the name to use."""
    from edgebench.errors import DeviceUnavailable

    runner = qnn.QnnRunner()
    with pytest.raises(DeviceUnavailable, match="run --device htp-simulator"):
        runner.load(models["w8a16"], "htp", 1, {}, context_tokens=N)
