"""Training precision (prunerob.core.precision): fp32 hashes unchanged, the bf16 recipe, its layout.

Speed is measured only by ``benchmarks/precision.py``; accuracy over seeds by its ``--numerics``
(book/experiments/precision.md). These tests check the contracts, in seconds, on the CPU.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.data import load_dataset
from prunerob.core.models import build_model
from prunerob.core.precision import CHANNELS_LAST_ARCHS, get_precision, precision_label, precision_names
from prunerob.core.train import TrainConfig, evaluate_accuracy, load_checkpoint, train_model

RESULTS = Path(__file__).resolve().parent.parent / "book" / "experiments" / "results"


@pytest.mark.parametrize("cfg, recorded", [
    # values from the committed result tables (models.csv) of the book's pages
    (TrainConfig.paper("mlp", "mnist", seed=0), "a0b48509878b"),
    (TrainConfig.paper("mlp", "mnist", seed=1), "c5a5a1be8fa0"),
    (TrainConfig.paper("cnn4", "cifar10", epochs=4, seed=0), "0af16685bc9f"),
    (TrainConfig.paper("mlp_cifar", "cifar10", epochs=5), "25791c89b21a"),
    (TrainConfig.paper("vit_small", "cifar10", epochs=2, train_subset=1000, seed=1), "217518b95a17"),
])
def test_fp32_hash_is_the_one_recorded_before_precision_existed(cfg, recorded):
    assert cfg.precision == "fp32"
    assert cfg.hash() == recorded
    assert dataclasses.replace(cfg, precision="fp32").hash() == recorded
    assert dataclasses.replace(cfg, precision="bf16").hash() != recorded


def test_every_committed_model_row_hashes_as_recorded():
    """Each row of every committed models.csv is rebuilt as a TrainConfig and hashes as recorded."""
    n = 0
    for table in sorted(RESULTS.glob("*/models.csv")):
        with table.open() as f:
            for row in csv.DictReader(f):
                if not row.get("hash"):
                    continue
                opt: dict = {k: int(float(row[k])) for k in ("train_subset", "image_size") if row.get(k)}
                if row.get("precision"):  # bf16 rows: the cpu profile's CIFAR-10 models
                    opt["precision"] = row["precision"]
                cfg = TrainConfig.paper(row["arch"], row["dataset"], epochs=int(row["epochs"]),
                                        seed=int(row["seed"]), **opt)
                assert cfg.hash() == row["hash"], (table, row)
                n += 1
    assert n >= 10


def test_registry_and_labels():
    assert precision_names() == ("fp32", "bf16")
    assert [get_precision(n).name for n in precision_names()] == ["fp32", "bf16"]
    assert precision_label("fp32") == "fp32" and "bf16" in precision_label("bf16")
    with pytest.raises(ConfigError, match="precision='fp16'.*fp32, bf16"):
        get_precision("fp16")
    with pytest.raises(ConfigError, match="precision=16"):
        get_precision(16)


def test_autocast_runs_the_forward_pass_in_bf16_only_for_bf16():
    lin, x = nn.Linear(4, 3), torch.randn(2, 4)
    with get_precision("bf16").autocast(torch.device("cpu")):
        assert lin(x).dtype == torch.bfloat16
    with get_precision("fp32").autocast(torch.device("cpu")):
        assert lin(x).dtype == torch.float32
    assert lin.weight.dtype == torch.float32  # master weights stay float32


def test_prepare_sets_the_bf16_layout_and_leaves_fp32_alone():
    info = load_dataset("mnist", "test").info
    cpu = torch.device("cpu")
    assert "cnn4" in CHANNELS_LAST_ARCHS
    cnn = get_precision("bf16").prepare(build_model("cnn4", info), "cnn4", cpu)
    conv = cnn.features[2].weight  # 32 -> 32 channels (the first conv has one input channel)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = get_precision("bf16").input_layout("cnn4")(torch.rand(2, 1, 28, 28))
    assert x.is_contiguous(memory_format=torch.channels_last)
    cnn32 = get_precision("fp32").prepare(build_model("cnn4", info), "cnn4", cpu)
    assert cnn32.features[2].weight.is_contiguous()
    vit = get_precision("bf16").prepare(build_model("vit_small", info), "vit_small", cpu)
    flags = [m.fused_attn for m in vit.modules() if isinstance(getattr(m, "fused_attn", None), bool)]
    assert flags and not any(flags)
    assert get_precision("bf16").optimizer_kwargs() == {"fused": True}
    assert get_precision("fp32").optimizer_kwargs() == {"foreach": True}


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_fp32_foreach_step_is_bitwise_the_for_loop_step(optimizer):
    """fp32 training uses foreach Adam/AdamW; its weights equal those of the for-loop step that
    torch uses by default on the CPU, bit for bit, so fp32 checkpoints mean what they meant."""
    info = load_dataset("mnist", "test").info
    cls = torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW

    def run(**kw):
        torch.manual_seed(0)
        model = build_model("cnn4", info)
        opt = cls(model.parameters(), lr=1e-3, weight_decay=0.0 if optimizer == "adam" else 0.05, **kw)
        gen = torch.Generator().manual_seed(1)
        for _ in range(3):
            x, y = torch.rand(16, 1, 28, 28, generator=gen), torch.randint(0, 10, (16,), generator=gen)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return list(model.parameters())

    for a, b in zip(run(foreach=False), run(**get_precision("fp32").optimizer_kwargs()), strict=True):
        assert torch.equal(a, b)


def test_bf16_training_returns_the_model_the_cache_returns(tmp_path):
    """A freshly trained bf16 CNN is in the default layout (no channels_last), so its evaluation is
    the same computation as that of the cached copy; the weights differ from fp32 training."""
    kw = dict(epochs=1, train_subset=256, batch_size=64)
    cfg = TrainConfig("cnn4", "mnist", precision="bf16", **kw)
    model, info = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False)
    assert info["config"]["precision"] == "bf16" and info["hash"] == cfg.hash()
    assert all(p.is_contiguous() and p.dtype == torch.float32 for p in model.parameters())
    loaded, meta = load_checkpoint(cfg, device="cpu", cache_dir=tmp_path)
    for (n, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    test = load_dataset("mnist", "test").subset(300, seed=0)
    assert evaluate_accuracy(model, test) == evaluate_accuracy(loaded, test)
    fp32, _ = train_model(TrainConfig("cnn4", "mnist", **kw), device="cpu", cache_dir=tmp_path,
                          progress=False)
    assert not torch.equal(fp32.features[0].weight, model.features[0].weight)


def test_bf16_resume_equals_uninterrupted(tmp_path):
    """Resume (model in channels_last, fused Adam state) gives the weights of one uninterrupted run."""
    cfg = TrainConfig("cnn4", "mnist", epochs=2, train_subset=128, batch_size=64, precision="bf16")
    ref, _ = train_model(cfg, device="cpu", cache_dir=tmp_path / "a", progress=False)
    train_model(cfg, device="cpu", cache_dir=tmp_path / "b", progress=False, stop_after_epoch=1)
    model, info = train_model(cfg, device="cpu", cache_dir=tmp_path / "b", progress=False)
    assert info["resumed_from_epoch"] == 1
    for a, b in zip(ref.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_experiment_spec_passes_precision_per_data_set():
    from prunerob.engine.experiment import ExperimentSpec, plan_units

    spec = ExperimentSpec(datasets=["mnist", "cifar10"], models={"mnist": "mlp", "cifar10": "cnn4"},
                          precision={"mnist": "fp32", "cifar10": "bf16"}, epochs=1)
    got = {u.dataset: u.train for u in plan_units(spec)}
    assert got["mnist"].precision == "fp32" and got["cifar10"].precision == "bf16"
    assert got["mnist"].hash() == TrainConfig.paper("mlp", "mnist", epochs=1).hash()
    assert plan_units(ExperimentSpec(precision="bf16", epochs=1))[0].train.precision == "bf16"
    with pytest.raises(ConfigError, match="precision='fp16'.*fp32, bf16"):
        plan_units(ExperimentSpec(precision="fp16"))
    with pytest.raises(ConfigError, match="precision has no entry for data set"):
        plan_units(ExperimentSpec(datasets=["mnist", "cifar10"], precision={"mnist": "fp32"}))


def test_cpu_profile_trains_cifar_and_transformers_in_bf16_and_mnist_in_fp32():
    from prunerob.runner.checks import check_parameter
    from prunerob.runner.profiles import NOTEBOOKS, PROFILES, parameters

    cpu = {n: parameters(n, "cpu") for n in NOTEBOOKS}
    assert cpu["magnitude_mlp"]["precision"] == {"mnist": "fp32", "cifar10": "bf16"}
    assert set(cpu["magnitude_cnn"]["precision"].values()) == {"bf16"}
    # the Imagenette CCT trained in fp32 on a CPU without native bf16 (profiles.IMAGENETTE_CPU_PRECISION)
    assert cpu["score_vit"]["precision"] == {"cifar10": "bf16", "cifar100": "bf16", "imagenet100": "bf16",
                                             "imagenette": "fp32"}
    assert cpu["risk_vs_keep"]["cnn_precision"] == "bf16"
    for profile in PROFILES:
        for name in NOTEBOOKS:
            p = parameters(name, profile)
            for key in ("precision", "cnn_precision"):
                if key in p:
                    check_parameter(key, p[key], [p[key]])
                    if profile != "cpu":  # quick (CI) and paper (the paper's setting): fp32
                        values = p[key].values() if isinstance(p[key], dict) else [p[key]]
                        assert set(values) == {"fp32"}, (name, profile)
    with pytest.raises(ConfigError, match="precision.*fp32, bf16"):
        check_parameter("precision", {"cifar10": "fp16"}, [{"cifar10": "fp32"}])


def test_device_caption_names_the_training_precision():
    import pandas as pd

    from prunerob.studies import pages

    old = pd.DataFrame({"model": ["mlp"], "dataset": ["mnist"], "device": ["cpu (1 threads)"]})
    assert pages.devices(old) == "cpu (1 threads); training precision: fp32"
    both = pd.DataFrame({"model": ["mlp", "mlp_cifar"], "dataset": ["mnist", "cifar10"],
                         "device": ["cpu (1 threads)"] * 2, "train_precision": ["fp32", "bf16"]})
    assert pages.devices(both) == ("cpu (1 threads); training precision: mlp on mnist: fp32; "
                                   "mlp_cifar on cifar10: bf16 autocast, fp32 master weights")
    assert pages.devices(both.iloc[1:]).endswith("training precision: bf16 autocast, fp32 master weights")


def test_run_experiment_records_the_training_precision(tmp_path):
    from prunerob.engine.experiment import ExperimentSpec, run_experiment
    from prunerob.studies import pages

    res = run_experiment(ExperimentSpec(precision="bf16", epochs=1, train_subset=200, n=40, keeps=[1.0],
                                        attacks=["fgsm"], device="cpu", cache_dir=tmp_path))
    assert set(res.sweep.train_precision) == {"bf16"} and set(res.models.precision) == {"bf16"}
    assert pages.devices(res.sweep).endswith("training precision: bf16 autocast, fp32 master weights")


def test_cli_train_takes_precision(tmp_cache, capsys):
    from prunerob.cli import main

    args = ["train", "--epochs", "1", "--train-subset", "200", "--device", "cpu", "--precision", "bf16"]
    assert main(args) == 0
    want = TrainConfig.paper("mlp", "mnist", epochs=1, train_subset=200, precision="bf16").hash()
    assert f"config {want}" in capsys.readouterr().out
    assert main(["train", "--precision", "fp16"]) == 2
    assert "--precision='fp16' is not supported; allowed values: fp32, bf16" in capsys.readouterr().err
    assert main(["sweep", "--attack-precision", "fp16"]) == 2
    assert "--attack-precision='fp16' is not supported" in capsys.readouterr().err


def test_attack_precision_is_fp32_by_default_and_bf16_only_where_measured():
    from prunerob.core.attacks import AttackSpec, make_attack
    from prunerob.core.precision import BF16_ATTACKS, AutocastModel
    from prunerob.engine.stacked import stackable

    fp32, bf16 = AttackSpec("pgd"), AttackSpec("pgd", precision="bf16")
    assert fp32.precision == "fp32" and "attack_precision" not in fp32.as_columns()  # tables as before
    assert bf16.as_columns()["attack_precision"] == "bf16" and "bf16" in bf16.describe()
    assert stackable(fp32) and not stackable(bf16)  # bf16 attacks take the per-ratio loop
    assert BF16_ATTACKS == ("fgsm", "pgd")
    with pytest.raises(ConfigError, match="precision='bf16' is available for fgsm, pgd.*not for attack 'cw'"):
        AttackSpec("cw", precision="bf16")
    with pytest.raises(ConfigError, match="precision='fp16'.*fp32, bf16"):
        AttackSpec("fgsm", precision="fp16")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    atk = make_attack("fgsm", model, precision="bf16")
    assert isinstance(atk._target, AutocastModel) and atk._target.inner is model
    x_adv = atk(x, y)
    assert x_adv.dtype == torch.float32 and (x_adv - x).abs().max() <= 4 / 255 + 1e-7
    assert make_attack("fgsm", model)._target is model


def test_sweep_with_bf16_attacks_marks_its_rows(tmp_path):
    from prunerob.engine.sweep import run_sweep
    from prunerob.studies import pages

    cfg = TrainConfig("mlp", "mnist", epochs=1, train_subset=200, hidden=(32,))
    model, _ = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False)
    df = run_sweep(model, load_dataset("mnist", "test"), methods="magnitude", keeps=[1.0], attacks="fgsm,pgd",
                   eps="4/255", n=100, attack_overrides={"pgd": {"precision": "bf16"}}, progress=False)
    rows = df.set_index("attack")
    assert rows.loc["pgd", "attack_precision"] == "bf16" and rows.loc["pgd", "path"] == "loop"
    assert rows["attack_precision"].isna()["fgsm"]
    assert "attack gradients in bf16 autocast" in pages.devices(df)


def test_sweep_evaluates_a_cnn4_copy_in_channels_last(tmp_path, monkeypatch):
    """The attack pass runs on a channels_last copy of a CNN4 (faster, same outcomes: see the
    benchmark); the caller's model keeps its layout, and the results match the NCHW pass."""
    import prunerob.engine.sweep as sweep_mod
    from prunerob.core.precision import eval_layout

    info = load_dataset("mnist", "test").info
    cnn = eval_layout(build_model("cnn4", info))
    assert cnn.features[2].weight.is_contiguous(memory_format=torch.channels_last)
    vit = eval_layout(build_model("vit_small", info))  # only CNN4 was measured faster
    assert vit.vit.patch_embed.proj.weight.is_contiguous()

    cfg = TrainConfig("cnn4", "mnist", epochs=1, train_subset=256, batch_size=64)
    model, _ = train_model(cfg, device="cpu", cache_dir=tmp_path, progress=False)
    kw = dict(methods="magnitude", keeps=[1.0, 0.5], attacks="fgsm,pgd", eps="0.1", n=100, progress=False)
    fast = sweep_mod.run_sweep(model, load_dataset("mnist", "test"), **kw)
    assert all(p.is_contiguous() for p in model.parameters())  # the caller's model is untouched
    monkeypatch.setattr(sweep_mod, "eval_layout", lambda m: m)
    nchw = sweep_mod.run_sweep(model, load_dataset("mnist", "test"), **kw)
    assert (fast.adv_correct - nchw.adv_correct).abs().max() <= 1
    assert (fast.clean_correct == nchw.clean_correct).all()


