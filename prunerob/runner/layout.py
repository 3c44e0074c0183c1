"""Folder layout of ``prunerob reproduce`` (checkout root, output and notebook folders, hidden
folders), the tags it writes into notebooks and its result types."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from prunerob.analysis.provenance import STAMP_DIR  # noqa: F401  (re-exported)

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTIAL_DIR, FAILED_DIR, STAGING_DIR = ".partial", ".failed", ".staging"
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
#: the ``prunerob`` package folder (not this sub-package): :func:`package_hash` hashes every ``*.py`` in it
PACKAGE_DIR = Path(__file__).resolve().parents[1]


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


def _load_profiles(profiles: Any) -> Any:
    if profiles is None:
        from prunerob.runner import profiles as mod

        return mod
    return profiles
