"""Tests of the experiment API: any model and any labelled data through run_sweep, and run_experiment.

* A torchvision ResNet-18 built here (never registered anywhere in prunerob) is pruned and
  attacked on tiny random 3x32x32 data, with free-form labels in the table.
* ``(x, y)`` tensors (uint8 or float in [0, 1]) and a ``DataLoader`` give the same rows as the
  ``ArrayDataset`` holding the same examples.
* ``run_experiment`` validates the whole spec before any work (one ConfigError naming the field),
  trains a tiny MNIST MLP into a private cache and returns the tidy tables (MNIST needed).
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from prunerob.config import ConfigError
from prunerob.core.data import ArrayDataset
from prunerob.engine.experiment import ExperimentSpec, SubsetSpec, plan_units, run_experiment, train_summary
from prunerob.engine.sweep import run_sweep, unpack_bits

torchvision = pytest.importorskip("torchvision")

SAME = ["method", "keep_ratio", "attack", "eps", "clean_correct", "adv_correct", "clean_bits", "adv_bits",
        "achieved_keep"]


class Scaled(nn.Module):
    """Inputs in [0, 1] -> the wrapped model (a stand-in for a user's normalisation wrapper)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x * 2 - 1)


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    return x, y


@pytest.fixture(scope="module")
def resnet_and_data():
    torch.manual_seed(0)
    return Scaled(torchvision.models.resnet18(num_classes=10)).eval(), *_data()


@pytest.fixture(scope="module")
def small_and_data():
    """A small torchvision model (0.7M weights) for the tests that sweep several times."""
    torch.manual_seed(0)
    return Scaled(torchvision.models.squeezenet1_1(num_classes=10)).eval(), *_data()


def _kw(**over):
    kw = dict(methods=["magnitude", "random"], keeps=[1.0, 0.5], attacks=["fgsm", "pgd"], eps=["8/255"],
              n=12, batch_size=8, device="cpu", progress=False,
              attack_overrides={"pgd": {"steps": 2}})
    kw.update(over)
    return kw


def test_torchvision_resnet_unregistered_free_labels(resnet_and_data):
    model, x, y = resnet_and_data
    before = {k: v.clone() for k, v in model.state_dict().items()}
    df = run_sweep(model, (x, y), model_name="my-resnet18", dataset_name="random 3x32x32", **_kw(n=8))
    assert len(df) == 2 * 2 * 2
    assert (df.model == "my-resnet18").all() and (df.dataset == "random 3x32x32").all()
    assert (df.path == "loop").all() and (df.n == 8).all()
    for r in df.itertuples():
        assert unpack_bits(r.clean_bits, 8).sum() == r.clean_correct
        assert unpack_bits(r.adv_bits, 8).sum() == r.adv_correct
    # pruning did something: half the prunable weights are kept, and not every keep gives the same logits
    assert abs(df[df.keep_ratio == 0.5].achieved_keep.iloc[0] - 0.5) < 0.01
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # model untouched
    # default labels: the class name and "custom"
    d2 = run_sweep(model, (x, y), **_kw(methods=["random"], keeps=[1.0], attacks=["fgsm"], n=4))
    assert (d2.model == "Scaled").all() and (d2.dataset == "custom").all()


def test_tuple_float_and_dataloader_equal_arraydataset(small_and_data):
    model, x, y = small_and_data
    kw = _kw(methods=["magnitude"], keeps=[1.0, 0.3], model_name="r18", dataset_name="d")
    ds = ArrayDataset("custom-set", "test", x, y, 10, (0.5,) * 3, (0.5,) * 3, "random bytes")
    ref = run_sweep(model, ds, **kw)
    as_uint8 = run_sweep(model, (x, y), **kw)
    as_float = run_sweep(model, (x.float() / 255, y), **kw)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=False)
    as_loader = run_sweep(model, loader, **kw)
    for other in (as_uint8, as_float, as_loader):
        pd.testing.assert_frame_equal(ref[SAME], other[SAME])
    assert (ref.eval_split == "test").all() and as_uint8.eval_split.isna().all()


