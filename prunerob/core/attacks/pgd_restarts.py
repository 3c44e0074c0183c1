"""PGD-50x5, the field's "many-step PGD with restarts": ``torchattacks.PGD`` with 50 steps of
``2.5 * eps / 50`` from a uniform random start, 5 restarts, per example the restart that misclassifies
kept (:class:`prunerob.core.attacks.core.Attack`).

It is the strong attack that backs a weak-attack gain (:mod:`prunerob.analysis.verdicts`) where
AutoAttack was not run: it is cheaper (AutoAttack standard adds 9 targeted APGD runs, FAB-T and
5,000 Square queries on the examples that survive APGD-CE), and on the MNIST MLP of the eps01_gain
page, which ran both on the same 1,000 images, the two give the same paired gains of pruning within
a quarter of a point, with AutoAttack a few points lower in accuracy at every keep
(``tests/test_attacks_pgd_restarts.py`` checks this on the committed table).

It is the attack of the ``pgd-50x5`` column of the sweet-spot studies (there ``pgd`` with
``attack_overrides={"pgd": {"steps": 50, "restarts": 5}}``), registered under that name so that an
experiment's fixed-subset part can run it next to PGD-5 on the main images.
"""
from __future__ import annotations

from prunerob.core.attacks.base import register_attack
from prunerob.core.attacks.pgd import PGD

__all__ = ["PGD50x5"]


@register_attack("pgd-50x5")
class PGD50x5(PGD):
    """PGD with 50 steps and 5 random restarts (the worst restart per example)."""

    label = "PGD-50x5"
    stronger_than = ("fgsm", "pgd")
    help = "PGD with 50 steps of 2.5*eps/steps, random start, 5 restarts, worst restart per example"
    defaults = {"steps": 50, "restarts": 5, "random_start": True, "alpha": lambda s: 2.5 * s.eps / s.steps}
