"""One number per claim (issue 25, item 4): where several pages measure the same quantity on
different subsets, seeds or keep grids, the claim's number comes from ONE stated source, and every
other page quotes it and says, from the tables, why its own number differs.

Each entry of :data:`CANONICAL` names the quantity, the canonical source (notebook, table and the
rows it selects) and the other sources that print the same quantity. Everything is computed from
the committed result tables under ``book/experiments/results`` (torch-free; no number is typed):

* :func:`measure` reads one source and returns what it shows (value, seeds, examples, keep grid),
* :func:`note` is the sentence a page prints: the canonical number with its source and, for every
  other source, its own number and the differences that explain it (seeds, test subset, keep grid,
  training epochs, and for a best keep the canonical gain at that page's keep ratio),
* :func:`findings_table` is the table of the findings page, one row per claim and source.

Significance is always labelled: per-seed McNemar counts are given *uncorrected* and *corrected*
(Bonferroni over the K pruned keep ratios searched), as the verdict rule
(:mod:`prunerob.analysis.verdict_rule`) reports its bounds.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunerob.analysis import stats
from prunerob.analysis import verdict_rule as rule
from prunerob.config import ConfigError, format_eps

__all__ = ["Source", "Canonical", "CANONICAL", "measure", "note", "notes_for", "findings_table"]

#: the paper's attack budget (App. I)
PAPER_EPS = 4 / 255


@dataclass(frozen=True)
class Source:
    """Rows of one committed table: ``<results>/<notebook>/<table>.csv`` filtered by ``select``
    (column -> value; ``eps`` compared as a number or as its label ``4/255``). ``what`` says in
    words which measurement these rows are (e.g. "clean accuracy of the unpruned model on the
    attacked test subset")."""

    notebook: str
    table: str
    select: Mapping[str, Any] = field(default_factory=dict)
    what: str = ""

    def rows(self, results: str | Path) -> pd.DataFrame | None:
        path = Path(results) / self.notebook / f"{self.table}.csv"
        if not path.is_file():
            return None
        df = pd.read_csv(path)
        keep = np.ones(len(df), dtype=bool)
        for col, val in self.select.items():
            if col not in df.columns:
                return df.iloc[0:0]
            if col == "eps":
                keep &= _eps_match(df[col], float(val))
            else:
                keep &= (df[col] == val).to_numpy()
        return df[keep]

    def label(self) -> str:
        return f"{self.notebook} (`{self.table}.csv`)"


def _eps_match(col: pd.Series, eps: float) -> np.ndarray:
    num = pd.to_numeric(col, errors="coerce")
    lab = col.astype(str) == format_eps(eps)
    return (np.isclose(num.fillna(-1.0).to_numpy(dtype=float), eps) | lab.to_numpy())


@dataclass
class Measure:
    """What one source shows: ``value`` (a number), ``text`` (the number in words), and the facts
    that can make two sources differ."""

    source: Source
    value: float = math.nan
    text: str = "not run"
    seeds: tuple[int, ...] = ()
    n: float = math.nan
    keeps: tuple[float, ...] = ()
    epochs: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.text != "not run"

    def setting(self) -> str:
        """Seeds, examples and keep grid in words."""
        parts = []
        if self.seeds:
            parts.append(f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''} "
                         f"({', '.join(map(str, self.seeds))})")
        if np.isfinite(self.n):
            parts.append(f"{int(self.n):,} test images")
        pruned = [k for k in self.keeps if k < 1]
        if pruned:
            parts.append(f"{len(pruned)} pruned keep ratios")
        if self.epochs:
            parts.append(f"{'/'.join(map(str, self.epochs))} training epochs")
        return ", ".join(parts)


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in values if pd.notna(v)}))


# ----------------------------------------------------------------------------------------------
# quantities
# ----------------------------------------------------------------------------------------------
def _sweep_facts(m: Measure, rows: pd.DataFrame) -> None:
    seed_col = "model_seed" if "model_seed" in rows.columns else "seed"
    m.seeds = _ints(rows[seed_col])
    m.n = float(rows.n.min()) if "n" in rows.columns else math.nan
    m.keeps = tuple(sorted({float(k) for k in rows.keep_ratio}, reverse=True))
    if "train_epochs" in rows.columns:
        m.epochs = _ints(rows.train_epochs)