def test_every_notebook_curve_is_trained_in_the_pages_precision():
    """A training curve is of the model the sweep trained: a ``pages.training_curve`` call without
    ``precision=`` trains an fp32 twin of a bf16 model (score_vit did: a 30-epoch fp32 CCT, hours)."""
    import ast

    calls = []
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "training_curve"):
                calls.append((path.stem, {k.arg for k in node.keywords}))
    assert {name for name, _ in calls} >= {"score_vit", "magnitude_cnn", "magnitude_mlp"}
    assert [name for name, kw in calls if "precision" not in kw] == []


def test_training_curve_takes_a_pages_precision_per_data_set():
    """``precision`` of a page is one string or one per data set; the curve resolves it for its data
    set, and a mapping without that data set is one clear line before any training starts."""
    from prunerob.studies import pages

    with pytest.raises(ConfigError, match=r"precision=\{'mnist': 'bf16'\} has no entry for the curve's "
                                          r"data set 'cifar10'"):
        pages.training_curve(None, "mlp", "cifar10", 0, epochs=1, precision={"mnist": "bf16"})


# ------------------------------------------------------------------------------------------------
# the runner's warning where bf16 would be emulated (prunerob.runner.hardware)
# ------------------------------------------------------------------------------------------------
_ZEN3 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
_SPR = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16\n"


