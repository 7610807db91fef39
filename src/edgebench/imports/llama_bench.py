"""llama.cpp's ``llama-bench -o json`` (one JSON array) and ``-o jsonl`` (one object a line).

Fields as ``tools/llama-bench/llama-bench.cpp`` (``test::get_fields``, ``json_printer``,
``jsonl_printer``) writes them: ``build_commit build_number cpu_info gpu_info backends
model_filename model_type model_size model_n_params n_batch n_ubatch n_threads ... type_k
type_v n_gpu_layers ... flash_attn ... n_prompt n_gen n_depth test_time avg_ns stddev_ns avg_ts
stddev_ts``, then ``samples_ns`` (each repetition's time) and ``samples_ts`` (each repetition's
``(n_prompt + n_gen) / time``).

One row per test: a ``pp`` test (``n_prompt > 0, n_gen == 0``) is prefill tok/s, a ``tg``
test (``n_prompt == 0, n_gen > 0``) decode tok/s (and its time per token), a ``pg`` test (both)
only its end-to-end time: llama-bench times prompt and generation together there, so neither
rate is in it. Every repetition is kept (the ``_samples`` columns). llama-bench's decode rate
counts every generated token over the whole test, edgebench's (METRICS.md) the tokens after the
first: close, not the same definition; the row's ``measurement`` says it is imported and its
``message`` says how its decode rate is counted. Rates are recomputed from ``samples_ns``; a
``samples_ts`` that contradicts them, or any figure that is not finite and positive, is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.harness.metrics import NS_PER_MS, NS_PER_S, summary_columns
from edgebench.imports import files
from edgebench.imports.files import clean, shown
from edgebench.imports.rows import imported_row

KIND = "imported:llama-bench"
FRAMEWORK = "llama-cpp"
#: llama_ftype_name (src/llama-model-loader.cpp) -> the precision name of the GGUF file type
#: (llama-quantize's name, lower case), as edgebench's llama-cpp rows name it. A name not here
#: (a "(guessed) " type, a new one) is kept as llama.cpp wrote it.
PRECISIONS = {
    "all F32": "f32", "F16": "f16", "BF16": "bf16", "Q1_0": "q1_0", "Q2_0": "q2_0",
    "Q4_0": "q4_0", "Q4_1": "q4_1", "Q5_0": "q5_0", "Q5_1": "q5_1", "Q8_0": "q8_0",
    "MXFP4 MoE": "mxfp4_moe", "NVFP4": "nvfp4", "Q2_K - Medium": "q2_k",
    "Q2_K - Small": "q2_k_s", "Q3_K - Small": "q3_k_s", "Q3_K - Medium": "q3_k_m",
    "Q3_K - Large": "q3_k_l", "Q4_K - Small": "q4_k_s", "Q4_K - Medium": "q4_k_m",
    "Q5_K - Small": "q5_k_s", "Q5_K - Medium": "q5_k_m", "Q6_K": "q6_k",
    "TQ1_0 - 1.69 bpw ternary": "tq1_0", "TQ2_0 - 2.06 bpw ternary": "tq2_0",
    "IQ2_XXS - 2.0625 bpw": "iq2_xxs", "IQ2_XS - 2.3125 bpw": "iq2_xs",
    "IQ2_S - 2.5 bpw": "iq2_s", "IQ2_M - 2.7 bpw": "iq2_m", "IQ3_XS - 3.3 bpw": "iq3_xs",
    "IQ3_XXS - 3.0625 bpw": "iq3_xxs", "IQ1_S - 1.5625 bpw": "iq1_s",
    "IQ1_M - 1.75 bpw": "iq1_m", "IQ4_NL - 4.5 bpw": "iq4_nl", "IQ4_XS - 4.25 bpw": "iq4_xs",
    "IQ3_S - 3.4375 bpw": "iq3_s", "IQ3_S mix - 3.66 bpw": "iq3_m",
}
#: Fields every test must have, with their JSON type.
REQUIRED = {"model_filename": str, "model_type": str, "n_prompt": int, "n_gen": int,
            "samples_ns": list}
#: Fields that make a test another cell (its run_key): the workload and how it was run.
CELL = ("n_depth", "n_batch", "n_ubatch", "type_k", "type_v", "n_gpu_layers", "flash_attn",
        "no_kv_offload", "split_mode", "main_gpu", "n_cpu_moe", "cpu_mask", "cpu_strict",
        "poll", "embeddings", "tensor_split", "tensor_buft_overrides", "devices")
#: Fields that are llama-bench's own statistics, recomputed here from the samples.
DERIVED = ("avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts")


def read(path: Path) -> list:
    """The rows of a llama-bench ``-o json`` or ``-o jsonl`` file (the first character that is
    not white space tells which), one per test, with an empty ``session_id`` (the command sets
    it).

    Raises:
        ConfigError: an empty, unreadable, non-regular or too large file, text that is not
            JSON, a test without the fields above or with a figure that is not finite and
            positive: one line naming the file and line.
    """
    raw = files.read_bytes(path, "llama-bench output", files.MAX_JSON_BYTES,
                           "expected llama-bench -o json or -o jsonl output")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(path, raw[:e.start].count(b"\n") + 1, "not UTF-8 text") from e
    body = text.lstrip()
    if not body:
        raise ConfigError(f"{shown(path)}: empty file (expected llama-bench -o json or "
                          "-o jsonl output)")
    tests = _array(path, text) if body[0] == "[" else _lines(path, text)
    if not tests:
        raise ConfigError(f"{shown(path)}: no test in the file (an empty llama-bench run?)")
    tests = [(line, _checked(path, line, t)) for line, t in tests]
    source = (f"llama-bench {clean(str(tests[0][1].get('build_commit', '?')))} "
              f"(build {tests[0][1].get('build_number', '?')}): {shown(path.name)} "
              f"sha256:{hashlib.sha256(raw).hexdigest()[:16]}")
    return [_row(path, line, t, source) for line, t in tests]


def _error(path: Path, line: int, what: str) -> ConfigError:
    return ConfigError(f"{shown(path)}: line {line}: {what}")


def _decode_error(path: Path, e: json.JSONDecodeError, line_offset: int = 0) -> ConfigError:
    return _error(path, e.lineno + line_offset, f"not valid JSON ({e.msg}, column {e.colno})")


def _array(path: Path, text: str) -> list[tuple[int, Any]]:
    """(line, object) of each element of a JSON array, decoded one by one to know its line
    (lines counted from the previous element on: linear in the file's size)."""
    dec = files.DECODER
    ws = re.compile(r"\s*")
    pos = ws.match(text, text.index("[") + 1).end()
    line, counted = 1, 0  # line of text[counted]

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, p)
        counted = p
        return line

    out: list[tuple[int, Any]] = []
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            at = line_at(pos)
            try:
                obj, pos = dec.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise _decode_error(path, e) from None
            except (ValueError, RecursionError) as e:
                raise _error(path, at, f"not valid JSON ({files.json_problem(e)})") from None
            out.append((at, obj))
            pos = ws.match(text, pos).end()
            if text.startswith(",", pos):
                pos = ws.match(text, pos + 1).end()
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise _error(path, line_at(pos), "not valid JSON (the array is cut short or lacks "
                         "a comma)" if pos >= len(text) else "not valid JSON (expected , or ])")
    if text[pos:].strip():
        raise _error(path, line_at(pos), "text after the JSON array")
    return out


