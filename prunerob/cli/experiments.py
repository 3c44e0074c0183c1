"""Command line: ``prunerob train | sweep | bounds | optimize | reproduce`` (``python -m prunerob``).

* ``train``: train a model with the recipe of App. I (:meth:`prunerob.core.train.TrainConfig.paper`),
  or load its cached checkpoint; prints the test accuracy and the checkpoint path.
* ``sweep``: for each seed, train (or load) the model and evaluate it over keep ratios x pruning
  methods x attacks x eps (:func:`prunerob.engine.sweep.run_sweep`, Sec. 6.3 / Fig. 2-3); the tables
  of all seeds go to ``--out`` (written atomically) and a compact summary is printed.
* ``bounds`` / ``optimize`` (:mod:`prunerob.cli.theory`) and ``reproduce``
  (:mod:`prunerob.runner`) are added when those modules are present.

Every argument is validated before anything is trained or written. Bad input prints
``prunerob: error: <message>`` on stderr and exits with status 2 (no traceback, no output file).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from prunerob.config import (
    ConfigError,
    check_choice,
    check_dir,
    check_float,
    check_int,
    check_keep,
    check_memory,
    check_seed,
    check_writable,
    parse_eps,
    parse_list,
    resolve_device,
)
from prunerob.core.attacks import REGISTRY as ATTACK_REGISTRY
from prunerob.core.pruning import REGISTRY as METHOD_REGISTRY

#: modules that add their own subcommands with ``register(subparsers)``
PLUGINS = ("prunerob.cli.theory", "prunerob.cli.store", "prunerob.runner")

DEFAULT_KEEPS = "1,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1"


def _positive_int(name: str, value: int | None, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if value is None or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return value


def _train_config(args: argparse.Namespace, seed: int):
    """``TrainConfig.paper(model, dataset)`` with the command-line overrides (validates, trains nothing)."""
    from prunerob.core.data import DATASETS
    from prunerob.core.models import arch_names
    from prunerob.core.train import TrainConfig

    check_choice("model", args.model, arch_names())
    check_choice("dataset", args.dataset, DATASETS)
    _positive_int("epochs", args.epochs)
    _positive_int("train-subset", args.train_subset)
    over: dict[str, Any] = {"seed": seed}
    if args.epochs is not None:
        over["epochs"] = args.epochs
    if args.train_subset is not None:
        over["train_subset"] = args.train_subset
    over["precision"] = args.precision
    return TrainConfig.paper(args.model, args.dataset, **over)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mlp",
                   help="architecture (mlp, mlp3, mlp4, mlp_cifar, cnn4, vit_small, vit_tiny; default mlp)")
    p.add_argument("--dataset", default="mnist",
                   help="data set (mnist, cifar10, cifar100, imagenette, imagenet100; default mnist)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the paper's, App. I)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on a seeded random subset of N training examples (default: all)")
    p.add_argument("--precision", default="fp32",
                   help="training precision: fp32 (the paper's, default) or bf16 (autocast, fp32 weights; "
                        "evaluation and attacks stay fp32)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--data-root", default=None, metavar="PATH",
                   help="data folder, must exist (default $PRUNEROB_DATA)")
    p.add_argument("--download", action="store_true",
                   help="allow torchvision to download a missing data set (default: never touch the network)")


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``prunerob train``: train (or load) one model and print its test accuracy and checkpoint."""
    from prunerob.config import resolve_device
    from prunerob.core.train import train_model

    if args.seed < 0:
        raise ConfigError(f"seed={args.seed!r} must be an integer >= 0")
    cfg = _train_config(args, args.seed)
    device = resolve_device(args.device)
    _, info = train_model(cfg, device=device, data_root=args.data_root, force=args.force,
                          download=getattr(args, "download", False))
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
    items = getattr(args, "attack_param", None) or ()
    for attack, field, value in _attack_param(items, "--attack-param", args):
        over.setdefault(attack, {})[field] = value
    if args.attack_precision != "fp32":
        for a in parse_list(args.attack, str, "attack"):
            over.setdefault(a, {})["precision"] = args.attack_precision
    return over


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _attack_param(v: Any, name: str, _a: argparse.Namespace) -> list[tuple[str, str, Any]]:
    """``ATTACK.FIELD=VALUE`` items -> ``(attack, field, value)``; the attack must be registered and
    the field one of its tunable parameters (``AttackDef``: ``TUNABLE`` less its ``fixed`` fields)."""
    from prunerob.core.attacks import TUNABLE, get_attack

    out = []
    for item in v:
        if isinstance(item, tuple):
            out.append(item)
            continue
        head, sep, value = str(item).partition("=")
        attack, dot, field = head.partition(".")
        if not sep or not dot or not value.strip():
            raise ConfigError(f"{name}={item!r} must look like ATTACK.FIELD=VALUE, e.g. pgd.steps=50")
        try:
            a = get_attack(attack.strip())
        except ConfigError as exc:
            raise ConfigError(f"{name}={item!r}: {exc}") from None
        tunable = [f for f in TUNABLE if f not in a.fixed]
        field = field.strip()
        if field not in tunable:
            raise ConfigError(f"{name}={item!r}: {a.name} has no tunable parameter {field!r}; "
                              f"allowed: {', '.join(tunable) or 'none'}")
        val: Any = value.strip()
        if field in ("steps", "restarts"):
            if not val.isdigit() or int(val) < 1:
                raise ConfigError(f"{name} {a.name}.{field}={val!r} must be an integer >= 1")
            val = int(val)
        elif field == "kappa":
            val = check_float(float(val) if _is_float(val) else val, f"{name} {a.name}.{field}", 0.0)
        elif field == "random_start":
            if val.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{name} {a.name}.random_start={val!r} must be true or false")
            val = val.lower() in ("true", "1", "yes")
        out.append((a.name, field, val))
    return out


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
    """``prunerob sweep``: one :func:`prunerob.engine.experiment.run_experiment` call, table to ``--out``.

    For each seed the model is trained (or loaded from the cache) and swept; with ``--scheduler``
    the (model, seed) units run on a Dask cluster (:mod:`prunerob.engine.distributed`). Finished chunks
    are kept in ``<out>.partial/`` (serial runs), so an interrupted sweep resumes to the same bytes.
    """
    import pandas as pd

    from prunerob.config import atomic_write_text
    from prunerob.engine import resume
    from prunerob.engine.distributed import check_scheduler, probe_scheduler
    from prunerob.engine.experiment import ExperimentSpec, partial_path, plan_units, run_experiment

    spec = ExperimentSpec(
        datasets=[args.dataset], models=args.model, methods=args.method, keeps=args.keep, attacks=args.attack,
        eps=args.eps, seeds=parse_list(args.seeds, int, "seeds"), n=args.n, epochs=args.epochs,
        train_subset=args.train_subset, precision=args.precision, device=args.device,
        data_root=args.data_root, download=getattr(args, "download", False), batch_size=args.batch_size,
        batched=args.batched,
        attack_overrides=_attack_overrides(args) or None, subset_seed=args.subset_seed)
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ConfigError(f"out={str(out)!r} is a directory; give a CSV file path")
    units = plan_units(spec)  # the whole spec is checked before anything is created
    check_scheduler(args.scheduler)
    probe_scheduler(args.scheduler)
    resume_dir = Path(f"{out}.partial") if out is not None and args.scheduler is None else None
    if resume_dir is not None:
        resume.check_folder(resume_dir, "--out")
    res = run_experiment(spec, scheduler=args.scheduler, progress=not args.quiet, resume_dir=resume_dir)
    df = res.sweep
    if out is not None:
        atomic_write_text(out, df.to_csv(index=False))
        if resume_dir is not None:
            ours = [partial_path(resume_dir, u, part) for u in units for part, _ in u.sweeps]
            left = resume.close_folder(resume_dir, ours)
            if left:
                names = ", ".join(f.name for f in left[:3]) + (", ..." if len(left) > 3 else "")
                print(f"kept {resume_dir}: it holds {len(left)} entries that are not resume files of "
                      f"prunerob ({names})")
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 120):
        print(summary_table(df).to_string(index=False))
    if out is not None:
        print(f"wrote {len(df)} rows to {out}")
    return 0


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="clean and adversarial accuracy over keep ratios x pruning methods x attacks "
                      "(Sec. 6.3)",
        description=("For each seed: train (or load from the cache) the model with that seed using the "
                     "paper's recipe (App. I) and the overrides, prune it at every keep ratio with every "
                     "method, attack it, and record clean and adversarial accuracy on the same examples. "
                     "keep = fraction of weights KEPT (the paper's p)."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("example:\n  prunerob sweep --model mlp --dataset mnist --method magnitude --keep 1,0.9,0.8 "
                "--attack fgsm,pgd --eps 4/255,8/255 --seeds 0,1,2 --n 10000 --out results.csv"))
    _add_train_args(p)
    p.add_argument("--method", default="magnitude",
                   help=METHOD_REGISTRY.choices_help("pruning methods", "magnitude").replace("%", "%%"))
    p.add_argument("--keep", default=DEFAULT_KEEPS,
                   help=f"comma-separated keep ratios in [0, 1] (default {DEFAULT_KEEPS})")
    p.add_argument("--attack", default="fgsm",
                   help=ATTACK_REGISTRY.choices_help("attacks", "fgsm").replace("%", "%%"))
    p.add_argument("--eps", default="4/255",
                   help="comma-separated L-inf budgets in [0,1] pixel units, e.g. 4/255,8/255")
    p.add_argument("--seeds", default="0",
                   help="comma-separated seeds; one trained model per seed (default 0)")
    p.add_argument("--n", type=int, default=None,
                   help="evaluation examples: the first N of a seeded permutation of the test split "
                        "(default: all)")
    p.add_argument("--out", default=None, help="CSV file for the full table (written atomically)")
    p.add_argument("--batched", default="auto",
                   help="auto (stacked MLP for FGSM/PGD when possible), yes or no")
    p.add_argument("--batch-size", type=int, default=500, help="evaluation batch size (default 500)")
    p.add_argument("--subset-seed", type=int, default=0,
                   help="seed of the permutation choosing the --n examples")
    p.add_argument("--pgd-steps", type=int, default=None, help="PGD iterations (default 5, App. I)")
    p.add_argument("--pgd-alpha", default=None, help="PGD step size (default 2.5*eps/steps), e.g. 1/255")
    p.add_argument("--pgd-restarts", type=int, default=None, help="PGD restarts (default 1)")
    p.add_argument("--cw-steps", type=int, default=None, help="CW-Linf iterations (default 10, App. I)")
    p.add_argument("--cw-kappa", type=float, default=None, help="CW confidence margin (default 50, App. I)")
    p.add_argument("--attack-param", action="append", default=None, metavar="ATTACK.FIELD=VALUE",
                   help="any registered attack's tunable parameter, repeatable: e.g. pgd.steps=50, "
                        "pgd.restarts=5, pgd.alpha=1/255, cw.kappa=20 (the --pgd-*/--cw-* flags are "
                        "shorthands for the same)")
    p.add_argument("--attack-precision", default="fp32",
                   help="fp32 (default) or bf16: FGSM/PGD input gradients under bf16 autocast, adversarial "
                        "examples judged in fp32 (book: experiments/precision)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the (model, seed) units on Dask: local:N (N local worker processes), "
                        "tcp://host:8786 (a running scheduler), slurm or pbs (dask-jobqueue; configured in "
                        "~/.config/dask/jobqueue.yaml); default: serially here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model with the paper's recipe (App. I) or load its cached checkpoint",
        description=("Train --model on --dataset with TrainConfig.paper (Adam 1e-3 for MLP/CNN, "
                     "AdamW 5e-4 for ViTs; 30 epochs on MNIST, 100 on CIFAR) and the overrides given. "
                     "A checkpoint with the same configuration is loaded from $PRUNEROB_CACHE instead of "
                     "retraining (unless --force)."))
    _add_train_args(p)
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even if a cached checkpoint exists")
    p.set_defaults(func=cmd_train)


