"""Shared figure and caption code for the experiment notebooks (paper Sec. 6, App. H).

Every accuracy figure of the paper (Figs. 2-4, 8-14) plots clean and attacked accuracy against
the keep ratio ``p`` (fraction of weights KEPT). Where the paper shows one run, the notebooks
show the mean over seeds with a 95% t-interval band (:func:`prunerob.analysis.stats.t_interval`, drawn by
seaborn through :func:`t_errorbar`), each next to a paired-gain panel (:func:`plot_gain_vs_keep`).
Captions are built by :func:`caption` from the data set's ``.source`` sentence and the sweep
table's provenance and attack columns, so a figure never states a setting that was not the one used.

Conventions: result tables follow the results contract of CONTRIBUTING.md (one row per
model, dataset, method, keep_ratio, attack, eps, seed; accuracies are fractions in [0, 1]).
"""
from __future__ import annotations

import importlib
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from prunerob.analysis import stats
from prunerob.analysis.stats import (  # noqa: F401  (re-exported for old callers; the statistics live in prunerob.analysis.stats)
    accuracy_summary,
    describe_sweet_spot,
    keep_at_drop,
    mean_ci,
    pareto_mask,
    pct,
    pp,
    sweet_spot,
    t_quantile,
)
from prunerob.config import ConfigError, atomic_write_text, format_eps
from prunerob.core.registry import label_of, registered

#: colours of the pruning methods (the random baseline is grey everywhere)
METHOD_COLORS = {
    "magnitude": "C0",
    "magnitude_global": "C2",
    "taylor": "C1",
    "bernoulli_uniform": "C4",
    "random": "0.45",
    "algorithm1": "C3",
}


#: the package whose import fills each registry that legends read
_REGISTERING = {"method": "prunerob.core.pruning", "attack": "prunerob.core.attacks"}


def _label(param: str, name: str) -> str:
    """``label_of(param, name)`` with the registry loaded: a page that renders from the result store
    may never import the (torch) package that registers the entries, and a legend must not read
    ``fgsm`` on one page and ``FGSM`` on the next depending on what happened to be imported."""
    if registered(param) is None:  # imported here, not at the top: the registering package loads torch
        importlib.import_module(_REGISTERING[param])
    return label_of(param, name)


def method_label(name: str) -> str:
    """Legend name of a pruning method: the ``label`` of its entry in the :mod:`prunerob.core.pruning`
    registry; a name that is not a registered method (e.g. ``algorithm1``) is returned as is."""
    return _label("method", name)


def attack_label(name: str) -> str:
    """Legend name of an attack: the ``label`` of its entry in the :mod:`prunerob.core.attacks`
    registry (``FGSM``, ``PGD``, ``CW-Linf``, ``AutoAttack``); other names as they are."""
    return _label("attack", name)


class _RegistryLabels(Mapping):
    """Read-only ``{method name: legend label}`` view of the pruning registry (for old callers)."""

    def __getitem__(self, name: str) -> str:
        reg = registered("method")
        if reg is None or name not in reg.names():
            raise ConfigError(f"method={name!r} is not a registered pruning method")
        return method_label(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except ConfigError:
            return default

    def __iter__(self):
        reg = registered("method")
        return iter(reg.names() if reg is not None else ())

    def __len__(self) -> int:
        reg = registered("method")
        return len(reg.names()) if reg is not None else 0


#: legend names of the registered pruning methods (the registry's ``label``; kept for old callers)
METHOD_LABELS: Mapping[str, str] = _RegistryLabels()
#: x label of every keep-ratio axis (short enough for a half-width panel)
KEEP_LABEL = "keep ratio p (fraction kept)"
#: ticks of a keep-ratio axis
KEEP_TICKS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)

#: Figure geometry for the book. sphinx-book-theme's content column is about 730 CSS px wide; a
#: PNG of ``PAGE_WIDTH_IN`` = 7 inches at :data:`DPI` = 200 is 1400 px and is shown scaled to
#: 730 px, so a font of ``s`` pt renders at ``s * 200/72 * 730/1400 * 72/96`` = ``1.09 s`` pt
#: (:func:`rendered_font_pt`): every font of :data:`STYLE` (>= 9 pt) stays >= 9 pt on the page.
PAGE_WIDTH_IN = 7.0
#: height of one row of panels (inches)
ROW_HEIGHT_IN = 2.9
#: width of sphinx-book-theme's content column (CSS px)
CONTENT_WIDTH_PX = 730
#: resolution of the saved and glued PNG files
DPI = 200
#: smallest font size on the page (pt)
MIN_FONT_PT = 9.0
#: matplotlib rcParams of every book figure (fonts >= 9 pt)
STYLE = {
    "font.size": 10.0, "axes.titlesize": 10.0, "axes.labelsize": 10.0, "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0, "legend.fontsize": 9.0, "legend.title_fontsize": 9.0, "figure.titlesize": 11.0,
    "figure.dpi": 100, "savefig.dpi": DPI, "svg.fonttype": "none", "svg.hashsalt": "prunerob",
}


