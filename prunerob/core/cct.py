"""A Compact Convolutional Transformer (CCT; Hassani et al. 2021, "Escaping the Big Data Paradigm
with Compact Transformers") for 32x32 images, trained from scratch.

The paper (App. I) fine-tunes an ImageNet-pretrained ViT-Tiny (``vit_tiny``). Those weights are not
available offline and a plain ViT trained from scratch on a 2-core CPU stays far below competence,
so ``cct_2_3x2`` is the offline transformer: **trained from scratch; the paper fine-tunes an
ImageNet-pretrained ViT-Tiny**. Theorem 1 covers any transformer backbone: the pruned matrices are
those of the encoder blocks (attention and MLP), as for a ViT.

``cct_2_3x2`` (CCT-2/3x2, 0.28M parameters on CIFAR-10)::

    Normalize -> tokenizer: 2 x [conv3x3 (no bias) -> ReLU -> maxpool 3x3 stride 2]   32 px -> 8x8 = 64 tokens
              -> + learned position embedding (64 x 128)
              -> 2 timm ``Block`` (pre-LN, 2 heads, MLP ratio 1, GELU): ``blocks.i.attn.qkv/proj``,
                 ``blocks.i.mlp.fc1/fc2``
              -> LayerNorm -> sequence pooling (softmax(Linear(128, 1)) over tokens, weighted sum)
              -> Linear(128, classes)

The encoder uses timm's ``Block``/``Attention``/``Mlp`` modules, the ones of timm's
``VisionTransformer``, so the module names and the attention kernel switch (``fused_attn``) are
those of the ViTs. :meth:`CCT.prunable_weights` names what pruning touches (the model contract of
:func:`prunerob.core.pruning.prunable_weights`): the ``nn.Linear`` weights inside ``blocks``, as for
a timm ViT; the tokenizer (the CCT's patch embedding), the position embedding, the norms, the
pooling and the head are never pruned.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob.config import ConfigError

__all__ = ["CCT", "CCT_VARIANTS"]

#: name -> (encoder layers, tokenizer conv layers, conv kernel, embed dim, heads, MLP ratio)
CCT_VARIANTS: dict[str, tuple[int, int, int, int, int, float]] = {
    "cct_2_3x2": (2, 2, 3, 128, 2, 1.0),
}


class CCT(nn.Module):
    """Compact Convolutional Transformer (Hassani et al. 2021) on images in [0, 1].

    :param input_shape: ``(C, H, W)`` of the images (square; ``H`` divisible by ``2**conv_layers``).
    :param num_classes: classes of the linear head.
    :param mean: per-channel mean of the normalisation applied inside the model.
    :param std: per-channel std of that normalisation.
    :param layers: encoder blocks.
    :param conv_layers: tokenizer conv layers (each halves the side with its max pooling).
    :param kernel: tokenizer conv kernel size.
    :param embed_dim: token width.
    :param heads: attention heads.
    :param mlp_ratio: MLP hidden width / ``embed_dim``.
    :param drop_path: stochastic depth rate of the last block (linear from 0; CCT uses 0.1).
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, *, layers: int = 2, conv_layers: int = 2,
                 kernel: int = 3, embed_dim: int = 128, heads: int = 2, mlp_ratio: float = 1.0,
                 drop_path: float = 0.0):
        super().__init__()
        from timm.models.vision_transformer import Block

        from prunerob.core.models import Normalize, _mean_std

        c, h, w = (int(s) for s in input_shape)
        side = 2 ** int(conv_layers)
        if h != w or h % side:
            raise ConfigError(f"cct needs square inputs with a side divisible by {side} "
                              f"({conv_layers} conv layers halve it each), got {h}x{w}")
        if embed_dim % heads:
            raise ConfigError(f"cct: embed_dim={embed_dim} must be a multiple of heads={heads}")
        mean, std = _mean_std(c, mean, std)
        self.input_shape = (c, h, w)
        self.normalize = Normalize(mean, std)
        widths = [c] + [64] * (int(conv_layers) - 1) + [int(embed_dim)]
        tok: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            tok += [nn.Conv2d(a, b, kernel, padding=kernel // 2, bias=False), nn.ReLU(),
                    nn.MaxPool2d(3, stride=2, padding=1)]
        self.tokenizer = nn.Sequential(*tok)
        for m in self.tokenizer:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
        self.n_tokens = (h // side) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, int(embed_dim)))
        nn.init.trunc_normal_(self.pos_embed, std=0.2)
        rates = [float(drop_path) * i / max(int(layers) - 1, 1) for i in range(int(layers))]
        self.blocks = nn.Sequential(*[Block(int(embed_dim), int(heads), mlp_ratio=mlp_ratio, qkv_bias=False,
                                            drop_path=r) for r in rates])
        self.norm = nn.LayerNorm(int(embed_dim))
        self.attention_pool = nn.Linear(int(embed_dim), 1)
        self.head = nn.Linear(int(embed_dim), int(num_classes))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in [0, 1] -> tokens ``[B, n, d]`` with position embedding (the
        encoder's input; the part Theorem 1 does not bound)."""
        t = self.tokenizer(self.normalize(x))
        return t.flatten(2).transpose(1, 2) + self.pos_embed

    def forward_tokens(self, t: torch.Tensor) -> torch.Tensor:
        """Tokens -> logits: encoder blocks, LayerNorm, sequence pooling, head."""
        t = self.norm(self.blocks(t))
        weights = F.softmax(self.attention_pool(t), dim=1)  # [B, n, 1]: sequence pooling
        return self.head((weights.transpose(1, 2) @ t).squeeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.tokens(x))

    def prunable_weights(self) -> OrderedDict[str, nn.Parameter]:
        """The ``nn.Linear`` weights inside ``blocks`` in forward order (attention ``qkv``, ``proj``,
        MLP ``fc1``, ``fc2`` of each block), named as in ``named_parameters()`` (e.g.
        ``blocks.0.attn.qkv.weight``): the matrices a timm ViT prunes."""
        return OrderedDict((f"blocks.{name}.weight", m.weight) for name, m in self.blocks.named_modules()
                           if isinstance(m, nn.Linear))
