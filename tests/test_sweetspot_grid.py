"""Known answers of prunerob.studies.sweetspot.grid / verdict / strong.label_rule on synthetic tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunerob.engine.sweep import pack_bits
from prunerob.studies.sweetspot import grid, strong, verdict

N = 400


def _row(seed: int, keep: float, bits: np.ndarray, eps: float = 0.1, method: str = "magnitude",
         attack: str = "fgsm", **extra) -> dict:
    return {"model": "mlp", "dataset": "mnist", "method": method, "attack": attack, "eps": eps,
            "keep_ratio": keep, "seed": seed, "n": N, "clean_acc": 0.9, "adv_acc": float(bits.mean()),
            "clean_bits": pack_bits(np.ones(N, bool)), "adv_bits": pack_bits(bits), **extra}


def _pair(seed: int, n_gain: int, n_loss: int, base_correct: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Unpruned bits with ``base_correct`` correct; pruned = unpruned + n_gain fixed - n_loss broken."""
    base = np.zeros(N, bool)
    base[:base_correct] = True
    pruned = base.copy()
    pruned[base_correct:base_correct + n_gain] = True
    pruned[:n_loss] = False
    return base, pruned


def _table(changes: dict[int, tuple[int, int]], **extra) -> pd.DataFrame:
    rows = []
    for s, (g, lo) in changes.items():
        base, pruned = _pair(s, g, lo)
        rows += [_row(s, 1.0, base, **extra), _row(s, 0.8, pruned, **extra)]
    return pd.DataFrame(rows)


def test_gain_at_keep_one_is_exactly_zero_and_unflagged():
    g = grid.gains(_table({0: (30, 2), 1: (25, 1), 2: (40, 3)}))
    one = g[g.keep_ratio == 1.0].iloc[0]
    assert one.gain == 0.0 and one.significant == "none" and one.p_values == (1.0, 1.0, 1.0)


def test_significance_flag_follows_the_rule_and_mcnemar_is_one_sided():
    from prunerob.analysis.verdict_rule import mcnemar_one_sided

    changes = {0: (30, 2), 1: (25, 1), 2: (40, 3)}
    g = grid.gains(_table(changes)).set_index("keep_ratio").loc[0.8]
    ps = [mcnemar_one_sided(pruned.astype(int) - base)[2] for base, pruned in (_pair(s, a, b) for s, (a, b)
                                                                              in changes.items())]
    assert g.p_values == pytest.approx(tuple(ps))
    assert all(p < 0.05 for p in ps) and g.n_significant == 3
    assert g.gain == pytest.approx(np.mean([(a - b) / N for a, b in changes.values()]))
    assert g.significant == "gain" and g.lower > 0
    # +0.58 pp: below the minimum effect of 1 pp and not resolved -> no flag
    weak = grid.gains(_table({0: (3, 1), 1: (2, 0), 2: (4, 1)})).set_index("keep_ratio").loc[0.8]
    assert weak.gain > 0 and weak.n_significant == 0 and weak.significant == "none"
    # a significant loss
    loss = grid.gains(_table({0: (1, 30), 1: (0, 25), 2: (2, 41)})).set_index("keep_ratio").loc[0.8]
    assert loss.significant == "loss" and loss.n_significant_loss == 3 and loss.n_significant == 0


@pytest.mark.parametrize("gain,lo,hi,want", [(0.02, 0.01, 0.03, "gain"), (0.005, 0.001, 0.009, "none"),
                                             (0.02, -0.01, 0.05, "none"), (-0.02, -0.03, -0.01, "loss"),
                                             (-0.005, -0.009, -0.001, "none"),
                                             (0.02, np.nan, np.nan, "none")])
def test_flag_rule(gain, lo, hi, want):
    assert grid.flag(gain, lo, hi) == want


def test_equal_gains_in_every_seed_are_decided_from_the_bits():
    # both seeds gain exactly 7 images (float noise in the unpruned accuracy of seed 0 does not matter):
    # the within-seed spread of the bits gives the interval, and +1.75 pp is a gain
    t = _table({0: (7, 0), 1: (7, 0)})
    t.loc[(t.seed == 0) & (t.keep_ratio == 1.0), "adv_acc"] = 0.1 + 0.2  # 0.30000000000000004
    g = grid.gains(t).set_index("keep_ratio").loc[0.8]
    assert g.n_significant == 2 and np.isfinite(g.gain_lo) and g.significant == "gain"
    assert g.gain == pytest.approx(7 / N)


