"""Labelled evaluation data and the choice of evaluation examples (Sec. 6.3).

:func:`as_examples` turns what a user has (an :class:`prunerob.core.data.ArrayDataset`, a tuple
``(x, y)`` of tensors with ``x`` uint8 or float in [0, 1], or a ``torch.utils.data.DataLoader``
yielding ``(x, y)`` batches) into one :class:`Examples` object. It is called once, at the
boundary (:func:`prunerob.engine.sweep.run_sweep`); everything below trusts it.

Every configuration of a sweep is evaluated on the SAME examples: the first ``n`` of a fixed,
seeded permutation of the evaluation data (:func:`permutation_prefix`, seed ``subset_seed``,
independent of the sweep seed, so that ``n=500`` is a prefix of ``n=1000``).
``ArrayDataset.subset`` (training subsets, ``TrainConfig.train_subset``) draws from the same
permutation and keeps the chosen examples in their stored order.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from prunerob.config import ConfigError


def permutation_prefix(total: int, n: int, seed: int = 0) -> torch.Tensor:
    """The first ``n`` entries of ``torch.randperm(total)`` drawn with a generator seeded ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(int(total), generator=g)[: int(n)]


def subset_indices(total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of a deterministic random subset of ``n`` of ``total`` examples, in stored order."""
    return permutation_prefix(total, n, seed).sort().values


@dataclass
class Examples:
    """Labelled examples: ``x`` [N, ...] (uint8, or float in [0, 1]) and ``y`` int64 [N].

    ``name`` / ``split`` / ``source`` describe the data (None when the caller gave bare tensors).
    ``batches`` has the signature of :meth:`prunerob.core.data.ArrayDataset.batches`, so score-based
    pruning (Taylor, App. I) can draw training batches from it.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str | None = None
    split: str | None = None
    source: str | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to_float(self, xb: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A batch of ``x`` as ``dtype`` in [0, 1] (uint8 is divided by 255), a fresh tensor."""
        return to_float(xb, dtype)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x float32 in [0, 1], y)`` batches by index slicing (as ``ArrayDataset.batches``)."""
        n = len(self)
        perm = torch.randperm(n, generator=generator).to(self.x.device) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            idx = slice(i, i + batch_size) if perm is None else perm[i:i + batch_size]
            yield to_float(self.x[idx]), self.y[idx]


def to_float(xb: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``xb`` as ``dtype`` in [0, 1]: uint8 pixels are divided by 255, floats are copied as they are."""
    if xb.dtype == torch.uint8:
        return xb.to(dtype).div_(255.0)
    return xb.to(dtype, copy=True)


def _check_xy(x: Any, y: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise ConfigError(f"{name}: x and y must be torch tensors, got {type(x).__name__} and "
                          f"{type(y).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ConfigError(f"{name}: x must have shape [N, ...] with N >= 1, got {tuple(x.shape)}")
    if y.shape != (x.shape[0],) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ConfigError(f"{name}: y must be integer class labels of shape [{x.shape[0]}], "
                          f"got {y.dtype} {tuple(y.shape)}")
    if x.dtype != torch.uint8:
        if not x.dtype.is_floating_point:
            raise ConfigError(f"{name}: x must be uint8 pixels or floats in [0, 1], got {x.dtype}")
        lo, hi = float(x.min()), float(x.max())
        if not (0.0 <= lo and hi <= 1.0):
            raise ConfigError(f"{name}: float x must lie in [0, 1] (attack budgets are in pixel units), "
                              f"got values in [{lo:g}, {hi:g}]")
    return x, y.long()


def as_examples(data: Any, name: str = "data") -> Examples:
    """:class:`Examples` from an ``ArrayDataset``, a tuple ``(x, y)`` of tensors or a ``DataLoader``.

    A DataLoader is iterated once and its ``(x, y)`` batches are concatenated (on the CPU) in the
    order it yields them. Raises :class:`~prunerob.config.ConfigError` naming ``name`` for anything else.
    """
    if isinstance(data, Examples):
        return data
    if isinstance(data, DataLoader):
        xs, ys = [], []
        for batch in data:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ConfigError(f"{name}: the DataLoader must yield (x, y) pairs, "
                                  f"got {type(batch).__name__}")
            xs.append(batch[0].cpu())
            ys.append(batch[1].cpu())
        if not xs:
            raise ConfigError(f"{name}: the DataLoader yielded no batches")
        x, y = _check_xy(torch.cat(xs), torch.cat(ys), name)
        base = data.dataset
        return Examples(x, y, name=getattr(base, "name", None), split=getattr(base, "split", None),
                        source=getattr(base, "source", None))
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ConfigError(f"{name}: a tuple must be (x, y), got {len(data)} items")
        x, y = _check_xy(data[0], data[1], name)
        return Examples(x, y)
    if all(isinstance(getattr(data, a, None), torch.Tensor) for a in ("x", "y")):
        x, y = _check_xy(data.x, data.y, name)
        return Examples(x, y, name=getattr(data, "name", None), split=getattr(data, "split", None),
                        source=getattr(data, "source", None))
    raise ConfigError(f"{name} must be an ArrayDataset, a tuple (x, y) of tensors (x uint8 or float in "
                      f"[0, 1]) or a torch DataLoader yielding (x, y); got {type(data).__name__}")


def select_examples(data: Any, n: int | None, subset_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The first ``n`` examples of a fixed permutation (``subset_seed``) of ``data`` (with ``x``, ``y``).

    Returns ``(x [n, ...], y [n], description)``; with ``n=None`` or ``n == len`` all examples
    are used in their stored order; ``n > len`` is a ConfigError naming ``n`` and the true size
    (a table must never record more examples than were evaluated). The permutation does not depend
    on ``n``, so a smaller ``n`` evaluates a prefix of a larger one.
    """
    x, y = data.x, data.y
    total = int(y.shape[0])
    if n is not None and n > total:
        split, name = getattr(data, "split", None), getattr(data, "name", None)
        what = f"the {split} split of {name}" if split and name else "the evaluation data"
        raise ConfigError(f"n={n} is larger than {what}, which holds {total} examples; give at most "
                          f"{total}, or None for all")
    if n is None or n == total:
        return x, y, f"all {total} in stored order"
    idx = permutation_prefix(total, n, subset_seed)
    digest = hashlib.sha256(idx.numpy().tobytes()).hexdigest()[:10]
    idx = idx.to(x.device)
    return x[idx], y[idx], f"randperm(seed={subset_seed})[:{n}] of {total} (index sha256 {digest})"
