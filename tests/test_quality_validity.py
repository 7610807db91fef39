"""Validity of quality rows (docs/validity.md, Quality): the row's identity holds its reference,
BOS comes from the model's vocabulary, scored_tok_s times only the logits passes, and every row
carries the KLD floor of the reference's storage."""

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_llama
from edgebench.harness import quality as q
from edgebench.harness import registry
from edgebench.harness.device import fingerprint
from edgebench.harness.measure import RunContext, record_for
from edgebench.harness.quality_run import (
    QualitySpec,
    measure_quality,
    quality_identity,
    reference_complete,
)
from edgebench.harness.runner import LoadInfo, RunnerInfo
from edgebench.models.registry import Artifact
from edgebench.results.schema import run_key
from edgebench.suites.expand import PlannedRun

CTX = RunContext("sess", fingerprint())
VOCAB = 50
N_CTX = 8


# --- run_key --------------------------------------------------------------------------------

SPEED = dict(model_sha256="a" * 64, framework="llama-cpp", precision="q4_k_m", device="cpu",
             prompt_tokens=128, new_tokens=64, threads=2, options="{}")


@pytest.mark.parametrize("identity, expected", [
    # keys computed by the code before quality identities held their reference: speed keys
    # must never change
    (SPEED, "a17b8febcbb382a9"),
    ({**SPEED, "kind": "speed"}, "a17b8febcbb382a9"),
    ({**SPEED, "kind": "speed", "quality_reference": "llama-cpp:f16", "n_ctx": 512,
      "reference_sha256": "r" * 64, "corpus_sha256": "c" * 64, "chunks": 4},
     "a17b8febcbb382a9"),
    (dict(model_sha256="b" * 64, framework="openvino", precision="int4", device="gpu",
          prompt_tokens=512, new_tokens=128, threads=4, options='{"n_ctx":2048}', kind=None,
          suite="x"), "c26eab2985c3b3e8"),
    (dict(model_sha256=None, framework="mlx", precision="4bit", device="metal",
          prompt_tokens=8, new_tokens=4, threads=1, options="{}"), "24a98dcdf9321117"),
])
def test_speed_keys_are_unchanged(identity, expected):
    assert run_key(identity) == expected


QUALITY = {**SPEED, "prompt_tokens": 512, "new_tokens": 0, "kind": "quality",
           "corpus_sha256": "c" * 64, "chunks": 4, "n_ctx": 512,
           "quality_reference": "llama-cpp:f16", "reference_sha256": "r" * 64}


@pytest.mark.parametrize("field, other", [
    ("quality_reference", "ort-genai:fp32"), ("reference_sha256", "s" * 64),
    ("n_ctx", 256), ("corpus_sha256", "d" * 64), ("chunks", 2)])
def test_quality_key_changes_with_each_protocol_field(field, other):
    assert run_key({**QUALITY, field: other}) != run_key(QUALITY)


