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
# # Pareto fronts (paper Fig. 6, Lemma 2)
#
# **Tests** the chapter {doc}`The trade-off: Algorithm 1 and the Pareto front <../theory/tradeoff>` (Lemma
# 2/3 and Remark 1, Errata E13 and E14).
#
# **The paper claims** (App. F) that the accuracy sweeps, re-plotted as points in (clean, attacked)
# accuracy space, trace fronts whose "approximate upper-right boundary represent[s] empirically
# Pareto-optimal trade-offs" including the sweet spots, and (Lemma 2) that uniform pruning traces
# a front in bound space, $\gamma(p) = p^{L/2}\prod_\ell\|W_\ell\|_F$ against $\zeta(p)$.
# **What these runs show** is computed in the summary below. The accuracy points are read from
# the tables of the `magnitude_mlp` and `score_vit` notebooks (means over their seeds); the bound
# space adds the front over per-layer keep probabilities (`prunerob.theory.tradeoff.layerwise_front`).

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/pareto"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
mlp_table: str = "results/magnitude_mlp/sweep.csv"  # sweep table of the magnitude_mlp notebook
vit_table: str = "results/score_vit/sweep.csv"  # sweep table of the score_vit notebook
mlp_attacks: list = ["fgsm", "pgd", "cw"]  # MLP attacks drawn as fronts
vit_attack: str = "fgsm"  # ViT attack drawn as a front
eps: str = "4/255"  # budget of the attacks drawn
model: str = "mlp"  # MLP of the bound-space front (registered name)
dataset: str = "mnist"  # its data set
epochs: int = 2  # its training epochs
train_subset: "int or None" = 10000  # its training images (None: all)
seeds: list = [0, 1]  # its seeds (one curve each)
n_front: int = 101  # points per bound-space curve

# %% tags=["remove-input", "remove-stderr"]
from pathlib import Path

import pandas as pd

from prunerob.analysis import stats
from prunerob.config import format_eps, parse_eps
from prunerob.core.data import load_dataset
from prunerob.render import plotting as P
from prunerob.render import theory_figures as TF
from prunerob.studies import pages, units
from prunerob.studies.risk_sweep import bound_fronts, input_norm

run = pages.setup("pareto", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
e = parse_eps(eps)
paths = {"magnitude": Path(mlp_table), "taylor": Path(vit_table)}
tables = {m: P.load_table(path) for m, path in paths.items()}
# each source table's models.csv (next to it): a front of a model below its competence threshold is
# labelled "not competent (x % < y %)" in the list and on its panel, as on the source pages
comps = {m: pages.competence_of(c) for m, path in paths.items()
         if (c := P.load_table(path.with_name("models.csv"))) is not None}
wanted = {"magnitude": mlp_attacks, "taylor": [vit_attack]}
drawn = {m: t[(abs(t.eps - e) < 1e-9) & t.attack.isin(wanted[m])] for m, t in tables.items() if t is not None}
fronts = {}
for method, t in drawn.items():
    for (net, data, attack), d in t.groupby(["model", "dataset", "attack"]):
        title = f"{net} / {data} / {P.method_label(method)} / {P.attack_label(attack)} {format_eps(e)}"
        title = pages.panel_title(comps[method], net, data, title) if method in comps else (
            f"{title}\ncompetence unknown (no models table)")
        fronts[title] = pages.front_points(d, method)
test = load_dataset(dataset, "test", root=data_root, download=download)
x_norm = input_norm(test)
# the bound fronts are a result-store unit (prunerob.studies.units): the models load only when it is missing
nets = {s: units.LazyModel(model, dataset, s, device=run.device, epochs=epochs, train_subset=train_subset,
                           data_root=data_root) for s in seeds}
curves = units.table(
    "bound_fronts", dict(n_front=n_front, seeds=seeds),
    lambda: pd.concat([bound_fronts(nets[s].model, x_norm, n_front, s) for s in seeds], ignore_index=True),
    device=run.device, data=[test], models=list(nets.values()), code=["prunerob.studies.risk_sweep"],
    adopt_file="bound_fronts.csv")
pages.save_units(run)
u0 = curves[(curves.kind == "uniform (Lemma 2)") & (curves.seed == seeds[0])]
frac_dom = float(u0.dominated_by_layerwise[(u0.keep > 0) & (u0.keep < 1)].mean())
pages.say(
    f"**These runs** (this notebook: profile `{profile}`; missing tables: "
    f"{[k for k, t in tables.items() if t is None] or 'none'}):",
    "\n".join(
        f"- {title.replace(chr(10), ': ')}: {int(m.pareto.sum())} of {len(m)} keep ratios are non-dominated "
        f"({', '.join(f'{k:g}' for k in m[m.pareto].keep_ratio)})."
        for title, m in fronts.items()
    ),
    f"- Bound space (seed {seeds[0]}): every uniform p is non-dominated among uniform choices "
    f"({'yes' if u0.pareto.all() else 'no'}), but {stats.pct(frac_dom, 0)} of the uniform points with "
    "0 < p < 1 are dominated by a per-layer configuration, so the uniform curve is not the Pareto front once "
    "per-layer probabilities are allowed.",
)

# %% [markdown]
# ## Accuracy space and bound space
#
# ```{glue:figure} fig-pareto-accuracy
# :name: fig-pareto-accuracy
#
# {glue:md}`fig-pareto-accuracy_caption`
# ```
#
# ```{glue:figure} fig-pareto-bounds
# :name: fig-pareto-bounds
#
# {glue:md}`fig-pareto-bounds_caption`
# ```

# %% tags=["remove-input"]
src = pd.concat(drawn.values())
src_profiles = ", ".join(sorted(src.profile.dropna().unique())) if "profile" in src else "not recorded"
shown = P.figure(TF.accuracy_front_figure(list(fronts.items())), "fig-pareto-accuracy", P.caption(
    "Empirical Pareto fronts in (clean, attacked) accuracy space; one point per keep ratio, ringed = "
    "non-dominated (paper Fig. 6)",
    profile=f"{profile} (tables from profile {src_profiles})",
    data=sorted(src.dataset.unique()), epochs="see the magnitude_mlp and score_vit pages",
    seeds=sorted(src.seed.unique()), n_eval=", ".join(str(int(v)) for v in sorted(src.n.unique())),
    device=pages.devices(src), attacks=src, stat="points: means over the seeds of the source tables"),
    run.out)
shown = P.figure(TF.bound_front_figure(curves), "fig-pareto-bounds", P.caption(
    "Bound-space fronts of the trained MLP: Lemma 2's uniform curve and the front over per-layer keep "
    "probabilities", profile=profile, data=test, epochs=P.training_text(epochs, train_subset), seeds=seeds,
    n_eval=f"all {len(test)} test images for E||x|| = {x_norm:.3f}", device=run.device_text,
    stat="one curve per seed",
    extra="γ: Theorem 2 as printed (no ε); ζ: Proposition 1 with ||x0|| = E||x||."),
    run.out)

# %% [markdown]
# The fronts are in [accuracy_fronts.csv](results/pareto/accuracy_fronts.csv) and
# [bound_fronts.csv](results/pareto/bound_fronts.csv).

# %% tags=["remove-input"]
P.save_table(curves, run.out, "bound_fronts")
pages.table(
    pd.concat([m.assign(panel=t) for t, m in fronts.items()], ignore_index=True),
    run,
    "accuracy_fronts",
    ["panel", "keep_ratio", "clean_mean", "adv_mean", "pareto"],
)

# %% tags=["remove-input"]
pages.environment(run)
