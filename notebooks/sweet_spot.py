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
# # Where the sweet spot comes from
#
# **Belongs to** the chapter {doc}`The empirical claims <../empirical>`: where the sweet spot of its figures
# comes from.
#
# **The paper claims** (Sec. 6.3, Fig. 2) that attacked accuracy first rises as weights are pruned,
# then falls: a sweet spot near $p = 0.9$ for the MNIST MLP at $\epsilon = 4/255$. Our other pages do
# not see it at that budget. This chapter maps the **paired robustness gain** of pruning, attacked
# accuracy of the pruned model minus that of the unpruned one on the same examples and seed, over
# the attack budget, the attack strength (to separate robustness from gradient masking), the pruning
# rule, training length and width; it reproduces on purpose four implementation pitfalls that could
# make a sweet spot appear, and tests a mechanism. The verdict below is computed from the tables of
# this page by the rules stated in `prunerob.studies.sweetspot.verdict`.
#
# Layer-wise magnitude pruning at ε ≈ 0.1, where five seeds leave the gain open, is taken up with more
# seeds, AutoAttack and security curves on the next page, {doc}`A real gain at ε ≈ 0.1? <eps01_gain>`;
# the other rules at ε = 0.1 (global magnitude among them) are decided here, in the verdict below.

# %% tags=["parameters"]
profile: str = "quick"  # settings label: quick, cpu or paper (`prunerob params NAME` lists them)
device: str = "auto"  # torch device: auto (CUDA when available), cpu or cuda
threads: "int or None" = 1  # torch CPU threads (None: torch's default, all cores)
out_dir: str = "results/sweet_spot"  # folder for the result tables and figures (relative to the notebook)
data_root: "str or None" = None  # data folder (None: $PRUNEROB_DATA or the default)
download: bool = False  # allow torchvision downloads when the data is missing
seeds: list = [0, 1]  # MNIST MLP seeds of the main grid, one paper-recipe model each (App. I)
epochs: int = 2  # training epochs of the main MLP (the paper: 30)
train_subset: "int or None" = 10000  # training images of every MLP (None: all 60,000)
n_eval: int = 500  # test images of the main grid (the first n of a fixed permutation)
keeps: list = [1.0, 0.9, 0.7, 0.5]  # keep ratios p of every sweep
eps_grid: list = ["0", "4/255", "8/255", "0.05", "0.1", "0.15", "0.2", "0.3"]  # L-inf budgets (pixel units)
attacks: list = ["fgsm", "pgd"]  # weak attacks of the grid (App. I: FGSM, PGD-5)
rules: list = ["magnitude_global", "random", "bernoulli_uniform", "taylor"]  # pruning rules besides magnitude
rule_eps: list = ["4/255", "0.1"]  # budgets of the rule comparison
rule_attacks: list = ["fgsm"]  # attacks of the rule comparison
rule_n: int = 300  # test images of the rule comparison
mask_draws: int = 2  # masks averaged per seed for stochastic rules (random, Bernoulli)
train_epochs: list = [1, 2]  # training lengths compared (undertrained vs converged)
widths: list = [128, 512]  # MLP hidden widths compared (512: the paper's)
train_seeds: list = [0, 1]  # seeds of the training / width comparison
train_eps: list = ["4/255", "0.1"]  # budgets of the training / width comparison
train_n: int = 300  # test images of the training / width comparison
strong_cells: int = 2  # cells (method, keep, eps) re-attacked by PGD-50x5 and transfer
strong_n: int = 200  # test images of PGD-50x5 and transfer
strong_seeds: list = [0, 1]  # seeds of PGD-50x5 and transfer
aa_cells: int = 1  # of those, cells also run under AutoAttack (plus keep 1.0)
aa_n: int = 32  # AutoAttack images (fixed subset: first n of the same permutation)
aa_seeds: list = [0]  # AutoAttack seeds
pitfall_attacks: list = ["fgsm"]  # attacks of the pitfall comparison (at 4/255, magnitude)
pitfall_n: int = 500  # test images of the pitfall comparison
mech_n: int = 500  # test images of the mechanism metrics
mech_eps: str = "4/255"  # budget of the mechanism correlation
run_cnn: bool = True  # CIFAR-10 CNN4 part (gated on the competence threshold)
cnn_epochs: int = 1  # CNN4 training epochs
cnn_train_subset: "int or None" = 2000  # CNN4 training images (None: all)
cnn_seeds: list = [0]  # CNN4 seeds
cnn_n: int = 100  # CNN4 test images
cnn_eps: list = ["4/255", "8/255"]  # CNN4 budgets
cnn_keeps: list = [1.0, 0.8, 0.6]  # CNN4 keep ratios

