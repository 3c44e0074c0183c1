"""FAB-T, the minimum-norm attack of AutoAttack (Croce & Hein 2020, "Minimally distorted adversarial
examples with a fast adaptive boundary attack"; ``torchattacks.FAB``, L-inf, multi-targeted as in
AutoAttack standard), and the per-example minimal L-inf adversarial distance it finds.

Two uses:

* the registered attack ``fab``: ``torchattacks.FAB(norm="Linf", eps=eps, multi_targeted=True,
  n_restarts=1)`` exactly as AutoAttack standard builds it (10 steps, every other class as a target
  in turn, an example counts as broken at the first target that reaches a point within ``eps``);
* :func:`min_linf_distance`: per example the SMALLEST L-inf distance ``||x' - x||_inf`` of a
  misclassified ``x'`` found over all targets and restarts (torchattacks' ``perturb`` stops at the
  first target that succeeds within ``eps``, which is not the minimum when ``eps`` is large). That
  distance is what the security curve of the Adversarial Pruning Benchmark (Piras et al. 2025)
  plots: the robust accuracy at every budget at once, ``acc(eps) = mean(distance > eps)``.

FAB only finds adversarial points, so its distance is an upper bound on the true minimal distance;
an example it does not break is ``+inf`` (censored), a clean-misclassified example is ``0``. For a
linear classifier FAB's projection step is exact: the minimal L-inf distance of ``x`` to the
hyperplane ``w.x + b = 0`` is ``|w.x + b| / ||w||_1`` (Hölder), the known answer of the tests.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torchattacks

from prunerob.config import ConfigError, format_eps
from prunerob.core.attacks.base import AttackDef, AttackFn, register_attack
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["FAB", "FAB_DEFAULTS", "min_linf_distance"]

#: torchattacks.FAB's own step parameters (the values AutoAttack standard uses)
FAB_DEFAULTS: dict[str, float] = {"alpha_max": 0.1, "eta": 1.05, "beta": 0.9}


@register_attack("fab")
class FAB(AttackDef):
    """FAB-T of AutoAttack standard (torchattacks), bounded by ``eps``; built at the first call, when
    the number of classes is read from the logits."""

    label = "FAB-T"
    help = "FAB-T minimum-norm attack, L-inf, multi-targeted as in AutoAttack standard (torchattacks.FAB)"
    fixed = {"alpha": None, "kappa": None, "random_start": None}
    defaults = {"steps": 10, "restarts": 1}
    min_classes = 2
    build_at_first_call = True

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return torchattacks.FAB(
            model,
            norm=spec.norm,
            eps=spec.eps,
            steps=spec.steps,
            n_restarts=1,
            multi_targeted=True,
            n_classes=spec.n_classes,
            seed=spec.seed,
            **FAB_DEFAULTS,
        )

    def describe(self, spec: AttackSpec) -> str:
        rs = f"{spec.restarts} restart" + ("s" if spec.restarts != 1 else "")
        return (
            f"FAB-T-{spec.norm} (multi-targeted, as in AutoAttack standard; torchattacks), "
            f"eps={format_eps(spec.eps)}, {spec.steps} steps, {rs}, seed {spec.seed}"
        )


def _check(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")
    return int(value)


def min_linf_distance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 100,
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 500,
    eps_max: float = 1.0,
) -> torch.Tensor:
    """Per-example minimal L-inf adversarial distance found by FAB-T (float64, CPU; module docstring).

    ``x`` in [0, 1] (normalisation inside ``model``, in eval mode), ``y`` the labels. Every other
    class is a target in turn (ordered by the clean logits, as AutoAttack's FAB-T), for ``restarts``
    restarts (restart 0 starts at ``x``, later ones at a random point, as torchattacks); per example
    the smallest distance of a point the model misclassifies is kept. ``eps_max`` bounds FAB's random
    start only (1.0: the whole image box). Batch ``b`` runs with the global torch generator seeded
    ``seed + b`` (inside ``fork_rng``, as :func:`prunerob.core.attacks.attack_batches`).
    Returns ``0`` for clean-misclassified examples and ``+inf`` where no target succeeded."""
    steps, restarts = _check("steps", steps, 1), _check("restarts", restarts, 1)
    batch_size = _check("batch_size", batch_size, 1)
    if not 0 < float(eps_max) <= 1:
        raise ConfigError(f"eps_max={eps_max!r} must lie in (0, 1] (pixel units)")
    if model.training:
        raise RuntimeError("model is in training mode; call model.eval() before attacking")
    if x.shape[0] != y.shape[0]:
        raise ConfigError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ConfigError("attack inputs must lie in [0, 1] (normalisation belongs inside the model)")
    dev = next(model.parameters()).device
    out = []
    for b, i in enumerate(range(0, int(x.shape[0]), batch_size)):
        xb, yb = x[i : i + batch_size].detach().to(dev), y[i : i + batch_size].to(dev)
        with torch.no_grad():
            logits = model(xb)
        n_classes = int(logits.shape[1])
        best = torch.full((xb.shape[0],), float("inf"), dtype=torch.float64, device=dev)
        best[logits.argmax(1) != yb] = 0.0
        fab = torchattacks.FAB(
            model,
            norm="Linf",
            eps=float(eps_max),
            steps=steps,
            n_restarts=1,
            multi_targeted=True,
            n_classes=n_classes,
            seed=int(seed),
            **FAB_DEFAULTS,
        )
        fork = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            torch.manual_seed(int(seed) + b)
            for r in range(restarts):
                for target in range(2, n_classes + 1):  # the 2nd, 3rd, ... largest clean logit
                    fab.target_class = target
                    adv = fab.attack_single_run_targeted(xb, yb, use_rand_start=r > 0).detach()
                    with torch.no_grad():
                        fooled = model(adv).argmax(1) != yb
                    d = (adv - xb).abs().flatten(1).amax(1).double()
                    best = torch.where(fooled, torch.minimum(best, d), best)
        if model.training:  # torchattacks may switch modes; leave the caller's eval mode
            model.eval()
        out.append(best.cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
