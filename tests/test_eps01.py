"""Issue 27 (ε ≈ 0.1 page): power calculation, FAB minimal distances, PGD-vs-FAB violations, the pooled
paired-shift test and the page's parameter checks. CPU, seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from prunerob.analysis import power as PW
from prunerob.analysis import security as SEC
from prunerob.config import ConfigError


# ------------------------------------------------------------------------------------------------
# power
# ------------------------------------------------------------------------------------------------
def test_seeds_for_power_matches_published_one_sample_t_values():
    """Cohen's d = 0.5, power 0.8: n = 27 one-sided at 0.05 and n = 34 two-sided at 0.05 (= one-sided
    0.025), the values of G*Power's one-sample t-test (and Cohen 1988's tables)."""
    assert PW.seeds_for_power(0.5, 1.0, alpha=0.05) == 27
    assert PW.seeds_for_power(0.5, 1.0, alpha=0.05, family=2) == 34  # Bonferroni: level 0.025
    assert PW.power_t(27, 0.5, 1.0, 0.05) >= 0.8 > PW.power_t(26, 0.5, 1.0, 0.05)


def test_power_agrees_with_brute_force_simulation():
    """The noncentral-t power of the corrected one-sided t-test against a simulation of that test."""
    from scipy import stats

    rng = np.random.default_rng(0)
    n, effect, sd, fam = 20, 0.01, 0.02, 4
    g = rng.normal(effect, sd, size=(40000, n))
    t = g.mean(1) / (g.std(1, ddof=1) / math.sqrt(n))
    sim = float(np.mean(t > stats.t.ppf(1 - 0.05 / fam, n - 1)))
    assert abs(sim - PW.power_t(n, effect, sd, 0.05, fam)) < 0.01  # MC SE ~0.0025


def test_seeds_for_power_bad_input_is_one_config_error():
    with pytest.raises(ConfigError, match="effect"):
        PW.seeds_for_power(0.0, 1.0)
    with pytest.raises(ConfigError, match="family"):
        PW.seeds_for_power(0.5, 1.0, family=0)


def test_cpu_profile_seeds_come_from_the_power_calculation():
    """eps01_gain's first look runs max(15, the power calculation on the committed sweet-spot table)
    seeds, with every attack; a second look adds seeds to its PGD-5 grid alone (a superset, in order)."""
    from prunerob.runner.profiles import parameters
    from prunerob.studies.sweetspot import eps01_report as R

    cpu = parameters("eps01_gain", "cpu")
    fam = len([k for k in cpu["keeps"] if k != 1.0])
    first = cpu["strong_seeds"]
    assert len(first) == R.seeds_for_cpu(fam) >= R.MIN_SEEDS
    assert cpu["fab_seeds"] == first == cpu["seeds"][: len(first)]
    # the second look (verdicts.LOOKS): more seeds, first look's seeds first, and LOOKS says so
    from prunerob.analysis import verdicts as V

    assert len(cpu["seeds"]) > len(first)
    assert V.LOOKS[("eps01_gain", "mlp", "mnist")] == (len(first), len(cpu["seeds"]))


def test_cpu_replication_is_fresh_seeds_sized_by_the_rules_power_estimate():
    """The confirmatory replication (profiles.EPS01_CONFIRM_SEEDS) runs on seeds that neither look used,
    as many as :func:`verdict_rule.seeds_needed` asks for "fails" at level 0.05 (80 % power) from the
    committed 40-seed table's ε = 0.1 magnitude rows; the paper profile (one look, seeds fixed in advance)
    runs none, and the Findings decide the claim from the replication's table."""
    from pathlib import Path

    import pandas as pd

    from prunerob.analysis import verdict_rule as rule
    from prunerob.analysis import verdicts as V
    from prunerob.runner.profiles import parameters

    cpu = parameters("eps01_gain", "cpu")
    rep = cpu["confirm_seeds"]
    assert rep and not set(rep) & set(cpu["seeds"]) and rep == list(range(rep[0], rep[0] + len(rep)))
    gains = pd.read_csv(Path(__file__).resolve().parents[1] / "book/experiments/results/eps01_gain/gains.csv")
    g = gains[(gains.method == "magnitude") & np.isclose(gains.eps, 0.1) & (gains.keep_ratio < 1)
              & (gains.n_seeds == len(cpu["seeds"]))]
    fam = len([k for k in cpu["keeps"] if k != 1.0])
    assert len(g) == fam
    assert len(rep) == rule.seeds_needed(g.gain, g.seed_var, g.example_var, fam, "fails", alpha=rule.ALPHA)
    assert parameters("eps01_gain", "paper")["confirm_seeds"] == []
    assert V.CONFIRM[("eps01_gain", "mlp", "mnist")] == "confirm"


