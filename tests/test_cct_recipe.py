"""The CCT (cct_2_3x2), the training-recipe registries (prunerob.core.recipe) and their hash neutrality."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from prunerob.config import ConfigError, config_hash
from prunerob.core import recipe
from prunerob.core.data import ArrayDataset, DatasetInfo
from prunerob.core.models import build_model
from prunerob.core.pruning import get_method, make_masks, prunable_weights
from prunerob.core.train import TRAIN_CODE_VERSION, TrainConfig, train_model, training_curve
from prunerob.engine.experiment import train_fields

ROOT = Path(__file__).resolve().parents[1]
INFO = DatasetInfo("cifar10", 10, (3, 32, 32), (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))


def _cct(**kw):
    torch.manual_seed(0)
    return build_model("cct_2_3x2", INFO, **kw).eval()


def test_cct_shapes_and_parameter_count():
    m = _cct()
    x = torch.rand(3, 3, 32, 32)
    assert m(x).shape == (3, 10)
    assert m.tokens(x).shape == (3, 64, 128)  # 2 conv+pool stages: 32 px -> 8x8 tokens of width 128
    n = sum(p.numel() for p in m.parameters())
    assert 270_000 < n < 290_000, n  # CCT-2/3x2: 0.28M (Hassani et al. 2021)
    with pytest.raises(ConfigError, match="cct"):
        build_model("cct_2_3x2", DatasetInfo("imagenette", 10, (3, 30, 30), (0.5,) * 3, (0.2,) * 3))
    with pytest.raises(ConfigError, match="hidden"):
        build_model("cct_2_3x2", INFO, hidden=(5,))


def test_cct_normalises_inside():
    """The model takes [0, 1] pixels: it equals the same weights with identity normalisation fed
    the normalised images."""
    m = _cct()
    plain = build_model("cct_2_3x2", DatasetInfo("cifar10", 10, (3, 32, 32), (0.0,) * 3, (1.0,) * 3)).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("normalize.")},
                          strict=False)
    x = torch.rand(4, 3, 32, 32)
    mean, std = torch.tensor(INFO.mean).view(1, 3, 1, 1), torch.tensor(INFO.std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(m(x), plain((x - mean) / std), atol=1e-5)
        assert not torch.allclose(m(x), plain(x), atol=1e-3)


def test_cct_prunes_the_encoder_matrices_like_a_timm_vit():
    m = _cct()
    names = list(prunable_weights(m))
    assert names == [f"blocks.{i}.{n}.weight" for i in (0, 1)
                     for n in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
    params = dict(m.named_parameters())
    assert all(prunable_weights(m)[n] is params[n] for n in names)
    # the same names a timm VisionTransformer's blocks give (what the ViT pages prune)
    vit = build_model("vit_small", INFO)
    assert {n.split(".", 2)[2] for n in prunable_weights(vit)} >= {n.split(".", 1)[1] for n in names}


@pytest.mark.parametrize("method", ["taylor", "magnitude", "random"])
def test_pruning_methods_run_on_a_tiny_cct(method):
    m = _cct()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(32, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    data = ArrayDataset("cifar10", "train", x, torch.arange(32) % 10, 10, INFO.mean, INFO.std, "synthetic")
    meth = get_method(method)
    kw = {"data": data, "n_batches": 2, "batch_size": 16} if meth.needs_data else {}
    masks = make_masks(method, m, 0.5, seed=0, **kw)
    assert list(masks) == list(prunable_weights(m))
    kept = sum(int(v.sum()) for v in masks.values()) / sum(v.numel() for v in masks.values())
    assert abs(kept - 0.5) < 0.01


def test_risk_estimate_runs_on_a_tiny_cct():
    from prunerob.studies.risk_sweep import RiskSettings, cnn_risk_table

    tab = cnn_risk_table(_cct(), torch.rand(2, 3, 32, 32), [1.0, 0.5], [0.5],
                         mc=RiskSettings(n_masks=2, k_samples=2, steps=1, restarts=1))
    assert len(tab) == 2 and (tab.worst_case > 0).all()
    assert tab.set_index("keep_ratio").zeta_est[1.0] == 0.0  # keep 1: the model itself


# ----------------------------------------------------------------------------------- recipe


def test_augmentations_keep_pixels_in_range_and_are_seeded():
    x = torch.rand(16, 3, 8, 8)
    out = recipe.AUGMENTS.get("crop_flip")(x, torch.Generator().manual_seed(1))
    again = recipe.AUGMENTS.get("crop_flip")(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 and torch.equal(out, again)
    assert not torch.equal(out, x)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    assert recipe.AUGMENTS.get("none")(x, g) is x and torch.equal(g.get_state(), state)  # draws nothing


def test_random_crop_is_a_shift_of_the_zero_padded_image():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    off = torch.randint(0, 9, (2, 1), generator=torch.Generator().manual_seed(0))
    out = recipe.random_crop(x, g)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    r, c = int(off[0, 0]), int(off[1, 0])
    assert torch.equal(out, padded[..., r:r + 4, c:c + 4])


def test_random_flip_mirrors_some_images():
    x = torch.rand(64, 1, 2, 3)
    out = recipe.random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, i.flip(-1)) and not torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    same = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and 10 < sum(flipped) < 54


def test_schedule_values_at_known_steps():
    f = recipe.lr_factor
    assert [f("constant", s, 100, 0) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert f("constant", 1, 100, 4) == 0.5 and f("constant", 4, 100, 4) == 1.0
    # warmup over 10 steps, cosine over the remaining 90
    assert f("warmup_cosine", 0, 100, 10) == pytest.approx(0.1)
    assert f("warmup_cosine", 9, 100, 10) == pytest.approx(1.0)
    assert f("warmup_cosine", 10, 100, 10) == pytest.approx(1.0)
    assert f("warmup_cosine", 55, 100, 10) == pytest.approx(0.5)
    assert f("warmup_cosine", 99, 100, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert recipe.SCHEDULES.get("warmup_cosine").depends_on_total
    assert not recipe.SCHEDULES.get("constant").depends_on_total


@pytest.mark.parametrize("kw, match", [
    ({"augment": "mixup"}, r"augment='mixup' is not supported; allowed values: none, crop_flip"),
    ({"schedule": "step"}, r"schedule='step' is not supported; allowed values: constant, warmup_cosine"),
    ({"warmup_epochs": 3}, r"warmup_epochs=3 must be an integer in \[0, epochs=2\]"),
    ({"warmup_epochs": "1"}, r"warmup_epochs='1'"),
])
def test_bad_recipe_values_are_one_config_error_line(kw, match):
    with pytest.raises(ConfigError, match=match) as e:
        TrainConfig("cct_2_3x2", "cifar10", epochs=2, **kw)
    assert "\n" not in str(e.value)


def test_cct_recipe():
    c = TrainConfig.paper("cct_2_3x2", "cifar10")
    got = (c.epochs, c.optimizer, c.lr, c.label_smoothing, c.augment, c.schedule, c.warmup_epochs,
           c.pretrained)
    assert got == (30, "adamw", 1e-3, 0.1, "crop_flip", "warmup_cosine", 2, False)
    assert TrainConfig.paper("cct_2_3x2", "cifar10", epochs=1).warmup_epochs == 0  # keeps a decay phase
    assert TrainConfig.paper("cct_2_3x2", "cifar10", epochs=5, warmup_epochs=3).warmup_epochs == 3
    assert TrainConfig.paper("vit_tiny", "cifar10").pretrained is True  # the paper profile's model


# ------------------------------------------------------------------------------ hash neutrality


def _old_hash(cfg: TrainConfig) -> str:
    """TrainConfig.hash as it was before the recipe fields and the precision option existed (fp32:
    the retired field ``amp="none"``)."""
    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in recipe.NEUTRAL_FIELDS}
    assert d.pop("precision") == "fp32"
    d["amp"] = "none"
    return config_hash({**d, "code_version": TRAIN_CODE_VERSION})


def test_recipe_defaults_leave_hashes_and_store_keys_unchanged():
    for cfg in (TrainConfig.paper("mlp", "mnist"), TrainConfig.paper("cnn4", "cifar10", epochs=4),
                TrainConfig.paper("vit_small", "imagenette", image_size=64, train_subset=1000)):
        assert cfg.hash() == _old_hash(cfg)
        assert not set(recipe.NEUTRAL_FIELDS) & set(train_fields(cfg))
    assert TrainConfig.paper("mlp", "mnist").hash() == "a0b48509878b"  # seed 0 in committed models.csv
    base = TrainConfig("mlp", "mnist", epochs=3)
    for change in ({"augment": "crop_flip"}, {"schedule": "warmup_cosine"}, {"warmup_epochs": 1}):
        other = dataclasses.replace(base, **change)
        assert other.hash() != base.hash() and set(change) <= set(train_fields(other))


def test_every_committed_model_hash_is_reproduced():
    rows = 0
    for f in sorted((ROOT / "book/experiments/results").glob("*/models.csv")):
        df = pd.read_csv(f)
        if "hash" not in df:
            continue
        for r in df[df.arch != "transformer"].to_dict("records"):
            kw = {k: int(r[k]) for k in ("train_subset", "image_size") if k in r and pd.notna(r[k])}
            if "precision" in r and pd.notna(r["precision"]):  # bf16 rows (the cpu profile's CIFAR-10 models)
                kw["precision"] = str(r["precision"])
            cfg = TrainConfig.paper(r["arch"], r["dataset"], seed=int(r["seed"]), epochs=int(r["epochs"]),
                                    **kw)
            assert cfg.hash() == r["hash"], (f.parent.name, r)
            rows += 1
    assert rows >= 30


# ------------------------------------------------------------------------------ train_model


def _tiny(split: str, n: int) -> ArrayDataset:
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    y = torch.arange(n) % 10
    x = (torch.rand(n, 3, 32, 32, generator=g) * 128 + y.view(-1, 1, 1, 1) * 12).to(torch.uint8)
    return ArrayDataset("cifar10", split, x, y, 10, INFO.mean, INFO.std, "synthetic")


def test_train_model_with_the_cct_recipe_records_its_curve(tmp_path):
    cfg = TrainConfig.paper("cct_2_3x2", "cifar10", epochs=2, warmup_epochs=1, batch_size=16)
    train, test = _tiny("train", 48), _tiny("test", 20)
    with pytest.raises(ConfigError, match="snapshot_epochs"):
        train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False, snapshot_epochs=[1],
                    train_data=train, test_data=test)
    _, info = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False, train_data=train,
                          test_data=test)
    assert len(info["epoch_test_acc"]) == 2 and info["epoch_test_acc"][-1] == info["test_acc"]
    curve = training_curve(cfg, tmp_path, info["data_key"])
    assert [r["epoch"] for r in curve] == [1, 2] and curve[-1]["test_acc"] == info["test_acc"]
    # resume after epoch 1 gives the same weights and curve as the uninterrupted run
    other = tmp_path / "b"
    train_model(cfg, device="cpu", cache_dir=other, progress=False, stop_after_epoch=1, train_data=train,
                test_data=test)
    _, resumed = train_model(cfg, device="cpu", cache_dir=other, progress=False, train_data=train,
                             test_data=test)
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["epoch_test_acc"] == info["epoch_test_acc"]
    assert resumed["train_losses"] == info["train_losses"]


def test_snapshots_inside_the_warmup_are_refused_before_training(tmp_path):
    cfg = TrainConfig("mlp", "mnist", epochs=3, train_subset=64, hidden=(8,), warmup_epochs=2)
    with pytest.raises(ConfigError, match="warmup"):
        train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False, snapshot_epochs=[1])


def test_constant_schedule_without_augmentation_trains_as_before(tmp_path):
    """App. I's recipe records no per-epoch curve (its snapshots are the curve) and ignores the
    recipe hooks: two runs, one with the fields given explicitly at their defaults, are identical."""
    cfg = TrainConfig("mlp", "mnist", epochs=1, train_subset=64, hidden=(8,), batch_size=32)
    same = TrainConfig("mlp", "mnist", epochs=1, train_subset=64, hidden=(8,), batch_size=32, augment="none",
                       schedule="constant", warmup_epochs=0)
    assert same.hash() == cfg.hash()
    _, info = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False)
    assert "epoch_test_acc" not in info
