"""llama.cpp on the real Gemma 3 270M (skipped only when llama-cpp-python is not installed)."""

import pyarrow.parquet as pq
import pytest

from conftest import needs_llama
from edgebench.errors import ConfigError, DeviceUnavailable
from edgebench.locations import cache_dir
from edgebench.models.registry import resolve_model

pytestmark = [needs_llama, pytest.mark.llama_cpp]


@pytest.fixture(scope="module")
def gemma():
    return resolve_model("gemma-3-270m", cache_dir()).artifacts[0].path


@pytest.fixture(scope="module")
def runner(gemma):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    r = LlamaCppRunner()
    r.load(gemma, "cpu", 2, {"n_ctx": 256}, context_tokens=64)
    yield r
    r.close()


def test_probe_reports_version_and_cpu():
    import llama_cpp

    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    info = LlamaCppRunner().probe()
    assert info.version == llama_cpp.__version__ and "cpu" in info.devices
    from edgebench.harness.registry import installed_version

    assert info.version == installed_version("llama-cpp")  # what --resume compares


def test_load_reports_the_runtime_device_and_threads_it_applied(gemma):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    r = LlamaCppRunner()
    try:
        info = r.load(gemma, "cpu", 1, {"n_ctx": 256}, context_tokens=64)
        assert info.device == "CPU (ggml-cpu)" and info.device != "cpu"
        assert info.threads_applied is True
        import llama_cpp

        assert llama_cpp.llama_n_threads(r._llm.ctx) == 1
    finally:
        r.close()


def test_logits_only_load_serves_logits_without_a_reload(gemma, monkeypatch):
    import llama_cpp

    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    r = LlamaCppRunner()
    try:
        r.load(gemma, "cpu", 2, {"n_ctx": 256}, context_tokens=64, logits_only=True)
        loads = []
        monkeypatch.setattr(llama_cpp, "Llama", lambda *a, **k: loads.append(k))
        out = r.logits([2, 651, 6037, 529])
        assert out.shape == (4, 262144) and not loads  # no reload inside the quality clock
    finally:
        r.close()


def test_greedy_generation_is_repeatable_and_exact_length(runner):
    ids = runner.tokenize("The capital of France is")
    assert ids[0] == 2  # Gemma's BOS
    a = runner.generate(ids, 6)
    b = runner.generate(ids, 6)
    assert len(a.token_ns) == 6 and a.token_ids == b.token_ids
    assert a.prompt_tokens == len(ids) and a.t0_ns < a.token_ns[0]
    assert list(a.token_ns) == sorted(a.token_ns)


def test_device_it_does_not_have(gemma):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    r = LlamaCppRunner()
    if "cuda" in r.probe().devices:
        pytest.skip("this llama.cpp build has CUDA")
    with pytest.raises(DeviceUnavailable, match=r"no device 'cuda' here \(it has: cpu"):
        r.load(gemma, "cuda", 2, {}, context_tokens=64)


def test_unknown_option_named(gemma):
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner

    with pytest.raises(ConfigError, match="n_ctxx"):
        LlamaCppRunner().load(gemma, "cpu", 2, {"n_ctxx": 5}, context_tokens=64)


def test_edgebench_run_writes_a_real_ok_row(tmp_path, capsys):
    from edgebench.cli import main

    store = tmp_path / "store"
    args = ["run", "--prompt-tokens", "16", "--new-tokens", "8", "--repetitions", "2",
            "--warmup", "1", "--store", str(store), "--quiet", "--format", "csv"]
    try:
        main(args)
    except SystemExit as e:
        assert not e.code, capsys.readouterr().err
    (path,) = store.glob("*.parquet")
    (row,) = pq.read_table(path).to_pylist()
    assert row["status"] == "ok", row["message"]
    assert row["framework"] == "llama-cpp" and row["model"] == "gemma-3-270m"
    assert row["model_sha256"].startswith("a5fd3b62")
    assert row["prompt_tokens"] == 16 and len(row["output_ids"]) == 8
    assert len(row["decode_tok_s_samples"]) == 2 and row["decode_tok_s"] > 0
    assert row["ttft_ms"] > 0 and row["load_s"] > 0
    assert row["peak_rss_mb"] > row["rss_baseline_mb"] > 0
    assert row["model_bytes"] == 253_113_024 and row["prompt_ids_sha256"]
    assert row["energy_method"] == "none" and row["energy_j"] is None
    import llama_cpp

    assert row["framework_version"] == llama_cpp.__version__
    assert row["device_name"] == "CPU (ggml-cpu)" and row["threads_applied"] is True
    assert "gemma-3-270m,llama-cpp,q4_k_m,cpu" in capsys.readouterr().out
