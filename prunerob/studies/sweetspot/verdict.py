"""The verdict section of the sweet-spot chapter, computed from its tables (issue 13 item 6).

Rule, stated on the page:

0. EVIDENCE only when the main MNIST MLPs (the paper's recipe, App. I) reach the clean accuracy of
   :mod:`prunerob.analysis.competence`; otherwise the verdict opens with **Not evidence** and names the
   gap, and everything after it only exercises the pipeline.
1. A REAL GAIN is a cell of the weak-attack grid (FGSM or PGD-5; any rule, training, width, eps,
   keep < 1) whose paired gain is significant by :func:`prunerob.studies.sweetspot.grid.flag` (95% t-interval
   across seeds above 0 and exact McNemar p < 0.05 in most seeds). The largest one is reported with
   its interval. The count is also given after a Bonferroni correction within each table
   (``significant_bonf`` of :func:`prunerob.studies.sweetspot.grid.bonferroni`), and the largest gain says
   whether it survives it.
2. It SURVIVES AUTOATTACK when its strong-attack label (:func:`prunerob.studies.sweetspot.strong.label_rule`)
   is ``robustness`` (significant under the per-example worst case of PGD-50x5 and transfer AND
   under AutoAttack); ``masking``, ``inconclusive`` and ``(no AutoAttack)`` are said as such.
3. FIGURES: the paper's Fig. 2 (MLP, FGSM, eps = 4/255, magnitude, 30 epochs, width 512) and Fig. 8
   (same with PGD) are EXPLAINED by the correct run when it has a real gain there; otherwise the
   verdict names any pitfall whose curve has the Fig. 2 shape
   (:func:`prunerob.studies.sweetspot.pitfalls.fig2_shape`), with its numbers, or says that none does.
4. MECHANISM: the metrics of :func:`prunerob.studies.sweetspot.mechanism.correlate` marked ``supported``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunerob.analysis import competence as C
from prunerob.analysis.stats import gain_text, pct, pp
from prunerob.config import format_eps
from prunerob.studies.sweetspot.grid import combine

__all__ = [
    "FIGURES",
    "contradicted",
    "TABLES",
    "real_gains",
    "describe_cell",
    "best_lines",
    "evidence",
    "verdict",
    "from_tables",
]

#: the tables of ``results/sweet_spot`` that :func:`from_tables` reads
TABLES = ("gains_main", "gains_rules", "gains_training", "strong_labels", "pitfall_shapes",
          "mechanism_correlation", "models", "run_info")

#: paper figures of the MLP on MNIST at eps = 4/255, magnitude pruning, by attack
FIGURES = {"fgsm": "Fig. 2 (MLP panel)", "pgd": "Fig. 8 (MLP panel)"}
PAPER_EPS = 4 / 255


def real_gains(g: pd.DataFrame) -> pd.DataFrame:
    """Cells of ``g`` (:func:`prunerob.studies.sweetspot.grid.gains`) with a significant gain, largest
    first."""
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


def _label_of(labels: pd.DataFrame, r: Mapping[str, Any], main: Mapping[str, Any] | None = None) -> str:
    """The strong-attack label of cell ``r``; strong attacks run on the ``main`` models only, so a
    cell of another training length or width is ``not tested``."""
    other = [k for k, v in dict(main or {}).items() if k in r and pd.notna(r[k]) and r[k] != v]
    if other:
        return "not tested (strong attacks run on the main models only)"
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


def evidence(models: pd.DataFrame | None) -> tuple[bool, str]:
    """``(competent, sentence)`` for the main MLPs in ``models`` (rows with ``role == "main"``
    of :func:`prunerob.studies.sweetspot.models.models_table`), by
    :func:`prunerob.analysis.competence.summary` (rule 0)."""
    if models is None or models.empty:
        return False, "**Not evidence.** No models table: the competence of the models is unknown."
    main = models[models.role == "main"] if "role" in models.columns else models
    summ = C.summary(main).iloc[0]
    head = f"main MNIST MLPs ({int(summ.n_models)} seeds): {summ.competence_label}"
    if bool(summ.competent):
        return True, f"**Evidence.** The {head}, so the numbers below bear on the paper's claim."
    return False, (
        f"**Not evidence.** The {head}. The numbers below only exercise the pipeline and say nothing "
        "about the paper's claim; the `cpu` or `paper` profile trains competent models (30 epochs)."
    )


def _count_line(cells: pd.DataFrame, hits: pd.DataFrame) -> str:
    line = (
        f"**Real gains.** {len(hits)} of {len(cells)} (rule, training, width, attack, eps, keep < 1) "
        "cells have a significant paired gain (95% interval above 0 and McNemar p < 0.05 in most seeds)"
    )
    if "significant_bonf" not in cells.columns:
        return line + "; no multiple-comparison correction was computed."
    nb = int((cells.significant_bonf == "gain").sum())
    fam = ", ".join(str(int(v)) for v in cells.family_size.dropna().unique())
    return line + (
        f"; {nb} of them survive a Bonferroni correction within their table (families of {fam} cells). "
        "The per-cell rule alone expects false flags at a rate of up to 5% of the cells."
    )


def verdict(
    g: pd.DataFrame,
    labels: pd.DataFrame | None,
    shapes: pd.DataFrame | None,
    mech: pd.DataFrame | None,
    main: Mapping[str, Any] | None = None,
    notes: tuple[str, ...] = (),
    models: pd.DataFrame | None = None,
) -> str:
    """The verdict in Markdown from the weak grid gains ``g`` (all rules / trainings / widths), the
    strong-attack ``labels``, the pitfall ``shapes``, the mechanism correlations ``mech`` and the
    ``models`` table (competence, rule 0); ``main`` selects the paper's setting in ``g`` for the
    figure lines (e.g. ``{"train_epochs": 30, "width": 512}``)."""
    cells = g[(g.keep_ratio < 1.0) & (g.eps > 0)]
    hits = real_gains(cells)
    out = [evidence(models)[1], _count_line(cells, hits)]
    if not hits.empty:
        top = hits.iloc[0]
        bonf = top.get("significant_bonf")
        kept = "" if bonf is None else f" ({'survives' if bonf == 'gain' else 'does not survive'} Bonferroni)"
        out.append(
            f"The largest: {describe_cell(top)}: {gain_text(top)}{kept}; "
            f"under stronger attacks: **{_label_of(labels, top, main)}**."
        )
        where = hits.groupby(["method", "attack"]).eps.agg(
            lambda e: ", ".join(format_eps(v) for v in sorted(set(e)))
        )
        out.append(
            "Where: " + "; ".join(f"{m} / {a.upper()} at eps {e}" for (m, a), e in where.items()) + "."
        )
    elif len(cells):
        best = cells.sort_values("gain", ascending=False).iloc[0]
        out.append(
            f"The largest mean paired gain, not significant: {describe_cell(best)}: {gain_text(best)}; "
            f"under stronger attacks: {_label_of(labels, best, main)}."
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
        out.append(_mechanism(mech))
    out.extend(n for n in notes if n)
    return "\n\n".join(out)


def _mechanism(mech: pd.DataFrame) -> str:
    sup = mech[mech.supported.astype(bool)]
    n = int(mech.points.max())
    txt = ", ".join(
        f"{r.metric} (Spearman rho {r.rho:+.2f}, p = {r.p:.2g}; within keep ratio {r.rho_within:+.2f}, "
        f"p = {r.p_within:.2g})"
        for r in sup.itertuples()
    )
    rule = f"across and within keep ratios, |rho| >= 0.5, Bonferroni over {len(mech)} metrics; n = {n} points"
    head = (f"**Mechanism.** The data support ({rule}): {txt}." if txt else
            f"**Mechanism.** None of the tested mechanisms ({', '.join(mech.metric)}) correlates with the "
            f"measured gain as predicted ({rule}).")
    against = contradicted(mech)
    if against.empty:
        return head
    clauses = "; ".join(
        f"{r.metric} (predicted sign {r.expected_sign}, Spearman rho {r.rho:+.2f} across keep ratios, "
        f"p = {r.p:.2g}; within keep ratio {r.rho_within:+.2f}, p = {r.p_within:.2g})"
        for r in against.itertuples())
    return f"{head} Correlated with the gain against its predicted sign, across keep ratios: {clauses}."


def contradicted(mech: pd.DataFrame) -> pd.DataFrame:
    """Rows of a :func:`prunerob.studies.sweetspot.mechanism.correlate` table whose correlation across keep
    ratios has the sign opposite to the prediction, with ``|rho| >= 0.5`` and ``p`` below the
    Bonferroni level: the data speak against that mechanism (e.g. a smaller Lipschitz bound, Thm. 2,
    coming with a smaller gain)."""
    if not {"expected_sign", "rho", "p", "alpha_bonferroni"} <= set(mech.columns):
        return mech.iloc[0:0]
    sign = np.where(mech.expected_sign == "+", 1.0, -1.0)
    bad = (np.sign(mech.rho) == -sign) & (mech.rho.abs() >= 0.5) & (mech.p < mech.alpha_bonferroni)
    return mech[bad.to_numpy()]


def from_tables(folder: str | os.PathLike) -> str:
    """The verdict of :func:`verdict` recomputed from the committed tables of the chapter (``folder``:
    ``results/sweet_spot``; :data:`TABLES`), headed by the profile, seeds and device they come from."""
    folder = Path(folder)
    t = {n: pd.read_csv(folder / f"{n}.csv") if (folder / f"{n}.csv").is_file() else None for n in TABLES}
    if t["gains_main"] is None:
        return f"No sweet-spot tables under `{folder}`: the chapter has not been run."
    info = t["run_info"].iloc[0] if t["run_info"] is not None else pd.Series(dtype=object)
    head = (
        f"From the committed tables of the `{info.get('profile', 'unknown')}` profile "
        f"(MNIST MLP, {info.get('epochs', '?')} epochs, seeds {info.get('seeds', '?')}, "
        f"device {info.get('device', '?')}):"
    )
    g = combine(*(t[n] for n in ("gains_main", "gains_rules", "gains_training")))
    main = {"train_epochs": int(info["epochs"]), "width": 512} if "epochs" in info else None
    notes = (f"**CIFAR-10.** {info['cnn_note']}",) if isinstance(info.get("cnn_note"), str) else ()
    body = verdict(g, t["strong_labels"], t["pitfall_shapes"], t["mechanism_correlation"], main, notes,
                   models=t["models"])
    return head + "\n\n" + body