# %% tags=["remove-input", "remove-stderr"]
import pandas as pd

from prunerob.config import format_eps, parse_eps
from prunerob.render import plotting as P
from prunerob.studies import pages, units
from prunerob.studies.sweetspot import figures, grid, mechanism, models, pitfalls, strong, verdict

run = pages.setup("sweet_spot", globals(), profile=profile, device=device, threads=threads, out_dir=out_dir)
dev, test = str(run.device), models.mnist("test", data_root)
common = dict(device=dev, data_root=data_root, train_subset=train_subset)
# every computed table is a result-store unit (prunerob.studies.units.call): it runs only when missing
U = dict(unit_device=run.device, unit_data=[test])
main_rows = units.call(models.sweep_mlps, "sweetspot_sweep", **U, adopt_file="sweep_main.csv",
                       epochs=[epochs], widths=[512], seeds=seeds, methods=["magnitude"], keeps=keeps,
                       attacks=attacks, eps=eps_grid, n=n_eval, **common)
rule_rows = units.call(models.sweep_mlps, "sweetspot_sweep", **U, adopt_file="sweep_rules.csv",
                       epochs=[epochs], widths=[512], seeds=seeds, methods=["magnitude", *rules], keeps=keeps,
                       attacks=rule_attacks, eps=rule_eps, n=rule_n, mask_draws=mask_draws, **common)
train_rows = units.call(models.sweep_mlps, "sweetspot_sweep", **U, adopt_file="sweep_training.csv",
                        epochs=train_epochs, widths=widths, seeds=train_seeds, methods=["magnitude"],
                        keeps=keeps, attacks=attacks, eps=train_eps, n=train_n, **common)
main_g, rule_g, train_g = grid.gains(main_rows), grid.gains(rule_rows), grid.gains(train_rows)
cells = strong.select_cells(grid.combine(main_g, rule_g), strong_cells)
strong_raw = units.call(strong.strong_rows, "sweetspot_strong", **U, adopt_file="strong_rows.csv",
                        uses=["attack:pgd", "attack:cw", "attack:autoattack", "attack:fgsm",
                              "method:magnitude", *(f"method:{r}" for r in rules)],
                        cells=cells[["method", "keep_ratio", "eps"]], epochs=epochs, seeds=strong_seeds,
                        n=strong_n, aa_seeds=aa_seeds, aa_n=aa_n, aa_cells=aa_cells, mask_draws=mask_draws,
                        **common)
strong_g = grid.gains(strong_raw)
labels = strong.label_cells(grid.combine(main_g, rule_g), strong_g, strong_raw)
pit_rows = units.call(pitfalls.pitfall_table, "sweetspot_pitfalls", **U, adopt_file="pitfall_rows.csv",
                      epochs=epochs, seeds=seeds, method="magnitude", keeps=keeps, attacks=pitfall_attacks,
                      eps="4/255", n=pitfall_n, **common)
pit_g = grid.gains(pit_rows)
shapes = pitfalls.fig2_shape(pit_g, pit_rows)
mech = units.call(mechanism.mechanism_table, "sweetspot_mechanism", **U, adopt_file="mechanism.csv",
                  uses=["attack:fgsm"], epochs=epochs, seeds=seeds, method="magnitude", keeps=keeps,
                  eps=mech_eps, n=mech_n, **common)
