"""Quality at long contexts: the scored positions are streamed block by block (never the
``[n_ctx, vocab]`` logits, never the chunk's log-probs), llama.cpp's logits come from its
low-level API for the scored positions only, and the KV-cache type is a quality axis whose
reference keeps the runtime's default cache.

The llama.cpp checks run a tiny random-weight Llama GGUF written here (1000-token vocabulary,
2 layers), so a 512-token chunk decodes in well under a second."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_llama
from edgebench.harness import quality as q
from edgebench.harness import registry
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext
from edgebench.harness.quality_run import QualitySpec, measure_quality, score_chunk
from edgebench.models.registry import Artifact
from edgebench.suites.expand import PlannedRun

CTX = RunContext("sess", fingerprint())
N_CTX = 512
VOCAB = 1000


def write_tiny_llama(path: Path, vocab: int = VOCAB, seed: int = 0) -> Path:
    """A loadable Llama GGUF with random float32 weights and an SPM vocabulary (byte tokens
    included, so llama.cpp's vocabulary loader finds its newline token)."""
    import gguf

    rng = np.random.default_rng(seed)
    n_embd, n_ff, n_layer, n_head, n_head_kv = 64, 128, 2, 4, 2
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)  # all F32
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"w{i}" for i in range(vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def mat(*shape, scale=0.2):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    kv = n_embd // n_head * n_head_kv
    w.add_tensor("token_embd.weight", mat(vocab, n_embd, scale=1.0))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", mat(vocab, n_embd, scale=0.5))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(kv, n_embd))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(kv, n_embd))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama-f32.gguf")


def _chunks(n: int = 2, n_ctx: int = N_CTX) -> tuple[tuple[int, ...], ...]:
    rng = np.random.default_rng(7)
    return tuple((1, *rng.integers(3, VOCAB, size=n_ctx - 1).tolist()) for _ in range(n))


# --- runners for measure_quality: the same llama.cpp, streamed and whole-chunk --------------

class WholeChunkLlama:
    """llama.cpp through ``LlamaCppRunner.logits`` only (no ScoredLogits hook, whether or not
    LlamaCppRunner has one): the whole-chunk path."""

    LOGITS_METHOD = "whole chunk"

    def __init__(self):
        from edgebench.harness.runners.llama_cpp import LlamaCppRunner

        self._r = LlamaCppRunner()

    def probe(self):
        return self._r.probe()

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False,
             **kw):
        return self._r.load(artifact, device, threads, options, context_tokens, logits_only,
                            **kw)

    def logits(self, ids):
        return self._r.logits(ids)

    def close(self):
        self._r.close()


class StreamedLlama(WholeChunkLlama):
    """The same runner with the ScoredLogits hook wired as LlamaCppRunner's would be."""

    from edgebench.harness.runners.llama_cpp_logits import METHOD as SCORED_LOGITS_METHOD

    def scored_logits(self, token_ids, first, last, block):
        import llama_cpp

        from edgebench.harness.runners.llama_cpp_logits import stream_scored_logits

        return stream_scored_logits(llama_cpp, self._r._llm, token_ids, first, last, block)


@pytest.fixture
def llama_frameworks(monkeypatch):
    base = registry.FRAMEWORKS["llama-cpp"]
    for name, cls in (("whole", "WholeChunkLlama"), ("streamed", "StreamedLlama")):
        spec = dataclasses.replace(base, name=name, target=f"test_quality_long:{cls}")
        monkeypatch.setitem(registry.FRAMEWORKS, name, spec)


def _run(framework, path: Path, precision="f32", kv_cache=None) -> PlannedRun:
    return PlannedRun(
        model="tiny", model_sha256="m" * 64, framework=framework, precision=precision,
        device="cpu", prompt_tokens=16, new_tokens=4, threads=2, options={"n_batch": 128},
        suite="t", repetitions=1, warmup=0, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", precision, path, path.stat().st_size, "a" * 64),
        kv_cache=kv_cache)


def _spec(ref_dir: Path, write: bool, n_ctx: int = N_CTX) -> QualitySpec:
    return QualitySpec("c", "c" * 64, n_ctx, _chunks(2, n_ctx), str(ref_dir), "whole:f32",
                       "r" * 64, write_reference=write)


# --- llama.cpp: the streamed logits are the whole-chunk logits' rows ------------------------

