"""Sphinx extension: offline cross-references for the API reference (book/api.md).

The book is built without network access, so intersphinx can never download ``objects.inv``
from pytorch.org, numpy.org, pandas.pydata.org or readthedocs. An inventory is used only when a
locally generated file exists under ``book/_static/inv/<name>.inv``; then references to that
package's objects become links to its online documentation (plain ``<a href>`` links, which
fetch nothing when a page loads). For every package without an inventory, unresolvable
references to its types are listed in ``nitpick_ignore_regex``, so ``-n`` (nitpicky) reports
only references that should resolve inside the book.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment

#: package -> (documentation root, module prefixes used in type hints)
EXTERNAL = {
    "torch": ("https://pytorch.org/docs/stable/", ("torch", "nn")),
    "numpy": ("https://numpy.org/doc/stable/", ("numpy", "np")),
    "pandas": ("https://pandas.pydata.org/docs/", ("pandas", "pd")),
    "torchattacks": ("https://adversarial-attacks-pytorch.readthedocs.io/en/latest/", ("torchattacks",)),
    "python": ("https://docs.python.org/3/", ()),
}
#: packages the API mentions that have no inventory at all (never linked)
UNLINKED = ("scipy", "matplotlib", "seaborn", "sympy", "timm", "safetensors", "dask", "distributed",
            "dask_jobqueue", "PIL", "IPython", "myst_nb", "papermill", "torchvision", "collections",
            "typing", "pathlib", "os", "io", "_io", "Axes", "Figure", "Tensor", "DataFrame", "Series",
            "ndarray", "Module", "DataLoader", "Client")


def inventories(srcdir: str | Path) -> dict[str, tuple[str, str]]:
    """``intersphinx_mapping`` entries for the inventories present under ``srcdir/_static/inv``."""
    inv = Path(srcdir) / "_static" / "inv"
    return {name: (url, str(inv / f"{name}.inv")) for name, (url, _) in EXTERNAL.items()
            if (inv / f"{name}.inv").is_file()}


def _configure(app: Sphinx, config: Config) -> None:
    mapping = inventories(app.srcdir)
    config.intersphinx_mapping = mapping
    config.intersphinx_timeout = 1
    prefixes = [p for name, (_, pre) in EXTERNAL.items() if name not in mapping for p in pre]
    prefixes += list(UNLINKED)
    if "python" not in mapping:
        # builtins and the standard library (int, str, Path, Callable, ...) when no Python inventory
        prefixes += ["int", "float", "str", "bool", "bytes", "dict", "list", "tuple", "set", "object",
                     "None", "Any", "Callable", "Iterable", "Iterator", "Mapping", "Sequence", "Path",
                     "OrderedDict", "Literal", "Union", "Optional", "type", "slice", "range", "Exception",
                     "ValueError", "KeyError", "TypeError", "RuntimeError", "PathLike", "BytesIO",
                     "Generator", "MutableMapping", "frozenset", "complex", "NoneType", "ellipsis"]
    pattern = r"(?:" + "|".join(sorted(set(prefixes))) + r")(?:\..*)?"
    # type variables (``T = TypeVar("T")``) have no documentation entry of their own
    typevars = (r"py:class", r"prunerob\.[\w.]*\.[A-Z]")
    config.nitpick_ignore_regex = [*list(config.nitpick_ignore_regex or []), (r"py:.*", pattern), typevars]


def _alias_reference(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | None:
    """Resolve a type hint naming a type alias (e.g. ``AttackFn = Callable[...]``, documented as
    data) to the alias' entry: annotations always refer to their types with the ``py:class`` role."""
    if node.get("refdomain") != "py" or node.get("reftype") != "class":
        return None
    py = env.get_domain("py")
    return py.resolve_xref(env, node["refdoc"], app.builder, "data", node["reftarget"], node, contnode)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=800)
    app.connect("missing-reference", _alias_reference)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
