"""Testing the mechanism behind a gain rather than asserting it (issue 13 item 6; paper Sec. 4-5,
Thm. 1-2, Prop. 1).

Per pruned model (:func:`mechanism_rows`, on the sweep's examples):

* ``margin``: mean logit margin ``z_y - max_{j != y} z_j`` of the clean inputs (and its quartiles);
* ``grad_l1``: mean ``||grad_x CE||_1``, the dual norm of L-inf, so FGSM raises the loss by about
  ``eps * ||grad_x CE||_1`` to first order;
* ``radius_ok``: fraction of examples whose first-order L-inf radius
  ``margin / ||grad_x margin||_1`` exceeds ``eps`` (a linearised prediction of attacked accuracy);
* ``lipschitz``: the realised-mask Lipschitz bound ``prod_l ||M_l o W_l||_2``
  (:func:`prunerob.theory.bounds.realised_mask_bound` with eps = 1; the product bound of Thm. 2 for one mask).

:func:`correlate` then measures, across the ``points`` = (seed, keep < 1) pairs, the Spearman
correlation of each metric's change against keep 1.0 with the measured per-seed paired gain
(``rho``, ``p``). Both quantities move with the keep ratio, so ANY quantity monotone in keep would
correlate across keep ratios; the second, discriminating test is WITHIN keep ratio: both are
centred on their mean over seeds at each keep ratio and correlated again (``rho_within``,
``p_within``, ``points_within``: keep ratios with >= 3 seeds; centring removes one degree of
freedom per keep ratio, so this p-value is slightly optimistic), i.e. does a seed whose metric
moved more also gain more? With fewer than 3 seeds the within test is not possible (NaN), and
nothing is supported. Rule: a mechanism is SUPPORTED when both correlations have the sign the
mechanism predicts (margin, radius_ok: positive; grad_l1, lipschitz: negative), ``|rho| >= 0.5``,
and both p-values are below 0.05 / m (Bonferroni over the m metrics tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import stats as st

from prunerob.config import parse_eps
from prunerob.core.pruning import apply_masks, make_masks, prunable_weights
from prunerob.studies.sweetspot.models import examples_on, mlp_model, mnist
from prunerob.theory.bounds import realised_mask_bound

__all__ = ["EXPECTED_SIGN", "margins", "mechanism_rows", "correlate", "mechanism_table"]

#: sign of the correlation with the gain that each mechanism predicts
EXPECTED_SIGN = {"margin": 1, "radius_ok": 1, "grad_l1": -1, "lipschitz": -1}


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


def margins(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example logit margin, ``||grad_x CE||_1`` and ``||grad_x margin||_1`` of ``model`` (eval)."""
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    g_ce = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x, retain_graph=True)[0]
    m = _margin(logits, y)
    g_m = torch.autograd.grad(m.sum(), x)[0]
    return {
        "margin": m.detach(),
        "grad_l1": g_ce.detach().flatten(1).abs().sum(1),
        "margin_grad_l1": g_m.detach().flatten(1).abs().sum(1),
    }


