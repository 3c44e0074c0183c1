"""Executing notebooks: the kernel manager, the papermill child process for one notebook
(:func:`_run_one`, ``python -m prunerob.runner _execute-notebook``) and :func:`reproduce`."""
from __future__ import annotations

import contextlib
import datetime as _dt
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prunerob.config import (
    check_writable,
)
from prunerob.runner.checks import check_kernel
from prunerob.runner.layout import (
    _EXECUTE,
    _PGID_ENV,
    FAILED_DIR,
    HIDDEN_TAG,
    INFO_TAG,
    PACKAGE_DIR,
    STAGING_DIR,
    NotebookFailed,
    Result,
    default_output_dir,
)
from prunerob.runner.params import _read_source
from prunerob.runner.planning import _Plan, check_output_paths, plan, stamp_key
from prunerob.runner.staging import (
    _Interrupted,
    _kill_group,
    _link_inputs,
    _recover,
    _signals_raise,
    _swap_in,
)
from prunerob.runner.stamps import (
    _is_up_to_date,
    _sha256_bytes,
    _sha256_file,
    _tree_sha256,
    read_stamp,
    stamp_path,
)

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
# running one notebook


def _rerun_command(name: str, profile: str, overrides: Mapping[str, Any]) -> str:
    parts = ["prunerob", "reproduce", name, "--profile", profile]
    for k, v in overrides.items():
        text = v if isinstance(v, str) else json.dumps(v)
        parts += ["-p", k, text]
    return " ".join(shlex.quote(str(x)) for x in parts)


def _units_sentence(results: Path) -> str:
    """What the page read from the result store, from its ``units.json`` (empty without one)."""
    from prunerob.engine.store import read_units

    _groups, units = read_units(results)
    if not units:
        return ""
    secs = sum(float(u.get("seconds", 0.0)) for u in units)
    devices = ", ".join(sorted({str(u.get("device_class")) for u in units}))
    return (f" Its {len(units)} result-store units (models, evaluation cells, study tables; computed on "
            f"{devices}) took about {secs / 3600:.1f} CPU hours when they were computed; the time above "
            "is this execution, which read the stored ones.")


def _postprocess(nb, name: str, profile: str, overrides: Mapping[str, Any], seconds: float, output: Path,
                 injected_all: bool = True, units: str = "") -> None:
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
    from prunerob import __version__

    text = (
        "```{admonition} How this page was produced\n:class: note\n"
        f"Executed by `prunerob reproduce` with profile **{profile}** "
        f"(overrides: {over}) on {when} in {seconds:.0f} s (prunerob {__version__}).{units} "
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
                     injected_all=set(p.names_declared) <= set(p.params),
                     units=_units_sentence(work / out_rel))
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


def _watch_parent(parent: int, pgid_file: str | None, interval: float = 0.5) -> threading.Thread:
    """Stop this papermill child and its kernel when the ``reproduce`` process that started it dies
    without cleaning up (SIGKILL of that one process): a daemon thread sees the parent change, kills
    the kernel's process group (recorded in ``pgid_file``) and exits. The staging folder is left to
    :func:`~prunerob.runner.staging._recover` of the next run."""
    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    _kill_group(int(Path(str(pgid_file)).read_text().strip()))
                os._exit(1)

    t = threading.Thread(target=watch, name="prunerob-parent-watch", daemon=True)
    t.start()
    return t


def _execute_job(job_path: str) -> int:
    """The child process of :func:`_run_one`: papermill executes the notebook into the staging folder."""
    import papermill as pm

    job = json.loads(Path(job_path).read_text())
    _watch_parent(os.getppid(), os.environ.get(_PGID_ENV))
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
            :mod:`prunerob.runner.profiles`).
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
    if kernel is not None:
        check_kernel(kernel)
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
