"""Estimators of the adversarial risk (Def. 1, Eq. 3) and of the optimality (Def. 2).

The theory's neighbourhood is the **L2 ball** ``B(x, eps) = {x~ in X : ||x~ - x||_2 <= eps}``
with ``X`` a subset of [0, 1]^D, and the output distance is L2 (Sec. 4.1). Norms are taken over
all non-batch dimensions (flattened; for token inputs ``[B, n, d]`` this is the Frobenius norm).

Two estimators of the inner ``sup_{x~ in B(x,eps)} ||g(x~) - g(x)||_2``:

(a) :func:`adversarial_risk_sampling` -- the paper's estimator (Sec. 6.2, App. H.6): ``K`` points
    sampled in the ball, "average output divergence" (the MEAN over the K samples). We also return
    the max over the K samples. Both are lower bounds of the sup; the mean is not an estimator of
    the sup at all, it estimates an average-case quantity.
(b) :func:`adversarial_risk_worst_case` -- projected gradient ascent on ``||g(x~) - g(x)||_2``
    with random starts; keeps the best iterate over all steps and restarts (a lower bound of the
    sup that is tight on linear maps).

Both return per-example values. :func:`risk_over_masks` averages over masks (Def. 1's outer
expectation) and :func:`optimality_zeta` estimates Def. 2, each with a Monte-Carlo standard error.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from prunerob.config import ConfigError, check_choice
from prunerob.core import masks as M
from prunerob.core.pruning import apply_masks

__all__ = [
    "mlp_forward",
    "mlp_fn",
    "sample_l2_ball",
    "adversarial_risk_sampling",
    "adversarial_risk_worst_case",
    "bernoulli_sampler",
    "risk_over_masks",
    "optimality_zeta",
]

_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "identity": lambda t: t,
    "leaky_relu": F.leaky_relu,
}


def mlp_forward(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None] | None,
    x: torch.Tensor,
    activation: str = "relu",
) -> torch.Tensor:
    """``h_l = sigma(W^(l) h_{l-1} + b^(l))`` for hidden layers, linear last layer (Sec. 3).

    ``weights[l]`` has the torch ``Linear`` layout (out x in); ``x`` is ``[B, ...]`` and is
    flattened to ``[B, in]``. ``activation``: relu, tanh, leaky_relu or identity (all 1-Lipschitz).
    """
    check_choice("activation", activation, tuple(_ACTS))
    act = _ACTS[activation]
    if biases is not None and len(biases) != len(weights):
        raise ConfigError(f"biases has {len(biases)} entries but there are {len(weights)} weight matrices")
    h = x.reshape(x.shape[0], -1)
    L = len(weights)
    for i, W in enumerate(weights):
        b = None if biases is None else biases[i]
        h = F.linear(h, W.to(h.dtype), None if b is None else b.to(h.dtype))
        if i < L - 1:
            h = act(h)
    return h


def mlp_fn(weights, biases=None, activation: str = "relu") -> Callable[[torch.Tensor], torch.Tensor]:
    """Closure ``x -> mlp_forward(weights, biases, x, activation)``."""
    return lambda x: mlp_forward(weights, biases, x, activation)


def _as_fn(g) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(g):
        return g
    if isinstance(g, (tuple, list)) and len(g) in (2, 3) and isinstance(g[0], (list, tuple)):
        return mlp_fn(*g)
    raise ConfigError("g must be a callable / nn.Module or a tuple (weights, biases[, activation])")


def _flatnorm(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


def sample_l2_ball(center: torch.Tensor, eps: float, K: int, generator: torch.Generator) -> torch.Tensor:
    """``K`` points uniform in the L2 ball of radius ``eps`` around each example: ``[K, B, ...]``.

    Direction: normalised Gaussian; radius ``eps U^(1/D)`` (uniform in volume, so in high D almost
    all samples lie near the sphere).
    """
    B = center.shape[0]
    D = center[0].numel()
    z = torch.randn((K, B, D), generator=generator, dtype=center.dtype)
    z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    rad = eps * torch.rand((K, B, 1), generator=generator, dtype=center.dtype) ** (1.0 / D)
    return center.unsqueeze(0) + (z * rad).reshape(K, *center.shape)


def _project(delta: torch.Tensor, x: torch.Tensor, eps: float, norm: str, box: bool) -> torch.Tensor:
    if norm == "l2":
        n = _flatnorm(delta).clamp_min(1e-30).view(-1, *[1] * (delta.dim() - 1))
        delta = delta * torch.clamp(eps / n, max=1.0)
    else:
        delta = delta.clamp(-eps, eps)
    if box:
        # coordinate-wise clipping never increases |delta_i|, so the result stays in the ball
        delta = (x + delta).clamp(0.0, 1.0) - x
    return delta


@torch.no_grad()
def adversarial_risk_sampling(
    g_or_mlp,
    x: torch.Tensor,
    eps: float,
    K: int = 200,
    norm: str = "l2",
    seed: int = 0,
    box: bool = True,
    batch_k: int = 50,
) -> dict[str, torch.Tensor]:
    """The paper's sampling estimator (App. H.6): K points per neighbourhood, output change measured.

    Points are uniform in the L2 ball (``norm="l2"``) or the L-inf cube (``norm="linf"``) around
    ``x``; with ``box=True`` they are then CLIPPED coordinate-wise to [0, 1] (which keeps them in
    the ball but makes them non-uniform on ``B(x, eps)``). Returns per-example tensors
    ``{"mean": ..., "max": ...}`` of ``||g(x~) - g(x)||_2`` over the K samples: ``mean`` is the
    paper's "average output divergence", ``max`` the best of the K samples.
    """
    check_choice("norm", norm, ("l2", "linf"))
    if K < 1:
        raise ConfigError(f"K={K} must be >= 1")
    g = _as_fn(g_or_mlp)
    gen = torch.Generator().manual_seed(int(seed))
    y0 = g(x)
    tot = torch.zeros(x.shape[0], dtype=torch.float64)
    best = torch.zeros(x.shape[0], dtype=torch.float64)
    done = 0
    while done < K:
        k = min(batch_k, K - done)
        if norm == "l2":
            xs = sample_l2_ball(x, eps, k, gen)
        else:
            xs = x.unsqueeze(0) + (2 * torch.rand((k, *x.shape), generator=gen, dtype=x.dtype) - 1) * eps
        if box:
            xs = xs.clamp(0.0, 1.0)
        ys = g(xs.reshape(k * x.shape[0], *x.shape[1:])).reshape(k, *y0.shape)
        dist = (ys - y0.unsqueeze(0)).reshape(k, x.shape[0], -1).norm(dim=-1).to(torch.float64)
        tot += dist.sum(0)
        best = torch.maximum(best, dist.max(0).values)
        done += k
    return {"mean": tot / K, "max": best}


def adversarial_risk_worst_case(
    model,
    x: torch.Tensor,
    eps: float,
    steps: int = 50,
    restarts: int = 5,
    norm: str = "l2",
    seed: int = 0,
    box: bool = True,
    step_size: float | None = None,
) -> torch.Tensor:
    """Estimator (b): per-example ``max ||g(x~) - g(x)||_2`` over ``B(x, eps)`` (∩ [0,1] if ``box``) by PGD.

    Projected gradient ASCENT with normalised steps (L2: ``delta += a grad/||grad||``; L-inf:
    ``delta += a sign(grad)``), random starts in the ball (the objective's gradient vanishes at
    ``delta = 0``), step size decaying linearly from ``step_size`` (default ``eps`` for L2,
    ``eps/2`` for L-inf) to 1/20 of it; the best iterate over all steps and restarts is kept.
    Where the gradient vanishes (flat spot) a random direction is used for that step.
    The result is a lower bound on the sup, and is exact (to 1e-3) for linear maps.
    """
    check_choice("norm", norm, ("l2", "linf"))
    if steps < 1 or restarts < 1:
        raise ConfigError(f"steps={steps}, restarts={restarts} must be >= 1")
    eps = float(eps)
    g = _as_fn(model)
    gen = torch.Generator().manual_seed(int(seed))
    x = x.detach()
    with torch.no_grad():
        y0 = g(x)
    best = torch.zeros(x.shape[0], dtype=torch.float64)
    if eps == 0:
        return best
    a0 = step_size if step_size is not None else (eps if norm == "l2" else eps / 2)
    view = (-1, *[1] * (x.dim() - 1))
    for _ in range(restarts):
        if norm == "l2":
            delta = sample_l2_ball(x, eps, 1, gen)[0] - x
        else:
            delta = (2 * torch.rand(x.shape, generator=gen, dtype=x.dtype) - 1) * eps
        delta = _project(delta, x, eps, norm, box)
        for t in range(steps + 1):
            delta.requires_grad_(True)
            with torch.enable_grad():
                obj = _flatnorm(g(x + delta) - y0)
                grad, = torch.autograd.grad(obj.sum(), delta)
            with torch.no_grad():
                best = torch.maximum(best, obj.detach().to(torch.float64))
                if t == steps:
                    break
                a = a0 * (1 - (1 - 0.05) * t / max(steps - 1, 1))
                # a flat spot (e.g. x~ clipped onto a point with g(x~) = g(x)) has zero gradient:
                # move in a random direction instead of staying stuck
                flat = _flatnorm(grad) == 0
                if bool(flat.any()):
                    rnd = torch.randn(grad.shape, generator=gen, dtype=grad.dtype)
                    grad = torch.where(flat.view(view), rnd, grad)
                if norm == "l2":
                    gn = _flatnorm(grad).clamp_min(1e-30).view(view)
                    delta = delta.detach() + a * grad / gn
                else:
                    delta = delta.detach() + a * grad.sign()
                delta = _project(delta, x, eps, norm, box)
    return best


# ------------------------------------------------------------------ masks
def bernoulli_sampler(
    weights_or_model: nn.Module | Sequence[torch.Tensor], keep_probs: Any
) -> Callable[[torch.Generator], list[torch.Tensor] | OrderedDict[str, torch.Tensor]]:
    """A mask sampler ``gen -> masks`` for the paper's Bernoulli pruning (Sec. 3): ``B_ij ~ Bernoulli(p_ij)``.

    For an MLP weight list the masks are a list in layer order (``keep_probs``: a float, or one
    float / array per layer); for a module a mask dict name -> bool tensor (:mod:`prunerob.core.masks`),
    with ``keep_probs`` a float or a dict name -> float / tensor. Masks are drawn with
    :func:`prunerob.core.masks.sample_masks` (the package's one Bernoulli sampler, ``u < p`` from
    ``gen``) and live on the weights' devices.
    """
    weights = M.named_weights(weights_or_model)
    kp = M.keep_probs(weights, keep_probs)  # validated once, here
    as_list = not isinstance(weights_or_model, (nn.Module, Mapping))

    def sample(gen: torch.Generator) -> list[torch.Tensor] | OrderedDict[str, torch.Tensor]:
        masks = M.sample_masks(weights, kp, gen)
        return M.by_layer(masks) if as_list else masks

    return sample


def _pruned_fn(f, masks, biases, activation):
    if isinstance(f, nn.Module):
        if hasattr(f, "pruned_copy"):
            return f.pruned_copy(masks)
        return apply_masks(f, masks)
    return mlp_fn([m * w for w, m in zip(f, masks, strict=True)], biases, activation)


def _base_fn(f, biases, activation):
    return f if isinstance(f, nn.Module) else mlp_fn(list(f), biases, activation)


def _mean_se(vals: list[float]) -> tuple[float, float]:
    t = torch.tensor(vals, dtype=torch.float64)
    se = float(t.std(unbiased=True) / math.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return float(t.mean()), se


def risk_over_masks(
    f,
    keep_probs,
    x: torch.Tensor,
    eps: float,
    n_masks: int = 20,
    estimator: str = "worst_case",
    seed: int = 0,
    biases=None,
    activation: str = "relu",
    mask_sampler: Callable[[torch.Generator], object] | None = None,
    progress: bool | None = None,
    method: str | None = None,
    **est_kw,
) -> tuple[float, float]:
    """Monte-Carlo of Def. 1 (Eq. 3): ``E_masks E_x sup_{B(x,eps)} ||g(x~) - g(x)||_2`` -> ``(mean, stderr)``.

    ``f``: an MLP weight list (with ``biases``, ``activation``) or an ``nn.Module`` with
    ``prunable_weights()`` (e.g. :class:`~prunerob.theory.transformer.OneLayerTransformer`); ``method``
    names the pruned module's method to attack (default: call the module; ``"block"`` gives the
    token-to-token map that Lemma 1 / Theorem 1 bound).
    ``estimator``: ``worst_case`` (PGD, estimator b), ``sampling_mean`` (the paper's average over K
    samples) or ``sampling_max``. ``mask_sampler(gen) -> masks`` overrides Bernoulli(keep_probs)
    (e.g. a fixed magnitude mask). The standard error is over masks (the inner estimator is
    treated as exact; it is seeded per mask).
    """
    check_choice("estimator", estimator, ("worst_case", "sampling_mean", "sampling_max"))
    if n_masks < 1:
        raise ConfigError(f"n_masks={n_masks} must be >= 1")
    sampler = mask_sampler or bernoulli_sampler(f, keep_probs)
    gen = torch.Generator().manual_seed(int(seed))
    vals = []
    it = tqdm(range(n_masks), desc="masks", disable=None if progress is None else not progress, leave=False)
    for i in it:
        g = _pruned_fn(f, sampler(gen), biases, activation)
        if method is not None:
            g = getattr(g, method)
        if estimator == "worst_case":
            v = adversarial_risk_worst_case(g, x, eps, seed=seed * 100003 + i, **est_kw)
        else:
            r = adversarial_risk_sampling(g, x, eps, seed=seed * 100003 + i, **est_kw)
            v = r["mean"] if estimator == "sampling_mean" else r["max"]
        vals.append(float(v.mean()))
    return _mean_se(vals)


@torch.no_grad()
def optimality_zeta(
    f,
    masks_sampler: Callable[[torch.Generator], object],
    x: torch.Tensor,
    n_masks: int = 100,
    seed: int = 0,
    biases=None,
    activation: str = "relu",
    reduce: str = "mean",
    method: str | None = None,
) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """Monte-Carlo of Def. 2: ``E_masks ||f(x) - g(x)||_2`` -> ``(mean, stderr)``.

    ``reduce="mean"`` averages over the examples in ``x`` as well (one number); ``"none"`` gives
    per-example tensors (Proposition 1 is stated per input ``x0``). ``f``: MLP weight list (with
    ``biases``/``activation``) or a module; ``method`` as in :func:`risk_over_masks`.
    """
    check_choice("reduce", reduce, ("mean", "none"))
    if n_masks < 2:
        raise ConfigError(f"n_masks={n_masks} must be >= 2 for a standard error")
    gen = torch.Generator().manual_seed(int(seed))
    base = _base_fn(f, biases, activation)
    if method is not None:
        base = getattr(base, method)
    y = base(x)
    rows = []
    for _ in range(n_masks):
        g = _pruned_fn(f, masks_sampler(gen), biases, activation)
        if method is not None:
            g = getattr(g, method)
        rows.append(_flatnorm(g(x) - y).to(torch.float64))
    R = torch.stack(rows)  # [n_masks, B]
    if reduce == "mean":
        return _mean_se(R.mean(1).tolist())
    return R.mean(0), R.std(0, unbiased=True) / math.sqrt(n_masks)
