"""Sphinx extension: pages executed at build time follow changes in the ``prunerob`` package.

Sphinx re-reads (and myst-nb re-executes) a page only when its own file changed. The theory pages
call ``prunerob``; when its source changes, their outputs would silently be stale. This extension
keeps a hash of the package source in the build environment and, when it changed, marks every
page for re-reading except the experiment notebooks (which the build never executes). The
Experiments index, which summarises the executed notebooks and their stamps, is re-read at every
build.

With ``execute_notebooks: cache`` (jupyter-cache keyed by the notebook's code cells only), a
re-read page would be served from the cache even though ``prunerob`` changed. So the package hash
is also written next to the cache (``<cache>/prunerob_source_hash``), and the cache is cleared
before any page is read whenever the hash differs: a cached output is always one that the current
``prunerob`` source produced.
"""
from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

ALWAYS = ("experiments/index",)
HASH_FILE = "prunerob_source_hash"


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list[str]:
    from prunerob.runner import package_hash

    new = package_hash()
    old = getattr(env, "prunerob_source_hash", None)
    env.prunerob_source_hash = new
    docs = [d for d in ALWAYS if d in env.found_docs]
    if old is not None and old != new:
        docs += [d for d in sorted(env.found_docs) if d not in docs
                 and not (d.startswith("experiments/") and str(env.doc2path(d)).endswith(".ipynb"))]
    return docs


def _invalidate_cache(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    config = getattr(env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    from jupyter_cache import get_cache

    from prunerob.runner import package_hash

    path = Path(config.execution_cache_path)  # myst-nb resolved it (default <outdir>/../.jupyter_cache)
    stamp = path / HASH_FILE
    new = package_hash()
    if path.is_dir() and (not stamp.is_file() or stamp.read_text().strip() != new):
        logger.info("[code_dependency] prunerob source changed: clearing the execution cache %s", path)
        get_cache(str(path)).clear_cache()
    path.mkdir(parents=True, exist_ok=True)
    stamp.write_text(new + "\n")


def setup(app: Sphinx) -> dict:
    app.connect("env-before-read-docs", _invalidate_cache)
    app.connect("env-get-outdated", _outdated)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
