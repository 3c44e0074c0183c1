"""Planning a ``reproduce`` run: final parameters per notebook, dependency order, stamp keys."""
from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prunerob.config import (
    ConfigError,
    check_choice,
)
from prunerob.runner.checks import (
    check_parameter,
    check_path_parameter,
    is_output_path_parameter,
    other_out_dirs,
)
from prunerob.runner.imports import dependency_hash, render_hash
from prunerob.runner.layout import PACKAGE_DIR, _load_profiles, default_notebooks_dir
from prunerob.runner.params import (
    _read_source,
    notebook_parameter_annotations,
    notebook_parameter_defaults,
    notebook_parameter_names,
)
from prunerob.runner.stamps import _canonical, _sha256_bytes, read_stamp

# planning


@dataclasses.dataclass
class _Plan:
    name: str
    source: Path
    params: dict[str, Any]
    names_declared: list[str]
    base_key: str = ""  # hash of source, parameters, profile and package; see :func:`stamp_key`
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    auto: bool = False  # pulled in as a dependency of a selected notebook, not selected itself
    depends: list[str] = dataclasses.field(default_factory=list)


def stamp_key(p: _Plan, output_dir: str | os.PathLike) -> str:
    """The key stored in a notebook's stamp: its plan's base key plus the stamp keys of the notebooks
    it reads (as found in ``output_dir`` now), so a dependent reruns when a dependency was rerun."""
    deps = {d: (read_stamp(Path(output_dir), d) or {}).get("key") for d in p.depends}
    return _sha256_bytes(_canonical({"base": p.base_key, "depends": deps}).encode())

def _order(names: Iterable[str], depends: Mapping[str, list[str]], all_names: list[str]) -> list[str]:
    """Selected names plus their dependencies, dependencies first, otherwise in catalogue order."""
    wanted: set[str] = set()

    def add(n: str, trail: tuple[str, ...] = ()) -> None:
        if n in trail:
            raise ConfigError(f"notebook dependencies form a cycle: {' -> '.join(trail + (n,))}")
        if n in wanted:
            return
        for d in depends.get(n, []):
            add(d, trail + (n,))
        wanted.add(n)

    for n in names:
        add(n)
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in ordered or n in visiting:
            return
        visiting.add(n)
        for d in depends.get(n, []):
            visit(d)
        ordered.append(n)

    for n in all_names:
        if n in wanted:
            visit(n)
    return ordered


def plan(names: Iterable[str] | None = None, profile: str = "quick",
         overrides: Mapping[str, Any] | None = None, notebooks_dir: str | os.PathLike | None = None,
         profiles: Any = None, package_dir: Path = PACKAGE_DIR) -> list[_Plan]:
    """Resolve notebooks (with dependencies, in order) and their parameters without running.

    Dependencies that were not selected are marked ``auto``: :func:`reproduce` runs them only when
    they have no stamped output yet, with the profile's parameters (overrides are not applied to
    them), and otherwise reuses their existing results.

    Raises ConfigError for an unknown notebook, profile or override key (a key must be a parameter
    of at least one selected notebook; it is applied to the selected notebooks that declare it).
    """
    prof = _load_profiles(profiles)
    check_choice("profile", profile, prof.PROFILES)
    catalogue = list(prof.NOTEBOOKS)
    requested = list(names) if names else list(catalogue)
    for n in requested:
        check_choice("notebook", n, catalogue)
    ordered = _order(requested, prof.DEPENDS, catalogue)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    overrides = dict(overrides or {})
    plans: list[_Plan] = []
    for n in ordered:
        src = notebooks_dir / f"{n}.py"
        if not src.is_file():
            raise ConfigError(f"notebook source {src} does not exist (notebook={n!r})")
        declared = notebook_parameter_names(src)
        params = dict(prof.parameters(n, profile))
        missing = [k for k in params if k not in declared]
        if missing:
            raise ConfigError(f"profile {profile!r} sets {', '.join(missing)} for {n}, which its parameters "
                              f"cell does not declare; declared: {', '.join(declared)}")
        plans.append(_Plan(n, src, params, declared, auto=n not in requested,
                           depends=list(prof.DEPENDS.get(n, []))))
    for key in overrides:
        if not any(key in p.names_declared for p in plans if p.name in requested):
            listing = "; ".join(f"{p.name}: {', '.join(p.names_declared)}"
                                for p in plans if p.name in requested)
            raise ConfigError(f"-p {key}: no selected notebook has a parameter {key!r}. "
                              f"Parameters: {listing}")
    for p in plans:
        if not p.auto:  # dependencies pulled in automatically keep their profile defaults
            p.overrides = {k: v for k, v in overrides.items() if k in p.names_declared}
            _check_overrides(p, prof)
            p.params.update(p.overrides)
        p.base_key = _sha256_bytes(_canonical({
            "notebook": _sha256_bytes(p.source.read_bytes()),
            "parameters": p.params,
            "profile": profile,
            # the package files this notebook can import (runner/imports.py), not the whole package;
            # for a store-backed page only the code that renders it (the units carry their own keys)
            "prunerob": (render_hash if p.name in getattr(prof, "STORE_BACKED", ()) else dependency_hash)(
                p.source.read_text(), Path(package_dir)),
        }).encode())
    return plans


def _check_overrides(p: _Plan, prof: Any) -> None:
    """Type and range check of ``p.overrides`` against the notebook's parameters cell (before any kernel)."""
    if not p.overrides:
        return
    nb = _read_source(p.source)
    defaults, annotations = notebook_parameter_defaults(nb), notebook_parameter_annotations(nb)
    for key, value in p.overrides.items():
        examples = [defaults.get(key)]
        for pr in prof.PROFILES:
            with contextlib.suppress(ConfigError, KeyError):
                examples.append(prof.parameters(p.name, pr)[key])
        check_parameter(key, value, examples, annotations.get(key))


def check_output_paths(plans: list[_Plan], output_dir: Path, profiles: Any = None) -> None:
    """Every output path parameter (``out_dir``, ``*_table``, ...) of every plan must stay inside
    ``output_dir``; ``out_dir`` must also not contain another notebook's results folder."""
    for p in plans:
        others = other_out_dirs(p.name, profiles)
        for k, v in p.params.items():
            if is_output_path_parameter(k) and v is not None:
                check_path_parameter(k, v, output_dir, others if k == "out_dir" else ())
