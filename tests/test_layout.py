"""The package layout: subpackages by role, imports running one way, render and analysis torch-free.

Layers (README, "How the code is laid out"): ``config`` < ``core`` < ``engine`` / ``theory`` <
``studies`` < ``runner`` / ``cli``; ``analysis`` and ``render`` sit beside them and import only
``config``, each other (render -> analysis) and the torch-free ``core.registry``.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "prunerob"

#: layer -> the prunerob layers its modules may import
ALLOWED = {
    "config": {"config"},
    "core": {"config", "core"},
    "engine": {"config", "core", "engine", "analysis"},
    "theory": {"config", "core", "theory"},
    "analysis": {"config", "analysis", "core.registry"},
    "render": {"config", "analysis", "render", "core.registry"},
    "studies": {"config", "core", "engine", "theory", "analysis", "render", "studies"},
}
#: layers that must run without torch or the sweep engine
TORCH_FREE = ("analysis", "render")


def _layer(dotted: str) -> str:
    parts = dotted.split(".")[1:]
    if parts[:2] == ["core", "registry"]:
        return "core.registry"
    return parts[0] if parts else ""


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("prunerob")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prunerob"):
            mod = node.module
            out += [f"{mod}.{a.name}" if mod == "prunerob" else mod for a in node.names]
    return out


def _modules(layer: str) -> list[Path]:
    return [PKG / "config.py"] if layer == "config" else sorted((PKG / layer).rglob("*.py"))


def test_no_flat_modules_left():
    keep = ("__init__.py", "__main__.py", "config.py")
    flat = sorted(p.name for p in PKG.glob("*.py") if p.name not in keep)
    assert flat == [], f"top-level modules outside the role subpackages: {flat}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_run_one_way(layer):
    bad = []
    for f in _modules(layer):
        for name in _imports(f):
            target = _layer(name)
            if target in ALLOWED[layer] or (target == "core.registry" and "core" in ALLOWED[layer]):
                continue
            bad.append(f"{f.relative_to(PKG)} imports {name}")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("layer", TORCH_FREE)
def test_render_and_analysis_import_no_torch(layer):
    mods = [".".join(("prunerob", *f.relative_to(PKG).with_suffix("").parts)).removesuffix(".__init__")
            for f in _modules(layer)]
    code = ("import importlib, json, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(k for k in sys.modules if k == 'torch' or k.startswith("
            "('prunerob.engine', 'prunerob.studies', 'prunerob.runner', 'prunerob.core.data')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