def best_keep(src: Source, rows: pd.DataFrame) -> Measure:
    """The keep ratio with the highest mean attacked accuracy (:func:`prunerob.analysis.stats.sweet_spot`,
    the paper's "sweet spot"), its paired gain against keep 1 and the setting's verdict."""
    m = Measure(src)
    s = stats.sweet_spot(rows)
    if s.empty:
        return m
    r = s.iloc[0]
    _sweep_facts(m, rows)
    m.value = float(r.keep_best)
    m.text = f"keep {r.keep_best:g} ({rule.pp2(r.adv_gain)} vs keep 1; verdict **{r.verdict}**)"
    m.extra.update(verdict=str(r.verdict), gain=float(r.adv_gain))
    return m


def mcnemar(src: Source, rows: pd.DataFrame, alpha: float = rule.ALPHA) -> Measure:
    """Per-seed exact one-sided McNemar tests of the paired gain at the best keep ratio: how many
    seeds have p < ``alpha`` *uncorrected*, and how many after a Bonferroni correction over the K
    pruned keep ratios searched (p < ``alpha`` / K)."""
    m = Measure(src)
    s = stats.sweet_spot(rows)
    if s.empty:
        return m
    r = s.iloc[0]
    _sweep_facts(m, rows)
    pv = [float(p) for p in r.p_values if np.isfinite(p)]
    k = int(r.family)
    unc = sum(p < alpha for p in pv)
    cor = sum(p * k < alpha for p in pv)
    seeds = f"{len(pv)} seed{'s' if len(pv) != 1 else ''}"
    m.value = float(unc)
    m.text = (f"keep {r.keep_best:g}: McNemar one-sided p < {alpha:g} in {unc} of {seeds} *uncorrected*, "
              f"{cor} of {seeds} *corrected* (Bonferroni over the {k} pruned keep ratios searched)")
    m.extra.update(uncorrected=unc, corrected=cor, family=k, keep=float(r.keep_best))
    return m


def model_accuracy(src: Source, rows: pd.DataFrame) -> Measure:
    """Test accuracy of the trained models (a ``models.csv`` table, or the ``model_test_acc`` column
    of a sweep): per seed on the full test split; the value is the mean over seeds."""
    m = Measure(src)
    col = "test_acc" if "test_acc" in rows.columns else "model_test_acc"
    seed_col = next((c for c in ("model_seed", "seed") if c in rows.columns), None)
    if col not in rows.columns or rows.empty or seed_col is None:
        return m
    per = rows.groupby(seed_col)[col].first().astype(float)
    m.seeds = _ints(per.index)
    m.value = float(per.mean())
    ep = "epochs" if "epochs" in rows.columns else "train_epochs"
    if ep in rows.columns:
        m.epochs = _ints(rows[ep])
    each = ", ".join(f"seed {s}: {stats.pct(a)}" for s, a in per.items())
    m.text = (f"{stats.pct(m.value)} on the full test split" if len(per) == 1 else
              f"{stats.pct(m.value)} mean, lowest {stats.pct(per.min())}, on the full test split ({each})")
    m.extra.update(per_seed=dict(per.items()), lowest=float(per.min()))
    return m


def clean_unpruned(src: Source, rows: pd.DataFrame) -> Measure:
    """Clean accuracy of the unpruned model (keep 1) on the evaluated test subset of a sweep, mean
    over seeds (one attack's rows: the clean pass is the same for every attack)."""
    m = Measure(src)
    d = rows[np.isclose(rows.keep_ratio.astype(float), 1.0)]
    if d.empty:
        return m
    d = d[d.attack == d.attack.iloc[0]]
    _sweep_facts(m, rows)
    m.keeps = ()  # the keep grid does not bear on the unpruned model's accuracy
    per = d.groupby("seed").clean_acc.mean().astype(float)
    m.value = float(per.mean())
    m.text = f"{stats.pct(m.value)} clean, unpruned, on {int(m.n):,} attacked test images"
    m.extra.update(subset=str(d.eval_subset.iloc[0]) if "eval_subset" in d.columns else "")
    return m


#: quantity name -> function of (source, its rows)
QUANTITIES: dict[str, Callable[[Source, pd.DataFrame], Measure]] = {
    "best_keep": best_keep, "mcnemar": mcnemar, "model_accuracy": model_accuracy,
    "clean_unpruned": clean_unpruned,
}


