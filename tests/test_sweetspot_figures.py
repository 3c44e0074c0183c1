"""The caption helper of the sweet-spot figures (prunerob.studies.sweetspot.figures.attack_grid_text) and the
chapter's example selection (prunerob.studies.sweetspot.models.examples_on)."""
from __future__ import annotations

import pandas as pd
import torch

from prunerob.core.data import ArrayDataset
from prunerob.core.models import build_model
from prunerob.core.subsets import select_examples
from prunerob.studies.sweetspot.figures import attack_grid_text
from prunerob.studies.sweetspot.models import examples_on


def _rows(attack: str, epss: list[float], alpha_of, steps: int, seeds=(0, 1), n: int = 100) -> pd.DataFrame:
    return pd.DataFrame([dict(attack=attack, eps=e, attack_steps=steps, attack_restarts=1,
                              attack_alpha=alpha_of(e), attack_seed=s, n=n) for e in epss for s in seeds])


def test_grid_text_names_step_size_as_a_multiple_of_eps_and_lists_the_grid():
    rows = pd.concat([_rows("fgsm", [0.0, 4 / 255, 0.1], lambda e: e, 1),
                      _rows("pgd", [0.0, 4 / 255, 0.1], lambda e: e / 2.5, 5)])
    text = attack_grid_text(rows)
    assert text == ("FGSM (L∞, 1 step, 1 restart, step size ε, attack seeds 0, 1, n = 100 test images) at "
                    "ε = 0, 4/255, 0.1; PGD (L∞, 5 steps, 1 restart, step size 0.4ε, attack seeds 0, 1, "
                    "n = 100 test images) at ε = 0, 4/255, 0.1")


def test_grid_text_integer_divisor_and_unequal_step_sizes():
    assert "step size ε/4" in attack_grid_text(_rows("pgd", [0.05, 0.1], lambda e: e / 4, 10))
    mixed = _rows("pgd", [0.05, 0.1], lambda e: 0.01, 10)
    assert "step sizes 0.01, 0.01" in attack_grid_text(mixed)
    assert attack_grid_text(pd.DataFrame()) == "no attack"


def test_examples_on_is_the_sweeps_selection():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (50,), generator=g)
    data = ArrayDataset("mnist", "test", x, y, 10, (0.5,), (0.3,), "synthetic data")
    model = build_model("mlp", data.info, hidden=(8,))
    dev, xf, yy, desc = examples_on(model, data, 20, 3, "cpu")
    xs, ys, desc2 = select_examples(data, 20, 3)
    assert dev.type == "cpu" and desc == desc2 and xf.dtype == torch.float32
    assert torch.equal(yy, ys) and torch.allclose(xf, xs.float() / 255 if xs.dtype == torch.uint8 else xs)


def test_mechanism_text_names_a_metric_that_correlates_against_its_prediction():
    from prunerob.studies.sweetspot.verdict import _mechanism, contradicted

    mech = pd.DataFrame([
        dict(metric="grad_l1", expected_sign="-", rho=-0.9, p=1e-9, rho_within=-0.7, p_within=1e-5,
             points=40, alpha_bonferroni=0.025, supported=True),
        dict(metric="lipschitz", expected_sign="-", rho=0.8, p=1e-8, rho_within=0.1, p_within=0.5,
             points=40, alpha_bonferroni=0.025, supported=False),
    ])
    assert list(contradicted(mech).metric) == ["lipschitz"]
    assert "against its predicted sign, across keep ratios: lipschitz (predicted sign -" in _mechanism(mech)
    weak = mech.assign(p=0.03)  # above the Bonferroni level: neither supported nor contradicted
    assert contradicted(weak).empty and "against" not in _mechanism(weak.assign(supported=False))
