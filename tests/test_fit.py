"""prunerob.core.fit.fit and prunerob.theory.transformer.train_transformer: seeded brief training of any
module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunerob.config import ConfigError
from prunerob.core.data import ArrayDataset
from prunerob.core.fit import fit
from prunerob.theory.transformer import OneLayerTransformer, train_transformer


def _toy(n: int = 256, seed: int = 0) -> ArrayDataset:
    """Two classes told apart by mean brightness (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.rand(n, 1, 8, 8, generator=g) * 100 + 150 * y.view(-1, 1, 1, 1)).to(torch.uint8)
    return ArrayDataset("toy", "train", x, y.long(), 2, (0.5,), (0.25,), "synthetic brightness classes")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


def test_fit_learns_and_is_seeded():
    data, test = _toy(), _toy(128, seed=1)
    a, b = _net(), _net()
    ia = fit(a, data, epochs=3, lr=0.1, batch_size=32, seed=3, test=test)
    fit(b, data, epochs=3, lr=0.1, batch_size=32, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert ia["train_losses"][-1] < ia["train_losses"][0] and ia["test_acc"] > 0.9
    assert not a.training and ia["n_train"] == 256 and ia["epochs"] == 3
    c = _net()
    fit(c, data, epochs=3, lr=0.1, batch_size=32, seed=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_fit_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="batch_size"):
        fit(_net(), _toy(), batch_size=0)


def test_train_transformer_tokens_and_info():
    data = _toy(128)
    model, info = train_transformer(
        data, _toy(64, seed=2), d=8, heads=2, patch=4, epochs=1, train_subset=64, seed=0
    )
    assert isinstance(model, OneLayerTransformer) and info["n_tokens"] == 4 and info["n_train"] == 64
    x = data.x[:3].float() / 255
    X = model.tokens(x)
    assert X.shape == (3, 4, 8)
    assert torch.allclose(model.forward_tokens(X), model(x))
    again, _ = train_transformer(
        data, _toy(64, seed=2), d=8, heads=2, patch=4, epochs=1, train_subset=64, seed=0
    )
    assert torch.equal(again.wo, model.wo)
