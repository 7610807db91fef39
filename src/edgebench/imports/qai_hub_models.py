"""Qualcomm's published LLM figures: the ``perf.yaml`` files of the ``qai-hub-models`` wheel.

FILE is one ``qai_hub_models/models/<id>/perf.yaml`` (of an unpacked wheel, or a copy) or the
wheel itself (every LLM ``perf.yaml`` in it). The file's structure (``scorecard/perf_yaml.py``,
``models/templates/llm/perf_collection.py`` of qai-hub-models 0.65.0)::

    precisions:
      <precision, e.g. w4a16>:
        components:
          <Qualcomm's model name>:
            performance_metrics:
              <device name>:
                <profile path, e.g. genie, geniex_qairt>:
                  llm_metrics:
                  - context_length: 4096
                    desired_compute_unit: npu
                    prefill_tokens_per_second: ...      (optional)
                    time_to_first_token_range_milliseconds: {min: ..., max: ...}
                    tokens_per_second: ...
                  tool_versions: {qairt: '2.50', ...}  (optional)

One row per (precision, model, device, profile path, context length). The TTFT range is not
one measurement: its lower end is measured with a 128-token prompt (``ttft_ms``,
``prompt_tokens`` 128), its upper end is that figure scaled to the context length
(``perf_collection.update_perf_yaml``: ``ttft_ms * context_length / 128``), which Qualcomm did
not measure (``ttft_ms_extrapolated``). Where the range is not that scaling (4 of the wheel's
1,247 figures: scaled off another prompt length), ``prompt_tokens`` is left empty and
``runtime_settings`` says why. A figure of 0 is no figure; a cell with none is a row of status
``unavailable``.

These are Qualcomm's figures for Qualcomm's model list, kept under Qualcomm's model name: never
the speed of another model. Where the wheel's ``devices_and_chipsets.yaml`` and
``similar_devices.yaml`` sit beside the file (its ``qai_hub_models`` folder), each device's
chipset becomes ``cpu_model`` (so the row is a Snapdragon's) and its OS ``os``; a device that
``similar_devices.yaml`` gives the figures of another chipset (``reference_chipset``) says so in
its source.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from edgebench.errors import ConfigError
from edgebench.imports import files
from edgebench.imports.files import clean, shown
from edgebench.imports.rows import imported_row
from edgebench.suites.yamlfile import parse_yaml, regular_file

KIND = "imported:qai-hub-models"
FRAMEWORK = "qai-hub"
PACKAGE = "qai-hub-models"
#: The prompt length of the measured TTFT (the lower end of the range).
TTFT_PROMPT_TOKENS = 128
#: The longest context a figure may be for (anything larger is not a real model's).
MAX_CONTEXT = 2**31
#: What ``prefill_tok_s`` is, in ``runtime_settings``.
PREFILL_NOTE = ("Qualcomm's own prefill_tokens_per_second, not prompt_tokens / ttft_ms "
                "(the file does not say on which prompt)")
#: What the desired compute unit is, for the ``accelerators`` column.
UNITS = {"npu": "Qualcomm Hexagon NPU", "gpu": "Qualcomm Adreno GPU"}
_PERF = re.compile(r"^qai_hub_models/models/[^/]+/perf\.yaml$")


def read(path: Path) -> list:
    """The rows of a qai-hub-models ``perf.yaml`` or wheel, with an empty ``session_id`` (the
    command sets it).

    Raises:
        ConfigError: a file that is not a regular file of bounded size, not YAML (or YAML
            whose aliases expand past the bound), a perf.yaml without LLM figures, a figure
            without its keys or not finite: one line naming the file and the key (or line).
    """
    path = Path(path)
    where = shown(path)
    st = regular_file(path, where, "a perf.yaml or a wheel",
                      "expected a qai-hub-models perf.yaml or wheel")
    if st.st_size > files.MAX_WHEEL_BYTES:
        raise ConfigError(f"{where} is {st.st_size:,} bytes: a perf.yaml or wheel is at most "
                          f"{files.MAX_WHEEL_BYTES:,} bytes here; refused")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise ConfigError(f"{where} cannot be read: {e.strerror or e}") from None
    if is_zip:
        return _wheel(path)
    raw = files.read_bytes(path, "a perf.yaml", files.MAX_YAML_BYTES,
                           "expected a qai-hub-models perf.yaml")
    resolved = path.resolve()
    root = next((p for p in resolved.parents if p.name == "qai_hub_models"), None)
    inner = resolved.relative_to(root.parent).as_posix() if root else path.name
    version = None
    if root and (root / "_version.py").is_file():
        version = _version_text(files.read_bytes(root / "_version.py", "a _version.py",
                                                 64 * 1024, "no version in it")
                                .decode("utf-8", "replace"))

    def sibling(name: str) -> bytes | None:
        f = root / name if root else None
        return files.read_bytes(f, f"a {name}", files.MAX_YAML_BYTES, "no devices in it") \
            if f is not None and f.is_file() else None

    return _rows(where, raw, clean(inner), version, _devices(where, sibling))


def _wheel(path: Path) -> list:
    where = shown(path)
    budget = [files.MAX_WHEEL_READ_BYTES]

    def member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        """A member's bytes, its uncompressed size checked before it is read."""
        at = f"{where}:{clean(info.filename)}"
        if info.file_size > files.MAX_YAML_BYTES:
            raise ConfigError(f"{at} is {info.file_size:,} bytes uncompressed: at most "
                              f"{files.MAX_YAML_BYTES:,} here; refused")
        budget[0] -= info.file_size
        if budget[0] < 0:
            raise ConfigError(f"{where}: its members add up to more than "
                              f"{files.MAX_WHEEL_READ_BYTES:,} bytes uncompressed; refused")
        with z.open(info) as fh:
            return fh.read(files.MAX_YAML_BYTES + 1)[:files.MAX_YAML_BYTES]

    try:
        with zipfile.ZipFile(path) as z:
            infos = {i.filename: i for i in z.infolist()}
            meta = next((n for n in infos if re.match(r"[^/]+\.dist-info/METADATA$", n)), None)
            version = None
            if meta:
                m = re.search(r"^Version: *(\S+)",
                              member(z, infos[meta]).decode("utf-8", "replace"), re.M)
                version = clean(m.group(1)) if m else None

            def sibling(name: str) -> bytes | None:
                full = f"qai_hub_models/{name}"
                return member(z, infos[full]) if full in infos else None

            devices = _devices(where, sibling)
            rows: list = []
            for name in sorted(n for n in infos if _PERF.match(n)):
                raw = member(z, infos[name])
                if b"llm_metrics" in raw:
                    rows += _rows(f"{where}:{clean(name)}", raw, clean(name), version, devices)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            EOFError, OSError, ValueError) as e:
        raise ConfigError(f"{where}: not a readable wheel ({' '.join(str(e).split())[:120]})"
                          ) from None
    if not rows:
        raise ConfigError(f"{where}: no LLM perf.yaml (with llm_metrics) in this file "
                          "(expected a qai-hub-models wheel)")
    return rows