@pytest.mark.parametrize("data, match", [
    (lambda x, y: (x.float(), y), r"\[0, 1\]"),           # float pixels in [0, 255]
    (lambda x, y: (x, y[:-1]), "y must be"),               # length mismatch
    (lambda x, y: (x, y.float()), "y must be"),            # float labels
    (lambda x, y: [x], "tuple must be"),
    (lambda x, y: "images/", "DataLoader"),
])
def test_bad_data_is_one_config_error(small_and_data, data, match):
    model, x, y = small_and_data
    with pytest.raises(ConfigError, match=match):
        run_sweep(model, data(x, y), **_kw())


@pytest.mark.filterwarnings("ignore:taylor_scores")
def test_taylor_on_tuple_train_data(small_and_data):
    model, x, y = small_and_data
    with pytest.raises(ConfigError, match="train_data"):
        run_sweep(model, (x, y), **_kw(methods=["taylor"]))
    df = run_sweep(model, (x, y), train_data=(x, y), **_kw(methods=["taylor"], keeps=[0.5], attacks=["fgsm"]))
    assert len(df) == 1 and abs(df.achieved_keep.iloc[0] - 0.5) < 0.01


# --------------------------------------------------------------------------------------------
# ExperimentSpec validation (no work is done)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("over, match", [
    (dict(datasets=["svhn"]), "datasets"),
    (dict(models={"cifar10": "mlp"}), "models has no entry for data set"),
    (dict(models="resnet"), r"models\['mnist'\]"),
    (dict(methods=["snip"]), "method"),
    (dict(attacks=["deepfool"]), "attack"),
    (dict(keeps=[1.2]), "keep"),
    (dict(eps="1e400"), "eps"),
    (dict(seeds=[0, 0]), "seeds"),
    (dict(n={"mnist": 0}), "n"),
    (dict(epochs=0), "epochs"),
    (dict(train_subset=-5), "train_subset"),
    (dict(batched="yes", models="cnn4"), "batched"),
    (dict(subset=SubsetSpec(attacks=["nope"])), "attack"),
    (dict(subset=[SubsetSpec(name="a"), SubsetSpec(name="a")]), "subset names"),
    (dict(subset=SubsetSpec(datasets=["svhn"])), "subset 'subset' datasets"),
    (dict(attack_overrides={"pgd": {"steps": 0}}), "steps"),
])
def test_spec_validation(over, match, tmp_cache):
    spec = ExperimentSpec(**{**dict(datasets=["mnist"], models="mlp", methods=["magnitude"], keeps=[1.0],
                                    attacks=["fgsm"], seeds=[0], epochs=1), **over})
    with pytest.raises(ConfigError, match=match):
        run_experiment(spec)
    assert not (tmp_cache / "checkpoints").exists()


def test_bad_scheduler_is_config_error(tmp_cache):
    spec = ExperimentSpec(datasets=["mnist"], models="mlp", methods=["magnitude"], keeps=[1.0],
                          attacks=["fgsm"])
    for bad in ("local:0", "http://x", "yarn", 3):
        with pytest.raises(ConfigError, match="scheduler"):
            run_experiment(spec, scheduler=bad)


def test_plan_per_dataset_values():
    spec = ExperimentSpec(datasets=["mnist", "cifar10"], models={"mnist": ["mlp", "mlp3"], "cifar10": "cnn4"},
                          methods=["magnitude"], keeps={"mnist": [1.0, 0.5], "cifar10": [1.0]},
                          attacks={"mnist": ["fgsm", "cw"], "cifar10": ["fgsm"]}, seeds=[0, 1],
                          n={"mnist": 100, "cifar10": 50}, epochs={"mnist": 2, "cifar10": 1},
                          train_subset=500,
                          subset=SubsetSpec(attacks=["autoattack"], keeps=[1.0], n=20, seeds=[0],
                                            datasets=["mnist"]))
    units = plan_units(spec)
    assert [u.key for u in units] == ["mlp-mnist-seed0", "mlp-mnist-seed1", "mlp3-mnist-seed0",
                                      "mlp3-mnist-seed1", "cnn4-cifar10-seed0", "cnn4-cifar10-seed1"]
    u = units[0]
    assert u.train.epochs == 2 and u.train.train_subset == 500 and u.train.seed == 0
    assert [p for p, _ in u.sweeps] == ["main", "subset"] and u.sweeps[1][1].n == 20
    assert u.sweeps[0][1].keeps == (1.0, 0.5) and u.sweeps[0][1].attacks == ("fgsm", "cw")
    assert [p for p, _ in units[1].sweeps] == ["main"]  # subset only for seed 0
    assert units[4].sweeps[0][1].n == 50 and units[4].train.epochs == 1 and len(units[4].sweeps) == 1
    assert units[1].sweeps[0][1].seed == 1 and units[1].sweeps[0][1].specs[("fgsm", 4 / 255)].seed == 1


