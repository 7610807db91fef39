"""Static-shape QDQ ONNX models for the ONNX Runtime QNN execution provider (HTP backend).

The HTP (Hexagon NPU) backend takes static-shape graphs of standard ONNX ops, quantized as
QuantizeLinear/DequantizeLinear pairs; the GenAI builder's graphs (contrib ops, dynamic shapes,
a KV-cache loop) do not run there. This recipe writes a scoring model: ``input_ids [1, N]``
(int32) -> ``logits [1, N, vocab]`` (float32), no KV cache, N fixed (the quality protocol's
n_ctx, 512 unless ``EDGEBENCH_QNN_N_CTX`` says otherwise; part of the artifact's key).

- ``fp32``: ``torch.onnx.export`` (the dynamo exporter, opset 18) of the checkpoint loaded
  with eager attention, so attention lowers to MatMul/Softmax; two edits after export: the
  causal/sliding-window masks' ``finfo.min`` entries become ``MASK_VALUE`` (a -3.4e38 in an
  activation would make its quantization scale useless), and RMS norms are written so that the
  QNN EP does not fuse them into QNN's RmsNorm (wrong on the HTP for per-head q/k norms: see
  ``_unfuse_rms_norms``), with ``Div(1, x)`` for ``Reciprocal(x)`` (the HTP's quantized
  Reciprocal is wrong). The tied output head stays a Transpose of the embedding table.
- ``w8a16`` / ``w8a8``: ONNX Runtime's own QNN tools (``qnn_preprocess_model``,
  ``get_qnn_qdq_config``, ``quantize``) on the fp32 artifact: uint8 weights (per output channel
  for MatMul, per tensor for the embedding table), uint16 or uint8 activations, MinMax ranges
  from ``CALIBRATION_SAMPLES`` chunks of N tokens of edgebench's default corpus (taken from its
  end: the quality protocol scores its first chunks).
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgebench.errors import ConfigError, RunFailed, RunnerUnavailable
from edgebench.harness.prepare.recipe import (
    BuildResult,
    SourceModel,
    Target,
    checkpoint_of,
    need_dependency,
    needs_checkpoint,
)

FORMAT = "qnn"
EXTRA = "qnn"
PRECISIONS = ("fp32", "w8a16", "w8a8")
DEFAULT_N_CTX = 512  # the quality protocol's default (edgebench.quality_sweep.DEFAULT_N_CTX)
CALIBRATION_SAMPLES = 4
MASK_VALUE = -100.0  # softmax weight of a masked position: e^-100 relative, i.e. nothing
OPSET = 18
MODEL = "model.onnx"
DATA = "model.onnx.data"
FACTS = "qnn.json"  # N, calibration, graph edits: read by tests and runners
_TOKENIZER_FILES = ("config.json", "generation_config.json", "tokenizer.json",
                    "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json")
_ACTIVATIONS = {"w8a16": "QUInt16", "w8a8": "QUInt8"}


def n_ctx() -> int:
    """The fixed sequence length N of the exported graph."""
    text = os.environ.get("EDGEBENCH_QNN_N_CTX", str(DEFAULT_N_CTX))
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 2:
        raise ConfigError(f"EDGEBENCH_QNN_N_CTX must be an integer >= 2, got {text!r}")
    return n


def tools() -> dict[str, str]:
    try:
        found = {p: version(p) for p in ("onnxruntime", "onnx", "onnxscript", "torch",
                                         "transformers")}
        found["onnxruntime-qnn"] = version("onnxruntime-qnn")
    except PackageNotFoundError as e:
        raise RunnerUnavailable(f"{e.name} is needed to write QNN (QDQ ONNX) models",
                                extra=EXTRA) from e
    return {**found, "recipe": "qnn-v5", "n_ctx": str(n_ctx()),
            "calibration_samples": str(CALIBRATION_SAMPLES)}


def accepts(source: SourceModel) -> str | None:
    return None if source.format in ("hf", "gguf") else f"cannot build QNN from {source.format}"


def dependencies(source: SourceModel, precision: str) -> list:
    deps = needs_checkpoint(source)
    return deps if precision == "fp32" else [*deps, Target(FORMAT, "fp32")]


def build(source: SourceModel, precision: str, out: Path, dependency: need_dependency
          ) -> BuildResult:
    hf, params = checkpoint_of(source, dependency)
    dst = out / "qnn"
    dst.mkdir()
    n = n_ctx()
    for name in _TOKENIZER_FILES:  # a runner tokenizes with the artifact alone
        if (hf / name).is_file():
            shutil.copy2(hf / name, dst / name)
    if precision == "fp32":
        facts = export_static(hf, dst / MODEL, n)
    else:
        fp32 = dependency(FORMAT, "fp32")
        facts = json.loads((fp32 / FACTS).read_text())
        samples = calibration_chunks(hf, n, CALIBRATION_SAMPLES)
        facts.update(quantize_qdq(fp32 / MODEL, dst / MODEL, precision, samples))
    weights, by_type = initializer_bytes(dst / MODEL)
    facts.update(precision=precision, weight_bytes_by_type=by_type,
                 onnxruntime=version("onnxruntime"))
    (dst / FACTS).write_text(json.dumps(facts, indent=2))
    notes = [f"static shape: input_ids [1, {n}] int32 -> logits [1, {n}, vocab] float32, "
             "no KV cache (scoring only)",
             f"masks' -inf replaced by {MASK_VALUE}; RMS norms written as x * (rsqrt * gamma) "
             "(QNN's fused RmsNorm is wrong on the HTP for per-head q/k norms), Reciprocal as "
             "Div(1, x) (the HTP's quantized Reciprocal is wrong)",
             "weight bytes: every initializer stored ("
             + ", ".join(f"{k} {v:,}" for k, v in by_type.items()) + ")"]
    if precision != "fp32":
        notes.append(f"QDQ by onnxruntime {version('onnxruntime')} QNN tools: uint8 weights "
                     "(per output channel for MatMul, per tensor for the embedding), "
                     f"{_ACTIVATIONS[precision][1:].lower()} activations, MinMax over "
                     f"{facts['calibration_samples']} corpus chunks of {n} tokens")
    return BuildResult("qnn", params, weights, notes)


# --- export -------------------------------------------------------------------------------


def export_static(hf: Path, path: Path, n: int) -> dict:
    """Export ``hf`` as ``input_ids [1, n] int32 -> logits [1, n, vocab]`` to ``path``."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32,
                                                 attn_implementation="eager").eval()

    class Scorer(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, input_ids):
            return self.lm(input_ids=input_ids.long(), use_cache=False).logits

    ids = torch.full((1, n), 2, dtype=torch.int32)
    tmp = path.with_name("raw.onnx")
    try:
        with torch.no_grad():
            torch.onnx.export(Scorer(model).eval(), (ids,), tmp, input_names=["input_ids"],
                              output_names=["logits"], opset_version=OPSET, dynamo=True,
                              external_data=True, verbose=False)
    except Exception as e:  # the exporter raises many kinds; name the step and the cause
        raise RunFailed(f"torch.onnx.export of {hf.name} failed: {type(e).__name__}: "
                        f"{str(e)[:500]}") from e
    del model
    edits = _edit_graph(tmp, path)
    for p in (tmp, tmp.with_name(tmp.name + ".data")):
        p.unlink(missing_ok=True)
    return {"n_ctx": n, "opset": OPSET, "exporter": "torch.onnx.export(dynamo=True)",
            "mask_value": MASK_VALUE, **edits}


