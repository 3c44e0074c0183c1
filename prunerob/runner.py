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
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import ConfigError, atomic_write_text, check_choice

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "book" / "experiments"
STAMP_DIR, PARTIAL_DIR, FAILED_DIR = ".stamps", ".partial", ".failed"
HIDDEN_TAG = "hide-input"
INFO_TAG = "prunerob-run-info"
PACKAGE_DIR = Path(__file__).resolve().parent


class NotebookFailed(RuntimeError):
    """Raised by :func:`reproduce` (``raise_on_error=True``) after all runnable notebooks ran."""

    def __init__(self, message: str, results: list["Result"]):
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
    if stamp is None or stamp.get("key") != key or not output.is_file():
        return False
    return stamp.get("output_sha256") == _sha256_file(output)


# --------------------------------------------------------------------------------------------
# kernel


def _current_python_kernel_manager():
    """A KernelManager subclass that starts ``sys.executable -m ipykernel_launcher``."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class CurrentPythonKernelManager(KernelManager):
        @property
        def kernel_spec(self):  # type: ignore[override]
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


def plan(names: Iterable[str] | None = None, profile: str = "quick", overrides: Mapping[str, Any] | None = None,
         notebooks_dir: str | os.PathLike = DEFAULT_NOTEBOOKS_DIR, profiles: Any = None,
         package_dir: Path = PACKAGE_DIR) -> list[_Plan]:
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
    notebooks_dir = Path(notebooks_dir)
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
            listing = "; ".join(f"{p.name}: {', '.join(p.names_declared)}" for p in plans if p.name in requested)
            raise ConfigError(f"-p {key}: no selected notebook has a parameter {key!r}. Parameters: {listing}")
    pkg = package_hash(Path(package_dir))
    for p in plans:
        if not p.auto:  # dependencies pulled in automatically keep their profile defaults
            p.overrides = {k: v for k, v in overrides.items() if k in p.names_declared}
            p.params.update(p.overrides)
        p.base_key = _sha256_bytes(_canonical({
            "notebook": _sha256_bytes(p.source.read_bytes()),
            "parameters": p.params,
            "profile": profile,
            "prunerob": pkg,
        }).encode())
    return plans


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


def _run_one(p: _Plan, key: str, profile: str, output_dir: Path, kernel: str | None,
             progress: bool, log_output: bool = False) -> Result:
    import nbformat
    import papermill as pm

    output = output_dir / f"{p.name}.ipynb"
    partial = output_dir / PARTIAL_DIR / f"{p.name}.ipynb"
    failed = output_dir / FAILED_DIR / f"{p.name}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    nb = _read_source(p.source)
    nb.metadata["kernelspec"] = {"name": kernel or "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    extra: dict[str, Any] = {}
    if kernel is None:
        extra["kernel_manager_class"] = _current_python_kernel_manager()
    # papermill's per-cell bar only on a terminal; in logs (CI) one line per notebook is clearer
    cell_bar = {"desc": p.name, "leave": False} if progress and sys.stderr.isatty() else False
    if progress and not cell_bar:
        print(f"[start]   {p.name:<14} {_dt.datetime.now().strftime('%H:%M:%S')}", file=sys.stderr, flush=True)
    # a non-inline MPLBACKEND (e.g. Agg) inherited by the kernel would hide every figure
    saved_backend = os.environ.pop("MPLBACKEND", None)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            nb, str(partial), parameters=p.params, kernel_name=kernel or "python3", language="python",
            progress_bar=cell_bar, log_output=log_output, cwd=str(output_dir), **extra)
    except BaseException as exc:
        seconds = time.perf_counter() - t0
        if partial.exists():
            failed.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, failed)
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: clean up, then stop
            raise
        msg = f"{type(exc).__name__}: {exc}"
        return Result(p.name, "failed", output, seconds, p.params, msg.strip()[-4000:],
                      failed if failed.exists() else None)
    finally:
        if saved_backend is not None:
            os.environ["MPLBACKEND"] = saved_backend
    seconds = time.perf_counter() - t0
    executed = nbformat.read(partial, as_version=4)
    _postprocess(executed, p.name, profile, p.overrides, seconds, output,
                 injected_all=set(p.names_declared) <= set(p.params))
    atomic_write_text(partial, nbformat.writes(executed) + "\n")
    os.replace(partial, output)
    if failed.exists():
        failed.unlink()
    for d in (partial.parent, failed.parent):
        try:
            d.rmdir()  # only when empty
        except OSError:
            pass
    stamp = {
        "name": p.name,
        "profile": profile,
        "key": key,
        "parameters": p.params,
        "overrides": p.overrides,
        "notebook": f"notebooks/{p.name}.py",
        "notebook_sha256": _sha256_bytes(p.source.read_bytes()),
        "output_sha256": _sha256_file(output),
        "seconds": round(seconds, 1),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.executable,
        "kernel": kernel or "current interpreter",
    }
    atomic_write_text(stamp_path(output_dir, p.name), json.dumps(stamp, indent=1, sort_keys=True, default=str) + "\n")
    return Result(p.name, "ran", output, seconds, p.params)


# --------------------------------------------------------------------------------------------
# public API


def reproduce(names: Iterable[str] | None = None, profile: str = "quick", overrides: Mapping[str, Any] | None = None,
              output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR, force: bool = False,
              notebooks_dir: str | os.PathLike = DEFAULT_NOTEBOOKS_DIR, progress: bool = True,
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
        output_dir: where ``<name>.ipynb``, ``results/<name>/`` and ``.stamps/`` go; the kernel's cwd.
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
    output_dir = Path(output_dir).resolve()
    plans = plan(names, profile, overrides, notebooks_dir, profiles, Path(package_dir))
    prof = _load_profiles(profiles)
    output_dir.mkdir(parents=True, exist_ok=True)
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
                 output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
                 notebooks_dir: str | os.PathLike = DEFAULT_NOTEBOOKS_DIR, profiles: Any = None,
                 overrides: Mapping[str, Any] | None = None,
                 package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """One row per notebook: name, description, depends, status for this profile and overrides
    (``up to date``, ``stale``, ``not run``, ``no source`` or ``error: ...``), last profile and run time."""
    prof = _load_profiles(profiles)
    check_choice("profile", profile, prof.PROFILES)
    output_dir = Path(output_dir)
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


def executed_summary(output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR,
                     notebooks_dir: str | os.PathLike = DEFAULT_NOTEBOOKS_DIR, profiles: Any = None,
                     package_dir: str | os.PathLike = PACKAGE_DIR) -> list[dict[str, Any]]:
    """What the committed experiment pages are: one row per notebook, read from the executed
    notebooks and their stamps (shown on the book's Experiments page).

    ``current`` is ``yes`` when rerunning with the recorded profile and overrides would be skipped
    (same notebook source, parameters and prunerob code), ``no`` when something changed since,
    ``placeholder`` when the page has not been produced by ``prunerob reproduce`` yet.
    """
    import nbformat

    prof = _load_profiles(profiles)
    output_dir = Path(output_dir)
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
    """Add ``prunerob reproduce`` to the CLI (sets ``func``)."""
    p = subparsers.add_parser(
        "reproduce", help="execute the experiment notebooks (jupytext + papermill) into the book",
        description=("Execute experiment notebooks with papermill. Notebooks whose source, parameters and "
                     "prunerob code are unchanged since their last run are skipped (see .stamps/)."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n  prunerob reproduce --list\n  prunerob reproduce magnitude_mlp --profile quick -p epochs 1"
                "\n  prunerob reproduce --profile cpu            # all notebooks into book/experiments"))
    p.add_argument("names", nargs="*", metavar="NAME", help="notebooks to run (default: all)")
    p.add_argument("--profile", default="quick", help="parameter profile: quick, cpu or paper (default: quick)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a parameter; VALUE is parsed like papermill -p (numbers, True/False/None) "
                        "or as a YAML/JSON list/mapping, e.g. -p seeds '[0,1]' -p eps 8/255")
    p.add_argument("--output-dir", default=str(DEFAULT_OUTPUT_DIR),
                   help="folder for executed notebooks, results/ and .stamps/ (default: book/experiments)")
    p.add_argument("--notebooks-dir", default=str(DEFAULT_NOTEBOOKS_DIR), help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="rerun even if up to date")
    p.add_argument("--list", action="store_true", help="list notebooks, their status and parameters; run nothing")
    p.add_argument("--kernel", default=None,
                   help="Jupyter kernel spec name (default: the Python interpreter running prunerob)")
    p.add_argument("--log-output", action="store_true", help="echo notebook outputs while they run")
    p.set_defaults(func=_cmd_reproduce)
    return p


def _cmd_reproduce(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    for key, value in args.parameter:
        overrides[key] = parse_value(value)
    if args.list:
        print(f"status for --profile {args.profile} in {args.output_dir}:")
        rows = status_table(args.profile, args.names or None, args.output_dir, args.notebooks_dir, None, overrides)
        for r in rows:
            dep = f" (reads {r['depends']})" if r["depends"] else ""
            last = f"; last run: {r['last_profile']}, {r['last_seconds']} s, {r['finished_at']}" if r["last_profile"] else ""
            print(f"{r['name']:<14} [{r['status']}]{dep}{last}\n    {r['description']}")
        if args.names:
            for p in plan(args.names, args.profile, overrides, args.notebooks_dir):
                print(f"\nparameters of {p.name} (--profile {args.profile}):")
                for k, v in p.params.items():
                    print(f"  {k} = {v!r}")
        return 0
    try:
        results = reproduce(args.names or None, args.profile, overrides, args.output_dir, args.force,
                            args.notebooks_dir, progress=True, kernel=args.kernel, raise_on_error=False,
                            log_output=args.log_output)
    except KeyboardInterrupt:
        print("interrupted: finished notebooks are stamped and will be skipped on the next run", file=sys.stderr)
        return 130
    counts = {s: sum(r.status == s for r in results) for s in ("ran", "skipped", "failed", "blocked")}
    total = sum(r.seconds for r in results)
    print(f"reproduce --profile {args.profile}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
          + f" ({total:.0f} s) -> {Path(args.output_dir)}")
    return 1 if counts["failed"] or counts["blocked"] else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m prunerob.runner ...``) for when cli.py is unavailable."""
    parser = argparse.ArgumentParser(prog="prunerob")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
