"""Robustness / optimality bounds of the paper, as printed and corrected (Sec. 4-5, App. A-D).

Conventions
-----------
* ``keep`` / ``keep_probs`` is the paper's ``p``: the probability of KEEPING a weight.
  ``keep_probs`` for an MLP is a list with one entry per layer, each a float (uniform in the
  layer) or an array of per-entry ``p_ij`` with the weight's shape.
* MLP weights follow the torch ``Linear`` layout ``W^(l)`` in R^{out x in}; the network is
  ``h_l = sigma(W^(l) h_{l-1} + b^(l))`` with a linear last layer.
* Norms: ``||.||`` is the spectral norm (Sec. 4 "||.|| denotes the spectral norm"),
  ``||.||_F`` the Frobenius norm. The theory's input ball is L2 (Eq. 3).
* A bound on the *adversarial risk* (Def. 1) is a number ``gamma`` with
  ``E_masks E_x sup_{||x~-x||_2<=eps} ||g(x~)-g(x)||_2 <= gamma``.

Every printed statement is kept under its paper name even where it is wrong; the fixed ones are
named ``*_corrected`` and their docstrings sketch a proof. The verdicts, with counterexamples, are
in ``book/theory/_findings_bounds.md`` and ``tests/test_bounds_vs_worst_case.py``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from prunerob.config import ConfigError, check_choice
from prunerob.core import masks as M

#: a weight matrix: a tensor or anything ``np.asarray`` accepts
Matrix = Any
#: keep probabilities: a float, one float / array per layer, or a dict name -> float / tensor
#: (prunerob.core.masks)
KeepLike = Any
#: a one-layer transformer with ``.matrices()`` or its dict of matrices (Q, K, V, O, W1, W2, ...)
MatsLike = Any

__all__ = [
    "spectral_norm",
    "lemma1_gamma",
    "lemma1_C1_C2",
    "theorem1_C",
    "theorem1_gamma",
    "theorem2_gamma",
    "proposition1_zeta",
    "proposition1_zeta_main_text",
    "theorem2_gamma_corrected",
    "realised_mask_bound",
    "expected_lipschitz_mc",
    "expected_masked_norm_exact",
    "proposition1_zeta_corrected",
    "proposition1_realised",
    "layernorm_lipschitz",
    "attention_head_lipschitz",
    "lemma1_gamma_corrected",
    "theorem1_gamma_corrected",
    "sample_bernoulli_masks",
]


# --------------------------------------------------------------------------- helpers
def _t(w) -> torch.Tensor:
    """Any array-like -> float64 CPU tensor (detached)."""
    if isinstance(w, torch.Tensor):
        return w.detach().to(dtype=torch.float64, device="cpu")
    return torch.as_tensor(np.asarray(w, dtype=np.float64))


def spectral_norm(w: Matrix) -> float:
    """``||W||_2`` (largest singular value); vectors use the Euclidean norm."""
    t = _t(w)
    if t.dim() <= 1:
        return float(torch.linalg.vector_norm(t))
    return float(torch.linalg.matrix_norm(t, ord=2))


def _fro(w) -> float:
    return float(torch.linalg.vector_norm(_t(w)))


def _norm(w, norm: str) -> float:
    return spectral_norm(w) if norm == "spectral" else _fro(w)


def _weights(weights: Sequence) -> list[torch.Tensor]:
    ws = [_t(w) for w in weights]
    if not ws:
        raise ConfigError("weights is empty; give at least one weight matrix")
    for i, w in enumerate(ws):
        if w.dim() != 2:
            raise ConfigError(f"weights[{i}] has shape {tuple(w.shape)}; every weight must be a 2-D matrix")
    return ws


def _keeps(weights: list[torch.Tensor], keep_probs) -> list[torch.Tensor]:
    """Broadcast ``keep_probs`` (float, per-layer float/array, or a dict in layer order) to one tensor
    per weight."""
    if isinstance(keep_probs, Mapping):
        keep_probs = M.by_layer(keep_probs)
    if isinstance(keep_probs, (int, float)):
        keep_probs = [keep_probs] * len(weights)
    keep_probs = list(keep_probs)
    if len(keep_probs) != len(weights):
        raise ConfigError(
            f"keep_probs has {len(keep_probs)} entries but there are {len(weights)} weight matrices"
        )
    out = []
    for i, (w, p) in enumerate(zip(weights, keep_probs, strict=False)):
        pt = _t(p)
        if pt.dim() == 0:
            pt = torch.full_like(w, float(pt))
        if pt.shape != w.shape:
            raise ConfigError(
                f"keep_probs[{i}] has shape {tuple(pt.shape)}, weights[{i}] has {tuple(w.shape)}"
            )
        if not bool(((pt >= 0) & (pt <= 1)).all()):
            raise ConfigError(f"keep_probs[{i}] must lie in [0, 1] (probability of KEEPING a weight)")
        out.append(pt)
    return out


def _masks(weights: list[torch.Tensor], masks) -> list[torch.Tensor]:
    """Masks as float64 tensors in layer order (a list, or a mask dict of :mod:`prunerob.core.masks`)."""
    if isinstance(masks, Mapping):
        masks = M.by_layer(masks)
    masks = [_t(m) for m in masks]
    if len(masks) != len(weights):
        raise ConfigError(f"masks has {len(masks)} entries but there are {len(weights)} weight matrices")
    for i, (w, m) in enumerate(zip(weights, masks, strict=False)):
        if m.shape != w.shape:
            raise ConfigError(f"masks[{i}] has shape {tuple(m.shape)}, weights[{i}] has {tuple(w.shape)}")
    return masks


def _check_eps(eps) -> float:
    e = float(eps)
    if not e >= 0:
        raise ConfigError(f"eps={eps!r} must be >= 0")
    return e


def sample_bernoulli_masks(
    weights: Sequence[Matrix], keep_probs: KeepLike, generator: torch.Generator
) -> list[torch.Tensor]:
    """One draw of the paper's pruning (Sec. 3): ``B_ij ~ Bernoulli(p_ij)``, independent entries.

    Float64 0/1 masks in layer order, drawn by :func:`prunerob.core.masks.sample_masks` (the package's
    one Bernoulli sampler).
    """
    ws = _weights(weights)
    draw = M.sample_masks(ws, _keeps(ws, keep_probs), generator)
    return [m.to(torch.float64) for m in draw.values()]


# --------------------------------------------------------------- Lemma 1 / Theorem 1
def _mats(model_or_mats) -> Mapping:
    if hasattr(model_or_mats, "matrices"):
        return model_or_mats.matrices()
    return model_or_mats


def lemma1_C1_C2(model_or_mats: MatsLike, norm: str = "spectral") -> tuple[float, float]:
    """``C1, C2`` of Lemma 1 (App. A) with the chosen matrix norm (``spectral`` as printed, or ``fro``).

    ``C1 = 1 + ||W^O|| sqrt(H) max_h ||W^{V,h}|| (4/sqrt(d/H) ||W^{Q,h}|| ||W^{K,h}|| + 1)``,
    ``C2 = 1 + ||W_FFN||`` with ``||W_FFN|| := ||W1|| ||W2||``.
    """
    check_choice("norm", norm, ("spectral", "fro"))
    m = _mats(model_or_mats)
    Q, K, V, WO = m["Q"], m["K"], m["V"], m["O"]
    H = len(Q)
    d = _t(WO).shape[0]
    dh = d / H
    alpha = max(
        _norm(V[h], norm) * (4.0 / math.sqrt(dh) * _norm(Q[h], norm) * _norm(K[h], norm) + 1.0)
        for h in range(H)
    )
    C1 = 1.0 + _norm(WO, norm) * math.sqrt(H) * alpha
    C2 = 1.0 + _norm(m["W1"], norm) * _norm(m["W2"], norm)
    return C1, C2


def lemma1_gamma(model_or_mats: MatsLike, eps: float, norm: str = "spectral") -> float:
    """Lemma 1 as printed (Sec. 4.2 / App. A): ``gamma = (d/(d-1))^2 C1 C2 eps``.

    Statement: the unpruned one-layer TBM classifier is (eps, gamma)-robust with
    ``gamma = (d/(d-1))^2 C1 C2 eps``, ``C1 = 1 + ||W_O|| sqrt(H) max_h[||W^{V,h}||
    (4/sqrt(d/H) ||W^{Q,h}|| ||W^{K,h}|| + 1)]``, ``C2 = 1 + ||W_FFN||`` (spectral norms).
    Here it is read as a bound on the Lipschitz constant of
    :meth:`~prunerob.theory.transformer.OneLayerTransformer.block` times ``eps`` (pooling/head are outside
    the printed bound). FAILS with LayerNorm (LN is only
    ``max|g|/sqrt(ln_eps)``-Lipschitz, not ``d/(d-1)``) and the proof assumes ``||X|| <= 1``;
    see :func:`lemma1_gamma_corrected`.
    """
    eps = _check_eps(eps)
    m = _mats(model_or_mats)
    d = _t(m["O"]).shape[0]
    if d < 2:
        raise ConfigError(f"d={d}: Lemma 1 needs d >= 2 (factor d/(d-1))")
    C1, C2 = lemma1_C1_C2(m, norm)
    return (d / (d - 1)) ** 2 * C1 * C2 * eps


def theorem1_C(mats: MatsLike, keep: float) -> float:
    """Theorem 1's constant as printed (Sec. 4.2, App. B Eq. 13), uniform keep ``p``.

    ``C = (1 + p^2 ||W^O||_F sqrt(H) alpha)/(1 + ||W^O||_F sqrt(H) alpha) *
    (1 + p ||W_FFN||_F)/(1 + ||W_FFN||_F) <= 1``,
    ``alpha = max_h ||W^{V,h}||_F (4/sqrt(d/H) ||W^{Q,h}||_F ||W^{K,h}||_F + 1)``,
    ``||W_FFN||_F := ||W1||_F ||W2||_F``.
    """
    p = float(keep)
    if not 0 <= p <= 1:
        raise ConfigError(f"keep={keep!r} must lie in [0, 1]")
    m = _mats(mats)
    C1f, C2f = lemma1_C1_C2(m, "fro")
    a = C1f - 1.0  # ||W^O||_F sqrt(H) alpha
    b = C2f - 1.0  # ||W_FFN||_F
    return (1 + p**2 * a) / (1 + a) * (1 + p * b) / (1 + b)


def theorem1_gamma(mats: MatsLike, eps: float, keep: float) -> float:
    """Theorem 1 as printed: ``gamma' <= C gamma`` with ``gamma`` of Lemma 1 (spectral norms).

    The printed chain mixes norms: ``C`` is a ratio of Frobenius expressions while ``gamma``
    uses spectral norms, and ``p^2`` multiplies the whole attention term (the ``+1`` part gets
    only ``p``). FAILS (also without LayerNorm); see :func:`theorem1_gamma_corrected`.
    """
    return theorem1_C(mats, keep) * lemma1_gamma(mats, eps, norm="spectral")


# --------------------------------------------------------------- Theorem 2 (MLP)
def theorem2_gamma(weights: Sequence[Matrix], keep_probs: KeepLike, eps: float | None = None) -> float:
    """Theorem 2 as printed (Sec. 5.1, App. C): ``gamma = P_L prod_l ||W^(l)||_F``,
    ``P_L = prod_l sqrt(max_ij p_ij^(l))``.

    The printed statement has NO ``eps``: with ``eps=None`` this returns exactly the printed
    value, which FAILS for ``eps > 1`` (e.g. ``W=[[1]]``, ``p=1``, ``eps=2``: risk 2 > 1). Passing
    ``eps`` returns ``eps * P_L prod ||W||_F``, the minimal fix, which holds (App. C's chain with
    the missing Lipschitz factor ``eps``). Biases do not enter; activations are 1-Lipschitz.
    """
    ws = _weights(weights)
    ps = _keeps(ws, keep_probs)
    P_L = math.prod(math.sqrt(float(p.max())) for p in ps)
    g = P_L * math.prod(_fro(w) for w in ws)
    return g if eps is None else _check_eps(eps) * g


def theorem2_gamma_corrected(weights: Sequence[Matrix], keep_probs: KeepLike, eps: float) -> float:
    """Corrected Theorem 2: ``gamma = eps prod_l sqrt(sum_ij p_ij w_ij^2)`` (<= eps P_L prod ||W||_F).

    Proof sketch. For a fixed mask the pruned MLP ``g`` is ``prod_l ||B^(l) o W^(l)||_2``-
    Lipschitz (1-Lipschitz activations; biases cancel), so ``sup_{B(x,eps)} ||g(x~)-g(x)|| <=
    eps prod_l ||B^(l) o W^(l)||_2``. Masks of different layers are independent, so
    ``E prod = prod E``, and ``E||B o W||_2 <= E||B o W||_F <= sqrt(E||B o W||_F^2) =
    sqrt(sum p_ij w_ij^2)`` (Jensen). The bound holds with or without the box [0, 1].
    """
    ws = _weights(weights)
    ps = _keeps(ws, keep_probs)
    return _check_eps(eps) * math.prod(
        math.sqrt(float((p * w**2).sum())) for w, p in zip(ws, ps, strict=False)
    )


def realised_mask_bound(
    weights: Sequence[Matrix], masks: Sequence[Matrix] | Mapping[str, Matrix], eps: float
) -> float:
    """``eps prod_l ||M^(l) o W^(l)||_2`` for ONE fixed mask (any method: magnitude, Taylor, a draw).

    Valid for 1-Lipschitz activations, with or without biases, for any mask: it is the product
    Lipschitz bound of the pruned network. Useful for magnitude pruning, where every ``p_ij`` is 0
    or 1 so the printed Theorem 2 gives ``P_L = 1`` (the unpruned bound) whatever the sparsity.
    Note that masking can INCREASE the spectral norm (``[[1,1],[1,-1]] -> [[1,1],[1,0]]``:
    sqrt(2) -> (1+sqrt 5)/2), so this is not always below ``eps prod ||W||_2``.
    """
    ws = _weights(weights)
    ms = _masks(ws, masks)
    return _check_eps(eps) * math.prod(spectral_norm(m * w) for w, m in zip(ws, ms, strict=False))


def expected_lipschitz_mc(
    weights: Sequence[Matrix], keep_probs: KeepLike, n_masks: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Monte-Carlo ``E_B prod_l ||B^(l) o W^(l)||_2`` with its standard error ``(mean, stderr)``.

    ``eps`` times the mean is the tightest product-of-norms bound on the risk of Def. 1 for
    Bernoulli pruning (the expectation of :func:`realised_mask_bound`).
    """
    if n_masks < 2:
        raise ConfigError(f"n_masks={n_masks} must be >= 2 for a standard error")
    ws = _weights(weights)
    ps = _keeps(ws, keep_probs)
    gen = torch.Generator().manual_seed(int(seed))
    draws = M.sample_masks(ws, ps, gen, n=n_masks)  # n_masks masks per layer at once
    vals = torch.ones(n_masks, dtype=torch.float64)
    for w, B in zip(ws, draws.values(), strict=True):
        vals *= torch.linalg.matrix_norm(B.to(torch.float64) * w, ord=2)
    return float(vals.mean()), float(vals.std(unbiased=True) / math.sqrt(n_masks))