def test_native_bf16_reads_the_cpu_flags():
    from prunerob.runner.hardware import native_bf16

    assert native_bf16(_ZEN3) is False
    assert native_bf16(_SPR) is True
    assert native_bf16("processor\t: 0\nFeatures\t: fp asimd bf16\n") is None  # not x86: not known


def test_bf16_warning_names_the_pages_that_would_train_in_emulated_bf16():
    from prunerob.runner.hardware import bf16_warning

    pages = [("score_vit", {"precision": {"cifar10": "bf16", "imagenette": "fp32"}, "device": "auto"}),
             ("sweet_spot", {"cnn_precision": "bf16", "device": "auto"}),
             ("depth", {"precision": "fp32", "device": "auto"}), ("own_model", {"device": "auto"})]
    line = bf16_warning(pages, native=False)
    assert line is not None and line.count("\n") == 0
    assert "score_vit (precision)" in line and "sweet_spot (cnn_precision)" in line and "depth" not in line
    assert bf16_warning(pages, native=True) is None and bf16_warning(pages, native=None) is None
    # with a GPU, a page trains on the CPU only with device cpu
    assert bf16_warning(pages, native=False, cuda=True) is None
    cpu_page = [("score_vit", {"precision": "bf16", "device": "cpu"})]
    assert "score_vit" in bf16_warning(cpu_page, native=False, cuda=True)