# --------------------------------------------------------------------------------------------
# argument validation: one registry for every subcommand, applied before any work
# --------------------------------------------------------------------------------------------
def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _ints_at_least(minimum: int) -> Callable[[Any, str, argparse.Namespace], Any]:
    return lambda v, name, _a: check_int(v, name, minimum)


def _seed_list(v: Any, name: str, _a: argparse.Namespace) -> list[int]:
    seeds = parse_list(v, lambda s: check_seed(s, name), name)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{name}={v!r} has duplicate values; give distinct integers >= 0")
    return seeds


def _eps_list(v: Any, name: str, _a: argparse.Namespace) -> list[float]:
    return parse_list(v, lambda e: parse_eps(e, name), name)


def _keep_list(v: Any, name: str, _a: argparse.Namespace) -> list[float]:
    return parse_list(v, lambda k: check_keep(k, name), name)


def _unit_list(v: Any, name: str, _a: argparse.Namespace) -> list[float]:
    return parse_list(v, lambda k: check_float(k, name, 0.0, 1.0), name)


def _pgd_alpha(v: Any, name: str, _a: argparse.Namespace) -> float:
    alpha = parse_eps(v, name)
    if alpha == 0:
        raise ConfigError(f"{name}={v!r} must be > 0; give a step size like 1/255 in (0, 1]")
    return alpha


