"""The memory-bandwidth roofline of decoding (docs/roofline.md).

A decode step reads every weight it multiplies and the KV cache it attends to, so
``decode_tok_s x bytes_per_token`` can never exceed the memory bandwidth: ``roofline_pct`` is
how close a runtime gets. The arithmetic (:func:`bytes_per_token`, :func:`kv_read_bytes`,
:func:`roofline_pct`) is pure; :func:`architecture` reads the numbers it needs from the
artifact's header or config; :func:`measure_bandwidth` is a streaming copy benchmark whose
result is cached per machine and thread count, and runs in the sweep's parent process between
runs, never inside a timed one.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgebench.errors import ModelError

#: Bytes per element of the KV cache when nothing says otherwise (llama.cpp's and most
#: runtimes' default cache type is f16).
DEFAULT_KV_BYTES = 2.0
#: Bytes per element of ggml's float cache types; quantized ones come from gguf.constants.
_NAMED_BYTES = {"f32": 4.0, "fp32": 4.0, "f16": 2.0, "fp16": 2.0, "bf16": 2.0, "u8": 1.0,
                "i8": 1.0, "q8_0": 34 / 32, "u4": 0.5}
#: Layers per sliding-window period where the GGUF header does not say which layers slide:
#: llama.cpp's ``set_swa_pattern`` in src/llama-model.cpp (gemma3: 5 sliding + 1 full, gemma2:
#: alternating). Layer ``il`` slides when ``il % n < n - 1``.
SWA_PATTERN = {"gemma3": 6, "gemma2": 2, "cohere2": 4}
#: What ``--bandwidth-gbs`` records as the method.
GIVEN = "given: --bandwidth-gbs"


@dataclass(frozen=True)
class Arch:
    """The shapes a decode step's reads depend on."""

    layers: int
    kv_heads: int
    key_dim: int  # per head
    value_dim: int
    sliding_window: int | None = None
    sliding_layers: int = 0  # layers that attend to at most ``sliding_window`` positions
    vocab: int | None = None
    hidden: int | None = None


@dataclass(frozen=True)
class Weights:
    """What an artifact stores: ``total`` bytes of weight data, of which ``gathered`` bytes
    are an input embedding table that is NOT also the output head (one row of it is read per
    token); 0 when the table is tied to the output head or unknown."""

    total: int
    gathered: int = 0


# ---- pure arithmetic -----------------------------------------------------------------------

def kv_read_bytes(arch: Arch, prompt_tokens: int, new_tokens: int, *,
                  k_bytes: float = DEFAULT_KV_BYTES, v_bytes: float = DEFAULT_KV_BYTES) -> float:
    """Bytes of KV cache one decode step reads, averaged over the decode phase.

    The step that yields token ``i + 1`` (i = 1 .. N-1) attends to ``P + i`` positions, so a
    full-attention layer reads ``P + N/2`` positions on average; a sliding-window layer reads
    ``min(P + i, window)`` (the mean over the same steps). With ``N < 2`` there is no decode
    step and the context is ``P``."""
    steps = [prompt_tokens + i for i in range(1, new_tokens)] or [prompt_tokens]
    full = sum(steps) / len(steps)
    per_position = arch.kv_heads * (arch.key_dim * k_bytes + arch.value_dim * v_bytes)
    positions = (arch.layers - arch.sliding_layers) * full
    if arch.sliding_layers:
        window = arch.sliding_window or math.inf
        positions += arch.sliding_layers * sum(min(s, window) for s in steps) / len(steps)
    return positions * per_position


def bytes_per_token(weights: Weights, arch: Arch | None, prompt_tokens: int, new_tokens: int,
                    *, k_bytes: float = DEFAULT_KV_BYTES,
                    v_bytes: float = DEFAULT_KV_BYTES) -> float:
    """Bytes one decode step reads: the weight data, less an untied input embedding table
    of which one row is gathered (that row counted), plus :func:`kv_read_bytes`. Without an
    ``arch`` the KV cache is left out (the weights alone, a lower bound)."""
    read = float(weights.total)
    if weights.gathered and arch is not None and arch.vocab:
        read -= weights.gathered - weights.gathered / arch.vocab
    if arch is not None:
        read += kv_read_bytes(arch, prompt_tokens, new_tokens, k_bytes=k_bytes, v_bytes=v_bytes)
    return read


