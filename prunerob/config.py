"""Shared configuration helpers: paths, devices, argument parsing and validation.

Every module raises :class:`ConfigError` (a ``ValueError``) for bad user input, with a message
that names the parameter and the allowed values.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a device is resolved, so analysis stays torch-free
    import torch


class ConfigError(ValueError):
    """Bad user input: the message names the parameter and what is allowed."""


class CorruptCacheError(ConfigError):
    """A cache entry failed validation; it was moved aside (see :func:`quarantine`) and can be rebuilt."""


class CorruptCacheWarning(UserWarning):
    """Issued once per bad cache entry, naming the file and where it was moved."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Root folder for data sets: ``root`` if given, else ``$PRUNEROB_DATA``, else
    ``~/.cache/prunerob/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("PRUNEROB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunerob" / "data"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Cache folder for checkpoints and decoded data: ``path``, else ``$PRUNEROB_CACHE``, else
    ``~/.cache/prunerob`` (created). ConfigError naming it when it cannot be a folder (a file, a
    path under a file, a read-only or full file system)."""
    if path is not None:
        p, name = Path(path).expanduser(), "cache_dir"
    else:
        env = os.environ.get("PRUNEROB_CACHE")
        p = Path(env).expanduser() if env else Path.home() / ".cache" / "prunerob"
        name = "PRUNEROB_CACHE" if env else "the default cache folder ~/.cache/prunerob"
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{name}={str(p)!r} cannot be used as the cache folder "
                          f"({exc.strerror or exc}); point PRUNEROB_CACHE at a writable folder") from None
    return p


def check_cache_writable(path: str | os.PathLike | None = None) -> Path:
    """:func:`cache_dir`, checked before any work to accept new files (a probe file is created and
    removed), so that a model is never trained only to fail when its checkpoint is written."""
    p = cache_dir(path)
    name = "cache_dir" if path is not None else "PRUNEROB_CACHE"
    try:
        fd, probe = tempfile.mkstemp(dir=p, prefix=".prunerob-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{name}={str(p)!r} is not writable ({exc.strerror or exc}); point PRUNEROB_CACHE "
                          "at a writable folder") from None
    return p


def shared_data_dir() -> Path | None:
    """The offline data copies (``shared/data`` beside or inside the checkout), if present.

    ``$PRUNEROB_SHARED_DATA`` overrides the search.
    """
    env = os.environ.get("PRUNEROB_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    here = Path(__file__).resolve().parent.parent
    cands = (here.parent / "shared" / "data", here / "shared" / "data", Path.cwd().parent / "shared" / "data")
    for cand in cands:
        if cand.is_dir():
            return cand
    return None


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


#: device types a model can run on, with the test of whether this machine has one; torch also
#: parses ``meta`` (tensors without data), ``xpu``, ``hpu``, ... which cannot evaluate a model here
DEVICE_TYPES: dict[str, Callable[[], bool]] = {
    "cpu": lambda: True,
    "cuda": lambda: __import__("torch").cuda.is_available(),
    "mps": _mps_available,
}


def available_devices() -> list[str]:
    """The device names this machine can run on (``auto``, ``cpu``, ``cuda:0``, ..., ``mps``)."""
    import torch

    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def resolve_device(device: str | torch.device | None = "auto", name: str = "device") -> torch.device:
    """``auto`` picks CUDA when available, else CPU. Raises ConfigError naming ``name`` for a device
    this machine does not have (``meta``, ``mps`` without Apple silicon, ``cuda:N`` past the last GPU)."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    allowed = ", ".join(available_devices())
    try:
        dev = device if isinstance(device, torch.device) else torch.device(str(device))
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{name}={device!r} is not a valid torch device; "
                          f"allowed on this machine: {allowed}") from None
    have = DEVICE_TYPES.get(dev.type)
    if have is None:
        raise ConfigError(f"{name}={device!r} cannot run a model (a {dev.type!r} device); "
                          f"allowed on this machine: {allowed}")
    if not have():
        raise ConfigError(f"{name}={device!r} requested but this machine has no {dev.type.upper()} device; "
                          f"allowed on this machine: {allowed}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"{name}={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                          f"allowed: {allowed}")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise ConfigError(f"{name}={device!r}: there is one CPU device; allowed on this machine: {allowed}")
    return dev


def device_name(device: torch.device) -> str:
    """Human-readable device, e.g. 'cpu (2 threads)' or 'NVIDIA H100 80GB HBM3'."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


_EPS_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([0-9]*\.?[0-9]+))?\s*$")


def parse_eps(value: str | float | int, name: str = "eps") -> float:
    """Parse an attack budget such as ``4/255`` or ``0.0157`` (L-inf, [0,1] pixel units).

    Raises ConfigError naming ``name`` for malformed, non-finite, negative or > 1 values.
    """
    allowed = "a number or a fraction like 4/255 in [0, 1] ([0,1] pixel units)"
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not {allowed}")
    if isinstance(value, (int, float)):
        eps = float(value)
    else:
        m = _EPS_RE.match(str(value))
        if not m:
            raise ConfigError(f"{name}={value!r} is not {allowed}")
        num, den = float(m.group(1)), m.group(2)
        if den is not None and float(den) == 0:
            raise ConfigError(f"{name}={value!r} divides by zero; give {allowed}")
        eps = num / float(den) if den is not None else num
    if not math.isfinite(eps) or not 0.0 <= eps <= 1.0:
        raise ConfigError(f"{name}={value!r} is outside [0, 1]; give {allowed}")
    return eps


def format_eps(eps: float) -> str:
    """Inverse of :func:`parse_eps` for display: 0.0156862745 -> '4/255'."""
    frac = Fraction(eps).limit_denominator(255)
    if frac.denominator == 255 and abs(float(frac) - eps) < 1e-9:
        return f"{frac.numerator}/255"
    return f"{eps:g}"


def parse_list(value: str | Sequence[Any], conv=float, name: str = "value") -> list:
    """Parse ``'1,0.9,0.8'`` (or a list) into a list with ``conv`` applied to each item."""
    if isinstance(value, str):
        items = [v for v in (s.strip() for s in value.split(",")) if v]
    else:
        items = list(value)
    if not items:
        raise ConfigError(f"{name} is empty; give at least one value")
    out = []
    for v in items:
        try:
            out.append(conv(v))
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: cannot parse {v!r}") from exc
    return out


def check_choice(name: str, value: str, allowed: Iterable[str]) -> str:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; allowed values: {', '.join(allowed)}")
    return value


def check_keep(keep: float, name: str = "keep") -> float:
    """A keep ratio (the paper's p: fraction of weights KEPT) must lie in [0, 1]."""
    what = "a keep ratio is the fraction of weights kept, a number in [0, 1]"
    try:
        if isinstance(keep, bool):
            raise ValueError
        k = float(keep)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}={keep!r} is not a number; {what}") from None
    if not math.isfinite(k):
        raise ConfigError(f"{name}={keep!r} is not a finite number; {what}")
    if not (0.0 <= k <= 1.0):
        raise ConfigError(f"{name}={k!r} is outside [0, 1]; a keep ratio is the fraction of weights kept")
    return k


def config_hash(cfg: dict[str, Any], n: int = 12) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_save(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write(tmp)`` fills a uniquely named temporary file in the target
    folder (``tempfile.NamedTemporaryFile(dir=..., delete=False)``), which is then renamed onto
    ``path`` with ``os.replace``. Concurrent writers never share a temporary file, and a reader
    sees either the old or the new complete file, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the prefix is cut so that a name near the file system's limit (255 bytes) still fits
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp",
                                     delete=False) as f:
        tmp = Path(f.name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # NamedTemporaryFile creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_save`)."""
    return atomic_save(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_save`), so no half-written file remains."""
    return atomic_save(path, lambda tmp: tmp.write_text(text))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def quarantine(path: str | os.PathLike, reason: str, also: Iterable[str | os.PathLike] = ()) -> Path | None:
    """Move a bad cache entry aside to ``<file>.corrupt-<timestamp>`` and warn once, naming it.

    ``also``: files belonging to the same entry (a checkpoint's ``.json``), moved aside with it.
    Returns the new path of ``path`` (None when it had already gone). The caller then rebuilds it.
    """
    path = Path(path)
    stamp = f"corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    moved: dict[Path, Path] = {}
    for p in (path, *map(Path, also)):
        dest = p.with_name(f"{p.name}.{stamp}")
        with contextlib.suppress(FileNotFoundError):  # gone already (another process moved it)
            os.replace(p, dest)
            moved[p] = dest
    if moved:
        names = ", ".join(d.name for d in moved.values())
        warnings.warn(f"corrupt cache entry {path} ({reason}); moved aside to {names}, rebuilding it",
                      CorruptCacheWarning, stacklevel=2)
    return moved.get(path)


# --------------------------------------------------------------------------------------------
# validators shared by the CLI, ``prunerob reproduce -p`` and the API


def check_int(value: Any, name: str, minimum: int = 0, allow_none: bool = False) -> int | None:
    """An integer ``>= minimum`` (``None`` too if ``allow_none``); bools and floats like 1.5 are refused."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value, ok = int(value.strip()), True
    if not ok or value < minimum:
        extra = " or None" if allow_none else ""
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}{extra}")
    return int(value)


def check_float(value: Any, name: str, lo: float = -math.inf, hi: float = math.inf,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite number in the interval ``[lo, hi]`` (ends open when ``lo_open`` / ``hi_open``)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    interval = f"{left}{lo:g}, {hi:g}{right}"
    allowed = "a finite number" + ("" if math.isinf(lo) and math.isinf(hi) else f" in {interval}")
    try:
        if isinstance(value, bool):
            raise ValueError
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name}={value!r} is not a number; allowed: {allowed}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{name}={value!r} is not a finite number; allowed: {allowed}")
    if x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
        raise ConfigError(f"{name}={value!r} is outside {interval}")
    return x


#: largest seed accepted: numpy's seed range, and room for the offsets added to seeds
#: (``seed + batch``, ``seed * 100003 + i``) below torch's 64-bit limit
MAX_SEED = 2**32 - 1


def check_seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer in [0, :data:`MAX_SEED`]."""
    seed = int(check_int(value, name, 0))
    if seed > MAX_SEED:
        raise ConfigError(f"{name}={value!r} is too large; give an integer in [0, {MAX_SEED}] (2**32 - 1)")
    return seed


def check_dir(path: str | os.PathLike, name: str) -> Path:
    """An existing directory (input folders such as ``--data-root``); no silent fallback."""
    p = Path(path).expanduser()
    if not p.is_dir():
        what = "is not a directory" if p.exists() else "does not exist"
        raise ConfigError(f"{name}={str(path)!r} {what}; give an existing folder")
    return p


def _stat_error(p: Path, path: Any, name: str) -> None:
    """ConfigError for a path the file system refuses to look up (a name longer than the system
    allows, a loop of symbolic links, a dangling link, a component that is a file)."""
    max_name = 255
    with contextlib.suppress(OSError, ValueError):
        anc = p.absolute()
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        max_name = os.pathconf(anc, "PC_NAME_MAX")
    for part in p.parts:
        if len(os.fsencode(part)) > max_name:
            raise ConfigError(f"{name}={str(path)!r} has a name of {len(os.fsencode(part))} bytes, longer "
                              f"than the file system allows ({max_name}); give a shorter name")
    for anc in (*reversed(p.parents), p):
        try:
            os.stat(anc)
        except FileNotFoundError:
            if anc != p and anc.is_symlink():
                raise ConfigError(f"{name}={str(path)!r}: {str(anc)!r} is a symbolic link to nothing; "
                                  "give a path that exists or can be created") from None
            break  # nothing below a missing folder exists
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                continue  # reported below as "is a file, not a folder"
            why = "a loop of symbolic links" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            raise ConfigError(f"{name}={str(path)!r} cannot be used: {str(anc)!r} is {why}; "
                              "give another path") from None


def check_writable(path: str | os.PathLike, name: str, kind: str = "file") -> Path:
    """Check, before any work, that ``path`` (a ``file`` or a ``dir``) can be written.

    The nearest existing ancestor must be a directory in which a probe file can be created and
    removed (missing parents are created later by the writer, never here). A file target must not
    be an existing directory, a dir target not an existing file. Names longer than the file system
    allows, loops of symbolic links and dangling links are refused. Returns the path.
    """
    check_choice("kind", kind, ("file", "dir"))
    if str(path).strip() == "":
        raise ConfigError(f"{name}='' is empty; give a {'file' if kind == 'file' else 'folder'} path")
    p = Path(path).expanduser()
    _stat_error(p, path, name)
    if kind == "file" and p.is_dir():
        raise ConfigError(f"{name}={str(path)!r} is a directory; give a file path")
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ConfigError(f"{name}={str(path)!r} is an existing file; give a folder")
    probe_in = p if (kind == "dir" and p.is_dir()) else p.parent
    anc = probe_in.absolute()
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ConfigError(f"{name}={str(path)!r} cannot be created: {str(anc)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=anc, prefix=".prunerob-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{name}={str(path)!r} is not writable ({exc.strerror or exc} in {str(anc)!r}); "
                          "give a writable location") from None
    if kind == "file" and p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{name}={str(path)!r} exists and is read-only; give a writable location")
    return p


def available_memory() -> int | None:
    """Bytes this process may still allocate: the smallest of the memory the kernel reports as
    available (``MemAvailable``), the cgroup limit minus its usage and the address-space limit
    (``ulimit -v``) minus the address space in use; None when none of them can be read."""
    limits: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        cg = Path("/sys/fs/cgroup")
        top = cg / "memory.max"
        if top.is_file() and top.read_text().strip() != "max":
            limits.append(int(top.read_text()) - int((cg / "memory.current").read_text()))
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            used = 0
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
            limits.append(int(soft) - used)
    return min(limits) if limits else None


def check_memory(needed: int, name: str, value: Any, what: str) -> None:
    """ConfigError naming ``name`` when ``needed`` bytes (for ``what``) exceed :func:`available_memory`."""
    avail = available_memory()
    if avail is not None and needed > avail:
        raise ConfigError(f"{name}={value!r} needs {needed / 2**30:.1f} GiB for {what}, more than the "
                          f"{max(avail, 0) / 2**30:.1f} GiB of memory available; give smaller values")


def provenance(device: torch.device | None = None) -> dict[str, str]:
    """Versions and device used, for result tables."""
    import platform

    import numpy
    import torch

    out = {
        "prunerob_version": __import__("prunerob").__version__,
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
    }
    try:
        import torchattacks

        out["torchattacks_version"] = torchattacks.__version__
    except Exception:  # pragma: no cover - optional at import time
        out["torchattacks_version"] = "n/a"
    if device is not None:
        out["device"] = device_name(device)
    return out
