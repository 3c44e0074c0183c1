"""The one verdict rule: does pruning raise attacked accuracy? (paper Sec. 6.3, App. H; issue 24).

Every page (through :mod:`prunerob.analysis.stats`), the findings page
(:mod:`prunerob.analysis.verdicts`) and the
sweet-spot chapter (:mod:`prunerob.studies.sweetspot`) decide a paired gain with the functions of this
module, and the findings page prints :data:`RULE` and the calibration of :func:`calibration`. It
needs pandas, numpy and scipy only.

**Data.** One setting (model, data set, pruning method, attack, ε) has seeds ``s = 1..S`` and test
examples ``i = 1..n``. At each pruned keep ratio ``p`` the per-example paired difference is
``D[i, s] = correct(pruned at p) - correct(unpruned)`` in {-1, 0, 1}: same trained model, same
attack seed, same examples (:func:`differences`; stochastic masks are averaged over their draws
first). The **gain** at ``p`` is the mean of ``D`` over examples and seeds.

**Pooled standard error** (:func:`pooled`). The seeds share their test examples, so ``D`` is a
crossed seeds x examples table and the variance of the gain has three parts (two-way random
effects ANOVA): seed-to-seed spread ``σ²_seed / S``, the test set's spread ``σ²_ex / n`` (the same
examples for every seed: more seeds do not shrink it) and the rest ``σ²_res / (n S)``. From the
mean squares ``MS_seed``, ``MS_ex``, ``MS_res`` the estimate is
``SE² = [max(MS_seed, MS_res) + max(0, MS_ex - MS_res)] / (n S)``: the t-over-seeds variance,
never below what the within-seed sampling (McNemar's discordant pairs) implies, plus the
test-set part. Degrees of freedom by Welch-Satterthwaite (``S - 1`` when the seed term dominates).
One seed gives no seed term: no interval, whatever the number of examples.

**Tests.** One-sided, in the claim's direction. With ``K`` pruned keep ratios searched, the
**lower bound** at each keep is one-sided at level ``1 - α/K`` (Bonferroni: valid for any
dependence between keeps) and its p-value is reported uncorrected and corrected (``min(1, K p)``).
The **upper bound** is one-sided at level ``1 - α``, uncorrected: "fails" needs it below the
minimum effect at *every* keep, an intersection-union test (Berger 1982), which is level ``α``
without a correction.

**Verdict** (:func:`decide`): *holds* when at some keep the corrected lower bound is above 0 and
the estimate is at least :data:`MIN_EFFECT`; *fails* when the upper bound is below
:data:`MIN_EFFECT` at every pruned keep (an equivalence test, TOST's upper half); otherwise
*inconclusive*, with the reason and the number of seeds that a power calculation on the observed
spread says would resolve it (:func:`seeds_needed`). Both verdicts use the same pooled interval, so
a one-seed run can neither hold nor fail. Ties between keeps go to the least pruning
(:func:`best_index`).
"""
from __future__ import annotations

import hashlib
import inspect
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunerob.config import ConfigError

__all__ = ["MIN_EFFECT", "ALPHA", "POWER", "MAX_SEEDS", "RULE", "SIMULATION", "differences", "pooled",
           "bootstrap", "bounds", "classify", "best_index", "seeds_needed", "mcnemar_one_sided", "keep_table",
           "Decision", "decide", "keep_text", "pp2", "simulate", "calibration", "calibration_hash",
           "write_calibration", "read_calibration", "CALIBRATION_CSV", "VERDICTS"]

VERDICTS = ("holds", "fails", "inconclusive")
#: the smallest gain in attacked accuracy the rule calls a gain: 1 percentage point (see :data:`RULE`)
MIN_EFFECT = 0.01
#: family-wise error rate of "holds" and level of the equivalence test of "fails"
ALPHA = 0.05
#: power at which :func:`seeds_needed` sizes a rerun
POWER = 0.8
#: :func:`seeds_needed` gives up above this many seeds
MAX_SEEDS = 1000
#: gains closer than this (a fraction) are ties: float noise of means of 0/1 bits
TIE_ATOL = 1e-12

RULE = (
    "**The verdict rule** (`prunerob.analysis.verdict_rule`). A claim that pruning raises attacked "
    "accuracy is "
    "decided from the paired gain at each pruned keep ratio p < 1: attacked accuracy at p minus that "
    "at p = 1, per test example and seed (same trained model, attack seed and examples), averaged over "
    "examples and seeds. Its standard error pools the spread between seeds (never below what the "
    "within-seed discordant pairs imply) and the spread of the shared test examples; degrees of freedom "
    "by Welch–Satterthwaite. Tests are one-sided, in the claim's direction. "
    f"**holds**: at some keep ratio the lower bound, one-sided at level 1 − {ALPHA:g}/K (Bonferroni "
    "over the K pruned keep ratios searched), is above 0 *and* the estimated gain is at least the "
    f"minimum effect of {100 * MIN_EFFECT:g} pp. **fails**: at *every* pruned keep ratio the one-sided "
    f"{1 - ALPHA:.0%} upper bound is below {100 * MIN_EFFECT:g} pp (an equivalence test; requiring it at "
    f"every keep makes it an intersection–union test of level {ALPHA:g} without a correction). "
    "**inconclusive** otherwise, with the reason and the number of seeds that a power calculation "
    f"({POWER:.0%} power, observed gains and spread taken as true) says would resolve it. One seed "
    "gives no spread between seeds, so it is never enough for a verdict. Ties between keep ratios go "
    f"to the least pruning. The minimum effect: the paper shows its sweet spots as visible rises of "
    "attacked accuracy on plots of accuracy in percent against p (Figs. 2–4, 8–14) and states no size; "
    f"we take {100 * MIN_EFFECT:g} pp, one hundredth of the accuracy scale, as the smallest rise such a "
    "plot shows as a rise and the smallest that would change a practitioner's choice of keep ratio. "
    "p-values are labelled *uncorrected* or *corrected* (Bonferroni over the K keep ratios); per-seed "
    "exact McNemar tests are reported one-sided and uncorrected, with the direction (gain or loss), "
    "and do not enter the verdict."
)


