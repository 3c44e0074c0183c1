"""One mask representation for the experiment side and the theory side (paper Sec. 3).

* A **mask** is ``OrderedDict[str, torch.Tensor]`` of dtype bool keyed by prunable-weight name
  (``True`` = kept), as returned by every registered pruning method
  (:func:`prunerob.core.pruning.make_masks`).
* **Keep probabilities** (the paper's ``p_ij``, probability of KEEPING ``W_ij``) are
  ``OrderedDict[str, float | torch.Tensor]`` keyed the same way: a float is uniform in its layer,
  a tensor gives ``p_ij`` per entry.

The theory modules (:mod:`prunerob.theory.bounds`, :mod:`prunerob.theory.tradeoff`,
:mod:`prunerob.theory.risk`) state
their results for an MLP as lists "one entry per layer"; :func:`named_weights` names such a list
(``layer1``, ``layer2``, ... unless it is already a dict or a model), :func:`keep_probs` turns a
float / list-by-layer / dict into keep probabilities, and :func:`by_layer` goes back to a list in
layer order. Masks are drawn with :func:`sample_masks`, which calls
:func:`prunerob.core.pruning.bernoulli_masks`, the one Bernoulli sampler of the package.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunerob.config import ConfigError, check_keep
from prunerob.core.pruning import bernoulli_masks, prunable_weights, score_masks

__all__ = [
    "Mask",
    "KeepProbs",
    "named_weights",
    "keep_probs",
    "by_layer",
    "sample_masks",
    "keep_ratio",
    "layer_keep_ratios",
    "expected_keep_ratio",
    "layerwise_magnitude_masks",
]

#: ``OrderedDict[str, bool tensor]`` keyed by prunable-weight name (``True`` = kept)
Mask = OrderedDict
#: ``OrderedDict[str, float | Tensor]`` of keep probabilities keyed by prunable-weight name
KeepProbs = OrderedDict

WeightsLike = nn.Module | Mapping[str, Any] | Sequence[Any]


def _is_scalar(p: Any) -> bool:
    return isinstance(p, (int, float, np.floating, np.integer)) or (
        isinstance(p, (torch.Tensor, np.ndarray)) and np.ndim(p) == 0
    )


def _tensor(w: Any) -> torch.Tensor:
    if isinstance(w, torch.Tensor):
        return w.detach()
    return torch.as_tensor(np.asarray(w))


def named_weights(weights: WeightsLike) -> OrderedDict[str, torch.Tensor]:
    """Weights as ``OrderedDict[name, tensor]``: a model's
    :func:`~prunerob.core.pruning.prunable_weights`, a dict as is, or a list (one matrix per layer,
    e.g. ``prunerob.core.models.mlp_weights``) named ``layer1, layer2, ...``."""
    if isinstance(weights, nn.Module):
        out = OrderedDict((n, w.detach()) for n, w in prunable_weights(weights).items())
    elif isinstance(weights, Mapping):
        out = OrderedDict((str(n), _tensor(w)) for n, w in weights.items())
    elif isinstance(weights, (list, tuple)):
        out = OrderedDict((f"layer{i + 1}", _tensor(w)) for i, w in enumerate(weights))
    else:
        raise ConfigError(
            "weights must be a model, a dict name -> weight or a list of weight matrices, "
            f"got {type(weights).__name__}"
        )
    if not out:
        raise ConfigError("weights is empty; give at least one weight matrix")
    return out


def _one_keep(name: str, p: Any, w: torch.Tensor) -> float | torch.Tensor:
    if _is_scalar(p):
        return check_keep(float(p), name=f"keep_probs[{name!r}]")
    t = _tensor(p)
    if tuple(t.shape) != tuple(w.shape):
        raise ConfigError(f"keep_probs[{name!r}] has shape {tuple(t.shape)}, the weight has {tuple(w.shape)}")
    if t.numel() and (bool(torch.isnan(t).any()) or float(t.min()) < 0 or float(t.max()) > 1):
        raise ConfigError(f"keep_probs[{name!r}] must lie in [0, 1] (probability of KEEPING a weight)")
    return t


def keep_probs(weights: WeightsLike, keep: Any) -> OrderedDict[str, float | torch.Tensor]:
    """Keep probabilities keyed like :func:`named_weights`, validated.

    ``keep``: a float (the same ``p`` everywhere), a list / 1-D array with one entry per layer
    (each a float or an array of the weight's shape; e.g. Algorithm 1's ``p_l``), or a dict
    ``name -> float | tensor`` covering every weight.
    """
    ws = named_weights(weights)
    if isinstance(keep, Mapping):
        missing = [n for n in ws if n not in keep]
        extra = [n for n in keep if n not in ws]
        if missing or extra:
            raise ConfigError(
                f"keep_probs must name exactly the weights {list(ws)}; missing {missing}, unknown {extra}"
            )
        vals = [keep[n] for n in ws]
    elif _is_scalar(keep):
        vals = [float(keep)] * len(ws)
    else:
        vals = list(keep)
        if len(vals) != len(ws):
            raise ConfigError(f"keep_probs has {len(vals)} entries but there are {len(ws)} weight matrices")
    return OrderedDict((n, _one_keep(n, p, w)) for (n, w), p in zip(ws.items(), vals, strict=True))


def by_layer(values: Mapping[str, Any], weights: WeightsLike | None = None) -> list[Any]:
    """A dict keyed by weight name (masks or keep probabilities) as a list in layer order
    (the order of ``weights`` when given, else the dict's own order)."""
    if weights is None:
        return list(values.values())
    names = list(named_weights(weights))
    missing = [n for n in names if n not in values]
    if missing:
        raise ConfigError(f"no entry for the weights {missing}; have {list(values)}")
    return [values[n] for n in names]


def sample_masks(
    weights: WeightsLike, keep: Any, generator: torch.Generator | None = None, *, n: int | None = None
) -> OrderedDict[str, torch.Tensor]:
    """One draw of the paper's pruning (Sec. 3), ``B_ij ~ Bernoulli(p_ij)`` independently, as a mask.

    Drawn with :func:`prunerob.core.pruning.bernoulli_masks` (``U < p``, ``U`` uniform float32 from
    ``generator``, layer by layer). ``n``: draw ``n`` masks at once, each tensor then has a leading
    axis of size ``n``. Masks are bool tensors on the weights' devices.
    """
    ws = named_weights(weights)
    kp = keep_probs(ws, keep)
    full: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, p in kp.items():
        w = ws[name]
        t = torch.full(w.shape, p, dtype=torch.float32) if isinstance(p, float) else p.to(torch.float32).cpu()
        full[name] = t if n is None else t.expand(int(n), *t.shape)
    out = bernoulli_masks(full, generator)
    return OrderedDict((name, m.to(ws[name].device)) for name, m in out.items())


def keep_ratio(masks: Mapping[str, torch.Tensor]) -> float:
    """Realised global keep ratio: kept entries / all entries over every mask."""
    total = sum(int(m.numel()) for m in masks.values())
    if total == 0:
        raise ConfigError("masks are empty")
    return sum(int(m.sum()) for m in masks.values()) / total


def layer_keep_ratios(masks: Mapping[str, torch.Tensor]) -> OrderedDict[str, float]:
    """Realised keep ratio of each mask (``nan`` for an empty tensor)."""
    return OrderedDict((n, float(m.float().mean()) if m.numel() else float("nan")) for n, m in masks.items())


def expected_keep_ratio(weights: WeightsLike, keep: Any) -> float:
    """``sum_ij p_ij / #weights``: the expected global keep ratio of Bernoulli pruning with ``keep``."""
    ws = named_weights(weights)
    kp = keep_probs(ws, keep)
    total = sum(w.numel() for w in ws.values())
    s = sum(p * ws[n].numel() if isinstance(p, float) else float(p.sum()) for n, p in kp.items())
    return s / total


def layerwise_magnitude_masks(weights: WeightsLike, keep: Any) -> OrderedDict[str, torch.Tensor]:
    """Magnitude masks with a keep ratio per layer (top-``|w|`` within each layer, Sec. 3).

    ``keep``: a float or one float per layer (list or dict), e.g. the ``p_l`` of Algorithm 1
    (App. E) used as deterministic per-layer keep ratios. Exact counts ``round(p_l * numel)``.
    """
    ws = named_weights(weights)
    kp = keep_probs(ws, keep)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, p in kp.items():
        if not isinstance(p, float):
            raise ConfigError(f"keep[{name!r}] must be one number per layer for magnitude masks")
        out.update(score_masks({name: ws[name].abs()}, p, scope="layer"))
    return out
