"""Models: shapes, Normalize, parameter counts, known-answer MLP forward, error paths."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from prunerob.config import ConfigError
from prunerob.core.data import DatasetInfo, dataset_info
from prunerob.core.models import (
    ARCHS,
    CNN4,
    MLP,
    Normalize,
    SmallViT,
    TimmViT,
    build_model,
    folded_mlp,
    mlp_biases,
    mlp_weights,
    timm_vit,
)
from prunerob.theory.risk import mlp_forward

MNIST = dataset_info("mnist")
CIFAR = dataset_info("cifar10")


def test_normalize_by_hand():
    norm = Normalize((0.5, 0.25), (0.5, 0.25))
    x = torch.ones(1, 2, 1, 1)
    assert norm(x).flatten().tolist() == [1.0, 3.0]  # (1-0.5)/0.5, (1-0.25)/0.25
    assert norm(torch.zeros(1, 2, 1, 1)).flatten().tolist() == [-1.0, -1.0]
    assert set(dict(norm.named_buffers())) == {"mean", "std"} and not list(norm.parameters())
    with pytest.raises(ConfigError, match="std"):
        Normalize((0.5,), (0.0,))


def test_mlp_parameter_count_and_layers():
    m = build_model("mlp", MNIST)
    assert sum(p.numel() for p in m.parameters()) == 784 * 512 + 512 + 512 * 10 + 10
    assert [tuple(w.shape) for w in mlp_weights(m)] == [(512, 784), (10, 512)]
    assert [tuple(b.shape) for b in mlp_biases(m)] == [(512,), (10,)]
    assert isinstance(next(iter(m.children())), Normalize)
    shapes = [tuple(w.shape) for w in mlp_weights(build_model("mlp3", MNIST))]
    assert shapes == [(512, 784), (256, 512), (10, 256)]
    assert len(mlp_weights(build_model("mlp4", MNIST))) == 4
    shapes = [tuple(w.shape) for w in mlp_weights(build_model("mlp", MNIST, hidden=(7, 5)))]
    assert shapes == [(7, 784), (5, 7), (10, 5)]
    assert mlp_biases(build_model("mlp", MNIST, hidden=(3,), bias=False)) == [None, None]
    assert all(not w.requires_grad for w in mlp_weights(m))


def test_mlp_cifar_widths_without_allocating():
    with torch.device("meta"):  # 69M parameters: check the shapes only
        m = build_model("mlp_cifar", CIFAR)
    assert [tuple(w.shape) for w in mlp_weights(m)] == [
        (8192, 3072), (4096, 8192), (2048, 4096), (1024, 2048), (10, 1024)
    ]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_forward_known_answer(activation):
    """Sec. 3: h_l = sigma(W_l h_{l-1} + b_l), computed by hand from the weights."""
    torch.manual_seed(0)
    info = DatasetInfo("toy", 3, (2, 2, 2), (0.2, 0.4), (0.5, 0.25))
    m = MLP(info.input_shape, 3, hidden=(5, 4), mean=info.mean, std=info.std, activation=activation)
    x = torch.rand(6, 2, 2, 2)
    sigma = torch.relu if activation == "relu" else torch.tanh
    mean, std = torch.tensor([0.2, 0.4]).view(1, 2, 1, 1), torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)
    h = ((x - mean) / std).reshape(6, -1)
    ws, bs = mlp_weights(m), mlp_biases(m)
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = h @ w.T + b
        if i < len(ws) - 1:
            h = sigma(h)
    torch.testing.assert_close(m(x), h)


def test_cnn4_shapes():
    m = build_model("cnn4", CIFAR)
    assert isinstance(m, CNN4) and m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert sum(p.numel() for p in m.parameters()) == 1_116_970
    assert build_model("cnn4", MNIST)(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    assert build_model("cnn4", dataset_info("cifar100"))(torch.rand(1, 3, 32, 32)).shape == (1, 100)


def test_vit_small_shapes():
    m = build_model("vit_small", CIFAR)
    assert isinstance(m, SmallViT) and m.vit.patch_embed.patch_size == (4, 4)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert 1.7e6 < sum(p.numel() for p in m.parameters()) < 1.9e6
    m64 = build_model("vit_small", dataset_info("imagenette"), depth=1)
    assert m64.vit.patch_embed.patch_size == (8, 8) and m64(torch.rand(1, 3, 64, 64)).shape == (1, 10)
    assert build_model("vit_small", MNIST, depth=1)(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_vit_tiny_forward_32px():
    m = build_model("vit_tiny", CIFAR)
    assert isinstance(m, TimmViT) and isinstance(m.normalize, Normalize)
    assert torch.allclose(m.normalize.mean.flatten(), torch.tensor(CIFAR.mean))
    with torch.no_grad():
        assert m(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert 5.4e6 < sum(p.numel() for p in m.parameters()) < 5.6e6


def test_pretrained_offline_error(tmp_path, monkeypatch):
    """With no network and an empty Hugging Face cache, pretrained=True is a clear ConfigError."""
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ConfigError, match="not available offline|not available") as exc:
        timm_vit(10, pretrained=True, input_size=32)
    assert "pretrained=False" in str(exc.value)
    with pytest.raises(ConfigError):
        build_model("vit_tiny", CIFAR, pretrained=True)


def test_errors():
    with pytest.raises(ConfigError, match="arch='resnet'.*mlp"):
        build_model("resnet", MNIST)
    with pytest.raises(ConfigError, match="hidden"):
        build_model("cnn4", CIFAR, hidden=(5,))
    with pytest.raises(ConfigError, match="pretrained"):
        build_model("cnn4", CIFAR, pretrained=True)
    with pytest.raises(ConfigError, match="activation"):
        build_model("mlp", MNIST, activation="gelu")
    with pytest.raises(ConfigError, match="not an MLP"):
        mlp_weights(build_model("cnn4", CIFAR))


@pytest.mark.parametrize("arch", [a for a in ARCHS if a not in ("mlp_cifar", "vit_tiny")])
def test_every_arch_starts_with_normalize_and_gives_logits(arch):
    info = DatasetInfo("toy", 4, (3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    kw = {"depth": 1} if arch == "vit_small" else {}
    m = build_model(arch, info, **kw)
    assert isinstance(m.normalize, Normalize) and next(iter(m.children())) is m.normalize
    assert m(torch.rand(2, 3, 16, 16)).shape == (2, 4)


@pytest.mark.parametrize("data", [MNIST, CIFAR])
def test_folded_mlp_is_the_model_on_pixels(data):
    """folded_mlp folds Normalize into layer 1: the float64 network on [0, 1] inputs equals the model."""
    torch.manual_seed(0)
    m = build_model("mlp", data, hidden=(16, 8)).double().eval()
    x = torch.rand(5, *data.input_shape, dtype=torch.float64)
    ws, bs = folded_mlp(m)
    assert all(w.dtype == torch.float64 for w in ws) and len(bs) == len(ws) == 3
    assert torch.allclose(mlp_forward(ws, bs, x.flatten(1)), m(x), atol=1e-10)
    # the unfolded weights differ (the first layer is rescaled by 1/std), the others do not
    assert not torch.allclose(ws[0], mlp_weights(m)[0]) and torch.equal(ws[1], mlp_weights(m)[1])


def test_folded_mlp_without_bias():
    m = build_model("mlp", MNIST, hidden=(4,), bias=False).double().eval()
    ws, bs = folded_mlp(m)
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    assert torch.allclose(mlp_forward(ws, bs, x.flatten(1)), m(x), atol=1e-10)
    with pytest.raises(ConfigError, match="not an MLP"):
        folded_mlp(build_model("cnn4", CIFAR))


def test_architecture_registry_takes_a_new_model_without_editing_the_package():
    from prunerob.core.models import ARCHITECTURES, Normalize, arch_names, register_arch

    @register_arch("toy_linear_test")
    def _toy(info, **kw):
        c, h, w = info.input_shape
        return torch.nn.Sequential(Normalize(info.mean, info.std), torch.nn.Flatten(),
                                   torch.nn.Linear(c * h * w, info.num_classes))

    try:
        info = DatasetInfo("mnist", 10, (1, 28, 28), (0.1307,), (0.3081,))
        model = build_model("toy_linear_test", info)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert "toy_linear_test" in arch_names()
    finally:
        ARCHITECTURES.unregister("toy_linear_test")
    with pytest.raises(ConfigError, match="registered: mlp, mlp3"):
        build_model("toy_linear_test", info)
