"""The context-depth axis: ``depth`` tokens in the KV cache, filled untimed before each
repetition, then the timed prompt (the issue's "Depth axis").

Equivalence per runtime: greedy tokens of prompt Q after a filled prefix P equal the greedy
tokens of the one prompt P + Q. The bound is exact token equality: fp32 compute on the tiny
Gemma 3 (ORT GenAI onnx:fp32, MLX with compute_dtype float32), and llama.cpp on Gemma 3 270M,
whose CPU kernels compute each row the same whatever the batch it is in.
"""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

import fakes
from conftest import needs_llama, run_main
from edgebench.errors import ConfigError, RunFailed
from edgebench.harness import registry
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, measure
from edgebench.models.registry import Artifact
from edgebench.results.schema import (
    LATER_IDENTITY_DEFAULTS,
    SCHEMA_VERSION,
    UPGRADABLE_VERSIONS,
)
from edgebench.suites.expand import PlannedRun, expand
from edgebench.suites.limits import context_problem
from edgebench.suites.spec import MAX_TOKENS, Suite

CTX = RunContext("sess", fingerprint())


# --------------------------------------------------------------------------- identity

def test_schema_v8_adds_depth_and_later_versions_read_v7():
    assert SCHEMA_VERSION >= 8 and 7 in UPGRADABLE_VERSIONS
    assert LATER_IDENTITY_DEFAULTS["depth"] == 0


# --------------------------------------------------------------------------- suites and flags

GOOD = [([0, 512, 2048, 4096], (0, 512, 2048, 4096)), (512, (512,)), ([0], (0,)),
        ([MAX_TOKENS], (MAX_TOKENS,))]
BAD = [  # (value, where the suite's error points, what it says)
    (-1, "depths[0]", "expected an integer of 0 or more, got -1"),
    ("abc", "depths[0]", "expected an integer of 0 or more, got 'abc'"),
    (True, "depths[0]", "expected an integer of 0 or more, got true"),
    (1.5, "depths[0]", "expected an integer of 0 or more, got 1.5"),
    (MAX_TOKENS + 1, "depths[0]", f"expected an integer from 0 to {MAX_TOKENS:,}, got "
                                  f"{MAX_TOKENS + 1}"),
    ([0, -3], "depths[1]", "expected an integer of 0 or more, got -3"),
    (None, "depths", "expected an integer of 0 or more or a list of them, got null"),
]


def test_depth_defaults_to_zero():
    assert Suite(name="s").depths == (0,)


@pytest.mark.parametrize(("value", "expected"), GOOD)
def test_depths_accepted(value, expected):
    assert Suite(name="s", depths=value).depths == expected


@pytest.mark.parametrize(("value", "where", "message"), BAD)
def test_depths_refused_by_key(value, where, message):
    with pytest.raises(ConfigError) as e:
        Suite(name="s", depths=value)
    assert str(e.value) == f"<defaults>: {where}: {message}"


@pytest.mark.parametrize(("value", "where", "message"), BAD[:6])
def test_depth_flag_refused_by_flag(value, where, message):
    with pytest.raises(ConfigError) as e:
        Suite(name="s").override(depths=value)
    assert str(e.value) == f"--depth: {message}"


def test_empty_depths_run_nothing():
    with pytest.raises(ConfigError, match="^<defaults>: depths is empty: nothing to run"):
        Suite(name="s", depths=[])


def test_include_and_exclude_take_depth():
    s = Suite(name="s", depths=[0, 512], include=[{"depth": 2048, "prompt_tokens": 8}],
              exclude=[{"depth": 0}])
    assert s.include == ({"depth": 2048, "prompt_tokens": 8},) and s.exclude == ({"depth": 0},)
    with pytest.raises(ConfigError, match=r"include\[0\]\.depth: expected an integer of 0 or "
                                          "more, got -5"):
        Suite(name="s", include=[{"depth": -5}])
    with pytest.raises(ConfigError, match="unknown key 'depths'.*did you mean depth"):
        Suite(name="s", include=[{"depths": 5}])


