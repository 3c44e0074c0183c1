"""Symbolic (sympy) derivations behind Appendices C-G, shown in the book.

Each function returns a :class:`SymbolicResult`: named sympy expressions (``exprs``), their LaTeX
(``latex``), the symbols used (``symbols``, for ``sympy.lambdify``) and boolean ``checks`` that
sympy proved (a simplified difference equal to zero, or a sign established from assumptions).

* :func:`bernoulli_frobenius` -- E||B o W||_F^2 = sum p w^2 by exact enumeration of all masks,
  and the Jensen step E||B o W||_F <= sqrt(E||B o W||_F^2) (Appendix B/C).
* :func:`theorem2_product` -- gamma = prod_l sqrt(max p_l) ||W_l||_F (Theorem 2).
* :func:`proposition1_zeta_symbolic` -- zeta of Proposition 1 (appendix form) and its per-layer
  specialisation Eq. 18-19.
* :func:`algorithm1_derivation` -- Eq. 20-24: dJ/dp_k, stationarity (21), t-substitution (22), the
  root (23) checked against sympy's, the second derivative (negative: concavity), the exact
  coordinate-wise stationary point (a maximum) and the lam = 0 / lam -> 1 values of t*.
* :func:`lemma3_rate` -- dgamma/dzeta on the uniform front (Lemma 3) and the per-layer point that
  dominates it.
* :func:`theorem1_C_symbolic` -- Theorem 1's C as printed, C <= 1, and the corrected attention and
  FFN factors.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from prunerob.config import ConfigError


@dataclass
class SymbolicResult:
    name: str
    exprs: dict[str, Any]
    symbols: dict[str, Any]
    checks: dict[str, bool] = field(default_factory=dict)
    latex: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.latex:
            self.latex = {k: sp.latex(v) for k, v in self.exprs.items()}

    def lambdify(self, key: str, args: list[Any] | None = None):
        """``sympy.lambdify`` of ``exprs[key]`` over ``args`` (default: ``symbols['args']``)."""
        return sp.lambdify(args if args is not None else self.symbols["args"], self.exprs[key], "numpy")


def _zero(expr: Any) -> bool:
    return sp.simplify(expr) == 0


# --------------------------------------------------------------------------------------------
def bernoulli_frobenius(n: int = 2, m: int = 2) -> SymbolicResult:
    """E||B o W||_F^2 = sum_ij p_ij w_ij^2 by summing over all 2^(n m) Bernoulli masks.

    Also returns the exact E||B o W||_F (a sum of square roots), the Jensen bound
    ``sqrt(sum p w^2)`` (sqrt is concave) and the last step of Theorem 2's proof,
    ``sqrt(sum p w^2) <= sqrt(max p) ||W||_F``.
    """
    if n * m > 12 or n < 1 or m < 1:
        raise ConfigError(f"n*m={n * m}: use 1 <= n*m <= 12 (2^(n m) masks are enumerated)")
    W = sp.Matrix(n, m, lambda i, j: sp.Symbol(f"w_{i + 1}{j + 1}", real=True))
    P = sp.Matrix(n, m, lambda i, j: sp.Symbol(f"p_{i + 1}{j + 1}", nonnegative=True))
    cells = [(i, j) for i in range(n) for j in range(m)]
    E_sq = sp.Integer(0)
    E_fro = sp.Integer(0)
    for mask in itertools.product((0, 1), repeat=len(cells)):
        prob = sp.Integer(1)
        sq = sp.Integer(0)
        for (i, j), bit in zip(cells, mask, strict=True):
            prob *= P[i, j] if bit else (1 - P[i, j])
            sq += bit * W[i, j] ** 2
        E_sq += prob * sq
        E_fro += prob * sp.sqrt(sq)
    linear = sum(P[i, j] * W[i, j] ** 2 for i, j in cells)
    fro = sp.sqrt(sum(W[i, j] ** 2 for i, j in cells))
    pmax = sp.Symbol("p_max", nonnegative=True)
    exprs = {
        "E_fro_sq_enumerated": sp.expand(E_sq),
        "E_fro_sq_linearity": linear,
        "E_fro_enumerated": E_fro,
        "jensen_bound": sp.sqrt(linear),
        "theorem2_step": sp.sqrt(pmax) * fro,
    }
    checks = {"E_fro_sq == sum p w^2": sp.expand(E_sq - linear) == 0}
    args = list(W) + list(P)
    return SymbolicResult("bernoulli_frobenius", exprs, {"W": W, "P": P, "p_max": pmax, "args": args}, checks)


# --------------------------------------------------------------------------------------------
def theorem2_product(L: int) -> SymbolicResult:
    """Theorem 2: gamma = P_L prod_l ||W_l||_F, P_L = prod_l sqrt(max_ij p_ij^(l))."""
    if L < 1:
        raise ConfigError(f"L={L!r} must be >= 1")
    m = sp.symbols(f"m_1:{L + 1}", positive=True)  # max_ij p_ij^(l)
    F = sp.symbols(f"F_1:{L + 1}", positive=True)  # ||W_l||_F
    P_L = sp.Mul(*[sp.sqrt(x) for x in m])
    gamma = P_L * sp.Mul(*F)
    per_layer = sp.Mul(*[sp.sqrt(mi) * Fi for mi, Fi in zip(m, F, strict=True)])
    eps = sp.Symbol("epsilon", nonnegative=True)
    exprs = {"P_L": P_L, "gamma": gamma, "gamma_with_eps": eps * gamma, "product_of_layer_bounds": per_layer}
    checks = {"gamma == prod_l sqrt(m_l) F_l": _zero(gamma - per_layer)}
    syms = {"m": m, "F": F, "epsilon": eps, "args": list(m) + list(F)}
    return SymbolicResult("theorem2_product", exprs, syms, checks)


# --------------------------------------------------------------------------------------------
def proposition1_zeta_symbolic(L: int) -> SymbolicResult:
    """Proposition 1 (appendix form) and its per-layer special case Eq. 18-19.

    ``zeta = ||x0|| prod_l S_l * sum_l D_l / S_l`` with ``S_l = ||W_l||_2`` and
    ``D_l = sqrt(sum_ij (1-p_ij) w_ij^2)``. With ``p_ij = p_l``: ``D_l = sqrt(1-p_l) F_l`` and
    ``zeta = C sum_l b_l sqrt(1-p_l)``, ``C = ||x0|| prod S_l``, ``b_l = F_l / S_l``.
    """
    if L < 1:
        raise ConfigError(f"L={L!r} must be >= 1")
    x0 = sp.Symbol("x_0", nonnegative=True)
    S = sp.symbols(f"S_1:{L + 1}", positive=True)
    D = sp.symbols(f"D_1:{L + 1}", nonnegative=True)
    F = sp.symbols(f"F_1:{L + 1}", positive=True)
    p = sp.symbols(f"p_1:{L + 1}", nonnegative=True)
    zeta = x0 * sp.Mul(*S) * sp.Add(*[d / s for d, s in zip(D, S, strict=True)])
    zeta_layer = zeta.subs({d: sp.sqrt(1 - pl) * f for d, pl, f in zip(D, p, F, strict=True)})
    C = x0 * sp.Mul(*S)
    eq19 = C * sp.Add(*[(f / s) * sp.sqrt(1 - pl) for f, s, pl in zip(F, S, p, strict=True)])
    exprs = {"zeta": zeta, "zeta_per_layer": zeta_layer, "eq19": eq19, "C": C}
    checks = {"Eq.18 == Eq.19": _zero(zeta_layer - eq19)}
    syms = {"x0": x0, "S": S, "D": D, "F": F, "p": p, "args": [x0, *S, *D], "args_layer": [x0, *S, *F, *p]}
    return SymbolicResult("proposition1_zeta", exprs, syms, checks)


# --------------------------------------------------------------------------------------------
def algorithm1_derivation(L: int = 3, k: int = 1) -> SymbolicResult:
    """Eq. 20-24 for general L (coordinate ``k``, 1-based), with every step checked.

    Symbols: ``p_l`` in (0, 1), ``lam`` in [0, 1], ``A, C, b_l > 0``, ``g`` the frozen gamma of
    Eq. 22-23 and ``t = sqrt(1 - p_k)``. Also the uniform-mode condition used by
    ``algorithm1(mode="uniform")``.
    """
    if L < 1 or not (1 <= k <= L):
        raise ConfigError(f"need L >= 1 and 1 <= k <= L; got L={L!r}, k={k!r}")
    p = sp.symbols(f"p_1:{L + 1}", positive=True)
    b = sp.symbols(f"b_1:{L + 1}", positive=True)
    lam, A, C, g, t, s, u = sp.symbols("lambda A C g t s u", positive=True)
    pk, bk = p[k - 1], b[k - 1]
    gamma = A * sp.Mul(*[sp.sqrt(x) for x in p])
    zeta = C * sp.Add(*[bl * sp.sqrt(1 - pl) for bl, pl in zip(b, p, strict=True)])
    J = lam * gamma + (1 - lam) * zeta
    dgamma = sp.diff(gamma, pk)
    dzeta = sp.diff(zeta, pk)
    dJ = sp.diff(J, pk)
    eq21_lhs, eq21_rhs = lam * g / pk, (1 - lam) * C * bk / sp.sqrt(1 - pk)
    # substitute p_k = 1 - t^2 (t >= 0, so sqrt(1 - p_k) = t) and clear denominators
    quad_derived = sp.expand(lam * g * t - (1 - lam) * C * bk * (1 - t ** 2))
    quad_printed = (1 - lam) * C * bk * t ** 2 + lam * g * t - (1 - lam) * C * bk
    eq21_times = sp.simplify(
        (eq21_lhs - eq21_rhs).subs(pk, 1 - t ** 2).subs(sp.sqrt(t ** 2), t) * (1 - t ** 2) * t
    )
    roots = sp.solve(sp.Eq(quad_printed, 0), t)
    t_printed = (-lam * g + sp.sqrt((lam * g) ** 2 + 4 * (1 - lam) ** 2 * C ** 2 * bk ** 2)) / (
        2 * (1 - lam) * C * bk
    )
    nonneg = [r for r in roots if _zero(r - t_printed)]
    d2J = sp.diff(J, pk, 2)
    # sign: substitute p_k = 1/(1+s), s > 0 (so 0 < p_k < 1), and 0 < lam < 1 via lam = 1/(1+u)
    d2J_sub = sp.simplify(d2J.subs(pk, 1 / (1 + s)).subs(lam, 1 / (1 + u)))
    # exact coordinate-wise stationary point of J (gamma NOT frozen): with the other p_l fixed,
    # J = a sqrt(p_k) + c sqrt(1-p_k) + const, a = lam*A', c = (1-lam)*C*b_k
    Aprime = A * sp.Mul(*[sp.sqrt(x) for i, x in enumerate(p) if i != k - 1])
    a_c, c_c = sp.symbols("a c", positive=True)
    p_star = a_c ** 2 / (a_c ** 2 + c_c ** 2)
    J_k = a_c * sp.sqrt(pk) + c_c * sp.sqrt(1 - pk)
    J_star = sp.simplify(J_k.subs(pk, p_star))
    dJk_at_star = sp.simplify(sp.diff(J_k, pk).subs(pk, p_star))
    d2Jk = sp.diff(J_k, pk, 2)
    # fixed point of the frozen-gamma update == exact stationarity: plug g = gamma(p) into (21)
    fixed_point_eq = sp.simplify(2 * dJ - (eq21_lhs.subs(g, gamma) - eq21_rhs))  # (21) <=> dJ/dp_k = 0
    # uniform mode: all p_l = q
    q = sp.Symbol("q", positive=True)
    B = sp.Symbol("B", positive=True)
    Ju = lam * A * q ** sp.Rational(L, 2) + (1 - lam) * C * B * sp.sqrt(1 - q)
    gu = A * q ** sp.Rational(L, 2)
    uniform_cond = sp.simplify(2 * sp.diff(Ju, q) - (lam * L * gu / q - (1 - lam) * C * B / sp.sqrt(1 - q)))
    t_uniform = (-lam * L * g + sp.sqrt((lam * L * g) ** 2 + 4 * (1 - lam) ** 2 * C ** 2 * B ** 2)) / (
        2 * (1 - lam) * C * B
    )
    lam0 = sp.simplify(t_printed.subs(lam, 0))
    lam1 = sp.limit(t_printed, lam, 1, "-")
    exprs = {
        "gamma": gamma, "zeta": zeta, "J": J,
        "dgamma_dpk": dgamma, "dzeta_dpk": dzeta, "dJ_dpk": dJ,
        "eq21": sp.Eq(eq21_lhs, eq21_rhs),
        "eq22_derived": quad_derived, "eq22_printed": quad_printed,
        "eq23_printed": t_printed, "eq23_sympy_roots": sp.Tuple(*roots),
        "eq24": 1 - t_printed ** 2,
        "d2J_dpk2": d2J, "d2J_dpk2_sub": d2J_sub,
        "coordinate_J": J_k, "a": lam * Aprime, "c": (1 - lam) * C * bk,
        "p_star_exact": p_star, "J_at_p_star": J_star, "J_endpoints": sp.Tuple(c_c, a_c),
        "J_uniform": Ju, "t_uniform": t_uniform,
        "t_star_lam0": lam0, "t_star_lam1_limit": lam1,
    }
    checks = {
        "dgamma/dp_k == gamma/(2 p_k)": _zero(dgamma - gamma / (2 * pk)),
        "dzeta/dp_k == -C b_k/(2 sqrt(1-p_k))": _zero(dzeta + C * bk / (2 * sp.sqrt(1 - pk))),
        "(21) with g=gamma(p) is dJ/dp_k = 0": _zero(fixed_point_eq),
        "(22): derived quadratic == printed": _zero(quad_derived - quad_printed),
        "(22) == (21) times t(1-t^2)": _zero(eq21_times - quad_printed) or _zero(eq21_times + quad_printed),
        "(23): printed root is a sympy root": len(nonneg) == 1,
        "(23): the other root is negative (0<lam<1)": all(
            _zero(r - t_printed) or bool(sp.simplify(r.subs(lam, 1 / (1 + u))).is_negative) for r in roots),
        "d2J/dp_k^2 < 0 on (0,1) for 0<lam<1": bool(d2J_sub.is_negative),
        "exact stationary p* has dJ_k/dp_k = 0": _zero(dJk_at_star),
        "J(p*) == sqrt(a^2 + c^2) >= max(J(0)=c, J(1)=a)": _zero(J_star - sp.sqrt(a_c ** 2 + c_c ** 2)),
        "coordinate J concave: d2/dp_k^2 (a sqrt(p)+c sqrt(1-p)) < 0": bool(
            sp.simplify(d2Jk.subs(pk, 1 / (1 + s))).is_negative),
        "uniform: 2 dJ_u/dq == lam L gamma/q - (1-lam) C B/sqrt(1-q)": _zero(uniform_cond),
        "lam=0: t*=1 (p_k=0)": lam0 == 1,
        "lam->1-: t*->0 (p_k=1)": lam1 == 0,
    }
    syms = {"p": p, "b": b, "lambda": lam, "A": A, "C": C, "g": g, "t": t, "q": q, "B": B,
            "args": [lam, A, C, *b, *p]}
    return SymbolicResult("algorithm1_derivation", exprs, syms, checks)


# --------------------------------------------------------------------------------------------
def lemma3_rate(L: int | None = None) -> SymbolicResult:
    """Lemma 3: on the uniform curve gamma = A p^(L/2), zeta = K B sqrt(1-p) (K = ||x0|| prod ||W||,
    B = sum ||W||_F/||W||), dgamma/dzeta = -L p^(L/2-1) sqrt(1-p) A / (K B).

    Also the per-layer point with the same gamma and all pruning in the layer with the smallest b:
    zeta_dom = K b_min sqrt(1 - p^L) (ratio to the uniform zeta <= 1/sqrt(L), see tradeoff.py).
    """
    Ls = sp.Symbol("L", positive=True, integer=True) if L is None else sp.Integer(L)
    p, A, K, B, bmin = sp.symbols("p A K B b_min", positive=True)
    gamma = A * p ** (Ls / 2)
    zeta = K * B * sp.sqrt(1 - p)
    rate = sp.diff(gamma, p) / sp.diff(zeta, p)
    printed = -Ls * p ** (Ls / 2 - 1) * sp.sqrt(1 - p) * A / (K * B)
    zeta_dom = K * bmin * sp.sqrt(1 - p ** Ls)
    exprs = {"gamma": gamma, "zeta": zeta, "rate": sp.simplify(rate), "rate_printed": printed,
             "zeta_dominating": zeta_dom, "gamma_dominating": A * sp.sqrt(p ** Ls)}
    checks = {"dgamma/dzeta == printed": _zero(rate - printed),
              "rate < 0 on (0,1)": bool(
                  sp.simplify(printed.subs(p, 1 / (1 + sp.Symbol('s', positive=True)))).is_negative)}
    return SymbolicResult("lemma3_rate", exprs, {"p": p, "A": A, "K": K, "B": B, "b_min": bmin, "L": Ls,
                                                 "args": [p, A, K, B]}, checks)


# --------------------------------------------------------------------------------------------
def theorem1_C_symbolic() -> SymbolicResult:
    """Theorem 1's C as printed, a proof that C <= 1, and the corrected factors.

    Printed: ``C = (1 + p^2 a)/(1 + a) * (1 + p f)/(1 + f)`` with ``a = ||W^O||_F sqrt(H) alpha``,
    ``f = ||W_FFN||_F``. Each factor is ``(1 + p^j x)/(1 + x) = 1 - x (1 - p^j)/(1 + x) <= 1``.

    Correction (one head, o, v, q, k the Frobenius norms of W^O, W^V, W^Q, W^K, c0 = 4/sqrt(d/H)):
    with ``E||B o W||_F <= sqrt(p) ||W||_F`` applied per matrix (independent masks),
    ``||W^O'|| ||W^V'|| (c0 ||W^Q'|| ||W^K'|| + 1) <= p o v (p c0 q k + 1)``, NOT ``p^2 o v (c0 q k + 1)``;
    the printed term is smaller by ``p (1-p) o v sqrt(H)``. A single FFN matrix scales by
    ``sqrt(p)``, not ``p``. (The max over heads is kept outside, per head here.)
    """
    p = sp.Symbol("p", nonnegative=True)
    a, f, x = sp.symbols("a f x", nonnegative=True)
    o, v, qn, kn, c0, H = sp.symbols("o v q k c_0 H", positive=True)
    j = sp.Symbol("j", positive=True)
    C_printed = (1 + p ** 2 * a) / (1 + a) * (1 + p * f) / (1 + f)
    factor = (1 + p ** j * x) / (1 + x)
    gap = sp.simplify(1 - factor)
    alpha = v * (c0 * qn * kn + 1)
    attn_printed = p ** 2 * o * sp.sqrt(H) * alpha
    attn_corrected = (
        (sp.sqrt(p) * o) * sp.sqrt(H) * (sp.sqrt(p) * v) * (c0 * (sp.sqrt(p) * qn) * (sp.sqrt(p) * kn) + 1)
    )
    ffn_printed, ffn_corrected = p * f, sp.sqrt(p) * f
    C_corrected = (1 + attn_corrected) / (1 + o * sp.sqrt(H) * alpha) * (1 + ffn_corrected) / (1 + f)
    diff_attn = sp.factor(sp.expand(attn_corrected - attn_printed))
    u = sp.Symbol("u", positive=True)  # p = 1/(1+u) in (0,1)
    exprs = {
        "C_printed": C_printed, "factor": factor, "one_minus_factor": gap,
        "attn_printed": attn_printed, "attn_corrected": sp.expand(attn_corrected),
        "attn_difference": diff_attn,
        "ffn_printed": ffn_printed, "ffn_corrected": ffn_corrected, "C_corrected": C_corrected,
        "C_corrected_minus_printed_single_head": sp.simplify(
            C_corrected - C_printed.subs({a: o * sp.sqrt(H) * alpha})),
    }
    checks = {
        "1 - factor == x(1-p^j)/(1+x)": _zero(gap - x * (1 - p ** j) / (1 + x)),
        "factor <= 1 for p in (0,1), x >= 0 (j = 1/2, 1, 2)": all(
            bool(sp.factor(sp.together(sp.expand((x * (1 - p ** jj) / (1 + x)).subs(p, (1 + u) ** -2))))
                 .is_nonnegative)
            for jj in (sp.Rational(1, 2), 1, 2)),
        "corrected - printed attention == p(1-p) o v sqrt(H)": _zero(
            diff_attn - p * (1 - p) * o * v * sp.sqrt(H)),
        "corrected attention >= printed for p in (0,1)": bool(
            sp.simplify(diff_attn.subs(p, 1 / (1 + u))).is_positive),
        # o sqrt(H) alpha - attn_corrected = o sqrt(H) v (1-p)(c0 q k (1+p) + 1) >= 0 and
        # f - sqrt(p) f = f (1 - sqrt(p)) >= 0 on [0, 1]: both corrected factors are <= 1
        "corrected C <= 1 (each factor)": _zero(
            o * sp.sqrt(H) * alpha - attn_corrected
            - o * sp.sqrt(H) * v * (1 - p) * (c0 * qn * kn * (1 + p) + 1))
            and _zero(f - ffn_corrected - f * (1 - sp.sqrt(p))),
    }
    syms = {"p": p, "a": a, "f": f, "o": o, "v": v, "q": qn, "k": kn, "c0": c0, "H": H,
            "args": [p, a, f], "args_head": [p, o, v, qn, kn, c0, H, f]}
    return SymbolicResult("theorem1_C", exprs, syms, checks)