def expected_masked_norm_exact(W: Matrix, keep_probs: KeepLike, ord: str = "spectral") -> float:
    """Exact ``E_B ||B o W||`` by enumerating all ``2^(#entries)`` masks (at most 20 entries).

    ``ord``: ``spectral`` or ``fro``. For small matrices only (tests, counterexamples).
    """
    check_choice("ord", ord, ("spectral", "fro"))
    w = _t(W)
    p = _keeps([w], [keep_probs])[0].flatten()
    n = w.numel()
    if n > 20:
        raise ConfigError(f"W has {n} entries; exact enumeration supports at most 20")
    total = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=n):
        b = torch.tensor(bits, dtype=torch.float64)
        prob = float(torch.prod(torch.where(b > 0, p, 1 - p)))
        if prob == 0.0:
            continue
        total += prob * _norm((b.view_as(w)) * w, ord)
    return total


# --------------------------------------------------------------- Proposition 1
def _delta_fro(w: torch.Tensor, p: torch.Tensor) -> float:
    """``sqrt(sum_ij (1-p_ij) w_ij^2) = sqrt(E ||Delta||_F^2)``."""
    return math.sqrt(float(((1 - p) * w**2).sum()))


def proposition1_zeta(weights: Sequence[Matrix], keep_probs: KeepLike, x0_norm: float) -> float:
    """Proposition 1, appendix version (App. D):
    ``zeta = ||x0|| prod_l ||W^(l)|| sum_l (1/||W^(l)||) sqrt(sum_ij (1-p_ij^(l)) (W_ij^(l))^2)``
    (spectral norms ``||.||``). Bound on ``E_masks ||f(x0) - g(x0)||``.

    The proof assumes no biases (it uses ``f(0) = 0``; FAILS with biases at ``x0 = 0``) and
    ``||W_hat|| <= ||W||`` in spectral norm, which is false (masking can increase it); see
    :func:`proposition1_zeta_corrected`.
    """
    ws = _weights(weights)
    ps = _keeps(ws, keep_probs)
    x0n = float(x0_norm)
    if x0n < 0:
        raise ConfigError(f"x0_norm={x0_norm!r} must be >= 0")
    norms = [spectral_norm(w) for w in ws]
    if any(n == 0 for n in norms):
        raise ConfigError("a weight matrix is all zero; Proposition 1 divides by ||W^(l)||")
    return x0n * math.prod(norms) * sum(_delta_fro(w, p) / n for w, p, n in zip(ws, ps, norms, strict=False))


