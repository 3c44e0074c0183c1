"""Models of the paper's experiments (Sec. 3, Sec. 6.1, Appendix I).

Every model takes images in [0, 1] of shape ``[B, C, H, W]`` and starts with :class:`Normalize`
(so attacks work in pixel space and ``eps`` is in [0, 1] units, as in the paper's setup
``X subset [0, 1]^{n x d}``, Sec. 3).

* ``mlp``, ``mlp3``, ``mlp4``, ``mlp_cifar``: :class:`MLP`, Sec. 3 ``h_l = sigma(W_l h_{l-1} + b_l)``.
  The paper's "L-layer MLP" counts weight matrices: its 2-layer MNIST MLP is 784-512-10.
* ``cnn4``: :class:`CNN4`, the "4-layer CNN" of App. I (4 conv layers + a 2-layer head).
* ``vit_small``: :class:`SmallViT`, a small ViT trained from scratch (our addition, usable offline).
* ``vit_tiny``: :func:`timm_vit`, timm's ``vit_tiny_patch16_224`` (5.5M parameters), the
  "Tiny ViT ... pre-trained on ImageNet" that App. I fine-tunes for 10 epochs.
* ``cct_2_3x2``: :class:`prunerob.core.cct.CCT`, a Compact Convolutional Transformer (0.28M
  parameters), trained from scratch; the paper fine-tunes an ImageNet-pretrained ViT-Tiny.

The one-layer transformer of Lemma 1 lives in :mod:`prunerob.theory.transformer`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import ConfigError, check_choice
from prunerob.core.data import IMAGENET_MEAN, IMAGENET_STD, DatasetInfo
from prunerob.core.registry import Registry

#: builders ``(info, **kw) -> nn.Module`` by architecture name (:func:`register_arch`)
ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("arch", "architecture")


Builder = Callable[..., nn.Module]


def register_arch(name: str, *, replace: bool = False) -> Callable[[Builder], Builder]:
    """Register a model builder ``builder(info: DatasetInfo, **kw) -> nn.Module`` under ``name``
    (timm's ``register_model`` style). The model must take inputs in [0, 1] and normalise inside."""
    return ARCHITECTURES.register(name, replace=replace)


def arch_names() -> tuple[str, ...]:
    """The registered architecture names, in registration order."""
    return ARCHITECTURES.names()


def __getattr__(name: str):
    if name == "ARCHS":  # the current registered names, for old callers
        return arch_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: hidden widths of the MLP architectures (number of weight matrices = len(hidden) + 1)
MLP_HIDDEN: dict[str, tuple[int, ...]] = {
    "mlp": (512,),
    "mlp3": (512, 256),
    "mlp4": (512, 256, 128),
    "mlp_cifar": (8192, 4096, 2048, 1024),
}

ACTIVATIONS = ("relu", "tanh")


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, for inputs ``[B, C, H, W]`` in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        if len(mean) != len(std):
            raise ConfigError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(not v > 0 for v in std):
            raise ConfigError(f"std={std} must be > 0")
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        mean = tuple(round(v, 4) for v in self.mean.flatten().tolist())
        std = tuple(round(v, 4) for v in self.std.flatten().tolist())
        return f"mean={mean}, std={std}"


def _mean_std(c: int, mean, std):
    return (tuple(mean) if mean is not None else (0.0,) * c, tuple(std) if std is not None else (1.0,) * c)


class MLP(nn.Module):
    """Normalize -> Flatten -> (Linear -> activation) x len(hidden) -> Linear (Sec. 3).

    ``hidden=(512,)`` on MNIST is the paper's 2-layer MLP 784-512-10 (App. I). The activation
    must be 1-Lipschitz for the bounds of Sec. 4-5 (ReLU or tanh). Weight matrices in forward
    order: :meth:`linear_layers`.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (512,),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        bias: bool = True,
        activation: str = "relu",
    ):
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ConfigError(f"hidden={hidden} must hold positive widths")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.activation = activation
        self.hidden = hidden
        mean, std = _mean_std(self.input_shape[0], mean, std)
        self.normalize = Normalize(mean, std)
        self.flatten = nn.Flatten()
        widths = [math.prod(self.input_shape)] + list(hidden) + [int(num_classes)]
        act = nn.ReLU if activation == "relu" else nn.Tanh
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < len(widths) - 2:
                layers.append(act())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.flatten(self.normalize(x)))

    def linear_layers(self) -> list[nn.Linear]:
        """The ``nn.Linear`` layers in forward order (``W^(1), ..., W^(L)`` of Theorem 2)."""
        return [m for m in self.layers if isinstance(m, nn.Linear)]


class CNN4(nn.Module):
    """The "4-layer CNN" of App. I (exact layers are not given in the paper; this is ours).

    ``Normalize -> [conv3x3(C->32) ReLU, conv3x3(32->32) ReLU, maxpool2,
    conv3x3(32->64) ReLU, conv3x3(64->64) ReLU, maxpool2] -> Flatten ->
    Linear(64*(H/4)*(W/4) -> 256) ReLU -> Linear(256 -> classes)``. Convolutions use padding 1.
    On 32x32 inputs: 1.12M parameters (10 classes).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        channels: Sequence[int] = (32, 32, 64, 64),
        head: int = 256,
    ):
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        if h % 4 or w % 4:
            raise ConfigError(f"cnn4 needs input height/width divisible by 4, got {h}x{w}")
        c1, c2, c3, c4 = (int(v) for v in channels)
        mean, std = _mean_std(c, mean, std)
        self.input_shape = (c, h, w)
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c4 * (h // 4) * (w // 4), head), nn.ReLU(),
            nn.Linear(head, int(num_classes)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class SmallViT(nn.Module):
    """A small ViT for 28-64 px images, trained from scratch (our offline stand-in for App. I's ViT).

    timm ``VisionTransformer`` with patch 4 (inputs <= 32 px) or 8 (larger), embed_dim 192,
    depth 6, 3 heads, mlp_ratio 2, class token, learned position embedding:
    1.81M parameters on 32x32 RGB with 10 classes (64 tokens at 32 px and at 64 px).
    The timm model is ``self.vit``; ``Normalize`` comes first.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        patch_size: int | None = None,
        embed_dim: int = 192,
        depth: int = 6,
        num_heads: int = 3,
        mlp_ratio: float = 2.0,
    ):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        c, h, w = (int(s) for s in input_shape)
        if h != w:
            raise ConfigError(f"vit_small needs square inputs, got {h}x{w}")
        patch = int(patch_size) if patch_size else (4 if h <= 32 else 8)
        if h % patch:
            raise ConfigError(f"vit_small: image size {h} is not divisible by patch_size={patch}")
        mean, std = _mean_std(c, mean, std)
        self.input_shape = (c, h, w)
        self.normalize = Normalize(mean, std)
        self.vit = VisionTransformer(
            img_size=h, patch_size=patch, in_chans=c, num_classes=int(num_classes),
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(self.normalize(x))


class TimmViT(nn.Module):
    """Normalize -> bilinear resize to the ViT's input size (if needed) -> timm model ``self.vit``."""

    def __init__(self, vit: nn.Module, mean: Sequence[float], std: Sequence[float], input_size: int,
                 model_size: int = 224):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.vit = vit
        self.input_size = int(input_size)
        self.model_size = int(model_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        if x.shape[-1] != self.model_size or x.shape[-2] != self.model_size:
            x = F.interpolate(x, size=(self.model_size, self.model_size), mode="bilinear",
                              align_corners=False)
        return self.vit(x)


TIMM_VIT = "vit_tiny_patch16_224"


def timm_vit(
    num_classes: int,
    pretrained: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_size: int = 224,
    in_chans: int = 3,
) -> TimmViT:
    """timm's ``vit_tiny_patch16_224`` (App. I: "Tiny ViT ... 5M parameters ... pre-trained on ImageNet").

    Inputs of ``input_size`` px are resized (bilinear) to 224 inside the model. ``pretrained=True``
    loads timm's ImageNet weights from the Hugging Face hub (or its local cache); offline without a
    cache this raises ConfigError. ``mean``/``std`` default to the checkpoint's own normalisation
    (0.5, 0.5, 0.5) when pretrained, else the ImageNet statistics.
    """
    import timm

    try:
        vit = timm.create_model(TIMM_VIT, pretrained=pretrained, num_classes=int(num_classes),
                                in_chans=int(in_chans))
    except Exception as exc:
        if not pretrained:
            raise
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        raise ConfigError(
            f"pretrained=True: the timm weights for {TIMM_VIT} are not available"
            + (" offline (HF_HUB_OFFLINE=1)" if offline else "")
            + f" and were not found in the Hugging Face cache ({type(exc).__name__}: {exc}). "
            "Download them once on a machine with internet (timm.create_model("
            f"'{TIMM_VIT}', pretrained=True)) and copy the cache (HF_HOME), or use pretrained=False "
            "(training from scratch needs far more than the paper's 10 fine-tuning epochs)."
        ) from exc
    if mean is None or std is None:
        cfg_mean = vit.pretrained_cfg.get("mean", IMAGENET_MEAN)
        cfg_std = vit.pretrained_cfg.get("std", IMAGENET_STD)
        base_mean, base_std = (cfg_mean, cfg_std) if pretrained else (IMAGENET_MEAN, IMAGENET_STD)
        if in_chans != 3:  # e.g. MNIST: average the RGB statistics
            base_mean = (sum(base_mean) / 3,) * in_chans
            base_std = (sum(base_std) / 3,) * in_chans
        mean = mean if mean is not None else base_mean
        std = std if std is not None else base_std
    return TimmViT(vit, mean, std, input_size=input_size)


def _no_hidden(arch: str, kw: dict) -> dict:
    kw = dict(kw)
    if kw.pop("hidden", None) is not None:
        raise ConfigError(f"hidden= only applies to MLP architectures ({', '.join(MLP_HIDDEN)}), "
                          f"not arch={arch!r}")
    if kw.pop("pretrained", False):
        raise ConfigError(f"pretrained=True is only available for arch='vit_tiny', not arch={arch!r}")
    return kw


def _mlp_builder(arch: str) -> Callable[..., nn.Module]:
    def build(info: DatasetInfo, *, hidden: Sequence[int] | None = None, pretrained: bool = False,
              **kw) -> nn.Module:
        if pretrained:
            raise ConfigError(f"pretrained=True is only available for arch='vit_tiny', not arch={arch!r}")
        return MLP(info.input_shape, info.num_classes, hidden=hidden or MLP_HIDDEN[arch], mean=info.mean,
                   std=info.std, **kw)

    build.__doc__ = f"``{arch}``: :class:`MLP` with hidden widths {MLP_HIDDEN[arch]} (Sec. 3, App. I)."
    return build


for _arch in MLP_HIDDEN:
    register_arch(_arch)(_mlp_builder(_arch))


@register_arch("cnn4")
def _cnn4(info: DatasetInfo, **kw) -> nn.Module:
    """``cnn4``: :class:`CNN4`, the 4-layer CNN of App. I."""
    return CNN4(info.input_shape, info.num_classes, mean=info.mean, std=info.std, **_no_hidden("cnn4", kw))


@register_arch("vit_small")
def _vit_small(info: DatasetInfo, **kw) -> nn.Module:
    """``vit_small``: :class:`SmallViT`, trained from scratch (our addition, usable offline)."""
    return SmallViT(info.input_shape, info.num_classes, mean=info.mean, std=info.std,
                    **_no_hidden("vit_small", kw))


@register_arch("vit_tiny")
def _vit_tiny(info: DatasetInfo, *, hidden: Sequence[int] | None = None, pretrained: bool = False,
              **kw) -> nn.Module:
    """``vit_tiny``: :func:`timm_vit`; when pretrained, the checkpoint's own normalisation is used."""
    if hidden is not None:
        raise ConfigError(f"hidden= only applies to MLP architectures ({', '.join(MLP_HIDDEN)}), "
                          "not arch='vit_tiny'")
    c, h, _ = info.input_shape
    mean, std = (None, None) if pretrained else (info.mean, info.std)
    return timm_vit(info.num_classes, pretrained=bool(pretrained), mean=mean, std=std, input_size=h,
                    in_chans=c, **kw)


@register_arch("cct_2_3x2")
def _cct_2_3x2(info: DatasetInfo, **kw) -> nn.Module:
    """``cct_2_3x2``: :class:`prunerob.core.cct.CCT`, CCT-2/3x2 (Hassani et al. 2021), 0.28M parameters,
    trained from scratch; the paper fine-tunes an ImageNet-pretrained ViT-Tiny (``vit_tiny``)."""
    from prunerob.core.cct import CCT, CCT_VARIANTS

    layers, convs, kernel, dim, heads, ratio = CCT_VARIANTS["cct_2_3x2"]
    return CCT(info.input_shape, info.num_classes, mean=info.mean, std=info.std, layers=layers,
               conv_layers=convs, kernel=kernel, embed_dim=dim, heads=heads, mlp_ratio=ratio,
               **_no_hidden("cct_2_3x2", kw))


#: how figures and captions name an architecture whose training differs from the paper's
#: (``prunerob.core.registry.label_of("arch", name)``)
ARCH_LABELS: dict[str, str] = {
    "vit_small": "vit_small (a small ViT trained from scratch; the paper fine-tunes an ImageNet-pretrained "
                 "ViT-Tiny)",
    "vit_tiny": "vit_tiny (timm's ViT-Tiny; the paper's model when fine-tuned from ImageNet weights)",
    "cct_2_3x2": "cct_2_3x2 (a CCT-2/3x2 trained from scratch; the paper fine-tunes an ImageNet-pretrained "
                 "ViT-Tiny)",
}
for _arch, _label in ARCH_LABELS.items():
    ARCHITECTURES.get(_arch).label = _label


def build_model(arch: str, info: DatasetInfo, **kw) -> nn.Module:
    """Build ``arch`` (a name registered with :func:`register_arch`) for a data set described by ``info``.

    * ``mlp`` (784-512-10 on MNIST: the paper's "2-layer MLP"), ``mlp3`` (512, 256),
      ``mlp4`` (512, 256, 128), ``mlp_cifar`` (8192, 4096, 2048, 1024): the paper's "4-layer"
      CIFAR-10 MLP of App. I, which has 4 hidden layers and so 5 weight matrices.
      ``hidden=``, ``bias=``, ``activation=`` override.
    * ``cnn4``: :class:`CNN4`; ``vit_small``: :class:`SmallViT`; ``cct_2_3x2``:
      :class:`prunerob.core.cct.CCT` (keyword arguments pass through).
    * ``vit_tiny``: :func:`timm_vit` with ``pretrained=`` (default False); when pretrained, the
      checkpoint's own normalisation is used instead of the data set's.

    ``hidden=None`` or ``pretrained=False`` given to an architecture that ignores them is fine.
    An unknown name is one :class:`~prunerob.config.ConfigError` listing the registered names.
    """
    return ARCHITECTURES.get(arch)(info, **kw)


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    if hasattr(model, "linear_layers"):
        return list(model.linear_layers())
    if hasattr(model, "_orig_mod") and hasattr(model._orig_mod, "linear_layers"):  # torch.compile wrapper
        return list(model._orig_mod.linear_layers())
    raise ConfigError(f"model of type {type(model).__name__} is not an MLP (it has no linear_layers())")


def mlp_weights(model: nn.Module) -> list[torch.Tensor]:
    """Detached weight matrices ``W^(1..L)`` (``[out, in]``) of an MLP in forward order (Thm. 2)."""
    return [layer.weight.detach() for layer in _linear_layers(model)]


def mlp_biases(model: nn.Module) -> list[torch.Tensor | None]:
    """Detached biases ``b^(1..L)`` of an MLP in forward order (None where a layer has no bias)."""
    return [None if layer.bias is None else layer.bias.detach() for layer in _linear_layers(model)]


def folded_mlp(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases of an MLP as a function of the pixels in [0, 1] (float64, CPU).

    The models normalise inside (``(x - mean) / std`` per channel, see CONTRIBUTING.md); the
    theory of Sec. 4 (Theorem 2, Proposition 1) is stated for ``f(x) = W_L s(... s(W_1 x))`` on
    the inputs themselves, so the normalisation is folded into the first layer:
    ``W_1' = W_1 / std`` and ``b_1' = b_1 - W_1 (mean / std)``. A layer without bias gets zeros.
    """
    ws = [w.double().cpu() for w in mlp_weights(model)]
    bs = [torch.zeros(w.shape[0], dtype=torch.float64) if b is None else b.double().cpu()
          for w, b in zip(ws, mlp_biases(model), strict=True)]
    norm = model.normalize
    per_ch = ws[0].shape[1] // norm.mean.numel()
    mean = norm.mean.double().cpu().flatten().repeat_interleave(per_ch)
    std = norm.std.double().cpu().flatten().repeat_interleave(per_ch)
    bs[0] = bs[0] - ws[0] @ (mean / std)
    ws[0] = ws[0] / std
    return ws, bs
