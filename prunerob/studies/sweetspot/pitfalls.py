"""Four implementation pitfalls that can make a sweet spot appear, reproduced ON PURPOSE and
labelled, each next to the correct run (issue 13 item 5; paper Fig. 2 at eps = 4/255).

:data:`PITFALLS` is a registry name -> :class:`Pitfall`:

* ``correct``: eps in pixel space, inputs clamped to [0, 1], model in eval mode, one evaluation
  subset (what :mod:`prunerob.core.attacks` does; :func:`linf_attack` then equals torchattacks' FGSM /
  PGD as used by the sweep, bit for bit);
* ``normalised_eps``: the attack sees the normalised input ``z = (x - mean) / std``; eps is applied
  to ``z`` (an effective pixel budget of ``eps * std``) and ``z`` is clamped to [0, 1], what
  torchattacks does to whatever it is given (pixels are then confined to [mean, mean + std]);
* ``normalised_eps_no_clamp``: the budget part of that pitfall alone (eps on ``z``, no clamp), so
  the page can tell which half of pitfall (a) moves the curve;
* ``train_mode``: the model is attacked and evaluated in train mode (changes nothing for a model
  without dropout or BatchNorm, such as the MLP and CNN4 of App. I; the table says so);
* ``no_clamp``: the adversarial input is not clamped to [0, 1];
* ``subset_per_keep``: every keep ratio is evaluated on a different random subset of the test set
  (``subset_seed`` = index of the keep ratio, through :func:`prunerob.engine.sweep.run_sweep`), so the
  "gain" compares different examples.

Every pitfall but ``correct`` is WRONG ON PURPOSE; its ``label`` says so on the page. The Fig. 2
shape rule is :func:`fig2_shape`; ``same_as_correct`` there is the computed fraction of (seed, keep)
rows whose per-example ``adv_bits`` equal the correct run's (1.0: the pitfall changes nothing here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.analysis.stats import pct, pp
from prunerob.config import device_name, format_eps, parse_eps
from prunerob.core.attacks import AttackSpec
from prunerob.core.pruning import apply_masks, make_masks
from prunerob.engine.sweep import pack_bits, run_sweep
from prunerob.studies.sweetspot.models import examples_on, mlp_model, mnist

__all__ = [
    "Pitfall",
    "PITFALLS",
    "linf_attack",
    "pitfall_rows",
    "run_pitfalls",
    "pitfall_table",
    "fig2_shape",
    "describe",
]


@dataclass(frozen=True)
class Pitfall:
    """How an attack is (mis)run: ``space`` of eps (``"pixel"`` or ``"normalised"``), ``clamp``
    (clamp the attacked input to [0, 1] in that space), ``train_mode`` and ``subset_per_keep``."""

    label: str
    what: str
    space: str = "pixel"
    clamp: bool = True
    train_mode: bool = False
    subset_per_keep: bool = False


PITFALLS: dict[str, Pitfall] = {
    "correct": Pitfall("correct", "eps on pixels, clamp to [0, 1], eval mode, one evaluation subset"),
    "normalised_eps": Pitfall(
        "(a) eps on normalised input",
        "eps applied to (x - mean) / std, which is then clamped to [0, 1] (torchattacks on normalised data)",
        space="normalised",
    ),
    "normalised_eps_no_clamp": Pitfall(
        "(a2) eps on normalised input, no clamp",
        "eps applied to (x - mean) / std, not clamped (the budget part of (a) alone)",
        space="normalised",
        clamp=False,
    ),
    "train_mode": Pitfall("(b) train mode", "model attacked and evaluated in train mode", train_mode=True),
    "no_clamp": Pitfall("(c) no clamping", "adversarial input not clamped to [0, 1]", clamp=False),
    "subset_per_keep": Pitfall(
        "(d) subset per keep", "a different random test subset per keep ratio", subset_per_keep=True
    ),
}


def _stats(mean: Sequence[float], std: Sequence[float], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return (
        torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape),
        torch.tensor(std, dtype=x.dtype, device=x.device).view(shape),
    )


def linf_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: AttackSpec,
    pitfall: Pitfall,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """FGSM / PGD of ``spec`` (``steps``, ``alpha``, ``random_start``) as torchattacks runs them, in
    the input space of ``pitfall`` (pixel, or normalised ``z`` mapped back with ``z * std + mean``).
    Returns the pixel-space input given to the model."""
    m, s = _stats(mean, std, x)
    to_px: Callable[[torch.Tensor], torch.Tensor] = (
        (lambda u: u * s + m) if pitfall.space == "normalised" else (lambda u: u)
    )
    u0 = ((x - m) / s if pitfall.space == "normalised" else x).detach()
    eps, alpha = float(spec.eps), float(spec.alpha)
    u = u0.clone()
    if spec.random_start:
        u = u + torch.empty_like(u).uniform_(-eps, eps)
        u = torch.clamp(u, 0, 1).detach() if pitfall.clamp else u.detach()
    for _ in range(int(spec.steps)):
        u.requires_grad_(True)
        loss = F.cross_entropy(model(to_px(u)), y)
        grad = torch.autograd.grad(loss, u)[0]
        u = u.detach() + alpha * grad.sign()
        u = u0 + torch.clamp(u - u0, -eps, eps)
        u = (torch.clamp(u, 0, 1) if pitfall.clamp else u).detach()
    return to_px(u).detach()


def pitfall_rows(
    model: nn.Module,
    data: Any,
    pitfall: str,
    *,
    method: str,
    keeps: Sequence[float],
    attack: str,
    eps: float | str,
    seed: int,
    n: int | None,
    batch_size: int = 500,
    subset_seed: int = 0,
    train_data: Any = None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """One row per keep ratio of ``model`` pruned by ``method`` and attacked under ``pitfall``
    (sweep columns incl. ``clean_bits`` / ``adv_bits`` and ``pitfall``). ``subset_per_keep`` runs
    :func:`prunerob.engine.sweep.run_sweep` once per keep with its own ``subset_seed``; the others attack
    the sweep's examples batch by batch with the RNG seeded ``seed + b`` (the sweep's convention)."""
    pf = PITFALLS[pitfall]
    if pf.subset_per_keep:
        return pd.concat(
            [
                run_sweep(
                    model,
                    data,
                    model_name="mlp",
                    dataset_name=data.name,
                    methods=[method],
                    keeps=[k],
                    attacks=[attack],
                    eps=[eps],
                    seed=seed,
                    n=n,
                    batch_size=batch_size,
                    device=device,
                    progress=False,
                    subset_seed=subset_seed + 1 + i,
                    train_data=train_data,
                )
                for i, k in enumerate(keeps)
            ],
            ignore_index=True,
        ).assign(pitfall=pitfall)
    dev, xf, y, desc = examples_on(model, data, n, subset_seed, device)
    spec = AttackSpec(name=attack, eps=parse_eps(eps), seed=seed)
    rows = []
    for k in keeps:
        pruned = apply_masks(model.to(dev), make_masks(method, model, float(k), seed=seed, data=train_data))
        pruned.train(pf.train_mode)
        clean, adv = [], []
        for b, i in enumerate(range(0, len(y), batch_size)):
            xb, yb = xf[i : i + batch_size], y[i : i + batch_size]
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(int(seed) + b)
                xa = linf_attack(pruned, xb, yb, spec, pf, data.mean, data.std)
            with torch.no_grad():
                clean.append((pruned(xb).argmax(1) == yb).cpu())
                adv.append((pruned(xa).argmax(1) == yb).cpu())
        c, a = torch.cat(clean), torch.cat(adv)
        rows.append(
            {
                "model": "mlp",
                "dataset": data.name,
                "method": method,
                "keep_ratio": float(k),
                "attack": attack,
                "eps": float(spec.eps),
                "eps_label": format_eps(float(spec.eps)),
                "seed": int(seed),
                "n": int(len(y)),
                "clean_acc": float(c.float().mean()),
                "adv_acc": float(a.float().mean()),
                "clean_bits": pack_bits(c),
                "adv_bits": pack_bits(a),
                "eval_subset": desc,
                "pitfall": pitfall,
                "device": device_name(dev),
            }
        )
    return pd.DataFrame(rows)


def run_pitfalls(
    models: Sequence[tuple[int, nn.Module]],
    data: Any,
    *,
    names: Sequence[str] = tuple(PITFALLS),
    method: str,
    keeps: Sequence[float],
    attacks: Sequence[str],
    eps: float | str,
    n: int | None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """:func:`pitfall_rows` for every ``(seed, model)``, pitfall in ``names`` and attack."""
    return pd.concat(
        [
            pitfall_rows(
                m, data, p, method=method, keeps=keeps, attack=a, eps=eps, seed=s, n=n, device=device
            )
            for s, m in models
            for p in names
            for a in attacks
        ],
        ignore_index=True,
    )


def fig2_shape(g: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Does a pitfall's curve have the shape of the paper's Fig. 2 (attacked accuracy rises with
    pruning, then falls)? Rule, per (pitfall, attack): the keep ratio with the highest mean attacked
    accuracy lies below 1.0, its gain over keep 1.0 is significant by :func:`grid.flag`, and the
    sparsest keep ratio is below that peak. ``g``: :func:`grid.gains` of ``rows``."""
    out = []
    key = ["attack", "seed", "keep_ratio"]
    ref = rows[rows.pitfall == "correct"].set_index(key).adv_bits
    for (pf, att), d in rows.groupby(["pitfall", "attack"], sort=False):
        same = [ref.get(k) == b for k, b in zip(d.set_index(key).index, d.adv_bits, strict=True)]
        m = d.groupby("keep_ratio")[["clean_acc", "adv_acc"]].mean().sort_index(ascending=False)
        best = float(m.adv_acc.idxmax())
        gg = g[(g.pitfall == pf) & (g.attack == att) & np.isclose(g.keep_ratio, best)].iloc[0]
        shape = bool(best < 1.0 and gg.significant == "gain" and m.adv_acc.iloc[-1] < m.adv_acc.max())
        out.append(
            {
                "pitfall": pf,
                "label": PITFALLS[pf].label,
                "attack": att,
                "adv_dense": float(m.adv_acc.iloc[0]),
                "clean_dense": float(m.clean_acc.iloc[0]),
                "keep_best": best,
                "adv_best": float(m.adv_acc.max()),
                "gain": float(gg.gain),
                "gain_lo": float(gg.gain_lo),
                "gain_hi": float(gg.gain_hi),
                "n_seeds": int(gg.n_seeds),
                "same_as_correct": float(np.mean(same)) if len(ref) else np.nan,
                "fig2_shape": shape,
            }
        )
    return pd.DataFrame(out)


