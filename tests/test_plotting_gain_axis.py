"""The paired-gain panel's axis is scaled to the effect near zero (plotting._scale_gain_axis)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from prunerob.render.plotting import _scale_gain_axis


def _gains(values):
    return pd.DataFrame({"keep_ratio": [1.0, 0.9, 0.5, 0.05][: len(values)], "gain": values,
                         "gain_lo": [v - 0.002 for v in values], "gain_hi": [v + 0.002 for v in values],
                         "resolution": 1e-4})


def test_large_losses_are_clipped_and_named():
    fig, ax = plt.subplots()
    ax.plot([1.0, 0.05], [0.0, -80.0])
    note = _scale_gain_axis(ax, _gains([0.0, 0.003, -0.01, -0.8]))
    bottom, top = ax.get_ylim()
    assert -3.0 < bottom < -1.0 and 0.5 < top < 1.0  # 4 x 0.5 pp interval top, not -80 pp
    assert note is not None and "0.05" in note and "-80.2 pp" in note
    plt.close(fig)


def test_small_losses_keep_the_automatic_axis():
    fig, ax = plt.subplots()
    ax.plot([1.0, 0.5], [0.0, -1.0])
    before = ax.get_ylim()
    assert _scale_gain_axis(ax, _gains([0.0, 0.003, -0.01])) is None
    assert ax.get_ylim() == before
    plt.close(fig)