def rendered_font_pt(size_pt: float, fig_width_in: float, dpi: int = DPI,
                     content_px: int = CONTENT_WIDTH_PX) -> float:
    """Size in pt at which a ``size_pt`` font of a ``fig_width_in``-inch figure saved at ``dpi``
    appears in the book: the image is shown at ``min(width px, content_px)`` CSS px (96 px/in)."""
    natural_px = fig_width_in * dpi
    shown_px = min(natural_px, content_px)
    return size_pt * dpi / 72.0 * (shown_px / natural_px) * 72.0 / 96.0


def training_text(epochs: Any, train_subset: Any = None, datasets: Sequence[str] | None = None) -> str:
    """Caption text for the training budget, e.g. ``"mnist: 2 epochs on 10000 training images"``.

    ``epochs`` / ``train_subset`` are numbers or dicts keyed by data set (then ``datasets`` picks
    and orders the entries); ``train_subset=None`` means the full training split.
    """
    def one(e, s):
        return f"{e} epoch{'s' if e != 1 else ''} on {'all' if s is None else s} training images"

    if isinstance(epochs, Mapping):
        keys = list(datasets) if datasets is not None else list(epochs)
        sub = train_subset if isinstance(train_subset, Mapping) else {k: train_subset for k in keys}
        return "; ".join(f"{k}: {one(epochs[k], sub.get(k))}" for k in keys)
    return one(epochs, train_subset)


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------
def t_errorbar(level: float = 0.95, bounds: tuple[float, float] | None = None
               ) -> Callable[[Any], tuple[float, float]]:
    """seaborn ``errorbar=`` callable: the ``(lo, hi)`` of :func:`prunerob.analysis.stats.t_interval` over
    the values seaborn groups at one x (the seeds), so a plotted band is the project's t-interval;
    ``bounds`` clips it to the range the quantity can take (an accuracy: 0 to 100 %).

    With one value, or with identical values, the interval is undefined (NaN) and no band is drawn.
    """
    stats.t_quantile(level, 1)  # validates the level once, here, not inside seaborn

    def _interval(values: Any) -> tuple[float, float]:
        _, lo, hi = stats.t_interval(values, level)
        if bounds is not None:
            lo, hi = min(max(lo, bounds[0]), bounds[1]), min(max(hi, bounds[0]), bounds[1])
        return lo, hi

    _interval.__name__ = f"t_interval_{level:g}"
    return _interval


def bootstrap_errorbar(level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> Callable[[Any], tuple[float, float]]:
    """seaborn ``errorbar=`` callable for per-example paired differences ``bit(p) - bit(1)`` of one
    seed: the percentile interval of :func:`prunerob.analysis.stats.paired_bootstrap` (same resamples)."""
    stats.t_quantile(level, 1)

    def _interval(diffs: Any) -> tuple[float, float]:
        d = np.asarray(diffs, dtype=float)
        _, lo, hi = stats.paired_bootstrap(d, np.zeros_like(d), level=level, n_boot=n_boot, seed=seed)
        return (math.nan, math.nan) if lo == hi else (lo, hi)

    _interval.__name__ = f"paired_bootstrap_{level:g}"
    return _interval


def _select(df: pd.DataFrame, attack: str | None, eps: float | None,
            who: str) -> tuple[pd.DataFrame, str, float]:
    d = df
    if attack is not None:
        d = d[d.attack == attack]
    if eps is not None:
        d = d[np.isclose(d.eps.astype(float), float(eps))]
    if d.empty:
        raise ConfigError(f"no rows for attack={attack!r}, eps={eps!r}")
    for col in ("model", "dataset"):
        if col in d.columns and d[col].nunique() > 1:
            raise ConfigError(f"{who}: filter to one {col} first; got {sorted(d[col].unique())}")
    pairs = d[["attack", "eps"]].drop_duplicates()
    if len(pairs) > 1:
        raise ConfigError(f"{who}: several attacks in the table {pairs.values.tolist()}; "
                          "pass attack= and eps=")
    att, e = pairs.iloc[0]
    return d, str(att), float(e)


def _methods(d: pd.DataFrame, methods: Sequence[str] | None) -> list[str]:
    present = set(d.method.unique())
    order = list(methods) if methods is not None else sorted(present, key=lambda m: (m == "random", m))
    return [m for m in order if m in present]


def _palette(methods: Sequence[str]) -> dict[str, Any]:
    cycle = [c for c in (f"C{i}" for i in range(10)) if c not in METHOD_COLORS.values()]
    out, k = {}, 0
    for m in methods:
        if m in METHOD_COLORS:
            out[method_label(m)] = METHOD_COLORS[m]
        else:
            out[method_label(m)] = cycle[k % len(cycle)]
            k += 1
    return out


def keep_axis(ax, invert: bool = True, label: str = KEEP_LABEL) -> None:
    """A keep-ratio x axis: its label, ticks every 0.2 from 1 (no pruning) down to 0, and
    pruning increasing to the right when ``invert`` (as the paper reads it)."""
    ax.set_xlabel(label)
    ax.set_xticks(KEEP_TICKS)
    ax.set_xticklabels([f"{k:g}" for k in KEEP_TICKS])
    ax.set_xlim(1.03, -0.03)
    if not invert:
        ax.invert_xaxis()


def _finish_keep_axis(ax, invert: bool, ylabel: str, title: str | None) -> None:
    keep_axis(ax, invert)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)