def test_cli_depth_flag(tiny_gguf, capsys):
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--precision", "q8_0",
                               "--prompt-tokens", "8", "--new-tokens", "8", "--depth", "0",
                               "--depth", "64", "--format", "json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["depth"] for r in rows) == [0, 64]
    code, out, err = run_main(["plan", "--model", str(tiny_gguf), "--depth", "-1"], capsys)
    assert code == 2 and "--depth: expected an integer of 0 or more, got -1" in err


# --------------------------------------------------------------------------- planning

def _plan(model: Path, **axes):
    from edgebench import api

    suite = Suite(name="s", models=[str(model)], precisions=["q8_0"], **axes)
    return api.plan(suite, Path("cache"))


def test_depth_beyond_the_context_is_a_skipped_row_naming_the_limit(tiny_gguf):
    # the GGUF's header says context_length 128
    runs = {r.depth: r for r in _plan(tiny_gguf, depths=[0, 64, 100], prompt_tokens=[16],
                                      new_tokens=[16])}
    assert runs[0].skip_reason is None and runs[64].skip_reason is None
    assert runs[100].skip_reason == ("depth 100 + prompt 16 + new 16 = 132 tokens exceed "
                                     "tiny-q8's context length of 128 tokens")
    assert runs[64].identity["depth"] == 64 and runs[64].run_key != runs[0].run_key


def test_context_problem_table():
    assert context_problem(0, 64, 64, None, "m") is None  # unknown: nothing is checked
    assert context_problem(4096, 64, 64, 4224, "m") is None  # exactly the limit fits
    assert "4,225 tokens exceed m's context length of 4,224" in context_problem(
        4097, 64, 64, 4224, "m")


@pytest.mark.parametrize("framework", ["openvino", "qnn", "qai-hub"])
def test_runtimes_without_a_fill_skip_depth_citing_why(framework, tmp_path):
    from edgebench.models.registry import ResolvedModel

    spec = registry.FRAMEWORKS[framework]
    model = ResolvedModel(name="m", sha256="0" * 64, source=tmp_path, artifacts=(
        Artifact(spec.artifact_format, spec.precisions[0], tmp_path, 1, "a"),))
    suite = Suite(name="s", frameworks=[framework], precisions=[spec.precisions[0]],
                  devices=[spec.devices[0]], depths=[0, 512])
    runs = {r.depth: r for r in expand(suite, lambda _: model)}
    assert spec.no_depth and runs[512].skip_reason == (
        f"{framework} cannot measure at depth 512: {spec.no_depth}")
    assert "cannot measure at depth" not in (runs[0].skip_reason or "")


def test_openvino_runner_refuses_a_prefix_naming_its_api():
    from edgebench.harness.runners.openvino_genai import OpenVINOGenAIRunner

    with pytest.raises(RunFailed, match="LLMPipeline has no call that fills the KV cache"):
        OpenVINOGenAIRunner().generate([2, 3], 4, prefix_ids=[2, 5, 6])


# --------------------------------------------------------------------------- measuring

class DepthRunner(fakes.FakeRunner):
    """Records the prefix each generate got."""

    def generate(self, prompt_ids, max_new_tokens, prefix_ids=()):
        fakes.FakeRunner.calls.append(("prefix", tuple(prefix_ids)))
        return super().generate(prompt_ids, max_new_tokens)


@pytest.fixture
def depth_framework(monkeypatch):
    spec = dataclasses.replace(registry.FRAMEWORKS["llama-cpp"], name="fake-depth",
                               target="test_depth:DepthRunner", extra="fake")
    monkeypatch.setitem(registry.FRAMEWORKS, "fake-depth", spec)
    fakes.FakeRunner.calls.clear()


def _run(depth, prefix, framework="fake-depth"):
    return PlannedRun(
        model="m", model_sha256="sha", framework=framework, precision="q4_k_m", device="cpu",
        prompt_tokens=4, new_tokens=5, threads=2, options={}, suite="t", repetitions=3,
        warmup=1, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", "q4_k_m", Path("/nowhere.gguf"), 123, "asha"),
        prompt_ids=(2, 7, 9, 4), depth=depth, prefix_ids=tuple(prefix))


