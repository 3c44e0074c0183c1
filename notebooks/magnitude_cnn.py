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
# # Magnitude pruning of a CNN (paper Figs. 2, CNN panels, and 9)
#
# **Tests** the chapter {doc}`The empirical claims <../empirical>` (the sweet spot on a CNN).
#
# **The paper claims** (Sec. 6.3, App. H.3) that for a 4-layer CNN trained on CIFAR-10 and
# CIFAR-100 and pruned by weight magnitude without retraining, "as we decrease the pruning
# probability [...] the attacked accuracy start going up [...] before decreasing" (FGSM and PGD,
# $\epsilon = 4/255$). **What this run shows** is computed in the summary below. `cnn4` has 4 conv
# layers and a 2-layer head (the paper does not give its layers); the offline CIFAR-10 is a lossy
# JPEG copy (quality 75) and CIFAR-100 is skipped, with a note, when it cannot be loaded.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/magnitude_cnn"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
datasets: list = ["cifar10"]  # data sets (cifar10, cifar100)
model: str = "cnn4"  # architecture (registered name)
epochs: dict = {"cifar10": 1, "cifar100": 1}  # training epochs per data set
train_subset: dict = {"cifar10": 2000, "cifar100": 2000}  # training images per data set (None: all)
seeds: list = [0, 1]  # training seeds
methods: list = ["magnitude", "random"]  # pruning methods (registered names)
keeps: list = [1.0, 0.7, 0.4]  # keep ratios p (fraction of weights kept)
attacks: list = ["fgsm", "pgd"]  # attacks (registered names)
eps: str = "4/255"  # L-inf budget of the attacks
n_eval: int = 200  # test images attacked (the first n of a seeded permutation)
curve_epochs: int = 2  # epochs of the seed-0 training curve (first data set); `epochs` is picked from it
precision: dict = {"cifar10": "fp32", "cifar100": "fp32"}  # training precision: fp32 or bf16 (autocast)

# %% tags=["remove-input", "remove-stderr"]
from prunerob.analysis import stats
from prunerob.config import parse_eps
from prunerob.engine.experiment import ExperimentSpec
from prunerob.render import plotting as P
from prunerob.studies import pages

run = pages.setup("magnitude_cnn", globals(), profile=profile, device=device, threads=threads,
                  out_dir=out_dir)
res = pages.run_and_save(run, ExperimentSpec(
    datasets=datasets, models={ds: model for ds in datasets}, methods=methods, keeps=keeps, attacks=attacks,
    eps=eps, seeds=seeds, n=n_eval, epochs=epochs, train_subset=train_subset, precision=precision,
    data_root=data_root, download=download))
pages.report(run, res, "magnitude", "(data set, attack)", seeds)

# %% tags=["remove-input"]
from prunerob.analysis import canonical

pages.say(canonical.notes_for("magnitude_cnn", run.out.parent))

# %% [markdown]
# ## How many epochs make the CNN competent
#
# The recipe (Adam, lr $10^{-3}$, no schedule) does not depend on the total epoch count, so one
# seed-0 run of `curve_epochs` epochs gives, after every epoch, exactly the model a shorter run
# would (`train_model(snapshot_epochs=...)`, checked bit for bit in the tests). The curve below is
# its test accuracy; the profile's `epochs` is the first epoch count that passes the competence
# threshold, and the paper's 100 epochs do not fit this CPU.
#
# ```{glue:figure} fig-magnitude_cnn-curve
# :name: fig-magnitude_cnn-curve
#
# {glue:md}`fig-magnitude_cnn-curve_caption`
# ```

# %% tags=["remove-input"]
ds0 = datasets[0]
curve = pages.training_curve(run, model, ds0, 0, epochs=curve_epochs, train_subset=train_subset[ds0],
                             data_root=data_root, precision=precision[ds0])
P.save_table(curve, run.out, "training_curve")
limit = pages.threshold_of(model, ds0)
shown = P.figure(P.training_curve_figure(curve, limit, epochs[ds0]), "fig-magnitude_cnn-curve", P.caption(
    f"Test accuracy of {model} on {ds0} against training epochs (seed 0)", profile=profile,
    data=res.sources.get(ds0, ds0), epochs=P.training_text(curve_epochs, train_subset[ds0]), seeds=[0],
    n_eval="the full test split", device=pages.devices(res.sweep),
    extra=f"{pages.curve_sentence(curve, limit)} Threshold: {pages.threshold_source(model, ds0)}"), run.out)

# %% [markdown]
# ## Clean and attacked accuracy against the keep ratio
#
# ```{glue:figure} fig-magnitude_cnn-accuracy
# :name: fig-magnitude_cnn-accuracy
#
# {glue:md}`fig-magnitude_cnn-accuracy_caption`
# ```

# %% tags=["remove-input"]
comp = pages.competence_of(res.models)
grid = [dict(dataset=ds, attack=a, eps=parse_eps(eps),
             title=pages.panel_title(comp, model, ds, f"{model} / {ds} / {P.attack_label(a)}"))
        for ds in res.sources for a in attacks]
shown = P.figure(
    P.accuracy_grid(res.sweep, grid, ncols=2),
    "fig-magnitude_cnn-accuracy",
    P.caption(
        "Magnitude vs random pruning of a 4-layer CNN under FGSM and PGD (paper Figs. 2 and 9)",
        profile=profile, data=list(res.sources.values()),
        epochs=P.training_text(epochs, train_subset, list(res.sources)), seeds=seeds, n_eval=n_eval,
        device=pages.devices(res.sweep), attacks=res.sweep,
        extra=f"Not run (not available here): {', '.join(res.skipped)}." if res.skipped else None),
    run.out,
)

# %% [markdown]
# The best keep ratio per setting is in [sweet_spots.csv](results/magnitude_cnn/sweet_spots.csv);
# every row of the sweep in [sweep.csv](results/magnitude_cnn/sweep.csv), the trained models in
# [models.csv](results/magnitude_cnn/models.csv).

# %% tags=["remove-input"]
cols = ["dataset", "method", "attack", "keep_best", "adv_gain", "adv_gain_lo", "adv_gain_hi", "clean_drop"]
pages.table(stats.sweet_spot(res.sweep), run, "sweet_spots", cols)

# %% tags=["remove-input"]
pages.environment(run)
