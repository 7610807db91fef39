"""Screenshot of an `edgebench report` for the README: docs/report-screenshot.png.

    python benchmarks/report_screenshot.py [--out docs/report-screenshot.png] [--store DIR]

Without --store it reports on synthetic rows (benchmarks/bench_report.py), titled as such.
Needs playwright (pip) and a Chromium (Debian: apt-get install chromium-headless-shell).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edgebench import api
from edgebench.reports.browser import check_page
from edgebench.results.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from bench_report import synthetic_store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/report-screenshot.png"))
    ap.add_argument("--store", type=Path, help="a real store (default: synthetic rows)")
    ap.add_argument("--height", type=int, default=1500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgebench-shot-"))
    if args.store:
        store, title = Store(args.store), "edgebench report"
    else:
        store = synthetic_store(tmp / "store", rows=900, sessions=6, models=1)
        title = "edgebench report (synthetic demo rows: benchmarks/bench_report.py)"
    html = api.report(store, out=tmp / "report.html", title=title)
    seen = check_page(html, args.out, clip_from="#chapter", width=1500, height=args.height)
    if seen.errors:
        sys.exit(f"JS errors: {seen.errors}")
    print(f"{seen.plots} plots drawn; screenshot -> {args.out}")


if __name__ == "__main__":
    main()
