"""Tests of prunerob.plotting: statistics (known answers), Pareto mask (brute force), output files."""
from __future__ import annotations

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from prunerob.config import ConfigError  # noqa: E402
from prunerob.plotting import (  # noqa: E402
    accuracy_summary,
    attack_summary,
    caption,
    keep_at_drop,
    mean_ci,
    pareto_mask,
    plot_accuracy_vs_keep,
    save_figure,
    save_table,
    load_table,
    pct,
    pp,
    sweet_spot,
)

# Student-t quantiles from a printed table (two-sided 95%): dof 1 -> 12.706, dof 2 -> 4.303
T95_DOF1, T95_DOF2 = 12.706, 4.303


def test_mean_ci_known_answer():
    df = pd.DataFrame({"k": [1, 1, 1, 2, 2, 3], "v": [1.0, 2.0, 3.0, 0.5, 1.5, 7.0]})
    s = mean_ci(df, "k", "v").set_index("k")
    # group 1: mean 2, sample std 1, half = t(2) * 1 / sqrt(3)
    assert s.loc[1, "mean"] == pytest.approx(2.0)
    assert s.loc[1, "std"] == pytest.approx(1.0)
    assert s.loc[1, "half"] == pytest.approx(T95_DOF2 / math.sqrt(3), abs=1e-3)
    assert s.loc[1, "lo"] == pytest.approx(2.0 - T95_DOF2 / math.sqrt(3), abs=1e-3)
    # group 2: mean 1, std sqrt(0.5), half = t(1) * sqrt(0.5) / sqrt(2) = t(1) / 2
    assert s.loc[2, "half"] == pytest.approx(T95_DOF1 / 2, abs=1e-3)
    assert s.loc[2, "n"] == 2
    # a single run has no interval
    assert s.loc[3, "mean"] == 7.0 and s.loc[3, "n"] == 1
    assert math.isnan(s.loc[3, "lo"]) and math.isnan(s.loc[3, "hi"])


def test_mean_ci_level_and_errors():
    df = pd.DataFrame({"k": [0, 0, 0], "v": [1.0, 2.0, 3.0]})
    wide = mean_ci(df, ["k"], "v", level=0.99).half.iloc[0]
    narrow = mean_ci(df, ["k"], "v", level=0.90).half.iloc[0]
    assert wide > narrow
    # 90% two-sided, dof 2: t = 2.920 (table)
    assert narrow == pytest.approx(2.920 / math.sqrt(3), abs=1e-3)
    with pytest.raises(ConfigError, match="not in the table"):
        mean_ci(df, "missing", "v")
    with pytest.raises(ConfigError, match="level"):
        mean_ci(df, "k", "v", level=95)


def _brute_pareto(points, maximize=True):
    p = np.asarray(points, float)
    if not maximize:
        p = -p
    out = []
    for i, a in enumerate(p):
        if not np.isfinite(a).all():
            out.append(False)
            continue
        dominated = False
        for j, b in enumerate(p):
            if i == j or not np.isfinite(b).all():
                continue
            if all(b[t] >= a[t] for t in range(len(a))) and any(b[t] > a[t] for t in range(len(a))):
                dominated = True
                break
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("maximize", [True, False])
def test_pareto_mask_matches_brute_force(seed, maximize):
    rng = np.random.default_rng(seed)
    # integer grid -> many ties and exact duplicates
    pts = rng.integers(0, 6, size=(40, 2 + seed % 2)).astype(float)
    if seed % 3 == 0:
        pts[5, 0] = np.nan
    np.testing.assert_array_equal(pareto_mask(pts, maximize=maximize), _brute_pareto(pts, maximize))


def test_pareto_mask_hand_example():
    # (clean, attacked): (0.9, 0.5) and (0.8, 0.6) trade off; (0.7, 0.5) is dominated by both;
    # (0.9, 0.5) duplicated: duplicates do not dominate each other.
    pts = [(0.9, 0.5), (0.8, 0.6), (0.7, 0.5), (0.9, 0.5), (0.8, 0.55)]
    assert pareto_mask(pts).tolist() == [True, True, False, True, False]
    # minimisation (bound space): the smallest (gamma, zeta) pairs
    assert pareto_mask([(1, 3), (2, 2), (3, 1), (3, 3)], maximize=False).tolist() == [True, True, True, False]
    # mixed directions: maximise first, minimise second
    assert pareto_mask([(1, 1), (2, 1), (2, 0)], maximize=[True, False]).tolist() == [False, False, True]
    with pytest.raises(ConfigError):
        pareto_mask([1, 2, 3])


def _table():
    rows = []
    # adv accuracy peaks at keep 0.8; per-seed noise known
    adv = {1.0: 0.50, 0.9: 0.55, 0.8: 0.60, 0.5: 0.40}
    clean = {1.0: 0.98, 0.9: 0.97, 0.8: 0.95, 0.5: 0.70}
    for seed, delta in ((0, -0.01), (1, 0.0), (2, 0.01)):
        for k in adv:
            for method in ("magnitude", "random"):
                rows.append(dict(model="mlp", dataset="mnist", method=method, keep_ratio=k, attack="fgsm",
                                 eps=4 / 255, seed=seed, n=100,
                                 clean_acc=clean[k] - (0.2 if method == "random" and k < 1 else 0),
                                 adv_acc=adv[k] + delta * (k != 1.0) - (0.2 if method == "random" and k < 1 else 0),
                                 attack_steps=1, attack_alpha=4 / 255, attack_restarts=1, attack_seed=0,
                                 device="cpu (1 threads)"))
    return pd.DataFrame(rows)


