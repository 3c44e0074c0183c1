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
# # Score-based (Taylor) pruning of a vision transformer (paper Figs. 3, 10, 11, 13, 14)
#
# **Tests** the chapter {doc}`Lemma 1 and Theorem 1 <../theory/lemma1_theorem1>` (pruning a transformer) and
# the claims of {doc}`The empirical claims <../empirical>`; the Taylor score itself is Erratum {ref}`E16
# <e-taylor-score>`.
#
# **The paper claims** (Sec. 6.3, App. H.4, H.5, I) that pruning a fine-tuned tiny ViT by
# first-order Taylor scores $s_{ij} = \mathbb{E}_\text{batch}|w_{ij}\,\partial\mathcal{L}/\partial
# w_{ij}|$ (20 batches) enhances robustness while trading off accuracy, and that "in the
# score-based case, the trade-off occurs at higher pruning ratios" (FGSM and PGD at 4/255, FGSM at
# 8/255, CW, AutoAttack). **What this run shows** is computed in the summary below. The
# architecture is the parameter `model`. Pretrained weights are not available offline, so the `cpu`
# profile uses `cct_2_3x2`, a Compact Convolutional Transformer (CCT-2/3x2, Hassani et al. 2021:
# a 2-conv tokenizer to 64 tokens of width 128, 2 encoder blocks, sequence pooling, 0.28M
# parameters) **trained from scratch; the paper fine-tunes an ImageNet-pretrained ViT-Tiny**. It
# trains with its own recipe (random crop and flip, AdamW with warmup and cosine decay, label
# smoothing 0.1; `prunerob.core.recipe`), since Theorem 1 covers any transformer backbone. The
# `paper` profile runs `vit_tiny` (timm's ViT-Tiny, fine-tuned from ImageNet weights as in App. I).
# CIFAR-10 is a lossy JPEG copy, and **Imagenette** (a 64 px JPEG copy, resized to `image_size`: 32 px in
# the `cpu` profile, so that the tokenizer gives CIFAR-10's 64 tokens at CIFAR-10's cost per image)
# stands in for the ImageNet subset.
# Both methods prune the same weights (the attention and MLP matrices of every encoder block);
# `score_examples` caps the images the Taylor scores see.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/score_vit"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
model: str = "cct_2_3x2"  # architecture (registered name): cct_2_3x2 from scratch, vit_tiny pretrained
datasets: list = ["cifar10", "imagenette"]  # data sets (cifar10, cifar100, imagenet100, imagenette)
image_size: dict = {"cifar10": None, "cifar100": None, "imagenet100": 64, "imagenette": 64}  # px per data set
epochs: dict = {"cifar10": 1, "cifar100": 1, "imagenet100": 1, "imagenette": 1}  # epochs per data set
train_subset: dict = {"cifar10": 500, "cifar100": 500, "imagenet100": 500, "imagenette": 500}  # train images
seeds: list = [0]  # training seeds
methods: list = ["taylor", "random"]  # pruning methods (registered names)
score_examples: "int or None" = 256  # training images for the Taylor scores (None: 20 batches of 128)
keeps: list = [1.0, 0.5]  # keep ratios p (fraction of weights kept)
attacks: list = ["fgsm", "pgd"]  # attacks (registered names)
eps: str = "4/255"  # L-inf budget of the attacks
fgsm_extra_eps: list = ["8/255"]  # further FGSM budgets (Fig. 11)
n_eval: int = 50  # test images attacked (the first n of a seeded permutation)
subset_attacks: list = []  # attacks run only on a fixed test subset (CW, AutoAttack)
subset_n: int = 50  # images in the fixed subset
subset_keeps: list = [1.0, 0.5]  # keep ratios of the subset attacks
subset_seeds: list = [0]  # seeds of the subset attacks
precision: "str or dict" = "fp32"  # training precision: fp32, or bf16 (autocast); or one per data set
subset_methods: "list or None" = None  # pruning methods of the subset attacks (None: `methods`)
compare_methods: list = ["magnitude"]  # further methods, first attack only, main images (Sec. 6.3 comparison)

# %% tags=["remove-input", "remove-stderr"]
import warnings

import pandas as pd

from prunerob.analysis import stats
from prunerob.config import format_eps, parse_eps
from prunerob.core.registry import label_of
from prunerob.engine.experiment import ExperimentSpec, SubsetSpec
from prunerob.render import plotting as P
from prunerob.studies import pages

