"""Registries of pruning methods and attacks: a toy method and a toy attack registered from inside
the test (no package file touched) work in make_masks, make_attack and run_sweep; unknown names give
one ConfigError listing the registered names; CLI choices and --help come from the registries."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from prunerob.cli import build_parser
from prunerob.config import ConfigError
from prunerob.core import attacks as A
from prunerob.core import pruning as P
from prunerob.core.attacks import (
    AttackDef,
    AttackSpec,
    attack_names,
    get_attack,
    make_attack,
    register_attack,
)
from prunerob.core.pruning import PruningMethod, get_method, make_masks, method_names, register_method
from prunerob.core.registry import Registry

torch.set_num_threads(1)


# ------------------------------------------------------------------ toys (defined in the test only)
class KeepFirst(PruningMethod):
    """Keeps the first round(keep * numel) entries of each layer in row-major order."""

    label = "keep first (toy)"
    help = "toy: keep the first entries of each layer"

    def compute_masks(self, weights, keep, *, seed, prepared):
        out = OrderedDict()
        for n, w in weights.items():
            m = torch.zeros(w.numel(), dtype=torch.bool)
            m[: P.n_kept(keep, w.numel())] = True
            out[n] = m.view(w.shape)
        return out


class SignFlip(AttackDef):
    """x' = clip(x + eps * sign(0.5 - x)): pushes every pixel towards the far end (data-free)."""

    label = "sign flip (toy)"
    help = "toy: move every pixel by eps away from 0.5"
    fixed = {"steps": 1, "restarts": 1, "random_start": False, "kappa": None}
    defaults = {"alpha": lambda s: s.eps}

    def build(self, spec, model):
        return lambda x, y: (x + spec.eps * torch.sign(0.5 - x + 1e-12) * -1).clamp(0, 1)

    def describe(self, spec):
        return f"sign flip, eps={spec.eps:g}"


@pytest.fixture
def toys():
    register_method("keep_first")(KeepFirst)
    register_attack("sign_flip")(SignFlip)
    yield "keep_first", "sign_flip"
    P.REGISTRY.unregister("keep_first")
    A.REGISTRY.unregister("sign_flip")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def small_data(n: int = 40):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


# ------------------------------------------------------------------ generic registry
def test_registry_basics():
    reg = Registry("thing", "test thing")

    @reg.register("a")
    class Thing:
        pass

    reg.register("b")(object())
    assert reg.names() == ("a", "b") and list(reg) == ["a", "b"] and "a" in reg and "c" not in reg
    assert isinstance(reg.get("a"), Thing) and reg.get("a").name == "a"
    with pytest.raises(ConfigError) as e:
        reg.get("c")
    assert "thing='c'" in str(e.value) and "a, b" in str(e.value)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a")(Thing)
    with pytest.raises(ConfigError, match="lower-case"):
        reg.register("Bad Name")


def test_builtin_registries_and_old_names():
    # the built-in names are registered (a contributor's new file adds to them, so no exact list)
    assert {"magnitude", "magnitude_global", "random", "taylor", "bernoulli_uniform"} <= set(method_names())
    assert {"fgsm", "pgd", "cw", "autoattack"} <= set(attack_names())
    assert P.METHODS == method_names() and A.ATTACKS == attack_names()
    assert get_method("taylor").needs_data and not get_method("magnitude").needs_data
    assert get_method("random").stochastic and not get_method("magnitude_global").stochastic
    for name in method_names():
        m = get_method(name)
        assert m.name == name and m.label and m.help
    for name in attack_names():
        a = get_attack(name)
        assert a.name == name and a.label and a.help


def test_unknown_names_one_error_listing_registered():
    model = small_model()
    with pytest.raises(ConfigError) as e:
        make_masks("snip", model, 0.5)
    assert all(n in str(e.value) for n in method_names())
    with pytest.raises(ConfigError) as e:
        AttackSpec("deepfool")
    assert all(n in str(e.value) for n in attack_names())


