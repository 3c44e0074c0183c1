"""Stacked-weights fast path of the sweep: K pruned copies of one MLP run as one batched model.

All keep ratios of one pruning method are stacked into ``[K, out, in]`` weight tensors and
evaluated with ``torch.baddbmm`` on inputs of shape ``[K, B, ...]`` (several evaluation batches
are packed into one call when memory allows, :data:`MEMORY_BUDGET`). FGSM and PGD (the attacks
of Fig. 2 and App. H, settings of App. I) are re-implemented on the stack, step for step as in
torchattacks 3.5.1 (same random start, same loss, same step, projection and clamp). The loss is
``sum_k CE_mean(copy k)``: copy k's input only influences copy k's logits, so the gradient with
respect to copy k's input equals torchattacks' gradient for that copy. ``tests/test_sweep.py``
checks that this path and the per-ratio torchattacks loop of :mod:`prunerob.engine.sweep` agree.

The attacks available on the stack are the keys of :data:`STACKED_ATTACKS`; everything else
takes the loop path. Inputs here are already validated by :func:`prunerob.engine.sweep.run_sweep`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.core.pruning import apply_masks

#: Memory budget in bytes of the batched path (None: a third of the free GPU memory, 256 MiB on
#: the CPU). It decides how many pruned copies are stacked and how many evaluation batches are
#: packed into one call; the results do not depend on it.
MEMORY_BUDGET: int | None = None

_PASS = (nn.Dropout, nn.Identity)
_ACTS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


@dataclass(frozen=True)
class MLPPlan:
    """Structure of a plain MLP: leaf modules before the first Linear, the Linears, activations."""

    pre: tuple[nn.Module, ...]
    linears: tuple[nn.Linear, ...]
    acts: tuple[Callable, ...]


def mlp_plan(model: nn.Module) -> MLPPlan | None:
    """The :class:`MLPPlan` of ``model`` if it is pre -> (Linear -> act)* -> Linear, else None.

    ``pre`` are the leaf modules before the first Linear (Normalize, Flatten), applied per
    example; ``act`` is ReLU (or tanh). The model must expose ``linear_layers()`` (as
    :class:`prunerob.core.models.MLP` does). :func:`check_stack` verifies the plan numerically.
    """
    if not callable(getattr(model, "linear_layers", None)):
        return None
    linears = list(model.linear_layers())
    if not linears or not all(isinstance(lin, nn.Linear) for lin in linears):
        return None
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    if sum(isinstance(m, nn.Linear) for m in leaves) != len(linears):
        return None
    first = next(i for i, m in enumerate(leaves) if isinstance(m, nn.Linear))
    pre = [m for m in leaves[:first] if not isinstance(m, _PASS)]
    seq = [m for m in leaves[first:] if not isinstance(m, _PASS)]
    if len(seq) != 2 * len(linears) - 1 or seq[0::2] != linears:
        return None
    acts = [_ACTS.get(type(m)) for m in seq[1::2]]
    if any(a is None for a in acts):
        return None
    return MLPPlan(tuple(pre), tuple(linears), tuple(acts))


def batchable(model: nn.Module) -> bool:
    """True when ``model`` has the plain MLP structure the batched path supports."""
    return mlp_plan(model) is not None


class StackedMLP:
    """K pruned copies of one MLP as stacked tensors ``W_l: [K, out, in]``, ``b_l: [K, out]``.

    Calling it on ``x: [K, B, C, H, W]`` (one input per copy) or ``[B, C, H, W]`` (shared by all
    copies) returns logits ``[K, B, classes]``: ``pre`` (Normalize, Flatten) per example, then
    ``h <- act(baddbmm(b, h, W^T))`` layer by layer, the MLP's forward for every copy at once.
    """

    def __init__(self, pre: Sequence[nn.Module], acts: Sequence[Callable], weights: Sequence[torch.Tensor],
                 biases: Sequence[torch.Tensor | None]):
        self.pre = list(pre)
        self.acts = list(acts)
        self.wt = [w.transpose(1, 2) for w in weights]  # [K, in, out] views (cuBLAS reads them transposed)
        self.b = [None if b is None else b.unsqueeze(1) for b in biases]  # [K, 1, out]
        self.K = int(weights[0].shape[0])

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.pre:
            x = m(x)
        return x.flatten(1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:  # [K, B, C, H, W]
            K, B = x.shape[:2]
            h = self._pre(x.reshape(K * B, *x.shape[2:])).view(K, B, -1)
        else:  # [B, C, H, W] shared by all copies
            h = self._pre(x)
        last = len(self.wt) - 1
        for i, (wt, b) in enumerate(zip(self.wt, self.b, strict=True)):
            if h.dim() == 2:
                h = torch.matmul(h, wt)  # [B, in] @ [K, in, out] -> [K, B, out]
                if b is not None:
                    h = h + b
            elif b is not None:
                h = torch.baddbmm(b, h, wt)
            else:
                h = torch.bmm(h, wt)
            if i < last:
                h = self.acts[i](h)
        return h


def stack_of(plan: MLPPlan, models_weights: Sequence[Sequence[torch.Tensor]],
             models_biases: Sequence[Sequence[torch.Tensor | None]]) -> StackedMLP:
    """A :class:`StackedMLP` from per-copy lists of weights and biases (one list per copy)."""
    n_layers = len(models_weights[0])
    ws = [torch.stack([mw[i] for mw in models_weights]) for i in range(n_layers)]
    bs = [None if models_biases[0][i] is None else torch.stack([mb[i] for mb in models_biases])
          for i in range(n_layers)]
    return StackedMLP(plan.pre, plan.acts, ws, bs)


def check_stack(model: nn.Module, plan: MLPPlan, x: torch.Tensor) -> bool:
    """Numerical check that the stacked forward of the unpruned model equals ``model(x)``."""
    stack = stack_of(plan, [[lin.weight.detach() for lin in plan.linears]],
                     [[None if lin.bias is None else lin.bias.detach() for lin in plan.linears]])
    with torch.no_grad():
        ref = model(x)
        got = stack(x)[0]
    tol = 1e-4 if ref.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-9
    return ref.shape == got.shape and bool(torch.allclose(ref, got, rtol=tol, atol=tol))


# --------------------------------------------------------------------------------------------
# FGSM and PGD on the stack (torchattacks 3.5.1, step for step)
# --------------------------------------------------------------------------------------------
def _stacked_loss(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """``sum_k sum_i weight_i * CE(logits[k, i], y_i)`` with ``weight_i = 1 / (size of i's batch)``.

    This is torchattacks' loss (``nn.CrossEntropyLoss()``, mean over the batch) summed over the
    copies and over the evaluation batches packed into one call, so ``d loss / d x[k, i]`` is
    exactly the gradient torchattacks computes for that example (even the 1/B scale is kept).
    """
    K, S, C = logits.shape
    ce = F.cross_entropy(logits.reshape(K * S, C), y.repeat(K), reduction="none").view(K, S)
    return (ce * weight).sum()


def _input_grad(stack: StackedMLP, adv: torch.Tensor, y: torch.Tensor, weight) -> torch.Tensor:
    (grad,) = torch.autograd.grad(_stacked_loss(stack(adv), y, weight), adv)
    return grad if grad.is_contiguous() else grad.contiguous()  # a private buffer we may overwrite


def stacked_fgsm(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, eps: float,
                 weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """torchattacks 3.5.1 ``FGSM`` on every copy: ``clamp(x + eps * sign(grad), 0, 1)`` -> ``[K, B, ...]``.

    ``weight``: per-example loss weight (default ``1/B``, torchattacks' mean).
    """
    weight = 1.0 / x.shape[0] if weight is None else weight
    adv = x.detach().unsqueeze(0).expand(stack.K, *x.shape).clone().requires_grad_(True)
    grad = _input_grad(stack, adv, y, weight)
    # = clamp(x + eps * sign(grad), 0, 1), computed in place in grad's buffer (same rounding)
    return grad.sign_().mul_(eps).add_(adv.detach()).clamp_(min=0, max=1)


def stacked_pgd(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
                random_start: bool = True, noise: torch.Tensor | None = None,
                weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """torchattacks 3.5.1 ``PGD`` on every copy with one random start shared by all copies.

    The start is ``clamp(x + noise, 0, 1)`` with ``noise = torch.empty_like(x).uniform_(-eps, eps)``
    drawn from the global RNG as torchattacks draws it (pass ``noise`` to supply it, e.g. drawn
    batch by batch); then ``steps`` times
    ``x' <- clamp(x + clamp(x' + alpha * sign(grad) - x, -eps, eps), 0, 1)``.
    """
    weight = 1.0 / x.shape[0] if weight is None else weight
    images = x.detach()
    adv = images.clone()
    if random_start:
        if noise is None:
            noise = torch.empty_like(adv).uniform_(-eps, eps)
        adv = torch.clamp(adv + noise, min=0, max=1)
    adv = adv.unsqueeze(0).expand(stack.K, *x.shape).clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        grad = _input_grad(stack, adv, y, weight)
        # torchattacks: adv = adv + alpha * sign(grad); delta = clamp(adv - images, -eps, eps);
        # adv = clamp(images + delta, 0, 1) -- the same operations in place (same rounding)
        adv = grad.sign_().mul_(alpha).add_(adv.detach()).sub_(images).clamp_(min=-eps, max=eps)
        adv = adv.add_(images).clamp_(min=0, max=1)
    return adv.detach()


@contextlib.contextmanager
def seeded(seed: int, b: int, device: torch.device) -> Iterator[None]:
    """The global RNG (CPU and ``device``) seeded with ``seed + b`` (the per-batch convention of
    :func:`prunerob.core.attacks.attack_batches`); the caller's RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed) + int(b))
        yield


