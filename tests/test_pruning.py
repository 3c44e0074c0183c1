"""Known-answer tests for prunerob.core.pruning (paper Sec. 3, App. I)."""
from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.pruning import (
    METHODS,
    apply_masks,
    bernoulli_masks,
    magnitude_keep_probs_threshold,
    magnitude_masks,
    make_masks,
    masked_weights,
    n_kept,
    prunable_weights,
    random_masks,
    score_masks,
    smooth_magnitude_keep_probs,
    sparsity_report,
    taylor_scores,
)

torch.set_num_threads(1)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )


# ------------------------------------------------------------------ which layers are pruned
def test_prunable_weights_mlp_and_cnn():
    assert list(prunable_weights(mlp())) == ["1.weight", "3.weight", "5.weight"]
    m = cnn()
    w = prunable_weights(m)
    assert list(w) == ["0.weight", "3.weight", "6.weight"]  # BatchNorm and biases excluded
    assert w["0.weight"] is m[0].weight and w["6.weight"] is m[6].weight


def test_prunable_weights_timm_vit():
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=10)
    w = prunable_weights(vit)
    assert list(w) == [
        "blocks.0.attn.qkv.weight",
        "blocks.0.attn.proj.weight",
        "blocks.0.mlp.fc1.weight",
        "blocks.0.mlp.fc2.weight",
    ]
    assert w["blocks.0.attn.qkv.weight"] is vit.blocks[0].attn.qkv.weight
    # nested behind a normalisation layer (models start with Normalize): same matrices
    nested = prunable_weights(nn.Sequential(nn.Identity(), vit))
    assert list(nested) == ["1." + k for k in w]


def test_prunable_weights_multihead_attention_and_heads():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = nn.Linear(4, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.ffn = nn.Linear(8, 8)
            self.norm = nn.LayerNorm(8)
            self.head = nn.Linear(8, 3)

    assert list(prunable_weights(Tiny())) == ["attn.in_proj_weight", "attn.out_proj.weight", "ffn.weight"]


def test_prunable_weights_model_method_and_patterns():
    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)

        def prunable_weights(self):
            return {"b.weight": self.b.weight}

    assert list(prunable_weights(Own())) == ["b.weight"]
    assert list(prunable_weights(nn.Sequential(nn.Identity(), Own()))) == ["1.b.weight"]
    m = mlp()
    assert list(prunable_weights(m, include="[13]")) == ["1.weight", "3.weight"]
    assert list(prunable_weights(m, exclude=["5.weight"])) == ["1.weight", "3.weight"]
    with pytest.raises(ConfigError, match="matches no prunable weight"):
        prunable_weights(m, include="blocks.*")


def test_prunable_weights_prunerob_mlp_if_available():
    models = pytest.importorskip("prunerob.core.models")
    if not hasattr(models, "MLP"):
        pytest.skip("prunerob.core.models.MLP not written yet")
    m = models.MLP((1, 4, 4), 3, hidden=(6,), mean=(0.5,), std=(0.25,))
    w = prunable_weights(m)
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert len(w) == len(linears) == 2
    assert [p.shape for p in w.values()] == [(6, 16), (3, 6)]


def test_prunable_weights_prunerob_models_if_available():
    models = pytest.importorskip("prunerob.core.models")
    if hasattr(models, "CNN4"):
        w = prunable_weights(models.CNN4((3, 8, 8), 10, channels=(2, 2, 2, 2), head=4))
        assert len(w) == 6 and all(n.endswith(".weight") for n in w)  # 4 convs + 2 linears
    if hasattr(models, "SmallViT"):
        v = models.SmallViT((3, 8, 8), 10, patch_size=4, embed_dim=8, depth=1, num_heads=2)
        assert [n.split("blocks.0.")[-1] for n in prunable_weights(v)] == [
            "attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight"
        ]
        params = dict(v.named_parameters())
        assert all(params[n] is p for n, p in prunable_weights(v).items())


def test_prunable_weights_one_layer_transformer_if_available():
    tr = pytest.importorskip("prunerob.theory.transformer")
    if not hasattr(tr, "OneLayerTransformer"):
        pytest.skip("OneLayerTransformer not written yet")
    m = tr.OneLayerTransformer(8, heads=2, num_classes=3)
    w = prunable_weights(m)
    assert list(w) == list(m.prunable_weights())
    pruned = apply_masks(m, magnitude_masks(m, 0.5))
    pw = prunable_weights(pruned)
    assert all(int((pw[n] != 0).sum()) == round(0.5 * p.numel()) for n, p in w.items())