# ----------------------------------------------------------------------------------------------
# the pooled paired estimate
# ----------------------------------------------------------------------------------------------
def differences(pruned: Any, dense: Any) -> np.ndarray:
    """Per-example paired differences ``pruned - dense`` of correctness bits (int8, -1/0/1), any
    shape (broadcast): the ``D`` of the module docstring."""
    a, b = np.asarray(pruned), np.asarray(dense)
    if a.shape != b.shape:
        raise ConfigError(f"differences: pruned bits of shape {a.shape} and unpruned bits of shape {b.shape} "
                          "are not paired (same examples in the same order)")
    return a.astype(np.int8) - b.astype(np.int8)


def pooled(d: Any) -> dict[str, np.ndarray]:
    """Pooled paired gain of ``d``, shape ``(..., n, S)`` (examples x seeds; leading axes are
    independent settings, e.g. keep ratios or simulated replications).

    Returns arrays over the leading axes: ``gain`` (mean of ``d``), ``se`` and ``df`` (module
    docstring; NaN with one seed), ``seed_var`` (variance of one seed's gain: the larger of the
    between-seed and the within-seed estimate), ``example_var`` (the test set's part of the
    variance of the gain, ``σ²_ex / n``, which more seeds do not shrink), ``se_examples`` (with one
    seed: the standard error over its examples alone; NaN otherwise), ``n`` and ``n_seeds``."""
    d = np.asarray(d)
    if d.ndim < 2 or d.shape[-2] < 2:
        raise ConfigError(f"pooled: need an (examples x seeds) table with >= 2 examples, got shape {d.shape}")
    n, s = d.shape[-2:]
    if d.dtype.kind in "iub":  # exact integer sums (bits: -1/0/1), much faster than floats
        col = d.sum(axis=-2, dtype=np.int64).astype(float)
        row = d.sum(axis=-1, dtype=np.int64).astype(float)
        sq = np.square(d, dtype=np.int64).sum(axis=(-2, -1)).astype(float)
    else:
        d = d.astype(float)
        col, row, sq = d.sum(axis=-2), d.sum(axis=-1), (d * d).sum(axis=(-2, -1))
    gain = col.sum(axis=-1) / (n * s)
    m = gain[..., None]
    ss_seed = n * ((col / n - m) ** 2).sum(axis=-1)
    ss_ex = s * ((row / s - m) ** 2).sum(axis=-1)
    ss_tot = sq - n * s * gain ** 2
    ms_ex = ss_ex / (n - 1)
    out = {"gain": gain, "n": np.full(gain.shape, n), "n_seeds": np.full(gain.shape, s)}
    if s == 1:
        nan = np.full(gain.shape, np.nan)
        out.update(se=nan, df=nan, seed_var=ms_ex / n, example_var=nan, se_examples=np.sqrt(ms_ex / n))
        return out
    ms_seed = ss_seed / (s - 1)
    df_res = (n - 1) * (s - 1)
    ms_res = np.maximum(ss_tot - ss_seed - ss_ex, 0.0) / df_res
    a = np.maximum(ms_seed, ms_res)  # the floor only widens: the degrees of freedom stay S - 1
    df_a = s - 1
    b = np.maximum(ms_ex - ms_res, 0.0)
    var = (a + b) / (n * s)
    den = a ** 2 / df_a + np.where(b > 0, ms_ex ** 2 / (n - 1) + ms_res ** 2 / df_res, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(den > 0, (a + b) ** 2 / np.where(den > 0, den, 1.0), s - 1)
    out.update(se=np.sqrt(var), df=df, seed_var=a / n, example_var=b / (n * s),
               se_examples=np.full(gain.shape, np.nan))
    return out


def _pooled_unequal(diffs: Sequence[np.ndarray]) -> dict[str, float]:
    """:func:`pooled` for seeds evaluated on different numbers of examples (then not the same
    examples): t over the seeds' gains, never below the mean within-seed sampling variance."""
    g = np.array([float(np.mean(x)) for x in diffs])
    v = np.array([float(np.var(x, ddof=1)) / x.size for x in diffs])
    s = g.size
    seed_var = float(np.var(g, ddof=1))
    within = float(v.mean())
    return {"gain": float(g.mean()), "se": math.sqrt(max(seed_var, within) / s), "df": float(s - 1),
            "seed_var": max(seed_var, within), "example_var": 0.0, "se_examples": math.nan,
            "n": int(min(x.size for x in diffs)), "n_seeds": s}


def _gains_only(gains: Sequence[float]) -> dict[str, float]:
    """Without per-example bits: the t-interval over the seeds' gains (no interval when they are
    all equal: the spread within a seed is unknown)."""
    g = np.asarray(gains, dtype=float)
    s = g.size
    sd = float(np.std(g, ddof=1)) if s > 1 else math.nan
    se = sd / math.sqrt(s) if s > 1 and np.ptp(g) > TIE_ATOL else math.nan
    return {"gain": float(g.mean()), "se": se, "df": float(s - 1) if np.isfinite(se) else math.nan,
            "seed_var": sd ** 2 if np.isfinite(se) else math.nan, "example_var": 0.0, "se_examples": math.nan,
            "n_seeds": s}


def bootstrap(d: Any, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of one seed's paired differences ``d`` with a percentile interval from
    ``n_boot`` resamples of the examples (the band seaborn draws for a one-seed gain panel). It is
    about that one trained model only: the rule decides nothing from it."""
    x = np.asarray(d, dtype=float)
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_boot, x.size))
    boot = x[idx].mean(axis=1)
    q = (1 - level) / 2
    return float(x.mean()), float(np.quantile(boot, q)), float(np.quantile(boot, 1 - q))


def bounds(gain: Any, se: Any, df: Any, family: int, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """One-sided bounds and p-values of gains with standard error ``se`` and ``df`` degrees of
    freedom, ``family`` = the number of keep ratios searched (K).

    ``lower``: one-sided at level ``1 - alpha / family`` (Bonferroni-corrected); ``upper``:
    one-sided at ``1 - alpha`` (uncorrected; see the module docstring); ``p``: one-sided p-value
    for a gain (uncorrected); ``p_corrected`` = ``min(1, family * p)``. A zero standard error gives
    bounds equal to the gain and ``p`` 0 for a gain, 1 otherwise; NaN ``se`` gives NaN."""
    if int(family) < 1:
        raise ConfigError(f"family={family!r} must be the number of keep ratios searched (>= 1)")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r} must lie in (0, 1), e.g. 0.05")
    g, s, f = (np.asarray(x, dtype=float) for x in (gain, se, df))
    zero = s == 0
    f = np.where(zero | ~np.isfinite(f), 1.0, f)
    with np.errstate(invalid="ignore"):
        t_lo = _st.t.ppf(1 - alpha / int(family), f)
        t_hi = _st.t.ppf(1 - alpha, f)
        z = np.where(zero, 0.0, g / np.where(zero, 1.0, s))
        p = np.where(zero, np.where(g > 0, 0.0, 1.0), _st.t.sf(z, f))
    p = np.where(np.isfinite(s), p, np.nan)
    return {"lower": g - t_lo * s, "upper": g + t_hi * s, "p": p,
            "p_corrected": np.minimum(1.0, int(family) * p)}


def classify(gain: Any, lower: Any, upper: Any, min_effect: float = MIN_EFFECT) -> np.ndarray:
    """The verdict per setting from per-keep arrays (last axis: the K pruned keep ratios): "holds"
    when some keep has ``lower > 0`` and ``gain >= min_effect``; "fails" when every keep has
    ``upper < min_effect``; "inconclusive" otherwise (NaN bounds count as neither)."""
    g, lo, hi = (np.asarray(x, dtype=float) for x in (gain, lower, upper))
    with np.errstate(invalid="ignore"):
        holds = ((lo > 0) & (g >= min_effect - TIE_ATOL)).any(axis=-1)
        fails = (hi < min_effect).all(axis=-1)
    return np.where(holds, "holds", np.where(fails, "fails", "inconclusive"))


def best_index(keeps: Sequence[float], values: Sequence[float], mask: Sequence[bool] | None = None) -> int:
    """Position of the largest ``values`` (among ``mask``); ties (within :data:`TIE_ATOL`) go to the
    largest keep ratio, i.e. the least pruning. The one tie-break of the package."""
    k = np.asarray(keeps, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) if mask is None else (np.asarray(mask, dtype=bool) & np.isfinite(v))
    if not ok.any():
        raise ConfigError("best_index: no finite value to choose from")
    top = np.max(v[ok])
    cand = np.flatnonzero(ok & (v >= top - TIE_ATOL))
    return int(cand[np.argmax(k[cand])])


def seeds_needed(gain: Any, seed_var: Any, example_var: Any, family: int, want: str,
                 min_effect: float = MIN_EFFECT, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds (at the same number of test examples) for the given verdict at ``power``, taking the
    observed gains and spread as true (normal approximation with ``S - 1`` degrees of freedom).

    ``want="holds"``: the smallest S at which the corrected lower bound of some keep with
    ``gain >= min_effect`` clears 0; ``want="fails"``: the smallest S at which every keep's upper
    bound falls below ``min_effect``. Arrays run over the keeps. Returns ``math.inf`` when more than
    :data:`MAX_SEEDS` seeds would be needed, or when the test set's part of the variance
    (``example_var``, not shrunk by seeds) alone prevents it, and NaN when the verdict is
    impossible at the observed gains (e.g. "fails" with a gain above ``min_effect``)."""
    if want not in ("holds", "fails"):
        raise ConfigError(f"want={want!r}: choose 'holds' or 'fails'")
    g, sv, ev = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (gain, seed_var, example_var))
    ev = np.where(np.isfinite(ev), ev, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _seeds_needed(g, sv, ev, family, want, min_effect, alpha, power)


def _seeds_needed(g: np.ndarray, sv: np.ndarray, ev: np.ndarray, family: int, want: str,
                  min_effect: float, alpha: float, power: float) -> float:
    s = np.arange(2, MAX_SEEDS + 1, dtype=float)[:, None]
    se = np.sqrt(sv[None, :] / s + ev[None, :])
    t_pow = _st.t.ppf(power, s - 1)
    if want == "holds":
        ok = g >= min_effect - TIE_ATOL
        if not ok.any():
            return math.nan
        reach = g[None, :] / se >= _st.t.ppf(1 - alpha / int(family), s - 1) + t_pow
        first = [float(s[reach[:, j], 0].min()) if reach[:, j].any() else math.inf
                 for j in np.flatnonzero(ok)]
        return min(first)
    if (g >= min_effect).any():
        return math.nan
    reach = (min_effect - g[None, :]) / se >= _st.t.ppf(1 - alpha, s - 1) + t_pow
    every = reach.all(axis=1)
    return float(s[every, 0].min()) if every.any() else math.inf


def mcnemar_one_sided(d: Any) -> tuple[int, int, float, float]:
    """Exact McNemar test of one seed's paired differences ``d`` (-1/0/1), one-sided in each
    direction: ``(n_gain, n_loss, p_gain, p_loss)``, with ``p_gain = P(X >= n_gain)`` for
    ``X ~ Bin(n_gain + n_loss, 1/2)`` (evidence for a gain) and ``p_loss`` likewise. Both are 1.0
    without discordant pairs."""
    x = np.asarray(d)
    n_gain, n_loss = int((x > 0).sum()), int((x < 0).sum())
    m = n_gain + n_loss
    if m == 0:
        return 0, 0, 1.0, 1.0
    return (n_gain, n_loss, float(_st.binom.sf(n_gain - 1, m, 0.5)), float(_st.binom.sf(n_loss - 1, m, 0.5)))


# ----------------------------------------------------------------------------------------------
# one setting's table of keep ratios
# ----------------------------------------------------------------------------------------------
def _decode(hex_str: Any, n: int) -> np.ndarray | None:
    """Per-example correctness from a ``*_bits`` cell (hex of ``np.packbits``), or None when absent."""
    if hex_str is None or (isinstance(hex_str, float) and not math.isfinite(hex_str)) or hex_str == "":
        return None
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(str(hex_str)), dtype=np.uint8))
    if bits.size < n or bits.size - n >= 8:
        raise ConfigError(f"bit string holds {bits.size} bits, the row says n = {n}")
    return bits[: int(n)].astype(bool)


