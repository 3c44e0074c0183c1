"""Random-pruning baseline: exactly ``round(keep * numel)`` kept entries chosen uniformly at random."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from prunerob.config import check_choice, check_keep
from prunerob.core.pruning.base import PruningMethod, register_method
from prunerob.core.pruning.topk import SCOPES, n_kept
from prunerob.core.pruning.weights import as_weights

__all__ = ["random_masks", "RandomPruning"]


def random_masks(
    model_or_weights: nn.Module | Mapping[str, torch.Tensor],
    keep: float,
    generator: torch.Generator | None = None,
    scope: str = "layer",
) -> OrderedDict[str, torch.Tensor]:
    """Baseline: exactly ``round(keep * numel)`` kept entries chosen uniformly at random per
    layer (``scope="global"``: over all weights together), via ``torch.randperm(generator=...)``."""
    keep = check_keep(keep)
    check_choice("scope", scope, SCOPES)
    w = as_weights(model_or_weights)
    gen_device = generator.device if generator is not None else torch.device("cpu")

    def draw(numel: int) -> torch.Tensor:
        m = torch.zeros(numel, dtype=torch.bool, device=gen_device)
        m[torch.randperm(numel, generator=generator, device=gen_device)[: n_kept(keep, numel)]] = True
        return m

    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    if scope == "layer":
        for n, t in w.items():
            out[n] = draw(t.numel()).view(t.shape).to(t.device)
        return out
    m = draw(sum(t.numel() for t in w.values()))
    start = 0
    for n, t in w.items():
        out[n] = m[start : start + t.numel()].view(t.shape).to(t.device)
        start += t.numel()
    return out


@register_method("random")
class RandomPruning(PruningMethod):
    """Exactly ``round(keep * numel)`` random entries per layer, from a CPU generator seeded with ``seed``."""

    label = "random (baseline)"
    help = "keep round(keep*numel) random entries per layer (seeded baseline)"
    stochastic = True
    color = "0.45"

    def compute_masks(self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int,
                      prepared: Any) -> OrderedDict[str, torch.Tensor]:
        return random_masks(weights, keep, torch.Generator().manual_seed(seed), scope="layer")