warnings.filterwarnings("ignore", message="taylor_scores: only")  # fewer than 20 batches with score_examples
run = pages.setup("score_vit", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
compare = [m for m in compare_methods if m not in methods]  # a method of the main sweep is there already
extra = [SubsetSpec(attacks=["fgsm"], eps=fgsm_extra_eps, keeps=keeps if fgsm_extra_eps else [],
                    name="fgsm_extra"),
         SubsetSpec(attacks=subset_attacks, keeps=subset_keeps, n=subset_n, seeds=subset_seeds,
                    methods=subset_methods),
         # the comparison of methods (Sec. 6.3): same models, images, keeps and budget as the main sweep
         SubsetSpec(attacks=attacks[:1], keeps=keeps if compare else [], methods=compare, name="compare")]
res = pages.run_and_save(run, ExperimentSpec(
    datasets=datasets, models={ds: model for ds in datasets}, methods=methods, keeps=keeps, attacks=attacks,
    eps=eps, seeds=seeds, n=n_eval, epochs=epochs, train_subset=train_subset, image_size=image_size,
    precision=precision, subset=extra, score_examples=score_examples, data_root=data_root, download=download))
main = res.sweep[(res.sweep.attack == attacks[0]) & res.sweep.part.isin(["main", "compare"])]
drops = stats.keep_at_drop(main, drop=0.02)
pages.report(run, res, "taylor", "(data set, attack, budget)", seeds, [
    "\n".join(f"- {r.dataset}, {r.method}: clean accuracy stays within 2 points of the unpruned model's at "
              f"every keep ratio ≥ {r.keep_min:g}." for r in drops.itertuples())])

# %% [markdown]
# ## How many epochs the transformer needs
#
# The seed-0 model of each data set, trained as in the sweep, with its test accuracy after every
# epoch. `cct_2_3x2` trains with a warmup-cosine schedule, which depends on the run's length:
# the curve is that of one run (not of shorter runs, which would decay earlier), so where it
# flattens, and not only where it first passes the threshold, is what tells whether more epochs
# would help. A constant-rate recipe (`vit_tiny`, App. I) gives every shorter run's model instead.
#
# ```{glue:figure} fig-score_vit-curve
# :name: fig-score_vit-curve
#
# {glue:md}`fig-score_vit-curve_caption`
# ```

# %% tags=["remove-input"]
curves = {ds: pages.training_curve(run, model, ds, seeds[0], epochs=epochs[ds], train_subset=train_subset[ds],
                                   data_root=data_root, image_size=image_size[ds], precision=precision)
          for ds in datasets if ds in res.sources}  # a data set missing offline has no model
# each curve's rows name their data set
P.save_table(pd.concat(list(curves.values()), ignore_index=True), run.out, "training_curve")
panels = [(f"{ds}" + (f" ({image_size[ds]} px)" if image_size[ds] else ""), c, pages.threshold_of(model, ds),
           epochs[ds]) for ds, c in curves.items()]
shown = P.figure(P.training_curves_figure(panels), "fig-score_vit-curve", P.caption(
    f"Test accuracy of {label_of('arch', model)} against training epochs (seed {seeds[0]}), one panel per "
    "data set",
    profile=profile, data=[res.sources[ds] for ds in curves], epochs=P.training_text(epochs, train_subset,
                                                                                    list(curves)),
    seeds=[seeds[0]], n_eval="the full test split", device=P.devices(res.sweep),
    extra=" ".join(f"{ds}: {pages.curve_sentence(c, pages.threshold_of(model, ds))} Threshold: "
                   f"{pages.threshold_source(model, ds)}" for ds, c in curves.items())), run.out)

# %% [markdown]
# ## FGSM, PGD, CW and AutoAttack (Figs. 3, 10, 11, 13, 14)
#
# Four figures of at most two rows: FGSM and PGD at the main budget on each data set (Figs. 3 and
# 10), FGSM at the larger budget (Fig. 11), and CW and AutoAttack (Figs. 13 and 14; the `cpu` profile
# runs CW on the main images and AutoAttack on a fixed subset). Methods in `compare_methods` (by
# default magnitude) that are not in `methods` run under the first attack only, on the same models,
# images and keep ratios: the comparison of methods of Sec. 6.3 ("the trade-off occurs at higher
# pruning ratios") needs their clean accuracy, and their full sweep would cost as much CPU as
# Taylor's again (`-p methods '["taylor", "magnitude"]'` runs it). A panel's curves are measured on
# the run's evaluation images; the competence accuracy in a panel title is measured on the full test
# set, so the two numbers differ.
#
# ```{glue:figure} fig-score_vit-cifar10
# :name: fig-score_vit-cifar10
#
# {glue:md}`fig-score_vit-cifar10_caption`
# ```
#
# ```{glue:figure} fig-score_vit-imagenette
# :name: fig-score_vit-imagenette
#
# {glue:md}`fig-score_vit-imagenette_caption`
# ```
#
# ```{glue:figure} fig-score_vit-fgsm-large
# :name: fig-score_vit-fgsm-large
#
# {glue:md}`fig-score_vit-fgsm-large_caption`
# ```
#
# ```{glue:figure} fig-score_vit-subset
# :name: fig-score_vit-subset
#
# {glue:md}`fig-score_vit-subset_caption`
# ```

# %% tags=["remove-input"]
comp = pages.competence_of(res.models)
main_eps = parse_eps(eps)
is_main = abs(res.sweep.eps - main_eps) < 1e-9
groups = {ds: res.sweep[(res.sweep.dataset == ds) & res.sweep.attack.isin(["fgsm", "pgd"]) & is_main
                        & res.sweep.part.isin(["main", "compare"])] for ds in ("cifar10", "imagenette")}
groups["fgsm-large"] = res.sweep[res.sweep.part == "fgsm_extra"]
# CW and AutoAttack share a figure, whether CW ran on the main images (the cpu profile) or on the subset
groups["subset"] = res.sweep[(res.sweep.part == "subset")
                             | ((res.sweep.part == "main") & ~res.sweep.attack.isin(["fgsm", "pgd"]))]
what = {"cifar10": "CIFAR-10, main budget (paper Figs. 3, 10)",
        "imagenette": f"Imagenette ({image_size['imagenette']} px), main budget (paper Figs. 3, 10)",
        "fgsm-large": "FGSM at the larger budget (paper Fig. 11)",
        "subset": "CW and AutoAttack (paper Figs. 13, 14)"}
for name, part in groups.items():
    cells = part[["dataset", "attack", "eps"]].drop_duplicates().itertuples()
    grid = [dict(dataset=c.dataset, attack=c.attack, eps=c.eps, title=pages.panel_title(
        comp, model, c.dataset, f"{c.dataset} / {P.attack_label(c.attack)} {format_eps(c.eps)}"))
        for c in cells]
    fig = P.grid_or_placeholder(part, grid, f"{what[name]}: not run in profile {profile}.")
    shown = P.figure(fig, f"fig-score_vit-{name}", P.caption(
        f"{' vs '.join([*methods, *compare])} pruning of {label_of('arch', model)}: "
        f"{what[name]}",
        profile=profile, data=list(res.sources.values()),
        epochs=P.training_text(epochs, train_subset, list(res.sources)), seeds=seeds,
        n_eval=f"{n_eval}"
        + (f"; {' and '.join(map(P.attack_label, subset_attacks))} (subset attacks): {subset_n} fixed images"
           * bool(subset_attacks)),
        device=P.devices(res.sweep), attacks=part if len(part) else None,
        extra=f"Main budget {format_eps(main_eps)}; Taylor scores from "
        + ("20 batches of 128 training images (App. I). " if score_examples is None
           else f"{score_examples} training images. ")
        + (f"{' and '.join(compare)} pruning under {P.attack_label(attacks[0])} only (the comparison of "
           "methods, Sec. 6.3). " if compare and name in ("cifar10", "imagenette") else "")
        + "Competence in a panel title: accuracy on the full test set; curves: on the evaluation images."),
        run.out)

# %% [markdown]
# ## Competence, Fig. 14 (AutoAttack) and the transformer panel of Fig. 7
#
# The paper fine-tunes an ImageNet-pretrained ViT; offline, the `cpu` profile trains `cct_2_3x2`
# from scratch. The lines below say, from the models of this run, whether each reached its
# competence threshold on this hardware and what the training cost. A model below its threshold
# yields no verdict: the curves above would describe an untrained network, not the paper's claim.
# **Fig. 14** (AutoAttack on the transformer) runs when `subset_attacks` includes `autoattack` (the
# `cpu` profile: Taylor pruning, a fixed 1,000-image subset; the `paper` profile: every keep ratio).
# The transformer panel of **Fig. 7** (risk curves of the same models) is on the
# [risk page](risk_vs_keep.ipynb).

# %% tags=["remove-input"]
pages.say(pages.gpu_note(res.models, comp, "autoattack" in subset_attacks))

# %% [markdown]
# The best keep ratio per setting is in [sweet_spots.csv](results/score_vit/sweet_spots.csv);
# every row of the sweep in [sweep.csv](results/score_vit/sweep.csv), the trained models in
# [models.csv](results/score_vit/models.csv).

# %% tags=["remove-input"]
cols = ["dataset", "method", "attack", "eps", "keep_best", "adv_gain", "adv_gain_lo", "adv_gain_hi",
        "clean_drop"]
pages.table(stats.sweet_spot(res.sweep), run, "sweet_spots", cols)

# %% tags=["remove-input"]
pages.environment(run)