@dataclass(frozen=True)
class Canonical:
    """One claim's number: ``canonical`` is the source quoted everywhere; ``others`` print the same
    quantity on other subsets or seeds and say why they differ."""

    key: str
    claim: str
    quantity: str
    canonical: Source
    others: tuple[Source, ...] = ()
    #: quantity of each other source when it measures something related but different
    other_quantity: Mapping[str, str] = field(default_factory=dict)


def _mlp_fgsm(nb: str, table: str) -> Source:
    return Source(nb, table, dict(model="mlp", dataset="mnist", method="magnitude", attack="fgsm",
                                  eps=PAPER_EPS))


#: every claim with more than one number in the book, with its canonical source
CANONICAL: dict[str, Canonical] = {c.key: c for c in (
    Canonical(
        "mlp_fgsm_best_keep",
        "Best keep ratio of the magnitude-pruned MNIST MLP under FGSM at 4/255 "
        "(the paper's sweet spot, Fig. 2)",
        "best_keep",
        _mlp_fgsm("magnitude_mlp", "sweep"),
        (_mlp_fgsm("sweet_spot", "sweep_main"), _mlp_fgsm("autoattack_mlp", "sweep")),
    ),
    Canonical(
        "mlp_cifar_pgd_mcnemar",
        "Per-seed McNemar significance of the CIFAR-10 MLP's PGD gain at 4/255 (Fig. 2)",
        "mcnemar",
        Source("magnitude_mlp", "sweep", dict(model="mlp_cifar", dataset="cifar10", method="magnitude",
                                              attack="pgd", eps=PAPER_EPS)),
    ),
    Canonical(
        "cnn4_accuracy",
        "Clean test accuracy of the CIFAR-10 CNN4 (Figs. 2, 9)",
        "model_accuracy",
        Source("magnitude_cnn", "models", dict(arch="cnn4", dataset="cifar10"),
               "the trained model on the full test split"),
        (Source("magnitude_cnn", "sweep", dict(model="cnn4", dataset="cifar10", method="magnitude"),
                "the unpruned model on the test subset the attacks run on"),
         Source("sweet_spot", "sweep_cnn", dict(model="cnn4", dataset="cifar10"),
                "the models of the sweet-spot chapter's CNN part"),
         Source("risk_vs_keep", "models", dict(arch="cnn4", dataset="cifar10"),
                "the model whose risk is estimated")),
        {"magnitude_cnn/sweep": "clean_unpruned"},
    ),
)}


def measure(c: Canonical, src: Source, results: str | Path) -> Measure:
    """What ``src`` shows for claim ``c`` (``text == "not run"`` when its table is missing)."""
    rows = src.rows(results)
    if rows is None or rows.empty:
        return Measure(src)
    q = c.other_quantity.get(f"{src.notebook}/{src.table}", c.quantity)
    return QUANTITIES[q](src, rows)


def _differences(c: Canonical, ref: Measure, m: Measure, results: str | Path) -> list[str]:
    """Why ``m`` can differ from the canonical ``ref``, from the tables: seeds, test images, keep
    grid, epochs; for a best keep the canonical gain at this source's keep; for accuracies, what
    is measured."""
    why = []
    q = c.other_quantity.get(f"{m.source.notebook}/{m.source.table}", c.quantity)
    if q != c.quantity:
        why.append(f"it measures {m.source.what or q} ({q.replace('_', ' ')}), not "
                   f"{c.canonical.what or c.quantity}")
    if m.seeds and ref.seeds and m.seeds != ref.seeds:
        why.append(f"seeds {', '.join(map(str, m.seeds))} instead of {', '.join(map(str, ref.seeds))}")
    if np.isfinite(m.n) and np.isfinite(ref.n) and m.n != ref.n:
        why.append(f"{int(m.n):,} test images per seed instead of {int(ref.n):,}")
    if m.keeps and ref.keeps and set(m.keeps) != set(ref.keeps):
        why.append(f"{sum(k < 1 for k in m.keeps)} pruned keep ratios instead of "
                   f"{sum(k < 1 for k in ref.keeps)}")
    if m.epochs and ref.epochs and m.epochs != ref.epochs:
        why.append(f"{'/'.join(map(str, m.epochs))} training epochs instead of "
                   f"{'/'.join(map(str, ref.epochs))}")
    mine, theirs = m.extra.get("per_seed", {}), ref.extra.get("per_seed", {})
    retrained = [s for s in sorted(set(mine) & set(theirs)) if not np.isclose(mine[s], theirs[s], atol=5e-5)]
    if retrained:
        each = ", ".join(f"{s} reaches {stats.pct(mine[s])} here and {stats.pct(theirs[s])} in the canonical "
                         "table" for s in retrained)
        why.append(f"seed {each}: the same seed and recipe trained in a separate run, so a different model "
                   "(CPU training is not bit-reproducible across code versions and runs)")
    if c.quantity == "best_keep" and np.isfinite(m.value) and m.value != ref.value:
        rows = c.canonical.rows(results)
        g = stats.paired_gains(rows) if rows is not None else pd.DataFrame()
        at = g[np.isclose(g.keep_ratio, m.value)] if len(g) else g
        if len(at):
            r = at.iloc[0]
            why.append(f"on the canonical table keep {m.value:g} gains {rule.pp2(r.gain)} (95% CI "
                       f"{rule.pp2(r.gain_lo)} to {rule.pp2(r.gain_hi)}, pointwise, uncorrected) against "
                       f"{rule.pp2(ref.extra.get('gain', math.nan))} at keep {ref.value:g}")
        verdicts = {ref.extra.get("verdict"), m.extra.get("verdict")}
        if verdicts == {"fails"}:
            why.append("both verdicts are **fails**: no keep ratio has a gain by the rule, so which keep "
                       "ranks first is within the noise")
    return why