@dataclass
class _Row:
    """One sweep row, decoded once: attacked / clean accuracy, example count, correctness bits."""

    adv: float
    clean: float
    n: int | None
    bits: np.ndarray | None


def _rows(rows: pd.DataFrame) -> list[_Row]:
    """The rows of a sweep table as :class:`_Row` (each distinct bit string decoded once)."""
    cache: dict[tuple[str, int], np.ndarray | None] = {}
    n = rows["n"].to_numpy() if "n" in rows else np.full(len(rows), np.nan)
    bits = rows["adv_bits"].to_numpy(dtype=object) if "adv_bits" in rows else np.full(len(rows), None)
    clean = rows["clean_acc"].to_numpy(dtype=float) if "clean_acc" in rows else np.full(len(rows), np.nan)
    out = []
    for adv, c, k, h in zip(rows["adv_acc"].to_numpy(dtype=float), clean, n, bits, strict=True):
        k = int(k) if pd.notna(k) else None
        key = (str(h), k) if k is not None and isinstance(h, str) and h else None
        if key is not None and key not in cache:
            cache[key] = _decode(h, k)
        out.append(_Row(float(adv), float(c), k, cache[key] if key is not None else None))
    return out


def _median_low(x: Sequence[float]) -> float:
    return sorted(x)[(len(x) + 1) // 2 - 1]


def _per_seed(draws: Sequence[_Row], base: _Row) -> dict[str, Any]:
    """One seed at one keep: its rows (one per mask draw) against the unpruned row ``base``; a
    seed's McNemar p-values are the lower medians over its draws (p < alpha in at least half)."""
    out: dict[str, Any] = {"gain": float(np.mean([r.adv for r in draws])) - base.adv,
                           "clean_gain": float(np.mean([r.clean for r in draws])) - base.clean, "n": base.n,
                           "d": None, "p_gain": math.nan, "p_loss": math.nan}
    if base.bits is None or any(r.bits is None or r.n != base.n for r in draws):
        return out
    ds = [differences(r.bits, base.bits) for r in draws]
    tests = [mcnemar_one_sided(d) for d in ds]
    out.update(d=np.mean(ds, axis=0) if len(ds) > 1 else ds[0], p_gain=_median_low([t[2] for t in tests]),
               p_loss=_median_low([t[3] for t in tests]))
    return out


def keep_table(rows: pd.DataFrame, baseline_keep: float | None = None, alpha: float = ALPHA,
               level: float = 0.95) -> pd.DataFrame:
    """The rule's numbers at every keep ratio of ONE setting's sweep rows (one model, data set,
    method, attack, ε; columns ``keep_ratio``, ``seed``, ``adv_acc``, optional ``n``, ``adv_bits``,
    ``clean_acc``; several rows of a seed at a keep are mask draws, averaged), against
    ``baseline_keep`` (default: the largest keep).

    One row per keep ratio (the baseline included, with gain 0): ``gain``, ``se``, ``df``,
    ``family`` (K, the pruned keeps), ``lower`` / ``upper`` / ``p`` / ``p_corrected`` of
    :func:`bounds`, ``gain_lo`` / ``gain_hi`` (two-sided ``level`` interval, pointwise,
    descriptive; with one seed a paired bootstrap over its examples, :func:`bootstrap`),
    ``seed_var``, ``example_var``, ``seeds``, ``gains`` (per seed), ``n_seeds``, ``n``,
    ``resolution`` (1/n), ``p_values`` / ``p_values_loss`` (per seed, one-sided exact McNemar
    toward a gain / a loss, uncorrected), ``n_significant`` / ``n_significant_loss`` (seeds with
    those below ``alpha``), ``test``, ``interval``, ``clean_gain`` and ``n_draws``."""
    need = [c for c in ("keep_ratio", "seed", "adv_acc") if c not in rows.columns]
    if need:
        raise ConfigError(f"keep_table: column(s) {need} not in the table; columns: {list(rows.columns)}")
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie in (0, 1), e.g. 0.95")
    if rows.empty:
        return pd.DataFrame()
    kr = rows.keep_ratio.to_numpy(dtype=float)
    dense = float(kr.max()) if baseline_keep is None else float(baseline_keep)
    seed_of = rows.seed.to_numpy()
    decoded = _rows(rows)
    at: dict[float, dict[Any, list[_Row]]] = {}
    for k, s, r in zip(np.round(kr, 12), seed_of, decoded, strict=True):
        at.setdefault(float(k), {}).setdefault(s, []).append(r)
    base_key = next((k for k in at if np.isclose(k, dense)), None)
    if base_key is None:
        return pd.DataFrame()
    base = {s: rs[0] for s, rs in at[base_key].items()}
    family = sum(1 for k in at if not np.isclose(k, dense))
    out = []
    for keep in sorted(at, reverse=True):
        seeds = sorted(set(at[keep]) & set(base))
        if not seeds:
            continue
        per = {s: _per_seed(at[keep][s], base[s]) for s in seeds}
        diffs = [per[s]["d"] for s in seeds]
        draws = max(len(at[keep][s]) for s in seeds)
        if all(x is not None for x in diffs) and len({x.size for x in diffs}) == 1:
            st = {k: float(v) for k, v in pooled(np.stack(diffs, axis=1)).items()}
            interval = f"pooled over {len(seeds)} seeds and {diffs[0].size} examples"
        elif all(x is not None for x in diffs) and len(seeds) > 1:
            st = _pooled_unequal(diffs)
            interval = f"pooled over {len(seeds)} seeds (different example counts)"
        else:
            st = _gains_only([per[s]["gain"] for s in seeds])
            why = "one seed" if len(seeds) == 1 else "every seed changed by the same number of examples"
            interval = ("t over seeds (no per-example bits)" if np.isfinite(st["se"]) else
                        f"none: {why}, and no per-example bits")
        if draws > 1:
            interval += f"; each seed's differences averaged over {draws} mask draws"
        if np.isclose(keep, dense):
            st.update(gain=0.0, se=0.0)
            b = {"lower": 0.0, "upper": 0.0, "p": 1.0, "p_corrected": 1.0}
        else:
            b = {k: float(v) for k, v in
                 bounds(st["gain"], st["se"], st["df"], max(family, 1), alpha).items()}
        if np.isfinite(st["se"]):
            half = float(_st.t.ppf(0.5 + level / 2, max(st["df"], 1.0))) * st["se"]
            ci = (st["gain"] - half, st["gain"] + half)
        elif len(seeds) == 1 and diffs[0] is not None:
            ci = bootstrap(diffs[0], level)[1:]
            one = f"bootstrap over the {diffs[0].size} examples of one seed (no spread between seeds)"
            interval = one + (interval[interval.index(";"):] if ";" in interval else "")
        else:
            ci = (math.nan, math.nan)
        pv = tuple(per[s]["p_gain"] for s in seeds)
        pl = tuple(per[s]["p_loss"] for s in seeds)
        ns = [per[s]["n"] for s in seeds]
        cg = [per[s]["clean_gain"] for s in seeds]
        out.append({
            "keep_ratio": float(keep), "baseline_keep": dense, "family": family,
            "seeds": tuple(int(s) for s in seeds), "n_seeds": len(seeds),
            "n": min(ns) if all(x is not None for x in ns) else math.nan,
            "gains": tuple(per[s]["gain"] for s in seeds), "gain": st["gain"], "se": st["se"],
            "df": st["df"], "seed_var": st["seed_var"], "example_var": st["example_var"],
            **b, "gain_lo": ci[0], "gain_hi": ci[1], "interval": interval,
            "p_values": pv, "p_values_loss": pl,
            "n_significant": int(sum(p < alpha for p in pv if np.isfinite(p))),
            "n_significant_loss": int(sum(p < alpha for p in pl if np.isfinite(p))),
            "test": "mcnemar exact, one-sided" if all(np.isfinite(pv)) else "none: no per-example bits",
            "clean_gain": float(np.mean(cg)) if np.isfinite(cg).any() else math.nan,
            "n_draws": draws,
        })
    t = pd.DataFrame(out)
    if not t.empty:
        t["resolution"] = 1.0 / t.n.astype(float)
    return t


# ----------------------------------------------------------------------------------------------
# the verdict and its words
# ----------------------------------------------------------------------------------------------
def pp2(x: float) -> str:
    """A difference of fractions in percentage points, two decimals, with sign: ``0.0031 -> '+0.31 pp'``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{round(100 * float(x), 2) + 0.0:+.2f} pp"


def _p(x: float) -> str:
    return "n/a" if not np.isfinite(x) else (f"{x:.2g}" if x >= 1e-4 else "< 1e-4")


def keep_text(r: Mapping[str, Any], alpha: float = ALPHA) -> str:
    """One keep ratio's numbers in words, corrected and uncorrected quantities labelled, e.g.
    ``keep 0.7: +0.42 pp; corrected lower bound +0.02 pp (Bonferroni over 11 keeps), upper bound
    +0.70 pp; p = 0.003 uncorrected, 0.033 corrected; 5 seeds x 10000 examples; McNemar ...``."""
    k = int(r.get("family", 1))
    n_seeds = int(r.get("n_seeds", 0))
    n = r.get("n", math.nan)
    size = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    size += f" × {int(n)} examples" if np.isfinite(n) else ""
    head = f"keep {float(r['keep_ratio']):g}: {pp2(r['gain'])}"
    if np.isfinite(r.get("se", math.nan)):
        parts = [f"one-sided bounds: lower {pp2(r['lower'])} (corrected, Bonferroni over {k} keep"
                 f"{'s' if k != 1 else ''}), upper {pp2(r['upper'])} ({1 - alpha:.0%}, uncorrected)",
                 f"p = {_p(r['p'])} uncorrected, {_p(r['p_corrected'])} corrected"]
    elif np.isfinite(r.get("gain_lo", math.nan)):
        parts = [f"no interval over seeds; over the examples alone {pp2(r['gain_lo'])} to "
                 f"{pp2(r['gain_hi'])} (95% bootstrap, this one model)"]
    else:
        parts = [f"no interval ({str(r.get('interval', '')).removeprefix('none: ')})"]
    parts.append(size)
    how = str(r.get("interval", ""))
    if how and not how.startswith(("pooled", "bootstrap", "none")):
        parts.append(f"interval: {how}")
    if str(r.get("test", "")).startswith("mcnemar"):
        parts.append(f"McNemar one-sided p < {alpha:g} (uncorrected): gain in {int(r['n_significant'])}, "
                     f"loss in {int(r['n_significant_loss'])} of {n_seeds} seeds")
    return f"{head} ({'; '.join(parts)})"


@dataclass
class Decision:
    """The rule's verdict on one setting: ``verdict``, ``keep`` (the keep ratio reported: among the
    keeps that hold, else among all, the largest gain; ties to less pruning), ``reason`` (what the
    numbers say), ``number`` (:func:`keep_text` of that keep, plus the deciding upper bound for
    "fails"), ``seeds_needed`` (inconclusive only) and ``table`` (:func:`keep_table`)."""

    verdict: str
    reason: str
    number: str = ""
    keep: float = math.nan
    seeds_needed: float = math.nan
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def _seeds_phrase(n: float, one_seed: bool = False) -> str:
    if np.isnan(n):
        return ""
    if not np.isfinite(n):
        return (f"; more than {MAX_SEEDS} seeds would be needed at this spread, or more test examples "
                "(the test set's part of the spread does not shrink with seeds)")
    if one_seed:
        return (f"; at least {int(n)} seeds would be needed ({POWER:.0%} power, if seeds varied no more than "
                "the test examples do)")
    return (f"; about {int(n)} seeds would resolve it ({POWER:.0%} power, observed gains and spread taken "
            "as true)")


def decide(table: pd.DataFrame, min_effect: float = MIN_EFFECT, alpha: float = ALPHA) -> Decision:
    """The verdict of :data:`RULE` on one setting's :func:`keep_table` (the baseline row is ignored)."""
    if table is None or table.empty:
        return Decision("inconclusive", "not run")
    pruned = ~np.isclose(table.keep_ratio.astype(float), table.baseline_keep.astype(float))
    pr = table[pruned].reset_index(drop=True)
    if pr.empty:
        return Decision("inconclusive", "not run: no pruned keep ratio in the table", table=table)
    k = len(pr)
    if (pr.family != k).any():
        b = bounds(pr.gain, pr.se, pr.df, k, alpha)
        pr = pr.assign(family=k, lower=b["lower"], upper=b["upper"], p=b["p"], p_corrected=b["p_corrected"])
    g, lo, hi = pr.gain.to_numpy(float), pr.lower.to_numpy(float), pr.upper.to_numpy(float)
    keeps = pr.keep_ratio.to_numpy(float)
    verdict = str(classify(g, lo, hi, min_effect))
    eff = pp2(min_effect)
    with np.errstate(invalid="ignore"):
        holds_k = (lo > 0) & (g >= min_effect - TIE_ATOL)
    if verdict == "holds":
        i = best_index(keeps, g, holds_k)
        r = pr.iloc[i]
        return Decision("holds", f"at keep {keeps[i]:g} the gain {pp2(g[i])} is at least the minimum effect "
                                 f"{eff} and its corrected lower bound {pp2(lo[i])} (Bonferroni over {k} "
                                 "keeps) is above 0", keep_text(r, alpha), float(keeps[i]), table=table)
    i = best_index(keeps, g)
    number = keep_text(pr.iloc[i], alpha)
    if verdict == "fails":
        j = best_index(keeps, hi)
        why = (f"every pruned keep's upper bound is below {eff}; the largest is {pp2(hi[j])} at keep "
               f"{keeps[j]:g}")
        sig = np.flatnonzero(lo > 0)
        if sig.size:
            s = sig[np.argmax(g[sig])]
            why += (f"; a gain is resolved at keep {keeps[s]:g} ({pp2(g[s])}, corrected lower bound "
                    f"{pp2(lo[s])}) but it is smaller than {eff}")
        if j != i:
            number += f"; largest upper bound {pp2(hi[j])} at keep {keeps[j]:g}"
        return Decision("fails", why, number, float(keeps[i]), table=table)
    # inconclusive
    no_seed_spread = ~np.isfinite(pr.se.to_numpy(float))
    if no_seed_spread.all():
        one = int(pr.n_seeds.max()) == 1
        why = ("one seed: the spread between seeds is unknown, so there is no interval over seeds and "
               "neither verdict is possible" if one else
               f"no interval: {str(pr.interval.iloc[i]).removeprefix('none: ')}")
        if one and np.isfinite(pr.gain_lo.iloc[i]):
            why += (f"; on its {int(pr.n.iloc[i])} test examples alone the gain at keep {keeps[i]:g} is "
                    f"{pp2(g[i])} (95% bootstrap interval {pp2(pr.gain_lo.iloc[i])} to "
                    f"{pp2(pr.gain_hi.iloc[i])}, this one model)")
        need = math.nan
        if one and np.isfinite(pr.seed_var.to_numpy(float)).all():
            sv, ev = pr.seed_var.to_numpy(float), np.zeros(k)
            want = "holds" if (g >= min_effect).any() else "fails"
            need = seeds_needed(g, sv, ev, k, want, min_effect, alpha)
        return Decision("inconclusive", why + _seeds_phrase(need, one_seed=True), number, float(keeps[i]),
                        need, table)
    if no_seed_spread[i]:
        why = (f"no interval at keep {keeps[i]:g}, the largest gain ({pp2(g[i])}): "
               f"{str(pr.interval.iloc[i]).removeprefix('none: ')}")
        return Decision("inconclusive", why, number, float(keeps[i]), math.nan, table)
    j = best_index(keeps, np.where(np.isfinite(hi), hi, -np.inf))
    if (g >= min_effect - TIE_ATOL).any():
        a = best_index(keeps, g, g >= min_effect - TIE_ATOL)
        first = (f"not resolved: at keep {keeps[a]:g} the gain {pp2(g[a])} reaches the minimum effect {eff}, "
                 f"but its corrected lower bound {pp2(lo[a])} (Bonferroni over {k} keeps) is not above 0")
    elif (lo > 0).any():
        s = best_index(keeps, g, lo > 0)
        first = (f"a gain is resolved at keep {keeps[s]:g} ({pp2(g[s])}, corrected lower bound "
                 f"{pp2(lo[s])}) but it is below the minimum effect {eff}, and the upper bound "
                 f"{pp2(hi[j])} at keep {keeps[j]:g} does not exclude {eff}")
    else:
        first = (f"not resolved: no keep's corrected lower bound is above 0 (keep {keeps[i]:g}: {pp2(g[i])}, "
                 f"lower {pp2(lo[i])}), and the upper bound {pp2(hi[j])} at keep {keeps[j]:g} does not "
                 f"exclude {eff}")
    ok = np.isfinite(pr.se.to_numpy(float))
    want = "holds" if (g[ok] >= min_effect - TIE_ATOL).any() else "fails"
    need = seeds_needed(g[ok], pr.seed_var.to_numpy(float)[ok], pr.example_var.to_numpy(float)[ok], k, want,
                        min_effect, alpha)
    if j != i:
        number += f"; largest upper bound {pp2(hi[j])} at keep {keeps[j]:g}"
    return Decision("inconclusive", first + _seeds_phrase(need), number, float(keeps[i]), need, table)


