"""Render a DataFrame as a rich table, markdown, CSV or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

FORMATS = ("table", "md", "csv", "json")

# Short headers for the terminal table; md/csv/json keep the column names of METRICS.md.
HEADERS = {
    "prompt_tokens": "prompt", "new_tokens": "new", "ttft_ms": "TTFT ms",
    "prefill_tok_s": "prefill tok/s", "decode_tok_s": "decode tok/s", "decode_tok_s_cv": "cv",
    "tpot_ms": "TPOT ms", "load_s": "load s", "peak_rss_mb": "peak RSS MB",
    "peak_mem_mb": "peak mem MB",
    "framework_version": "version", "started_at": "started (UTC)",
}


def _missing(value) -> bool:
    """None, NaN or NaT (a missing timestamp is NaT, which has no strftime)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _cell(value, width: int | None = None) -> str:
    if isinstance(value, Mapping):  # struct columns (sql): keys with their values
        text = "{" + ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) + "}"
        return text if width is None or len(text) <= width else text[: width - 3] + "..."
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):  # list columns
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, datetime):
        try:
            return value.strftime("%Y-%m-%d %H:%M")
        except (ValueError, NotImplementedError, OverflowError):  # outside datetime's range
            return str(value)
    text = str(value)
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


def _is_list(value) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes, Mapping))


def _nested(value) -> bool:
    """A list or a mapping (struct) cell: CSV writes it as JSON."""
    return isinstance(value, Mapping) or _is_list(value)


def _json_cell(value):
    """A list or mapping cell as JSON text (numpy values as plain numbers); others as they
    are."""
    import json

    def plain(v):
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if _is_list(v):
            return [plain(x) for x in v]
        return v.item() if hasattr(v, "item") else v

    return json.dumps(plain(value), default=str) if _nested(value) else value


def to_markdown(df) -> str:
    """A GitHub-flavoured markdown table."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def render(df, fmt: str, console=None, title: str | None = None) -> str | None:
    """Return the text for md/csv/json; print a rich table for ``table`` and return None."""
    if fmt == "md":
        return to_markdown(df)
    if fmt == "csv":  # list and struct cells as JSON, not as Python's repr
        listy = [c for c in df.columns
                 if df[c].dtype == object and any(_nested(v) for v in df[c])]
        if listy:
            df = df.assign(**{c: df[c].map(_json_cell) for c in listy})
        return df.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return df.to_json(orient="records", date_format="iso", indent=2)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in df.columns:
        numeric = str(df[col].dtype).startswith(("float", "int", "Float", "Int"))
        table.add_column(HEADERS.get(str(col), str(col)), justify="right" if numeric else "left",
                         no_wrap=True, overflow="ellipsis")
    from rich.markup import escape

    for row in df.itertuples(index=False):  # cell text is data, never rich markup
        table.add_row(*(escape(_cell(v, width=80)) for v in row))
    if console is None:
        console = Console()
        if not console.is_terminal:  # files and pipes get the whole table, not 80 columns
            console = Console(width=max(200, console.width))
    console.print(table)
    return None
