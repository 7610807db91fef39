"""The lm-eval adapter on the real Gemma 3 270M (llama.cpp): loglikelihood, rolling
loglikelihood and generation agree with the runner's own logits, and lm-eval tasks defined in
tests/data/lm_eval run end to end, offline, from any working directory."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install -e '.[lm-eval]')")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed "
                                        "(pip install -e '.[llama-cpp]')")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read by datasets when first imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_eval.api.instance import Instance  # noqa: E402

from edgebench.errors import ConfigError  # noqa: E402
from edgebench.harness import lm_eval_adapter as adapter  # noqa: E402

TASKS = Path(__file__).parent / "data" / "lm_eval"
# one thread: two would spin against the benchmarks sharing this machine's two cores
ARGS = "model=gemma-3-270m,framework=llama-cpp,device=cpu,threads=1"


def _req(kind, *args):
    return Instance(kind, {}, args, 0)


@pytest.fixture(scope="module")
def lm():
    model = adapter.EdgebenchLM.create_from_arg_string(ARGS)
    yield model
    model.close()


def test_likely_continuation_scores_higher(lm):
    (paris, paris_greedy), (banana, banana_greedy) = lm.loglikelihood([
        _req("loglikelihood", "The capital of France is", " Paris"),
        _req("loglikelihood", "The capital of France is", " banana"),
    ])
    assert paris > banana
    assert paris < 0 and math.isfinite(banana)
    assert not banana_greedy


def test_is_greedy_for_the_models_own_next_token(lm):
    context = "Monday, Tuesday,"
    ids = lm.tok.bos + lm.tok.encode(context)
    token = lm.runner.generate(ids, 1).token_ids[0]
    ((logprob, greedy),) = lm.loglikelihood([_req("loglikelihood", context,
                                                  lm.tok.decode([token]))])
    assert greedy
    assert logprob <= 0


def test_rolling_equals_sum_of_logprobs_from_the_runner(lm):
    text = "The quick brown fox jumps over the lazy dog."
    ids = lm.tok.bos + lm.tok.encode(text)
    logits = np.asarray(lm.runner.logits(ids), dtype=np.float64)[:-1]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    expected = float(logp[np.arange(len(ids) - 1), ids[1:]].sum())
    (got,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", text)])
    assert got == pytest.approx(expected, abs=1e-3)


def test_rolling_windows_score_every_token_once(lm, monkeypatch):
    text = "Paris is the capital and largest city of France, on the river Seine."
    scored = []
    real = lm.score

    def spy(context, continuation):
        assert len(context) + len(continuation) - 1 <= 8  # a window fits max_length
        scored.extend(continuation)
        return real(context, continuation)

    monkeypatch.setattr(lm, "score", spy)
    monkeypatch.setattr(lm, "max_length", 8)
    (total,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", text)])
    assert scored == lm.tok.encode(text)
    assert math.isfinite(total) and total < 0


def test_generate_until_stops_at_the_stop_string_and_token_budget(lm):
    cut, free = lm.generate_until([
        _req("generate_until", "Monday, Tuesday, Wednesday,", {"until": [","],
                                                              "max_gen_toks": 6}),
        _req("generate_until", "Monday, Tuesday, Wednesday,", {"until": [],
                                                              "max_gen_toks": 3}),
    ])
    assert "," not in cut and cut.strip()
    assert free.startswith(cut)
    assert len(lm.tok.encode(free)) <= 4  # 3 tokens, give or take a re-tokenized boundary


def test_unknown_model_arg_is_refused_before_loading():
    with pytest.raises(ConfigError, match="unknown edgebench model_args.*temprature"):
        adapter.EdgebenchLM.create_from_arg_string(ARGS + ",temprature=0")


def test_local_tasks_end_to_end():
    """Multiple choice, generation and perplexity tasks through lm-eval; the working directory
    is a temporary folder (conftest), so the data files are found from the YAML's folder."""
    out = adapter.evaluate(ARGS, ["edgebench_tiny"], include_path=str(TASKS), limit=2)
    res = out["results"]
    expected = {"edgebench_tiny_mc": ("acc,none", "acc_norm,none"),
                "edgebench_tiny_gen": ("exact_match,strip",),
                "edgebench_tiny_ppl": ("word_perplexity,none", "byte_perplexity,none",
                                       "bits_per_byte,none")}
    for task, metrics in expected.items():
        for metric in metrics:
            assert math.isfinite(res[task][metric]), (task, metric)
        assert out["n-samples"][task]["effective"] == 2
    assert 0 <= res["edgebench_tiny_mc"]["acc,none"] <= 1
    assert res["edgebench_tiny_ppl"]["byte_perplexity,none"] > 1
    frame = adapter.results_frame(out)
    assert set(frame["task"]) == set(expected)
    assert frame["value"].notna().all()


def test_cli_prints_the_results_table(monkeypatch):
    from click.testing import CliRunner

    from edgebench.cli import cli

    result = CliRunner().invoke(cli, ["lm-eval", "--model-args", ARGS, "--tasks",
                                      "edgebench_tiny_mc", "--include-path", str(TASKS),
                                      "--limit", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("["):])
    assert {r["metric"] for r in rows} == {"acc", "acc_norm"}


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown lm-eval task.*edgebench_tiny_mcq"):
        adapter.evaluate(ARGS, ["edgebench_tiny_mcq"], include_path=str(TASKS))
