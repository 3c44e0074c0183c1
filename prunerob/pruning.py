"""Pruning masks for the paper's probabilistic pruning model (Sec. 3) and the score-based
pruning of App. I.

Paper, Sec. 3: a pruned weight matrix is ``W' = B ⊙ W`` with independent
``B_ij ~ Bernoulli(p_ij)``, where ``p_ij`` is the probability of **keeping** ``W_ij``
(called ``keep`` / ``keep_probs`` here; the fraction removed is ``1 - keep``).

* threshold magnitude pruning: ``p_ij = 1{|W_ij| >= q}`` (:func:`magnitude_keep_probs_threshold`);
* smooth magnitude pruning: ``p_ij = 1 - exp(-alpha |W_ij|)`` (:func:`smooth_magnitude_keep_probs`);
* top-p magnitude pruning ``M = Top_p(|W|)`` (:func:`magnitude_masks`, per layer or global);
* score-based pruning (App. I): ``s_ij = E_batch |w_ij dL/dw_ij|`` over 20 batches, then the
  lowest-score weights are removed (:func:`taylor_scores`, :func:`score_masks`);
* baselines: exactly-``k`` uniformly random masks and i.i.d. ``Bernoulli(keep)`` masks.

Nothing here modifies a model in place: functions return boolean masks (``True`` = kept) keyed
by the names returned by :func:`prunable_weights`, and :func:`apply_masks` returns a pruned
deep copy.

Exact counts: deterministic top-k masks keep ``n_kept(keep, numel) = round(keep * numel)``
entries (Python's ``round``, i.e. ties to even: ``round(2.5) == 2``). Ties in the score are
broken by the lower flat index (layer order, then row-major order), so results are
reproducible on every device.
"""
from __future__ import annotations

import copy
import fnmatch
import math
import warnings
from collections import OrderedDict
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import ConfigError, check_choice, check_keep

__all__ = [
    "METHODS",
    "SCOPES",
    "prunable_weights",
    "n_kept",
    "bernoulli_masks",
    "magnitude_keep_probs_threshold",
    "smooth_magnitude_keep_probs",
    "magnitude_masks",
    "random_masks",
    "taylor_scores",
    "score_masks",
    "make_masks",
    "apply_masks",
    "masked_weights",
    "sparsity_report",
]

METHODS: tuple[str, ...] = ("magnitude", "magnitude_global", "random", "taylor", "bernoulli_uniform")
SCOPES: tuple[str, ...] = ("layer", "global")



# --------------------------------------------------------------------------------------------
# Which weights are pruned
# --------------------------------------------------------------------------------------------
def _timm_vit_class():
    try:
        from timm.models.vision_transformer import VisionTransformer
    except Exception:  # pragma: no cover - timm is a dependency, but keep this module importable
        return None
    return VisionTransformer


_TRANSFORMER_SKIP_PREFIX = ("patch_embed",)
_TRANSFORMER_SKIP_NAMES = ("head", "head_dist")


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


def _discover(model: nn.Module) -> "OrderedDict[str, nn.Parameter]":
    out: "OrderedDict[str, nn.Parameter]" = OrderedDict()
    seen: set[int] = set()
    full_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    vit_cls = _timm_vit_class()
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
        if vit_cls is not None and isinstance(module, vit_cls):
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
            if transformer and (cname in _TRANSFORMER_SKIP_NAMES or cname.startswith(_TRANSFORMER_SKIP_PREFIX)):
                continue
            visit(child, f"{prefix}{cname}.", False)

    visit(model, "", True)
    return out