@needs_llama
@pytest.mark.parametrize("block, n_batch", [(100, 128), (512, 512), (37, 200)])
def test_streamed_llama_logits_equal_the_whole_chunk_path(tiny_llama, block, n_batch):
    import llama_cpp

    from edgebench.harness.runners.llama_cpp import LlamaCppRunner
    from edgebench.harness.runners.llama_cpp_logits import stream_scored_logits

    ids = list(_chunks(1)[0])
    first, last = q.scored_range(N_CTX)
    r = LlamaCppRunner()
    try:
        r.load(tiny_llama, "cpu", 2, {"n_batch": n_batch}, context_tokens=N_CTX,
               logits_only=True)
        whole = r.logits(ids)[first:last]
        blocks = list(stream_scored_logits(llama_cpp, r._llm, ids, first, last, block))
        again = list(stream_scored_logits(llama_cpp, r._llm, ids, first, last, block))
    finally:
        r.close()
    assert all(b.dtype == np.float32 and 0 < len(b) <= block for b in blocks)
    streamed = np.concatenate(blocks)
    assert streamed.shape == whole.shape == (last - first, VOCAB)
    assert np.abs(whole).max() > 1.0  # the tiny model's logits are not flat
    assert np.abs(streamed - whole).max() < 1e-4
    np.testing.assert_array_equal(np.concatenate(again), streamed)  # the cache was emptied


@needs_llama
def test_stream_refuses_a_context_shorter_than_the_chunk(tiny_llama):
    import llama_cpp

    from edgebench.errors import RunFailed
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner
    from edgebench.harness.runners.llama_cpp_logits import stream_scored_logits

    r = LlamaCppRunner()
    try:
        r.load(tiny_llama, "cpu", 2, {"n_ctx": 512}, context_tokens=512)
        with pytest.raises(RunFailed, match="shorter than the 1024-token chunk"):
            next(stream_scored_logits(llama_cpp, r._llm, [1] * 1024, 512, 1023, 64))
    finally:
        r.close()


# --- the harness: streamed scoring equals the whole-chunk arithmetic ------------------------

def _whole_chunk_expected(runner, spec: QualitySpec):
    """The arithmetic as it was before streaming: whole-chunk logits, whole-chunk log-probs."""
    nll, lps = [], []
    for chunk in spec.chunks:
        lp = q.scored_logprobs(runner.logits(list(chunk)), spec.n_ctx)
        nll.append(q.chunk_nll(lp, list(chunk)))
        lps.append(lp)
    return nll, lps


@needs_llama
def test_streamed_quality_rows_equal_the_whole_chunk_path(tmp_path, tiny_llama,
                                                           llama_frameworks):
    # the reference written whole-chunk (the runner has no hook) and streamed: same bytes
    whole_ref, stream_ref = tmp_path / "whole-ref", tmp_path / "stream-ref"
    ref_w = measure_quality(_run("whole", tiny_llama), CTX, _spec(whole_ref, True))
    ref_s = measure_quality(_run("streamed", tiny_llama), CTX, _spec(stream_ref, True))
    assert ref_w.status == ref_s.status == "ok", (ref_w.message, ref_s.message)
    assert "scored positions only" in ref_s.quality_method

    # what the code before streaming stored: np.save of the whole chunk's codes
    r = WholeChunkLlama()
    r.load(tiny_llama, "cpu", 2, {"n_batch": 128}, N_CTX, logits_only=True)
    try:
        nll, lps = _whole_chunk_expected(r, _spec(whole_ref, False))
    finally:
        r.close()
    old = tmp_path / "old.npy"
    for i, lp in enumerate(lps):
        np.save(old, q.encode_logprobs(lp))
        assert (whole_ref / f"chunk{i}.lp.npy").read_bytes() == old.read_bytes()
        np.testing.assert_array_equal(np.load(whole_ref / f"chunk{i}.floor.npy"),
                                      q.kl_divergence(q.decode_logprobs(q.encode_logprobs(lp)),
                                                      lp))
        np.testing.assert_array_equal(np.load(whole_ref / f"chunk{i}.nll.npy"), nll[i])
        streamed = np.load(stream_ref / f"chunk{i}.lp.npy")
        # llama.cpp's logits for fewer outputs may round differently: a code step at most
        assert np.abs(streamed.astype(np.int32) - np.load(whole_ref / f"chunk{i}.lp.npy")
                      ).max() <= 1
    expected = q.perplexity(np.concatenate(nll))
    assert ref_w.ppl == pytest.approx(expected.ppl, rel=1e-12)
    assert ref_w.ppl_stderr == pytest.approx(expected.stderr, rel=1e-9)
    assert ref_s.ppl == pytest.approx(ref_w.ppl, rel=1e-5)
    assert ref_w.kld_mean == pytest.approx(ref_w.kld_floor_mean)
    assert ref_s.kld_mean == pytest.approx(ref_s.kld_floor_mean)

    # a q-run against the whole-chunk reference, streamed and not: the same row
    rows = {}
    for fw in ("whole", "streamed"):
        rows[fw] = measure_quality(_run(fw, tiny_llama, precision="f32b"), CTX,
                                   _spec(whole_ref, False))
        assert rows[fw].status == "ok", rows[fw].message
    w, s = rows["whole"], rows["streamed"]
    ref = [q.decode_logprobs(np.load(whole_ref / f"chunk{i}.lp.npy")) for i in range(2)]
    kld = np.concatenate([q.kl_divergence(rf, lp) for rf, lp in zip(ref, lps)])
    top1 = np.concatenate([q.top1_matches(rf, lp) for rf, lp in zip(ref, lps)])
    div = q.divergence(kld, top1)
    assert w.kld_mean == pytest.approx(div.kld_mean, rel=1e-9, abs=1e-15)
    assert w.kld_p99 == pytest.approx(div.kld_p99, rel=1e-9, abs=1e-15)
    assert w.top1_agree == div.top1_agree == 1.0
    assert w.ppl == pytest.approx(expected.ppl, rel=1e-12)
    assert s.ppl == pytest.approx(w.ppl, rel=1e-5)
    assert s.kld_mean == pytest.approx(w.kld_mean, abs=1e-7)
    assert s.top1_agree == w.top1_agree and s.tokens_scored == w.tokens_scored == 2 * 255
    assert s.chunk_nll == pytest.approx(w.chunk_nll, rel=1e-5)


