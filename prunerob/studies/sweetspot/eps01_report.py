"""The statistics and the verdict of the page ``eps01_gain`` from its tables (issue 27), torch-free.

**The verdict for ε ≈ 0.1** (:func:`verdict`), by the verdict rule in force
(:mod:`prunerob.analysis.verdict_rule`): the primary setting is magnitude pruning (per layer), PGD-5,
ε = ``verdict_eps`` (0.1) on all test images, its family the pruned keeps of the grid (Bonferroni over
them). It *holds* only when the PGD-5 gain holds there and the AutoAttack gain also holds on the fixed
subset at the keeps chosen for it (:func:`best_keeps`: the largest PGD-5 gains at that ε). That choice
is made on the PGD-5 results of the same images (the subset is the first images of the PGD-5 set), so
the AutoAttack (and PGD-50x5) verdict is corrected by Bonferroni over the candidate keeps run there
(the family of its own :func:`prunerob.analysis.verdict_rule.keep_table`). The neighbouring budgets,
global magnitude and random pruning are decided by the same rule, each with its own family, and
reported beside the verdict without changing it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunerob.analysis import power as power_mod
from prunerob.analysis import security, stats
from prunerob.analysis import verdict_rule as rule
from prunerob.analysis.verdicts import upper_level_text
from prunerob.config import ConfigError, format_eps
from prunerob.core.subsets import permutation_prefix

__all__ = [
    "POWER_SOURCE",
    "POWER_CELL",
    "MIN_SEEDS",
    "power",
    "seeds_for_cpu",
    "setting",
    "decide",
    "best_keeps",
    "decisions",
    "verdict",
    "violation_table",
    "shift_tests",
    "curve_table",
    "SHIFT_LABEL",
]

SHIFT_LABEL = "pruned minus unpruned minimal L-inf distance (FAB-T), per example"
#: the committed table whose per-seed gains size the run (relative to the repository root), and its cell
POWER_SOURCE = "book/experiments/results/sweet_spot/sweep_main.csv"
POWER_CELL: dict[str, Any] = {"method": "magnitude", "keep": 0.5, "eps": 0.1, "attack": "pgd"}
#: the fewest seeds the page runs in the cpu profile (issue 27), whatever the power calculation says
MIN_SEEDS = 15


def power(family: int, at: Sequence[int] = ()) -> power_mod.Power:
    """The power calculation of the page (:func:`prunerob.analysis.power.power_from_table`) on
    :data:`POWER_CELL` of the committed :data:`POWER_SOURCE`, ``family`` = the pruned keeps searched."""
    path = Path(__file__).resolve().parents[3] / POWER_SOURCE
    if not path.is_file():
        raise ConfigError(
            f"the power calculation reads the committed sweet-spot table {POWER_SOURCE}, "
            "which this checkout lacks"
        )
    c = POWER_CELL
    src = (
        f"`{POWER_SOURCE}` (magnitude, keep {c['keep']:g}, ε = {format_eps(c['eps'])}, PGD-5; the "
        "sweet-spot chapter's main grid)"
    )
    return power_mod.power_from_table(pd.read_csv(path), family=family, at=at, source=src, **c)


def seeds_for_cpu(family: int) -> int:
    """The cpu profile's seed count: ``max(MIN_SEEDS, seeds needed)`` (:func:`power`)."""
    need = power(family).seeds_needed
    return max(MIN_SEEDS, int(need)) if math.isfinite(need) else MIN_SEEDS


def setting(rows: pd.DataFrame, method: str, attack: str, eps: float) -> pd.DataFrame:
    """The rows of one (method, attack, ε)."""
    if rows is None or rows.empty:
        return pd.DataFrame()
    return rows[(rows.method == method) & (rows.attack == attack) & np.isclose(rows.eps.astype(float), eps)]


def decide(rows: pd.DataFrame, method: str, attack: str, eps: float) -> rule.Decision:
    """:func:`prunerob.analysis.verdict_rule.decide` on one setting (family: its pruned keeps)."""
    s = setting(rows, method, attack, eps)
    return rule.decide(rule.keep_table(s)) if len(s) else rule.Decision("inconclusive", "not run")


def best_keeps(rows: pd.DataFrame, method: str, attack: str, eps: float, k: int) -> list[float]:
    """The ``k`` pruned keeps with the largest pooled paired gains of one setting, best first (ties
    to less pruning, :func:`prunerob.analysis.verdict_rule.best_index`)."""
    t = rule.keep_table(setting(rows, method, attack, eps))
    pr = t[~np.isclose(t.keep_ratio, t.baseline_keep)].reset_index(drop=True) if len(t) else t
    out: list[float] = []
    while len(out) < min(k, len(pr)):
        left = pr[~pr.keep_ratio.isin(out)]
        out.append(float(left.keep_ratio.iloc[rule.best_index(left.keep_ratio, left.gain)]))
    return out


