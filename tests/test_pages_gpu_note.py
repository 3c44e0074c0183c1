"""pages.gpu_note: competence and the measured training budget of the ViT page, in words."""
from __future__ import annotations

import pandas as pd

from prunerob.studies import pages


def _models(accs):
    return pd.DataFrame([{"arch": "vit_small", "dataset": "cifar10", "seed": i, "epochs": 2, "n_train": 1000,
                          "test_acc": a, "train_seconds": 60.0 + 10 * i, "device": "cpu (1 threads)"}
                         for i, a in enumerate(accs)])


def test_gpu_note_needs_gpu_below_threshold():
    m = _models([0.25, 0.9])
    text = pages.gpu_note(m, pages.competence_of(m), ran_autoattack=False)
    assert text.startswith("**Not competent on this budget**")
    assert "not competent (25.0% < 70.0%)" in text and "65 s of training per model" in text
    assert "1,000 training images" in text and "was not run" in text


def test_gpu_note_competent():
    m = _models([0.8, 0.75])
    text = pages.gpu_note(m, pages.competence_of(m), ran_autoattack=True)
    assert text.startswith("**Competent on this budget**") and "ran on the subset" in text