def _edit_graph(src: Path, dst: Path) -> dict:
    """Finite masks, RMS norms QNN computes right; standard ops only (checked)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(src)
    graph = model.graph
    masks = 0
    for init in graph.initializer:  # mask constants, or the fill value of a Where building one
        if init.data_type == onnx.TensorProto.FLOAT:
            a = numpy_helper.to_array(init)
            if a.size and a.min() < -1e30:
                init.CopyFrom(numpy_helper.from_array(
                    np.where(a < -1e30, np.float32(MASK_VALUE), a).astype(np.float32),
                    init.name))
                masks += 1
    unfused = _unfuse_rms_norms(graph)
    # the HTP's quantized Reciprocal is wrong (uint16: 6.0 off on values up to 7.6 in the
    # tiny model's first norm, where ORT's CPU run of the same QDQ graph is 0.02 off);
    # Div(1, x) is right
    graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), "qnn_one"))
    divs = 0
    for node in graph.node:
        if node.op_type == "Reciprocal":
            node.op_type = "Div"
            node.input[:] = ["qnn_one", node.input[0]]
            divs += 1
    other = sorted({f"{nd.domain}:{nd.op_type}" for nd in graph.node
                    if nd.domain not in ("", "ai.onnx")})
    if other:
        raise RunFailed(f"the exported graph has non-standard ops: {', '.join(other)}")
    onnx.checker.check_model(model)
    onnx.save(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
              location=DATA, size_threshold=1024)
    return {"masks_made_finite": masks,
            "rms_norms_unfused": unfused, "reciprocals_as_div": divs,
            "ops": sorted({nd.op_type for nd in graph.node})}


def _unfuse_rms_norms(graph) -> int:
    """``Mul(Mul(x, Reciprocal(..)), gamma)`` -> ``Mul(x, Mul(Reciprocal(..), gamma))``.

    The QNN execution provider turns the first form (an RMS norm: Pow, ReduceMean, Add, Sqrt,
    Reciprocal, Mul, Mul by a constant) into QNN's RmsNorm, which the HTP backend computes
    wrongly for Gemma's per-head q/k norms on ``[1, heads, N, head_dim]``: heads after the
    first come back as zeros (onnxruntime-qnn 2.7.0, QNN 2.51; seen with the float graph too,
    with every ORT graph optimization off, and with the scale given as ``[head_dim]``,
    ``[1, 1, 1, head_dim]`` or tiled to ``[1, heads, 1, head_dim]``). The second form computes
    the same and is not fused.
    """
    inits = {i.name for i in graph.initializer}
    producer = {o: nd for nd in graph.node for o in nd.output}
    uses: dict[str, int] = {}
    for nd in graph.node:
        for x in nd.input:
            uses[x] = uses.get(x, 0) + 1
    count = 0
    for node in graph.node:
        if node.op_type != "Mul":
            continue
        const = [x for x in node.input if x in inits]
        var = [x for x in node.input if x not in inits]
        if len(const) != 1 or len(var) != 1 or var[0] not in producer:
            continue
        inner = producer[var[0]]
        recip = [x for x in inner.input if x in producer and
                 producer[x].op_type == "Reciprocal"] if inner.op_type == "Mul" else []
        if len(recip) != 1 or len(inner.input) != 2 or uses[inner.output[0]] != 1:
            continue
        x = next(y for y in inner.input if y != recip[0])
        inner.input[:] = [recip[0], const[0]]
        node.input[:] = [x, inner.output[0]]
        count += 1
    return count


# --- quantization -------------------------------------------------------------------------


def calibration_chunks(hf: Path, n: int, count: int) -> list[list[int]]:
    """``count`` chunks of ``n`` tokens from the end of edgebench's default corpus."""
    from edgebench.harness.corpus import load_corpus
    from edgebench.harness.prompt import tokenize_text, vocab_bos
    from edgebench.harness.quality import chunk_tokens

    chunks = chunk_tokens(tokenize_text(hf, load_corpus().text), n, vocab_bos(hf))
    if not chunks:
        raise ConfigError(f"the corpus has fewer than {n} tokens: nothing to calibrate on")
    return chunks[-count:]


