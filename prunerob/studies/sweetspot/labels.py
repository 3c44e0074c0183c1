"""Which cells stronger attacks re-test, and the label each cell gets (paper App. H; issue 13 item 2,
issue 24 item 10). Pandas and numpy only: the findings page relabels the committed tables.

Cells (:func:`select_cells`): the (method, keep, eps) cells of the weak grid (FGSM, PGD-5) with the
largest mean paired gains, whether or not the weak gain is a real gain by the verdict rule, so that a
gain only a stronger attack resolves is still seen.

Label (:func:`label_rule`), per cell; it follows the **strongest attack run** there, AutoAttack where
it was run, else the per-example worst case of PGD-50x5 and transfer (``" (no AutoAttack)"``):

* ``"robustness"``: the gain under that attack holds by the verdict rule (one-sided lower bound,
  Bonferroni over the labelled cells, above 0 and mean gain at least the minimum effect);
* ``"masking"``: the weak grid has a real gain w (:func:`prunerob.studies.sweetspot.grid.flag`, corrected over
  its table) and the strongest attack leaves a mean gain of at most w / 2;
* ``"no gain"``: its one-sided 95% upper bound is below the minimum effect;
* ``"inconclusive"``: otherwise (too few images or seeds to tell);
* ``"untested"``: no strong attack was run at the cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from prunerob.analysis import verdict_rule as rule
from prunerob.config import format_eps

__all__ = ["WEAK", "STRONG_LABELS", "STRONGEST", "select_cells", "label_cells", "label_rule"]

#: attacks of the weak grid
WEAK = ("fgsm", "pgd")
#: attack labels of the strong table, weakest first
STRONG_LABELS = ("pgd-50x5", "transfer", "worst-case", "autoattack")
#: the attacks a label can follow, strongest first
STRONGEST = ("autoattack", "worst-case")


def select_cells(g: pd.DataFrame, max_cells: int, fill: bool = True) -> pd.DataFrame:
    """The (method, keep, eps) cells of FGSM or PGD-5 with the largest mean paired gains, at most
    ``max_cells`` (``fill=False``: real gains only, ``significant_bonf == "gain"``). ``selected`` says
    whether the weak gain is a real gain. Keep 1.0 and eps 0 are never cells."""
    d = g[g.attack.isin(WEAK) & (g.keep_ratio < 1.0) & (g.eps > 0)].copy()
    real = (d.significant_bonf if "significant_bonf" in d else d.significant) == "gain"
    d["selected"] = np.where(real, "largest mean gain; a real gain", "largest mean gain; not a real gain")
    pool = (d if fill else d[real]).sort_values(["gain", "keep_ratio"], ascending=[False, False],
                                                kind="stable")
    pool = pool.drop_duplicates(["method", "keep_ratio", "eps"])
    return pool.head(int(max_cells))[
        ["method", "keep_ratio", "eps", "attack", "gain", "gain_lo", "gain_hi", "significant", "selected"]
    ].reset_index(drop=True)


def _cell(g: pd.DataFrame, method: str, keep: float, eps: float, attack: str) -> pd.Series | None:
    d = g[(g.method == method) & np.isclose(g.keep_ratio, keep) & np.isclose(g.eps, eps)
          & (g.attack == attack)]
    return None if d.empty else d.iloc[0]


def label_cells(weak: pd.DataFrame, strong: pd.DataFrame,
                strong_raw: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell of the strong table: per attack (FGSM, PGD-5, PGD-50x5, transfer, worst-case,
    AutoAttack) ``{a}_gain``, ``{a}_lo`` (one-sided lower bound; strong attacks: Bonferroni over the
    labelled cells, weak attacks: over their table), ``{a}_hi`` (one-sided 95% upper bound,
    uncorrected), ``{a}_flag`` and ``{a}_seeds``; ``strongest`` (the attack the label follows),
    ``transfer_stronger`` and ``label`` (:func:`label_rule`). ``weak`` / ``strong``:
    :func:`prunerob.studies.sweetspot.grid.gains` of the weak grid and of the strong rows; ``strong_raw``: the
    strong rows (for ``transfer_stronger``)."""
    from prunerob.studies.sweetspot.grid import flag

    cells = strong[strong.keep_ratio < 1.0][["method", "keep_ratio", "eps"]].drop_duplicates()
    family = max(1, len(cells))
    out = []
    for c in cells.itertuples():
        row: dict[str, Any] = {"method": c.method, "keep_ratio": c.keep_ratio, "eps": c.eps,
                               "eps_label": format_eps(float(c.eps))}
        for a, src in (*((w, weak) for w in WEAK), *((s, strong) for s in STRONG_LABELS)):
            r = _cell(src, c.method, c.keep_ratio, c.eps, a)
            if r is None:
                row.update({f"{a}_gain": np.nan, f"{a}_lo": np.nan, f"{a}_hi": np.nan, f"{a}_flag": "not run",
                            f"{a}_seeds": 0})
                continue
            fam = int(r.get("family_size", 1)) if a in WEAK else family
            b = rule.bounds(r.gain, r.se, r.df, fam)
            up = rule.bounds(r.gain, r.se, r.df, 1)["upper"]
            lo = float(b["lower"])
            row.update({f"{a}_gain": float(r.gain), f"{a}_lo": lo, f"{a}_hi": float(up),
                        f"{a}_flag": flag(float(r.gain), lo, 2 * float(r.gain) - lo),
                        f"{a}_seeds": int(r.n_seeds)})
        row["strongest"] = next((a for a in STRONGEST if row[f"{a}_flag"] != "not run"), "none")
        row["transfer_stronger"] = _transfer_stronger(strong_raw, c) if strong_raw is not None else False
        row["label"] = label_rule(row)
        out.append(row)
    return pd.DataFrame(out)


def _transfer_stronger(raw: pd.DataFrame, c: Any) -> bool:
    d = raw[(raw.method == c.method) & np.isclose(raw.keep_ratio, c.keep_ratio) & np.isclose(raw.eps, c.eps)]
    m = d.groupby("attack").adv_acc.mean()
    return bool("transfer" in m and "pgd-50x5" in m and m["transfer"] < m["pgd-50x5"])


def label_rule(row: Mapping[str, Any], min_effect: float = rule.MIN_EFFECT) -> str:
    """The label of one cell from its ``{attack}_flag`` / ``_gain`` / ``_hi`` fields (module docstring)."""
    strongest = next((a for a in STRONGEST if row.get(f"{a}_flag", "not run") != "not run"), None)
    if strongest is None:
        return "untested"
    gain = float(row.get(f"{strongest}_gain", np.nan))
    hi = float(row.get(f"{strongest}_hi", np.nan))
    weak = [float(row[f"{a}_gain"]) for a in WEAK if row.get(f"{a}_flag") == "gain"]
    if row.get(f"{strongest}_flag") == "gain":
        label = "robustness"
    elif weak and not gain > max(weak) / 2:
        label = "masking"
    elif np.isfinite(hi) and hi < min_effect:
        label = "no gain"
    else:
        label = "inconclusive"
    return label + ("" if strongest == "autoattack" else " (no AutoAttack)")