def test_measure_fills_the_prefix_before_every_generate(depth_framework):
    row = measure(_run(3, (2, 11, 12)), CTX)
    assert row.status == "ok", row.message
    assert row.depth == 3 and row.prompt_tokens == 4
    from edgebench.harness.prompt import ids_sha256

    assert row.prompt_ids_sha256 == ids_sha256([2, 7, 9, 4])  # the measured prompt only
    load = next(c for c in fakes.FakeRunner.calls if c[0] == "load")
    assert load[-1] == 3 + 4 + 5  # context_tokens: depth + prompt + new
    prefixes = [c[1] for c in fakes.FakeRunner.calls if c[0] == "prefix"]
    assert prefixes == [(2, 11, 12)] * 4  # warm-up and each of 3 repetitions
    assert row.prefill_tok_s == pytest.approx(40.0)  # 4 prompt tokens / 0.1 s: not the prefix


def test_depth_zero_calls_generate_as_before(monkeypatch):
    spec = dataclasses.replace(registry.FRAMEWORKS["llama-cpp"], name="fake",
                               target="fakes:FakeRunner", extra="fake")
    monkeypatch.setitem(registry.FRAMEWORKS, "fake", spec)  # a runner without prefix_ids
    row = measure(_run(0, (), framework="fake"), CTX)
    assert row.status == "ok" and row.depth == 0


def test_a_prefix_of_the_wrong_length_is_an_error_row(depth_framework):
    row = measure(_run(3, (2, 11)), CTX)
    assert row.status == "error" and "run has 2 depth IDs, expected 3" in row.message


def test_depth_and_prompt_are_one_continuous_text(monkeypatch):
    """The prefix is the first `depth` IDs of one tokenization and the prompt the next
    `prompt_tokens`; at depth 0 the same IDs as before are asked for."""
    from edgebench import api

    asked, got = [], []
    monkeypatch.setattr(api, "prompt_ids", lambda sha, src, n, cache: asked.append(n)
                        or list(range(100, 100 + n)))
    monkeypatch.setattr(api, "run_isolated", lambda run, ctx, *a: got.append(run))
    for depth in (0, 3):
        run = dataclasses.replace(_run(depth, (), framework="llama-cpp"), prompt_ids=())
        api._one(run, CTX, Path("cache"), {})
    assert asked == [4, 7]
    assert got[0].prefix_ids == () and got[0].prompt_ids == (100, 101, 102, 103)
    assert got[1].prefix_ids == (100, 101, 102) and got[1].prompt_ids == (103, 104, 105, 106)


# --------------------------------------------------------------------------- runtimes

PREFIX = [2] + [10 + (7 * i) % 400 for i in range(47)]  # 48 IDs: past the sliding window (32)
PROMPT = [10 + (13 * i) % 400 for i in range(8)]
NEW = 8
TINY = {  # framework -> (target, modules, load options for fp32 compute)
    "ort-genai": ("onnx:fp32", ("onnxruntime_genai", "onnx_ir", "onnxscript"), {}),
    "mlx": ("mlx:fp16", ("mlx", "mlx_lm"), {"compute_dtype": "float32"}),
}


def _have(mods):
    return all(importlib.util.find_spec(m) for m in mods)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not _have(("torch", "transformers")):
        pytest.skip("torch/transformers not installed (pip install -e '.[convert]')")
    from edgebench.models.tiny import make_tiny_gemma3

    return make_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "tiny-gemma3")


def _equivalence(runner, prefix, prompt):
    filled = runner.generate(prompt, NEW, prefix_ids=prefix)
    filled_again = runner.generate(prompt, NEW, prefix_ids=prefix)
    one = runner.generate(prefix + prompt, NEW)
    assert filled.prompt_tokens == len(prompt) and len(filled.token_ids) == NEW
    assert filled.t0_ns < filled.token_ns[0]
    assert filled.token_ids == filled_again.token_ids  # the cache is emptied on every call
    assert filled.token_ids == one.token_ids
    # and the prefix mattered: without it these inputs continue differently
    assert runner.generate(prompt, NEW).token_ids != one.token_ids


