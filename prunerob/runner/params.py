"""Notebook parameters: the ``parameters`` cell (names, defaults, annotations), ``-p`` value
parsing and the type check of a value against the notebook's defaults and annotations."""
from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunerob.config import (
    ConfigError,
)

# parameters


#: deepest nesting of lists / mappings a ``-p`` value may have (the deepest any notebook uses is 2)
MAX_DEPTH = 16


def parse_value(text: str, name: str | None = None) -> Any:
    """Parse a ``-p KEY VALUE`` value like ``papermill -p``, plus YAML/JSON lists and mappings.

    ``True``/``true``, ``False``/``false``, ``None``/``null`` -> bool/None; integers and floats
    (``1e-3`` included) -> numbers; ``[...]`` or ``{...}`` -> parsed as YAML flow (JSON is a subset);
    anything else (``4/255``, ``mnist``) stays a string. Quote with ``'"1"'`` to force a string.
    ``name`` (the KEY) is named in the error for a value that does not parse or that is nested
    deeper than :data:`MAX_DEPTH`.
    """
    label = f"-p {name}" if name else "parameter value"
    s = text.strip()
    if s in ("True", "true"):
        return True
    if s in ("False", "false"):
        return False
    if s in ("None", "null", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    if s and s[0] in "[{\"'":
        import yaml

        depth = 0
        for ch in s:  # bracket depth before parsing: a deep value must not exhaust the recursion limit
            depth += ch in "[{"
            depth -= ch in "]}"
            if depth > MAX_DEPTH:
                raise ConfigError(f"{label}: the value is nested more than {MAX_DEPTH} levels deep; "
                                  "give a flat list or mapping such as '[0, 1]'")
        try:
            return yaml.safe_load(s)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{label}: cannot parse {text!r} as a YAML/JSON literal "
                              f"({' '.join(str(exc).split())}); e.g. -p {name or 'seeds'} '[0, 1]'") from None
        except RecursionError:
            raise ConfigError(f"{label}: the value is nested too deeply to parse") from None
    return text


def notebook_parameter_names(source: str | os.PathLike | Any) -> list[str]:
    """Names assigned in the first cell tagged ``parameters`` of a notebook (path or NotebookNode).

    Same rule as papermill's inspection: top-level assignments of that cell, in order.
    """
    nb = _read_source(source) if isinstance(source, (str, os.PathLike)) else source
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            names: list[str] = []
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else [])
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in names:
                            names.append(n.id)
            return names
    raise ConfigError(f"notebook {getattr(source, 'name', source)} has no cell tagged 'parameters'")


def notebook_parameter_defaults(source: str | os.PathLike | Any) -> dict[str, Any]:
    """Default values in the ``parameters`` cell: literals evaluated, other expressions kept as
    their source text wrapped in :class:`Expression` (used to check profiles against notebooks)."""
    nb = _read_source(source) if isinstance(source, (str, os.PathLike)) else source
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            out: dict[str, Any] = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    try:
                        value: Any = ast.literal_eval(node.value)
                    except ValueError:
                        value = Expression(ast.unparse(node.value))
                    for t in targets:
                        if isinstance(t, ast.Name):
                            out[t.id] = value
            return out
    raise ConfigError(f"notebook {getattr(source, 'name', source)} has no cell tagged 'parameters'")


class Expression(str):
    """A parameter default that is not a Python literal (its source text)."""


def _read_source(path: str | os.PathLike):
    import jupytext

    path = Path(path)
    if path.suffix == ".ipynb":
        import nbformat

        return nbformat.read(path, as_version=4)
    return jupytext.read(path, fmt="py:percent")


# --------------------------------------------------------------------------------------------
# checking -p values against the notebook's parameters cell


def notebook_parameter_annotations(source: str | os.PathLike | Any) -> dict[str, str]:
    """Annotations written in the ``parameters`` cell (``epochs: int = 2``), as source text."""
    nb = _read_source(source) if isinstance(source, (str, os.PathLike)) else source
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return {node.target.id: ast.unparse(node.annotation) for node in ast.parse(cell.source).body
                    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    return {}


_SCALARS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
    "NoneType": lambda v: v is None,
}


