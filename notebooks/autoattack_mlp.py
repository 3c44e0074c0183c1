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
# # AutoAttack on the pruned MNIST MLP (paper Fig. 12, right)
#
# **Tests** the chapter {doc}`The empirical claims <../empirical>` (the sweet spot under the field's
# standard attack).
#
# **The paper claims** (App. H.5, Fig. 12 right) that the sweet spot of magnitude pruning seen
# under FGSM and PGD also appears under AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square).
# AutoAttack is the field's check that a robustness gain is not gradient masking, so every
# robustness gain the book claims for the MLP must survive it here. It costs a few CPU minutes per
# keep ratio per 1,000 images, so it runs on its own page: a **fixed subset** of the test set (the
# first `n` images of a seeded permutation, the same for every keep ratio and seed), at the keep
# ratios a sweet-spot verdict can rest on. FGSM, PGD-5 and CW run on the same images, so the four
# attacks can be compared example by example. **What this run shows** is computed below.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/autoattack_mlp"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
scheduler: "str or None" = None  # None (in this process) or 'local:N' (N worker processes, one per model)
dataset: str = "mnist"  # data set
model: str = "mlp"  # architecture (registered name)
epochs: int = 2  # training epochs (the models are shared with the magnitude_mlp page)
train_subset: "int or None" = 10000  # training images (None: all)
seeds: list = [0]  # training seeds (one model each)
method: str = "magnitude"  # pruning method (registered name)
keeps: list = [1.0, 0.9]  # keep ratios p
attacks: list = ["fgsm", "pgd", "cw", "autoattack"]  # attacks, all on the same fixed images
eps: str = "4/255"  # L-inf budget of the attacks
n_eval: int = 10  # images of the fixed subset (first n of a seeded permutation of the test set)

# %% tags=["remove-input", "remove-stderr"]
from prunerob.analysis import stats
from prunerob.config import parse_eps
from prunerob.core.attacks import stronger_than
from prunerob.engine.experiment import ExperimentSpec
from prunerob.render import plotting as P
from prunerob.studies import pages

run = pages.setup("autoattack_mlp", globals(), profile=profile, device=device, threads=threads,
                  out_dir=out_dir)
res = pages.run_and_save(run, ExperimentSpec(
    datasets=[dataset], models=model, methods=[method], keeps=keeps, attacks=attacks, eps=eps, seeds=seeds,
    n=n_eval, epochs=epochs, train_subset=train_subset, data_root=data_root, download=download),
    scheduler=scheduler)
pages.report(run, res, method, "(attack)", seeds)

# %% tags=["remove-input"]
from prunerob.analysis import canonical

pages.say(canonical.notes_for("autoattack_mlp", run.out.parent))

# %% [markdown]
# ## Four attacks on the same images (Fig. 12, right)
#
# Two figures of two attacks each (gradient attacks, then CW and AutoAttack), all on the same
# fixed images, models and keep ratios.
#
# ```{glue:figure} fig-autoattack_mlp-gradient
# :name: fig-autoattack_mlp-gradient
#
# {glue:md}`fig-autoattack_mlp-gradient_caption`
# ```
#
# ```{glue:figure} fig-autoattack_mlp-accuracy
# :name: fig-autoattack_mlp-accuracy
#
# {glue:md}`fig-autoattack_mlp-accuracy_caption`
# ```

# %% tags=["remove-input"]
comp = pages.competence_of(res.models)
for name, group in (("gradient", ["fgsm", "pgd"]), ("accuracy", ["cw", "autoattack"])):
    grid = [dict(dataset=dataset, attack=a, eps=parse_eps(eps),
                 title=pages.panel_title(comp, model, dataset, f"{model} / {dataset} / {P.attack_label(a)}"))
            for a in attacks if a in group]
    part = res.sweep[res.sweep.attack.isin(group)]
    fig = P.grid_or_placeholder(part, grid,
                                f"{' and '.join(map(P.attack_label, group))}: not run in profile {profile}.")
    shown = P.figure(fig, f"fig-autoattack_mlp-{name}", P.caption(
        f"Magnitude-pruned MLP under {' and '.join(map(P.attack_label, group))} on one fixed subset "
        "(paper Fig. 12, right)",
        profile=profile, data=res.sources[dataset], epochs=P.training_text(epochs, train_subset), seeds=seeds,
        n_eval=f"{n_eval} fixed images (the same for every attack, keep ratio and seed)",
        device=P.devices(res.sweep), attacks=part if len(part) else None), run.out)

# %% [markdown]
# ## Is each attack at least as strong as the weaker ones?
#
# On every (keep ratio, seed) the iterative attacks must leave no more images correct than FGSM,
# and AutoAttack no more than PGD; a violation would mean a broken attack, not robustness. The
# table counts the images each attack leaves correct, summed over seeds.

# %% tags=["remove-input"]
ladder = stats.attack_ladder(res.sweep, order=attacks, stronger_than=stronger_than())
pages.table(ladder, run, "attack_ladder", rows=len(keeps))

# %% [markdown]
# The best keep ratio per attack with its paired gain is in
# [sweet_spots.csv](results/autoattack_mlp/sweet_spots.csv); every row in
# [sweep.csv](results/autoattack_mlp/sweep.csv), the models in
# [models.csv](results/autoattack_mlp/models.csv).

# %% tags=["remove-input"]
cols = ["model", "dataset", "method", "attack", "keep_best", "adv_gain", "adv_gain_lo", "adv_gain_hi",
        "clean_drop"]
pages.table(stats.sweet_spot(res.sweep), run, "sweet_spots", cols)

# %% tags=["remove-input"]
pages.environment(run)