def _run(framework="slowfake", precision="q8_0", model_sha="m" * 64):
    return PlannedRun(
        model="m", model_sha256=model_sha, framework=framework, precision=precision,
        device="cpu", prompt_tokens=16, new_tokens=4, threads=2, options={}, suite="t",
        repetitions=1, warmup=0, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", precision, Path("/nowhere.gguf"), 123, "a" * 64))


def _spec(tmp_path, **over):
    chunks = tuple(tuple(range(i * N_CTX, (i + 1) * N_CTX)) for i in range(2))
    base = dict(corpus="c", corpus_sha256="c" * 64, n_ctx=N_CTX, chunks=chunks,
                reference_dir=str(tmp_path / "ref"), reference_label="llama-cpp:f16",
                reference_sha256="r" * 64)
    return QualitySpec(**{**base, **over})


@pytest.mark.parametrize("change", [
    dict(reference_label="ort-genai:fp32"),
    dict(reference_sha256="s" * 64),
    dict(corpus_sha256="d" * 64),
    dict(n_ctx=16, chunks=tuple(tuple(range(16)) for _ in range(2))),
    dict(chunks=(tuple(range(N_CTX)),)),
])
def test_quality_key_holds_the_reference_and_the_protocol(tmp_path, change):
    run = _run()
    assert run_key(quality_identity(run, _spec(tmp_path))) != \
        run_key(quality_identity(run, _spec(tmp_path, **change)))
    assert run_key(quality_identity(run, _spec(tmp_path))) != run.run_key


def test_resume_measures_again_against_another_reference(tmp_path, monkeypatch):
    from edgebench import quality_sweep

    measured = []

    def fake_isolated(run, ctx, measure_fn):
        measured.append(run.precision)
        return record_for(run, ctx, "ok")

    monkeypatch.setattr(quality_sweep, "run_isolated", fake_isolated)
    run = _run()
    first = _spec(tmp_path)
    done = {run_key(quality_identity(run, first)): {}}
    assert quality_sweep._one(run, CTX, tmp_path, lambda r: first, done) is None
    other = _spec(tmp_path, reference_label="openvino:fp16", reference_sha256="o" * 64)
    row = quality_sweep._one(run, CTX, tmp_path, lambda r: other, done)
    assert row is not None and measured == ["q8_0"]
    assert row.run_key == run_key(quality_identity(run, other))
    assert row.quality_reference == "openvino:fp16"


def test_resume_measures_again_after_a_runtime_upgrade(tmp_path, monkeypatch):
    """Quality --resume follows the speed sweep's rule: a row measured with another runtime
    version (or another artifact) is measured again, and says why."""
    from edgebench import api, quality_sweep

    measured = []
    monkeypatch.setattr(quality_sweep, "run_isolated",
                        lambda run, ctx, fn: measured.append(run) or record_for(run, ctx, "ok"))
    monkeypatch.setattr(api, "installed_version", lambda fw: "2.0")
    run = _run()
    spec = _spec(tmp_path)
    key = run_key(quality_identity(run, spec))
    same = {key: {"framework_version": "2.0", "artifact_sha256": "a" * 64}}
    assert quality_sweep._one(run, CTX, tmp_path, lambda r: spec, same) is None
    older = {key: {"framework_version": "1.0", "artifact_sha256": "a" * 64}}
    row = quality_sweep._one(run, CTX, tmp_path, lambda r: spec, older)
    assert len(measured) == 1 and "re-measured: slowfake 1.0 -> 2.0" in row.message
    remade = {key: {"framework_version": "2.0", "artifact_sha256": "b" * 64}}
    row = quality_sweep._one(run, CTX, tmp_path, lambda r: spec, remade)
    assert len(measured) == 2 and "re-measured: artifact changed" in row.message


# --- BOS from the vocabulary ----------------------------------------------------------------

def test_chunks_without_bos_are_plain_slices():
    ids = list(range(10, 31))
    assert q.chunk_tokens(ids, 8, bos=None) == [list(range(10, 18)), list(range(18, 26))]
    assert q.chunk_tokens(ids, 8, bos=None, max_chunks=1) == [list(range(10, 18))]


def _gguf_with_vocab(path, add_bos, bos_id=1):
    """A tiny GGUF whose vocabulary llama.cpp loads (SentencePiece-style, byte fallback)."""
    import gguf

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [
        "\u2581", "\u2581the", "\u2581a", "\u2581of", "e", "t", "a", "o", "n", "s"]
    types = [2, 3, 3] + [6] * 256 + [1] * 10
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(10)])
    w.add_token_types(types)
    w.add_bos_token_id(bos_id)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(False)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("add_bos, expected", [(True, 5), (False, None)])
def test_gguf_vocabulary_says_whether_bos_is_added(tmp_path, add_bos, expected):
    import gguf

    from edgebench.harness.prompt import vocab_bos

    path = tmp_path / "v.gguf"
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_context_length(128)
    w.add_bos_token_id(5)
    w.add_add_bos_token(add_bos)
    w.add_tensor("a", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert vocab_bos(path) == expected


@needs_llama
@pytest.mark.parametrize("add_bos", [True, False])
def test_gguf_prompt_and_corpus_get_bos_only_when_the_vocabulary_adds_it(tmp_path, add_bos):
    from edgebench.harness.corpus import Corpus, corpus_ids
    from edgebench.harness.prompt import prompt_ids, vocab_bos

    path = _gguf_with_vocab(tmp_path / "v.gguf", add_bos)
    bos = vocab_bos(path)
    assert bos == (1 if add_bos else None)
    ids = prompt_ids("f" * 64, path, 20, tmp_path / "cache")
    assert len(ids) == 20 and (ids[0] == 1) == add_bos and ids.count(1) == int(add_bos)
    text = Corpus("t", "the a of " * 40, "e" * 64)
    cids = corpus_ids(text, "f" * 64, path, tmp_path / "cache")
    assert (cids[0] == 1) == add_bos
    chunks = q.chunk_tokens(cids, 8, bos=bos)
    if add_bos:
        assert all(c[0] == 1 for c in chunks) and chunks[0] == cids[:8]
    else:
        assert chunks[0] == cids[:8] and chunks[1] == cids[8:16] and 1 not in sum(chunks, [])


def _hf_folder(path, post_bos, config_add_bos):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[UNK]": 0, "<bos>": 1, "<eos>": 2, "the": 3, "a": 4, "of": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if post_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", 1)])
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    if config_add_bos is not None:
        (path / "tokenizer_config.json").write_text(json.dumps(
            {"add_bos_token": config_add_bos, "bos_token": "<bos>"}))
    return path


