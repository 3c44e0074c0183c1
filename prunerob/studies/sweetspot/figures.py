"""Figures of the sweet-spot chapter: the gain heatmap over (keep x eps) and gain / accuracy /
mechanism curves against the keep ratio (paper Fig. 2 axes; fonts of :data:`prunerob.render.plotting.STYLE`).

Legends sit below the axes so they never cover a curve; every figure is drawn from a table of
:mod:`prunerob.studies.sweetspot.grid`, :mod:`.pitfalls` or :mod:`.mechanism`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import SymLogNorm

from prunerob.analysis import stats
from prunerob.config import format_eps
from prunerob.render import plotting as P
from prunerob.studies.sweetspot.grid import cell_table

__all__ = ["heatmap", "gain_curves", "accuracy_curves", "pitfall_panels", "mechanism_curves",
           "attack_grid_text"]

MARK = {"gain": "*", "loss": "\u2020", "none": ""}
#: what each mark means, for the heatmap's key (only marks that occur are named)
MARK_TEXT = {"gain": "* significant gain", "loss": "\u2020 significant loss"}
#: panel titles of the mechanism metrics (prunerob.studies.sweetspot.mechanism)
METRIC_TITLES = {
    "margin": "clean logit margin",
    "grad_l1": "mean $\\|\\nabla_x$ CE$\\|_1$",
    "radius_ok": "first-order robust fraction",
    "lipschitz": "realised Lipschitz bound",
}
#: y-axis labels (with units) of the mechanism metrics
METRIC_YLABELS = {
    "margin": "logit margin (logits)",
    "grad_l1": "$\\|\\nabla_x$ CE$\\|_1$ (loss per input unit)",
    "radius_ok": "fraction of test images",
    "lipschitz": "bound (logits per input unit, L2)",
}


def eps_tick(eps: float) -> str:
    """An ε of the heatmap's axis in ONE notation, decimals (``0.05``, ``0.016``), with the paper's
    ``k/255`` in brackets where ε is one: ``0.016 (4/255)``."""
    paper = format_eps(float(eps))
    dec = f"{float(eps):.2g}"
    return f"{dec}\n({paper})" if "/" in paper else dec


def _cell_text(value: float, mark: str) -> str:
    """A heatmap cell: the gain in pp with one decimal, ``0.0`` without a sign when it rounds to
    zero (never ``-0.0``), followed by its significance mark."""
    if not np.isfinite(value):
        return ""
    text = f"{100 * value:+.1f}"
    if text in ("+0.0", "-0.0"):
        text = "0.0"
    return text + MARK.get(mark, "")


def _annot(g: pd.DataFrame) -> pd.DataFrame:
    txt = g.assign(t=[_cell_text(v, s) for v, s in zip(g.gain, g.significant, strict=True)])
    return cell_table(txt, "t")


def heatmap(g: pd.DataFrame, panels: Sequence[str], title: str = "") -> plt.Figure:
    """Paired gain (pp) over keep ratio x eps, one panel (row) per attack in ``panels``; ``*`` marks
    a significant gain and ``\u2020`` a significant loss (:func:`prunerob.studies.sweetspot.grid.flag`), and
    the key names only the marks that occur. The unpruned row (p = 1, the baseline: 0 by definition)
    is left out; ε is written in one notation (:func:`eps_tick`). The colour scale is
    symmetric-log (linear within +-1 pp) so small gains stay visible."""
    g = g[g.keep_ratio < 1.0]
    n_keep = g.keep_ratio.nunique()
    with plt.rc_context(P.STYLE):
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(P.PAGE_WIDTH_IN, (0.26 * n_keep + 1.25) * len(panels) + 0.3),
            squeeze=False, layout="constrained",
        )
        vmax = max(1.0, float(np.nanmax(np.abs(100 * g.gain.to_numpy(dtype=float)))))
        for ax, att in zip(axes[:, 0], panels, strict=True):
            d = g[g.attack == att]
            vals = cell_table(d) * 100
            vals.columns = [eps_tick(float(c)) for c in vals.columns]
            sns.heatmap(
                vals,
                ax=ax,
                cmap="RdBu",
                norm=SymLogNorm(linthresh=1.0, vmin=-vmax, vmax=vmax),
                annot=_annot(d).to_numpy(),
                fmt="",
                annot_kws={"fontsize": P.MIN_FONT_PT},
                linewidths=0.4,
                cbar_kws={"label": "paired gain (pp)", "format": "%.0f"},
            )
            marks = [MARK_TEXT[k] for k in ("gain", "loss") if (d.significant == k).any()]
            key = "; ".join(marks) if marks else "no significant cell"
            if not (d.significant == "gain").any():
                key += ("; no significant gain" if marks else "")
            # the key on its own line, so the title stays inside the figure; per cell, one-sided 95%,
            # uncorrected (the verdict's Bonferroni count is in the page's text)
            ax.set_title(f"{P.attack_label(att)}: attacked accuracy, pruned \u2212 unpruned (pp)\n"
                         f"{key} (uncorrected, per cell)")
            ax.set_xlabel("ε (L∞, pixel values in [0, 1])")
            ax.set_ylabel("keep ratio p")
            ax.tick_params(axis="y", rotation=0)
            ax.tick_params(axis="x", rotation=0)
        if title:
            fig.suptitle(title)
    return fig


def _band(ax, d: pd.DataFrame, label: str, color) -> None:
    d = d.sort_values("keep_ratio")
    ax.plot(d.keep_ratio, 100 * d.gain, marker="o", ms=4, label=label, color=color)
    ax.fill_between(
        d.keep_ratio,
        100 * d.gain_lo.fillna(d.gain),
        100 * d.gain_hi.fillna(d.gain),
        alpha=0.2,
        color=color,
        linewidth=0,
    )


def gain_curves(g: pd.DataFrame, hue: str, panels: str, labels: dict | None = None) -> plt.Figure:
    """Paired gain (pp, band: 95% t-interval over seeds) vs keep ratio, one line per ``hue`` value,
    one panel per ``panels`` value; significant gains as filled stars."""
    keys = list(dict.fromkeys(g[panels]))
    hues = list(dict.fromkeys(g[hue]))
    colors = dict(zip(hues, sns.color_palette("tab10", len(hues)), strict=True))
    with plt.rc_context(P.STYLE):
        ncols = min(2, len(keys))
        nrows = int(np.ceil(len(keys) / ncols))
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(P.PAGE_WIDTH_IN, P.ROW_HEIGHT_IN * nrows + 0.6), squeeze=False
        )
        for ax, k in zip(axes.flat, keys, strict=False):
            for h in hues:
                d = g[(g[panels] == k) & (g[hue] == h)]
                if not d.empty:
                    _band(ax, d, (labels or {}).get(h, str(h)), colors[h])
                    s = d[d.significant == "gain"]
                    ax.plot(s.keep_ratio, 100 * s.gain, "*", ms=10, color=colors[h])
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_title(f"{panels}: {format_eps(k) if isinstance(k, float) else k}")
            P.keep_axis(ax)
            ax.set_ylabel("paired gain (pp)")
        for ax in list(axes.flat)[len(keys) :]:
            ax.set_visible(False)
        hs, ls = axes.flat[0].get_legend_handles_labels()
        fig.legend(hs, ls, loc="lower center", ncol=min(len(ls), 3), frameon=False)
        fig.tight_layout(rect=(0, 0.12 if nrows == 1 else 0.07, 1, 1))
    return fig


def accuracy_curves(rows: pd.DataFrame, hue: str, panels: str, labels: dict | None = None) -> plt.Figure:
    """Mean clean (dashed) and attacked (solid) accuracy vs keep ratio per ``hue`` value (band: 95%
    t-interval over seeds), one panel per ``panels`` value: the axes of the paper's Fig. 2."""
    keys = list(dict.fromkeys(rows[panels]))
    d = rows.assign(**{hue: rows[hue].map(lambda v: (labels or {}).get(v, str(v)))})
    with plt.rc_context(P.STYLE):
        fig, axes = plt.subplots(
            1, len(keys), figsize=(P.PAGE_WIDTH_IN, P.ROW_HEIGHT_IN + 0.9), squeeze=False
        )
        for ax, k in zip(axes[0], keys, strict=True):
            dk = d[d[panels] == k]
            P.interval_lineplot(dk, "keep_ratio", "adv_acc", ax, hue=hue, scale=100, legend=ax is axes[0][0])
            P.interval_lineplot(
                dk, "keep_ratio", "clean_acc", ax, hue=hue, scale=100, legend=False, linestyle="--", alpha=0.6
            )
            means = dk.groupby([hue, "keep_ratio"])[["adv_acc", "clean_acc"]].mean().to_numpy() * 100
            ax.set_ylim(max(0.0, means.min() - 8), min(100.5, means.max() + 4))
            ax.set_title(f"{P.attack_label(str(k))}: solid attacked, dashed clean")
            P.keep_axis(ax)
            ax.set_ylabel("accuracy (%)")
        leg = axes[0][0].get_legend()
        if leg is not None:
            hs, ls = axes[0][0].get_legend_handles_labels()
            leg.remove()
            fig.legend(hs, ls, loc="lower center", ncol=min(len(ls), 3), frameon=False)
        fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def _mean_band(d: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds of ``value`` per keep ratio (NaN band with one seed)."""
    out = [(k, *stats.t_interval(g[value].to_numpy(dtype=float))) for k, g in d.groupby("keep_ratio")]
    return pd.DataFrame(out, columns=["keep_ratio", "mean", "lo", "hi"]).sort_values("keep_ratio")


def pitfall_panels(
    rows: pd.DataFrame, labels: dict[str, str], attack: str, ref: str = "correct"
) -> plt.Figure:
    """One panel per pitfall of ``rows`` (:mod:`prunerob.studies.sweetspot.pitfalls`) under ``attack``:
    attacked (solid, band: 95% t-interval over seeds) and clean (dashed) accuracy vs keep ratio,
    with the ``ref`` (correct) run in grey in every panel, so each deliberate error is read against
    the correct evaluation (paper Fig. 2 axes)."""
    d = rows[rows.attack == attack]
    names = [n for n in dict.fromkeys(d.pitfall) if n != ref]
    base = d[d.pitfall == ref]
    with plt.rc_context(P.STYLE):
        ncols = min(3, max(1, len(names)))
        nrows = int(np.ceil(len(names) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(P.PAGE_WIDTH_IN, 2.3 * nrows + 0.5), squeeze=False,
                                 sharey=True)
        for ax, name in zip(axes.flat, names, strict=False):
            pairs = ((base, "0.55", labels.get(ref, ref)), (d[d.pitfall == name], "C3", "pitfall"))
            for sub, color, lab in pairs:
                a, c = _mean_band(sub, "adv_acc"), _mean_band(sub, "clean_acc")
                ax.plot(a.keep_ratio, 100 * a["mean"], marker="o", ms=3, color=color, label=f"{lab}: adv")
                ax.fill_between(a.keep_ratio, 100 * a.lo, 100 * a.hi, color=color, alpha=0.15, linewidth=0)
                ax.plot(c.keep_ratio, 100 * c["mean"], ls="--", color=color, alpha=0.7, label=f"{lab}: clean")
            ax.set_title(textwrap.fill(labels.get(name, name), 26), fontsize=P.MIN_FONT_PT)
            P.keep_axis(ax, label="keep ratio p")
        means = 100 * d.groupby(["pitfall", "keep_ratio"])[["adv_acc", "clean_acc"]].mean().to_numpy()
        axes[0, 0].set_ylim(max(0.0, means.min() - 8), min(100.5, means.max() + 4))  # shared y
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (%)")
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        hs, ls = axes.flat[0].get_legend_handles_labels()
        fig.legend(hs, ls, loc="lower center", ncol=4, frameon=False, fontsize=P.MIN_FONT_PT)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def mechanism_curves(mech: pd.DataFrame, metrics: Sequence[str]) -> plt.Figure:
    """Each mechanism metric vs keep ratio (mean over seeds, band: 95% t-interval), one panel each."""
    with plt.rc_context(P.STYLE):
        ncols = min(len(metrics), 2)
        nrows = -(-len(metrics) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(P.PAGE_WIDTH_IN, P.ROW_HEIGHT_IN * nrows),
                                 squeeze=False)
        for ax, m in zip(axes.flat, metrics, strict=False):
            P.interval_lineplot(mech, "keep_ratio", m, ax, legend=False)
            ax.set_title(METRIC_TITLES.get(m, m))
            P.keep_axis(ax, label="keep ratio p")
            ax.set_ylabel(METRIC_YLABELS.get(m, m))
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        fig.tight_layout()
    return fig


def _step_text(alphas: Sequence[float], epss: Sequence[float]) -> str:
    """``"step size ε/2"`` when every step size is the same multiple of its ε (ε = 0 ignored),
    otherwise the step sizes listed."""
    ratios = {round(a / e, 6) for a, e in zip(alphas, epss, strict=True) if e > 0 and np.isfinite(a)}
    if len(ratios) == 1:
        r = ratios.pop()
        if abs(r - 1) < 1e-9:
            return "step size ε"
        inv = 1 / r
        return f"step size ε/{round(inv):d}" if abs(inv - round(inv)) < 1e-6 else f"step size {r:g}ε"
    return "step sizes " + ", ".join(f"{a:.4g}" for a in alphas)


def attack_grid_text(rows: pd.DataFrame) -> str:
    """A caption's attack sentence for a sweep over many budgets: one clause per attack (steps, step
    size as a multiple of ε, restarts, attack seeds, examples) followed by the ε grid, instead of one
    clause per (attack, ε) as :func:`prunerob.render.plotting.attack_summary` writes (same columns read)."""
    if rows is None or rows.empty or "attack" not in rows.columns:
        return "no attack"
    parts = []
    for attack, grp in rows.groupby("attack", sort=True):
        by_eps = grp.groupby("eps", sort=True)
        epss = [float(e) for e in by_eps.groups]
        bits = [f"{P.attack_label(str(attack))} (L∞"]
        for col, unit in (("attack_steps", "step"), ("attack_restarts", "restart")):
            vals = sorted({int(v) for v in grp[col].dropna()}) if col in grp else []
            if vals:
                bits.append(f"{'/'.join(map(str, vals))} {unit}{'s' if vals != [1] else ''}")
        if "attack_alpha" in grp:
            bits.append(_step_text([float(g.attack_alpha.iloc[0]) for _, g in by_eps], epss))
        if "attack_seed" in grp:
            seeds = sorted(int(v) for v in pd.unique(grp.attack_seed.dropna()))
            bits.append(f"attack seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
        if "n" in grp:
            bits.append(f"n = {'/'.join(str(int(v)) for v in sorted(pd.unique(grp.n)))} test images")
        parts.append(", ".join(bits) + ") at ε = " + ", ".join(format_eps(e) for e in epss))
    return "; ".join(parts)
