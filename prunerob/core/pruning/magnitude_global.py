"""Global magnitude pruning: ``M = Top_p(|W|)`` over all prunable weights together (Sec. 3)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from prunerob.core.pruning.base import PruningMethod, register_method
from prunerob.core.pruning.magnitude import magnitude_masks

__all__ = ["MagnitudeGlobal"]


@register_method("magnitude_global")
class MagnitudeGlobal(PruningMethod):
    """Keep the ``round(keep * N)`` largest ``|w|`` of all ``N`` prunable weights (layers compete)."""

    label = "magnitude (global)"
    help = "keep the largest |w| over all layers together"
    color = "C2"

    def compute_masks(self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int,
                      prepared: Any) -> OrderedDict[str, torch.Tensor]:
        return magnitude_masks(weights, keep, scope="global")
