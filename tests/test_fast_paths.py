"""The fast paths of the ``paper`` profile must not change results beyond seed noise.

* bf16 autocast training vs float32 training (issue: mixed precision only where it does not
  change accuracy by more than noise). Run on the CPU here; the same code path runs on CUDA.
* The batched sweep vs the torchattacks loop is checked to 1e-6 in tests/test_sweep.py.
"""
from __future__ import annotations

import statistics

import pytest

from prunerob.core.data import load_dataset
from prunerob.core.train import TrainConfig, evaluate_accuracy, train_model


@pytest.mark.slow
def test_bf16_training_matches_float32_within_seed_noise(tmp_cache):
    test = load_dataset("mnist", "test").subset(2000, seed=0)
    accs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in accs:
        for seed in (0, 1):
            cfg = TrainConfig("mlp", "mnist", epochs=2, train_subset=3000, hidden=(128,), seed=seed,
                              precision=precision)
            model, info = train_model(cfg, device="cpu", progress=False)
            assert not info["cached"]
            accs[precision].append(evaluate_accuracy(model, test))
    fp32, bf16 = statistics.mean(accs["fp32"]), statistics.mean(accs["bf16"])
    seed_spread = max(abs(accs["fp32"][0] - accs["fp32"][1]), 0.005)
    # Both train to a useful model, and the precisions differ by at most a few seed spreads.
    assert min(accs["fp32"] + accs["bf16"]) > 0.85, accs
    assert abs(fp32 - bf16) <= max(3 * seed_spread, 0.015), (accs, seed_spread)


def test_precision_is_part_of_the_checkpoint_hash():
    a = TrainConfig("mlp", "mnist", epochs=1, precision="fp32")
    b = TrainConfig("mlp", "mnist", epochs=1, precision="bf16")
    assert a.hash() != b.hash()