def proposition1_zeta_main_text(weights: Sequence[Matrix], keep_probs: KeepLike) -> float:
    """Proposition 1 as printed in Sec. 5.2 (no ``||x0||``):
    ``zeta = prod_l ||W^(l)|| sum_l (1/||W^(l)||) sqrt(sum_ij (1-p_ij^(l)) (W_ij^(l))^2)``.

    Equals the appendix version with ``||x0|| = 1``; FAILS for inputs with ``||x0|| > 1``
    (any image in [0,1]^D with more than one bright pixel can have that).
    """
    return proposition1_zeta(weights, keep_probs, 1.0)


def _hidden_norm_bounds(
    scale: Sequence[float], biases: Sequence | None, x0_norm: float, L: int
) -> list[float]:
    """``m_0 = ||x0||``, ``m_l = s_l m_{l-1} + ||b_l||`` for l < L (bounds on ||g_{l}(x0)||)."""
    m = [float(x0_norm)]
    for k in range(L - 1):
        b = 0.0 if biases is None or biases[k] is None else _fro(biases[k])
        m.append(scale[k] * m[-1] + b)
    return m


def proposition1_zeta_corrected(
    weights: Sequence[Matrix],
    keep_probs: KeepLike,
    x0_norm: float,
    biases: Sequence[Matrix | None] | None = None,
) -> float:
    """Corrected Proposition 1 (any keep probs, optional biases, activations 1-Lipschitz with sigma(0)=0).

    ``zeta = sum_l [prod_{j>l} ||W^(j)||_2] * sqrt(sum_ij (1-p_ij^(l)) (w_ij^(l))^2) * m_{l-1}``,
    ``m_0 = ||x0||``, ``m_l = s_l m_{l-1} + ||b^(l)||`` with ``s_l`` a bound on ``E||W_hat^(l)||_2``
    (below).

    Proof sketch (telescoping over hybrids ``h_l = f_{L..l+1} o g_{l..1}``):
    ``f(x)-g(x) = sum_l h_{l-1}(x) - h_l(x)`` and ``||h_{l-1}(x)-h_l(x)|| <= Lip(f_{L..l+1})
    ||Delta^(l) u_{l-1}|| <= prod_{j>l}||W^(j)|| ||Delta^(l)||_2 ||u_{l-1}||`` with ``u_{l-1} =
    g_{l-1..1}(x)`` the PRUNED hidden state, ``||u_l|| <= ||W_hat^(l)|| ||u_{l-1}|| + ||b^(l)||``.
    Masks of different layers are independent, so ``E[||Delta^(l)|| ||u_{l-1}||] <=
    E||Delta^(l)|| * m_{l-1}`` with ``E||Delta||_2 <= sqrt(sum (1-p) w^2)`` and ``E||W_hat||_2
    <= sqrt(sum p w^2)`` (Jensen); also ``E||W_hat||_2 <= ||W||_2 + E||Delta||_2`` (triangle), so
    the code uses ``s_l = min(sqrt(sum p w^2), ||W||_2 + sqrt(sum (1-p) w^2))`` (``= ||W||_2`` when
    ``p = 1``). A layer whose ``p`` is all 0/1 (e.g. magnitude pruning) is deterministic: its exact
    ``||M o W||_2`` and ``||(1-M) o W||_2`` are used. The printed version uses ``||W^(j)||_2`` for
    the pruned layers (masking can increase the spectral norm) and drops the biases; the formula
    above reduces to the printed term for ``l = 1`` and whenever the layers below ``l`` are unpruned.
    """
    ws = _weights(weights)
    ps = _keeps(ws, keep_probs)
    L = len(ws)
    if biases is not None and len(biases) != L:
        raise ConfigError(f"biases has {len(biases)} entries but there are {L} weight matrices")
    spec = [spectral_norm(w) for w in ws]
    s, dl = [], []
    for w, p, sp in zip(ws, ps, spec, strict=False):
        if bool(((p == 0) | (p == 1)).all()):  # deterministic mask: exact realised norms
            s.append(spectral_norm(p * w))
            dl.append(spectral_norm((1 - p) * w))
        else:
            d_f = _delta_fro(w, p)
            s.append(min(math.sqrt(float((p * w**2).sum())), sp + d_f))
            dl.append(d_f)
    m = _hidden_norm_bounds(s, biases, x0_norm, L)
    return sum(math.prod(spec[k + 1 :]) * dl[k] * m[k] for k in range(L))