corr = mechanism.correlate(mech, main_rows, "fgsm", parse_eps(mech_eps))
if run_cnn:
    cnn_value = units.value(
        "sweetspot_cnn", dict(epochs=cnn_epochs, train_subset=cnn_train_subset, seeds=cnn_seeds,
                              keeps=cnn_keeps, attacks=attacks, eps=cnn_eps, n=cnn_n),
        lambda: (lambda r: {"rows": units.encode(r[0]), "note": r[1]})(models.cnn_part(
            epochs=cnn_epochs, train_subset=cnn_train_subset, seeds=cnn_seeds, keeps=cnn_keeps,
            attacks=attacks, eps=cnn_eps, n=cnn_n, device=dev, data_root=data_root)),
        device=run.device, code=["prunerob.studies.sweetspot.models"],
        uses=["method:magnitude", *(f"attack:{a}" for a in attacks)])
    cnn_rows, cnn_note = units.frame(cnn_value["rows"]), cnn_value["note"]
else:
    cnn_rows, cnn_note = None, "CNN4 part not run."
pages.save_units(run)
models_t = models.models_table(main_rows, "main", profile, train_subset)
models_tr = models.models_table(train_rows, "training axis", profile, train_subset)
run_info = pd.DataFrame([dict(profile=profile, epochs=epochs, seeds=str(seeds), device=P.devices(main_rows),
                              cnn_note=cnn_note)])
for name, t in dict(models=models_t, models_training=models_tr, run_info=run_info,
                    sweep_main=main_rows, sweep_rules=rule_rows, sweep_training=train_rows, gains_main=main_g,
                    gains_rules=rule_g, gains_training=train_g, strong_rows=strong_raw, gains_strong=strong_g,
                    strong_labels=labels, pitfall_rows=pit_rows, gains_pitfalls=pit_g, pitfall_shapes=shapes,
                    mechanism=mech, mechanism_correlation=corr).items():
    P.save_table(t, run.out, name)
if cnn_rows is not None and not cnn_rows.empty:  # the CNN4 models' accuracies (prunerob.analysis.canonical)
    P.save_table(cnn_rows, run.out, "sweep_cnn")

# %% [markdown]
# ## Verdict
#
# Computed from the tables below by the rules of `prunerob.studies.sweetspot.verdict`: the run is evidence
# only when the main MLPs pass the competence threshold of `prunerob.analysis.competence`; a real gain is a
# cell whose gain holds by the verdict rule stated on the findings page (`prunerob.analysis.verdict_rule`),
# with its table as the family searched: the one-sided lower bound of the paired gain, pooled over
# seeds and test examples and Bonferroni-corrected over the table's cells, lies above zero and the
# mean gain is at least 1 pp. Stronger attacks are run at the cells with the largest mean gains,
# real or not, and each cell's label follows the strongest attack run there (AutoAttack, else the
# per-example worst case of PGD-50x5 and the transfer attack). The findings page recomputes this
# text from the committed sweeps (`verdict.from_tables`).

# %% tags=["remove-input"]
all_g = grid.combine(main_g, rule_g, train_g)
pages.say(f"**This run**: profile `{profile}`, MNIST MLP {epochs} epochs, seeds {seeds}, device "
          f"{pages.devices(main_rows)}.",
          verdict.verdict(all_g, labels, shapes, corr, main={"train_epochs": epochs, "width": 512},
                          notes=(f"**CIFAR-10.** {cnn_note}",), models=models_t))

# %% tags=["remove-input"]
from prunerob.analysis import canonical

pages.say(canonical.notes_for("sweet_spot", run.out.parent))

# %% [markdown]
# ## Paired gain over keep ratio and budget
#
# ```{glue:figure} fig-sweet_spot-heatmap
# :name: fig-sweet_spot-heatmap
#
# {glue:md}`fig-sweet_spot-heatmap_caption`
# ```

