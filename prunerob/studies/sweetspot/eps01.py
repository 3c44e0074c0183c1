"""Is there a real robustness gain from pruning at ε ≈ 0.1 on MNIST? (issue 27; paper Sec. 6.3, Fig. 2).

The computations of the page ``eps01_gain``, one result-store unit per trained model (seed) and
piece, so that adding seeds reuses the stored ones. Every model is the paper's MNIST MLP exactly as
:func:`prunerob.studies.sweetspot.models.mlp_config` (``epochs``, ``seed``; App. I: 784-512-10, Adam
1e-3, 30 epochs on all 60,000 images in the cpu profile), so the cached checkpoints are reused.

* :func:`pgd_grid`: PGD-5 at every (method, keep, ε) on the first ``n`` test images of the fixed
  permutation (:func:`prunerob.engine.sweep.run_sweep` through
  :func:`~prunerob.studies.sweetspot.models.sweep_mlps`: per-example bits, common random numbers);
* :func:`strong`: PGD-50 with 5 restarts (per example the best restart) and AutoAttack standard on
  the first ``n`` (1,000) images of the same permutation, at keep 1.0 and the chosen keeps;
* :func:`fab`: per example the minimal L-inf adversarial distance found by FAB-T
  (:func:`prunerob.core.attacks.fab.min_linf_distance`) for the unpruned and each pruned model, on
  the same images, with the sweep's masks.

:func:`check` validates the page's parameters before any work (one ConfigError line). The tables'
statistics (verdict, power, security curves) are in :mod:`prunerob.studies.sweetspot.eps01_report`
and the torch-free :mod:`prunerob.analysis.power` / :mod:`prunerob.analysis.security`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from prunerob.analysis.security import pack
from prunerob.config import ConfigError, check_keep, device_name, parse_eps
from prunerob.core.attacks.fab import min_linf_distance
from prunerob.core.pruning import apply_masks, get_method, make_masks, method_names
from prunerob.engine.sweep import pack_bits
from prunerob.studies.sweetspot.models import examples_on, mask_seed, mlp_model, mnist, sweep_mlps
from prunerob.studies.sweetspot.strong import STRONG_PGD

__all__ = ["check", "pgd_grid", "strong", "fab", "STRONG_ATTACK"]

#: the attack column of the PGD-50 x 5 restarts rows
STRONG_ATTACK = "pgd-50x5"


def _ints(name: str, v: Any, low: int, none: bool = False) -> None:
    if v is None and none:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{name}={v!r} must be an integer >= {low}" + (" or None" if none else ""))


def _list(name: str, v: Any, empty_ok: bool = False) -> list:
    if not isinstance(v, (list, tuple)) or (not v and not empty_ok):
        raise ConfigError(f"{name}={v!r} must be a {'' if empty_ok else 'non-empty '}list")
    if len({repr(x) for x in v}) != len(v):
        raise ConfigError(f"{name}={v!r} has duplicate values")
    return list(v)


def check(
    *,
    seeds: Sequence[int],
    keeps: Sequence[float],
    eps_grid: Sequence[Any],
    methods: Sequence[str],
    aa_methods: Sequence[str],
    strong_methods: Sequence[str],
    verdict_eps: Any,
    epochs: int,
    n_eval: int,
    strong_n: int,
    strong_keeps: int,
    fab_steps: int,
    fab_restarts: int,
    fab_tol: float,
    train_subset: int | None,
) -> None:
    """ConfigError (one line naming the parameter and the allowed values) for a bad page parameter."""
    for s in _list("seeds", seeds):
        _ints("seeds", s, 0)
    ks = [check_keep(k, "keeps") for k in _list("keeps", keeps)]
    if 1.0 not in ks or len(ks) < 2:
        raise ConfigError(
            f"keeps={list(keeps)!r} must hold 1.0 (the unpruned baseline) and at least one pruned keep ratio"
        )
    es = [parse_eps(e, "eps_grid") for e in _list("eps_grid", eps_grid)]
    if not any(abs(e - parse_eps(verdict_eps, "verdict_eps")) < 1e-12 for e in es):
        raise ConfigError(f"verdict_eps={verdict_eps!r} must be one of eps_grid {list(eps_grid)!r}")
    allowed = method_names()
    for name, ms, empty in (
        ("methods", methods, False),
        ("aa_methods", aa_methods, True),
        ("strong_methods", strong_methods, True),
    ):
        for m in _list(name, ms, empty):
            if m not in allowed:
                raise ConfigError(f"{name}: {m!r} is not a pruning method; allowed: {', '.join(allowed)}")
            if name != "methods" and m not in methods:
                raise ConfigError(
                    f"{name}: {m!r} is not in methods {list(methods)!r} (its keeps come from the PGD-5 grid)"
                )
    if "magnitude" not in methods:
        raise ConfigError(f"methods={list(methods)!r} must include 'magnitude' (the verdict's method)")
    _ints("epochs", epochs, 1)
    _ints("n_eval", n_eval, 2)
    _ints("strong_n", strong_n, 2)
    if strong_n > n_eval:
        raise ConfigError(
            f"strong_n={strong_n} must be <= n_eval={n_eval} (the subset is the first strong_n "
            "of the same images)"
        )
    _ints("strong_keeps", strong_keeps, 1)
    if strong_keeps > len(ks) - 1:
        raise ConfigError(f"strong_keeps={strong_keeps} must be <= the {len(ks) - 1} pruned keeps")
    _ints("fab_steps", fab_steps, 1)
    _ints("fab_restarts", fab_restarts, 1)
    _ints("train_subset", train_subset, 1, none=True)
    if isinstance(fab_tol, bool) or not isinstance(fab_tol, (int, float)) or not fab_tol >= 0:
        raise ConfigError(f"fab_tol={fab_tol!r} must be a number >= 0 (pixel units)")


def pgd_grid(
    *,
    seed: int,
    epochs: int,
    methods: Sequence[str],
    keeps: Sequence[float],
    eps: Sequence[Any],
    n: int,
    mask_draws: int = 1,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
) -> pd.DataFrame:
    """PGD-5 (App. I) rows of one model seed: every method x keep x ε on the first ``n`` images."""
    return sweep_mlps(
        epochs=[epochs],
        widths=[512],
        seeds=[seed],
        methods=methods,
        keeps=keeps,
        attacks=["pgd"],
        eps=eps,
        n=n,
        device=device,
        data_root=data_root,
        train_subset=train_subset,
        mask_draws=mask_draws,
    )


def strong(
    *,
    seed: int,
    epochs: int,
    keeps: Sequence[float],
    eps: Any,
    n: int,
    strong_methods: Sequence[str],
    aa_methods: Sequence[str],
    mask_draws: int = 1,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
) -> pd.DataFrame:
    """PGD-50x5 (``strong_methods``; attack column ``pgd-50x5``) and AutoAttack standard
    (``aa_methods``) rows of one model seed at ``keeps`` (1.0 included) and one ε, first ``n`` images."""
    base = dict(
        epochs=[epochs],
        widths=[512],
        seeds=[seed],
        keeps=sorted({1.0, *map(float, keeps)}, reverse=True),
        eps=[eps],
        n=n,
        device=device,
        data_root=data_root,
        train_subset=train_subset,
        mask_draws=mask_draws,
    )
    parts = []
    if strong_methods:
        parts.append(
            sweep_mlps(
                **base, methods=list(strong_methods), attacks=["pgd"], attack_overrides=STRONG_PGD
            ).assign(attack=STRONG_ATTACK)
        )
    if aa_methods:
        parts.append(sweep_mlps(**base, methods=list(aa_methods), attacks=["autoattack"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def fab(
    *,
    seed: int,
    epochs: int,
    method: str,
    keeps: Sequence[float],
    n: int,
    steps: int,
    restarts: int,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
) -> pd.DataFrame:
    """Per-example minimal L-inf distances (FAB-T) of one model seed, unpruned and pruned by
    ``method`` at each keep (the sweep's masks: seed :func:`mask_seed` ``(seed, 0)``), on the first
    ``n`` images of the fixed permutation. One row per keep: ``distances`` (hex float32,
    :func:`prunerob.analysis.security.pack`), ``clean_bits``, ``seconds``."""
    if get_method(method).needs_data:
        raise ConfigError(f"method={method!r} needs training data; the distance study takes data-free rules")
    model, info = mlp_model(epochs, seed, train_subset=train_subset, device=device, data_root=data_root)
    dev, x, y, desc = examples_on(model, mnist("test", data_root), n, 0, device)
    model = model.to(dev).eval()
    rows = []
    for k in sorted({1.0, *map(float, keeps)}, reverse=True):
        net = (
            model
            if k == 1.0
            else apply_masks(model, make_masks(method, model, k, seed=mask_seed(seed, 0))).eval()
        )
        t0 = time.perf_counter()
        d = min_linf_distance(net, x, y, steps=steps, restarts=restarts, seed=int(seed))
        secs = time.perf_counter() - t0
        with torch.no_grad():
            clean = net(x).argmax(1).eq(y).cpu()
        rows.append(
            {
                "model": "mlp",
                "dataset": "mnist",
                "method": method,
                "keep_ratio": k,
                "seed": int(seed),
                "n": int(len(y)),
                "attack": "fab",
                "fab_steps": int(steps),
                "fab_restarts": int(restarts),
                "clean_acc": float(clean.float().mean()),
                "clean_bits": pack_bits(clean),
                "distances": pack(d.numpy()),
                "n_broken": int(torch.isfinite(d).sum()),
                "eval_subset": desc,
                "train_epochs": int(epochs),
                "model_test_acc": info.get("test_acc"),
                "seconds": round(secs, 3),
                "device": device_name(dev),
            }
        )
    return pd.DataFrame(rows)
