"""Stronger attacks at the cells with a gain, to separate robustness from gradient masking
(paper App. H: PGD, CW, AutoAttack; issue 13 item 2).

At each selected (method, keep, eps) cell and at keep 1.0 of the same seed and examples (all
models in eval mode, inputs in [0, 1], normalisation inside the model, as in :mod:`prunerob.core.attacks`):

* ``pgd-50x5``: PGD with 50 steps and 5 restarts, per example the restart that misclassifies
  (else the highest loss) kept (``attack_overrides={"pgd": {"steps": 50, "restarts": 5}}`` of
  :func:`prunerob.engine.sweep.run_sweep`; step size 2.5 eps / 50);
* ``transfer``: the adversarial examples of that PGD-50x5 crafted on the UNPRUNED model of the same
  seed (same examples, same per-batch seeds as the sweep), evaluated on the pruned model with the
  SAME masks as the white-box sweep (mask draws and Taylor score data included;
  :func:`transfer_rows`; at keep 1.0 it is exactly the white-box attack);
* ``worst-case``: per example, correct only when correct under both PGD-50x5 and transfer
  (:func:`worst_case_rows`; the per-example minimum over the attacks, Croce & Hein 2020's rule);
* ``autoattack``: AutoAttack standard (Croce & Hein 2020; torchattacks ``version="standard"``)
  on a fixed subset (the first ``aa_n`` of the same permutation; >= 1000 images outside ``quick``).

The cells (:func:`select_cells`) and their labels (:func:`label_rule`, :func:`label_cells`) are in
the torch-free :mod:`prunerob.studies.sweetspot.labels` (re-exported here): cells with the largest mean weak
gains whether or not the weak gain is a real gain, and a label that follows the strongest attack run
at the cell (AutoAttack, else the worst case). ``transfer_stronger`` marks cells where the
transferred examples fool the pruned model more than its own white-box PGD-50x5 does (a classic sign
of masked gradients, Athalye et al. 2018).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from prunerob.config import device_name, format_eps
from prunerob.core.attacks import AttackSpec, attack_batches, make_attack
from prunerob.core.pruning import apply_masks, get_method, make_masks
from prunerob.engine.sweep import pack_bits, unpack_bits
from prunerob.studies.sweetspot.labels import STRONG_LABELS, WEAK, label_cells, label_rule, select_cells
from prunerob.studies.sweetspot.models import (
    draws,
    examples_on,
    mask_seed,
    mlp_model,
    mnist,
    score_data,
    sweep_mlps,
)

__all__ = [
    "STRONG_PGD",
    "WEAK",
    "STRONG_LABELS",
    "select_cells",
    "strong_rows",
    "transfer_rows",
    "worst_case_rows",
    "label_cells",
    "label_rule",
]

#: the PGD-50 x 5 restarts override of the sweep's ``pgd`` entry
STRONG_PGD: dict[str, dict[str, Any]] = {"pgd": {"steps": 50, "restarts": 5}}
#: attacks combined per example into ``worst-case``
WORST_OF = ("pgd-50x5", "transfer")


def transfer_rows(
    model: torch.nn.Module,
    data: Any,
    *,
    method: str,
    keeps: Sequence[float],
    eps: float,
    seed: int,
    n: int | None,
    batch_size: int = 500,
    subset_seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    train_data: Any = None,
    mask_draws: int = 1,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """PGD (``overrides``, default PGD-50x5) crafted once on the unpruned ``model`` and evaluated on
    the pruned ones: the examples of :func:`prunerob.core.subsets.select_examples` (as the sweep), batch
    ``b`` attacked with the global RNG seeded ``seed + b`` (as the sweep), so keep 1.0 equals the
    white-box sweep row bit for bit. The pruned models are the sweep's: masks seeded
    :func:`prunerob.studies.sweetspot.models.mask_seed` per draw (stochastic rules), ``train_data`` for
    Taylor. One row per (keep, draw), with the sweep's accuracy and bit columns."""
    dev, xf, y, desc = examples_on(model, data, n, subset_seed, device)
    model = model.to(dev).eval()
    spec = AttackSpec(
        name="pgd", eps=eps, seed=seed, **dict(STRONG_PGD["pgd"] if overrides is None else overrides)
    )
    x_adv, _, _ = attack_batches(make_attack(spec, model), model, (xf, y), batch_size, seed=seed)
    rows = []
    for j in range(draws(method, mask_draws)):
        ms = mask_seed(seed, j)
        for k in keeps:
            masks = make_masks(method, model, float(k), seed=ms, data=train_data)
            clean, adv = _correct(apply_masks(model, masks).eval(), xf, x_adv.to(dev), y, batch_size)
            rows.append(
                {
                    "method": method,
                    "keep_ratio": float(k),
                    "attack": "transfer",
                    "eps": float(eps),
                    "eps_label": format_eps(float(eps)),
                    "seed": int(seed),
                    "sweep_seed": ms,
                    "mask_draw": j,
                    "n": int(len(y)),
                    "clean_acc": float(clean.float().mean()),
                    "adv_acc": float(adv.float().mean()),
                    "clean_bits": pack_bits(clean),
                    "adv_bits": pack_bits(adv),
                    "eval_subset": desc,
                    "source_model": "unpruned (keep 1.0), same seed",
                    "attack_steps": spec.steps,
                    "attack_restarts": spec.restarts,
                    "attack_alpha": spec.alpha,
                    "device": device_name(dev),
                }
            )
    return pd.DataFrame(rows)