def interval_lineplot(data: pd.DataFrame, x: str, y: str, ax, *, hue: str | None = None,
                      level: float = 0.95, scale: float = 1.0, **kwargs: Any):
    """``seaborn.lineplot`` of the mean of ``y`` per ``x`` (and ``hue``) over the rows of a tidy
    table (normally one row per seed) with the ``level`` t-interval band of :func:`t_errorbar`.

    ``scale`` multiplies ``y`` (100 for percent). Other keyword arguments go to seaborn
    (``palette``, ``style``, ``marker``, ``label``, ``legend``...). Returns ``ax``.
    """
    missing = [c for c in (x, y, hue) if c is not None and c not in data.columns]
    if missing:
        raise ConfigError(f"interval_lineplot: column(s) {missing} not in the table; "
                          f"columns: {list(data.columns)}")
    d = data.assign(**{y: data[y].astype(float) * scale})
    kwargs.setdefault("marker", "o")
    kwargs.setdefault("markersize", 4.5)
    kwargs.setdefault("err_kws", {"alpha": 0.2, "linewidth": 0})
    sns.lineplot(data=d, x=x, y=y, hue=hue, errorbar=t_errorbar(level), err_style="band", ax=ax, **kwargs)
    return ax


def plot_accuracy_vs_keep(
    df: pd.DataFrame,
    ax,
    *,
    attack: str | None = None,
    eps: float | None = None,
    methods: Sequence[str] | None = None,
    clean: bool = True,
    level: float = 0.95,
    invert: bool = True,
    title: str | None = None,
    legend: bool = True,
    percent: bool = True,
):
    """Clean (solid) and attacked (dashed) accuracy against the keep ratio (Figs. 2-4, 8-14):
    ``seaborn.lineplot`` of the mean over seeds with a ``level`` t-interval band over seeds
    (:func:`t_errorbar`), one colour per pruning method (random baseline in grey).

    ``df`` is a sweep table for ONE model and data set (filter before calling). ``attack`` and
    ``eps`` select the attacked rows (default: the only ones present). The x axis runs from
    keep 1 (no pruning) on the left to heavy pruning on the right when ``invert`` (as the paper
    reads it: "as the pruning probability decreases from 1 ..."). ``legend=False`` leaves the
    legend to the caller (:func:`accuracy_grid` puts one legend outside all panels).
    """
    d, att, e = _select(df, attack, eps, "plot_accuracy_vs_keep")
    methods = _methods(d, methods)
    scale = 100.0 if percent else 1.0
    attacked = f"{attack_label(att)} {format_eps(e)}"
    cols = {"adv_acc": attacked, **({"clean_acc": "clean"} if clean else {})}
    long = (d[d.method.isin(methods)]
            .melt(id_vars=["method", "keep_ratio", "seed"], value_vars=list(cols), var_name="measure",
                  value_name="acc")
            .assign(acc=lambda t: t.acc.astype(float) * scale,
                    measure=lambda t: t.measure.map(cols),
                    method=lambda t: t.method.map(method_label)))
    order = [method_label(m) for m in methods]
    styles = [s for s in ("clean", attacked) if s in cols.values()]
    sns.lineplot(data=long, x="keep_ratio", y="acc", hue="method", hue_order=order, palette=_palette(methods),
                 style="measure", style_order=styles, dashes={"clean": "", attacked: (4, 2)},
                 markers={"clean": "o", attacked: "s"}, markersize=4.5,
                 errorbar=t_errorbar(level, (0.0, scale)), err_style="band",
                 err_kws={"alpha": 0.2, "linewidth": 0}, legend=legend, ax=ax)
    _finish_keep_axis(ax, invert, "accuracy (%)" if percent else "accuracy", title)
    if legend and ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return ax