@pytest.mark.parametrize("post_bos, config_add_bos, expected", [
    (True, None, 1),  # the post-processor puts <bos> first
    (False, None, None),  # nothing does
    (True, False, None),  # tokenizer_config.json turns it off (as transformers would)
    (False, True, 1),  # ... or on
])
def test_hf_folder_bos_from_its_tokenizer(tmp_path, post_bos, config_add_bos, expected):
    from edgebench.harness.prompt import prompt_ids, tokenize_text, vocab_bos

    folder = _hf_folder(tmp_path / "tok", post_bos, config_add_bos)
    assert vocab_bos(folder) == expected
    ids = prompt_ids("h" * 64, folder, 12, tmp_path / "cache")
    assert len(ids) == 12 and (ids[0] == 1) == (expected == 1) and ids.count(1) <= 1
    assert tokenize_text(folder, "the a of")[:1] == ([1] if expected else [3])


# --- scored_tok_s: only the logits passes ---------------------------------------------------

SLOW_FIRST_S = 1.0
PASS_S = 0.02


def _logits(ids):
    rng = np.random.default_rng(sum(ids))
    return rng.normal(size=(len(ids), VOCAB)).astype(np.float32) * 3


class SlowUnlessLogitsOnly:
    """Like llama.cpp without ``logits_all`` or OpenVINO before compile: the first logits()
    call pays a reload/compile unless load() was told the run needs only logits."""

    LOGITS_METHOD = "fake logits"
    noise = 0.0
    cost = SLOW_FIRST_S

    def probe(self):
        return RunnerInfo("slowfake", "1.0", ("cpu",))

    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        self.pending = 0.0 if logits_only else self.cost
        if logits_only:
            time.sleep(self.cost)  # the reload/compile, at load, before any clock
        return LoadInfo(0.01, "FAKE-CPU", options, threads_applied=True)

    def logits(self, ids):
        time.sleep(PASS_S + self.pending)
        self.pending = 0.0
        out = _logits(ids)
        if self.noise:
            out += np.random.default_rng(1).normal(size=out.shape).astype(np.float32) * self.noise
        return out

    def close(self):
        pass


class IgnoresLogitsOnly(SlowUnlessLogitsOnly):
    def load(self, artifact, device, threads, options, context_tokens, logits_only=False):
        return super().load(artifact, device, threads, options, context_tokens, False)


class QuickLogits(SlowUnlessLogitsOnly):
    cost = 0.0


class NoisyLogits(QuickLogits):
    noise = 0.3


@pytest.fixture
def fake_frameworks(monkeypatch):
    base = registry.FRAMEWORKS["llama-cpp"]
    for name, cls in (("slowfake", "SlowUnlessLogitsOnly"), ("ignores", "IgnoresLogitsOnly"),
                      ("noisy", "NoisyLogits"), ("quick", "QuickLogits")):
        spec = dataclasses.replace(base, name=name, target=f"test_quality_validity:{cls}")
        monkeypatch.setitem(registry.FRAMEWORKS, name, spec)