def _annotation_check(node: ast.AST) -> tuple[Callable[[Any], bool], str]:
    """(predicate, description) of a type annotation; unknown annotations accept anything."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _annotation_check(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.Constant) and node.value is None:
        return _SCALARS["None"], "None"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        (fa, da), (fb, db) = _annotation_check(node.left), _annotation_check(node.right)
        return (lambda v: fa(v) or fb(v)), f"{da} or {db}"
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    if name in _SCALARS:
        return _SCALARS[name], {"int": "an integer", "float": "a number", "str": "a string",
                                "bool": "True or False"}.get(name, "None")
    if isinstance(node, ast.Subscript):
        base = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        subs = [_annotation_check(a) for a in args
                if not (isinstance(a, ast.Constant) and a.value is Ellipsis)]
        if base in ("Optional",):
            f, d = subs[0]
            return (lambda v: v is None or f(v)), f"{d} or None"
        if base in ("Union",):
            return (lambda v: any(f(v) for f, _ in subs)), " or ".join(d for _, d in subs)
        if base in ("list", "List", "Sequence", "tuple", "Tuple"):
            f, d = subs[0] if subs else (lambda v: True, "anything")
            return (lambda v: isinstance(v, (list, tuple)) and all(f(x) for x in v)), f"a list of ({d})"
        if base in ("dict", "Dict", "Mapping") and len(subs) == 2:
            (fk, dk), (fv, dv) = subs
            return (lambda v: isinstance(v, dict) and all(fk(k) and fv(x) for k, x in v.items())), \
                f"a mapping of ({dk}) to ({dv})"
    if name in ("list", "List", "tuple"):
        return (lambda v: isinstance(v, (list, tuple))), "a list"
    if name in ("dict", "Dict", "Mapping"):
        return (lambda v: isinstance(v, dict)), "a mapping"
    return (lambda v: True), "anything"


def _kind(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True or False"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _like(v: Any, example: Any, examples: list[Any]) -> bool:
    """Whether ``v`` has the type of ``example`` (lists/mappings: their items too)."""
    if isinstance(example, Expression):
        return True
    if example is None:
        return v is None
    if isinstance(example, bool):
        return isinstance(v, bool)
    if isinstance(example, int):
        return isinstance(v, int) and not isinstance(v, bool)
    if isinstance(example, float):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(example, str):
        return isinstance(v, str)
    if isinstance(example, (list, tuple)):
        items = [x for e in examples if isinstance(e, (list, tuple)) for x in e]
        return isinstance(v, list) and (not items or all(any(_like(x, i, items) for i in items) for x in v))
    if isinstance(example, dict):
        vals = [x for e in examples if isinstance(e, dict) for x in e.values()]
        return isinstance(v, dict) and all(any(_like(x, i, vals) for i in vals) or not vals
                                           for x in v.values())
    return True


def _kinds(examples: list[Any]) -> str:
    out: list[str] = []
    for e in examples:
        k = _kind(e)
        if isinstance(e, list) and e:
            k = f"a list of {_kind(e[0]).removeprefix('an ').removeprefix('a ')}s"
        if k not in out:
            out.append(k)
    return " or ".join(out)


def check_parameter_type(name: str, value: Any, examples: list[Any], annotation: str | None = None) -> None:
    """ConfigError unless ``value`` fits the annotation, else the type of one of ``examples`` (the
    notebook default and the profiles' values). ``None`` examples only: anything is accepted."""
    if annotation:
        ok, desc = _annotation_check(ast.parse(annotation, mode="eval").body)
        if not ok(value):
            raise ConfigError(f"-p {name}={value!r} must be {desc} (annotation {annotation!r})")
        return
    known = [e for e in examples if e is not None and not isinstance(e, Expression)]
    if not known:
        return
    if not any(_like(value, e, examples) for e in examples):
        raise ConfigError(f"-p {name}={value!r} must be {_kinds(examples)} like the notebook's default "
                          f"{examples[0]!r}")
