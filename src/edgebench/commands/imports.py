"""``edgebench import FORMAT FILE``: numbers measured elsewhere, into the store as one session.

Imports nothing from ``edgebench.cli`` at module level (cli.py registers this command at its
end), so either module can be imported first.
"""

from __future__ import annotations

import click

from edgebench.imports import DESCRIPTIONS
from edgebench.output import FORMATS

#: The columns printed for each imported row.
SHOWN = ("model", "framework", "precision", "device", "prompt_tokens", "status", "measurement",
         "decode_tok_s", "prefill_tok_s", "ttft_ms", "ttft_ms_extrapolated", "source")

_HELP = """Bring numbers measured elsewhere into the store, labelled with their source.

The rows are one new session; their `measurement` column is `imported:FORMAT`, so they are
never taken for edgebench's own measurements (`recommend` and `report` label them). A
malformed FILE is one `error:` line naming the file and line (or key), exit code 2.

\b
FORMAT is one of:
""" + "\n".join(f"  {name:<15} {text}" for name, text in DESCRIPTIONS.items())


@click.command("import", help=_HELP)
@click.argument("fmt", metavar="FORMAT")
# the readers check FILE (a regular file of bounded size: a named pipe would hang, /dev/zero
# never end), each failure one `error:` line
@click.argument("file", type=click.Path())
@click.option("--store", "store", type=click.Path(file_okay=False),
              help="Results folder (default: $EDGEBENCH_STORE, else ./edgebench-results).")
@click.option("--format", "out_fmt", type=click.Choice(FORMATS), default="table",
              show_default=True, help="Output format of the imported rows.")
@click.option("--dry-run", is_flag=True, help="Read and show the rows; write nothing.")
def import_cmd(fmt, file, store, out_fmt, dry_run):
    import dataclasses
    from pathlib import Path

    import pandas as pd

    from edgebench import api
    from edgebench.cli import _emit, open_store
    from edgebench.errors import ConfigError
    from edgebench.imports import reader
    from edgebench.imports.files import shown
    from edgebench.output import render

    read = reader(fmt)
    rows = read(Path(file))
    if not rows:
        raise ConfigError(f"{shown(file)}: nothing to import")
    session = api.new_session_id()
    rows = [dataclasses.replace(r, session_id=session) for r in rows]
    where = "dry run: nothing written"
    if not dry_run:
        st = open_store(store)
        where = f"written to {shown(st.write_session(session, rows))}"
    df = pd.DataFrame([{c: getattr(r, c) for c in SHOWN} for r in rows])
    _emit(render(df, out_fmt, title=f"edgebench import {fmt}: {len(rows)} row(s)"))
    click.echo(f"imported {len(rows)} row(s) as {rows[0].measurement}, session {session}; "
               f"{where}", err=True)
