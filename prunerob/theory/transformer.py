"""The one-block transformer classifier analysed in Lemma 1 and Theorem 1 (Sec. 3-4, App. A-B).

Structure (pre-LN, one block, no dropout)::

    X  (n tokens x d)                                   tokens, or patchify + linear embedding
    z   = X + MH(LN1(X))                                Eq. (1)-(2) + residual
    out = z + FFN(LN2(z)),  FFN(u) = W2 ReLU(W1 u)      position-wise feed-forward
    logits = head(mean_i out_i)                          mean pooling + linear head

with ``H`` heads, per head ``W^{Q,h}, W^{K,h}, W^{V,h}`` in R^{d x d/H}, used as ``X W`` exactly as
in Eq. (1), ``AH_h(X) = softmax((X W^Q)(X W^K)^T / sqrt(d/H)) X W^V`` and Eq. (2)
``MH(X) = concat_h(AH_h(X)) W^O`` with ``W^O`` in R^{d x d}.

The paper writes a single ``||W_FFN||`` for the feed-forward network. Here the FFN has two
matrices ``W1`` (d_ff x d) and ``W2`` (d x d_ff) and we use ``||W_FFN|| := ||W1|| * ||W2||``,
the product bound on the FFN's Lipschitz constant (ReLU is 1-Lipschitz). Under uniform keep
probability ``p`` each matrix contributes ``sqrt(p)`` in expectation (``E||B o W||_F <=
sqrt(p)||W||_F``), so ``p`` for the pair, which matches the printed ``p ||W_FFN||_F`` of Theorem 1.

:meth:`OneLayerTransformer.block` is the function whose Lipschitz constant Lemma 1 bounds
(tokens to tokens, before pooling and head). The patch embedding, the pooling and the head are
not pruned and are not part of the printed bound (mean pooling is ``1/sqrt(n)``-Lipschitz from
Frobenius to L2; the head multiplies by ``||W_head||_2``).
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from prunerob.config import ConfigError
from prunerob.core.data import ArrayDataset
from prunerob.core.fit import fit

__all__ = ["OneLayerTransformer", "train_transformer"]


class OneLayerTransformer(nn.Module):
    """One pre-LN transformer block + mean pooling + linear head (Lemma 1 / Theorem 1 model).

    :param d: token dimension (must be divisible by ``heads``).
    :param heads: number of attention heads ``H``.
    :param num_classes: output size of the linear head.
    :param d_ff: hidden width of the FFN (default ``2 d``).
    :param layernorm: use LN1 / LN2 (``False`` replaces both by the identity).
    :param ln_eps: the LayerNorm epsilon (the global Lipschitz constant of LN is
        ``max|gain| / sqrt(ln_eps)``, see :func:`prunerob.theory.bounds.lemma1_gamma_corrected`).
    :param ffn_bias: add biases to the FFN (the paper's FFN has none).
    :param image_size: with ``patch_size`` and ``in_chans``: when given, :meth:`forward` accepts
        images ``[B, C, H, W]`` in [0, 1], cuts them into ``(H/patch)^2`` patches and embeds them
        with a linear map (not pruned). Otherwise :meth:`forward` expects tokens.
    :param patch_size: side of a square patch (see ``image_size``).
    :param in_chans: image channels (see ``image_size``).
    :param mean: optional per-channel normalisation applied to images before patchify
        (models take [0, 1] inputs and normalise inside, see CONTRIBUTING.md).
    :param std: see ``mean``.
    :param init_scale: standard deviation multiplier of the Gaussian initialisation of the
        attention / FFN matrices (``init_scale / sqrt(fan_in)``).
    """

    def __init__(
        self,
        d: int,
        heads: int = 1,
        num_classes: int = 10,
        d_ff: int | None = None,
        layernorm: bool = True,
        ln_eps: float = 1e-5,
        ffn_bias: bool = False,
        image_size: int | None = None,
        patch_size: int | None = None,
        in_chans: int = 1,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if d < 1 or heads < 1 or d % heads != 0:
            raise ConfigError(f"d={d}, heads={heads}: d must be a positive multiple of heads")
        if ln_eps <= 0:
            raise ConfigError(f"ln_eps={ln_eps} must be > 0")
        self.d, self.heads, self.dh = d, heads, d // heads
        self.d_ff = d_ff or 2 * d
        self.layernorm = bool(layernorm)
        self.ln_eps = float(ln_eps)
        gen_std = init_scale

        def mat(rows: int, cols: int, fan_in: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(rows, cols) * gen_std / math.sqrt(fan_in))

        # Eq. (1): W^{Q,h}, W^{K,h}, W^{V,h} in R^{d x d/H}, used as X @ W.
        self.wq = nn.ParameterList([mat(d, self.dh, d) for _ in range(heads)])
        self.wk = nn.ParameterList([mat(d, self.dh, d) for _ in range(heads)])
        self.wv = nn.ParameterList([mat(d, self.dh, d) for _ in range(heads)])
        # Eq. (2): W^O in R^{d x d}, used as concat @ W^O.
        self.wo = mat(d, d, d)
        # FFN(u) = W2 ReLU(W1 u): W1 in R^{d_ff x d}, W2 in R^{d x d_ff} (torch Linear layout).
        self.w1 = mat(self.d_ff, d, d)
        self.w2 = mat(d, self.d_ff, self.d_ff)
        self.b1 = nn.Parameter(torch.zeros(self.d_ff)) if ffn_bias else None
        self.b2 = nn.Parameter(torch.zeros(d)) if ffn_bias else None
        if self.layernorm:
            self.ln1 = nn.LayerNorm(d, eps=ln_eps)
            self.ln2 = nn.LayerNorm(d, eps=ln_eps)
        else:
            self.ln1 = nn.Identity()
            self.ln2 = nn.Identity()
        self.head = nn.Linear(d, num_classes)

        self.patch_size = patch_size
        self.image_size = image_size
        self.in_chans = in_chans
        if image_size is not None or patch_size is not None:
            if image_size is None or patch_size is None or image_size % patch_size != 0:
                raise ConfigError(
                    f"image_size={image_size}, patch_size={patch_size}: give both, with image_size "
                    "divisible by patch_size"
                )
            self.embed = nn.Linear(in_chans * patch_size * patch_size, d)
            self.n_tokens = (image_size // patch_size) ** 2
        else:
            self.embed = None
            self.n_tokens = None
        if (mean is None) != (std is None):
            raise ConfigError("mean and std must be given together")
        if mean is not None:
            self.register_buffer("norm_mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("norm_std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        else:
            self.norm_mean = None
            self.norm_std = None

    # ------------------------------------------------------------------ pieces
    def attention_head(self, X: torch.Tensor, h: int) -> torch.Tensor:
        """Eq. (1): ``softmax((X W^Q)(X W^K)^T / sqrt(d/H)) (X W^V)`` for head ``h``. X: [..., n, d]."""
        q, k, v = X @ self.wq[h], X @ self.wk[h], X @ self.wv[h]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        return torch.softmax(scores, dim=-1) @ v

    def multihead(self, X: torch.Tensor) -> torch.Tensor:
        """Eq. (2): ``concat_h AH_h(X) W^O``."""
        return torch.cat([self.attention_head(X, h) for h in range(self.heads)], dim=-1) @ self.wo

    def ffn(self, u: torch.Tensor) -> torch.Tensor:
        """``W2 ReLU(W1 u)`` applied to every token (row) of ``u``."""
        return F.linear(F.relu(F.linear(u, self.w1, self.b1)), self.w2, self.b2)

    def block(self, X: torch.Tensor) -> torch.Tensor:
        """The token-to-token map bounded by Lemma 1: ``z = X + MH(LN1 X); z + FFN(LN2 z)``."""
        z = X + self.multihead(self.ln1(X))
        return z + self.ffn(self.ln2(z))

    def forward_tokens(self, X: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, n, d]`` -> logits ``[B, num_classes]`` (block, mean pooling, head)."""
        return self.head(self.block(X).mean(dim=-2))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> patch vectors ``[B, n, C p p]`` (row-major patch order)."""
        p = self.patch_size
        B, C, Hh, Ww = x.shape
        x = x.unfold(2, p, p).unfold(3, p, p)  # B C H/p W/p p p
        return x.permute(0, 2, 3, 1, 4, 5).reshape(B, (Hh // p) * (Ww // p), C * p * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (when built with ``image_size``/``patch_size``) or tokens ``[B, n, d]``."""
        if self.embed is None:
            return self.forward_tokens(x)
        return self.forward_tokens(self.tokens(x))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in [0, 1] -> embedded tokens ``[B, n, d]``, the input ``X`` of
        :meth:`block` (normalised, patchified, linearly embedded; the part Lemma 1 does not bound)."""
        if self.embed is None:
            raise ConfigError("tokens() needs a model built with image_size and patch_size")
        if x.dim() != 4:
            raise ConfigError(f"expected images [B, C, H, W], got shape {tuple(x.shape)}")
        if self.norm_mean is not None:
            x = (x - self.norm_mean) / self.norm_std
        return self.embed(self.patchify(x))

    # --------------------------------------------------------------- for bounds
    def matrices(self) -> dict:
        """The matrices the bounds read (detached float64 copies).

        Keys: ``Q``, ``K``, ``V`` (lists over heads, each d x d/H), ``O`` (d x d), ``W1``
        (d_ff x d), ``W2`` (d x d_ff), ``layernorm`` (bool), ``ln_eps``, and when LN is on
        ``ln1_weight``, ``ln1_bias``, ``ln2_weight``, ``ln2_bias``.
        """
        c = lambda t: t.detach().to(torch.float64).cpu().clone()  # noqa: E731
        out = {
            "Q": [c(w) for w in self.wq],
            "K": [c(w) for w in self.wk],
            "V": [c(w) for w in self.wv],
            "O": c(self.wo),
            "W1": c(self.w1),
            "W2": c(self.w2),
            "layernorm": self.layernorm,
            "ln_eps": self.ln_eps,
        }
        if self.layernorm:
            for name, ln in (("ln1", self.ln1), ("ln2", self.ln2)):
                out[f"{name}_weight"] = c(ln.weight)
                out[f"{name}_bias"] = c(ln.bias)
        return out

    def prunable_weights(self) -> OrderedDict[str, nn.Parameter]:
        """Ordered ``name -> Parameter`` of the attention and FFN matrices (what pruning touches).

        Names match ``named_parameters()`` (``wq.0``, ..., ``wo``, ``w1``, ``w2``). The patch
        embedding, LN, FFN biases and head are never pruned.
        """
        out: OrderedDict[str, nn.Parameter] = OrderedDict()
        for group in ("wq", "wk", "wv"):
            for h, p in enumerate(getattr(self, group)):
                out[f"{group}.{h}"] = p
        out["wo"] = self.wo
        out["w1"] = self.w1
        out["w2"] = self.w2
        return out

    def pruned_copy(self, masks: Mapping[str, torch.Tensor]) -> OneLayerTransformer:
        """A deep copy with ``W <- M o W`` for every ``name -> mask`` in ``masks`` (others untouched)."""
        names = self.prunable_weights()
        unknown = set(masks) - set(names)
        if unknown:
            raise ConfigError(f"masks has unknown weight names {sorted(unknown)}; allowed: {list(names)}")
        new = copy.deepcopy(self)
        new_w = new.prunable_weights()
        with torch.no_grad():
            for name, m in masks.items():
                if m.shape != new_w[name].shape:
                    raise ConfigError(f"mask {name!r} has shape {tuple(m.shape)}, "
                                      f"weight has {tuple(new_w[name].shape)}")
                new_w[name].mul_(m.to(new_w[name].dtype))
        return new

    @classmethod
    def from_matrices(cls, mats: Mapping, num_classes: int = 2, **kw) -> OneLayerTransformer:
        """Build a token-input model whose block uses the given matrices (float64 by default).

        ``mats`` has the keys of :meth:`matrices`; LN gains/biases are optional (defaults 1 / 0).
        """
        w_o = torch.as_tensor(mats["O"], dtype=torch.float64)
        d = w_o.shape[0]
        heads = len(mats["Q"])
        W1 = torch.as_tensor(mats["W1"], dtype=torch.float64)
        model = cls(
            d=d, heads=heads, num_classes=num_classes, d_ff=W1.shape[0],
            layernorm=bool(kw.pop("layernorm", mats.get("layernorm", True))),
            ln_eps=float(kw.pop("ln_eps", mats.get("ln_eps", 1e-5))), **kw,
        ).double()
        with torch.no_grad():
            for h in range(heads):
                model.wq[h].copy_(torch.as_tensor(mats["Q"][h]))
                model.wk[h].copy_(torch.as_tensor(mats["K"][h]))
                model.wv[h].copy_(torch.as_tensor(mats["V"][h]))
            model.wo.copy_(w_o)
            model.w1.copy_(W1)
            model.w2.copy_(torch.as_tensor(mats["W2"]))
            if model.layernorm:
                for name, ln in (("ln1", model.ln1), ("ln2", model.ln2)):
                    if f"{name}_weight" in mats:
                        ln.weight.copy_(torch.as_tensor(mats[f"{name}_weight"]))
                    if f"{name}_bias" in mats:
                        ln.bias.copy_(torch.as_tensor(mats[f"{name}_bias"]))
        return model


def train_transformer(train: ArrayDataset, test: ArrayDataset, *, d: int = 64, heads: int = 4, patch: int = 7,
                      epochs: int = 1, train_subset: int | None = None, seed: int = 0, lr: float = 1e-3,
                      batch_size: int = 128,
                      device: str | torch.device = "cpu") -> tuple[OneLayerTransformer, dict]:
    """A :class:`OneLayerTransformer` on image patches, trained briefly for Fig. 16 (App. H.6).

    The model (seeded by ``seed``) cuts each image into ``(size / patch)^2`` tokens, normalises
    with the data set's mean and std, and is trained by :func:`prunerob.core.fit.fit` (Adam, ``lr``,
    batches of ``batch_size``) on ``train.subset(train_subset, seed=seed)``. Returns the model
    in eval mode and the :func:`~prunerob.core.fit.fit` info with ``test_acc`` on ``test`` and the
    architecture (``d``, ``heads``, ``patch``, ``n_tokens``).
    """
    torch.manual_seed(int(seed))
    model = OneLayerTransformer(d=d, heads=heads, num_classes=test.num_classes, image_size=test.x.shape[-1],
                                patch_size=patch, in_chans=test.x.shape[1], mean=test.mean, std=test.std)
    info = fit(model, train.subset(train_subset, seed=seed), epochs=epochs, lr=lr, batch_size=batch_size,
               seed=seed, device=device, test=test)
    return model, {**info, "d": d, "heads": heads, "patch": patch, "n_tokens": model.n_tokens}
