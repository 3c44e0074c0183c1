"""Security curves and paired tests of minimal adversarial distances (issue 27; Piras et al. 2025).

A minimum-norm attack (FAB-T, :func:`prunerob.core.attacks.fab.min_linf_distance`) gives each test
example the smallest L-inf perturbation it found that flips the prediction: ``0`` for an example
misclassified when clean, ``+inf`` (censored) for one it never broke. From the distances ``d``:

* **security curve**: robust accuracy at every budget at once, ``acc(eps) = mean(d > eps)``
  (:func:`curve`); FAB's distance is an upper bound on the true minimum, so this is an upper bound
  on robust accuracy, like any attack's accuracy;
* **consistency with PGD** (:func:`violations`): an example PGD breaks at ``eps`` has an
  adversarial point within ``eps``, so a minimum-norm attack that is doing its job finds
  ``d <= eps``; ``d > eps + tol`` is a violation (FAB missed a point PGD found);
* **paired shift** (:func:`paired_shift`): per example and seed, ``d(pruned) - d(unpruned)`` (same
  trained model, examples and attack seed). Per seed a Wilcoxon signed-rank test; pooled across
  seeds by a t-test over the seeds' median shifts (the seeds are the units; the primary test) and
  by Stouffer's sum of the seeds' signed-rank z-scores (secondary: it treats the seeds as
  independent, but they share their test examples, which correlates the z-scores and makes it
  anti-conservative).

**Censoring.** A difference with an infinite distance is ranked by its sign: ``+inf - finite`` is
larger, ``finite - inf`` smaller, than every finite difference (the pruned model was not broken
where the unpruned one was, or the reverse); ``inf - inf`` and ``0 - 0`` (both misclassified clean)
are ties at 0, dropped as in Wilcoxon's original test (``zero_method="wilcox"``). Ranks are all the
signed-rank test uses, so no value is imputed. The median shift of a seed is the median of its
differences with the same ordering (it can be ``±inf`` when more than half are censored one way).

Distances are stored in tables as hex strings of little-endian float32 (:func:`pack`, :func:`unpack`;
``inf`` kept). Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunerob.config import ConfigError

__all__ = ["pack", "unpack", "curve", "curves", "violations", "signed_rank", "paired_shift", "pool"]


def pack(d: Any) -> str:
    """Hex string of the distances as little-endian float32 (``inf`` kept)."""
    return np.asarray(d, dtype="<f4").tobytes().hex()


def unpack(hex_str: str, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack` (float64); ``n`` checks the length."""
    d = np.frombuffer(bytes.fromhex(str(hex_str)), dtype="<f4").astype(float)
    if n is not None and d.size != int(n):
        raise ConfigError(f"distance string holds {d.size} values, the row says n = {n}")
    return d


def curve(d: Any, eps: Sequence[float]) -> np.ndarray:
    """Robust accuracy ``mean(d > eps)`` at each budget of ``eps``."""
    x = np.asarray(d, dtype=float)
    return np.array([float(np.mean(x > float(e))) for e in eps])


def curves(rows: pd.DataFrame, eps: Sequence[float], by: Sequence[str] = ("keep_ratio",)) -> pd.DataFrame:
    """Long table of :func:`curve` per row of ``rows`` (columns ``by``, ``seed``, ``n``,
    ``distances``): ``by``, ``seed``, ``eps``, ``robust_acc``."""
    out = []
    for _, r in rows.iterrows():
        acc = curve(unpack(r.distances, int(r.n)), eps)
        out += [
            {**{k: r[k] for k in by}, "seed": int(r.seed), "eps": float(e), "robust_acc": float(a)}
            for e, a in zip(eps, acc, strict=True)
        ]
    return pd.DataFrame(out)


def violations(dist: Any, pgd_correct: Any, eps: float, tol: float) -> int:
    """Examples PGD broke at ``eps`` (``pgd_correct`` False) whose minimal distance exceeds
    ``eps + tol``: FAB missed an adversarial point that PGD found within the budget."""
    d, ok = np.asarray(dist, dtype=float), np.asarray(pgd_correct, dtype=bool)
    if d.shape != ok.shape:
        raise ConfigError(f"violations: {d.size} distances but {ok.size} PGD bits (not the same examples)")
    if not tol >= 0:
        raise ConfigError(f"tol={tol!r} must be >= 0")
    return int(np.sum(~ok & (d > float(eps) + float(tol))))


def _ordered(diff: np.ndarray) -> np.ndarray:
    """Differences with ``±inf`` replaced by values beyond every finite one (same order; module
    docstring), NaN (``inf - inf``) by 0."""
    x = np.where(np.isnan(diff), 0.0, diff)
    fin = x[np.isfinite(x)]
    big = (float(np.max(np.abs(fin))) if fin.size else 0.0) + 1.0
    return np.where(np.isposinf(x), big, np.where(np.isneginf(x), -big, x))


