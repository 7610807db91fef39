"""Render a DataFrame as a rich table, markdown, CSV or JSON."""

from __future__ import annotations

import math
from datetime import datetime

FORMATS = ("table", "md", "csv", "json")


def _cell(value, width: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


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
    if fmt == "csv":
        return df.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return df.to_json(orient="records", date_format="iso", indent=2)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in df.columns:
        numeric = str(df[col].dtype).startswith(("float", "int", "Float", "Int"))
        table.add_column(str(col), justify="right" if numeric else "left", overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*(_cell(v, width=80) for v in row))
    if console is None:
        console = Console()
        if not console.is_terminal:  # files and pipes get the whole table, not 80 columns
            console = Console(width=max(200, console.width))
    console.print(table)
    return None
