"""Deterministic top-k masks: keep exactly ``n_kept(keep, numel) = round(keep * numel)`` entries.

``round`` is Python's (ties to even: ``round(2.5) == 2``). Ties in the score are broken by the
lower flat index (layer order, then row-major order), so results are reproducible on every
device. Used for magnitude pruning ``M = Top_p(|W|)`` (Sec. 3) and for Taylor scores (App. I:
remove the weights with the smallest scores).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch

from prunerob.config import ConfigError, check_choice, check_keep

__all__ = ["SCOPES", "n_kept", "topk_mask_flat", "score_masks"]

#: ``layer``: top-k within each weight tensor; ``global``: over all prunable weights together
SCOPES: tuple[str, ...] = ("layer", "global")


def n_kept(keep: float, numel: int) -> int:
    """Number of entries a deterministic mask keeps: ``round(keep * numel)`` (ties to even)."""
    return int(round(check_keep(keep) * numel))


def topk_mask_flat(values: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of a 1-D tensor; ties -> lower index first.

    Uses a k-th value threshold (O(n) memory) instead of a full sort.
    """
    n = values.numel()
    mask = torch.zeros(n, dtype=torch.bool, device=values.device)
    if k <= 0:
        return mask
    if k >= n:
        return mask.fill_(True)
    if torch.isnan(values).any():
        raise ConfigError("scores contain NaN; cannot rank weights")
    v = values if values.dtype in (torch.float32, torch.float64) else values.to(torch.float32)
    thr = torch.kthvalue(v, n - k + 1).values
    mask = v > thr
    rest = k - int(mask.sum())
    if rest > 0:
        ties = torch.nonzero(v == thr, as_tuple=False).flatten()[:rest]  # ascending indices
        mask[ties] = True
    return mask


def score_masks(
    scores: Mapping[str, torch.Tensor], keep: float, scope: str = "layer"
) -> OrderedDict[str, torch.Tensor]:
    """Keep the top ``round(keep * numel)`` entries by score (``True`` = kept).

    ``scope="layer"``: per tensor; ``scope="global"``: over all tensors together (their
    ``numel`` summed). Used for magnitude (score ``|W|``) and Taylor scores (App. I: remove the
    weights with the smallest scores). Ties go to the lower index (layer order, row-major).
    """
    keep = check_keep(keep)
    check_choice("scope", scope, SCOPES)
    scores = OrderedDict(scores)
    if not scores:
        raise ConfigError("scores is empty: nothing to prune")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    if scope == "layer":
        for n, s in scores.items():
            s = s.detach()
            out[n] = topk_mask_flat(s.flatten(), n_kept(keep, s.numel())).view(s.shape)
        return out
    devices = {s.device for s in scores.values()}
    dev = next(iter(devices)) if len(devices) == 1 else torch.device("cpu")
    flat = torch.cat([s.detach().to(dev, torch.float32).flatten() for s in scores.values()])
    m = topk_mask_flat(flat, n_kept(keep, flat.numel()))
    start = 0
    for n, s in scores.items():
        out[n] = m[start : start + s.numel()].view(s.shape).to(s.device)
        start += s.numel()
    return out
