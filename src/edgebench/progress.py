"""A rich progress display over a sweep; silent when disabled (not a TTY, or --quiet)."""

from __future__ import annotations

from edgebench.results.schema import RunRecord
from edgebench.suites.expand import PlannedRun

_STYLE = {"ok": "green", "error": "red", "timeout": "red", "unavailable": "yellow",
          "skipped": "dim"}


def label(run: PlannedRun) -> str:
    return (f"{run.model} {run.framework} {run.precision} {run.device} "
            f"p{run.prompt_tokens} n{run.new_tokens} t{run.threads}")


class SweepProgress:
    """Context manager; pass ``update`` as the sweep's progress callback."""

    def __init__(self, total: int, console, enabled: bool = True) -> None:
        self.total, self.console, self.enabled = total, console, enabled
        self._progress = None
        self._task = None

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def update(self, event: str, run: PlannedRun, row: RunRecord | None) -> None:
        if self._progress is None:
            return
        if event == "start":
            self._progress.update(self._task, description=label(run))
            return
        self._progress.advance(self._task)
        if event == "resumed":
            self._progress.console.print(f"[dim]done already[/] {label(run)}")
        elif row is not None:
            style = _STYLE.get(row.status, "")
            detail = (f"decode {row.decode_tok_s:.1f} tok/s, ttft {row.ttft_ms:.0f} ms"
                      if row.status == "ok" and row.decode_tok_s else (row.message or ""))
            self._progress.console.print(f"[{style}]{row.status:>11}[/] {label(run)}  {detail}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
