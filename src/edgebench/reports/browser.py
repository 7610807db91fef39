"""Open a report in headless Chromium (Playwright), offline: did every plot draw, any JS error?

Used by the browser test and the screenshot script. Chromium is found on the PATH (Debian's
``chromium-headless-shell`` or ``chromium``), at ``$EDGEBENCH_CHROMIUM``, or as Playwright's own.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome",
              "headless_shell")
_DRAWN = """() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  return divs.length > 0 && divs.every(d => d._fullLayout && d.querySelector('svg.main-svg'));
}"""
_SVG_NODES = """() => [...document.querySelectorAll('.plotly-graph-div')]
  .map(d => d.querySelectorAll('svg.main-svg *').length)"""


@dataclass
class PageCheck:
    """What the browser saw: JS errors, plot count, SVG node count per plot, section ids."""

    errors: list[str] = field(default_factory=list)
    plots: int = 0
    svg_nodes: list[int] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # requests to anything but the file


def find_chromium() -> str | None:
    """A Chromium executable: ``$EDGEBENCH_CHROMIUM``, else the first candidate on the PATH."""
    env = os.environ.get("EDGEBENCH_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def check_page(html: Path, screenshot: Path | None = None, *, width: int = 1400,
               height: int = 1000, clip_from: str | None = None,
               timeout_ms: int = 60_000) -> PageCheck:
    """Load ``html`` with the network cut off, wait for plotly to draw every plot, collect
    console errors; optionally save a PNG (from the element ``clip_from`` down, else the page).

    Raises:
        ImportError: playwright is not installed.
        playwright.sync_api.Error: Chromium cannot start or a plot never draws.
    """
    from playwright.sync_api import sync_playwright

    out = PageCheck()
    url = Path(html).resolve().as_uri()
    with sync_playwright() as p:
        exe = find_chromium()
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"]) if exe \
            else p.chromium.launch()
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: out.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: out.errors.append(str(e)))

            def only_the_file(route):
                if route.request.url.startswith("file:") or route.request.url == "about:blank":
                    return route.continue_()
                out.blocked.append(route.request.url)
                return route.abort()

            page.route("**/*", only_the_file)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            page.wait_for_function(_DRAWN, timeout=timeout_ms)
            out.svg_nodes = page.evaluate(_SVG_NODES)
            out.plots = len(out.svg_nodes)
            out.sections = page.evaluate("() => [...document.querySelectorAll('section')]"
                                         ".map(s => s.id)")
            if screenshot is not None:
                _screenshot(page, Path(screenshot), clip_from, width, height)
        finally:
            browser.close()
    return out


def _screenshot(page, path: Path, clip_from: str | None, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if clip_from is None:
        page.screenshot(path=str(path), full_page=True)
        return
    box = page.locator(clip_from).first.bounding_box()
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": box["y"], "width": width, "height": height})
