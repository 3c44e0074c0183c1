"""Paired gain of pruning over (keep ratio x eps) per attack, with significance (paper Fig. 2, Sec. 6.3).

The paired gain of a cell is ``adv_acc(pruned at keep p) - adv_acc(unpruned)`` on the same
examples and the same seed, with the pooled standard error of the verdict rule
(:func:`prunerob.analysis.stats.paired_gains`, :mod:`prunerob.analysis.verdict_rule`: seeds and shared test
examples). Stochastic masks (Bernoulli(p), Sec. 3; random) are averaged over their mask draws per
seed and example first.

Significance (:func:`flag`, the rule applied to one cell): a cell is a ``"gain"`` when its
one-sided lower bound is above 0 and the mean gain is at least the minimum effect
(:data:`prunerob.analysis.verdict_rule.MIN_EFFECT`); a ``"loss"`` when its one-sided upper bound is below 0
and the mean gain is at most minus the minimum effect; otherwise ``"none"``.

* ``significant``: one-sided at level 0.95 per cell, **uncorrected** (the figures' stars);
* ``significant_bonf``: the same with a Bonferroni correction over the table's ``family_size`` m
  tested cells (keep < 1 and eps > 0), level 1 - 0.05/m: the verdict rule with the table as the
  family searched. A cell with ``significant_bonf == "gain"`` is a real gain (:mod:`.verdict`).

A one-seed cell has no interval over seeds and is never flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunerob.analysis import stats
from prunerob.analysis import verdict_rule as rule

__all__ = [
    "EPS_GRID",
    "GROUPS",
    "flag",
    "flags",
    "bonferroni",
    "gains",
    "cell_table",
    "combine",
]

#: the eps axis of the heatmap, in pixel units (issue 13: 0 up to where accuracy reaches 0)
EPS_GRID = ("0", "4/255", "8/255", "0.05", "0.1", "0.15", "0.2", "0.3")
#: columns beyond the statistics' setting keys that separate sweeps (training, width, pitfall); mask draws
#: are averaged within a seed, not separated
GROUPS = ("train_epochs", "width", "pitfall")


def flag(gain: float, lower: float, upper: float, min_effect: float = rule.MIN_EFFECT) -> str:
    """``"gain"`` / ``"loss"`` / ``"none"`` of one cell from its mean ``gain`` and one-sided bounds
    (module docstring); NaN bounds give ``"none"``."""
    if np.isfinite(lower) and lower > 0 and gain >= min_effect - rule.TIE_ATOL:
        return "gain"
    if np.isfinite(upper) and upper < 0 and gain <= -min_effect + rule.TIE_ATOL:
        return "loss"
    return "none"


def _tested(g: pd.DataFrame) -> pd.Series:
    return (g.keep_ratio < 1.0) & (g.eps > 0)


def flags(g: pd.DataFrame, family: int, alpha: float = rule.ALPHA) -> list[str]:
    """:func:`flag` of every row of ``g`` (a :func:`gains` table) with one-sided bounds at level
    ``1 - alpha / family`` (the lower bound for a gain, the mirrored upper bound for a loss);
    untested cells (keep 1 or eps 0) are ``"none"``."""
    if g.empty:
        return []
    gain = g.gain.to_numpy(dtype=float)
    lo = rule.bounds(gain, g.se.to_numpy(dtype=float), g.df.to_numpy(dtype=float), family, alpha)["lower"]
    tested = _tested(g).to_numpy()
    return [flag(x, a, 2 * x - a) if t else "none" for x, a, t in zip(gain, lo, tested, strict=True)]


def bonferroni(g: pd.DataFrame, level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """``g`` with ``family_size`` (m: tested cells, keep < 1 and eps > 0) and ``significant_bonf``:
    :func:`flag` with the bounds at level ``1 - alpha / m`` (``level`` is kept for the callers'
    signature; the one-sided level is ``1 - alpha``)."""
    m = max(1, int(_tested(g).sum()))
    return g.assign(family_size=m, significant_bonf=flags(g, m, alpha))


def _by(rows: pd.DataFrame, by: Sequence[str]) -> list[str]:
    return [c for c in by if c in rows.columns and rows[c].notna().all()]


def gains(
    rows: pd.DataFrame, by: Sequence[str] = GROUPS, alpha: float = 0.05, level: float = 0.95
) -> pd.DataFrame:
    """:func:`prunerob.analysis.stats.paired_gains` per group of ``by`` (baseline keep 1.0; mask draws
    averaged per seed), with ``significant`` (uncorrected) and ``significant_bonf`` (corrected over
    the table) of :func:`flag`."""
    cols = _by(rows, by)
    parts = []
    for key, g in rows.groupby(cols, sort=True) if cols else [((), rows)]:
        pg = stats.paired_gains(g, baseline_keep=1.0, level=level, alpha=alpha)
        key = key if isinstance(key, tuple) else (key,)
        parts.append(pg.assign(**dict(zip(cols, key, strict=True))))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if out.empty:
        return out
    out["significant"] = flags(out, 1, alpha)
    return bonferroni(out, level, alpha)


def cell_table(g: pd.DataFrame, value: str = "gain") -> pd.DataFrame:
    """``value`` pivoted to keep ratio (rows, descending) x eps (columns) for one attack/method."""
    return g.pivot_table(index="keep_ratio", columns="eps", values=value, aggfunc="first").sort_index(
        ascending=False
    )


def combine(*tables: pd.DataFrame) -> pd.DataFrame:
    """Gain tables of several sweeps in one, a cell measured twice (e.g. the paper's model in both
    the main grid and the training axis) kept once (the first)."""
    d = pd.concat([t for t in tables if t is not None and not t.empty], ignore_index=True)
    keys = [c for c in (*stats.SETTING, "train_epochs", "width", "keep_ratio") if c in d.columns]
    return d.drop_duplicates(keys).reset_index(drop=True)