def _version_text(text: str) -> str | None:
    m = re.search(r"__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)['\"]", text)
    return clean(m.group(1)) if m else None


def _yaml(where: str, raw: bytes) -> Any:
    """A YAML document, through the suites' guard (``suites.yamlfile.parse_yaml``: aliases
    expanded at most ``MAX_YAML_NODES`` values, ``MAX_YAML_DEPTH`` levels deep)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{where}: line {line}: not UTF-8 text") from None
    return parse_yaml(text, where)


def _devices(where: str, sibling: Callable[[str], bytes | None]) -> dict[str, dict[str, Any]]:
    """Per device name: ``chipset`` (marketing name), ``os``, ``figures_of`` (the chipset whose
    figures Qualcomm copied onto the device), from the wheel's device lists where present."""
    found: dict[str, dict[str, Any]] = {}
    chipsets: dict[str, Any] = {}
    for name in ("devices_and_chipsets.yaml", "similar_devices.yaml"):
        raw = sibling(name)
        doc = _yaml(f"{where} ({name})", raw) if raw is not None else None
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("chipsets"), dict):
            chipsets.update(doc["chipsets"])
        devices = doc.get("devices")
        for device, info in (devices.items() if isinstance(devices, dict) else ()):
            if isinstance(info, dict):
                found.setdefault(clean(str(device)), info)
    out = {}
    for device, info in found.items():
        chip = clean(str(info.get("chipset") or ""))
        entry = chipsets.get(chip) if chip else None
        market = entry.get("marketing_name") if isinstance(entry, dict) else None
        os_ = info.get("os") if isinstance(info.get("os"), dict) else {}
        figures_of = info.get("reference_chipset")
        out[device] = {
            "chipset_id": chip or None,
            "chipset": clean(re.sub(r"[®™]", "", str(market))) if market else (chip or None),
            "os": clean(" ".join(str(os_[k]) for k in ("ostype", "version") if os_.get(k)))
            or None,
            "figures_of": clean(str(figures_of)) if figures_of else None,
        }
    return out


