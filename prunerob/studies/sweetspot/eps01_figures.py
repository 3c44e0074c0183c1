"""Figures of the page ``eps01_gain`` (issue 27), each drawn from a table of the page."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from prunerob.analysis import stats
from prunerob.render import plotting as P

__all__ = ["security_curves"]


def security_curves(curves: pd.DataFrame, marks: list[float] | None = None) -> plt.Figure:
    """Robust accuracy (%) against ε from the FAB distances (``curves``: ``keep_ratio``, ``seed``,
    ``eps``, ``robust_acc``), one line per keep ratio (mean over seeds) with a 95% t-band over seeds;
    left: the curves, right: pruned minus unpruned (pp), per seed then averaged. ``marks``: budgets
    drawn as dotted verticals (the PGD grid)."""
    keeps = sorted(curves.keep_ratio.unique(), reverse=True)
    colors = dict(zip(keeps, sns.color_palette("viridis", len(keeps)), strict=True))
    base = curves[np.isclose(curves.keep_ratio, 1.0)][["seed", "eps", "robust_acc"]].rename(
        columns={"robust_acc": "dense"}
    )
    diff = curves.merge(base, on=["seed", "eps"]).assign(shift=lambda d: d.robust_acc - d.dense)
    with plt.rc_context(P.STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(P.PAGE_WIDTH_IN, P.ROW_HEIGHT_IN + 0.8))
        for ax, data, value, ylab in (
            (axes[0], curves, "robust_acc", "robust accuracy (%)"),
            (axes[1], diff, "shift", "pruned − unpruned (pp)"),
        ):
            s = stats.mean_ci(data, ["keep_ratio", "eps"], value)
            for k in keeps:
                if ax is axes[1] and np.isclose(k, 1.0):
                    continue
                d = s[np.isclose(s.keep_ratio, k)].sort_values("eps")
                ax.plot(d.eps, 100 * d["mean"], color=colors[k], label=f"keep {k:g}")
                lo, hi = 100 * d.lo.fillna(d["mean"]), 100 * d.hi.fillna(d["mean"])
                if value == "robust_acc":  # an accuracy band stays in [0, 100]
                    lo, hi = lo.clip(0, 100), hi.clip(0, 100)
                ax.fill_between(
                    d.eps,
                    lo,
                    hi,
                    color=colors[k],
                    alpha=0.2,
                    linewidth=0,
                )
            for e in marks or []:
                ax.axvline(e, color="0.6", ls=":", lw=0.8)
            ax.set_xlabel("ε (L∞, pixel units)")
            ax.set_ylabel(ylab)
        axes[1].axhline(0, color="0.3", lw=0.8)
        hs, ls = axes[0].get_legend_handles_labels()
        fig.legend(hs, ls, loc="lower center", ncol=min(len(ls), 5), frameon=False)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig
