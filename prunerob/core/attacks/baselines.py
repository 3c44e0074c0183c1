"""Baseline "attacks" (the controls of a robustness table): no perturbation and random noise.

``none`` returns the input unchanged (``torchattacks.VANILA``): its accuracy is the clean accuracy,
so a sweep that lists it checks the attack pipeline end to end. ``gn`` adds Gaussian noise of
standard deviation eps (``torchattacks.GN``), projected back onto the L-inf ball ``B(x, eps)`` and
``[0, 1]``, so it spends the same budget as the attacks without using a gradient: a gain under a
gradient attack that also shows under ``gn`` is robustness to noise, not to adversaries.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchattacks

from prunerob.config import format_eps
from prunerob.core.attacks.base import AttackDef, AttackFn, project_linf, register_attack
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["GaussianNoise", "NoAttack"]

_FIXED = {"steps": 1, "restarts": 1, "random_start": False, "kappa": None}


@register_attack("none")
class NoAttack(AttackDef):
    """The identity: ``x' = x`` (a sanity baseline; its accuracy equals the clean accuracy)."""

    label = "no attack"
    help = "baseline: the input unchanged (torchattacks.VANILA); accuracy = clean accuracy"
    fixed = _FIXED
    defaults = {"alpha": lambda s: s.eps}
    kind = "baseline"

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return torchattacks.VANILA(model)

    def describe(self, spec: AttackSpec) -> str:
        return "no attack (the input unchanged; a baseline)"


@register_attack("gn")
class GaussianNoise(AttackDef):
    """``x' = proj_{B(x, eps) ∩ [0,1]}(x + eps z)``, ``z ~ N(0, I)`` (seeded per batch)."""

    label = "Gaussian noise"
    help = "baseline: Gaussian noise of std eps projected onto the L-inf eps-ball (torchattacks.GN)"
    fixed = _FIXED
    defaults = {"alpha": lambda s: s.eps}
    kind = "baseline"

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        gn = torchattacks.GN(model, std=spec.eps)

        def attack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return project_linf(gn(x, y), x, spec.eps)

        return attack

    def describe(self, spec: AttackSpec) -> str:
        return f"Gaussian noise, std {format_eps(spec.eps)}, projected onto the L-inf ball of radius " \
               f"{format_eps(spec.eps)} (a baseline)"
