"""What the CPU can do natively, and the one warning the runner prints when a run asks for more.

The ``cpu`` profile trains its CIFAR-10 models in ``bf16`` autocast (:mod:`prunerob.core.precision`),
measured 2.9-3.8x faster than fp32 on a CPU with AVX-512 bf16 instructions. A CPU without them (AVX2
only, e.g. an AMD Zen 3) emulates bf16, and the same training step is about 10x *slower* than fp32:
``python benchmarks/train_epoch.py --precision bf16`` against ``--precision fp32`` (2026-12-07, AMD
EPYC with AVX2, one thread: 9.7 s against 0.94 s per CCT step of 128 images). Results already in the
result store are not affected; a unit that must train does, so the runner says so before it starts.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["BF16_FLAGS", "native_bf16", "bf16_params", "bf16_warning"]

#: /proc/cpuinfo flags of the x86 instructions that run bf16 matmuls natively (AVX-512 BF16, AMX)
BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})


def native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU has native bf16 instructions (:data:`BF16_FLAGS`), from ``cpuinfo`` (the text of
    ``/proc/cpuinfo`` when None); None where that cannot be told (no such file, or not x86)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not path.is_file():
            return None
        cpuinfo = path.read_text(errors="replace")
    flags = {f for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "flags"
             for f in line.split(":", 1)[1].split()}
    if not flags or not ({"avx", "avx2", "sse2"} & flags):
        return None
    return bool(BF16_FLAGS & flags)


def bf16_params(params: Mapping[str, Any]) -> list[str]:
    """The names of a page's parameters that ask for bf16 training (``precision``, ``cnn_precision``,
    ...: a string or one value per data set), counting only what the page will train: of a per-data-set
    mapping, the data sets in the page's ``datasets`` list (all when it has none), and a prefixed
    ``X_precision`` only when its part is not switched off (``run_X`` is not False)."""
    active = params.get("datasets")
    out = []
    for k, v in params.items():
        if not k.endswith("precision"):
            continue
        part = k[: -len("precision")].rstrip("_")  # "" for precision, "cnn" for cnn_precision
        if part and params.get(f"run_{part}") is False:
            continue
        values = ([x for ds, x in v.items() if not isinstance(active, (list, tuple)) or ds in active]
                  if isinstance(v, Mapping) else [v])
        if any(x == "bf16" for x in values):
            out.append(k)
    return out


def bf16_warning(pages: Iterable[tuple[str, Mapping[str, Any]]], *, native: bool | None,
                 cuda: bool = False) -> str | None:
    """One line for the pages ``(name, parameters)`` that ask for bf16 training on a CPU without native
    bf16 (``native``: :func:`native_bf16`; None, not known, says nothing), or None. With ``cuda`` (a GPU
    is available), only pages whose ``device`` parameter is ``cpu`` train on the CPU."""
    if native is not False:
        return None
    asked = [f"{name} ({', '.join(keys)})" for name, p in pages
             if (keys := bf16_params(p)) and not (cuda and str(p.get("device", "auto")) != "cpu")]
    if not asked:
        return None
    return ("warning: this CPU has no native bf16 instructions (no avx512_bf16 or amx_bf16 flag), so bf16 "
            f"training is emulated, about 10x slower than fp32 here: {', '.join(asked)}. Units already in "
            "the result store are unaffected; -p NAME fp32 for those parameters trains other (fp32) models "
            "instead.")
