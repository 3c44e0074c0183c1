"""Tests for prunerob.core.attacks (App. I attack settings)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.attacks import ATTACKS, AttackSpec, CWLinf, attack_batches, cw_margin, make_attack

torch.set_num_threads(1)


def linear_model(d: int, k: int, seed: int = 0, min_gap: float = 0.0) -> nn.Module:
    """Flatten -> Linear(d, k) in eval mode; for k = 2 rows differ by >= min_gap elementwise."""
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(d, k))
    with torch.no_grad():
        w = torch.randn(k, d, generator=g)
        if k == 2 and min_gap:
            diff = w[1] - w[0]
            w[1] = w[0] + torch.where(diff.abs() < min_gap, min_gap * torch.sign(diff + 1e-12), diff)
        m[1].weight.copy_(w)
        m[1].bias.copy_(0.1 * torch.randn(k, generator=g))
    return m.eval()


# the `trained` fixture (a small MLP with 100% clean accuracy) is shared: tests/conftest.py


# ------------------------------------------------------------------ specs and errors
def test_spec_defaults_and_description():
    pgd = AttackSpec("pgd")
    assert pgd.steps == 5 and pgd.restarts == 1 and pgd.random_start
    assert pgd.alpha == pytest.approx(2 / 255) and pgd.eps == pytest.approx(4 / 255)
    assert pgd.describe() == "PGD-Linf, eps=4/255, 5 steps, step size 2/255, random start, 1 restart, seed 0"
    assert pgd.as_columns() == {
        "attack_steps": 5, "attack_alpha": pytest.approx(2 / 255), "attack_restarts": 1, "attack_seed": 0
    }
    cw = AttackSpec("cw")
    assert (cw.steps, cw.kappa, cw.random_start) == (10, 50.0, False) and cw.alpha == pytest.approx(2 / 255)
    assert "kappa=50" in cw.describe() and "10 steps" in cw.describe()
    fgsm = AttackSpec("fgsm", eps="8/255")
    assert fgsm.eps == pytest.approx(8 / 255) and fgsm.steps == 1 and fgsm.alpha == fgsm.eps
    aa = AttackSpec("autoattack", n_classes=10)
    assert aa.as_columns()["attack_steps"] is None and "AutoAttack" in aa.describe()
    # a new eps re-derives PGD's step size, an explicit alpha is kept
    m = linear_model(4, 2)
    assert make_attack(AttackSpec("pgd", eps=8 / 255), m).spec.alpha == pytest.approx(4 / 255)
    assert make_attack(AttackSpec("pgd", eps=8 / 255), m, 4 / 255).spec.alpha == pytest.approx(2 / 255)
    assert make_attack("pgd", m, 4 / 255, alpha=1 / 255).spec.alpha == pytest.approx(1 / 255)


def test_errors():
    m = linear_model(4, 2)
    with pytest.raises(ConfigError) as e:
        make_attack("deepfool", m)
    assert all(a in str(e.value) for a in ATTACKS)
    with pytest.raises(ConfigError, match="eps"):
        make_attack("fgsm", m, -0.1)
    with pytest.raises(ConfigError, match="steps"):
        make_attack("fgsm", m, steps=3)
    with pytest.raises(ConfigError, match="steps"):
        make_attack("pgd", m, steps=0)
    with pytest.raises(ConfigError, match="unknown attack parameter"):
        make_attack("pgd", m, iterations=3)
    with pytest.raises(ConfigError, match="kappa"):
        make_attack("cw", m, kappa=-1)
    with pytest.raises(ConfigError, match="norm"):
        AttackSpec("pgd", norm="L2")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        make_attack("fgsm", m)(torch.full((2, 1, 2, 2), 1.5), torch.zeros(2, dtype=torch.long))


def test_eval_mode_required_and_kept(trained):
    m, x, y = trained
    for name in ("fgsm", "pgd", "cw"):
        atk = make_attack(name, m, 0.1)
        m.train()
        with pytest.raises(RuntimeError, match="eval"):
            atk(x[:4], y[:4])
        m.eval()
        atk(x[:4], y[:4])
        assert not m.training


# ------------------------------------------------------------------ known answers
def test_fgsm_closed_form_on_linear_model():
    d, eps = 6, 0.1
    m = linear_model(d, 2, seed=1, min_gap=0.1)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 1, 2, 3, generator=g)
    x[0, 0, 0, 0], x[1, 0, 1, 2] = 0.0, 1.0  # exercise the clipping to [0, 1]
    y = torch.randint(0, 2, (16,), generator=g)
    W = m[1].weight.detach().double().numpy()
    b = m[1].bias.detach().double().numpy()
    xn = x.reshape(16, d).double().numpy()
    z = xn @ W.T + b
    s = np.exp(z - z.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    onehot = np.eye(2)[y.numpy()]
    grad = (s - onehot) @ W  # dL/dx for CE (up to the positive 1/B of the batch mean)
    expected = np.clip(xn + eps * np.sign(grad), 0, 1).reshape(16, 1, 2, 3)
    adv = make_attack("fgsm", m, eps)(x, y)
    assert np.allclose(adv.double().numpy(), expected, atol=1e-6)


def test_cwlinf_one_step_closed_form_on_linear_model():
    d, k, alpha = 8, 4, 0.05
    m = linear_model(d, k, seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(10, 1, 2, 4, generator=g)
    y = torch.randint(0, k, (10,), generator=g)
    W = m[1].weight.detach().double().numpy()
    z = x.reshape(10, d).double().numpy() @ W.T + m[1].bias.detach().double().numpy()
    zo = z.copy()
    zo[np.arange(10), y.numpy()] = -np.inf
    j = zo.argmax(1)  # strongest other class
    grad = W[y.numpy()] - W[j]  # d/dx (Z_y - Z_j)
    expected = np.clip(x.reshape(10, d).double().numpy() - alpha * np.sign(grad), 0, 1).reshape(10, 1, 2, 4)
    adv = CWLinf(m, eps=0.3, alpha=alpha, steps=1, kappa=1e6)(x, y)
    assert np.allclose(adv.double().numpy(), expected, atol=1e-6)


def test_cwlinf_bounds_margin_and_kappa(trained):
    m, x, y = trained
    x = x[:60].clone()
    x[:, 0, 0, 0] = 0.0
    x[:, 0, 3, 3] = 1.0
    y = y[:60]
    eps = 0.06
    adv = make_attack("cw", m, eps)(x, y)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        before, after = cw_margin(m(x), y), cw_margin(m(adv), y)
    assert (after <= before + 1e-5).all() and after.mean() < before.mean() - 0.1
    # with kappa = 0 the loss is flat once an example is misclassified: those stop moving
    atk = CWLinf(m, eps=0.2, alpha=0.05, steps=4, kappa=0.0)
    adv1 = atk(x, y)
    with torch.no_grad():
        wrong = cw_margin(m(adv1), y) < 0
    assert wrong.any()
    adv2 = CWLinf(m, eps=0.2, alpha=0.05, steps=8, kappa=0.0)(x, y)
    assert torch.equal(adv2[wrong], adv1[wrong])


# ------------------------------------------------------------------ strength on a trained model
def test_pgd_at_least_as_strong_as_fgsm(trained):
    m, x, y = trained
    eps = 0.1
    _, clean, fgsm_ok = attack_batches(make_attack("fgsm", m, eps), m, (x, y), 100)
    x_adv, clean2, pgd_ok = attack_batches(make_attack("pgd", m, eps), m, (x, y), 100)
    assert torch.equal(clean, clean2) and clean.all()
    assert pgd_ok.float().mean() <= fgsm_ok.float().mean() < 0.5
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_large_eps_drives_accuracy_to_zero(trained):
    m, x, y = trained
    _, clean, ok = attack_batches(make_attack("pgd", m, 1.0), m, (x, y), 150)
    assert clean.all() and not ok.any()


def test_restarts_never_weaker(trained):
    m, x, y = trained
    _, _, one = attack_batches(make_attack("pgd", m, 0.07), m, (x, y), 100)
    _, _, three = attack_batches(make_attack("pgd", m, 0.07, restarts=3), m, (x, y), 100)
    # restart 1 of 3 uses the same seeded random start as the single run
    assert not (three & ~one).any()


# ------------------------------------------------------------------ attack_batches bookkeeping
def test_attack_batches_reproducible_and_rng_untouched(trained):
    m, x, y = trained
    state = torch.get_rng_state()
    a1, c1, o1 = attack_batches(AttackSpec("pgd", eps=0.05), m, (x, y), 64, limit=100)
    a2, _, o2 = attack_batches(make_attack("pgd", m, 0.05), m, (x, y), 64, limit=100)
    a3, _, _ = attack_batches(make_attack("pgd", m, 0.05, seed=1), m, (x, y), 64, limit=100)
    assert torch.equal(torch.get_rng_state(), state)
    assert a1.shape == (100, 1, 4, 4) and c1.shape == o1.shape == (100,) and c1.dtype == torch.bool
    assert torch.equal(a1, a2) and torch.equal(o1, o2) and not torch.equal(a1, a3)

    class DS:  # stand-in for prunerob.core.data.ArrayDataset
        def batches(self, batch_size, shuffle=False, generator=None):
            assert shuffle is False
            for i in range(0, 100, batch_size):
                yield x[i : min(i + batch_size, 100)], y[i : min(i + batch_size, 100)]

    a4, _, o4 = attack_batches(make_attack("pgd", m, 0.05), m, DS(), 64)
    assert torch.equal(a4, a1) and torch.equal(o4, o1)
    none, c5, _ = attack_batches("fgsm", m, (x, y), 64, limit=10, return_adv=False)
    assert none is None and c5.shape == (10,)
    with pytest.raises(ConfigError, match="different model"):
        attack_batches(make_attack("fgsm", linear_model(16, 3)), m, (x, y), 64)


# ------------------------------------------------------------------ AutoAttack (torchattacks)
@pytest.mark.slow
def test_autoattack_runs_on_tiny_model():
    m = linear_model(16, 10, seed=5)
    g = torch.Generator().manual_seed(6)
    x = torch.rand(8, 1, 4, 4, generator=g)
    with torch.no_grad():
        y = m(x).argmax(1)  # all correct when clean
    eps = 4 / 255
    x_adv, clean, ok = attack_batches(make_attack("autoattack", m, eps, n_classes=10), m, (x, y), 8)
    assert not m.training and clean.all()
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    _, _, fgsm_ok = attack_batches(make_attack("fgsm", m, eps), m, (x, y), 8)
    assert ok.sum() <= fgsm_ok.sum() and ok.sum() < 8
    with pytest.raises(ConfigError, match="n_classes"):
        make_attack("autoattack", m, eps, n_classes=7)(x, y)
    with pytest.raises(ConfigError, match=">= 4 classes"):
        make_attack("autoattack", linear_model(16, 3), eps)(x, torch.zeros(8, dtype=torch.long))


def test_baseline_attacks_are_controls(trained):
    """``none`` leaves every input as it is; ``gn`` stays in the eps-ball and [0, 1], is seeded, and is
    no stronger than FGSM here (a control, not an adversary)."""
    m, x, y = trained
    eps = 0.1
    none = make_attack(AttackSpec("none", eps=eps), m)
    assert torch.equal(none(x, y), x)
    torch.manual_seed(3)
    a = make_attack(AttackSpec("gn", eps=eps), m)(x, y)
    torch.manual_seed(3)
    b = make_attack(AttackSpec("gn", eps=eps), m)(x, y)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert (a - x).abs().max() <= eps + 1e-6 and a.min() >= 0 and a.max() <= 1
    fgsm = make_attack(AttackSpec("fgsm", eps=eps), m)(x, y)
    acc = {k: (m(v).argmax(1) == y).float().mean().item() for k, v in (("gn", a), ("fgsm", fgsm))}
    assert acc["gn"] >= acc["fgsm"]


def test_strength_order_is_registry_data():
    from prunerob.core.attacks import get_attack, stronger_than

    order = stronger_than()
    assert order["autoattack"] == ("fgsm", "pgd", "cw") and order["pgd"] == ("fgsm",)
    assert order["none"] == () and get_attack("gn").kind == "baseline"