def roofline_pct(decode_tok_s: float | None, bytes_per_token: float | None,
                 bandwidth_gbs: float | None) -> float | None:
    """``decode_tok_s x bytes_per_token / bandwidth`` in percent (bandwidth in GB/s, 10^9
    bytes); None when any input is missing or not positive."""
    if not decode_tok_s or not bytes_per_token or not bandwidth_gbs or bandwidth_gbs <= 0:
        return None
    return decode_tok_s * bytes_per_token / (bandwidth_gbs * 1e9) * 100.0


def cache_element_bytes(value: Any) -> float | None:
    """Bytes per element of a cache type as runtimes name it: ggml's type number or name
    (llama.cpp ``type_k``/``type_v``), or a precision name (OpenVINO ``KV_CACHE_PRECISION``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lower() in _NAMED_BYTES:
        return _NAMED_BYTES[value.strip().lower()]
    try:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError:
        return None
    try:
        qtype = (GGMLQuantizationType(value) if isinstance(value, int)
                 else GGMLQuantizationType[str(value).strip().upper()])
        block, size = GGML_QUANT_SIZES[qtype]
    except (KeyError, ValueError):
        return None
    return size / block


def kv_element_bytes(framework: str, device: str, options: dict) -> tuple[float, float]:
    """(K, V) bytes per cache element for a run: the suite's cache options where given
    (llama.cpp ``type_k``/``type_v``, OpenVINO ``KV_CACHE_PRECISION``); ONNX Runtime GenAI
    on the CPU keeps an f32 cache (the model builder's CPU export types ``past_key_values``
    float32, checked on its fp32, int8 and int4 exports); else f16."""
    opts = {str(k).lower(): v for k, v in options.items()}
    default = 4.0 if framework == "ort-genai" and device == "cpu" else DEFAULT_KV_BYTES
    both = cache_element_bytes(opts["kv_cache_precision"]) \
        if "kv_cache_precision" in opts else None
    k = cache_element_bytes(opts["type_k"]) if "type_k" in opts else None
    v = cache_element_bytes(opts["type_v"]) if "type_v" in opts else None
    return (k or both or default, v or both or default)


# ---- shapes from the artifact --------------------------------------------------------------

def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def _gguf_tensors(path: Path) -> dict[str, int]:
    """Tensor name -> bytes of data, walking a header ``read_gguf`` has already checked."""
    import mmap

    from gguf.constants import GGML_QUANT_SIZES

    from edgebench.models.gguf_file import _Cursor

    out: dict[str, int] = {}
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        cur.pos = 8
        n_tensors, n_kv = cur.unpack("Q"), cur.unpack("Q")
        for _ in range(n_kv):
            cur.string()
            cur.value(cur.unpack("I"))
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.unpack("Q") for _ in range(cur.unpack("I"))]
            block, size = GGML_QUANT_SIZES[cur.unpack("I")]
            cur.unpack("Q")
            out[name] = math.prod(dims) // block * size
    return out


def gguf_shapes(path: Path) -> tuple[Weights, Arch | None]:
    """Weights and shapes of a GGUF file from its header. ``token_embd.weight`` is the
    output head too when the file has no ``output.weight`` (llama.cpp's tied embedding, as
    in Gemma 3): then it is read whole every token and nothing is subtracted."""
    from edgebench.models.gguf_file import read_gguf

    info = read_gguf(path)
    tensors = _gguf_tensors(path)
    tied = "output.weight" not in tensors
    weights = Weights(sum(tensors.values()),
                      0 if tied else tensors.get("token_embd.weight", 0))
    arch = info.architecture
    if arch is None:
        return weights, None
    get = lambda key: _positive(info.metadata.get(f"{arch}.{key}"))  # noqa: E731
    layers, heads = get("block_count"), get("attention.head_count")
    hidden = get("embedding_length")
    kv_heads = get("attention.head_count_kv") or heads
    key_dim = get("attention.key_length") or (hidden // heads if hidden and heads else None)
    value_dim = get("attention.value_length") or key_dim
    if not (layers and kv_heads and key_dim and value_dim):
        return weights, None
    window = get("attention.sliding_window")
    sliding = 0
    if window and arch in SWA_PATTERN:
        n = SWA_PATTERN[arch]
        sliding = sum(1 for il in range(layers) if il % n < n - 1)
    vocab = info.arrays.get("tokenizer.ggml.tokens") or get("vocab_size")
    return weights, Arch(layers, kv_heads, key_dim, value_dim, window if sliding else None,
                         sliding, vocab, hidden)


def folder_shapes(folder: Path) -> tuple[bool | None, Arch | None]:
    """(tied embeddings, shapes) of a model folder: its Hugging Face ``config.json`` (MLX,
    OpenVINO, QNN exports; a multimodal one's ``text_config``), else ONNX Runtime GenAI's
    ``genai_config.json``. (None, None) when neither says."""
    from edgebench.models.hf_config import read_hf_config

    if (folder / "config.json").is_file():
        top = read_hf_config(folder)
        cfg = top.get("text_config") or top
        layers, heads = _positive(cfg.get("num_hidden_layers")), \
            _positive(cfg.get("num_attention_heads"))
        hidden = _positive(cfg.get("hidden_size"))
        kv_heads = _positive(cfg.get("num_key_value_heads")) or heads
        head_dim = _positive(cfg.get("head_dim")) or (hidden // heads if hidden and heads
                                                      else None)
        if not (layers and kv_heads and head_dim):
            return None, None
        window = _positive(cfg.get("sliding_window"))
        types = cfg.get("layer_types")
        if isinstance(types, list):
            sliding = sum(1 for t in types if t == "sliding_attention")
        else:
            n = _positive(cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern"))
            sliding = sum(1 for il in range(layers) if il % n < n - 1) if n else 0
        tied = top.get("tie_word_embeddings", cfg.get("tie_word_embeddings", True))
        return (tied if isinstance(tied, bool) else None,
                Arch(layers, kv_heads, head_dim, head_dim, window if sliding and window
                     else None, sliding if window else 0,
                     _positive(cfg.get("vocab_size")), hidden))
    genai = folder / "genai_config.json"
    if genai.is_file():
        try:
            model = json.loads(genai.read_text(encoding="utf-8"))["model"]
            dec = model["decoder"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{genai}: not a readable genai_config.json ({e})") from None
        layers, kv_heads = _positive(dec.get("num_hidden_layers")), \
            _positive(dec.get("num_key_value_heads"))
        head = _positive(dec.get("head_size"))
        if not (layers and kv_heads and head):
            return None, None
        sw = dec.get("sliding_window") if isinstance(dec.get("sliding_window"), dict) else {}
        window = _positive(sw.get("window_size"))
        sliding = len(sw.get("layers") or []) if window else 0
        return None, Arch(layers, kv_heads, head, head, window if sliding else None, sliding,
                          _positive(model.get("vocab_size")), _positive(dec.get("hidden_size")))
    return None, None


@functools.lru_cache(maxsize=64)
def _shapes(path: str, fmt: str | None, weight_bytes: int | None, parameters: int | None,
            stamp: tuple) -> tuple[Weights, Arch | None]:
    p = Path(path)
    if p.is_file() and (fmt == "gguf" or p.suffix == ".gguf"):
        return gguf_shapes(p)
    tied, arch = folder_shapes(p) if p.is_dir() else (None, None)
    total = weight_bytes or 0
    gathered = 0
    if tied is False and arch and arch.vocab and arch.hidden and parameters and total:
        # an untied table, stored at the artifact's mean bits per weight (no per-tensor view)
        gathered = int(arch.vocab * arch.hidden * total / parameters)
    return Weights(total, gathered), arch


def shapes(path: str | Path, fmt: str | None = None, weight_bytes: int | None = None,
           parameters: int | None = None) -> tuple[Weights, Arch | None]:
    """Weights and shapes of the artifact at ``path`` (cached per file version)."""
    st = os.stat(path)
    return _shapes(str(path), fmt, weight_bytes, parameters, (st.st_mtime_ns, st.st_size))


# ---- memory bandwidth ----------------------------------------------------------------------

@dataclass(frozen=True)
class Bandwidth:
    """A memory bandwidth in GB/s (10^9 bytes), how it was obtained and when."""

    gbs: float
    method: str
    measured_at: str | None = None
    threads: int | None = None


def measure_bandwidth(threads: int = 1, *, size_mib: int = 256, repeats: int = 5) -> Bandwidth:
    """Stream a ``size_mib`` buffer into another ``repeats`` times, split over ``threads``
    threads (numpy releases the GIL while copying), and keep the best pass. Bytes count as
    STREAM's Copy counts them: read + written (2 x the buffer) per pass. Size the buffer
    several times the last-level cache, or the cache is measured."""
    import numpy as np

    threads = max(1, threads)
    src = np.ones(size_mib << 20, dtype=np.uint8)
    dst = np.zeros_like(src)  # both touched: no page faults in the timed passes
    parts = list(zip(np.array_split(dst, threads), np.array_split(src, threads)))
    best = math.inf
    if threads == 1:
        def one_pass() -> None:
            np.copyto(dst, src)
    else:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(threads)

        def one_pass() -> None:
            list(pool.map(lambda p: np.copyto(*p), parts))
    try:
        one_pass()  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            one_pass()
            best = min(best, time.perf_counter() - t0)
    finally:
        if threads > 1:
            pool.shutdown()
    return Bandwidth(2 * src.nbytes / best / 1e9,
                     f"numpy copy {size_mib} MiB x{repeats}, best, {threads} thread"
                     f"{'s' if threads > 1 else ''} (read+write bytes)",
                     datetime.now(timezone.utc).isoformat(timespec="seconds"), threads)


def _cache_file(cache: Path | None, machine: str | None) -> Path:
    from edgebench.harness.device import machine_id
    from edgebench.locations import cache_dir

    return Path(cache or cache_dir()) / "bandwidth" / f"{machine or machine_id()}.json"


def _entries(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or damaged: measured again and rewritten
    got = data.get("threads") if isinstance(data, dict) else None
    return {k: v for k, v in got.items() if isinstance(v, dict)
            and isinstance(v.get("gbs"), (int, float)) and v["gbs"] > 0} \
        if isinstance(got, dict) else {}


def cached_bandwidth(cache: Path | None = None, *, threads: int | None = None,
                     machine: str | None = None) -> dict | None:
    """This machine's cached bandwidth: ``{gbs, method, measured_at, threads, machine_id,
    path}`` for ``threads`` (default: the most threads measured), or None."""
    path = _cache_file(cache, machine)
    entries = _entries(path)
    if not entries:
        return None
    key = str(threads) if threads is not None else max(entries, key=lambda k: int(k)
                                                       if k.isdigit() else 0)
    if key not in entries:
        return None
    e = entries[key]
    return {"gbs": float(e["gbs"]), "method": str(e.get("method")),
            "measured_at": e.get("measured_at"), "threads": int(key) if key.isdigit() else None,
            "machine_id": path.stem, "path": str(path)}


def machine_bandwidth(threads: int, cache: Path | None = None, *, machine: str | None = None,
                      measure=measure_bandwidth) -> Bandwidth:
    """The cached bandwidth for ``threads`` threads on this machine, measured and cached
    (``<cache>/bandwidth/<machine_id>.json``) the first time."""
    hit = cached_bandwidth(cache, threads=threads, machine=machine)
    if hit is not None:
        return Bandwidth(hit["gbs"], hit["method"], hit["measured_at"], threads)
    from edgebench.harness.busy import NoiseProbe

    noise = NoiseProbe().start()
    # what this machine's memory can deliver to a run of ``threads`` threads: the best of one
    # thread and of ``threads`` (on a VM two copying threads can be slower than one)
    bw = max((measure(t) for t in sorted({1, threads})), key=lambda b: b.gbs)
    bw = replace(bw, threads=threads)
    noise.stop()
    if noise.columns().get("machine_busy"):  # a busy machine's figure is never cached
        return replace(bw, method=bw.method + " (machine busy: not cached)")
    path = _cache_file(cache, machine)
    entries = _entries(path)
    entries[str(threads)] = {"gbs": bw.gbs, "method": bw.method, "measured_at": bw.measured_at}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"machine_id": path.stem, "threads": entries}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache costs a measurement next time, never the sweep
    return bw


def given(gbs: float) -> Bandwidth:
    """A bandwidth the user declared (``--bandwidth-gbs``)."""
    return Bandwidth(float(gbs), GIVEN)


# ---- the row's columns ---------------------------------------------------------------------

def _manifest(path: Path) -> dict:
    """The prepared artifact's manifest beside it (``<cache>/artifacts/<fmt>/<key>/``), where
    edgebench made it: its ``weight_bytes`` and ``parameters``."""
    try:
        got = json.loads((path.parent / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: got[k] for k in ("weight_bytes", "parameters")
            if isinstance(got, dict) and _positive(got.get(k))}


def with_bytes(row, artifact=None) -> Any:
    """``row`` with ``bytes_per_token`` from its artifact (``artifact``, else the row's
    ``artifact_path``) and workload; unchanged when the artifact's shapes cannot be read (the
    roofline is then unknown, never a guess)."""
    path = getattr(artifact, "path", None) or row.artifact_path
    if row.status != "ok" or not path:
        return row
    path = Path(path)
    known = {"weight_bytes": getattr(artifact, "weight_bytes", None),
             "parameters": getattr(artifact, "parameters", None)}
    if path.is_dir() and not known["weight_bytes"]:
        known = _manifest(path)
    try:
        opts = json.loads(row.options) if row.options else {}
        weights, arch = shapes(path, getattr(artifact, "format", None) or row.artifact_format,
                               known.get("weight_bytes"), known.get("parameters"))
    except (ModelError, OSError, ValueError, KeyError, TypeError, EOFError):
        return row
    if not weights.total:  # a folder of the user's: its size on disk
        weights = Weights(row.model_bytes or 0, weights.gathered)
    if not weights.total or arch is None:
        return row
    k, v = kv_element_bytes(row.framework, row.device, opts if isinstance(opts, dict) else {})
    # the cache a decode step attends to holds the depth too (filled before the prompt)
    context = (getattr(row, "depth", None) or 0) + row.prompt_tokens
    return replace(row, bytes_per_token=bytes_per_token(
        weights, arch, context, row.new_tokens, k_bytes=k, v_bytes=v))


def applies(row, declared: bool) -> bool:
    """Whether a bandwidth is the memory ``row`` decoded from: a measured ok speed row; this
    machine's measured (CPU) bandwidth only for CPU rows, a ``declared`` one for every row."""
    if row.status != "ok" or row.kind not in (None, "speed") or row.measurement != "measured":
        return False
    return declared or row.device == "cpu"