# ------------------------------------------------------------------------------------------------
# FAB minimal distance on a linear model (closed form)
# ------------------------------------------------------------------------------------------------
def test_fab_distance_of_a_linear_classifier_is_the_closed_form():
    """Two classes, logits W x + b: the minimal L-inf distance to the decision boundary is
    |w.x + c| / ||w||_1 with w = W_1 - W_0, c = b_1 - b_0 (Hölder), reached inside [0, 1] here."""
    from prunerob.core.attacks.fab import min_linf_distance

    torch.manual_seed(0)
    lin = nn.Linear(20, 2).eval()
    x = 0.5 + 0.01 * torch.randn(16, 20)
    with torch.no_grad():
        y = lin(x).argmax(1)
        w, c = lin.weight[1] - lin.weight[0], lin.bias[1] - lin.bias[0]
        true = ((x @ w + c).abs() / w.abs().sum()).double()
    assert float(true.max()) < 0.4  # the minimiser stays inside the box
    d = min_linf_distance(lin, x, y, steps=20)
    assert torch.isfinite(d).all()
    assert (d >= true * (1 - 1e-4)).all()  # never below the true minimum (FAB's points are adversarial)
    assert (d <= true * 1.02).all()  # and within 2% of it
    # a misclassified example has distance 0; labels that no attack can flip stay +inf
    d0 = min_linf_distance(lin, x[:2], 1 - y[:2], steps=5)
    assert (d0 == 0).all()


def test_fab_is_registered_and_bad_parameters_raise():
    from prunerob.core.attacks import attack_names, make_attack
    from prunerob.core.attacks.fab import min_linf_distance

    assert "fab" in attack_names()
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    a = make_attack("fab", lin, 0.1)
    assert "FAB-T" in a.describe()
    x = torch.rand(5, 4)
    assert a(x, torch.zeros(5, dtype=torch.long)).sub(x).abs().max() <= 0.1 + 1e-6
    with pytest.raises(ConfigError, match="steps"):
        min_linf_distance(lin, x, torch.zeros(5, dtype=torch.long), steps=0)


# ------------------------------------------------------------------------------------------------
# violations, packing, curves
# ------------------------------------------------------------------------------------------------
def test_violation_counter():
    d = np.array([0.0, 0.05, 0.1005, 0.2, np.inf, np.inf])
    pgd_ok = np.array([False, False, False, False, False, True])
    # broken by PGD at 0.1: examples 0-4; above 0.1 + 0.001: 0.2 and inf -> 2 (0.1005 is within tol)
    assert SEC.violations(d, pgd_ok, 0.1, 1e-3) == 2
    assert SEC.violations(d, pgd_ok, 0.1, 0.0) == 3
    assert SEC.violations(d, np.ones(6, bool), 0.1, 0.0) == 0
    with pytest.raises(ConfigError):
        SEC.violations(d, pgd_ok[:3], 0.1, 0.0)


def test_pack_roundtrip_and_curve():
    d = np.array([0.0, 0.03, 0.12, np.inf])
    back = SEC.unpack(SEC.pack(d), 4)
    assert np.isposinf(back[3]) and np.allclose(back[:3], d[:3], atol=1e-7)
    assert SEC.curve(d, [0.0, 0.1, 1.0]).tolist() == [0.75, 0.5, 0.25]


# ------------------------------------------------------------------------------------------------
# pooled paired-shift test
# ------------------------------------------------------------------------------------------------
def _pairs(shift: float, seeds: int = 8, n: int = 400, rng: int = 0):
    g = np.random.default_rng(rng)
    out = []
    for s in range(seeds):
        dense = g.gamma(4.0, 0.02, n)
        pruned = dense + shift + g.normal(0, 0.02, n)
        dense[:5], pruned[:3] = np.inf, np.inf  # censored on both sides
        out.append((s, pruned, dense))
    return out


def test_pooled_shift_detects_a_planted_shift():
    res = SEC.pool(SEC.paired_shift(_pairs(0.01)))
    assert res["direction"] == "pruned farther" and res["p_t"] < 1e-3 and res["p_stouffer"] < 1e-3
    assert res["lo"] > 0
    res = SEC.pool(SEC.paired_shift(_pairs(-0.01)))
    assert res["direction"] == "pruned closer"


def test_pooled_shift_without_a_shift_resolves_nothing():
    hits = [SEC.pool(SEC.paired_shift(_pairs(0.0, rng=r)))["p_t"] < 0.05 for r in range(40)]
    assert sum(hits) <= 6  # level 0.05: about 2 of 40 expected
    assert SEC.pool(SEC.paired_shift(_pairs(0.0)))["direction"] == "no shift resolved"


def test_signed_rank_orders_censored_differences_beyond_finite_ones():
    pruned = np.array([np.inf, np.inf, 0.1, 0.2, 0.0])
    dense = np.array([0.3, np.inf, 0.3, 0.1, 0.0])
    r = SEC.signed_rank(pruned, dense)
    # differences: +inf (largest rank, positive), tie, -0.2, +0.1, tie -> n = 3, ranks: 3 (+), 2 (-), 1 (+)
    assert (r["n"], r["n_up"], r["n_down"], r["w_plus"], r["n_censored"]) == (3, 2, 1, 4.0, 2)


