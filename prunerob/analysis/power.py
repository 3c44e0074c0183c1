"""How many seeds resolve a paired gain of a given size under the verdict rule (issue 27).

The verdict rule (:mod:`prunerob.analysis.verdict_rule`) calls a gain real when, at some pruned keep
ratio, the one-sided lower bound of the pooled paired gain at level ``1 - ALPHA / K`` (Bonferroni
over the ``K`` pruned keeps searched) lies above 0. With ``S`` seeds whose gains at one keep spread
with standard deviation ``sd`` (one trained model per seed: the seed term of the pooled standard
error, which dominates it when every seed is evaluated on the same large test set), that bound is a
one-sample t-test over the seeds with ``S - 1`` degrees of freedom. Its power against a true gain
``delta`` is exact from the noncentral t distribution:

``power(S) = P(T'(S - 1, nc) > t_{1 - ALPHA / K, S - 1})``, ``nc = delta * sqrt(S) / sd``

(the classical one-sample power calculation; e.g. Cohen 1988, ch. 2). :func:`seeds_for_power` returns
the smallest ``S`` with ``power(S) >= POWER``. What it does not cover: the rule's second condition
for *holds*, an estimated gain of at least the minimum effect, has probability about 1/2 when the
true gain equals the minimum effect exactly, so "resolving a +1 pp gain" here means that its
corrected lower bound clears 0 (the test), not that the verdict reads *holds*. The rule's own
:func:`prunerob.analysis.verdict_rule.seeds_needed` uses the normal approximation ``t_{1-a} + t_{power}``
(printed beside it by the page as a cross-check).

Torch-free: numpy, pandas and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from prunerob.analysis import verdict_rule as rule
from prunerob.config import ConfigError

__all__ = ["power_t", "seeds_for_power", "CellGains", "cell_gains", "Power", "power_from_table", "describe"]


def _check_level(name: str, value: float) -> float:
    v = float(value)
    if not 0 < v < 1:
        raise ConfigError(f"{name}={value!r} must lie in (0, 1)")
    return v


def power_t(n_seeds: int, effect: float, sd: float, alpha: float = rule.ALPHA, family: int = 1) -> float:
    """Power of the one-sided one-sample t-test at level ``alpha / family`` over ``n_seeds`` seeds
    against a true mean ``effect`` with seed standard deviation ``sd`` (noncentral t; module
    docstring). NaN for fewer than 2 seeds."""
    if n_seeds < 2:
        return math.nan
    if not sd > 0:
        raise ConfigError(f"sd={sd!r} must be > 0 (the spread of the per-seed gains)")
    a = _check_level("alpha", alpha) / int(family)
    df = n_seeds - 1
    crit = _st.t.ppf(1 - a, df)
    return float(_st.nct.sf(crit, df, effect * math.sqrt(n_seeds) / sd))


def seeds_for_power(
    effect: float,
    sd: float,
    *,
    alpha: float = rule.ALPHA,
    family: int = 1,
    power: float = rule.POWER,
    max_seeds: int = rule.MAX_SEEDS,
) -> float:
    """The smallest number of seeds ``S >= 2`` at which :func:`power_t` reaches ``power``;
    ``math.inf`` when more than ``max_seeds`` would be needed."""
    if not effect > 0:
        raise ConfigError(f"effect={effect!r} must be > 0 (the gain to resolve, a fraction)")
    if int(family) != family or family < 1:
        raise ConfigError(f"family={family!r} must be an integer >= 1 (keep ratios searched)")
    _check_level("power", power)
    s = np.arange(2, int(max_seeds) + 1)
    a = _check_level("alpha", alpha) / int(family)
    crit = _st.t.ppf(1 - a, s - 1)
    pw = _st.nct.sf(crit, s - 1, effect * np.sqrt(s) / sd)
    hit = np.flatnonzero(pw >= power)
    return float(s[hit[0]]) if hit.size else math.inf


@dataclass
class CellGains:
    """The per-seed paired gains at one cell of a committed sweep (fractions) and where they come from."""

    gains: tuple[float, ...]
    seeds: tuple[int, ...]
    n: int
    sd: float
    seed_var: float
    example_var: float
    source: str


def cell_gains(
    sweep: pd.DataFrame, *, method: str, keep: float, eps: float, attack: str, source: str = ""
) -> CellGains:
    """The per-seed paired gains (pruned at ``keep`` minus unpruned, same seed and examples) of one
    cell of a sweep table with ``adv_bits`` (:func:`prunerob.analysis.verdict_rule.keep_table`);
    ConfigError when the cell is not in the table."""
    need = [c for c in ("method", "attack", "eps", "keep_ratio") if c not in sweep.columns]
    if need:
        raise ConfigError(f"cell_gains: column(s) {need} not in the table")
    rows = sweep[
        (sweep.method == method) & (sweep.attack == attack) & np.isclose(sweep.eps.astype(float), eps)
    ]
    t = rule.keep_table(rows) if len(rows) else pd.DataFrame()
    hit = t[np.isclose(t.keep_ratio.astype(float), keep)] if len(t) else t
    if hit.empty or int(hit.n_seeds.iloc[0]) < 2:
        raise ConfigError(
            f"cell_gains: no cell method={method!r}, keep={keep:g}, eps={eps:g}, attack={attack!r} "
            "with at least 2 seeds in the table"
        )
    r = hit.iloc[0]
    g = tuple(float(x) for x in r.gains)
    return CellGains(
        g,
        tuple(int(s) for s in r.seeds),
        int(r.n),
        float(np.std(g, ddof=1)),
        float(r.seed_var),
        float(r.example_var),
        source,
    )


@dataclass
class Power:
    """The power calculation of the page: the input cell, the seeds needed at ``power`` (exact
    noncentral t, and the rule's normal approximation) and the power at the seeds run."""

    cell: CellGains
    effect: float
    family: int
    alpha: float
    power: float
    seeds_needed: float
    seeds_needed_rule: float
    power_at: dict[int, float]

    def table(self) -> pd.DataFrame:
        """One row: the inputs and outputs, for the page's CSV."""
        c = self.cell
        return pd.DataFrame(
            [
                {
                    "source": c.source,
                    "seeds": str(list(c.seeds)),
                    "n": c.n,
                    "gains_pp": ", ".join(f"{100 * x:+.2f}" for x in c.gains),
                    "mean_gain": float(np.mean(c.gains)),
                    "sd": c.sd,
                    "effect": self.effect,
                    "alpha": self.alpha,
                    "family": self.family,
                    "level": self.alpha / self.family,
                    "power": self.power,
                    "seeds_needed": self.seeds_needed,
                    "seeds_needed_rule_approx": self.seeds_needed_rule,
                    **{f"power_at_{s}": p for s, p in self.power_at.items()},
                }
            ]
        )


def power_from_table(
    sweep: pd.DataFrame,
    *,
    method: str,
    keep: float,
    eps: float,
    attack: str,
    family: int,
    effect: float = rule.MIN_EFFECT,
    alpha: float = rule.ALPHA,
    power: float = rule.POWER,
    at: Sequence[int] = (),
    source: str = "",
) -> Power:
    """:func:`seeds_for_power` at the spread of the per-seed gains of one committed cell
    (:func:`cell_gains`), ``family`` = the pruned keeps the verdict will search; ``at``: seed counts
    at which to report the power."""
    c = cell_gains(sweep, method=method, keep=keep, eps=eps, attack=attack, source=source)
    need = seeds_for_power(effect, c.sd, alpha=alpha, family=family, power=power)
    approx = rule.seeds_needed([effect], [c.sd**2], [0.0], family, "holds", effect, alpha, power)
    return Power(
        c,
        float(effect),
        int(family),
        float(alpha),
        float(power),
        need,
        float(approx),
        {int(s): power_t(int(s), effect, c.sd, alpha, family) for s in at},
    )


def describe(p: Power, seeds_run: int) -> str:
    """The power calculation in words, with whether ``seeds_run`` falls short of it."""
    c = p.cell
    need = "more than the rule's limit" if not math.isfinite(p.seeds_needed) else f"{int(p.seeds_needed)}"
    head = (
        f"**Power calculation.** At {c.source} the per-seed paired gains are "
        f"{', '.join(f'{100 * g:+.2f}' for g in c.gains)} pp ({len(c.gains)} seeds × {c.n} test images; "
        f"mean {100 * np.mean(c.gains):+.2f} pp, SD {100 * c.sd:.2f} pp). Taking that SD as the seed-to-seed "
        f"spread, a true gain of {100 * p.effect:g} pp is resolved (the one-sided lower bound at level "
        f"{p.alpha:g}/{p.family} = {p.alpha / p.family:.4g}, Bonferroni over the {p.family} pruned keeps of "
        f"this page, clears 0) with {p.power:.0%} power by **{need} seeds** (noncentral t; the rule's normal "
        f"approximation says {p.seeds_needed_rule:g})."
    )
    if math.isfinite(p.seeds_needed) and seeds_run < p.seeds_needed:
        pw = power_t(seeds_run, p.effect, c.sd, p.alpha, p.family)
        tail = (
            f" **This run has {seeds_run} seeds, fewer than that**: its power against a "
            f"{100 * p.effect:g} pp "
            f"gain is {pw:.0%}, so an *inconclusive* verdict below is expected even if the gain is real."
        )
    else:
        tail = f" This run has {seeds_run} seeds, enough by this calculation."
    return (
        head
        + tail
        + (
            " The SD comes from 2,000-image seeds and includes their within-seed sampling noise, "
            "which 10,000 images shrink, so the number is on the safe side."
            if c.n < 10000
            else ""
        )
    )
