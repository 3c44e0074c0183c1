"""Parameter defaults of the experiment notebooks per profile (used by ``prunerob reproduce``).

Profiles:

* ``quick``: CPU, every notebook together in a few minutes on a 2-core machine (CI): small
  training subsets, few epochs, few keep ratios, 2 seeds.
* ``cpu``: the largest settings affordable in about 40 minutes in total on a 2-core CPU; these
  outputs are committed to the book.
* ``paper``: the paper's settings (Sec. 6.1, App. I) for a GPU: MLP-MNIST 30 epochs, CIFAR 100
  epochs, ViT 10 epochs, the 10,000 test images, 20 keep ratios 1.0, 0.95, ..., 0.05, 3 seeds,
  FGSM/PGD/CW on all test images and AutoAttack on a fixed subset of 1,000 (the first 1,000 of a
  seeded random permutation of the test set, ``ArrayDataset.subset(1000, seed=0)``).

:func:`parameters` returns the FULL parameter dict of a notebook (every key of its
``parameters`` cell) for a profile; ``prunerob reproduce -p KEY VALUE`` overrides single keys.
``out_dir`` is relative to the folder of the executed notebook.
"""
from __future__ import annotations

import copy
from typing import Any

from .config import ConfigError

PROFILES = ("quick", "cpu", "paper")

NOTEBOOKS: dict[str, str] = {
    "risk_vs_keep": "Adversarial risk (Def. 1) and optimality zeta (Def. 2) vs keep ratio, bound tightness "
    "of Theorems 1-2 (Figs. 1, 7, 15, 16)",
    "magnitude_mlp": "Magnitude pruning of MLPs on MNIST and CIFAR-10 under FGSM, PGD, CW and AutoAttack "
    "(Fig. 2 MLP panels, Figs. 8, 12)",
    "magnitude_cnn": "Magnitude pruning of a 4-layer CNN on CIFAR-10 (CIFAR-100 when available) under FGSM "
    "and PGD (Fig. 2 CNN panels, Fig. 9)",
    "score_vit": "Taylor-score pruning of a ViT trained from scratch on CIFAR-10 and Imagenette under FGSM, "
    "PGD, CW and AutoAttack (Figs. 3, 10, 11, 13, 14)",
    "depth": "Effect of MLP depth (2, 3, 4 layers) on the clean/attacked trade-off on MNIST (Fig. 4)",
    "algorithm1": "Keep probabilities chosen by Algorithm 1 and by the verified minimiser of J vs lambda, "
    "with the accuracies they give (Fig. 5)",
    "pareto": "Empirical Pareto fronts in clean-vs-attacked accuracy space and the bound-space front of "
    "Lemma 2 (Fig. 6)",
}

DEPENDS: dict[str, list[str]] = {name: [] for name in NOTEBOOKS}
DEPENDS["pareto"] = ["magnitude_mlp", "score_vit"]