def decisions(
    pgd: pd.DataFrame,
    strong: pd.DataFrame,
    *,
    methods: Sequence[str],
    eps_grid: Sequence[float],
    strong_attack: str,
    alpha: float = rule.ALPHA,
) -> pd.DataFrame:
    """One row per (method, attack, ε) decided: ``method``, ``attack``, ``eps``, ``n``, ``n_seeds``,
    ``keeps`` (pruned keeps searched = the family), ``verdict``, ``keep``, ``gain`` and its
    ``lower`` (corrected) / ``upper`` bounds at the reported keep, ``reason``, ``number``. ``alpha``:
    the level of every test (:func:`prunerob.analysis.verdicts.level`: lower where the seeds were raised
    after an open verdict)."""
    out = []
    todo = [(m, "pgd", float(e), pgd) for m in methods for e in eps_grid]
    if strong is not None and len(strong):
        todo += [
            (m, a, float(e), strong)
            for a in (strong_attack, "autoattack")
            for m in methods
            for e in sorted(set(strong.eps.astype(float)))
        ]
    for m, a, e, rows in todo:
        s = setting(rows, m, a, e)
        if s.empty:
            continue
        t = rule.keep_table(s, alpha=alpha)
        d = rule.decide(t, alpha=alpha)
        r = t[np.isclose(t.keep_ratio, d.keep)].iloc[0] if np.isfinite(d.keep) else None
        out.append(
            {
                "method": m,
                "attack": a,
                "eps": e,
                "eps_label": format_eps(e),
                "n": int(s.n.max()),
                "n_seeds": int(s.seed.nunique()),
                "keeps": int((t.keep_ratio < t.baseline_keep).sum()),
                "verdict": d.verdict,
                "keep": d.keep,
                "gain": float(r.gain) if r is not None else math.nan,
                "lower": float(r.lower) if r is not None else math.nan,
                "upper": float(r.upper) if r is not None else math.nan,
                "seeds_needed": d.seeds_needed,
                "reason": d.reason,
                "number": upper_level_text(d.number, alpha),  # 97.5%, not keep_text's "98%"
            }
        )
    return pd.DataFrame(out)


def _row(dec: pd.DataFrame, method: str, attack: str, eps: float) -> Mapping[str, Any] | None:
    if dec.empty:
        return None
    r = dec[(dec.method == method) & (dec.attack == attack) & np.isclose(dec.eps, eps)]
    return None if r.empty else r.iloc[0].to_dict()


def verdict(
    dec: pd.DataFrame,
    *,
    eps: float,
    strong_attack: str,
    chosen: Sequence[float],
    others: Sequence[str] = ("magnitude_global", "random"),
    looks: str = "",
) -> tuple[str, str]:
    """``(verdict, text)`` for ε ≈ ``eps`` from :func:`decisions` (module docstring); ``looks``: the
    words of :func:`prunerob.analysis.verdicts.level`, said after the verdict where not empty."""
    e = format_eps(eps)
    p = _row(dec, "magnitude", "pgd", eps)
    if p is None:
        return "inconclusive", f"**Verdict for ε = {e}: inconclusive** (not run)."
    aa = _row(dec, "magnitude", "autoattack", eps)
    if p["verdict"] == "holds":
        if aa is None:
            v, why = "inconclusive", "the PGD-5 gain holds, but AutoAttack was not run"
        elif aa["verdict"] == "holds":
            v, why = "holds", "the PGD-5 gain holds and survives AutoAttack"
        else:
            v, why = (
                "inconclusive",
                (
                    f"the PGD-5 gain holds, but not under AutoAttack ({aa['verdict']}: "
                    f"{aa['reason']}): masking, or too few images or seeds"
                ),
            )
    else:
        v, why = p["verdict"], f"PGD-5: {p['reason']}"
    lines = [
        f"**Verdict for ε = {e} (magnitude pruning, MNIST MLP): {v}**: {why}{f'; {looks}' if looks else ''}.",
        f"- PGD-5, {p['n_seeds']} seeds × {p['n']} images, {p['keeps']} pruned keeps (Bonferroni over them): "
        f"{p['number']}.",
    ]
    if aa is not None:
        lines.append(
            f"- AutoAttack, {aa['n_seeds']} seeds × {aa['n']} images, at the {len(chosen)} keeps with "
            f"the largest PGD-5 gains ({', '.join(f'{k:g}' for k in chosen)}; chosen on PGD-5 results of "
            f"the same images, so Bonferroni over these {len(chosen)}): **{aa['verdict']}**, "
            f"{aa['number']}."
        )
    st = _row(dec, "magnitude", strong_attack, eps)
    if st is not None:
        lines.append(f"- PGD-50x5 at the same keeps and images: **{st['verdict']}**, {st['number']}.")
    for m in others:
        r = _row(dec, m, "pgd", eps)
        if r is not None:
            extra = ""
            for a, lab in ((strong_attack, "PGD-50x5"), ("autoattack", "AutoAttack")):
                q = _row(dec, m, a, eps)
                if q is not None:
                    extra += f"; {lab}: **{q['verdict']}** ({rule.pp2(q['gain'])} at keep {q['keep']:g})"
            lines.append(f"- {m}, PGD-5: **{r['verdict']}**, {r['number']}{extra}.")
    near = dec[(dec.method == "magnitude") & (dec.attack == "pgd") & ~np.isclose(dec.eps, eps)]
    if len(near):
        lines.append(
            "- Neighbouring budgets, magnitude, PGD-5 (each its own family; reported, not part of the "
            "verdict): "
            + "; ".join(
                f"ε = {r.eps_label}: {r.verdict} ({rule.pp2(r.gain)} at keep {r.keep:g})"
                for r in near.itertuples()
            )
            + "."
        )
    return v, "\n".join(lines)


