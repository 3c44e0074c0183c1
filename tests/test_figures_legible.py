"""The book's figures are legible at the width they are shown (issue 25): fonts >= 9 pt at the
content width, no text outside its axes, integer epoch ticks, one ε notation, no legend over a curve,
no empty panel, registry labels, and no ``np.float64`` / ``-0.0`` text. Each test fails on the figure
code before the fix."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from prunerob.core.attacks import get_attack  # noqa: E402
from prunerob.core.pruning import get_method  # noqa: E402
from prunerob.render import plotting as P  # noqa: E402
from prunerob.render import theory_figures as TF  # noqa: E402
from prunerob.studies.sweetspot import figures as SF  # noqa: E402


def _texts(fig):
    fig.canvas.draw()
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]


def _fonts_ok(fig):
    w = fig.get_size_inches()[0]
    assert w <= P.PAGE_WIDTH_IN + 1e-9
    for t in _texts(fig):
        assert P.rendered_font_pt(t.get_fontsize(), w) >= 9.0, (t.get_text(), t.get_fontsize())


def _inside_figure(fig):
    """Every visible text lies within the figure canvas (nothing cut off at an edge)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    W, H = fig.canvas.get_width_height()
    ticks = {id(t) for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    for t in _texts(fig):
        if id(t) in ticks:  # tick labels outside the view limits exist but are not drawn
            continue
        bb = t.get_window_extent(r)
        assert bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= W + 1 and bb.y1 <= H + 1, t.get_text()


def _sweep():
    rows = []
    keeps = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    for seed in range(3):
        for k in keeps:
            for method in ("magnitude", "random"):
                drop = (1 - k) * (0.9 if method == "random" else 0.3)
                rows.append(dict(model="mlp", dataset="mnist", method=method, keep_ratio=k, attack="fgsm",
                                 eps=4 / 255, seed=seed, n=1000, clean_acc=0.98 - drop,
                                 adv_acc=0.9 - drop + 0.002 * seed * (k < 1), device="cpu"))
    return pd.DataFrame(rows)


def test_registry_labels_replace_the_plotting_dictionaries():
    assert P.attack_label("cw") == get_attack("cw").label
    assert P.attack_label("fgsm") == get_attack("fgsm").label
    assert P.method_label("magnitude") == get_method("magnitude").label
    assert P.METHOD_LABELS["random"] == get_method("random").label
    assert P.method_label("algorithm1") == "algorithm1"  # not a pruning method: its own name


def test_off_scale_note_is_short_inside_the_axes_and_large_enough():
    fig = P.accuracy_grid(_sweep(), [dict(dataset="mnist", attack="fgsm", eps=4 / 255, title="mlp")])
    _fonts_ok(fig)
    _inside_figure(fig)
    gain_ax = fig.axes[1]
    notes = [t for t in gain_ax.texts if "off scale" in t.get_text()]
    assert notes and all(len(line) < 40 for t in notes for line in t.get_text().splitlines())
    # the two panels share the width: neither is squeezed by a long note
    w0, w1 = (ax.get_position().width for ax in fig.axes[:2])
    assert 0.6 < w0 / w1 < 1.6
    # keep-ratio axes have ticks every 0.2 (not just 1.0 and 0.5)
    assert len([t for t in gain_ax.get_xticks() if 0 <= t <= 1]) >= 5
    plt.close(fig)


def test_training_curve_has_integer_epoch_ticks_and_a_legend_outside_the_axes():
    curve = pd.DataFrame({"epoch": [1, 2, 3, 4], "test_acc": [0.6, 0.68, 0.71, 0.73], "seed": 0})
    fig = P.training_curve_figure(curve, 0.7, 4)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax.get_legend() is None and len(fig.legends) == 1
    _fonts_ok(fig)
    plt.close(fig)


def test_training_curves_have_one_panel_per_data_set_and_one_legend():
    """score_vit's curve figure: one panel per data set, each with its own threshold and epoch count,
    and one shared legend that names the threshold once (the numbers differ per panel)."""
    c10 = pd.DataFrame({"epoch": [1, 2, 3], "test_acc": [0.6, 0.72, 0.8], "seed": 0})
    inet = pd.DataFrame({"epoch": list(range(1, 61)), "test_acc": [0.3 + i / 200 for i in range(60)],
                         "seed": 0})
    fig = P.training_curves_figure([("cifar10", c10, 0.75, 3), ("imagenette (32 px)", inet, 0.6, 60)])
    fig.canvas.draw()
    assert [ax.get_title() for ax in fig.axes] == ["cifar10", "imagenette (32 px)"]
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("competence threshold") == 1 and "epochs the profile uses" in labels
    assert [round(ax.lines[1].get_ydata()[0]) for ax in fig.axes] == [75, 60]  # each panel's own threshold
    _fonts_ok(fig)
    plt.close(fig)


def _risk():
    rows = []
    for seed in (0, 1):
        for k in (1.0, 0.7, 0.4, 0.1):
            for eps in (0.5, 1.0):
                rows.append(dict(seed=seed, keep_ratio=k, eps=eps, sampling_mean=k * eps + 0.01 * seed,
                                 worst_case=10 * k * eps + 0.1 * seed, zeta_est=(1 - k) * 50 + seed,
                                 thm1_printed=100 * k, thm1_corrected=1e12 * k + seed, sampling_max=2 * k))
    return pd.DataFrame(rows)


def test_risk_figure_has_no_empty_panel_and_no_legend_over_curves():
    fig = TF.risk_figure(_risk(), [0.5, 1.0])
    _fonts_ok(fig)
    _inside_figure(fig)
    for ax in fig.axes:
        assert ax.get_visible()
        has_data = bool(ax.lines or ax.collections)
        if has_data:
            assert ax.get_legend() is None  # no legend on a panel with curves
            assert "logits" in ax.get_ylabel()  # γ and ζ state their output space
        else:
            assert ax.get_legend() is not None  # the fourth slot holds the key
    plt.close(fig)


def test_bounds_figure_moves_a_curve_far_above_the_rest_to_its_own_panel():
    d = _risk()
    fig = TF.bounds_figure([(d, ["thm1_printed", "thm1_corrected", "worst_case"], "risk", "Theorem 1")])
    axes = [ax for ax in fig.axes if ax.lines]
    assert len(axes) == 2
    left_labels = [ln.get_label() for ln in axes[0].lines]
    assert TF.RISK_LINES["thm1_corrected"][0] not in left_labels
    assert axes[0].get_ylim()[1] < 1e6  # the others keep their resolution
    _fonts_ok(fig)
    plt.close(fig)


def test_choices_legends_have_plain_numbers_and_sit_under_the_panels():
    rows = []
    for lam in (0.0, 0.5, 1.0):
        for mode in ("uniform", "layerwise"):
            for method in ("algorithm1", "minimiser"):
                rows.append(dict(lam=lam, mode=mode, method=method, keep_1=np.float64(lam),
                                 keep_2=np.float64(1 - lam), clean_acc=0.9, adv_acc_fgsm=0.5, seed=0))
    fig = TF.choices_figure(pd.DataFrame(rows), ["uniform", "layerwise"], ["keep_1", "keep_2"],
                            {"clean_acc": "clean", "adv_acc_fgsm": "FGSM"})
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            assert leg.get_window_extent(r).y1 <= ax.get_window_extent(r).y0 + 1  # below the panel
            assert not any("np.float64" in t.get_text() for t in leg.get_texts())
    _fonts_ok(fig)
    plt.close(fig)


def test_zoom_labels_do_not_overlap_and_stay_inside():
    keeps = np.round(np.arange(1.0, 0.04, -0.05), 2)
    grid = pd.DataFrame({"keep_ratio": keeps, "clean": 0.98 - 0.2 * (1 - keeps) ** 3,
                         "adv": 0.95 - 0.3 * (1 - keeps) ** 3})
    chosen = pd.DataFrame({"clean": [0.97], "adv": [0.94], "mode": ["uniform"], "method": ["algorithm1"]})
    fig = TF.chosen_vs_grid_figure(grid, chosen, "FGSM")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    zoom = fig.axes[1]
    boxes = [t.get_window_extent(r) for t in zoom.texts]
    assert boxes
    ab = zoom.get_window_extent(r)
    for i, b in enumerate(boxes):
        assert ab.x0 - 1 <= b.x0 and b.x1 <= ab.x1 + 1 and ab.y0 - 1 <= b.y0 and b.y1 <= ab.y1 + 1
        assert not any(b.overlaps(o) for o in boxes[i + 1:])
    plt.close(fig)


def test_accuracy_fronts_leave_no_empty_slot():
    m = pd.DataFrame({"keep_ratio": [1.0, 0.5], "clean_mean": [0.9, 0.8], "adv_mean": [0.5, 0.6],
                      "pareto": [True, True]})
    fig = TF.accuracy_front_figure([(f"panel {i}", m) for i in range(7)])
    for ax in fig.axes:
        assert ax.lines or ax.collections or ax.get_legend() is not None or ax.get_label() == "<colorbar>"
    _fonts_ok(fig)
    plt.close(fig)


def _gains():
    rows = []
    for att in ("fgsm", "pgd"):
        for k in (1.0, 0.9, 0.5):
            for e in (0.0, 4 / 255, 0.05):
                g = -0.0004 if k == 0.9 else (-0.05 if k == 0.5 else 0.0)
                rows.append(dict(attack=att, keep_ratio=k, eps=e, gain=g,
                                 significant="loss" if k == 0.5 and e > 0 else "none"))
    return pd.DataFrame(rows)


def test_heatmap_one_eps_notation_no_minus_zero_and_an_honest_key():
    fig = SF.heatmap(_gains(), ["fgsm", "pgd"])
    texts = [t.get_text() for t in _texts(fig)]
    assert not any(t.startswith("-0.0") for t in texts)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    # decimals, with the paper's k/255 in brackets where ε is one
    assert ticks[1].startswith("0.016") and "4/255" in ticks[1] and ticks[2] == "0.05"
    assert "* significant gain" not in ax.get_title() and "no significant gain" in ax.get_title()
    # the p = 1 baseline row (0 by definition) is left out
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.9", "0.5"]
    _fonts_ok(fig)
    _inside_figure(fig)
    assert "uncorrected" in ax.get_title()  # the stars are per-cell flags, not the corrected verdict
    plt.close(fig)


def test_mechanism_panels_have_y_labels():
    mech = pd.DataFrame([dict(seed=s, keep_ratio=k, margin=1.0 + s, grad_l1=2.0, radius_ok=0.9,
                              lipschitz=3.0 + k) for s in range(3) for k in (1.0, 0.5)])
    fig = SF.mechanism_curves(mech, ["margin", "grad_l1", "radius_ok", "lipschitz"])
    assert all(ax.get_ylabel() for ax in fig.axes if ax.get_visible())
    _fonts_ok(fig)
    plt.close(fig)


@pytest.mark.parametrize("name", ["theory/theorem2.md", "theory/tradeoff.md"])
def test_theory_figures_are_captioned_and_numbered(name):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "book" / name).read_text()
    shows = text.count("plt.show()")
    assert shows and text.count("  figure:\n    name: fig-") == shows


def test_off_scale_keep_text_with_gaps():
    """Keep ratios cut off the gain axis that are not every keep below the largest (a gap) are
    listed, not summarised, and a list of another length never breaks the comparison."""
    from prunerob.render.plotting import _keep_set

    keeps = [1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert _keep_set([0.3, 0.2, 0.1], keeps) == "p ≤ 0.3"
    assert _keep_set([0.7, 0.5, 0.3, 0.1, 0.2], keeps) == "p = 0.7, 0.5, 0.3, …"
    assert _keep_set([], keeps) == ""
