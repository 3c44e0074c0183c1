"""Figures of the theory-facing experiments: risk and bounds against p (Figs. 1, 7, 15, 16),
Algorithm 1's choices against λ (Fig. 5) and the fronts of Fig. 6.

Each function draws one figure from a tidy table of :mod:`prunerob.studies.risk_sweep`,
:mod:`prunerob.studies.layer_choices` or :mod:`prunerob.theory.tradeoff` and returns it; captions and
saving are
:func:`prunerob.render.plotting.caption` / :func:`prunerob.render.plotting.figure`. Lines are means over the
rows of a group (the seeds), bands the 95% t-interval over them (:func:`prunerob.analysis.stats.mean_ci`);
with one seed no band is drawn. At most two panels per row, constrained layout, every axis labelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from prunerob.analysis import stats
from prunerob.render.plotting import KEEP_LABEL

__all__ = [
    "bands",
    "risk_figure",
    "bounds_figure",
    "choices_figure",
    "chosen_vs_grid_figure",
    "bound_front_figure",
    "accuracy_front_figure",
]

#: the estimators and bounds of risk_sweep tables: column -> (legend label, line style)
RISK_LINES = {
    "sampling_mean": ("estimate: mean of K samples (paper)", dict(color="0.55", linestyle=":")),
    "sampling_max": ("estimate: max of K samples", dict(color="0.35", linestyle="--")),
    "worst_case": ("estimate: worst case (gradient ascent)", dict(color="k", linestyle="-")),
    "thm2_printed": ("Theorem 2 as printed (no ε)", dict(color="C3", linestyle=":")),
    "thm2_times_eps": ("Theorem 2 × ε", dict(color="C3", linestyle="--", lw=2.5)),
    "thm2_corrected": ("corrected Theorem 2", dict(color="C1", linestyle="-")),
    "realised_mask_bound": ("ε E Π ||B∘W||₂ (per-mask bound)", dict(color="C2", linestyle="-")),
    "zeta_prop1_printed": ("Proposition 1 (||x0|| = E||x||)", dict(color="C3", linestyle="--")),
    "zeta_prop1_corrected": ("corrected Proposition 1 (with biases)", dict(color="C1", linestyle="-")),
    "zeta_est": ("estimate E||f(x) - g(x)||", dict(color="k", linestyle="-")),
    "thm1_printed": ("Theorem 1 as printed", dict(color="C3", linestyle="--")),
    "thm1_corrected": ("corrected Theorem 1", dict(color="C1", linestyle="-")),
}


def bands(
    ax,
    df: pd.DataFrame,
    x: str,
    lines: Mapping[str, tuple[str, dict]],
    scale: float = 1.0,
    clip: tuple[float, float] | None = None,
) -> None:
    """One mean line with its t-interval band over the rows per ``x`` for each column of ``lines``;
    ``clip`` bounds the band to the range the quantity can take (an accuracy in [0, 100] %)."""
    for col, (label, style) in lines.items():
        s = stats.mean_ci(df, x, col)
        lo, hi = scale * s.lo, scale * s.hi
        if clip is not None:
            lo, hi = lo.clip(*clip), hi.clip(*clip)
        ax.plot(s[x], scale * s["mean"], marker=".", label=label, **style)
        ax.fill_between(s[x], lo, hi, color=style.get("color"), alpha=0.15, lw=0)


def _axes(ax, xlabel: str, ylabel: str, title: str, log: bool = False, invert: bool = True) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, yscale="log" if log else "linear")
    if invert:
        ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def risk_figure(risk: pd.DataFrame, eps_l2: Sequence[float]) -> plt.Figure:
    """Fig. 1 / Fig. 7: risk (two estimators) per L2 budget and ζ against the keep probability."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), layout="constrained")
    for ax, est in zip(axes[0], ("sampling_mean", "worst_case"), strict=False):
        for i, eps in enumerate(eps_l2):
            bands(ax, risk[risk.eps == eps], "keep_ratio", {est: (f"ε = {eps:g} (L2)", dict(color=f"C{i}"))})
        _axes(ax, KEEP_LABEL, "E ||g(x~) - g(x)||₂", RISK_LINES[est][0])
    bands(axes[1, 0], risk[risk.eps == eps_l2[0]], "keep_ratio", {"zeta_est": RISK_LINES["zeta_est"]})
    _axes(axes[1, 0], KEEP_LABEL, "ζ = E ||f(x) - g(x)||₂", "optimality ζ (Def. 2)")
    axes[1, 1].set_visible(False)
    return fig