def gain_long(df: pd.DataFrame, baseline_keep: float = 1.0,
              level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The rows seaborn aggregates for a paired-gain panel, from :func:`prunerob.analysis.stats.paired_gains`.

    Returns ``(long, gains, interval)``: ``gains`` is the ``paired_gains`` table; ``long`` has one
    row per (method, keep_ratio, seed) with ``gain`` = adv_acc(p) - adv_acc(``baseline_keep``) of
    that seed (interval ``"t over seeds"``), or, when every setting has a single seed with
    per-example bits, one row per test example with the paired difference of its correctness bits
    (interval ``"bootstrap over examples"``); ``interval`` is ``"none"`` otherwise.
    """
    g = stats.paired_gains(df, baseline_keep=baseline_keep, level=level)
    if g.empty:
        return pd.DataFrame(columns=["method", "keep_ratio", "gain"]), g, "none"
    boot = (g.n_seeds == 1).all() and "adv_bits" in df.columns and df["adv_bits"].notna().all()
    rows = []
    if boot:
        base = df[np.isclose(df.keep_ratio.astype(float), baseline_keep)].drop_duplicates(["method", "seed"])
        for _, r in df.drop_duplicates(["method", "keep_ratio", "seed"]).iterrows():
            b = base[(base.method == r.method) & (base.seed == r.seed)]
            if b.empty:
                continue
            n = int(r["n"])
            diff = stats.decode_bits(r.adv_bits, n).astype(float) - stats.decode_bits(b.iloc[0].adv_bits, n)
            rows.append(pd.DataFrame({"method": r.method, "keep_ratio": float(r.keep_ratio), "gain": diff}))
        return pd.concat(rows, ignore_index=True), g, "bootstrap over examples"
    for _, r in g.iterrows():
        for s, v in zip(r.seeds, r.gains, strict=True):
            rows.append({"method": r.method, "keep_ratio": float(r.keep_ratio), "seed": s, "gain": v})
    return pd.DataFrame(rows), g, ("t over seeds" if (g.n_seeds > 1).any() else "none")


def resolution_note(gains: pd.DataFrame) -> str | None:
    """A sentence when one example (1/n) is coarser than a paired-gain interval, or when an
    interval is missing because every seed moved by the same number of examples; else ``None``."""
    if gains.empty or not np.isfinite(gains.resolution).any():
        return None
    res = float(gains.resolution.max())
    width = gains.gain_hi - gains.gain_lo
    coarse = gains[np.isfinite(width) & (width < res)]
    flat = gains[gains.interval.astype(str).str.startswith("none: every seed")
                 & ~np.isclose(gains.keep_ratio.astype(float), gains.baseline_keep.astype(float))]
    bits = []
    if not coarse.empty:
        bits.append(f"{len(coarse)} of the intervals are narrower than that")
    if not flat.empty:
        bits.append(f"at {len(flat)} keep ratio(s) every seed changed by the same number of examples, so no "
                    "interval is drawn there")
    if not bits:
        return None
    n = int(round(1 / res))
    return (f"One test example is {100 * res:.2g} pp (n = {n}): the measurement cannot resolve finer steps; "
            + "; ".join(bits) + ".")


def plot_gain_vs_keep(
    df: pd.DataFrame,
    ax,
    *,
    attack: str | None = None,
    eps: float | None = None,
    methods: Sequence[str] | None = None,
    level: float = 0.95,
    baseline_keep: float = 1.0,
    invert: bool = True,
    title: str | None = None,
    legend: bool = False,
) -> dict[str, Any]:
    """Companion panel: the paired gain in attacked accuracy, adv_acc(p) - adv_acc(1) on the same
    seed and examples (Sec. 6.3 "sweet spot"), in percentage points on an axis scaled to the
    effect, with its interval (seaborn band: t over seeds, or a paired bootstrap over test
    examples with one seed) and a grey band of +-1 example (the resolution 1/n).

    Returns ``{"gains": paired_gains table, "interval": what the band is over, "note": resolution
    sentence or None}``.
    """
    d, att, e = _select(df, attack, eps, "plot_gain_vs_keep")
    methods = _methods(d, methods)
    d = d[d.method.isin(methods)]
    long, gains, interval = gain_long(d, baseline_keep=baseline_keep, level=level)
    errorbar = {"t over seeds": t_errorbar(level), "bootstrap over examples": bootstrap_errorbar(level),
                "none": None}[interval]
    # seaborn's own sort is not stable; the bootstrap needs the examples in evaluation order (the
    # order stats.paired_gains resamples), so sort stably here and tell seaborn not to sort.
    long = (long.assign(gain=long.gain.astype(float) * 100.0,
                        method=long.method.map(method_label))
            .sort_values(["method", "keep_ratio"], kind="stable"))
    order = [method_label(m) for m in methods]
    note = resolution_note(gains)
    if not gains.empty and np.isfinite(gains.resolution).any():
        r = 100.0 * float(gains.resolution.max())
        ax.axhspan(-r, r, color="0.88", zorder=0, label="±1 test example")
    ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=1)
    if not long.empty:
        sns.lineplot(data=long, x="keep_ratio", y="gain", hue="method", hue_order=order,
                     palette=_palette(methods),
                     marker="s", markersize=4.5, dashes=False, errorbar=errorbar, err_style="band",
                     sort=False,
                     err_kws={"alpha": 0.2, "linewidth": 0}, legend=legend, ax=ax)
    _finish_keep_axis(ax, invert, f"{attack_label(att)} accuracy gain (pp)", title)
    clipped = _scale_gain_axis(ax, gains)
    if clipped:
        note = " ".join(x for x in (note, clipped) if x)
    return {"gains": gains, "interval": interval, "note": note}


def _scale_gain_axis(ax, gains: pd.DataFrame, floor_pp: float = 2.0, factor: float = 4.0) -> str | None:
    """Scale the paired-gain axis to the effect near zero: the lower limit is ``factor`` times the
    largest upward excursion (interval top, or one test example, at least ``floor_pp``) below
    zero. Losses beyond it (heavy pruning, often -80 pp) are clipped and named in the returned
    sentence, so a 0.3 pp sweet spot is not drawn as a flat line at the top of the panel."""
    if gains.empty:
        return None
    hi = 100.0 * gains.gain_hi.astype(float).where(np.isfinite(gains.gain_hi.astype(float)),
                                                  gains.gain.astype(float))
    lo = 100.0 * gains.gain_lo.astype(float).where(np.isfinite(gains.gain_lo.astype(float)),
                                                  gains.gain.astype(float))
    res = 100.0 * float(np.nanmax(gains.resolution.astype(float))) if "resolution" in gains else 0.0
    up = max(float(np.nanmax(hi)) if np.isfinite(hi).any() else 0.0, res, floor_pp / factor)
    bottom = -factor * up
    low = float(np.nanmin(lo)) if np.isfinite(lo).any() else 0.0
    if low >= bottom:
        return None
    ax.set_ylim(bottom, up * 1.25)
    cut = sorted(gains[lo < bottom].keep_ratio.astype(float).unique(), reverse=True)
    keeps = ", ".join(f"{k:g}" for k in cut)
    if "method" in gains.columns and gains.method.nunique() > 1:  # one line per method
        lines = []
        for m, gm in gains[lo < bottom].groupby("method", sort=False):
            mine = gains[gains.method == m].keep_ratio.astype(float)
            off = sorted(gm.keep_ratio.astype(float), reverse=True)
            lines.append(f"{method_label(m)}: {_keep_set(off, mine)}")
        text = "↓ off scale:\n" + "\n".join(lines)
    else:
        text = f"↓ off scale: {_keep_set(cut, gains.keep_ratio.astype(float))}"
    t = ax.text(0.03, 0.04, text,
                transform=ax.transAxes, fontsize=MIN_FONT_PT, color="0.3", ha="left", va="bottom",
                clip_on=True, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})
    t.set_in_layout(False)  # inside the axes: never widens the layout
    return (f"The gain axis is scaled to the effect near zero; losses below {bottom:.1f} pp "
            f"(keep ratios {keeps}, down to {low:.1f} pp) are off scale.")


def _keep_set(cut: Sequence[float], keeps: Iterable[float]) -> str:
    """Short text for the keep ratios ``cut`` out of all ``keeps``: ``p ≤ 0.85`` when they are
    every keep at or below their largest, else at most three of them (``p = 0.5, 0.3, …``)."""
    if not len(cut):
        return ""
    top = max(cut)
    below = sorted({float(k) for k in keeps if k <= top + 1e-12}, reverse=True)
    cut_sorted = sorted({float(k) for k in cut}, reverse=True)
    if len(cut_sorted) > 1 and len(below) == len(cut_sorted) and np.allclose(below, cut_sorted):
        return f"p ≤ {top:g}"
    shown = ", ".join(f"{k:g}" for k in cut_sorted[:3])
    return f"p = {shown}{', …' if len(cut_sorted) > 3 else ''}"


def interval_text(interval: str, level: float = 0.95, n_seeds: int | None = None) -> str:
    """What a band is over, for a caption: ``"95% t-interval over 3 seeds"``, ``"95% paired
    bootstrap interval over the test examples (one seed)"`` or ``"no interval (one seed)"``."""
    seeds = f" {n_seeds} seeds" if n_seeds else " seeds"
    return {"t over seeds": f"{level:.0%} t-interval over{seeds}",
            "bootstrap over examples":
                f"{level:.0%} paired bootstrap interval over the test examples (one seed)",
            "none": "no interval (one seed and no per-example results)"}[interval]


def training_curve_figure(curve: pd.DataFrame, threshold: float | None, chosen: int | None = None):
    """Test accuracy (%) against training epochs (:func:`prunerob.studies.pages.training_curve`), with the
    competence threshold as a dashed line and the epoch count the profile uses marked."""
    return training_curves_figure([("", curve, threshold, chosen)])


def training_curves_figure(panels: Sequence[tuple[str, pd.DataFrame, float | None, int | None]]):
    """:func:`training_curve_figure` with one panel per ``(title, curve, threshold, chosen epochs)``, side
    by side (e.g. one per data set: each has its own threshold and epoch count)."""
    from matplotlib.ticker import MaxNLocator

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(PAGE_WIDTH_IN, 3.4), layout="constrained",
                                 squeeze=False)
        legend: dict[str, Any] = {}
        for ax, (title, curve, threshold, chosen) in zip(axes[0], panels, strict=True):
            d = curve.assign(acc=curve.test_acc.astype(float) * 100.0)
            many = d.seed.nunique() > 1
            sns.lineplot(data=d, x="epoch", y="acc", hue="seed" if many else None, marker="o",
                         markersize=4 if len(d) > 40 else 6, ax=ax, label=None if many else "test accuracy")
            if threshold is not None:
                ax.axhline(100.0 * threshold, color="0.35", linestyle="--", linewidth=1.0,
                           label=f"competence threshold {100 * threshold:.0f}%")
            if chosen is not None:
                ax.axvline(chosen, color="tab:red", linewidth=1.0, alpha=0.7,
                           label=f"profile uses {chosen} epochs" if len(panels) == 1
                           else "epochs the profile uses")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.set_xlabel("training epochs (all training images)")
            ax.set_ylabel("test accuracy (%)")
            if title:
                ax.set_title(title)
            ax.grid(alpha=0.3)
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault("competence threshold" if lab.startswith("competence threshold")
                                  and len(panels) > 1 else lab, h)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=3, frameon=False)
    return fig


