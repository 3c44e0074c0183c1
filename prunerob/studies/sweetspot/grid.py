"""Paired gain of pruning over (keep ratio x eps) per attack, with significance (paper Fig. 2, Sec. 6.3).

The paired gain of a cell is ``adv_acc(pruned at keep p) - adv_acc(unpruned)`` on the same
examples and the same seed (:func:`prunerob.analysis.stats.paired_gains`): a 95% t-interval across seeds
and an exact McNemar test within each seed on the per-example ``adv_bits``. Stochastic masks
(Bernoulli(p), Sec. 3; random) are averaged over mask draws first (:func:`average_draws`).

Significance rule (:func:`flag`): a cell is a ``"gain"`` when its interval lies above 0 AND the
McNemar test gives p < 0.05 in more than half of the seeds; a ``"loss"`` when the interval lies
below 0 under the same majority; otherwise ``"none"`` (column ``significant``).

Multiple comparisons: the per-cell rule above is at level 0.05 for EACH cell, and a grid tests
many cells, so some ``"gain"`` flags are expected by chance alone. Every table of :func:`gains` is
one family: its ``family_size`` m is the number of tested cells (keep < 1 and eps > 0), and
``significant_bonf`` applies the same rule with a Bonferroni correction, a (1 - 0.05/m) t-interval
and McNemar p < 0.05/m (with one seed: the McNemar test alone). The verdict reports both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunerob.analysis import stats

__all__ = [
    "EPS_GRID",
    "GROUPS",
    "flag",
    "bonferroni",
    "drop_zero_width",
    "gains",
    "average_draws",
    "cell_table",
    "combine",
]

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


def _tested(g: pd.DataFrame) -> pd.Series:
    return (g.keep_ratio < 1.0) & (g.eps > 0)


def bonferroni(g: pd.DataFrame, level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """``g`` with ``family_size`` (m: tested cells, keep < 1 and eps > 0) and ``significant_bonf``:
    :func:`flag` on the (1 - (1 - level)/m) t-interval of the per-seed ``gains`` and the seeds with
    McNemar p < alpha/m. One seed: the McNemar test alone (with the gain's sign)."""
    m = max(1, int(_tested(g).sum()))
    lvl, a = 1 - (1 - level) / m, alpha / m
    flags = []
    for r in g.itertuples():
        if not (r.keep_ratio < 1.0 and r.eps > 0):
            flags.append("none")
            continue
        n_sig = int(sum(p < a for p in r.p_values if np.isfinite(p)))
        _, lo, hi = stats.t_interval(np.round(np.asarray(r.gains, dtype=float), 12), lvl)
        if len(r.gains) == 1:
            lo = hi = float(r.gains[0])
        flags.append(flag(lo, hi, n_sig, r.n_seeds))
    return g.assign(family_size=m, significant_bonf=flags)


def _by(rows: pd.DataFrame, by: Sequence[str]) -> list[str]:
    return [c for c in by if c in rows.columns and rows[c].notna().all()]


def gains(
    rows: pd.DataFrame, by: Sequence[str] = GROUPS, alpha: float = 0.05, level: float = 0.95
) -> pd.DataFrame:
    """:func:`prunerob.analysis.stats.paired_gains` per group of ``by`` (baseline keep 1.0), mask draws
    averaged (:func:`average_draws`), with the ``significant`` flag of :func:`flag`."""
    cols = _by(rows, by)
    parts = []
    for key, g in rows.groupby(cols, sort=True) if cols else [((), rows)]:
        pg = stats.paired_gains(g, baseline_keep=1.0, level=level, alpha=alpha)
        key = key if isinstance(key, tuple) else (key,)
        parts.append(pg.assign(**dict(zip(cols, key, strict=True))))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if out.empty:
        return out
    if "mask_draw" in out.columns:
        out = average_draws(out, level, alpha)
    out = drop_zero_width(out)
    out["significant"] = [flag(r.gain_lo, r.gain_hi, r.n_significant, r.n_seeds) for r in out.itertuples()]
    return bonferroni(out, level, alpha)


def drop_zero_width(g: pd.DataFrame, atol: float = 1e-12) -> pd.DataFrame:
    """No interval where it has zero width up to float noise (every seed moved by the same number of
    images): :func:`prunerob.analysis.stats.t_interval` drops exactly equal gains, but gains computed from
    float accuracies can differ by ~1e-17, which would give a spurious "interval above 0"."""
    z = np.isfinite(g.gain_lo) & np.isclose(g.gain_lo, g.gain_hi, rtol=0, atol=atol)
    g = g.copy()
    g.loc[z, ["gain_lo", "gain_hi"]] = np.nan
    g.loc[z, "interval"] = "none: every seed moved by the same number of images"
    return g


def average_draws(g: pd.DataFrame, level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Average per-seed gains over mask draws, then the t-interval across seeds; a seed counts as
    McNemar-significant when p < ``alpha`` in at least half of its draws, so its ``p_values`` entry
    is the lower median of its draws' p-values (p < alpha exactly then). One draw: unchanged."""
    keys = [c for c in g.columns if c in (*stats.SETTING, *GROUPS, "keep_ratio") and c != "mask_draw"]
    if g["mask_draw"].nunique() <= 1:
        return g.drop(columns="mask_draw")
    rows = []
    for key, d in g.groupby(keys, sort=True, dropna=False):
        seeds = sorted(set.intersection(*(set(s) for s in d.seeds)))
        per = {s: [] for s in seeds}
        ps: dict[int, list[float]] = {s: [] for s in seeds}
        for r in d.itertuples():
            for s, v, p in zip(r.seeds, r.gains, r.p_values, strict=True):
                if s in per:
                    per[s].append(v)
                    ps[s].append(float(p))
        p_seed = {s: sorted(ps[s])[(len(ps[s]) + 1) // 2 - 1] for s in seeds}
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
                "p_values": tuple(p_seed[s] for s in seeds),
                "n_significant": int(sum(p_seed[s] < alpha for s in seeds)),
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