def _correct(
    net: torch.nn.Module, xf: torch.Tensor, xa: torch.Tensor, y: torch.Tensor, bs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example correctness of ``net`` on clean ``xf`` and on ``xa`` (CPU bool tensors)."""
    with torch.no_grad():
        clean = torch.cat([net(xf[i : i + bs]).argmax(1) == y[i : i + bs] for i in range(0, len(y), bs)])
        adv = torch.cat([net(xa[i : i + bs]).argmax(1) == y[i : i + bs] for i in range(0, len(y), bs)])
    return clean.cpu(), adv.cpu()


def worst_case_rows(rows: pd.DataFrame, attacks: Sequence[str] = WORST_OF) -> pd.DataFrame:
    """Per (method, keep, eps, seed, mask draw) seen under every attack in ``attacks`` (same
    examples): ``adv_bits`` = AND of their ``adv_bits`` (an example counts as robust only when no
    attack fools it), attack ``"worst-case"``."""
    keys = [c for c in ("model", "dataset", "method", "keep_ratio", "eps", "seed", "mask_draw") if c in rows]
    d = rows[rows.attack.isin(attacks)]
    out = []
    for _, g in d.groupby(keys, sort=True, dropna=False):
        if set(g.attack) != set(attacks) or g.n.nunique() != 1:
            continue
        n = int(g.n.iloc[0])
        bits = np.logical_and.reduce([unpack_bits(b, n) for b in g.adv_bits])
        r = g.iloc[0].to_dict()
        r.update(attack="worst-case", adv_acc=float(bits.mean()), adv_bits=pack_bits(bits),
                 adv_correct=int(bits.sum()), worst_of=" + ".join(attacks))
        out.append(r)
    return pd.DataFrame(out)


def strong_rows(
    cells: pd.DataFrame,
    *,
    epochs: int,
    seeds: Sequence[int],
    n: int,
    aa_seeds: Sequence[int],
    aa_n: int,
    aa_cells: int,
    mask_draws: int = 1,
    score_examples: int | None = 2560,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
) -> pd.DataFrame:
    """PGD-50x5 (all ``cells`` + keep 1.0, ``seeds``, ``n`` images), transfer (same), their
    per-example worst case, and AutoAttack (the first ``aa_cells`` cells + keep 1.0, ``aa_seeds``,
    ``aa_n`` images) on the MNIST MLP; stochastic rules over ``mask_draws`` masks as in the weak grid."""
    tables = []
    test = mnist("test", data_root)
    needs = any(get_method(m).needs_data for m in cells.get("method", []))
    train = mnist("train", data_root) if needs else None
    base = dict(epochs=[epochs], widths=[512], device=device, data_root=data_root, train_subset=train_subset,
                mask_draws=mask_draws, score_examples=score_examples)
    for (method, e), c in cells.groupby(["method", "eps"], sort=False):
        keeps = sorted({1.0, *c.keep_ratio.astype(float)}, reverse=True)
        cell = dict(base, methods=[method], keeps=keeps, eps=[float(e)])
        white = sweep_mlps(**cell, seeds=seeds, attacks=["pgd"], n=n, attack_overrides=STRONG_PGD)
        parts = [white.assign(attack="pgd-50x5")]
        for s in seeds:
            model, _ = mlp_model(epochs, s, train_subset=train_subset, device=device, data_root=data_root)
            sd = score_data(train, s, score_examples) if get_method(method).needs_data else None
            parts.append(
                transfer_rows(
                    model, test, method=method, keeps=keeps, eps=float(e), seed=int(s), n=n,
                    train_data=sd, mask_draws=mask_draws, device=device,
                ).assign(model="mlp", dataset="mnist", train_epochs=int(epochs), width=512)
            )
        both = pd.concat(parts, ignore_index=True)
        tables += [both, worst_case_rows(both)]
    for (method, e), c in cells.head(int(aa_cells)).groupby(["method", "eps"], sort=False):
        if aa_n and list(aa_seeds):
            keeps = sorted({1.0, *c.keep_ratio.astype(float)}, reverse=True)
            cell = dict(base, methods=[method], keeps=keeps, eps=[float(e)])
            tables.append(sweep_mlps(**cell, seeds=aa_seeds, attacks=["autoattack"], n=aa_n))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