# ------------------------------------------------------------------ magnitude masks
def test_magnitude_hand_made():
    w = {"W": torch.tensor([[3.0, -1.0], [0.5, -4.0]])}
    m = magnitude_masks(w, 0.5)["W"]
    assert m.tolist() == [[True, False], [False, True]]
    assert magnitude_masks(w, 0.75)["W"].tolist() == [[True, True], [False, True]]
    assert magnitude_masks(w, 1.0)["W"].all() and not magnitude_masks(w, 0.0)["W"].any()


def test_magnitude_global_hand_made():
    w = {"A": torch.tensor([[3.0, -1.0], [0.5, -4.0]]), "B": torch.tensor([2.0, -0.1, 5.0, 0.2])}
    g = magnitude_masks(w, 0.5, scope="global")  # top 4 of 8: 5, -4, 3, 2
    assert g["A"].tolist() == [[True, False], [False, True]]
    assert g["B"].tolist() == [True, False, True, False]
    g = magnitude_masks(w, 0.25, scope="global")  # top 2: 5, -4 -> layers get different ratios
    assert g["A"].tolist() == [[False, False], [False, True]]
    assert g["B"].tolist() == [False, False, True, False]


def test_magnitude_ties_are_deterministic():
    w = {"W": torch.ones(2, 3)}
    assert magnitude_masks(w, 0.5)["W"].tolist() == [[True, True, True], [False, False, False]]
    w = {"W": torch.tensor([1.0, 2.0, 1.0, 1.0, 0.5])}
    assert magnitude_masks(w, 0.6)["W"].tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("keep", [0.0, 0.13, 0.5, 0.77, 1.0])
def test_magnitude_random_exact_counts(keep):
    g = torch.Generator().manual_seed(1)
    w = {"a": torch.randn(37, 11, generator=g), "b": torch.randn(5, 3, 3, 3, generator=g)}
    for n, m in magnitude_masks(w, keep).items():
        a = w[n].abs()
        assert int(m.sum()) == round(keep * a.numel())
        if 0 < m.sum() < m.numel():
            assert a[m].min() >= a[~m].max()
    gm = magnitude_masks(w, keep, scope="global")
    allw = torch.cat([t.abs().flatten() for t in w.values()])
    allm = torch.cat([t.flatten() for t in gm.values()])
    assert int(allm.sum()) == round(keep * allw.numel())
    # brute force: the kept set is exactly the global top-k by a full sort
    k = round(keep * allw.numel())
    expected = torch.zeros_like(allm)
    expected[torch.argsort(allw, descending=True, stable=True)[:k]] = True
    assert torch.equal(allm, expected)


def test_n_kept_uses_round():
    assert n_kept(0.5, 5) == 2 and n_kept(0.3, 10) == 3 and n_kept(1.0, 7) == 7


