"""PGD (App. I: 5 iterations): ``torchattacks.PGD`` with a uniform random start and 1 restart.

App. I gives no step size; we use ``alpha = 2.5 * eps / steps`` (= 2/255 at eps = 4/255, the usual
Madry et al. heuristic).
"""
from __future__ import annotations

import torch.nn as nn
import torchattacks

from prunerob.core.attacks.base import AttackDef, AttackFn, iterative_description, register_attack
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["PGD"]


@register_attack("pgd")
class PGD(AttackDef):
    """Projected gradient ascent on the cross-entropy in the L-inf ball (restarts: :class:`Attack`)."""

    label = "PGD"
    stronger_than = ("fgsm",)
    help = "projected gradient ascent, 5 steps of 2.5*eps/steps, random start (torchattacks.PGD; App. I)"
    fixed = {"kappa": None}
    defaults = {"steps": 5, "restarts": 1, "random_start": True, "alpha": lambda s: 2.5 * s.eps / s.steps}

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return torchattacks.PGD(model, eps=spec.eps, alpha=spec.alpha, steps=spec.steps,
                                random_start=spec.random_start)

    def describe(self, spec: AttackSpec) -> str:
        return iterative_description(spec, f"PGD-{spec.norm}")