def _number(where: str, key: str, value: Any, *, optional: bool = False) -> float | None:
    """A figure; None where it is absent (``optional``) or 0, which the wheel writes where
    Qualcomm has no figure (e.g. ``llama_v3_elyza_jp_8b`` on ``geniex_qairt``)."""
    if value is None and optional:
        return None
    if not files.finite(value, positive=False):
        raise ConfigError(f"{where}: {key}: expected a finite number of at least 0, got "
                          f"{files.show(value)}")
    return float(value) or None


def _mapping(where: str, key: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping, got "
                          f"{type(value).__name__}")
    return value


def _rows(where: str, raw: bytes, inner: str, version: str | None,
          devices: dict[str, dict[str, Any]]) -> list:
    doc = _yaml(where, raw)
    if not raw.strip() or doc is None:
        raise ConfigError(f"{where}: empty file (expected a qai-hub-models perf.yaml)")
    precisions = _mapping(where, "precisions", _mapping(where, "(top level)", doc)
                          .get("precisions"))
    model_id = PurePosixPath(inner).parent.name or None
    source = (f"{PACKAGE} {version or '(version unknown)'} {inner} "
              f"sha256:{hashlib.sha256(raw).hexdigest()[:16]}")
    rows = []
    for prec, pd in precisions.items():
        prec = clean(str(prec))
        key = f"precisions.{prec}.components"
        for model, cd in _mapping(where, key, _mapping(where, f"precisions.{prec}", pd)
                                  .get("components")).items():
            model = clean(str(model))
            key = f"precisions.{prec}.components.{model}.performance_metrics"
            metrics = _mapping(where, key, _mapping(where, key.rsplit(".", 1)[0], cd)
                               .get("performance_metrics"))
            for device, paths in metrics.items():
                device = clean(str(device))
                for profile, details in _mapping(where, f"{key}.{device}", paths).items():
                    profile = clean(str(profile))
                    at = f"{key}.{device}.{profile}"
                    details = _mapping(where, at, details)
                    llm = details.get("llm_metrics")
                    if llm is None:
                        continue  # a non-LLM figure (inference time): not this importer's
                    if not isinstance(llm, list):
                        raise ConfigError(f"{where}: {at}.llm_metrics: expected a list")
                    for i, m in enumerate(llm):
                        rows.append(_row(where, f"{at}.llm_metrics[{i}]", m, prec, model,
                                         device, profile, details.get("tool_versions"),
                                         model_id, source, devices.get(device, {})))
    if not rows:
        raise ConfigError(f"{where}: no LLM figures (llm_metrics) in this perf.yaml")
    return rows


