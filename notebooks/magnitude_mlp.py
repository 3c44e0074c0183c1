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
# # Magnitude pruning of MLPs (Fig. 2, MLP panels; Figs. 8 and 12)
#
# **The paper claims** (Sec. 6.3, App. H.2, H.5) that as weights of a trained MLP are removed by
# magnitude, without retraining, "adversarial accuracy initially improves [...] while clean
# accuracy begins to decline", with a sweet spot "around $p = 0.9$ for MLP" (784-512-10 on MNIST,
# 8192-4096-2048-1024 hidden units on CIFAR-10; FGSM and PGD at $\epsilon = 4/255$, the L∞ CW
# margin attack and AutoAttack). **What this run shows** is computed in the summary below, with
# random pruning (the same number of weights per layer) as a baseline the paper does not show,
# means over seeds and paired 95% intervals; AutoAttack runs on a stated subset.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/magnitude_mlp"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
datasets: list = ["mnist"]  # data sets (mnist, cifar10)
models: dict = {"mnist": "mlp", "cifar10": "mlp_cifar"}  # architecture per data set
epochs: dict = {"mnist": 2, "cifar10": 1}  # training epochs per data set
train_subset: dict = {"mnist": 10000, "cifar10": 2000}  # training images per data set (None: all)
n_eval: dict = {"mnist": 1000, "cifar10": 200}  # test images attacked per data set
attacks: dict = {"mnist": ["fgsm", "pgd", "cw"], "cifar10": ["fgsm", "pgd"]}  # attacks per data set
seeds: list = [0, 1]  # training seeds
methods: list = ["magnitude", "random"]  # pruning methods (registered names)
keeps: "list or dict" = [1.0, 0.9, 0.7, 0.5, 0.3]  # keep ratios p, or a dict of them per data set
eps: str = "4/255"  # L-inf budget of the attacks
subset_attacks: list = ["autoattack"]  # attacks run only on a fixed test subset
subset_datasets: list = ["mnist"]  # data sets of the subset attacks
subset_n: int = 20  # images in the fixed subset (first n of a seeded permutation)
subset_keeps: list = []  # keep ratios of the subset attacks (empty: not run)
subset_seeds: list = [0]  # seeds of the subset attacks
subset_methods: list = ["magnitude"]  # pruning methods of the subset attacks (Fig. 12: magnitude)

# %% tags=["remove-input", "remove-stderr"]
from prunerob import pages, stats
from prunerob import plotting as P
from prunerob.config import parse_eps
from prunerob.experiment import ExperimentSpec, SubsetSpec

run = pages.setup("magnitude_mlp", profile=profile, device=device, threads=threads, out_dir=out_dir)
subset = SubsetSpec(attacks=subset_attacks, keeps=subset_keeps, n=subset_n, seeds=subset_seeds,
                    datasets=subset_datasets, methods=subset_methods)
res = pages.run_and_save(run, ExperimentSpec(
    datasets=datasets, models=models, methods=methods, keeps=keeps, attacks=attacks, eps=eps, seeds=seeds,
    n=n_eval, epochs=epochs, train_subset=train_subset, data_root=data_root, download=download,
    subset=subset))
pages.report(run, res, "magnitude", "(data set, attack)", seeds)

# %% [markdown]
# ## FGSM and PGD (Figs. 2 and 8)
#
# ```{glue:figure} fig-magnitude_mlp-fgsm-pgd
# :name: fig-magnitude_mlp-fgsm-pgd
#
# {glue:md}`fig-magnitude_mlp-fgsm-pgd_caption`
# ```

# %% tags=["remove-input"]
comp = pages.competence_of(res.models)
e = parse_eps(eps)
cap = dict(profile=profile, data=list(res.sources.values()),
           epochs=P.training_text(epochs, train_subset, list(res.sources)))
n_text = ", ".join(f"{ds}: {n_eval[ds]}" for ds in res.sources)


def panels(table, names):
    """One panel per (data set, attack in ``names``) that ``table`` holds, titled with the model."""
    return [dict(dataset=ds, attack=a, eps=e,
                 title=pages.panel_title(comp, models[ds], ds, f"{models[ds]} / {ds} / {a}"))
            for ds in res.sources for a in names if ((table.dataset == ds) & (table.attack == a)).any()]


main = res.sweep[res.sweep.attack.isin(["fgsm", "pgd"])]
shown = P.figure(P.accuracy_grid(main, panels(main, ["fgsm", "pgd"]), ncols=2), "fig-magnitude_mlp-fgsm-pgd",
                 P.caption("Magnitude vs random pruning of MLPs under FGSM and PGD (paper Figs. 2 and 8)",
                           **cap, seeds=seeds, n_eval=n_text, device=P.devices(main), attacks=main), run.out)

# %% [markdown]
# ## CW and AutoAttack (Fig. 12)
#
# CW runs on all `n_eval` images. AutoAttack on the MNIST MLP has its own page,
# [AutoAttack on the pruned MLP](autoattack_mlp.ipynb), on a fixed 1,000-image subset with the
# same models; it appears here only where `subset_keeps` is set (the CIFAR-10 MLP of the `paper`
# profile).
#
# ```{glue:figure} fig-magnitude_mlp-cw-autoattack
# :name: fig-magnitude_mlp-cw-autoattack
#
# {glue:md}`fig-magnitude_mlp-cw-autoattack_caption`
# ```

# %% tags=["remove-input"]
extra = res.sweep[res.sweep.attack.isin(["cw", "autoattack"])]
shown = P.figure(P.accuracy_grid(extra, panels(extra, ["cw", "autoattack"]), ncols=2),
                 "fig-magnitude_mlp-cw-autoattack",
                 P.caption("MLP under CW (L∞ margin) and AutoAttack (paper Fig. 12)", **cap,
                           seeds=sorted(extra.seed.unique()), device=P.devices(extra), attacks=extra,
                           n_eval=n_text + (f"; subset attacks {subset_attacks}: {subset_n} fixed images "
                                            f"at keeps {subset_keeps}, seeds {subset_seeds}, "
                                            f"{' and '.join(subset_methods)} pruning") * bool(subset_keeps)),
                 run.out)

# %% [markdown]
# The best keep ratio per setting with its paired gain is in
# [sweet_spots.csv](results/magnitude_mlp/sweet_spots.csv); every row of the sweep in
# [sweep.csv](results/magnitude_mlp/sweep.csv), the trained models in
# [models.csv](results/magnitude_mlp/models.csv).

# %% tags=["remove-input"]
cols = ["model", "dataset", "method", "attack", "keep_best", "adv_gain", "adv_gain_lo", "adv_gain_hi",
        "clean_drop"]
pages.table(stats.sweet_spot(res.sweep), run, "sweet_spots", cols)
