"""Which source files a computation runs, and their hash: the code part of result-store keys.

A result-store unit (:mod:`prunerob.engine.store`) must be recomputed when the code that produced
it changes, and only then. The code of a unit is the static import closure of its entry modules
(found with :mod:`ast`, including imports inside functions, the ``__init__.py`` of every package on
the way, and relative imports), with one refinement for the registries:

* the files of :mod:`prunerob.core.pruning` and :mod:`prunerob.core.attacks` that *register* a
  method or an attack (``Registry.origin``) enter a unit's closure only when the unit uses that
  method or attack (or a used one imports them). So editing ``magnitude.py`` changes the keys of
  the units pruned by magnitude (and ``magnitude_global``, which imports it), and adding a new
  method file changes no key at all;
* ``import_submodules`` (the registries' "load every file of this package") is not followed.

The same closure, applied to a notebook's source, is the page's render hash
(:mod:`prunerob.runner.imports`): registry entry modules and the unit code stay out of it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: the registries whose entry modules enter a closure only when used
REGISTRIES = ("prunerob.core.pruning", "prunerob.core.attacks")


def module_file(package_dir: Path, dotted: list[str]) -> Path | None:
    """``package_dir``-relative file of the module ``dotted`` (parts after the package name)."""
    base = package_dir.joinpath(*dotted) if dotted else package_dir
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if dotted and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _parents(package_dir: Path, dotted: list[str]) -> list[Path]:
    return [f for i in range(len(dotted)) if (f := module_file(package_dir, dotted[:i])) is not None]


def imports_of(tree: ast.AST, pkg: str, here: list[str]) -> list[list[str]]:
    """Dotted package-relative names imported anywhere in ``tree``; ``here`` is the
    package-relative path of the package holding the module (the anchor of relative imports)."""
    found: list[list[str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == pkg]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here[: max(len(here) - (node.level - 1), 0)]
                mod = anchor + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == pkg:
                mod = node.module.split(".")[1:]
            else:
                continue
            found.append(mod)
            found.extend(mod + [a.name] for a in node.names)  # "from pkg import module" form
    return found


@functools.cache
def _parsed(path: Path, mtime: float) -> ast.AST:
    return ast.parse(path.read_text())


def _tree(path: Path) -> ast.AST:
    return _parsed(path, path.stat().st_mtime)


@functools.lru_cache(maxsize=4)
def _reexports(package_dir: Path) -> dict[tuple[str, ...], list[str]]:
    """``(registry package parts..., name)`` -> dotted module the registry's ``__init__`` imports it from."""
    out: dict[tuple[str, ...], list[str]] = {}
    for r in REGISTRIES:
        parts = r.split(".")[1:]
        init = module_file(package_dir, parts)
        if init is None:
            continue
        for node in ast.walk(_tree(init)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(r + "."):
                for a in node.names:
                    out[(*parts, a.asname or a.name)] = node.module.split(".")[1:]
    return out


def entry_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """``"<registry>:<name>"`` -> the file that registered it, for every pruning method and attack."""
    from prunerob.core import attacks, pruning

    out = {}
    for reg, kind in ((pruning.REGISTRY, "method"), (attacks.REGISTRY, "attack")):
        for name, mod in reg.origins().items():
            f = module_file(package_dir, mod.split(".")[1:])
            if f is not None and mod.startswith("prunerob."):
                out[f"{kind}:{name}"] = f
    return out


def closure(seeds: Iterable[list[str] | Path], package_dir: Path = PACKAGE_DIR,
            block: Iterable[Path] = ()) -> list[Path]:
    """Files reachable from ``seeds`` (dotted package-relative names or files) by imports. The
    ``__init__.py`` of a registry (:data:`REGISTRIES`) does not lead into the files of ``block``
    (its unused entry modules); any other module importing one of them does."""
    package_dir = Path(package_dir)
    pkg = package_dir.name
    blocked = {Path(b) for b in block}
    inits = {module_file(package_dir, r.split(".")[1:]) for r in REGISTRIES}
    todo: list[list[str]] = []
    seen: set[Path] = set()
    for s in seeds:
        if isinstance(s, Path):
            todo.append(list(s.relative_to(package_dir).with_suffix("").parts))
        else:
            todo.append(list(s))
    while todo:
        dotted = todo.pop()
        if dotted and dotted[-1] == "__init__":
            dotted = dotted[:-1]
        f = module_file(package_dir, dotted)
        for p in _parents(package_dir, dotted) + ([f] if f is not None else []):
            if p in seen:
                continue
            seen.add(p)
            here = list(p.relative_to(package_dir).parts[:-1])
            found = imports_of(_tree(p), pkg, here)
            if p in inits:  # the registry's own imports skip unused entry modules
                found = [d for d in found
                         if not any(module_file(package_dir, d[:i]) in blocked for i in range(1, len(d) + 1))]
            else:  # a name imported from a registry package: the entry module that defines it
                found += [src for d in found for src in [_reexports(package_dir).get(tuple(d))] if src]
            todo.extend(found)
    return sorted(seen)


def unit_files(seeds: Iterable[list[str] | Path], uses: Iterable[str] = (),
               package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The code of a unit: the closure of ``seeds`` plus the entry modules it ``uses``
    (``"method:magnitude"``, ``"attack:pgd"``); other registry entry modules are blocked."""
    entries = entry_modules(package_dir)
    unknown = sorted(set(uses) - set(entries))
    if unknown:
        raise KeyError(f"not registered: {unknown}")
    used = {entries[u] for u in uses}
    return closure([*seeds, *used], package_dir, block=set(entries.values()) - used)


def files_hash(files: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over the package-relative path and bytes of every file."""
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(Path(p).relative_to(package_dir).as_posix().encode() + b"\0" + Path(p).read_bytes() + b"\0")
    return h.hexdigest()


def unit_code_hash(seeds: Iterable[list[str] | Path], uses: Iterable[str] = (),
                   package_dir: Path = PACKAGE_DIR) -> str:
    """:func:`files_hash` of :func:`unit_files`."""
    return files_hash(unit_files(seeds, uses, package_dir), package_dir)
