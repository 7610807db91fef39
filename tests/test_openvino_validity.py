"""OpenVINO GenAI on the real Gemma 3 270M int4 IR (docs/validity.md "OpenVINO"): the prompt is
prefilled in one step, each row carries GenAI's own timing beside edgebench's, quality loads
compile the IR once without a pipeline, and the device and threads come from the runtime.
The artifact is prepared once into the user cache (needs the convert extra), then found there."""

import importlib.util
import json

import pytest

from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, measure
from edgebench.locations import cache_dir

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("openvino_genai", "torch")),
    reason="openvino-genai is not installed (pip install -e '.[openvino,convert]')")

PROMPT = [2] + [1000 + 7 * i for i in range(511)]  # 512 tokens


@pytest.fixture(scope="module")
def int4():
    from edgebench import api
    from edgebench.harness import prepare as prep

    cache = cache_dir()
    (man,) = api.prepare("gemma-3-270m", ["openvino:int4"], cache)
    return prep.as_artifact(man, cache)


def _runner():
    from edgebench.harness.runners.openvino_genai import OpenVINOGenAIRunner

    return OpenVINOGenAIRunner()


def test_512_token_prompt_is_prefilled_in_one_step(int4):
    """A bare SchedulerConfig() has max_num_batched_tokens = 256 and dynamic_split_fuse on: the
    prompt then goes through the model in two steps, the first of which makes no token. GenAI's
    raw metrics show it: ``inference_durations[0]`` sums the model time of every step,
    ``token_infer_durations`` the wall time of the steps that made a token."""
    import numpy as np
    import openvino as ov
    import openvino_genai as ovg

    runner = _runner()
    load = runner.load(int4.path, "cpu", 2, {}, context_tokens=len(PROMPT) + 2)
    try:
        cfg = ovg.GenerationConfig()
        cfg.max_new_tokens, cfg.do_sample, cfg.ignore_eos = 2, False, True
        inputs = ov.Tensor(np.array([PROMPT], dtype=np.int64))
        raws = [runner._pipe.generate(inputs, cfg).perf_metrics.raw_metrics for _ in range(2)]
    finally:
        runner.close()
    for raw in raws:
        total = raw.inference_durations[0]
        outside = total - sum(raw.token_infer_durations)  # model time in steps with no token
        assert outside < 0.1 * total, (
            f"{outside / total:.0%} of the model time went to steps that made no token: "
            "the prompt was prefilled in chunks")
    # the scheduler edgebench imposes is in the row's runtime_settings
    assert load.options["max_num_batched_tokens"] >= len(PROMPT)
    assert load.options["enable_prefix_caching"] is False
    assert load.options["pipeline"] == "continuous batching (paged attention)"
    assert {"dynamic_split_fuse", "cache_size", "max_num_seqs"} <= set(load.options)


def test_row_carries_the_pipelines_own_timing(int4):
    from edgebench.suites.expand import PlannedRun

    run = PlannedRun(
        model="gemma-3-270m", model_sha256=None, framework="openvino", precision="int4",
        device="cpu", prompt_tokens=len(PROMPT), new_tokens=16, threads=2, options={},
        suite="t", repetitions=3, warmup=1, cooldown_s=0.0, timeout_s=600.0, artifact=int4,
        prompt_ids=tuple(PROMPT))
    row = measure(run, RunContext("sess", fingerprint()))
    assert row.status == "ok", row.message
    assert row.runtime_ttft_ms and row.runtime_decode_tok_s
    assert row.ttft_disagree_pct is not None and row.decode_disagree_pct is not None
    # edgebench's t0 is taken before the Python call, GenAI's inside it: ours is not shorter
    assert row.ttft_ms >= row.runtime_ttft_ms
    print(f"\nOpenVINO int4 P=512 N=16: ttft {row.ttft_ms:.1f} ms (GenAI "
          f"{row.runtime_ttft_ms:.1f}, {row.ttft_disagree_pct:+.2f} %), decode "
          f"{row.decode_tok_s:.2f} tok/s (GenAI {row.runtime_decode_tok_s:.2f}, "
          f"{row.decode_disagree_pct:+.2f} %), flags {row.flags}")
    settings = json.loads(row.runtime_settings)
    assert settings["enable_prefix_caching"] is False


def test_reported_decode_uses_edgebench_definition():
    """(N - 1) / (tN - t1) over GenAI's per-step token times, in ms."""
    from types import SimpleNamespace

    from edgebench.harness.runners.openvino_genai import reported_timing

    def mean(v):
        return lambda: SimpleNamespace(mean=v)

    raw = SimpleNamespace(m_new_token_times=[1000.0, 1010.0, 1030.0, 1040.0],
                          m_batch_sizes=[1, 1, 1, 1])
    pm = SimpleNamespace(raw_metrics=raw, get_ttft=mean(123.0), get_throughput=mean(99.0))
    assert reported_timing(pm, 4) == {"ttft_ms": 123.0, "decode_tok_s": 3 / 0.040}
    raw.m_batch_sizes = [1, 2, 1]  # a step made two tokens: GenAI's own throughput
    raw.m_new_token_times = [1000.0, 1010.0, 1030.0]
    assert reported_timing(pm, 4)["decode_tok_s"] == 99.0
    assert reported_timing(pm, 1)["decode_tok_s"] is None


def test_logits_only_compiles_once_in_load_and_builds_no_pipeline(int4, monkeypatch):
    import openvino as ov
    import openvino_genai as ovg

    compiles = []

    class CountingCore(ov.Core):
        def compile_model(self, *args, **kwargs):
            compiles.append(args[0] if args else kwargs)
            return super().compile_model(*args, **kwargs)

    def no_pipeline(*args, **kwargs):
        raise AssertionError("LLMPipeline built for a logits_only load")

    monkeypatch.setattr(ov, "Core", CountingCore)
    monkeypatch.setattr(ovg, "LLMPipeline", no_pipeline)
    runner = _runner()
    load = runner.load(int4.path, "cpu", 2, {}, context_tokens=32, logits_only=True)
    try:
        assert len(compiles) == 1, "the IR is compiled in load(), before any clock"
        first = runner.logits(PROMPT[:16])
        again = runner.logits(PROMPT[:16])
    finally:
        runner.close()
    assert len(compiles) == 1, "logits() only infers"
    assert first.shape == (16, 262144)
    assert (first == again).all(), "state is reset between calls"
    assert load.threads_applied is True  # read back from the compiled model
    assert load.device.startswith("CPU: ")


def test_device_and_threads_come_from_the_runtime(int4):
    import openvino as ov

    runner = _runner()
    load = runner.load(int4.path, "cpu", 2, {}, context_tokens=32)
    runner.close()
    full = ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    assert load.device == f"CPU: {full}"
    assert load.threads_applied is True
    assert load.options["INFERENCE_NUM_THREADS"] == 2
