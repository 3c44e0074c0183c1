"""Adversarial attacks used in the paper's experiments (Sec. 6, App. I), all L-infinity.

* FGSM and PGD: ``torchattacks.FGSM`` / ``torchattacks.PGD``. App. I: ``eps = 4/255`` (FGSM also
  at 8/255), PGD with 5 iterations. App. I gives no PGD step size; we use
  ``alpha = 2.5 * eps / steps`` (= 2/255 at eps = 4/255, the usual Madry et al. heuristic) and a
  uniform random start, 1 restart.
* AutoAttack: ``torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
  n_classes=n_classes, seed=seed)``, unchanged, as App. I states (APGD-CE, APGD-T, FAB-T,
  Square with 5000 queries).
* CW: App. I describes "the iterative l_inf-constrained variant, step size 2/255, 10
  iterations, confidence margin k = 50". ``torchattacks.CW`` is the *L2 minimal-norm*
  Carlini-Wagner attack (Adam on a tanh-reparametrised input, no eps bound), i.e. not what
  App. I describes, so :class:`CWLinf` implements the bounded variant: projected sign-gradient
  descent on the CW margin loss ``f(x) = max(Z_y - max_{i != y} Z_i, -kappa)``.

Every attack expects a model in eval mode and inputs in [0, 1] (normalisation lives inside
the model, CONTRIBUTING.md), and returns adversarial inputs in ``[0, 1]`` within the
``eps``-ball of the clean inputs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import ConfigError, check_choice, format_eps, parse_eps

__all__ = [
    "ATTACKS",
    "NORMS",
    "AttackSpec",
    "Attack",
    "CWLinf",
    "make_attack",
    "attack_batches",
    "cw_margin",
]

ATTACKS: tuple[str, ...] = ("fgsm", "pgd", "cw", "autoattack")
NORMS: tuple[str, ...] = ("Linf",)
DEFAULT_EPS = 4 / 255


@dataclass
class AttackSpec:
    """Full description of an attack; ``None`` fields take the App. I defaults for ``name``.

    Defaults (``eps = 4/255``):

    ==========  =====  ==================  ============  ========  =====
    attack      steps  alpha (step size)   random start  restarts  kappa
    ==========  =====  ==================  ============  ========  =====
    fgsm        1      eps                 no            1         -
    pgd         5      2.5 * eps / steps   yes           1         -
    cw          10     2/255               no            1         50
    autoattack  -      - (parameter-free)  -             -         -
    ==========  =====  ==================  ============  ========  =====

    ``n_classes`` is used by AutoAttack only (``None``: read from the model's logits at the
    first call). ``seed`` seeds the random start (via :func:`attack_batches`) and AutoAttack.
    """

    name: str = "fgsm"
    eps: float | str = DEFAULT_EPS
    steps: int | None = None
    alpha: float | str | None = None
    restarts: int | None = None
    seed: int = 0
    kappa: float | None = None
    n_classes: int | None = None
    norm: str = "Linf"
    random_start: bool | None = None

    def __post_init__(self) -> None:
        self.name = check_choice("attack", str(self.name).lower(), ATTACKS)
        self.norm = check_choice("norm", self.norm, NORMS)
        self.eps = parse_eps(self.eps)
        self.seed = int(self.seed)
        n = self.name
        if n == "fgsm":
            self._fixed("steps", 1)
            self._fixed("restarts", 1)
            self._fixed("random_start", False)
            self._fixed("kappa", None)
            if self.alpha is None:
                self.alpha = self.eps
            elif abs(parse_eps(self.alpha) - self.eps) > 1e-12:
                raise ConfigError(f"FGSM takes one step of size eps; alpha={self.alpha!r} must be None or eps")
            self.alpha = self.eps
        elif n == "pgd":
            self.steps = 5 if self.steps is None else self.steps
            self.restarts = 1 if self.restarts is None else self.restarts
            self.random_start = True if self.random_start is None else bool(self.random_start)
            self._fixed("kappa", None)
            self._check_steps()
            self.alpha = 2.5 * self.eps / self.steps if self.alpha is None else parse_eps(self.alpha)
        elif n == "cw":
            self.steps = 10 if self.steps is None else self.steps
            self.restarts = 1 if self.restarts is None else self.restarts
            self.random_start = False if self.random_start is None else bool(self.random_start)
            self.kappa = 50.0 if self.kappa is None else float(self.kappa)
            self._check_steps()
            self.alpha = 2 / 255 if self.alpha is None else parse_eps(self.alpha)
            if not self.kappa >= 0:
                raise ConfigError(f"kappa={self.kappa!r} must be >= 0 (CW confidence margin)")
        else:  # autoattack: parameter-free
            for f in ("steps", "alpha", "restarts", "kappa", "random_start"):
                self._fixed(f, None)
        if self.restarts is not None and (int(self.restarts) != self.restarts or self.restarts < 1):
            raise ConfigError(f"restarts={self.restarts!r} must be an integer >= 1")
        if self.restarts is not None:
            self.restarts = int(self.restarts)
        if self.alpha is not None and not self.alpha >= 0:
            raise ConfigError(f"alpha={self.alpha!r} must be >= 0 (step size)")
        if self.n_classes is not None:
            if int(self.n_classes) != self.n_classes or self.n_classes < 2:
                raise ConfigError(f"n_classes={self.n_classes!r} must be an integer >= 2")
            self.n_classes = int(self.n_classes)

    def _fixed(self, field: str, value: Any) -> None:
        cur = getattr(self, field)
        if cur is not None and cur != value:
            raise ConfigError(f"{field}={cur!r} is not a parameter of attack {self.name!r} (it is fixed to {value!r})")
        setattr(self, field, value)

    def _check_steps(self) -> None:
        if int(self.steps) != self.steps or self.steps < 1:
            raise ConfigError(f"steps={self.steps!r} must be an integer >= 1")
        self.steps = int(self.steps)

    def describe(self) -> str:
        """One line for captions, e.g.
        ``"PGD-Linf, eps=4/255, 5 steps, step size 2/255, random start, 1 restart, seed 0"``."""
        eps = format_eps(self.eps)
        if self.name == "fgsm":
            return f"FGSM-{self.norm}, eps={eps} (one signed-gradient step of size eps)"
        if self.name == "autoattack":
            nc = "from logits" if self.n_classes is None else str(self.n_classes)
            return (
                f"AutoAttack-{self.norm} standard (APGD-CE, APGD-T, FAB-T, Square; torchattacks), "
                f"eps={eps}, n_classes={nc}, seed {self.seed}"
            )
        label = "PGD" if self.name == "pgd" else f"CW-{self.norm} margin loss (kappa={self.kappa:g})"
        head = f"PGD-{self.norm}" if self.name == "pgd" else label
        start = "random start" if self.random_start else "start at x"
        rs = f"{self.restarts} restart" + ("s" if self.restarts != 1 else "")
        return f"{head}, eps={eps}, {self.steps} steps, step size {format_eps(self.alpha)}, {start}, {rs}, seed {self.seed}"

    def as_columns(self) -> dict[str, Any]:
        """Attack parameters for result tables (CONTRIBUTING.md "Results contract")."""
        return {
            "attack_steps": self.steps,
            "attack_alpha": self.alpha,
            "attack_restarts": self.restarts,
            "attack_seed": self.seed,
        }


def cw_margin(logits: torch.Tensor, y: torch.Tensor, kappa: float = float("inf")) -> torch.Tensor:
    """CW margin ``max(Z_y - max_{i != y} Z_i, -kappa)`` per example (negative = misclassified)."""
    if logits.shape[1] < 2:
        raise ConfigError("the CW margin needs at least 2 classes")
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(z_y - other.max(dim=1).values, min=-kappa)


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)


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
            x_adv = _project(x_adv + torch.empty_like(x_adv).uniform_(-self.eps, self.eps), x, self.eps)
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            loss = cw_margin(self.model(x_adv), y, self.kappa).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = _project(x_adv.detach() - self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()


def _n_logits(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


class Attack:
    """A callable ``attack(x, y) -> x_adv`` for ``model`` described by ``spec``.

    Checks that the model is in eval mode and ``x`` lies in [0, 1]; the result is projected
    onto the eps-ball and clamped to [0, 1] (a no-op for correct attacks, a guarantee for all).
    With ``spec.restarts > 1`` each restart is run and, per example, the result that
    misclassifies (else the one with the higher cross-entropy) is kept.
    Random starts draw from torch's global generator: seed it (or use :func:`attack_batches`).
    """

    def __init__(self, spec: AttackSpec, model: nn.Module) -> None:
        self.spec = spec
        self.model = model
        self._impl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if spec.name != "autoattack":
            self._impl = self._build(spec.n_classes)

    def _build(self, n_classes: int | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        import torchattacks

        s, m = self.spec, self.model
        if s.name == "fgsm":
            return torchattacks.FGSM(m, eps=s.eps)
        if s.name == "pgd":
            return torchattacks.PGD(m, eps=s.eps, alpha=s.alpha, steps=s.steps, random_start=s.random_start)
        if s.name == "cw":
            return CWLinf(m, eps=s.eps, alpha=s.alpha, steps=s.steps, kappa=s.kappa, random_start=s.random_start)
        return torchattacks.AutoAttack(
            m, norm=s.norm, eps=s.eps, version="standard", n_classes=n_classes, seed=s.seed
        )

    def describe(self) -> str:
        return self.spec.describe()

    def __repr__(self) -> str:
        return f"Attack({self.spec.describe()})"

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.model.training:
            raise RuntimeError(
                "model is in training mode; call model.eval() before attacking "
                "(attacks are evaluated in eval mode: dropout off, BatchNorm running statistics)"
            )
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ConfigError("attack inputs must lie in [0, 1] (normalisation belongs inside the model)")
        if x.shape[0] != y.shape[0]:
            raise ConfigError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        device = next(self.model.parameters()).device
        x, y = x.detach().to(device), y.to(device)
        if self._impl is None:  # AutoAttack: n_classes fixed at the first call
            nl = _n_logits(self.model, x)
            if self.spec.n_classes is not None and self.spec.n_classes != nl:
                raise ConfigError(f"n_classes={self.spec.n_classes} but the model outputs {nl} logits")
            if nl < 4:
                raise ConfigError(
                    f"AutoAttack (standard: APGD-T / FAB-T use the 4 largest logits) needs >= 4 classes; the model has {nl}"
                )
            self._impl = self._build(nl)
        best = None
        for _ in range(self.spec.restarts or 1):
            adv = _project(self._impl(x, y).detach(), x, self.spec.eps)
            if best is None:
                best = adv
                if (self.spec.restarts or 1) > 1:
                    with torch.no_grad():
                        logits = self.model(best)
                    best_fooled = logits.argmax(1) != y
                    best_loss = F.cross_entropy(logits, y, reduction="none")
                continue
            with torch.no_grad():
                logits = self.model(adv)
            fooled = logits.argmax(1) != y
            loss = F.cross_entropy(logits, y, reduction="none")
            better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
            best = torch.where(better.view(-1, *[1] * (x.dim() - 1)), adv, best)
            best_fooled = best_fooled | fooled
            best_loss = torch.where(better, loss, best_loss)
        if self.model.training:  # torchattacks restores the caller's mode; make sure of it
            self.model.eval()
        return best


def make_attack(
    spec_or_name: AttackSpec | str,
    model: nn.Module,
    eps: float | str | None = None,
    **overrides: Any,
) -> Attack:
    """Build an attack ``attack(x, y) -> x_adv`` on ``model``.

    ``spec_or_name``: one of :data:`ATTACKS` (``eps`` defaults to 4/255, App. I) or an
    :class:`AttackSpec` (``eps`` defaults to the spec's). ``overrides`` are :class:`AttackSpec`
    fields (``steps``, ``alpha``, ``restarts``, ``seed``, ``kappa``, ``n_classes``,
    ``random_start``). When a spec gets a new ``eps``, fields equal to the spec's defaults
    (e.g. PGD's ``alpha = 2.5 * eps / steps``) are re-derived for the new ``eps``.
    """
    if "eps" in overrides:
        raise ConfigError("pass eps as the third argument of make_attack, not as an override")
    if isinstance(spec_or_name, AttackSpec):
        fields = dataclasses.asdict(spec_or_name)
        fields["eps"] = spec_or_name.eps if eps is None else eps
    else:
        if not isinstance(spec_or_name, str):
            raise ConfigError(f"attack must be an AttackSpec or one of {', '.join(ATTACKS)}; got {spec_or_name!r}")
        fields = {"name": spec_or_name, "eps": DEFAULT_EPS if eps is None else eps}
    known = {f.name for f in dataclasses.fields(AttackSpec)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ConfigError(f"unknown attack parameter(s) {', '.join(bad)}; allowed: {', '.join(sorted(known - {'name'}))}")
    fields.update(overrides)
    if isinstance(spec_or_name, AttackSpec):
        # re-derive defaults that depend on eps (PGD alpha) unless given explicitly
        base = AttackSpec(name=spec_or_name.name, eps=spec_or_name.eps)
        for f in ("alpha", "steps", "restarts", "kappa", "random_start"):
            if f not in overrides and getattr(spec_or_name, f) == getattr(base, f):
                fields[f] = None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return Attack(AttackSpec(**fields), model)


def _xy_batches(data, batch_size: int):
    if hasattr(data, "batches") and callable(data.batches):
        return data.batches(batch_size, shuffle=False)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ConfigError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        return ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, x.shape[0], batch_size))
    raise ConfigError("data must be an ArrayDataset (with .batches) or a tuple (x, y) of tensors")


def attack_batches(
    attack: Attack | AttackSpec | str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    data,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    *,
    limit: int | None = None,
    seed: int | None = None,
    return_adv: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Attack ``data`` batch by batch and return ``(x_adv, clean_correct, adv_correct)``.

    ``data``: an ``ArrayDataset`` (iterated with ``shuffle=False``) or a tuple ``(x, y)``, so
    every attack sees exactly the same examples in the same order; ``limit`` keeps the first
    ``limit`` examples. ``clean_correct`` / ``adv_correct`` are boolean CPU tensors
    (``model(x).argmax == y`` on the clean / adversarial input; an example misclassified when
    clean counts as correct under attack only if the attack output is classified correctly).
    ``x_adv`` is returned on the CPU (``None`` with ``return_adv=False``, to save memory).

    Reproducibility: before the attack on batch ``i`` the global torch generators (CPU and
    CUDA) are seeded with ``seed + i`` (``seed`` defaults to the attack's ``spec.seed``) inside
    ``torch.random.fork_rng``, so random starts do not depend on earlier calls and the caller's
    random state is left untouched. Results depend on ``batch_size`` only through this seeding.
    """
    if isinstance(attack, (AttackSpec, str)):
        attack = make_attack(attack, model)
    if getattr(attack, "model", model) is not model:
        raise ConfigError("the attack was built for a different model than the one evaluated")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be >= 1")
    if model.training:
        raise RuntimeError("model is in training mode; call model.eval() before attacking")
    base_seed = int(seed if seed is not None else getattr(getattr(attack, "spec", None), "seed", 0))
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    fork_devices = [dev] if dev.type == "cuda" else []
    advs, clean, adv_ok = [], [], []
    seen = 0
    try:
        from tqdm.auto import tqdm
    except Exception:  # pragma: no cover
        tqdm = lambda it, **kw: it  # noqa: E731
    for i, (x, y) in enumerate(tqdm(_xy_batches(data, batch_size), desc="attack", disable=None, leave=False)):
        if limit is not None:
            if seen >= limit:
                break
            x, y = x[: limit - seen], y[: limit - seen]
        seen += x.shape[0]
        x, y = x.to(dev), y.to(dev)
        with torch.no_grad():
            clean.append((model(x).argmax(1) == y).cpu())
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(base_seed + i)
            x_adv = attack(x, y)
        with torch.no_grad():
            adv_ok.append((model(x_adv).argmax(1) == y).cpu())
        if return_adv:
            advs.append(x_adv.detach().cpu())
    if not clean:
        raise ConfigError("data yielded no examples to attack")
    x_adv_all = torch.cat(advs) if return_adv else None
    return x_adv_all, torch.cat(clean), torch.cat(adv_ok)
