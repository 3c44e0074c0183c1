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

import math
import re
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from prunerob.analysis import stats
from prunerob.render.plotting import KEEP_LABEL, MIN_FONT_PT, PAGE_WIDTH_IN, STYLE, keep_axis

__all__ = [
    "bands",
    "risk_figure",
    "bounds_figure",
    "choices_figure",
    "chosen_vs_grid_figure",
    "bound_front_figure",
    "accuracy_front_figure",
    "CHOICE_LABELS",
    "OUTPUT_SPACE",
]

#: where the risk γ (Def. 1) and the deviation ζ (Def. 2) are measured: the L2 norm of a difference
#: of the network's outputs, which are logits (no softmax; prunerob.theory.risk)
OUTPUT_SPACE = "L2 distance of logits"
#: legend names of the two ways of choosing keep probabilities (not pruning methods, so not in the
#: pruning registry): the paper's Algorithm 1 and the exact minimiser of J (prunerob.theory.tradeoff)
CHOICE_LABELS = {"algorithm1": "Algorithm 1 (as printed)", "minimiser": "minimiser of J"}
#: a column whose values lie this many times above every other column of its panel gets its own
#: panel, so that it does not flatten the others on a shared log axis
OWN_SCALE_FACTOR = 1e3

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


def _axes(ax, xlabel: str, ylabel: str, title: str, log: bool = False, invert: bool = True,
          legend: bool = False) -> None:
    ax.set(ylabel=ylabel, yscale="log" if log else "linear")
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(textwrap.fill(title, max(24, int(width_in * 14))))  # about 14 characters per inch at 10 pt
    if xlabel == KEEP_LABEL:
        keep_axis(ax, invert)
    else:
        ax.set_xlabel(xlabel)
        if invert:
            ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    if legend:
        _legend_below(ax)


def _legend_below(ax, ncols: int = 1) -> None:
    """The panel's legend under its x label, never over a curve (constrained layout makes room)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=ncols,
                  frameon=False, fontsize=MIN_FONT_PT)


def risk_figure(risk: pd.DataFrame, eps_l2: Sequence[float]) -> plt.Figure:
    """Fig. 1 / Fig. 7: risk (two estimators) per L2 budget and ζ against the keep probability.

    Three panels and, in the fourth slot, the one legend of the budgets (no empty panel, no legend
    over a curve); page width, fonts of :data:`prunerob.render.plotting.STYLE`; γ and ζ in logit space."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplot_mosaic([["mean", "worst"], ["zeta", "legend"]],
                                     figsize=(PAGE_WIDTH_IN, 6.0), layout="constrained")
        for key, est in (("mean", "sampling_mean"), ("worst", "worst_case")):
            for i, eps in enumerate(eps_l2):
                bands(ax[key], risk[risk.eps == eps], "keep_ratio",
                      {est: (f"ε = {eps:g}", dict(color=f"C{i}"))})
            _axes(ax[key], KEEP_LABEL, "risk γ (logits, L2)", RISK_LINES[est][0])
        bands(ax["zeta"], risk[risk.eps == eps_l2[0]], "keep_ratio", {"zeta_est": RISK_LINES["zeta_est"]})
        _axes(ax["zeta"], KEEP_LABEL, "ζ = E‖f(x) − g(x)‖₂ (logits)", "optimality ζ (Def. 2)")
        handles, labels = ax["mean"].get_legend_handles_labels()
        ax["legend"].axis("off")
        ax["legend"].legend(handles, labels, title="L2 budget of the risk", loc="center", frameon=False)
        ax["legend"].text(0.5, 0.08, "γ: E sup‖g(x̃) − g(x)‖₂ over\nthe L2 ball (Def. 1), in logits",
                          ha="center", va="bottom", transform=ax["legend"].transAxes, fontsize=MIN_FONT_PT,
                          color="0.3")
    return fig


def _own_scale(d: pd.DataFrame, cols: Sequence[str]) -> list[str]:
    """Columns of ``cols`` whose smallest positive value lies :data:`OWN_SCALE_FACTOR` times above the
    largest value of every other column (e.g. a corrected bound at 10^12 next to risks near 10)."""
    peak = {c: float(d[c].abs().max()) for c in cols}
    low = {c: float(d[c][d[c] > 0].min()) if (d[c] > 0).any() else math.nan for c in cols}
    out = []
    for c in cols:
        others = [peak[o] for o in cols if o != c and o not in out]
        if others and math.isfinite(low[c]) and low[c] > OWN_SCALE_FACTOR * max(others):
            out.append(c)
    return out


