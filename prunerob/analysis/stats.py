"""Statistics of the experiment tables (paper Sec. 6, App. H): intervals, paired gains, sweet spots.

Every number the notebooks and the findings page report about a sweep table is computed here, so
the two cannot differ; paired gains and their verdicts come from the one rule of
:mod:`prunerob.analysis.verdict_rule` (stated on the findings page). Result tables follow the results
contract of CONTRIBUTING.md (one row per model, dataset, method, keep_ratio, attack, eps, seed;
accuracies are fractions in [0, 1]). Plotting (:mod:`prunerob.render.plotting`) only draws what these
functions return.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunerob.analysis import verdict_rule as rule
from prunerob.config import ConfigError, format_eps


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile ``t_{(1+level)/2, dof}`` (NaN for ``dof < 1``)."""
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie in (0, 1), e.g. 0.95")
    if dof < 1:
        return math.nan
    return float(_st.t.ppf(0.5 + level / 2.0, dof))


def mean_ci(df: pd.DataFrame, by: str | Sequence[str], value: str, level: float = 0.95) -> pd.DataFrame:
    """Mean of ``value`` per group with a two-sided ``level`` t-interval over the rows (seeds).

    Returns one row per group with the ``by`` columns and ``mean``, ``std`` (sample, ddof=1),
    ``n`` (rows averaged), ``half`` (half-width ``t_{(1+level)/2, n-1} * std / sqrt(n)``),
    ``lo`` and ``hi``. With one row in a group the interval is undefined: ``half``, ``lo`` and
    ``hi`` are NaN (no band is drawn). NaN values are dropped before averaging. ``n_seeds``
    repeats ``n`` under the name of the statistics contract.
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise ConfigError(f"mean_ci: column(s) {missing} not in the table; columns: {list(df.columns)}")
    rows = []
    for key, grp in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        v = grp[value].astype(float).dropna().to_numpy()
        n = int(v.size)
        mean = float(v.mean()) if n else math.nan
        std = float(v.std(ddof=1)) if n > 1 else math.nan
        half = t_quantile(level, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "std": std, "n": n, "half": half,
                     "lo": mean - half, "hi": mean + half, "n_seeds": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "half", "lo", "hi", "n_seeds"])


def accuracy_summary(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over seeds of ``clean_acc`` and ``adv_acc`` per (model, dataset,
    method, keep_ratio, attack, eps): one wide row per group (``clean_mean``, ``clean_lo``, ...)."""
    keys = [c for c in ("model", "dataset", "method", "keep_ratio", "attack", "eps") if c in df.columns]
    out = None
    for value, short in (("clean_acc", "clean"), ("adv_acc", "adv")):
        s = mean_ci(df, keys, value, level).drop(columns="n_seeds").rename(
            columns={c: f"{short}_{c}" for c in ("mean", "std", "n", "half", "lo", "hi")}
        )
        out = s if out is None else out.merge(s, on=keys)
    return out