def pitfall_table(
    *,
    epochs: int,
    seeds: Sequence[int],
    method: str,
    keeps: Sequence[float],
    attacks: Sequence[str],
    eps: float | str,
    n: int | None,
    names: Sequence[str] = tuple(PITFALLS),
    train_subset: int | None = None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
) -> pd.DataFrame:
    """:func:`run_pitfalls` on the MNIST MLPs of :func:`prunerob.studies.sweetspot.models.mlp_model`."""
    ms = [
        (int(s), mlp_model(epochs, s, train_subset=train_subset, device=device, data_root=data_root)[0])
        for s in seeds
    ]
    return run_pitfalls(
        ms,
        mnist("test", data_root),
        names=names,
        method=method,
        keeps=keeps,
        attacks=attacks,
        eps=eps,
        n=n,
        device=device,
    )


def describe(shapes: pd.DataFrame) -> list[str]:
    """One line per (pitfall, attack) of :func:`fig2_shape`: attacked accuracy unpruned and at the
    best keep ratio, the gain with its 95% interval, whether it has the Fig. 2 shape, and when
    every row equals the correct run bit for bit, that the pitfall changes nothing for this model."""
    return [_line(r) for r in shapes.itertuples()]


def _line(r: Any) -> str:
    head = f"- {r.label}, {r.attack.upper()}: attacked accuracy {pct(r.adv_dense)} unpruned"
    same = (
        " Every (seed, keep) row is identical to the correct run, bit for bit: no effect on this model."
        if r.pitfall != "correct" and getattr(r, "same_as_correct", np.nan) == 1.0
        else ""
    )
    if r.keep_best == 1.0:
        return f"{head}, highest without pruning: not the Fig. 2 shape.{same}"
    return (
        f"{head}, best {pct(r.adv_best)} at keep {r.keep_best:g} ({pp(r.gain)}, 95% CI {pp(r.gain_lo)} to "
        f"{pp(r.gain_hi)} over {r.n_seeds} seeds): "
        + ("**Fig. 2 shape**." if r.fig2_shape else "not the Fig. 2 shape.")
        + same
    )
