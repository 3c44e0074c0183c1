"""Tests of prunerob.render.plotting: seaborn bands equal the project's intervals
(prunerob.analysis.stats), the
paired-gain companion panel, page-width readability, numbered-figure output; and the statistics
it re-exports (known answers, Pareto mask by brute force)."""
from __future__ import annotations

import math
import struct
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from prunerob.analysis import stats  # noqa: E402
from prunerob.config import ConfigError  # noqa: E402
from prunerob.render import plotting as P  # noqa: E402
from prunerob.render.plotting import (  # noqa: E402
    accuracy_summary,
    attack_summary,
    caption,
    keep_at_drop,
    load_table,
    mean_ci,
    pareto_mask,
    pct,
    plot_accuracy_vs_keep,
    pp,
    save_figure,
    save_table,
)

# Student-t quantiles from a printed table (two-sided 95%): dof 1 -> 12.706, dof 2 -> 4.303
T95_DOF1, T95_DOF2 = 12.706, 4.303


def test_mean_ci_known_answer():
    df = pd.DataFrame({"k": [1, 1, 1, 2, 2, 3], "v": [1.0, 2.0, 3.0, 0.5, 1.5, 7.0]})
    s = mean_ci(df, "k", "v").set_index("k")
    # group 1: mean 2, sample std 1, half = t(2) * 1 / sqrt(3)
    assert s.loc[1, "mean"] == pytest.approx(2.0)
    assert s.loc[1, "std"] == pytest.approx(1.0)
    assert s.loc[1, "half"] == pytest.approx(T95_DOF2 / math.sqrt(3), abs=1e-3)
    assert s.loc[1, "lo"] == pytest.approx(2.0 - T95_DOF2 / math.sqrt(3), abs=1e-3)
    # group 2: mean 1, std sqrt(0.5), half = t(1) * sqrt(0.5) / sqrt(2) = t(1) / 2
    assert s.loc[2, "half"] == pytest.approx(T95_DOF1 / 2, abs=1e-3)
    assert s.loc[2, "n"] == 2
    # a single run has no interval
    assert s.loc[3, "mean"] == 7.0 and s.loc[3, "n"] == 1
    assert math.isnan(s.loc[3, "lo"]) and math.isnan(s.loc[3, "hi"])


def test_mean_ci_level_and_errors():
    df = pd.DataFrame({"k": [0, 0, 0], "v": [1.0, 2.0, 3.0]})
    wide = mean_ci(df, ["k"], "v", level=0.99).half.iloc[0]
    narrow = mean_ci(df, ["k"], "v", level=0.90).half.iloc[0]
    assert wide > narrow
    # 90% two-sided, dof 2: t = 2.920 (table)
    assert narrow == pytest.approx(2.920 / math.sqrt(3), abs=1e-3)
    with pytest.raises(ConfigError, match="not in the table"):
        mean_ci(df, "missing", "v")
    with pytest.raises(ConfigError, match="level"):
        mean_ci(df, "k", "v", level=95)


def _brute_pareto(points, maximize=True):
    p = np.asarray(points, float)
    if not maximize:
        p = -p
    out = []
    for i, a in enumerate(p):
        if not np.isfinite(a).all():
            out.append(False)
            continue
        dominated = False
        for j, b in enumerate(p):
            if i == j or not np.isfinite(b).all():
                continue
            if all(b[t] >= a[t] for t in range(len(a))) and any(b[t] > a[t] for t in range(len(a))):
                dominated = True
                break
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("maximize", [True, False])
def test_pareto_mask_matches_brute_force(seed, maximize):
    rng = np.random.default_rng(seed)
    # integer grid -> many ties and exact duplicates
    pts = rng.integers(0, 6, size=(40, 2 + seed % 2)).astype(float)
    if seed % 3 == 0:
        pts[5, 0] = np.nan
    np.testing.assert_array_equal(pareto_mask(pts, maximize=maximize), _brute_pareto(pts, maximize))


