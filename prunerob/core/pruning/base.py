"""The pruning-method interface and its registry.

A pruning method is a :class:`PruningMethod` subclass in its own module, registered under its
name with :func:`register_method`; :func:`make_masks` and :func:`prunerob.engine.sweep.run_sweep` look it
up with :func:`get_method` (an unknown name is one ConfigError listing the registered names).
Adding a method is one new file plus its test (CONTRIBUTING.md, "Adding a pruning method").

Contract (paper Sec. 3: ``W' = M ⊙ W``, ``M`` boolean, ``True`` = kept):

* :meth:`PruningMethod.prepare` runs once per model (e.g. the Taylor scores of App. I, 20
  batches) and returns what :meth:`~PruningMethod.compute_masks` needs at every keep ratio, or
  ``None`` for data-free methods;
* :meth:`PruningMethod.masks` returns ``OrderedDict[str, bool tensor]`` keyed by the names of
  :func:`~prunerob.core.pruning.weights.prunable_weights`, one mask per weight, same shapes.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

from prunerob.config import ConfigError, check_keep
from prunerob.core.pruning.weights import as_weights, check_masks, prunable_weights
from prunerob.core.registry import Registry

__all__ = ["PruningMethod", "REGISTRY", "register_method", "get_method", "method_names", "make_masks"]

Mask = OrderedDict  # OrderedDict[str, torch.Tensor] of dtype bool, keyed by prunable-weight name


class PruningMethod:
    """Base class of a registered pruning method.

    Class attributes a subclass sets:

    * ``label``: short name for legends and tables (e.g. ``"magnitude (layer-wise)"``);
    * ``help``: one line for ``prunerob sweep --help``;
    * ``needs_data``: ``True`` when :meth:`prepare` needs training data (``run_sweep`` then
      requires ``train_data``);
    * ``stochastic``: ``True`` when the masks depend on ``seed``;
    * ``color``: matplotlib colour for figures (optional).

    ``name`` is set by the registry. A subclass implements :meth:`compute_masks` and, when it
    needs a pass over the model or data, :meth:`prepare`.
    """

    name: str = ""
    label: ClassVar[str] = ""
    help: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    color: ClassVar[str | None] = None

    def prepare(self, model: nn.Module, *, seed: int = 0, data: Any = None, **options: Any) -> Any | None:
        """Work done once per model, reused at every keep ratio; ``None`` for data-free methods.

        ``options`` are method-specific settings (e.g. Taylor's ``n_batches``, ``batch_size``);
        methods that have none ignore them.
        """
        if self.needs_data:
            raise NotImplementedError(f"method {self.name!r} needs data but defines no prepare()")
        return None

    def compute_masks(
        self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int, prepared: Any
    ) -> OrderedDict[str, torch.Tensor]:
        """Masks for ``weights`` at keep ratio ``keep`` (validated, in [0, 1]); override this."""
        raise NotImplementedError

    def require_data(self, data: Any) -> Any:
        """``data``, or a ConfigError saying this method needs training data."""
        if data is None:
            raise ConfigError(
                f"method={self.name!r} needs data=<ArrayDataset or iterable of (x, y)> to compute its scores"
                " (score-based pruning, App. I)"
            )
        return data

    def masks(
        self,
        model_or_weights: nn.Module | Mapping[str, torch.Tensor],
        keep: float,
        *,
        seed: int = 0,
        data: Any = None,
        prepared: Any = None,
    ) -> OrderedDict[str, torch.Tensor]:
        """Boolean masks (``True`` = kept) at keep ratio ``keep`` (the paper's p).

        ``model_or_weights``: a model (its :func:`prunable_weights`) or a dict ``name -> weight``.
        ``prepared``: the result of :meth:`prepare` (computed here from the model when ``None``
        and the method needs it). The result is checked: one bool mask per weight, same shape.
        """
        keep = check_keep(keep)
        weights = as_weights(model_or_weights)
        if prepared is None and self.needs_data:
            if not isinstance(model_or_weights, nn.Module):
                raise ConfigError(f"method={self.name!r} needs the model (or prepared=...), not its weights")
            prepared = self.prepare(model_or_weights, seed=seed, data=self.require_data(data))
        out = OrderedDict(self.compute_masks(weights, keep, seed=int(seed), prepared=prepared))
        if list(out) != list(weights):
            raise ConfigError(f"method {self.name!r} returned masks for {list(out)}, not {list(weights)}")
        check_masks(weights, out)
        bad = [n for n, m in out.items() if m.dtype != torch.bool]
        if bad:
            raise ConfigError(f"method {self.name!r} returned non-boolean masks for {bad}")
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


#: the registered pruning methods (``prunerob.core.pruning`` imports one module per method)
REGISTRY: Registry[PruningMethod] = Registry("method", "pruning method")


def register_method(name: str, *, replace: bool = False):
    """Decorator: register a :class:`PruningMethod` subclass (or instance) under ``name``."""
    inner = REGISTRY.register(name, replace=replace)

    def deco(obj: Any) -> Any:
        item = obj() if isinstance(obj, type) else obj
        if not isinstance(item, PruningMethod):
            raise ConfigError(f"pruning method {name!r} must be a PruningMethod, got {type(item).__name__}")
        inner(item)
        return obj

    return deco


def get_method(name: str) -> PruningMethod:
    """The registered method ``name``; ConfigError listing the registered names otherwise."""
    return REGISTRY.get(name)


def method_names() -> tuple[str, ...]:
    """Names of the registered pruning methods, in registration order."""
    return REGISTRY.names()


def make_masks(
    method: str,
    model: nn.Module,
    keep: float,
    *,
    seed: int = 0,
    data: Any = None,
    n_batches: int = 20,
    batch_size: int = 128,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    prepared: Any = None,
) -> OrderedDict[str, torch.Tensor]:
    """Masks (``True`` = kept) of the registered method ``method`` at keep ratio ``keep`` (paper's p).

    ``seed`` seeds the method (random masks, Bernoulli draws, Taylor batch order); ``data`` is
    the training data of data-driven methods (``taylor``: App. I, ``n_batches`` batches of
    ``batch_size``); ``include`` / ``exclude`` select weights as in :func:`prunable_weights`.
    For a sweep over many keep ratios pass ``prepared=get_method(method).prepare(model, ...)``
    to compute scores once.
    """
    m = get_method(method)
    keep = check_keep(keep)
    weights = prunable_weights(model, include=include, exclude=exclude)
    if not weights:
        raise ConfigError("no prunable weights found in the model (check include/exclude)")
    if prepared is None:
        if m.needs_data:
            m.require_data(data)
        prepared = m.prepare(model, seed=seed, data=data, n_batches=n_batches, batch_size=batch_size)
    return m.masks(weights, keep, seed=seed, data=data, prepared=prepared)
