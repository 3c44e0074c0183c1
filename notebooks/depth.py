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
# # Effect of depth (Fig. 4)
#
# **Paper (Sec. 6.4).** Theorem 2's bound is a product over the $L$ layers, so the paper
# expects depth to matter. It trains a 2-layer ("small"), 3-layer ("medium") and 4-layer
# ("large") MLP on MNIST under identical settings, prunes them by magnitude and attacks them with
# FGSM and PGD ($\epsilon = 4/255$). Claim: "in larger models, achieving a favorable balance
# between clean and robust performance requires a higher pruning rate".
#
# **Here.** `mlp` (784-512-10), `mlp3` (784-512-256-10) and `mlp4` (784-512-256-128-10): the
# paper does not give the hidden widths of its deeper MLPs, these are ours. Random pruning is the
# baseline; lines are means over seeds with 95% t-intervals.

# %% tags=["parameters"]
profile = "quick"
device = "auto"
threads = 1
out_dir = "results/depth"
data_root = None
download = False
models = ["mlp", "mlp3", "mlp4"]
dataset = "mnist"
epochs = 2
train_subset = 10000
seeds = [0, 1]
methods = ["magnitude", "random"]
keeps = [1.0, 0.9, 0.7, 0.5, 0.3]
attacks = ["fgsm", "pgd"]
eps = "4/255"
n_eval = 1000

# %%
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from prunerob import plotting as P
from prunerob.config import format_eps, parse_eps, resolve_device
from prunerob.data import load_dataset
from prunerob.models import MLP_HIDDEN
from prunerob.sweep import run_sweep
from prunerob.train import TrainConfig, train_model

warnings.filterwarnings("ignore", message="IProgress not found")
t_start = time.perf_counter()
if threads:  # 1 avoids MKL/OpenMP slow-downs when the CPU cores are shared
    torch.set_num_threads(int(threads))
out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
dev = resolve_device(device)
eps_value = parse_eps(eps)
test = load_dataset(dataset, "test", root=data_root, download=download)

# %%
tables, infos = [], []
for arch in models:
    for seed in seeds:
        cfg = TrainConfig.paper(arch, dataset, epochs=epochs, train_subset=train_subset, seed=seed)
        model, info = train_model(cfg, device=dev, data_root=data_root, progress=False)
        infos.append(info)
        tables.append(run_sweep(model, test, model_name=arch, dataset_name=dataset, methods=methods, keeps=keeps,
                                attacks=attacks, eps=eps, n=n_eval, seed=seed, device=dev, progress=False))
df = pd.concat(tables, ignore_index=True)
df["profile"] = profile
train_df = P.train_summary(infos)
P.save_table(df, out, "sweep")
P.save_table(train_df, out, "models")
display(train_df[["arch", "seed", "epochs", "train_subset", "test_acc", "train_seconds", "cached", "device"]])

# %% [markdown]
# ## Clean and attacked accuracy per depth (Fig. 4)

# %%
panels = [dict(model=arch, attack=a, eps=eps_value, title=f"{arch} ({len(MLP_HIDDEN[arch]) + 1} layers) / {a.upper()} {format_eps(eps_value)}")
          for a in attacks for arch in models]
fig = P.accuracy_grid(df, panels, ncols=len(models))
cap = P.caption(
    "Effect of depth: MLPs with 2, 3 and 4 weight matrices, magnitude vs random pruning (paper Fig. 4)",
    profile=profile, data=test, epochs=P.training_text(epochs, train_subset), seeds=seeds,
    n_eval=int(df.n.iloc[0]), device=P.devices(df), attacks=df)
P.show(fig, cap, out, "fig4_depth")

# %% [markdown]
# ## What the run shows, next to the paper's claim

# %%
spots = P.sweet_spot(df)
P.save_table(spots, out, "sweet_spots")
mag = spots[spots.method == "magnitude"].set_index(["attack", "model"])
lines, monotone = [], {}
for a in attacks:
    ks = [float(mag.loc[(a, m), "keep_best"]) for m in models]
    gains = [float(mag.loc[(a, m), "adv_gain"]) for m in models]
    monotone[a] = all(k2 <= k1 for k1, k2 in zip(ks, ks[1:])) and ks[-1] < ks[0]
    for m, k, g in zip(models, ks, gains):
        P.glue(f"depth_{a}_{m}_keep_best", k)
        P.glue(f"depth_{a}_{m}_adv_gain", g)
    n_sig = int(sum(float(mag.loc[(a, m), "adv_gain_lo"]) > 0 for m in models))
    lines.append(f"- {a.upper()}: best keep ratio " + ", ".join(f"{m}: {k:g} ({P.pp(g)})" for m, k, g in zip(models, ks, gains))
                 + f" — {'decreases with depth, as claimed' if monotone[a] else 'does not decrease with depth'}; "
                 f"{n_sig} of {len(models)} gains have a paired 95% interval above zero.")
for _, r in spots[spots.method == "magnitude"].iterrows():
    lines.append(f"- {P.describe_sweet_spot(r)}")
elapsed = time.perf_counter() - t_start
P.glue("depth_monotone_all", all(monotone.values()))
display(Markdown(
    "**Paper:** deeper MLPs need more pruning (a smaller keep ratio) to reach the best clean/attacked balance.\n\n"
    f"**This run** (profile `{profile}`, device {P.devices(df)}; best keep ratio = highest mean attacked accuracy, "
    f"gain vs unpruned in brackets):\n\n" + "\n".join(lines) + f"\n\nNotebook run time: {elapsed / 60:.1f} min."))