def test_mask_draws_are_averaged_per_seed():
    a = _table({0: (30, 2), 1: (25, 1), 2: (40, 3)}, mask_draw=0)
    b = _table({0: (10, 2), 1: (5, 1), 2: (20, 3)}, mask_draw=1)
    g = grid.gains(pd.concat([a, b], ignore_index=True)).set_index("keep_ratio").loc[0.8]
    per_seed = [((30 - 2) + (10 - 2)) / 2 / N, ((25 - 1) + (5 - 1)) / 2 / N, ((40 - 3) + (20 - 3)) / 2 / N]
    assert g.gains == pytest.approx(tuple(per_seed)) and g.n_draws == 2
    assert g.gain == pytest.approx(np.mean(per_seed))
    # per seed, the p-value kept is the lower median over draws: significant in >= half the draws
    pa = grid.gains(a).set_index("keep_ratio").loc[0.8].p_values
    pb = grid.gains(b).set_index("keep_ratio").loc[0.8].p_values
    assert g.p_values == pytest.approx(tuple(min(x, y) for x, y in zip(pa, pb, strict=True)))


def test_label_rule():
    base = {"fgsm_flag": "gain", "fgsm_gain": 0.04, "pgd_flag": "none", "pgd_gain": 0.01,
            "worst-case_flag": "gain", "worst-case_gain": 0.03, "worst-case_hi": 0.05,
            "autoattack_flag": "none", "autoattack_gain": 0.0, "autoattack_hi": 0.012}
    # AutoAttack leaves nothing of the real weak gain: masking
    assert strong.label_rule(base) == "masking"
    assert strong.label_rule({**base, "autoattack_flag": "gain", "autoattack_gain": 0.03}) == "robustness"
    # not resolved but most of the gain left: too little power to call it either way
    assert strong.label_rule({**base, "autoattack_gain": 0.03, "autoattack_hi": 0.06}) == "inconclusive"
    assert strong.label_rule({**base, "autoattack_flag": "not run"}) == "robustness (no AutoAttack)"
    # the label follows the strongest attack run: AutoAttack, even where the worst case shows no gain
    assert strong.label_rule({**base, "autoattack_flag": "gain", "autoattack_gain": 0.03,
                              "worst-case_flag": "none", "worst-case_gain": -0.01}) == "robustness"
    assert strong.label_rule({**base, "autoattack_flag": "not run", "worst-case_flag": "none",
                              "worst-case_gain": 0.0}) == "masking (no AutoAttack)"
    # no weak gain and an upper bound below 1 pp under AutoAttack: no gain
    assert strong.label_rule({**base, "fgsm_flag": "none", "autoattack_hi": 0.008}) == "no gain"
    assert strong.label_rule({**base, "fgsm_flag": "none"}) == "inconclusive"  # +1.2 pp not excluded
    untested = {**base, "worst-case_flag": "not run", "autoattack_flag": "not run"}
    assert strong.label_rule(untested) == "untested"


def test_worst_case_is_the_per_example_and_of_the_attacks():
    a = np.zeros(N, bool)
    a[:100] = True
    b = np.zeros(N, bool)
    b[50:200] = True
    rows = pd.DataFrame([_row(0, 0.8, a, attack="pgd-50x5", mask_draw=0),
                         _row(0, 0.8, b, attack="transfer", mask_draw=0),
                         _row(1, 0.8, a, attack="pgd-50x5", mask_draw=0)])  # seed 1: no transfer row
    w = strong.worst_case_rows(rows)
    assert len(w) == 1 and w.attack.iloc[0] == "worst-case"
    assert w.adv_acc.iloc[0] == pytest.approx(50 / N)


def test_bonferroni_flag_is_stricter_and_counts_the_family():
    # 3 seeds gaining 19, 8 and 13 net images of 400: +3.3 pp, a gain per cell, not after the correction
    # over 40 cells
    t = pd.concat([_table({0: (20, 1), 1: (8, 0), 2: (14, 1)}, eps=e) for e in np.linspace(0.01, 0.4, 40)],
                  ignore_index=True)
    g = grid.gains(t)
    tested = g[g.keep_ratio < 1.0]
    assert (tested.significant == "gain").all() and (tested.family_size == 40).all()
    assert (tested.significant_bonf == "none").all()
    # a very large gain survives the correction
    big = grid.gains(pd.concat([_table({0: (80, 1), 1: (85, 0), 2: (90, 2)}, eps=e)
                                for e in np.linspace(0.01, 0.4, 40)], ignore_index=True))
    assert (big[big.keep_ratio < 1.0].significant_bonf == "gain").all()


def test_select_cells_takes_the_largest_mean_gains():
    t = pd.concat([_table({0: (30, 2), 1: (25, 1), 2: (40, 3)}, eps=0.1),
                   _table({0: (60, 59), 1: (50, 48), 2: (70, 66)}, eps=0.2)], ignore_index=True)
    cells = strong.select_cells(grid.gains(t), 2)
    assert list(cells.eps) == [0.1, 0.2] and list(cells.selected) == [
        "largest mean gain; a real gain", "largest mean gain; not a real gain"]
    assert len(strong.select_cells(grid.gains(t), 2, fill=False)) == 1


def _verdict_inputs(changes):
    g = grid.gains(_table(changes, eps=4 / 255, train_epochs=30, width=512))
    return g