# %% tags=["remove-input"]
cap = dict(profile=profile, data=[test], seeds=seeds, device=pages.devices(main_rows),
           epochs=P.training_text(epochs, train_subset))
shown = P.figure(figures.heatmap(main_g, attacks), "fig-sweet_spot-heatmap",
                 P.caption("Paired gain of magnitude pruning of the MNIST MLP over keep ratio x eps", **cap,
                           n_eval=n_eval, attacks=figures.attack_grid_text(main_rows),
                           stat=f"cells: mean over seeds {seeds} of the "
                           "paired gain; * / \u2020: gain / loss by the verdict rule per cell, uncorrected "
                           "(one-sided 95% bound on one side of 0 and |mean| >= 1 pp)"), run.out)

# %% [markdown]
# ## Stronger attacks: robustness or gradient masking?
#
# The selected cells (the largest mean gains under FGSM or PGD-5, whether or not the weak gain is
# a real gain; `selected` says which) are attacked again by PGD-50 with 5 restarts (per example the
# best restart), by a transfer attack (PGD-50x5 examples crafted on the unpruned model of the same
# seed, evaluated on the same images with the same masks), by the per-example worst case of the two
# and, for the first `aa_cells`, by AutoAttack (standard) on a fixed subset. Label rule
# (`prunerob.studies.sweetspot.labels.label_rule`), following the strongest attack run at the cell
# (AutoAttack, else the worst case): robustness when the gain holds there by the verdict rule
# (corrected over the labelled cells); masking when a real weak gain shrinks to at most half; no
# gain when the upper bound excludes 1 pp; inconclusive otherwise.

# %% tags=["remove-input"]
pages.say(f"Cells: {len(cells)}; PGD-50x5 and transfer on {strong_n} images, seeds {strong_seeds}; "
          f"AutoAttack on {aa_n} images, seeds {aa_seeds}; device {pages.devices(strong_raw)}; "
          f"profile `{profile}`.")
pages.table(cells, run, "strong_cells", rows=20)
pages.table(labels, run, "strong_labels", ["method", "keep_ratio", "eps_label", "fgsm_gain", "pgd_gain",
                                           "pgd-50x5_gain", "transfer_gain", "worst-case_gain",
                                           "worst-case_lo", "autoattack_gain", "autoattack_lo",
                                           "transfer_stronger", "label"], rows=20)

# %% [markdown]
# ## Pitfalls reproduced on purpose (eps = 4/255, magnitude pruning)
#
# Every curve but *correct* is **wrong on purpose**: (a) eps applied to the normalised input, which
# is then clamped to [0, 1] as torchattacks does; (a2) the budget part of (a) alone; (b) the model
# attacked in train mode; (c) no clamping to [0, 1]; (d) a different test subset per keep ratio.
#
# ```{glue:figure} fig-sweet_spot-pitfalls
# :name: fig-sweet_spot-pitfalls
#
# {glue:md}`fig-sweet_spot-pitfalls_caption`
# ```

# %% tags=["remove-input"]
labels_pf = {k: v.label for k, v in pitfalls.PITFALLS.items()}
shown = P.figure(figures.pitfall_panels(pit_rows, labels_pf, pitfall_attacks[0]), "fig-sweet_spot-pitfalls",
                 P.caption("Pitfalls (wrong on purpose) vs the correct run, MNIST MLP, eps = 4/255",
                           **cap,
                           n_eval=pitfall_n, attacks=P.attack_label(pitfall_attacks[0]),
                           extra="grey: the correct run, in every panel; red: the pitfall"), run.out)
pages.say("\n".join(pitfalls.describe(shapes)))

# %% [markdown]
# ## Pruning rules
#
# ```{glue:figure} fig-sweet_spot-rules
# :name: fig-sweet_spot-rules
#
# {glue:md}`fig-sweet_spot-rules_caption`
# ```

