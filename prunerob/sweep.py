"""Sweeps of a trained model over keep ratios x pruning methods x attacks x budgets (Sec. 6.3).

This produces the data behind Figure 2 (clean and FGSM-attacked accuracy of magnitude-pruned
models as the keep probability ``p`` varies), Figure 3 (score-based / Taylor pruning of a ViT)
and the PGD / CW / AutoAttack variants of Appendix H, with the attack settings of Appendix I
(FGSM and PGD at eps = 4/255, FGSM also at 8/255, PGD with 5 steps).

Every configuration is evaluated on the SAME examples: the first ``n`` of a fixed, seeded
permutation of the evaluation split (``subset_seed``, default 0, independent of the sweep seed,
so that ``n=500`` is a prefix of ``n=1000``). The chosen examples are recorded in the
``eval_subset`` column.

Randomness. Masks use ``make_masks(..., seed=seed)`` (Taylor scores, App. I, are computed once
per sweep on 20 training batches and thresholded per keep ratio, which gives the same masks). Before every attack call on batch ``i``
the global torch RNG (CPU and CUDA) is seeded with ``seed + i`` inside ``torch.random.fork_rng``
(the convention of :func:`prunerob.attacks.attack_batches`; the caller's RNG state is left
untouched). PGD's random start, drawn by torchattacks from the global RNG, is therefore the
same for every keep ratio, every method and both execution paths (common random numbers).

Two execution paths give the same numbers (exactly in float64; in float32 the two matrix-product
kernels round differently, so an argmax or gradient-sign tie can in rare cases go the other way):

* ``loop``: for each (method, keep) the pruned copy ``apply_masks(model, masks)`` is attacked with
  :func:`prunerob.attacks.make_attack` (torchattacks FGSM / PGD / AutoAttack, our CW).
* ``batched`` (MLPs only, FGSM and PGD only): all keep ratios of one method are stacked into
  ``[K, out, in]`` weight tensors and run as one batched model (``torch.baddbmm``) on inputs of
  shape ``[K, B, ...]`` (several evaluation batches are packed into one call when memory allows,
  :data:`MEMORY_BUDGET`); FGSM and PGD are re-implemented on the stack, step for step as in
  torchattacks 3.5.1 (same random start, same loss, same step, projection and clamp).
  The loss is ``sum_k CE_mean(copy k)``: copy k's input only influences copy k's logits, so the
  gradient with respect to copy k's input equals torchattacks' gradient for that copy.
  ``tests/test_sweep.py`` checks the two paths agree. (:class:`prunerob.attacks.Attack` projects
  torchattacks' output once more onto the eps-ball and [0, 1]; for FGSM and PGD outputs that
  projection is exactly the identity, since rounding is monotone, so the batched path omits it.)

The results table is tidy: one row per (method, keep_ratio, attack, eps) for one seed; see
:data:`BASE_COLUMNS`. Accuracies are fractions in [0, 1].
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import (
    ConfigError,
    atomic_write_text,
    check_choice,
    check_keep,
    config_hash,
    format_eps,
    parse_eps,
    parse_list,
    provenance,
    resolve_device,
)

#: Attacks implemented on the stacked (batched) MLP.
BATCHABLE_ATTACKS = ("fgsm", "pgd")
#: Pruning methods whose masks need training data (gradient scores).
DATA_METHODS = ("taylor",)
#: Columns every sweep table has (attack parameter and provenance columns come in addition).
BASE_COLUMNS = (
    "model", "dataset", "method", "keep_ratio", "attack", "eps", "eps_label", "seed", "n",
    "clean_acc", "adv_acc", "clean_correct", "adv_correct", "achieved_keep", "path",
    "eval_split", "eval_subset", "config_hash",
)
BATCHED_CHOICES = ("auto", "yes", "no")
#: Memory budget in bytes of the batched path (None: a third of the free GPU memory, 256 MiB on
#: the CPU). It decides how many pruned copies are stacked and how many evaluation batches are
#: packed into one call; the results do not depend on it.
MEMORY_BUDGET: int | None = None


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
#: AttackSpec fields a user may override per attack (``attack_overrides``).
_SPEC_FIELDS = ("steps", "alpha", "restarts", "seed", "kappa", "n_classes", "random_start")


def _to_list(value: Any, conv: Callable, name: str) -> list:
    """``"a,b"`` / scalar / sequence -> list with ``conv`` applied (ConfigError on failure or empty)."""
    if isinstance(value, str):
        return parse_list(value, conv, name)
    if isinstance(value, (int, float)):
        value = [value]
    return parse_list(list(value), conv, name)


def validate_sweep_args(
    *,
    model_name: str,
    dataset_name: str,
    methods: str | Sequence[str],
    keeps: str | Sequence[float],
    attacks: str | Sequence[str],
    eps: str | Sequence[float | str],
    seed: int = 0,
    n: int | None = None,
    batch_size: int = 500,
    batched: str | bool = "auto",
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check every sweep argument and return them normalised (lists, floats, ``batched`` string).

    Raises :class:`ConfigError` naming the parameter and the allowed values. Called by
    :func:`run_sweep` and by ``prunerob sweep`` before any training, attacking or writing.
    """
    from prunerob.attacks import ATTACKS, AttackSpec
    from prunerob.data import DATASETS
    from prunerob.models import ARCHS, MLP_HIDDEN
    from prunerob.pruning import METHODS

    check_choice("model", model_name, ARCHS)
    check_choice("dataset", dataset_name, DATASETS)
    methods_l = [check_choice("method", m, METHODS) for m in _to_list(methods, str, "method")]
    attacks_l = [check_choice("attack", a, ATTACKS) for a in _to_list(attacks, str, "attack")]
    keeps_l = [check_keep(k, "keep") for k in _to_list(keeps, float, "keep")]
    eps_l = _to_list(eps, parse_eps, "eps")
    for name, values in (("method", methods_l), ("attack", attacks_l), ("keep", keeps_l), ("eps", eps_l)):
        if len(set(values)) != len(values):
            raise ConfigError(f"{name} has duplicate values: {values}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be an integer >= 0")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"n={n!r} must be a positive integer (number of evaluation examples) or None for all")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive integer")
    batched = {True: "yes", False: "no"}.get(batched, batched) if isinstance(batched, bool) else batched
    check_choice("batched", str(batched), BATCHED_CHOICES)
    if batched == "yes":
        bad = [a for a in attacks_l if a not in BATCHABLE_ATTACKS]
        if bad:
            raise ConfigError(
                f"batched='yes' supports only the attacks {', '.join(BATCHABLE_ATTACKS)}, not {', '.join(bad)}; "
                "use batched='auto' (those attacks then take the per-ratio loop)")
        if model_name not in MLP_HIDDEN:
            raise ConfigError(f"batched='yes' needs an MLP ({', '.join(MLP_HIDDEN)}), not model={model_name!r}; "
                              "use batched='auto' or 'no'")
    overrides = {} if attack_overrides is None else attack_overrides
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"attack_overrides must be a dict {{attack: {{parameter: value}}}}, got {overrides!r}")
    for a, ov in overrides.items():
        check_choice("attack_overrides key", a, ATTACKS)
        if not isinstance(ov, Mapping):
            raise ConfigError(f"attack_overrides[{a!r}] must be a dict of attack parameters, got {ov!r}")
        bad = sorted(set(ov) - set(_SPEC_FIELDS))
        if bad:
            raise ConfigError(f"attack_overrides[{a!r}]: unknown parameter(s) {', '.join(bad)}; "
                              f"allowed: {', '.join(_SPEC_FIELDS)}")
        for e in eps_l:
            spec = AttackSpec(name=a, eps=e, **{"seed": seed, **ov})  # raises ConfigError for bad values
            if batched == "yes" and (spec.restarts or 1) != 1:
                raise ConfigError(f"batched='yes' runs {a} with restarts=1 only, got restarts={spec.restarts}; "
                                  "use batched='auto' or 'no'")
    return dict(methods=methods_l, keeps=keeps_l, attacks=attacks_l, eps=eps_l, batched=str(batched),
                attack_overrides={a: dict(ov) for a, ov in overrides.items()})


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def batch_seed(seed: int, batch_index: int) -> int:
    """Seed of the global torch RNG before attacking batch ``batch_index``: ``seed + batch_index``.

    The same convention as :func:`prunerob.attacks.attack_batches`, so a sweep row can be
    cross-checked with ``attack_batches(spec(seed=seed), pruned_model, (x, y), batch_size)``.
    """
    return int(seed) + int(batch_index)


