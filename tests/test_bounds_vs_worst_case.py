"""Printed bounds vs the worst-case estimator: recorded counterexamples and checks of the corrected bounds.

Every printed statement found wrong is shown violated by its recorded (smallest found)
counterexample; every corrected statement is checked on a seeded batch of small random networks
(worst case found by PGD <= bound; for expectations over masks, Monte-Carlo mean <= bound + 3 se).
The numbers are quoted in book/theory/_findings_bounds.md.
"""
from __future__ import annotations

import math

import pytest
import torch

from prunerob.theory import bounds as B
from prunerob.theory.risk import (
    adversarial_risk_worst_case,
    bernoulli_sampler,
    mlp_fn,
    optimality_zeta,
    risk_over_masks,
)
from prunerob.theory.transformer import OneLayerTransformer

DT = torch.float64
EPS_GRID = (0.01, 0.1, 1.0, 3.0)


def _tok(rows):
    return torch.tensor([rows], dtype=DT)


# ============================================================ Lemma 1
def ln_counterexample():
    """d=2, n=1, no attention (all zero), FFN W1 = W2 = I, LayerNorm(eps=1e-5), flat token (0.5, 0.5)."""
    Z, eye = torch.zeros(2, 2, dtype=DT), torch.eye(2, dtype=DT)
    mats = {"Q": [Z], "K": [Z], "V": [Z], "O": Z, "W1": eye, "W2": eye, "layernorm": True, "ln_eps": 1e-5}
    return mats, OneLayerTransformer.from_matrices(mats), _tok([[0.5, 0.5]])


def test_lemma1_fails_with_layernorm():
    mats, model, X = ln_counterexample()
    for eps, min_ratio in ((0.01, 10.0), (0.1, 1.3)):
        wc = float(adversarial_risk_worst_case(model.block, X, eps, steps=50, restarts=3))
        printed = B.lemma1_gamma(mats, eps)  # = 4 * 1 * 2 * eps
        assert printed == pytest.approx(8 * eps)
        assert wc > min_ratio * printed, (eps, wc, printed)
        assert wc <= B.lemma1_gamma_corrected(mats, eps, n_tokens=1)


def test_lemma1_fails_with_layernorm_random_weights_flat_patches():
    # a random model evaluated at flat image patches (constant tokens), as in a black background
    torch.manual_seed(3)
    model = OneLayerTransformer(d=4, heads=2, layernorm=True, init_scale=0.5).double()
    X = torch.tensor([[[0.2] * 4, [0.7] * 4]], dtype=DT)
    wc = float(adversarial_risk_worst_case(model.block, X, 0.01, steps=40, restarts=3))
    assert wc > 2 * B.lemma1_gamma(model, 0.01)
    assert wc <= B.lemma1_gamma_corrected(model, 0.01, n_tokens=2)


