"""Sphinx extension: keep the book's HTML free of network fetches and of duplicated scripts.

1. Jupyter Book 1.x adds *every* ``.js`` file below ``book/_static`` to ``html_js_files``. The
   vendored MathJax (``_static/mathjax``) must only be loaded once, through ``mathjax_path``
   (with ``defer``), so its files are removed from ``html_js_files`` here.
2. With ``launch_buttons.thebe: false`` (``_config.yml``) nothing on a page may talk to thebe or
   Binder, yet Jupyter Book always loads ``sphinx_thebe``, which adds an inline script naming
   ``https://unpkg.com/thebe@.../lib/index.js``, ``sphinx-thebe.js``/``.css`` and a
   ``text/x-thebe-config`` block on every page. Its event handlers and stylesheet are removed.
3. Sphinx 7.4 lists an inline script added after ``builder-inited`` twice (once with filename
   ``None`` from ``Sphinx.add_js_file``, once with ``''`` from the registry in
   ``prepare_writing``): two ``const THEBE_JS_URL = ...`` declarations, i.e. ``SyntaxError:
   Identifier 'THEBE_JS_URL' has already been declared`` in the browser. The page's
   ``script_files`` are de-duplicated in ``html-page-context``.
4. ``static/prunerob.css`` (next to this file) is added to every page: wide tables and text
   outputs scroll inside the content column instead of being cut off at the right.
5. After an HTML build, every page is scanned for ``<script src>``, ``<link href>`` (stylesheets,
   preloads, icons), ``<img src>`` and ``<iframe src>`` that point to another host, for inline
   scripts whose text names a remote URL, and for inline scripts that occur twice on a page. Each
   finding is a Sphinx warning, so ``jupyter-book build -W`` fails. Plain hyperlinks
   (``<a href>``) are fine and not reported.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDORED_PREFIX = "mathjax/"
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
#: a URL inside script text: an explicit scheme, or a protocol-relative ``"//host`` in a string
#: (``// comments`` are not URLs, so the bare form needs a quote before it)
_REMOTE_IN_TEXT = re.compile(r"\b(?:https?|wss?|ftp)://[^\s\"'`)]+|[\"'`]//[a-z0-9][a-z0-9.-]*\.[a-z]{2,}[^\s\"'`]*",
                             re.IGNORECASE)
_FETCHING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch", "manifest"}
#: ``<script type=...>`` values the browser executes (no type attribute counts as JavaScript)
_JS_TYPES = {"", "text/javascript", "application/javascript", "module", "text/x-thebe-config"}


def _drop_vendored_js(app: Sphinx, config: Config) -> None:
    files = list(getattr(config, "html_js_files", []) or [])
    kept = [f for f in files if not (isinstance(f, str) and f.startswith(VENDORED_PREFIX))
            and not (isinstance(f, (tuple, list)) and str(f[0]).startswith(VENDORED_PREFIX))]
    config.html_js_files = kept


def _thebe_enabled(config: Config) -> bool:
    options = getattr(config, "html_theme_options", None) or {}
    return bool((options.get("launch_buttons") or {}).get("thebe"))


def _drop_thebe(app: Sphinx, config: Config) -> None:
    """Disconnect sphinx_thebe's handlers and drop its stylesheet when thebe is off."""
    if _thebe_enabled(config):
        return
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "").split(".")[0] == "sphinx_thebe":
                app.disconnect(listener.id)
    app.registry.css_files = [(f, a) for f, a in app.registry.css_files if "sphinx-thebe" not in str(f)]


def _asset_key(asset: Any) -> tuple:
    attrs = getattr(asset, "attributes", {}) or {}
    return (getattr(asset, "filename", asset) or "", getattr(asset, "priority", 0),
            tuple(sorted((str(k), str(v)) for k, v in attrs.items())))


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Keep the first of identical entries of the page's ``script_files`` (in place)."""
    files = context.get("script_files")
    if not isinstance(files, list):
        return
    seen: set[tuple] = set()
    unique = []
    for asset in files:
        key = _asset_key(asset)
        if key not in seen:
            seen.add(key)
            unique.append(asset)
    files[:] = unique


class _AssetScanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []
        self.inline: list[str] = []
        self._script: list[str] | None = None

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
        if tag == "script" and not a.get("src") and a.get("type", "").lower() in _JS_TYPES:
            self._script = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            text = "".join(self._script).strip()
            self._script = None
            if text:
                self.inline.append(text)
                self.remote += [f"<script> (inline) {m}" for m in _REMOTE_IN_TEXT.findall(text)]


def _scan(html: str) -> _AssetScanner:
    scanner = _AssetScanner()
    scanner.feed(html)
    scanner.close()
    return scanner


def remote_assets(html: str) -> list[str]:
    """Return the remote URLs a page would fetch while loading (scripts, styles, images, frames)
    and the remote URLs named in the text of its inline scripts."""
    return _scan(html).remote


def duplicate_inline_scripts(html: str) -> list[str]:
    """Return the text (first 80 characters) of every inline script that occurs more than once."""
    seen: dict[str, int] = {}
    for text in _scan(html).inline:
        seen[text] = seen.get(text, 0) + 1
    return [t[:80] for t, k in seen.items() if k > 1]


def _check_outputs(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for page in sorted(outdir.rglob("*.html")):
        html = page.read_text(encoding="utf-8", errors="replace")
        rel = page.relative_to(outdir)
        for item in remote_assets(html):
            logger.warning("offline book: %s loads a remote asset %s", rel, item,
                           type="offline", subtype="remote-asset")
        for text in duplicate_inline_scripts(html):
            logger.warning("offline book: %s has the inline script %r twice", rel, text,
                           type="offline", subtype="duplicate-script")


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _add_static)
    app.add_css_file("prunerob.css")
    app.connect("config-inited", _drop_vendored_js, priority=900)
    app.connect("config-inited", _drop_thebe, priority=900)
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    app.connect("build-finished", _check_outputs)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