def test_pareto_mask_hand_example():
    # (clean, attacked): (0.9, 0.5) and (0.8, 0.6) trade off; (0.7, 0.5) is dominated by both;
    # (0.9, 0.5) duplicated: duplicates do not dominate each other.
    pts = [(0.9, 0.5), (0.8, 0.6), (0.7, 0.5), (0.9, 0.5), (0.8, 0.55)]
    assert pareto_mask(pts).tolist() == [True, True, False, True, False]
    # minimisation (bound space): the smallest (gamma, zeta) pairs
    assert pareto_mask([(1, 3), (2, 2), (3, 1), (3, 3)], maximize=False).tolist() == [True, True, True, False]
    # mixed directions: maximise first, minimise second
    assert pareto_mask([(1, 1), (2, 1), (2, 0)], maximize=[True, False]).tolist() == [False, False, True]
    with pytest.raises(ConfigError):
        pareto_mask([1, 2, 3])


def _table(n=200, bits=False):
    """Two methods, four keep ratios, three seeds; attacked accuracy peaks at keep 0.8 and the
    per-seed noise differs between keep ratios (so every interval has a positive width)."""
    rows = []
    adv = {1.0: 0.50, 0.9: 0.55, 0.8: 0.60, 0.5: 0.40}
    clean = {1.0: 0.98, 0.9: 0.97, 0.8: 0.95, 0.5: 0.70}
    noise = {1.0: (0.0, 0.005, -0.005), 0.9: (-0.01, 0.0, 0.015), 0.8: (-0.01, 0.0, 0.01),
             0.5: (0.02, -0.01, 0.0)}
    rng = np.random.default_rng(0)
    for seed in range(3):
        for k in adv:
            for method in ("magnitude", "random"):
                drop = 0.2 if method == "random" and k < 1 else 0.0
                a = round((adv[k] + noise[k][seed] - drop) * n) / n
                row = dict(model="mlp", dataset="mnist", method=method, keep_ratio=k, attack="fgsm",
                           eps=4 / 255, seed=seed, n=n, clean_acc=clean[k] - drop, adv_acc=a, attack_steps=1,
                           attack_alpha=4 / 255, attack_restarts=1, attack_seed=0, device="cpu (1 threads)")
                if bits:
                    v = np.zeros(n, dtype=bool)
                    v[rng.permutation(n)[: int(round(a * n))]] = True
                    row["adv_bits"] = np.packbits(v).tobytes().hex()
                rows.append(row)
    return pd.DataFrame(rows)


def _band(ax, index=0):
    """{x: (lo, hi)} of the index-th seaborn band (a PolyCollection from fill_between)."""
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    verts = polys[index].get_paths()[0].vertices
    out = {}
    for x, y in verts:
        if np.isfinite(y):
            lo, hi = out.get(round(float(x), 9), (math.inf, -math.inf))
            out[round(float(x), 9)] = (min(lo, y), max(hi, y))
    return out, polys


def test_accuracy_band_is_the_t_interval_over_seeds():
    t = _table()
    fig, ax = plt.subplots()
    plot_accuracy_vs_keep(t, ax, methods=["magnitude"], clean=False)
    band, polys = _band(ax)
    assert len(polys) == 1
    m = t[t.method == "magnitude"]
    for k, g in m.groupby("keep_ratio"):
        mean, lo, hi = stats.t_interval(g.adv_acc, 0.95)
        assert band[round(k, 9)] == pytest.approx((100 * lo, 100 * hi), abs=1e-9)
    # the line is the mean over seeds, in percent
    y = dict(zip(ax.lines[0].get_xdata(), ax.lines[0].get_ydata(), strict=True))
    assert y[0.8] == pytest.approx(100 * m[m.keep_ratio == 0.8].adv_acc.mean())
    assert ax.xaxis_inverted() and ax.get_xlabel() == P.KEEP_LABEL and ax.get_ylabel() == "accuracy (%)"
    plt.close(fig)
    # a different level gives a different (wider) band: the band is not a fixed seaborn default
    fig, ax = plt.subplots()
    plot_accuracy_vs_keep(t, ax, methods=["magnitude"], clean=False, level=0.99)
    wide, _ = _band(ax)
    assert wide[0.8][1] - wide[0.8][0] > band[0.8][1] - band[0.8][0]
    plt.close(fig)


