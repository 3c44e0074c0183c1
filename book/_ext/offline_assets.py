"""Sphinx extension: keep the book's HTML free of network fetches.

1. Jupyter Book 1.x adds *every* ``.js`` file below ``book/_static`` to ``html_js_files``. The
   vendored MathJax (``_static/mathjax``) must only be loaded once, through ``mathjax_path``
   (with ``defer``), so its files are removed from ``html_js_files`` here.
2. After an HTML build, every page is scanned for ``<script src>``, ``<link href>`` (stylesheets,
   preloads, icons), ``<img src>`` and ``<iframe src>`` that point to another host. Each one is
   reported as a Sphinx warning, so ``jupyter-book build -W`` fails when the book would fetch
   something from the network. Plain hyperlinks (``<a href>``) are fine and not reported.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDORED_PREFIX = "mathjax/"
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_FETCHING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch", "manifest"}


def _drop_vendored_js(app: Sphinx, config: Config) -> None:
    files = list(getattr(config, "html_js_files", []) or [])
    kept = [f for f in files if not (isinstance(f, str) and f.startswith(VENDORED_PREFIX))
            and not (isinstance(f, (tuple, list)) and str(f[0]).startswith(VENDORED_PREFIX))]
    config.html_js_files = kept


class _AssetScanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        url = ""
        if tag in ("script", "img", "iframe", "audio", "video", "source", "embed"):
            url = a.get("src", "")
        elif tag == "link":
            rels = set(a.get("rel", "").lower().split())
            if rels & _FETCHING_LINK_RELS:
                url = a.get("href", "")
        if url and _REMOTE.match(url):
            self.remote.append(f"<{tag}> {url}")


def remote_assets(html: str) -> list[str]:
    """Return the remote URLs a page would fetch while loading (scripts, styles, images, frames)."""
    scanner = _AssetScanner()
    scanner.feed(html)
    return scanner.remote


def _check_outputs(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for page in sorted(outdir.rglob("*.html")):
        for item in remote_assets(page.read_text(encoding="utf-8", errors="replace")):
            logger.warning("offline book: %s loads a remote asset %s", page.relative_to(outdir), item,
                           type="offline", subtype="remote-asset")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _drop_vendored_js, priority=900)
    app.connect("build-finished", _check_outputs)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