def _row(where: str, at: str, m: Any, prec: str, model: str, device: str, profile: str,
         tools: Any, model_id: str | None, source: str, dev: dict[str, Any]):
    m = _mapping(where, at, m)
    ctx = m.get("context_length")
    if isinstance(ctx, bool) or not isinstance(ctx, int) or not 0 < ctx <= MAX_CONTEXT:
        raise ConfigError(f"{where}: {at}.context_length: expected a positive integer of at "
                          f"most {MAX_CONTEXT:,}, got {files.show(ctx)}")
    ttft = _mapping(where, f"{at}.time_to_first_token_range_milliseconds",
                    m.get("time_to_first_token_range_milliseconds"))
    low = _number(where, f"{at}.time_to_first_token_range_milliseconds.min", ttft.get("min"))
    high = _number(where, f"{at}.time_to_first_token_range_milliseconds.max", ttft.get("max"))
    if low is not None and high is not None and high < low:
        raise ConfigError(f"{where}: {at}.time_to_first_token_range_milliseconds: max {high} "
                          f"is below min {low}")
    if low is None:
        high = None  # the upper end is the lower one scaled: nothing without it
    decode = _number(where, f"{at}.tokens_per_second", m.get("tokens_per_second"))
    prefill = _number(where, f"{at}.prefill_tokens_per_second",
                      m.get("prefill_tokens_per_second"), optional=True)
    figures = dict(decode_tok_s=decode, prefill_tok_s=prefill, ttft_ms=low,
                   ttft_ms_extrapolated=high)
    status, message = "ok", None
    if decode is None and low is None:
        status, message = "unavailable", "no figure: the perf.yaml lists 0 for it"
        figures = {}
    # the 128-token prompt holds where the range is Qualcomm's scaling (max = min x context /
    # 128); a few figures were scaled off another prompt length, which the file does not give
    prompt = TTFT_PROMPT_TOKENS if low is None or high is None or abs(
        high / low * TTFT_PROMPT_TOKENS / ctx - 1) <= 0.01 else None
    unit = m.get("desired_compute_unit")
    if unit is not None and not isinstance(unit, str):
        raise ConfigError(f"{where}: {at}.desired_compute_unit: expected a name (npu, gpu), "
                          f"got {files.show(unit)}")
    unit = clean(unit or "") or None
    tools = {clean(str(k)): clean(str(v)) for k, v in tools.items()
             if isinstance(v, (str, int, float)) and not isinstance(v, bool)} \
        if isinstance(tools, dict) else {}
    settings = {
        "model_id": model_id, "profile_path": profile, "context_length": ctx,
        "desired_compute_unit": unit, "tool_versions": tools or None,
        "ttft_ms": (f"measured with a {TTFT_PROMPT_TOKENS}-token prompt" if prompt else
                    f"measured; the prompt length is not given (max / min is {high / low:.4g}, "
                    f"not context / {TTFT_PROMPT_TOKENS})"),
        "ttft_ms_extrapolated": f"Qualcomm's scaling of ttft_ms to the {ctx}-token context, "
                                "not measured",
        "prefill_tok_s": PREFILL_NOTE,
        "chipset": dev.get("chipset_id"), "figures_of_chipset": dev.get("figures_of"),
    }
    if status == "ok":
        message = (f"Qualcomm's published figures: ttft_ms for a {prompt}-token prompt"
                   if prompt else "Qualcomm's published figures: ttft_ms for a prompt length "
                   "the file does not give") + "; prefill_tok_s is Qualcomm's own figure, " \
            "not prompt / TTFT"
    copied = dev.get("figures_of")
    return imported_row(
        KIND, session_id="", model=model, framework=FRAMEWORK, precision=prec, device=device,
        source=source + (f" (Qualcomm's figures of {copied}, copied onto this device)"
                         if copied else ""),
        prompt_tokens=prompt,
        options={"model_id": model_id, "profile_path": profile, "context_length": ctx,
                 "desired_compute_unit": unit},
        status=status, message=message, **figures,
        framework_version=", ".join(f"{k} {v}" for k, v in tools.items()) or None,
        runtime_settings=json.dumps(settings, sort_keys=True),
        cpu_model=dev.get("chipset"), os=dev.get("os"), accelerators=UNITS.get(unit or ""))
