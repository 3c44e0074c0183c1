"""The attack wrapper (:class:`Attack`: eval/range checks, restarts, projection), :func:`make_attack`
and :func:`attack_batches`. Nothing here is specific to one attack: the registry entry of
``spec.name`` builds and describes it."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from prunerob.config import ConfigError
from prunerob.core.attacks.base import (
    DEFAULT_EPS,
    TUNABLE,
    AttackDef,
    AttackFn,
    attack_names,
    get_attack,
    project_linf,
)
from prunerob.core.attacks.spec import AttackSpec
from prunerob.core.precision import AutocastModel

__all__ = ["Attack", "make_attack", "attack_batches"]


def _n_logits(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


class Attack:
    """A callable ``attack(x, y) -> x_adv`` for ``model`` described by ``spec``.

    Checks that the model is in eval mode and ``x`` lies in [0, 1]; the result is projected
    onto the eps-ball and clamped to [0, 1] (a no-op for correct attacks, a guarantee for all).
    With ``spec.restarts > 1`` each restart is run and, per example, the result that
    misclassifies (else the one with the higher cross-entropy) is kept.
    Random starts draw from torch's global generator: seed it (or use :func:`attack_batches`).
    An attack whose entry sets ``build_at_first_call`` (AutoAttack) is built at the first call,
    once the number of classes is read from the model's logits.
    """

    def __init__(self, spec: AttackSpec, model: nn.Module) -> None:
        self.spec = spec
        self.model = model
        self.definition: AttackDef = get_attack(spec.name)
        # what the attack differentiates: the model itself, or it under bf16 autocast
        self._target = model if spec.precision == "fp32" else AutocastModel(model, spec.precision)
        self._impl: AttackFn | None = None
        if not self.definition.build_at_first_call:
            self._impl = self.definition.build(spec, self._target)

    def describe(self) -> str:
        return self.spec.describe()

    def __repr__(self) -> str:
        return f"Attack({self.spec.describe()})"

    def _build_for(self, x: torch.Tensor) -> AttackFn:
        d, nl = self.definition, _n_logits(self.model, x)
        if self.spec.n_classes is not None and self.spec.n_classes != nl:
            raise ConfigError(f"n_classes={self.spec.n_classes} but the model outputs {nl} logits")
        if nl < d.min_classes:
            raise ConfigError(
                f"{d.label}{d.classes_note} needs >= {d.min_classes} classes; the model has {nl}"
            )
        return d.build(dataclasses.replace(self.spec, n_classes=nl), self._target)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.model.training:
            raise RuntimeError(
                "model is in training mode; call model.eval() before attacking "
                "(attacks are evaluated in eval mode: dropout off, BatchNorm running statistics)"
            )
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ConfigError("attack inputs must lie in [0, 1] (normalisation belongs inside the model)")
        if x.shape[0] != y.shape[0]:
            raise ConfigError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        device = next(self.model.parameters()).device
        x, y = x.detach().to(device), y.to(device)
        if self._impl is None:
            self._impl = self._build_for(x)
        restarts = self.spec.restarts or 1
        best = None
        for _ in range(restarts):
            adv = project_linf(self._impl(x, y).detach(), x, self.spec.eps)
            if best is None:
                best = adv
                if restarts > 1:
                    with torch.no_grad():
                        logits = self.model(best)
                    best_fooled = logits.argmax(1) != y
                    best_loss = F.cross_entropy(logits, y, reduction="none")
                continue
            with torch.no_grad():
                logits = self.model(adv)
            fooled = logits.argmax(1) != y
            loss = F.cross_entropy(logits, y, reduction="none")
            better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
            best = torch.where(better.view(-1, *[1] * (x.dim() - 1)), adv, best)
            best_fooled = best_fooled | fooled
            best_loss = torch.where(better, loss, best_loss)
        if self.model.training:  # torchattacks restores the caller's mode; make sure of it
            self.model.eval()
        return best


def make_attack(
    spec_or_name: AttackSpec | str,
    model: nn.Module,
    eps: float | str | None = None,
    **overrides: Any,
) -> Attack:
    """Build an attack ``attack(x, y) -> x_adv`` on ``model``.

    ``spec_or_name``: a registered attack name (:func:`attack_names`; ``eps`` defaults to 4/255,
    App. I) or an :class:`AttackSpec` (``eps`` defaults to the spec's). ``overrides`` are
    :class:`AttackSpec` fields (``steps``, ``alpha``, ``restarts``, ``seed``, ``kappa``,
    ``n_classes``, ``random_start``). When a spec gets a new ``eps``, fields equal to the spec's
    defaults (e.g. PGD's ``alpha = 2.5 * eps / steps``) are re-derived for the new ``eps``.
    """
    if "eps" in overrides:
        raise ConfigError("pass eps as the third argument of make_attack, not as an override")
    if isinstance(spec_or_name, AttackSpec):
        fields = dataclasses.asdict(spec_or_name)
        fields["eps"] = spec_or_name.eps if eps is None else eps
    else:
        if not isinstance(spec_or_name, str):
            raise ConfigError(
                f"attack must be an AttackSpec or one of {', '.join(attack_names())}; got {spec_or_name!r}"
            )
        fields = {"name": spec_or_name, "eps": DEFAULT_EPS if eps is None else eps}
    known = {f.name for f in dataclasses.fields(AttackSpec)}
    bad = sorted(set(overrides) - known)
    if bad:
        allowed = ", ".join(sorted(known - {"name"}))
        raise ConfigError(f"unknown attack parameter(s) {', '.join(bad)}; allowed: {allowed}")
    fields.update(overrides)
    if isinstance(spec_or_name, AttackSpec):
        # re-derive defaults that depend on eps (PGD alpha) unless given explicitly
        base = AttackSpec(name=spec_or_name.name, eps=spec_or_name.eps)
        for f in TUNABLE:
            if f not in overrides and getattr(spec_or_name, f) == getattr(base, f):
                fields[f] = None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return Attack(AttackSpec(**fields), model)


def _xy_batches(data: Any, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(data, "batches") and callable(data.batches):
        return data.batches(batch_size, shuffle=False)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ConfigError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        return ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, x.shape[0], batch_size))
    raise ConfigError("data must be an ArrayDataset (with .batches) or a tuple (x, y) of tensors")


def attack_batches(
    attack: Attack | AttackSpec | str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    model: nn.Module,
    data: Any,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    *,
    limit: int | None = None,
    seed: int | None = None,
    return_adv: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Attack ``data`` batch by batch and return ``(x_adv, clean_correct, adv_correct)``.

    ``data``: an ``ArrayDataset`` (iterated with ``shuffle=False``) or a tuple ``(x, y)``, so
    every attack sees exactly the same examples in the same order; ``limit`` keeps the first
    ``limit`` examples. ``clean_correct`` / ``adv_correct`` are boolean CPU tensors
    (``model(x).argmax == y`` on the clean / adversarial input; an example misclassified when
    clean counts as correct under attack only if the attack output is classified correctly).
    ``x_adv`` is returned on the CPU (``None`` with ``return_adv=False``, to save memory).

    Reproducibility: before the attack on batch ``i`` the global torch generators (CPU and
    CUDA) are seeded with ``seed + i`` (``seed`` defaults to the attack's ``spec.seed``) inside
    ``torch.random.fork_rng``, so random starts do not depend on earlier calls and the caller's
    random state is left untouched. Results depend on ``batch_size`` only through this seeding.
    """
    if isinstance(attack, (AttackSpec, str)):
        attack = make_attack(attack, model)
    if getattr(attack, "model", model) is not model:
        raise ConfigError("the attack was built for a different model than the one evaluated")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be >= 1")
    if model.training:
        raise RuntimeError("model is in training mode; call model.eval() before attacking")
    base_seed = int(seed if seed is not None else getattr(getattr(attack, "spec", None), "seed", 0))
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    fork_devices = [dev] if dev.type == "cuda" else []
    advs, clean, adv_ok = [], [], []
    seen = 0
    batches = tqdm(_xy_batches(data, batch_size), desc="attack", disable=None, leave=False)
    for i, (x, y) in enumerate(batches):
        if limit is not None:
            if seen >= limit:
                break
            x, y = x[: limit - seen], y[: limit - seen]
        seen += x.shape[0]
        x, y = x.to(dev), y.to(dev)
        with torch.no_grad():
            clean.append((model(x).argmax(1) == y).cpu())
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(base_seed + i)
            x_adv = attack(x, y)
        with torch.no_grad():
            adv_ok.append((model(x_adv).argmax(1) == y).cpu())
        if return_adv:
            advs.append(x_adv.detach().cpu())
    if not clean:
        raise ConfigError("data yielded no examples to attack")
    x_adv_all = torch.cat(advs) if return_adv else None
    return x_adv_all, torch.cat(clean), torch.cat(adv_ok)