def attention_counterexample(d=24, a=4.0, c=100.0):
    """No LN, n=2, H=1: rank-one A = W^Q W^K^T / sqrt(d) = s^2 w 1^T / d, V = I, O = c I, FFN = 0.

    w = (2u - 1)/sqrt(d) with u the indicator of the first d/2 coordinates, W^Q = s w e1^T,
    W^K = s (1/sqrt d) e1^T, s^2 = a sqrt(d) (so ||A||_2 = a, ||W^Q|| ||W^K|| / sqrt(d) = a).
    Tokens x1 = 0.98 * 1, x2 = 0.02 * 1: token 1 attends half/half, with a large score gradient.
    """
    u = torch.zeros(d, dtype=DT)
    u[: d // 2] = 1
    w = (2 * u - 1) / math.sqrt(d)
    s = math.sqrt(a * math.sqrt(d))
    e1 = torch.zeros(d, dtype=DT)
    e1[0] = 1
    Id, Zd = torch.eye(d, dtype=DT), torch.zeros(d, d, dtype=DT)
    mats = {
        "Q": [s * torch.outer(w, e1)],
        "K": [s * torch.outer(torch.ones(d, dtype=DT) / math.sqrt(d), e1)],
        "V": [Id], "O": c * Id, "W1": Zd, "W2": Zd, "layernorm": False,
    }
    X = torch.stack([0.98 * torch.ones(d, dtype=DT), 0.02 * torch.ones(d, dtype=DT)])[None]
    return mats, OneLayerTransformer.from_matrices(mats), X


def test_lemma1_fails_without_layernorm_inputs_in_box():
    mats, model, X = attention_counterexample()
    eps = 0.01
    wc = float(adversarial_risk_worst_case(model.block, X, eps, steps=50, restarts=3))  # box=True
    printed = B.lemma1_gamma(mats, eps)
    assert wc > 1.15 * printed, (wc, printed)  # measured 22.12 vs 18.52
    assert wc <= B.lemma1_gamma_corrected(mats, eps, n_tokens=2)


@pytest.mark.parametrize("layernorm", [False, True])
def test_lemma1_corrected_holds_on_random_transformers(layernorm):
    g = torch.Generator().manual_seed(11)
    for seed, (d, H, n) in enumerate([(4, 1, 2), (6, 2, 3), (8, 2, 4), (4, 2, 4)]):
        torch.manual_seed(seed)
        model = OneLayerTransformer(d=d, heads=H, layernorm=layernorm, init_scale=2.0).double()
        X = torch.rand(3, n, d, generator=g, dtype=DT)
        for eps in EPS_GRID:
            wc = float(
                adversarial_risk_worst_case(model.block, X, eps, steps=15, restarts=1, seed=seed).max()
            )
            assert wc <= B.lemma1_gamma_corrected(model, eps, n_tokens=n), (seed, eps)


# ============================================================ Theorem 1
def ffn_identity_mats(d=4):
    Z, eye = torch.zeros(d, d, dtype=DT), torch.eye(d, dtype=DT)
    return {"Q": [Z], "K": [Z], "V": [Z], "O": Z, "W1": eye, "W2": eye, "layernorm": False}


def test_theorem1_fails_mixed_norms_deterministic():
    # keep = 0 removes every matrix: the pruned block is the identity, risk = eps exactly,
    # but C * gamma = (16/9) * 2 * (1 + 0)/(1 + 4) * eps = 0.711 eps.
    mats = ffn_identity_mats(4)
    model = OneLayerTransformer.from_matrices(mats)
    X = torch.full((1, 2, 4), 0.5, dtype=DT)
    eps = 0.1
    masks = {k: torch.zeros_like(v) for k, v in model.prunable_weights().items()}
    wc = float(adversarial_risk_worst_case(model.pruned_copy(masks).block, X, eps, box=False))
    assert wc == pytest.approx(eps, rel=1e-9)
    printed = B.theorem1_gamma(mats, eps, keep=0.0)
    assert printed == pytest.approx(16 / 9 * 2 / 5 * eps)
    assert wc > 1.4 * printed
    assert wc <= B.theorem1_gamma_corrected(mats, eps, 0.0, n_tokens=2) * (1 + 1e-9)


def dense_ov_mats(d=8, c=3.0):
    Z, J = torch.zeros(d, d, dtype=DT), torch.ones(d, d, dtype=DT)
    return {"Q": [Z], "K": [Z], "V": [c * J], "O": c * J, "W1": Z, "W2": Z, "layernorm": False}


def test_theorem1_p_squared_fails_even_with_consistent_norms():
    # Q = K = 0 (uniform attention), V = O = 3 * ones(8, 8), keep 1/8. Printed p^2 scaling, in
    # either norm (here ||.||_2 = ||.||_F for the rank-one V, O), gives (64/49)(1 + 576 p^2) eps
    # = 13.06 eps; the worst case over masks is ~ ||I + 9 B1 B2||_2 eps, mean ~ 22 eps
    # (E||B1 B2||_2 = 2.34 for independent 8x8 Bernoulli(1/8) masks).
    d, p, eps = 8, 1 / 8, 0.1
    mats = dense_ov_mats(d)
    model = OneLayerTransformer.from_matrices(mats)
    X = torch.full((1, 2, d), 0.5, dtype=DT)
    mean, se = risk_over_masks(
        model, p, X, eps, n_masks=40, seed=0, method="block", box=False, steps=15, restarts=1
    )
    printed = B.theorem1_gamma(mats, eps, p)
    frob_consistent = (d / (d - 1)) ** 2 * (1 + p**2 * B.lemma1_C1_C2(mats, "fro")[0] - p**2) * eps
    assert printed == pytest.approx(frob_consistent)
    assert mean - 3 * se > 1.3 * printed, (mean, se, printed)
    assert mean + 3 * se <= B.theorem1_gamma_corrected(mats, eps, p, n_tokens=2)


def test_theorem1_printed_fails_with_layernorm_at_keep_one():
    mats, model, X = ln_counterexample()
    assert B.theorem1_C(mats, 1.0) == pytest.approx(1.0)
    wc = float(adversarial_risk_worst_case(model.block, X, 0.01, steps=50, restarts=3))
    assert wc > 10 * B.theorem1_gamma(mats, 0.01, 1.0)


def test_theorem1_corrected_holds_on_random_transformers():
    g = torch.Generator().manual_seed(5)
    configs = [(4, 1, 2, False, 0.5), (6, 2, 3, False, 0.8), (4, 2, 2, True, 0.3)]
    for seed, (d, H, n, ln, p) in enumerate(configs):
        torch.manual_seed(seed)
        model = OneLayerTransformer(d=d, heads=H, layernorm=ln, init_scale=2.0).double()
        X = torch.rand(2, n, d, generator=g, dtype=DT)
        for eps in (0.1, 1.0):
            mean, se = risk_over_masks(
                model, p, X, eps, n_masks=6, seed=seed, method="block", steps=10, restarts=1
            )
            assert mean <= B.theorem1_gamma_corrected(model, eps, p, n_tokens=n) + 3 * se


# ============================================================ Theorem 2
def test_theorem2_fails_without_eps_no_box():
    W = [torch.tensor([[1.0]], dtype=DT)]
    x = torch.tensor([[0.5]], dtype=DT)
    wc = float(adversarial_risk_worst_case(mlp_fn(W), x, 2.0, box=False))
    assert wc == pytest.approx(2.0, rel=1e-6)
    assert B.theorem2_gamma(W, [1.0]) == pytest.approx(1.0)
    assert wc > 1.9 * B.theorem2_gamma(W, [1.0])
    assert wc <= B.theorem2_gamma(W, [1.0], eps=2.0) + 1e-9
    assert wc <= B.theorem2_gamma_corrected(W, [1.0], 2.0) + 1e-9


def test_theorem2_fails_without_eps_inside_box():
    # x = (0, 0) in [0,1]^2, eps = 2: the best x~ in the box is (1, 1); W = [[1, 1]] changes by 2 > sqrt(2)
    W = [torch.tensor([[1.0, 1.0]], dtype=DT)]
    x = torch.zeros(1, 2, dtype=DT)
    wc = float(adversarial_risk_worst_case(mlp_fn(W), x, 2.0, box=True))
    assert wc == pytest.approx(2.0, rel=1e-6)
    assert wc > 1.4 * B.theorem2_gamma(W, [1.0])
    # Bernoulli keep 3/4: E_masks sup = 2 * 3/4 = 1.5 > sqrt(3/4) sqrt(2) = 1.22
    mean, se = risk_over_masks(W, 0.75, x, 2.0, n_masks=300, seed=1, steps=10, restarts=2)
    assert abs(mean - 1.5) < 4 * se
    assert mean - 3 * se > B.theorem2_gamma(W, [0.75])


def _random_mlp(gen, depth, widths, bias):
    dims = [widths[0]] + list(widths[1 : depth + 1])
    ws = [torch.randn(dims[i + 1], dims[i], generator=gen, dtype=DT) for i in range(depth)]
    bs = [torch.randn(dims[i + 1], generator=gen, dtype=DT) if bias else None for i in range(depth)]
    return ws, (bs if bias else None)


def _magnitude_masks(ws, keep):
    out = []
    for w in ws:
        k = max(1, int(round(keep * w.numel())))
        thr = w.abs().flatten().sort(descending=True).values[k - 1]
        out.append((w.abs() >= thr).to(DT))
    return out


def test_theorem2_corrected_and_realised_hold_on_random_mlps():
    gen = torch.Generator().manual_seed(2024)
    for trial in range(6):
        depth = 1 + trial % 3
        widths = [int(v) for v in torch.randint(2, 9, (depth + 1,), generator=gen)]
        ws, bs = _random_mlp(gen, depth, widths, bias=trial % 2 == 0)
        x = torch.rand(3, widths[0], generator=gen, dtype=DT)
        per_entry = [torch.rand(w.shape, generator=gen, dtype=DT) for w in ws]
        for keep in (0.5, per_entry):
            for eps in (0.1, 3.0):
                sampler = bernoulli_sampler(ws, keep)
                mg = torch.Generator().manual_seed(trial)
                vals = []
                for _ in range(8):
                    masks = sampler(mg)
                    pruned = mlp_fn([m * w for m, w in zip(masks, ws, strict=True)], bs)
                    wc = adversarial_risk_worst_case(pruned, x, eps, steps=15, restarts=1)
                    assert float(wc.max()) <= B.realised_mask_bound(ws, masks, eps) * (1 + 1e-9)
                    vals.append(float(wc.mean()))
                t = torch.tensor(vals)
                mean, se = float(t.mean()), float(t.std() / math.sqrt(len(vals)))
                assert mean <= B.theorem2_gamma_corrected(ws, keep, eps) + 3 * se
                corrected = B.theorem2_gamma_corrected(ws, keep, eps)
                assert corrected <= B.theorem2_gamma(ws, keep, eps) * (1 + 1e-12)
        # magnitude pruning: a fixed mask; printed P_L = 1 gives the unpruned Frobenius product
        masks = _magnitude_masks(ws, 0.5)
        for eps in EPS_GRID:
            pruned = mlp_fn([m * w for m, w in zip(masks, ws, strict=True)], bs)
            wc = adversarial_risk_worst_case(pruned, x, eps, steps=15, restarts=1)
            assert float(wc.max()) <= B.realised_mask_bound(ws, masks, eps) * (1 + 1e-9)
            unpruned = eps * math.prod(float(w.norm()) for w in ws)
            assert B.theorem2_gamma(ws, masks, eps) == pytest.approx(unpruned)


# ============================================================ Proposition 1
def test_proposition1_fails_with_bias_at_zero_input():
    # f(x) = W2 relu(W1 x + b1), W1 = W2 = [[1]], b1 = [1], keep (1, 1/2), x0 = 0:
    # f(0) = 1, g(0) = B in {0, 1}: E|f - g| = 1/2, printed zeta = ||x0|| * ... = 0
    ws = [torch.tensor([[1.0]], dtype=DT), torch.tensor([[1.0]], dtype=DT)]
    bs = [torch.tensor([1.0], dtype=DT), None]
    x0 = torch.zeros(1, 1, dtype=DT)
    mean, se = optimality_zeta(ws, bernoulli_sampler(ws, [1.0, 0.5]), x0, n_masks=400, seed=0, biases=bs)
    assert abs(mean - 0.5) < 4 * se
    assert B.proposition1_zeta(ws, [1.0, 0.5], 0.0) == 0.0
    assert mean - 3 * se > 0.4
    # = sqrt(1/2) * ||b1||
    assert mean <= B.proposition1_zeta_corrected(ws, [1.0, 0.5], 0.0, biases=bs) + 3 * se


def test_proposition1_main_text_fails_when_norm_x0_above_one():
    # one layer W = [[1, 1]], keep 1/4, x0 = (1, 1): E|Delta x0| = 2 * 3/4 = 1.5 > sqrt(2 * 3/4) = 1.22
    ws = [torch.tensor([[1.0, 1.0]], dtype=DT)]
    x0 = torch.ones(1, 2, dtype=DT)
    mean, se = optimality_zeta(ws, bernoulli_sampler(ws, [0.25]), x0, n_masks=400, seed=0)
    assert abs(mean - 1.5) < 4 * se
    main = B.proposition1_zeta_main_text(ws, [0.25])
    assert main == pytest.approx(math.sqrt(1.5))
    assert mean - 3 * se > main
    assert mean <= B.proposition1_zeta(ws, [0.25], math.sqrt(2)) + 3 * se  # appendix version holds here


def test_proposition1_corrected_holds_and_printed_bias_free_holds_on_random_mlps():
    gen = torch.Generator().manual_seed(7)
    for trial in range(8):
        depth = 1 + trial % 3
        widths = [int(v) for v in torch.randint(2, 9, (depth + 1,), generator=gen)]
        ws, bs = _random_mlp(gen, depth, widths, bias=trial % 2 == 0)
        x0 = torch.rand(1, widths[0], generator=gen, dtype=DT)
        if trial % 4 == 0:
            x0 = torch.zeros_like(x0)
        keep = [torch.rand(w.shape, generator=gen, dtype=DT) for w in ws]
        mean, se = optimality_zeta(ws, bernoulli_sampler(ws, keep), x0, n_masks=200, seed=trial, biases=bs)
        assert mean <= B.proposition1_zeta_corrected(ws, keep, float(x0.norm()), biases=bs) + 3 * se
        if bs is None:  # the printed appendix version: no counterexample found for bias-free nets
            assert mean <= B.proposition1_zeta(ws, keep, float(x0.norm())) + 3 * se
        masks = _magnitude_masks(ws, 0.5)  # fixed masks
        pruned = mlp_fn([m * w for m, w in zip(masks, ws, strict=True)], bs)
        diff = float((mlp_fn(ws, bs)(x0) - pruned(x0)).norm())
        x0n = float(x0.norm())
        assert diff <= B.proposition1_realised(ws, masks, x0n, biases=bs) * (1 + 1e-9) + 1e-12
        assert diff <= B.proposition1_zeta_corrected(ws, masks, x0n, biases=bs) * (1 + 1e-9) + 1e-12


# ============================================================ wider seeded search (not a test)
def search(n_mlp: int = 48, n_tf: int = 24, n_masks: int = 30, seed: int = 0) -> list[dict]:
    """The seeded counterexample search behind the findings: ``python tests/test_bounds_vs_worst_case.py``.

    For each statement, records the worst ratio (estimated risk / bound) over the grid and how many
    configurations violate it by more than 3 standard errors. Monte-Carlo over ``n_masks`` masks;
    PGD with 20 steps x 2 restarts; transformer centres: uniform random tokens and flat tokens.
    """
    gen = torch.Generator().manual_seed(seed)
    stats: dict[str, dict] = {}

    def rec(name, est, se, bound, cfg):
        s = stats.setdefault(name, {"statement": name, "n": 0, "violations": 0, "max_ratio": 0.0, "at": None})
        s["n"] += 1
        ratio = est / bound if bound > 0 else (math.inf if est > 3 * se + 1e-12 else 0.0)
        if est - 3 * se > bound * (1 + 1e-9):
            s["violations"] += 1
        if ratio > s["max_ratio"]:
            s["max_ratio"] = ratio
            s["at"] = dict(cfg, est=round(est, 5), se=round(se, 5), bound=round(bound, 5))

    for trial in range(n_mlp):
        depth = 1 + trial % 3
        bias = (trial // 3) % 2 == 0
        widths = [int(v) for v in torch.randint(2, 9, (depth + 1,), generator=gen)]
        ws, bs = _random_mlp(gen, depth, widths, bias)
        x = torch.rand(4, widths[0], generator=gen, dtype=DT)
        kind = ("uniform", "per_entry", "magnitude")[(trial // 6) % 3]
        if kind == "uniform":
            keep = [float(torch.rand((), generator=gen))] * depth
            sampler = bernoulli_sampler(ws, keep)
        elif kind == "per_entry":
            keep = [torch.rand(w.shape, generator=gen, dtype=DT) for w in ws]
            sampler = bernoulli_sampler(ws, keep)
        else:
            keep = _magnitude_masks(ws, 0.5)
            sampler = lambda g, _m=keep: _m  # noqa: E731
        cfg = dict(model="mlp", trial=trial, depth=depth, widths=widths, bias=bias, masks=kind)
        for eps in EPS_GRID:
            mean, se = risk_over_masks(ws, keep, x, eps, n_masks=n_masks if kind != "magnitude" else 2,
                                       seed=trial, biases=bs, mask_sampler=sampler, steps=20, restarts=2)
            c = dict(cfg, eps=eps)
            rec("Theorem 2 (printed, no eps)", mean, se, B.theorem2_gamma(ws, keep), c)
            rec("Theorem 2 (printed x eps)", mean, se, B.theorem2_gamma(ws, keep, eps), c)
            rec("Theorem 2 corrected", mean, se, B.theorem2_gamma_corrected(ws, keep, eps), c)
        for x0 in (x[:1], torch.zeros_like(x[:1])):
            z, zse = optimality_zeta(ws, sampler, x0, n_masks=max(n_masks, 100), seed=trial, biases=bs)
            c = dict(cfg, x0_norm=round(float(x0.norm()), 4))
            x0n = float(x0.norm())
            rec("Proposition 1 (appendix, ||x0||)", z, zse, B.proposition1_zeta(ws, keep, x0n), c)
            rec("Proposition 1 (main text)", z, zse, B.proposition1_zeta_main_text(ws, keep), c)
            rec("Proposition 1 corrected", z, zse, B.proposition1_zeta_corrected(ws, keep, x0n, bs), c)
            if bs is None:
                rec("Proposition 1 (appendix), bias-free nets only", z, zse,
                    B.proposition1_zeta(ws, keep, float(x0.norm())), c)

    for trial in range(n_tf):
        d, H, n = (4, 6, 8)[trial % 3], (1, 2)[(trial // 3) % 2], (2, 3, 4)[(trial // 6) % 3]
        ln = trial % 2 == 0
        scale = (0.5, 1.0, 2.0, 4.0)[(trial // 2) % 4]
        torch.manual_seed(seed * 1000 + trial)
        model = OneLayerTransformer(d=d, heads=H, layernorm=ln, init_scale=scale).double()
        X = torch.cat([torch.rand(3, n, d, generator=gen, dtype=DT),
                       torch.rand(2, n, 1, generator=gen, dtype=DT).expand(2, n, d)])  # random + flat tokens
        cfg = dict(model="transformer", trial=trial, d=d, H=H, n=n, layernorm=ln, init_scale=scale)
        tag = " [LN]" if ln else " [no LN]"
        for eps in EPS_GRID:
            wc = adversarial_risk_worst_case(model.block, X, eps, steps=20, restarts=2, seed=trial)
            best = float(wc.max())  # sup over these centres (a point-mass input distribution)
            c = dict(cfg, eps=eps)
            rec("Lemma 1 (printed)" + tag, best, 0.0, B.lemma1_gamma(model, eps), c)
            rec("Lemma 1 corrected" + tag, best, 0.0, B.lemma1_gamma_corrected(model, eps, n_tokens=n), c)
            for p in (0.3, 0.7):
                mean, se = risk_over_masks(model, p, X[wc.argmax()][None], eps, n_masks=max(4, n_masks // 5),
                                           seed=trial, method="block", steps=15, restarts=1)
                cp = dict(c, keep=p)
                rec("Theorem 1 (printed C gamma)" + tag, mean, se, B.theorem1_gamma(model, eps, p), cp)
                bound = B.theorem1_gamma_corrected(model, eps, p, n_tokens=n)
                rec("Theorem 1 corrected" + tag, mean, se, bound, cp)
    return list(stats.values())


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys
    import time

    torch.set_num_threads(1)
    t0 = time.time()
    kw = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    rows = search(**kw)
    print("| statement | configs | violations (> 3 se) | max ratio est/bound | at |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['statement']} | {r['n']} | {r['violations']} | {r['max_ratio']:.3g} "
              f"| {json.dumps(r['at'])} |")
    print(f"\n{time.time() - t0:.0f} s")
