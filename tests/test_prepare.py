"""Preparation: target parsing, precision classes, bits per weight, the artifact cache, and the
GGUF recipe on the real Gemma 3 270M (llama.cpp's own quantizer)."""

import json
import time

import pytest

from conftest import needs_llama, write_gguf
from edgebench.errors import ConfigError, RunFailed, SchemaMismatch
from edgebench.harness import prepare as prep
from edgebench.harness.prepare.cache import ArtifactCache, artifact_key
from edgebench.harness.prepare.manifest import Manifest, bits_per_weight, precision_class
from edgebench.harness.prepare.recipe import SourceModel
from edgebench.models.gguf_file import read_gguf


@pytest.mark.parametrize("text, message", [
    ("gguf", "must be FORMAT:PRECISION"),
    ("ggfu:q4_k_m", "did you mean gguf?"),
    ("gguf:q4km", "did you mean q4_k_m?"),
    ("gguf:int4", "valid: f32, f16"),
])
def test_bad_targets_list_valid_ones(text, message):
    with pytest.raises(ConfigError, match=message):
        prep.parse_target(text)


def test_parse_target():
    assert str(prep.parse_target("gguf:q2_k")) == "gguf:q2_k"


@pytest.mark.parametrize("precision, cls", [
    ("q2_k", "ultra-low"), ("q3_k_m", "low"), ("q4_k_m", "low"), ("int4", "low"),
    ("q5_k_m", "medium"), ("q8_0", "medium"), ("int8", "medium"), ("f16", "high"),
    ("bf16", "high"), ("f32", "high"),
])
def test_precision_classes(precision, cls):
    assert precision_class(precision) == cls


@pytest.mark.parametrize("weight_bytes, params, bpw", [
    (1_000, 1_000, 8.0),        # one byte per weight
    (34, 32, 8.5),              # Q8_0 block: 32 weights in 2 + 32 bytes
    (144, 256, 4.5),            # Q4_K super-block: 256 weights in 144 bytes
    (640, 192, 640 * 8 / 192),  # the tiny GGUF of conftest: 512 + 128 bytes, 128 + 64 weights
])
def test_bits_per_weight(weight_bytes, params, bpw):
    assert bits_per_weight(weight_bytes, params) == pytest.approx(bpw)


def test_tiny_gguf_bits_per_weight_from_header(tiny_gguf):
    info = read_gguf(tiny_gguf)
    # 128 f32 (32 bits) + 64 f16 (16 bits) weights, no padding inside the data
    assert bits_per_weight(info.data_bytes, info.parameters) == pytest.approx(
        (128 * 32 + 64 * 16) / 192)


def test_artifact_key_changes_with_every_input():
    base = artifact_key("sha", "gguf", "q8_0", {"llama-cpp-python": "1"})
    assert base == artifact_key("sha", "gguf", "q8_0", {"llama-cpp-python": "1"})
    assert base != artifact_key("sha2", "gguf", "q8_0", {"llama-cpp-python": "1"})
    assert base != artifact_key("sha", "gguf", "q6_k", {"llama-cpp-python": "1"})
    assert base != artifact_key("sha", "gguf", "q8_0", {"llama-cpp-python": "2"})


def test_failed_build_leaves_nothing_in_the_cache(tmp_path):
    cache = ArtifactCache(tmp_path)
    with pytest.raises(OSError), cache.building("gguf", "k1") as tmp:
        (tmp / "half.gguf").write_bytes(b"x" * 100)
        raise OSError(28, "No space left on device")
    assert cache.get("gguf", "k1") is None
    assert list((tmp_path / "artifacts" / "gguf").iterdir()) == []


def test_manifest_of_another_version_refused(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"manifest_version": 0}))
    with pytest.raises(SchemaMismatch, match="manifest version 0"):
        Manifest.read(folder)


@needs_llama
def test_converter_failure_shows_its_own_last_lines(tmp_path):
    # a valid GGUF header with no real model in it: llama.cpp's loader refuses it
    src = write_gguf(tmp_path / "broken-f16.gguf", file_type=1)
    source = SourceModel("broken", "sha-broken", src, "gguf", "f16")
    with pytest.raises(RunFailed) as e:
        prep.prepare(source, prep.Target("gguf", "q8_0"), tmp_path / "cache")
    assert "llama.cpp quantizer failed (q8_0" in str(e.value)
    # the quantizer's own last log line names what is missing
    assert "key not found in model: gemma3.embedding_length" in str(e.value)
    assert ArtifactCache(tmp_path / "cache").manifests() == []


@needs_llama
def test_gguf_q8_0_from_gemma_then_cache_hit():
    from edgebench import api
    from edgebench.harness.runners.llama_cpp import LlamaCppRunner
    from edgebench.locations import cache_dir

    cache = cache_dir()
    (man,) = api.prepare("gemma-3-270m", ["gguf:q8_0"], cache)
    path = prep.artifact_path(man, cache)
    info = read_gguf(path)
    assert info.precision == "q8_0" and man.precision_class == "medium"
    assert man.parameters == info.parameters == 268_098_176
    assert man.bits_per_weight == pytest.approx(info.data_bytes * 8 / info.parameters)
    assert 8.0 < man.bits_per_weight < 9.0  # Q8_0 is 8.5 bits; small norms stay f32
    assert man.size_bytes == path.stat().st_size
    assert man.source_precision == "q4_k_m" and "Q4_K_M" in man.notes[0]
    assert man.tool_versions["llama-cpp-python"]
    start = time.perf_counter()
    (again,) = api.prepare("gemma-3-270m", ["gguf:q8_0"], cache)
    assert time.perf_counter() - start < 1.0 and again == man  # a hit costs no conversion
    # the artifact loads in its runtime and generates
    r = LlamaCppRunner()
    r.load(path, "cpu", 2, {}, context_tokens=32)
    try:
        ids = r.tokenize("Hello")
        assert len(r.generate(ids, 4).token_ids) == 4
    finally:
        r.close()
    # and a suite asking for q8_0 now finds it without preparing
    (run,) = api.plan(api.make_suite("smoke", precisions=["q8_0"]), cache)
    assert run.prepare is None and run.artifact.path == path
    assert run.artifact.bits_per_weight == pytest.approx(man.bits_per_weight)


@needs_llama
def test_gguf_notes_say_what_the_quantizer_really_stored():
    from edgebench import api
    from edgebench.locations import cache_dir

    (man,) = api.prepare("gemma-3-270m", ["gguf:q2_k"], cache_dir())
    info = read_gguf(prep.artifact_path(man, cache_dir()))
    counts = ", ".join(f"{t} x{n}" for t, n in sorted(info.tensor_types.items(),
                                                       key=lambda kv: -kv[1]))
    assert f"tensor types: {counts}" in man.notes
    # Gemma 3 270M's 640-wide rows do not split into 256-weight K-quant blocks
    assert "Q2_K" not in info.tensor_types
    assert any("no tensor is stored as Q2_K" in n for n in man.notes)
    assert man.bits_per_weight > 4  # what the file really holds, not the nominal 2 bits