@pytest.mark.parametrize("framework", sorted(TINY))
def test_depth_fill_gives_the_tokens_of_one_long_prompt(framework, tiny, tmp_path_factory):
    from edgebench.harness import prepare as prep
    from edgebench.harness.registry import load_runner
    from edgebench.models.registry import resolve_model

    target, mods, options = TINY[framework]
    if not _have(mods):
        pytest.skip(f"{framework} is not installed (pip install -e '.[{framework}]')")
    cache = tmp_path_factory.mktemp("cache")
    source = prep.source_of(resolve_model(str(tiny), cache))
    man = prep.prepare(source, prep.parse_target(target), cache)
    runner = load_runner(framework)
    runner.load(prep.artifact_path(man, cache), "cpu", 2, options,
                context_tokens=len(PREFIX) + len(PROMPT) + NEW)
    try:
        _equivalence(runner, PREFIX, PROMPT)
    finally:
        runner.close()


@needs_llama
@pytest.mark.llama_cpp
def test_llama_cpp_depth_fill_gives_the_tokens_of_one_long_prompt():
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner
    from edgebench.locations import cache_dir
    from edgebench.models.registry import resolve_model

    gemma = resolve_model("gemma-3-270m", cache_dir()).artifacts[0].path
    runner = LlamaCppRunner()
    runner.load(gemma, "cpu", 2, {}, context_tokens=600)
    try:
        prefix = [2] + [1000 + (37 * i) % 5000 for i in range(299)]  # 300 IDs
        _equivalence(runner, prefix, [3000 + i for i in range(16)])
    finally:
        runner.close()


def test_a_context_option_set_too_low_is_a_skipped_row_naming_it(tiny_gguf):
    from edgebench import api

    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], prompt_tokens=[16],
                  new_tokens=[16], depths=[0, 40], options={"llama-cpp": {"n_ctx": 64}})
    runs = {r.depth: r for r in api.plan(suite, Path("cache"))}
    assert runs[0].skip_reason is None
    assert runs[40].skip_reason == ("depth 40 + prompt 16 + new 16 = 72 tokens exceed the "
                                    "suite's n_ctx of 64: raise n_ctx in the suite's options")


@pytest.mark.parametrize("depths", [(0, 64), (64,)])
def test_quality_scores_each_cell_once_at_no_depth(tiny_gguf, depths):
    """Depth is a workload axis: a suite of several depths plans one quality cell per runtime
    and precision, with the identity of depth 0 (perplexity is scored on the corpus)."""
    from edgebench.quality_sweep import quality_runs

    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], prompt_tokens=[8],
                  new_tokens=[8], depths=depths)
    (run,) = quality_runs(suite, Path("cache"))
    assert run.depth == 0 and run.sustain_s is None
    plain = dataclasses.replace(run, depth=0)
    assert run.run_key == plain.run_key


def test_recommend_ranks_one_depth_and_the_report_labels_it():
    """Rows at another context depth are another workload: never ranked against depth 0, and
    the report's workload names the depth."""
    from conftest import make_record
    from edgebench.decision import targets
    from edgebench.decision.candidates import candidates_from_rows
    from edgebench.reports.select import workload_label

    def row(precision, depth, decode):
        return dataclasses.asdict(make_record(
            run_key=f"{precision}-{depth}", precision=precision, depth=depth, decode_tok_s=decode,
            cpu_model="Test CPU", cpu_cores_logical=2, ram_total_mb=8192.0, os="Linux (x86_64)"))

    rows = [row("q4_k_m", 0, 60.0), row("q8_0", 0, 50.0), row("q4_k_m", 2048, 40.0)]
    found = candidates_from_rows(rows, targets.get("cpu"))
    assert sorted((c.precision, c.decode_tok_s.value) for c in found.candidates) == [
        ("q4_k_m", 60.0), ("q8_0", 50.0)]
    assert any("1 row(s) of other workloads left out" in n for n in found.notes)
    only_deep = candidates_from_rows(rows[2:], targets.get("cpu"))
    assert any("at depth 2048" in s for s in only_deep.steps)
    assert workload_label(rows[2]).startswith("depth 2048, 8+4 tokens")
    assert workload_label(rows[0]).startswith("8+4 tokens")  # depth 0 reads as before