def _x_norm(v: Any, name: str, _a: argparse.Namespace) -> Any:
    if str(v).strip().lower() == "auto":
        return v
    try:
        return check_float(v, name, 0.0)
    except ConfigError:
        raise ConfigError(f"{name}={v!r} must be 'auto' or a finite number >= 0") from None


def _widths(v: Any, name: str, args: argparse.Namespace) -> list[int]:
    text = str(v)
    try:
        widths = parse_list(text, int, name)
    except ConfigError:
        widths = []
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ConfigError(f"{name}={text!r}: give at least two positive integer widths, e.g. 784,512,10")
    n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    check_memory(8 * n_params, name, text, f"the {n_params:,} float64 weights and biases")
    ds = getattr(args, "dataset", None)
    if ds:
        from prunerob.core.data import DATASETS, dataset_info

        check_choice("--dataset", ds, DATASETS)
        c, h, w = dataset_info(ds).input_shape
        if widths[0] != c * h * w:
            raise ConfigError(f"{name}={text!r} has input width {widths[0]} but --dataset {ds} "
                              f"has {c * h * w} inputs ({c}x{h}x{w}); make the first width {c * h * w} "
                              "or drop --dataset")
    return widths


def _choices(get: Callable[[], Sequence[str]]) -> Callable[[Any, str, argparse.Namespace], Any]:
    return lambda v, name, _a: check_choice(name, v, get())


