"""Stronger attacks at the cells with a gain, to separate robustness from gradient masking
(paper App. H: PGD, CW, AutoAttack; issue 13 item 2).

At each selected (method, keep, eps) cell and at keep 1.0 of the same seed and examples:

* ``pgd-50x5``: PGD with 50 steps and 5 restarts (``attack_overrides={"pgd": {"steps": 50,
  "restarts": 5}}`` of :func:`prunerob.sweep.run_sweep`; step size 2.5 eps / 50);
* ``transfer``: the adversarial examples of that PGD-50x5 crafted on the UNPRUNED model of the same
  seed (same examples, same per-batch seeds as the sweep), evaluated on the pruned model
  (:func:`transfer_rows`; at keep 1.0 it is exactly the white-box attack);
* ``autoattack``: AutoAttack standard (Croce & Hein 2020) on a fixed subset of >= 1000 images.

Label rule (:func:`label_cells`), per cell that has a significant gain (:func:`prunerob.sweetspot.grid.flag`)
under FGSM or PGD-5: ``"robustness"`` when the paired gain under the strongest white-box attack run
there (AutoAttack, else PGD-50x5) is still significant by the same rule (95% interval above 0 and
McNemar p < 0.05 in most seeds), ``"masking"`` when it is not;
the label says ``(PGD-50x5 only)`` where AutoAttack was not run. A cell without a significant weak
gain is ``"no gain"``. ``transfer_stronger`` marks cells where the transferred examples fool the pruned
model more than its own white-box PGD-50x5 does (a classic sign of masked gradients).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from prunerob.attacks import AttackSpec, attack_batches, make_attack
from prunerob.config import device_name, format_eps, resolve_device
from prunerob.pruning import apply_masks, make_masks
from prunerob.subsets import as_examples, select_examples, to_float
from prunerob.sweep import pack_bits

from .models import mlp_model, mnist, sweep_mlps

__all__ = ["STRONG_PGD", "WEAK", "select_cells", "strong_rows", "transfer_rows", "label_cells"]

#: the PGD-50 x 5 restarts override of the sweep's ``pgd`` entry
STRONG_PGD: dict[str, dict[str, Any]] = {"pgd": {"steps": 50, "restarts": 5}}
#: attacks whose significant gains select cells
WEAK = ("fgsm", "pgd")
#: attack labels of the strong table, weakest first
STRONG_LABELS = ("pgd-50x5", "transfer", "autoattack")


def select_cells(g: pd.DataFrame, max_cells: int, fill: bool = True) -> pd.DataFrame:
    """The (method, keep, eps) cells with a significant gain under FGSM or PGD-5, largest first
    (at most ``max_cells``); with ``fill`` and fewer found, the largest positive mean gains fill
    up the list (``selected`` says which). Keep 1.0 and eps 0 are never cells."""
    d = g[g.attack.isin(WEAK) & (g.keep_ratio < 1.0) & (g.eps > 0)].copy()
    d["selected"] = np.where(
        d.significant == "gain", "significant gain", "largest mean gain (not significant)"
    )
    sig = d[d.significant == "gain"].sort_values("gain", ascending=False)
    rest = d[(d.significant != "gain") & (d.gain > 0)].sort_values("gain", ascending=False)
    pool = pd.concat([sig, rest]) if fill else sig
    pool = pool.drop_duplicates(["method", "keep_ratio", "eps"])
    return pool.head(int(max_cells))[
        ["method", "keep_ratio", "eps", "attack", "gain", "gain_lo", "gain_hi", "significant", "selected"]
    ].reset_index(drop=True)


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
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """PGD (``overrides``, default PGD-50x5) crafted on the unpruned ``model`` and evaluated on the
    pruned ones: the examples of :func:`prunerob.subsets.select_examples` (as the sweep), batch ``b``
    attacked with the global RNG seeded ``seed + b`` (as the sweep), so keep 1.0 equals the white-box
    sweep row bit for bit. One row per keep ratio with the sweep's accuracy and bit columns."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    x, y, desc = select_examples(as_examples(data, "data"), n, subset_seed)
    xf, y = to_float(x, next(model.parameters()).dtype).to(dev), y.to(dev)
    spec = AttackSpec(
        name="pgd", eps=eps, seed=seed, **dict(STRONG_PGD["pgd"] if overrides is None else overrides)
    )
    x_adv, _, _ = attack_batches(make_attack(spec, model), model, (xf, y), batch_size, seed=seed)
    rows = []
    for k in keeps:
        pruned = apply_masks(model, make_masks(method, model, float(k), seed=seed, data=train_data)).eval()
        with torch.no_grad():
            clean = torch.cat(
                [
                    pruned(xf[i : i + batch_size]).argmax(1) == y[i : i + batch_size]
                    for i in range(0, len(y), batch_size)
                ]
            ).cpu()
            adv = torch.cat(
                [
                    pruned(x_adv[i : i + batch_size].to(dev)).argmax(1) == y[i : i + batch_size]
                    for i in range(0, len(y), batch_size)
                ]
            ).cpu()
        rows.append(
            {
                "method": method,
                "keep_ratio": float(k),
                "attack": "transfer",
                "eps": float(eps),
                "eps_label": format_eps(float(eps)),
                "seed": int(seed),
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


def strong_rows(
    cells: pd.DataFrame,
    *,
    epochs: int,
    seeds: Sequence[int],
    n: int,
    aa_seeds: Sequence[int],
    aa_n: int,
    aa_cells: int,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
) -> pd.DataFrame:
    """PGD-50x5 (all ``cells`` + keep 1.0, ``seeds``, ``n`` images), transfer (same) and AutoAttack
    (the first ``aa_cells`` cells + keep 1.0, ``aa_seeds``, ``aa_n`` images) on the MNIST MLP."""
    tables = []
    test = mnist("test", data_root)
    for (method, e), c in cells.groupby(["method", "eps"], sort=False):
        keeps = sorted({1.0, *c.keep_ratio.astype(float)}, reverse=True)
        base = dict(
            epochs=[epochs],
            widths=[512],
            methods=[method],
            keeps=keeps,
            eps=[float(e)],
            device=device,
            data_root=data_root,
            train_subset=train_subset,
        )
        tables.append(
            sweep_mlps(**base, seeds=seeds, attacks=["pgd"], n=n, attack_overrides=STRONG_PGD).assign(
                attack="pgd-50x5"
            )
        )
        for s in seeds:
            model, _ = mlp_model(epochs, s, train_subset=train_subset, device=device, data_root=data_root)
            tables.append(
                transfer_rows(
                    model, test, method=method, keeps=keeps, eps=float(e), seed=int(s), n=n, device=device
                ).assign(model="mlp", dataset="mnist")
            )
    top = cells.head(int(aa_cells))
    for (method, e), c in top.groupby(["method", "eps"], sort=False):
        if aa_n and list(aa_seeds):
            keeps = sorted({1.0, *c.keep_ratio.astype(float)}, reverse=True)
            tables.append(
                sweep_mlps(
                    epochs=[epochs],
                    widths=[512],
                    methods=[method],
                    keeps=keeps,
                    eps=[float(e)],
                    device=device,
                    data_root=data_root,
                    train_subset=train_subset,
                    seeds=aa_seeds,
                    attacks=["autoattack"],
                    n=aa_n,
                )
            )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _cell(g: pd.DataFrame, method: str, keep: float, eps: float, attack: str) -> pd.Series | None:
    d = g[
        (g.method == method) & np.isclose(g.keep_ratio, keep) & np.isclose(g.eps, eps) & (g.attack == attack)
    ]
    return None if d.empty else d.iloc[0]


def label_cells(
    weak: pd.DataFrame, strong: pd.DataFrame, strong_raw: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per cell of the strong table: the gain (with interval) under FGSM, PGD-5, PGD-50x5,
    transfer and AutoAttack, ``transfer_stronger`` and the ``label`` of the module's rule.
    ``weak`` / ``strong``: :func:`prunerob.sweetspot.grid.gains` of the weak grid and of
    :func:`strong_rows`; ``strong_raw``: the strong rows (for ``transfer_stronger``)."""
    out = []
    cells = strong[(strong.keep_ratio < 1.0)][["method", "keep_ratio", "eps"]].drop_duplicates()
    for c in cells.itertuples():
        row: dict[str, Any] = {
            "method": c.method,
            "keep_ratio": c.keep_ratio,
            "eps": c.eps,
            "eps_label": format_eps(float(c.eps)),
        }
        for a, src in (("fgsm", weak), ("pgd", weak), *((s, strong) for s in STRONG_LABELS)):
            r = _cell(src, c.method, c.keep_ratio, c.eps, a)
            row.update(
                {
                    f"{a}_gain": np.nan if r is None else r.gain,
                    f"{a}_lo": np.nan if r is None else r.gain_lo,
                    f"{a}_hi": np.nan if r is None else r.gain_hi,
                    f"{a}_flag": "not run" if r is None else r.significant,
                    f"{a}_seeds": 0 if r is None else int(r.n_seeds),
                }
            )
        row["transfer_stronger"] = _transfer_stronger(strong_raw, c) if strong_raw is not None else False
        row["label"] = label_rule(row)
        out.append(row)
    return pd.DataFrame(out)


def _transfer_stronger(raw: pd.DataFrame, c: Any) -> bool:
    d = raw[(raw.method == c.method) & np.isclose(raw.keep_ratio, c.keep_ratio) & np.isclose(raw.eps, c.eps)]
    m = d.groupby("attack").adv_acc.mean()
    return bool("transfer" in m and "pgd-50x5" in m and m["transfer"] < m["pgd-50x5"])


def label_rule(row: Mapping[str, Any]) -> str:
    """The label of one cell from its ``{attack}_flag`` / ``{attack}_lo`` fields (module docstring)."""
    if not any(row.get(f"{a}_flag") == "gain" for a in WEAK):
        return "no gain"
    strongest = "autoattack" if row.get("autoattack_flag", "not run") != "not run" else "pgd-50x5"
    if row.get(f"{strongest}_flag", "not run") == "not run":
        return "untested"
    label = "robustness" if row.get(f"{strongest}_flag") == "gain" else "masking"
    return label + (" (PGD-50x5 only)" if strongest == "pgd-50x5" else "")
