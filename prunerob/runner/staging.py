"""Staging folders, the journaled swap into ``output_dir``, recovery after a crash, and the
signal / process-group handling that keeps an interrupted run from leaving partial output."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from prunerob.runner.layout import STAGING_DIR


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
