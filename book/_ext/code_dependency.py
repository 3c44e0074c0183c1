"""Sphinx extension: pages executed at build time follow changes in the ``prunerob`` package.

Sphinx re-reads (and myst-nb re-executes) a page only when its own file changed. The theory pages
call ``prunerob``; when its source changes, their committed-to-HTML outputs would silently be
stale. This extension keeps a hash of the package source in the build environment and, when it
changed, marks every page for re-reading except the experiment notebooks (which the build never
executes). The Experiments index, which summarises the executed notebooks and their stamps, is
re-read at every build.
"""
from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

ALWAYS = ("experiments/index",)


def _outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list[str]:
    from prunerob.runner import package_hash

    new = package_hash()
    old = getattr(env, "prunerob_source_hash", None)
    env.prunerob_source_hash = new
    docs = [d for d in ALWAYS if d in env.found_docs]
    if old is not None and old != new:
        docs += [d for d in sorted(env.found_docs)
                 if d not in docs and not (d.startswith("experiments/") and str(env.doc2path(d)).endswith(".ipynb"))]
    return docs


def setup(app: Sphinx) -> dict:
    app.connect("env-get-outdated", _outdated)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
