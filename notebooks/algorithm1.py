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
# # Choosing keep probabilities with Algorithm 1 (paper Fig. 5)
#
# **Tests** the chapter {doc}`The trade-off: Algorithm 1 and the Pareto front <../theory/tradeoff>` (Errata
# E11, E12 and the layer ordering of Sec. 6.5) on a trained MLP.
#
# **The paper claims** (Sec. 5.3, 6.5, App. E) that Algorithm 1, a fixed-point iteration on
# $\partial J/\partial p_k = 0$ for $J = \lambda\gamma + (1-\lambda)\zeta$ with
# $\gamma(p) = A\prod_\ell\sqrt{p_\ell}$ and $\zeta(p) = C\sum_\ell b_\ell\sqrt{1-p_\ell}$
# (Eq. 17-20), "effectively selects pruning probabilities $p$ that yield the best trade-off", and
# that it "consistently prunes the second layer more than the first". **What this run shows** is
# computed in the summary below. Caution (verified in `prunerob.theory.tradeoff`): $J$ is concave in each
# $p_k$, so Algorithm 1 iterates towards coordinate-wise *maxima*; the minimiser lies at a vertex
# of $[0,1]^L$. Both are shown. A chosen $p_\ell$ becomes a mask by keeping the
# $\mathrm{round}(p_\ell n_\ell)$ largest-magnitude weights of layer $\ell$; $\mathbb{E}\|x\|$ is
# the mean L2 norm of the test inputs in $[0,1]^{784}$.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/algorithm1"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
model: str = "mlp"  # MLP architecture (registered name)
dataset: str = "mnist"  # data set
epochs: int = 2  # training epochs
train_subset: "int or None" = 10000  # training images (None: all)
seeds: list = [0, 1]  # training seeds
lambdas: list = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]  # weights λ of γ in J (Eq. 20)
modes: list = ["uniform", "layerwise"]  # one shared p, or one p per layer
p0: float = 0.5  # Algorithm 1's starting keep probability
tol: float = 1e-8  # Algorithm 1's convergence tolerance
max_iter: int = 50  # Algorithm 1's iteration limit
attacks: list = ["fgsm", "pgd"]  # attacks (registered names)
eps: str = "4/255"  # L-inf budget of the attacks
n_eval: int = 1000  # test images attacked
grid_keeps: list = [1.0, 0.9, 0.7, 0.5, 0.3]  # uniform keep ratios of the comparison grid

# %% tags=["remove-input", "remove-stderr"]
import pandas as pd

from prunerob.analysis import stats
from prunerob.core.data import load_dataset
from prunerob.engine.experiment import ExperimentSpec
from prunerob.render import plotting as P
from prunerob.render import theory_figures as TF
from prunerob.studies import layer_choices, pages, units
from prunerob.studies.risk_sweep import input_norm