class SweepBandwidth:
    """One sweep's bandwidth: the declared one, or this machine's per thread count, looked up
    (or measured, then cached) the first time a row needs it: in the parent, between runs."""

    def __init__(self, given_gbs: float | None, cache: Path | None, *,
                 measure=measure_bandwidth) -> None:
        self.declared = given(given_gbs) if given_gbs is not None else None
        self.cache, self.measure = cache, measure
        self.measured: dict[int, Bandwidth | None] = {}

    def for_threads(self, threads: int) -> Bandwidth | None:
        if self.declared is not None:
            return self.declared
        threads = max(1, min(threads or 1, os.cpu_count() or 1))
        if threads not in self.measured:
            try:
                self.measured[threads] = machine_bandwidth(threads, self.cache,
                                                           measure=self.measure)
            except (MemoryError, OSError, ValueError, ZeroDivisionError):
                self.measured[threads] = None  # no bandwidth: the roofline stays unknown
        return self.measured[threads]

    def fill(self, row) -> Any:
        """``row`` with ``bandwidth_gbs`` / ``bandwidth_method`` where they apply."""
        if not applies(row, self.declared is not None):
            return row
        bw = self.for_threads(row.threads)
        if bw is None:
            return row
        return replace(row, bandwidth_gbs=bw.gbs, bandwidth_method=bw.method)


def with_pct(row) -> Any:
    """``row`` with ``roofline_pct`` from its own decode speed, bytes and bandwidth."""
    pct = roofline_pct(row.decode_tok_s, row.bytes_per_token, row.bandwidth_gbs)
    return row if pct == row.roofline_pct else replace(row, roofline_pct=pct)
