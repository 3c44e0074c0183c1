"""Tests for the registered ``pgd-50x5`` (prunerob.core.attacks.pgd_restarts): the sweet-spot studies'
PGD-50x5 under one name, and the strong attack that backs a gain where AutoAttack was not run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prunerob.core.attacks import AttackSpec, attack_batches, attack_names, make_attack, stronger_than

torch.set_num_threads(1)

EPS01 = Path(__file__).resolve().parents[1] / "book" / "experiments" / "results" / "eps01_gain" / "sweep.csv"


def test_it_is_pgd_with_50_steps_and_5_restarts(trained):
    """Same examples, same seed: bit for bit the sweet-spot studies' ``pgd`` with the overrides."""
    m, x, y = trained
    spec = AttackSpec("pgd-50x5", eps=0.07)
    assert "pgd-50x5" in attack_names() and spec.describe().startswith("PGD-Linf")
    a = make_attack("pgd-50x5", m, 0.07)
    b = make_attack("pgd", m, 0.07, steps=50, restarts=5)
    assert (a.spec.steps, a.spec.restarts, a.spec.alpha) == (50, 5, b.spec.alpha) == (50, 5, 2.5 * 0.07 / 50)
    adv_a, clean, ok_a = attack_batches(a, m, (x, y), 64, limit=96)
    adv_b, _, ok_b = attack_batches(b, m, (x, y), 64, limit=96)
    assert torch.equal(adv_a, adv_b) and np.array_equal(ok_a, ok_b)
    # at least as strong as PGD-5 on the same examples (the attack ladder's rule)
    _, _, ok5 = attack_batches(make_attack("pgd", m, 0.07), m, (x, y), 64, limit=96)
    assert clean.all() and ok_a.sum() <= ok5.sum()
    assert set(stronger_than()["pgd-50x5"]) == {"fgsm", "pgd"}


def test_its_paired_gains_match_autoattack_on_the_committed_eps01_table():
    """The module's claim: on the eps01_gain page (the same 1,000 images and models under both), the
    paired gain of pruning under PGD-50x5 is within 0.25 pp of AutoAttack's at every keep where both
    ran, while AutoAttack's accuracy is lower at every keep."""
    d = pd.read_csv(EPS01)
    d = d[d.method == "magnitude"]
    subsets = {a: sorted(d[d.attack == a].eval_subset.unique()) for a in ("pgd-50x5", "autoattack")}
    assert subsets["pgd-50x5"] == subsets["autoattack"] and len(subsets["autoattack"]) == 1
    acc = d[d.attack.isin(["pgd-50x5", "autoattack"])].groupby(["attack", "keep_ratio"]).adv_acc.mean()
    keeps = sorted(set(acc["autoattack"].index) & set(acc["pgd-50x5"].index) - {1.0})
    assert keeps, "no keep ratio with both attacks"
    for k in keeps:
        gains = {a: acc[a][k] - acc[a][1.0] for a in ("pgd-50x5", "autoattack")}
        assert abs(gains["pgd-50x5"] - gains["autoattack"]) < 0.0025, (k, gains)
    assert all(acc["autoattack"][k] < acc["pgd-50x5"][k] for k in [*keeps, 1.0])