def test_plot_accuracy_vs_keep_draws_clean_and_attacked_per_method_and_rejects_mixed_tables():
    t = _table()
    fig, ax = plt.subplots()
    plot_accuracy_vs_keep(t, ax)
    assert len(ax.lines) >= 4  # 2 methods x (clean, attacked)
    labels = [x.get_text() for x in ax.get_legend().get_texts()]
    assert any("random" in lab for lab in labels) and "FGSM 4/255" in labels and "clean" in labels
    plt.close(fig)
    t2 = pd.concat([t, t.assign(model="mlp3")])
    fig, ax = plt.subplots()
    with pytest.raises(ConfigError, match="one model"):
        plot_accuracy_vs_keep(t2, ax)
    with pytest.raises(ConfigError, match="no rows"):
        plot_accuracy_vs_keep(t, ax, attack="pgd")
    with pytest.raises(ConfigError, match="level"):
        P.t_errorbar(95)
    plt.close(fig)


def test_gain_band_is_the_paired_gain_interval():
    t = _table()
    fig, ax = plt.subplots()
    out = P.plot_gain_vs_keep(t, ax, methods=["magnitude"])
    g = stats.paired_gains(t[t.method == "magnitude"]).set_index("keep_ratio")
    assert out["interval"] == "t over seeds"
    band, _ = _band(ax)
    for k in (0.9, 0.8, 0.5):
        assert band[k] == pytest.approx((100 * g.loc[k, "gain_lo"], 100 * g.loc[k, "gain_hi"]), abs=1e-9)
    # the line is the mean paired gain in pp; keep 1 is 0 by construction
    y = dict(zip(ax.lines[-1].get_xdata(), ax.lines[-1].get_ydata(), strict=True))
    assert y[0.8] == pytest.approx(100 * g.loc[0.8, "gain"]) and y[1.0] == 0.0
    # the axis is scaled to the effect, not 0-100 %
    lo, hi = ax.get_ylim()
    assert hi - lo < 40
    # the +-1 example band (resolution 1/n = 0.5 pp) is drawn
    spans = [p for p in ax.patches if p.get_label() == "±1 test example"]
    assert len(spans) == 1
    ys = spans[0].get_path().transformed(spans[0].get_patch_transform()).vertices[:, 1]
    assert (min(ys), max(ys)) == pytest.approx((-0.5, 0.5))
    plt.close(fig)


def test_one_seed_gain_band_is_the_paired_bootstrap_over_examples():
    t = _table(bits=True)
    t = t[(t.seed == 1) & (t.method == "magnitude")]
    fig, ax = plt.subplots()
    out = P.plot_gain_vs_keep(t, ax)
    assert out["interval"] == "bootstrap over examples"
    g = stats.paired_gains(t).set_index("keep_ratio")
    band, _ = _band(ax)
    assert band[0.8] == pytest.approx((100 * g.loc[0.8, "gain_lo"], 100 * g.loc[0.8, "gain_hi"]), abs=1e-9)
    plt.close(fig)


def test_resolution_note_when_one_example_is_coarser_than_the_interval():
    t = _table()
    fig, ax = plt.subplots()
    assert P.plot_gain_vs_keep(t, ax, methods=["magnitude"])["note"] is None  # noisy seeds: intervals > 1/n
    plt.close(fig)
    # every seed gains exactly one image at keep 0.8: no interval, and the figure says why
    flat = t.copy()
    for s in range(3):
        base = flat[(flat.seed == s) & (flat.keep_ratio == 1.0)].adv_acc
        flat.loc[(flat.seed == s) & (flat.keep_ratio == 0.8), "adv_acc"] = base.to_numpy() + 1 / 200
    fig, ax = plt.subplots()
    note = P.plot_gain_vs_keep(flat, ax, methods=["magnitude"])["note"]
    assert "One test example is 0.5 pp (n = 200)" in note and "same number of examples" in note
    plt.close(fig)


def _text_sizes(fig):
    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
            if t.get_text().strip() and t.get_visible()]


