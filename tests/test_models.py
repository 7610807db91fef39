"""GGUF header validation and model resolution (names, files, folders)."""

import pytest

from conftest import write_gguf
from edgebench.errors import ModelError
from edgebench.models.gguf_file import read_gguf
from edgebench.models.registry import file_sha256, resolve_model


def test_read_tiny_gguf(tiny_gguf):
    info = read_gguf(tiny_gguf)
    assert info.precision == "q8_0" and info.architecture == "gemma3"
    assert info.tensor_count == 2 and info.parameters == 4 * 32 + 64
    # tensor a: 128 f32 = 512 bytes; b starts aligned at 512, 64 f16 = 128 bytes
    assert info.data_bytes == 640
    assert info.context_length == 128
    assert info.tensor_types == {"F32": 1, "F16": 1}


@pytest.mark.parametrize("cut, message", [(10, "cut short"), (-100, "truncated")])
def test_truncated_gguf(tiny_gguf, cut, message):
    data = tiny_gguf.read_bytes()
    tiny_gguf.write_bytes(data[:cut])
    with pytest.raises(ModelError, match=message):
        read_gguf(tiny_gguf)


def test_not_a_gguf(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_text("hello, this is text and not a model at all")
    with pytest.raises(ModelError, match="not a GGUF file"):
        read_gguf(p)


@pytest.mark.parametrize("ftype, precision", [(0, "f32"), (1, "f16"), (15, "q4_k_m"),
                                              (10, "q2_k"), (18, "q6_k"), (32, "bf16")])
def test_file_type_names(tmp_path, ftype, precision):
    assert read_gguf(write_gguf(tmp_path / "m.gguf", file_type=ftype)).precision == precision


def test_resolve_path_and_folder(tmp_path):
    folder = tmp_path / "family"
    folder.mkdir()
    write_gguf(folder / "a-q8.gguf", 7)
    write_gguf(folder / "a-q4.gguf", 15)
    cache = tmp_path / "cache"
    m = resolve_model(str(folder / "a-q8.gguf"), cache)
    assert m.name == "a-q8" and m.artifacts[0].precision == "q8_0"
    assert m.sha256 == file_sha256(folder / "a-q8.gguf", cache)
    fam = resolve_model(str(folder), cache)
    assert {a.precision for a in fam.artifacts} == {"q8_0", "q4_k_m"}
    assert fam.artifact("gguf", "q4_k_m").path.name == "a-q4.gguf"


def test_sha256_memo_follows_file_changes(tmp_path):
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"one")
    assert file_sha256(p, tmp_path / "c") == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two!")  # size changes -> new memo key
    assert file_sha256(p, tmp_path / "c") == hashlib.sha256(b"two!").hexdigest()


@pytest.mark.parametrize("ref, message", [
    ("gemma-3-27m", "did you mean gemma-3-270m?"),
    ("./missing.gguf", "does not exist"),
])
def test_resolve_errors(tmp_path, ref, message):
    with pytest.raises(ModelError, match=message):
        resolve_model(ref, tmp_path)


def test_default_model_resolves_from_pypi_package(tmp_path):
    from edgebench.locations import cache_dir

    m = resolve_model("gemma-3-270m", cache_dir())
    (art,) = m.artifacts
    assert art.precision == "q4_k_m" and art.size_bytes > 200_000_000
    assert m.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