# ----------------------------------------------------------------------------------------------
# calibration by simulation
# ----------------------------------------------------------------------------------------------
#: the simulated setting of :func:`calibration` (fractions; ``seed_sd`` as measured on the committed
#: sweet-spot grid at ε = 0.1, issue 24)
SIMULATION: dict[str, Any] = {"n": 1000, "keeps": 8, "discordance": 0.10, "seed_sd": 0.015, "seed_corr": 0.5,
                              "example_tilt": 0.3, "accuracy": 0.5, "reps": 400}


def _profile(keeps: int) -> np.ndarray:
    """Relative effect per keep: a sweet spot at one keep, half of it at its neighbours, 0 elsewhere."""
    shape = np.zeros(keeps)
    peak = min(2, keeps - 1)
    shape[peak] = 1.0
    shape[max(peak - 1, 0)] = max(shape[max(peak - 1, 0)], 0.5)
    if peak + 1 < keeps:
        shape[peak + 1] = 0.5
    return shape


def simulate(effect: float, n_seeds: int, *, reps: int | None = None, rng: int = 0,
             min_effect: float = MIN_EFFECT, alpha: float = ALPHA, **setting: Any) -> dict[str, float]:
    """Rates of holds / fails / inconclusive of the rule on synthetic per-example bits with a known
    effect: ``effect`` (a fraction) at the sweet-spot keep, half of it at its two neighbours, 0 at
    the other keeps of :data:`SIMULATION` (overridable by ``setting``).

    Per replication, seed and keep: the unpruned bits are Bernoulli(``accuracy``); pruning flips
    examples so that ``P(D = ±1) = discordance · (1 ± a) / 2`` with
    ``a = (effect_k + u_s,k) / discordance ± example_tilt``: ``u`` is the seed's own effect
    (normal, SD ``seed_sd``, correlation ``seed_corr`` across keeps) and each example leans to a gain
    or a loss by ``example_tilt`` the same way for every seed (the shared test set). The verdict is
    :func:`classify` on :func:`bounds` of :func:`pooled`, the code the book's verdicts run."""
    cfg = {**SIMULATION, **setting}
    reps = int(cfg["reps"] if reps is None else reps)
    n, k, c, acc = int(cfg["n"]), int(cfg["keeps"]), float(cfg["discordance"]), float(cfg["accuracy"])
    gen = np.random.default_rng(rng)
    mu = effect * _profile(k)
    common = gen.standard_normal((reps, 1, n_seeds))
    own = gen.standard_normal((reps, k, n_seeds))
    r = float(cfg["seed_corr"])
    u = float(cfg["seed_sd"]) * (math.sqrt(r) * common + math.sqrt(1 - r) * own)  # (reps, k, S)
    # each example leans to a gain (+tilt) or a loss (-tilt) for every seed; the pooled statistics do not
    # depend on the order of the examples, so the leaning ones come first: n_up[rep] of them
    n_up = gen.binomial(n, 0.5, size=(reps, 1, 1))
    up = np.arange(n)[None, :, None] < n_up  # (reps, n, 1)
    tilt = float(cfg["example_tilt"])
    gains, ses, dfs = (np.empty((reps, k)) for _ in range(3))
    for j in range(k):
        base = (mu[j] + u[:, j, None, :]) / c  # (reps, 1, S)
        a_up, a_down = np.clip(base + tilt, -1, 1), np.clip(base - tilt, -1, 1)
        # given dense (x < acc), x is uniform on [0, acc): lost below c (1 - a) / 2; given not, x - acc is
        # uniform on [0, 1 - acc): gained below c (1 + a) / 2
        f32 = np.float32
        lose = np.where(up, ((c / 2) * (1 - a_up)).astype(f32), ((c / 2) * (1 - a_down)).astype(f32))
        gain = np.where(up, (acc + (c / 2) * (1 + a_up)).astype(f32),
                        (acc + (c / 2) * (1 + a_down)).astype(f32))
        x = gen.random((reps, n, n_seeds), dtype=np.float32)
        dense = x < acc
        pruned = np.where(dense, x >= lose, x < gain)
        st = pooled(differences(pruned, dense))
        gains[:, j], ses[:, j], dfs[:, j] = st["gain"], st["se"], st["df"]
    b = bounds(gains, ses, dfs, k, alpha)
    v = classify(gains, b["lower"], b["upper"], min_effect)
    return {x: float(np.mean(v == x)) for x in VERDICTS}