def test_verdict_rule_on_synthetic_tables():
    g = _verdict_inputs({0: (30, 2), 1: (25, 1), 2: (40, 3)})
    labels = pd.DataFrame([{"method": "magnitude", "keep_ratio": 0.8, "eps": 4 / 255, "label": "masking"}])
    mech = pd.DataFrame([{"metric": "grad_l1", "rho": -0.8, "p": 0.001, "rho_within": -0.6, "p_within": 0.01,
                          "points": 12, "supported": True},
                         {"metric": "margin", "rho": 0.1, "p": 0.7, "rho_within": 0.0, "p_within": 0.9,
                          "points": 12, "supported": False}])
    text = verdict.verdict(g, labels, None, mech, main={"train_epochs": 30, "width": 512})
    assert text.startswith("**Not evidence.** No models table")
    assert "1 of 1" in text and "holds by the verdict rule" in text
    assert "keep 0.8" in text and "**masking**" in text
    assert "Fig. 2 (MLP panel): the correct run has a real gain" in text
    assert "grad_l1 (Spearman rho -0.80" in text and "margin (" not in text and "n = 12 points" in text
    # no real gain: the figure is not reproduced, and a pitfall with the shape is named with numbers
    g0 = _verdict_inputs({0: (3, 1), 1: (2, 0), 2: (4, 1)})
    shapes = pd.DataFrame([{"pitfall": "subset_per_keep", "label": "(d) subset per keep", "attack": "fgsm",
                            "adv_dense": 0.80, "keep_best": 0.9, "adv_best": 0.83, "gain": 0.03,
                            "gain_lo": 0.01, "gain_hi": 0.05, "n_seeds": 3, "fig2_shape": True}])
    text0 = verdict.verdict(g0, None, shapes, None, main={"train_epochs": 30, "width": 512})
    assert "0 of 1" in text0 and "not reproduced" in text0
    assert "(d) subset per keep reproduces the shape" in text0 and "83.0%" in text0


def _models(acc):
    return pd.DataFrame([{"arch": "mlp", "dataset": "mnist", "seed": s, "test_acc": a, "role": "main"}
                         for s, a in enumerate(acc)])


def test_verdict_says_not_evidence_below_competence_and_reads_the_committed_tables(tmp_path):
    g = _verdict_inputs({0: (30, 2), 1: (25, 1), 2: (40, 3)})
    bad = verdict.verdict(g, None, None, None, models=_models([0.98, 0.93]))
    assert bad.startswith("**Not evidence.**") and "93.0% < 97.0%" in bad
    good = verdict.verdict(g, None, None, None, models=_models([0.98, 0.981]))
    assert good.startswith("**Evidence.**")
    # from_tables: the same text from CSVs, headed by the profile
    g.to_csv(tmp_path / "gains_main.csv", index=False)
    _models([0.98, 0.93]).to_csv(tmp_path / "models.csv", index=False)
    pd.DataFrame([{"profile": "quick", "epochs": 30, "seeds": "[0, 1]", "device": "cpu",
                   "cnn_note": "cnn skipped"}]).to_csv(tmp_path / "run_info.csv", index=False)
    text = verdict.from_tables(tmp_path)
    assert text.startswith("From the committed tables of the `quick` profile") and "Not evidence" in text
    assert bad.split("\n\n")[1] in text and "cnn skipped" in text
    assert "not been run" in verdict.from_tables(tmp_path / "missing")


def test_verdict_does_not_borrow_the_main_models_label_for_another_width():
    g = grid.gains(_table({0: (30, 2), 1: (25, 1), 2: (40, 3)}, eps=0.1, train_epochs=30, width=128))
    labels = pd.DataFrame([{"method": "magnitude", "keep_ratio": 0.8, "eps": 0.1, "label": "robustness"}])
    text = verdict.verdict(g, labels, None, None, main={"train_epochs": 30, "width": 512})
    assert "width 128" in text and "not tested (strong attacks run on the main models only)" in text
    assert "**robustness**" in verdict.verdict(g, labels, None, None, main={"train_epochs": 30, "width": 128})


def test_mlp_config_shares_the_paper_checkpoints():
    from prunerob.core.train import TrainConfig
    from prunerob.studies.sweetspot.models import mlp_config

    assert mlp_config(30, 3).hash() == TrainConfig.paper("mlp", "mnist", epochs=30, seed=3).hash()
    assert mlp_config(3, 0).hash() == TrainConfig.paper("mlp", "mnist", epochs=3, seed=0).hash()
    assert mlp_config(30, 3, width=128).hidden == (128,)
    assert mlp_config(30, 3, width=128).hash() != mlp_config(30, 3).hash()


def test_heatmap_marks_significance():
    import matplotlib

    matplotlib.use("Agg")
    from prunerob.studies.sweetspot import figures

    t = pd.concat([_table({0: (30, 2), 1: (25, 1), 2: (40, 3)}, eps=e) for e in (0.05, 0.1)],
                  ignore_index=True)
    g = grid.gains(t)
    fig = figures.heatmap(g, ["fgsm"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    # the unpruned row (p = 1, the baseline, 0 by definition) is not drawn
    assert texts == ["+7.4*", "+7.4*"] and "+0.0" not in texts