def _line(c: Canonical, m: Measure, ref: Measure, results: str | Path) -> str:
    if not m.found:
        return f"{m.source.label()}: not run"
    if m.source == c.canonical:
        return f"{m.source.label()}: {m.text}; {m.setting()} (**canonical**)"
    same = (np.isclose(m.value, ref.value) and m.seeds == ref.seeds
            and c.other_quantity.get(f"{m.source.notebook}/{m.source.table}", c.quantity) == c.quantity)
    if same:
        return f"{m.source.label()}: {m.text}; {m.setting()}: the same number as the canonical source"
    why = _differences(c, ref, m, results)
    return (f"{m.source.label()}: {m.text}; {m.setting()}. It differs because "
            + ("; ".join(why) if why else "of its own evaluation") + ".")


def note(key: str, results: str | Path, page: str | None = None) -> str:
    """The Markdown a page prints for claim ``key``: the canonical number and its source, then each
    other source's number with the reasons it differs (``page``: the notebook printing it, whose
    line comes first)."""
    if key not in CANONICAL:
        raise ConfigError(f"canonical claim {key!r} is unknown; known: {sorted(CANONICAL)}")
    c = CANONICAL[key]
    ref = measure(c, c.canonical, results)
    head = (f"**One number per claim: {c.claim}.** Canonical source: {c.canonical.label()}"
            + (f", {c.canonical.what}" if c.canonical.what else "") + f": {ref.text}"
            + (f" ({ref.setting()})" if ref.found else "") + ".")
    others = [s for s in c.others if s.notebook == page] + [s for s in c.others if s.notebook != page]
    lines = [f"- {_line(c, measure(c, s, results), ref, results)}" for s in others]
    return head + ("\n\n" + "\n".join(lines) if lines else "")


def notes_for(page: str, results: str | Path) -> str:
    """Every :func:`note` whose canonical or other source is notebook ``page`` (``""`` when none)."""
    keys = [k for k, c in CANONICAL.items()
            if page in {c.canonical.notebook, *(s.notebook for s in c.others)}]
    return "\n\n".join(note(k, results, page) for k in keys)


def findings_table(results: str | Path, keys: Sequence[str] | None = None) -> str:
    """The findings page's table: one row per (claim, source) with its number, setting and why it
    differs from the canonical one."""
    rows = []
    for k in (keys or list(CANONICAL)):
        c = CANONICAL[k]
        ref = measure(c, c.canonical, results)
        for s in (c.canonical, *c.others):
            m = measure(c, s, results)
            role = "canonical" if s == c.canonical else "quotes it"
            why = "" if s == c.canonical or not m.found else "; ".join(_differences(c, ref, m, results))
            rows.append({"claim": c.claim, "source": f"{{doc}}`{s.notebook} <experiments/{s.notebook}>` "
                                                      f"`{s.table}.csv`",
                         "role": role, "number": m.text, "setting": m.setting() or "—",
                         "why it differs": why or "—"})
    from prunerob.analysis.verdicts import to_markdown

    return to_markdown(pd.DataFrame(rows), ["claim", "source", "role", "number", "setting", "why it differs"])
