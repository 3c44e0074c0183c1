"""Parameter defaults of the experiment notebooks per profile (used by ``prunerob reproduce``).

Profiles:

* ``quick``: CPU, every notebook together in a few minutes on a 2-core machine (CI): small
  training subsets, few epochs, few keep ratios, 2 seeds where cheap (1 for the ViT), no
  AutoAttack. Its values are the defaults written in each notebook's parameters cell.
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
    "own_model": "Use it on your own model: a hand-written CNN trained briefly on MNIST, pruned by two "
    "registered methods and swept under two attacks with the public API",
}

DEPENDS: dict[str, list[str]] = {name: [] for name in NOTEBOOKS}
DEPENDS["pareto"] = ["magnitude_mlp", "score_vit"]

# keep ratios ------------------------------------------------------------------------------------
PAPER_KEEPS = [round(1.0 - 0.05 * i, 2) for i in range(20)]  # 1.0, 0.95, ..., 0.05
CPU_KEEPS = [1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
QUICK_KEEPS = [1.0, 0.9, 0.7, 0.5, 0.3]
PAPER_LAMBDAS = [round(0.025 * i, 3) for i in range(41)]

EPS = "4/255"
SEEDS = [0, 1, 2]

# The same MNIST MLP settings appear in several notebooks so that train_model's checkpoint cache
# trains each model once per profile and seed.
_MLP_MNIST = {
    "quick": {"epochs": 2, "train_subset": 10000, "seeds": [0, 1]},
    "cpu": {"epochs": 3, "train_subset": None, "seeds": SEEDS},
    "paper": {"epochs": 30, "train_subset": None, "seeds": SEEDS},
}
# cnn4 on CIFAR-10: shared by magnitude_cnn and the CNN part of risk_vs_keep
_CNN = {
    "quick": {"epochs": 1, "train_subset": 2000},
    "cpu": {"epochs": 2, "train_subset": 10000},
    "paper": {"epochs": 100, "train_subset": None},
}


def _base(name: str, profile: str) -> dict[str, Any]:
    # threads: torch CPU threads. 1 on the 2-core CPU profiles: with the cores shared by other
    # processes, MKL/OpenMP with 2 threads can be several times slower (an SVD: 0.15 s -> 18 s);
    # None (torch's default, all cores) for the GPU host of the paper profile.
    return {"profile": profile, "device": "auto", "threads": None if profile == "paper" else 1,
            "out_dir": f"results/{name}", "data_root": None, "download": profile == "paper"}


def _mnist(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    return {"epochs": m["epochs"], "train_subset": m["train_subset"], "seeds": list(m["seeds"])}


def _risk_vs_keep(profile: str) -> dict[str, Any]:
    c = _CNN[profile]
    p = {
        "model": "mlp",
        "dataset": "mnist",
        **_mnist(profile),
        "keeps": [1.0, 0.7, 0.4, 0.1],
        # L2 radii of B(x, eps) (Sec. 4.1). The Linf ball of radius 4/255 lies inside the L2 ball
        # of radius 4/255 * sqrt(784) = 0.44 on MNIST.
        "eps_l2": [0.5, 1.0, 2.0],
        "tightness_eps": 0.5,
        "n_eval": 100,
        "n_masks": 3,
        "k_samples": 16,
        "worst_case_steps": 10,
        "worst_case_restarts": 2,
        "tf_d": 64,
        "tf_heads": 4,
        "tf_patch": 7,
        "tf_epochs": 1,
        "tf_train_subset": 5000,
        "tf_n_eval": 50,
        "run_cnn": False,
        "cnn_dataset": "cifar10",
        "cnn_epochs": c["epochs"],
        "cnn_train_subset": c["train_subset"],
        "cnn_seeds": [0],
        "cnn_eps_l2": [0.5, 1.0],
        "cnn_n_eval": 32,
        "cnn_n_masks": 2,
        "cnn_k_samples": 16,
    }
    if profile == "cpu":
        p.update(keeps=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], eps_l2=[0.25, 0.5, 1.0, 2.0],
                 n_eval=100, n_masks=4, k_samples=64, worst_case_steps=10, worst_case_restarts=2, tf_epochs=2,
                 tf_train_subset=20000, tf_n_eval=100, run_cnn=True, cnn_seeds=[0, 1, 2], cnn_n_eval=32,
                 cnn_n_masks=2, cnn_k_samples=16)
    elif profile == "paper":
        # the risk estimators run on the CPU (seeded CPU generators): sizes fit a 16-core host
        p.update(keeps=PAPER_KEEPS, eps_l2=[0.25, 0.5, 1.0, 2.0, 4.0], n_eval=500, n_masks=10, k_samples=200,
                 worst_case_steps=50, worst_case_restarts=5, tf_epochs=10, tf_train_subset=None,
                 tf_n_eval=500, run_cnn=True, cnn_seeds=SEEDS, cnn_eps_l2=[0.5, 1.0, 2.0], cnn_n_eval=64,
                 cnn_n_masks=4,
                 cnn_k_samples=50)
    return p


def _magnitude_mlp(profile: str) -> dict[str, Any]:
    m = _MLP_MNIST[profile]
    p = {
        "datasets": ["mnist"],
        "models": {"mnist": "mlp", "cifar10": "mlp_cifar"},
        "epochs": {"mnist": m["epochs"], "cifar10": 1},
        "train_subset": {"mnist": m["train_subset"], "cifar10": 2000},
        "n_eval": {"mnist": 1000, "cifar10": 200},
        "attacks": {"mnist": ["fgsm", "pgd", "cw"], "cifar10": ["fgsm", "pgd"]},
        "seeds": list(m["seeds"]),
        "methods": ["magnitude", "random"],
        "keeps": QUICK_KEEPS,
        "eps": EPS,
        # AutoAttack on a fixed subset (the first subset_n of a seeded permutation of the test set)
        "subset_attacks": ["autoattack"],
        "subset_datasets": ["mnist"],
        "subset_n": 20,
        "subset_keeps": [],
        "subset_seeds": [0],
    }
    if profile == "cpu":
        # the CIFAR-10 MLP has 69M weights: a 2,000-image subset, one epoch and 100 evaluation images
        p.update(datasets=["mnist", "cifar10"], epochs={"mnist": m["epochs"], "cifar10": 1},
                 train_subset={"mnist": None, "cifar10": 2000}, n_eval={"mnist": 2000, "cifar10": 100},
                 keeps={"mnist": CPU_KEEPS, "cifar10": [1.0, 0.9, 0.8, 0.6, 0.4, 0.2]},
                 subset_n=50, subset_keeps=[1.0, 0.7])
    elif profile == "paper":
        p.update(datasets=["mnist", "cifar10"], epochs={"mnist": 30, "cifar10": 100},
                 train_subset={"mnist": None, "cifar10": None}, n_eval={"mnist": 10000, "cifar10": 10000},
                 attacks={"mnist": ["fgsm", "pgd", "cw"], "cifar10": ["fgsm", "pgd", "cw"]},
                 keeps=PAPER_KEEPS,
                 subset_datasets=["mnist", "cifar10"], subset_n=1000, subset_keeps=PAPER_KEEPS,
                 subset_seeds=SEEDS)
    return p


def _magnitude_cnn(profile: str) -> dict[str, Any]:
    c = _CNN[profile]
    p = {
        "datasets": ["cifar10"],
        "model": "cnn4",
        "epochs": {"cifar10": c["epochs"], "cifar100": c["epochs"]},
        "train_subset": {"cifar10": c["train_subset"], "cifar100": c["train_subset"]},
        "seeds": [0, 1],
        "methods": ["magnitude", "random"],
        "keeps": [1.0, 0.7, 0.4],
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 200,
    }
    if profile == "cpu":
        p.update(seeds=SEEDS, keeps=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], n_eval=200)
    elif profile == "paper":
        # CIFAR-100 is not available offline; the notebook says so and skips it when missing.
        p.update(datasets=["cifar10", "cifar100"], seeds=SEEDS, keeps=PAPER_KEEPS, n_eval=10000)
    return p


def _score_vit(profile: str) -> dict[str, Any]:
    p = {
        # pretrained ViT weights are not available offline: vit_small is trained from scratch
        "model": "vit_small",
        "datasets": ["cifar10", "imagenette"],
        "image_size": {"cifar10": None, "cifar100": None, "imagenet100": 64, "imagenette": 64},
        "epochs": {"cifar10": 1, "cifar100": 1, "imagenet100": 1, "imagenette": 1},
        "train_subset": {"cifar10": 500, "cifar100": 500, "imagenet100": 500, "imagenette": 500},
        "seeds": [0],
        "methods": ["taylor", "random"],
        # Taylor scores (App. I: 20 batches of training images) from at most this many images
        "score_examples": 256,
        "keeps": [1.0, 0.5],
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "fgsm_extra_eps": ["8/255"],
        "n_eval": 50,
        "subset_attacks": [],
        "subset_n": 50,
        "subset_keeps": [1.0, 0.5],
        "subset_seeds": [0],
    }
    if profile == "cpu":
        # a 1.8M-parameter ViT trains at ~50 images/s on one CPU core: small budgets throughout
        p.update(seeds=SEEDS, train_subset={k: 1000 for k in p["train_subset"]}, score_examples=384,
                 epochs={k: 2 for k in p["epochs"]}, keeps=[1.0, 0.75, 0.5, 0.25], n_eval=64,
                 subset_attacks=["cw"], subset_n=50, subset_keeps=[1.0, 0.6, 0.2], subset_seeds=[0])
    elif profile == "paper":
        # App. I fine-tunes an ImageNet-pretrained ViT for 10 epochs; offline it is trained from
        # scratch. CIFAR-100 and ImageNet-100 are used when available (else skipped, with a note);
        # Imagenette at 64 px is the offline stand-in for the ImageNet subset.
        p.update(datasets=["cifar10", "cifar100", "imagenet100", "imagenette"],
                 epochs={k: 10 for k in p["epochs"]}, train_subset={k: None for k in p["train_subset"]},
                 seeds=SEEDS, keeps=PAPER_KEEPS, attacks=["fgsm", "pgd", "cw"], n_eval=10000,
                 score_examples=None,
                 subset_attacks=["autoattack"], subset_n=1000, subset_keeps=PAPER_KEEPS, subset_seeds=SEEDS)
    return p


def _depth(profile: str) -> dict[str, Any]:
    p = {
        "models": ["mlp", "mlp3", "mlp4"],
        "dataset": "mnist",
        **_mnist(profile),
        "methods": ["magnitude", "random"],
        "keeps": QUICK_KEEPS,
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 1000,
    }
    if profile == "cpu":
        p.update(keeps=[1.0, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1], n_eval=2000)
    elif profile == "paper":
        p.update(keeps=PAPER_KEEPS, n_eval=10000)
    return p


def _algorithm1(profile: str) -> dict[str, Any]:
    p = {
        "model": "mlp",
        "dataset": "mnist",
        **_mnist(profile),
        "lambdas": [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0],
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
        p.update(lambdas=[round(0.05 * i, 2) for i in range(21)], n_eval=2000, grid_keeps=CPU_KEEPS)
    elif profile == "paper":
        p.update(lambdas=PAPER_LAMBDAS, n_eval=10000, grid_keeps=PAPER_KEEPS)
    return p


def _pareto(profile: str) -> dict[str, Any]:
    return {
        # result tables of the sibling notebooks (relative to the executed notebook's folder)
        "mlp_table": "results/magnitude_mlp/sweep.csv",
        "vit_table": "results/score_vit/sweep.csv",
        "mlp_attacks": ["fgsm", "pgd", "cw"],
        "vit_attack": "fgsm",
        "eps": EPS,
        # bound-space front of Lemma 2 for the MNIST MLP
        "model": "mlp",
        "dataset": "mnist",
        **_mnist(profile),
        "n_front": 101,
    }


def _own_model(profile: str) -> dict[str, Any]:
    p = {
        "width": 16,
        "dataset": "mnist",
        "epochs": 1,
        "train_subset": 5000,
        "seeds": [0],
        "methods": ["magnitude", "random"],
        "keeps": [1.0, 0.8, 0.6, 0.4, 0.2],
        "attacks": ["fgsm", "pgd"],
        "eps": EPS,
        "n_eval": 500,
    }
    if profile == "cpu":
        p.update(epochs=2, train_subset=20000, seeds=SEEDS, n_eval=1000)
    elif profile == "paper":
        p.update(epochs=5, train_subset=None, seeds=SEEDS, keeps=PAPER_KEEPS, n_eval=10000)
    return p


_BUILDERS = {
    "risk_vs_keep": _risk_vs_keep,
    "magnitude_mlp": _magnitude_mlp,
    "magnitude_cnn": _magnitude_cnn,
    "score_vit": _score_vit,
    "depth": _depth,
    "algorithm1": _algorithm1,
    "pareto": _pareto,
    "own_model": _own_model,
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
