"""The robustness/optimality trade-off of Section 5.3 and Appendices E-G.

Everything here works on the per-layer objective of Appendix E,

    gamma(p) = A * prod_l sqrt(p_l)                         (Eq. 17, Theorem 2 with p_ij = p_l)
    zeta(p)  = C * sum_l b_l * sqrt(1 - p_l)                (Eq. 18-19, Proposition 1 with p_ij = p_l)
    J(p)     = lam * gamma(p) + (1 - lam) * zeta(p)         (Eq. 20),   p in [0, 1]^L,

with A = prod_l ||W_l||_F, b_l = ||W_l||_F / ||W_l||_2 and C = E||x|| prod_l ||W_l||_2
(Algorithm 1, line 1). ``p_l`` is the probability of KEEPING a weight of layer ``l``.

What this module provides
-------------------------
* :func:`algorithm1` -- Algorithm 1 exactly as printed (Jacobi sweep: gamma is computed once per
  outer iteration, line 5; every p_k is then updated with Eq. 23/24 and clipped; stopping rule of
  line 11), plus a ``mode="uniform"`` adaptation (derived below) and an explicit treatment of
  ``lam = 1`` where Eq. 23 divides by ``(1 - lam) = 0``.
* :func:`minimize_J` -- the verified minimiser of Eq. 20.  As a function of one ``p_k`` with the
  others fixed, ``J = lam*A'*sqrt(p_k) + (1-lam)*C*b_k*sqrt(1-p_k) + const`` is a sum of two
  concave functions, so the stationary point of Eq. 21 that Algorithm 1 iterates towards is a
  coordinate-wise MAXIMUM and the minimum over [0, 1] is at an endpoint.  Coordinate-wise
  concavity implies that a minimiser over the box is attained at a vertex of {0, 1}^L (move one
  coordinate at a time to its better endpoint; J never increases), hence

      min_p J(p) = min( lam*A  [keep everything],  (1-lam)*C*min_l b_l  [remove layer argmin b] ).

* :func:`minimize_J_constrained` (box ``[p_min, p_max]^L``, again a vertex) and
  :func:`minimize_J_budget` (a fixed number of kept weights, ``sum_l n_l p_l = keep * sum_l n_l``).
  For the budget: along any direction that moves two coordinates while keeping the budget,
  ``sqrt(p_i p_j)`` (a geometric mean) and the ``sqrt(1-p)`` terms are concave, so J is concave on
  that segment and one of the two coordinates can be pushed to 0 or 1 without increasing J.  A
  minimiser therefore has at most ONE fractional layer, and enumerating ``L * 2^(L-1)`` candidates
  is exact.
* :func:`pareto_sweep` (Figure 5 / Appendix F), :func:`uniform_front` (Lemma 2/3) and
  :func:`layerwise_front` (the true Pareto front of (gamma, zeta) over per-layer keep
  probabilities, which is the quarter ellipse ``(gamma/A)^2 + (zeta/(C b_min))^2 = 1``).

Uniform mode (one shared p)
---------------------------
With all ``p_l = p``: ``J_u(p) = lam*A*p^(L/2) + (1-lam)*C*B*sqrt(1-p)``, ``B = sum_l b_l``.
``dJ_u/dp = 0`` gives ``lam*L*gamma(p)/p = (1-lam)*C*B/sqrt(1-p)``, i.e. Eq. 21 with
``gamma -> L*gamma`` and ``b_k -> B``; the same substitution ``t = sqrt(1-p)`` gives the quadratic
``(1-lam)*C*B*t^2 + lam*L*gamma*t - (1-lam)*C*B = 0`` and the update ``p = 1 - t*^2``.  That is the
adaptation used by ``algorithm1(mode="uniform")`` (gamma again frozen per iteration).  Its exact
minimiser (:func:`minimize_J` with ``mode="uniform"``) is found from
``sign(dJ_u/dp) = sign(lam*A*L*h(p) - (1-lam)*C*B)``, ``h(p) = p^(L/2-1) sqrt(1-p)``: for L <= 2
``h`` is decreasing (only a maximum, so an endpoint wins); for L >= 3 ``h`` rises then falls (peak
at ``(L-2)/(L-1)``), so there is at most one interior local minimum, located by bisection.
"""
from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prunerob.config import ConfigError, check_choice
from prunerob.core.masks import keep_probs, named_weights

MODES = ("layerwise", "uniform")
SWEEPS = ("jacobi", "gauss-seidel")
LAM1_POLICIES = ("limit", "nan", "raise")
MIN_METHODS = ("vertex", "exact", "grid")


