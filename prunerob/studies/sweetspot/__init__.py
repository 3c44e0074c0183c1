"""Where the sweet spot comes from (issue 13): the paired robustness gain of pruning mapped over
attack budget, attack strength, pruning rule and training, the implementation pitfalls that can
fake it, the mechanism behind it, and a verdict computed from the tables (paper Fig. 2, Sec. 6.3).

Modules: :mod:`.models` (training configs and the sweeps of trained MNIST MLPs / CIFAR-10 CNN4s
through :func:`prunerob.engine.sweep.run_sweep`), :mod:`.grid` (paired gain over keep x eps with
significance and a Bonferroni correction per table), :mod:`.strong` (PGD-50 x 5 restarts,
transfer, their per-example worst case, AutoAttack and the per-cell label), :mod:`.pitfalls`
(four pitfalls reproduced on purpose, each labelled as wrong), :mod:`.mechanism` (margins,
input-gradient norms, realised-mask Lipschitz bound vs gain, across and within keep ratios),
:mod:`.verdict` (the verdict text, also from the committed tables) and :mod:`.figures`.
"""

from __future__ import annotations

__all__ = ["figures", "grid", "mechanism", "models", "pitfalls", "strong", "verdict"]
