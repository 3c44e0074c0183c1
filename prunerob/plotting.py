"""Shared figure, caption and statistics code for the experiment notebooks (paper Sec. 6, App. H).

Every accuracy figure of the paper (Figs. 2-4, 8-14) plots clean and attacked accuracy against
the keep ratio ``p`` (fraction of weights KEPT). Where the paper shows one run, the notebooks
show the mean over seeds with a 95% t-interval band (:func:`mean_ci`). Captions are built by
:func:`caption` from the data set's ``.source`` sentence and the sweep table's provenance and
attack columns, so a figure never states a setting that was not the one used.

Conventions: result tables follow the results contract of CONTRIBUTING.md (one row per
model, dataset, method, keep_ratio, attack, eps, seed; accuracies are fractions in [0, 1]).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import ConfigError, atomic_write_text, format_eps

#: colours of the pruning methods (the random baseline is grey everywhere)
METHOD_COLORS = {
    "magnitude": "C0",
    "magnitude_global": "C2",
    "taylor": "C1",
    "bernoulli_uniform": "C4",
    "random": "0.45",
    "algorithm1": "C3",
}
#: short names used in legends
METHOD_LABELS = {
    "magnitude": "magnitude (layer-wise)",
    "magnitude_global": "magnitude (global)",
    "taylor": "Taylor score",
    "bernoulli_uniform": "Bernoulli(p)",
    "random": "random (baseline)",
}
KEEP_LABEL = "keep ratio p (fraction of weights kept)"


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile ``t_{(1+level)/2, dof}`` (NaN for ``dof < 1``)."""
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r} must lie in (0, 1), e.g. 0.95")
    if dof < 1:
        return math.nan
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2.0, dof))