def proposition1_realised(
    weights: Sequence[Matrix],
    masks: Sequence[Matrix] | Mapping[str, Matrix],
    x0_norm: float,
    biases: Sequence[Matrix | None] | None = None,
) -> float:
    """``||f(x0) - g(x0)||`` bound for ONE fixed mask (telescoping, spectral norms of the realised
    matrices): ``sum_l [prod_{j>l} ||W^(j)||_2] ||(1-M^(l)) o W^(l)||_2 m_{l-1}``,
    ``m_l = ||M^(l) o W^(l)||_2 m_{l-1} + ||b^(l)||``.
    """
    ws = _weights(weights)
    ms = _masks(ws, masks)
    L = len(ws)
    s = [spectral_norm(m * w) for w, m in zip(ws, ms, strict=False)]
    m_ = _hidden_norm_bounds(s, biases, x0_norm, L)
    spec = [spectral_norm(w) for w in ws]
    return sum(
        math.prod(spec[k + 1 :]) * spectral_norm((1 - ms[k]) * ws[k]) * m_[k] for k in range(L)
    )


# --------------------------------------------------------------- corrected Lemma 1 / Theorem 1
def layernorm_lipschitz(weight: Matrix | None = None, ln_eps: float = 1e-5) -> float:
    """Global Lipschitz constant of ``LN(x) = g o (x - mean)/sqrt(var + ln_eps) + b`` on R^d:
    ``max|g| / sqrt(ln_eps)``.

    The Jacobian is ``diag(g) (I - 11^T/d - y y^T/d) / sqrt(var + ln_eps)`` with ``y`` the
    normalised vector, ``||y||^2 < d``; the middle factor is PSD with eigenvalues in [0, 1] and
    equals the centring projection at ``var = 0``, so the sup of the Jacobian norm is exactly
    ``max|g|/sqrt(ln_eps)`` (attained at constant tokens, e.g. a flat image patch). The paper
    uses ``d/(d-1)`` instead.
    """
    if ln_eps <= 0:
        raise ConfigError(f"ln_eps={ln_eps} must be > 0")
    gmax = 1.0 if weight is None else float(_t(weight).abs().max())
    return gmax / math.sqrt(ln_eps)


