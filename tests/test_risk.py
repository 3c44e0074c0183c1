"""Known answers for the adversarial-risk (Def. 1) and optimality (Def. 2) estimators."""
from __future__ import annotations

import math

import pytest
import torch

from prunerob.config import ConfigError
from prunerob.theory.risk import (
    adversarial_risk_sampling,
    adversarial_risk_worst_case,
    bernoulli_sampler,
    mlp_fn,
    mlp_forward,
    optimality_zeta,
    risk_over_masks,
    sample_l2_ball,
)
from prunerob.theory.transformer import OneLayerTransformer

DT = torch.float64


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (6, 3)])
def test_worst_case_reaches_spectral_norm_on_linear_maps(shape):
    g = torch.Generator().manual_seed(sum(shape))
    W = torch.randn(*shape, generator=g, dtype=DT)
    x = torch.rand(3, shape[1], generator=g, dtype=DT)
    eps = 0.3
    exact = eps * float(torch.linalg.matrix_norm(W, 2))  # sup over the L2 ball (no box)
    wc = adversarial_risk_worst_case(lambda z: z @ W.T, x, eps, box=False)
    assert torch.allclose(wc, torch.full_like(wc, exact), rtol=1e-3)
    s = adversarial_risk_sampling(lambda z: z @ W.T, x, eps, K=200, box=False)
    assert bool((s["max"] <= exact * (1 + 1e-12)).all())
    assert bool((s["mean"] <= s["max"]).all())
    if shape[0] * shape[1] > 1:
        assert bool((s["mean"] < exact).all())


def test_worst_case_linf_linear_functional():
    w = torch.tensor([[2.0, -1.0, 0.5]], dtype=DT)
    x = torch.full((2, 3), 0.5, dtype=DT)
    wc = adversarial_risk_worst_case(lambda z: z @ w.T, x, 0.1, norm="linf", box=True)
    assert torch.allclose(wc, torch.full_like(wc, 0.1 * 3.5), rtol=1e-6)  # eps ||w||_1


def test_worst_case_respects_box():
    # identity on R^1, x = 0.9, eps = 0.5: with the box the best x~ is 0.4 (change 0.5) ... or 1.0 (0.1)
    x = torch.tensor([[0.9], [0.2]], dtype=DT)
    wc = adversarial_risk_worst_case(lambda z: z, x, 0.5, box=True)
    assert torch.allclose(wc, torch.tensor([0.5, 0.5], dtype=DT))
    wc = adversarial_risk_worst_case(lambda z: z, x, 2.0, box=True)
    assert torch.allclose(wc, torch.tensor([0.9, 0.8], dtype=DT))  # clipped to [0, 1]
    s = adversarial_risk_sampling(lambda z: z, x, 2.0, K=100, box=True)
    assert bool((s["max"] <= torch.tensor([0.9, 0.8], dtype=DT) + 1e-12).all())


def test_l2_ball_samples_inside_and_uniform_radius():
    gen = torch.Generator().manual_seed(0)
    c = torch.zeros(1, 2, dtype=DT)
    pts = sample_l2_ball(c, 0.5, 20000, gen)
    r = pts.reshape(20000, -1).norm(dim=1)
    assert float(r.max()) <= 0.5 + 1e-12
    # uniform in the disc: P(r <= eps/2) = 1/4
    assert abs(float((r <= 0.25).double().mean()) - 0.25) < 0.015


def test_ordering_worst_ge_sampling_max_ge_mean_on_small_relu_nets():
    gen = torch.Generator().manual_seed(3)
    for depth in (1, 2, 3):
        dims = [4] + [int(v) for v in torch.randint(2, 7, (depth,), generator=gen)]
        ws = [torch.randn(dims[i + 1], dims[i], generator=gen, dtype=DT) for i in range(depth)]
        bs = [torch.randn(dims[i + 1], generator=gen, dtype=DT) for i in range(depth)]
        x = torch.rand(5, 4, generator=gen, dtype=DT)
        for eps in (0.05, 0.5):
            s = adversarial_risk_sampling((ws, bs), x, eps, K=100)
            wc = adversarial_risk_worst_case((ws, bs), x, eps)
            assert bool((wc >= s["max"] - 1e-9).all())
            assert bool((s["max"] >= s["mean"]).all())
            # how much (b) exceeds (a): the paper's average is well below the worst case
            assert float(wc.mean()) > 1.2 * float(s["mean"].mean())


def test_mlp_forward_matches_manual():
    W1 = torch.tensor([[1.0, -2.0], [0.5, 1.0]], dtype=DT)
    b1 = torch.tensor([0.0, -1.0], dtype=DT)
    W2 = torch.tensor([[1.0, 3.0]], dtype=DT)
    x = torch.tensor([[1.0, 1.0]], dtype=DT)
    # hidden: relu([-1, 0.5]) = [0, 0.5]; out = 1.5 (last layer linear)
    assert float(mlp_forward([W1, W2], [b1, None], x)) == pytest.approx(1.5)
    assert float(mlp_forward([W1, W2], None, x, "identity")) == pytest.approx(-1 + 3 * 1.5)


