"""Hashes and stamps: :func:`package_hash`, the per-notebook stamp and the up-to-date test."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prunerob.analysis.provenance import read_stamp, stamp_path  # noqa: F401  (re-exported)
from prunerob.runner.layout import PACKAGE_DIR

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


def _tree_sha256(folder: Path) -> str | None:
    """Hash of every file under ``folder`` (relative path and bytes); None when it does not exist."""
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + _sha256_file(f).encode())
    return h.hexdigest()