def attention_head_lipschitz(
    WQ: Matrix, WK: Matrix, WV: Matrix, n_tokens: int, r: float, dh: float | None = None
) -> float:
    """Lipschitz bound of ``Y -> softmax(Y W^Q (Y W^K)^T/sqrt(dh)) Y W^V`` on
    ``{Y: every row ||y_i|| <= r}`` (Frobenius).

    ``||W^V||_2 (sqrt(n) + (1 + sqrt(n)) r^2 ||A||_2)`` with ``A = W^Q W^K^T / sqrt(dh)``.
    Proof sketch: ``dh_i = sum_j P_ij dy_j + Cov_{P_i}(y, ds_i)``, ``ds_ij = dy_i^T A y_j + y_i^T
    A dy_j``; ``||P dY||_F <= ||P||_2 ||dY||_F <= sqrt(n)||dY||_F`` (row-stochastic P),
    ``||Cov_P(y, v)|| <= r sqrt(Var_P v)``, giving ``r^2||A|| ||dy_i||`` and
    ``r^2||A|| sqrt(sum_j P_ij ||dy_j||^2)``; summing over i (column sums of P <= n) gives the
    bound on the convex set, hence Lipschitz there. Dot-product attention is NOT globally
    Lipschitz (Kim et al., 2021), so a radius ``r`` is needed. The printed proof assumes
    ``||X|| <= 1`` and gets ``4||A|| + 1``, missing the ``sqrt(n)`` of the ``P dY`` term.
    """
    WQ, WK, WV = _t(WQ), _t(WK), _t(WV)
    dh = WQ.shape[1] if dh is None else dh
    A = spectral_norm(WQ @ WK.T) / math.sqrt(dh)
    sn = math.sqrt(n_tokens)
    return spectral_norm(WV) * (sn + (1 + sn) * r**2 * A)


