"""Training precision: ``fp32`` (the paper's, App. I) or ``bf16`` autocast with fp32 master weights.

The paper trains in float32 (App. I says nothing else); ``fp32`` is the default of
:class:`prunerob.core.train.TrainConfig` and of every cached checkpoint made before this option existed.
``bf16`` runs the forward pass under ``torch.autocast(device, dtype=torch.bfloat16)`` (the CPU's
AVX-512 bf16 instructions, or a GPU's tensor cores): the parameters, the gradients and the
optimizer state stay float32, the loss is taken in float32 on the float32 logits, and evaluation
(clean accuracy, every attack) runs in float32 on the float32 weights.

Each precision is one registry entry that also fixes how a training step executes:

* ``fp32`` computes exactly what it computed before this option existed (NCHW layout, fused
  scaled-dot-product attention), so that its checkpoints, keyed by a config hash that does not
  change for ``fp32``, are the same computation as before. Its only change is the ``foreach``
  Adam/AdamW step (torch's default on CUDA), which gives bitwise the same weights as the
  for-loop step that torch uses by default on the CPU (``tests/test_precision.py``) and is
  faster for the CIFAR-10 MLP's 69M weights.
* ``bf16`` also uses the layout measured fastest by ``benchmarks/precision.py``: ``channels_last``
  for the architectures in :data:`CHANNELS_LAST_ARCHS`, the explicit (matmul + softmax) attention
  on the CPU, where PyTorch's fused bf16 attention backward is slower than the two batched
  matmuls, and the fused Adam/AdamW step (one kernel over all parameters instead of about ten
  passes over each; it rounds differently from the loop, which is why ``fp32`` does not use it).
  All of this is part of the ``bf16`` recipe and so of its checkpoint hash.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.registry import Registry

__all__ = ["BF16_ATTACKS", "CHANNELS_LAST_ARCHS", "PRECISIONS", "AutocastModel", "Precision",
           "eval_layout", "get_precision", "precision_label", "precision_names"]

#: architectures whose bf16 training step is faster in ``channels_last`` on this project's CPU
#: (``python benchmarks/precision.py`` times the step in both layouts; the ViTs' only conv is the
#: patch embedding, a matmul in disguise, and channels_last does not make their step faster)
CHANNELS_LAST_ARCHS: frozenset[str] = frozenset({"cnn4"})


def eval_layout(model: nn.Module) -> nn.Module:
    """``model`` (a copy the caller owns) in the memory layout its fp32 evaluation is fastest in:
    ``channels_last`` for a :class:`~prunerob.core.models.CNN4`, whose FGSM/PGD pass it speeds up with
    the same outcome on every one of 2,000 test images (``benchmarks/precision.py``: attack pass;
    ``--numerics``: the ``fp32 channels_last`` rows); any other model unchanged. In place."""
    from .models import CNN4

    if isinstance(model, CNN4):
        model.to(memory_format=torch.channels_last)
    return model


@dataclass(frozen=True)
class Precision:
    """How a training step runs: ``autocast_dtype`` (None: no autocast), ``fast_layout`` (the
    measured layout choices above), ``fused_optimizer`` (``fused=True`` for Adam/AdamW),
    ``label`` (for captions) and ``help`` (one line for ``--help``). Without ``fused_optimizer``
    the step is ``foreach=True``, bitwise the same as torch's for-loop step."""

    autocast_dtype: torch.dtype | None
    fast_layout: bool
    fused_optimizer: bool
    label: str
    help: str
    name: str = ""

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """``torch.autocast(device.type, dtype)`` for bf16, a no-op context for fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)

    def check_device(self, device: torch.device) -> None:
        """ConfigError (before any work) when ``device`` cannot run this precision: bf16 needs a
        GPU with bfloat16 support (compute capability 8.0 or newer); every CPU runs it."""
        if self.autocast_dtype is torch.bfloat16 and device.type == "cuda" \
                and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"precision={self.name!r} needs a GPU with bfloat16 support; "
                              f"{torch.cuda.get_device_name(device)} has none: use precision='fp32'")

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of ``torch.optim.Adam``/``AdamW``: ``fused`` or ``foreach``."""
        return {"fused": True} if self.fused_optimizer else {"foreach": True}

    def prepare(self, model: nn.Module, arch: str, device: torch.device) -> nn.Module:
        """Put ``model`` (already on ``device``) into this precision's training layout, in place.

        Only the memory layout and the attention kernel change; the parameters' values do not.
        """
        if not self.fast_layout:
            return model
        if arch in CHANNELS_LAST_ARCHS:
            model.to(memory_format=torch.channels_last)
        if device.type == "cpu":
            for m in _attention_modules(model):
                m.fused_attn = False
        return model

    def input_layout(self, arch: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The conversion applied to each training batch (channels_last for those architectures)."""
        if self.fast_layout and arch in CHANNELS_LAST_ARCHS:
            return lambda x: x.contiguous(memory_format=torch.channels_last)
        return lambda x: x


def _attention_modules(model: nn.Module) -> Iterator[nn.Module]:
    """timm attention blocks (they carry a boolean ``fused_attn``)."""
    return (m for m in model.modules() if isinstance(getattr(m, "fused_attn", None), bool))


PRECISIONS: Registry[Precision] = Registry("precision", "training precision")
PRECISIONS.register("fp32")(Precision(
    None, fast_layout=False, fused_optimizer=False, label="fp32", name="fp32",
    help="float32 throughout (the paper's setting and the default)"))
PRECISIONS.register("bf16")(Precision(
    torch.bfloat16, fast_layout=True, fused_optimizer=True, label="bf16 autocast, fp32 weights", name="bf16",
    help="forward pass in bfloat16 autocast, float32 weights, gradients and optimizer state"))


#: attacks whose bf16 variant (``AttackSpec(precision="bf16")``: gradients under bf16 autocast,
#: adversarial examples judged by the fp32 model) was measured against fp32 on 2,000 test images:
#: ``python benchmarks/precision.py --numerics`` (book/experiments/precision.md). Attacks stay
#: fp32 by default; CW and AutoAttack were not measured and have no bf16 option.
BF16_ATTACKS: tuple[str, ...] = ("fgsm", "pgd")


class AutocastModel(nn.Module):
    """``model`` run under ``precision``'s autocast; returns float32 logits (attacks in bf16).

    The weights are ``model``'s own (float32); only the forward pass, and so the input gradient,
    is computed in the lower precision."""

    def __init__(self, model: nn.Module, precision: str = "bf16"):
        super().__init__()
        self.inner = model
        self.precision = get_precision(precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast(x.device):
            return self.inner(x).float()


def precision_names() -> tuple[str, ...]:
    """The registered precisions (``fp32``, ``bf16``)."""
    return PRECISIONS.names()


def get_precision(name: str) -> Precision:
    """The registry entry of ``name``; one ConfigError listing the allowed names otherwise."""
    if not isinstance(name, str):
        raise ConfigError(f"precision={name!r} is not supported; allowed values: "
                          f"{', '.join(precision_names())}")
    return PRECISIONS.get(name)


def precision_label(name: str) -> str:
    """Caption text of a precision name (``fp32``; ``bf16 autocast, fp32 weights``)."""
    return get_precision(name).label
