"""Suite parsing (unknown keys, malformed YAML) and expansion tables."""

from pathlib import Path

import pytest

from edgebench.errors import ConfigError
from edgebench.models.registry import Artifact, ResolvedModel
from edgebench.results.schema import run_key
from edgebench.suites.expand import cells, expand
from edgebench.suites.spec import Suite, builtin_suites, load_suite


def _model(name="m", precisions=("q4_k_m",)):
    arts = tuple(Artifact("gguf", p, Path(f"/x/{p}.gguf"), 10, "sha-" + p) for p in precisions)
    return ResolvedModel(name, "sha-" + name, Path("/x"), arts)


def test_builtin_smoke_loads():
    assert "smoke" in builtin_suites()
    s = load_suite("smoke")
    assert s.frameworks == ("llama-cpp",) and s.repetitions >= 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nframewrks: [llama-cpp]\n", "unknown key 'framewrks' (did you mean frameworks?)"),
        ("name: x\nframeworks: [llama-cpp\n", "malformed YAML at line"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("frameworks: [llamacpp]\n", "did you mean llama-cpp?"),
        ("precisions: [q4km]\n", "did you mean q4_k_m?"),
        ("repetitions: 0\n", "repetitions: expected a positive integer, got 0"),
        ("prompt_tokens: [-3]\n", "prompt_tokens[0]: expected a positive integer, got -3"),
        ("exclude: [{framwork: llama-cpp}]\n",
         "exclude[0]: unknown key 'framwork' (did you mean framework?)"),
    ],
)
def test_bad_suite_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_suite(str(path))
    assert message in str(e.value)
    assert str(path) in str(e.value)  # the file is named


def test_missing_suite_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_suite("nope.yaml")


def test_scalar_axes_become_lists(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("frameworks: llama-cpp\nnew_tokens: 8\n")
    s = load_suite(str(path))
    assert s.frameworks == ("llama-cpp",) and s.new_tokens == (8,) and s.name == "s"


def test_cells_product_include_exclude():
    s = Suite(name="t", precisions=("q4_k_m", "q8_0"), new_tokens=(8, 16), threads=(1,),
              exclude=({"precision": "q8_0", "new_tokens": 16},),
              include=({"precision": "q2_k", "new_tokens": 4},))
    got = sorted((c["precision"], c["new_tokens"]) for c in cells(s))
    # 2 x 2 product, minus (q8_0, 16), plus the include
    assert got == [("q2_k", 4), ("q4_k_m", 8), ("q4_k_m", 16), ("q8_0", 8)]


def test_cells_deduplicate():
    s = Suite(name="t", include=({"precision": "q4_k_m"},))
    assert len(cells(s)) == 1


def test_expand_marks_unsupported_and_missing_as_skipped():
    s = Suite(name="t", precisions=("q4_k_m", "q8_0", "int4"), devices=("cpu", "npu"),
              threads=(2,))
    runs = expand(s, lambda name: _model(name))
    by = {(r.precision, r.device): r for r in runs}
    assert len(runs) == 6
    assert by[("q4_k_m", "cpu")].skip_reason is None
    assert by[("q4_k_m", "cpu")].artifact.path == Path("/x/q4_k_m.gguf")
    want = "no gguf q8_0 artifact of gemma-3-270m (available: gguf:q4_k_m)"
    assert want in by[("q8_0", "cpu")].skip_reason
    assert "does not run precision int4" in by[("int4", "cpu")].skip_reason
    assert "has no device npu" in by[("q4_k_m", "npu")].skip_reason


def test_expand_resolves_each_model_once_and_auto_threads():
    calls = []

    def resolve(name):
        calls.append(name)
        return _model(name)

    runs = expand(Suite(name="t", new_tokens=(1, 2, 3)), resolve)
    assert calls == ["gemma-3-270m"] and len(runs) == 3
    assert all(isinstance(r.threads, int) and r.threads >= 1 for r in runs)


def test_override_replaces_axes_and_revalidates():
    s = load_suite("smoke").override(new_tokens=[5], frameworks=None)
    assert s.new_tokens == (5,) and s.frameworks == ("llama-cpp",)
    with pytest.raises(ConfigError, match="repetitions"):
        s.override(repetitions=0)


def test_run_key_is_stable_and_identity_only():
    ident = dict(model_sha256="a", framework="llama-cpp", precision="q4_k_m", device="cpu",
                 prompt_tokens=8, new_tokens=4, threads=2, options="{}")
    k = run_key(ident)
    assert k == run_key(dict(reversed(list(ident.items()))))  # key order does not matter
    assert k == run_key({**ident, "suite": "other", "repetitions": 9})  # not identity
    assert k != run_key({**ident, "threads": 4})
    assert len(k) == 16 and k == f"{int(k, 16):016x}"


def test_planned_run_key_matches_record_identity():
    (r,) = expand(Suite(name="t", threads=(2,)), lambda n: _model(n))
    assert r.run_key == run_key(r.identity)
    (r2,) = expand(Suite(name="other", threads=(2,), repetitions=2), lambda n: _model(n))
    assert r2.run_key == r.run_key