# --------------------------------------------------------------------------------------------
# constants (Algorithm 1, line 1)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constants:
    """The constants of Algorithm 1, line 1: ``A``, ``b`` (one per layer) and ``C``.

    Iterable, so ``A, b, C = constants(weights, x_norm)`` works. ``sizes`` holds the number of
    weights per layer when the constants came from weight matrices (used by the budget variant).
    """

    A: float
    b: np.ndarray
    C: float
    sizes: np.ndarray | None = None

    def __post_init__(self) -> None:
        b = np.atleast_1d(np.asarray(self.b, dtype=np.float64))
        object.__setattr__(self, "b", b)
        if b.ndim != 1 or b.size == 0:
            raise ConfigError("b must be a non-empty 1-D array (one b_l per layer)")
        if not (np.isfinite(self.A) and self.A >= 0 and np.isfinite(self.C) and self.C >= 0):
            raise ConfigError(f"A={self.A!r} and C={self.C!r} must be finite and >= 0")
        if np.any(~np.isfinite(b)) or np.any(b < 0):
            raise ConfigError(f"b={b!r} must be finite and >= 0")
        if self.sizes is not None:
            object.__setattr__(self, "sizes", np.asarray(self.sizes, dtype=np.float64))

    @property
    def L(self) -> int:
        return int(self.b.size)

    def __iter__(self):
        return iter((self.A, self.b, self.C))


def _to_matrix(w: Any) -> np.ndarray:
    if hasattr(w, "detach"):
        w = w.detach().cpu().double().numpy()
    m = np.asarray(w, dtype=np.float64)
    if m.ndim != 2:
        raise ConfigError(
            f"each weight must be a 2-D matrix (an MLP layer, Theorem 2 / Proposition 1); got shape {m.shape}"
        )
    return m


def as_matrices(weights: Any) -> list[np.ndarray]:
    """Normalise ``weights`` (list of arrays/tensors, ordered mapping, or an MLP ``nn.Module``)."""
    if isinstance(weights, Mapping):
        weights = list(weights.values())
    elif hasattr(weights, "modules") and hasattr(weights, "parameters"):  # torch.nn.Module
        weights = _module_weights(weights)
    mats = [_to_matrix(w) for w in weights]
    if not mats:
        raise ConfigError("weights is empty; give at least one weight matrix")
    return mats


def _module_weights(model: Any) -> list[Any]:
    """The model's prunable weights in layer order (:mod:`prunerob.core.masks` naming)."""
    return list(named_weights(model).values())


def keep_probs_by_name(weights: Any, p: Any) -> OrderedDict[str, float]:
    """Algorithm 1's per-layer keep probabilities ``p_l`` (an array in layer order) as the package's
    keep-probability dict ``name -> p_l`` (:func:`prunerob.core.masks.keep_probs`), ready for
    :func:`prunerob.core.masks.sample_masks` or :func:`prunerob.core.masks.layerwise_magnitude_masks`."""
    return keep_probs(weights, [float(v) for v in np.asarray(p, dtype=np.float64).ravel()])