def accuracy_grid(df: pd.DataFrame, panels: Sequence[Mapping[str, Any]], *, ncols: int = 2,
                  methods: Sequence[str] | None = None, level: float = 0.95, gain: bool = True,
                  width: float | None = None, row_height: float = ROW_HEIGHT_IN):
    """Accuracy-vs-keep panels, each with its paired-gain companion (:func:`plot_gain_vs_keep`).

    ``panels``: one dict of column filters per panel (e.g. ``{"dataset": "mnist", "attack":
    "fgsm", "eps": 4/255}``) with an optional ``title``. With ``gain`` every row holds one
    accuracy panel and its gain panel; without, ``min(ncols, 2)`` accuracy panels per row. The
    figure is ``width`` (default :data:`PAGE_WIDTH_IN`) inches wide, ``constrained_layout``,
    fonts of :data:`STYLE` (>= 9 pt at the book's content width), one legend below the panels.
    ``fig.caption_notes`` lists sentences that :func:`figure` appends to the caption: what the
    bands are over and, where one example is coarser than an interval, a resolution note.
    """
    n = len(panels)
    if n == 0:
        raise ConfigError("accuracy_grid: no panels to draw (empty result table?)")
    per_row = 1 if gain else min(max(int(ncols), 1), 2, n)
    nrows = math.ceil(n / per_row)
    width = PAGE_WIDTH_IN if width is None else float(width)
    notes: list[str] = []
    intervals: set[str] = set()
    attacked: set[str] = set()  # the attacked-line label of each panel (the legend shows the first)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, 2 if gain else per_row, figsize=(width, row_height * nrows + 0.9),
                                 squeeze=False, layout="constrained")
        for i, spec in enumerate(panels):
            spec = dict(spec)
            title = spec.pop("title", None)
            attack, eps = spec.pop("attack", None), spec.pop("eps", None)
            d = df
            for col, val in spec.items():
                d = d[d[col] == val]
            title = title or ", ".join(str(v) for v in spec.values())
            ax = axes[i, 0] if gain else axes.flat[i]
            _, att, e = _select(d, attack, eps, "accuracy_grid")
            attacked.add(f"{attack_label(att)} {format_eps(e)}")
            plot_accuracy_vs_keep(d, ax, attack=attack, eps=eps, methods=methods, level=level, title=title,
                                  legend=(i == 0))
            if gain:
                out = plot_gain_vs_keep(d, axes[i, 1], attack=attack, eps=eps, methods=methods, level=level,
                                        title="paired gain vs unpruned (p = 1)")
                intervals.add(out["interval"])
                if out["note"]:
                    notes.append(f"{title}: {out['note']}")
        for ax in list(axes.flat)[n * (2 if gain else 1):]:
            ax.set_visible(False)
        first = axes.flat[0]
        handles, labels = first.get_legend_handles_labels()
        if len(attacked) > 1:  # panels attack differently: name the dashed line generically
            labels = ["attacked (panel title)" if lab in attacked else lab for lab in labels]
        if gain:
            h2, l2 = axes[0, 1].get_legend_handles_labels()
            extra = [(h, lab) for h, lab in zip(h2, l2, strict=True) if lab.startswith("±")]
            handles, labels = handles + [h for h, _ in extra], labels + [lab for _, lab in extra]
        if first.get_legend() is not None:
            first.get_legend().remove()
        fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    seeds = int(df.seed.nunique()) if "seed" in df.columns else None
    band = (f"Accuracy bands: {interval_text('t over seeds', level, seeds)}." if seeds and seeds > 1
            else "Accuracy: one seed, no band.")
    if gain:
        over = "; ".join(interval_text(i, level, seeds) for i in sorted(intervals))
        band += (" Right panels: paired gain, attacked accuracy at keep p minus at p = 1 for the same "
                 f"seed and test examples, in percentage points; bands: {over}; grey: ±1 test example.")
    fig.caption_notes = [band, *notes]
    return fig