def test_accuracy_grid_is_readable_at_page_width():
    t = _table()
    panels = [dict(dataset="mnist", attack="fgsm", eps=4 / 255, title="mlp / mnist / FGSM 4/255"),
              dict(dataset="mnist", title="again")]
    fig = P.accuracy_grid(t, panels)
    w, h = fig.get_size_inches()
    assert w <= P.PAGE_WIDTH_IN + 1e-9
    assert fig.get_layout_engine().__class__.__name__ == "ConstrainedLayoutEngine"
    for text, size in _text_sizes(fig):
        assert P.rendered_font_pt(size, w) >= 9.0, (text, size)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4  # two rows of (accuracy, paired gain): at most two panels per row
    rows = {round(ax.get_position().y0, 3) for ax in visible}
    assert len(rows) == 2
    for ax in visible:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert ax.get_legend() is None  # the one legend sits outside the panels
    assert len(fig.legends) == 1
    notes = " ".join(fig.caption_notes)
    assert "95% t-interval over 3 seeds" in notes and "same seed and test examples" in notes
    plt.close(fig)
    # without the gain panels: at most two panels per row even if more are asked for
    fig = P.accuracy_grid(t, panels * 2, ncols=3, gain=False)
    assert len({round(ax.get_position().y0, 3) for ax in fig.axes if ax.get_visible()}) == 2
    plt.close(fig)
    with pytest.raises(ConfigError, match="no panels"):
        P.accuracy_grid(t, [])


