"""``prunerob reproduce``: run the experiment notebooks with jupytext + papermill.

Each notebook source ``notebooks/<name>.py`` (jupytext percent format, one cell tagged
``parameters``) is converted to a notebook in memory and executed by papermill with the
parameters of a profile (:mod:`prunerob.profiles`) updated by ``-p KEY VALUE`` overrides. The
executed notebook is written to ``<output_dir>/<name>.ipynb`` (by default ``book/experiments``, where
the book shows it) and its result tables and figures to ``out_dir`` (a parameter, relative to
``output_dir``: by default ``<output_dir>/results/<name>/``). The kernel runs with ``output_dir`` as
its working directory, like a notebook opened in Jupyter, so a notebook that reads another
notebook's results (``profiles.DEPENDS``) finds them at ``results/<other>/``.

Guarantees:

* **Atomic output.** Papermill writes into ``<output_dir>/.partial/<name>.ipynb``; only a
  successful run is renamed onto ``<name>.ipynb``. A failed run is moved to
  ``<output_dir>/.failed/<name>.ipynb`` (with the traceback in it) and the previous output stays.
* **Skip if unchanged.** A stamp ``<output_dir>/.stamps/<name>.json`` records a hash of the
  notebook source, the final parameters, the source of the ``prunerob`` package and the stamps of
  the notebooks it depends on. A notebook is skipped when its key is unchanged and the output file
  is the one that was stamped (``--force`` reruns). Interrupting a long ``reproduce`` therefore
  loses only the notebook that was running; trained models are cached by :mod:`prunerob.train`.
* **Dependencies.** Selecting a notebook that reads others' results also selects those: they run
  first when they have no stamped output in ``output_dir`` yet (with the profile's parameters);
  otherwise their existing results are reused. Name them explicitly to rerun or override them.
* **Right interpreter.** By default the kernel is started with the interpreter running this code
  (``sys.executable -m ipykernel_launcher``), so ``.venv/bin/prunerob reproduce`` executes in the
  venv even when it is not activated and whatever kernel specs the user has installed elsewhere.
  ``--kernel NAME`` uses a named Jupyter kernel spec instead.
* **Compact parameters.** Papermill's ``injected-parameters`` cell gets the myst-nb tag
  ``hide-input`` (collapsed in the book); the notebook's own ``parameters`` cell is hidden
  (``remove-cell``) when every name in it was injected, else collapsed too. A short note naming
  the profile, the overrides, the run time and the command to rerun is inserted before them.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import (
    ConfigError,
    atomic_write_text,
    check_choice,
    check_dir,
    check_float,
    check_int,
    check_writable,
    parse_eps,
    resolve_device,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
STAMP_DIR, PARTIAL_DIR, FAILED_DIR, STAGING_DIR = ".stamps", ".partial", ".failed", ".staging"
#: internal sub-command of ``python -m prunerob.runner`` that executes one notebook (a child process)
_EXECUTE = "_execute-notebook"
#: environment variable naming the file where the kernel manager writes the kernel's process group
_PGID_ENV = "PRUNEROB_KERNEL_PGID_FILE"


def checkout_root(start: str | os.PathLike | None = None) -> Path | None:
    """The git checkout holding ``start`` (default: the current directory) that has a ``book/``
    folder, or None. ``prunerob reproduce`` writes into the checkout you stand in, not into the one
    the package happens to be installed from."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists() and (d / "book").is_dir():
            return d
    return None


def default_output_dir() -> Path:
    """``<checkout>/book/experiments`` for the checkout containing the current directory; outside
    any checkout, the one the package lives in."""
    return (checkout_root() or REPO_ROOT) / "book" / "experiments"


def default_notebooks_dir() -> Path:
    """``<checkout>/notebooks`` like :func:`default_output_dir`."""
    return (checkout_root() or REPO_ROOT) / "notebooks"


# module-level names kept for old callers: the package's checkout
DEFAULT_NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "book" / "experiments"
HIDDEN_TAG = "hide-input"
INFO_TAG = "prunerob-run-info"
PACKAGE_DIR = Path(__file__).resolve().parent


class NotebookFailed(RuntimeError):
    """Raised by :func:`reproduce` (``raise_on_error=True``) after all runnable notebooks ran."""

    def __init__(self, message: str, results: list[Result]):
        super().__init__(message)
        self.results = results


@dataclasses.dataclass
class Result:
    """Outcome for one notebook: ``status`` is ``ran``, ``skipped``, ``failed`` or ``blocked``
    (not run because a notebook it depends on failed)."""

    name: str
    status: str
    output: Path
    seconds: float = 0.0
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    failed_notebook: Path | None = None


# --------------------------------------------------------------------------------------------
# parameters


def parse_value(text: str) -> Any:
    """Parse a ``-p KEY VALUE`` value like ``papermill -p``, plus YAML/JSON lists and mappings.

    ``True``/``true``, ``False``/``false``, ``None``/``null`` -> bool/None; integers and floats
    (``1e-3`` included) -> numbers; ``[...]`` or ``{...}`` -> parsed as YAML flow (JSON is a subset);
    anything else (``4/255``, ``mnist``) stays a string. Quote with ``'"1"'`` to force a string.
    """
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

        try:
            return yaml.safe_load(s)
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse parameter value {text!r} as a YAML/JSON literal: {exc}") from exc
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


def _as_list(v: Any, name: str, empty_ok: bool = False) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"-p {name}={v!r} must be a list, e.g. -p {name} '[...]'")
    if not v and not empty_ok:
        raise ConfigError(f"-p {name}=[] is empty; give at least one value")
    return list(v)


