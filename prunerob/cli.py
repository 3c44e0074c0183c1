"""Command line: ``prunerob train | sweep | bounds | optimize | reproduce`` (``python -m prunerob``).

* ``train``: train a model with the recipe of App. I (:meth:`prunerob.train.TrainConfig.paper`),
  or load its cached checkpoint; prints the test accuracy and the checkpoint path.
* ``sweep``: for each seed, train (or load) the model and evaluate it over keep ratios x pruning
  methods x attacks x eps (:func:`prunerob.sweep.run_sweep`, Sec. 6.3 / Fig. 2-3); the tables
  of all seeds go to ``--out`` (written atomically) and a compact summary is printed.
* ``bounds`` / ``optimize`` (:mod:`prunerob.cli_theory`) and ``reproduce``
  (:mod:`prunerob.runner`) are added when those modules are present.

Every argument is validated before anything is trained or written. Bad input prints
``prunerob: error: <message>`` on stderr and exits with status 2 (no traceback, no output file).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

from prunerob.config import ConfigError, check_choice, parse_list

#: modules that add their own subcommands with ``register(subparsers)``
PLUGINS = ("prunerob.cli_theory", "prunerob.runner")

DEFAULT_KEEPS = "1,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1"


def _positive_int(name: str, value: int | None, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if value is None or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return value


def _train_config(args: argparse.Namespace, seed: int):
    """``TrainConfig.paper(model, dataset)`` with the command-line overrides (validates, trains nothing)."""
    from prunerob.data import DATASETS
    from prunerob.models import ARCHS
    from prunerob.train import TrainConfig

    check_choice("model", args.model, ARCHS)
    check_choice("dataset", args.dataset, DATASETS)
    _positive_int("epochs", args.epochs)
    _positive_int("train-subset", args.train_subset)
    over: dict[str, Any] = {"seed": seed}
    if args.epochs is not None:
        over["epochs"] = args.epochs
    if args.train_subset is not None:
        over["train_subset"] = args.train_subset
    return TrainConfig.paper(args.model, args.dataset, **over)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mlp", help="architecture (mlp, mlp3, mlp4, mlp_cifar, cnn4, vit_small, vit_tiny; default mlp)")
    p.add_argument("--dataset", default="mnist", help="data set (mnist, cifar10, cifar100, imagenette, imagenet100; default mnist)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the paper's, App. I)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on a seeded random subset of N training examples (default: all)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--data-root", default=None, metavar="PATH", help="data folder (default $PRUNEROB_DATA)")


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``prunerob train``: train (or load) one model and print its test accuracy and checkpoint."""
    from prunerob.config import resolve_device
    from prunerob.train import train_model

    if args.seed < 0:
        raise ConfigError(f"seed={args.seed!r} must be an integer >= 0")
    cfg = _train_config(args, args.seed)
    device = resolve_device(args.device)
    _, info = train_model(cfg, device=device, data_root=args.data_root, force=args.force)
    state = "loaded from cache" if info.get("cached") else "trained"
    print(f"{cfg.arch} on {cfg.dataset} (seed {cfg.seed}, {cfg.epochs} epochs, config {cfg.hash()}): {state}")
    print(f"test accuracy: {info['test_acc']:.4f}")
    print(f"checkpoint: {info['checkpoint']}")
    return 0


# --------------------------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------------------------
def _attack_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    over: dict[str, dict[str, Any]] = {}
    if args.pgd_steps is not None:
        over.setdefault("pgd", {})["steps"] = args.pgd_steps
    if args.pgd_alpha is not None:
        over.setdefault("pgd", {})["alpha"] = args.pgd_alpha
    if args.pgd_restarts is not None:
        over.setdefault("pgd", {})["restarts"] = args.pgd_restarts
    if args.cw_steps is not None:
        over.setdefault("cw", {})["steps"] = args.cw_steps
    if args.cw_kappa is not None:
        over.setdefault("cw", {})["kappa"] = args.cw_kappa
    return over


def _seed(v: str) -> int:
    s = int(v)
    if s < 0:
        raise ConfigError(f"seeds: {v!r} must be an integer >= 0")
    return s


