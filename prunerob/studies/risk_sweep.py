"""Adversarial risk (Def. 1), optimality (Def. 2) and the bounds against the keep probability.

The experiment steps of Figs. 1, 7, 15 and 16 (Sec. 6.2, App. H.1, H.6) as functions returning
tidy tables, one row per (seed, keep ratio, L2 budget): the ``risk_vs_keep`` notebook only sets
parameters, calls these and plots. Pruning is the paper's probabilistic model with one keep
probability ``p`` for every weight (``B_ij ~ Bernoulli(p)``, Sec. 3), averaged over ``n_masks``
masks. Two estimators of the inner sup of Def. 1: the paper's mean over ``K`` uniform samples
of ``B(x, eps)`` (and their max), and projected gradient ascent (the worst case).

:func:`input_norm` is the one place ``E||x||`` (the ``||x_0||`` of Proposition 1 and Eq. 18) is
computed; ``algorithm1`` and ``pareto`` use it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from prunerob.analysis import stats
from prunerob.core.data import ArrayDataset
from prunerob.core.models import folded_mlp, mlp_weights
from prunerob.theory import bounds as B
from prunerob.theory.risk import bernoulli_sampler, mlp_forward, optimality_zeta, risk_over_masks
from prunerob.theory.tradeoff import layerwise_front, uniform_front
from prunerob.theory.transformer import OneLayerTransformer

__all__ = [
    "RiskSettings",
    "input_norm",
    "mlp_risk_table",
    "transformer_risk_table",
    "cnn_risk_table",
    "bound_fronts",
]


def input_norm(data: ArrayDataset | torch.Tensor) -> float:
    """``E||x||_2`` over the examples, pixels in [0, 1] (uint8 data is divided by 255).

    The ``||x_0||`` of Proposition 1 and the ``E||x||`` of Eq. 18 (Sec. 5.3, App. E).
    """
    x = data.x if isinstance(data, ArrayDataset) else data
    x = x.double().div(255) if x.dtype == torch.uint8 else x.double()
    return float(x.flatten(1).norm(dim=1).mean())


@dataclass(frozen=True)
class RiskSettings:
    """Monte-Carlo sizes of the risk estimates: masks per ``p``, ``K`` samples per neighbourhood,
    gradient-ascent steps and random restarts of the worst-case estimator."""

    n_masks: int = 3
    k_samples: int = 16
    steps: int = 10
    restarts: int = 2

    def estimator_kw(self, est: str) -> dict:
        """Keyword arguments of :func:`prunerob.theory.risk.risk_over_masks` for estimator ``est``."""
        return (
            dict(steps=self.steps, restarts=self.restarts) if est == "worst_case" else dict(K=self.k_samples)
        )


def _risks(f, kp, x, eps, ests, mc: RiskSettings, seed: int, **kw) -> dict:
    out = {}
    for est in ests:
        out[est], out[f"{est}_se"] = risk_over_masks(
            f,
            kp,
            x,
            eps,
            n_masks=mc.n_masks,
            estimator=est,
            seed=seed,
            progress=False,
            **mc.estimator_kw(est),
            **kw,
        )
    return out


def mlp_risk_table(
    model: nn.Module,
    x: torch.Tensor,
    keeps: Sequence[float],
    eps_l2: Sequence[float],
    *,
    tightness_eps: float,
    mc: RiskSettings,
    seed: int = 0,
    x0_norm: float | None = None,
) -> pd.DataFrame:
    """Risk, ζ and the bounds of Theorem 2 and Proposition 1 for a trained MLP (Figs. 1 and 15).

    ``x``: evaluation inputs in [0, 1] (``[n, ...]``). The normalisation inside the model is folded
    into the first layer (:func:`prunerob.core.models.folded_mlp`), so the bounds speak of the network
    on the pixels; the estimates run in float32 on the CPU. ``x0_norm`` defaults to
    :func:`input_norm` of ``x``. At ``tightness_eps`` the max over the ``K`` samples is also kept.
    """
    ws, bs = folded_mlp(model)
    x64 = x.double().flatten(1)
    with torch.no_grad():  # the folded network is the trained model
        ref = model.cpu().double()(x[:8].double())
        model.float()
    if not torch.allclose(mlp_forward(ws, bs, x64[:8]), ref, atol=1e-8):
        raise AssertionError("folded MLP differs from the model")
    x0 = input_norm(x64) if x0_norm is None else x0_norm
    ws32, bs32, x32 = [w.float() for w in ws], [b.float() for b in bs], x64.float()
    rows = []
    for keep in keeps:
        kp = [keep] * len(ws)
        z, z_se = optimality_zeta(
            ws32, bernoulli_sampler(ws32, kp), x32, n_masks=max(mc.n_masks, 2), seed=seed, biases=bs32
        )
        lip, lip_se = B.expected_lipschitz_mc(ws, kp, n_masks=max(mc.n_masks, 2), seed=seed)
        base = dict(
            seed=seed,
            keep_ratio=keep,
            zeta_est=z,
            zeta_se=z_se,
            x0_norm=x0,
            zeta_prop1_printed=B.proposition1_zeta(ws, kp, x0),
            zeta_prop1_corrected=B.proposition1_zeta_corrected(ws, kp, x0, biases=bs),
            thm2_printed=B.theorem2_gamma(ws, kp),
        )
        for eps in eps_l2:
            ests = ["sampling_mean", "worst_case"] + (["sampling_max"] if eps == tightness_eps else [])
            rows.append(
                {
                    **base,
                    "eps": eps,
                    **_risks(ws32, kp, x32, eps, ests, mc, seed, biases=bs32),
                    "thm2_times_eps": B.theorem2_gamma(ws, kp, eps=eps),
                    "thm2_corrected": B.theorem2_gamma_corrected(ws, kp, eps),
                    "realised_mask_bound": eps * lip,
                    "realised_mask_bound_se": eps * lip_se,
                }
            )
    return pd.DataFrame(rows).assign(n=len(x))


def transformer_risk_table(
    model: OneLayerTransformer,
    x: torch.Tensor,
    keeps: Sequence[float],
    eps: float,
    *,
    mc: RiskSettings,
    seed: int = 0,
) -> pd.DataFrame:
    """Risk of the transformer block in token space against Theorem 1 and Lemma 1 (Fig. 16).

    ``x``: images in [0, 1]; the block's input is ``model.tokens(x)``. The neighbourhood is the
    Frobenius ball of radius ``eps`` around the tokens (no box constraint).
    """
    with torch.no_grad():
        X = model.tokens(x)
    n_tokens = X.shape[1]
    rows = []
    for keep in keeps:
        r = _risks(model, keep, X, eps, ["sampling_mean", "worst_case"], mc, seed, method="block", box=False)
        rows.append(
            dict(
                seed=seed,
                keep_ratio=keep,
                eps=eps,
                n_tokens=n_tokens,
                **r,
                lemma1_printed=B.lemma1_gamma(model, eps),
                thm1_C=B.theorem1_C(model, keep),
                thm1_printed=B.theorem1_gamma(model, eps, keep),
                thm1_corrected=B.theorem1_gamma_corrected(model, eps, keep, n_tokens=n_tokens, box=False),
            )
        )
    return pd.DataFrame(rows).assign(n=len(x))


def cnn_risk_table(
    model: nn.Module,
    x: torch.Tensor,
    keeps: Sequence[float],
    eps_l2: Sequence[float],
    *,
    mc: RiskSettings,
    seed: int = 0,
) -> pd.DataFrame:
    """Risk and ζ of any module under Bernoulli pruning of every conv / linear weight (Fig. 7)."""
    model = model.cpu().float().eval()
    rows = []
    for keep in keeps:
        z, z_se = optimality_zeta(
            model, bernoulli_sampler(model, keep), x, n_masks=max(mc.n_masks, 2), seed=seed
        )
        for eps in eps_l2:
            rows.append(
                dict(
                    seed=seed,
                    keep_ratio=keep,
                    eps=eps,
                    zeta_est=z,
                    zeta_se=z_se,
                    **_risks(model, keep, x, eps, ["sampling_mean", "worst_case"], mc, seed),
                )
            )
    return pd.DataFrame(rows).assign(n=len(x))


def bound_fronts(model: nn.Module, x_norm: float, n_front: int, seed: int) -> pd.DataFrame:
    """Lemma 2's uniform curve (γ(p), ζ(p)) and the front over per-layer keep probabilities for
    a trained MLP (App. F, Fig. 6), ``n_front`` points each, tagged with ``seed`` and ``kind``."""
    w = mlp_weights(model)
    ps = np.linspace(0.0, 1.0, n_front)
    u = uniform_front(w, x_norm=x_norm, ps=ps).assign(seed=seed, kind="uniform (Lemma 2)")
    u["pareto"] = stats.pareto_mask(u[["gamma", "zeta"]].to_numpy(), maximize=False)
    lw = layerwise_front(w, qs=ps, x_norm=x_norm).assign(seed=seed, kind="per-layer front")
    return pd.concat([u, lw], ignore_index=True)
