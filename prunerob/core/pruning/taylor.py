"""Score-based (first-order Taylor) pruning of App. I: ``s_ij = E_batch |w_ij dL/dw_ij|`` over 20 batches,
then the lowest-score weights of each layer are removed."""
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from prunerob.config import ConfigError
from prunerob.core.pruning.base import PruningMethod, register_method
from prunerob.core.pruning.topk import score_masks
from prunerob.core.pruning.weights import prunable_weights

__all__ = ["taylor_scores", "Taylor"]

#: App. I: the scores average over 20 batches
PAPER_N_BATCHES = 20


def _iter_batches(data: Any, batch_size: int, shuffle: bool, seed: int) -> Iterable:
    if hasattr(data, "batches") and callable(data.batches):
        g = torch.Generator().manual_seed(int(seed))
        return data.batches(batch_size, shuffle=shuffle, generator=g)
    try:
        return iter(data)
    except TypeError as exc:
        raise ConfigError(
            "data must have a .batches(batch_size, shuffle, generator) method (ArrayDataset) "
            f"or be an iterable of (x, y) batches; got {type(data).__name__}"
        ) from exc


def taylor_scores(
    model: nn.Module,
    data: Any,
    n_batches: int = PAPER_N_BATCHES,
    batch_size: int = 128,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    device: str | torch.device | None = None,
    *,
    shuffle: bool = True,
    seed: int = 0,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> OrderedDict[str, torch.Tensor]:
    """First-order Taylor importance scores (App. I):
    ``s_ij = E_batch |w_ij * dL/dw_ij|``, averaged over the first ``n_batches`` batches
    (the paper uses 20) with ``L = loss_fn(model(x), y)`` (default: mean cross-entropy).

    ``data``: an object with ``.batches(batch_size, shuffle, generator)`` yielding ``(x, y)``
    (``prunerob.core.data.ArrayDataset``; ``shuffle`` and a generator seeded with ``seed`` are passed
    on) or any iterable of ``(x, y)`` batches (used as given; ``batch_size`` ignored).

    The model is put in **eval mode** while scoring (dropout off, BatchNorm uses running
    statistics), then its previous mode is restored. Gradients are taken with
    ``torch.autograd.grad`` for the prunable weights only, so parameters, ``.grad`` fields and
    ``requires_grad`` flags are left exactly as they were. Scores are float32 tensors on the
    weights' devices. Inputs are moved to ``device`` (default: the device of the weights).
    """
    if int(n_batches) < 1:
        raise ConfigError(f"n_batches={n_batches!r} must be >= 1")
    weights = prunable_weights(model, include=include, exclude=exclude)
    if not weights:
        raise ConfigError("no prunable weights found in the model")
    names, params = list(weights), list(weights.values())
    dev = torch.device(device) if device is not None else params[0].device
    was_training = model.training
    req = [p.requires_grad for p in params]
    sums = [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for p in params]
    used = 0
    try:
        model.eval()
        for p in params:
            p.requires_grad_(True)
        it = _iter_batches(data, batch_size, shuffle, seed)
        for x, y in tqdm(it, total=int(n_batches), desc="taylor scores", disable=None, leave=False):
            if used >= n_batches:
                break
            x, y = x.to(dev), y.to(dev)
            loss = loss_fn(model(x), y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            with torch.no_grad():
                for s, p, g in zip(sums, params, grads, strict=True):
                    if g is not None:
                        s += (p.detach() * g).abs().to(torch.float32)
            used += 1
    finally:
        for p, r in zip(params, req, strict=True):
            p.requires_grad_(r)
        model.train(was_training)
    if used == 0:
        raise ConfigError("data yielded no batches; cannot compute Taylor scores")
    if used < n_batches:
        warnings.warn(
            f"taylor_scores: only {used} batches available (n_batches={n_batches}); averaged over {used}",
            stacklevel=2,
        )
    return OrderedDict((n, s / used) for n, s in zip(names, sums, strict=True))


@register_method("taylor")
class Taylor(PruningMethod):
    """Per-layer top-``keep`` by :func:`taylor_scores` on the training data (App. I, 20 batches of 128).

    :meth:`prepare` computes the scores once (seeded batch order); every keep ratio then only
    ranks them, so a sweep scores the model once.
    """

    label = "Taylor score"
    help = "keep the largest |w dL/dw| of each layer, scored on 20 training batches (App. I; needs data)"
    needs_data = True
    color = "C1"

    def prepare(self, model: nn.Module, *, seed: int = 0, data: Any = None, n_batches: int = PAPER_N_BATCHES,
                batch_size: int = 128, **options: Any) -> OrderedDict[str, torch.Tensor]:
        data = self.require_data(data)
        return taylor_scores(model, data, n_batches=n_batches, batch_size=batch_size, seed=seed)

    def compute_masks(self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int,
                      prepared: Any) -> OrderedDict[str, torch.Tensor]:
        missing = [n for n in weights if n not in prepared]
        if missing:
            raise ConfigError(f"prepared Taylor scores miss the weights {missing}")
        return score_masks(OrderedDict((n, prepared[n]) for n in weights), keep, scope="layer")
