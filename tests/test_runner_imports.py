"""The stamp hashes the package modules a notebook can import (prunerob/runner/imports.py)."""
from __future__ import annotations

from pathlib import Path

import prunerob
from prunerob.runner.imports import dependency_files, dependency_hash

PKG = Path(prunerob.__file__).parent


def _pkg(tmp_path: Path) -> Path:
    pkg = tmp_path / "toy"
    (pkg / "plugins").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n    return c\n")  # lazy import counts
    (pkg / "c.py").write_text("from toy.plugins import base\n")
    (pkg / "unused.py").write_text("X = 1\n")
    (pkg / "plugins" / "__init__.py").write_text("from ..registry import import_submodules\n"
                                                 "import_submodules('toy.plugins')\n")
    (pkg / "plugins" / "base.py").write_text("from .. import a\n")
    (pkg / "plugins" / "extra.py").write_text("Y = 2\n")  # reached only through import_submodules
    (pkg / "registry.py").write_text("def import_submodules(name):\n    pass\n")
    return pkg


def _names(files, pkg):
    return {f.relative_to(pkg).as_posix() for f in files}


def test_closure_follows_relative_lazy_and_dynamic_imports(tmp_path):
    pkg = _pkg(tmp_path)
    got = _names(dependency_files("x = 1\nfrom toy.a import f\n", pkg), pkg)
    assert got == {"__init__.py", "a.py", "b.py", "c.py", "plugins/__init__.py", "plugins/base.py",
                   "plugins/extra.py", "registry.py"}
    assert _names(dependency_files("import json\n", pkg), pkg) == set()  # nothing of the package


def test_hash_changes_only_with_reachable_files(tmp_path):
    pkg = _pkg(tmp_path)
    src = "import toy.a\n"
    h0 = dependency_hash(src, pkg)
    (pkg / "unused.py").write_text("X = 2\n")
    (pkg / "new_module.py").write_text("Z = 3\n")
    assert dependency_hash(src, pkg) == h0
    (pkg / "plugins" / "extra.py").write_text("Y = 3\n")
    assert dependency_hash(src, pkg) != h0


def test_real_notebook_closure():
    src = (PKG.parent / "notebooks" / "magnitude_mlp.py").read_text()
    got = _names(dependency_files(src, PKG), PKG)
    for need in ("engine/sweep.py", "engine/experiment.py", "core/pruning/magnitude.py",
                 "core/attacks/pgd.py", "core/attacks/autoattack.py", "core/train.py", "analysis/stats.py"):
        assert need in got, need
    assert "theory/symbolic.py" not in got and "cli/theory.py" not in got and "runner/stamps.py" not in got


def test_changed_parameters_names_what_differs_from_the_stamp():
    from prunerob.runner.status import changed_parameters

    then = {"profile": "cpu", "out_dir": "a", "seeds": [0], "precision": "fp32", "n_eval": 2000}
    now = {"profile": "quick", "out_dir": "b", "seeds": [0, 1, 2], "precision": "fp32", "n_eval": 2000,
           "extra_eps": ["0.1"]}
    assert changed_parameters(then, now) == ["extra_eps", "seeds"]
    assert changed_parameters(then, dict(then)) == []
