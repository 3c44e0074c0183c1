"""Trained models of the sweet-spot chapter and their sweeps (paper Sec. 6.1, 6.3, App. I).

Every sweep goes through the public :func:`prunerob.engine.sweep.run_sweep`, so rows carry
``clean_bits`` / ``adv_bits`` and every cell is evaluated on the same test examples (the first
``n`` of a fixed permutation). MNIST MLPs use exactly ``TrainConfig.paper("mlp", "mnist",
epochs=e, seed=s)`` (App. I: 784-512-10, Adam 1e-3), with ``hidden`` set only for widths other
than the paper's 512, so cached checkpoints are reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from prunerob.analysis import competence
from prunerob.config import resolve_device
from prunerob.core.data import ArrayDataset, load_dataset
from prunerob.core.models import MLP_HIDDEN
from prunerob.core.pruning import get_method
from prunerob.core.subsets import as_examples, select_examples, to_float
from prunerob.core.train import TrainConfig, train_model
from prunerob.engine.sweep import run_sweep

__all__ = [
    "PAPER_WIDTH",
    "MASK_DRAW_STRIDE",
    "mlp_config",
    "mlp_model",
    "mnist",
    "draws",
    "score_data",
    "mask_seed",
    "examples_on",
    "sweep_mlps",
    "models_table",
    "cnn_part",
]

#: hidden width of the paper's MNIST MLP (App. I)
PAPER_WIDTH = MLP_HIDDEN["mlp"][0]
#: sweep seed of mask draw j for model seed s: ``s + MASK_DRAW_STRIDE * j`` (draw 0: the model seed)
MASK_DRAW_STRIDE = 1000


def mlp_config(
    epochs: int, seed: int, width: int = PAPER_WIDTH, train_subset: int | None = None
) -> TrainConfig:
    """``TrainConfig.paper("mlp", "mnist", epochs=epochs, seed=seed)``; ``hidden=(width,)`` only
    when ``width`` differs from the paper's 512 (so the config hash, and the cache, are shared)."""
    kw: dict[str, Any] = {"epochs": int(epochs), "seed": int(seed)}
    if train_subset is not None:
        kw["train_subset"] = int(train_subset)
    if int(width) != PAPER_WIDTH:
        kw["hidden"] = (int(width),)
    return TrainConfig.paper("mlp", "mnist", **kw)


def mlp_model(
    epochs: int,
    seed: int,
    width: int = PAPER_WIDTH,
    *,
    train_subset: int | None = None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
) -> tuple[torch.nn.Module, dict]:
    """The trained (or cached) MNIST MLP of :func:`mlp_config` and its train info."""
    return train_model(
        mlp_config(epochs, seed, width, train_subset), device=device, data_root=data_root, progress=False
    )


def mnist(split: str = "test", data_root: str | None = None) -> ArrayDataset:
    """The MNIST split (uint8 in memory)."""
    return load_dataset("mnist", split, root=data_root)


def draws(method: str, mask_draws: int) -> int:
    """Mask draws of ``method``: ``mask_draws`` for stochastic rules (random, Bernoulli), else 1."""
    return int(mask_draws) if get_method(method).stochastic else 1


def mask_seed(seed: int, draw: int) -> int:
    """Sweep (mask) seed of draw ``draw`` of model seed ``seed``: ``seed + MASK_DRAW_STRIDE * draw``."""
    return int(seed) + MASK_DRAW_STRIDE * int(draw)


def examples_on(
    model: torch.nn.Module, data: Any, n: int | None, subset_seed: int, device: str | torch.device
) -> tuple[torch.device, torch.Tensor, torch.Tensor, str]:
    """``(device, x, y, description)``: the sweep's evaluation examples (the first ``n`` of the
    ``subset_seed`` permutation, :func:`prunerob.core.subsets.select_examples`) as float tensors of
    ``model``'s dtype on the resolved ``device``, so that every table of the chapter attacks the
    same images as :func:`prunerob.engine.sweep.run_sweep`."""
    dev = resolve_device(device)
    x, y, desc = select_examples(as_examples(data, "data"), n, subset_seed)
    return dev, to_float(x, next(model.parameters()).dtype).to(dev), y.to(dev), desc


def score_data(train: ArrayDataset | None, seed: int, score_examples: int | None) -> ArrayDataset | None:
    """The Taylor-score data of model seed ``seed`` (App. I): the first ``score_examples`` of a
    ``seed``-seeded subset of the training split (all of it when ``score_examples`` is None)."""
    if train is None or not score_examples:
        return train
    return train.subset(score_examples, seed=int(seed))


def models_table(
    rows: pd.DataFrame, role: str, profile: str, train_subset: int | None = None
) -> pd.DataFrame:
    """One row per trained MNIST MLP behind the sweep ``rows`` of :func:`sweep_mlps` (``arch``,
    ``dataset``, ``seed``, ``epochs``, ``width``, ``train_subset``, ``test_acc``, ``device``,
    ``role``, ``profile``), for :mod:`prunerob.analysis.competence` (App. I recipe, paper Sec. 6.1)."""
    d = rows.drop_duplicates(["train_epochs", "width", "model_seed"])
    return pd.DataFrame(
        {
            "arch": "mlp",
            "dataset": "mnist",
            "seed": d.model_seed.astype(int).to_numpy(),
            "epochs": d.train_epochs.astype(int).to_numpy(),
            "width": d.width.astype(int).to_numpy(),
            "train_subset": train_subset,
            "test_acc": d.model_test_acc.astype(float).to_numpy(),
            "device": d.device.astype(str).to_numpy(),
            "role": role,
            "profile": profile,
        }
    )


