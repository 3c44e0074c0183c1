"""The paper's probabilistic pruning (Sec. 3): ``W' = B ⊙ W`` with independent ``B_ij ~ Bernoulli(p_ij)``.

:func:`bernoulli_masks` is the ONE Bernoulli sampler of the package: the theory side
(:mod:`prunerob.core.masks`, :mod:`prunerob.theory.risk`, :mod:`prunerob.theory.bounds`) draws its masks
through it.
``bernoulli_uniform`` is the registered method with the same ``p`` for every weight.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from prunerob.config import ConfigError, check_keep
from prunerob.core.pruning.base import PruningMethod, register_method
from prunerob.core.pruning.weights import as_weights

__all__ = ["bernoulli_masks", "BernoulliUniform"]


def bernoulli_masks(
    keep_probs: Mapping[str, torch.Tensor | float],
    generator: torch.Generator | None = None,
    *,
    like: nn.Module | Mapping[str, torch.Tensor] | None = None,
) -> OrderedDict[str, torch.Tensor]:
    """Draw ``B_ij ~ Bernoulli(p_ij)`` independently for every entry (paper Sec. 3).

    ``keep_probs[name]`` is a tensor of keep probabilities (any shape; a leading batch axis
    draws several masks at once) or a float applied to every entry of the weight ``name`` of
    ``like`` (a model or dict of weights, required for float entries). A mask is ``U < p`` with
    ``U ~ Uniform[0, 1)`` (float32) drawn from ``generator`` (on the generator's device), in the
    dict's order, so one seeded generator gives reproducible masks; ``p = 1`` always keeps and
    ``p = 0`` never keeps. Masks are bool tensors on ``p``'s device (float entries: the weight's).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    ref = as_weights(like) if like is not None else None
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, p in keep_probs.items():
        if isinstance(p, torch.Tensor):
            p_t = p.detach()
            if p_t.numel() and (torch.isnan(p_t).any() or p_t.min() < 0 or p_t.max() > 1):
                raise ConfigError(f"keep_probs[{name!r}] must lie in [0, 1] (probability of keeping)")
            shape, device = p_t.shape, p_t.device
        else:
            p_t = check_keep(p, name=f"keep_probs[{name!r}]")
            if ref is None or name not in ref:
                raise ConfigError(
                    f"keep_probs[{name!r}] is a float: pass like=<model or weights dict> holding {name!r}"
                    " to give its shape"
                )
            shape, device = ref[name].shape, ref[name].device
        u = torch.rand(shape, generator=generator, device=gen_device).to(device)
        out[name] = u < p_t
    return out


@register_method("bernoulli_uniform")
class BernoulliUniform(PruningMethod):
    """i.i.d. ``B_ij ~ Bernoulli(keep)`` for every weight (Sec. 3 with constant p), seeded."""

    label = "Bernoulli(p)"
    help = "keep each weight independently with probability keep (Sec. 3, seeded)"
    stochastic = True
    color = "C4"

    def compute_masks(self, weights: OrderedDict[str, torch.Tensor], keep: float, *, seed: int,
                      prepared: Any) -> OrderedDict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return bernoulli_masks(OrderedDict((n, keep) for n in weights), g, like=weights)
