"""Magnitude pruning ``M = Top_p(|W|)`` per layer (Sec. 3), and the magnitude keep-probability models.

* :func:`magnitude_masks`: keep exactly ``round(keep * numel)`` largest-``|w|`` entries per layer
  (``scope="layer"``) or over all prunable weights (``scope="global"``);
* threshold magnitude pruning as a keep probability ``p_ij = 1{|W_ij| >= q}``
  (:func:`magnitude_keep_probs_threshold`) and smooth magnitude pruning ``p_ij = 1 - exp(-alpha
  |W_ij|)`` (:func:`smooth_magnitude_keep_probs`), both of Sec. 3.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.pruning.base import PruningMethod, register_method
from prunerob.core.pruning.topk import score_masks
from prunerob.core.pruning.weights import as_weights

__all__ = ["magnitude_masks", "magnitude_keep_probs_threshold", "smooth_magnitude_keep_probs", "Magnitude"]

Weights = nn.Module | Mapping[str, torch.Tensor]


def magnitude_masks(
    model_or_weights: Weights, keep: float, scope: str = "layer"
) -> OrderedDict[str, torch.Tensor]:
    """Magnitude pruning ``M = Top_p(|W|)`` (Sec. 3): keep exactly ``round(keep * numel)``
    largest-``|w|`` entries per layer (``scope="layer"``) or over all prunable weights
    together (``scope="global"``). ``keep=1`` keeps all, ``keep=0`` none."""
    w = as_weights(model_or_weights)
    return score_masks(OrderedDict((n, t.detach().abs()) for n, t in w.items()), keep, scope)


def magnitude_keep_probs_threshold(model_or_weights: Weights, q: float) -> OrderedDict[str, torch.Tensor]:
    """Threshold magnitude pruning as a keep-probability (Sec. 3): ``p_ij = 1{|W_ij| >= q}``."""
    q = float(q)
    if not q >= 0:
        raise ConfigError(f"q={q!r} must be >= 0 (magnitude threshold)")
    weights = as_weights(model_or_weights)
    return OrderedDict((n, (w.detach().abs() >= q).to(torch.float32)) for n, w in weights.items())


def smooth_magnitude_keep_probs(model_or_weights: Weights, alpha: float) -> OrderedDict[str, torch.Tensor]:
    """Smooth magnitude pruning (Sec. 3): ``p_ij = 1 - exp(-alpha |W_ij|)``, ``alpha >= 0``."""
    alpha = float(alpha)
    if not alpha >= 0:
        raise ConfigError(f"alpha={alpha!r} must be >= 0 (smoothing parameter)")
    return OrderedDict(
        (n, -torch.expm1(-alpha * w.detach().abs().to(torch.float32)))
        for n, w in as_weights(model_or_weights).items()
    )


@register_method("magnitude")
class Magnitude(PruningMethod):
    """Per-layer magnitude pruning: the ``round(keep * numel)`` largest ``|w|`` of each layer (Sec. 3)."""

    label = "magnitude (layer-wise)"
    help = "keep the largest |w| of each layer (Sec. 3)"
    color = "C0"

    def compute_masks(self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int,
                      prepared: Any) -> OrderedDict[str, torch.Tensor]:
        return magnitude_masks(weights, keep, scope="layer")