@pytest.mark.needs_mnist
def test_run_experiment_mnist(tmp_cache, tmp_path):
    spec = ExperimentSpec(datasets=["mnist", "cifar100"], models={"mnist": "mlp", "cifar100": "mlp_cifar"},
                          methods=["magnitude", "random"], keeps=[1.0, 0.5], attacks=["fgsm"], eps="4/255",
                          seeds=[0], n=200, epochs=1, train_subset=1000, device="cpu",
                          subset=SubsetSpec(attacks=["pgd"], keeps=[1.0], n=50))
    res = run_experiment(spec)
    assert "cifar100" in res.skipped and set(res.sources) == {"mnist"}
    df = res.sweep
    assert len(df) == 2 * 2 + 2 and set(df.part) == {"main", "subset"}  # subset: both methods, keep 1
    assert (df[df.part == "subset"].n == 50).all() and (df[df.part == "main"].n == 200).all()
    assert (df.model == "mlp").all() and (df.train_epochs == 1).all() and (df.train_subset == 1000).all()
    assert list(res.models.columns) == list(train_summary(res.infos).columns)
    assert len(res.models) == 1 and res.models.test_acc.iloc[0] > 0.5 and not res.models.cached.iloc[0]
    paths = res.save(tmp_path / "out")
    assert pd.read_csv(paths["sweep"]).shape == df.shape and paths["provenance"].read_text().startswith("{")
    assert res.provenance["scheduler"] == "serial" and res.provenance["units"] == ["mlp-mnist-seed0"]
    again = run_experiment(spec)  # loads the checkpoint from the cache: the same rows
    assert again.models.cached.iloc[0]
    pd.testing.assert_frame_equal(again.sweep, df)


@pytest.mark.needs_mnist
def test_run_experiment_resume_dir(tmp_cache, tmp_path, sweep_loop):
    """An interrupted experiment resumes from resume_dir to the rows of an uninterrupted one."""
    spec = ExperimentSpec(datasets=["mnist"], models="mlp", methods=["magnitude"], keeps=[1.0, 0.6, 0.3],
                          attacks=["fgsm"], seeds=[0, 1], n=100, epochs=1, train_subset=1000, device="cpu",
                          batched="no", extra_columns={"profile": "test"})
    sweep_loop.interrupt_at(5)
    rdir = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, resume_dir=rdir)
    assert sorted(p.name for p in rdir.iterdir()) == ["mlp-mnist-seed0-main.partial.json",
                                                     "mlp-mnist-seed1-main.partial.json"]
    sweep_loop.count()
    resumed = run_experiment(spec, resume_dir=rdir)
    assert len(sweep_loop.calls) == 2 and list(rdir.iterdir()) == []  # seed 1 at keeps 0.6 and 0.3
    fresh = run_experiment(spec)
    assert resumed.sweep.to_csv(index=False) == fresh.sweep.to_csv(index=False)
    assert (fresh.sweep.profile == "test").all()


def test_seeds_per_dataset():
    """``seeds`` may be a dict data set -> seeds (five on MNIST, one on CIFAR-10)."""
    from prunerob.engine.experiment import ExperimentSpec, plan_units

    spec = ExperimentSpec(datasets=["mnist", "cifar10"], models={"mnist": "mlp", "cifar10": "cnn4"},
                          seeds={"mnist": [0, 1, 2], "cifar10": [5]}, epochs=1, keeps=[1.0])
    got = [(u.dataset, u.seed) for u in plan_units(spec)]
    assert got == [("mnist", 0), ("mnist", 1), ("mnist", 2), ("cifar10", 5)]
    with pytest.raises(ConfigError, match=r"seeds\['cifar10'\]"):
        plan_units(ExperimentSpec(datasets=["mnist", "cifar10"], seeds={"mnist": [0], "cifar10": [1, 1]}))
    with pytest.raises(ConfigError, match="no entry for data set"):
        plan_units(ExperimentSpec(datasets=["mnist", "cifar10"], seeds={"mnist": [0]}))
