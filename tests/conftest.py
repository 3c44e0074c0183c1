"""Shared test setup: one CPU thread (the machine is shared), no hub access, a private cache."""
from __future__ import annotations

import functools
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # set before timm / huggingface_hub are imported
os.environ.setdefault("TQDM_DISABLE", "1")
# no test reads or writes the committed result store (book/experiments/store); a test that needs a
# store points $PRUNEROB_STORE at a temporary folder (tests/test_store.py)
os.environ["PRUNEROB_STORE"] = "off"

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)


@functools.cache
def mnist_available() -> bool:
    """Whether MNIST loads offline on this machine (``$PRUNEROB_DATA`` or the default folder)."""
    from prunerob.config import ConfigError
    from prunerob.core.data import load_dataset

    try:
        load_dataset("mnist", "test", download=False)
    except ConfigError:
        return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_mnist: skipped where MNIST is not available offline")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.needs_mnist``: skip the test where MNIST is not available offline."""
    if item.get_closest_marker("needs_mnist") and not mnist_available():
        pytest.skip("MNIST is not available offline on this machine")


@pytest.fixture
def tmp_store(tmp_path, monkeypatch):
    """A fresh result store (``$PRUNEROB_STORE``) and cache (``$PRUNEROB_CACHE``) in ``tmp_path``;
    returns the store's folder."""
    from prunerob.engine import store

    monkeypatch.setenv(store.STORE_ENV, str(tmp_path / "store"))
    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_path / "cache"))
    store._STORES.clear()
    yield tmp_path / "store"
    store._STORES.clear()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point ``$PRUNEROB_CACHE`` at a fresh temporary folder and return its path."""
    path = tmp_path / "cache"
    path.mkdir()
    monkeypatch.setenv("PRUNEROB_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def trained():
    """A small MLP trained briefly on 3 Gaussian classes of 1x4x4 images (100% clean accuracy)."""
    g = torch.Generator().manual_seed(0)
    protos = 0.2 + 0.6 * torch.rand(3, 1, 4, 4, generator=g)
    y = torch.arange(300) % 3
    x = (protos[y] + 0.08 * torch.randn(300, 1, 4, 4, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    m.eval()
    for p in m.parameters():
        p.grad = None
    assert (m(x).argmax(1) == y).float().mean() == 1.0
    return m, x, y


class SweepLoop:
    """Calls of :func:`prunerob.engine.sweep._run_loop` (one chunk of a sweep's work): :meth:`interrupt_at`
    makes the n-th call raise KeyboardInterrupt (a simulated interruption), :meth:`count` only counts;
    :attr:`calls` holds one entry per call since the last of the two."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import prunerob.engine.sweep as sweep

        self.calls: list[int] = []
        self._set = lambda loop: monkeypatch.setattr(sweep, "_run_loop", loop)
        self._real = sweep._run_loop

    def interrupt_at(self, n: int) -> None:
        self.calls.clear()

        def loop(*a, **k):
            self.calls.append(1)
            if len(self.calls) == n:
                raise KeyboardInterrupt("simulated interruption")
            return self._real(*a, **k)

        self._set(loop)

    def count(self) -> None:
        self.calls.clear()
        self._set(lambda *a, **k: (self.calls.append(1), self._real(*a, **k))[1])


@pytest.fixture
def sweep_loop(monkeypatch) -> SweepLoop:
    """A :class:`SweepLoop` on this test's monkeypatch."""
    return SweepLoop(monkeypatch)