def bounds_figure(panels: Sequence[tuple[pd.DataFrame, Sequence[str], str, str]]) -> plt.Figure:
    """Figs. 15 / 16: per panel ``(table, columns, y label, title)``, bounds and estimates on a log axis.

    A column that lies orders of magnitude above the rest of its panel (:func:`_own_scale`) is drawn
    in a panel of its own to the right, so that the others keep their resolution; each panel's
    legend sits under it."""
    drawn: list[tuple[pd.DataFrame, list[str], str, str]] = []
    for d, cols, ylabel, title in panels:
        own = _own_scale(d, list(cols))
        drawn.append((d, [c for c in cols if c not in own], ylabel, title))
        for c in own:
            drawn.append((d, [c], ylabel, f"{RISK_LINES[c][0]} (own scale: far above the left panel)"))
    n = len(drawn)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, n, figsize=(PAGE_WIDTH_IN, 5.2 if n > 1 else 4.6), layout="constrained",
                                 squeeze=False)
        for ax, (d, cols, ylabel, title) in zip(axes[0], drawn, strict=True):
            bands(ax, d, "keep_ratio", {c: RISK_LINES[c] for c in cols})
            _axes(ax, KEEP_LABEL, ylabel, title, log=True, legend=True)
    return fig


def _choice_label(method: str, col: str) -> str:
    name = CHOICE_LABELS.get(method, method)
    m = re.match(r"keep_(\d+)$", col)
    return f"{name}: p of layer {m.group(1)}" if m else f"{name}: {col}"


def choices_figure(
    ch: pd.DataFrame, modes: Sequence[str], keep_cols: Sequence[str], acc_cols: Mapping[str, str]
) -> plt.Figure:
    """Fig. 5: keep probabilities chosen per λ (left) and the accuracies they give (right), one row
    per mode; one legend per column under the figure (never over a curve)."""
    styles = ["-", "--", ":"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(modes), 2, figsize=(PAGE_WIDTH_IN, 2.7 * len(modes) + 1.6),
                                 layout="constrained", squeeze=False)
        for row, mode in zip(axes, modes, strict=False):
            d = ch[ch["mode"] == mode]
            cols = list(keep_cols) if mode == "layerwise" else list(keep_cols[:1])
            for i, method in enumerate(("algorithm1", "minimiser")):
                dm = d[d.method == method]
                bands(row[0], dm, "lam", {c: (_choice_label(method, c),
                                              dict(color=f"C{3 * i}", linestyle=styles[j % 3]))
                                          for j, c in enumerate(cols)}, clip=(0.0, 1.0))
                bands(row[1], dm, "lam", {c: (f"{CHOICE_LABELS.get(method, method)}: {lab}",
                                              dict(color=f"C{3 * i}", linestyle=styles[j % 3]))
                                          for j, (c, lab) in enumerate(acc_cols.items())},
                      scale=100, clip=(0.0, 100.0))
            lam = "λ (weight of robustness γ)"
            _axes(row[0], lam, "keep probability p", f"{mode}: chosen p", invert=False)
            _axes(row[1], lam, "accuracy (%)", f"{mode}: pruned MLP", invert=False)
        for col in (0, 1):  # one legend per column, under its bottom panel
            seen: dict[str, object] = {}
            for ax in axes[:, col]:
                for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                    seen.setdefault(lab, h)
            axes[-1, col].legend(list(seen.values()), list(seen), loc="upper center",
                                 bbox_to_anchor=(0.5, -0.25), frameon=False, fontsize=MIN_FONT_PT)
    return fig