def _datasets() -> Sequence[str]:
    from prunerob.core.data import DATASETS

    return DATASETS


def _precisions() -> Sequence[str]:
    from prunerob.core.precision import precision_names

    return precision_names()


def _archs() -> Sequence[str]:
    from prunerob.core.models import arch_names

    return arch_names()


def _mlp_archs() -> Sequence[str]:
    from prunerob.core.models import MLP_HIDDEN

    return tuple(MLP_HIDDEN)


def _modes() -> Sequence[str]:
    from prunerob.theory.tradeoff import MODES

    return MODES


def _check_kernel(v: Any, name: str) -> str:
    from prunerob.runner.checks import check_kernel

    return check_kernel(v, name)


def _existing_file(v: Any, name: str, _a: argparse.Namespace) -> Path:
    p = Path(v)
    if not p.is_file():
        raise ConfigError(f"{name}={str(v)!r} does not exist or is not a file; give a checkpoint written by "
                          "prunerob train")
    return p


#: dest -> check(value, '--flag', args); every argument of that name, in every subcommand, is
#: checked before the command starts (``None`` values, i.e. unset optional arguments, are skipped)
ARG_CHECKS: dict[str, Callable[[Any, str, argparse.Namespace], Any]] = {
    "seed": lambda v, name, _a: check_seed(v, name),
    "subset_seed": lambda v, name, _a: check_seed(v, name),
    "seeds": _seed_list,
    "epochs": _ints_at_least(1),
    "train_subset": _ints_at_least(1),
    "n": _ints_at_least(1),
    "batch_size": _ints_at_least(1),
    "pgd_steps": _ints_at_least(1),
    "pgd_restarts": _ints_at_least(1),
    "cw_steps": _ints_at_least(1),
    "max_iter": _ints_at_least(1),
    "eps": _eps_list,
    "pgd_alpha": _pgd_alpha,
    "cw_kappa": lambda v, name, _a: check_float(v, name, 0.0),
    "attack_param": _attack_param,
    "keep": _keep_list,
    "lam": _unit_list,
    "p0": lambda v, name, _a: check_float(v, name, 0.0, 1.0),
    "budget": lambda v, name, _a: check_float(v, name, 0.0, 1.0),
    "tol": lambda v, name, _a: check_float(v, name, 0.0, lo_open=True),
    "x_norm": _x_norm,
    "random_mlp": _widths,
    "dataset": _choices(_datasets),
    "precision": _choices(_precisions),
    "attack_precision": _choices(_precisions),
    "arch": _choices(_mlp_archs),
    "scope": _choices(lambda: ("layer", "global")),
    "mode": _choices(_modes),
    "batched": _choices(lambda: ("auto", "yes", "no")),
    "device": lambda v, name, _a: resolve_device(v, name),
    "kernel": lambda v, name, _a: _check_kernel(v, name),
    "data_root": lambda v, name, _a: check_dir(v, name),
    "checkpoint": _existing_file,
    "out": lambda v, name, _a: check_writable(v, name, "file"),
    "csv": lambda v, name, _a: check_writable(v, name, "file"),
    "output_dir": lambda v, name, _a: check_writable(v, name, "dir"),
    "notebooks_dir": lambda v, name, _a: check_dir(v, name),
}