def state_hash(model: nn.Module, n: int = 16) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:n]


def select_examples(data: Any, n: int | None, subset_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The first ``n`` examples of a fixed permutation (``subset_seed``) of ``data``.

    Returns ``(x uint8 [n, C, H, W], y int64 [n], description)``; with ``n=None`` or ``n >= len``
    all examples are used in their stored order. The permutation does not depend on ``n``, so
    a smaller ``n`` evaluates a prefix of a larger one.
    """
    x, y = data.x, data.y
    total = int(y.shape[0])
    if n is None or n >= total:
        return x, y, f"all {total} in stored order"
    g = torch.Generator().manual_seed(int(subset_seed))
    idx = torch.randperm(total, generator=g)[:n]
    digest = hashlib.sha256(idx.numpy().tobytes()).hexdigest()[:10]
    idx = idx.to(x.device)
    return x[idx], y[idx], f"randperm(seed={subset_seed})[:{n}] of {total} (index sha256 {digest})"


def _achieved_keep(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of prunable weights kept by ``masks`` (the realised keep ratio)."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept / total if total else 1.0


# --------------------------------------------------------------------------------------------
# batched MLP
# --------------------------------------------------------------------------------------------
_PASS = (nn.Dropout, nn.Identity)
_ACTS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


def _mlp_plan(model: nn.Module) -> tuple[list[nn.Module], list[nn.Linear], list[Callable]] | None:
    """``(pre_modules, linears, activations)`` if ``model`` is pre -> (Linear -> act)* -> Linear.

    ``pre_modules`` are the leaf modules before the first Linear (Normalize, Flatten), applied
    per example; ``act`` is ReLU (or tanh). Returns None for any other structure (the sweep then
    takes the loop path). :func:`_check_stack` verifies the plan numerically before use.
    """
    if not callable(getattr(model, "linear_layers", None)):
        return None
    linears = list(model.linear_layers())
    if not linears or not all(isinstance(l, nn.Linear) for l in linears):
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
    return pre, linears, acts


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
        for i, (wt, b) in enumerate(zip(self.wt, self.b)):
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


def _stacked_loss(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """``sum_k sum_i weight_i * CE(logits[k, i], y_i)`` with ``weight_i = 1 / (size of i's batch)``.

    This is torchattacks' loss (``nn.CrossEntropyLoss()``, mean over the batch) summed over the
    copies and over the evaluation batches packed into one call. Copy k's logits for example i
    depend only on copy k's input i, so ``d loss / d x[k, i]`` is exactly the gradient
    torchattacks computes for that example (even the 1/B scale of the mean is kept).
    """
    K, S, C = logits.shape
    ce = F.cross_entropy(logits.reshape(K * S, C), y.repeat(K), reduction="none").view(K, S)
    return (ce * weight).sum()


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


def _input_grad(stack: StackedMLP, adv: torch.Tensor, y: torch.Tensor, weight) -> torch.Tensor:
    (grad,) = torch.autograd.grad(_stacked_loss(stack(adv), y, weight), adv)
    return grad if grad.is_contiguous() else grad.contiguous()  # a private buffer we may overwrite


def stacked_pgd(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
                random_start: bool = True, noise: torch.Tensor | None = None,
                weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """torchattacks 3.5.1 ``PGD`` on every copy with one random start shared by all copies.

    The start is ``clamp(x + noise, 0, 1)`` with ``noise = torch.empty_like(x).uniform_(-eps, eps)``
    drawn from the global RNG as torchattacks draws it (pass ``noise`` to supply it, e.g. drawn
    batch by batch); then ``steps`` times
    ``x' <- clamp(x + clamp(x' + alpha * sign(grad) - x, -eps, eps), 0, 1)``.
    ``weight``: per-example loss weight (default ``1/B``, torchattacks' mean).
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


def batchable(model: nn.Module) -> bool:
    """True when ``model`` has the plain MLP structure the batched path supports."""
    return _mlp_plan(model) is not None


def _stack_of(plan, models_weights: Sequence[Sequence[torch.Tensor]], models_biases) -> StackedMLP:
    pre, _, acts = plan
    n_layers = len(models_weights[0])
    ws = [torch.stack([mw[i] for mw in models_weights]) for i in range(n_layers)]
    bs = [None if models_biases[0][i] is None else torch.stack([mb[i] for mb in models_biases])
          for i in range(n_layers)]
    return StackedMLP(pre, acts, ws, bs)


def _check_stack(model: nn.Module, plan, x: torch.Tensor) -> bool:
    """Numerical check that the stacked forward of the unpruned model equals ``model(x)``."""
    linears = plan[1]
    stack = _stack_of(plan, [[l.weight.detach() for l in linears]],
                      [[None if l.bias is None else l.bias.detach() for l in linears]])
    with torch.no_grad():
        ref = model(x)
        got = stack(x)[0]
    tol = 1e-4 if ref.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-9
    return ref.shape == got.shape and bool(torch.allclose(ref, got, rtol=tol, atol=tol))


def _memory_plan(linears: Sequence[nn.Linear], batch_size: int, n: int, device: torch.device,
                 dtype: torch.dtype, n_keeps: int, budget: int | None = None) -> tuple[int, int]:
    """``(K, batches_per_call)``: how many pruned copies to stack and how many evaluation batches
    to pack into one attack call so that weights + activations fit ``budget`` bytes (default: a
    third of the free GPU memory; 256 MiB on the CPU, where large tensors only cost cache misses:
    CPU time is dominated by the matrix products either way). Packing batches changes nothing in the
    results (random starts are still drawn batch by batch, the loss keeps each batch's 1/B)."""
    elem = torch.empty((), dtype=dtype).element_size()
    if budget is None:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's cache
            budget = free // 3
        else:
            budget = 256 << 20
    w_copy = sum(l.weight.numel() + l.out_features for l in linears) * elem
    # per (copy, example): input-sized tensors (adv, grad, normalised input, temporaries) + activations
    ex_copy = (8 * linears[0].in_features + 4 * sum(l.out_features for l in linears)) * elem
    k = max(1, min(n_keeps, int((budget // 2) // max(w_copy + batch_size * ex_copy, 1))))
    n_batches = -(-n // batch_size)
    per_batch = k * batch_size * ex_copy
    m = max(1, min(n_batches, int((budget - k * w_copy) // max(per_batch, 1))))
    return k, m


# --------------------------------------------------------------------------------------------
# the two execution paths
# --------------------------------------------------------------------------------------------
def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, dtype: torch.dtype):
    """``(index, x float in [0, 1], y)`` batches in order (as ``ArrayDataset.batches``)."""
    for b, start in enumerate(range(0, int(y.shape[0]), batch_size)):
        xb = x[start:start + batch_size].to(dtype).div_(255.0)
        yield b, xb, y[start:start + batch_size]


@contextlib.contextmanager
def _seeded(seed: int, b: int, device: torch.device):
    """The global RNG (CPU and ``device``) seeded with :func:`batch_seed`; the caller's state is restored."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(batch_seed(seed, b))
        yield


def _run_batched(model, plan, method, keeps, attacks, eps_list, specs, x, y, *, seed, batch_size, dtype,
                 device, mask_fn, memory_budget=None) -> dict[float, dict]:
    """Correct counts for all ``keeps`` of ``method`` at once with :class:`StackedMLP` (FGSM/PGD).

    Several evaluation batches are packed into one call (:func:`_memory_plan`); each batch's
    PGD start is still drawn with its own seed and shape, exactly as torchattacks draws it.
    """
    from prunerob.pruning import apply_masks

    n = int(y.shape[0])
    out: dict[float, dict] = {}
    group, per_call = _memory_plan(plan[1], batch_size, n, device, dtype, len(keeps), memory_budget)
    bounds = list(range(0, n, batch_size)) + [n]  # evaluation batch b = [bounds[b], bounds[b+1])
    calls = [list(range(i, min(i + per_call, len(bounds) - 1))) for i in range(0, len(bounds) - 1, per_call)]
    for g0 in range(0, len(keeps), group):
        gkeeps = keeps[g0:g0 + group]
        ws, bs, achieved = [], [], []
        for keep in gkeeps:
            masks = mask_fn(method, keep)
            achieved.append(_achieved_keep(masks))
            lin = list(apply_masks(model, masks).linear_layers())  # exactly the loop path's weights
            ws.append([l.weight.detach() for l in lin])
            bs.append([None if l.bias is None else l.bias.detach() for l in lin])
        stack = _stack_of(plan, ws, bs)
        del ws, bs
        clean = torch.zeros(stack.K, dtype=torch.long, device=device)
        adv = {(a, e): torch.zeros(stack.K, dtype=torch.long, device=device) for a in attacks for e in eps_list}
        for batch_ids in calls:
            lo, hi = bounds[batch_ids[0]], bounds[batch_ids[-1] + 1]
            xs = x[lo:hi].to(dtype).div_(255.0)
            ys = y[lo:hi]
            weight = torch.cat([torch.full((bounds[b + 1] - bounds[b],), 1.0 / (bounds[b + 1] - bounds[b]),
                                           dtype=dtype, device=device) for b in batch_ids])
            with torch.no_grad():
                clean += (stack(xs).argmax(-1) == ys).sum(-1)
            for a in attacks:
                for e in eps_list:
                    if a == "fgsm":
                        xa = stacked_fgsm(stack, xs, ys, e, weight)
                    else:
                        s = specs[(a, e)]
                        noise = None
                        if s.random_start:
                            parts = []
                            for b in batch_ids:
                                with _seeded(seed, b, device):  # torchattacks: empty_like(images).uniform_
                                    parts.append(torch.empty_like(xs[bounds[b] - lo:bounds[b + 1] - lo]).uniform_(-e, e))
                            noise = torch.cat(parts)
                        xa = stacked_pgd(stack, xs, ys, e, float(s.alpha), int(s.steps), bool(s.random_start),
                                         noise=noise, weight=weight)
                    with torch.no_grad():
                        adv[(a, e)] += (stack(xa).argmax(-1) == ys).sum(-1)
                    del xa
        clean_l = clean.tolist()
        adv_l = {k: v.tolist() for k, v in adv.items()}
        for i, keep in enumerate(gkeeps):
            out[keep] = dict(achieved_keep=achieved[i], clean_correct=clean_l[i],
                             adv={k: v[i] for k, v in adv_l.items()})
        del stack
    return out


def _run_loop(model, method, keep, attacks, eps_list, specs, x, y, *, seed, batch_size, dtype, device,
              mask_fn) -> dict:
    """Correct counts of one pruned copy attacked with :func:`prunerob.attacks.make_attack`."""
    from prunerob.attacks import make_attack
    from prunerob.pruning import apply_masks

    masks = mask_fn(method, keep)
    pruned = apply_masks(model, masks).eval()
    atks = {(a, e): make_attack(specs[(a, e)], pruned, e) for a in attacks for e in eps_list}
    clean = torch.zeros((), dtype=torch.long, device=device)
    adv = {k: torch.zeros((), dtype=torch.long, device=device) for k in atks}
    for b, xb, yb in _batches(x, y, batch_size, dtype):
        with torch.no_grad():
            clean += (pruned(xb).argmax(-1) == yb).sum()
        for key, atk in atks.items():
            with _seeded(seed, b, device):
                xa = atk(xb, yb)
            with torch.no_grad():
                adv[key] += (pruned(xa).argmax(-1) == yb).sum()
    return dict(achieved_keep=_achieved_keep(masks), clean_correct=int(clean),
                adv={k: int(v) for k, v in adv.items()})


# --------------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------------
def _read_partial(path: Path, chash: str, keeps: Sequence[float], methods: Sequence[str],
                  n_per_chunk: int) -> dict[tuple[str, float], list[dict]]:
    """Finished (method, keep) chunks of an interrupted run with the same ``config_hash``."""
    if not path.exists():
        return {}
    try:
        df = pd.read_csv(path)
    except Exception:  # unreadable partial file: start over
        warnings.warn(f"ignoring unreadable partial results {path}")
        return {}
    if "config_hash" not in df.columns or not len(df):
        return {}
    df = df[df["config_hash"].astype(str) == chash]
    done: dict[tuple[str, float], list[dict]] = {}
    for method in methods:
        for keep in keeps:
            sel = df[(df["method"] == method) & ((df["keep_ratio"] - keep).abs() < 1e-12)]
            if len(sel) == n_per_chunk:
                rows = sel.to_dict("records")
                for r in rows:
                    r["keep_ratio"] = keep
                done[(method, keep)] = rows
    return done


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------
def run_sweep(
    model: nn.Module,
    data: Any,
    *,
    model_name: str,
    dataset_name: str,
    methods: str | Sequence[str],
    keeps: str | Sequence[float],
    attacks: str | Sequence[str],
    eps: str | Sequence[float | str],
    seed: int = 0,
    n: int | None = None,
    batch_size: int = 500,
    device: str | torch.device = "auto",
    train_data: Any = None,
    batched: str | bool = "auto",
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    extra_columns: Mapping[str, Any] | None = None,
    subset_seed: int = 0,
    partial: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Clean and adversarial accuracy of ``model`` pruned by each method at each keep ratio (Sec. 6.3).

    Args:
        model: trained model (inputs in [0, 1], starts with Normalize); never modified. Its
            parameter dtype is used for the evaluation (float64 models are evaluated in float64).
        data: evaluation ``ArrayDataset``; the first ``n`` of a ``subset_seed`` permutation are used.
        model_name, dataset_name: labels, checked against ``models.ARCHS`` / ``data.DATASETS``.
        methods: pruning methods (``pruning.METHODS``), list or ``"magnitude,random"``.
        keeps: keep ratios in [0, 1] (the paper's p: fraction of weights KEPT).
        attacks: ``attacks.ATTACKS`` names; eps: budgets in [0, 1] pixel units (``"4/255"`` ok).
        seed: mask seed, ``AttackSpec.seed`` and base of the per-batch RNG seed ``seed + batch``.
        n: number of evaluation examples (None: all).
        batch_size: evaluation batch; PGD's random start is drawn per batch, so it is part of the config.
        device: ``auto`` / ``cpu`` / ``cuda``; the model is copied there if it lives elsewhere.
        train_data: training data for score-based masks (``taylor``, App. I: 20 batches); required then.
        batched: ``auto`` (stacked MLP for FGSM/PGD when the model is a plain MLP, loop for the
            rest), ``yes`` (error if impossible) or ``no`` (loop only).
        attack_overrides: ``{attack: {param: value}}``, e.g. ``{"pgd": {"steps": 10}}``
            (:class:`prunerob.attacks.AttackSpec` fields).
        progress: tqdm bar over (method, keep) chunks.
        out: CSV path written atomically at the end. Finished (method, keep) chunks are kept in
            ``<out>.partial.csv`` (or ``partial``) and skipped when rerun with the same
            config_hash; the partial file is removed once ``out`` is written.
        extra_columns: constant columns added to every row (e.g. the training config hash).
        subset_seed: permutation seed choosing the evaluation examples (independent of ``seed``).
        partial: explicit path of the resume file (default ``<out>.partial.csv``; None without out).

    Returns:
        Tidy DataFrame, one row per (method, keep_ratio, attack, eps); see :data:`BASE_COLUMNS`,
        plus ``AttackSpec.as_columns()``, ``config.provenance(device)`` and ``extra_columns``.
        ``config_hash`` hashes every argument that affects the numbers plus the model's state hash.
    """
    args = validate_sweep_args(model_name=model_name, dataset_name=dataset_name, methods=methods, keeps=keeps,
                               attacks=attacks, eps=eps, seed=seed, n=n, batch_size=batch_size,
                               batched=batched, attack_overrides=attack_overrides)
    methods_l, attacks_l, eps_l, overrides = args["methods"], args["attacks"], args["eps"], args["attack_overrides"]
    if isinstance(subset_seed, bool) or not isinstance(subset_seed, int):
        raise ConfigError(f"subset_seed={subset_seed!r} must be an integer")
    need_data = [m for m in methods_l if m in DATA_METHODS]
    if need_data and train_data is None:
        raise ConfigError(f"method={need_data[0]!r} scores weights on training batches (App. I): pass train_data")
    for name, d in (("data", data), ("train_data", train_data)):
        if d is not None and not (hasattr(d, "x") and hasattr(d, "y")):
            raise ConfigError(f"{name} must be an ArrayDataset (with x uint8 [N, C, H, W] and y), got {type(d).__name__}")
    dev = resolve_device(device)
    from prunerob.attacks import AttackSpec

    specs = {(a, e): AttackSpec(name=a, eps=e, **{"seed": seed, **overrides.get(a, {})})
             for a in attacks_l for e in eps_l}

    params = list(model.parameters())
    caller_model, caller_training = model, model.training
    if params and params[0].device != dev:
        import copy

        model = copy.deepcopy(model).to(dev)
    model.eval()
    try:
        return _sweep(model, data, train_data, dev, params, args, specs, model_name=model_name,
                      dataset_name=dataset_name, seed=seed, n=n, batch_size=batch_size, progress=progress, out=out,
                      extra_columns=extra_columns, subset_seed=subset_seed, partial=partial)
    finally:
        caller_model.train(caller_training)


def _sweep(model, data, train_data, dev, params, args, specs, *, model_name, dataset_name, seed, n, batch_size,
           progress, out, extra_columns, subset_seed, partial) -> pd.DataFrame:
    """The body of :func:`run_sweep` after validation (``model`` on ``dev`` in eval mode)."""
    methods_l, keeps_l, attacks_l, eps_l = args["methods"], args["keeps"], args["attacks"], args["eps"]
    batched_s = args["batched"]
    dtype = params[0].dtype if params else torch.float32

    x_all, y_all, subset_desc = select_examples(data, n, subset_seed)
    x_all, y_all = x_all.to(dev), y_all.to(dev)
    n_eff = int(y_all.shape[0])
    plan = _mlp_plan(model) if batched_s != "no" else None
    if plan is not None and not _check_stack(model, plan, x_all[: min(64, n_eff)].to(dtype) / 255.0):
        plan = None
    if batched_s == "yes" and plan is None:
        raise ConfigError(f"batched='yes' but the {model_name!r} model is not a plain Linear/ReLU MLP; use batched='auto'")
    # PGD with restarts > 1 is left to the loop (torchattacks' restarts are handled by attacks.Attack)
    batched_attacks = [a for a in attacks_l if a in BATCHABLE_ATTACKS
                       and all((specs[(a, e)].restarts or 1) == 1 for e in eps_l)] if plan is not None else []
    if batched_s == "yes" and len(batched_attacks) != len(attacks_l):
        raise ConfigError("batched='yes' runs FGSM and PGD with restarts=1 only; use batched='auto'")
    loop_attacks = [a for a in attacks_l if a not in batched_attacks]

    train_fp = None
    if train_data is not None:
        train_fp = dict(name=getattr(train_data, "name", None), split=getattr(train_data, "split", None),
                        size=int(train_data.y.shape[0]))
    eval_split = getattr(data, "split", None)
    hash_cfg = dict(model=model_name, dataset=dataset_name, methods=methods_l, keeps=keeps_l, attacks=attacks_l,
                    eps=eps_l, seed=seed, n=n, n_eff=n_eff, subset=subset_desc, subset_seed=subset_seed,
                    eval_split=eval_split, batch_size=batch_size, batched=batched_s,
                    attack_specs=[dict(name=s.name, eps=s.eps, **s.as_columns()) for s in specs.values()],
                    device=dev.type, train_data=train_fp, dtype=str(dtype),
                    extra_columns=dict(extra_columns or {}), model_state=state_hash(model))
    chash = config_hash(hash_cfg)
    prov = provenance(dev)

    partial_path: Path | None = Path(partial) if partial is not None else (
        Path(str(out) + ".partial.csv") if out is not None else None)
    n_per_chunk = len(attacks_l) * len(eps_l)
    done = _read_partial(partial_path, chash, keeps_l, methods_l, n_per_chunk) if partial_path else {}
    if partial_path is not None and partial_path.exists() and not done:
        partial_path.unlink()  # left over from another configuration

    taylor_cache: dict[str, Any] = {}

    def mask_fn(method: str, keep: float):
        from prunerob.pruning import make_masks, score_masks, taylor_scores

        if method == "taylor":  # scores once per sweep (as make_masks computes them), then top-k per keep
            if "scores" not in taylor_cache:
                taylor_cache["scores"] = taylor_scores(model, train_data, n_batches=20, seed=seed)
            return score_masks(taylor_cache["scores"], keep, scope="layer")
        return make_masks(method, model, keep, seed=seed)

    def rows_for(method: str, keep: float, res: dict) -> list[dict]:
        rows = []
        for a in attacks_l:
            for e in eps_l:
                row = dict(model=model_name, dataset=dataset_name, method=method, keep_ratio=keep, attack=a,
                           eps=e, eps_label=format_eps(e), seed=seed, n=n_eff,
                           clean_acc=res["clean_correct"] / n_eff, adv_acc=res["adv"][(a, e)] / n_eff,
                           clean_correct=res["clean_correct"], adv_correct=res["adv"][(a, e)],
                           achieved_keep=res["achieved_keep"],
                           path="batched" if a in batched_attacks else "loop",
                           eval_split=eval_split, eval_subset=subset_desc)
                row.update(specs[(a, e)].as_columns())
                row.update(prov)
                row["config_hash"] = chash
                row.update(dict(extra_columns or {}))
                rows.append(row)
        return rows

    def save_partial() -> None:
        if partial_path is not None:
            flat = [r for rows in done.values() for r in rows]
            atomic_write_text(partial_path, pd.DataFrame(flat).to_csv(index=False))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(methods_l) * len(keeps_l), initial=len(done), desc=f"sweep {model_name}/{dataset_name} seed {seed}",
               unit="chunk", disable=None if progress else True)
    try:
        for method in methods_l:
            keeps_todo = [k for k in keeps_l if (method, k) not in done]
            if not keeps_todo:
                continue
            results: dict[float, dict] = {k: dict(adv={}) for k in keeps_todo}
            if batched_attacks:
                for k, r in _run_batched(model, plan, method, keeps_todo, batched_attacks, eps_l, specs, x_all,
                                         y_all, seed=seed, batch_size=batch_size, dtype=dtype, device=dev,
                                         mask_fn=mask_fn, memory_budget=MEMORY_BUDGET).items():
                    results[k].update(achieved_keep=r["achieved_keep"], clean_correct=r["clean_correct"])
                    results[k]["adv"].update(r["adv"])
                if not loop_attacks:
                    for k in keeps_todo:
                        done[(method, k)] = rows_for(method, k, results[k])
                    save_partial()
                    bar.update(len(keeps_todo))
                    continue
            for k in keeps_todo:
                r = _run_loop(model, method, k, loop_attacks, eps_l, specs, x_all, y_all, seed=seed,
                              batch_size=batch_size, dtype=dtype, device=dev, mask_fn=mask_fn)
                results[k].setdefault("achieved_keep", r["achieved_keep"])
                results[k].setdefault("clean_correct", r["clean_correct"])
                results[k]["adv"].update(r["adv"])
                done[(method, k)] = rows_for(method, k, results[k])
                save_partial()
                bar.update(1)
    finally:
        bar.close()

    df = pd.DataFrame([r for m in methods_l for k in keeps_l for r in done[(m, k)]])
    if out is not None:
        atomic_write_text(out, df.to_csv(index=False))
    if partial_path is not None and partial_path.exists() and (out is not None):
        partial_path.unlink()
    return df
