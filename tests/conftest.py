"""Shared test setup: one CPU thread (the machine is shared), no hub access, a private cache."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # set before timm / huggingface_hub are imported
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point ``$PRUNEROB_CACHE`` at a fresh temporary folder and return its path."""
    path = tmp_path / "cache"
    path.mkdir()
    monkeypatch.setenv("PRUNEROB_CACHE", str(path))
    return path
