""":class:`AttackSpec`: the full description of one attack, with defaults resolved by its registry entry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prunerob.config import ConfigError, check_choice, parse_eps
from prunerob.core.attacks.base import DEFAULT_EPS, NORMS, AttackDef, get_attack
from prunerob.core.precision import BF16_ATTACKS, precision_names

__all__ = ["AttackSpec"]


def _normalise(field: str, value: Any) -> Any:
    """Type of a resolved tunable field (None stays None)."""
    if value is None:
        return None
    if field == "steps":
        if int(value) != value or value < 1:
            raise ConfigError(f"steps={value!r} must be an integer >= 1")
        return int(value)
    if field == "alpha":
        return parse_eps(value)
    if field == "kappa":
        return float(value)
    if field == "random_start":
        return bool(value)
    return value  # restarts: checked below


@dataclass
class AttackSpec:
    """Full description of an attack; ``None`` fields take the App. I defaults of the registered
    attack ``name`` (:attr:`AttackDef.defaults <prunerob.core.attacks.AttackDef.defaults>`).

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
    ``precision``: ``fp32`` (default) or ``bf16``, the input gradients computed under bf16 autocast
    (:class:`prunerob.core.precision.AutocastModel`; FGSM and PGD only,
    :data:`~prunerob.core.precision.BF16_ATTACKS`);
    the adversarial examples are always judged by the fp32 model.
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
    precision: str = "fp32"

    def __post_init__(self) -> None:
        d = get_attack(str(self.name).lower())
        self.name = d.name
        self.norm = check_choice("norm", self.norm, NORMS)
        self.precision = check_choice("precision", self.precision, precision_names())
        if self.precision != "fp32" and d.name not in BF16_ATTACKS:
            raise ConfigError(f"precision={self.precision!r} is available for {', '.join(BF16_ATTACKS)} "
                              f"(measured against fp32), not for attack {d.name!r}; use precision='fp32'")
        self.eps = parse_eps(self.eps)
        self.seed = int(self.seed)
        for f, v in d.fixed.items():
            self._fixed(f, v)
        for f, v in d.defaults.items():
            cur = getattr(self, f)
            if cur is None:
                cur = v(self) if callable(v) else v
            setattr(self, f, _normalise(f, cur))
        d.check(self)
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
            raise ConfigError(
                f"{field}={cur!r} is not a parameter of attack {self.name!r} (it is fixed to {value!r})"
            )
        setattr(self, field, value)

    @property
    def definition(self) -> AttackDef:
        """The registry entry (:class:`~prunerob.core.attacks.base.AttackDef`) of this attack."""
        return get_attack(self.name)

    def describe(self) -> str:
        """One line for captions, e.g.
        ``"PGD-Linf, eps=4/255, 5 steps, step size 2/255, random start, 1 restart, seed 0"``."""
        text = self.definition.describe(self)
        return text if self.precision == "fp32" else f"{text}, gradients in bf16 autocast"

    def as_columns(self) -> dict[str, Any]:
        """Attack parameters for result tables (CONTRIBUTING.md "Results contract").

        ``attack_precision`` appears only for a non-fp32 attack, so that fp32 tables and the sweep
        hashes built from these columns are the same as before the option existed."""
        cols: dict[str, Any] = {
            "attack_steps": self.steps,
            "attack_alpha": self.alpha,
            "attack_restarts": self.restarts,
            "attack_seed": self.seed,
        }
        if self.precision != "fp32":
            cols["attack_precision"] = self.precision
        return cols
