"""Which rows compare: the rules shared by `recommend` (``results.queries``) and `report`
(``reports.tables``), so both answer from the same rows (docs/validity.md, "Comparisons").

Pure: functions take mappings of store columns (dicts, or DataFrame records whose missing
values are NaN) and return plain values. No I/O, no clock, no pandas.

- **Hardware**: rows compare only within one :func:`hardware_key` (not one ``machine_id``:
  hosted CI runners are new machines every night but the same hardware).
- **Cells**: a cell is (run_key, hardware, measurement); its measurement is its latest ``ok``
  row (:func:`cells`); a later error/timeout is a warning beside it, never a hole.
- **Measurement kinds** (``results.provenance``): speed is ranked only from rows whose
  timings are ``measured`` (or NULL, older files); quality from rows whose numerics are (a
  quality row of the HTP simulator, ``numerics=measured;timings=simulated``, counts for its
  KLD and perplexity, never for its timings).
- **Quality protocol**: KLD and perplexity compare only under one reference, corpus, n_ctx
  and chunk count (:func:`protocol`, :func:`choose_protocol`).
- **Memory**: ``peak_mem_mb`` when every row of a comparison has it, else ``peak_rss_mb`` for
  all of them (:func:`memory_figure`), never a mix.
- **KLD floor**: a KLD below ``KLD_FLOOR_FACTOR`` x the reference's storage floor is "at the
  floor" (:func:`at_floor`); ranking counts it as 0, the reference's own value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgebench.results import provenance

#: Statuses of a run that tried to measure and failed (a later one is a warning).
FAILED = ("error", "timeout")
#: A KLD below this many times the reference's storage floor is indistinguishable from it.
KLD_FLOOR_FACTOR = 3.0
#: Row flags (schema v3 ``flags``) that mark a number as doubtful, with their wording.
WARNING_FLAGS = {"machine-busy": "machine busy", "timing-disagreement": "timing disagreement",
                 "launch-failed": "a launch failed",
                 "output-differs-between-launches": "output differs between launches",
                 "cpu-fallback": "some graph nodes ran on the CPU",
                 "mostly-cpu": "most graph nodes ran on the CPU: not an accelerator "
                               "measurement"}
MEMORY_FIGURES = ("peak_mem_mb", "peak_rss_mb")
AT_FLOOR = "at the floor"


def value(row: Mapping[str, Any], key: str) -> Any:
    """``row[key]``, with NaN (pandas' missing value) read as None."""
    v = row.get(key)
    if isinstance(v, float) and v != v:
        return None
    return v


# --- hardware --------------------------------------------------------------------------------

def _os_family(os: str | None) -> str:
    """``"Linux 6.8.0-1017-azure (x86_64)"`` -> ``"Linux (x86_64)"``: kernel versions change
    under hosted runners every few weeks without changing the hardware."""
    if not os:
        return "?"
    m = re.match(r"\s*(\S+).*?(\([^()]*\))?\s*$", str(os))
    return " ".join(p for p in (m.group(1), m.group(2)) if p) if m else str(os)


def _accelerators(acc: str | None) -> str:
    """Accelerator names without driver versions (``"NVIDIA L4, 550.54"`` -> ``"NVIDIA L4"``)."""
    if not acc:
        return ""
    return "; ".join(sorted(a.split(",")[0].strip() for a in str(acc).split(";") if a.strip()))


def hardware_key(row: Mapping[str, Any]) -> str:
    """The device fingerprint rows compare within, readable: CPU model, logical cores (else
    physical), RAM rounded to GiB (identical VMs differ by a few MB), OS name and architecture
    (no kernel version), accelerator names (no driver version).

    A row without any of these facts (hand-made, imported) falls back to its ``machine_id``.
    """
    cpu = value(row, "cpu_model")
    cores = value(row, "cpu_cores_logical") or value(row, "cpu_cores_physical")
    ram = value(row, "ram_total_mb")
    os, acc = value(row, "os"), value(row, "accelerators")
    if cpu is None and cores is None and ram is None and os is None and not acc:
        return f"machine {value(row, 'machine_id') or '?'}"
    parts = [str(cpu or "?").strip(), f"{int(cores)} cores" if cores else "? cores",
             f"{round(float(ram) / 1024)} GiB" if ram else "? GiB", _os_family(os)]
    if acc := _accelerators(acc):
        parts.append(acc)
    return " · ".join(parts)


def choose_hardware(counts: Mapping[str, int], current: str | None = None) -> str:
    """The hardware to rank: ``current`` (this machine's) if it has rows, else the one with most
    rows (ties: the first key in sort order)."""
    if current is not None and counts.get(current):
        return current
    return min(counts, key=lambda k: (-counts[k], k))


# --- cells: the latest ok row ----------------------------------------------------------------

def measurement_kind(row: Mapping[str, Any]) -> str:
    """The column as written: ``measured`` (NULL in older files), ``estimated``,
    ``simulated``, ``imported:*`` or a per-part value (``results.provenance``)."""
    return str(value(row, "measurement") or "measured")


def is_measured(row: Mapping[str, Any]) -> bool:
    """Whether the row's timings are edgebench's own measurement (its speed ranks)."""
    return provenance.timings_measured(value(row, "measurement"))


def numerics_measured(row: Mapping[str, Any]) -> bool:
    """Whether the row's arithmetic was computed here (its perplexity and KLD rank)."""
    return provenance.numerics_measured(value(row, "measurement"))


def cell_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(value(row, "run_key")), hardware_key(row), measurement_kind(row)


@dataclass(frozen=True)
class Cell:
    """Positions in the input of one cell's rows: ``ok`` its measurement (the latest ok row,
    None if it has none), ``failure`` a later error/timeout, ``latest`` its newest row."""

    ok: int | None
    failure: int | None
    latest: int


def _time(rows: Sequence[Mapping[str, Any]], i: int) -> tuple:
    t = value(rows[i], "started_at")
    return (0, i) if t is None else (1, t, i)


def cells(rows: Sequence[Mapping[str, Any]]) -> list[Cell]:
    """Every cell of ``rows``, in the order of its newest row's position."""
    ok: dict[tuple, int] = {}
    fail: dict[tuple, int] = {}
    latest: dict[tuple, int] = {}
    for i in sorted(range(len(rows)), key=lambda i: _time(rows, i)):
        k = cell_key(rows[i])
        latest[k] = i
        status = value(rows[i], "status")
        if status == "ok":
            ok[k] = i
            fail.pop(k, None)
        elif status in FAILED:
            fail[k] = i
    out = [Cell(ok.get(k), fail.get(k) if k in ok else None, i) for k, i in latest.items()]
    return sorted(out, key=lambda c: c.latest)


def latest_ok(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str | None]]:
    """(position, warning) of each cell's measurement: its latest ok row, with the text of a
    later failed run of the same cell (None if there is none). Cells with no ok row are out."""
    return sorted((c.ok, None if c.failure is None else failure_text(rows[c.failure]))
                  for c in cells(rows) if c.ok is not None)