@dataclass(frozen=True)
class _Call:
    """One packed attack call: evaluation batches ``batch_ids`` = rows ``[lo, hi)`` of the examples."""

    batch_ids: list[int]
    bounds: list[int]
    seed: int
    device: torch.device

    @property
    def lo(self) -> int:
        return self.bounds[self.batch_ids[0]]


def _fgsm_on_stack(stack, xs, ys, spec, weight, call: _Call) -> torch.Tensor:
    return stacked_fgsm(stack, xs, ys, float(spec.eps), weight)


def _pgd_on_stack(stack, xs, ys, spec, weight, call: _Call) -> torch.Tensor:
    e = float(spec.eps)
    noise = None
    if spec.random_start:  # drawn batch by batch as torchattacks draws it: empty_like(images).uniform_
        parts = []
        for b in call.batch_ids:
            with seeded(call.seed, b, call.device):
                lo, hi = call.bounds[b] - call.lo, call.bounds[b + 1] - call.lo
                parts.append(torch.empty_like(xs[lo:hi]).uniform_(-e, e))
        noise = torch.cat(parts)
    return stacked_pgd(stack, xs, ys, e, float(spec.alpha), int(spec.steps), bool(spec.random_start),
                       noise=noise, weight=weight)


#: Attacks implemented on the stack: name -> ``f(stack, x, y, spec, loss_weight, call) -> x_adv``.
#: Only specs with ``restarts == 1`` take this path (:func:`stackable`).
STACKED_ATTACKS: dict[str, Callable] = {"fgsm": _fgsm_on_stack, "pgd": _pgd_on_stack}