def _per_dataset(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """Accept a value or a mapping ``{dataset: value}`` (e.g. ``epochs``) and check each value."""
    def run(v: Any, name: str) -> Any:
        if isinstance(v, dict):
            from .data import DATASETS

            for k, x in v.items():
                check_choice(f"-p {name} key", k, DATASETS)
                check(x, f"{name}[{k}]")
            return v
        return check(v, name)
    return run


def _p_int(minimum: int, none: bool = False) -> Callable[[Any, str], Any]:
    return lambda v, name: check_int(v, f"-p {name}", minimum, none) if isinstance(v, int) or v is None \
        else _raise(f"-p {name}={v!r} must be an integer >= {minimum}" + (" or None" if none else ""))


def _raise(msg: str) -> Any:
    raise ConfigError(msg)


def _p_choice(get: Callable[[], Iterable[str]]) -> Callable[[Any, str], Any]:
    return lambda v, name: check_choice(f"-p {name}", v, tuple(get())) if isinstance(v, str) \
        else _raise(f"-p {name}={v!r} must be one of: {', '.join(get())}")


def _p_list(elem: Callable[[Any, str], Any], empty_ok: bool = False, unique: bool = False):
    def run(v: Any, name: str) -> Any:
        items = _as_list(v, name, empty_ok)
        for x in items:
            elem(x, name)
        if unique and len({json.dumps(x, default=str) for x in items}) != len(items):
            raise ConfigError(f"-p {name}={v!r} has duplicate values; give distinct values")
        return v
    return run


def _p_eps(v: Any, name: str) -> float:
    return parse_eps(v, f"-p {name}")


def _p_unit(v: Any, name: str) -> float:
    return check_float(v, f"-p {name}", 0.0, 1.0)


def _p_nonneg(v: Any, name: str) -> float:
    return check_float(v, f"-p {name}", 0.0)


def _p_bool(v: Any, name: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"-p {name}={v!r} must be True or False")
    return v


def _p_device(v: Any, name: str) -> Any:
    if not isinstance(v, str):
        raise ConfigError(f"-p {name}={v!r} must be 'auto', 'cpu' or 'cuda[:N]'")
    return resolve_device(v)


def _p_data_root(v: Any, name: str) -> Any:
    return None if v is None else check_dir(str(v), f"-p {name}")


def _datasets() -> tuple[str, ...]:
    from .data import DATASETS

    return DATASETS


def _archs() -> tuple[str, ...]:
    from .models import ARCHS

    return tuple(ARCHS)


def _methods() -> tuple[str, ...]:
    from .pruning import method_names

    return tuple(method_names())


def _attacks() -> tuple[str, ...]:
    from .attacks import attack_names

    return tuple(attack_names())


def _modes() -> tuple[str, ...]:
    from .tradeoff import MODES

    return tuple(MODES)


def _p_models(v: Any, name: str) -> Any:
    if isinstance(v, dict):
        return _per_dataset(_p_choice(_archs))(v, name)
    return _p_list(_p_choice(_archs), unique=True)(v, name)


def _p_seeds(empty_ok: bool = False):
    return _p_list(_p_int(0), empty_ok=empty_ok, unique=True)


#: range checks of known notebook parameters (the CLI's validators); values that may be given per
#: data set (``{"mnist": 2, "cifar10": 1}``) are wrapped in ``_per_dataset``
PARAM_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "profile": lambda v, name: _p_choice(lambda: _load_profiles(None).PROFILES)(v, name),
    "device": _p_device,
    "threads": _p_int(1, none=True),
    "data_root": _p_data_root,
    "download": _p_bool,
    "run_cnn": _p_bool,
    "model": _p_choice(_archs),
    "models": _p_models,
    "dataset": _p_choice(_datasets),
    "cnn_dataset": _p_choice(_datasets),
    "datasets": _p_list(_p_choice(_datasets), unique=True),
    "subset_datasets": _p_list(_p_choice(_datasets), empty_ok=True, unique=True),
    **{k: _per_dataset(_p_int(1)) for k in ("epochs", "tf_epochs", "cnn_epochs")},
    **{k: _per_dataset(_p_int(1, none=True)) for k in ("train_subset", "tf_train_subset", "cnn_train_subset",
                                                        "n_eval", "tf_n_eval", "cnn_n_eval", "image_size")},
    **{k: _p_int(1) for k in ("subset_n", "n_masks", "k_samples", "worst_case_steps", "worst_case_restarts",
                              "n_front", "score_examples", "tf_d", "tf_heads", "tf_patch", "cnn_n_masks",
                              "cnn_k_samples", "max_iter")},
    "seeds": _p_seeds(),
    "cnn_seeds": _p_seeds(),
    "subset_seeds": _p_seeds(empty_ok=True),
    "lambdas": _p_list(_p_unit),
    "modes": _p_list(_p_choice(_modes), unique=True),
    "p0": _p_unit,
    "tol": lambda v, name: check_float(v, f"-p {name}", 0.0, lo_open=True),
    "keeps": _p_list(_p_unit),
    "grid_keeps": _p_list(_p_unit),
    "subset_keeps": _p_list(_p_unit, empty_ok=True),
    "methods": _p_list(_p_choice(_methods), unique=True),
    "attacks": _per_dataset(_p_list(_p_choice(_attacks), unique=True)),
    "mlp_attacks": _p_list(_p_choice(_attacks), unique=True),
    "subset_attacks": _p_list(_p_choice(_attacks), empty_ok=True, unique=True),
    "vit_attack": _p_choice(_attacks),
    "eps": _p_eps,
    "fgsm_extra_eps": _p_list(_p_eps, empty_ok=True),
    "eps_l2": _p_list(_p_nonneg),
    "cnn_eps_l2": _p_list(_p_nonneg),
    "tightness_eps": _p_nonneg,
}