def validate_args(args: argparse.Namespace) -> None:
    """Apply :data:`ARG_CHECKS` to every argument present in ``args`` (raises ConfigError).

    ``--model`` is checked against the architectures for ``train`` / ``sweep``; the theory
    commands (``--arch`` / ``--model``) accept only MLPs.
    """
    for dest, value in vars(args).items():
        if value is None or dest in ("func", "command"):
            continue
        check = ARG_CHECKS.get(dest)
        if check is None and dest == "model":
            check = _choices(_archs)
        if check is not None:
            check(value, _flag(dest), args)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prunerob: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(message.split())
        self.exit(2, f"prunerob: error: {self.prog}: {one_line} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``prunerob`` argument parser with all available subcommands."""
    parser = _Parser(
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
    parser._prunerob_commands = tuple(sub.choices)  # type: ignore[attr-defined]
    return parser


def error_line(exc: BaseException) -> str:
    """The one-line message printed for a ConfigError (newlines folded)."""
    return "prunerob: error: " + " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prunerob`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Every argument is validated (:func:`validate_args`) before the command does any work; a bad
    one prints one line ``prunerob: error: ...`` naming it and returns 2.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        commands = ", ".join(sorted(getattr(parser, "_prunerob_commands", ())))
        print(f"prunerob: error: give a command ({commands}); prunerob --help lists them", file=sys.stderr)
        return 2
    try:
        validate_args(args)
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at interpreter exit
        return rc
    except ConfigError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunerob: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed early (``prunerob reproduce --list | head``): say so once, stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("prunerob: error: stdout was closed before the output was complete (e.g. by head); "
              "nothing else was affected", file=sys.stderr)
        return 141
    except MemoryError:
        print("prunerob: error: out of memory: the sizes given (widths, --n, --batch-size, data set) need "
              "more memory than this machine allows; give smaller values", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # torch's allocator: "DefaultCPUAllocator: can't allocate memory"
        if "can't allocate memory" not in str(exc) and "out of memory" not in str(exc).lower():
            raise
        print("prunerob: error: out of memory (" + " ".join(str(exc).split())[:200] + "); give smaller "
              "sizes (widths, --n, --batch-size)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