@pytest.mark.parametrize("block", [1, 7, 64, 300])
def test_score_chunk_in_blocks_equals_the_whole_chunk_arithmetic(tmp_path, block):
    """Pure numpy: any block size gives the whole-chunk results, bit for bit."""
    n_ctx, vocab = 64, 300
    rng = np.random.default_rng(3)
    ids = [1, *rng.integers(0, vocab, size=n_ctx - 1).tolist()]
    logits = (rng.normal(size=(n_ctx, vocab)) * 4).astype(np.float32)
    first, last = q.scored_range(n_ctx)

    def blocks(x):
        return (x[s:min(s + block, last)] for s in range(first, last, block))

    ref_dir = tmp_path / "ref"
    got_ref = score_chunk(blocks(logits), ids, ref_dir, 0, write=True)
    lp = q.scored_logprobs(logits, n_ctx)
    codes = q.encode_logprobs(lp)
    np.save(tmp_path / "old.npy", codes)
    assert (ref_dir / "chunk0.lp.npy").read_bytes() == (tmp_path / "old.npy").read_bytes()
    np.testing.assert_array_equal(got_ref.nll, q.chunk_nll(lp, ids))
    stored = q.decode_logprobs(codes)
    np.testing.assert_array_equal(np.load(ref_dir / "chunk0.floor.npy"),
                                  q.kl_divergence(stored, lp))
    other = logits + rng.normal(size=logits.shape).astype(np.float32)
    got = score_chunk(blocks(other), ids, ref_dir, 0, write=False)
    lp2 = q.scored_logprobs(other, n_ctx)
    np.testing.assert_array_equal(got.nll, q.chunk_nll(lp2, ids))
    np.testing.assert_array_equal(got.kld, q.kl_divergence(stored, lp2))
    np.testing.assert_array_equal(got.top1, q.top1_matches(stored, lp2))
    assert not list(ref_dir.glob(".*tmp*"))  # the memory map's temporary file is gone


def test_score_chunk_refuses_too_few_positions(tmp_path):
    from edgebench.errors import EdgebenchError

    logits = np.zeros((10, 5), dtype=np.float32)
    ids = [0] * 16
    with pytest.raises(EdgebenchError, match="10 of the 7 scored|more than the 7"):
        score_chunk(iter([logits]), ids, tmp_path / "ref", 0, write=True)
    with pytest.raises(EdgebenchError, match="5 of the 7 scored"):
        score_chunk(iter([logits[:5]]), ids, tmp_path / "ref", 0, write=True)
    assert not (tmp_path / "ref" / "chunk0.lp.npy").exists()
    assert not list((tmp_path / "ref").glob(".*tmp*"))


