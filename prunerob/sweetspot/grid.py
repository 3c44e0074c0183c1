"""Paired gain of pruning over (keep ratio x eps) per attack, with significance (paper Fig. 2, Sec. 6.3).

The paired gain of a cell is ``adv_acc(pruned at keep p) - adv_acc(unpruned)`` on the same
examples and the same seed (:func:`prunerob.stats.paired_gains`): a 95% t-interval across seeds
and an exact McNemar test within each seed on the per-example ``adv_bits``. Stochastic masks
(Bernoulli(p), Sec. 3; random) are averaged over mask draws first (:func:`average_draws`).

Significance rule (:func:`flag`): a cell is a ``"gain"`` when its interval lies above 0 AND the
McNemar test gives p < 0.05 in more than half of the seeds; a ``"loss"`` when the interval lies
below 0 under the same majority; otherwise ``"none"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunerob import stats

__all__ = ["EPS_GRID", "GROUPS", "flag", "gains", "average_draws", "cell_table"]

#: the eps axis of the heatmap, in pixel units (issue 13: 0 up to where accuracy reaches 0)
EPS_GRID = ("0", "4/255", "8/255", "0.05", "0.1", "0.15", "0.2", "0.3")
#: columns beyond the statistics' setting keys that separate sweeps (training, width, mask draw, ...)
GROUPS = ("train_epochs", "width", "pitfall", "mask_draw")


def flag(gain_lo: float, gain_hi: float, n_significant: int, n_seeds: int) -> str:
    """``"gain"`` / ``"loss"`` / ``"none"`` by the module's rule (interval side + McNemar majority)."""
    majority = 2 * int(n_significant) > int(n_seeds)
    if majority and np.isfinite(gain_lo) and gain_lo > 0:
        return "gain"
    if majority and np.isfinite(gain_hi) and gain_hi < 0:
        return "loss"
    return "none"


def _by(rows: pd.DataFrame, by: Sequence[str]) -> list[str]:
    return [c for c in by if c in rows.columns and rows[c].notna().all()]


def gains(
    rows: pd.DataFrame, by: Sequence[str] = GROUPS, alpha: float = 0.05, level: float = 0.95
) -> pd.DataFrame:
    """:func:`prunerob.stats.paired_gains` per group of ``by`` (baseline keep 1.0), mask draws
    averaged (:func:`average_draws`), with the ``significant`` flag of :func:`flag`."""
    cols = _by(rows, by)
    parts = []
    for key, g in rows.groupby(cols, sort=True) if cols else [((), rows)]:
        pg = stats.paired_gains(g, baseline_keep=1.0, level=level, alpha=alpha)
        key = key if isinstance(key, tuple) else (key,)
        parts.append(pg.assign(**dict(zip(cols, key, strict=True))))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if "mask_draw" in out.columns:
        out = average_draws(out, level, alpha)
    out["significant"] = [flag(r.gain_lo, r.gain_hi, r.n_significant, r.n_seeds) for r in out.itertuples()]
    return out


def average_draws(g: pd.DataFrame, level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Average per-seed gains over mask draws, then the t-interval across seeds; a seed counts as
    McNemar-significant when p < ``alpha`` in at least half of its draws. One draw: unchanged."""
    keys = [c for c in g.columns if c in (*stats.SETTING, *GROUPS, "keep_ratio") and c != "mask_draw"]
    if g["mask_draw"].nunique() <= 1:
        return g.drop(columns="mask_draw")
    rows = []
    for key, d in g.groupby(keys, sort=True, dropna=False):
        seeds = sorted(set.intersection(*(set(s) for s in d.seeds)))
        per = {s: [] for s in seeds}
        sig = {s: [] for s in seeds}
        for r in d.itertuples():
            for s, v, p in zip(r.seeds, r.gains, r.p_values, strict=True):
                if s in per:
                    per[s].append(v)
                    sig[s].append(p < alpha)
        mean, lo, hi = stats.t_interval([np.mean(per[s]) for s in seeds], level)
        first = d.iloc[0].to_dict()
        rows.append(
            {
                **first,
                **dict(zip(keys, key, strict=True)),
                "gain": mean,
                "gain_lo": lo,
                "gain_hi": hi,
                "gains": tuple(float(np.mean(per[s])) for s in seeds),
                "seeds": tuple(seeds),
                "n_seeds": len(seeds),
                "n_significant": int(sum(2 * sum(sig[s]) >= len(sig[s]) for s in seeds)),
                "clean_gain": float(d.clean_gain.mean()),
                "n_draws": len(d),
                "interval": f"t over seeds of the mean over {len(d)} mask draws",
            }
        )
    return pd.DataFrame(rows)


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
