"""Resume files of an interrupted sweep: finished (method, keep) chunks, reloaded bit for bit.

The file is JSON (one header line with the sweep's ``config_hash``, then one line per finished
chunk holding its result rows) and is rewritten atomically after every chunk. JSON writes floats
with ``repr`` (the shortest string that reads back to the same double), keeps ints, strings and
None apart, so a resumed sweep builds exactly the rows an uninterrupted one builds and writes a
byte-identical CSV (issue 9; ``tests/test_sweep.py::test_resume_is_byte_identical``). A file of
another configuration, or an unreadable one, is reported by name and ignored.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prunerob.config import atomic_write_text

#: format version of the resume file
RESUME_VERSION = 1


def _native(value: Any) -> Any:
    """numpy scalars -> Python scalars (JSON cannot hold them)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a resume file")


def default_path(out: str | os.PathLike) -> Path:
    """The resume file of the result file ``out``: ``<out>.partial.json``."""
    return Path(str(out) + ".partial.json")


def read_done(path: Path, chash: str) -> dict[tuple[str, float], list[dict]]:
    """Finished ``(method, keep)`` chunks stored in ``path`` by a run with the same ``config_hash``.

    Returns ``{}`` when the file is missing, was written by another configuration, or cannot be
    read (a warning names the file; it is overwritten by the next chunk).
    """
    if not path.exists():
        return {}
    try:
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        if header.get("version") != RESUME_VERSION or header.get("config_hash") != chash:
            return {}
        done: dict[tuple[str, float], list[dict]] = {}
        for line in lines[1:]:
            chunk = json.loads(line)
            done[(str(chunk["method"]), float(chunk["keep"]))] = list(chunk["rows"])
        return done
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        warnings.warn(f"ignoring unreadable resume file {path}: {exc}", stacklevel=2)
        return {}


def write_done(path: Path, chash: str, done: Mapping[tuple[str, float], Sequence[Mapping[str, Any]]]) -> None:
    """Write all finished chunks of ``done`` to ``path`` atomically."""
    lines = [json.dumps({"version": RESUME_VERSION, "config_hash": chash})]
    for (method, keep), rows in done.items():
        lines.append(json.dumps({"method": method, "keep": keep, "rows": list(rows)}, default=_native))
    atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# the resume folder of ``prunerob sweep --out X`` (``X.partial/``)


def check_folder(path: str | os.PathLike, name: str = "--out") -> Path:
    """Check, before any work, that ``path`` can be a sweep's resume folder: an existing file there
    is a ConfigError naming ``name``, as is a location that cannot be written. Nothing is created
    (the first resume file creates the folder)."""
    from prunerob.config import ConfigError, check_writable

    p = Path(path)
    try:
        not_a_folder = p.exists() and not p.is_dir()
    except OSError:  # a name too long, a loop of links: check_writable below names it
        not_a_folder = False
    if not_a_folder:
        raise ConfigError(f"{name}: {str(p)!r} exists and is not a folder; prunerob keeps the finished parts "
                          "of an interrupted sweep there. Move it away or give another --out")
    check_writable(p, name, "dir")
    return p


def is_resume_file(path: Path) -> bool:
    """Whether ``path`` is a resume file of this module: named ``*.partial.json`` and starting with
    the header line :func:`write_done` writes (``version`` and ``config_hash``)."""
    if not (path.name.endswith(".partial.json") and path.is_file() and not path.is_symlink()):
        return False
    try:
        with path.open() as f:
            header = json.loads(f.readline())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and set(header) == {"version", "config_hash"}


def close_folder(path: str | os.PathLike, written: Sequence[str | os.PathLike]) -> list[Path]:
    """Remove what sweeps wrote in the resume folder ``path`` once the table is written: the resume
    files ``written`` (the names this run used), any other file :func:`is_resume_file` recognises
    (an earlier run of another configuration), and the temporary files of their atomic writes
    (``.<name>.<random>.tmp``); then the folder itself when it is empty. Anything else stays.
    Returns what is left in it (empty when the folder is gone)."""
    p = Path(path)
    if not p.is_dir() or p.is_symlink():
        return []
    ours = {Path(w).name for w in written}
    for f in p.iterdir():
        if not f.is_file() or f.is_symlink():
            continue
        temp = f.name.startswith(".") and ".partial.json." in f.name and f.name.endswith(".tmp")
        if f.name in ours or temp or is_resume_file(f):
            f.unlink(missing_ok=True)
    left = sorted(p.iterdir())
    if not left:
        p.rmdir()
    return left
