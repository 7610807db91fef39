"""`edgebench import ai-hub-profile FILE`: a Qualcomm AI Hub profile downloaded as JSON
(``InferenceJob.download_profile("out.json")`` or ``download_results(dir)``, i.e. the client's
``{"execution_summary": …, "execution_detail": […]}``), mapped into one row through the same
mapping as the ``qai-hub`` runner (``harness.qai_hub_profile``).

An LLM split into graphs may be given as one JSON object mapping each graph's name to its
profile (``{"prompt_processor": {…}, "token_generator": {…}}``): TTFT and decode tok/s are then
derived from those graphs' latencies, and the row's message says so.

The file holds no device, model or precision: the model is the job's name from the client's
file name (``<job name>_<job id>_results.json``, the job id kept in ``job_ids``) or the file's
stem, the precision ``unknown``, the device ``snapdragon``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError
from edgebench.harness import qai_hub_profile as mapping
from edgebench.imports import files
from edgebench.imports.files import clean, shown
from edgebench.imports.rows import imported_row
from edgebench.results.fsio import safe_text

KIND = "imported:ai-hub-profile"
#: the client's own file name for a downloaded profile (``InferenceJob._write_profile``)
_CLIENT_NAME = re.compile(r"^(?P<name>.*)_(?P<job>j[0-9a-z]+)_results(?:_\d+)?$")


def _session_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def graphs_of(doc: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The profile(s) in a downloaded file: ``{graph name: profile}``.

    Raises:
        ConfigError: neither a profile nor an object of profiles (one line naming the file).
    """
    if isinstance(doc, dict) and mapping.SUMMARY in doc:
        return {"graph": doc}
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) and mapping.SUMMARY in v
                                             for v in doc.values()):
        return dict(doc)
    raise ConfigError(f"{shown(path)}: not a Qualcomm AI Hub profile (expected the keys "
                      f"{mapping.SUMMARY!r} and {mapping.DETAIL!r}, or an object of such "
                      "profiles per graph)")


def read(path: Path) -> list[Any]:
    """One ``imported:ai-hub-profile`` row of the profile in ``path``.

    Raises:
        ConfigError: a file that is not regular or too large, bad JSON, a profile missing a
            key, a latency that is not a finite number above 0, or graphs of which none gives
            a figure (one line naming the file).
    """
    path = Path(path)
    where = shown(path)
    raw = files.read_bytes(path, "an AI Hub profile (JSON)", files.MAX_JSON_BYTES,
                           "expected a Qualcomm AI Hub profile downloaded as JSON")
    try:
        doc = files.DECODER.decode(raw.decode("utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON: not UTF-8 text (bad byte at offset "
                          f"{e.start})") from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{where}: not valid JSON: {files.json_problem(e)}") from None
    if not files.check_depth(doc):
        raise ConfigError(f"{where}: the JSON nests more than {files.MAX_DEPTH} levels deep")
    profiles = graphs_of(doc, path)
    name = shown(path.name)
    m = _CLIENT_NAME.match(clean(safe_text(path.stem)))
    model = (m.group("name") if m else None) or shown(path.stem)
    facts = mapping.JobFacts(job_ids=(m.group("job"),) if m else ())
    sha = hashlib.sha256(raw).hexdigest()
    try:
        cols = mapping.columns(profiles, facts, imported_from=name)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    if cols["status"] != "ok":
        raise ConfigError(f"{where}: {cols['message'].rsplit('; ', 1)[-1]}")
    cols.update(source=mapping.source(facts, f"{name} (sha256 {sha[:16]})"))
    for own in ("measurement", "energy_method"):  # imported_row sets them
        cols.pop(own)
    status = cols.pop("status")
    # the file names no device: its hash stands for the machine it was profiled on, so two
    # profiles never pass for runs of one machine
    return [imported_row(KIND, session_id=_session_id(), model=model, framework="qai-hub",
                         precision="unknown", device="snapdragon", status=status,
                         machine={"profile_sha256": sha[:16]}, **cols)]