_SUBSET = re.compile(r"^randperm\(seed=(\d+)\)\[:(\d+)\] of (\d+)")


def _on_images_of(q: Any, r: Any) -> np.ndarray:
    """The correctness bits of attack row ``q`` on the images of row ``r`` (FAB-T's: the first ``r.n``
    of a fixed permutation, ``r.eval_subset``), in ``r``'s order. A row on the same permutation holds
    them as its prefix; a row on the whole split in stored order
    (:func:`prunerob.core.subsets.select_examples` with ``n`` = all) is indexed by the permutation."""
    bits = stats.decode_bits(q.adv_bits, int(q.n))
    n = int(r.n)
    if str(getattr(q, "eval_subset", "")).startswith("all "):
        m = _SUBSET.match(str(getattr(r, "eval_subset", "")))
        if m is None:
            raise ConfigError(f"cannot place the images of {getattr(r, 'eval_subset', '?')!r} in a "
                              "stored-order row")
        seed, k, total = (int(g) for g in m.groups())
        if total != int(q.n) or k != n:
            raise ConfigError(f"the row covers {q.n} images, the subset {k} of {total}")
        return bits[permutation_prefix(total, n, seed).numpy()]
    return bits[:n]


def _attacks_on(attacked: pd.DataFrame, r: Any, method: str, attacks: Sequence[str]) -> list[Any]:
    """The rows of ``attacked`` (one of ``attacks``, ``method``, FAB row ``r``'s seed and keep, mask
    draw 0) that cover ``r``'s images (at least ``r.n`` of them)."""
    rows = attacked[
        (attacked.method == method)
        & (attacked.seed == r.seed)
        & np.isclose(attacked.keep_ratio, r.keep_ratio)
        & attacked.attack.isin(attacks)
    ]
    if "mask_draw" in rows:
        rows = rows[rows.mask_draw == 0]
    return [q for q in rows.itertuples() if int(q.n) >= int(r.n)]


def violation_table(
    fab_rows: pd.DataFrame, pgd: pd.DataFrame, *, method: str, tol: float, attacks: Sequence[str] = ("pgd",)
) -> pd.DataFrame:
    """Per (seed, keep, attack, ε): examples the attack broke at ε (among the FAB images: the first
    ``n`` of the attack's rows, the same permutation) and how many of them have a FAB distance above
    ``ε + tol`` (:func:`prunerob.analysis.security.violations`)."""
    out = []
    for r in fab_rows.itertuples():
        d = security.unpack(r.distances, int(r.n))
        for q in _attacks_on(pgd, r, method, attacks):
            ok = _on_images_of(q, r)
            out.append(
                {
                    "seed": int(r.seed),
                    "keep_ratio": float(r.keep_ratio),
                    "attack": q.attack,
                    "eps": float(q.eps),
                    "eps_label": format_eps(float(q.eps)),
                    "n": int(r.n),
                    "broken": int((~ok).sum()),
                    "violations": security.violations(d, ok, float(q.eps), tol),
                    "tol": float(tol),
                }
            )
    return pd.DataFrame(out)


