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
# # Effect of depth (paper Fig. 4)
#
# **Tests** the chapter {doc}`Theorem 2 <../theory/theorem2>` (its depth factor: "the bound suggests an
# exponential relationship between L and the expected robustness", Sec. 6.4).
#
# **The paper claims** (Sec. 6.4) that deeper MLPs need more pruning: "in larger models,
# achieving a favorable balance between clean and robust performance requires a higher pruning
# rate". It trains 2-, 3- and 4-layer MLPs on MNIST under identical settings, prunes them by
# magnitude and attacks them with FGSM and PGD ($\epsilon = 4/255$). **What this run shows** is
# computed from its tables in the summary below. Widths: `mlp` 784-512-10, `mlp3` 784-512-256-10,
# `mlp4` 784-512-256-128-10 (the paper does not give them). Random pruning is the baseline where
# `methods` includes it; the `cpu` profile runs magnitude only, at the paper's settings (random
# pruning of the same MLPs is on the MLP page).

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/depth"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
models: list = ["mlp", "mlp3", "mlp4"]  # MLP depths compared (registered architectures)
dataset: str = "mnist"  # data set
epochs: int = 2  # training epochs
train_subset: "int or None" = 10000  # training images (None: all)
seeds: list = [0, 1]  # training seeds (one model per seed and depth)
methods: list = ["magnitude", "random"]  # pruning methods (registered names)
keeps: list = [1.0, 0.9, 0.7, 0.5, 0.3]  # keep ratios p (fraction of weights kept)
attacks: list = ["fgsm", "pgd"]  # attacks (registered names)
eps: str = "4/255"  # L-inf budget of the attacks
n_eval: int = 1000  # test images attacked (the first n of a seeded permutation)
extra_eps: list = []  # further L-inf budgets of the same attacks (a sweep part of its own, e.g. ["0.1"])

# %% tags=["remove-input", "remove-stderr"]
from prunerob.analysis import stats
from prunerob.config import format_eps, parse_eps
from prunerob.engine.experiment import ExperimentSpec, SubsetSpec
from prunerob.render import plotting as P
from prunerob.studies import pages

run = pages.setup("depth", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
res = pages.run_and_save(run, ExperimentSpec(
    datasets=[dataset], models={dataset: models}, methods=methods, keeps=keeps, attacks=attacks, eps=eps,
    seeds=seeds, n=n_eval, epochs=epochs, train_subset=train_subset, data_root=data_root, download=download,
    subset=SubsetSpec(attacks=attacks, eps=extra_eps, keeps=keeps if extra_eps else [], name="eps_extra")))
comp = pages.competence_of(res.models)
trend = stats.depth_trend(res.sweep, order=models)

# %% tags=["remove-input"]
lines = pages.depth_findings(trend, comp, models, dataset)
pages.say(
    f"**This run** (profile `{profile}`, {len(seeds)} seed(s), device {pages.devices(res.sweep)}): "
    "the best keep ratio (highest mean attacked accuracy, paired gain over the unpruned model in brackets) "
    "per depth:",
    "\n".join(lines),
)

# %% [markdown]
# ## Clean and attacked accuracy per depth
#
# One figure per attack (FGSM, then PGD) at the main budget, the three depths as rows, each next
# to its paired gain; then the same at the further budgets of `extra_eps` (ε = 0.1 in the `cpu`
# profile), when run.
#
# ```{glue:figure} fig-depth-fgsm
# :name: fig-depth-fgsm
#
# {glue:md}`fig-depth-fgsm_caption`
# ```
#
# ```{glue:figure} fig-depth-pgd
# :name: fig-depth-pgd
#
# {glue:md}`fig-depth-pgd_caption`
# ```
#
# ```{glue:figure} fig-depth-extra
# :name: fig-depth-extra
#
# {glue:md}`fig-depth-extra_caption`
# ```

# %% tags=["remove-input"]
for a in attacks:  # one figure per attack: three rows fit one screen
    panels = [dict(model=m, attack=a, eps=parse_eps(eps),
                   title=pages.panel_title(comp, m, dataset, f"{m} / {P.attack_label(a)}")) for m in models]
    shown = P.figure(
        P.accuracy_grid(res.sweep[res.sweep.attack == a], panels, ncols=2, row_height=2.3),
        f"fig-depth-{a}",
        P.caption(
            f"Effect of depth under {P.attack_label(a)}: MLPs with 2, 3 and 4 weight matrices, "
            f"{' vs '.join(methods)} pruning (paper Fig. 4)",
            profile=profile, data=res.sources[dataset], epochs=P.training_text(epochs, train_subset),
            seeds=seeds, n_eval=n_eval, device=P.devices(res.sweep),
            attacks=res.sweep[res.sweep.attack == a]),
        run.out,
    )
extra = res.sweep[res.sweep.part == "eps_extra"]
panels = [dict(model=m, attack=a, eps=e, title=pages.panel_title(
    comp, m, dataset, f"{m} / {P.attack_label(a)} {format_eps(e)}"))
    for e in sorted(extra.eps.unique()) for m in models for a in attacks]
shown = P.figure(
    P.grid_or_placeholder(extra, panels, f"No further budget in profile {profile} (extra_eps = []).",
                          row_height=2.3),
    "fig-depth-extra",
    P.caption(
        f"Effect of depth at the further budgets {', '.join(map(str, extra_eps)) or '(none)'}: MLPs with "
        f"2, 3 and 4 weight matrices, {' vs '.join(methods)} pruning (paper Fig. 4 at other ε)",
        profile=profile, data=res.sources[dataset], epochs=P.training_text(epochs, train_subset),
        seeds=seeds, n_eval=n_eval, device=P.devices(res.sweep), attacks=extra if len(extra) else None),
    run.out,
)

# %% [markdown]
# The per-setting best keep ratios with their paired gains are in
# [sweet_spots.csv](results/depth/sweet_spots.csv); every row of the sweep in
# [sweep.csv](results/depth/sweep.csv), the trained models in [models.csv](results/depth/models.csv).

# %% tags=["remove-input"]
pages.table(
    stats.sweet_spot(res.sweep),
    run,
    "sweet_spots",
    ["model", "method", "attack", "keep_best", "adv_gain", "adv_gain_lo", "adv_gain_hi"],
)

# %% tags=["remove-input"]
pages.environment(run)