def test_legend_labels_do_not_depend_on_what_was_imported_before():
    # a page rendered from the store may never import the attack and pruning packages; a fresh
    # interpreter that imports only the plotting module must still label FGSM and magnitude pruning
    code = ("import sys; from prunerob.render import plotting as P; "
            "assert 'prunerob.core.attacks' not in sys.modules; "
            "print(P.attack_label('fgsm'), P.attack_label('algorithm1'), '|', P.method_label('magnitude'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import prunerob.core.attacks  # noqa: F401  (the labels below, read in this process)
    import prunerob.core.pruning  # noqa: F401
    want = f"{P.attack_label('fgsm')} algorithm1 | {P.method_label('magnitude')}"
    assert out.strip() == want and want.startswith("FGSM ")


def test_grid_or_placeholder_draws_the_grid_or_says_what_is_missing():
    t = _table()
    fig = P.grid_or_placeholder(t, [dict(dataset="mnist", title="x")], "unused")
    assert sum(ax.get_visible() for ax in fig.axes) == 2  # the accuracy panel and its gain panel
    plt.close(fig)
    fig = P.grid_or_placeholder(t, [], "CIFAR-10: not in this run.")
    texts = [x.get_text() for ax in fig.axes for x in ax.texts]
    assert texts == ["CIFAR-10: not in this run."] and not fig.axes[0].axison
    plt.close(fig)


def test_rendered_font_size_follows_the_page_scaling():
    # a 7-inch 200-dpi figure (1400 px) is shown at 730 px: 9 pt -> 9 * 200/72 * 730/1400 * 0.75
    assert P.rendered_font_pt(9, 7.0) == pytest.approx(9 * 200 / 72 * 730 / 1400 * 0.75)
    # a 14-inch figure would halve it: too small
    assert P.rendered_font_pt(9, 14.0) < 9
    # a small figure is not enlarged beyond its natural size
    assert P.rendered_font_pt(9, 2.0) == pytest.approx(9 * 200 / 72 * 0.75)


def _png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figure_saves_png_svg_and_glues_figure_and_caption(tmp_path, monkeypatch):
    glued = {}
    monkeypatch.setattr(P, "glue", lambda name, value: glued.setdefault(name, value))
    fig = P.accuracy_grid(_table(), [dict(dataset="mnist", title="x")])
    w, h = fig.get_size_inches()
    out = P.figure(fig, "magnitude-mlp-test", "**Test figure.** Profile `quick`.", tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["magnitude-mlp-test.png", "magnitude-mlp-test.svg"]  # no temporary files left
    png = out["png"].read_bytes()
    assert _png_size(png) == (round(w * 200), round(h * 200))  # 200 dpi at the figure's own size
    assert b"<svg" in out["svg"].read_bytes()[:2000]
    assert set(glued) == {"magnitude-mlp-test", "magnitude-mlp-test_caption"}
    assert glued["magnitude-mlp-test"].data == png
    cap = glued["magnitude-mlp-test_caption"].data
    assert cap.startswith("**Test figure.**") and "t-interval over 3 seeds" in cap and cap == out["caption"]
    assert not plt.fignum_exists(fig.number)
    with pytest.raises(ConfigError, match="figure name"):
        P.figure(plt.figure(), "bad name", "c")
    plt.close("all")


def test_interval_lineplot_band_is_the_t_interval():
    d = pd.DataFrame({"lam": [0.1, 0.1, 0.1, 0.2, 0.2, 0.2], "acc": [0.5, 0.6, 0.7, 0.2, 0.25, 0.4]})
    fig, ax = plt.subplots()
    P.interval_lineplot(d, "lam", "acc", ax, scale=100)
    band, _ = _band(ax)
    _, lo, hi = stats.t_interval([0.5, 0.6, 0.7])
    assert band[0.1] == pytest.approx((100 * lo, 100 * hi))
    with pytest.raises(ConfigError, match="not in the table"):
        P.interval_lineplot(d, "lam", "missing", ax)
    plt.close(fig)


def test_keep_at_drop_known_answer():
    t = _table()
    t = t.assign(clean_acc=t.clean_acc)
    k = keep_at_drop(t, drop=0.05).set_index("method")
    # magnitude clean: 0.98, 0.97, 0.95 (within 0.05), 0.70 (not): smallest tolerated keep 0.8
    assert k.loc["magnitude", "keep_min"] == 0.8
    # random: 0.98, then 0.77 -> only the dense model
    assert k.loc["random", "keep_min"] == 1.0
    assert keep_at_drop(t, drop=0.5).set_index("method").loc["magnitude", "keep_min"] == 0.5


def test_accuracy_summary_wide():
    s = accuracy_summary(_table())
    row = s[(s.method == "magnitude") & (s.keep_ratio == 0.8)].iloc[0]
    assert row.adv_mean == pytest.approx(0.60) and row.clean_mean == pytest.approx(0.95)
    assert row.adv_n == 3


def test_caption_names_settings():
    t = _table()
    text = caption("Fig. 2", profile="quick", data=["MNIST, exact bytes from somewhere"], epochs=2,
                   seeds=[0, 1, 2], n_eval=100, device="cpu (1 threads)", attacks=t)
    for piece in ("quick", "MNIST, exact bytes", "2 epoch", "3 seeds", "95% t-interval", "FGSM", "4/255",
                  "1 step", "attack seed 0", "n = 200", "cpu (1 threads)"):
        assert piece in text, piece
    one = caption("x", profile="cpu", data="d", epochs=1, seeds=[0], n_eval=5, device="cpu")
    assert "one run (seed 0)" in one.lower()
    assert "PGD" not in attack_summary(t)
    t2 = t.assign(attack_seed=t.seed)
    summ = attack_summary(t2)
    assert summ.count("FGSM") == 1 and "attack seeds 0, 1, 2" in summ


def test_save_figure_and_table(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, tmp_path / "out", "fig")
    plt.close(fig)
    assert sorted(p.name for p in paths) == ["fig.png", "fig.svg"]
    assert _png_size((tmp_path / "out" / "fig.png").read_bytes()) == (600, 400)
    assert b"<svg" in (tmp_path / "out" / "fig.svg").read_bytes()[:2000]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fig.png", "fig.svg"]  # no temp files
    t = _table()
    p = save_table(t, tmp_path / "out", "sweep")
    back = load_table(p)
    assert back.shape == t.shape and back.adv_acc.tolist() == pytest.approx(t.adv_acc.tolist())
    assert load_table(tmp_path / "missing.csv") is None


def test_number_formatting():
    assert pct(0.91234) == "91.2%" and pct(float("nan")) == "n/a"
    assert pp(0.031) == "+3.1 pp" and pp(-0.0) == "+0.0 pp"
    assert pp(-0.00001) == "+0.0 pp" and pp(-0.02) == "-2.0 pp"


def test_step_sizes_read_in_grey_levels_where_the_decimal_is_long():
    """PGD-50x5's step ε/20 at ε = 4/255 is 0.2/255, not 0.000784314; short decimals stay as they are."""
    from prunerob.render.plotting import _fmt_alpha

    assert [_fmt_alpha(x) for x in (4 / 255 / 20, 2 / 255, 8 / 255 / 10, 0.01, 0.025, 0.1, 0.0075)] == [
        "0.2/255", "2/255", "0.8/255", "0.01", "0.025", "0.1", "0.0075"]
    assert _fmt_alpha(float("nan")) == "n/a" and _fmt_alpha("x") == "x"
