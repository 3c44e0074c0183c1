"""Per-layer keep probabilities chosen by Algorithm 1 and by the minimiser of J, evaluated (Fig. 5).

Sec. 5.3 / App. E: for a trained MLP, Algorithm 1 (and the verified minimiser of
``J = λγ + (1-λ)ζ``, :mod:`prunerob.theory.tradeoff`) return one keep probability per layer for each λ.
:func:`choose` runs both for each mode; :func:`evaluate_choices` turns each distinct choice into
a per-layer magnitude mask (keep the ``round(p_l n_l)`` largest ``|w|`` of layer ``l``) and
measures clean and attacked accuracy through :func:`prunerob.engine.sweep.run_sweep`, so the examples,
batches and attack seeds are the ones of the uniform keep grid it is compared with.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from prunerob.core.models import mlp_weights
from prunerob.core.pruning import apply_masks, magnitude_masks, prunable_weights
from prunerob.engine.sweep import run_sweep
from prunerob.theory.tradeoff import pareto_sweep

__all__ = ["choose", "layer_masks", "evaluate_choices", "keep_columns"]


def keep_columns(table: pd.DataFrame) -> list[str]:
    """The ``keep_1 .. keep_L`` columns of a :func:`choose` table, in layer order."""
    return sorted(
        (c for c in table.columns if c.startswith("keep_") and c[5:].isdigit()), key=lambda c: int(c[5:])
    )


def choose(
    model: nn.Module,
    lambdas: Sequence[float],
    modes: Sequence[str],
    *,
    x_norm: float,
    p0: float = 0.5,
    tol: float = 1e-8,
    max_iter: int = 50,
) -> pd.DataFrame:
    """:func:`prunerob.theory.tradeoff.pareto_sweep` for each mode (``uniform``, ``layerwise``): one row per
    (mode, method, λ) with ``keep_1..keep_L``, γ, ζ, J and the iteration count (Eq. 17-20)."""
    w = mlp_weights(model)
    return pd.concat(
        [pareto_sweep(w, lambdas, x_norm=x_norm, mode=m, p0=p0, tol=tol, max_iter=max_iter) for m in modes],
        ignore_index=True,
    ).assign(x_norm=x_norm)


def layer_masks(model: nn.Module, keep_per_layer: Sequence[float]) -> OrderedDict[str, torch.Tensor]:
    """Magnitude masks with keep ratio ``keep_per_layer[l]`` within layer ``l`` (prunable-weight order)."""
    masks: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (name, w), k in zip(prunable_weights(model).items(), keep_per_layer, strict=True):
        masks.update(magnitude_masks(OrderedDict([(name, w)]), float(k)))
    return masks


def evaluate_choices(
    model: nn.Module,
    choices: pd.DataFrame,
    data: Any,
    *,
    attacks: Sequence[str],
    eps: str,
    n: int | None,
    seed: int = 0,
    device: Any = "auto",
    model_name: str = "mlp",
    dataset_name: str = "mnist",
) -> pd.DataFrame:
    """Clean and attacked accuracy of ``model`` pruned per row of ``choices`` (columns ``keep_l``).

    Each distinct keep vector is pruned once (:func:`layer_masks`, :func:`apply_masks`) and swept
    at keep 1.0 (nothing further removed) with :func:`run_sweep`. Adds ``clean_acc`` and
    ``adv_acc_<attack>`` per row; rows whose choice is undefined (NaN) are dropped.
    """
    cols = keep_columns(choices)
    ch = choices.dropna(subset=cols).copy()
    keys = [tuple(round(float(v), 6) for v in r) for r in ch[cols].to_numpy()]
    acc = {}
    for key in dict.fromkeys(keys):
        pruned = apply_masks(model, layer_masks(model, key)).eval()
        t = run_sweep(
            pruned,
            data,
            model_name=model_name,
            dataset_name=dataset_name,
            methods=["magnitude"],
            keeps=[1.0],
            attacks=list(attacks),
            eps=eps,
            n=n,
            seed=seed,
            device=device,
            progress=False,
        )
        acc[key] = {
            "clean_acc": float(t.clean_acc.iloc[0]),
            **{f"adv_acc_{a}": float(t[t.attack == a].adv_acc.iloc[0]) for a in attacks},
        }
    return pd.concat([ch.reset_index(drop=True), pd.DataFrame([acc[k] for k in keys])], axis=1).assign(
        seed=seed
    )


def mean_choices(ch: pd.DataFrame, attack: str) -> pd.DataFrame:
    """Mean over seeds of clean and ``attack`` accuracy per (mode, method, λ): columns ``clean``, ``adv``."""
    g = ch.groupby(["mode", "method", "lam"])[["clean_acc", f"adv_acc_{attack}"]].mean().reset_index()
    return g.rename(columns={"clean_acc": "clean", f"adv_acc_{attack}": "adv"})


def vertices(ch: pd.DataFrame) -> list[tuple[float, ...]]:
    """The distinct keep vectors the minimiser returned (rounded to 3 decimals)."""
    rows = ch[ch.method == "minimiser"][keep_columns(ch)].to_numpy()
    return sorted({tuple(round(float(x), 3) for x in v) for v in rows})