def shift_tests(fab_rows: pd.DataFrame, alpha: float = rule.ALPHA) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per_seed, pooled)``: per pruned keep and seed the signed-rank test of
    :data:`SHIFT_LABEL` (:func:`prunerob.analysis.security.signed_rank`), and per keep the pooled
    tests (:func:`prunerob.analysis.security.pool`), with a Bonferroni-corrected ``p_t_corrected``
    over the pruned keeps."""
    per, pooled = [], []
    dense = {
        int(r.seed): security.unpack(r.distances, int(r.n))
        for r in fab_rows[np.isclose(fab_rows.keep_ratio, 1.0)].itertuples()
    }
    keeps = sorted({float(k) for k in fab_rows.keep_ratio if not np.isclose(k, 1.0)}, reverse=True)
    for k in keeps:
        pairs = [
            (int(r.seed), security.unpack(r.distances, int(r.n)), dense[int(r.seed)])
            for r in fab_rows[np.isclose(fab_rows.keep_ratio, k)].itertuples()
            if int(r.seed) in dense
        ]
        if not pairs:
            continue
        t = security.paired_shift(pairs).assign(keep_ratio=k)
        per.append(t)
        pooled.append({"keep_ratio": k, **security.pool(t, alpha), **_pool_z(t.z.to_numpy(float), alpha)})
    p = pd.DataFrame(pooled)
    if len(p):
        p["p_tz_corrected"] = np.minimum(1.0, p.p_tz * len(p))
        p["direction"] = [
            ("pruned farther" if r.mean_z > 0 else "pruned closer") if r.p_tz_corrected < alpha
            else "no shift resolved" for r in p.itertuples()
        ]
    return (pd.concat(per, ignore_index=True) if per else pd.DataFrame()), p


def _pool_z(z: np.ndarray, alpha: float) -> dict[str, float]:
    """The primary pooled test: a one-sample t-test over seeds of the per-seed signed-rank z-scores
    (seeds are the units; each z is a standardised, tie- and censoring-aware paired shift). The
    per-seed *median* shift is no statistic here: where PGD sets the distance it sits on the budget
    grid, so most per-example differences are 0 and so is every median."""
    s = len(z)
    m = float(np.mean(z))
    sd = float(np.std(z, ddof=1)) if s > 1 else math.nan
    se = sd / math.sqrt(s) if s > 1 else math.nan
    tz = m / se if s > 1 and se > 0 else math.nan
    half = float(_st.t.ppf(1 - alpha / 2, s - 1)) * se if s > 1 else math.nan
    p = float(2 * _st.t.sf(abs(tz), s - 1)) if np.isfinite(tz) else math.nan
    return {"mean_z": m, "z_lo": m - half, "z_hi": m + half, "t_z": tz, "p_tz": p}


def shift_text(pooled: pd.DataFrame, alpha: float = rule.ALPHA) -> str:
    """The pooled distance tests in words, one line per keep."""
    if pooled.empty:
        return "No distance test (FAB not run)."
    lines = []
    for r in pooled.itertuples():
        ci = (f"{r.mean_z:+.2f} (95% CI {r.z_lo:+.2f} to {r.z_hi:+.2f})" if np.isfinite(r.z_lo)
              else f"{r.mean_z:+.2f}")
        lines.append(
            f"- keep {r.keep_ratio:g}: mean over {r.n_seeds} seeds of the per-seed signed-rank z {ci}; "
            f"t-test over seeds p = {r.p_tz:.2g} uncorrected, {r.p_tz_corrected:.2g} corrected "
            f"(Bonferroni over {len(pooled)} keeps): **{r.direction}**; mean per-seed median shift "
            f"{r.mean_median:+.4f}; Stouffer z = {r.z_stouffer:+.2f} (p = {r.p_stouffer:.2g}, treats seeds "
            f"as independent); seeds with a significant per-seed Wilcoxon test (p < {alpha:g}, "
            f"uncorrected): {r.n_up} farther, {r.n_down} closer."
        )
    return "\n".join(lines)


def curve_table(fab_rows: pd.DataFrame, eps: Sequence[float]) -> pd.DataFrame:
    """Robust accuracy from the FAB distances at each ε, per keep and seed (the security curves)."""
    return security.curves(fab_rows, eps, by=("keep_ratio",))


def combined_distances(
    fab_rows: pd.DataFrame, attacked: pd.DataFrame, *, method: str, attacks: Sequence[str] = ("pgd",)
) -> pd.DataFrame:
    """``fab_rows`` with each example's distance replaced by the smallest of its FAB-T distance and
    every budget ε at which one of ``attacks`` (rows of ``attacked``: same method, seed and keep, on
    the same first ``n`` images) broke it. Both are radii at which an adversarial example was found,
    so the minimum is still an upper bound on the minimal L∞ distance, and at least as tight as
    either; FAB-T alone can miss what PGD finds (:func:`violation_table` counts that)."""
    out = fab_rows.copy()
    dist = []
    for r in fab_rows.itertuples():
        d = security.unpack(r.distances, int(r.n)).copy()
        for q in _attacks_on(attacked, r, method, attacks):
            broken = ~_on_images_of(q, r)
            d[broken] = np.minimum(d[broken], float(q.eps))
        dist.append(security.pack(d))
    out["distances"] = dist
    out["attack"] = "+".join(["fab", *attacks])
    return out