def calibration(effects: Sequence[float] = (0.0, 1.0, 1.5), seeds: Sequence[int] = (5, 20),
                reps: int | None = None, rng: int = 0, **setting: Any) -> pd.DataFrame:
    """:func:`simulate` over ``effects`` (multiples of :data:`MIN_EFFECT`) and ``seeds``: one row per
    pair with ``effect`` (multiple), ``effect_pp``, ``n_seeds``, the rates ``holds``, ``fails``,
    ``inconclusive`` and ``reps``. The book's section "How verdicts are decided" prints it; the
    test checks false holds <= 5% at effect 0 and false fails <= 5% at 1.5."""
    cfg = {**SIMULATION, **setting}
    rows = []
    for i, s in enumerate(seeds):
        for j, e in enumerate(effects):
            rates = simulate(e * MIN_EFFECT, int(s), reps=reps, rng=rng + 1000 * i + j, **setting)
            rows.append({"effect": float(e), "effect_pp": 100 * e * MIN_EFFECT, "n_seeds": int(s), **rates,
                         "reps": int(cfg["reps"] if reps is None else reps)})
    return pd.DataFrame(rows)


#: the committed calibration table, relative to the repository root (written by
#: ``python -m prunerob.analysis.verdict_rule``; read by the findings page; ``tests/test_verdict_rule.py``
#: checks that it was written by the current rule)
CALIBRATION_CSV = "book/experiments/results/verdict_rule/calibration.csv"
#: replications per cell of the committed table (Monte Carlo standard error 0.5 points at a 5% rate)
CALIBRATION_REPS = 2000
#: true effects (multiples of :data:`MIN_EFFECT`) and seed counts of the committed table
CALIBRATION_GRID = {"effects": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0), "seeds": (5, 20)}


