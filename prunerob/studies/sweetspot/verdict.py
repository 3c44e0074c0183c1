"""The verdict section of the sweet-spot chapter, computed from its tables (issue 13 item 6).

Rule, stated on the page:

0. EVIDENCE only when the main MNIST MLPs (the paper's recipe, App. I) reach the clean accuracy of
   :mod:`prunerob.analysis.competence`; otherwise the verdict opens with **Not evidence** and names the
   gap, and everything after it only exercises the pipeline.
1. A REAL GAIN is a cell of the weak-attack grid (FGSM or PGD-5; any rule, training, width, eps,
   keep < 1) whose paired gain holds by the verdict rule of :mod:`prunerob.analysis.verdict_rule` with its
   table as the family searched (``significant_bonf`` of :func:`prunerob.studies.sweetspot.grid.bonferroni`:
   one-sided lower bound, Bonferroni over the table's cells, above 0, and mean gain at least the
   minimum effect). The count of uncorrected flags is given beside it, and whether every cell's
   upper bound excludes the minimum effect (the rule's "fails"). The largest real gain is reported
   with its bounds; without one, the largest mean gain.
2. STRONGER ATTACKS are reported at the cells they were run on, which are the largest mean gains
   whether or not the weak gain is real (:func:`prunerob.studies.sweetspot.labels.select_cells`), each with
   its gain under every attack and the label of :func:`prunerob.studies.sweetspot.labels.label_rule`, which
   follows the strongest attack run there (AutoAttack, else the worst case).
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
from prunerob.analysis import verdict_rule as rule
from prunerob.analysis.stats import gain_text, pct, pp
from prunerob.config import format_eps
from prunerob.studies.sweetspot.grid import combine, gains
from prunerob.studies.sweetspot.labels import STRONG_LABELS, WEAK, label_cells

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

#: the tables of ``results/sweet_spot`` that :func:`from_tables` reads (the sweeps and the strong rows
#: are re-decided by the current rule; the ``gains_*`` and ``strong_labels`` tables only without them)
TABLES = ("sweep_main", "sweep_rules", "sweep_training", "strong_rows", "gains_main", "gains_rules",
          "gains_training", "gains_strong", "strong_labels", "pitfall_shapes", "mechanism_correlation",
          "models", "run_info")

#: paper figures of the MLP on MNIST at eps = 4/255, magnitude pruning, by attack
FIGURES = {"fgsm": "Fig. 2 (MLP panel)", "pgd": "Fig. 8 (MLP panel)"}
PAPER_EPS = 4 / 255


def real_gains(g: pd.DataFrame) -> pd.DataFrame:
    """Cells of ``g`` (:func:`prunerob.studies.sweetspot.grid.gains`) whose gain holds by the rule with their
    table as the family (``significant_bonf == "gain"``), largest first."""
    flag = g.significant_bonf if "significant_bonf" in g.columns else g.significant
    d = g[(flag == "gain") & (g.keep_ratio < 1.0)]
    return d.sort_values(["gain", "keep_ratio"], ascending=[False, False], kind="stable")


def _real(r: Mapping[str, Any]) -> str:
    if r.get("significant_bonf", r.get("significant")) == "gain":
        return "a real gain"
    return f"not a real gain; uncorrected flag: {r.get('significant', 'none')}"


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
    d = g[(g.keep_ratio < 1.0) & (g.eps > 0)].sort_values(["gain", "keep_ratio"], ascending=[False, False],
                                                          kind="stable")
    return [
        f"- {r[by]}: largest gain at {describe_cell(r)}: {gain_text(r)} ({_real(r)})"
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
        best = d.sort_values(["gain", "keep_ratio"], ascending=[False, False], kind="stable").iloc[0]
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
    eff = rule.pp2(rule.MIN_EFFECT)
    line = (f"**Real gains.** {len(hits)} of {len(cells)} (rule, training, width, attack, eps, keep < 1) "
            "cells have a gain that holds by the verdict rule with its table as the family searched "
            "(one-sided lower bound, Bonferroni over the table's cells, above 0, and mean gain at least "
            f"{eff}")
    if "family_size" in cells.columns:
        fam = ", ".join(str(int(v)) for v in cells.family_size.dropna().unique())
        line += f"; families of {fam} cells"
    n_flag = int((cells.significant == "gain").sum())
    line += (f"). Uncorrected, {n_flag} cell{'s are' if n_flag != 1 else ' is'} flagged (one-sided 95% per "
             "cell: up to 5% of the cells by chance alone).")
    if "upper" in cells.columns:
        up = cells.upper.astype(float)
        open_ = int((~(up < rule.MIN_EFFECT)).sum())
        if open_ == 0:
            line += (f" Every cell's one-sided 95% upper bound is below {eff}: by the rule the grid "
                     f"**fails** to show a gain of {eff} anywhere (largest upper bound "
                     f"{rule.pp2(up.max())}).")
        else:
            line += (f" The upper bounds of {open_} cells do not exclude {eff}, so the grid does not fail "
                     "either.")
    return line


def _strong_lines(labels: pd.DataFrame) -> list[str]:
    """One line per labelled cell: its gain under the attack the label follows, then the others."""
    out = []
    names = {"fgsm": "FGSM", "pgd": "PGD-5", "autoattack": "AutoAttack"}
    for r in labels.to_dict("records"):
        eps = r.get("eps_label", format_eps(float(r["eps"])))
        head = f"- {r['method']}, keep {r['keep_ratio']:g}, eps {eps}"
        s = r.get("strongest", "none")
        if s in (None, "none") or f"{s}_gain" not in r:
            out.append(f"{head}: **{r['label']}**.")
            continue
        main = (f"{names.get(s, s)} {rule.pp2(r[f'{s}_gain'])} (lower bound {rule.pp2(r[f'{s}_lo'])}, "
                f"corrected over {len(labels)} cells; upper {rule.pp2(r[f'{s}_hi'])}; "
                f"{int(r[f'{s}_seeds'])} seeds)")
        rest = ", ".join(f"{names.get(a, a)} {rule.pp2(r[f'{a}_gain'])}" for a in (*WEAK, *STRONG_LABELS)
                         if a != s and r.get(f"{a}_flag", "not run") != "not run")
        out.append(f"{head}: **{r['label']}** by {main}; " + (f"other attacks: {rest}." if rest else "."))
    return out


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
    strong-attack ``labels`` (:func:`prunerob.studies.sweetspot.labels.label_cells`), the pitfall ``shapes``,
    the mechanism correlations ``mech`` and the ``models`` table (competence, rule 0); ``main``
    selects the paper's setting in ``g`` for the figure lines (e.g.
    ``{"train_epochs": 30, "width": 512}``)."""
    cells = g[(g.keep_ratio < 1.0) & (g.eps > 0)]
    hits = real_gains(cells)
    out = [evidence(models)[1], _count_line(cells, hits)]
    if not hits.empty:
        top = hits.iloc[0]
        out.append(f"The largest real gain: {describe_cell(top)}: {gain_text(top)}; under stronger attacks: "
                   f"**{_label_of(labels, top, main)}**.")
        where = hits.groupby(["method", "attack"]).eps.agg(
            lambda e: ", ".join(format_eps(v) for v in sorted(set(e)))
        )
        out.append(
            "Where: " + "; ".join(f"{m} / {a.upper()} at eps {e}" for (m, a), e in where.items()) + "."
        )
    elif len(cells):
        best = cells.sort_values(["gain", "keep_ratio"], ascending=[False, False], kind="stable").iloc[0]
        out.append(
            f"The largest mean paired gain, not a real gain: {describe_cell(best)}: {gain_text(best)}; under "
            f"stronger attacks: {_label_of(labels, best, main)}."
        )
    if labels is not None and not labels.empty:
        counts = labels.label.value_counts()
        out.append(
            "**Stronger attacks** at the cells with the largest mean weak gains (whether or not real; the "
            "label follows the strongest attack run at the cell, label rule in the strong-attack section): "
            + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".\n" + "\n".join(_strong_lines(labels))
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


def _sweeps(t: Mapping[str, pd.DataFrame | None]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The weak-grid gains and the strong labels re-decided by the current rule from the committed
    sweeps and strong rows (per-example bits); the written ``gains_*`` / ``strong_labels`` tables where
    the sweeps are missing."""
    parts = [gains(t[n]) if t.get(n) is not None else t.get(f"gains_{n[6:]}")
             for n in ("sweep_main", "sweep_rules", "sweep_training")]
    parts = [p for p in parts if p is not None]
    g = combine(*parts) if parts else None
    labels = t.get("strong_labels")
    raw = t.get("strong_rows")
    if raw is not None and g is not None:
        weak = combine(*(gains(t[n]) for n in ("sweep_main", "sweep_rules") if t.get(n) is not None))
        labels = label_cells(weak, gains(raw), raw)
    return g, labels


def from_tables(folder: str | os.PathLike) -> str:
    """The verdict of :func:`verdict` recomputed from the committed tables of the chapter (``folder``:
    ``results/sweet_spot``; :data:`TABLES`), headed by the profile, seeds and device they come from.
    The weak grid and the strong-attack labels are re-decided by the current rule from the sweeps'
    per-example bits; the pitfall shapes and mechanism correlations are read as written."""
    folder = Path(folder)
    t = {n: pd.read_csv(folder / f"{n}.csv") if (folder / f"{n}.csv").is_file() else None for n in TABLES}
    if t["gains_main"] is None and t["sweep_main"] is None:
        return f"No sweet-spot tables under `{folder}`: the chapter has not been run."
    info = t["run_info"].iloc[0] if t["run_info"] is not None else pd.Series(dtype=object)
    head = (
        f"From the committed tables of the `{info.get('profile', 'unknown')}` profile "
        f"(MNIST MLP, {info.get('epochs', '?')} epochs, seeds {info.get('seeds', '?')}, "
        f"device {info.get('device', '?')}):"
    )
    g, labels = _sweeps(t)
    main = {"train_epochs": int(info["epochs"]), "width": 512} if "epochs" in info else None
    notes = (f"**CIFAR-10.** {info['cnn_note']}",) if isinstance(info.get("cnn_note"), str) else ()
    body = verdict(g, labels, t["pitfall_shapes"], t["mechanism_correlation"], main, notes,
                   models=t["models"])
    return head + "\n\n" + body
