"""The roofline (docs/roofline.md): bytes per token with hand-computed tables, the bandwidth
cache, ``--bandwidth-gbs`` and a fake run's row."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import fakes
from conftest import make_record, run_main
from edgebench import api
from edgebench.harness import registry, roofline
from edgebench.harness.measure import measure
from edgebench.harness.roofline import Arch, Weights
from edgebench.locations import cache_dir
from edgebench.models.registry import Artifact
from edgebench.results.store import Store
from edgebench.suites.expand import PlannedRun

# Gemma 3 270M (its GGUF header, HF config.json and ORT genai_config.json agree): 18 layers,
# 1 KV head of 256 (K and V), sliding window 512 on 15 layers (5 of every 6), 3 full; a
# 262,144 x 640 embedding tied to the output head. One cached position of one layer in f16:
# 1 x (256 + 256) x 2 bytes = 1,024 B.
GEMMA = Arch(layers=18, kv_heads=1, key_dim=256, value_dim=256, sliding_window=512,
             sliding_layers=15, vocab=262144, hidden=640)
# Weight data of the GGUF files (sum of their tensors' bytes, the tied token_embd included:
# Q8_0 in q4_k_m and q8_0, 178,257,920 B; F16 in f16, 335,544,320 B).
GEMMA_WEIGHTS = {"q4_k_m": 246_587_904, "q8_0": 285_018_624, "f16": 536_308_224}

# P=64, N=64: decode steps attend to 65..127 positions, mean 96 (< 512: no layer capped);
#   KV = 18 x 96 x 1,024 = 1,769,472 B.
# P=1024, N=512: full layers 1,024 + 256 = 1,280 positions, sliding ones 512;
#   KV = (3 x 1,280 + 15 x 512) x 1,024 = 3,932,160 + 7,864,320 = 11,796,480 B.
# P=500, N=26: steps attend to 501..525 (mean 513); sliding layers min(c, 512): 501..512 then
#   13 x 512 -> (6,078 + 6,656) / 25 = 509.36; KV = (3 x 513 + 15 x 509.36) x 1,024
#   = 9,179.4 x 1,024 = 9,399,705.6 B.
KV_TABLE = [(64, 64, 1_769_472), (1024, 512, 11_796_480), (500, 26, 9_399_705.6)]


@pytest.mark.parametrize("prompt,new,kv", KV_TABLE)
def test_kv_bytes_of_gemma_3_270m(prompt, new, kv):
    assert roofline.kv_read_bytes(GEMMA, prompt, new) == pytest.approx(kv)


@pytest.mark.parametrize("precision,expected", [
    ("q4_k_m", 246_587_904 + 1_769_472), ("q8_0", 285_018_624 + 1_769_472),
    ("f16", 536_308_224 + 1_769_472)])
def test_bytes_per_token_of_gemma_3_270m(precision, expected):
    # tied embedding: read whole every token as the output head, nothing subtracted
    got = roofline.bytes_per_token(Weights(GEMMA_WEIGHTS[precision]), GEMMA, 64, 64)
    assert got == pytest.approx(expected)


def test_sliding_window_caps_the_cache_read():
    capped = roofline.kv_read_bytes(GEMMA, 4096, 2)  # one step at 4,097 positions
    assert capped == pytest.approx((3 * 4097 + 15 * 512) * 1024)
    uncapped = dataclasses.replace(GEMMA, sliding_layers=0, sliding_window=None)
    assert roofline.kv_read_bytes(uncapped, 4096, 2) == pytest.approx(18 * 4097 * 1024)


def test_cache_types_change_the_kv_bytes():
    q8 = 34 / 32  # ggml q8_0: 32 values in 34 bytes
    assert roofline.kv_element_bytes("llama-cpp", "cpu", {"type_k": 8, "type_v": "q8_0"}) \
        == (pytest.approx(q8), pytest.approx(q8))
    assert roofline.kv_read_bytes(GEMMA, 64, 64, k_bytes=q8, v_bytes=q8) \
        == pytest.approx(18 * 96 * 512 * q8)  # 940,032 B
    assert roofline.kv_element_bytes("llama-cpp", "cpu", {}) == (2.0, 2.0)
    assert roofline.kv_element_bytes("ort-genai", "cpu", {}) == (4.0, 4.0)
    assert roofline.kv_element_bytes("openvino", "cpu", {"KV_CACHE_PRECISION": "u8"}) \
        == (1.0, 1.0)


def test_an_untied_embedding_counts_one_gathered_row():
    arch = dataclasses.replace(GEMMA, vocab=4)
    assert roofline.bytes_per_token(Weights(1024, gathered=256), arch, 1, 1) \
        == pytest.approx(1024 - 256 + 64 + roofline.kv_read_bytes(arch, 1, 1))


@pytest.mark.parametrize("tok_s,bpt,gbs,pct", [
    (50.0, 2e8, 20.0, 50.0), (71.7, 248_357_376, 30.0, 71.7 * 248_357_376 / 30e9 * 100),
    (None, 2e8, 20.0, None), (50.0, None, 20.0, None), (50.0, 2e8, None, None),
    (50.0, 2e8, 0.0, None)])
def test_roofline_pct_arithmetic(tok_s, bpt, gbs, pct):
    got = roofline.roofline_pct(tok_s, bpt, gbs)
    assert got == (pytest.approx(pct) if pct is not None else None)


def _gemma_like_gguf(path: Path, untied: bool = False) -> Path:
    """6 layers (5 sliding: gemma3's 5+1 pattern), window 4, 1 KV head of 8, vocab 4, and
    768 B of tensors (a 4 x 16 f32 embedding: 256 B; a 16 x 16 f16 matrix: 512 B), plus a
    256 B output head when ``untied``."""
    import gguf

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_file_type(1)
    w.add_context_length(128)
    w.add_block_count(6)
    w.add_embedding_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_key_length(8)
    w.add_value_length(8)
    w.add_sliding_window(4)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "a"])
    w.add_tensor("token_embd.weight", np.zeros((4, 16), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((16, 16), dtype=np.float16))
    if untied:
        w.add_tensor("output.weight", np.zeros((4, 16), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_shapes_from_a_gguf_header(tmp_path):
    weights, arch = roofline.gguf_shapes(_gemma_like_gguf(tmp_path / "m.gguf"))
    assert weights == Weights(768, 0)
    assert arch == Arch(6, 1, 8, 8, 4, 5, 4, 16)
    # P=4, N=4: steps at 5, 6, 7 positions; full layer 6, sliding 5 x 4; 32 B a position
    assert roofline.bytes_per_token(weights, arch, 4, 4) == pytest.approx(768 + 26 * 32)
    weights, _ = roofline.gguf_shapes(_gemma_like_gguf(tmp_path / "u.gguf", untied=True))
    assert weights == Weights(1024, 256)


def test_shapes_of_the_real_gemma_gguf():
    path = cache_dir() / "models" / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        pytest.skip("Gemma 3 270M is not assembled in the cache yet")
    assert roofline.gguf_shapes(path) == (Weights(GEMMA_WEIGHTS["q4_k_m"]), GEMMA)


def test_shapes_from_hf_and_genai_configs(tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({
        "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 256, "hidden_size": 640, "vocab_size": 262144, "sliding_window": 512,
        "layer_types": ["sliding_attention"] * 5 + ["full_attention"] + ["sliding_attention"]
        * 5 + ["full_attention"] + ["sliding_attention"] * 5 + ["full_attention"],
        "tie_word_embeddings": True}))
    assert roofline.folder_shapes(hf) == (True, GEMMA)
    ort = tmp_path / "ort"
    ort.mkdir()
    (ort / "genai_config.json").write_text(json.dumps({"model": {
        "vocab_size": 262144, "decoder": {
            "head_size": 256, "hidden_size": 640, "num_hidden_layers": 18,
            "num_key_value_heads": 1, "sliding_window": {
                "window_size": 512, "layers": [i for i in range(18) if i % 6 < 5]}}}}))
    assert roofline.folder_shapes(ort) == (None, GEMMA)


# ---- bandwidth -----------------------------------------------------------------------------

def test_measure_bandwidth_tiny_buffer():
    bw = roofline.measure_bandwidth(2, size_mib=1, repeats=2)
    assert bw.gbs > 0 and bw.threads == 2
    assert bw.method == "numpy copy 1 MiB x2, best, 2 threads (read+write bytes)"


def test_bandwidth_is_cached_per_machine_and_threads(tmp_path, quiet):
    calls = []

    def fake(threads):
        calls.append(threads)
        return roofline.Bandwidth(10.0 * threads, f"fake {threads}", "2026-01-01", threads)

    got = roofline.machine_bandwidth(2, tmp_path, machine="m1", measure=fake)
    # one thread and the run's two are measured; the best is the machine's figure
    assert (got.gbs, got.method, got.threads, calls) == (20.0, "fake 2", 2, [1, 2])
    assert roofline.machine_bandwidth(2, tmp_path, machine="m1", measure=fake).gbs == 20.0
    assert calls == [1, 2]  # cached
    roofline.machine_bandwidth(1, tmp_path, machine="m1", measure=fake)
    roofline.machine_bandwidth(2, tmp_path, machine="m2", measure=fake)
    assert calls == [1, 2, 1, 1, 2]  # another thread count, another machine: measured
    hit = roofline.cached_bandwidth(tmp_path, machine="m1")
    assert hit["gbs"] == 20.0 and hit["threads"] == 2 and hit["method"] == "fake 2"
    assert hit["measured_at"] == "2026-01-01" and hit["machine_id"] == "m1"
    assert json.loads((tmp_path / "bandwidth" / "m1.json").read_text())["threads"]["1"]["gbs"] \
        == 10.0
    assert roofline.cached_bandwidth(tmp_path, machine="m3") is None
    (tmp_path / "bandwidth" / "m1.json").write_text("{not json")
    assert roofline.cached_bandwidth(tmp_path, machine="m1") is None  # damaged: measured again
    roofline.machine_bandwidth(2, tmp_path, machine="m1", measure=fake)
    assert calls == [1, 2, 1, 1, 2, 1, 2]


def test_one_thread_can_be_the_machines_best_and_a_busy_measurement_is_never_cached(
        tmp_path, monkeypatch, quiet):
    from edgebench.harness import busy

    def fake(threads):  # a VM where two copying threads are slower than one
        return roofline.Bandwidth({1: 30.0, 2: 25.0}[threads], f"fake {threads}", "t", threads)

    got = roofline.machine_bandwidth(2, tmp_path, machine="vm", measure=fake)
    assert (got.gbs, got.method, got.threads) == (30.0, "fake 1", 2)

    class Busy:
        def start(self):
            return self

        def stop(self):
            pass

        def columns(self):
            return {"machine_busy": True}

    monkeypatch.setattr(busy, "NoiseProbe", Busy)
    got = roofline.machine_bandwidth(4, tmp_path, machine="vm",
                                     measure=lambda t: roofline.Bandwidth(9.0, "fake", "t", t))
    assert got.gbs == 9.0 and got.method.endswith("(machine busy: not cached)")
    assert roofline.cached_bandwidth(tmp_path, threads=4, machine="vm") is None


class _Quiet:  # busy.NoiseProbe on a quiet machine, whatever this one is doing
    def start(self):
        return self

    def stop(self):
        pass

    def columns(self):
        return {"machine_busy": False}


@pytest.fixture
def quiet(monkeypatch):
    from edgebench.harness import busy

    monkeypatch.setattr(busy, "NoiseProbe", _Quiet)


def test_sweep_bandwidth_measures_lazily_and_only_for_cpu_rows(tmp_path, quiet):
    calls = []
    sweep = roofline.SweepBandwidth(None, tmp_path, measure=lambda t: calls.append(t) or
                                    roofline.Bandwidth(5.0, "fake", None, t))
    skipped = make_record(status="skipped")
    gpu = make_record(device="cuda", measurement="measured", kind="speed")
    assert sweep.fill(skipped) is skipped and sweep.fill(gpu) is gpu and calls == []
    row = sweep.fill(make_record(measurement="measured", kind="speed", threads=1))
    assert (row.bandwidth_gbs, row.bandwidth_method, calls) == (5.0, "fake", [1])
    declared = roofline.SweepBandwidth(50.0, tmp_path).fill(gpu)
    assert (declared.bandwidth_gbs, declared.bandwidth_method) == (50.0, roofline.GIVEN)


def test_bandwidth_flag_must_be_a_number(capsys):
    for bad in ("abc", "0", "-1", "nan"):
        code, _, err = run_main(["run", "--bandwidth-gbs", bad, "-q"], capsys)
        assert code == 2
        assert err.startswith("error:") and "--bandwidth-gbs" in err
        assert len(err.strip().splitlines()) == 1


def test_a_fake_run_row_gets_roofline_pct(tmp_path, monkeypatch):
    base = registry.FRAMEWORKS["llama-cpp"]
    monkeypatch.setitem(registry.FRAMEWORKS, "fake",
                        dataclasses.replace(base, name="fake", target="fakes:FakeRunner"))
    fakes.FakeRunner.calls.clear()
    monkeypatch.setattr(api, "run_isolated", measure)  # in process: no child to spawn
    monkeypatch.setattr(api, "prompt_ids", lambda sha, path, n, cache: [2, 7, 9, 4][:n])
    model = _gemma_like_gguf(tmp_path / "m.gguf")
    run = PlannedRun(
        model="m", model_sha256="sha", framework="fake", precision="f16", device="cpu",
        prompt_tokens=4, new_tokens=5, threads=1, options={}, suite="t", repetitions=3,
        warmup=1, cooldown_s=0.0, timeout_s=60.0,
        artifact=Artifact("gguf", "f16", model, model.stat().st_size, "asha"))
    suite = api.make_suite("smoke", models=[str(model)])
    out = api.run_suite(suite, Store(tmp_path / "store"), tmp_path / "cache", runs=[run],
                        bandwidth_gbs=0.001)
    (row,) = out.rows
    assert row.status == "ok", row.message
    # steps at 5..8 positions: full layer 6.5, 5 sliding layers 4 each -> 26.5 x 32 B
    assert row.bytes_per_token == pytest.approx(768 + 26.5 * 32)
    assert (row.bandwidth_gbs, row.bandwidth_method) == (0.001, "given: --bandwidth-gbs")
    # decode median 1000/22 tok/s (FakeRunner) x 1,616 B / 10^6 B/s
    assert row.roofline_pct == pytest.approx(1000 / 22 * 1616 / 1e6 * 100)
    shown = api.results(Store(tmp_path / "store"))
    assert shown["roofline_pct"].tolist() == [pytest.approx(row.roofline_pct)]
    assert not (tmp_path / "cache" / "bandwidth").exists()  # declared: nothing measured