def is_output_path_parameter(name: str) -> bool:
    """Parameters naming files or folders under the output directory (``out_dir``, ``*_table``, ...)."""
    return name == "out_dir" or name.endswith(("_dir", "_table", "_path", "_file", "_csv"))


def check_parameter(name: str, value: Any, examples: list[Any], annotation: str | None = None) -> None:
    """Type check (annotation, else the defaults' types unless a range check exists) and range
    check (:data:`PARAM_CHECKS`) of one ``-p`` value; ConfigError with one line naming it."""
    check = PARAM_CHECKS.get(name)
    if annotation or check is None:
        check_parameter_type(name, value, examples, annotation)
    if check is not None:
        check(value, name)
    if is_output_path_parameter(name) and not isinstance(value, str):
        raise ConfigError(f"-p {name}={value!r} must be a relative path (a string) "
                          "inside the output directory")


def check_path_parameter(name: str, value: Any, output_dir: Path, reserved: Iterable[str] = ()) -> Path:
    """``value`` must be a relative path that stays strictly inside ``output_dir`` (no ``..``
    escapes, no absolute paths, not the output directory itself, not one of ``reserved``)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"-p {name}={value!r} must be a non-empty relative path "
                          "inside the output directory")
    rel = Path(value)
    root = Path(output_dir).resolve()
    target = (root / rel).resolve()
    if rel.is_absolute() or target == root or root not in target.parents:
        raise ConfigError(f"-p {name}={value!r} must be a relative path inside the output directory {root} "
                          f"(e.g. results/NAME)")
    first = target.relative_to(root).parts[0]
    if first.startswith("."):
        raise ConfigError(f"-p {name}={value!r} is inside the reserved folder {first}/; "
                          "give e.g. results/NAME")
    for r in reserved:
        r_abs = (root / r).resolve()
        if target == r_abs or target in r_abs.parents:
            raise ConfigError(f"-p {name}={value!r} would replace {r}, which belongs to another notebook; "
                              "give a folder of its own, e.g. results/NAME")
    return target


# --------------------------------------------------------------------------------------------
# hashing and stamps


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """Hash of every ``*.py`` file of the prunerob package (path and content)."""
    h = hashlib.sha256()
    for p in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(package_dir).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def stamp_path(output_dir: Path, name: str) -> Path:
    return Path(output_dir) / STAMP_DIR / f"{name}.json"


def read_stamp(output_dir: Path, name: str) -> dict[str, Any] | None:
    p = stamp_path(output_dir, name)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _is_up_to_date(output: Path, stamp: dict[str, Any] | None, key: str) -> bool:
    """The stamp's key matches and both the executed notebook and its results folder are the ones
    the stamp recorded (a results folder changed by anything else makes the notebook stale)."""
    if stamp is None or stamp.get("key") != key or not output.is_file():
        return False
    if stamp.get("output_sha256") != _sha256_file(output):
        return False
    if "results_sha256" in stamp:
        return stamp["results_sha256"] == _tree_sha256(output.parent / str(stamp.get("results_dir", "")))
    return True


# --------------------------------------------------------------------------------------------
# kernel


def _current_python_kernel_manager(kernel: str | None = None):
    """A KernelManager subclass that starts ``sys.executable -m ipykernel_launcher`` (or the named
    kernel spec) and writes the kernel's process group id to ``$PRUNEROB_KERNEL_PGID_FILE``, so that
    :func:`_run_one` can kill the kernel and everything it started on an interrupt."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class CurrentPythonKernelManager(KernelManager):
        @property
        def kernel_spec(self):  # type: ignore[override]
            if kernel is not None:
                return super().kernel_spec
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    # log_level=ERROR silences ipykernel's "running over TCP without encryption" notice
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                          "--IPKernelApp.log_level=ERROR"],
                    display_name=f"Python {sys.version_info.major}.{sys.version_info.minor} ({sys.prefix})",
                    language="python",
                    resource_dir=str(Path(sys.prefix)),
                )
            return self._kernel_spec

        async def _async_launch_kernel(self, kernel_cmd, **kw):  # type: ignore[override]
            await super()._async_launch_kernel(kernel_cmd, **kw)
            target = os.environ.get(_PGID_ENV)
            pid = getattr(self.provisioner, "pid", None)
            if target and pid:
                with contextlib.suppress(OSError):
                    Path(target).write_text(str(os.getpgid(pid)))

    return CurrentPythonKernelManager


# --------------------------------------------------------------------------------------------
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