def _lines(path: Path, text: str) -> list[tuple[int, Any]]:
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((i, files.DECODER.decode(line)))
            except json.JSONDecodeError as e:
                raise _error(path, i, f"not valid JSON ({e.msg}, column {e.colno})") from None
            except (ValueError, RecursionError) as e:
                raise _error(path, i, f"not valid JSON ({files.json_problem(e)})") from None
    return out


#: Optional fields: their JSON type, and for integers the range they must lie in. A field of
#: another type is refused (one line), never stored as its Python text.
OPTIONAL = {"build_commit": str, "cpu_info": str, "gpu_info": str, "backends": str,
            "test_time": str, "build_number": int, "model_size": int, "model_n_params": int,
            "n_threads": int}
_INT_RANGE = {"build_number": (0, 2**63), "model_size": (1, 2**64), "model_n_params": (1, 2**64),
              "n_threads": (1, 2**31), "n_prompt": (0, 2**31), "n_gen": (0, 2**31)}
#: The most a repetition may take (llama-bench's uint64_t nanoseconds).
MAX_NS = 2**64 - 1
#: How far a file's samples_ts may lie from (n_prompt + n_gen) / samples_ns (it prints them
#: rounded to about 6 digits).
TS_TOLERANCE = 0.01


def _checked(path: Path, line: int, t: Any) -> dict[str, Any]:
    if not isinstance(t, dict):
        raise _error(path, line, f"a test must be a JSON object, not {type(t).__name__} "
                     "(is this llama-bench -o json output?)")
    if not files.check_depth(t):
        raise _error(path, line, f"the test nests more than {files.MAX_DEPTH} levels deep")
    missing = [k for k in REQUIRED if k not in t]
    if missing:
        raise _error(path, line, f"missing key {missing[0]!r} (is this llama-bench -o json "
                     "output?)")
    for key, tp in REQUIRED.items():
        if not isinstance(t[key], tp) or isinstance(t[key], bool):
            raise _error(path, line, f"{key!r} must be a {tp.__name__}, got {files.show(t[key])}")
    for key, tp in OPTIONAL.items():
        v = t.get(key)
        if v is not None and (not isinstance(v, tp) or isinstance(v, bool)):
            raise _error(path, line, f"{key!r} must be a {tp.__name__} (llama-bench writes "
                         f"one), got {files.show(v)}")
    for key, (lo, hi) in _INT_RANGE.items():
        v = t.get(key)
        if v is not None and not lo <= v <= hi:
            raise _error(path, line, f"{key!r} {files.show(v)} is out of range ({lo} to {hi})")
    if t.get("test_time") is not None and _started(t) is None:
        raise _error(path, line, f"'test_time' {files.show(t['test_time'])} is not an ISO time")
    ns = t["samples_ns"]
    if not ns or any(not isinstance(x, int) or isinstance(x, bool) or not 0 < x <= MAX_NS
                     for x in ns):
        raise _error(path, line, "'samples_ns' must be a non-empty list of positive integers "
                     "(nanoseconds, at most 2**64 - 1)")
    if t["n_prompt"] + t["n_gen"] == 0:
        raise _error(path, line, f"n_prompt {t['n_prompt']} and n_gen {t['n_gen']}: neither a "
                     "pp, tg nor pg test")
    ts = t.get("samples_ts")
    if ts is not None:
        if not isinstance(ts, list) or len(ts) != len(ns) or not all(
                files.finite(x) for x in ts):
            raise _error(path, line, "'samples_ts' must be a list of finite positive numbers "
                         "as long as 'samples_ns'")
        for i, (x, y) in enumerate(zip(ts, _rates(t))):
            if abs(float(x) / y - 1) > TS_TOLERANCE:
                raise _error(path, line, f"samples_ts[{i}] {float(x):.6g} contradicts "
                             f"samples_ns[{i}]: (n_prompt + n_gen) / time is {y:.6g} tok/s")
    return t