def quantize_qdq(fp32: Path, dst: Path, precision: str, samples: list[list[int]],
                 per_channel: bool = True) -> dict:
    """QDQ ``precision`` of ``fp32`` into ``dst`` with ONNX Runtime's QNN tools.

    ``per_channel``: MatMul weight matrices get one scale per output channel (measured on Gemma
    3 270M, N = 64, 2 corpus chunks on the HTP simulator: KLD to the float graph 0.12 against
    0.18 per tensor, top-1 0.81 against 0.76). The embedding table stays per tensor: the HTP
    refuses a per-row DequantizeLinear before Gather (and the tied head's Transpose).
    """
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import (
        get_qnn_qdq_config,
        qnn_preprocess_model,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = [{"input_ids": np.array([s], dtype=np.int32)} for s in samples]
            self.left = iter(self.feeds)

        def get_next(self):
            return next(self.left, None)

        # stride=1: ranges are reduced after every sample, so the calibrator never holds more
        # than one sample's activations (a 512 x 262k logits tensor alone is 512 MB)
        def __len__(self):
            return len(self.feeds)

        def set_range(self, start_index: int, end_index: int):
            self.left = iter(self.feeds[start_index:end_index])

    work = dst.parent / "preprocessed"
    work.mkdir()
    try:
        pre = work / MODEL
        changed = qnn_preprocess_model(fp32, pre, fuse_layernorm=True, save_as_external_data=True,
                                       all_tensors_to_one_file=True, external_data_location=DATA)
        src = pre if changed else fp32
        # the tied embedding table is Gather's data input, which the QNN config quantizes as
        # an activation (uint16 for w8a16: 2 bytes for each of Gemma 3 270M's 168 M
        # embedding weights); it is a weight: uint8 like the others
        tables = _gather_tables(src)
        overrides = {t: [{"quant_type": QuantType.QUInt8}] for t in tables}
        if per_channel:  # one scale per output channel (the last axis of MatMul's B)
            for w in _matmul_weights(src):
                overrides.setdefault(w, [{"quant_type": QuantType.QUInt8}])[0]["axis"] = -1
        config = get_qnn_qdq_config(
            src, Reader(), activation_type=getattr(QuantType, _ACTIVATIONS[precision]),
            weight_type=QuantType.QUInt8, stride=1, init_overrides=overrides)
        config.use_external_data_format = True
        quantize(src, dst, config)
    except Exception as e:  # ORT's quantizer raises plain exceptions; name the step
        raise RunFailed(f"QNN QDQ quantization ({precision}) failed: {type(e).__name__}: "
                        f"{str(e)[:500]}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"calibration_samples": len(samples), "calibration": "MinMax",
            "calibration_corpus": "default corpus, last chunks", "preprocessed": bool(changed),
            "activation_type": _ACTIVATIONS[precision][1:].lower(), "weight_type": "uint8",
            "weight_scales": "per output channel (MatMul), per tensor (embedding table)",
            "embedding_tables_as_weights": tables}


def _matmul_weights(path: Path) -> list[str]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    inits = {i.name: len(i.dims) for i in model.graph.initializer}
    return sorted({n.input[1] for n in model.graph.node
                   if n.op_type == "MatMul" and inits.get(n.input[1]) == 2})


def _gather_tables(path: Path) -> list[str]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return sorted({n.input[0] for n in model.graph.node
                   if n.op_type == "Gather" and n.input[0] in inits})


def initializer_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Bytes of every initializer stored, and per element type."""
    import numpy as np
    import onnx

    model = onnx.load(path, load_external_data=False)
    by_type: dict[str, int] = {}
    for init in model.graph.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        size = int(np.prod(init.dims, dtype=np.int64)) * dtype.itemsize
        by_type[dtype.name] = by_type.get(dtype.name, 0) + size
    return sum(by_type.values()), dict(sorted(by_type.items(), key=lambda kv: -kv[1]))
