"""The ``reproduce`` and ``params`` sub-commands (:func:`register`) and the stand-alone entry point."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prunerob.config import (
    ConfigError,
    atomic_write_text,
    check_writable,
)
from prunerob.runner.execute import _execute_job, reproduce
from prunerob.runner.layout import _EXECUTE, default_notebooks_dir, default_output_dir
from prunerob.runner.params import _read_source, parse_value
from prunerob.runner.planning import check_output_paths, plan
from prunerob.runner.status import status_table

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
    p.add_argument("--profile", default=None,
                   help="parameter profile: quick, cpu or paper (default: the profile that produced each "
                        "committed page, quick for a page never run)")
    p.add_argument("--replace-profile", action="store_true",
                   help="allow --profile to replace committed pages that another profile produced")
    p.add_argument("--recompute", action="store_true",
                   help="with --force: also recompute the page's result-store units (default: read them)")
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
        overrides[key] = parse_value(value, key)
    return overrides


def parameters_yaml(name: str, profile: str = "quick", overrides: Mapping[str, Any] | None = None,
                    notebooks_dir: str | os.PathLike | None = None, profiles: Any = None,
                    output_dir: str | os.PathLike | None = None) -> str:
    """Every parameter of notebook ``name`` for ``profile`` (plus checked ``overrides``) as YAML.

    The values are checked as by ``prunerob reproduce``, output paths included: they must stay inside
    ``output_dir`` (default: ``book/experiments``, the working folder papermill is given)."""
    import yaml

    plans = plan([name], profile, overrides, notebooks_dir, profiles)
    root = Path(output_dir if output_dir is not None else default_output_dir()).resolve()
    check_output_paths(plans, root, profiles)
    (p,) = [q for q in plans if q.name == name]
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


def _committed_profiles(names: list[str], output_dir: Path) -> dict[str, str]:
    """Notebook -> the profile of its committed page (its run stamp); pages never run are left out."""
    from prunerob.analysis.provenance import read_stamp

    out = {}
    for n in names:
        prof = (read_stamp(output_dir, n) or {}).get("profile")
        if prof:
            out[n] = str(prof)
    return out


def _by_profile(args: argparse.Namespace, output_dir: Path) -> dict[str, list[str]]:
    """Profile -> the notebooks to run with it: ``--profile`` for all, else each page's own."""
    from prunerob.runner.layout import _load_profiles

    names = list(args.names or _load_profiles(None).NOTEBOOKS)
    committed = _committed_profiles(names, output_dir)
    if args.profile is None:
        groups: dict[str, list[str]] = {}
        for n in names:
            groups.setdefault(committed.get(n, "quick"), []).append(n)
        return groups
    other = {n: p for n, p in committed.items() if p != args.profile}
    if other and not args.list and not args.replace_profile:
        pages = ", ".join(f"{n} ({p})" for n, p in sorted(other.items()))
        raise ConfigError(f"--profile {args.profile} would replace committed pages of another profile: "
                          f"{pages}; give --replace-profile to do so, or leave out --profile to rerun each "
                          "page with its own profile")
    return {args.profile: names}


def _cmd_reproduce(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    output_dir = Path(args.output_dir) if args.output_dir else default_output_dir()
    if args.recompute and not args.force:
        raise ConfigError("--recompute recomputes the result-store units of a rerun page: give --force "
                          "with it")
    groups = _by_profile(args, output_dir)
    if args.recompute:
        os.environ["PRUNEROB_STORE_RECOMPUTE"] = "1"
    if len(groups) > 1 or args.profile is None:
        status = 0
        for prof, names in groups.items():
            sub = argparse.Namespace(**{**vars(args), "profile": prof, "names": names,
                                        "show_parameters": bool(args.names)})
            status = max(status, _cmd_reproduce_one(sub, overrides, output_dir))
        return status
    (args.profile,) = groups
    return _cmd_reproduce_one(args, overrides, output_dir)


def _warn_bf16(args: argparse.Namespace, overrides: dict[str, Any]) -> None:
    """The runner's one line (stderr, before any work) when bf16 training would be emulated on this CPU
    (:func:`prunerob.runner.hardware.bf16_warning`)."""
    from prunerob.runner.hardware import bf16_warning, native_bf16

    if native_bf16() is not False:  # native bf16, or not known: nothing to say (and no torch import)
        return
    import torch

    plans = plan(args.names or None, args.profile, overrides, args.notebooks_dir)
    line = bf16_warning([(p.name, p.params) for p in plans], cuda=torch.cuda.is_available(), native=False)
    if line:
        print(line, file=sys.stderr)


def _cmd_reproduce_one(args: argparse.Namespace, overrides: dict[str, Any], output_dir: Path) -> int:
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
            if r.get("recovery"):
                print(f"    left by a killed run: {r['recovery']}")
        if args.names and getattr(args, "show_parameters", True):
            for p in plan(args.names, args.profile, overrides, args.notebooks_dir):
                print(f"\nparameters of {p.name} (--profile {args.profile}):")
                for k, v in p.params.items():
                    print(f"  {k} = {v!r}")
        return 0
    _warn_bf16(args, overrides)
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
    from prunerob.cli import main as cli_main

    return cli_main(argv)