def pareto_mask(points: Any, maximize: bool | Sequence[bool] = True) -> np.ndarray:
    """Boolean array: ``True`` where a point is non-dominated (Definition 3, App. F).

    ``points`` is ``[n, d]``. With ``maximize=True`` (accuracy space) point ``i`` is dominated
    when some ``j`` is ``>=`` in every coordinate and ``>`` in at least one; ``maximize=False``
    (bound space ``(gamma, zeta)``) flips every coordinate; a sequence gives the direction per
    coordinate. Identical points do not dominate each other. Rows with NaN are never on the front.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise ConfigError(f"points must be a 2-D array [n, d], got shape {p.shape}")
    sign = np.where(np.broadcast_to(np.asarray(maximize, dtype=bool), (p.shape[1],)), 1.0, -1.0)
    q = p * sign
    finite = np.isfinite(q).all(axis=1)
    out = np.zeros(len(q), dtype=bool)
    qf = q[finite]
    if len(qf):
        ge = (qf[None, :, :] >= qf[:, None, :]).all(axis=2)  # ge[i, j]: j >= i everywhere
        gt = (qf[None, :, :] > qf[:, None, :]).any(axis=2)  # gt[i, j]: j > i somewhere
        out[np.flatnonzero(finite)] = ~(ge & gt).any(axis=1)
    return out


#: the grouping of a sweep table into one paired comparison (without the keep ratio)
SETTING = ("model", "dataset", "method", "attack", "eps")


def t_interval(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of a two-sided ``level`` Student-t interval for the mean of ``values``.

    NaN values are dropped. With fewer than two values, or when all values are equal (a
    zero-width interval says nothing about the spread between seeds, it only repeats the
    resolution of the measurement), ``lo`` and ``hi`` are NaN.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size < 2 or float(np.ptp(v)) == 0.0:
        return mean, math.nan, math.nan
    half = t_quantile(level, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half


def decode_bits(hex_str: Any, n: int) -> np.ndarray | None:
    """Per-example correctness from a ``clean_bits`` / ``adv_bits`` cell: the hex string of
    ``np.packbits(bool_vector)`` in evaluation order, first ``n`` entries. ``None`` for a
    missing cell (tables written before the bits were recorded)."""
    if hex_str is None or (isinstance(hex_str, float) and not math.isfinite(hex_str)) or hex_str == "":
        return None
    raw = np.frombuffer(bytes.fromhex(str(hex_str)), dtype=np.uint8)
    bits = np.unpackbits(raw)[: int(n)].astype(bool)
    if bits.size != int(n):
        raise ConfigError(f"bit string holds {bits.size} examples, the row says n = {n}")
    return bits


def mcnemar_exact(after: Any, before: Any) -> tuple[int, int, float]:
    """Exact two-sided McNemar test of paired binary outcomes (same examples, two models).

    Returns ``(n_gain, n_loss, p)``: examples correct only ``after`` (e.g. pruned), examples
    correct only ``before`` (unpruned), and the two-sided binomial p-value of ``n_gain`` out of
    ``n_gain + n_loss`` discordant pairs under success probability 1/2 (1.0 when there are none).
    """
    a, b = np.asarray(after, dtype=bool), np.asarray(before, dtype=bool)
    if a.shape != b.shape:
        raise ConfigError(f"mcnemar_exact: paired vectors differ in shape {a.shape} vs {b.shape}")
    n_gain, n_loss = int((a & ~b).sum()), int((~a & b).sum())
    d = n_gain + n_loss
    p = 1.0 if d == 0 else float(_st.binomtest(n_gain, d, 0.5, alternative="two-sided").pvalue)
    return n_gain, n_loss, p


def paired_bootstrap(after: Any, before: Any, level: float = 0.95, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """``(gain, lo, hi)``: accuracy difference ``mean(after) - mean(before)`` on the same examples
    with a percentile interval from ``n_boot`` resamples of the examples (pairs kept together;
    :func:`prunerob.analysis.verdict_rule.bootstrap`)."""
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    return rule.bootstrap(a - b, level, n_boot, seed)


def _keys(df: pd.DataFrame) -> list[str]:
    return [c for c in SETTING if c in df.columns]


def _need(df: pd.DataFrame, cols: Sequence[str], who: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(f"{who}: column(s) {missing} not in the table; columns: {list(df.columns)}")


def paired_gains(sweep_df: pd.DataFrame, baseline_keep: float = 1.0, level: float = 0.95,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Paired gain in attacked accuracy of every keep ratio against ``baseline_keep`` (Sec. 6.3),
    with the numbers of the verdict rule (:func:`prunerob.analysis.verdict_rule.keep_table`).

    One row per (model, dataset, method, attack, eps, keep_ratio). For each seed the gain is
    ``adv_acc(keep) - adv_acc(baseline_keep)``: the same trained model, the same attack seed and
    the same evaluation examples, pruned against unpruned (stochastic masks: the mean over the
    ``mask_draw`` rows of a seed). Columns:

    * ``gains`` (tuple of per-seed gains), ``seeds``, ``n_seeds``, ``n`` (examples per seed, the
      smallest), ``resolution`` = 1/n (one example), ``n_draws``;
    * ``gain`` (mean over seeds and examples) with the pooled standard error ``se`` (seeds and shared
      test examples) and ``df``; ``gain_lo`` / ``gain_hi``: a two-sided ``level`` interval, pointwise
      and uncorrected (descriptive; over the examples alone with one seed), ``interval`` says over
      what;
    * the rule's one-sided ``lower`` (Bonferroni-corrected over the ``family`` of pruned keeps),
      ``upper`` (uncorrected), ``p`` (uncorrected) and ``p_corrected``;
    * ``p_values`` / ``p_values_loss``: per seed, exact McNemar p-values one-sided toward a gain / a
      loss on the per-example ``adv_bits`` (uncorrected); ``n_significant`` / ``n_significant_loss``:
      seeds with those below ``alpha``; ``test``: ``"mcnemar exact, one-sided"`` or ``"none: no
      per-example bits"``;
    * ``clean_gain`` (mean paired change in clean accuracy).
    """
    _need(sweep_df, ["keep_ratio", "seed", "adv_acc", "clean_acc"], "paired_gains")
    keys = _keys(sweep_df)
    parts = []
    for key, grp in sweep_df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        t = rule.keep_table(grp, baseline_keep=baseline_keep, alpha=alpha, level=level)
        if not t.empty:
            parts.append(t.assign(**dict(zip(keys, key, strict=True))))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out[[*keys, *[c for c in out.columns if c not in keys]]].sort_values(
        [*keys, "keep_ratio"], kind="stable", ignore_index=True)