def _ln_params(m: Mapping, name: str):
    return m.get(f"{name}_weight"), m.get(f"{name}_bias")


def _attention_radius(m: Mapping, d: int, eps: float, box: bool, r: float | None) -> float:
    if r is not None:
        return float(r)
    if m.get("layernorm", False):
        g, b = _ln_params(m, "ln1")
        gmax = 1.0 if g is None else float(_t(g).abs().max())
        bn = 0.0 if b is None else _fro(b)
        return gmax * math.sqrt(d) + bn  # ||LN(x)|| <= max|g| ||y|| + ||b||, ||y|| < sqrt(d)
    return math.sqrt(d) + (0.0 if box else eps)  # token rows of x~ in [0,1]^d (+ eps without the box)


def lemma1_gamma_corrected(
    model_or_mats: MatsLike, eps: float, n_tokens: int, box: bool = True, r: float | None = None
) -> float:
    """Corrected Lemma 1: a valid bound on ``sup_{||X~-X||_F <= eps} ||block(X~) - block(X)||_F``
    for X in [0,1]^{n x d}.

    ``gamma = eps (1 + L_LN1 L_MH)(1 + L_LN2 ||W1||_2 ||W2||_2)``, ``L_MH = ||W^O||_2
    sqrt(sum_h L_h^2)`` (concatenation: sqrt of the sum of squares, <= sqrt(H) max_h),
    ``L_h`` from :func:`attention_head_lipschitz` on rows of norm ``<= r``, and
    ``L_LN = max|g|/sqrt(ln_eps)`` (:func:`layernorm_lipschitz`) or 1 without LN.
    ``r``: with LN, ``max|g1| sqrt(d) + ||b1||`` (LN output rows); without LN, ``sqrt(d)``
    (``box=True``: x~ in [0,1]) or ``sqrt(d) + eps``. Pre-LN residual structure:
    ``Lip(X + MH(LN1 X)) <= 1 + L_LN1 L_MH``, ``Lip(z + FFN(LN2 z)) <= 1 + L_LN2 L_FFN``.
    Applied to a pruned model's matrices it is the realised (per-mask) bound.
    """
    eps = _check_eps(eps)
    m = _mats(model_or_mats)
    d = _t(m["O"]).shape[0]
    H = len(m["Q"])
    rr = _attention_radius(m, d, eps, box, r)
    heads = [attention_head_lipschitz(m["Q"][h], m["K"][h], m["V"][h], n_tokens, rr, d / H) for h in range(H)]
    L_mh = spectral_norm(m["O"]) * math.sqrt(sum(x**2 for x in heads))
    L_ffn = spectral_norm(m["W1"]) * spectral_norm(m["W2"])
    if m.get("layernorm", False):
        ln_eps = float(m.get("ln_eps", 1e-5))
        L1 = layernorm_lipschitz(m.get("ln1_weight"), ln_eps)
        L2 = layernorm_lipschitz(m.get("ln2_weight"), ln_eps)
    else:
        L1 = L2 = 1.0
    return eps * (1 + L1 * L_mh) * (1 + L2 * L_ffn)