def test_bf16_params_count_only_what_the_page_will_train():
    """A per-data-set value counts for the page's own data sets; a part's precision only when it runs."""
    from prunerob.runner.hardware import bf16_params

    per_ds = {"cifar10": "bf16", "imagenette": "fp32"}
    assert bf16_params({"datasets": ["imagenette"], "precision": per_ds}) == []
    assert bf16_params({"datasets": ["cifar10", "imagenette"], "precision": per_ds}) == ["precision"]
    assert bf16_params({"precision": per_ds}) == ["precision"]  # no datasets list: every entry counts
    two_parts = {"run_cnn": False, "cnn_precision": "bf16", "vit_precision": "bf16"}
    assert bf16_params(two_parts) == ["vit_precision"]
    assert bf16_params({"run_cnn": True, "cnn_precision": "bf16"}) == ["cnn_precision"]


def test_reproduce_prints_the_bf16_warning_before_any_work(monkeypatch, capsys):
    """The CLI says it once, on stderr, before running anything (the run itself is stubbed out)."""
    from prunerob.runner import commands, hardware

    monkeypatch.setattr(hardware, "native_bf16", lambda cpuinfo=None: False)
    calls = []
    monkeypatch.setattr(commands, "reproduce", lambda *a, **k: calls.append(capsys.readouterr().err) or [])
    assert commands.main(["reproduce", "score_vit", "--profile", "cpu"]) == 0
    assert len(calls) == 1 and calls[0].startswith("warning: this CPU has no native bf16") \
        and "score_vit (precision)" in calls[0]