# --- the KV-cache type as a quality axis ----------------------------------------------------

def _planned(tiny_gguf, **over) -> PlannedRun:
    base = dict(model="m", model_sha256="m" * 64, framework="llama-cpp", precision="q8_0",
                device="cpu", prompt_tokens=16, new_tokens=4, threads=2,
                options={"n_ctx": 512}, suite="t", repetitions=1, warmup=0, cooldown_s=0.0,
                timeout_s=60.0, model_ref=str(tiny_gguf),
                artifact=Artifact("gguf", "q8_0", tiny_gguf, 1, "a" * 64))
    return PlannedRun(**{**base, **over})


def test_quality_cells_are_one_per_kv_cache_type_and_ignore_prompt_files(tiny_gguf,
                                                                         monkeypatch):
    from edgebench import quality_sweep
    from edgebench.harness.quality_run import quality_identity

    planned = [
        _planned(tiny_gguf, kv_cache=kv, depth=depth, prompt_file=pf,
                 prompt_file_sha256=pf and "p" * 64, prompt_set_ids=((1, 2),) if pf else ())
        for kv in (None, "q8_0", "q4_0") for depth in (1024, 0) for pf in ("chat", None)]
    monkeypatch.setattr(quality_sweep.api, "plan", lambda suite, cache: planned)
    runs = quality_sweep.quality_runs(None, Path("cache"))
    assert [r.kv_cache for r in runs] == [None, "q8_0", "q4_0"]
    assert all(r.depth == 0 and r.prompt_file is None and r.prompt_file_sha256 is None
               and not r.prompt_set_ids and r.sustain_s is None for r in runs)
    spec = QualitySpec("c", "c" * 64, 512, ((1,) * 512,), "ref", "llama-cpp:f16", "r" * 64)
    keys = {quality_sweep.run_key(quality_identity(r, spec)) for r in runs}
    assert len(keys) == 3  # cells that differ only in KV type are distinct quality rows
    # the prompt file never enters a quality row's identity
    with_file = dataclasses.replace(runs[0], prompt_file="chat", prompt_file_sha256="p" * 64)
    assert quality_identity(with_file, spec) == quality_identity(runs[0], spec)


def test_quality_cell_prefers_a_runnable_plain_run(tiny_gguf, monkeypatch):
    from edgebench import quality_sweep

    planned = [_planned(tiny_gguf, depth=4096, skip_reason="exceeds n_ctx"),
               _planned(tiny_gguf, prompt_file="chat", prompt_file_sha256="p" * 64)]
    monkeypatch.setattr(quality_sweep.api, "plan", lambda suite, cache: planned)
    (run,) = quality_sweep.quality_runs(None, Path("cache"))
    assert run.skip_reason is None and run.prompt_file is None and run.depth == 0


def test_reference_run_keeps_the_default_kv_cache(tiny_gguf):
    """A suite of quantized KV caches, depths and sustained runs: its reference is one plain
    run at the runtime's default KV type."""
    from edgebench.quality_sweep import _reference_run, quality_runs
    from edgebench.suites.spec import Suite

    suite = Suite(name="s", models=[str(tiny_gguf)], precisions=["q8_0"], prompt_tokens=[16],
                  new_tokens=[16], depths=[0, 40], kv_cache=["q8_0", "q4_0"],
                  options={"llama-cpp": {"n_ctx": 512}})
    runs = quality_runs(suite, Path("cache"))
    assert sorted(r.kv_cache for r in runs) == ["q4_0", "q8_0"]
    ref = _reference_run("llama-cpp:q8_0", runs[0], suite, Path("cache"))
    assert ref.kv_cache is None and ref.depth == 0 and ref.sustain_s is None
    assert ref.prompt_file is None


def test_a_suite_context_option_below_n_ctx_is_raised_for_quality(tiny_gguf):
    from edgebench.quality_sweep import fit_context

    run = _planned(tiny_gguf, options={"n_ctx": 512, "n_batch": 512})
    assert fit_context(run, 4096).options == {"n_ctx": 4096, "n_batch": 512}
    assert fit_context(run, 512) is run  # the keys of n_ctx-512 quality rows stay
    assert fit_context(_planned(tiny_gguf, options={}), 4096).options == {}
    assert fit_context(_planned(tiny_gguf, options={"n_ctx": 8192}), 4096).options == {
        "n_ctx": 8192}
