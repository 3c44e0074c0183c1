"""Tests of prunerob.analysis.stats: paired gains, exact McNemar, intervals (known answers computed by
hand)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunerob.analysis import stats as S
from prunerob.config import ConfigError

# two-sided 95% Student-t quantiles from a printed table
T95 = {1: 12.706, 2: 4.303, 4: 2.776}


def bits_hex(v) -> str:
    return np.packbits(np.asarray(v, dtype=bool)).tobytes().hex()


def test_t_interval_known_answer_and_degenerate_cases():
    m, lo, hi = S.t_interval([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(T95[2] * 1.0 / math.sqrt(3), rel=1e-3)
    assert m - lo == pytest.approx(hi - m)
    # one value or all-equal values: no interval (a zero-width interval would only repeat 1/n)
    assert math.isnan(S.t_interval([0.005])[1])
    m, lo, hi = S.t_interval([0.005, 0.005, 0.005])
    assert m == pytest.approx(0.005) and math.isnan(lo) and math.isnan(hi)


def test_decode_bits_round_trip_and_length_check():
    v = np.array([1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1], dtype=bool)  # 11 bits: not a multiple of 8
    assert (S.decode_bits(bits_hex(v), v.size) == v).all()
    assert S.decode_bits(float("nan"), 11) is None
    with pytest.raises(ConfigError):
        S.decode_bits(bits_hex(v), 40)


@pytest.mark.parametrize("n_gain, n_loss, p", [
    (0, 0, 1.0),
    (1, 0, 1.0),                                  # one discordant pair: P(X >= 1) + P(X <= 0) = 1
    (8, 0, 2 * 0.5 ** 8),                         # all 8 discordant pairs one way
    (7, 3, 2 * (120 + 45 + 10 + 1) / 1024),       # 2 * P(X >= 7), X ~ Bin(10, 1/2)
    (3, 7, 2 * (120 + 45 + 10 + 1) / 1024),       # symmetric
])
def test_mcnemar_exact_known_answers(n_gain, n_loss, p):
    # build paired vectors with the given discordant counts plus some concordant pairs
    after = np.r_[np.ones(n_gain), np.zeros(n_loss), np.ones(5), np.zeros(4)].astype(bool)
    before = np.r_[np.zeros(n_gain), np.ones(n_loss), np.ones(5), np.zeros(4)].astype(bool)
    g, l_, pv = S.mcnemar_exact(after, before)
    assert (g, l_) == (n_gain, n_loss)
    assert pv == pytest.approx(p, rel=1e-9)


def test_paired_bootstrap_contains_gain_and_collapses_when_constant():
    rng = np.random.default_rng(1)
    before = rng.random(400) < 0.6
    after = before.copy()
    after[:30] = True  # 30 more correct (some were already correct)
    g, lo, hi = S.paired_bootstrap(after, before, n_boot=500)
    assert g == pytest.approx(after.mean() - before.mean())
    assert lo <= g <= hi and lo < hi
    g, lo, hi = S.paired_bootstrap(before, before, n_boot=50)
    assert g == lo == hi == 0.0


def _table(with_bits: bool = True, n: int = 10) -> pd.DataFrame:
    """Two seeds, keeps 1.0 / 0.9 / 0.5, hand-made correctness vectors."""
    correct = {  # (seed, keep) -> adv correctness over n examples
        (0, 1.0): [1, 1, 1, 0, 0, 0, 0, 0, 1, 0],   # 4 / 10
        (0, 0.9): [1, 1, 1, 1, 1, 0, 0, 0, 1, 0],   # 6 / 10  (+2 discordant, 0 lost)
        (0, 0.5): [1, 0, 0, 0, 0, 0, 0, 0, 1, 0],   # 2 / 10
        (1, 1.0): [1, 1, 0, 0, 0, 0, 0, 0, 0, 1],   # 3 / 10
        (1, 0.9): [1, 1, 0, 1, 1, 1, 1, 0, 0, 0],   # 6 / 10  (+4, -1)
        (1, 0.5): [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],   # 1 / 10
    }
    rows = []
    for (seed, keep), v in correct.items():
        r = {"model": "m", "dataset": "d", "method": "magnitude", "attack": "fgsm", "eps": 4 / 255,
             "keep_ratio": keep, "seed": seed, "n": n, "adv_acc": sum(v) / n,
             "clean_acc": 0.9 - (1 - keep) / 10}
        if with_bits:
            r["adv_bits"] = bits_hex(v)
        rows.append(r)
    return pd.DataFrame(rows)


def test_paired_gains_known_answer():
    from prunerob.analysis import verdict_rule as R

    g = S.paired_gains(_table()).set_index("keep_ratio")
    r = g.loc[0.9]
    assert r.gains == pytest.approx((0.2, 0.3))
    assert r.gain == pytest.approx(0.25)
    # the pooled estimate of the per-example differences (examples x seeds), two-sided 95% pointwise
    t = _table()
    bits = {(s, k): S.decode_bits(b, 10) for s, k, b in zip(t.seed, t.keep_ratio, t.adv_bits, strict=True)}
    d = np.stack([bits[(s, 0.9)].astype(int) - bits[(s, 1.0)] for s in (0, 1)], axis=1)
    p = R.pooled(d)
    half = float(st.t.ppf(0.975, p["df"])) * float(p["se"])
    assert (r.gain_lo, r.gain_hi) == pytest.approx((0.25 - half, 0.25 + half), rel=1e-9)
    assert r.interval == "pooled over 2 seeds and 10 examples" and r.test == "mcnemar exact, one-sided"
    # one-sided McNemar toward a gain: seed 0 gained 2, lost 0 -> 0.5^2; seed 1 gained 4, lost 1 -> P(X >= 4)
    assert r.p_values == pytest.approx((0.25, 6 / 32))
    assert r.n_significant == 0 and r.n_significant_loss == 0
    assert r.resolution == pytest.approx(0.1) and r.n_seeds == 2 and r.family == 2
    assert g.loc[1.0].gain == 0.0 and g.loc[1.0].p_values == (1.0, 1.0)
    assert r.clean_gain == pytest.approx(-0.01)


def test_paired_gains_without_bits_says_so():
    g = S.paired_gains(_table(with_bits=False)).set_index("keep_ratio")
    assert g.loc[0.9].test == "none: no per-example bits"
    assert all(math.isnan(p) for p in g.loc[0.9].p_values)
    assert g.loc[0.9].gain == pytest.approx(0.25)
    assert g.loc[0.9].interval == "t over seeds (no per-example bits)"


def test_paired_gains_one_seed_has_only_an_interval_over_its_examples():
    d = _table()
    g = S.paired_gains(d[d.seed == 0]).set_index("keep_ratio").loc[0.9]
    assert g.interval == "bootstrap over the 10 examples of one seed (no spread between seeds)"
    assert g.gain == pytest.approx(0.2) and g.gain_lo <= 0.2 <= g.gain_hi
    assert math.isnan(g.se) and math.isnan(g.lower)  # no interval over seeds: the rule decides nothing
    g = S.paired_gains(d[d.seed == 0].drop(columns="adv_bits")).set_index("keep_ratio").loc[0.9]
    assert g.interval.startswith("none") and math.isnan(g.gain_lo)


def test_sweet_spot_picks_best_keep_with_paired_gain():
    s = S.sweet_spot(_table()).iloc[0]
    assert s.keep_best == 0.9 and s.keep_dense == 1.0
    assert s.adv_best == pytest.approx(0.6) and s.adv_dense == pytest.approx(0.35)
    assert s.adv_gain == pytest.approx(0.25)
    assert s.test == "mcnemar exact, one-sided" and s.n_seeds == 2
    assert s.verdict in ("holds", "fails", "inconclusive") and s.reason


def test_one_image_resolution_is_not_printed_as_an_interval():
    """Issue 10: '+0.5 pp (95% CI +0.5 to +0.5)' with n = 200 must not appear."""
    rows = []
    for seed in range(3):
        for keep, correct in ((1.0, 50), (0.8, 51)):
            rows.append({"model": "cnn4", "dataset": "cifar10", "method": "magnitude", "attack": "fgsm",
                         "eps": 4 / 255, "keep_ratio": keep, "seed": seed, "n": 200, "adv_acc": correct / 200,
                         "clean_acc": 0.5})
    s = S.sweet_spot(pd.DataFrame(rows)).iloc[0]
    assert s.adv_gain == pytest.approx(0.005)
    assert math.isnan(s.adv_gain_lo) and math.isnan(s.adv_gain_hi)
    txt = S.gain_text(s)
    assert "CI" not in txt and "no interval" in txt and "1/200" in txt
    assert not S.resolved_above_zero(s)


def test_depth_trend_and_improvement_summary():
    rows = []
    best = {"mlp": 0.9, "mlp3": 0.8, "mlp4": 0.7}
    for model, kb in best.items():
        for seed in range(2):
            for keep in (1.0, 0.9, 0.8, 0.7):
                adv = 0.5 + (0.1 if keep == kb else 0.0) + 0.01 * seed
                rows.append({"model": model, "dataset": "mnist", "method": "magnitude", "attack": "fgsm",
                             "eps": 4 / 255, "keep_ratio": keep, "seed": seed, "n": 100, "adv_acc": adv,
                             "clean_acc": 0.97})
    df = pd.DataFrame(rows)
    t = S.depth_trend(df).iloc[0]
    assert t.keep_best == (0.9, 0.8, 0.7) and t.decreases
    df2 = df.copy()
    df2.loc[(df2.model == "mlp4"), "adv_acc"] = 0.5  # deepest: no gain -> best keep 1.0
    assert not S.depth_trend(df2).iloc[0].decreases
    summ = S.improvement_summary(df)
    # every seed moves by exactly +0.1 and there are no per-example bits: positive in all 3 settings,
    # but no interval (zero spread), so no verdict
    assert (summ["settings"], summ["positive"], summ["holds"], summ["inconclusive"]) == (3, 3, 0, 3)
    assert t.verdicts == ("inconclusive",) * 3 and t.holds == 0


def test_second_layer_share_and_algorithm1_front():
    ch = pd.DataFrame({
        "mode": ["layerwise"] * 3 + ["uniform"], "method": ["algorithm1"] * 4, "lam": [0.0, 0.3, 0.6, 0.3],
        "keep_1": [1.0, 0.9, 0.5, 0.8], "keep_2": [1.0, 0.5, 0.6, 0.8],
        "clean_acc": [0.9, 0.95, 0.5, 0.8], "adv_acc_fgsm": [0.5, 0.9, 0.2, 0.6]})
    assert S.second_layer_share(ch) == pytest.approx(0.5)  # lam 0.3: yes, lam 0.6: no; lam 0 excluded
    grid = pd.DataFrame({"model": "m", "dataset": "d", "method": "magnitude", "attack": "fgsm", "eps": 0.1,
                         "keep_ratio": [1.0, 0.5], "seed": 0, "clean_acc": [0.96, 0.6],
                         "adv_acc": [0.8, 0.3]})
    pts = S.algorithm1_vs_front(ch, grid)
    on = set(map(tuple, pts[pts.pareto][["clean", "adv"]].to_numpy().round(3)))
    assert on == {(0.96, 0.8), (0.95, 0.9)}


def test_attack_ladder_counts_and_violations():
    from prunerob.analysis.stats import attack_ladder

    rows = []
    for seed, (f, p, a) in enumerate([(90, 85, 80), (90, 91, 80)]):  # seed 1: PGD weaker than FGSM
        for atk, c in (("fgsm", f), ("pgd", p), ("autoattack", a)):
            rows.append({"method": "magnitude", "keep_ratio": 1.0, "seed": seed, "attack": atk,
                         "adv_correct": c, "n": 100})
    order = {"pgd": ("fgsm",), "autoattack": ("fgsm", "pgd")}  # as the attack registry states it
    t = attack_ladder(pd.DataFrame(rows), order=["fgsm", "pgd", "autoattack"], stronger_than=order)
    assert t.fgsm_correct.tolist() == [180] and t.pgd_correct.tolist() == [176]
    assert t.autoattack_correct.tolist() == [160] and t.n.tolist() == [200]
    assert t.violations.tolist() == [1]
    from prunerob.core.attacks import stronger_than  # the registry's order gives the same count

    again = attack_ladder(pd.DataFrame(rows), ["fgsm", "pgd", "autoattack"], stronger_than())
    assert again.violations.tolist() == [1]
