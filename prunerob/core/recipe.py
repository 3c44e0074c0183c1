"""Training-recipe pieces beyond App. I: batch augmentations, learning-rate schedules and the
per-architecture recipes that use them.

The paper's recipe (App. I) has neither: Adam or AdamW at a constant learning rate, no
augmentation. Those remain the defaults of :class:`prunerob.core.train.TrainConfig`
(``augment="none"``, ``schedule="constant"``, ``warmup_epochs=0``), and fields at these values stay
out of :meth:`TrainConfig.hash` and of the result-store keys (:data:`NEUTRAL_FIELDS`), so every
existing checkpoint and stored result keeps its key.

The Compact Convolutional Transformer (``cct_2_3x2``, trained from scratch; the paper fine-tunes an
ImageNet-pretrained ViT-Tiny) needs the usual from-scratch transformer recipe (Hassani et al. 2021,
reduced to what a CPU affords): random crop with 4 px padding and horizontal flip, AdamW, linear
warmup then a cosine decay, label smoothing 0.1 (:data:`ARCH_RECIPES`).

* :data:`AUGMENTS`: ``name -> fn(x, generator) -> x`` on a float batch ``[B, C, H, W]`` in [0, 1]
  (the output stays in [0, 1]); random numbers come from the CPU ``generator`` (the training
  loop's shuffling generator, whose state the resume file keeps).
* :data:`SCHEDULES`: ``name -> fn(step, total_steps, warmup_steps) -> factor`` of the base
  learning rate, ``step`` counted from 0 over the whole run; ``depends_on_total`` says whether
  the factor depends on the run's length (then a shorter run is not a prefix of a longer one).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from prunerob.config import ConfigError
from prunerob.core.registry import Registry

__all__ = ["AUGMENTS", "SCHEDULES", "ARCH_RECIPES", "NEUTRAL_FIELDS", "Augment", "Schedule", "check",
           "arch_recipe", "lr_factor"]

#: recipe fields of TrainConfig and the values that reproduce App. I (left out of hashes and keys)
NEUTRAL_FIELDS: dict[str, Any] = {"augment": "none", "schedule": "constant", "warmup_epochs": 0}


@dataclass(frozen=True)
class Augment:
    """A batch augmentation ``fn(x, generator) -> x`` (inputs and outputs in [0, 1])."""

    fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    help: str
    name: str = ""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.fn(x, generator)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate factor ``fn(step, total_steps, warmup_steps)``; ``depends_on_total`` when the
    factor at a step depends on the run's length."""

    fn: Callable[[int, int, int], float]
    help: str
    depends_on_total: bool
    name: str = ""

    def __call__(self, step: int, total_steps: int, warmup_steps: int) -> float:
        return self.fn(step, total_steps, warmup_steps)


AUGMENTS: Registry[Augment] = Registry("augment", "training augmentation")
SCHEDULES: Registry[Schedule] = Registry("schedule", "learning-rate schedule")


def random_crop(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per image, a random ``H x W`` crop of the image zero-padded by ``pad`` pixels on each side
    (torchvision's ``RandomCrop(size, padding=pad)``); offsets drawn from ``generator``."""
    b, _, h, w = x.shape
    off = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B, 1, 1, W]
    idx = torch.arange(b, device=x.device)[:, None, None, None]
    ch = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[idx, ch, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2 (drawn from ``generator``)."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


AUGMENTS.register("none")(Augment(lambda x, g: x, "no augmentation (App. I)"))
AUGMENTS.register("crop_flip")(Augment(
    lambda x, g: random_flip(random_crop(x, g), g),
    "random crop with 4 px zero padding, then a random horizontal flip"))


def _constant(step: int, total: int, warmup: int) -> float:
    """Linear warmup ``(step + 1) / warmup`` over the first ``warmup`` steps (none by default), then 1."""
    return (step + 1) / warmup if step < warmup else 1.0


def _warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Linear warmup ``(step + 1) / warmup`` over the first ``warmup`` steps, then
    ``(1 + cos(pi t)) / 2`` with ``t`` going from 0 to 1 over the remaining steps."""
    if step < warmup:
        return _constant(step, total, warmup)
    rest = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, rest) / rest))


SCHEDULES.register("constant")(Schedule(
    _constant, "constant learning rate (App. I), after a linear warmup over warmup_epochs (default 0)",
    False))
SCHEDULES.register("warmup_cosine")(Schedule(
    _warmup_cosine, "linear warmup over warmup_epochs, then cosine decay to 0 at the last step", True))


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int) -> float:
    """The factor of the base learning rate at optimizer step ``step`` (0-based)."""
    return SCHEDULES.get(schedule)(step, total_steps, warmup_steps)


def check(augment: str, schedule: str, warmup_epochs: Any, epochs: int) -> int:
    """Validate the recipe fields of a TrainConfig (one ConfigError naming the parameter and the
    registered names); returns ``warmup_epochs`` as an int."""
    for param, value, reg in (("augment", augment, AUGMENTS), ("schedule", schedule, SCHEDULES)):
        if not isinstance(value, str) or value not in reg:
            raise ConfigError(f"{param}={value!r} is not supported; allowed values: {', '.join(reg.names())}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) \
            or not 0 <= warmup_epochs <= epochs:
        raise ConfigError(f"warmup_epochs={warmup_epochs!r} must be an integer in [0, epochs={epochs}]")
    return int(warmup_epochs)


#: recipes that differ from App. I's, by architecture: TrainConfig.paper's base values.
#: cct_2_3x2: Hassani et al. (2021) train CCT-2/3x2 on CIFAR-10 with AdamW, weight decay 0.03 (we
#: keep AdamW's 0.05 of App. I), warmup, cosine decay and label smoothing 0.1 for 300 epochs with
#: heavy augmentation; here random crop + flip and 30 epochs (the issue 29 curve: 63% after 3 epochs,
#: 72% after 9), warmup over the first 2 epochs, peak learning rate 1e-3 at batch 128.
ARCH_RECIPES: dict[str, dict[str, Any]] = {
    "cct_2_3x2": dict(epochs=30, lr=1e-3, optimizer="adamw", label_smoothing=0.1, augment="crop_flip",
                      schedule="warmup_cosine", warmup_epochs=2),
}


def arch_recipe(arch: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The base recipe of ``arch`` when it differs from App. I's (a fresh dict), else None.

    When ``overrides`` shortens the run (``epochs``) without naming ``warmup_epochs``, the warmup is
    capped at ``epochs - 1`` so that the run keeps a decay phase (a 1-epoch run has none)."""
    r = ARCH_RECIPES.get(arch)
    if r is None:
        return None
    out = dict(r)
    over = dict(overrides or {})
    epochs = over.get("epochs")
    short = isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1
    if "warmup_epochs" not in over and short:
        out["warmup_epochs"] = min(int(out.get("warmup_epochs", 0)), epochs - 1)
    return out
