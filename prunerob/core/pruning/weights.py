"""Which weights are pruned (paper Sec. 3 prunes the weight matrices ``W``) and how masks are applied.

:func:`prunable_weights` is the model contract of CONTRIBUTING.md; :func:`apply_masks` returns a
pruned deep copy ``W' = M ⊙ W`` and never modifies the model in place. A mask is always an
``OrderedDict[str, torch.Tensor(bool)]`` keyed by prunable-weight name (``True`` = kept).
"""
from __future__ import annotations

import copy
import fnmatch
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
import torch.nn as nn

from prunerob.config import ConfigError

__all__ = [
    "prunable_weights", "as_weights", "check_masks", "apply_masks", "masked_weights", "sparsity_report",
]

_TRANSFORMER_SKIP_PREFIX = ("patch_embed",)
_TRANSFORMER_SKIP_NAMES = ("head", "head_dist")


def _is_timm_vit(module: nn.Module) -> bool:
    """A timm ``VisionTransformer`` (or subclass), recognised without importing timm."""
    return any(
        c.__name__ == "VisionTransformer" and c.__module__.startswith("timm.") for c in type(module).__mro__
    )


def _is_transformer_like(model: nn.Module) -> bool:
    for m in model.modules():
        if isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            return True
        if type(m).__name__ == "Attention" and hasattr(m, "qkv"):  # timm attention block
            return True
    return False


def _matches(name: str, patterns: Sequence[str]) -> bool:
    module = name[: -len(".weight")] if name.endswith(".weight") else name
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(module, p) for p in patterns)


