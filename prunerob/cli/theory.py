"""``prunerob optimize`` and ``prunerob bounds``: the theory of Sec. 5 on a concrete MLP.

``prunerob.cli`` calls :func:`register` with its subparsers; each subcommand sets
``func=callable(args) -> int``.

Weights come from one of
* ``--random-mlp 784,512,10 --seed 0``: a freshly initialised MLP (torch's default ``nn.Linear``
  init), no training, for a quick start;
* ``--checkpoint PATH.safetensors``: a checkpoint written by :mod:`prunerob.core.train` (the ``.json``
  beside it names ``arch``, ``dataset`` and the hidden widths);
* ``--arch mlp --dataset mnist [--epochs N]``: :func:`prunerob.core.train.train_model` with the paper's
  recipe (loads the cached checkpoint when it exists, trains otherwise).

``--x-norm auto`` is the mean L2 norm of the test inputs in [0, 1] (``E||x||`` of Eq. 18); it
needs a data set (``--dataset`` or the checkpoint's). Without one the default is 1.0.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from prunerob.config import ConfigError, check_choice, check_keep, parse_eps, parse_list
from prunerob.core.masks import keep_probs, named_weights
from prunerob.core.pruning import magnitude_masks

DEFAULT_LAMS = "0,0.25,0.5,0.75,1"


# --------------------------------------------------------------------------------------------
# argument helpers
# --------------------------------------------------------------------------------------------
def _lam(v: Any) -> float:
    x = float(v)
    if not (0.0 <= x <= 1.0):
        raise ConfigError(f"lam={v!r} is outside [0, 1]; "
                          "lam weights robustness (gamma) against optimality (zeta)")
    return x


def parse_lams(value: str) -> list[float]:
    """``'0,0.5,1'`` -> ``[0.0, 0.5, 1.0]``; ConfigError naming ``lam`` outside [0, 1]."""
    return parse_list(value, _lam, "lam")


def parse_widths(value: str) -> list[int]:
    """``'784,512,10'`` -> ``[784, 512, 10]``; ConfigError naming ``--random-mlp`` otherwise."""
    try:
        widths = parse_list(value, int, "random-mlp")
    except ConfigError:
        widths = []
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ConfigError(f"random-mlp={value!r}: give at least two positive widths, e.g. 784,512,10")
    return widths


def _add_source_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint",
                     help="a .safetensors written by prunerob train (the .json beside it is read)")
    src.add_argument("--random-mlp", metavar="WIDTHS",
                     help="untrained MLP with these widths, e.g. 784,512,10")
    src.add_argument("--arch", "--model", dest="arch",
                     help="train (or load from the cache) this MLP arch with the paper's recipe, e.g. mlp")
    p.add_argument("--dataset", help="data set for --arch and for --x-norm auto (e.g. mnist)")
    p.add_argument("--epochs", type=int, default=None, help="override the paper's epochs for --arch")
    p.add_argument("--train-subset", type=int, default=None, help="train --arch on this many training images")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-mlp / training (default 0)")
    p.add_argument("--x-norm", default=None,
                   help="E||x|| of Eq. 18: 'auto' (mean L2 norm of the test inputs in [0,1]) or a number; "
                        "default auto when a data set is known, else 1.0")
    p.add_argument("--device", default="cpu", help="device for training with --arch (default cpu)")
    p.add_argument("--data-root", default=None, metavar="PATH",
                   help="data folder, must exist (default $PRUNEROB_DATA)")
    p.add_argument("--download", action="store_true",
                   help="allow torchvision to download a missing data set (default: never touch the network)")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")


def register(subparsers: Any) -> None:
    """Add ``optimize`` and ``bounds`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    o = subparsers.add_parser(
        "optimize",
        help="Algorithm 1 (App. E) as printed vs the verified minimiser of Eq. 20",
        description="For each lam: Algorithm 1's keep probability per layer and J, and the exact "
                    "minimiser of J (a vertex: keep all, or remove the layer with the smallest "
                    "||W||_F/||W||_2). --budget adds the exact minimiser at a fixed fraction of kept "
                    "weights.",
    )
    o.add_argument("--lam", default=DEFAULT_LAMS,
                   help=f"comma-separated lambdas in [0,1] (default {DEFAULT_LAMS})")
    o.add_argument("--mode", default="layerwise",
                   help="layerwise (one p per layer) or uniform (one shared p)")
    o.add_argument("--p0", type=float, default=1.0, help="Algorithm 1's initial keep probability (default 1)")
    o.add_argument("--tol", type=float, default=1e-6, help="Algorithm 1's relative tolerance (default 1e-6)")
    o.add_argument("--max-iter", type=int, default=50, help="Algorithm 1's T_max (default 50)")
    o.add_argument("--budget", type=float, default=None,
                   help="also report the exact minimiser with this global fraction of weights kept")
    _add_source_args(o)
    o.set_defaults(func=cmd_optimize)

    b = subparsers.add_parser(
        "bounds",
        help="Theorem 2 / Proposition 1 bounds per keep ratio (printed, corrected, realised masks)",
        description="Per keep ratio: Theorem 2 as printed (no eps, and times eps), the corrected "
                    "Theorem 2, the realised-mask bound of magnitude pruning, and Proposition 1's zeta.",
    )
    b.add_argument("--keep", default="1,0.9,0.5",
                   help="comma-separated keep ratios (fraction of weights KEPT)")
    b.add_argument("--eps", default="4/255",
                   help="attack budget (L2 radius in [0,1] pixel units), e.g. 4/255")
    b.add_argument("--scope", default="layer", help="magnitude pruning scope: layer or global")
    _add_source_args(b)
    b.set_defaults(func=cmd_bounds)


# --------------------------------------------------------------------------------------------
# loading weights
# --------------------------------------------------------------------------------------------
def random_mlp(widths: list[int], seed: int = 0) -> tuple[list[Any], list[Any]]:
    """Weights ``[out, in]`` and biases of an untrained MLP (torch's default Linear init)."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    ws, bs = [], []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        # nn.Linear default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in))
        bound = 1.0 / np.sqrt(a)
        ws.append((torch.rand(b, a, generator=g, dtype=torch.float64) * 2 - 1) * bound)
        bs.append((torch.rand(b, generator=g, dtype=torch.float64) * 2 - 1) * bound)
    return ws, bs


def load_mlp_checkpoint(path: str | Path) -> tuple[list[Any], list[Any], dict]:
    """Weights, biases and metadata of an MLP checkpoint written by :mod:`prunerob.core.train`."""
    from safetensors.torch import load_file

    from prunerob.core.data import DatasetInfo, dataset_info
    from prunerob.core.models import MLP_HIDDEN, build_model, mlp_biases, mlp_weights

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint={str(path)!r} does not exist")
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise ConfigError(f"checkpoint={str(path)!r} has no {meta_path.name} beside it "
                          "(written by prunerob train)")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint={str(path)!r}: {meta_path.name} is unreadable ({exc}); "
                          "retrain with prunerob train --force") from None
    arch = meta.get("arch") or meta.get("config", {}).get("arch")
    if arch not in MLP_HIDDEN:
        raise ConfigError(
            f"checkpoint arch={arch!r}: Theorem 2 and Proposition 1 are MLP bounds; "
            f"use an MLP arch ({', '.join(MLP_HIDDEN)})")
    if "data_info" in meta:
        d = meta["data_info"]
        info = DatasetInfo(d["name"], int(d["num_classes"]), tuple(d["input_shape"]), tuple(d["mean"]),
                           tuple(d["std"]))
    else:
        info = dataset_info(meta["dataset"])
    hidden = (meta.get("config") or {}).get("hidden")
    model = build_model(arch, info, **({"hidden": tuple(hidden)} if hidden else {}))
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as exc:  # SafetensorError (truncated/garbage), missing or misshapen tensors
        raise ConfigError(f"checkpoint={str(path)!r} is unreadable or does not match its .json "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                          "retrain with prunerob train --force") from None
    meta.setdefault("dataset", info.name)
    return mlp_weights(model), mlp_biases(model), meta


def _weights_from_args(args: argparse.Namespace) -> tuple[list[Any], list[Any], str | None, str]:
    """(weights, biases, dataset name or None, description)."""
    if getattr(args, "checkpoint", None):
        ws, bs, meta = load_mlp_checkpoint(args.checkpoint)
        desc = f"checkpoint {args.checkpoint} ({meta.get('arch')})"
        return ws, bs, args.dataset or meta.get("dataset"), desc
    if getattr(args, "arch", None):
        if not args.dataset:
            raise ConfigError("--arch needs --dataset (e.g. --arch mlp --dataset mnist)")
        from prunerob.core.models import MLP_HIDDEN, mlp_biases, mlp_weights
        from prunerob.core.train import TrainConfig, train_model

        if args.arch not in MLP_HIDDEN:
            raise ConfigError(f"arch={args.arch!r}: the theory applies to MLPs; "
                              f"use one of {', '.join(MLP_HIDDEN)}")
        over = {"seed": args.seed}
        if args.epochs is not None:
            over["epochs"] = args.epochs
        if args.train_subset is not None:
            over["train_subset"] = args.train_subset
        cfg = TrainConfig.paper(args.arch, args.dataset, **over)
        model, _info = train_model(cfg, device=args.device, data_root=getattr(args, "data_root", None),
                                   download=getattr(args, "download", False))
        desc = f"{args.arch} on {args.dataset} ({cfg.stem()})"
        return mlp_weights(model), mlp_biases(model), args.dataset, desc
    text = getattr(args, "random_mlp", None)
    widths = parse_widths("784,512,10" if text is None else text)
    ws, bs = random_mlp(widths, args.seed)
    return ws, bs, args.dataset, f"untrained MLP {'-'.join(map(str, widths))} (seed {args.seed})"


def mean_input_norm(
    dataset: str, split: str = "test", root: str | None = None, download: bool = False
) -> float:
    """Mean L2 norm of the inputs in [0, 1] (uint8 / 255, flattened): ``E||x||`` of Eq. 18."""
    import torch

    from prunerob.core.data import load_dataset

    ds = load_dataset(dataset, split, root=root, download=download)
    total, n = 0.0, 0
    for i in range(0, len(ds), 4096):
        xb = ds.x[i:i + 4096].reshape(min(4096, len(ds) - i), -1).to(torch.float64) / 255.0
        total += float(torch.linalg.vector_norm(xb, dim=1).sum())
        n += xb.shape[0]
    return total / n


def _check_input_dim(ws: list[Any], dataset: str | None, desc: str) -> None:
    """The first layer must take the data set's inputs: ``E||x||`` of Eq. 18 is over those inputs."""
    if not dataset:
        return
    from prunerob.core.data import DATASETS, dataset_info

    check_choice("dataset", dataset, DATASETS)
    c, h, w = dataset_info(dataset).input_shape
    n_in = int(ws[0].shape[1])
    if n_in != c * h * w:
        raise ConfigError(f"--dataset {dataset} has {c * h * w} inputs ({c}x{h}x{w}) "
                          f"but the weights ({desc}) take {n_in}; give matching widths or drop --dataset")


def _x_norm(args: argparse.Namespace, dataset: str | None) -> tuple[float, str]:
    v = args.x_norm
    if v is None:
        if dataset is None:
            return 1.0, "1.0 (default: no data set known; pass --x-norm auto --dataset NAME or a number)"
        v = "auto"
    if str(v).strip().lower() == "auto":
        if dataset is None:
            raise ConfigError("x-norm=auto needs a data set: pass --dataset (e.g. mnist) "
                              "or give --x-norm a number")
        xn = mean_input_norm(dataset, root=getattr(args, "data_root", None),
                             download=getattr(args, "download", False))
        return xn, f"{xn:.4f} (auto: mean L2 norm of {dataset} test inputs in [0,1])"
    try:
        xn = float(v)
    except ValueError as exc:
        raise ConfigError(f"x-norm={v!r} must be 'auto' or a number >= 0") from exc
    if not (np.isfinite(xn) and xn >= 0):
        raise ConfigError(f"x-norm={v!r} must be 'auto' or a number >= 0")
    return xn, f"{xn:g}"


def _fmt_keep(p: np.ndarray) -> str:
    return ",".join(f"{x:.4f}" for x in np.asarray(p, float))


def _emit(df: Any, args: argparse.Namespace, header: list[str]) -> None:
    import pandas as pd

    from prunerob.config import atomic_write_text

    for line in header:
        print(line)
    with pd.option_context("display.width", 200, "display.max_columns", 50,
                           "display.float_format", "{:.6g}".format):
        print(df.to_string(index=False))
    if args.csv:
        atomic_write_text(args.csv, df.to_csv(index=False))
        print(f"wrote {args.csv}")


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
def cmd_optimize(args: argparse.Namespace) -> int:
    """``prunerob optimize``: Algorithm 1 vs the verified minimiser, per lam."""
    import pandas as pd

    from prunerob.theory import tradeoff as T

    lams = parse_lams(args.lam)
    check_choice("mode", args.mode, T.MODES)
    check_keep(args.p0, "p0")
    if args.budget is not None:
        check_keep(args.budget, "budget")
    ws, _, dataset, desc = _weights_from_args(args)
    _check_input_dim(ws, dataset, desc)
    xn, xdesc = _x_norm(args, dataset)
    k = T.constants(ws, xn)
    rows = []
    for lam in lams:
        a1 = T.algorithm1(k, lam, p0=args.p0, tol=args.tol, max_iter=args.max_iter, mode=args.mode)
        m = T.minimize_J(k, lam, method="exact" if args.mode == "layerwise" else "vertex", mode=args.mode)
        row = {"lam": lam, "alg1_keep": _fmt_keep(a1.keep), "alg1_J": a1.J, "alg1_iters": a1.iterations,
               "alg1_converged": a1.converged,
               "min_keep": _fmt_keep(m.keep), "min_J": m.J}
        if args.budget is not None:
            bm = T.minimize_J_budget(k, lam, args.budget)
            row.update({"budget_keep": _fmt_keep(bm.keep), "budget_J": bm.J})
        rows.append(row)
    df = pd.DataFrame(rows)
    header = [
        f"weights: {desc}; L={k.L} layers; mode={args.mode}; x_norm={xdesc}",
        f"A=prod||W||_F={k.A:.6g}  C=x_norm*prod||W||_2={k.C:.6g}  "
        f"b=||W||_F/||W||_2=[{', '.join(f'{v:.4g}' for v in k.b)}]",
        "keep = probability of KEEPING a weight, per layer. alg1 = Algorithm 1 as printed (App. E);",
        ("min = global minimiser of J (Eq. 20), a vertex of {0,1}^L" if args.mode == "layerwise" else
         "min = global minimiser of J over one shared p (exact 1-D solution)")
        + "; see book/theory/_findings_tradeoff.md.",
    ]
    _emit(df, args, header)
    return 0


def _cpu(w: Any) -> Any:
    return w.detach().cpu() if hasattr(w, "detach") else w


def cmd_bounds(args: argparse.Namespace) -> int:
    """``prunerob bounds``: Theorem 2 / Proposition 1 (printed and corrected) per keep ratio."""
    import pandas as pd
    import torch

    from prunerob.theory import bounds as B

    keeps = parse_list(args.keep, lambda v: check_keep(float(v), "keep"), "keep")
    eps = parse_eps(args.eps)
    check_choice("scope", args.scope, ("layer", "global"))
    ws, bs, dataset, desc = _weights_from_args(args)
    _check_input_dim(ws, dataset, desc)
    xn, xdesc = _x_norm(args, dataset)
    # one mask representation (prunerob.core.masks): weights, masks, keep probabilities keyed layer1, ...
    named = named_weights([torch.as_tensor(np.asarray(_cpu(w)), dtype=torch.float64) for w in ws])
    wt = list(named.values())
    rows = []
    for keep in keeps:
        mlist = magnitude_masks(named, keep, args.scope)  # a mask dict; the bounds take it in layer order
        kp = keep_probs(named, keep)
        rows.append({
            "keep": keep,
            "thm2_printed": B.theorem2_gamma(wt, kp),
            "thm2_printed_x_eps": B.theorem2_gamma(wt, kp, eps=eps),
            "thm2_corrected": B.theorem2_gamma_corrected(wt, kp, eps),
            "realised_magnitude": B.realised_mask_bound(wt, mlist, eps),
            "prop1_zeta": B.proposition1_zeta(wt, kp, xn),
            "prop1_realised_magnitude": B.proposition1_realised(wt, mlist, xn, biases=bs),
        })
    df = pd.DataFrame(rows)
    header = [
        f"weights: {desc}; L={len(wt)} layers; eps={args.eps} ({eps:.6g}); x_norm={xdesc}; "
        f"magnitude scope={args.scope}",
        "thm2_printed: P_L prod||W||_F as printed (no eps); thm2_printed_x_eps: times eps; thm2_corrected:",
        "eps prod sqrt(sum p w^2) (Bernoulli keep=p); realised_magnitude: eps prod ||M o W||_2 "
        "for the magnitude mask;",
        "prop1_zeta: appendix Proposition 1 (Bernoulli keep=p); prop1_realised_magnitude: "
        "the fixed-mask bound with biases.",
    ]
    _emit(df, args, header)
    return 0