# ------------------------------------------------------------------ probabilistic model (Sec. 3)
def test_bernoulli_frequency_within_binomial_tolerance():
    n, p = 100_000, 0.3
    g = torch.Generator().manual_seed(0)
    m = bernoulli_masks({"W": torch.full((n,), p)}, g)["W"]
    assert m.dtype == torch.bool
    assert abs(int(m.sum()) - n * p) <= 4 * math.sqrt(n * p * (1 - p))
    # float keep with like=, reproducible with the same seed
    w = {"W": torch.zeros(100, 1000)}
    a = bernoulli_masks({"W": p}, torch.Generator().manual_seed(3), like=w)["W"]
    b = bernoulli_masks({"W": p}, torch.Generator().manual_seed(3), like=w)["W"]
    assert a.shape == (100, 1000) and torch.equal(a, b)
    assert abs(int(a.sum()) - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_bernoulli_extremes_and_errors():
    probs = torch.tensor([0.0, 1.0] * 500)
    m = bernoulli_masks({"W": probs}, torch.Generator().manual_seed(0))["W"]
    assert torch.equal(m, probs.bool())
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        bernoulli_masks({"W": torch.tensor([0.5, 1.2])})
    with pytest.raises(ConfigError, match="like="):
        bernoulli_masks({"W": 0.5})
    with pytest.raises(ConfigError, match="outside"):
        bernoulli_masks({"W": -0.1}, like={"W": torch.zeros(3)})


def test_threshold_and_smooth_keep_probs():
    w = {"W": torch.tensor([[0.2, -0.5], [1.0, -2.0]])}
    assert magnitude_keep_probs_threshold(w, 0.5)["W"].tolist() == [[0.0, 1.0], [1.0, 1.0]]
    alpha = 1.7
    p = smooth_magnitude_keep_probs(w, alpha)["W"]
    expected = [[1 - math.exp(-alpha * abs(v)) for v in row] for row in [[0.2, -0.5], [1.0, -2.0]]]
    assert np.allclose(p.numpy(), expected, atol=1e-7)
    assert smooth_magnitude_keep_probs(w, 0.0)["W"].abs().max() == 0
    with pytest.raises(ConfigError, match="alpha"):
        smooth_magnitude_keep_probs(w, -1.0)
    with pytest.raises(ConfigError, match="q="):
        magnitude_keep_probs_threshold(w, -1.0)


def test_random_masks_exact_counts_and_seed():
    m = mlp()
    a = random_masks(m, 0.3, torch.Generator().manual_seed(0))
    b = random_masks(m, 0.3, torch.Generator().manual_seed(0))
    c = random_masks(m, 0.3, torch.Generator().manual_seed(1))
    for n, w in prunable_weights(m).items():
        assert int(a[n].sum()) == round(0.3 * w.numel())
        assert torch.equal(a[n], b[n])
    assert any(not torch.equal(a[n], c[n]) for n in a)
    g = random_masks(m, 0.3, torch.Generator().manual_seed(0), scope="global")
    total = sum(w.numel() for w in prunable_weights(m).values())
    assert sum(int(t.sum()) for t in g.values()) == round(0.3 * total)


# ------------------------------------------------------------------ Taylor scores (App. I)
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_taylor_scores_closed_form_cross_entropy():
    torch.manual_seed(0)
    d, k, bs = 5, 3, 7
    model = nn.Linear(d, k)
    batches = [(torch.randn(bs, d), torch.randint(0, k, (bs,))) for _ in range(4)]
    W = model.weight.detach().double().numpy()
    b = model.bias.detach().double().numpy()
    # hand gradient of the mean cross-entropy: dL/dW = (1/B) sum_n (softmax(z_n) - e_{y_n}) x_n^T
    expected = np.zeros_like(W)
    for x, y in batches[:3]:
        xn, yn = x.double().numpy(), y.numpy()
        r = _softmax(xn @ W.T + b)
        r[np.arange(bs), yn] -= 1
        expected += np.abs(W * (r.T @ xn / bs))
    expected /= 3
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    s = taylor_scores(model, batches, n_batches=3)
    assert list(s) == ["weight"]  # bias is never scored
    assert np.allclose(s["weight"].double().numpy(), expected, rtol=1e-5, atol=1e-7)
    # the model is unchanged: weights, mode, grads, requires_grad
    assert model.training
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and p.grad is None and p.requires_grad


def test_taylor_scores_closed_form_mse_and_dataset_object():
    torch.manual_seed(1)
    d, k = 4, 2
    model = nn.Linear(d, k, bias=False)
    xs, ys = torch.randn(12, d), torch.randn(12, k)

    class DS:  # stand-in for prunerob.core.data.ArrayDataset
        def batches(self, batch_size, shuffle, generator):
            assert shuffle is False and isinstance(generator, torch.Generator)
            for i in range(0, 12, batch_size):
                yield xs[i : i + batch_size], ys[i : i + batch_size]

    mse = lambda out, y: ((out - y) ** 2).mean()  # noqa: E731
    s = taylor_scores(model, DS(), n_batches=2, batch_size=4, loss_fn=mse, shuffle=False)
    W = model.weight.detach().double().numpy()
    expected = np.zeros_like(W)
    for i in (0, 4):  # only the first two batches
        x, y = xs[i : i + 4].double().numpy(), ys[i : i + 4].double().numpy()
        grad = 2.0 / (4 * k) * (x @ W.T - y).T @ x  # d/dW mean((xW^T - y)^2)
        expected += np.abs(W * grad)
    assert np.allclose(s["weight"].double().numpy(), expected / 2, rtol=1e-5, atol=1e-8)


def test_score_masks_hand_made_and_errors():
    s = {"a": torch.tensor([0.1, 0.9, 0.5, 0.3]), "b": torch.tensor([[0.8, 0.2]])}
    assert score_masks(s, 0.5)["a"].tolist() == [False, True, True, False]
    g = score_masks(s, 0.5, scope="global")  # top 3 of 6: 0.9, 0.8, 0.5
    assert g["a"].tolist() == [False, True, True, False] and g["b"].tolist() == [[True, False]]
    with pytest.raises(ConfigError, match="scope"):
        score_masks(s, 0.5, scope="net")
    with pytest.raises(ConfigError, match="NaN"):
        score_masks({"a": torch.tensor([0.1, float("nan"), 0.2])}, 0.5)


# ------------------------------------------------------------------ dispatcher and application
def test_make_masks_all_methods():
    m = mlp()
    weights = prunable_weights(m)
    data = [(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))) for _ in range(2)]
    # the exact-count rule of each built-in method; a newly registered method (e.g. a structured one
    # that removes whole rows) is only held to the mask contract (names, shapes, bool)
    per_layer, global_ = {"magnitude", "random", "taylor"}, {"magnitude_global"}
    assert per_layer | global_ <= set(METHODS)
    for method in METHODS:
        masks = make_masks(method, m, 0.4, seed=0, data=data, n_batches=2)
        assert list(masks) == list(weights)
        assert all(masks[n].shape == w.shape and masks[n].dtype == torch.bool for n, w in weights.items())
        if method in global_:
            total = sum(w.numel() for w in weights.values())
            assert sum(int(t.sum()) for t in masks.values()) == round(0.4 * total)
        elif method in per_layer:
            assert all(int(masks[n].sum()) == round(0.4 * w.numel()) for n, w in weights.items())
    assert torch.equal(make_masks("magnitude", m, 0.4)["1.weight"], magnitude_masks(m, 0.4)["1.weight"])
    b1 = make_masks("bernoulli_uniform", m, 0.4, seed=5)
    b2 = make_masks("bernoulli_uniform", m, 0.4, seed=5)
    assert all(torch.equal(b1[n], b2[n]) for n in b1)