def _label_points(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str]) -> None:
    """Annotate points in order, dropping a label that would overlap one already placed or reach
    outside the axes, so that the labels never collide or get clipped. Call after the layout is
    final (the figure is drawn first); the labels are kept out of the layout."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
    to_axes = ax.transData + ax.transAxes.inverted()
    for x, y, t in zip(xs, ys, texts, strict=True):
        fx, fy = to_axes.transform((x, y))
        right = fx > 0.6
        a = ax.annotate(t, (x, y), xytext=(-6 if right else 6, -12 if fy > 0.85 else 4),
                        textcoords="offset points", ha="right" if right else "left", fontsize=MIN_FONT_PT,
                        color="0.3")
        a.set_in_layout(False)
        box = a.get_window_extent(renderer)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        if not inside or any(box.overlaps(o) for o in placed):
            a.remove()
            continue
        placed.append(box)


def chosen_vs_grid_figure(grid: pd.DataFrame, chosen: pd.DataFrame, attack_label: str) -> plt.Figure:
    """Fig. 5 (companion): the chosen configurations among the uniform magnitude keep grid.

    ``grid``: one row per keep ratio with ``clean``, ``adv``; ``chosen``: rows with ``clean``,
    ``adv``, ``mode``, ``method`` (means over seeds). Right panel: the same, zoomed on the grid,
    with the keep ratio of the grid points that have room for a label."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 4.6), layout="constrained")
        for ax, title in zip(axes, ("all points", "zoom on the uniform grid"), strict=True):
            ax.plot(100 * grid.clean, 100 * grid.adv, "-", color="0.5", marker=".",
                    label="magnitude, uniform keep grid")
            for (mode, method), d in chosen.groupby(["mode", "method"]):
                ax.scatter(100 * d.clean, 100 * d.adv, s=22, marker="o" if method == "algorithm1" else "s",
                           alpha=0.7, label=f"{CHOICE_LABELS.get(method, method)} ({mode})")
            _axes(ax, "clean accuracy (%)", f"{attack_label} accuracy (%)", title, invert=False)
        pad = 1.0
        axes[1].set_xlim(100 * grid.clean.min() - pad, 100 * grid.clean.max() + pad)
        axes[1].set_ylim(100 * grid.adv.min() - pad, 100 * grid.adv.max() + pad)
        g = grid.sort_values("keep_ratio")  # heavy pruning first: the spread-out points get labels
        _label_points(axes[1], 100 * g.clean, 100 * g.adv, [f"p = {k:g}" for k in g.keep_ratio])
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return fig


def accuracy_front_figure(panels: Sequence[tuple[str, pd.DataFrame]]) -> plt.Figure:
    """Fig. 6 (top): one point per keep ratio in (clean, attacked) space, non-dominated ringed.

    Up to three panels per row at page width; the free slots of the last row (or a row of its own)
    hold the colour bar and the legend, so no slot is left empty."""
    ncols = min(3, len(panels))
    names = [f"p{i}" for i in range(len(panels))]
    free = -len(names) % ncols
    rows = [names[i:i + ncols] for i in range(0, len(names), ncols)]
    if free:
        rows[-1] += ["key"] * free
    n_panel_rows = len(rows)
    if not free:  # every slot holds a panel: the key gets a short row of its own
        rows.append(["key"] * ncols)
    heights = [1.0] * n_panel_rows + ([] if free else [0.35])
    with plt.rc_context(STYLE):
        fig, ax = plt.subplot_mosaic(rows, figsize=(PAGE_WIDTH_IN, 2.45 * sum(heights) + 0.3),
                                     layout="constrained", height_ratios=heights)
        for name, (title, m) in zip(names, panels, strict=True):
            a = ax[name]
            sc = a.scatter(100 * m.clean_mean, 100 * m.adv_mean, c=m.keep_ratio, cmap="viridis", vmin=0,
                           vmax=1, s=20)
            f = m[m.pareto].sort_values("clean_mean")
            a.plot(100 * f.clean_mean, 100 * f.adv_mean, "o-", mfc="none", ms=8, color="k", lw=0.8,
                   label="non-dominated keep ratios")
            a.set_xlabel("clean accuracy (%)")
            a.set_ylabel("attacked acc. (%)")
            a.set_title("\n".join(textwrap.fill(part, 26) for part in title.split("\n")),
                        fontsize=MIN_FONT_PT)
            a.grid(alpha=0.3)
        key = ax["key"]
        key.axis("off")
        handles, labels = ax[names[0]].get_legend_handles_labels()
        key.legend(handles, labels, loc="upper center", frameon=False)
        fig.colorbar(sc, ax=key, location="bottom", fraction=0.2, aspect=25, label="keep ratio p (colour)")
    return fig


def bound_front_figure(curves: pd.DataFrame) -> plt.Figure:
    """Fig. 6 (bound space): Lemma 2's uniform curve (γ, ζ) and the per-layer front, per seed."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 4.4), layout="constrained")
        for i, (_seed, d) in enumerate(curves.groupby("seed")):
            u, lw = d[d.kind == "uniform (Lemma 2)"], d[d.kind == "per-layer front"]
            sc = ax.scatter(u.zeta, u.gamma, c=u.keep, cmap="viridis", vmin=0, vmax=1, s=10,
                            label="uniform p (Lemma 2)" if i == 0 else None)
            ax.plot(lw.zeta, lw.gamma, "--", color="C3", lw=1, label="per-layer front" if i == 0 else None)
        fig.colorbar(sc, ax=ax, label="keep ratio p (uniform)")
        _axes(ax, "ζ(p): optimality bound (Prop. 1, logits)", "γ(p): robustness bound (Thm. 2, logits)",
              "bound space, one curve per seed", invert=False)
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return fig