def sweep_mlps(
    *,
    epochs: Sequence[int],
    widths: Sequence[int],
    seeds: Sequence[int],
    methods: Sequence[str],
    keeps: Sequence[float],
    attacks: Sequence[str],
    eps: Sequence[str | float],
    n: int | None,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
    train_subset: int | None = None,
    mask_draws: int = 1,
    score_examples: int | None = 2560,
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One :func:`run_sweep` per (epochs, width, seed, method, mask draw) of MNIST MLPs.

    Stochastic methods (``bernoulli_uniform``, ``random``) are swept ``mask_draws`` times with sweep
    seed ``seed + MASK_DRAW_STRIDE * draw`` (Sec. 3: B_ij ~ Bernoulli(p), averaged over masks);
    draw 0 uses the model seed. The ``seed`` column holds the MODEL seed (so draws pair by model
    in :func:`prunerob.studies.sweetspot.grid.gains`), ``sweep_seed`` the sweep's. Extra columns:
    ``train_epochs``, ``width``, ``model_seed``, ``mask_draw``, ``model_test_acc`` and ``extra``.
    Taylor scores (App. I) use the first ``score_examples`` of a seeded subset of the training split.
    """
    test = mnist("test", data_root)
    needs = any(get_method(m).needs_data for m in methods)
    train = mnist("train", data_root) if needs else None
    tables = []
    for e in epochs:
        for w in widths:
            for s in seeds:
                model, info = mlp_model(
                    e, s, w, train_subset=train_subset, device=device, data_root=data_root
                )
                score = score_data(train, s, score_examples)
                for m in methods:
                    for j in range(draws(m, mask_draws)):
                        cols = {
                            "train_epochs": int(e),
                            "width": int(w),
                            "model_seed": int(s),
                            "mask_draw": j,
                            "model_test_acc": info.get("test_acc"),
                            **dict(extra or {}),
                        }
                        rows = run_sweep(
                            model,
                            test,
                            model_name="mlp",
                            dataset_name="mnist",
                            methods=[m],
                            keeps=keeps,
                            attacks=attacks,
                            eps=eps,
                            seed=mask_seed(s, j),
                            n=n,
                            device=device,
                            train_data=score if get_method(m).needs_data else None,
                            attack_overrides=attack_overrides,
                            progress=False,
                            extra_columns=cols,
                        )
                        # the sweep seed is kept; ``seed`` names the model so draws pair by model seed
                        tables.append(rows.assign(sweep_seed=rows["seed"], seed=int(s)))
    return pd.concat(tables, ignore_index=True)


def cnn_part(
    *,
    epochs: int,
    train_subset: int | None,
    seeds: Sequence[int],
    keeps: Sequence[float],
    attacks: Sequence[str],
    eps: Sequence[str | float],
    n: int,
    device: str | torch.device = "cpu",
    data_root: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """CIFAR-10 CNN4 (App. I recipe, ``epochs`` / ``train_subset`` overridden), gated on
    :mod:`prunerob.analysis.competence`: returns ``(sweep rows, sentence)``; no rows and the sentence
    ``"cnn4 on cifar10: not competent (x% < y%) ..."`` when a seed's model is below the threshold."""
    infos = [
        train_model(
            TrainConfig.paper("cnn4", "cifar10", epochs=int(epochs), train_subset=train_subset, seed=int(s)),
            device=device,
            data_root=data_root,
            progress=False,
        )
        for s in seeds
    ]
    models = pd.DataFrame(
        [{"arch": "cnn4", "dataset": "cifar10", "test_acc": i.get("test_acc")} for _, i in infos]
    )
    summ = competence.summary(models).iloc[0]
    head = (f"cnn4 on cifar10 ({epochs} epochs, {train_subset or 'all'} training images, {len(seeds)} "
            f"seed{'s' if len(seeds) != 1 else ''})")
    if not bool(summ.competent):
        return (
            pd.DataFrame(),
            f"{head}: {summ.competence_label}; the CNN part is skipped, no gain is reported.",
        )
    test = load_dataset("cifar10", "test", root=data_root)
    tables = [
        run_sweep(
            m,
            test,
            model_name="cnn4",
            dataset_name="cifar10",
            methods=["magnitude"],
            keeps=keeps,
            attacks=attacks,
            eps=eps,
            seed=int(s),
            n=n,
            device=device,
            progress=False,
            extra_columns={
                "train_epochs": int(epochs),
                "model_seed": int(s),
                "model_test_acc": i.get("test_acc"),
            },
        )
        for s, (m, i) in zip(seeds, infos, strict=True)
    ]
    return pd.concat(tables, ignore_index=True), f"{head}: {summ.competence_label}. Data: {test.source}."
