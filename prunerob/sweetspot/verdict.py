"""The verdict section of the sweet-spot chapter, computed from its tables (issue 13 item 6).

Rule, stated on the page:

1. A REAL GAIN is a cell of the weak-attack grid (FGSM or PGD-5; any rule, training, width, eps,
   keep < 1) whose paired gain is significant by :func:`prunerob.sweetspot.grid.flag` (95% t-interval
   across seeds above 0 and exact McNemar p < 0.05 in most seeds). The largest one is reported with
   its interval.
2. It SURVIVES AUTOATTACK when its strong-attack label (:func:`prunerob.sweetspot.strong.label_rule`)
   is ``robustness``; ``robustness (PGD-50x5 only)`` and ``masking`` are said as such.
3. FIGURES: the paper's Fig. 2 (MLP, FGSM, eps = 4/255, magnitude, 30 epochs, width 512) and Fig. 8
   (same with PGD) are EXPLAINED by the correct run when it has a real gain there; otherwise the
   verdict names any pitfall whose curve has the Fig. 2 shape
   (:func:`prunerob.sweetspot.pitfalls.fig2_shape`), with its numbers, or says that none does.
4. MECHANISM: the metrics of :func:`prunerob.sweetspot.mechanism.correlate` marked ``supported``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from prunerob.config import format_eps
from prunerob.stats import gain_text, pct, pp

__all__ = ["FIGURES", "real_gains", "describe_cell", "best_lines", "verdict"]

#: paper figures of the MLP on MNIST at eps = 4/255, magnitude pruning, by attack
FIGURES = {"fgsm": "Fig. 2 (MLP panel)", "pgd": "Fig. 8 (MLP panel)"}
PAPER_EPS = 4 / 255


def real_gains(g: pd.DataFrame) -> pd.DataFrame:
    """Cells of ``g`` (:func:`prunerob.sweetspot.grid.gains`) with a significant gain, largest first."""
    d = g[(g.significant == "gain") & (g.keep_ratio < 1.0)]
    return d.sort_values("gain", ascending=False)


def _opt(r: Mapping[str, Any], k: str) -> str:
    v = r.get(k)
    return (
        ""
        if v is None or (isinstance(v, float) and not np.isfinite(v))
        else f", {k.replace('train_', '')} {v:g}"
    )


def describe_cell(r: Mapping[str, Any]) -> str:
    """``"magnitude, FGSM eps=0.1, keep 0.8, epochs 30, width 512"``."""
    return (
        f"{r['method']}, {str(r['attack']).upper()} eps={format_eps(float(r['eps']))}, "
        f"keep {r['keep_ratio']:g}" + _opt(r, "train_epochs") + _opt(r, "width")
    )


def best_lines(g: pd.DataFrame, by: str) -> list[str]:
    """Per value of ``by``: the cell (keep < 1, eps > 0) with the largest mean paired gain, in words."""
    d = g[(g.keep_ratio < 1.0) & (g.eps > 0)].sort_values("gain", ascending=False)
    return [
        f"- {r[by]}: largest gain at {describe_cell(r)}: {gain_text(r)} ({r['significant']})"
        for _, r in d.groupby(by, sort=False).head(1).iterrows()
    ]


def _label_of(labels: pd.DataFrame, r: Mapping[str, Any]) -> str:
    if labels is None or labels.empty:
        return "not tested"
    d = labels[
        (labels.method == r["method"])
        & np.isclose(labels.keep_ratio, r["keep_ratio"])
        & np.isclose(labels.eps, r["eps"])
    ]
    return "not tested" if d.empty else str(d.iloc[0]["label"])


def _figures(g: pd.DataFrame, shapes: pd.DataFrame | None, main: Mapping[str, Any]) -> list[str]:
    lines = []
    for att, fig in FIGURES.items():
        d = g[(g.attack == att) & np.isclose(g.eps, PAPER_EPS) & (g.method == "magnitude")]
        for k, v in main.items():
            if k in d.columns:
                d = d[d[k] == v]
        if d.empty:
            continue
        hit = real_gains(d)
        if not hit.empty:
            lines.append(
                f"- {fig}: the correct run has a real gain at 4/255, largest at keep "
                f"{hit.iloc[0].keep_ratio:g}: {gain_text(hit.iloc[0])}; the figure's sweet spot is explained."
            )
            continue
        best = d.sort_values("gain", ascending=False).iloc[0]
        lines.append(
            f"- {fig}: the correct run has no real gain at 4/255 (best keep {best.keep_ratio:g}: "
            f"{gain_text(best)}); the sweet spot of the figure is not reproduced."
        )
        sh = (
            shapes[(shapes.attack == att) & shapes.fig2_shape & (shapes.pitfall != "correct")]
            if shapes is not None and not shapes.empty
            else pd.DataFrame()
        )
        for r in sh.itertuples():
            lines.append(
                f"  Pitfall {r.label} reproduces the shape: attacked accuracy {pct(r.adv_dense)} unpruned, "
                f"{pct(r.adv_best)} at keep {r.keep_best:g} ({pp(r.gain)}, 95% CI {pp(r.gain_lo)} to "
                f"{pp(r.gain_hi)} over {r.n_seeds} seeds)."
            )
        if shapes is not None and (shapes.attack == att).any() and sh.empty:
            lines.append(f"  None of the pitfalls reproduces the shape under {att.upper()} at 4/255.")
    return lines


def verdict(
    g: pd.DataFrame,
    labels: pd.DataFrame | None,
    shapes: pd.DataFrame | None,
    mech: pd.DataFrame | None,
    main: Mapping[str, Any] | None = None,
    notes: tuple[str, ...] = (),
) -> str:
    """The verdict in Markdown from the weak grid gains ``g`` (all rules / trainings / widths), the
    strong-attack ``labels``, the pitfall ``shapes``, the mechanism correlations ``mech``; ``main``
    selects the paper's setting in ``g`` for the figure lines (e.g.
    ``{"train_epochs": 30, "width": 512}``)."""
    cells = g[(g.keep_ratio < 1.0) & (g.eps > 0)]
    hits = real_gains(cells)
    out = [
        f"**Real gains.** {len(hits)} of {len(cells)} (rule, training, width, attack, eps, keep < 1) "
        "cells have "
        "a significant paired gain (95% interval above 0 and McNemar p < 0.05 in most seeds)."
    ]
    if not hits.empty:
        top = hits.iloc[0]
        out.append(
            f"The largest: {describe_cell(top)}: {gain_text(top)}; under stronger attacks: "
            f"**{_label_of(labels, top)}**."
        )
        where = hits.groupby(["method", "attack"]).eps.agg(
            lambda e: ", ".join(format_eps(v) for v in sorted(set(e)))
        )
        out.append(
            "Where: " + "; ".join(f"{m} / {a.upper()} at eps {e}" for (m, a), e in where.items()) + "."
        )
    else:
        best = cells.sort_values("gain", ascending=False).iloc[0] if len(cells) else None
        if best is not None:
            out.append(
                f"The largest mean paired gain, not significant: {describe_cell(best)}: {gain_text(best)}; "
                f"under stronger attacks: {_label_of(labels, best)}."
            )
    if labels is not None and not labels.empty:
        counts = labels.label.value_counts()
        out.append(
            "**Stronger attacks** at the selected cells: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
            + " (label rule in the strong-attack section)."
        )
    out.append("**The paper's figures.**\n" + "\n".join(_figures(g, shapes, dict(main or {}))))
    if mech is not None and not mech.empty:
        sup = mech[mech.supported]
        txt = ", ".join(f"{r.metric} (Spearman rho {r.rho:+.2f}, p = {r.p:.2g})" for r in sup.itertuples())
        out.append(
            "**Mechanism.** "
            + (
                f"The data support: {txt}."
                if txt
                else "None of the tested mechanisms ("
                + ", ".join(mech.metric)
                + ") correlates with the measured gain as predicted (|rho| >= 0.5, p < 0.05)."
            )
        )
    out.extend(n for n in notes if n)
    return "\n\n".join(out)