def test_scored_tok_s_excludes_the_logits_only_load(tmp_path, fake_frameworks):
    spec = _spec(tmp_path, write_reference=True)
    row = measure_quality(_run(), CTX, spec)
    assert row.status == "ok", row.message
    scored = 2 * (N_CTX // 2 - 1)
    assert row.tokens_scored == scored
    # two passes of PASS_S each: the 1 s the load spent for the logits is not on the clock
    assert row.scored_tok_s > scored / (SLOW_FIRST_S / 2)
    assert row.scored_tok_s <= scored / (2 * PASS_S)
    # the check would catch a runner (or a harness) that pays the reload inside logits()
    slow = measure_quality(_run("ignores"), CTX, dataclasses.replace(spec,
                                                                     write_reference=False))
    assert slow.status == "ok", slow.message
    assert slow.scored_tok_s < scored / SLOW_FIRST_S


# --- KLD floor of the stored reference ------------------------------------------------------

def test_rows_carry_the_floor_of_the_reference_storage(tmp_path, fake_frameworks):
    spec = _spec(tmp_path, write_reference=True)
    ref = measure_quality(_run("quick", precision="f16"), CTX, spec)
    assert ref.status == "ok", ref.message
    ref_dir = Path(spec.reference_dir)
    assert np.load(ref_dir / "chunk0.lp.npy").dtype == np.uint16  # 2 bytes per logit
    floor = np.concatenate([np.load(ref_dir / f"chunk{i}.floor.npy") for i in range(2)])
    assert ref.kld_floor_mean == pytest.approx(floor.mean())
    assert ref.kld_floor_p99 == pytest.approx(np.percentile(floor, 99))
    # the reference against its stored copy is exactly the floor
    assert ref.kld_mean == pytest.approx(ref.kld_floor_mean)
    assert 0 <= ref.kld_floor_mean < 1e-6 and ref.reference_storage == q.REFERENCE_STORAGE
    run = measure_quality(_run("noisy"), CTX, dataclasses.replace(spec, write_reference=False))
    assert run.status == "ok", run.message
    assert (run.kld_floor_mean, run.kld_floor_p99) == (ref.kld_floor_mean, ref.kld_floor_p99)
    assert run.kld_mean > 100 * run.kld_floor_mean
    assert run.reference_storage == q.REFERENCE_STORAGE


def test_an_old_float16_reference_cache_is_not_read(tmp_path, fake_frameworks):
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    for i in range(2):
        lp = q.scored_logprobs(_logits(list(range(N_CTX))), N_CTX)
        np.save(ref_dir / f"chunk{i}.lp.npy", lp.astype(np.float16))
        np.save(ref_dir / f"chunk{i}.nll.npy", np.ones(3))
    assert not reference_complete(ref_dir, 2)  # no floor: written by an older edgebench
    for i in range(2):
        np.save(ref_dir / f"chunk{i}.floor.npy", np.zeros(3))
    row = measure_quality(_run("quick"), CTX, _spec(tmp_path))
    assert row.status == "error" and "float16" in row.message


def test_a_fresh_reference_cell_is_scored_once(tmp_path, fake_frameworks, monkeypatch):
    """The suite's own reference cell, when the reference was just written in this session,
    is not scored a second time (the check ran before the reference row existed)."""
    from edgebench import quality_sweep
    from edgebench.results.store import Store

    ref, q8 = _run("quick", precision="f16"), _run("quick", precision="q8_0")
    chunks = tuple(tuple(range(i * N_CTX, (i + 1) * N_CTX)) for i in range(2))
    monkeypatch.setattr(quality_sweep, "quality_runs", lambda suite, cache: [ref, q8])
    monkeypatch.setattr(quality_sweep, "corpus_chunks", lambda *a: ("m" * 64, chunks))
    monkeypatch.setattr(quality_sweep, "_reference_run", lambda *a: ref)
    monkeypatch.setattr(quality_sweep, "run_isolated", lambda run, ctx, fn: fn(run, ctx))
    out = quality_sweep.run_quality(None, Store(tmp_path / "s"), tmp_path / "cache", n_ctx=N_CTX,
                                    chunks=2, reference="quick:f16")
    assert [r.precision for r in out.rows] == ["f16", "q8_0"], [r.message for r in out.rows]
    assert all(r.status == "ok" for r in out.rows) and out.resumed == [ref]


def test_storage_floor_is_below_float16s_on_peaked_distributions():
    """Log-probs shaped like an LM's (a few likely tokens, a long tail)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 4096)).astype(np.float32) * 4
    logits[:, :3] += rng.uniform(8, 16, size=(64, 3)).astype(np.float32)
    lp = q.log_softmax(logits)
    stored = q.decode_logprobs(q.encode_logprobs(lp))
    assert np.abs(stored - lp)[lp > -30].max() < 2.0 ** -11  # half a step + renormalization
    floor = q.kl_divergence(stored, lp)
    # float16 (unnormalized on read) gives KLDs of either sign: compare sizes
    f16 = np.abs(q.kl_divergence(lp.astype(np.float16).astype(np.float32), lp))
    assert np.abs(floor).mean() < f16.mean() / 100
    assert np.percentile(np.abs(floor), 99) < np.percentile(f16, 99) / 100
    assert floor.min() > -1e-6  # a distribution: negative only by float32 rounding


def test_rows_carry_per_chunk_values_for_paired_comparisons(tmp_path, fake_frameworks):
    """chunk_nll / chunk_kld: one mean per chunk, in order; equal chunk sizes make their
    means the row's perplexity and KLD (what a paired, chunk-level bootstrap resamples)."""
    spec = _spec(tmp_path, write_reference=True)
    measure_quality(_run("quick", precision="f16"), CTX, spec)
    run = measure_quality(_run("noisy"), CTX, dataclasses.replace(spec, write_reference=False))
    assert run.status == "ok", run.message
    assert len(run.chunk_nll) == len(run.chunk_kld) == len(spec.chunks) == 2
    assert np.exp(np.mean(run.chunk_nll)) == pytest.approx(run.ppl)
    assert np.mean(run.chunk_kld) == pytest.approx(run.kld_mean)
