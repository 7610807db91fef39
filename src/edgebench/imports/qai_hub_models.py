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
from edgebench.imports.rows import imported_row
from edgebench.results.fsio import shown

KIND = "imported:qai-hub-models"
FRAMEWORK = "qai-hub"
PACKAGE = "qai-hub-models"
#: The prompt length of the measured TTFT (the lower end of the range).
TTFT_PROMPT_TOKENS = 128
#: What the desired compute unit is, for the ``accelerators`` column.
UNITS = {"npu": "Qualcomm Hexagon NPU", "gpu": "Qualcomm Adreno GPU"}
_PERF = re.compile(r"^qai_hub_models/models/[^/]+/perf\.yaml$")


def read(path: Path) -> list:
    """The rows of a qai-hub-models ``perf.yaml`` or wheel, with an empty ``session_id`` (the
    command sets it).

    Raises:
        ConfigError: a file that is not YAML, a perf.yaml without LLM figures, a figure
            without its keys: one line naming the file and the key (or line).
    """
    if zipfile.is_zipfile(path):
        return _wheel(path)
    raw = path.read_bytes()
    root = next((p for p in path.resolve().parents if p.name == "qai_hub_models"), None)
    inner = path.resolve().relative_to(root.parent).as_posix() if root else path.name
    version = _version_text((root / "_version.py").read_text()) if root and (
        root / "_version.py").is_file() else None

    def sibling(name: str) -> bytes | None:
        f = root / name if root else None
        return f.read_bytes() if f is not None and f.is_file() else None

    return _rows(shown(path), raw, inner, version, _devices(shown(path), sibling))


def _wheel(path: Path) -> list:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = next((n for n in names if re.match(r"[^/]+\.dist-info/METADATA$", n)), None)
        version = None
        if meta:
            m = re.search(r"^Version: *(\S+)", z.read(meta).decode("utf-8", "replace"), re.M)
            version = m.group(1) if m else None

        def sibling(name: str) -> bytes | None:
            full = f"qai_hub_models/{name}"
            return z.read(full) if full in names else None

        devices = _devices(shown(path), sibling)
        rows: list = []
        for name in sorted(n for n in names if _PERF.match(n)):
            raw = z.read(name)
            if b"llm_metrics" in raw:
                rows += _rows(f"{shown(path)}:{name}", raw, name, version, devices)
    if not rows:
        raise ConfigError(f"{shown(path)}: no LLM perf.yaml (with llm_metrics) in this file "
                          "(expected a qai-hub-models wheel)")
    return rows


def _version_text(text: str) -> str | None:
    m = re.search(r"__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)['\"]", text)
    return m.group(1) if m else None


def _yaml(where: str, raw: bytes) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        what = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"{where}: {line}not valid YAML ({what})") from e


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
        for device, info in (doc.get("devices") or {}).items():
            if isinstance(info, dict):
                found.setdefault(str(device), info)
    out = {}
    for device, info in found.items():
        chip = str(info.get("chipset") or "")
        market = (chipsets.get(chip) or {}).get("marketing_name") if chip else None
        os_ = info.get("os") if isinstance(info.get("os"), dict) else {}
        out[device] = {
            "chipset_id": chip or None,
            "chipset": re.sub(r"[®™]", "", str(market)) if market else (chip or None),
            "os": " ".join(str(os_[k]) for k in ("ostype", "version") if os_.get(k)) or None,
            "figures_of": info.get("reference_chipset"),
        }
    return out


def _number(where: str, key: str, value: Any, *, optional: bool = False) -> float | None:
    """A figure; None where it is absent (``optional``) or 0, which the wheel writes where
    Qualcomm has no figure (e.g. ``llama_v3_elyza_jp_8b`` on ``geniex_qairt``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or value < 0:
        raise ConfigError(f"{where}: {key}: expected a number of at least 0, got "
                          f"{value!r:.40}")
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
        key = f"precisions.{prec}.components"
        for model, cd in _mapping(where, key, _mapping(where, f"precisions.{prec}", pd)
                                  .get("components")).items():
            key = f"precisions.{prec}.components.{model}.performance_metrics"
            metrics = _mapping(where, key, _mapping(where, key.rsplit(".", 1)[0], cd)
                               .get("performance_metrics"))
            for device, paths in metrics.items():
                for profile, details in _mapping(where, f"{key}.{device}", paths).items():
                    at = f"{key}.{device}.{profile}"
                    details = _mapping(where, at, details)
                    llm = details.get("llm_metrics")
                    if llm is None:
                        continue  # a non-LLM figure (inference time): not this importer's
                    if not isinstance(llm, list):
                        raise ConfigError(f"{where}: {at}.llm_metrics: expected a list")
                    for i, m in enumerate(llm):
                        rows.append(_row(where, f"{at}.llm_metrics[{i}]", m, str(prec),
                                         str(model), str(device), str(profile),
                                         details.get("tool_versions"), model_id, source,
                                         devices.get(str(device), {})))
    if not rows:
        raise ConfigError(f"{where}: no LLM figures (llm_metrics) in this perf.yaml")
    return rows


def _row(where: str, at: str, m: Any, prec: str, model: str, device: str, profile: str,
         tools: Any, model_id: str | None, source: str, dev: dict[str, Any]):
    m = _mapping(where, at, m)
    ctx = m.get("context_length")
    if isinstance(ctx, bool) or not isinstance(ctx, int) or ctx <= 0:
        raise ConfigError(f"{where}: {at}.context_length: expected a positive integer, got "
                          f"{ctx!r:.40}")
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
    unit = str(m.get("desired_compute_unit") or "") or None
    tools = tools if isinstance(tools, dict) else {}
    settings = {
        "model_id": model_id, "profile_path": profile, "context_length": ctx,
        "desired_compute_unit": unit, "tool_versions": tools or None,
        "ttft_ms": (f"measured with a {TTFT_PROMPT_TOKENS}-token prompt" if prompt else
                    f"measured; the prompt length is not given (max / min is {high / low:.4g}, "
                    f"not context / {TTFT_PROMPT_TOKENS})"),
        "ttft_ms_extrapolated": f"Qualcomm's scaling of ttft_ms to the {ctx}-token context, "
                                "not measured",
        "chipset": dev.get("chipset_id"), "figures_of_chipset": dev.get("figures_of"),
    }
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
