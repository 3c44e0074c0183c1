"""Adversarial attacks used in the paper's experiments (Sec. 6, App. I), all L-infinity, one module
per registered attack.

==============  ==========================================================================
module          contents
==============  ==========================================================================
``base``        :class:`AttackDef`, the registry, L-inf projection
``spec``        :class:`AttackSpec` (defaults resolved by the registry entry)
``core``        :class:`Attack` (eval/range checks, restarts), :func:`make_attack`,
                :func:`attack_batches`
``fgsm``        ``fgsm``: ``torchattacks.FGSM`` (App. I: eps = 4/255, also 8/255)
``pgd``         ``pgd``: ``torchattacks.PGD``, 5 steps of ``2.5 * eps / steps``, random start
``cw``          ``cw``: :class:`CWLinf`, the L-inf CW margin attack of App. I (kappa = 50)
``autoattack``  ``autoattack``: ``torchattacks.AutoAttack`` standard, unchanged
==============  ==========================================================================

Every attack expects a model in eval mode and inputs in [0, 1] (normalisation lives inside
the model, CONTRIBUTING.md), and returns adversarial inputs in ``[0, 1]`` within the
``eps``-ball of the clean inputs.

``ATTACKS`` is kept for old callers: it is the tuple of currently registered names
(:func:`attack_names`).
"""
from __future__ import annotations

# isort: off
# One module per attack; importing them registers them, in this order (= attack_names()).
from prunerob.core.attacks import fgsm, pgd, cw, autoattack  # noqa: F401
# isort: on
from prunerob.core.attacks import base as _base
from prunerob.core.attacks.base import (
    DEFAULT_EPS,
    NORMS,
    REGISTRY,
    AttackDef,
    attack_names,
    get_attack,
    register_attack,
    stronger_than,
)
from prunerob.core.attacks.core import Attack, attack_batches, make_attack
from prunerob.core.attacks.cw import CWLinf, cw_margin
from prunerob.core.attacks.spec import AttackSpec
from prunerob.core.registry import import_submodules

# ... then every other module of the package, so a new method or attack is one new file
import_submodules("prunerob.core.attacks")

#: :class:`AttackSpec` fields an attack may default, fix or leave to the user
#: (:attr:`AttackDef.defaults`, :attr:`AttackDef.fixed`)
TUNABLE = _base.TUNABLE
#: ``attack(x, y) -> x_adv``: the callable :meth:`AttackDef.build` returns (inputs in [0, 1])
AttackFn = _base.AttackFn

__all__ = [
    "ATTACKS",
    "stronger_than",
    "NORMS",
    "DEFAULT_EPS",
    "REGISTRY",
    "AttackDef",
    "AttackFn",
    "TUNABLE",
    "register_attack",
    "get_attack",
    "attack_names",
    "AttackSpec",
    "Attack",
    "CWLinf",
    "make_attack",
    "attack_batches",
    "cw_margin",
]


def __getattr__(name: str):
    if name == "ATTACKS":  # old name: the registered attacks now
        return attack_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
