"""The L-infinity Carlini-Wagner attack of App. I: "the iterative l_inf-constrained variant, step size
2/255, 10 iterations, confidence margin k = 50".

``torchattacks.CW`` is the *L2 minimal-norm* Carlini-Wagner attack (Adam on a tanh-reparametrised
input, no eps bound), i.e. not what App. I describes, so :class:`CWLinf` implements the bounded
variant: projected sign-gradient descent on the CW margin loss ``f(x) = max(Z_y - max_{i != y}
Z_i, -kappa)``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import ConfigError, parse_eps
from prunerob.core.attacks.base import (
    DEFAULT_EPS,
    AttackDef,
    AttackFn,
    iterative_description,
    project_linf,
    register_attack,
)
from prunerob.core.attacks.spec import AttackSpec

__all__ = ["cw_margin", "CWLinf", "CW"]


def cw_margin(logits: torch.Tensor, y: torch.Tensor, kappa: float = float("inf")) -> torch.Tensor:
    """CW margin ``max(Z_y - max_{i != y} Z_i, -kappa)`` per example (negative = misclassified)."""
    if logits.shape[1] < 2:
        raise ConfigError("the CW margin needs at least 2 classes")
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(z_y - other.max(dim=1).values, min=-kappa)


class CWLinf:
    """L-infinity-bounded Carlini-Wagner attack of App. I (ours; torchattacks' ``CW`` is the
    unbounded L2 minimal-norm attack).

    Minimises the CW margin loss ``f(x') = max(Z_y(x') - max_{i != y} Z_i(x'), -kappa)`` by
    projected sign-gradient descent: ``x' <- Proj_{B_inf(x, eps) ∩ [0,1]^n}(x' - alpha *
    sign(grad f))`` for ``steps`` iterations, starting at ``x`` (or at a uniform point of the
    eps-ball if ``random_start``). Once the margin reaches ``-kappa`` its gradient is 0 and the
    example stops moving. Defaults: kappa = 50, alpha = 2/255, 10 steps (App. I).
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = DEFAULT_EPS,
        alpha: float = 2 / 255,
        steps: int = 10,
        kappa: float = 50.0,
        random_start: bool = False,
    ) -> None:
        self.model = model
        self.eps = parse_eps(eps)
        self.alpha = float(alpha)
        self.steps = int(steps)
        self.kappa = float(kappa)
        self.random_start = bool(random_start)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        x_adv = x.clone()
        if self.random_start:
            x_adv = project_linf(x_adv + torch.empty_like(x_adv).uniform_(-self.eps, self.eps), x, self.eps)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            loss = cw_margin(self.model(x_adv), y, self.kappa).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = project_linf(x_adv.detach() - self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()


@register_attack("cw")
class CW(AttackDef):
    """:class:`CWLinf` with App. I's defaults: 10 steps of 2/255, kappa = 50, start at x."""

    label = "CW-Linf"
    stronger_than = ("fgsm",)
    help = "L-inf Carlini-Wagner margin loss, 10 steps of 2/255, kappa 50 (App. I)"
    defaults = {"steps": 10, "restarts": 1, "random_start": False, "kappa": 50.0, "alpha": 2 / 255}

    def check(self, spec: AttackSpec) -> None:
        if not spec.kappa >= 0:
            raise ConfigError(f"kappa={spec.kappa!r} must be >= 0 (CW confidence margin)")

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        return CWLinf(model, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, kappa=spec.kappa,
                      random_start=spec.random_start)

    def describe(self, spec: AttackSpec) -> str:
        return iterative_description(spec, f"CW-{spec.norm} margin loss (kappa={spec.kappa:g})")