# %% tags=["remove-input"]
rule_g["setting"] = rule_g.attack.map(P.attack_label) + " " + rule_g.eps.map(format_eps)
shown = P.figure(figures.gain_curves(rule_g, "method", "setting", P.METHOD_LABELS), "fig-sweet_spot-rules",
                 P.caption("Paired gain per pruning rule, MNIST MLP", **cap, n_eval=rule_n,
                           attacks=figures.attack_grid_text(rule_rows),
                           stat=f"lines: mean over seeds {seeds} (stochastic rules: of the mean over "
                           f"{mask_draws} mask draws per seed), bands: 95% t-interval, stars: gain by the "
                           "verdict rule per cell, uncorrected"),
                 run.out)
pages.say("\n".join(verdict.best_lines(rule_g, "method")))

# %% [markdown]
# ## Training length and width
#
# ```{glue:figure} fig-sweet_spot-training
# :name: fig-sweet_spot-training
#
# {glue:md}`fig-sweet_spot-training_caption`
# ```

# %% tags=["remove-input"]
train_g["model"] = train_g.train_epochs.astype(str) + " epochs, width " + train_g.width.astype(str)
train_g["setting"] = train_g.attack.map(P.attack_label) + " " + train_g.eps.map(format_eps)
shown = P.figure(figures.gain_curves(train_g, "model", "setting"), "fig-sweet_spot-training",
                 P.caption("Paired gain by training length and width, MNIST MLP (magnitude)", **{
                     **cap, "seeds": train_seeds, "epochs": f"{train_epochs} epochs, widths {widths}"},
                     n_eval=train_n, attacks=figures.attack_grid_text(train_rows)), run.out)
pages.say("\n".join(verdict.best_lines(train_g, "model")))

# %% [markdown]
# ## Mechanism
#
# ```{glue:figure} fig-sweet_spot-mechanism
# :name: fig-sweet_spot-mechanism
#
# {glue:md}`fig-sweet_spot-mechanism_caption`
# ```

# %% tags=["remove-input"]
shown = P.figure(figures.mechanism_curves(mech, ["margin", "grad_l1", "radius_ok", "lipschitz"]),
                 "fig-sweet_spot-mechanism",
                 P.caption("Clean margin, mean ||grad_x CE||_1, first-order robust fraction at "
                           f"{mech_eps} and realised-mask Lipschitz bound vs keep ratio (magnitude)", **cap,
                           n_eval=mech_n), run.out)
pages.table(corr, run, "mechanism_correlation", rows=10)

# %% [markdown]
# ## CIFAR-10 CNN4

# %% tags=["remove-input"]
pages.say(cnn_note)
if cnn_rows is not None and not cnn_rows.empty:
    pages.say(f"Paired gain of magnitude pruning, seeds {cnn_seeds}, {cnn_n} test images; attacks: "
              f"{figures.attack_grid_text(cnn_rows)}; device {P.devices(cnn_rows)}; profile `{profile}`. "
              "Interval: pooled over seeds and test examples (two-sided 95%, uncorrected); with one seed "
              "over its test examples only, and no verdict. Column `significant`: the verdict rule per cell, "
              "one-sided 95%, uncorrected.")
    pages.table(grid.gains(cnn_rows).assign(eps=lambda d: d.eps.map(format_eps)), run, "gains_cnn",
                ["attack", "eps", "keep_ratio", "gain", "gain_lo", "gain_hi", "significant"], rows=30)

# %% [markdown]
# Every table of this page is in the folder `results/sweet_spot/` (for example the main grid,
# [gains_main.csv](results/sweet_spot/gains_main.csv)): the sweeps
# (`sweep_*.csv`, with per-example `clean_bits` / `adv_bits`), the gains (`gains_*.csv`), the
# strong-attack rows and labels, the pitfall rows and shapes, and the mechanism metrics.

# %% tags=["remove-input"]
pages.environment(run)
