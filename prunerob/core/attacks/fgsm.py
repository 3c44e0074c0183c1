"""FGSM (App. I: eps = 4/255 and 8/255): ``torchattacks.FGSM``, one signed-gradient step of size eps."""
from __future__ import annotations

import torch.nn as nn
import torchattacks

from prunerob.config import ConfigError, format_eps
from prunerob.core.attacks.base import AttackDef, AttackFn, register_attack
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["FGSM"]


@register_attack("fgsm")
class FGSM(AttackDef):
    """``x' = clip(x + eps sign(grad_x CE))``; steps, restarts and the start are fixed, alpha = eps."""

    label = "FGSM"
    help = "one signed-gradient step of size eps (torchattacks.FGSM)"
    fixed = {"steps": 1, "restarts": 1, "random_start": False, "kappa": None}
    defaults = {"alpha": lambda s: s.eps}

    def check(self, spec: AttackSpec) -> None:
        if abs(spec.alpha - spec.eps) > 1e-12:
            raise ConfigError(f"FGSM takes one step of size eps; alpha={spec.alpha!r} must be None or eps")
        spec.alpha = spec.eps

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return torchattacks.FGSM(model, eps=spec.eps)

    def describe(self, spec: AttackSpec) -> str:
        return f"FGSM-{spec.norm}, eps={format_eps(spec.eps)} (one signed-gradient step of size eps)"
