"""Tests of prunerob.theory.symbolic: every derivation is checked by sympy and its expressions are
lambdified and compared with the numeric code (tradeoff.py, and bounds.py when present)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from prunerob.theory import symbolic as S
from prunerob.theory import tradeoff as T


@pytest.fixture(scope="module")
def alg():
    return S.algorithm1_derivation(L=3, k=1)


def _bounds():
    try:
        from prunerob.theory import bounds
    except ImportError:  # written concurrently; compare only when present
        return None
    return bounds


def test_all_checks_pass(alg):
    results = [S.bernoulli_frobenius(2, 2), S.theorem2_product(3), S.proposition1_zeta_symbolic(3), alg,
               S.lemma3_rate(), S.lemma3_rate(3), S.theorem1_C_symbolic()]
    for r in results:
        failed = [name for name, ok in r.checks.items() if not ok]
        assert not failed, (r.name, failed)
        assert r.checks and all(isinstance(v, str) and v for v in r.latex.values())


def test_bernoulli_frobenius_numeric():
    r = S.bernoulli_frobenius(2, 2)
    rng = np.random.default_rng(0)
    f_sq = r.lambdify("E_fro_sq_enumerated")
    f_fro = r.lambdify("E_fro_enumerated")
    f_jen = r.lambdify("jensen_bound")
    f_t2 = r.lambdify("theorem2_step", [r.symbols["p_max"], *r.symbols["W"]])
    B = _bounds()
    for _ in range(20):
        W, P = rng.normal(size=(2, 2)), rng.uniform(0, 1, (2, 2))
        # independent enumeration in numpy
        e_sq = e_fro = 0.0
        for bits in itertools.product((0, 1), repeat=4):
            m = np.array(bits, float).reshape(2, 2)
            pr = np.prod(np.where(m > 0, P, 1 - P))
            e_sq += pr * np.sum((m * W) ** 2)
            e_fro += pr * np.linalg.norm(m * W)
        args = [*W.ravel(), *P.ravel()]
        assert f_sq(*args) == pytest.approx(e_sq, rel=1e-12)
        assert f_sq(*args) == pytest.approx(np.sum(P * W**2), rel=1e-12)
        assert f_fro(*args) == pytest.approx(e_fro, rel=1e-12)
        assert f_fro(*args) <= f_jen(*args) + 1e-12  # Jensen
        assert f_jen(*args) <= f_t2(P.max(), *W.ravel()) + 1e-12  # max-p step of Theorem 2
        if B is not None:
            assert f_fro(*args) == pytest.approx(B.expected_masked_norm_exact(W, P, ord="fro"), rel=1e-10)


def test_theorem2_product_numeric():
    r = S.theorem2_product(3)
    f = r.lambdify("gamma")
    rng = np.random.default_rng(1)
    W = [rng.normal(size=(5, 4)), rng.normal(size=(3, 5)), rng.normal(size=(2, 3))]
    k = T.constants(W)
    F = [np.linalg.norm(w) for w in W]
    B = _bounds()
    for _ in range(10):
        p = rng.uniform(0, 1, 3)
        assert f(*p, *F) == pytest.approx(T.gamma_of(p, k.A), rel=1e-12)
        if B is not None:
            assert f(*p, *F) == pytest.approx(B.theorem2_gamma(W, list(p)), rel=1e-12)
            # per-entry keep probabilities: P_L uses the max of each layer
            P = [rng.uniform(0, 1, w.shape) for w in W]
            assert f(*[q.max() for q in P], *F) == pytest.approx(B.theorem2_gamma(W, P), rel=1e-12)


def test_proposition1_numeric():
    r = S.proposition1_zeta_symbolic(3)
    f_layer = r.lambdify("zeta_per_layer", r.symbols["args_layer"])
    f_gen = r.lambdify("zeta", r.symbols["args"])
    rng = np.random.default_rng(2)
    W = [rng.normal(size=(5, 4)), rng.normal(size=(3, 5)), rng.normal(size=(2, 3))]
    S2 = [np.linalg.norm(w, 2) for w in W]
    F = [np.linalg.norm(w) for w in W]
    k = T.constants(W, x_norm=1.7)
    B = _bounds()
    for _ in range(10):
        p = rng.uniform(0, 1, 3)
        assert f_layer(1.7, *S2, *F, *p) == pytest.approx(T.zeta_of(p, k.b, k.C), rel=1e-12)
        P = [rng.uniform(0, 1, w.shape) for w in W]
        D = [math.sqrt(np.sum((1 - q) * w**2)) for q, w in zip(P, W, strict=True)]
        if B is not None:
            assert f_layer(1.7, *S2, *F, *p) == pytest.approx(B.proposition1_zeta(W, list(p), 1.7), rel=1e-12)
            assert f_gen(1.7, *S2, *D) == pytest.approx(B.proposition1_zeta(W, P, 1.7), rel=1e-12)


def test_algorithm1_derivation_numeric(alg):
    rng = np.random.default_rng(3)
    sy = alg.symbols
    fJ = alg.lambdify("J")
    fd2 = alg.lambdify("d2J_dpk2")
    ft = alg.lambdify("eq23_printed", [sy["lambda"], sy["g"], sy["C"], sy["b"][0]])
    ftu = alg.lambdify("t_uniform", [sy["lambda"], sy["g"], sy["C"], sy["B"]])
    for _ in range(20):
        lam, A, C = rng.uniform(0.05, 0.95), rng.uniform(0.5, 3), rng.uniform(0.5, 3)
        b, p = rng.uniform(1, 4, 3), rng.uniform(0.01, 0.99, 3)
        assert fJ(lam, A, C, *b, *p) == pytest.approx(T.objective_J(p, A, b, C, lam), rel=1e-12)
        assert fd2(lam, A, C, *b, *p) < 0
        g = rng.uniform(0, 5)
        root = float(T.eq23_root(lam * g, (1 - lam) * C * b[0]))
        assert ft(lam, g, C, b[0]) == pytest.approx(root, rel=1e-9)
        # uniform update of algorithm1(mode="uniform"): one step from p0 = 1 (gamma = A)
        k = T.Constants(A, b, C)
        t = ftu(lam, A, C, b.sum())
        assert T.algorithm1(k, lam, mode="uniform", max_iter=1).keep[0] == pytest.approx(1 - t * t, rel=1e-9)
    assert alg.exprs["t_star_lam0"] == 1 and alg.exprs["t_star_lam1_limit"] == 0


def test_lemma3_numeric():
    r = S.lemma3_rate(3)
    f = r.lambdify("rate")
    W = [np.eye(3) * 2, np.ones((2, 3)), np.array([[1.0, -2.0]])]
    k = T.constants(W, x_norm=0.8)
    ps = np.linspace(0.05, 0.95, 7)
    K = 0.8 * np.prod([np.linalg.norm(w, 2) for w in W])  # ||x0|| prod ||W||
    assert np.allclose(f(ps, k.A, K, k.b.sum()), T.lemma3_rate(ps, k), rtol=1e-12)
    df = T.uniform_front(k, ps=ps)
    assert np.allclose(f(ps, k.A, K, k.b.sum()), df.dgamma_dzeta_fd, rtol=1e-5)


def test_theorem1_C_numeric():
    r = S.theorem1_C_symbolic()
    f = r.lambdify("C_printed")
    diff = r.lambdify("attn_difference", [r.symbols[s] for s in ("p", "o", "v", "q", "k", "c0", "H")])
    rng = np.random.default_rng(4)
    for _ in range(20):
        p, a, ff = rng.uniform(0, 1), rng.uniform(0, 10), rng.uniform(0, 10)
        assert f(p, a, ff) <= 1 + 1e-12
        o, v, q, kk, c0, H = rng.uniform(0.1, 3, 6)
        printed = p**2 * o * math.sqrt(H) * v * (c0 * q * kk + 1)
        corrected = p * o * math.sqrt(H) * v * (p * c0 * q * kk + 1)
        assert diff(p, o, v, q, kk, c0, H) == pytest.approx(corrected - printed, rel=1e-9, abs=1e-12)
        assert corrected >= printed - 1e-12
    B = _bounds()
    if B is not None and hasattr(B, "theorem1_C"):
        d, H = 8, 2
        mats = {"Q": [rng.normal(size=(d, d // H)) for _ in range(H)],
                "K": [rng.normal(size=(d, d // H)) for _ in range(H)],
                "V": [rng.normal(size=(d, d // H)) for _ in range(H)], "O": rng.normal(size=(d, d)),
                "W1": rng.normal(size=(2 * d, d)), "W2": rng.normal(size=(d, 2 * d))}
        fro = np.linalg.norm
        alpha = max(
            fro(mats["V"][h]) * (4 / math.sqrt(d / H) * fro(mats["Q"][h]) * fro(mats["K"][h]) + 1)
            for h in range(H)
        )
        a = fro(mats["O"]) * math.sqrt(H) * alpha
        ffn = fro(mats["W1"]) * fro(mats["W2"])
        for p in (0.0, 0.3, 0.9, 1.0):
            assert B.theorem1_C(mats, p) == pytest.approx(f(p, a, ffn), rel=1e-12)
