"""The HTML report in headless Chromium, offline: every plot draws, no JS error, a screenshot.

Needs playwright (pip) and a Chromium: Debian's ``chromium-headless-shell`` (apt), any
``chromium`` on the PATH, ``$EDGEBENCH_CHROMIUM``, or Playwright's own. Skipped without one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgebench import api
from edgebench.reports.browser import find_chromium
from edgebench.results.store import Store
from test_report import T0, hand_rows, speed

pytest.importorskip("playwright.sync_api", reason="pip install playwright")
SECTIONS = ["recommendation", "chapter", "matrices", "pareto", "latency", "history",
            "environment"]  # the answer first (reports/build.py SECTIONS)


def _chromium_or_skip():
    if find_chromium():
        return
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as p:
            p.chromium.launch().close()
    except Error:
        pytest.skip("no Chromium: apt-get install chromium-headless-shell (or set "
                    "EDGEBENCH_CHROMIUM)")


def test_report_renders_in_chromium(tmp_path):
    _chromium_or_skip()
    from edgebench.reports.browser import check_page

    store = Store(tmp_path / "store")
    store.write_session("s1", hand_rows())
    store.write_session("s2", [speed("llama-cpp", "f16", "high", 16.0, 1000.0, 22.0,
                                     session_id="s2", started_at=T0 + timedelta(days=1))])
    html = api.report(store, out=tmp_path / "report.html")
    shot = tmp_path / "report.png"
    seen = check_page(html, shot)
    assert seen.errors == []
    assert seen.blocked == []  # opened offline: nothing but the file was requested
    assert seen.sections == SECTIONS
    # per device: a Pareto and a latency plot (2 devices), quality vs size, history
    assert seen.plots >= 6
    assert all(n > 20 for n in seen.svg_nodes), seen.svg_nodes
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