def sweet_spot(df: pd.DataFrame, level: float = 0.95, baseline_keep: float | None = None) -> pd.DataFrame:
    """Per (model, dataset, method, attack, eps): the keep ratio with the highest mean attacked
    accuracy (the paper's "sweet spot", Sec. 6.3; ties go to less pruning,
    :func:`prunerob.analysis.verdict_rule.best_index`), its paired gain against the densest keep ratio
    (``baseline_keep``, default the largest keep ratio in the table, normally 1.0), and the
    setting's verdict by the rule (:func:`prunerob.analysis.verdict_rule.decide`).

    Columns: ``keep_dense``, ``clean_dense``, ``adv_dense``, ``keep_best``, ``clean_best``,
    ``adv_best`` (means over seeds), ``adv_gain`` with ``adv_gain_lo`` / ``adv_gain_hi`` (two-sided,
    pointwise, uncorrected) and ``interval``, the rule's ``lower`` (corrected) / ``upper`` / ``p`` /
    ``p_corrected`` / ``family`` at that keep, ``p_values``, ``n_significant``,
    ``n_significant_loss`` and ``test`` (per-seed one-sided McNemar, uncorrected), ``clean_drop``
    (mean ``clean(dense) - clean(best)``), ``n_seeds``, ``n``, ``resolution``, and ``verdict``,
    ``verdict_keep`` and ``reason`` of the rule. The best keep is chosen on the same runs, so its
    gain is optimistic; the rule's lower bound is corrected for that choice.
    """
    keys = _keys(df)
    if df.empty:
        return pd.DataFrame()
    dense = float(df.keep_ratio.max()) if baseline_keep is None else float(baseline_keep)
    gains = paired_gains(df, baseline_keep=dense, level=level)
    if gains.empty:
        return pd.DataFrame()
    rows = []
    for key, grp in df.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        m = grp.groupby("keep_ratio")[["clean_acc", "adv_acc"]].mean().sort_index(ascending=False)
        if not np.isclose(m.index, dense).any():
            continue
        k_best = float(m.index[rule.best_index(m.index, m["adv_acc"])])
        k_dense = float(m.index[np.isclose(m.index, dense)][0])
        tab = gains[np.logical_and.reduce([gains[c] == v for c, v in zip(keys, key, strict=True)])]
        g = tab[np.isclose(tab.keep_ratio, k_best)].iloc[0]
        dec = rule.decide(tab)
        rows.append({
            **dict(zip(keys, key, strict=True)),
            "keep_dense": k_dense, "clean_dense": float(m.loc[k_dense, "clean_acc"]),
            "adv_dense": float(m.loc[k_dense, "adv_acc"]),
            "keep_best": k_best, "clean_best": float(m.loc[k_best, "clean_acc"]),
            "adv_best": float(m.loc[k_best, "adv_acc"]),
            "adv_gain": float(g.gain), "adv_gain_lo": float(g.gain_lo), "adv_gain_hi": float(g.gain_hi),
            "interval": g.interval, "lower": float(g.lower), "upper": float(g.upper), "p": float(g.p),
            "p_corrected": float(g.p_corrected), "family": int(g.family), "p_values": g.p_values,
            "n_significant": int(g.n_significant), "n_significant_loss": int(g.n_significant_loss),
            "test": g.test, "clean_drop": float(m.loc[k_dense, "clean_acc"] - m.loc[k_best, "clean_acc"]),
            "n_seeds": int(g.n_seeds), "n": g.n, "resolution": g.resolution,
            "verdict": dec.verdict, "verdict_keep": dec.keep, "reason": dec.reason,
        })
    return pd.DataFrame(rows)