def bounds_figure(panels: Sequence[tuple[pd.DataFrame, Sequence[str], str, str]]) -> plt.Figure:
    """Figs. 15 / 16: per panel ``(table, columns, y label, title)``, bounds and estimates on a log axis."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.4), layout="constrained", squeeze=False
    )
    for ax, (d, cols, ylabel, title) in zip(axes[0], panels, strict=False):
        bands(ax, d, "keep_ratio", {c: RISK_LINES[c] for c in cols})
        _axes(ax, KEEP_LABEL, ylabel, title, log=True)
    return fig


def choices_figure(
    ch: pd.DataFrame, modes: Sequence[str], keep_cols: Sequence[str], acc_cols: Mapping[str, str]
) -> plt.Figure:
    """Fig. 5: keep probabilities chosen per λ (left) and the accuracies they give (right)."""
    fig, axes = plt.subplots(
        len(modes), 2, figsize=(10, 3.8 * len(modes)), layout="constrained", squeeze=False
    )
    for row, mode in zip(axes, modes, strict=False):
        d = ch[ch["mode"] == mode]
        cols = keep_cols if mode == "layerwise" else keep_cols[:1]
        for i, method in enumerate(("algorithm1", "minimiser")):
            dm = d[d.method == method]
            bands(
                row[0],
                dm,
                "lam",
                {
                    c: (f"{method}: {c}", dict(color=f"C{3 * i}", linestyle=["-", "--", ":"][j % 3]))
                    for j, c in enumerate(cols)
                },
                clip=(0.0, 1.0),
            )
            bands(
                row[1],
                dm,
                "lam",
                {
                    c: (f"{method}: {lab}", dict(color=f"C{3 * i}", linestyle=["-", "--", ":"][j % 3]))
                    for j, (c, lab) in enumerate(acc_cols.items())
                },
                scale=100,
                clip=(0.0, 100.0),
            )
        _axes(row[0], "λ (weight of robustness γ)", "keep probability p", f"{mode}: chosen p", invert=False)
        _axes(row[1], "λ (weight of robustness γ)", "accuracy (%)", f"{mode}: pruned MLP", invert=False)
    return fig


def chosen_vs_grid_figure(grid: pd.DataFrame, chosen: pd.DataFrame, attack_label: str) -> plt.Figure:
    """Fig. 5 (companion): the chosen configurations among the uniform magnitude keep grid.

    ``grid``: one row per keep ratio with ``clean``, ``adv``; ``chosen``: rows with ``clean``,
    ``adv``, ``mode``, ``method`` (means over seeds). Right panel: the same, zoomed on the grid."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
    for ax, title in zip(axes, ("all points", "zoom on the uniform grid"), strict=True):
        ax.plot(100 * grid.clean, 100 * grid.adv, "-", color="0.5", marker=".",
                label="magnitude, uniform keep grid")
        for (mode, method), d in chosen.groupby(["mode", "method"]):
            ax.scatter(100 * d.clean, 100 * d.adv, s=22, marker="o" if method == "algorithm1" else "s",
                       alpha=0.7, label=f"{method} ({mode})")
        _axes(ax, "clean accuracy (%)", f"{attack_label} accuracy (%)", title, invert=False)
    for i, (k, c, a) in enumerate(zip(grid.keep_ratio, grid.clean, grid.adv, strict=True)):
        axes[1].annotate(f"p = {k:g}", (100 * c, 100 * a), xytext=(4, 8 * (i % 3) - 8),
                         textcoords="offset points", fontsize=8, color="0.35")
    pad = 2.0
    axes[1].set_xlim(100 * grid.clean.min() - pad, 100 * grid.clean.max() + pad)
    axes[1].set_ylim(100 * grid.adv.min() - pad, 100 * grid.adv.max() + pad)
    axes[1].get_legend().remove()
    return fig


def accuracy_front_figure(panels: Sequence[tuple[str, pd.DataFrame]]) -> plt.Figure:
    """Fig. 6 (top): one point per keep ratio in (clean, attacked) space, non-dominated ringed."""
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), layout="constrained", squeeze=False
    )
    for ax, (title, m) in zip(axes.flat, panels, strict=False):
        sc = ax.scatter(
            100 * m.clean_mean, 100 * m.adv_mean, c=m.keep_ratio, cmap="viridis", vmin=0, vmax=1, s=26
        )
        f = m[m.pareto].sort_values("clean_mean")
        ax.plot(
            100 * f.clean_mean,
            100 * f.adv_mean,
            "o-",
            mfc="none",
            ms=9,
            color="k",
            lw=0.8,
            label="non-dominated",
        )
        _axes(ax, "clean accuracy (%)", "attacked accuracy (%)", title, invert=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.colorbar(sc, ax=axes, shrink=0.8, label="keep ratio p")
    return fig


def bound_front_figure(curves: pd.DataFrame) -> plt.Figure:
    """Fig. 6 (bound space): Lemma 2's uniform curve (γ, ζ) and the per-layer front, per seed."""
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    for i, (_seed, d) in enumerate(curves.groupby("seed")):
        u, lw = d[d.kind == "uniform (Lemma 2)"], d[d.kind == "per-layer front"]
        sc = ax.scatter(
            u.zeta,
            u.gamma,
            c=u.keep,
            cmap="viridis",
            vmin=0,
            vmax=1,
            s=10,
            label="uniform p (Lemma 2)" if i == 0 else None,
        )
        ax.plot(lw.zeta, lw.gamma, "--", color="C3", lw=1, label="per-layer front" if i == 0 else None)
    fig.colorbar(sc, ax=ax, label="keep ratio p (uniform)")
    _axes(
        ax, "ζ(p): optimality bound (Prop. 1)", "γ(p): robustness bound (Thm. 2)", "bound space", invert=False
    )
    return fig
