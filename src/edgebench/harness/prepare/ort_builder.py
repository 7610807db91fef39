"""Run the ONNX Runtime GenAI model builder on a Gemma 3 checkpoint written by transformers 5.

    python -m edgebench.harness.prepare.ort_builder CHECKPOINT OUT PRECISION EP [k=v ...]

Two fixes, both found by comparing logits with transformers (max difference 0.001 at fp32):
- transformers 5 nests Gemma 3's rope settings per attention type (``full_attention``:
  theta 1e6, ``sliding_attention``: theta 1e4); builder 0.18 reads a flat ``rope_type`` and
  copies every key of ``rope_parameters`` onto the config. The loaded config is flattened:
  ``rope_theta`` = the global theta, ``rope_local_base_freq`` = the sliding layers' theta.
- On CPU the builder emits GroupQueryAttention only for fp32 I/O; fp16 gets
  MultiHeadAttention + repeat_kv, which fails at the first decode step in ORT 1.32. fp16 on CPU
  is built with GroupQueryAttention.
"""

from __future__ import annotations

import sys


def _flatten_rope(config) -> None:
    rp = getattr(config, "rope_parameters", None)
    if not (isinstance(rp, dict) and "full_attention" in rp):
        return
    full, local = dict(rp["full_attention"]), dict(rp.get("sliding_attention", {}))
    if full.get("rope_type", "default") != "default" or \
            local.get("rope_type", "default") != "default":
        raise SystemExit(f"rope scaling {full.get('rope_type')}/{local.get('rope_type')} is not "
                         "handled for Gemma 3 by this recipe")
    glob, loc = float(full.get("rope_theta", 1e6)), float(local.get("rope_theta", 1e4))
    config.rope_parameters = {"rope_type": "default", "rope_theta": glob}
    config.rope_theta = glob
    config.rope_local_base_freq = loc


def main(argv: list[str]) -> None:
    ckpt, out, precision, ep, *extra = argv
    from onnxruntime_genai.models import builder as B

    original = B.get_hf_details

    def get_hf_details(*args):
        details = original(*args)
        _flatten_rope(details["hf_config"])
        return details

    B.get_hf_details = get_hf_details
    if ep == "cpu" and precision == "fp16":
        import onnx_ir as ir

        base = sys.modules.get("builders.base") or sys.modules.get(
            "onnxruntime_genai.models.builders.base")
        if base is None:
            raise SystemExit("builder layout changed: builders.base not found")
        gqa = base.Model.is_gqa_supported
        base.Model.is_gqa_supported = lambda self: (
            True if self.ep == "cpu" and self.io_dtype == ir.DataType.FLOAT16 else gqa(self))
    cache = out + ".cache"
    options = B.parse_extra_options(None, ckpt, out, precision, ep, cache, extra or None)
    B.create_model(None, ckpt, out, precision, ep, cache, **options)


if __name__ == "__main__":
    main(sys.argv[1:])