def gain_text(row: Mapping[str, Any], level: float = 0.95) -> str:
    """The paired gain of a :func:`paired_gains` / :func:`sweet_spot` row in words, e.g.
    ``"+0.30 pp (95% CI over 5 seeds × 10000 examples +0.10 to +0.50 pp, pointwise, uncorrected;
    McNemar one-sided p < 0.05 (uncorrected): gain in 4, loss in 0 of 5 seeds)"``.

    No interval is printed where there is none (one seed without bits, or no per-example bits and
    every seed moved by the same number of examples); the resolution 1/n of the evaluation is
    stated instead. With one seed the interval is over its test examples only, and says so."""
    g = row.get("adv_gain", row.get("gain"))
    lo = row.get("adv_gain_lo", row.get("gain_lo"))
    hi = row.get("adv_gain_hi", row.get("gain_hi"))
    n_seeds = int(row.get("n_seeds", 0))
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    n = row.get("n", math.nan)
    size = seeds + (f" × {int(n)} examples" if n is not None and np.isfinite(n) else "")
    res = row.get("resolution", math.nan)
    res_txt = ""
    if res is not None and np.isfinite(res):
        res_txt = f"resolution {rule.pp2(res).lstrip('+')} = 1/{int(row['n'])}"
    if lo is not None and np.isfinite(lo):
        over = ("over the examples of one seed" if n_seeds == 1 else f"over {size}")
        parts = [f"{level:.0%} CI {over} {rule.pp2(lo).removesuffix(' pp')} to {rule.pp2(hi)}, pointwise, "
                 "uncorrected"]
    else:
        why = str(row.get("interval", ""))
        parts = [f"{seeds}, no interval" + (f" ({why[6:]})" if why.startswith("none:") else "")]
        if res_txt:
            parts.append(res_txt)
    if str(row.get("test", "")).startswith("mcnemar"):
        parts.append(f"McNemar one-sided p < 0.05 (uncorrected): gain in {int(row['n_significant'])}, "
                     f"loss in {int(row.get('n_significant_loss', 0))} of {n_seeds} seeds")
    return f"{rule.pp2(g)} ({'; '.join(parts)})"


