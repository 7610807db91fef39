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
from edgebench.imports.rows import imported_row

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
    raise ConfigError(f"{path}: not a Qualcomm AI Hub profile (expected the keys "
                      f"{mapping.SUMMARY!r} and {mapping.DETAIL!r}, or an object of such "
                      "profiles per graph)")


def read(path: Path) -> list[Any]:
    """One ``imported:ai-hub-profile`` row of the profile in ``path``.

    Raises:
        ConfigError: an unreadable file, bad JSON or a profile missing a key (naming the file).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    profiles = graphs_of(doc, path)
    m = _CLIENT_NAME.match(path.stem)
    model = (m.group("name") if m else path.stem) or path.stem
    facts = mapping.JobFacts(job_ids=(m.group("job"),) if m else ())
    try:
        cols = mapping.columns(profiles, facts)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    sha = hashlib.sha256(raw).hexdigest()
    cols.update(source=mapping.source(facts, f"{path.name} (sha256 {sha[:16]})"))
    for own in ("measurement", "energy_method"):  # imported_row sets them
        cols.pop(own)
    status = cols.pop("status")
    return [imported_row(KIND, session_id=_session_id(), model=model, framework="qai-hub",
                         precision="unknown", device="snapdragon", status=status, **cols)]
