"""The attack interface and its registry.

An attack is an :class:`AttackDef` subclass in its own module, registered under its name with
:func:`register_attack`. It carries its App. I defaults and fixed fields (resolved into an
:class:`~prunerob.core.attacks.spec.AttackSpec`), how to build the callable ``attack(x, y) -> x_adv``,
and how it describes itself in captions and result tables. An unknown name is one ConfigError
listing the registered names; nothing falls through to a default attack.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from prunerob.config import ConfigError, format_eps
from prunerob.core.registry import Registry

if TYPE_CHECKING:  # annotations only: spec.py imports this module
    from prunerob.core.attacks.spec import AttackSpec

__all__ = [
    "AttackDef", "REGISTRY", "register_attack", "get_attack", "attack_names", "NORMS", "DEFAULT_EPS",
    "TUNABLE", "project_linf", "iterative_description", "stronger_than",
]

NORMS: tuple[str, ...] = ("Linf",)
#: App. I: eps = 4/255
DEFAULT_EPS = 4 / 255
#: AttackSpec fields an attack may default, fix or leave to the user
TUNABLE: tuple[str, ...] = ("alpha", "steps", "restarts", "kappa", "random_start")

AttackFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Projection onto the L-inf ball ``B_inf(x, eps)`` intersected with ``[0, 1]^n``."""
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)


def iterative_description(spec: AttackSpec, head: str) -> str:
    """``"<head>, eps=4/255, 5 steps, step size 2/255, random start, 1 restart, seed 0"``."""
    start = "random start" if spec.random_start else "start at x"
    rs = f"{spec.restarts} restart" + ("s" if spec.restarts != 1 else "")
    return (f"{head}, eps={format_eps(spec.eps)}, {spec.steps} steps, step size {format_eps(spec.alpha)}, "
            f"{start}, {rs}, seed {spec.seed}")


class AttackDef:
    """Base class of a registered attack.

    Class attributes a subclass sets:

    * ``label``: short name for legends and tables (``"PGD"``); ``help``: one line for ``--help``;
    * ``defaults``: ``field -> value`` (or ``callable(spec) -> value``, e.g. PGD's step size
      ``2.5 * eps / steps``) for the :data:`TUNABLE` fields left ``None``, applied in order;
    * ``fixed``: ``field -> value`` for fields that are not parameters of the attack (giving
      another value is a ConfigError);
    * ``min_classes``: the fewest logits the attack supports; ``classes_note`` says why;
    * ``build_at_first_call``: build the attack when the number of classes is known (AutoAttack);
    * ``kind``: ``"gradient"`` (default), ``"ensemble"`` or ``"baseline"`` (no gradient: a control);
    * ``stronger_than``: the attacks it must be at least as strong as on the same examples (the
      field's sanity rule, checked by :func:`prunerob.analysis.stats.attack_ladder`).

    ``name`` is set by the registry. A subclass implements :meth:`build` and :meth:`describe`,
    and :meth:`check` for extra validation of a resolved spec.
    """

    name: str = ""
    label: ClassVar[str] = ""
    help: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    fixed: ClassVar[Mapping[str, Any]] = {}
    min_classes: ClassVar[int] = 2
    classes_note: ClassVar[str] = ""
    build_at_first_call: ClassVar[bool] = False
    kind: ClassVar[str] = "gradient"
    stronger_than: ClassVar[tuple[str, ...]] = ()

    def check(self, spec: AttackSpec) -> None:
        """Extra validation once defaults are resolved (raise ConfigError); default: none."""

    def build(self, spec: AttackSpec, model: nn.Module) -> AttackFn:
        """The callable ``attack(x, y) -> x_adv`` on ``model`` for the resolved ``spec``."""
        raise NotImplementedError

    def describe(self, spec: AttackSpec) -> str:
        """One line for captions, e.g. ``"FGSM-Linf, eps=4/255 (...)"``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


#: the registered attacks (``prunerob.core.attacks`` imports one module per attack)
REGISTRY: Registry[AttackDef] = Registry("attack", "attack")


def register_attack(name: str, *, replace: bool = False) -> Callable[[Any], Any]:
    """Decorator: register an :class:`AttackDef` subclass (or instance) under ``name``."""
    inner = REGISTRY.register(name, replace=replace)

    def deco(obj: Any) -> Any:
        item = obj() if isinstance(obj, type) else obj
        if not isinstance(item, AttackDef):
            raise ConfigError(f"attack {name!r} must be an AttackDef, got {type(item).__name__}")
        unknown = (set(item.defaults) | set(item.fixed)) - set(TUNABLE)
        if unknown:
            raise ConfigError(f"attack {name!r}: defaults/fixed name unknown fields {sorted(unknown)}")
        inner(item)
        return obj

    return deco


def stronger_than() -> dict[str, tuple[str, ...]]:
    """Registered attack -> the registered attacks it must be at least as strong as."""
    names = set(REGISTRY.names())
    return {n: tuple(w for w in REGISTRY.get(n).stronger_than if w in names) for n in REGISTRY.names()}


def get_attack(name: str) -> AttackDef:
    """The registered attack ``name``; ConfigError listing the registered names otherwise."""
    return REGISTRY.get(name)


def attack_names() -> tuple[str, ...]:
    """Names of the registered attacks, in registration order."""
    return REGISTRY.names()
