"""Training: accuracy on real MNIST, the checkpoint cache, resume, config hashing, recipes."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.data import ArrayDataset, load_dataset
from prunerob.core.models import mlp_weights
from prunerob.core.train import TrainConfig, checkpoint_paths, evaluate_accuracy, load_checkpoint, train_model


def test_mlp_mnist_trains_and_caches(tmp_cache):
    cfg = TrainConfig("mlp", "mnist", epochs=2, train_subset=2000)
    model, info = train_model(cfg, device="cpu", progress=False)
    assert info["cached"] is False and not model.training
    assert info["n_train"] == 2000 and info["n_test"] == 10000 and len(info["epoch_times_s"]) == 2
    assert info["train_losses"][1] < info["train_losses"][0]
    test = load_dataset("mnist", "test", download=False).subset(1000, seed=0)
    acc = evaluate_accuracy(model, test)
    assert acc > 0.85, acc  # measured: about 0.89
    paths = checkpoint_paths(cfg)  # the data are loaded to name the entry
    assert paths == checkpoint_paths(cfg, data_key=info["data_key"])
    assert paths["weights"].is_file() and not paths["resume"].exists()
    assert paths["weights"].name == f"mlp-mnist-{cfg.hash()}-{info['data_key'][:12]}.safetensors"
    meta = json.loads(paths["meta"].read_text())
    assert meta["data_key"] == info["data_key"]
    assert meta["config"] == json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert meta["test_acc"] == info["test_acc"] and 0.85 < meta["test_acc"] <= 1.0
    assert "MNIST" in meta["data_source"] and meta["torch_version"] == torch.__version__

    model2, info2 = train_model(cfg, device="cpu", progress=False)  # cache hit: no training
    assert info2["cached"] is True and info2["test_acc"] == info["test_acc"] and not model2.training
    for a, b in zip(mlp_weights(model), mlp_weights(model2), strict=True):
        assert torch.equal(a, b)
    assert evaluate_accuracy(model2, test) == acc
    model3, _ = load_checkpoint(cfg, device="cpu")
    assert torch.equal(model3.normalize.std, model.normalize.std)


def test_resume_equals_uninterrupted(tmp_path):
    """Stopping after epoch 1 and resuming gives bit-identical weights to one 2-epoch run (CPU)."""
    cfg = TrainConfig("mlp", "mnist", epochs=2, train_subset=300, hidden=(16,), batch_size=64)
    ref_model, ref = train_model(cfg, device="cpu", cache_dir=tmp_path / "a", progress=False)

    b = tmp_path / "b"
    part_model, part = train_model(cfg, device="cpu", cache_dir=b, progress=False, stop_after_epoch=1)
    paths = checkpoint_paths(cfg, b, part["data_key"])
    assert part["interrupted"] is True and part["epochs_done"] == 1
    assert paths["resume"].is_file() and not paths["weights"].exists()
    pairs = zip(mlp_weights(part_model), mlp_weights(ref_model), strict=True)
    assert not any(torch.equal(x, y) for x, y in pairs)

    model, info = train_model(cfg, device="cpu", cache_dir=b, progress=False)
    assert info["resumed_from_epoch"] == 1 and info["cached"] is False
    assert not paths["resume"].exists() and paths["weights"].is_file()
    assert info["train_losses"] == ref["train_losses"] and len(info["epoch_times_s"]) == 2
    for x, y in zip(mlp_weights(model), mlp_weights(ref_model), strict=True):
        assert torch.equal(x, y)


def test_force_retrains(tmp_path):
    cfg = TrainConfig("mlp", "mnist", epochs=1, train_subset=100, hidden=(8,))
    train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False)
    _, info = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False, force=True)
    assert info["cached"] is False


# a valid changed value for every field of TrainConfig (base: mlp on mnist)
CHANGES = {
    "arch": "mlp3", "dataset": "cifar10", "epochs": 3, "batch_size": 64, "lr": 2e-3, "optimizer": "adamw",
    "weight_decay": 0.1, "seed": 1, "train_subset": 100, "image_size": 32, "precision": "bf16",
    "compile": True,
    "label_smoothing": 0.1, "hidden": (64,), "augment": "crop_flip", "schedule": "warmup_cosine",
    "warmup_epochs": 1,
}


def test_config_hash_changes_with_every_field():
    base = TrainConfig("mlp", "mnist", epochs=2)
    assert base.hash() == TrainConfig("mlp", "mnist", epochs=2).hash()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields == set(CHANGES) | {"pretrained"}, "add the new field to CHANGES"
    hashes = {base.hash()}
    for name, value in CHANGES.items():
        changed = dataclasses.replace(base, **{name: value})
        assert changed.hash() != base.hash(), name
        hashes.add(changed.hash())
    assert len(hashes) == len(CHANGES) + 1
    vit = TrainConfig("vit_tiny", "cifar10", epochs=1)
    assert dataclasses.replace(vit, pretrained=True).hash() != vit.hash()
    # weight_decay=None resolves to the optimizer's default before hashing
    assert TrainConfig("mlp", "mnist", 2, optimizer="adamw").weight_decay == 0.05
    assert TrainConfig("mlp", "mnist", 2, weight_decay=0.0).hash() == base.hash()


def test_paper_recipes():
    mlp = TrainConfig.paper("mlp", "mnist")
    assert (mlp.optimizer, mlp.lr, mlp.epochs, mlp.weight_decay) == ("adam", 1e-3, 30, 0.0)
    big = TrainConfig.paper("mlp_cifar", "cifar10")
    assert (big.optimizer, big.lr, big.epochs) == ("adam", 1e-3, 100)
    cnn = TrainConfig.paper("cnn4", "cifar100")
    assert (cnn.optimizer, cnn.lr, cnn.epochs) == ("adam", 1e-3, 100)
    vit = TrainConfig.paper("vit_tiny", "cifar10")
    got = (vit.optimizer, vit.lr, vit.epochs, vit.weight_decay, vit.pretrained)
    assert got == ("adamw", 5e-4, 10, 0.05, True)
    assert TrainConfig.paper("vit_small", "cifar10").pretrained is False
    assert TrainConfig.paper("vit_tiny", "cifar10", pretrained=False).pretrained is False


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"optimizer": "sgd"}, "optimizer='sgd'.*adam, adamw"),
        ({"precision": "fp16"}, "precision='fp16'.*fp32, bf16"),
        ({"precision": "none"}, "precision='none'.*fp32, bf16"),
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"arch": "resnet"}, "arch='resnet'"),
        ({"dataset": "svhn"}, "dataset='svhn'"),
        ({"arch": "cnn4", "hidden": (5,)}, "hidden"),
        ({"pretrained": True}, "pretrained"),
    ],
)
def test_config_validation(kw, match):
    args = {"arch": "mlp", "dataset": "mnist", "epochs": 1, **kw}
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**args)


def test_load_checkpoint_missing(tmp_path):
    with pytest.raises(ConfigError, match="train_model"):
        load_checkpoint(TrainConfig("mlp", "mnist", epochs=1), cache_dir=tmp_path)


class _Always(nn.Module):
    """Stand-in model that always predicts class ``k``."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(x.shape[0], 3)
        out[:, self.k] = 1.0
        return out


def test_evaluate_accuracy_known_answer():
    y = torch.tensor([0, 1, 1, 2, 1, 0, 1])
    x = torch.zeros(7, 1, 2, 2, dtype=torch.uint8)
    ds = ArrayDataset("mnist", "test", x, y, 3, (0.0,), (1.0,), "toy")
    m = _Always(1).train()
    assert evaluate_accuracy(m, ds, batch_size=3) == pytest.approx(4 / 7)
    assert m.training  # mode restored
    assert evaluate_accuracy(_Always(2), ds) == pytest.approx(1 / 7)
