"""Known answers of the pitfall attacks, the transfer attack and the mechanism metrics
(prunerob.studies.sweetspot.pitfalls / strong / mechanism) on a small trained MLP."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.core.attacks import AttackSpec, attack_batches, make_attack
from prunerob.core.data import ArrayDataset
from prunerob.core.models import build_model
from prunerob.core.pruning import make_masks, prunable_weights
from prunerob.engine.sweep import run_sweep
from prunerob.studies.sweetspot import mechanism, pitfalls, strong
from prunerob.theory.bounds import realised_mask_bound

MEAN, STD = (0.5,), (0.3,)


def _synthetic(n: int, seed: int, split: str) -> ArrayDataset:
    g = torch.Generator().manual_seed(1234)
    templates = torch.rand(10, 1, 8, 8, generator=g)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (templates[y] + 0.8 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
    return ArrayDataset("mnist", split, (x * 255).round().to(torch.uint8), y, 10, MEAN, STD, "synthetic data")


@pytest.fixture(scope="module")
def setup():
    train, test = _synthetic(2000, 0, "train"), _synthetic(300, 1, "test")
    torch.manual_seed(0)
    model = build_model("mlp", train.info, hidden=(32,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        for xb, yb in train.batches(64, shuffle=True, generator=g):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), test


def _xy(test, n=200):
    return test.x[:n].float() / 255, test.y[:n]


def test_correct_pitfall_equals_the_packages_fgsm_and_pgd(setup):
    model, test = setup
    x, y = _xy(test)
    for name in ("fgsm", "pgd"):
        spec = AttackSpec(name=name, eps=0.1)
        ref, _, _ = attack_batches(make_attack(spec, model), model, (x, y), 200, seed=3)
        torch.manual_seed(3)
        ours = pitfalls.linf_attack(model, x, y, spec, pitfalls.PITFALLS["correct"], MEAN, STD)
        assert torch.allclose(ours, ref, atol=1e-6), name
        assert (ours - x).abs().max() > 0.09  # not vacuous


def test_normalised_eps_budget_is_eps_times_std(setup):
    model, test = setup
    x, y = _xy(test)
    spec = AttackSpec(name="fgsm", eps=0.1)
    unclamped = pitfalls.Pitfall("norm, no clamp", "", space="normalised", clamp=False)
    adv = pitfalls.linf_attack(model, x, y, spec, unclamped, MEAN, STD)
    assert (adv - x).abs().max().item() == pytest.approx(0.1 * STD[0], rel=1e-5)
    assert (adv - x).abs().min().item() == pytest.approx(0.1 * STD[0], rel=1e-4)  # sign(grad) != 0 everywhere
    # with the torchattacks clamp on the normalised input, pixels are confined to [mean, mean + std]
    adv_c = pitfalls.linf_attack(model, x, y, spec, pitfalls.PITFALLS["normalised_eps"], MEAN, STD)
    assert adv_c.min().item() >= MEAN[0] - 1e-6 and adv_c.max().item() <= MEAN[0] + STD[0] + 1e-6
    # without clamping in pixel space the input leaves [0, 1]
    adv_n = pitfalls.linf_attack(model, x, y, spec, pitfalls.PITFALLS["no_clamp"], MEAN, STD)
    assert adv_n.min() < 0 or adv_n.max() > 1


def test_correct_pitfall_rows_equal_the_sweep_and_train_mode_needs_dropout(setup):
    model, test = setup
    keeps = [1.0, 0.6]
    sw = run_sweep(model, test, methods="magnitude", keeps=keeps, attacks="fgsm", eps=0.1, seed=2, n=250,
                   batch_size=100, progress=False, batched="no")
    rows = {p: pitfalls.pitfall_rows(model, test, p, method="magnitude", keeps=keeps, attack="fgsm", eps=0.1,
                                     seed=2, n=250, batch_size=100) for p in pitfalls.PITFALLS}
    assert list(rows["correct"].adv_bits) == list(sw.adv_bits)
    # no dropout / BatchNorm in the MLP: train mode changes nothing, bit for bit
    assert list(rows["train_mode"].adv_bits) == list(rows["correct"].adv_bits)
    # a different subset per keep ratio: other examples than the sweep's
    assert set(rows["subset_per_keep"].eval_subset) != set(sw.eval_subset)
    # with dropout, train mode does change the outcome
    drop = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    drop.eval()
    x, y = _xy(test)
    spec = AttackSpec(name="fgsm", eps=0.1)
    torch.manual_seed(0)
    a = pitfalls.linf_attack(drop, x, y, spec, pitfalls.PITFALLS["correct"], MEAN, STD)
    drop.train()
    torch.manual_seed(0)
    b = pitfalls.linf_attack(drop, x, y, spec, pitfalls.PITFALLS["train_mode"], MEAN, STD)
    assert not torch.equal(a, b)


def test_transfer_at_keep_one_equals_white_box(setup):
    model, test = setup
    over = {"steps": 4, "restarts": 2}
    sw = run_sweep(model, test, methods="magnitude", keeps=[1.0, 0.5], attacks="pgd", eps=0.1, seed=5, n=250,
                   batch_size=100, attack_overrides={"pgd": over}, progress=False)
    tr = strong.transfer_rows(model, test, method="magnitude", keeps=[1.0, 0.5], eps=0.1, seed=5, n=250,
                              batch_size=100, overrides=over)
    assert tr.adv_bits.iloc[0] == sw.adv_bits.iloc[0]
    assert tr.clean_bits.tolist() == sw.clean_bits.tolist()
    # pruned: transferred examples are crafted on another model, so they differ from white-box
    assert tr.adv_acc.iloc[1] != sw.adv_acc.iloc[1] or tr.adv_bits.iloc[1] != sw.adv_bits.iloc[1]


def test_transfer_prunes_with_the_sweeps_masks_for_every_draw_and_taylor(setup):
    model, test = setup
    over = {"steps": 2, "restarts": 1}
    train = _synthetic(400, 7, "train")
    for method, data, draws in (("random", None, 2), ("taylor", train, 1)):
        tr = strong.transfer_rows(model, test, method=method, keeps=[1.0, 0.5], eps=0.1, seed=5, n=120,
                                  batch_size=60, overrides=over, train_data=data, mask_draws=draws)
        assert sorted(set(tr.mask_draw)) == list(range(draws))
        for j in range(draws):
            sw = run_sweep(model, test, methods=method, keeps=[1.0, 0.5], attacks="fgsm", eps=0.1,
                           seed=5 + 1000 * j, n=120, batch_size=60, progress=False, train_data=data)
            # the same pruned model as the white-box sweep of that draw: identical clean predictions
            assert tr[tr.mask_draw == j].clean_bits.tolist() == sw.clean_bits.tolist(), (method, j)
    # two random draws are two different masks
    d = tr if method == "random" else strong.transfer_rows(
        model, test, method="random", keeps=[0.5], eps=0.1, seed=5, n=120, batch_size=60, overrides=over,
        mask_draws=2)
    assert d[d.keep_ratio == 0.5].clean_bits.nunique() == 2


def test_pitfall_shapes_report_bitwise_identity_with_the_correct_run(setup):
    model, test = setup
    rows = pitfalls.run_pitfalls([(0, model)], test, names=["correct", "train_mode", "no_clamp"],
                                 method="magnitude", keeps=[1.0, 0.6], attacks=["fgsm"], eps=0.1, n=150)
    grid = __import__("prunerob.studies.sweetspot.grid", fromlist=["gains"])
    shapes = pitfalls.fig2_shape(grid.gains(rows), rows)
    same = shapes.set_index("pitfall").same_as_correct
    assert same["correct"] == 1.0 and same["train_mode"] == 1.0 and same["no_clamp"] < 1.0
    lines = pitfalls.describe(shapes)
    assert sum("identical to the correct run" in ln for ln in lines) == 1
    import matplotlib

    matplotlib.use("Agg")
    from prunerob.studies.sweetspot import figures

    fig = figures.pitfall_panels(rows, {k: v.label for k, v in pitfalls.PITFALLS.items()}, "fgsm")
    shown = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert shown == ["(b) train mode", "(c) no clamping"]  # one panel per pitfall, the correct run in each
    assert all(len(ax.lines) == 4 for ax in fig.axes if ax.get_visible())


def test_margins_of_a_linear_model():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        lin[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, -1.0]]))
    x = torch.tensor([[[[0.5, 0.1], [0.2, 0.3]]]])
    y = torch.tensor([0])
    m = mechanism.margins(lin, x, y)
    # logits (0.5, 0.2, -0.3): margin 0.3, grad of margin = w_0 - w_1 -> L1 norm 3
    assert m["margin"].item() == pytest.approx(0.3)
    assert m["margin_grad_l1"].item() == pytest.approx(3.0)
    p = torch.softmax(torch.tensor([0.5, 0.2, -0.3]), 0)
    w = lin[1].weight.detach()
    g = (p[:, None] * w).sum(0) - w[0]
    assert m["grad_l1"].item() == pytest.approx(float(g.abs().sum()), rel=1e-5)


def test_mechanism_rows_and_correlation(setup):
    model, test = setup
    keeps = [1.0, 0.7, 0.4]
    me = mechanism.mechanism_rows(model, test, method="magnitude", keeps=keeps, eps=0.05, seed=0, n=200)
    masks = make_masks("magnitude", model, 0.4)
    ws = list(prunable_weights(model).values())
    want = realised_mask_bound([w.detach() for w in ws], list(masks.values()), 1.0)
    assert me.set_index("keep_ratio").loc[0.4, "lipschitz"] == pytest.approx(want)
    assert ((me.radius_ok >= 0) & (me.radius_ok <= 1)).all() and me.margin.nunique() == 3


def test_correlation_rule_on_synthetic_tables():
    import pandas as pd

    keeps = [1.0, 0.8, 0.6, 0.4]
    mech = pd.DataFrame([{"seed": s, "keep_ratio": k, "grad_l1": 10 * k * (1 + 0.1 * s), "margin": k,
                          "radius_ok": 0.5, "lipschitz": 1.0 + 0.01 * i}
                         for s in range(3) for i, k in enumerate(keeps)])
    # the gain falls as grad_l1 rises (the mechanism's sign) and with the realised bound (wrong sign)
    sweep = mech.assign(attack="fgsm", eps=0.05, adv_acc=0.5 - 0.01 * mech.grad_l1)
    c = mechanism.correlate(mech, sweep, "fgsm", 0.05).set_index("metric")
    assert c.loc["grad_l1", "rho"] == pytest.approx(-1.0) and c.loc["grad_l1", "points"] == 9
    assert bool(c.loc["grad_l1", "supported"])
    # the gain rises as the margin falls: the wrong sign for the margin mechanism, so not supported
    assert np.sign(c.loc["margin", "rho"]) == -1 and not bool(c.loc["margin", "supported"])
    assert math.isnan(c.loc["radius_ok", "rho"]) and not bool(c.loc["radius_ok", "supported"])
    # within keep ratio (centred per keep) the seed-by-seed relation holds too (ties at the mean seed)
    assert c.loc["grad_l1", "points_within"] == 9 and c.loc["grad_l1", "rho_within"] < -0.9


def test_correlation_within_keep_ratio_rejects_a_metric_that_only_shares_the_keep_trend():
    import pandas as pd

    rng = np.random.default_rng(0)
    keeps = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    seeds = range(6)
    # gain and metric both fall with keep, but their seed-to-seed deviations are independent
    mech = pd.DataFrame([{"seed": s, "keep_ratio": k, "grad_l1": (1 - k) * 10 + rng.normal(0, 0.3) * (k < 1),
                          "margin": 0.0, "radius_ok": 0.0, "lipschitz": 0.0} for s in seeds for k in keeps])
    sweep = pd.DataFrame([{"seed": s, "keep_ratio": k, "attack": "fgsm", "eps": 0.05,
                           "adv_acc": 0.9 - (1 - k) + rng.normal(0, 0.01) * (k < 1)}
                          for s in seeds for k in keeps])
    c = mechanism.correlate(mech, sweep, "fgsm", 0.05, metrics=["grad_l1"]).iloc[0]
    # across keep ratios the shared trend has the predicted sign; within keep ratios there is nothing
    assert c.rho < -0.8 and c.p < 1e-6 and c.points == 30
    assert c.p_within > 0.05 and not c.supported
    # the same metric tied to the gain seed by seed is supported
    mech2 = mech.assign(grad_l1=-(sweep.adv_acc - 0.9) * 10)
    c2 = mechanism.correlate(mech2, sweep, "fgsm", 0.05, metrics=["grad_l1"]).iloc[0]
    assert c2.rho == pytest.approx(-1.0) and c2.rho_within == pytest.approx(-1.0) and c2.supported