def stackable(spec) -> bool:
    """True when the attack ``spec`` (an :class:`prunerob.core.attacks.AttackSpec`) runs on the stack."""
    return (spec.name in STACKED_ATTACKS and (getattr(spec, "restarts", None) or 1) == 1
            and getattr(spec, "precision", "fp32") == "fp32")


def memory_plan(linears: Sequence[nn.Linear], batch_size: int, n: int, device: torch.device,
                dtype: torch.dtype, n_keeps: int, budget: int | None = None) -> tuple[int, int]:
    """``(K, batches_per_call)``: how many pruned copies to stack and how many evaluation batches
    to pack into one attack call so that weights + activations fit ``budget`` bytes (default: a
    third of the free GPU memory; 256 MiB on the CPU, where large tensors only cost cache misses).
    Packing batches changes nothing in the results (random starts are still drawn batch by
    batch, the loss keeps each batch's 1/B)."""
    elem = torch.empty((), dtype=dtype).element_size()
    if budget is None:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's cache
            budget = free // 3
        else:
            budget = 256 << 20
    w_copy = sum(lin.weight.numel() + lin.out_features for lin in linears) * elem
    # per (copy, example): input-sized tensors (adv, grad, normalised input, temporaries) + activations
    ex_copy = (8 * linears[0].in_features + 4 * sum(lin.out_features for lin in linears)) * elem
    k = max(1, min(n_keeps, int((budget // 2) // max(w_copy + batch_size * ex_copy, 1))))
    n_batches = -(-n // batch_size)
    per_batch = k * batch_size * ex_copy
    m = max(1, min(n_batches, int((budget - k * w_copy) // max(per_batch, 1))))
    return k, m


def run_stacked(model: nn.Module, plan: MLPPlan, keeps: Sequence[float],
                masks_for: Callable[[float], Mapping[str, torch.Tensor]],
                specs: Mapping[tuple[str, float], Any],
                x: torch.Tensor, y: torch.Tensor, *, seed: int, batch_size: int,
                to_float: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
                memory_budget: int | None = None) -> dict[float, dict]:
    """Per-example correctness for all ``keeps`` of one method at once (attacks in ``specs``).

    ``masks_for(keep)`` gives the masks; ``specs`` maps ``(attack, eps)`` to a stackable spec.
    Returns ``{keep: {"masks": masks, "clean": bool[n], "adv": {(attack, eps): bool[n]}}}``
    (CPU tensors in evaluation order). Several evaluation batches are packed into one call
    (:func:`memory_plan`); each batch's PGD start is still drawn with its own seed and shape.
    """
    n = int(y.shape[0])
    dtype = next(model.parameters()).dtype
    out: dict[float, dict] = {}
    group, per_call = memory_plan(plan.linears, batch_size, n, device, dtype, len(keeps), memory_budget)
    bounds = list(range(0, n, batch_size)) + [n]  # evaluation batch b = [bounds[b], bounds[b+1])
    calls = [_Call(list(range(i, min(i + per_call, len(bounds) - 1))), bounds, seed, device)
             for i in range(0, len(bounds) - 1, per_call)]
    for g0 in range(0, len(keeps), group):
        gkeeps = list(keeps[g0:g0 + group])
        ws, bs, masks_l = [], [], []
        for keep in gkeeps:
            masks = masks_for(keep)
            masks_l.append(masks)
            lin = list(apply_masks(model, masks).linear_layers())  # exactly the loop path's weights
            ws.append([m.weight.detach() for m in lin])
            bs.append([None if m.bias is None else m.bias.detach() for m in lin])
        stack = stack_of(plan, ws, bs)
        del ws, bs
        clean: list[torch.Tensor] = []
        adv: dict[tuple[str, float], list[torch.Tensor]] = {k: [] for k in specs}
        for call in calls:
            lo, hi = bounds[call.batch_ids[0]], bounds[call.batch_ids[-1] + 1]
            xs, ys = to_float(x[lo:hi]), y[lo:hi]
            weight = torch.cat([torch.full((bounds[b + 1] - bounds[b],), 1.0 / (bounds[b + 1] - bounds[b]),
                                           dtype=dtype, device=device) for b in call.batch_ids])
            with torch.no_grad():
                clean.append((stack(xs).argmax(-1) == ys).cpu())
            for key, spec in specs.items():
                xa = STACKED_ATTACKS[spec.name](stack, xs, ys, spec, weight, call)
                with torch.no_grad():
                    adv[key].append((stack(xa).argmax(-1) == ys).cpu())
                del xa
        clean_t = torch.cat(clean, dim=1)
        adv_t = {k: torch.cat(v, dim=1) for k, v in adv.items()}
        for i, keep in enumerate(gkeeps):
            out[keep] = dict(masks=masks_l[i], clean=clean_t[i], adv={k: v[i] for k, v in adv_t.items()})
        del stack
    return out