run = pages.setup("algorithm1", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
res = pages.run_and_save(run, ExperimentSpec(
    datasets=[dataset], models=model, methods=["magnitude", "random"], keeps=grid_keeps, attacks=attacks,
    eps=eps, seeds=seeds, n=n_eval, epochs=epochs, train_subset=train_subset, data_root=data_root,
    download=download))
test = load_dataset(dataset, "test", root=data_root, download=download)
x_norm = input_norm(test)  # E||x|| of Eq. 18
# the choices are a result-store unit (prunerob.studies.units): the models train only when it is missing
nets = {s: units.LazyModel(model, dataset, s, device=run.device, epochs=epochs, train_subset=train_subset,
                           data_root=data_root) for s in seeds}
ch = units.table(
    "algorithm1_choices", dict(lambdas=lambdas, modes=modes, p0=p0, tol=tol, max_iter=max_iter,
                               attacks=attacks, eps=eps, n=n_eval, seeds=seeds),
    lambda: pd.concat([layer_choices.evaluate_choices(
        nets[s].model, layer_choices.choose(nets[s].model, lambdas, modes, x_norm=x_norm, p0=p0, tol=tol,
                                            max_iter=max_iter), test,
        attacks=attacks, eps=eps, n=n_eval, seed=s, device=run.device) for s in seeds], ignore_index=True),
    device=run.device, data=[test], models=list(nets.values()), code=["prunerob.studies.layer_choices"],
    uses=[f"attack:{a}" for a in attacks], adopt_file="choices.csv")
pages.save_units(run)
pts = stats.algorithm1_vs_front(ch, res.sweep, attack=attacks[0])
chosen = pts[pts.src == "chosen"]
alg, mini = chosen[chosen.method == "algorithm1"], chosen[chosen.method == "minimiser"]
comp = pages.competence_of(res.models)
vecs = layer_choices.vertices(ch)
pages.say(
    f"**This run** (profile `{profile}`, {len(seeds)} seed(s), device {pages.devices(res.sweep)}; "
    f"{comp.loc[(model, dataset), 'competence_label']}):",
    f"- Layer-wise, Algorithm 1 keeps fewer weights in layer 2 than in layer 1 in "
    f"{stats.pct(stats.second_layer_share(ch), 0)} of the (seed, λ) runs with 0 < λ < 1.",
    f"- {int(alg.pareto.sum())} of {len(alg)} Algorithm 1 choices (means over seeds) lie on the "
    "empirical front "
    f"of clean vs {P.attack_label(attacks[0])} accuracy (uniform grid and chosen points together); "
    f"{int(mini.pareto.sum())} of {len(mini)} minimiser points do.",
    "- The distinct keep vectors the minimiser of J returns: "
    + ", ".join(f"({', '.join(f'{k:g}' for k in v)})" for v in vecs)
    + f"; {sum(all(k in (0, 1) for k in v) for v in vecs)} of {len(vecs)} are vertices of the box.",
)

# %% [markdown]
# ## Chosen keep probabilities and the resulting accuracies against λ
#
# ```{glue:figure} fig-algorithm1-choices
# :name: fig-algorithm1-choices
#
# {glue:md}`fig-algorithm1-choices_caption`
# ```
#
# ```{glue:figure} fig-algorithm1-front
# :name: fig-algorithm1-front
#
# {glue:md}`fig-algorithm1-front_caption`
# ```

# %% tags=["remove-input"]
cap = dict(profile=profile, data=test, epochs=P.training_text(epochs, train_subset), seeds=seeds,
           n_eval=n_eval, device=P.devices(res.sweep), attacks=res.sweep[res.sweep.method == "magnitude"])
acc_cols = {"clean_acc": "clean", **{f"adv_acc_{a}": P.attack_label(a) for a in attacks}}
fig = TF.choices_figure(ch, modes, layer_choices.keep_columns(ch), acc_cols)
shown = P.figure(fig, "fig-algorithm1-choices", P.caption(
    "Keep probabilities chosen by Algorithm 1 (as printed) and by the minimiser of J, and the accuracy of "
    "the MLP pruned accordingly, against λ (paper Fig. 5)", **cap, extra=f"Algorithm 1: p0 = {p0}, "
    f"tol = {tol:g}, at most {max_iter} iterations; E||x|| = {x_norm:.3f}."), run.out)
fig = TF.chosen_vs_grid_figure(pts[pts.src == "grid"], chosen, P.attack_label(attacks[0]))
shown = P.figure(fig, "fig-algorithm1-front", P.caption(
    f"Chosen configurations vs the uniform magnitude keep grid, clean vs {P.attack_label(attacks[0])} "
    "accuracy",
    **cap, stat="points: means over seeds"), run.out)

# %% [markdown]
# Every choice with its accuracies is in [choices.csv](results/algorithm1/choices.csv); the
# uniform grid in [sweep.csv](results/algorithm1/sweep.csv).

# %% tags=["remove-input"]
pages.table(
    ch, run, "choices", ["mode", "method", "lam", *layer_choices.keep_columns(ch), "clean_acc", "seed"]
)

# %% tags=["remove-input"]
pages.environment(run)
