"""Known-answer tests for prunerob.theory.bounds (hand-computed values and brute-force mask enumeration)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from prunerob.config import ConfigError
from prunerob.theory import bounds as B
from prunerob.theory.transformer import OneLayerTransformer

PHI = (1 + math.sqrt(5)) / 2
W_SIGN = [[1.0, 1.0], [1.0, -1.0]]


def _enumerate(W, P):
    """All masks of a small matrix with their probabilities (independent Bernoulli(P))."""
    W = torch.tensor(W, dtype=torch.float64)
    P = torch.tensor(P, dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=W.numel()):
        b = torch.tensor(bits, dtype=torch.float64).view_as(W)
        prob = float(torch.prod(torch.where(b > 0, P, 1 - P)))
        yield b, prob


# ----------------------------------------------------------------- norms / expectations
def test_spectral_norm_known():
    assert B.spectral_norm([[3.0, 0.0], [0.0, -4.0]]) == pytest.approx(4.0)
    assert B.spectral_norm(W_SIGN) == pytest.approx(math.sqrt(2))
    assert B.spectral_norm([[1.0, 1.0], [1.0, 0.0]]) == pytest.approx(PHI)  # masking increased it


def test_expected_frobenius_square_by_enumeration():
    W, P = [[1.5, -2.0], [0.5, 3.0]], [[0.3, 0.9], [1.0, 0.0]]
    e = sum(prob * float(((b * torch.tensor(W)) ** 2).sum()) for b, prob in _enumerate(W, P))
    assert e == pytest.approx(0.3 * 2.25 + 0.9 * 4 + 1.0 * 0.25 + 0.0, rel=1e-12)


def test_expected_spectral_norm_hand_value_and_enumeration():
    # W = [[1,1],[1,-1]], p = 1/2: 16 equally likely masks; by hand:
    # 0 kept: 0; 1 kept (4): 1; 2 kept: rows/cols (4): sqrt2, diagonals (2): 1; 3 kept (4): phi; 4: sqrt2
    hand = (4 * 1 + 4 * math.sqrt(2) + 2 * 1 + 4 * PHI + math.sqrt(2)) / 16
    assert B.expected_masked_norm_exact(W_SIGN, 0.5) == pytest.approx(hand, rel=1e-12)
    brute = sum(
        prob * B.spectral_norm(b * torch.tensor(W_SIGN)) for b, prob in _enumerate(W_SIGN, [[0.5] * 2] * 2)
    )
    assert brute == pytest.approx(hand, rel=1e-12)
    # Frobenius version: Jensen's bound sqrt(sum p w^2) = sqrt(2) is above the exact mean
    assert B.expected_masked_norm_exact(W_SIGN, 0.5, ord="fro") < math.sqrt(2)


def test_expected_spectral_norm_can_exceed_unpruned():
    # p = 0.9: E||B o W||_2 > ||W||_2 (single drops raise sqrt2 to phi)
    assert B.expected_masked_norm_exact(W_SIGN, 0.9) > math.sqrt(2) + 0.03


def test_expected_lipschitz_mc_matches_enumeration():
    W = [[2.0, -1.0], [0.5, 1.0]]
    P = [[0.7, 0.2], [0.5, 0.9]]
    exact = sum(prob * B.spectral_norm(b * torch.tensor(W)) for b, prob in _enumerate(W, P))
    mean, se = B.expected_lipschitz_mc([W], [P], n_masks=4000, seed=1)
    assert abs(mean - exact) < 4 * se
    assert 0 < se < 0.03
    # two layers: independent masks -> product of the per-layer expectations
    W2, P2 = [[1.0, 1.0]], [[0.5, 0.5]]
    exact2 = exact * sum(prob * B.spectral_norm(b * torch.tensor(W2)) for b, prob in _enumerate(W2, P2))
    m2, se2 = B.expected_lipschitz_mc([W, W2], [P, P2], n_masks=4000, seed=2)
    assert abs(m2 - exact2) < 4 * se2


# ----------------------------------------------------------------- Theorem 2
def test_theorem2_printed_known():
    assert B.theorem2_gamma([[[3.0, 4.0]]], [0.25]) == pytest.approx(0.5 * 5)
    assert B.theorem2_gamma([[[3.0, 4.0]]], [0.25], eps=2.0) == pytest.approx(2 * 0.5 * 5)
    W1, P1 = [[1.0, 0.0], [0.0, 2.0]], [[0.5, 1.0], [0.25, 0.0]]  # max p = 1
    W2, P2 = [[2.0]], 0.36
    assert B.theorem2_gamma([W1, W2], [P1, P2]) == pytest.approx(1.0 * 0.6 * math.sqrt(5) * 2)
    # magnitude pruning (p in {0,1}, some 1): P_L = 1 whatever the sparsity
    assert B.theorem2_gamma([W1], [[[1.0, 0.0], [0.0, 0.0]]]) == pytest.approx(math.sqrt(5))


def test_theorem2_corrected_known_and_below_printed():
    val = B.theorem2_gamma_corrected([[[3.0, 4.0]]], [[[0.5, 0.25]]], eps=2.0)
    assert val == pytest.approx(2 * math.sqrt(0.5 * 9 + 0.25 * 16))
    assert val <= B.theorem2_gamma([[[3.0, 4.0]]], [[[0.5, 0.25]]], eps=2.0)
    assert B.theorem2_gamma_corrected([[[3.0, 4.0]]], [1.0], 1.0) == pytest.approx(5.0)


def test_realised_mask_bound_known():
    assert B.realised_mask_bound([W_SIGN], [[[1, 1], [1, 0]]], eps=0.5) == pytest.approx(0.5 * PHI)
    assert B.realised_mask_bound([W_SIGN, [[2.0, 0.0]]], [[[1, 1], [1, 1]], [[1, 1]]], 1.0) == pytest.approx(
        2 * math.sqrt(2)
    )


# ----------------------------------------------------------------- Proposition 1
def test_proposition1_printed_known():
    # one layer: ||W|| (1/||W||) sqrt(sum (1-p) w^2) = sqrt(0.5*9 + 0.25*16)
    assert B.proposition1_zeta([[[3.0, 4.0]]], [[[0.5, 0.75]]], 2.0) == pytest.approx(2 * math.sqrt(8.5))
    # two layers: ||W1||=2, ||W2||=5, p1 = 0.5, p2 = 1: x0 * 2*5 * (1/2) sqrt(0.5*(1+4))
    W1, W2 = [[1.0, 0.0], [0.0, 2.0]], [[3.0, 4.0]]
    assert B.proposition1_zeta([W1, W2], [0.5, 1.0], 3.0) == pytest.approx(3 * 5 * math.sqrt(2.5))
    assert B.proposition1_zeta_main_text([W1, W2], [0.5, 1.0]) == pytest.approx(5 * math.sqrt(2.5))
    assert B.proposition1_zeta([W1, W2], [1.0, 1.0], 3.0) == 0.0


def test_proposition1_corrected_known():
    W1, W2 = [[1.0, 0.0], [0.0, 2.0]], [[3.0, 4.0]]
    # p1 = 1 (layer 1 unpruned): only the layer-2 term, with m_1 = ||W1||_2 ||x0|| = 2 x0
    val = B.proposition1_zeta_corrected([W1, W2], [1.0, 0.5], 3.0)
    assert val == pytest.approx(math.sqrt(0.5 * 25) * 2 * 3)
    assert val == pytest.approx(B.proposition1_zeta([W1, W2], [1.0, 0.5], 3.0))
    # biases: m_1 = ||W1|| x0 + ||b1||; x0 = 0 gives a non-zero bound
    b = [torch.tensor([3.0, 4.0]), None]
    v0 = B.proposition1_zeta_corrected([W1, W2], [1.0, 0.5], 0.0, biases=b)
    assert v0 == pytest.approx(math.sqrt(12.5) * 5)
    # p1 = 0.5 uniform: s_1 = min(sqrt(0.5*5), 2 + sqrt(0.5*5)) = sqrt(2.5); Delta_1 = sqrt(2.5)
    v2 = B.proposition1_zeta_corrected([W1, W2], [0.5, 0.5], 1.0)
    assert v2 == pytest.approx(5 * math.sqrt(2.5) + math.sqrt(12.5) * math.sqrt(2.5))
    # deterministic (magnitude) masks use the exact realised spectral norms
    M1 = [[0.0, 0.0], [0.0, 1.0]]
    v3 = B.proposition1_zeta_corrected([W1, W2], [M1, 1.0], 1.0)
    assert v3 == pytest.approx(5 * 1.0)  # ||W2|| * ||(1-M1) o W1||_2 * x0
    assert v3 == pytest.approx(B.proposition1_realised([W1, W2], [M1, [[1.0, 1.0]]], 1.0))


# ----------------------------------------------------------------- Lemma 1 / Theorem 1
def _identity_mats(d=2, layernorm=False):
    eye = torch.eye(d, dtype=torch.float64)
    return {"Q": [eye], "K": [eye], "V": [eye], "O": eye, "W1": eye, "W2": eye,
            "layernorm": layernorm, "ln_eps": 1e-4}


def test_lemma1_printed_known():
    m = _identity_mats()
    # C1 = 1 + 1*1*(4/sqrt2 + 1) = 2 + 2 sqrt2; C2 = 2; (d/(d-1))^2 = 4
    assert B.lemma1_C1_C2(m) == pytest.approx((2 + 2 * math.sqrt(2), 2.0))
    assert B.lemma1_gamma(m, 0.1) == pytest.approx(4 * (2 + 2 * math.sqrt(2)) * 2 * 0.1)
    # Frobenius variant: ||I_2||_F = sqrt2
    a = math.sqrt(2) * (4 / math.sqrt(2) * 2 + 1)
    assert B.lemma1_C1_C2(m, "fro") == pytest.approx((1 + math.sqrt(2) * a, 3.0))


def test_theorem1_printed_known():
    m = _identity_mats()
    a = math.sqrt(2) * math.sqrt(2) * (4 / math.sqrt(2) * 2 + 1)  # ||W^O||_F sqrt(H) alpha
    b = 2.0  # ||W1||_F ||W2||_F
    p = 0.5
    C = (1 + p**2 * a) / (1 + a) * (1 + p * b) / (1 + b)
    assert B.theorem1_C(m, p) == pytest.approx(C)
    assert B.theorem1_C(m, 1.0) == pytest.approx(1.0)
    assert B.theorem1_gamma(m, 0.1, p) == pytest.approx(C * B.lemma1_gamma(m, 0.1))


def test_model_matrices_feed_bounds():
    torch.manual_seed(0)
    model = OneLayerTransformer(d=4, heads=2, num_classes=3)
    m = model.matrices()
    assert len(m["Q"]) == 2 and m["Q"][0].shape == (4, 2) and m["O"].shape == (4, 4)
    assert B.lemma1_gamma(model, 0.1) == pytest.approx(B.lemma1_gamma(m, 0.1))
    assert list(model.prunable_weights()) == [
        "wq.0", "wq.1", "wk.0", "wk.1", "wv.0", "wv.1", "wo", "w1", "w2"
    ]


def test_layernorm_lipschitz_known_and_attained():
    assert B.layernorm_lipschitz([0.5, -2.0], 0.04) == pytest.approx(10.0)
    # Jacobian norm at a constant token equals 1/sqrt(ln_eps) (independent check via autograd)
    ln = torch.nn.LayerNorm(3, eps=1e-4).double()
    J = torch.autograd.functional.jacobian(ln, torch.full((3,), 0.7, dtype=torch.float64))
    assert B.spectral_norm(J) == pytest.approx(B.layernorm_lipschitz(None, 1e-4), rel=1e-6)


def test_attention_head_lipschitz_known():
    eye = torch.eye(2, dtype=torch.float64)
    # A = I/sqrt2, ||W^V|| = 1, n = 4, r = 1: sqrt4 + (1 + sqrt4) * 1 * (1/sqrt2)
    assert B.attention_head_lipschitz(eye, eye, eye, 4, 1.0) == pytest.approx(2 + 3 / math.sqrt(2))
    Z = torch.zeros(2, 2, dtype=torch.float64)
    assert B.attention_head_lipschitz(Z, Z, 3 * eye, 9, 5.0) == pytest.approx(9.0)


def test_lemma1_corrected_known():
    m = _identity_mats()
    Z = torch.zeros(2, 2, dtype=torch.float64)
    m.update(Q=[Z], K=[Z])
    # no LN, Q=K=0: L_h = ||V|| sqrt(n) = 2 (n=4); L_MH = 2; L_FFN = 1 -> eps * 3 * 2
    assert B.lemma1_gamma_corrected(m, 0.5, n_tokens=4) == pytest.approx(0.5 * 3 * 2)
    m["layernorm"] = True  # gains default to 1, ln_eps = 1e-4 -> L_LN = 100
    assert B.lemma1_gamma_corrected(m, 0.5, n_tokens=4) == pytest.approx(0.5 * (1 + 200) * (1 + 100))


def test_theorem1_corrected_known():
    m = _identity_mats()
    Z = torch.zeros(2, 2, dtype=torch.float64)
    m.update(Q=[Z], K=[Z])
    # uniform p: attention p ||O||_F ||V||_F sqrt(n) = p*2*2, FFN p ||W1||_F ||W2||_F = 2p
    p = 0.25
    assert B.theorem1_gamma_corrected(m, 1.0, p, n_tokens=4) == pytest.approx((1 + p * 4) * (1 + 2 * p))
    # p = 1 with Q = K = 0 equals the corrected Lemma 1 with Frobenius norms
    keep = {"Q": 1, "K": 1, "V": 1, "O": 1, "W1": 0.0, "W2": 1}
    assert B.theorem1_gamma_corrected(m, 1.0, keep, n_tokens=4) == pytest.approx(1 + 4)


def test_input_validation():
    with pytest.raises(ConfigError, match="keep_probs"):
        B.theorem2_gamma([[[1.0]]], [1.5])
    with pytest.raises(ConfigError, match="keep_probs"):
        B.theorem2_gamma([[[1.0]], [[1.0]]], [0.5])
    with pytest.raises(ConfigError, match="eps"):
        B.theorem2_gamma_corrected([[[1.0]]], [0.5], -1.0)
    with pytest.raises(ConfigError, match="norm"):
        B.lemma1_gamma(_identity_mats(), 0.1, norm="nuclear")