def mean_ci(df: pd.DataFrame, by: str | Sequence[str], value: str, level: float = 0.95) -> pd.DataFrame:
    """Mean of ``value`` per group with a two-sided ``level`` t-interval over the rows (seeds).

    Returns one row per group with the ``by`` columns and ``mean``, ``std`` (sample, ddof=1),
    ``n`` (rows averaged), ``half`` (half-width ``t_{(1+level)/2, n-1} * std / sqrt(n)``),
    ``lo`` and ``hi``. With one row in a group the interval is undefined: ``half``, ``lo`` and
    ``hi`` are NaN (no band is drawn). NaN values are dropped before averaging.
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
        rows.append({**dict(zip(by, key)), "mean": mean, "std": std, "n": n, "half": half,
                     "lo": mean - half, "hi": mean + half})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "n", "half", "lo", "hi"])


def accuracy_summary(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over seeds of ``clean_acc`` and ``adv_acc`` per (model, dataset,
    method, keep_ratio, attack, eps): one wide row per group (``clean_mean``, ``clean_lo``, ...)."""
    keys = [c for c in ("model", "dataset", "method", "keep_ratio", "attack", "eps") if c in df.columns]
    out = None
    for value, short in (("clean_acc", "clean"), ("adv_acc", "adv")):
        s = mean_ci(df, keys, value, level).rename(
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


def sweet_spot(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (model, dataset, method, attack, eps): the keep ratio with the highest mean attacked
    accuracy (the paper's "sweet spot", Sec. 6.3) against the densest keep ratio in the table.

    Columns: ``keep_dense`` (largest keep ratio, normally 1.0), ``clean_dense``, ``adv_dense``,
    ``keep_best``, ``clean_best``, ``adv_best``, ``adv_gain`` (paired over seeds:
    mean of ``adv(keep_best) - adv(keep_dense)``), ``adv_gain_lo``/``adv_gain_hi`` (t-interval
    of that paired difference; NaN with one seed), ``clean_drop`` (mean ``clean(dense) -
    clean(best)``) and ``n_seeds``. The best keep is chosen on the same runs, so the gain is an
    optimistic estimate.
    """
    keys = [c for c in ("model", "dataset", "method", "attack", "eps") if c in df.columns]
    rows = []
    for key, grp in df.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        m = grp.groupby("keep_ratio")[["clean_acc", "adv_acc"]].mean().sort_index(ascending=False)
        k_dense = float(m.index.max())
        k_best = float(m["adv_acc"].idxmax())  # first maximum from the dense end: ties favour less pruning
        a = grp[grp.keep_ratio == k_best].set_index("seed")
        b = grp[grp.keep_ratio == k_dense].set_index("seed")
        common = a.index.intersection(b.index)
        diff = (a.loc[common, "adv_acc"] - b.loc[common, "adv_acc"]).astype(float).to_numpy()
        n = diff.size
        half = t_quantile(level, n - 1) * diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        gain = float(diff.mean()) if n else math.nan
        rows.append({
            **dict(zip(keys, key)),
            "keep_dense": k_dense,
            "clean_dense": float(m.loc[k_dense, "clean_acc"]),
            "adv_dense": float(m.loc[k_dense, "adv_acc"]),
            "keep_best": k_best,
            "clean_best": float(m.loc[k_best, "clean_acc"]),
            "adv_best": float(m.loc[k_best, "adv_acc"]),
            "adv_gain": gain,
            "adv_gain_lo": gain - half,
            "adv_gain_hi": gain + half,
            "clean_drop": float(m.loc[k_dense, "clean_acc"] - m.loc[k_best, "clean_acc"]),
            "n_seeds": int(n),
        })
    return pd.DataFrame(rows)


def describe_sweet_spot(row: Mapping[str, Any]) -> str:
    """One sentence from a :func:`sweet_spot` row, e.g. "mlp on mnist, magnitude, FGSM 4/255: ..."."""
    ci = ""
    if np.isfinite(row.get("adv_gain_lo", np.nan)):
        ci = f" (95% CI {pp(row['adv_gain_lo'])} to {pp(row['adv_gain_hi'])}, {int(row['n_seeds'])} seeds)"
    elif row.get("n_seeds") is not None:
        ci = f" ({int(row['n_seeds'])} seed{'s' if int(row['n_seeds']) != 1 else ''}, no interval)"
    att = f"{str(row['attack']).upper()} {format_eps(float(row['eps']))}"
    head = f"{row['model']} on {row['dataset']}, {METHOD_LABELS.get(row['method'], row['method'])}, {att}: "
    if row["keep_best"] == row["keep_dense"]:
        return (head + f"attacked accuracy is highest without pruning ({pct(row['adv_dense'])} at keep "
                f"{row['keep_dense']:g}); no keep ratio in the sweep improves it.")
    return (head + f"attacked accuracy peaks at keep {row['keep_best']:g} with {pct(row['adv_best'])} vs "
            f"{pct(row['adv_dense'])} unpruned, a change of {pp(row['adv_gain'])}{ci}, while clean accuracy "
            f"moves from {pct(row['clean_dense'])} to {pct(row['clean_best'])}.")


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


def train_summary(infos: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per trained model from ``train_model``'s info dicts (arch, dataset, seed, epochs,
    train subset, test accuracy, total training seconds, cached flag, device, data source)."""
    rows = []
    for info in infos:
        cfg = info.get("config", {})
        rows.append({
            "arch": cfg.get("arch", info.get("arch")), "dataset": cfg.get("dataset", info.get("dataset")),
            "seed": cfg.get("seed"), "epochs": cfg.get("epochs"), "train_subset": cfg.get("train_subset"),
            "image_size": cfg.get("image_size"), "n_train": info.get("n_train"), "test_acc": info.get("test_acc"),
            "train_seconds": float(sum(info.get("epoch_times_s") or [])), "cached": bool(info.get("cached", False)),
            "device": info.get("device"), "data_source": info.get("data_source"), "hash": info.get("hash"),
        })
    return pd.DataFrame(rows)


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
        rows.append({**dict(zip(by, key)), "ref": ref, "drop": drop,
                     "keep_min": float(m.index[n_ok - 1]) if n_ok else math.nan})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------
def _method_style(method: str) -> dict:
    return {"color": METHOD_COLORS.get(method, None)}


def plot_band(ax, x, mean, lo, hi, *, label=None, color=None, linestyle="-", marker="o", alpha=0.2, **kw):
    """A line with markers and a shaded band (skipped where ``lo``/``hi`` are NaN)."""
    (line,) = ax.plot(x, mean, linestyle=linestyle, marker=marker, markersize=3.5, label=label, color=color, **kw)
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if np.isfinite(lo).any():
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


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
    """Clean (solid) and attacked (dashed) accuracy against the keep ratio, mean over seeds with
    a ``level`` t-interval band, one colour per pruning method (random baseline in grey).

    ``df`` is a sweep table for ONE model and data set (filter before calling). ``attack`` and
    ``eps`` select the attacked rows (default: the only ones present). The x axis runs from
    keep 1 (no pruning) on the left to heavy pruning on the right when ``invert`` (as the paper
    reads it: "as the pruning probability decreases from 1 ...").
    """
    d = df
    if attack is not None:
        d = d[d.attack == attack]
    if eps is not None:
        d = d[np.isclose(d.eps.astype(float), float(eps))]
    if d.empty:
        raise ConfigError(f"no rows for attack={attack!r}, eps={eps!r}")
    for col in ("model", "dataset"):
        if col in d.columns and d[col].nunique() > 1:
            raise ConfigError(f"plot_accuracy_vs_keep: filter to one {col} first; got {sorted(d[col].unique())}")
    pairs = d[["attack", "eps"]].drop_duplicates()
    if len(pairs) > 1:
        raise ConfigError(f"plot_accuracy_vs_keep: several attacks in the table {pairs.values.tolist()}; pass attack= and eps=")
    att, e = pairs.iloc[0]
    methods = list(methods) if methods is not None else sorted(d.method.unique(), key=lambda m: (m == "random", m))
    scale = 100.0 if percent else 1.0
    for m in methods:
        dm = d[d.method == m]
        if dm.empty:
            continue
        sty = _method_style(m)
        name = METHOD_LABELS.get(m, m)
        if clean:
            s = mean_ci(dm, "keep_ratio", "clean_acc", level)
            plot_band(ax, s.keep_ratio, s["mean"] * scale, s.lo * scale, s.hi * scale,
                      label=f"{name}: clean", linestyle="-", marker="o", **sty)
        s = mean_ci(dm, "keep_ratio", "adv_acc", level)
        plot_band(ax, s.keep_ratio, s["mean"] * scale, s.lo * scale, s.hi * scale,
                  label=f"{name}: {att.upper()} {format_eps(float(e))}", linestyle="--", marker="s", **sty)
    ax.set_xlabel(KEEP_LABEL)
    ax.set_ylabel("accuracy (%)" if percent else "accuracy")
    if invert and not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(fontsize=7)
    return ax


def accuracy_grid(df: pd.DataFrame, panels: Sequence[Mapping[str, Any]], *, ncols: int = 2,
                  size: tuple[float, float] = (4.6, 3.4), methods: Sequence[str] | None = None,
                  level: float = 0.95):
    """A figure with one :func:`plot_accuracy_vs_keep` panel per entry of ``panels``: each a
    dict of column filters (e.g. ``{"dataset": "mnist", "attack": "fgsm", "eps": 4/255}``) and
    an optional ``title``. Returns the figure."""
    import matplotlib.pyplot as plt

    n = len(panels)
    if n == 0:
        raise ConfigError("accuracy_grid: no panels to draw (empty result table?)")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax, spec in zip(axes.flat, panels):
        spec = dict(spec)
        title = spec.pop("title", None)
        attack, eps = spec.pop("attack", None), spec.pop("eps", None)
        d = df
        for col, val in spec.items():
            d = d[d[col] == val]
        plot_accuracy_vs_keep(d, ax, attack=attack, eps=eps, methods=methods, level=level,
                              title=title or ", ".join(str(v) for v in spec.values()))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
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
    return format_eps(a)


def attack_summary(df: pd.DataFrame) -> str:
    """One clause per attack in a sweep table: budget, steps, step size, restarts, attack seeds
    and number of evaluation examples, read from the table's columns (seeds are listed together)."""
    if df is None or df.empty or "attack" not in df.columns:
        return "no attack"
    cols = [c for c in ("attack", "eps", "attack_steps", "attack_alpha", "attack_restarts", "n") if c in df.columns]
    parts = []
    for key, grp in df.groupby(cols, sort=True, dropna=False):
        r = dict(zip(cols, key if isinstance(key, tuple) else (key,)))
        bits = [f"{str(r['attack']).upper()} (L∞, ε = {format_eps(float(r['eps']))}"]
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


def devices(df: pd.DataFrame | None) -> str:
    """The device(s) recorded in a result table, joined (``unknown`` if none)."""
    if df is None or "device" not in getattr(df, "columns", ()):
        return "unknown"
    vals = [str(v) for v in pd.unique(df["device"].dropna())]
    return ", ".join(vals) if vals else "unknown"


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
def save_figure(fig, out_dir: str | os.PathLike, name: str, formats: Iterable[str] = ("png", "svg"),
                dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.png`` and ``.svg``, each via a temporary file and rename."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
        paths.append(path)
    return paths


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
    and ``name`` are given), then close the figure."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    if out_dir is not None and name is not None:
        save_figure(fig, out_dir, name)
    display(fig)
    display(Markdown(text))
    plt.close(fig)


def glue(name: str, value: Any) -> Any:
    """``myst_nb.glue(name, value, display=False)`` when myst-nb is installed; returns ``value``."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst-nb is in the book requirements
        return value
    _glue(name, value, display=False)
    return value


def pct(x: float, digits: int = 1) -> str:
    """``0.9123 -> '91.2%'`` (``'n/a'`` for NaN)."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def pp(x: float, digits: int = 1) -> str:
    """A difference of fractions in percentage points with sign: ``0.031 -> '+3.1 pp'``."""
    if x is None or not np.isfinite(x):
        return "n/a"
    v = round(100 * float(x), digits) + 0.0  # no "-0.0"
    return f"{v:+.{digits}f} pp"