# ------------------------------------------------------------------------------------------------
# the page's parameters
# ------------------------------------------------------------------------------------------------
GOOD = dict(
    seeds=[0, 1],
    keeps=[1.0, 0.5],
    eps_grid=["0.1"],
    methods=["magnitude", "random"],
    aa_methods=["magnitude"],
    strong_methods=["random"],
    verdict_eps="0.1",
    epochs=2,
    n_eval=100,
    strong_n=50,
    strong_keeps=1,
    fab_steps=5,
    fab_restarts=1,
    fab_tol=0.001,
    train_subset=None,
)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(keeps=[0.5, 0.7]), "keeps"),
        (dict(keeps=[1.0, 1.5]), "keeps"),
        (dict(verdict_eps="0.2"), "verdict_eps"),
        (dict(methods=["magnitude", "nope"]), "methods"),
        (dict(aa_methods=["magnitude_global"]), "aa_methods"),
        (dict(methods=["random"], strong_methods=[], aa_methods=[]), "magnitude"),
        (dict(strong_n=500), "strong_n"),
        (dict(strong_keeps=2), "strong_keeps"),
        (dict(fab_steps=0), "fab_steps"),
        (dict(fab_tol=-1.0), "fab_tol"),
        (dict(seeds=[0, 0]), "seeds"),
        (dict(seeds=[]), "seeds"),
    ],
)
def test_bad_page_parameters_give_one_config_error(bad, match):
    from prunerob.studies.sweetspot import eps01

    eps01.check(**GOOD)
    with pytest.raises(ConfigError, match=match) as e:
        eps01.check(**{**GOOD, **bad})
    assert "\n" not in str(e.value)


def test_combined_distances_take_the_smallest_radius_any_attack_found():
    """An example PGD broke at eps gets a distance of at most eps; others keep FAB-T's distance."""
    import pandas as pd

    from prunerob.analysis import security
    from prunerob.engine.sweep import pack_bits
    from prunerob.studies.sweetspot import eps01_report as report

    fab = pd.DataFrame([{"method": "magnitude", "keep_ratio": 1.0, "seed": 0, "n": 4, "attack": "fab",
                         "distances": security.pack([0.3, 0.02, float("inf"), 0.2])}])
    ok = np.array([False, True, False, True])  # PGD broke examples 0 and 2 at eps 0.1
    pgd = pd.DataFrame([{"method": "magnitude", "keep_ratio": 1.0, "seed": 0, "n": 4, "attack": "pgd",
                         "eps": 0.1, "adv_bits": pack_bits(ok)}])
    out = report.combined_distances(fab, pgd, method="magnitude")
    assert np.allclose(security.unpack(out.distances.iloc[0], 4), [0.1, 0.02, 0.1, 0.2])
    assert out.attack.iloc[0] == "fab+pgd"
    assert report.violation_table(fab, pgd, method="magnitude", tol=1e-3).violations.tolist() == [2]


def test_pooled_shift_uses_the_per_seed_z_when_every_median_is_zero():
    """Distances on the PGD budget grid make most paired differences 0, and so every per-seed median:
    the primary pooled test is the t-test over the seeds' signed-rank z, which still sees the shift."""
    from prunerob.studies.sweetspot.eps01_report import _pool_z

    up = _pool_z(np.array([3.1, 2.4, 4.0, 2.2, 3.5]), 0.05)
    assert up["mean_z"] > 0 and up["p_tz"] < 0.01 and up["z_lo"] > 0
    none = _pool_z(np.array([1.0, -1.2, 0.3, -0.4, 0.2]), 0.05)
    assert none["p_tz"] > 0.5


def test_a_stored_order_row_is_read_on_the_fab_images_by_their_permutation():
    """PGD-5 runs on the whole test split in stored order, FAB-T on the first n of a permutation: the
    bits of an example must come from its own position (a prefix would pair other images)."""
    import pandas as pd

    from prunerob.analysis import security
    from prunerob.core.subsets import permutation_prefix
    from prunerob.engine.sweep import pack_bits
    from prunerob.studies.sweetspot import eps01_report as report

    idx = permutation_prefix(10, 4, 0).numpy()
    ok = np.ones(10, dtype=bool)
    ok[idx[1]] = False  # PGD broke the second FAB image only, at its stored position
    fab = pd.DataFrame([{"method": "magnitude", "keep_ratio": 1.0, "seed": 0, "n": 4, "attack": "fab",
                         "eval_subset": "randperm(seed=0)[:4] of 10 (index sha256 x)",
                         "distances": security.pack([0.3, 0.3, 0.3, 0.3])}])
    pgd = pd.DataFrame([{"method": "magnitude", "keep_ratio": 1.0, "seed": 0, "n": 10, "attack": "pgd",
                         "eps": 0.1, "eval_subset": "all 10 in stored order", "adv_bits": pack_bits(ok)}])
    out = report.combined_distances(fab, pgd, method="magnitude")
    assert np.allclose(security.unpack(out.distances.iloc[0], 4), [0.3, 0.1, 0.3, 0.3])
