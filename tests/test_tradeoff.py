"""Tests of prunerob.theory.tradeoff (App. E-G) and prunerob.cli.theory.

Known answers come from hand computation, brute-force grids and vertex enumeration; the
findings they pin down are written up in book/theory/_findings_tradeoff.md.
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from prunerob.config import ConfigError
from prunerob.theory import tradeoff as T


def _rand_constants(rng, L):
    A = float(np.exp(rng.uniform(-2, 2)))
    b = rng.uniform(1, 5, L)
    C = float(np.exp(rng.uniform(-2, 2)))
    return T.Constants(A, b, C)


# ------------------------------------------------------------------ constants and objective
def test_constants_hand_2x2():
    # W1 = diag(3, 4): ||.||_F = 5, ||.||_2 = 4.  W2 = ones(2,2): ||.||_F = 2, ||.||_2 = 2 (rank 1).
    W = [np.array([[3.0, 0.0], [0.0, 4.0]]), torch.ones(2, 2)]
    A, b, C = T.constants(W, x_norm=2.0)
    assert A == pytest.approx(10.0)
    assert b == pytest.approx([1.25, 1.0])
    assert C == pytest.approx(2.0 * 4.0 * 2.0)
    assert T.constants(W, 2.0, eps=0.5).A == pytest.approx(5.0)
    assert list(T.constants(W).sizes) == [4, 4]


def test_objective_known_value():
    # gamma = 10 * 0.5 * 0.8 = 4; zeta = 16 (1.25 sqrt(.75) + 0.6); J = (4 + zeta)/2
    J = T.objective_J([0.25, 0.64], 10.0, [1.25, 1.0], 16.0, 0.5)
    zeta = 16 * (1.25 * math.sqrt(0.75) + 0.6)
    assert J == pytest.approx(0.5 * 4 + 0.5 * zeta, rel=1e-14)
    P = np.array([[1.0, 1.0], [0.0, 1.0]])
    assert T.objective_J(P, 10.0, [1.25, 1.0], 16.0, 0.3) == pytest.approx([3.0, 0.7 * 16 * 1.25])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_lam_raises(bad):
    with pytest.raises(ConfigError, match="lam"):
        T.objective_J([0.5], 1.0, [1.0], 1.0, bad)
    with pytest.raises(ConfigError, match="lam"):
        T.algorithm1(T.Constants(1.0, [1.0], 1.0), bad)


def test_bad_mode_and_p():
    k = T.Constants(1.0, [1.0, 2.0], 1.0)
    with pytest.raises(ConfigError, match="mode"):
        T.algorithm1(k, 0.5, mode="global")
    with pytest.raises(ConfigError, match="keep probabilities"):
        T.objective_J([0.5, 1.2], 1.0, [1.0, 2.0], 1.0, 0.5)
    with pytest.raises(ConfigError, match="p0"):
        T.algorithm1(k, 0.5, p0=[0.2, 0.9], mode="uniform")


# ------------------------------------------------------------------ Eq. 21-24
def test_eq23_stable_form_equals_printed():
    rng = np.random.default_rng(1)
    g, r = np.exp(rng.uniform(-5, 5, 1000)), np.exp(rng.uniform(-5, 5, 1000))
    t = T.eq23_root(g, r)
    assert np.allclose(t, T.eq23_root_printed(g, r), rtol=1e-9, atol=1e-12)
    assert np.allclose(r * t**2 + g * t - r, 0, atol=1e-9 * np.maximum(g, r))  # Eq. 22
    assert np.all((t >= 0) & (t <= 1))


def test_coordinatewise_concave_and_eq21_fixed_point_is_a_maximum():
    """J(p_k) = a sqrt(p_k) + c sqrt(1-p_k) + const is concave; its stationary point
    p* = a^2/(a^2+c^2) (= the fixed point of Eq. 21-24 with gamma = gamma(p)) is the MAXIMUM."""
    rng = np.random.default_rng(2)
    for _ in range(50):
        k = _rand_constants(rng, 3)
        lam = rng.uniform(0.05, 0.95)
        p = rng.uniform(0.05, 0.95, 3)
        grid = np.linspace(0, 1, 2001)
        P = np.repeat(p[None], grid.size, 0)
        P[:, 0] = grid
        Jg = T.objective_J(P, k.A, k.b, k.C, lam)
        assert np.all(np.diff(Jg, 2) < 1e-12)  # concave along the coordinate
        a = lam * k.A * math.sqrt(p[1] * p[2])
        c = (1 - lam) * k.C * k.b[0]
        pstar = a * a / (a * a + c * c)
        # Eq. 23 evaluated with the self-consistent gamma returns p* (fixed point)
        t = float(T.eq23_root(lam * k.A * math.sqrt(pstar * p[1] * p[2]), c))
        assert 1 - t * t == pytest.approx(pstar, rel=1e-9)
        assert Jg.max() == pytest.approx(math.hypot(a, c) + T.objective_J(p, k.A, k.b, k.C, lam)
                                         - a * math.sqrt(p[0]) - c * math.sqrt(1 - p[0]), rel=1e-4)
        assert Jg.argmin() in (0, grid.size - 1)  # minimum at an endpoint


# ------------------------------------------------------------------ Algorithm 1 behaviour
def test_algorithm1_J_never_decreases_from_p0_1():
    """Measured: from p0 = 1 (and from random p0) J is non-decreasing along Algorithm 1."""
    rng = np.random.default_rng(3)
    strictly_up = 0
    for i in range(200):
        k = _rand_constants(rng, int(rng.integers(2, 5)))
        lam = rng.uniform(0.01, 0.99)
        p0 = 1.0 if i % 2 == 0 else rng.uniform(0, 1, k.L)
        r = T.algorithm1(k, lam, p0=p0, return_history=True)
        J = np.array([h["J"] for h in r.history])
        assert np.all(np.diff(J) >= -1e-12 * J[:-1])
        strictly_up += J[-1] > J[0] * (1 + 1e-9)
        assert len(r.history) == r.iterations + 1
    assert strictly_up >= 190


def test_algorithm1_lam0_prunes_everything():
    k = T.Constants(3.0, [1.5, 2.0, 4.0], 2.0)
    r = T.algorithm1(k, 0.0, return_history=True)
    assert np.all(r.keep == 0.0)  # t* = 1 -> p = 0
    assert r.J == pytest.approx(2.0 * 7.5)  # = max of zeta
    assert r.history[0]["J"] == 0.0  # J^(0) at p0 = 1 was already the minimum
    m = T.minimize_J(k, 0.0)
    assert np.all(m.keep == 1.0) and m.J == 0.0


def test_algorithm1_lam1():
    k = T.Constants(3.0, [1.5, 2.0], 2.0)
    r = T.algorithm1(k, 1.0)
    assert np.all(r.keep == 1.0) and r.J == pytest.approx(3.0) and r.notes  # lam -> 1^- limit
    r0 = T.algorithm1(k, 1.0, p0=[0.0, 1.0])
    assert np.all(r0.keep == 0.0) and r0.J == 0.0  # gamma = 0: limit t* = 1
    assert np.all(np.isnan(T.algorithm1(k, 1.0, at_lam1="nan", max_iter=3).keep))
    with pytest.raises(ConfigError, match="lam"):
        T.algorithm1(k, 1.0, at_lam1="raise")
    assert T.minimize_J(k, 1.0).J == 0.0  # J = gamma, zero once one layer is removed
    # the printed Eq. 23 is 0/0 there
    assert np.isnan(T.eq23_root_printed(3.0, 0.0))


def test_algorithm1_stopping_rule_and_jacobi():
    """Line 5 computes gamma once per sweep: one Jacobi step equals the hand update."""
    k = T.Constants(2.0, [1.2, 1.5], 1.0)
    lam = 0.8
    r = T.algorithm1(k, lam, max_iter=1, return_history=True)
    g = lam * 2.0
    expect = [1 - T.eq23_root(g, (1 - lam) * bk) ** 2 for bk in (1.2, 1.5)]
    assert r.keep == pytest.approx(expect, rel=1e-12)
    full = T.algorithm1(k, lam, tol=1e-6, return_history=True)
    J = [h["J"] for h in full.history]
    assert full.converged and abs(J[-1] - J[-2]) / (J[-2] + 1e-12) < 1e-6
    assert all(abs(J[i + 1] - J[i]) / (J[i] + 1e-12) >= 1e-6 for i in range(len(J) - 2))
    gs = T.algorithm1(k, lam, sweep="gauss-seidel")
    assert gs.J >= T.minimize_J(k, lam).J


def test_algorithm1_prunes_larger_b_more():
    """All layers share gamma in a Jacobi sweep and t*(g, r) increases with r = (1-lam) C b_k, so
    the layer with the larger ||W||_F/||W||_2 always gets the smaller keep probability."""
    rng = np.random.default_rng(12)
    for _ in range(50):
        k = _rand_constants(rng, 4)
        r = T.algorithm1(k, rng.uniform(0.3, 0.99), p0=rng.uniform(0.2, 1, 4), max_iter=3)
        order = np.argsort(k.b)
        assert np.all(np.diff(r.keep[order]) <= 1e-15)


@pytest.mark.parametrize("L", [2, 3])
def test_algorithm1_vs_grid_and_vertex(L):
    rng = np.random.default_rng(10 + L)
    grid = 101 if L == 2 else 41
    strictly_worse = 0
    n = 12
    for _ in range(n):
        k = _rand_constants(rng, L)
        lam = rng.uniform(0.05, 0.95)
        a1 = T.algorithm1(k, lam)
        gmin = T.brute_force_J(k, lam, grid=grid)
        vmin = T.minimize_J(k, lam, method="vertex")
        emin = T.minimize_J(k, lam, method="exact")
        # the grid contains the vertices and no grid point beats them: min is at a vertex
        assert vmin.J == pytest.approx(gmin.J, rel=1e-12, abs=1e-14)
        assert emin.J == pytest.approx(vmin.J, rel=1e-12, abs=1e-14)
        assert emin.J == pytest.approx(min(lam * k.A, (1 - lam) * k.C * k.b.min()), rel=1e-12)
        assert a1.J >= gmin.J - 1e-12
        strictly_worse += a1.J > gmin.J * (1 + 1e-6)
    assert strictly_worse == n  # measured: Algorithm 1 never reached the minimum for L >= 2


def test_exact_equals_vertex_larger_L():
    rng = np.random.default_rng(5)
    for _ in range(30):
        k = _rand_constants(rng, int(rng.integers(1, 8)))
        lam = rng.uniform(0, 1)
        vertex = T.minimize_J(k, lam, "vertex").J
        assert T.minimize_J(k, lam, "exact").J == pytest.approx(vertex, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------ uniform mode
def test_uniform_mode_exact_vs_grid():
    rng = np.random.default_rng(6)
    interior = 0
    for _ in range(40):
        k = _rand_constants(rng, int(rng.integers(1, 6)))
        lam = rng.uniform(0.02, 0.98)
        ex = T.minimize_J(k, lam, mode="uniform")
        gr = T.brute_force_J(k, lam, grid=20001, mode="uniform")
        assert ex.J <= gr.J + 1e-12 * max(1, gr.J)
        assert ex.J == pytest.approx(gr.J, rel=1e-6)
        interior += 0 < ex.keep[0] < 1
        if k.L <= 2:
            assert ex.keep[0] in (0.0, 1.0)  # concave on the diagonal
    # known instance with an interior minimum (L = 3): J_u = 0.5 p^1.5 + 0.25 sqrt(1-p)
    k = T.Constants(1.0, [1.0, 1.0, 1.0], 1 / 6)  # C*B = 0.5 -> (1-lam) C B = 0.25 at lam = 0.5
    ex = T.minimize_J(k, 0.5, mode="uniform")
    assert 0 < ex.keep[0] < 1 and ex.J < min(0.5, 0.25)
    gr = T.brute_force_J(k, 0.5, grid=200001, mode="uniform")
    assert ex.keep[0] == pytest.approx(gr.keep[0], abs=1e-4)


def test_uniform_algorithm1_update_matches_derivation():
    k = T.Constants(2.0, [1.2, 1.5, 2.0], 0.7)
    lam = 0.6
    r = T.algorithm1(k, lam, mode="uniform", max_iter=1)
    g = lam * 3 * 2.0  # lam * L * gamma(1)
    t = T.eq23_root(g, (1 - lam) * 0.7 * 4.7)
    assert r.keep == pytest.approx([1 - t**2] * 3)


# ------------------------------------------------------------------ constrained variants
@pytest.mark.parametrize("L", [2, 3])
def test_box_constrained_vs_grid(L):
    rng = np.random.default_rng(20 + L)
    for _ in range(8):
        k = _rand_constants(rng, L)
        lam, pmin = rng.uniform(0.05, 0.95), rng.uniform(0.1, 0.7)
        ex = T.minimize_J_constrained(k, lam, p_min=pmin)
        g = np.linspace(pmin, 1, 61 if L == 2 else 25)
        P = np.array(np.meshgrid(*[g] * L, indexing="ij")).reshape(L, -1).T
        Jg = T.objective_J(P, k.A, k.b, k.C, lam)
        assert ex.J == pytest.approx(Jg.min(), rel=1e-12)  # grid contains the box vertices
        assert set(np.round(ex.keep, 12)) <= {round(pmin, 12), 1.0}


@pytest.mark.parametrize("L", [2, 3])
def test_budget_exact_vs_brute_force(L):
    rng = np.random.default_rng(30 + L)
    for _ in range(8):
        k = _rand_constants(rng, L)
        n = rng.integers(10, 1000, L).astype(float)
        lam, keep = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)
        ex = T.minimize_J_budget(k, lam, keep, sizes=n)
        assert ex.keep @ n == pytest.approx(keep * n.sum(), rel=1e-10)
        assert np.sum((ex.keep > 1e-12) & (ex.keep < 1 - 1e-12)) <= 1  # at most one fractional layer
        # brute force: for each choice of the solved coordinate j, a grid over the other L-1
        # coordinates (values 0 and 1 included) with p_j from the budget
        g = np.linspace(0, 1, 2001 if L == 2 else 201)
        cands = []
        for j in range(L):
            P = np.array(np.meshgrid(*[g] * (L - 1), indexing="ij")).reshape(L - 1, -1).T
            nj = np.delete(n, j)
            pj = (keep * n.sum() - P @ nj) / n[j]
            ok = (pj >= 0) & (pj <= 1)
            cands.append(np.insert(P[ok], j, pj[ok], axis=1))
        P = np.concatenate(cands)
        Jg = T.objective_J(P, k.A, k.b, k.C, lam)
        assert ex.J <= Jg.min() + 1e-12 * Jg.min()
        assert ex.J == pytest.approx(Jg.min(), rel=1e-9)


def test_budget_needs_sizes_for_constants():
    with pytest.raises(ConfigError, match="sizes"):
        T.minimize_J_budget(T.Constants(1.0, [1.0, 2.0], 1.0), 0.5, 0.5)
    r = T.minimize_J_budget(T.Constants(1.0, [1.0, 2.0], 1.0), 0.5, 0.5, sizes="equal")
    assert r.keep.mean() == pytest.approx(0.5)


# ------------------------------------------------------------------ Pareto (Lemma 2/3, Remark 1)
def test_lemma3_rate_vs_finite_differences():
    rng = np.random.default_rng(7)
    W = [rng.normal(size=(6, 5)), rng.normal(size=(4, 6)), rng.normal(size=(3, 4))]
    df = T.uniform_front(W, x_norm=2.0, ps=np.linspace(0.05, 0.95, 19))
    assert np.allclose(df.dgamma_dzeta, df.dgamma_dzeta_fd, rtol=1e-5)
    assert np.all(df.dgamma_dzeta < 0)


def test_uniform_front_pareto_among_uniform_but_dominated_layerwise():
    k = T.Constants(2.0, [1.2, 1.5], 1.0)
    df = T.uniform_front(k, ps=np.linspace(0, 1, 21))
    assert df.pareto_among_uniform.all()
    assert df.dominated_by_layerwise.iloc[:-1].all()  # every p < 1
    assert not df.dominated_by_layerwise.iloc[-1]  # p = 1 (zeta = 0) is Pareto-optimal
    # hand numbers at p = 0.9: uniform zeta = 2.7 sqrt(0.1); layer 1 at 0.81: 1.2 sqrt(0.19)
    row = T.uniform_front(k, ps=[0.9]).iloc[0]
    assert row.zeta == pytest.approx(2.7 * math.sqrt(0.1))
    assert row.dom_keep == pytest.approx(0.81) and row.dom_layer == 1
    assert row.dom_gamma == pytest.approx(row.gamma) and row.dom_zeta == pytest.approx(1.2 * math.sqrt(0.19))


def test_layerwise_front_is_quarter_ellipse():
    """(gamma/A)^2 + (zeta/(C b_min))^2 >= 1 for every configuration, = 1 on the front."""
    rng = np.random.default_rng(8)
    k = _rand_constants(rng, 4)
    P = rng.uniform(0, 1, (20000, 4)) ** rng.uniform(0.1, 3, (20000, 1))
    e = (T.gamma_of(P, k.A) / k.A) ** 2 + (T.zeta_of(P, k.b, k.C) / (k.C * k.b.min())) ** 2
    assert e.min() >= 1 - 1e-12
    front = T.layerwise_front(k, np.linspace(0, 1, 11))
    assert np.allclose((front.gamma / k.A) ** 2 + (front.zeta / (k.C * k.b.min())) ** 2, 1)


def test_algorithm1_stationary_point_is_not_pareto_optimal():
    """Remark 1's condition (grad of lam*gamma + (1-lam)*zeta = 0) holds at Algorithm 1's interior
    fixed point, yet a per-layer configuration dominates it."""
    k = T.Constants(2.0, [1.2, 1.5], 1.0)
    r = T.algorithm1(k, 0.9, tol=1e-14, max_iter=500)
    assert np.all((r.keep > 0) & (r.keep < 1))
    p = r.keep
    grad = [0.9 * r.gamma / (2 * p[j]) - 0.1 * k.C * k.b[j] / (2 * math.sqrt(1 - p[j])) for j in range(2)]
    assert np.allclose(grad, 0, atol=1e-6)
    _, dg, dz = T.dominating_point(p, k)
    assert dg == pytest.approx(r.gamma) and dz < r.zeta * 0.8
    # not even LOCALLY Pareto-optimal: a small move along prod p = const lowers zeta
    d = 1e-3
    moved = [p * np.exp(np.array([d, -d])), p * np.exp(np.array([-d, d]))]
    moved = [q for q in moved if np.all(q <= 1)]
    assert any(T.gamma_of(q, k.A) == pytest.approx(r.gamma, rel=1e-12) and T.zeta_of(q, k.b, k.C) < r.zeta
               for q in moved)


def test_pareto_sweep_table():
    rng = np.random.default_rng(9)
    W = [rng.normal(size=(6, 5)), rng.normal(size=(3, 6))]
    df = T.pareto_sweep(W, [0, 0.5, 1], x_norm=1.5, budget=0.5)
    assert set(df.method) == {"algorithm1", "minimiser", "budget"}
    assert {"lam", "keep_1", "keep_2", "gamma", "zeta", "J"} <= set(df.columns)
    piv = df.pivot(index="lam", columns="method", values="J")
    assert np.all(piv["minimiser"] <= piv["algorithm1"] + 1e-12)
    assert np.all(piv["minimiser"] <= piv["budget"] + 1e-12)


def test_agrees_with_bounds_module():
    B = pytest.importorskip("prunerob.theory.bounds")
    rng = np.random.default_rng(11)
    W = [rng.normal(size=(7, 5)), rng.normal(size=(4, 7)), rng.normal(size=(3, 4))]
    k = T.constants(W, 2.5)
    for _ in range(5):
        p = rng.uniform(0, 1, 3)
        assert T.gamma_of(p, k.A) == pytest.approx(B.theorem2_gamma(W, list(p)), rel=1e-12)
        assert T.zeta_of(p, k.b, k.C) == pytest.approx(B.proposition1_zeta(W, list(p), 2.5), rel=1e-12)


# ------------------------------------------------------------------ CLI
def _parser():
    from prunerob.cli.theory import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="cmd"))
    return p


def test_cli_optimize_random_mlp(capsys, tmp_path):
    p = _parser()
    out_csv = tmp_path / "t.csv"
    a = p.parse_args(["optimize", "--random-mlp", "20,10,5", "--lam", "0,0.5,1", "--x-norm", "3",
                      "--budget", "0.5", "--csv", str(out_csv)])
    assert a.func(a) == 0
    out = capsys.readouterr().out
    assert "alg1_keep" in out and "min_J" in out and "budget_J" in out
    import pandas as pd

    df = pd.read_csv(out_csv)
    assert list(df.lam) == [0, 0.5, 1]
    assert np.all(df.min_J <= df.alg1_J + 1e-12)
    assert df.alg1_keep[0] == "0.0000,0.0000" and df.min_keep[0] == "1.0000,1.0000"
    a = p.parse_args(["optimize", "--random-mlp", "20,10,8,5", "--mode", "uniform", "--lam", "0.5"])
    assert a.func(a) == 0


@pytest.mark.parametrize("lam", ["0,1.5", "-0.1", "abc"])
def test_cli_bad_lam(lam):
    p = _parser()
    a = p.parse_args(["optimize", "--random-mlp", "6,4,3", "--lam", lam])
    with pytest.raises(ConfigError, match="lam"):
        a.func(a)


def test_cli_bounds_random_mlp(capsys):
    pytest.importorskip("prunerob.theory.bounds")
    p = _parser()
    a = p.parse_args(
        ["bounds", "--random-mlp", "20,10,5", "--keep", "1,0.5", "--eps", "4/255", "--x-norm", "2"]
    )
    assert a.func(a) == 0
    out = capsys.readouterr().out
    assert "thm2_printed" in out and "realised_magnitude" in out and "prop1_zeta" in out


def test_cli_checkpoint_and_auto_x_norm(tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    import prunerob.core.data as D
    from prunerob.core.models import build_model

    info = D.DatasetInfo("mnist", 3, (1, 2, 2), (0.5,), (0.25,))
    model = build_model("mlp", info, hidden=(5,))
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    meta = {"arch": "mlp", "dataset": "mnist", "config": {"hidden": [5]},
            "data_info": {"name": "mnist", "num_classes": 3, "input_shape": [1, 2, 2],
                          "mean": [0.5], "std": [0.25]}}
    path.with_suffix(".json").write_text(json.dumps(meta))
    # stub test split: two images with norms 1 and 2 (pixel values /255)
    x = torch.zeros(2, 1, 2, 2, dtype=torch.uint8)
    x[0, 0, 0, 0] = 255
    x[1, 0, :, :] = 255
    fake = D.ArrayDataset("mnist", "test", x, torch.zeros(2, dtype=torch.int64), 3, (0.5,), (0.25,), "stub")
    monkeypatch.setattr(D, "load_dataset", lambda name, split="test", **kw: fake)
    # the CLI checks the first layer's width against the data set's shape: the stub's 1x2x2
    stub_info = D.DatasetInfo("mnist", 3, (1, 2, 2), (0.5,), (0.25,))
    monkeypatch.setattr(D, "dataset_info", lambda name, image_size=None: stub_info)
    p = _parser()
    a = p.parse_args(["optimize", "--checkpoint", str(path), "--lam", "0.5"])
    assert a.func(a) == 0
    out = capsys.readouterr().out
    assert "x_norm=1.5000 (auto" in out
    from prunerob.cli.theory import load_mlp_checkpoint

    ws, _, _ = load_mlp_checkpoint(path)
    k = T.constants(ws, 1.5)
    assert f"A=prod||W||_F={k.A:.6g}" in out
