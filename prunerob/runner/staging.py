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

from prunerob.config import ConfigError
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


def _owner(d: Path) -> tuple[str, int] | None:
    """(notebook name, pid) of a staging folder ``<name>-<pid>-<random>``, or None for other entries."""
    try:
        name, pid, _rand = d.name.rsplit("-", 2)
        return name, int(pid)
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # another user's live process (an absurd pid is no process)
    return True


def _journal_entries(d: Path, output_dir: Path) -> list[tuple[Path, Path]]:
    """The (backup, destination) pairs of the crash journal ``d/swap.json``, validated: each backup
    is a plain name in ``d/backup`` and each destination lies inside ``output_dir`` (outside its
    hidden staging folder). ConfigError naming the journal otherwise: a journal that points
    elsewhere was not written by prunerob and is never acted upon."""
    journal = d / "swap.json"
    root = output_dir.resolve()
    try:
        raw = json.loads(journal.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"refusing the crash journal {journal}: unreadable ({exc}); nothing was rolled "
                          f"back. Inspect {d} and delete it to continue") from None
    if not isinstance(raw, list):
        raw = [raw]
    out: list[tuple[Path, Path]] = []
    for entry in raw:
        old = entry.get("old") if isinstance(entry, dict) else None
        dest = entry.get("dest") if isinstance(entry, dict) else None
        why = None
        if not (isinstance(old, str) and isinstance(dest, str)):
            why = f"entry {entry!r} is not {{'old': NAME, 'dest': PATH}}"
        elif old in ("", ".", "..") or Path(old).name != old:
            why = f"backup name {old!r} is not a plain file name"
        else:
            p = Path(dest)
            target = p.parent.resolve() / p.name if p.is_absolute() else None
            staging = root / STAGING_DIR
            if (target is None or os.path.normpath(dest) != dest or p.name in ("", ".", "..")
                    or root not in target.parents or target == staging or staging in target.parents):
                why = f"destination {dest!r} lies outside the output folder {root}"
        if why:
            raise ConfigError(f"refusing the crash journal {journal}: {why}; nothing was rolled back or "
                              f"deleted. Inspect {d} and delete it to continue")
        out.append((d / "backup" / old, Path(dest)))
    return out


def leftovers(output_dir: Path) -> list[dict[str, str]]:
    """Staging folders of dead runs in ``output_dir/.staging`` (what :func:`_recover` will do with
    them at the next run), for ``reproduce --list``: one dict per folder with ``name`` (the
    notebook), ``folder`` and ``action``."""
    root = output_dir / STAGING_DIR
    out: list[dict[str, str]] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        owner = _owner(d)
        if owner is None or d.is_symlink() or not d.is_dir() or _alive(owner[1]):
            continue
        name, pid = owner
        if (d / "swap.json").is_file():
            try:
                pending = [dest for old, dest in _journal_entries(d, output_dir)
                           if old.exists() or old.is_symlink()]
                action = (f"run {pid} was killed while swapping in its outputs; the next run rolls back "
                          f"{', '.join(str(p.relative_to(output_dir.resolve())) for p in pending)} to the "
                          "previous version" if pending else
                          f"run {pid} was killed after its swap; the next run removes the folder")
            except ConfigError as exc:
                action = f"REFUSED: {exc}"
        else:
            action = (f"run {pid} was killed before its swap; the previous outputs are untouched and the "
                      "next run removes the folder")
        out.append({"name": name, "folder": str(d), "action": action})
    return out


def _recover(output_dir: Path) -> None:
    """Undo what an ungracefully killed run (SIGKILL, power loss) left in ``.staging``: a swap cut in
    half is rolled back to the previous files; staging folders of dead runs are removed. A journal
    naming a path outside ``output_dir`` is refused (ConfigError) and nothing is touched."""
    root = output_dir / STAGING_DIR
    if not root.is_dir():
        return
    for d in root.iterdir():
        owner = _owner(d)
        if owner is None or d.is_symlink() or not d.is_dir() or _alive(owner[1]):
            continue
        if (d / "swap.json").is_file():
            entries = _journal_entries(d, output_dir)  # all checked before anything is moved
            with contextlib.suppress(OSError):
                for old, dest in reversed(entries):
                    if old.exists() or old.is_symlink():
                        if dest.is_dir() and not dest.is_symlink():
                            shutil.rmtree(dest)
                        elif dest.exists() or dest.is_symlink():
                            dest.unlink()
                        os.replace(old, dest)
        shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()