def prunable_weights(
    model: nn.Module,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> "OrderedDict[str, nn.Parameter]":
    """The weight matrices that pruning touches, as an ordered dict ``name -> parameter``
    in forward (registration) order.

    Rules (CONTRIBUTING.md, "Model contract"; paper Sec. 3 prunes the weight matrices ``W``):

    * a model with a ``prunable_weights()`` method (e.g. ``prunerob.models.OneLayerTransformer``)
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
    if callable(method):
        found = OrderedDict(method())
    else:
        found = _discover(model)
    inc = _as_patterns(include, "include")
    exc = _as_patterns(exclude, "exclude")
    if inc is not None:
        for p in inc:
            if not any(_matches(n, (p,)) for n in found):
                raise ConfigError(
                    f"include pattern {p!r} matches no prunable weight; available: {', '.join(found) or '(none)'}"
                )
        found = OrderedDict((n, w) for n, w in found.items() if _matches(n, inc))
    if exc is not None:
        found = OrderedDict((n, w) for n, w in found.items() if not _matches(n, exc))
    return found


def _weights(model_or_weights) -> "OrderedDict[str, torch.Tensor]":
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


def n_kept(keep: float, numel: int) -> int:
    """Number of entries a deterministic mask keeps: ``round(keep * numel)`` (ties to even)."""
    return int(round(check_keep(keep) * numel))


# --------------------------------------------------------------------------------------------
# Keep-probability model (Sec. 3): W' = B ⊙ W, B_ij ~ Bernoulli(p_ij)
# --------------------------------------------------------------------------------------------
def bernoulli_masks(
    keep_probs: Mapping[str, torch.Tensor | float],
    generator: torch.Generator | None = None,
    *,
    like: "nn.Module | Mapping[str, torch.Tensor] | None" = None,
) -> "OrderedDict[str, torch.Tensor]":
    """Draw ``B_ij ~ Bernoulli(p_ij)`` independently for every entry (paper Sec. 3).

    ``keep_probs[name]`` is a tensor of keep probabilities (any shape) or a float applied to
    every entry of the weight ``name`` of ``like`` (a model or dict of weights, required for
    float entries). A mask is ``U < p`` with ``U ~ Uniform[0, 1)`` drawn from ``generator`` (on
    the generator's device), in the dict's order, so one seeded generator gives reproducible
    masks; ``p = 1`` always keeps and ``p = 0`` never keeps. Masks live on ``p``'s device
    (float entries: the weight's device).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    ref = _weights(like) if like is not None else None
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, p in keep_probs.items():
        if isinstance(p, torch.Tensor):
            p_t = p.detach()
            if p_t.numel() and (torch.isnan(p_t).any() or p_t.min() < 0 or p_t.max() > 1):
                raise ConfigError(f"keep_probs[{name!r}] must lie in [0, 1] (probability of keeping a weight)")
            shape, device = p_t.shape, p_t.device
        else:
            p_t = check_keep(p, name=f"keep_probs[{name!r}]")
            if ref is None or name not in ref:
                raise ConfigError(
                    f"keep_probs[{name!r}] is a float: pass like=<model or weights dict> holding {name!r} to give its shape"
                )
            shape, device = ref[name].shape, ref[name].device
        u = torch.rand(shape, generator=generator, device=gen_device).to(device)
        out[name] = u < p_t
    return out


def magnitude_keep_probs_threshold(model_or_weights, q: float) -> "OrderedDict[str, torch.Tensor]":
    """Threshold magnitude pruning as a keep-probability (Sec. 3): ``p_ij = 1{|W_ij| >= q}``."""
    q = float(q)
    if not q >= 0:
        raise ConfigError(f"q={q!r} must be >= 0 (magnitude threshold)")
    return OrderedDict((n, (w.detach().abs() >= q).to(torch.float32)) for n, w in _weights(model_or_weights).items())


def smooth_magnitude_keep_probs(model_or_weights, alpha: float) -> "OrderedDict[str, torch.Tensor]":
    """Smooth magnitude pruning (Sec. 3): ``p_ij = 1 - exp(-alpha |W_ij|)``, ``alpha >= 0``."""
    alpha = float(alpha)
    if not alpha >= 0:
        raise ConfigError(f"alpha={alpha!r} must be >= 0 (smoothing parameter)")
    return OrderedDict(
        (n, -torch.expm1(-alpha * w.detach().abs().to(torch.float32))) for n, w in _weights(model_or_weights).items()
    )


# --------------------------------------------------------------------------------------------
# Deterministic top-k masks
# --------------------------------------------------------------------------------------------
def _topk_mask_flat(values: torch.Tensor, k: int) -> torch.Tensor:
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
) -> "OrderedDict[str, torch.Tensor]":
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
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    if scope == "layer":
        for n, s in scores.items():
            s = s.detach()
            out[n] = _topk_mask_flat(s.flatten(), n_kept(keep, s.numel())).view(s.shape)
        return out
    devices = {s.device for s in scores.values()}
    dev = next(iter(devices)) if len(devices) == 1 else torch.device("cpu")
    flat = torch.cat([s.detach().to(dev, torch.float32).flatten() for s in scores.values()])
    m = _topk_mask_flat(flat, n_kept(keep, flat.numel()))
    start = 0
    for n, s in scores.items():
        out[n] = m[start : start + s.numel()].view(s.shape).to(s.device)
        start += s.numel()
    return out


def magnitude_masks(model_or_weights, keep: float, scope: str = "layer") -> "OrderedDict[str, torch.Tensor]":
    """Magnitude pruning ``M = Top_p(|W|)`` (Sec. 3): keep exactly ``round(keep * numel)``
    largest-``|w|`` entries per layer (``scope="layer"``) or over all prunable weights
    together (``scope="global"``). ``keep=1`` keeps all, ``keep=0`` none."""
    w = _weights(model_or_weights)
    return score_masks(OrderedDict((n, t.detach().abs()) for n, t in w.items()), keep, scope)


def random_masks(
    model_or_weights, keep: float, generator: torch.Generator | None = None, scope: str = "layer"
) -> "OrderedDict[str, torch.Tensor]":
    """Baseline: exactly ``round(keep * numel)`` kept entries chosen uniformly at random per
    layer (``scope="global"``: over all weights together), via ``torch.randperm(generator=...)``."""
    keep = check_keep(keep)
    check_choice("scope", scope, SCOPES)
    w = _weights(model_or_weights)
    gen_device = generator.device if generator is not None else torch.device("cpu")

    def draw(numel: int) -> torch.Tensor:
        m = torch.zeros(numel, dtype=torch.bool, device=gen_device)
        m[torch.randperm(numel, generator=generator, device=gen_device)[: n_kept(keep, numel)]] = True
        return m

    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
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


# --------------------------------------------------------------------------------------------
# Score-based (Taylor) pruning, App. I
# --------------------------------------------------------------------------------------------
def _iter_batches(data, batch_size: int, shuffle: bool, seed: int) -> Iterable:
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
    data,
    n_batches: int = 20,
    batch_size: int = 128,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    device: str | torch.device | None = None,
    *,
    shuffle: bool = True,
    seed: int = 0,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> "OrderedDict[str, torch.Tensor]":
    """First-order Taylor importance scores (App. I):
    ``s_ij = E_batch |w_ij * dL/dw_ij|``, averaged over the first ``n_batches`` batches
    (the paper uses 20) with ``L = loss_fn(model(x), y)`` (default: mean cross-entropy).

    ``data``: an object with ``.batches(batch_size, shuffle, generator)`` yielding ``(x, y)``
    (``prunerob.data.ArrayDataset``; ``shuffle`` and a generator seeded with ``seed`` are passed
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
        from tqdm.auto import tqdm

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
                for s, p, g in zip(sums, params, grads):
                    if g is not None:
                        s += (p.detach() * g).abs().to(torch.float32)
            used += 1
    finally:
        for p, r in zip(params, req):
            p.requires_grad_(r)
        model.train(was_training)
    if used == 0:
        raise ConfigError("data yielded no batches; cannot compute Taylor scores")
    if used < n_batches:
        warnings.warn(f"taylor_scores: only {used} batches available (n_batches={n_batches}); averaged over {used}")
    return OrderedDict((n, s / used) for n, s in zip(names, sums))


# --------------------------------------------------------------------------------------------
# Dispatcher, application, reporting
# --------------------------------------------------------------------------------------------
def make_masks(
    method: str,
    model: nn.Module,
    keep: float,
    *,
    seed: int = 0,
    data=None,
    n_batches: int = 20,
    batch_size: int = 128,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
) -> "OrderedDict[str, torch.Tensor]":
    """Masks (``True`` = kept) for one of :data:`METHODS` at keep ratio ``keep`` (paper's p).

    * ``magnitude``: per-layer top-``keep`` by ``|w|``; ``magnitude_global``: global top-``keep``;
    * ``random``: exactly ``round(keep * numel)`` random entries per layer (seeded);
    * ``taylor``: per-layer top-``keep`` by :func:`taylor_scores` on ``data`` (App. I; needs
      ``data``). For a sweep over many keep ratios call :func:`taylor_scores` once and then
      :func:`score_masks` to avoid recomputing the scores;
    * ``bernoulli_uniform``: i.i.d. ``B_ij ~ Bernoulli(keep)`` (Sec. 3 with constant p), seeded.

    ``seed`` seeds a fresh CPU ``torch.Generator`` (random, bernoulli_uniform) or the batch
    order (taylor).
    """
    check_choice("method", method, METHODS)
    keep = check_keep(keep)
    weights = prunable_weights(model, include=include, exclude=exclude)
    if not weights:
        raise ConfigError("no prunable weights found in the model (check include/exclude)")
    if method == "magnitude":
        return magnitude_masks(weights, keep, scope="layer")
    if method == "magnitude_global":
        return magnitude_masks(weights, keep, scope="global")
    if method == "random":
        return random_masks(weights, keep, torch.Generator().manual_seed(int(seed)), scope="layer")
    if method == "bernoulli_uniform":
        g = torch.Generator().manual_seed(int(seed))
        return bernoulli_masks(OrderedDict((n, keep) for n in weights), g, like=weights)
    # taylor
    if data is None:
        raise ConfigError("method='taylor' needs data=<ArrayDataset or iterable of (x, y)> to compute scores (App. I)")
    scores = taylor_scores(
        model, data, n_batches=n_batches, batch_size=batch_size, seed=seed, include=include, exclude=exclude
    )
    return score_masks(scores, keep, scope="layer")


def _check_masks(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    for n, m in masks.items():
        if n not in weights:
            raise ConfigError(f"mask for unknown weight {n!r}; prunable weights: {', '.join(weights)}")
        if tuple(m.shape) != tuple(weights[n].shape):
            raise ConfigError(f"mask {n!r} has shape {tuple(m.shape)} but the weight has {tuple(weights[n].shape)}")


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` with ``W' = mask ⊙ W`` for every masked weight (Sec. 3).

    The original model is not modified. Weights without a mask are copied unchanged. Mask
    names must come from :func:`prunable_weights` (or ``named_parameters``).
    """
    pruned = copy.deepcopy(model)
    targets = OrderedDict(pruned.named_parameters())
    targets.update(prunable_weights(pruned))
    _check_masks(targets, masks)
    with torch.no_grad():
        for n, m in masks.items():
            p = targets[n]
            p.mul_(m.to(device=p.device, dtype=p.dtype))
    return pruned


def masked_weights(
    weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> "OrderedDict[str, torch.Tensor]":
    """``{name: mask ⊙ W}`` as new (detached) tensors; weights without a mask are returned as is."""
    _check_masks(weights, masks)
    return OrderedDict(
        (n, w.detach() * masks[n].to(device=w.device, dtype=w.dtype) if n in masks else w.detach())
        for n, w in weights.items()
    )


def sparsity_report(masks: Mapping[str, torch.Tensor]):
    """Table with one row per mask (``layer``, ``numel``, ``kept``, ``keep_ratio``) and a
    ``total`` row over all masks."""
    import pandas as pd

    rows = []
    for n, m in masks.items():
        numel, kept = int(m.numel()), int(m.sum())
        rows.append({"layer": n, "numel": numel, "kept": kept, "keep_ratio": kept / numel if numel else math.nan})
    numel = sum(r["numel"] for r in rows)
    kept = sum(r["kept"] for r in rows)
    rows.append({"layer": "total", "numel": numel, "kept": kept, "keep_ratio": kept / numel if numel else math.nan})
    return pd.DataFrame(rows, columns=["layer", "numel", "kept", "keep_ratio"])
