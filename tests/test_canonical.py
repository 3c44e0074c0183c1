"""One number per claim (issue 25, item 4): prunerob.analysis.canonical quotes one stated source for
each claim measured on several pages and says, from the tables, why another page's number differs;
significance counts are labelled uncorrected / corrected. Synthetic tables, CPU, seconds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunerob.analysis import canonical as C
from prunerob.analysis import summary
from prunerob.config import ConfigError

EPS = 4 / 255


def _bits(correct: np.ndarray) -> str:
    return np.packbits(correct.astype(bool)).tobytes().hex()


def _sweep(keeps, seeds, n, best, rng, model="mlp", dataset="mnist", attack="fgsm", flips=0.0):
    """Per-example sweep rows: the unpruned model gets 80% right; keep ``best`` fixes a few more."""
    rows = []
    for s in seeds:
        base = rng.random(n) < 0.8
        for k in keeps:
            adv = base.copy()
            if k == best:
                adv[np.flatnonzero(~base)[: max(1, int(flips * n))]] = True
            rows.append(dict(model=model, dataset=dataset, method="magnitude", keep_ratio=k, attack=attack,
                             eps=EPS, seed=s, n=n, clean_acc=0.98, adv_acc=adv.mean(), adv_bits=_bits(adv),
                             train_epochs=30))
    return pd.DataFrame(rows)


@pytest.fixture
def results(tmp_path):
    rng = np.random.default_rng(0)
    for nb, table, keeps, seeds, n, best in (
            ("magnitude_mlp", "sweep", [1.0, 0.95, 0.9, 0.8, 0.7, 0.6], [0, 1, 2, 3, 4], 1000, 0.9),
            ("sweet_spot", "sweep_main", [1.0, 0.9, 0.7, 0.5], [0, 1, 2, 3, 4], 400, 0.7),
            ("autoattack_mlp", "sweep", [1.0, 0.9, 0.7], [0, 1, 2], 200, 0.7)):
        (tmp_path / nb).mkdir(exist_ok=True)
        _sweep(keeps, seeds, n, best, rng).to_csv(tmp_path / nb / f"{table}.csv", index=False)
    # the CIFAR MLP: one seed whose PGD gain is significant uncorrected but not after Bonferroni
    cif = _sweep([1.0, 0.9, 0.7, 0.5, 0.3], [0], 2000, 0.3, rng, "mlp_cifar", "cifar10", "pgd", flips=0.0025)
    with open(tmp_path / "magnitude_mlp" / "sweep.csv", "a") as f:
        cif.to_csv(f, header=False, index=False)
    (tmp_path / "magnitude_cnn").mkdir()
    pd.DataFrame([dict(arch="cnn4", dataset="cifar10", seed=0, epochs=4, test_acc=0.7319)]).to_csv(
        tmp_path / "magnitude_cnn" / "models.csv", index=False)
    sub = _sweep([1.0, 0.8], [0], 2000, 0.8, rng, "cnn4", "cifar10").assign(clean_acc=0.721)
    sub.to_csv(tmp_path / "magnitude_cnn" / "sweep.csv", index=False)
    cnn = pd.concat([_sweep([1.0, 0.8], [s], 200, 0.8, rng, "cnn4", "cifar10").assign(
        model_seed=s, model_test_acc=a) for s, a in ((0, 0.7275), (1, 0.7230), (2, 0.7300))])
    cnn.to_csv(tmp_path / "sweet_spot" / "sweep_cnn.csv", index=False)
    return tmp_path


def test_best_keep_names_the_canonical_source_and_why_other_pages_differ(results):
    text = C.note("mlp_fgsm_best_keep", results, page="autoattack_mlp")
    head, *lines = text.split("\n")
    assert "Canonical source: magnitude_mlp (`sweep.csv`): keep 0.9" in head
    assert "5 seeds (0, 1, 2, 3, 4), 1,000 test images, 5 pruned keep ratios" in head
    aa = next(line for line in lines if "autoattack_mlp" in line)
    ss = next(line for line in lines if "sweet_spot" in line)
    assert lines.index(aa) < lines.index(ss)  # the page's own number comes first
    assert "keep 0.7" in aa and "It differs because" in aa
    assert "seeds 0, 1, 2 instead of 0, 1, 2, 3, 4" in aa
    assert "200 test images per seed instead of 1,000" in aa
    assert "2 pruned keep ratios instead of 5" in aa
    # the canonical table's own gain at the other page's keep ratio, with its interval
    assert "on the canonical table keep 0.7 gains +0.00 pp (95% CI" in aa
    assert "400 test images per seed instead of 1,000" in ss


def test_mcnemar_counts_are_labelled_uncorrected_and_corrected(results):
    text = C.note("mlp_cifar_pgd_mcnemar", results)
    c = C.CANONICAL["mlp_cifar_pgd_mcnemar"]
    m = C.measure(c, c.canonical, results)
    assert m.extra["family"] == 4 and m.extra["keep"] == 0.3
    assert m.extra["uncorrected"] == 1 and m.extra["corrected"] == 0
    assert "in 1 of 1 seed *uncorrected*, 0 of 1 seed *corrected* (Bonferroni over the 4 pruned keep" in text


def test_cnn4_accuracy_one_source_and_the_subset_and_seeds_explained(results):
    text = C.note("cnn4_accuracy", results, page="magnitude_cnn")
    assert ("Canonical source: magnitude_cnn (`models.csv`), the trained model on the full test split: "
            "73.2%") in text
    line = next(x for x in text.splitlines() if "(`sweep.csv`)" in x)
    assert "72.1% clean, unpruned, on 2,000 attacked test images" in line
    assert "it measures the unpruned model on the test subset the attacks run on" in line
    ss = next(x for x in text.splitlines() if "sweet_spot" in x)
    assert "lowest 72.3%" in ss and "seeds 0, 1, 2 instead of 0" in ss
    # seed 0 in both tables with different accuracies: a separate training run, said so
    assert "seed 0 reaches 72.8% here and 73.2% in the canonical table" in ss
    assert "separate run" in ss
    assert "risk_vs_keep (`models.csv`): not run" in text


def test_findings_table_has_one_canonical_row_per_claim(results):
    t = C.findings_table(results)
    assert t.count("| canonical |") == len(C.CANONICAL)
    assert "*uncorrected*" in t and "*corrected*" in t


def test_notes_for_a_page_and_unknown_claim(results):
    assert "Best keep ratio" in C.notes_for("sweet_spot", results)
    assert "CNN4" in C.notes_for("sweet_spot", results)
    assert C.notes_for("pareto", results) == ""
    with pytest.raises(ConfigError, match="unknown"):
        C.note("nope", results)


def test_small_gains_in_tables_are_never_minus_zero():
    df = pd.DataFrame({"adv_gain": [0.00008, -0.0003, 0.012, -0.0], "gain_lo": [-1e-7] * 4})
    t = summary.tidy_table(df)
    assert list(t.adv_gain) == ["+0.01 pp", "-0.03 pp", "+1.2 pp", "+0.0 pp"]
    assert set(t.gain_lo) == {"+0.00 pp"}
