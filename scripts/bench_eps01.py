"""Unit costs of the eps01_gain page (issue 27) on this machine, one torch thread, one seed.

    PYTHONPATH=$PWD python scripts/bench_eps01.py [SEED] [FAB_STEPS]

Prints seconds per piece: PGD-5 on 10,000 images per (method, keep, eps) cell, PGD-50x5 on 1,000,
AutoAttack standard on 1,000 at eps 0.1 (unpruned and keep 0.5), FAB-T minimal distances on 1,000.
Uses the cached 30-epoch paper MLP of mlp_config(30, SEED) (trains it when missing). Not a test.
"""

from __future__ import annotations

import sys
import time

import torch

from prunerob.core.attacks.fab import min_linf_distance
from prunerob.core.pruning import apply_masks, make_masks
from prunerob.engine.sweep import run_sweep
from prunerob.studies.sweetspot.models import examples_on, mlp_model, mnist
from prunerob.studies.sweetspot.strong import STRONG_PGD

torch.set_num_threads(1)
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
fab_steps = int(sys.argv[2]) if len(sys.argv) > 2 else 100
model, info = mlp_model(30, seed)
model.eval()
test = mnist("test")


def timed(label: str, fn, per: float = 1.0) -> None:
    t0 = time.perf_counter()
    fn()
    s = time.perf_counter() - t0
    print(f"{label}: {s:.1f} s total, {s / per:.1f} s per unit", flush=True)


kw = dict(model_name="mlp", dataset_name="mnist", seed=seed, progress=False, device="cpu")
timed(
    "PGD-5, 10k images, magnitude, keeps 1.0+0.5, eps 0.1 (2 cells)",
    lambda: run_sweep(
        model, test, methods=["magnitude"], keeps=[1.0, 0.5], attacks=["pgd"], eps=[0.1], n=10000, **kw
    ),
    per=2,
)
timed(
    "PGD-5, 10k images, magnitude, 5 keeps x 5 eps (25 cells)",
    lambda: run_sweep(
        model,
        test,
        methods=["magnitude"],
        keeps=[1.0, 0.7, 0.6, 0.5, 0.4],
        attacks=["pgd"],
        eps=[0.05, 0.075, 0.1, 0.125, 0.15],
        n=10000,
        **kw,
    ),
    per=25,
)
timed(
    "PGD-50x5, 1k images, magnitude, keeps 1.0+0.5, eps 0.1 (2 cells)",
    lambda: run_sweep(
        model,
        test,
        methods=["magnitude"],
        keeps=[1.0, 0.5],
        attacks=["pgd"],
        eps=[0.1],
        n=1000,
        attack_overrides=STRONG_PGD,
        **kw,
    ),
    per=2,
)
for k in (1.0, 0.5):
    timed(
        f"AutoAttack standard, 1k images, eps 0.1, magnitude keep {k}",
        lambda k=k: run_sweep(
            model, test, methods=["magnitude"], keeps=[k], attacks=["autoattack"], eps=[0.1], n=1000, **kw
        ),
    )
_, x, y, _ = examples_on(model, test, 1000, 0, "cpu")
for k in (1.0, 0.5):
    net = model if k == 1.0 else apply_masks(model, make_masks("magnitude", model, k, seed=seed)).eval()
    timed(
        f"FAB-T minimal distances, 1k images, {fab_steps} steps, keep {k}",
        lambda net=net: min_linf_distance(net, x, y, steps=fab_steps, seed=seed),
    )