def test_risk_over_masks_known_mean_and_stderr():
    # g(x) = 2 B x on R^1, no box: sup = 2 B eps, so E = 2 p eps and sd = 2 eps sqrt(p(1-p))
    W = [torch.tensor([[2.0]], dtype=DT)]
    x = torch.full((2, 1), 0.5, dtype=DT)
    p, eps, n = 0.3, 0.2, 400
    mean, se = risk_over_masks(W, p, x, eps, n_masks=n, seed=4, box=False, steps=3, restarts=1)
    assert abs(mean - 2 * p * eps) < 4 * se
    assert se == pytest.approx(2 * eps * math.sqrt(p * (1 - p) / n), rel=0.2)
    # stderr shrinks like 1/sqrt(n)
    _, se4 = risk_over_masks(W, p, x, eps, n_masks=4 * n, seed=5, box=False, steps=3, restarts=1)
    assert se4 == pytest.approx(se / 2, rel=0.25)
    m_s, _ = risk_over_masks(W, p, x, eps, n_masks=50, estimator="sampling_mean", seed=4, box=False, K=20)
    m_x, _ = risk_over_masks(W, p, x, eps, n_masks=50, estimator="sampling_max", seed=4, box=False, K=20)
    m_w, _ = risk_over_masks(W, p, x, eps, n_masks=50, estimator="worst_case", seed=4, box=False, steps=5)
    assert m_s <= m_x <= m_w + 1e-12


def test_optimality_zeta_known_answer():
    # f(x) = [3, 4] x at x = (1, 1); masks keep 1/2: |f - g| in {0, 4, 3, 7} equally likely -> 3.5
    W = [torch.tensor([[3.0, 4.0]], dtype=DT)]
    x = torch.ones(1, 2, dtype=DT)
    mean, se = optimality_zeta(W, bernoulli_sampler(W, 0.5), x, n_masks=2000, seed=0)
    assert abs(mean - 3.5) < 4 * se
    sd = math.sqrt((0 + 16 + 9 + 49) / 4 - 3.5**2)
    assert se == pytest.approx(sd / math.sqrt(2000), rel=0.1)
    per, per_se = optimality_zeta(
        W, bernoulli_sampler(W, 0.5), torch.cat([x, 0 * x]), n_masks=50, reduce="none"
    )
    assert per.shape == (2,) and float(per[1]) == 0.0 and float(per_se[1]) == 0.0


def test_transformer_masks_and_block_identity_when_all_pruned():
    torch.manual_seed(0)
    model = OneLayerTransformer(d=4, heads=2, layernorm=True).double()
    X = torch.rand(2, 3, 4, dtype=DT)
    # keep 0: the block is the identity (X + 0 + 0), so the worst case is eps exactly
    mean, se = risk_over_masks(model, 0.0, X, 0.1, n_masks=3, method="block", box=False, steps=3, restarts=1)
    assert mean == pytest.approx(0.1) and se == pytest.approx(0.0, abs=1e-15)
    # keep 1: same as the unpruned model
    mean1, _ = risk_over_masks(model, 1.0, X, 0.1, n_masks=2, method="block", steps=10, restarts=1, seed=0)
    # (the i-th mask's inner estimator is seeded with seed * 100003 + i)
    ref = [
        float(adversarial_risk_worst_case(model.block, X, 0.1, steps=10, restarts=1, seed=i).mean())
        for i in (0, 1)
    ]
    assert mean1 == pytest.approx(sum(ref) / 2)
    # per-matrix keep dict is accepted; zeta of keep 1 is 0
    keep = {name: 1.0 for name in model.prunable_weights()}
    z, _ = optimality_zeta(model, bernoulli_sampler(model, keep), X, n_masks=2, method="block")
    assert z == 0.0


def test_transformer_block_matches_equations_and_images():
    torch.manual_seed(1)
    model = OneLayerTransformer(
        d=4, heads=2, layernorm=False, image_size=4, patch_size=2, in_chans=1
    ).double()
    X = torch.rand(3, 4, dtype=DT)
    # independent re-implementation of Eq. (1)-(2) + residual + FFN
    heads = []
    for h in range(2):
        q, k, v = X @ model.wq[h], X @ model.wk[h], X @ model.wv[h]
        heads.append(torch.softmax(q @ k.T / math.sqrt(2), dim=-1) @ v)
    z = X + torch.cat(heads, dim=1) @ model.wo
    ref = z + torch.relu(z @ model.w1.T) @ model.w2.T
    assert torch.allclose(model.block(X[None])[0], ref)
    imgs = torch.rand(5, 1, 4, 4, dtype=DT)
    assert model(imgs).shape == (5, 10)
    patches = model.patchify(imgs)
    assert patches.shape == (5, 4, 4)
    assert torch.equal(patches[0, 1], imgs[0, 0, 0:2, 2:4].reshape(-1))


def test_risk_input_validation():
    with pytest.raises(ConfigError, match="norm"):
        adversarial_risk_worst_case(lambda z: z, torch.zeros(1, 1), 0.1, norm="l1")
    with pytest.raises(ConfigError, match="estimator"):
        risk_over_masks([torch.eye(1)], 0.5, torch.zeros(1, 1), 0.1, estimator="pgd")
    with pytest.raises(ConfigError, match="keep_probs"):
        bernoulli_sampler([torch.eye(2)], 1.5)(torch.Generator())
    with pytest.raises(ConfigError, match="activation"):
        mlp_fn([torch.eye(1)], None, "gelu")(torch.zeros(1, 1))