def mechanism_rows(
    model: nn.Module,
    data: Any,
    *,
    method: str,
    keeps: Sequence[float],
    eps: float,
    seed: int,
    n: int | None,
    batch_size: int = 500,
    subset_seed: int = 0,
    train_data: Any = None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """One row per keep ratio: ``margin`` (mean, ``margin_q25`` / ``margin_q50`` / ``margin_q75``),
    ``grad_l1``, ``radius_ok`` at ``eps`` and ``lipschitz`` (module docstring), on the first ``n``
    examples of the sweep's permutation."""
    dev, xf, y, _ = examples_on(model, data, n, subset_seed, device)
    model = model.to(dev).eval()
    rows = []
    for k in keeps:
        masks = make_masks(method, model, float(k), seed=seed, data=train_data)
        pruned = apply_masks(model, masks).eval()
        parts = [
            margins(pruned, xf[i : i + batch_size], y[i : i + batch_size])
            for i in range(0, len(y), batch_size)
        ]
        d = {key: torch.cat([p[key] for p in parts]).cpu().double() for key in parts[0]}
        radius = d["margin"] / d["margin_grad_l1"].clamp_min(1e-12)
        ws = list(prunable_weights(model).values())
        q = torch.quantile(d["margin"], torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
        rows.append(
            {
                "method": method,
                "keep_ratio": float(k),
                "seed": int(seed),
                "n": int(len(y)),
                "eps": float(eps),
                "margin": float(d["margin"].mean()),
                "margin_q25": float(q[0]),
                "margin_q50": float(q[1]),
                "margin_q75": float(q[2]),
                "grad_l1": float(d["grad_l1"].mean()),
                "radius_ok": float((radius > eps).double().mean()),
                "lipschitz": realised_mask_bound(
                    [w.detach().cpu() for w in ws], [m.cpu() for m in masks.values()], 1.0
                ),
            }
        )
    return pd.DataFrame(rows)


def _spearman(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    ok = len(a) >= 3 and a.nunique() > 1 and b.nunique() > 1
    return tuple(float(v) for v in st.spearmanr(a, b)) if ok else (np.nan, np.nan)


def correlate(
    mech: pd.DataFrame,
    sweep: pd.DataFrame,
    attack: str,
    eps: float,
    metrics: Sequence[str] = tuple(EXPECTED_SIGN),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Spearman correlation, over (seed, keep < 1), of each metric's change against keep 1.0 with
    the per-seed paired gain of ``attack`` at ``eps`` in ``sweep`` (same method), across and within
    keep ratios; ``supported`` by the module's rule (Bonferroni over ``metrics``)."""
    s = sweep[(sweep.attack == attack) & np.isclose(sweep.eps, eps)]
    gain = s.pivot_table(index="seed", columns="keep_ratio", values="adv_acc", aggfunc="mean")
    gain = gain.sub(gain[1.0], axis=0).stack().rename("gain").reset_index()
    a = alpha / max(1, len(metrics))
    rows = []
    for m in metrics:
        base = mech[np.isclose(mech.keep_ratio, 1.0)].set_index("seed")[m]
        d = mech.assign(delta=mech[m] - mech.seed.map(base)).merge(gain, on=["seed", "keep_ratio"])
        d = d[d.keep_ratio < 1.0]
        rho, p = _spearman(d.delta, d.gain)
        w = d[d.groupby("keep_ratio").seed.transform("size") >= 3]
        cen = w[["delta", "gain"]] - w.groupby("keep_ratio")[["delta", "gain"]].transform("mean")
        rho_w, p_w = _spearman(cen.delta, cen.gain)
        sign = EXPECTED_SIGN[m]
        ok = np.sign(rho) == sign and abs(rho) >= 0.5 and p < a and np.sign(rho_w) == sign and p_w < a
        rows.append(
            {
                "metric": m,
                "expected_sign": "+" if sign > 0 else "-",
                "rho": rho,
                "p": p,
                "points": len(d),
                "rho_within": rho_w,
                "p_within": p_w,
                "points_within": len(w),
                "alpha_bonferroni": a,
                "supported": bool(ok),
            }
        )
    return pd.DataFrame(rows)


def mechanism_table(
    *,
    epochs: int,
    seeds: Sequence[int],
    method: str,
    keeps: Sequence[float],
    eps: float | str,
    n: int | None,
    train_subset: int | None = None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
) -> pd.DataFrame:
    """:func:`mechanism_rows` of the MNIST MLPs (:func:`prunerob.studies.sweetspot.models.mlp_model`),
    every seed."""
    test = mnist("test", data_root)
    return pd.concat(
        [
            mechanism_rows(
                mlp_model(epochs, s, train_subset=train_subset, device=device, data_root=data_root)[0],
                test,
                method=method,
                keeps=keeps,
                eps=parse_eps(eps),
                seed=int(s),
                n=n,
                device=device,
            )
            for s in seeds
        ],
        ignore_index=True,
    )
