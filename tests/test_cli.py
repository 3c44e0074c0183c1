"""Tests of the ``prunerob`` command line (prunerob/cli/experiments.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prunerob.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def _subcommands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return list(sub.choices)


def test_subcommands_registered():
    cmds = _subcommands()
    assert {"train", "sweep"} <= set(cmds)
    for mod, names in (("prunerob.cli.theory", {"bounds", "optimize"}), ("prunerob.runner", {"reproduce"})):
        try:
            __import__(mod)
        except ModuleNotFoundError:
            continue
        assert names <= set(cmds)


@pytest.mark.parametrize("cmd", [None, *_subcommands()])
def test_help(cmd, capsys):
    argv = ["--help"] if cmd is None else [cmd, "--help"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: prunerob" + ("" if cmd is None else f" {cmd}"))
    if cmd == "sweep":
        for flag in ("--keep", "--eps", "--seeds", "--n", "--out", "--batched", "--pgd-steps",
                     "--train-subset"):
            assert flag in out
    if cmd is None:
        assert "train" in out and "sweep" in out


BAD = [
    (["--keep", "1,1.5"], "keep"),
    (["--keep", "-0.1"], "keep"),
    (["--eps", "-1"], "eps"),
    (["--eps", "4/255,-8/255"], "eps"),
    (["--model", "resnet50"], "model"),
    (["--dataset", "svhn"], "dataset"),
    (["--attack", "fgsm,deepfool"], "attack"),
    (["--method", "snip"], "method"),
    (["--seeds", "0,-1"], "seeds"),
    (["--n", "0"], "n"),
    (["--epochs", "0"], "epochs"),
    (["--batched", "maybe"], "batched"),
    (["--model", "cnn4", "--dataset", "cifar10", "--batched", "yes"], "batched"),
    (["--pgd-steps", "0", "--attack", "pgd"], "steps"),
    (["--device", "cuda:7" if not __import__("torch").cuda.is_available() else "tpu"], "device"),
]


@pytest.mark.parametrize("args, name", BAD)
def test_sweep_errors_exit_2_without_output(args, name, tmp_path, tmp_cache, capsys):
    out = tmp_path / "res.csv"
    rc = main(["sweep", *args, "--out", str(out), "--epochs", "1", "--quiet"] if "--epochs" not in args
              else ["sweep", *args, "--out", str(out), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("prunerob: error: ") and name in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("res.csv*"))
    assert not (tmp_cache / "checkpoints").exists()  # nothing was trained


@pytest.mark.parametrize("args, name", [(["--model", "resnet50"], "model"), (["--epochs", "-3"], "epochs"),
                                        (["--train-subset", "0"], "train-subset")])
def test_train_errors_exit_2(args, name, tmp_cache, capsys):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prunerob: error: ") and name in err
    assert not (tmp_cache / "checkpoints").exists()


def test_python_m_prunerob_error_has_no_traceback(tmp_path):
    out = tmp_path / "r.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PRUNEROB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "prunerob", "sweep", "--keep", "1.5", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("prunerob: error: --keep=1.5 is outside [0, 1]; "
                                   "a keep ratio is the fraction of weights kept")
    assert not out.exists()


@pytest.mark.needs_mnist
def test_sweep_smoke_mnist(tmp_path, tmp_cache, capsys):
    out = tmp_path / "results.csv"
    argv = ["sweep", "--model", "mlp", "--dataset", "mnist", "--epochs", "2", "--train-subset", "2000",
            "--n", "500", "--keep", "1,0.5", "--attack", "fgsm", "--eps", "4/255", "--out", str(out),
            "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "clean_acc" in printed and "adv_acc" in printed and f"wrote 2 rows to {out}" in printed
    df = pd.read_csv(out)
    assert len(df) == 2 and list(df.keep_ratio) == [1.0, 0.5]
    assert (df.attack == "fgsm").all() and (df.eps_label == "4/255").all() and (df.n == 500).all()
    assert (df.model == "mlp").all() and (df.dataset == "mnist").all() and (df.seed == 0).all()
    assert (df.path == "batched").all() and (df.train_epochs == 2).all() and (df.train_subset == 2000).all()
    assert df.clean_acc.min() > 0.5 and (df.adv_acc <= df.clean_acc + 0.05).all()
    assert abs(df.achieved_keep.iloc[1] - 0.5) < 1e-3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("results")) == ["results.csv"]
    assert len(list((tmp_cache / "checkpoints").glob("mlp-mnist-*.safetensors"))) == 1

    # `prunerob train` with the same settings finds the checkpoint the sweep trained
    assert main(["train", "--epochs", "2", "--train-subset", "2000", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "loaded from cache" in printed and "test accuracy: 0." in printed
    assert f"checkpoint: {tmp_cache}" in printed