def layer_norms(weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Frobenius and spectral norm of each layer (exact, via singular values)."""
    mats = as_matrices(weights)
    fro = np.array([np.linalg.norm(m) for m in mats])
    spec = np.array([np.linalg.svd(m, compute_uv=False)[0] if m.size else 0.0 for m in mats])
    return fro, spec


def constants(weights: Any, x_norm: float = 1.0, eps: float | None = None) -> Constants:
    """Algorithm 1, line 1: ``A = prod ||W_l||_F``, ``b_l = ||W_l||_F/||W_l||_2``,
    ``C = x_norm * prod ||W_l||_2`` (``x_norm`` plays E||x|| of Eq. 18, or ||x_0|| of Lemma 2).

    ``eps``: Theorem 2 as printed has no attack budget in gamma, although its proof bounds
    ||g(x) - g(x')|| and ||x - x'|| <= eps; pass ``eps`` to use ``A = eps * prod ||W_l||_F``
    (the risk bound of Definition 1). ``None`` (default) reproduces the paper's objective.
    """
    x_norm = float(x_norm)
    if not (np.isfinite(x_norm) and x_norm >= 0):
        raise ConfigError(f"x_norm={x_norm!r} must be a finite number >= 0 (mean L2 norm of inputs)")
    mats = as_matrices(weights)
    fro, spec = layer_norms(mats)
    if np.any(spec == 0):
        raise ConfigError("a weight matrix is all zeros: b_l = ||W||_F/||W||_2 is undefined")
    A = float(np.prod(fro))
    if eps is not None:
        if not eps >= 0:
            raise ConfigError(f"eps={eps!r} must be >= 0")
        A *= float(eps)
    sizes = np.array([m.size for m in mats], float)
    return Constants(A=A, b=fro / spec, C=x_norm * float(np.prod(spec)), sizes=sizes)


def as_constants(weights_or_constants: Any, x_norm: float = 1.0) -> Constants:
    """Accept a :class:`Constants`, a tuple ``(A, b, C)`` with scalar A, or weights."""
    obj = weights_or_constants
    if isinstance(obj, Constants):
        return obj
    if isinstance(obj, tuple) and len(obj) == 3 and np.ndim(obj[0]) == 0 and np.ndim(obj[2]) == 0:
        return Constants(float(obj[0]), np.asarray(obj[1], float), float(obj[2]))
    return constants(obj, x_norm)


# --------------------------------------------------------------------------------------------
# objective (Eq. 17-20)
# --------------------------------------------------------------------------------------------
def _check_lam(lam: float) -> float:
    lam = float(lam)
    if not (0.0 <= lam <= 1.0):
        raise ConfigError(
            f"lam={lam!r} is outside [0, 1]; lam weights robustness (gamma) against optimality (zeta)"
        )
    return lam


def _check_p(p: Any, L: int) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(L, float(arr))
    if arr.shape[-1] != L:
        raise ConfigError(
            f"keep probabilities have {arr.shape[-1]} entries per configuration; expected L={L}"
        )
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ConfigError(
            "keep probabilities p must lie in [0, 1] (the paper's p is the probability of keeping)"
        )
    return arr


def gamma_of(p: Any, A: float) -> np.ndarray:
    """Eq. 17: ``gamma(p) = A prod_l sqrt(p_l)`` (vectorised over leading axes of ``p``)."""
    return A * np.prod(np.sqrt(np.asarray(p, float)), axis=-1)


def zeta_of(p: Any, b: Any, C: float) -> np.ndarray:
    """Eq. 19: ``zeta(p) = C sum_l b_l sqrt(1 - p_l)``."""
    p = np.asarray(p, float)
    return C * np.sum(np.asarray(b, float) * np.sqrt(np.clip(1.0 - p, 0.0, None)), axis=-1)


def objective_J(p: Any, A: float, b: Any, C: float, lam: float) -> np.ndarray | float:
    """Eq. 20: ``J(p) = lam*gamma(p) + (1-lam)*zeta(p)``; ``p`` has shape ``[..., L]`` (or is a
    scalar = uniform)."""
    lam = _check_lam(lam)
    b = np.atleast_1d(np.asarray(b, float))
    p = _check_p(p, b.size)
    out = lam * gamma_of(p, A) + (1.0 - lam) * zeta_of(p, b, C)
    return float(out) if np.ndim(out) == 0 else out


def _J(p: np.ndarray, k: Constants, lam: float) -> float:
    return float(lam * gamma_of(p, k.A) + (1.0 - lam) * zeta_of(p, k.b, k.C))


# --------------------------------------------------------------------------------------------
# Algorithm 1 (Appendix E)
# --------------------------------------------------------------------------------------------
def eq23_root(g: Any, r: Any) -> np.ndarray:
    """Nonnegative root t* of Eq. 22, ``r t^2 + g t - r = 0`` with ``g = lam*gamma``, ``r = (1-lam)*C*b_k``.

    Eq. 23 prints ``(-g + sqrt(g^2 + 4 r^2)) / (2 r)``; we evaluate the algebraically identical
    ``2 r / (g + sqrt(g^2 + 4 r^2))`` (multiply by the conjugate), which has no cancellation when
    ``g >> r`` and is finite at ``r = 0``. Where both ``g = 0`` and ``r = 0`` the root is 0/0; we
    return the ``lam -> 1^-`` limit there, t* = 1 (the limit for g = 0 and any r > 0).
    """
    g = np.asarray(g, float)
    r = np.asarray(r, float)
    s = np.sqrt(g * g + 4.0 * r * r)
    den = g + s
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, 2.0 * r / np.where(den > 0, den, 1.0), 1.0)
    return t


def eq23_root_printed(g: Any, r: Any) -> np.ndarray:
    """Eq. 23 literally: ``(-g + sqrt(g^2 + 4 r^2)) / (2 r)`` (NaN/inf at r = 0, as printed)."""
    g = np.asarray(g, float)
    r = np.asarray(r, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (-g + np.sqrt(g * g + 4.0 * r * r)) / (2.0 * r)


@dataclass
class Algorithm1Result:
    """Output of :func:`algorithm1`. ``keep`` is ``p*`` (line 15); ``history`` has one entry per
    iterate ``t = 0, 1, ...`` with ``keep``, ``gamma``, ``zeta``, ``J`` (``J^(0)`` is line 3)."""

    keep: np.ndarray
    J: float
    gamma: float
    zeta: float
    iterations: int
    converged: bool
    lam: float
    mode: str
    sweep: str
    notes: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] | None = None


def algorithm1(
    weights: Any,
    lam: float,
    p0: float | Sequence[float] = 1.0,
    tol: float = 1e-6,
    max_iter: int = 50,
    x_norm: float = 1.0,
    mode: str = "layerwise",
    return_history: bool = False,
    sweep: str = "jacobi",
    at_lam1: str = "limit",
) -> Algorithm1Result:
    """Algorithm 1 of Appendix E as printed.

    Line 1 constants from ``weights`` (or pass a :class:`Constants`); line 2 ``p^(0) = p0``;
    line 3 ``J^(0)``; lines 4-14: per outer iteration compute ``gamma = A prod sqrt(p^(t))`` ONCE
    (line 5), update every ``p_k`` with Eq. 23/24 clipped to [0, 1] (lines 7-8), compute
    ``J^(t+1)`` (line 10) and stop when ``|J^(t+1) - J^(t)| / (J^(t) + 1e-12) < tol`` (line 11).

    ``sweep="gauss-seidel"`` (not printed) recomputes gamma after each coordinate, i.e. a true
    cyclic coordinate method; it has the same fixed points.

    ``mode="uniform"``: one shared ``p``; update from the diagonal stationarity condition
    ``lam*L*gamma/p = (1-lam)*C*B/sqrt(1-p)`` (module docstring). ``p0`` must then be one number.

    ``lam = 1``: Eq. 23 divides by ``(1-lam)*C*b_k = 0``. The printed formula gives 0/0 = NaN;
    NumPy's clip keeps NaN, while Python's ``min(1, max(0, nan))`` returns 0 (prune everything).
    ``at_lam1="limit"`` (default) uses the ``lam -> 1^-`` limit of Eq. 23: ``t* -> 0`` (p = 1, no
    pruning) while gamma > 0, ``t* = 1`` (p = 0) once gamma = 0; ``"nan"`` reproduces the NumPy NaN;
    ``"raise"`` raises ConfigError. The same applies whenever ``C*b_k = 0`` (e.g. ``x_norm = 0``).

    Caution (verified in tests/test_tradeoff.py and book/theory/_findings_tradeoff.md): the fixed
    points of Eq. 21-24 are coordinate-wise MAXIMA of J, so this iteration does not minimise J;
    use :func:`minimize_J` for the minimiser.
    """
    lam = _check_lam(lam)
    check_choice("mode", mode, MODES)
    check_choice("sweep", sweep, SWEEPS)
    check_choice("at_lam1", at_lam1, LAM1_POLICIES)
    if not (tol > 0):
        raise ConfigError(f"tol={tol!r} must be > 0")
    if int(max_iter) < 0:
        raise ConfigError(f"max_iter={max_iter!r} must be >= 0")
    k = as_constants(weights, x_norm)
    L = k.L
    notes: list[str] = []

    if mode == "uniform":
        p0_arr = np.atleast_1d(np.asarray(p0, float))
        if p0_arr.size > 1 and np.ptp(p0_arr) > 0:
            raise ConfigError("p0 must be a single number when mode='uniform'")
        p = np.full(L, float(p0_arr[0]))
    else:
        p = np.asarray(p0, float)
        p = np.full(L, float(p)) if p.ndim == 0 else p.copy()
    p = _check_p(p, L).astype(float)

    def r_of(idx: int | None) -> float:
        return (1.0 - lam) * k.C * (float(np.sum(k.b)) if idx is None else float(k.b[idx]))

    degenerate = lam == 1.0 or k.C == 0 or np.any(k.b == 0)
    if degenerate:
        msg = (
            "Eq. 23 divides by (1-lam)*C*b_k = 0 here (lam=1 or C*b_k=0); "
            + {"limit": "used the lam->1^- limit (t*=0 -> p=1 while gamma>0; t*=1 -> p=0 when gamma=0)",
               "nan": "returned NaN as the printed formula does under NumPy",
               "raise": ""}[at_lam1]
        )
        if at_lam1 == "raise":
            raise ConfigError(f"lam={lam!r}: {msg}; use at_lam1='limit' or 'nan', or lam < 1")
        notes.append(msg)

    def update(gamma: float, idx: int | None) -> float:
        g = lam * gamma * (L if idx is None else 1)
        r = r_of(idx)
        if r == 0 and at_lam1 == "nan":
            t = float(eq23_root_printed(g, r))
        else:
            t = float(eq23_root(g, r))
        if math.isnan(t):
            return float("nan")
        return min(1.0, max(0.0, 1.0 - t * t))

    def record(t: int, p: np.ndarray, J: float) -> dict[str, Any]:
        return {"iteration": t, "keep": p.copy(), "gamma": float(gamma_of(p, k.A)),
                "zeta": float(zeta_of(p, k.b, k.C)), "J": J}

    J_prev = _J(p, k, lam)
    history = [record(0, p, J_prev)] if return_history else None
    converged = False
    it = 0
    for it in range(1, int(max_iter) + 1):
        if mode == "uniform":
            gamma = float(gamma_of(p, k.A))
            p = np.full(L, update(gamma, None))
        elif sweep == "jacobi":
            gamma = float(gamma_of(p, k.A))  # line 5: once per outer iteration
            p = np.array([update(gamma, j) for j in range(L)])
        else:
            p = p.copy()
            for j in range(L):
                p[j] = update(float(gamma_of(p, k.A)), j)
        J_new = _J(p, k, lam) if not np.any(np.isnan(p)) else float("nan")
        if history is not None:
            history.append(record(it, p, J_new))
        if abs(J_new - J_prev) / (J_prev + 1e-12) < tol:  # line 11
            converged = True
            J_prev = J_new
            break
        J_prev = J_new
    return Algorithm1Result(
        keep=p, J=J_prev, gamma=float(gamma_of(p, k.A)), zeta=float(zeta_of(p, k.b, k.C)),
        iterations=it, converged=converged, lam=lam, mode=mode, sweep=sweep, notes=notes, history=history,
    )


# --------------------------------------------------------------------------------------------
# verified minimisers
# --------------------------------------------------------------------------------------------
@dataclass
class MinimiserResult:
    keep: np.ndarray
    J: float
    gamma: float
    zeta: float
    method: str
    mode: str
    lam: float


def _result(p: np.ndarray, k: Constants, lam: float, method: str, mode: str) -> MinimiserResult:
    p = np.asarray(p, float)
    return MinimiserResult(keep=p, J=_J(p, k, lam), gamma=float(gamma_of(p, k.A)),
                           zeta=float(zeta_of(p, k.b, k.C)), method=method, mode=mode, lam=lam)


def vertex_table(k: Constants, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """All ``2^L`` vertices of {0,1}^L and their J."""
    if k.L > 20:
        raise ConfigError(f"vertex enumeration over 2^{k.L} points is too large; use method='exact'")
    V = np.array(list(itertools.product((1.0, 0.0), repeat=k.L)))
    return V, lam * gamma_of(V, k.A) + (1 - lam) * zeta_of(V, k.b, k.C)


def _uniform_exact(k: Constants, lam: float) -> float:
    """Exact minimiser of J_u(p) = lam*A*p^(L/2) + (1-lam)*C*B*sqrt(1-p) on [0, 1]."""
    L, B = k.L, float(np.sum(k.b))
    a, c = lam * k.A, (1 - lam) * k.C * B
    Ju = lambda q: a * q ** (L / 2) + c * math.sqrt(max(0.0, 1 - q))  # noqa: E731
    cands = [1.0, 0.0]
    if L >= 3 and a > 0 and c > 0:
        h = lambda q: q ** (L / 2 - 1) * math.sqrt(max(0.0, 1 - q))  # noqa: E731
        peak = (L - 2) / (L - 1)
        # dJ_u/dp has the sign of a*L*h(p) - c; on [0, peak] h increases, so a sign change - -> +
        # there is the (unique) interior local minimum.
        if a * L * h(peak) > c:
            lo, hi = 0.0, peak
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if a * L * h(mid) > c:
                    hi = mid
                else:
                    lo = mid
            cands.append(0.5 * (lo + hi))
    vals = [Ju(q) for q in cands]
    return cands[int(np.argmin(vals))]  # ties: first candidate (no pruning first)


def minimize_J(
    weights_or_constants: Any,
    lam: float,
    method: str = "vertex",
    mode: str = "layerwise",
    x_norm: float = 1.0,
    grid: int = 201,
) -> MinimiserResult:
    """Global minimiser of Eq. 20 over ``[0, 1]^L`` (layerwise) or over one shared p (uniform).

    Layer-wise, J is concave in each coordinate, so the minimum is at a vertex of {0,1}^L:
    ``method="vertex"`` enumerates the 2^L vertices, ``method="exact"`` uses the closed form
    ``min(lam*A, (1-lam)*C*min_l b_l)`` (keep everything, or remove the layer with the smallest
    ``b_l`` entirely; ties resolved towards keeping everything), ``method="grid"`` is
    :func:`brute_force_J`. Uniform mode solves the 1-D problem exactly (module docstring).
    """
    lam = _check_lam(lam)
    check_choice("method", method, MIN_METHODS)
    check_choice("mode", mode, MODES)
    k = as_constants(weights_or_constants, x_norm)
    if method == "grid":
        return brute_force_J(k, lam, grid=grid, mode=mode)
    if mode == "uniform":
        return _result(np.full(k.L, _uniform_exact(k, lam)), k, lam, method, mode)
    if method == "vertex":
        V, Jv = vertex_table(k, lam)
        return _result(V[int(np.argmin(Jv))], k, lam, method, mode)
    p = np.ones(k.L)
    if (1 - lam) * k.C * float(np.min(k.b)) < lam * k.A:
        p[int(np.argmin(k.b))] = 0.0
    return _result(p, k, lam, method, mode)


def brute_force_J(weights_or_constants: Any, lam: float, grid: int = 201, mode: str = "layerwise",
                  x_norm: float = 1.0) -> MinimiserResult:
    """Minimise Eq. 20 over the grid ``{0, 1/(grid-1), ..., 1}^L`` (uniform: over the 1-D grid).

    Meant as an independent check for L = 2, 3 (grid^L evaluations, chunked over the first axis).
    """
    lam = _check_lam(lam)
    check_choice("mode", mode, MODES)
    k = as_constants(weights_or_constants, x_norm)
    g = np.linspace(0.0, 1.0, int(grid))
    if mode == "uniform":
        P = np.repeat(g[:, None], k.L, axis=1)
        Jg = lam * gamma_of(P, k.A) + (1 - lam) * zeta_of(P, k.b, k.C)
        return _result(P[int(np.argmin(Jg))], k, lam, "grid", mode)
    if k.L > 4 or grid ** k.L > 5e8:
        raise ConfigError(f"grid search over {grid}^{k.L} points is too large; use L <= 4 and a smaller grid")
    best_J, best_p = np.inf, None
    rest = np.array(list(itertools.product(g, repeat=k.L - 1))) if k.L > 1 else np.zeros((1, 0))
    for v in g:
        P = np.concatenate([np.full((rest.shape[0], 1), v), rest], axis=1)
        Jg = lam * gamma_of(P, k.A) + (1 - lam) * zeta_of(P, k.b, k.C)
        i = int(np.argmin(Jg))
        if Jg[i] < best_J:
            best_J, best_p = float(Jg[i]), P[i].copy()
    return _result(best_p, k, lam, "grid", mode)


def minimize_J_constrained(weights_or_constants: Any, lam: float, p_min: float = 0.0, p_max: float = 1.0,
                           x_norm: float = 1.0) -> MinimiserResult:
    """Exact minimiser of Eq. 20 over the box ``[p_min, p_max]^L``.

    Coordinate-wise concavity still holds on the smaller box, so a minimiser is a vertex: every
    layer is either kept at ``p_max`` or pruned down to the floor ``p_min`` (2^L candidates).
    """
    lam = _check_lam(lam)
    if not (0.0 <= p_min <= p_max <= 1.0):
        raise ConfigError(f"need 0 <= p_min <= p_max <= 1; got p_min={p_min!r}, p_max={p_max!r}")
    k = as_constants(weights_or_constants, x_norm)
    V, _ = vertex_table(k, lam)
    V = np.where(V == 1.0, p_max, p_min)
    Jv = lam * gamma_of(V, k.A) + (1 - lam) * zeta_of(V, k.b, k.C)
    return _result(V[int(np.argmin(Jv))], k, lam, "box-vertex", "layerwise")


def _budget_sizes(k: Constants, sizes: Any) -> np.ndarray:
    if isinstance(sizes, str):
        check_choice("sizes", sizes, ("params", "equal"))
        if sizes == "equal":
            return np.ones(k.L)
        if k.sizes is None:
            raise ConfigError(
                "sizes='params' needs constants computed from weights; pass sizes='equal' or an array"
            )
        return np.asarray(k.sizes, float)
    n = np.asarray(sizes, float)
    if n.shape != (k.L,) or np.any(n <= 0):
        raise ConfigError(f"sizes must be {k.L} positive numbers (weights per layer)")
    return n


def minimize_J_budget(weights_or_constants: Any, lam: float, keep: float, sizes: Any = "params",
                      x_norm: float = 1.0) -> MinimiserResult:
    """Exact minimiser of Eq. 20 subject to a sparsity budget ``sum_l n_l p_l = keep * sum_l n_l``.

    ``sizes="params"``: ``n_l`` = number of weights of layer l (``keep`` is the global fraction of
    weights kept); ``"equal"``: mean of the per-layer keep probabilities equals ``keep``.

    Exactness: on the segment that trades ``p_i`` against ``p_j`` at a fixed budget, J is concave
    (``sqrt(p_i p_j)`` is a concave geometric mean, ``sqrt(1-p)`` is concave), so some minimiser has
    at most one fractional coordinate; we enumerate which layer is fractional and the {0,1}
    values of the others (``L * 2^(L-1)`` candidates).
    """
    from prunerob.config import check_keep

    lam = _check_lam(lam)
    keep = check_keep(keep)
    k = as_constants(weights_or_constants, x_norm)
    n = _budget_sizes(k, sizes)
    if k.L > 20:
        raise ConfigError(f"budget enumeration over L*2^(L-1) with L={k.L} is too large")
    K = keep * float(n.sum())
    best: tuple[float, np.ndarray] | None = None
    others = np.array(list(itertools.product((1.0, 0.0), repeat=k.L - 1))) if k.L > 1 else np.zeros((1, 0))
    for j in range(k.L):
        P = np.insert(others, j, 0.0, axis=1)
        pj = (K - P @ n) / n[j]
        tol = 1e-12 * max(1.0, K)
        ok = (pj >= -tol / n[j]) & (pj <= 1 + tol / n[j])
        if not np.any(ok):
            continue
        P = P[ok]
        P[:, j] = np.clip(pj[ok], 0.0, 1.0)
        Jc = lam * gamma_of(P, k.A) + (1 - lam) * zeta_of(P, k.b, k.C)
        i = int(np.argmin(Jc))
        if best is None or Jc[i] < best[0] - 1e-15:
            best = (float(Jc[i]), P[i].copy())
    assert best is not None  # keep in [0, 1] always admits a candidate
    return _result(best[1], k, lam, "budget-exact", "layerwise")


# --------------------------------------------------------------------------------------------
# Pareto analysis (Figure 5, Appendix F-G)
# --------------------------------------------------------------------------------------------
def lemma3_rate(p: Any, k: Constants) -> np.ndarray:
    """Lemma 3: ``dgamma/dzeta = -L p^(L/2-1) sqrt(1-p) A / (C B)`` on the uniform front."""
    p = np.asarray(p, float)
    L, B = k.L, float(np.sum(k.b))
    with np.errstate(divide="ignore", invalid="ignore"):
        return -L * p ** (L / 2 - 1) * np.sqrt(1 - p) * k.A / (k.C * B)


def dominating_point(p: Any, k: Constants) -> tuple[np.ndarray, float, float]:
    """A per-layer configuration with the same gamma as ``p`` and the smallest zeta among them.

    At fixed ``prod_l p_l = q``, zeta is a concave function of ``u_l = log p_l`` on the simplex
    ``sum u_l = log q, u_l <= 0``, hence minimal at a vertex: all pruning in ONE layer, the one
    with the smallest ``b_l`` (``p_k = q``, others 1). Returns (keep, gamma, zeta).
    """
    p = _check_p(p, k.L)
    q = float(np.prod(p))
    out = np.ones(k.L)
    out[int(np.argmin(k.b))] = q
    return out, float(gamma_of(out, k.A)), float(zeta_of(out, k.b, k.C))


def layerwise_front(weights_or_constants: Any, qs: Iterable[float] | None = None, x_norm: float = 1.0):
    """The Pareto front of (gamma, zeta) over per-layer keep probabilities (Definition 3).

    It is ``{(A sqrt(q), C b_min sqrt(1-q)) : q in [0,1]}``: prune only the layer with the
    smallest ``b_l``. Every configuration lies on or outside this quarter ellipse, because
    ``prod p_l >= 1 - sum (1 - p_l)`` gives ``(gamma/A)^2 + (zeta/(C b_min))^2 >= 1``.
    """
    import pandas as pd

    k = as_constants(weights_or_constants, x_norm)
    qs = np.linspace(0, 1, 101) if qs is None else np.asarray(list(qs), float)
    j = int(np.argmin(k.b))
    rows = []
    for q in qs:
        p = np.ones(k.L)
        p[j] = q
        rows.append({
            "q": float(q), "layer": j + 1,
            "gamma": float(gamma_of(p, k.A)), "zeta": float(zeta_of(p, k.b, k.C)),
        })
    return pd.DataFrame(rows)


def uniform_front(
    weights: Any, x_norm: float = 1.0, ps: Iterable[float] | None = None, fd_step: float = 1e-6
):
    """Lemma 2/3's uniform curve with checks. One row per ``p`` in ``ps``:

    ``keep, gamma, zeta, dgamma_dzeta`` (Lemma 3 closed form), ``dgamma_dzeta_fd`` (central finite
    differences of the parametric curve), ``pareto_among_uniform`` (not dominated by another p in
    ``ps``), ``dominated_by_layerwise`` and the dominating per-layer point (``dom_layer``,
    ``dom_keep`` = p^L on that layer, others 1, ``dom_gamma``, ``dom_zeta``).
    """
    import pandas as pd

    k = as_constants(weights, x_norm)
    ps = np.linspace(0, 1, 101) if ps is None else np.asarray(list(ps), float)
    _check_p(ps[:, None] * np.ones(k.L), k.L)
    P = np.repeat(ps[:, None], k.L, axis=1)
    gam = gamma_of(P, k.A)
    zet = zeta_of(P, k.b, k.C)
    rate = lemma3_rate(ps, k)
    fd = np.full(ps.shape, np.nan)
    for i, p in enumerate(ps):
        lo, hi = max(p - fd_step, 0.0), min(p + fd_step, 1.0)
        if hi - lo <= 0 or p <= 0 or p >= 1:
            continue
        pl, ph = np.full(k.L, lo), np.full(k.L, hi)
        dz = zeta_of(ph, k.b, k.C) - zeta_of(pl, k.b, k.C)
        fd[i] = (gamma_of(ph, k.A) - gamma_of(pl, k.A)) / dz
    rows = []
    for i, p in enumerate(ps):
        others = np.delete(np.arange(ps.size), i)
        le = (gam[others] <= gam[i]) & (zet[others] <= zet[i])
        lt = (gam[others] < gam[i]) | (zet[others] < zet[i])
        dk, dg, dz = dominating_point(np.full(k.L, p), k)
        # same gamma up to rounding (A*sqrt(p^L) vs A*prod sqrt(p)), strictly smaller zeta
        g_ok = dg <= gam[i] * (1 + 1e-12) + 1e-300
        dominated = g_ok and dz <= zet[i] and (dz < zet[i] * (1 - 1e-12) or dg < gam[i] * (1 - 1e-12))
        rows.append({
            "keep": float(p), "gamma": float(gam[i]), "zeta": float(zet[i]),
            "dgamma_dzeta": float(rate[i]), "dgamma_dzeta_fd": float(fd[i]),
            "pareto_among_uniform": not bool(np.any(le & lt)),
            "dominated_by_layerwise": bool(dominated),
            "dom_layer": int(np.argmin(k.b)) + 1, "dom_keep": float(dk.min()),
            "dom_gamma": dg, "dom_zeta": dz,
        })
    return pd.DataFrame(rows)


def pareto_sweep(weights: Any, lams: Iterable[float], x_norm: float = 1.0, mode: str = "layerwise",
                 p0: float | Sequence[float] = 1.0, tol: float = 1e-6, max_iter: int = 50,
                 budget: float | None = None, sizes: Any = "params"):
    """Figure 5 / Appendix F sweep: one row per (lam, method).

    ``method`` is ``algorithm1`` (as printed, :func:`algorithm1`) or ``minimiser`` (exact global
    minimiser, :func:`minimize_J`); with ``budget`` set, also ``budget`` (:func:`minimize_J_budget`
    at that keep ratio). Columns: ``lam, mode, method, keep_1..keep_L, gamma, zeta, J,
    iterations, converged``.
    """
    import pandas as pd

    check_choice("mode", mode, MODES)
    k = as_constants(weights, x_norm)
    rows = []

    def row(lam: float, method: str, p: np.ndarray, it: Any = None, conv: Any = None) -> dict[str, Any]:
        d: dict[str, Any] = {"lam": lam, "mode": mode, "method": method}
        d.update({f"keep_{j + 1}": float(p[j]) for j in range(k.L)})
        d.update({"gamma": float(gamma_of(p, k.A)), "zeta": float(zeta_of(p, k.b, k.C)),
                  "J": _J(p, k, lam) if not np.any(np.isnan(p)) else float("nan"),
                  "iterations": it, "converged": conv})
        return d

    for lam in lams:
        lam = _check_lam(lam)
        a1 = algorithm1(k, lam, p0=p0, tol=tol, max_iter=max_iter, mode=mode)
        rows.append(row(lam, "algorithm1", a1.keep, a1.iterations, a1.converged))
        m = minimize_J(k, lam, method="exact" if mode == "layerwise" else "vertex", mode=mode)
        rows.append(row(lam, "minimiser", m.keep))
        if budget is not None:
            bm = minimize_J_budget(k, lam, budget, sizes=sizes)
            rows.append(row(lam, "budget", bm.keep))
    return pd.DataFrame(rows)