def _rates(t: dict[str, Any]) -> list[float]:
    """Each repetition's (n_prompt + n_gen) / time in tok/s, from samples_ns (llama-bench's own
    definition of samples_ts)."""
    n = t["n_prompt"] + t["n_gen"]
    return [NS_PER_S * n / x for x in t["samples_ns"]]


def precision(model_type: str) -> str:
    """The precision in llama.cpp's model description ``<arch> <size> <file type>``, e.g.
    ``gemma3 270M Q4_K - Medium`` -> ``q4_k_m``; the description itself where its file type
    is not one of :data:`PRECISIONS`."""
    if "(guessed)" in model_type:  # llama.cpp guessed the file type: not a known one
        return model_type
    for name in sorted(PRECISIONS, key=len, reverse=True):
        if model_type == name or model_type.endswith(" " + name):
            return PRECISIONS[name]
    return model_type


def _device(t: dict[str, Any]) -> str:
    """``cpu`` for a CPU-only build or no layer offloaded, else the backends, lower case."""
    backends = clean(t.get("backends") or "CPU")
    if backends.upper() == "CPU" or t.get("n_gpu_layers") == 0:
        return "cpu"
    return "+".join(b.strip().lower() for b in backends.split(",") if b.strip()) or "cpu"


def _started(t: dict[str, Any]) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(t.get("test_time")).replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


#: The row's message: how llama-bench's rates differ from edgebench's.
NOTE = ("llama-bench's figures: decode tok/s counts every generated token over the whole test "
        "(edgebench's counts the tokens after the first); rates recomputed from samples_ns")


def _row(path: Path, line: int, t: dict[str, Any], source: str):
    n_prompt, n_gen, ns = t["n_prompt"], t["n_gen"], t["samples_ns"]
    test = "pp" if n_gen == 0 else "tg" if n_prompt == 0 else "pg"
    ts = _rates(t)
    if test == "pp":
        timings = summary_columns("prefill_tok_s", ts)
    elif test == "tg":
        timings = {**summary_columns("decode_tok_s", ts),
                   **summary_columns("tpot_ms", [x / n_gen / NS_PER_MS for x in ns])}
    else:
        timings = summary_columns("e2e_s", [x / NS_PER_S for x in ns])
    prec = clean(precision(t["model_type"]))
    model = clean(re.split(r"[\\/]", t["model_filename"])[-1].removesuffix(".gguf")) or "?"
    options = {"test": test, **{k: t[k] for k in CELL if k in t}}
    settings = {k: v for k, v in t.items() if k not in DERIVED}
    commit, number = t.get("build_commit"), t.get("build_number")
    cpu, gpu = clean(t.get("cpu_info") or "") or None, clean(t.get("gpu_info") or "") or None
    try:
        settings_text = json.dumps(settings, sort_keys=True, allow_nan=False)
    except (ValueError, RecursionError) as e:
        raise _error(path, line, f"a field cannot be stored ({files.json_problem(e)})") from None
    return imported_row(
        KIND, session_id="", model=model, framework=FRAMEWORK, precision=prec,
        device=_device(t), source=source, prompt_tokens=n_prompt, new_tokens=n_gen,
        threads=t.get("n_threads"), options=options, started_at=_started(t),
        machine={"cpu_info": cpu, "gpu_info": gpu},
        framework_version=f"llama.cpp build {number} ({clean(commit)})" if commit else None,
        runtime_settings=settings_text, message=NOTE,
        model_bytes=t.get("model_size"), cpu_model=cpu, accelerators=gpu,
        repetitions=len(ns), **timings)