def test_make_masks_errors():
    m = mlp()
    with pytest.raises(ConfigError, match="magnitude_global"):  # lists the methods
        make_masks("snip", m, 0.5)
    with pytest.raises(ConfigError, match="keep"):
        make_masks("magnitude", m, 1.5)
    with pytest.raises(ConfigError, match="needs data"):
        make_masks("taylor", m, 0.5)
    with pytest.raises(ConfigError, match="no prunable weights"):
        make_masks("magnitude", nn.Sequential(nn.ReLU()), 0.5)


def test_apply_masks_returns_pruned_copy():
    m = mlp()
    before = {n: p.detach().clone() for n, p in m.state_dict().items()}
    masks = magnitude_masks(m, 0.3)
    pruned = apply_masks(m, masks)
    for n, t in m.state_dict().items():
        assert torch.equal(t, before[n])  # original untouched
    ps = dict(pruned.named_parameters())
    for n, mask in masks.items():
        assert torch.equal(ps[n].detach(), before[n] * mask)
        assert int((ps[n] != 0).sum()) == int(mask.sum())
    assert torch.equal(ps["1.bias"].detach(), before["1.bias"])  # biases never pruned
    x = torch.rand(4, 1, 4, 4)
    assert not torch.allclose(m(x), pruned(x))
    mw = masked_weights(prunable_weights(m), masks)
    assert all(torch.equal(mw[n], ps[n].detach()) for n in masks)


def test_apply_masks_errors():
    m = mlp()
    with pytest.raises(ConfigError, match="unknown weight"):
        apply_masks(m, {"9.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ConfigError, match="shape"):
        apply_masks(m, {"1.weight": torch.ones(3, 3, dtype=torch.bool)})


def test_sparsity_report():
    masks = {"a": torch.tensor([True, False, True, True]), "b": torch.zeros(2, 3, dtype=torch.bool)}
    df = sparsity_report(masks)
    assert list(df.columns) == ["layer", "numel", "kept", "keep_ratio"]
    assert df["layer"].tolist() == ["a", "b", "total"]
    assert df["kept"].tolist() == [3, 0, 3] and df["numel"].tolist() == [4, 6, 10]
    assert df["keep_ratio"].tolist() == [0.75, 0.0, 0.3]
