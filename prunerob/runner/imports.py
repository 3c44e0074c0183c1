"""The package source a notebook depends on: the static import closure that enters its stamp.

A stamp used to hash every ``*.py`` of the package, so adding a module for one chapter marked
every committed page stale and ``prunerob reproduce`` would rerun hours of experiments that the
change cannot affect. The stamp now hashes only the modules a notebook can reach:

* every ``import prunerob...`` / ``from prunerob... import ...`` in the notebook source, found with
  :mod:`ast` anywhere in the file (inside functions and ``try`` blocks too), and, recursively,
  every package-internal import (absolute or relative) of the modules reached;
* the ``__init__.py`` of every package on the way (Python runs them on import);
* every module of a package whose code calls ``import_submodules`` (the registries of
  :mod:`prunerob.core.pruning` and :mod:`prunerob.core.attacks` load all their files at import).

The runner that executes the notebook is not part of it: what it passes in (profile, parameters,
notebook source) enters the key on its own, and how it decorates the page does not change a result.

The closure over-approximates what runs (an import inside an unused branch still counts), never
the other way round: a module that can run in the kernel is in the hash.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from prunerob.engine import codehash

_DYNAMIC = "import_submodules"
_ALWAYS: tuple[str, ...] = ()  # sub-packages every notebook depends on


def _module_file(package_dir: Path, dotted: list[str]) -> Path | None:
    """``package_dir``-relative file of the module ``dotted`` (``codehash.module_file``)."""
    return codehash.module_file(package_dir, dotted)


def _parents(package_dir: Path, dotted: list[str]) -> list[Path]:
    return [f for i in range(len(dotted)) if (f := _module_file(package_dir, dotted[:i])) is not None]


def _imports(tree: ast.AST, pkg: str, here: list[str]) -> tuple[list[list[str]], bool]:
    """Dotted package-relative names imported in ``tree`` (:func:`prunerob.engine.codehash.imports_of`)
    and whether it calls ``import_submodules``."""
    def called(node: ast.AST) -> str | None:
        f = node.func  # type: ignore[attr-defined]
        return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)

    dynamic = any(isinstance(node, ast.Call) and called(node) == _DYNAMIC for node in ast.walk(tree))
    return codehash.imports_of(tree, pkg, here), dynamic


def render_files(source: str, package_dir: Path) -> list[Path]:
    """The files a store-backed page's stamp hashes: the import closure of ``source`` without the
    registries' entry modules and without ``import_submodules`` (their code is in the unit keys,
    :mod:`prunerob.engine.codehash`), so a new method file or an edit of one method leaves the
    page's rendering current."""
    package_dir = Path(package_dir)
    try:
        seeds = imports_of(ast.parse(source), package_dir.name, [])
    except SyntaxError:
        return dependency_files(source, package_dir)
    return codehash.closure(seeds, package_dir, block=set(codehash.entry_modules(package_dir).values()))


def render_hash(source: str, package_dir: Path) -> str:
    """sha256 over the relative path and bytes of every file of :func:`render_files`."""
    return codehash.files_hash(render_files(source, Path(package_dir)), Path(package_dir))


def imports_of(tree: ast.AST, pkg: str, here: list[str]) -> list[list[str]]:
    return _imports(tree, pkg, here)[0]


def dependency_files(source: str, package_dir: Path) -> list[Path]:
    """The package files the Python ``source`` (a notebook's jupytext text) can import, sorted."""
    package_dir = Path(package_dir)
    pkg = package_dir.name
    try:
        todo, _ = _imports(ast.parse(source), pkg, [])
    except SyntaxError:  # not parseable (magics): depend on the whole package
        return sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)
    todo += [[a] for a in _ALWAYS if _module_file(package_dir, [a]) is not None]
    seen: set[Path] = set()
    while todo:
        dotted = todo.pop()
        f = _module_file(package_dir, dotted)
        for parent in _parents(package_dir, dotted) + ([f] if f is not None else []):
            if parent in seen:
                continue
            seen.add(parent)
            # the package holding the module (for an __init__.py: the package itself)
            here = list(parent.relative_to(package_dir).parts[:-1])
            found, dynamic = _imports(ast.parse(parent.read_text()), pkg, here)
            todo.extend(found)
            if dynamic:
                folder = parent.parent
                todo.extend(list(q.relative_to(package_dir).with_suffix("").parts)
                            for q in folder.glob("*.py") if q.name != "__init__.py")
    return sorted(seen)


def dependency_hash(source: str, package_dir: Path) -> str:
    """sha256 over the relative path and bytes of every file of :func:`dependency_files`."""
    package_dir = Path(package_dir)
    h = hashlib.sha256()
    for p in dependency_files(source, package_dir):
        h.update(p.relative_to(package_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()