# keep ratios ------------------------------------------------------------------------------------
PAPER_KEEPS = [round(1.0 - 0.05 * i, 2) for i in range(20)]  # 1.0, 0.95, ..., 0.05
CPU_KEEPS = [1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
QUICK_KEEPS = [1.0, 0.9, 0.7, 0.5, 0.3]

EPS = "4/255"

# The same MNIST MLP settings appear in several notebooks so that train_model's checkpoint cache
# trains the model once per profile and seed.
_MLP_MNIST = {
    "quick": {"epochs": 2, "train_subset": 10000, "seeds": [0, 1]},
    "cpu": {"epochs": 10, "train_subset": None, "seeds": [0, 1, 2]},
    "paper": {"epochs": 30, "train_subset": None, "seeds": [0, 1, 2]},
}

_COMMON = {"device": "auto", "data_root": None}


def _base(name: str, profile: str) -> dict[str, Any]:
    return {"profile": profile, "out_dir": f"results/{name}", "download": profile == "paper", **_COMMON}


def _risk_vs_keep(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    p = {
        "model": "mlp",
        "dataset": "mnist",
        "epochs": m["epochs"],
        "train_subset": m["train_subset"],
        "seeds": m["seeds"],
        # L2 radii of the input neighbourhood B(x, eps) (Sec. 4.1 uses the l2 norm). The Linf ball
        # of radius 4/255 lies inside the L2 ball of radius 4/255 * sqrt(784) = 0.44 on MNIST.
        "eps_l2": [0.25, 0.5, 1.0, 2.0],
        "tightness_eps": 0.5,
        "keeps": [1.0, 0.9, 0.7, 0.5, 0.3, 0.1],
        "n_eval": 200,
        "n_masks": 4,
        "k_samples": 32,
        "worst_case_steps": 10,
        "tf_epochs": 1,
        "tf_train_subset": 5000,
        "run_cnn": False,
        "cnn_dataset": "cifar10",
        "cnn_epochs": 1,
        "cnn_train_subset": 5000,
    }
    if profile == "cpu":
        p.update(keeps=[1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], n_eval=500, n_masks=8,
                 k_samples=64, worst_case_steps=20, tf_epochs=3, tf_train_subset=20000, run_cnn=True,
                 cnn_epochs=3, cnn_train_subset=10000)
    elif profile == "paper":
        p.update(keeps=PAPER_KEEPS, n_eval=1000, n_masks=20, k_samples=200, worst_case_steps=50,
                 tf_epochs=10, tf_train_subset=None, run_cnn=True, cnn_epochs=100, cnn_train_subset=None)
    return p


def _magnitude_mlp(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    p = {
        "datasets": ["mnist"],
        "models": ["mlp"],
        "epochs": [m["epochs"]],
        "train_subset": [m["train_subset"]],
        "seeds": m["seeds"],
        "methods": ["magnitude", "random"],
        "keeps": QUICK_KEEPS,
        "attacks": ["fgsm", "pgd", "cw", "autoattack"],
        "eps": EPS,
        "n_eval": 1000,
        "autoattack_n": 100,
        "autoattack_keeps": [1.0, 0.9, 0.5],
    }
    if profile == "cpu":
        p.update(datasets=["mnist", "cifar10"], models=["mlp", "mlp_cifar"], epochs=[m["epochs"], 3],
                 train_subset=[None, 10000], keeps=CPU_KEEPS, n_eval=2000, autoattack_n=200,
                 autoattack_keeps=[1.0, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3])
    elif profile == "paper":
        p.update(datasets=["mnist", "cifar10"], models=["mlp", "mlp_cifar"], epochs=[30, 100],
                 train_subset=[None, None], keeps=PAPER_KEEPS, n_eval=10000, autoattack_n=1000,
                 autoattack_keeps=PAPER_KEEPS)
    return p


def _magnitude_cnn(profile: str) -> dict[str, Any]:
    p = {
        "datasets": ["cifar10"],
        "models": ["cnn4"],
        "epochs": [1],
        "train_subset": [5000],
        "seeds": [0, 1],
        "methods": ["magnitude", "random"],
        "keeps": QUICK_KEEPS,
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 500,
    }
    if profile == "cpu":
        p.update(epochs=[5], train_subset=[20000], seeds=[0, 1, 2], keeps=CPU_KEEPS, n_eval=1000)
    elif profile == "paper":
        # CIFAR-100 is not available offline; the notebook says so and skips it when missing.
        p.update(datasets=["cifar10", "cifar100"], models=["cnn4", "cnn4"], epochs=[100, 100],
                 train_subset=[None, None], seeds=[0, 1, 2], keeps=PAPER_KEEPS, n_eval=10000)
    return p


def _score_vit(profile: str) -> dict[str, Any]:
    p = {
        # pretrained ViT weights are not available offline: the ViT is trained from scratch
        "model": "vit_small",
        "datasets": ["cifar10", "imagenette"],
        "image_size": [None, 64],
        "epochs": [1, 1],
        "train_subset": [5000, 3000],
        "seeds": [0, 1],
        "methods": ["taylor", "random"],
        "score_batches": 20,
        "keeps": QUICK_KEEPS,
        "attacks": ["fgsm", "pgd", "cw", "autoattack"],
        "eps": EPS,
        "fgsm_extra_eps": ["8/255"],
        "n_eval": 300,
        "autoattack_n": 50,
        "autoattack_keeps": [1.0, 0.5],
    }
    if profile == "cpu":
        p.update(epochs=[4, 4], train_subset=[20000, None], seeds=[0, 1, 2], keeps=CPU_KEEPS, n_eval=500,
                 autoattack_n=100, autoattack_keeps=[1.0, 0.9, 0.7, 0.5, 0.3])
    elif profile == "paper":
        # the paper fine-tunes an ImageNet-pretrained ViT for 10 epochs (App. I); offline it is
        # trained from scratch. CIFAR-100 and ImageNet-100 are used when available (else skipped,
        # with a note); Imagenette at 64 px is the offline stand-in for the ImageNet subset.
        p.update(datasets=["cifar10", "cifar100", "imagenet100", "imagenette"], image_size=[None, None, 64, 64],
                 epochs=[10, 10, 10, 10], train_subset=[None, None, None, None], seeds=[0, 1, 2],
                 keeps=PAPER_KEEPS, n_eval=10000, autoattack_n=1000, autoattack_keeps=PAPER_KEEPS)
    return p


def _depth(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    p = {
        "models": ["mlp", "mlp3", "mlp4"],
        "dataset": "mnist",
        "epochs": m["epochs"],
        "train_subset": m["train_subset"],
        "seeds": m["seeds"],
        "methods": ["magnitude", "random"],
        "keeps": QUICK_KEEPS,
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 1000,
    }
    if profile == "cpu":
        p.update(keeps=CPU_KEEPS, n_eval=5000)
    elif profile == "paper":
        p.update(keeps=PAPER_KEEPS, n_eval=10000)
    return p


def _algorithm1(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    p = {
        "model": "mlp",
        "dataset": "mnist",
        "epochs": m["epochs"],
        "train_subset": m["train_subset"],
        "seeds": m["seeds"],
        "lambdas": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        "modes": ["uniform", "layerwise"],
        "p0": 0.5,
        "tol": 1e-8,
        "max_iter": 50,
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 1000,
        "grid_keeps": QUICK_KEEPS,
    }
    if profile == "cpu":
        p.update(lambdas=[round(0.05 * i, 2) for i in range(21)], n_eval=5000, grid_keeps=CPU_KEEPS)
    elif profile == "paper":
        p.update(lambdas=[round(0.05 * i, 2) for i in range(21)], n_eval=10000, grid_keeps=PAPER_KEEPS)
    return p


def _pareto(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    return {
        # result tables of the sibling notebooks (relative to the executed notebook's folder)
        "mlp_table": "results/magnitude_mlp/sweep.csv",
        "vit_table": "results/score_vit/sweep.csv",
        "mlp_attacks": ["fgsm", "pgd", "cw"],
        "eps": EPS,
        # bound-space front of Lemma 2 for the MNIST MLP
        "model": "mlp",
        "dataset": "mnist",
        "epochs": m["epochs"],
        "train_subset": m["train_subset"],
        "seeds": m["seeds"],
        "n_eval": {"quick": 1000, "cpu": 10000, "paper": 10000}[profile],
        "n_front": 101,
    }


_BUILDERS = {
    "risk_vs_keep": _risk_vs_keep,
    "magnitude_mlp": _magnitude_mlp,
    "magnitude_cnn": _magnitude_cnn,
    "score_vit": _score_vit,
    "depth": _depth,
    "algorithm1": _algorithm1,
    "pareto": _pareto,
}


def parameters(notebook: str, profile: str = "quick") -> dict[str, Any]:
    """The full parameter dict of ``notebook`` for ``profile`` (a fresh copy each call).

    Raises ConfigError for an unknown notebook or profile.
    """
    if notebook not in NOTEBOOKS:
        raise ConfigError(f"notebook={notebook!r} is not known; available notebooks: {', '.join(NOTEBOOKS)}")
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r} is not supported; allowed values: {', '.join(PROFILES)}")
    params = _base(notebook, profile)
    params.update(_BUILDERS[notebook](profile))
    return copy.deepcopy(params)