def test_sweet_spot_known_answer():
    s = sweet_spot(_table()).set_index("method")
    m = s.loc["magnitude"]
    assert m.keep_best == 0.8 and m.keep_dense == 1.0
    assert m.adv_best == pytest.approx(0.60) and m.adv_dense == pytest.approx(0.50)
    # paired differences over seeds: 0.09, 0.10, 0.11 -> mean 0.10, std 0.01
    assert m.adv_gain == pytest.approx(0.10)
    assert m.adv_gain_hi - m.adv_gain == pytest.approx(T95_DOF2 * 0.01 / math.sqrt(3), abs=1e-4)
    assert m.clean_drop == pytest.approx(0.03)
    assert m.n_seeds == 3
    # random baseline: everything pruned loses 0.2, so the dense model is best
    assert s.loc["random"].keep_best == 1.0 and s.loc["random"].adv_gain == pytest.approx(0.0)


def test_keep_at_drop_known_answer():
    t = _table()
    k = keep_at_drop(t, drop=0.05).set_index("method")
    # magnitude clean: 0.98, 0.97, 0.95 (within 0.05), 0.70 (not): smallest tolerated keep 0.8
    assert k.loc["magnitude", "keep_min"] == 0.8
    # random: 0.98, then 0.77 -> only the dense model
    assert k.loc["random", "keep_min"] == 1.0
    assert keep_at_drop(t, drop=0.5).set_index("method").loc["magnitude", "keep_min"] == 0.5


def test_accuracy_summary_wide():
    s = accuracy_summary(_table())
    row = s[(s.method == "magnitude") & (s.keep_ratio == 0.8)].iloc[0]
    assert row.adv_mean == pytest.approx(0.60) and row.clean_mean == pytest.approx(0.95)
    assert row.adv_n == 3


def test_plot_accuracy_vs_keep_draws_clean_and_attacked_per_method():
    fig, ax = plt.subplots()
    plot_accuracy_vs_keep(_table(), ax)
    labels = [l.get_label() for l in ax.get_lines()]
    assert len(labels) == 4  # 2 methods x (clean, attacked)
    assert any("random" in l for l in labels) and any("FGSM 4/255" in l for l in labels)
    assert ax.xaxis_inverted()
    # the attacked magnitude curve plots the mean in percent
    line = next(l for l in ax.get_lines() if l.get_label().startswith("magnitude") and "FGSM" in l.get_label())
    y = dict(zip(line.get_xdata(), line.get_ydata()))
    assert y[0.8] == pytest.approx(60.0)
    plt.close(fig)
    t = _table()
    t2 = pd.concat([t, t.assign(model="mlp3")])
    fig, ax = plt.subplots()
    with pytest.raises(ConfigError, match="one model"):
        plot_accuracy_vs_keep(t2, ax)
    with pytest.raises(ConfigError, match="no rows"):
        plot_accuracy_vs_keep(t, ax, attack="pgd")
    plt.close(fig)


def test_caption_names_settings():
    t = _table()
    text = caption("Fig. 2", profile="quick", data=["MNIST, exact bytes from somewhere"], epochs=2, seeds=[0, 1, 2],
                   n_eval=100, device="cpu (1 threads)", attacks=t)
    for piece in ("quick", "MNIST, exact bytes", "2 epoch", "3 seeds", "95% t-interval", "FGSM", "4/255",
                  "1 step", "attack seed 0", "n = 100", "cpu (1 threads)"):
        assert piece in text, piece
    one = caption("x", profile="cpu", data="d", epochs=1, seeds=[0], n_eval=5, device="cpu")
    assert "one run (seed 0)" in one.lower()
    assert "PGD" not in attack_summary(t)
    # one clause per attack setting, the attack seeds listed together
    t2 = t.assign(attack_seed=t.seed)
    summ = attack_summary(t2)
    assert summ.count("FGSM") == 1 and "attack seeds 0, 1, 2" in summ


def test_sweet_spot_ties_favour_less_pruning():
    rows = [dict(model="m", dataset="d", method="magnitude", keep_ratio=k, attack="fgsm", eps=0.1, seed=0,
                 clean_acc=1.0, adv_acc=1.0) for k in (1.0, 0.5, 0.9)]
    s = sweet_spot(pd.DataFrame(rows)).iloc[0]
    assert s.keep_best == 1.0 and s.adv_gain == 0.0
    rows[2]["adv_acc"] = 1.0
    rows[0]["adv_acc"] = 0.5  # dense worse; 0.9 and 0.5 tie -> 0.9
    s = sweet_spot(pd.DataFrame(rows)).iloc[0]
    assert s.keep_best == 0.9


def test_save_figure_and_table(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, tmp_path / "out", "fig")
    plt.close(fig)
    assert sorted(p.name for p in paths) == ["fig.png", "fig.svg"]
    assert (tmp_path / "out" / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "out" / "fig.svg").read_bytes()[:2000]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fig.png", "fig.svg"]  # no temp files left
    t = _table()
    p = save_table(t, tmp_path / "out", "sweep")
    back = load_table(p)
    assert back.shape == t.shape and back.adv_acc.tolist() == pytest.approx(t.adv_acc.tolist())
    assert load_table(tmp_path / "missing.csv") is None


def test_number_formatting():
    assert pct(0.91234) == "91.2%" and pct(float("nan")) == "n/a"
    assert pp(0.031) == "+3.1 pp" and pp(-0.0) == "+0.0 pp" and pp(-0.00001) == "+0.0 pp" and pp(-0.02) == "-2.0 pp"