# ------------------------------------------------------------------ toys through the public API
def test_toy_method_and_attack_via_api(toys):
    method, attack = toys
    model = small_model()
    assert method in P.METHODS and attack in A.ATTACKS  # the old names follow the registry
    masks = make_masks(method, model, 0.5)
    w = P.prunable_weights(model)
    assert list(masks) == list(w)
    for n, t in w.items():
        assert int(masks[n].sum()) == round(0.5 * t.numel()) and bool(masks[n].flatten()[0])
    spec = AttackSpec(attack, eps=0.1)
    assert spec.steps == 1 and spec.alpha == pytest.approx(0.1) and spec.describe() == "sign flip, eps=0.1"
    with pytest.raises(ConfigError, match="steps"):
        AttackSpec(attack, steps=3)
    x, y = small_data(8)
    adv = make_attack(attack, model, 0.1)(x, y)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(adv, x)


def test_method_output_is_checked():
    class Broken(PruningMethod):
        label, help = "broken", "returns float masks"

        def compute_masks(self, weights, keep, *, seed, prepared):
            return OrderedDict((n, torch.ones_like(t)) for n, t in weights.items())

    register_method("broken_toy")(Broken)
    try:
        with pytest.raises(ConfigError, match="non-boolean"):
            make_masks("broken_toy", small_model(), 0.5)
    finally:
        P.REGISTRY.unregister("broken_toy")
    with pytest.raises(ConfigError, match="broken_toy"):
        get_method("broken_toy")


def test_sweep_with_toy_method_and_attack(toys):
    from prunerob.engine.sweep import run_sweep

    method, attack = toys
    model = small_model()
    x, y = small_data(40)
    df = run_sweep(model, (x, y), model_name="toy-mlp", dataset_name="toy-data", methods=[method],
                   keeps=[1, 0.5], attacks=[attack], eps=[0.1], n=40, progress=False)
    assert len(df) == 2 and set(df["method"]) == {method} and set(df["attack"]) == {attack}
    assert set(df["model"]) == {"toy-mlp"} and set(df["dataset"]) == {"toy-data"}
    with torch.no_grad():
        clean_full = float((model(x).argmax(1) == y).float().mean())
    row = df[df["keep_ratio"] == 1.0].iloc[0]
    assert row["clean_acc"] == pytest.approx(clean_full)


# ------------------------------------------------------------------ CLI reads the registries
def _sweep_help() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return " ".join(sub.choices["sweep"].format_help().split())


def test_cli_help_lists_registered_names(toys):
    method, attack = toys
    text = _sweep_help()  # built after the toys were registered
    for name in (*method_names(), *attack_names()):
        assert name in text
    assert KeepFirst.help in text and SignFlip.help in text
    P.REGISTRY.unregister(method)
    A.REGISTRY.unregister(attack)
    try:
        text = _sweep_help()
        assert method not in text and attack not in text
    finally:
        register_method(method)(KeepFirst)
        register_attack(attack)(SignFlip)


def test_a_new_module_in_the_package_is_registered_without_editing_init(tmp_path, monkeypatch):
    """One new file is enough: import_submodules picks up every module of the package."""
    import sys

    import prunerob.core.pruning as pruning_pkg
    from prunerob.core.registry import import_submodules

    pkg_dir = tmp_path / "extra"
    pkg_dir.mkdir()
    (pkg_dir / "zz_toy_file_method.py").write_text(
        "from prunerob.core.pruning.base import PruningMethod, register_method\n"
        "from prunerob.core.pruning.magnitude import magnitude_masks\n\n"
        "@register_method('zz_toy_file')\n"
        "class ZZ(PruningMethod):\n"
        "    label = 'zz toy'\n"
        "    help = 'a method defined in a new file'\n"
        "    def compute_masks(self, weights, keep, *, seed, prepared):\n"
        "        return magnitude_masks(weights, keep)\n")
    monkeypatch.setattr(pruning_pkg, "__path__", [*pruning_pkg.__path__, str(pkg_dir)])
    try:
        assert "zz_toy_file_method" in import_submodules("prunerob.core.pruning")
        assert pruning_pkg.method_names()[-1] == "zz_toy_file"
        assert {"magnitude", "magnitude_global", "random", "taylor", "bernoulli_uniform"} < set(
            pruning_pkg.method_names())
    finally:
        pruning_pkg.REGISTRY.unregister("zz_toy_file")
        sys.modules.pop("prunerob.core.pruning.zz_toy_file_method", None)
