"""Brief training of any ``nn.Module`` on an in-memory data set, without the checkpoint cache.

:func:`prunerob.core.train.train_model` trains the registered architectures of the paper (Sec. 6.1,
App. I) and caches their checkpoints. :func:`fit` is for everything else: a user's own model on
the "Use it on your own model" page and the one-layer transformer of Fig. 16 (App. H.6). It runs
Adam on the cross-entropy over seeded shuffled batches, so the same seed gives the same model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunerob.config import ConfigError, resolve_device
from prunerob.core.data import ArrayDataset
from prunerob.core.train import evaluate_accuracy

__all__ = ["fit"]


def fit(
    model: nn.Module,
    data: ArrayDataset,
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
    test: ArrayDataset | None = None,
) -> dict:
    """Train ``model`` in place (Adam, ``lr``, cross-entropy) for ``epochs`` passes over ``data``.

    Batches are drawn by :meth:`~prunerob.core.data.ArrayDataset.batches` with a CPU generator seeded by
    ``seed``.
    Returns ``{"train_losses": [mean loss per epoch], "test_acc": accuracy on test or None,
    "n_train", "epochs", "seed", "device"}``; the model is left in eval mode on ``device``.
    """
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ConfigError(f"fit: epochs={epochs} must be >= 0, batch_size={batch_size} >= 1, lr={lr} > 0")
    dev = resolve_device(device)
    model.to(dev).train()
    data = data.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    losses = []
    for _ in range(epochs):
        total = torch.zeros((), dtype=torch.float64, device=dev)
        for xb, yb in data.batches(batch_size, shuffle=True, generator=gen):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double() * yb.shape[0]
        losses.append(float(total) / len(data))
    model.eval()
    acc = evaluate_accuracy(model, test.to(dev)) if test is not None else None
    return {
        "train_losses": losses,
        "test_acc": acc,
        "n_train": len(data),
        "epochs": epochs,
        "seed": int(seed),
        "device": str(dev),
    }