_GROUPS = ("Q", "K", "V", "O", "W1", "W2")


def theorem1_gamma_corrected(
    model_or_mats: MatsLike,
    eps: float,
    keep: float | Mapping[str, float],
    n_tokens: int,
    box: bool = True,
    r: float | None = None,
) -> float:
    """Corrected Theorem 1: bound on ``E_masks sup ||g(X~) - g(X)||_F`` for Bernoulli pruning of the block.

    ``keep``: a float (uniform p) or a dict with keys ``Q, K, V, O, W1, W2`` (keep per matrix
    group). With ``c = (1+sqrt n) r^2 / sqrt(d/H)``:
    ``gamma' = eps (1 + L_LN1 sqrt(p_O)||W^O||_F sqrt(sum_h p_V ||W^{V,h}||_F^2
    (sqrt(n) + c sqrt(p_Q p_K) ||W^{Q,h}||_F ||W^{K,h}||_F)^2)) (1 + L_LN2 sqrt(p_1 p_2) ||W1||_F ||W2||_F)``.
    Uniform p: the attention term is
    ``p ||W^O||_F sqrt(sum_h ||V_h||_F^2 (sqrt n + c p ||Q_h||_F||K_h||_F)^2)``: the ``sqrt n``
    (paper: ``+1``) part gets ``p``, the QK part ``p^2``, the FFN ``p``.

    Proof sketch: take E over masks of :func:`lemma1_gamma_corrected` for the pruned matrices.
    The masks of different matrices are independent, so expectations of products of norms of
    different matrices factor; ``E||B o W||_2 <= sqrt(p)||W||_F``, ``E||B o W||_2^2 <= p||W||_F^2``,
    ``E[(a + c XY)^2] <= (a + c sqrt(p_Q p_K)||Q||_F||K||_F)^2`` and ``E sqrt(S) <= sqrt(E S)``.
    Unlike the printed ``C gamma``, it is NOT a ratio times the spectral-norm bound.
    """
    eps = _check_eps(eps)
    m = _mats(model_or_mats)
    if isinstance(keep, Mapping):
        missing = set(_GROUPS) - set(keep)
        if missing:
            raise ConfigError(f"keep dict misses {sorted(missing)}; give keys {', '.join(_GROUPS)}")
        kp = {k: float(keep[k]) for k in _GROUPS}
    else:
        kp = {k: float(keep) for k in _GROUPS}
    for k, v in kp.items():
        if not 0 <= v <= 1:
            raise ConfigError(f"keep[{k}]={v} must lie in [0, 1]")
    d = _t(m["O"]).shape[0]
    H = len(m["Q"])
    rr = _attention_radius(m, d, eps, box, r)
    sn = math.sqrt(n_tokens)
    c = (1 + sn) * rr**2 / math.sqrt(d / H)
    s = 0.0
    for h in range(H):
        qk = math.sqrt(kp["Q"] * kp["K"]) * _fro(m["Q"][h]) * _fro(m["K"][h])
        s += kp["V"] * _fro(m["V"][h]) ** 2 * (sn + c * qk) ** 2
    E_mh = math.sqrt(kp["O"]) * _fro(m["O"]) * math.sqrt(s)
    E_ffn = math.sqrt(kp["W1"] * kp["W2"]) * _fro(m["W1"]) * _fro(m["W2"])
    if m.get("layernorm", False):
        ln_eps = float(m.get("ln_eps", 1e-5))
        L1 = layernorm_lipschitz(m.get("ln1_weight"), ln_eps)
        L2 = layernorm_lipschitz(m.get("ln2_weight"), ln_eps)
    else:
        L1 = L2 = 1.0
    return eps * (1 + L1 * E_mh) * (1 + L2 * E_ffn)
