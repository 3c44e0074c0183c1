"""AutoAttack (App. I): ``torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
n_classes=n_classes, seed=seed)``, unchanged (APGD-CE, APGD-T, FAB-T, Square with 5000 queries)."""
from __future__ import annotations

import torch.nn as nn
import torchattacks

from prunerob.config import format_eps
from prunerob.core.attacks.base import AttackDef, AttackFn, register_attack
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["AutoAttack"]


@register_attack("autoattack")
class AutoAttack(AttackDef):
    """Parameter-free; built at the first call, when the number of classes is read from the logits."""

    label = "AutoAttack"
    stronger_than = ("fgsm", "pgd", "cw")
    kind = "ensemble"
    help = "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square (torchattacks; needs >= 4 classes)"
    fixed = {"steps": None, "alpha": None, "restarts": None, "kappa": None, "random_start": None}
    min_classes = 4
    classes_note = " (standard: APGD-T / FAB-T use the 4 largest logits)"
    build_at_first_call = True

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return torchattacks.AutoAttack(model, norm=spec.norm, eps=spec.eps, version="standard",
                                       n_classes=spec.n_classes, seed=spec.seed)

    def describe(self, spec: AttackSpec) -> str:
        nc = "from logits" if spec.n_classes is None else str(spec.n_classes)
        return (
            f"AutoAttack-{spec.norm} standard (APGD-CE, APGD-T, FAB-T, Square; torchattacks), "
            f"eps={format_eps(spec.eps)}, n_classes={nc}, seed {spec.seed}"
        )