def _diff(pruned: Any, dense: Any) -> np.ndarray:
    a, b = np.asarray(pruned, dtype=float), np.asarray(dense, dtype=float)
    if a.shape != b.shape:
        raise ConfigError(f"paired distances differ in shape: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore"):
        return a - b


def signed_rank(pruned: Any, dense: Any) -> dict[str, float]:
    """Wilcoxon signed-rank test of ``pruned - dense`` for one seed (censoring and ties: module
    docstring), normal approximation with the tie correction: ``n`` (non-zero differences),
    ``n_up`` / ``n_down`` (positive / negative), ``w_plus``, ``z`` (positive: pruned farther from the
    boundary), ``p`` (two-sided), ``median`` (median difference, ``±inf`` allowed), ``n_censored``
    (pairs with an infinite distance on either side)."""
    raw = _diff(pruned, dense)
    x = _ordered(raw)
    nz = x[x != 0]
    n = int(nz.size)
    cen = int(np.sum(np.isinf(np.asarray(pruned, dtype=float)) | np.isinf(np.asarray(dense, dtype=float))))
    med = float(np.median(np.where(np.isnan(raw), 0.0, raw))) if raw.size else math.nan
    if n == 0:
        return {
            "n": 0,
            "n_up": 0,
            "n_down": 0,
            "w_plus": 0.0,
            "z": 0.0,
            "p": 1.0,
            "median": med,
            "n_censored": cen,
        }
    r = _st.rankdata(np.abs(nz))
    w = float(r[nz > 0].sum())
    _, counts = np.unique(r, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - float(np.sum(counts**3 - counts)) / 48
    z = (w - n * (n + 1) / 4) / math.sqrt(var) if var > 0 else 0.0
    return {
        "n": n,
        "n_up": int(np.sum(nz > 0)),
        "n_down": int(np.sum(nz < 0)),
        "w_plus": w,
        "z": float(z),
        "p": float(2 * _st.norm.sf(abs(z))),
        "median": med,
        "n_censored": cen,
    }


def paired_shift(pairs: Sequence[tuple[int, Any, Any]]) -> pd.DataFrame:
    """One :func:`signed_rank` row per seed from ``(seed, pruned distances, unpruned distances)``."""
    return pd.DataFrame([{"seed": int(s), **signed_rank(p, d)} for s, p, d in pairs])


def pool(per_seed: pd.DataFrame, alpha: float = 0.05) -> dict[str, Any]:
    """The shift pooled over seeds from :func:`paired_shift` rows: ``t`` / ``df`` / ``p_t`` (two-sided
    one-sample t-test of the per-seed median shifts against 0; the primary test), ``mean_median``
    with its ``lo`` / ``hi`` (two-sided ``1 - alpha`` t-interval), ``z_stouffer`` / ``p_stouffer``
    (sum of the seeds' z over sqrt(S); assumes independent seeds), ``n_seeds``, ``n_up`` / ``n_down``
    (seeds whose own test is significant at ``alpha`` in each direction) and ``direction`` ("pruned
    farther", "pruned closer" or "no shift resolved" by the primary test at ``alpha``). Seeds with an
    infinite median shift make the t-test undefined (NaN; the Stouffer test still runs)."""
    if per_seed.empty:
        raise ConfigError("pool: no seeds")
    s = len(per_seed)
    z = per_seed.z.to_numpy(float)
    zs = float(z.sum() / math.sqrt(s))
    med = per_seed["median"].to_numpy(float)
    out: dict[str, Any] = {
        "n_seeds": s,
        "z_stouffer": zs,
        "p_stouffer": float(2 * _st.norm.sf(abs(zs))),
        "n_up": int(np.sum((per_seed.p < alpha) & (z > 0))),
        "n_down": int(np.sum((per_seed.p < alpha) & (z < 0))),
    }
    if s >= 2 and np.isfinite(med).all():
        m, sd = float(med.mean()), float(med.std(ddof=1))
        se = sd / math.sqrt(s)
        t = m / se if se > 0 else math.nan  # every seed the same median shift: no spread, no test
        half = float(_st.t.ppf(1 - alpha / 2, s - 1)) * se
        p = float(2 * _st.t.sf(abs(t), s - 1)) if np.isfinite(t) else math.nan
        out.update(mean_median=m, lo=m - half, hi=m + half, t=t, df=s - 1, p_t=p)
    else:
        out.update(
            mean_median=float(np.mean(med)) if np.isfinite(med).all() else math.nan,
            lo=math.nan,
            hi=math.nan,
            t=math.nan,
            df=s - 1,
            p_t=math.nan,
        )
    if np.isfinite(out["p_t"]) and out["p_t"] < alpha:
        out["direction"] = "pruned farther" if out["mean_median"] > 0 else "pruned closer"
    else:
        out["direction"] = "no shift resolved"
    return out
