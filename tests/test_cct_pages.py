"""The transformer pages' settings (issue 29): competence thresholds, labels, cpu profile values and
the verdicts' choice of the transformer a page ran."""
from __future__ import annotations

import pandas as pd

from prunerob.analysis import competence, verdicts
from prunerob.core.registry import label_of
from prunerob.runner import profiles

FROM_SCRATCH = "trained from scratch; the paper fine-tunes an ImageNet-pretrained ViT-Tiny"


def test_competence_thresholds_of_the_transformers():
    cct = competence.threshold("cct_2_3x2", "cifar10")
    assert cct is not None and cct.min_acc == 0.75 and cct.min_acc >= 0.70  # issue 29: >= 70 %
    assert FROM_SCRATCH in cct.source and "converged accuracy" in cct.source
    tf = competence.threshold("transformer", "mnist")
    assert tf is not None and tf.min_acc == 0.90


def test_the_cct_threshold_states_the_committed_models_converged_accuracy():
    """The sentence behind the CCT's threshold quotes the accuracies of the committed 30-epoch models of
    the seeds it names (0-2, from which it was set); a retrained set (another machine, a GPU) must
    update it. The threshold stays about 5 pp below those, and every committed seed clears it by 4 pp."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "book" / "experiments" / "results"
    models = pd.read_csv(results / "score_vit" / "models.csv")
    acc = models[(models.arch == "cct_2_3x2") & (models.dataset == "cifar10")]
    assert len(acc) >= 3 and (acc.epochs == profiles.CCT_CPU_EPOCHS).all()
    cct = competence.threshold("cct_2_3x2", "cifar10")
    assert "seeds 0-2" in cct.source
    named = acc[acc.seed.isin([0, 1, 2])].test_acc
    lo, hi = named.min(), named.max()
    assert len(named) == 3
    assert f"{100 * lo:.1f}-{100 * hi:.1f}% at epoch {profiles.CCT_CPU_EPOCHS}" in cct.source
    assert 0.04 <= lo - cct.min_acc <= 0.07
    assert (acc.test_acc - cct.min_acc >= 0.04).all()


def test_the_cct_is_labelled_as_trained_from_scratch():
    import prunerob.core.models  # noqa: F401  (fills the registry)

    assert FROM_SCRATCH in label_of("arch", "cct_2_3x2")


def test_cpu_profile_runs_the_cct_with_the_issue_29_settings():
    p = profiles.parameters("score_vit", "cpu")
    assert p["model"] == "cct_2_3x2" and p["datasets"] == ["cifar10", "imagenette"]
    # Imagenette: 32 px, 60 epochs in fp32 (the measured reasons are at the constants)
    assert p["image_size"]["imagenette"] == profiles.IMAGENETTE_CPU_SIZE == 32
    assert p["epochs"]["imagenette"] == profiles.IMAGENETTE_CPU_EPOCHS
    assert p["precision"] == {**p["precision"], "cifar10": "bf16", "imagenette": "fp32"}
    assert len(p["keeps"]) >= 12 and p["n_eval"] >= 2000 and len(p["seeds"]) >= 5  # five: see profiles
    # magnitude pruning of the same models under the first attack only (the comparison of Sec. 6.3)
    assert p["methods"] == ["taylor"] and p["compare_methods"] == ["magnitude"]
    assert p["attacks"] == ["fgsm", "pgd", "cw"] and p["eps"] == "4/255" and p["fgsm_extra_eps"] == ["8/255"]
    assert p["subset_attacks"] == ["autoattack"] and p["subset_n"] == 1000 and len(p["subset_seeds"]) >= 5
    assert p["epochs"]["cifar10"] == profiles.CCT_CPU_EPOCHS and p["train_subset"]["cifar10"] is None
    assert profiles.parameters("score_vit", "paper")["model"] == "vit_tiny"
    r = profiles.parameters("risk_vs_keep", "cpu")
    # the risk panel reads trained CCTs of score_vit (same epochs, all images; its first three seeds: the
    # risk claim holds on them, and its one unit over all seeds would be recomputed for more)
    assert r["run_vit"] and r["vit_model"] == p["model"] and r["vit_epochs"] == p["epochs"]["cifar10"]
    assert r["vit_train_subset"] is None and len(r["vit_seeds"]) >= 3
    assert set(r["vit_seeds"]) <= set(p["seeds"])
    assert r["tf_epochs"] == profiles.TF_CPU_EPOCHS and r["tf_train_subset"] is None and len(r["seeds"]) >= 5
    assert len(r["cnn_seeds"]) >= 3
    assert len(profiles.parameters("magnitude_cnn", "cpu")["seeds"]) >= 3
    assert len(profiles.parameters("magnitude_mlp", "cpu")["seeds"]["cifar10"]) >= 5
    assert "0.1" in profiles.parameters("depth", "cpu")["extra_eps"]


def test_vit_claims_read_the_transformer_the_page_ran(tmp_path):
    folder = tmp_path / "score_vit"
    folder.mkdir()
    res = verdicts.Results(tmp_path)
    assert res.model("score_vit", verdicts.VIT_MODELS) == "cct_2_3x2"  # no table: the first candidate
    assert res.model("score_vit", "mlp") == "mlp"
    pd.DataFrame([{"arch": "vit_small", "dataset": "cifar10", "test_acc": 0.3}]).to_csv(
        folder / "models.csv", index=False)
    res = verdicts.Results(tmp_path)
    assert res.model("score_vit", verdicts.VIT_MODELS) == "vit_small"
    ok, lab = res.competence("score_vit", res.model("score_vit", verdicts.VIT_MODELS), "cifar10")
    assert not ok and "30.0% < 70.0%" in lab