def failure_text(row: Mapping[str, Any]) -> str:
    t = value(row, "started_at")
    when = f" on {t.strftime('%Y-%m-%d %H:%M')}" if hasattr(t, "strftime") else ""
    msg = str(value(row, "message") or "no message").splitlines()[0][:100]
    return f"a later run{when} ended in {value(row, 'status')}: {msg}"


def row_warnings(row: Mapping[str, Any]) -> list[str]:
    """What makes a row's numbers doubtful: a busy machine, disagreeing timings."""
    flags = value(row, "flags")
    flags = [] if flags is None else [str(f) for f in flags]
    out = [text for flag, text in WARNING_FLAGS.items() if flag in flags]
    busy = value(row, "machine_busy")
    if busy is not None and bool(busy) and "machine busy" not in out:
        out.insert(0, "machine busy")
    return out


# --- quality protocol ------------------------------------------------------------------------

#: Columns that make two quality rows comparable (reference, its artifact and storage, corpus,
#: chunk length and count).
PROTOCOL = ("quality_reference", "reference_sha256", "reference_storage", "corpus_sha256",
            "n_ctx", "chunks")


def protocol(row: Mapping[str, Any]) -> tuple:
    """A quality row's protocol (:data:`PROTOCOL`), counts as ints whatever the row's dtype."""
    return tuple(int(v) if isinstance(v, float) and v.is_integer() else v
                 for v in (value(row, k) for k in PROTOCOL))


def protocol_label(p: tuple) -> str:
    d = dict(zip(PROTOCOL, p))
    corpus = str(d["corpus_sha256"] or "?")[:12]
    parts = [f"reference {d['quality_reference'] or '?'}"]
    if d["reference_sha256"]:
        parts.append(f"reference artifact {str(d['reference_sha256'])[:12]}")
    if d["reference_storage"]:
        parts.append(f"stored as {d['reference_storage']}")
    parts += [f"corpus {corpus}", f"n_ctx {d['n_ctx'] or '?'}", f"{d['chunks'] or '?'} chunks"]
    return ", ".join(parts)


def choose_protocol(counts: Mapping[tuple, int]) -> tuple:
    """The protocol most candidates have; ties: more chunks, longer n_ctx, then the label."""
    def order(p: tuple) -> tuple:
        d = dict(zip(PROTOCOL, p))
        return (-counts[p], -int(d["chunks"] or 0), -int(d["n_ctx"] or 0), protocol_label(p))
    return min(counts, key=order)


# --- memory, KLD floor -----------------------------------------------------------------------

def memory_figure(peak_mem: Iterable[float | None]) -> str:
    """``peak_mem_mb`` when every value of a comparison is present, else ``peak_rss_mb``."""
    values = list(peak_mem)
    have = [v for v in values if v is not None and v == v]
    return "peak_mem_mb" if values and len(have) == len(values) else "peak_rss_mb"


def memory_note(figure: str, lacking: int, total: int) -> str | None:
    """What a comparison says about its memory figure (None when it is the kernel's one)."""
    if figure == "peak_mem_mb":
        return None
    if lacking == total:
        return ("memory is peak_rss_mb (sampled RSS): these rows predate peak_mem_mb")
    return (f"memory is peak_rss_mb (sampled RSS) for all: {lacking} of {total} row(s) lack "
            "peak_mem_mb (older schema); the two figures are never mixed")


def at_floor(kld: float | None, floor: float | None) -> bool:
    """Whether a mean KLD is below ``KLD_FLOOR_FACTOR`` x the reference's storage floor."""
    if kld is None or floor is None or kld != kld or floor != floor:
        return False
    return kld < KLD_FLOOR_FACTOR * floor


def floor_text(floor: float) -> str:
    return f"{AT_FLOOR} (< {KLD_FLOOR_FACTOR:g}x {floor:.2g})"