def _load_profiles(profiles: Any) -> Any:
    if profiles is None:
        from . import profiles as mod

        return mod
    return profiles


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
    pkg = package_hash(Path(package_dir))
    for p in plans:
        if not p.auto:  # dependencies pulled in automatically keep their profile defaults
            p.overrides = {k: v for k, v in overrides.items() if k in p.names_declared}
            _check_overrides(p, prof)
            p.params.update(p.overrides)
        p.base_key = _sha256_bytes(_canonical({
            "notebook": _sha256_bytes(p.source.read_bytes()),
            "parameters": p.params,
            "profile": profile,
            "prunerob": pkg,
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
    prof = _load_profiles(profiles)
    for p in plans:
        others = []
        for n in prof.NOTEBOOKS:
            if n != p.name:
                with contextlib.suppress(ConfigError, KeyError, AttributeError, TypeError):
                    others.append(str(prof.parameters(n, "quick")["out_dir"]))
        for k, v in p.params.items():
            if is_output_path_parameter(k) and v is not None:
                check_path_parameter(k, v, output_dir, others if k == "out_dir" else ())


# --------------------------------------------------------------------------------------------
# running one notebook


def _rerun_command(name: str, profile: str, overrides: Mapping[str, Any]) -> str:
    parts = ["prunerob", "reproduce", name, "--profile", profile]
    for k, v in overrides.items():
        text = v if isinstance(v, str) else json.dumps(v)
        parts += ["-p", k, text]
    return " ".join(shlex.quote(str(x)) for x in parts)


def _postprocess(nb, name: str, profile: str, overrides: Mapping[str, Any], seconds: float, output: Path,
                 injected_all: bool = True) -> None:
    """Collapse the injected parameters, insert the run note, fix papermill's recorded output path.

    The notebook's own ``parameters`` cell is collapsed too, or, when ``injected_all`` (papermill
    injected a value for every name it declares, so it only shows superseded defaults), tagged
    ``remove-cell`` so the book shows a single parameter cell.
    """
    import nbformat

    first_param = None
    for i, cell in enumerate(nb.cells):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell.cell_type == "code" and ("parameters" in tags or "injected-parameters" in tags):
            tag = "remove-cell" if ("parameters" in tags and injected_all) else HIDDEN_TAG
            if tag not in tags:
                tags.append(tag)
            if first_param is None:
                first_param = i
    over = ", ".join(f"`{k} = {v!r}`" for k, v in overrides.items()) or "none"
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from . import __version__

    text = (
        "```{admonition} How this page was produced\n:class: note\n"
        f"Executed by `prunerob reproduce` with profile **{profile}** "
        f"(overrides: {over}) on {when} in {seconds:.0f} s (prunerob {__version__}). "
        "The parameters it ran with are in the collapsed cell below. Rerun with\n"
        f"`{_rerun_command(name, profile, overrides)}` (add `-p KEY VALUE` to change a parameter).\n```"
    )
    info = nbformat.v4.new_markdown_cell(text, metadata={"tags": [INFO_TAG]})
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        info.pop("id", None)
    nb.cells.insert(first_param if first_param is not None else 0, info)
    nb.metadata.pop("jupytext", None)  # the executed notebook is not paired with the .py source
    pm = nb.metadata.setdefault("papermill", {})
    pm["output_path"] = output.name
    pm["input_path"] = f"notebooks/{name}.py"
    nb.metadata.setdefault("prunerob", {}).update({"profile": profile, "overrides": dict(overrides),
                                                    "seconds": round(seconds, 1)})


def _tree_sha256(folder: Path) -> str | None:
    """Hash of every file under ``folder`` (relative path and bytes); None when it does not exist."""
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + _sha256_file(f).encode())
    return h.hexdigest()


class _Interrupted(BaseException):
    """SIGINT / SIGTERM received while a notebook ran (``signum`` says which)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM (and SIGINT) into :class:`_Interrupted` in the main thread while running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise _Interrupted(signum)

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in saved.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def _signals_deferred():
    """Record SIGINT / SIGTERM instead of acting on them (the swap must not be cut in half); the
    yielded list holds the signals received."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    saved = {sig: signal.signal(sig, lambda signum, _f: got.append(signum))
             for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for sig, h in saved.items():
            signal.signal(sig, h)


def _kill_group(pgid: int | None) -> None:
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _link_inputs(staging: Path, output_dir: Path, out_rel: Path, name: str) -> None:
    """Make ``staging`` look like ``output_dir`` for the kernel: every entry is a symlink to the real
    one, except the folders on the way to ``out_rel`` (real, empty: the notebook writes there) and
    this notebook's own output. Hidden entries (stamps, staging) are not linked."""
    parts = out_rel.parts
    src, dst = output_dir, staging
    for depth, part in enumerate(parts):
        if src.is_dir():
            for entry in src.iterdir():
                if (entry.name.startswith(".") or entry.name == part
                        or (depth == 0 and entry.name == f"{name}.ipynb")):
                    continue
                (dst / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
        src, dst = src / part, dst / part
        if depth < len(parts) - 1:
            dst.mkdir()


def _swap_in(items: list[tuple[Path, Path]], backup: Path) -> None:
    """Replace each ``dest`` by its staged ``src`` (files or folders, ``os.replace``), keeping the
    previous ones in ``backup`` until every replacement succeeded; on any error, or a SIGINT/SIGTERM
    arriving meanwhile, everything is put back as it was and the error (or interrupt) is raised."""
    backup.mkdir(parents=True, exist_ok=True)
    moved: list[tuple[Path, Path]] = []  # (dest, where its previous version went)
    placed: list[Path] = []
    pause = float(os.environ.get("PRUNEROB_TEST_SWAP_PAUSE", "0") or 0)  # testing hook: widen the window
    with _signals_deferred() as got:
        try:
            for i, (_src, dest) in enumerate(items):
                if dest.exists() or dest.is_symlink():
                    old = backup / f"{i}-{dest.name}"
                    os.replace(dest, old)
                    moved.append((dest, old))
            for src, dest in items:
                if pause:
                    time.sleep(pause)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                placed.append(dest)
            if got:
                raise _Interrupted(got[0])
        except BaseException:
            for dest in placed:
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        dest.unlink()
            for dest, old in reversed(moved):
                os.replace(old, dest)
            raise
    shutil.rmtree(backup, ignore_errors=True)


def _recover(output_dir: Path) -> None:
    """Undo what an ungracefully killed run (SIGKILL, power loss) left in ``.staging``: a swap cut in
    half is rolled back to the previous files; staging folders of dead runs are removed."""
    root = output_dir / STAGING_DIR
    if not root.is_dir():
        return
    for d in root.iterdir():
        try:
            pid = int(d.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        alive = pid != os.getpid()
        if alive:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
        if alive:
            continue
        journal = d / "swap.json"
        if journal.is_file():
            with contextlib.suppress(OSError, ValueError):
                for entry in reversed(json.loads(journal.read_text())):
                    old, dest = d / "backup" / entry["old"], Path(entry["dest"])
                    if old.exists() or old.is_symlink():
                        if dest.is_dir() and not dest.is_symlink():
                            shutil.rmtree(dest)
                        elif dest.exists() or dest.is_symlink():
                            dest.unlink()
                        os.replace(old, dest)
        shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()


def _run_one(p: _Plan, key: str, profile: str, output_dir: Path, kernel: str | None,
             progress: bool, log_output: bool = False) -> Result:
    """Execute one notebook in a staging folder and swap notebook, results and stamp into place.

    Papermill runs in a child process in its own session; the kernel it starts records its process
    group. On SIGINT / SIGTERM both groups are killed, the staging folder is removed and the previous
    notebook, results folder and stamp stay byte-identical; the interrupt is then re-raised
    (KeyboardInterrupt for SIGINT, SystemExit(143) for SIGTERM).
    """
    import nbformat

    output = output_dir / f"{p.name}.ipynb"
    failed = output_dir / FAILED_DIR / f"{p.name}.ipynb"
    out_rel = Path(str(p.params.get("out_dir") or f"results/{p.name}"))
    (output_dir / STAGING_DIR).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{p.name}-{os.getpid()}-", dir=output_dir / STAGING_DIR))
    staged_nb = staging / f"{p.name}.ipynb"
    job = staging / "job.json"
    pgid_file = staging / "kernel.pgid"
    error_file = staging / "error.txt"
    cell_bar = progress and sys.stderr.isatty()
    if progress and not cell_bar:
        print(f"[start]   {p.name:<14} {_dt.datetime.now().strftime('%H:%M:%S')}",
              file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    child: subprocess.Popen | None = None
    try:
        work = staging / "work"
        work.mkdir()
        _link_inputs(work, output_dir, out_rel, p.name)
        job.write_text(json.dumps({"source": str(p.source), "output": str(staged_nb), "parameters": p.params,
                                   "kernel": kernel, "cwd": str(work), "log_output": log_output,
                                   "progress": bool(cell_bar), "name": p.name, "error_file": str(error_file)},
                                  default=str))
        env = dict(os.environ)
        env[_PGID_ENV] = str(pgid_file)
        env.pop("MPLBACKEND", None)  # a non-inline backend (e.g. Agg) inherited by the kernel hides figures
        with _signals_raise():
            child = subprocess.Popen([sys.executable, "-m", "prunerob.runner", _EXECUTE, str(job)],
                                     start_new_session=True, env=env)
            rc = child.wait()
        seconds = time.perf_counter() - t0
        if rc != 0:
            if error_file.is_file():
                msg = error_file.read_text()
            else:
                msg = f"the notebook runner exited with status {rc}"
            if staged_nb.exists():
                failed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged_nb, failed)
            return Result(p.name, "failed", output, seconds, p.params, msg.strip()[-4000:],
                          failed if failed.exists() else None)
        executed = nbformat.read(staged_nb, as_version=4)
        _postprocess(executed, p.name, profile, p.overrides, seconds, output,
                     injected_all=set(p.names_declared) <= set(p.params))
        final_nb = staging / "final.ipynb"
        final_nb.write_text(nbformat.writes(executed) + "\n")
        staged_results = work / out_rel
        if not staged_results.is_dir():
            staged_results.mkdir(parents=True)
        stamp = {
            "name": p.name,
            "profile": profile,
            "key": key,
            "parameters": p.params,
            "overrides": p.overrides,
            "notebook": f"notebooks/{p.name}.py",
            "notebook_sha256": _sha256_bytes(p.source.read_bytes()),
            "output_sha256": _sha256_file(final_nb),
            "results_dir": out_rel.as_posix(),
            "results_sha256": _tree_sha256(staged_results),
            "seconds": round(seconds, 1),
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": sys.executable,
            "kernel": kernel or "current interpreter",
        }
        final_stamp = staging / "stamp.json"
        final_stamp.write_text(json.dumps(stamp, indent=1, sort_keys=True, default=str) + "\n")
        items = [(final_stamp, stamp_path(output_dir, p.name)), (staged_results, output_dir / out_rel),
                 (final_nb, output)]
        # the stamp goes first and comes back last: whatever happens, a stamp never vouches for a mixture
        (staging / "swap.json").write_text(json.dumps(
            [{"old": f"{i}-{d.name}", "dest": str(d)} for i, (_s, d) in enumerate(items)]))
        _swap_in(items, staging / "backup")
        with contextlib.suppress(OSError):
            failed.unlink()
        return Result(p.name, "ran", output, seconds, p.params)
    except (_Interrupted, KeyboardInterrupt) as exc:
        if child is not None:
            pgid = None
            with contextlib.suppress(OSError, ValueError):
                pgid = int(pgid_file.read_text().strip())
            _kill_group(pgid)
            _kill_group(child.pid)
            with contextlib.suppress(Exception):
                child.wait(timeout=30)
            with contextlib.suppress(OSError, ValueError):  # the kernel may have started meanwhile
                _kill_group(int(pgid_file.read_text().strip()))
        if isinstance(exc, _Interrupted) and exc.signum == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM) from None
        raise KeyboardInterrupt from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for d in (output_dir / STAGING_DIR, output_dir / FAILED_DIR):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty


def _execute_job(job_path: str) -> int:
    """The child process of :func:`_run_one`: papermill executes the notebook into the staging folder."""
    import papermill as pm

    job = json.loads(Path(job_path).read_text())
    kernel = job["kernel"]
    nb = _read_source(job["source"])
    nb.metadata["kernelspec"] = {"name": kernel or "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    bar = {"desc": job["name"], "leave": False} if job["progress"] else False
    try:
        pm.execute_notebook(nb, job["output"], parameters=job["parameters"], kernel_name=kernel or "python3",
                            language="python", progress_bar=bar, log_output=job["log_output"], cwd=job["cwd"],
                            kernel_manager_class=_current_python_kernel_manager(kernel))
    except Exception as exc:
        Path(job["error_file"]).write_text(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# public API


def reproduce(names: Iterable[str] | None = None, profile: str = "quick",
              overrides: Mapping[str, Any] | None = None, output_dir: str | os.PathLike | None = None,
              force: bool = False, notebooks_dir: str | os.PathLike | None = None, progress: bool = True,
              profiles: Any = None, kernel: str | None = None, raise_on_error: bool = True,
              log_output: bool = False, package_dir: str | os.PathLike = PACKAGE_DIR) -> list[Result]:
    """Execute experiment notebooks; see the module docstring.

    Args:
        names: notebooks to run (default: all of ``profiles.NOTEBOOKS``). Their dependencies
            (``profiles.DEPENDS``) are added before them: run when they have no stamped output in
            ``output_dir`` yet, else their existing results are reused.
        profile: one of ``profiles.PROFILES``.
        overrides: parameter values replacing the profile's (already typed; the CLI parses them
            with :func:`parse_value`). Applied to the selected notebooks that declare the key.
        output_dir: where ``<name>.ipynb``, ``results/<name>/`` and ``.stamps/`` go (default:
            ``book/experiments`` of the checkout containing the current directory). The kernel runs
            in a staging folder that mirrors it; see :func:`_run_one`.
        force: rerun even when the stamp says the output is up to date.
        notebooks_dir: folder holding the jupytext sources ``<name>.py``.
        progress: tqdm over notebooks and papermill's per-cell bar.
        profiles: object/module with ``PROFILES``, ``NOTEBOOKS``, ``DEPENDS``, ``parameters`` (default
            :mod:`prunerob.profiles`).
        kernel: a Jupyter kernel spec name; ``None`` runs ``sys.executable`` as the kernel.
        raise_on_error: raise :class:`NotebookFailed` at the end when a notebook failed.
        log_output: echo the notebooks' outputs to the log (papermill ``--log-output``).
        package_dir: the package whose source enters the stamp (default: prunerob itself).

    Returns:
        One :class:`Result` per notebook, in execution order.
    """
    from tqdm.auto import tqdm

    overrides = dict(overrides or {})
    output_dir = Path(output_dir if output_dir is not None else default_output_dir()).resolve()
    check_writable(output_dir, "--output-dir", "dir")
    plans = plan(names, profile, overrides, notebooks_dir, profiles, Path(package_dir))
    check_output_paths(plans, output_dir, profiles)
    output_dir.mkdir(parents=True, exist_ok=True)
    _recover(output_dir)
    results: list[Result] = []
    bad: set[str] = set()
    bar = tqdm(plans, desc="notebooks", unit="nb", disable=not progress or None, file=sys.stderr)
    for p in bar:
        bar.set_postfix_str(p.name)
        output = output_dir / f"{p.name}.ipynb"
        blockers = [d for d in p.depends if d in bad]
        stamp = read_stamp(output_dir, p.name)
        key = stamp_key(p, output_dir)
        if blockers:
            bad.add(p.name)
            res = Result(p.name, "blocked", output, 0.0, p.params, f"depends on failed {', '.join(blockers)}")
        elif p.auto and stamp is not None and output.is_file():
            res = Result(p.name, "skipped", output, 0.0, stamp.get("parameters", {}),
                         "dependency: existing results reused (name it to rerun it)")
        elif not force and _is_up_to_date(output, stamp, key):
            res = Result(p.name, "skipped", output, 0.0, p.params)
        else:
            res = _run_one(p, key, profile, output_dir, kernel, progress, log_output)
            if res.status == "failed":
                bad.add(p.name)
        results.append(res)
        if progress is not False:
            tqdm.write(_describe(res, output_dir), file=sys.stderr)
    bar.close()
    failed = [r for r in results if r.status in ("failed", "blocked")]
    if failed and raise_on_error:
        lines = [f"{r.name}: {r.status}: {r.error}" + (f" (executed notebook: {r.failed_notebook})"
                                                      if r.failed_notebook else "") for r in failed]
        raise NotebookFailed("notebooks failed:\n" + "\n".join(lines), results)
    return results


def _describe(r: Result, output_dir: Path) -> str:
    if r.status == "ran":
        return f"[ran]     {r.name:<14} {r.seconds:8.1f} s -> {r.output}"
    if r.status == "skipped":
        why = r.error or "up to date; --force reruns"
        return f"[skipped] {r.name:<14} {why} ({r.output})"
    if r.status == "blocked":
        return f"[blocked] {r.name:<14} {r.error}"
    where = f"; executed notebook with the traceback: {r.failed_notebook}" if r.failed_notebook else ""
    return f"[FAILED]  {r.name:<14} after {r.seconds:.1f} s{where}\n{r.error}"


def status_table(profile: str = "quick", names: Iterable[str] | None = None,
                 output_dir: str | os.PathLike | None = None,
                 notebooks_dir: str | os.PathLike | None = None, profiles: Any = None,
                 overrides: Mapping[str, Any] | None = None,
                 package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """One row per notebook: name, description, depends, status for this profile and overrides
    (``up to date``, ``stale``, ``not run``, ``no source`` or ``error: ...``), last profile and run time."""
    prof = _load_profiles(profiles)
    check_choice("profile", profile, prof.PROFILES)
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    rows = []
    for n in (list(names) if names else list(prof.NOTEBOOKS)):
        stamp = read_stamp(output_dir, n)
        out = output_dir / f"{n}.ipynb"
        if not (Path(notebooks_dir) / f"{n}.py").is_file():
            st = "no source"
        else:
            try:
                over = {k: v for k, v in (overrides or {}).items()}
                plans = plan([n], profile, over, notebooks_dir, profiles, Path(package_dir))
                (p,) = [q for q in plans if q.name == n]
                st = ("up to date" if _is_up_to_date(out, stamp, stamp_key(p, output_dir))
                      else ("stale" if stamp else "not run"))
            except ConfigError as exc:
                st = f"error: {exc}"
        rows.append({"name": n, "status": st, "description": prof.NOTEBOOKS.get(n, ""),
                     "depends": ", ".join(prof.DEPENDS.get(n, [])),
                     "last_profile": (stamp or {}).get("profile", ""),
                     "last_seconds": (stamp or {}).get("seconds", ""),
                     "finished_at": (stamp or {}).get("finished_at", "")})
    return rows


def executed_summary(output_dir: str | os.PathLike | None = None,
                     notebooks_dir: str | os.PathLike | None = None, profiles: Any = None,
                     package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """What the committed experiment pages are: one row per notebook, read from the executed
    notebooks and their stamps (shown on the book's Experiments page).

    ``current`` is ``yes`` when rerunning with the recorded profile and overrides would be skipped
    (same notebook source, parameters and prunerob code), ``no`` when something changed since,
    ``placeholder`` when the page has not been produced by ``prunerob reproduce`` yet.
    """
    import nbformat

    prof = _load_profiles(profiles)
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir()
    rows = []
    for n, desc in prof.NOTEBOOKS.items():
        out = output_dir / f"{n}.ipynb"
        row = {"notebook": n, "what": desc, "profile": "", "overrides": "", "run time": "", "finished": "",
               "current": "placeholder"}
        meta = {}
        if out.is_file():
            try:
                meta = nbformat.read(out, as_version=4).metadata
            except Exception:  # unreadable output: treat as missing
                meta = {}
        stamp = read_stamp(output_dir, n)
        if meta.get("prunerob", {}).get("placeholder") or not out.is_file() or "papermill" not in meta:
            rows.append(row)
            continue
        info = meta.get("prunerob", {})
        row["profile"] = info.get("profile", "?")
        row["overrides"] = ", ".join(f"{k}={v!r}" for k, v in info.get("overrides", {}).items())
        secs = meta["papermill"].get("duration") or info.get("seconds")
        row["run time"] = f"{float(secs) / 60:.1f} min" if secs else ""
        row["finished"] = str(meta["papermill"].get("end_time", ""))[:16].replace("T", " ")
        try:
            (p,) = [q for q in plan([n], row["profile"], (stamp or {}).get("overrides", {}), notebooks_dir,
                                    profiles, Path(package_dir)) if q.name == n]
            row["current"] = "yes" if _is_up_to_date(out, stamp, stamp_key(p, output_dir)) else "no"
        except (ConfigError, ValueError):
            row["current"] = "no"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# CLI


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``prunerob reproduce`` and ``prunerob params`` to the CLI (each sets ``func``)."""
    p = subparsers.add_parser(
        "reproduce", help="execute the experiment notebooks (jupytext + papermill) into the book",
        description=("Execute experiment notebooks with papermill. Notebooks whose source, parameters and "
                     "prunerob code are unchanged since their last run are skipped (see .stamps/). Each "
                     "notebook runs in a staging folder; its notebook, results and stamp replace the "
                     "previous ones only when it finished, so an interrupt or failure leaves them as they "
                     "were."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n  prunerob reproduce --list\n"
                "  prunerob reproduce magnitude_mlp --profile quick -p epochs 1"
                "\n  prunerob reproduce --profile cpu            # all notebooks into book/experiments"))
    p.add_argument("names", nargs="*", metavar="NAME", help="notebooks to run (default: all)")
    p.add_argument("--profile", default="quick",
                   help="parameter profile: quick, cpu or paper (default: quick)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a parameter; VALUE is parsed like papermill -p (numbers, True/False/None) "
                        "or as a YAML/JSON list/mapping, e.g. -p seeds '[0,1]' -p eps 8/255. Checked against "
                        "the notebook's parameters cell before any kernel starts")
    p.add_argument("--output-dir", default=None,
                   help="folder for executed notebooks, results/ and .stamps/ (default: book/experiments of "
                        "the checkout containing the current directory)")
    p.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="rerun even if up to date")
    p.add_argument("--list", action="store_true",
                   help="list notebooks, their status and parameters; run nothing")
    p.add_argument("--kernel", default=None,
                   help="Jupyter kernel spec name (default: the Python interpreter running prunerob)")
    p.add_argument("--log-output", action="store_true", help="echo notebook outputs while they run")
    p.set_defaults(func=_cmd_reproduce)

    q = subparsers.add_parser(
        "params", help="print a notebook's full parameters for a profile as YAML (for papermill -f)",
        description=("Print every parameter of notebook NAME for --profile (with -p overrides, checked like "
                     "reproduce's) as YAML, for plain papermill: papermill NB.ipynb OUT.ipynb "
                     "-f params.yaml. --ipynb also writes the notebook converted from its jupytext source "
                     "with a kernelspec, so papermill runs it without warnings."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("example:\n  prunerob params depth --profile cpu --ipynb depth.ipynb > depth.yaml\n"
                "  papermill depth.ipynb depth-out.ipynb -f depth.yaml --cwd book/experiments"))
    q.add_argument("names", nargs=1, metavar="NAME", help="the notebook")
    q.add_argument("--profile", default="quick",
                   help="parameter profile: quick, cpu or paper (default: quick)")
    q.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a parameter (as for reproduce)")
    q.add_argument("--ipynb", default=None, metavar="PATH", help="also write the notebook (.ipynb) here")
    q.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    q.set_defaults(func=_cmd_params)
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, value in args.parameter:
        if key in overrides:
            raise ConfigError(f"-p {key} is given twice; give each parameter once")
        overrides[key] = parse_value(value)
    return overrides


def parameters_yaml(name: str, profile: str = "quick", overrides: Mapping[str, Any] | None = None,
                    notebooks_dir: str | os.PathLike | None = None, profiles: Any = None) -> str:
    """Every parameter of notebook ``name`` for ``profile`` (plus checked ``overrides``) as YAML."""
    import yaml

    (p,) = [q for q in plan([name], profile, overrides, notebooks_dir, profiles) if q.name == name]
    return yaml.safe_dump(dict(p.params), sort_keys=False, default_flow_style=None, allow_unicode=True)


def write_plain_notebook(
    name: str, path: str | os.PathLike, notebooks_dir: str | os.PathLike | None = None
) -> Path:
    """Write notebook ``name`` as ``.ipynb`` (from its jupytext source) with a Python kernelspec and
    language info, the form plain ``papermill`` executes without warnings."""
    import nbformat

    src = Path(notebooks_dir if notebooks_dir is not None else default_notebooks_dir()) / f"{name}.py"
    if not src.is_file():
        raise ConfigError(f"notebook source {src} does not exist (notebook={name!r})")
    nb = _read_source(src)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    atomic_write_text(path, nbformat.writes(nb) + "\n")
    return Path(path)


def _cmd_params(args: argparse.Namespace) -> int:
    (name,) = args.names
    if args.ipynb:
        check_writable(args.ipynb, "--ipynb", "file")
    text = parameters_yaml(name, args.profile, _overrides(args), args.notebooks_dir)
    if args.ipynb:
        write_plain_notebook(name, args.ipynb, args.notebooks_dir)
    sys.stdout.write(text)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    output_dir = Path(args.output_dir) if args.output_dir else default_output_dir()
    if args.list:
        print(f"status for --profile {args.profile} in {output_dir}:")
        if args.names:  # check names and -p values first: one clear error instead of a table of them
            check_output_paths(plan(args.names, args.profile, overrides, args.notebooks_dir),
                               output_dir.resolve())
        rows = status_table(args.profile, args.names or None, output_dir, args.notebooks_dir, None, overrides)
        for r in rows:
            dep = f" (reads {r['depends']})" if r["depends"] else ""
            last = ""
            if r["last_profile"]:
                last = f"; last run: {r['last_profile']}, {r['last_seconds']} s, {r['finished_at']}"
            print(f"{r['name']:<14} [{r['status']}]{dep}{last}\n    {r['description']}")
        if args.names:
            for p in plan(args.names, args.profile, overrides, args.notebooks_dir):
                print(f"\nparameters of {p.name} (--profile {args.profile}):")
                for k, v in p.params.items():
                    print(f"  {k} = {v!r}")
        return 0
    try:
        results = reproduce(args.names or None, args.profile, overrides, output_dir, args.force,
                            args.notebooks_dir, progress=True, kernel=args.kernel, raise_on_error=False,
                            log_output=args.log_output)
    except KeyboardInterrupt:
        print("interrupted: the running notebook was stopped; its previous notebook, results and stamp are "
              "unchanged, finished notebooks are stamped and will be skipped on the next run",
              file=sys.stderr)
        return 130
    except SystemExit as exc:  # SIGTERM while a notebook ran (already cleaned up)
        print("terminated: the running notebook was stopped; its previous notebook, results and stamp are "
              "unchanged", file=sys.stderr)
        return int(exc.code) if isinstance(exc.code, int) else 143
    counts = {s: sum(r.status == s for r in results) for s in ("ran", "skipped", "failed", "blocked")}
    total = sum(r.seconds for r in results)
    print(f"reproduce --profile {args.profile}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
          + f" ({total:.0f} s) -> {output_dir}")
    return 1 if counts["failed"] or counts["blocked"] else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m prunerob.runner ...``); also runs one notebook for
    :func:`_run_one` (``python -m prunerob.runner _execute-notebook JOB.json``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [_EXECUTE]:
        return _execute_job(argv[1])
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
