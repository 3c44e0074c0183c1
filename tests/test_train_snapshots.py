"""Snapshots of a longer run are the models a shorter run gives (train_model(snapshot_epochs=...))."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from prunerob.config import ConfigError
from prunerob.core.train import TrainConfig, checkpoint_paths, train_model, training_curve
from prunerob.studies import pages


def _cfg(epochs: int) -> TrainConfig:
    return TrainConfig.paper("mlp", "mnist", epochs=epochs, train_subset=300, seed=3, hidden=(16,))


def test_snapshot_equals_short_run(tmp_path):
    long_dir, short_dir = tmp_path / "long", tmp_path / "short"
    _, info3 = train_model(_cfg(3), device="cpu", cache_dir=long_dir,
                           progress=False, snapshot_epochs=(1, 2))
    _, info1 = train_model(_cfg(1), device="cpu", cache_dir=short_dir,
                           progress=False)
    snap = checkpoint_paths(_cfg(1), long_dir)
    assert snap["weights"].is_file() and snap["meta"].is_file()
    a, b = load_file(snap["weights"]), load_file(checkpoint_paths(_cfg(1), short_dir)["weights"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the snapshot is a normal cache entry: loading it trains nothing and gives the short run's accuracy
    _, again = train_model(_cfg(1), device="cpu", cache_dir=long_dir,
                           progress=False)
    assert again["cached"] and again["test_acc"] == info1["test_acc"]
    assert len(again["train_losses"]) == 1 and again["train_losses"] == info1["train_losses"]
    assert checkpoint_paths(_cfg(2), long_dir)["meta"].is_file()
    assert len(info3["train_losses"]) == 3
    curve = training_curve(_cfg(3), long_dir)
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    assert curve[0]["test_acc"] == info1["test_acc"] and curve[2]["test_acc"] == info3["test_acc"]
    assert [r["train_loss"] for r in curve] == info3["train_losses"]
    assert [r["epoch"] for r in training_curve(_cfg(3), short_dir)] == [1]  # only what is cached


def test_curve_sentence():
    import pandas as pd

    curve = pd.DataFrame({"epoch": [1, 2, 3], "test_acc": [0.61, 0.71, 0.69], "seconds": [60, 120, 180]})
    text = pages.curve_sentence(curve, 0.70)
    assert text.startswith("First epoch at or above 70%: 2.") and "71.0% after 2 epochs (2 min" in text
    assert pages.curve_sentence(curve, 0.9).startswith("No epoch reaches 90%.")


@pytest.mark.parametrize("bad", [(0,), (3,), (5,)])
def test_snapshot_epochs_validated(tmp_path, bad):
    with pytest.raises(ConfigError, match="snapshot_epochs"):
        train_model(_cfg(3), device="cpu", cache_dir=tmp_path, progress=False, snapshot_epochs=bad)
    assert not any(tmp_path.iterdir())


def test_page_curve_when_a_sweep_cached_the_final_model_first(tmp_cache, tmp_path):
    """A sweep that trains the final model first (no snapshots) must not leave the page's training
    curve with only its last epoch: pages.training_curve trains once more with snapshots, and the
    rewritten final model is the same model (CPU training is reproducible for a fixed thread layout)."""
    cfg = TrainConfig.paper("mlp", "mnist", epochs=3, train_subset=300, seed=3)
    _, first = train_model(cfg, device="cpu", progress=False)  # what run_and_save does
    assert not checkpoint_paths(TrainConfig.paper("mlp", "mnist", epochs=1, train_subset=300, seed=3),
                                tmp_cache)["meta"].is_file()
    run = pages.Run(name="t", profile="quick", device=torch.device("cpu"), out=tmp_path)
    curve = pages.training_curve(run, "mlp", "mnist", 3, epochs=3, train_subset=300)
    assert list(curve.epoch) == [1, 2, 3]
    assert float(curve.test_acc.iloc[-1]) == first["test_acc"]
    assert list(curve.train_loss)[-1] == first["train_losses"][-1]
