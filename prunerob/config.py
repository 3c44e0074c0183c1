"""Shared configuration helpers: paths, devices, argument parsing and validation.

Every module raises :class:`ConfigError` (a ``ValueError``) for bad user input, with a message
that names the parameter and the allowed values.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch


class ConfigError(ValueError):
    """Bad user input: the message names the parameter and what is allowed."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Root folder for data sets: ``root`` if given, else ``$PRUNEROB_DATA``, else ``~/.cache/prunerob/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("PRUNEROB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunerob" / "data"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Cache folder for checkpoints and decoded data: ``path``, else ``$PRUNEROB_CACHE``, else ``~/.cache/prunerob``."""
    if path is not None:
        p = Path(path).expanduser()
    else:
        env = os.environ.get("PRUNEROB_CACHE")
        p = Path(env).expanduser() if env else Path.home() / ".cache" / "prunerob"
    p.mkdir(parents=True, exist_ok=True)
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
    for cand in (here.parent / "shared" / "data", here / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU. Raises ConfigError for an unavailable device."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device={device!r} is not a valid torch device; use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def device_name(device: torch.device) -> str:
    """Human-readable device, e.g. 'cpu (2 threads)' or 'NVIDIA H100 80GB HBM3'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


_EPS_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([0-9]*\.?[0-9]+))?\s*$")


def parse_eps(value: str | float | int) -> float:
    """Parse an attack budget such as ``4/255``, ``0.0157`` or ``8``-over-255 written ``8/255``.

    Raises ConfigError for negative or malformed values.
    """
    if isinstance(value, (int, float)):
        eps = float(value)
    else:
        m = _EPS_RE.match(str(value))
        if not m:
            raise ConfigError(f"eps={value!r} is not a number or a fraction like 4/255; eps must be >= 0")
        num, den = float(m.group(1)), m.group(2)
        if den is not None and float(den) == 0:
            raise ConfigError(f"eps={value!r} divides by zero")
        eps = num / float(den) if den is not None else num
    if not eps >= 0 or eps != eps:
        raise ConfigError(f"eps={value!r} must be >= 0 (given in [0,1] pixel units, e.g. 4/255)")
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
    k = float(keep)
    if not (0.0 <= k <= 1.0):
        raise ConfigError(f"{name}={keep!r} is outside [0, 1]; a keep ratio is the fraction of weights kept")
    return k


def config_hash(cfg: dict[str, Any], n: int = 12) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename, so no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def provenance(device: torch.device | None = None) -> dict[str, str]:
    """Versions and device used, for result tables."""
    import numpy
    import platform

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