# ----------------------------------------------------------------------------------------------
# captions
# ----------------------------------------------------------------------------------------------
def _fmt_alpha(a: Any) -> str:
    try:
        a = float(a)
    except (TypeError, ValueError):
        return str(a)
    if not math.isfinite(a):
        return "n/a"
    text = format_eps(a)
    if "/" not in text and len(text) > 6:  # a long decimal in tenths of a grey level: 0.2/255 (ε/20)
        k = round(a * 255, 1)
        if k > 0 and math.isclose(k / 255, a, rel_tol=1e-9):
            return f"{k:g}/255"
    return text


def attack_summary(df: pd.DataFrame) -> str:
    """One clause per attack in a sweep table: budget, steps, step size, restarts, attack seeds
    and number of evaluation examples, read from the table's columns (seeds are listed together)."""
    if df is None or df.empty or "attack" not in df.columns:
        return "no attack"
    cols = [c for c in ("attack", "eps", "attack_steps", "attack_alpha", "attack_restarts", "n")
            if c in df.columns]
    parts = []
    for key, grp in df.groupby(cols, sort=True, dropna=False):
        r = dict(zip(cols, key if isinstance(key, tuple) else (key,), strict=True))
        bits = [f"{attack_label(str(r['attack']))} (L∞, ε = {format_eps(float(r['eps']))}"]
        if pd.notna(r.get("attack_steps", np.nan)):
            st = int(r["attack_steps"])
            bits.append(f"{st} step{'s' if st != 1 else ''}")
        if pd.notna(r.get("attack_alpha", np.nan)):
            bits.append(f"step size {_fmt_alpha(r['attack_alpha'])}")
        if pd.notna(r.get("attack_restarts", np.nan)):
            rs = int(r["attack_restarts"])
            bits.append(f"{rs} restart{'s' if rs != 1 else ''}")
        if "attack_seed" in grp.columns:
            seeds = sorted(int(v) for v in pd.unique(grp["attack_seed"].dropna()))
            if seeds:
                bits.append(f"attack seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
        if pd.notna(r.get("n", np.nan)):
            bits.append(f"n = {int(r['n'])} test images")
        parts.append(", ".join(bits) + ")")
    return "; ".join(dict.fromkeys(parts))


#: caption text of a training precision (:mod:`prunerob.core.precision`; its names, without torch)
PRECISION_TEXT: dict[str, str] = {"fp32": "fp32", "bf16": "bf16 autocast, fp32 master weights"}


def _precision_text(name: str) -> str:
    return PRECISION_TEXT.get(str(name), str(name))


def devices(df: pd.DataFrame | None) -> str:
    """The device(s) recorded in a result table, joined (``unknown`` if none), and the training
    precision of its models (issue 23): ``cpu (1 threads); training precision: fp32``, or per model
    and data set when they differ. Rows without a ``train_precision`` column come from models
    trained in fp32 (the column exists only for other precisions, so fp32 tables are unchanged).
    Attacks run in bf16 (column ``attack_precision``, absent for fp32 attacks) are named too."""
    if df is None or "device" not in getattr(df, "columns", ()):
        text = "unknown"
    else:
        vals = [str(v) for v in pd.unique(df["device"].dropna())]
        text = ", ".join(vals) if vals else "unknown"
    cols_present = getattr(df, "columns", ())
    if df is not None and "attack_precision" in cols_present and df["attack_precision"].notna().any():
        names = ", ".join(sorted(df["attack_precision"].dropna().unique()))
        text = f"{text}; attack gradients in {names} autocast for the rows so marked (judged in fp32)"
    if df is None or "train_precision" not in getattr(df, "columns", ()):
        return f"{text}; training precision: fp32"
    cols = [c for c in ("model", "dataset") if c in df.columns]
    pairs = df[cols + ["train_precision"]].fillna({"train_precision": "fp32"}).drop_duplicates()
    if pairs["train_precision"].nunique() <= 1 or not cols:
        names = sorted(pairs["train_precision"].unique()) or ["fp32"]
        return f"{text}; training precision: {', '.join(_precision_text(p) for p in names)}"
    per = "; ".join(f"{' on '.join(str(r[c]) for c in cols)}: {_precision_text(r['train_precision'])}"
                    for _, r in pairs.iterrows())
    return f"{text}; training precision: {per}"


def _source(d: Any) -> str:
    if isinstance(d, str):
        return d
    src = getattr(d, "source", None)
    name = getattr(d, "name", None)
    if src:
        return f"{name}: {src}" if name and name.lower() not in str(src).lower() else str(src)
    return str(d)


def caption(
    title: str,
    *,
    profile: str,
    data: Sequence[Any] | Any,
    epochs: Any,
    seeds: Sequence[int] | int,
    n_eval: Any,
    device: str,
    attacks: pd.DataFrame | str | None = None,
    level: float = 0.95,
    extra: str | None = None,
    stat: str | None = None,
) -> str:
    """Markdown caption naming everything a reader needs to judge the figure.

    ``data``: data sets (their ``.source`` sentence is quoted) or sentences; ``epochs``: a number
    of epochs or a sentence describing the training; ``attacks``: a sweep
    table (summarised by :func:`attack_summary`) or a sentence; ``seeds``: the seeds averaged
    (the caption says mean and band level, or that a single run is shown; ``stat`` replaces that
    sentence when the figure shows something else, e.g. one curve per seed).
    """
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    data = data if isinstance(data, (list, tuple)) else [data]
    srcs = "; ".join(dict.fromkeys(_source(d) for d in data))
    stat_ = ""
    if len(seeds) > 1:
        stat_ = (f"lines: mean over {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
                f"bands: {level:.0%} t-interval over seeds")
    elif seeds:
        stat_ = f"one run (seed {seeds[0]}), no confidence band"
    if stat is not None:
        stat_ = stat
    att = attack_summary(attacks) if isinstance(attacks, pd.DataFrame) else attacks
    train = f"{epochs} epoch{'s' if epochs != 1 else ''}" if isinstance(epochs, int) else str(epochs)
    parts = [f"**{title}.**", f"Profile `{profile}`.", f"Data: {srcs}.", f"Training: {train}.",
             f"{stat_[0].upper()}{stat_[1:]}." if stat_ else "", f"Evaluation examples: {n_eval}."]
    if att:
        parts.append(f"Attacks: {att}.")
    parts.append(f"Device: {device}.")
    if extra:
        parts.append(extra)
    return " ".join(p for p in parts if p)


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _render(fig, fmt: str, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None} if fmt == "png" else {"Date": None})
    return buf.getvalue()