def calibration_hash() -> str:
    """12 hex digits identifying the code and settings the calibration depends on (the source of the
    rule's statistics and of the simulation, whitespace ignored; :data:`SIMULATION`,
    :data:`MIN_EFFECT`, :data:`ALPHA`, :data:`CALIBRATION_GRID`)."""
    funcs = (differences, pooled, bounds, classify, _profile, simulate, calibration)
    parts = ["".join(inspect.getsource(f).split()) for f in funcs]  # blind to re-wrapping
    parts.append(repr((sorted(SIMULATION.items()), MIN_EFFECT, ALPHA, CALIBRATION_GRID)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def write_calibration(path: str | Path | None = None, reps: int = CALIBRATION_REPS) -> pd.DataFrame:
    """Run :func:`calibration` on :data:`CALIBRATION_GRID` with ``reps`` replications and write it, with
    a ``rule_hash`` column (:func:`calibration_hash`), to ``path`` (default :data:`CALIBRATION_CSV`
    under the repository root). About a minute of CPU."""
    out = Path(path) if path is not None else Path(__file__).resolve().parents[2] / CALIBRATION_CSV
    cal = calibration(CALIBRATION_GRID["effects"], CALIBRATION_GRID["seeds"], reps=reps).assign(
        rule_hash=calibration_hash())
    out.parent.mkdir(parents=True, exist_ok=True)
    cal.to_csv(out, index=False)
    return cal


def read_calibration(path: str | Path | None = None) -> tuple[pd.DataFrame | None, str]:
    """The committed calibration table and a note: ``""`` when it was written by the current rule,
    else a sentence saying that it is missing or stale and the command that rewrites it."""
    p = Path(path) if path is not None else Path(__file__).resolve().parents[2] / CALIBRATION_CSV
    cmd = "`python -m prunerob.analysis.verdict_rule`"
    if not p.is_file():
        return None, f"No calibration table at `{CALIBRATION_CSV}`: run {cmd}."
    cal = pd.read_csv(p)
    if "rule_hash" not in cal or set(cal.rule_hash.astype(str)) != {calibration_hash()}:
        return cal, ("**Stale**: this table was written by another version of the rule or of the "
                     f"simulation; rerun {cmd}.")
    return cal, ""


if __name__ == "__main__":  # python -m prunerob.analysis.verdict_rule [PATH] [REPS]
    args = sys.argv[1:]
    table = write_calibration(args[0] if args else None, int(args[1]) if len(args) > 1 else CALIBRATION_REPS)
    print(table.to_string(index=False))