def _as_patterns(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    pats = tuple(value)
    if not all(isinstance(p, str) for p in pats):
        raise ConfigError(f"{name} must be a string or a list of fnmatch patterns, got {value!r}")
    return pats


def _discover(model: nn.Module) -> OrderedDict[str, nn.Parameter]:
    out: OrderedDict[str, nn.Parameter] = OrderedDict()
    seen: set[int] = set()
    full_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    transformer = _is_transformer_like(model)

    def add(name: str, p: torch.Tensor | None) -> None:
        if p is None or id(p) in seen:
            return
        seen.add(id(p))
        out[name] = p

    def visit(module: nn.Module, prefix: str, top: bool) -> None:
        own = getattr(module, "prunable_weights", None)
        if not top and callable(own):  # a sub-model that decides itself (e.g. OneLayerTransformer)
            for k, p in own().items():
                add(full_names.get(id(p), prefix + k), p)
            return
        if _is_timm_vit(module):
            # timm ViT: only the matrices inside the transformer blocks (attention qkv / proj,
            # MLP fc1 / fc2). Patch/position embedding, cls token, norms and head are kept.
            for mname, m in module.named_modules():
                if mname.startswith("blocks.") and isinstance(m, nn.Linear):
                    add(f"{prefix}{mname}.weight", m.weight)
            return
        if isinstance(module, nn.MultiheadAttention):
            if module.in_proj_weight is not None:
                add(prefix + "in_proj_weight", module.in_proj_weight)
            else:  # separate q/k/v projections (kdim/vdim != embed_dim)
                for pn in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                    add(prefix + pn, getattr(module, pn))
            add(prefix + "out_proj.weight", module.out_proj.weight)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            add(prefix + "weight", module.weight)
        for cname, child in module.named_children():
            skipped = cname in _TRANSFORMER_SKIP_NAMES or cname.startswith(_TRANSFORMER_SKIP_PREFIX)
            if transformer and skipped:
                continue
            visit(child, f"{prefix}{cname}.", False)

    visit(model, "", True)
    return out


def prunable_weights(
    model: nn.Module,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> OrderedDict[str, nn.Parameter]:
    """The weight matrices that pruning touches, as an ordered dict ``name -> parameter``
    in forward (registration) order.

    Rules (CONTRIBUTING.md, "Model contract"; paper Sec. 3 prunes the weight matrices ``W``):

    * a model with a ``prunable_weights()`` method (e.g. ``prunerob.core.models.OneLayerTransformer``)
      decides itself: that method's dict is used as is. A *sub*-module with such a method
      (e.g. inside ``nn.Sequential(Normalize, ...)``) decides for its subtree, and its weights
      are renamed to their full ``named_parameters`` names;
    * timm ``VisionTransformer`` (top-level or nested, e.g. after a ``Normalize``): the
      ``nn.Linear`` weights inside ``blocks`` (attention ``qkv`` and ``proj``, MLP ``fc1`` and
      ``fc2``); the patch embedding, position embedding, cls token, norms and the classifier
      ``head`` are never pruned;
    * ``nn.MultiheadAttention``: ``in_proj_weight`` (or ``q/k/v_proj_weight``) and
      ``out_proj.weight``;
    * every other module (MLP, CNN): the weight of every ``nn.Linear`` and ``nn.Conv2d``,
      including the output layer. In a model that contains attention modules, sub-modules
      named ``head``, ``head_dist`` or ``patch_embed*`` are skipped (ViT-style embeddings and
      classifier heads).

    Biases, norm layers and embeddings are never included. Names are parameter names as in
    ``model.named_parameters()`` (e.g. ``"blocks.0.attn.qkv.weight"``).

    ``include`` / ``exclude``: fnmatch patterns (a string or a list), matched against the
    parameter name and against the module name (the name without ``.weight``), e.g.
    ``exclude="3"`` or ``include=["blocks.*.mlp.*"]``. ``include`` keeps only matching weights
    and raises ConfigError when a pattern matches nothing; ``exclude`` then drops matches.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    method = getattr(model, "prunable_weights", None)
    found = OrderedDict(method()) if callable(method) else _discover(model)
    inc = _as_patterns(include, "include")
    exc = _as_patterns(exclude, "exclude")
    if inc is not None:
        for p in inc:
            if not any(_matches(n, (p,)) for n in found):
                available = ", ".join(found) or "(none)"
                raise ConfigError(f"include pattern {p!r} matches no prunable weight; available: {available}")
        found = OrderedDict((n, w) for n, w in found.items() if _matches(n, inc))
    if exc is not None:
        found = OrderedDict((n, w) for n, w in found.items() if not _matches(n, exc))
    return found


def as_weights(model_or_weights: nn.Module | Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """``prunable_weights(model)`` for a module, or a validated copy of a dict ``name -> tensor``.

    Raises ConfigError when nothing is left to prune.
    """
    if isinstance(model_or_weights, nn.Module):
        w = prunable_weights(model_or_weights)
    elif isinstance(model_or_weights, Mapping):
        w = OrderedDict(model_or_weights)
        for n, t in w.items():
            if not isinstance(t, torch.Tensor):
                raise ConfigError(f"weight {n!r} must be a tensor, got {type(t).__name__}")
    else:
        raise ConfigError(
            f"expected a model or a dict name -> weight tensor, got {type(model_or_weights).__name__}"
        )
    if not w:
        raise ConfigError("no prunable weights found (see prunable_weights for which layers are pruned)")
    return w


def check_masks(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    """ConfigError unless every mask names a weight of ``weights`` and has its shape."""
    for n, m in masks.items():
        if n not in weights:
            raise ConfigError(f"mask for unknown weight {n!r}; prunable weights: {', '.join(weights)}")
        if tuple(m.shape) != tuple(weights[n].shape):
            raise ConfigError(
                f"mask {n!r} has shape {tuple(m.shape)} but the weight has {tuple(weights[n].shape)}"
            )


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` with ``W' = mask ⊙ W`` for every masked weight (Sec. 3).

    The original model is not modified. Weights without a mask are copied unchanged. Mask
    names must come from :func:`prunable_weights` (or ``named_parameters``).
    """
    pruned = copy.deepcopy(model)
    targets = OrderedDict(pruned.named_parameters())
    targets.update(prunable_weights(pruned))
    check_masks(targets, masks)
    with torch.no_grad():
        for n, m in masks.items():
            p = targets[n]
            p.mul_(m.to(device=p.device, dtype=p.dtype))
    return pruned


def masked_weights(
    weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> OrderedDict[str, torch.Tensor]:
    """``{name: mask ⊙ W}`` as new (detached) tensors; weights without a mask are returned as is."""
    check_masks(weights, masks)
    return OrderedDict(
        (n, w.detach() * masks[n].to(device=w.device, dtype=w.dtype) if n in masks else w.detach())
        for n, w in weights.items()
    )


def sparsity_report(masks: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Table with one row per mask (``layer``, ``numel``, ``kept``, ``keep_ratio``) and a
    ``total`` row over all masks."""

    def row(layer: str, numel: int, kept: int) -> dict:
        ratio = kept / numel if numel else math.nan
        return {"layer": layer, "numel": numel, "kept": kept, "keep_ratio": ratio}

    rows = [row(n, int(m.numel()), int(m.sum())) for n, m in masks.items()]
    rows.append(row("total", sum(r["numel"] for r in rows), sum(r["kept"] for r in rows)))
    return pd.DataFrame(rows, columns=["layer", "numel", "kept", "keep_ratio"])