def summary_table(df):
    """Compact view of a sweep table: mean (and std over seeds) of clean and adversarial accuracy."""
    keys = ["method", "keep_ratio", "attack", "eps_label"]
    g = df.groupby(keys, sort=False)
    out = g[["clean_acc", "adv_acc"]].mean()
    if df["seed"].nunique() > 1:
        std = g[["clean_acc", "adv_acc"]].std()
        out["clean_std"], out["adv_std"] = std["clean_acc"], std["adv_acc"]
        out["seeds"] = g["seed"].nunique()
    out = out.reset_index().rename(columns={"keep_ratio": "keep", "eps_label": "eps"})
    if df["method"].nunique() == 1:
        out = out.drop(columns="method")
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    """``prunerob sweep``: train/load one model per seed, run :func:`run_sweep`, write ``--out``."""
    import pandas as pd

    from prunerob.config import atomic_write_text, resolve_device
    from prunerob.sweep import DATA_METHODS, run_sweep, validate_sweep_args

    seeds = parse_list(args.seeds, _seed, "seeds")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds has duplicate values: {seeds}")
    _positive_int("n", args.n)
    overrides = _attack_overrides(args)
    for s in seeds:
        norm = validate_sweep_args(model_name=args.model, dataset_name=args.dataset, methods=args.method,
                                   keeps=args.keep, attacks=args.attack, eps=args.eps, seed=s, n=args.n,
                                   batch_size=args.batch_size, batched=args.batched, attack_overrides=overrides)
    cfgs = {s: _train_config(args, s) for s in seeds}
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ConfigError(f"out={str(out)!r} is a directory; give a CSV file path")
    device = resolve_device(args.device)

    from prunerob.data import load_dataset
    from prunerob.train import train_model

    first = cfgs[seeds[0]]
    test = load_dataset(args.dataset, "test", root=args.data_root, image_size=first.image_size)
    train_data = None
    if any(m in DATA_METHODS for m in norm["methods"]):
        train_data = load_dataset(args.dataset, "train", root=args.data_root, image_size=first.image_size)

    tables = []
    partials = []
    for s in seeds:
        cfg = cfgs[s]
        model, info = train_model(cfg, device=device, data_root=args.data_root)
        partial = Path(f"{out}.seed{s}.partial.csv") if out is not None else None
        partials.append(partial)
        extra = {"train_config_hash": cfg.hash(), "train_epochs": cfg.epochs, "train_subset": cfg.train_subset,
                 "model_test_acc": info.get("test_acc")}
        tables.append(run_sweep(
            model, test, model_name=args.model, dataset_name=args.dataset, methods=norm["methods"],
            keeps=norm["keeps"], attacks=norm["attacks"], eps=norm["eps"], seed=s, n=args.n,
            batch_size=args.batch_size, device=device, train_data=train_data, batched=args.batched,
            attack_overrides=overrides, progress=not args.quiet, out=None, extra_columns=extra,
            subset_seed=args.subset_seed, partial=partial))
    df = pd.concat(tables, ignore_index=True)
    if out is not None:
        atomic_write_text(out, df.to_csv(index=False))
        for p in partials:
            if p is not None and p.exists():
                p.unlink()
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 120):
        print(summary_table(df).to_string(index=False))
    if out is not None:
        print(f"wrote {len(df)} rows to {out}")
    return 0


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="clean and adversarial accuracy over keep ratios x pruning methods x attacks (Sec. 6.3)",
        description=("For each seed: train (or load from the cache) the model with that seed using the paper's "
                     "recipe (App. I) and the overrides, prune it at every keep ratio with every method, attack "
                     "it, and record clean and adversarial accuracy on the same examples. "
                     "keep = fraction of weights KEPT (the paper's p)."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("example:\n  prunerob sweep --model mlp --dataset mnist --method magnitude --keep 1,0.9,0.8 "
                "--attack fgsm,pgd --eps 4/255,8/255 --seeds 0,1,2 --n 10000 --out results.csv"))
    _add_train_args(p)
    p.add_argument("--method", default="magnitude",
                   help="comma-separated pruning methods (magnitude, magnitude_global, random, taylor, "
                        "bernoulli_uniform; default magnitude)")
    p.add_argument("--keep", default=DEFAULT_KEEPS, help=f"comma-separated keep ratios in [0, 1] (default {DEFAULT_KEEPS})")
    p.add_argument("--attack", default="fgsm", help="comma-separated attacks (fgsm, pgd, cw, autoattack; default fgsm)")
    p.add_argument("--eps", default="4/255", help="comma-separated L-inf budgets in [0,1] pixel units, e.g. 4/255,8/255")
    p.add_argument("--seeds", default="0", help="comma-separated seeds; one trained model per seed (default 0)")
    p.add_argument("--n", type=int, default=None, help="evaluation examples: the first N of a seeded permutation "
                                                        "of the test split (default: all)")
    p.add_argument("--out", default=None, help="CSV file for the full table (written atomically)")
    p.add_argument("--batched", default="auto", help="auto (stacked MLP for FGSM/PGD when possible), yes or no")
    p.add_argument("--batch-size", type=int, default=500, help="evaluation batch size (default 500)")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the permutation choosing the --n examples")
    p.add_argument("--pgd-steps", type=int, default=None, help="PGD iterations (default 5, App. I)")
    p.add_argument("--pgd-alpha", default=None, help="PGD step size (default 2.5*eps/steps), e.g. 1/255")
    p.add_argument("--pgd-restarts", type=int, default=None, help="PGD restarts (default 1)")
    p.add_argument("--cw-steps", type=int, default=None, help="CW-Linf iterations (default 10, App. I)")
    p.add_argument("--cw-kappa", type=float, default=None, help="CW confidence margin (default 50, App. I)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model with the paper's recipe (App. I) or load its cached checkpoint",
        description=("Train --model on --dataset with TrainConfig.paper (Adam 1e-3 for MLP/CNN, AdamW 5e-4 for ViTs; "
                     "30 epochs on MNIST, 100 on CIFAR) and the overrides given. A checkpoint with the same "
                     "configuration is loaded from $PRUNEROB_CACHE instead of retraining (unless --force)."))
    _add_train_args(p)
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even if a cached checkpoint exists")
    p.set_defaults(func=cmd_train)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``prunerob`` argument parser with all available subcommands."""
    parser = argparse.ArgumentParser(
        prog="prunerob",
        description="Reproducible companion to 'When Less Is More: Uncovering the Robustness Advantage of "
                    "Model Pruning'. keep = fraction of weights KEPT (the paper's p).")
    from prunerob import __version__

    parser.add_argument("--version", action="version", version=f"prunerob {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_sweep(sub)
    for name in PLUGINS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # only a missing module is skipped, not errors inside it
            if exc.name != name:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prunerob`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"prunerob: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunerob: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