def describe_sweet_spot(row: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """One sentence from a :func:`sweet_spot` row, e.g. "mlp on mnist, magnitude, FGSM 4/255: ...",
    ending with the setting's verdict by the rule."""
    att = f"{str(row['attack']).upper()} {format_eps(float(row['eps']))}"
    head = f"{row['model']} on {row['dataset']}, {(labels or {}).get(row['method'], row['method'])}, {att}: "
    verdict = f" Verdict by the rule: **{row['verdict']}** ({row['reason']})." if "verdict" in row else ""
    if row["keep_best"] == row["keep_dense"]:
        return (head + f"attacked accuracy is highest without pruning ({pct(row['adv_dense'])} at keep "
                f"{row['keep_dense']:g}); no keep ratio in the sweep improves it." + verdict)
    return (head + f"attacked accuracy peaks at keep {row['keep_best']:g} with {pct(row['adv_best'])} vs "
            f"{pct(row['adv_dense'])} unpruned, a paired change of {gain_text(row)}, while clean accuracy "
            f"moves from {pct(row['clean_dense'])} to {pct(row['clean_best'])}." + verdict)


def resolved_above_zero(row: Mapping[str, Any]) -> bool:
    """``True`` when the rule's corrected lower bound (``lower``) lies strictly above 0 (False
    without one)."""
    lo = row.get("lower")
    return bool(lo is not None and np.isfinite(lo) and lo > 0)


def improvement_summary(df: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """How many (model, dataset, method, attack, eps) settings have a pruned model with higher
    mean attacked accuracy than the unpruned one (Sec. 6.3), and how many of them hold, fail or are
    inconclusive by the verdict rule (:mod:`prunerob.analysis.verdict_rule`)."""
    s = sweet_spot(df, level)
    if s.empty:
        return {"settings": 0, "positive": 0, "holds": 0, "fails": 0, "inconclusive": 0, "table": s}
    return {"settings": len(s), "positive": int((s.adv_gain > 0).sum()),
            **{v: int((s.verdict == v).sum()) for v in rule.VERDICTS}, "table": s}


def depth_trend(df: pd.DataFrame, order: Sequence[str] = ("mlp", "mlp3", "mlp4"), method: str = "magnitude",
                level: float = 0.95) -> pd.DataFrame:
    """Sec. 6.4 / Fig. 4: per attack, the best keep ratio of each depth in ``order`` and whether it
    decreases with depth (non-increasing and strictly smaller for the deepest than the shallowest).

    One row per (attack, eps) with ``models``, ``keep_best`` (tuple in ``order``), ``gains``
    (paired gains at those keeps), ``verdicts`` (each depth's verdict by the rule), ``holds`` (how
    many hold) and ``decreases``. Models in ``order`` missing from the table are skipped.
    """
    s = sweet_spot(df[df.method == method], level)
    rows = []
    for (att, eps), d in s.groupby(["attack", "eps"], sort=True):
        d = d.set_index("model")
        models = [m for m in order if m in d.index]
        ks = [float(d.loc[m, "keep_best"]) for m in models]
        dec = len(ks) >= 2 and all(b <= a for a, b in zip(ks, ks[1:], strict=False)) and ks[-1] < ks[0]
        verdicts = tuple(str(d.loc[m, "verdict"]) for m in models)
        rows.append({"attack": att, "eps": eps, "models": tuple(models), "keep_best": tuple(ks),
                     "gains": tuple(float(d.loc[m, "adv_gain"]) for m in models), "verdicts": verdicts,
                     "holds": int(sum(v == "holds" for v in verdicts)),
                     "n_seeds": int(d.n_seeds.min()), "decreases": bool(dec)})
    return pd.DataFrame(rows)


def second_layer_share(choices: pd.DataFrame) -> float:
    """Sec. 6.5: fraction of layer-wise Algorithm 1 runs with 0 < λ < 1 that keep fewer weights in
    layer 2 than in layer 1 (the paper: "consistently prunes the second layer more")."""
    lw = choices[(choices["mode"] == "layerwise") & (choices.method == "algorithm1")
                 & (choices.lam > 0) & (choices.lam < 1)]
    if lw.empty or "keep_2" not in lw.columns:
        return math.nan
    return float((lw.keep_2 < lw.keep_1 - 1e-9).mean())


def algorithm1_vs_front(choices: pd.DataFrame, grid: pd.DataFrame, attack: str = "fgsm",
                        method: str = "magnitude") -> pd.DataFrame:
    """Sec. 6.5 / Fig. 5: Algorithm 1's choices (means over seeds per mode, method, λ) against the
    empirical (clean, attacked) front of the uniform ``method`` keep grid (Definition 3, App. F).

    Returns the pooled points: ``src`` (``grid`` or ``chosen``), ``keep_ratio`` (grid), ``mode``,
    ``method``, ``lam`` (choices), ``clean``, ``adv`` and ``pareto`` (non-dominated among all
    points together)."""
    col = f"adv_acc_{attack}"
    _need(choices, ["mode", "method", "lam", "clean_acc", col], "algorithm1_vs_front")
    gm = accuracy_summary(grid[(grid.method == method) & (grid.attack == attack)])
    agg = choices.groupby(["mode", "method", "lam"])[["clean_acc", col]].mean().reset_index()
    pts = pd.concat([
        gm[["keep_ratio", "clean_mean", "adv_mean"]]
        .rename(columns={"clean_mean": "clean", "adv_mean": "adv"}).assign(src="grid"),
        agg.rename(columns={"clean_acc": "clean", col: "adv"}).assign(src="chosen"),
    ], ignore_index=True)
    pts["pareto"] = pareto_mask(pts[["clean", "adv"]].to_numpy())
    return pts


def risk_trend(risk_df: pd.DataFrame) -> dict[str, Any]:
    """Sec. 6.2 / Fig. 1: does the estimated worst-case adversarial risk fall and ζ rise as the
    keep ratio falls? Compares the densest and sparsest keep ratio (means over seeds) per budget."""
    _need(risk_df, ["eps", "keep_ratio", "worst_case", "zeta_est"], "risk_trend")
    m = risk_df.groupby(["eps", "keep_ratio"])[["worst_case", "zeta_est"]].mean().reset_index()
    hi, lo = float(m.keep_ratio.max()), float(m.keep_ratio.min())
    lower = 0
    for _, d in m.groupby("eps"):
        d = d.set_index("keep_ratio").worst_case
        lower += int(d[lo] < d[hi])
    z = m[m.eps == m.eps.min()].set_index("keep_ratio").zeta_est
    return {"keep_hi": hi, "keep_lo": lo, "n_eps": int(m.eps.nunique()), "risk_lower": lower,
            "zeta_hi": float(z[hi]), "zeta_lo": float(z[lo]), "zeta_rises": bool(z[lo] > z[hi])}


#: attacks each attack must be at least as strong as (on the same images): the field's sanity rule
def _default_stronger() -> dict[str, tuple[str, ...]]:
    """The attack registry's strength order when the attacks are loaded (torch-free read)."""
    from prunerob.core.registry import registered

    reg = registered("attack")
    if reg is None:
        return {}
    return {n: tuple(getattr(reg.get(n), "stronger_than", ())) for n in reg.names()}


def attack_ladder(df: pd.DataFrame, order: Sequence[str],
                  stronger_than: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Images left correct by each attack of ``order`` per (method, keep ratio), summed over seeds,
    with ``violations``: the (seed, attack, weaker attack) triples where an attack leaves MORE
    images correct than one it must be at least as strong as (``stronger_than``: registry data,
    :func:`prunerob.core.attacks.stronger_than`, passed in by the page; by default every
    iterative attack vs FGSM, AutoAttack vs all). Needs one sweep on the same examples for all
    attacks (the same ``n`` and subset)."""
    _need(df, ["method", "keep_ratio", "seed", "attack", "adv_correct", "n"], "attack_ladder")
    stronger = dict(stronger_than) if stronger_than is not None else _default_stronger()
    d = df[df.attack.isin(order)]
    wide = d.pivot_table(index=["method", "keep_ratio", "seed"], columns="attack", values="adv_correct",
                         aggfunc="sum")
    rows = []
    for (m, k), g in wide.groupby(level=["method", "keep_ratio"], sort=True):
        bad = sum(int(g[a].iloc[i] > g[w].iloc[i]) for a in order if a in g for w in stronger.get(a, ())
                  if w in g for i in range(len(g)))
        row = {"method": m, "keep_ratio": float(k), "seeds": len(g)}
        row.update({f"{a}_correct": int(g[a].sum()) for a in order if a in g})
        row["n"] = int(d[(d.method == m) & (d.keep_ratio == k)].groupby("seed").n.first().sum())
        row["violations"] = bad
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["method", "keep_ratio"], ascending=[True, False],
                                          ignore_index=True)


def keep_at_drop(df: pd.DataFrame, value: str = "clean_acc", drop: float = 0.05,
                 by: Sequence[str] = ("model", "dataset", "method")) -> pd.DataFrame:
    """Smallest keep ratio down to which the mean ``value`` stays within ``drop`` (absolute) of
    its value at the densest keep ratio, for every keep ratio at or above it.

    Measures "how much pruning a model tolerates": a smaller ``keep_min`` means the trade-off
    sets in at a higher pruning ratio (Sec. 6.3, score-based pruning). Uses one attack's rows
    (clean accuracy repeats across attacks).
    """
    by = [c for c in by if c in df.columns]
    rows = []
    for key, grp in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        m = grp.groupby("keep_ratio")[value].mean().sort_index(ascending=False)
        ref = float(m.iloc[0])
        ok = (m >= ref - drop).to_numpy()
        n_ok = int(np.argmin(ok)) if not ok.all() else len(ok)
        rows.append({**dict(zip(by, key, strict=True)), "ref": ref, "drop": drop,
                     "keep_min": float(m.index[n_ok - 1]) if n_ok else math.nan})
    return pd.DataFrame(rows)



def pct(x: float, digits: int = 1) -> str:
    """``0.9123 -> '91.2%'`` (``'n/a'`` for NaN)."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def pp(x: float, digits: int = 1) -> str:
    """A difference of fractions in percentage points with sign: ``0.031 -> '+3.1 pp'``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    v = round(100 * float(x), digits) + 0.0  # no "-0.0"
    return f"{v:+.{digits}f} pp"
