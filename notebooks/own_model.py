# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Use it on your own model
#
# **Belongs to** the chapter {doc}`The empirical claims <../empirical>`: the same question, asked of a model
# of your own.
#
# The paper's question, does removing weights make a trained network more robust to adversarial
# inputs (Sec. 6.3), can be asked of any `torch.nn.Module`. This page builds a small CNN by hand,
# trains it briefly on MNIST with {func}`prunerob.core.fit.fit`, prunes it with two registered methods
# (`prunerob.core.pruning.method_names()` lists them) and sweeps two registered attacks with
# {func}`prunerob.engine.sweep.run_sweep`: public API only, nothing registered for the model. **What this
# run shows** is computed in the summary below.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/own_model"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
width: int = 16  # channels of the first conv layer of the hand-written CNN
dataset: str = "mnist"  # data set
epochs: int = 1  # training epochs
train_subset: "int or None" = 5000  # training images (None: all)
seeds: list = [0]  # seeds (one model per seed)
methods: list = ["magnitude", "random"]  # two registered pruning methods
keeps: list = [1.0, 0.8, 0.6, 0.4, 0.2]  # keep ratios p (fraction of weights kept)
attacks: list = ["fgsm", "pgd"]  # two registered attacks
eps: str = "4/255"  # L-inf budget of the attacks
n_eval: int = 500  # test images attacked

# %% [markdown]
# A model of your own: anything that maps images in $[0, 1]$ to logits.

# %%
import pandas as pd
import torch
from torch import nn

from prunerob.analysis import stats
from prunerob.core.data import load_dataset
from prunerob.core.fit import fit
from prunerob.engine.sweep import run_sweep
from prunerob.render import plotting as P
from prunerob.studies import pages


def small_cnn(width: int) -> nn.Module:
    """Two conv blocks and a linear head for 28x28 grey images."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 10),
    )


run = pages.setup("own_model", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
train = load_dataset(dataset, "train", root=data_root, download=download).subset(train_subset)
test = load_dataset(dataset, "test", root=data_root, download=download)

# %% [markdown]
# Train one model per seed, then sweep methods × keep ratios × attacks on it.

# %%
tables, accs = [], {}
for seed in seeds:
    torch.manual_seed(seed)
    net = small_cnn(width)
    accs[seed] = fit(net, train, epochs=epochs, seed=seed, device=run.device, test=test)["test_acc"]
    tables.append(
        run_sweep(
            net,
            test,
            model_name=f"small_cnn{width}",
            dataset_name=dataset,
            methods=methods,
            keeps=keeps,
            attacks=attacks,
            eps=eps,
            n=n_eval,
            seed=seed,
            device=run.device,
        )
    )
sweep = pd.concat(tables, ignore_index=True)
P.save_table(sweep, run.out, "sweep")
spots = stats.sweet_spot(sweep)
pages.say(
    f"**This run** (profile `{profile}`, device {pages.devices(sweep)}): test accuracy "
    + ", ".join(f"seed {s}: {stats.pct(a)}" for s, a in accs.items())
    + ".",
    "\n".join(f"- {stats.describe_sweet_spot(r)}" for _, r in spots.iterrows()),
    "No competence threshold is stated for a model of your own, so this page gives no verdict.",
)

# %% [markdown]
# ```{glue:figure} fig-own_model-accuracy
# :name: fig-own_model-accuracy
#
# {glue:md}`fig-own_model-accuracy_caption`
# ```

# %%
grid = [dict(attack=a, title=f"small_cnn{width} / {dataset} / {P.attack_label(a)}") for a in attacks]
shown = P.figure(
    P.accuracy_grid(sweep, grid, ncols=2),
    "fig-own_model-accuracy",
    P.caption(
        "A hand-written CNN pruned by two registered methods under two attacks",
        profile=profile,
        data=test,
        epochs=P.training_text(epochs, train_subset),
        seeds=seeds,
        n_eval=n_eval,
        device=pages.devices(sweep),
        attacks=sweep,
    ),
    run.out,
)

# %% [markdown]
# Every row of the sweep is in [sweep.csv](results/own_model/sweep.csv).

# %% tags=["remove-input"]
pages.environment(run)
