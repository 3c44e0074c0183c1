"""Adopt committed results into the result store (a one-off migration, recorded as such).

The pages committed before the store existed hold every evaluation cell in their ``sweep.csv``
(with its per-example bits), every trained model in ``models.csv`` and every training curve in
``training_curve.csv``. When ``$PRUNEROB_STORE_ADOPT`` names such a results folder, a unit missing
from the store is taken from those tables instead of being recomputed, provided the row matches
the unit exactly (model, data set, seed, part, method, keep, attack, eps, n and the training
configuration hash); anything that does not match is computed as usual. Adopted units are marked
``"adopted": <folder>`` in their value, so the store says which results were migrated. Use it only
on pages whose run stamps were current (``prunerob reproduce --list``), i.e. produced by the code
that the keys name; ``prunerob store verify`` then recomputes a sample and compares bit for bit.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

ADOPT_ENV = "PRUNEROB_STORE_ADOPT"


def label(folder: Path) -> str:
    """What an adopted unit says it came from: ``results/<page>`` plus ``$PRUNEROB_STORE_ADOPT_FROM``
    (e.g. the commit whose committed tables were adopted)."""
    src = os.environ.get("PRUNEROB_STORE_ADOPT_FROM", "")
    return f"results/{Path(folder).name}" + (f" at {src}" if src else "")


def adopt_dir() -> Path | None:
    v = os.environ.get(ADOPT_ENV)
    return Path(v) if v else None


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


@functools.lru_cache(maxsize=8)
def _table(path: str) -> pd.DataFrame | None:
    p = Path(path)
    if not p.is_file():
        return None
    return pd.read_csv(p, float_precision="round_trip", keep_default_na=True, dtype={"clean_bits": str,
                                                                                     "adv_bits": str})


def cell_rows(folder: Path, *, model: str, dataset: str, seed: int, part: str, train_hash: str,
              drop: set[str]) -> dict[tuple, tuple[list[str], list[Any]]]:
    """``(method, keep, attack, eps) -> (columns, values)`` of the committed rows of one unit."""
    df = _table(str(folder / "sweep.csv"))
    if df is None:
        return {}
    part_col = df["part"] if "part" in df else pd.Series(["main"] * len(df))
    sel = df[(df.model == model) & (df.dataset == dataset) & (df.seed == seed) & (part_col == part)
             & (df.train_config_hash.astype(str) == train_hash if "train_config_hash" in df else True)]
    cols = [c for c in df.columns if c not in drop and c != "config_hash"]
    out = {}
    for _, r in sel.iterrows():
        out[(str(r.method), float(r.keep_ratio), str(r.attack), float(r.eps))] = (
            cols, [_plain(r[c]) for c in cols])
    return out


def cell_seconds(folder: Path) -> float:
    """Estimated compute seconds of one adopted cell: the page's recorded wall time (its run stamp,
    copied to ``stamp.json`` in the folder) less the training time of the models it trained, over
    its sweep rows. Used only to estimate the cost of recomputing stale units."""
    import json

    try:
        total = float(json.loads((folder / "stamp.json").read_text()).get("seconds", 0.0))
    except (OSError, ValueError):
        return 0.0
    sweep, models = _table(str(folder / "sweep.csv")), _table(str(folder / "models.csv"))
    trained = 0.0
    if models is not None and "train_seconds" in models:
        trained = float(models.loc[~models.cached.astype(bool), "train_seconds"].sum())
    return max(total - trained, 0.0) / max(len(sweep) if sweep is not None else 1, 1)


def train_info(folder: Path, *, arch: str, dataset: str, seed: int, train_hash: str) -> dict[str, Any] | None:
    """The committed ``models.csv`` row of one trained model as a ``train_model`` info dict."""
    df = _table(str(folder / "models.csv"))
    if df is None or "hash" not in df:
        return None
    sel = df[(df.arch == arch) & (df.dataset == dataset) & (df.seed == seed)
             & (df.hash.astype(str) == train_hash)]
    if sel.empty:
        return None
    r = {k: _plain(v) for k, v in sel.iloc[0].items()}
    secs = r.get("train_seconds") or 0.0
    return {"config": {"arch": arch, "dataset": dataset, "seed": seed, "epochs": r.get("epochs"),
                       "train_subset": r.get("train_subset"), "image_size": r.get("image_size")},
            "n_train": r.get("n_train"), "test_acc": r.get("test_acc"), "epoch_times_s": [secs],
            "cached": bool(r.get("cached")), "device": r.get("device"), "data_source": r.get("data_source"),
            "hash": train_hash, "dtype": "torch.float32", "adopted": label(folder)}


def curve_rows(folder: Path, *, arch: str, dataset: str, seed: int) -> list[dict[str, Any]] | None:
    """The committed ``training_curve.csv`` rows of one run (epoch, test_acc, train_loss, seconds)."""
    df = _table(str(folder / "training_curve.csv"))
    if df is None:
        return None
    sel = df[(df.model == arch) & (df.dataset == dataset) & (df.seed == seed)]
    if sel.empty:
        return None
    cols = ("epoch", "test_acc", "train_loss", "seconds")
    return [{k: _plain(r[k]) for k in cols} for _, r in sel.iterrows()]


def table_rows(folder: Path, name: str, match: dict[str, Any]) -> pd.DataFrame | None:
    """The rows of the committed ``name`` CSV in ``folder`` whose columns equal ``match``."""
    df = _table(str(folder / name))
    if df is None:
        return None
    sel = df
    for k, v in match.items():
        if k not in sel:
            return None
        sel = sel[sel[k] == v]
    return sel.reset_index(drop=True) if len(sel) else None