def save_figure(fig, out_dir: str | os.PathLike, name: str, formats: Iterable[str] = ("png", "svg"),
                dpi: int = DPI) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.png`` (``dpi``, default 200) and ``.svg``, each written to a
    temporary file and renamed, at the figure's own size (no tight cropping: a figure sized for
    the page stays that size)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(_render(fig, fmt, dpi))
        os.replace(tmp, path)
        paths.append(path)
    return paths


def figure(fig, name: str, caption: str, out_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Save and glue a numbered book figure, then close it.

    Writes ``out_dir/name.png`` (200 dpi) and ``out_dir/name.svg`` atomically (skipped when
    ``out_dir`` is None), glues the PNG under ``name`` and the caption (Markdown, with the
    figure's ``caption_notes`` appended: what the bands are over, resolution notes) under
    ``name + "_caption"`` (``myst_nb.glue(..., display=False)``). A later Markdown cell shows it
    as a numbered figure that prose can cite with ``{numref}`fig-...```::

        ```{glue:figure} magnitude-mlp-fgsm-pgd
        :name: fig-magnitude-mlp-fgsm-pgd

        {glue:md}`magnitude-mlp-fgsm-pgd_caption`
        ```

    Returns ``{"png": path | None, "svg": path | None, "caption": full caption}``.
    """
    from IPython.display import Image, Markdown

    if not _NAME.match(name):
        raise ConfigError(f"figure name {name!r}: use letters, digits, '-' and '_' "
                          "(e.g. 'magnitude-mlp-fgsm-pgd')")
    notes = [s for s in getattr(fig, "caption_notes", []) if s not in caption]
    text = " ".join([caption.strip(), *notes])
    paths = {"png": None, "svg": None}
    if out_dir is not None:
        paths.update(zip(("png", "svg"), save_figure(fig, out_dir, name), strict=True))
    png = paths["png"].read_bytes() if paths["png"] is not None else _render(fig, "png", DPI)
    glue(name, Image(data=png, format="png"))
    glue(f"{name}_caption", Markdown(text))
    plt.close(fig)
    return {**paths, "caption": text}


def placeholder_figure(text: str):
    """A one-line figure saying why a numbered figure has no panels in this run (e.g. a part not run
    in the profile), so that its glued number and caption still exist and the page builds."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 0.8), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    return fig


def grid_or_placeholder(df: pd.DataFrame, panels: Sequence[Mapping[str, Any]], missing: str, *,
                        ncols: int = 2, **kw: Any):
    """:func:`accuracy_grid` of ``panels``, or, when this run has none, :func:`placeholder_figure`
    with the sentence ``missing`` (a part of a page not run in its profile, or a data set left out
    with ``-p datasets``), so that the numbered figure, its glue and its caption still exist."""
    return accuracy_grid(df, panels, ncols=ncols, **kw) if panels else placeholder_figure(missing)


def save_table(df: pd.DataFrame, out_dir: str | os.PathLike, name: str) -> Path:
    """Write ``df`` to ``out_dir/name.csv`` atomically (no index column)."""
    path = Path(out_dir) / f"{name}.csv"
    atomic_write_text(path, df.to_csv(index=False))
    return path


def load_table(path: str | os.PathLike) -> pd.DataFrame | None:
    """Read a result CSV, or ``None`` when it does not exist (the experiment was not run)."""
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


def show(fig, text: str, out_dir: str | os.PathLike | None = None, name: str | None = None) -> None:
    """Display ``fig`` with its caption as Markdown right below it (and save it when ``out_dir``
    and ``name`` are given), then close the figure. Unnumbered; book pages use :func:`figure`."""
    from IPython.display import Image, Markdown, display

    if out_dir is not None and name is not None:
        save_figure(fig, out_dir, name)
    notes = [s for s in getattr(fig, "caption_notes", []) if s not in text]
    display(Image(data=_render(fig, "png", DPI), format="png"))
    display(Markdown(" ".join([text, *notes])))
    plt.close(fig)


def glue(name: str, value: Any) -> Any:
    """``myst_nb.glue(name, value, display=False)`` when myst-nb is installed; returns ``value``."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst-nb is in the book requirements
        return value
    _glue(name, value, display=False)
    return value
