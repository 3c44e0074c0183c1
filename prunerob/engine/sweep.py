"""Sweeps of a trained model over keep ratios x pruning methods x attacks x budgets (Sec. 6.3).

This produces the data behind Figure 2 (clean and FGSM-attacked accuracy of magnitude-pruned
models as the keep probability ``p`` varies), Figure 3 (score-based / Taylor pruning of a ViT)
and the PGD / CW / AutoAttack variants of Appendix H, with the attack settings of Appendix I.

Any ``nn.Module`` (inputs in [0, 1]) and any labelled data (an ``ArrayDataset``, a tuple
``(x, y)`` of tensors, a ``DataLoader``; :func:`prunerob.core.subsets.as_examples`) can be swept;
``model_name`` and ``dataset_name`` are free-form labels for the table. Pruning methods and
attacks come from the registries (:func:`prunerob.core.pruning.get_method`,
:func:`prunerob.core.attacks.get_attack`). Arguments are validated once, in :func:`run_sweep`
(:func:`validate_sweep_args`); :func:`sweep_validated` and the layers below trust them.

Every configuration is evaluated on the SAME examples: the first ``n`` of a fixed, seeded
permutation of the evaluation data (:func:`prunerob.core.subsets.select_examples`), recorded in the
``eval_subset`` column. Per-example correctness in evaluation order is kept in the columns
``clean_bits`` / ``adv_bits`` (``np.packbits(...).tobytes().hex()``, decode with
:func:`unpack_bits`), so paired tests (exact McNemar) between keep ratios are possible.

Randomness. Masks use ``method.masks(model, keep, seed=seed, ...)``; a method's data-dependent
part (Taylor scores on 20 training batches, App. I) is computed once per sweep by
``method.prepare``. Before every attack call on batch ``i`` the global torch RNG (CPU and CUDA)
is seeded with ``seed + i`` inside ``torch.random.fork_rng`` (the convention of
:func:`prunerob.core.attacks.attack_batches`), so PGD's random start is the same for every keep
ratio, every method and both execution paths (common random numbers).

Two execution paths give the same numbers (exactly in float64; in float32 an argmax or
gradient-sign tie can in rare cases go the other way): ``loop`` attacks each pruned copy
``apply_masks(model, masks)`` with :func:`prunerob.core.attacks.make_attack`; ``batched`` (plain MLPs,
the attacks of :data:`prunerob.engine.stacked.STACKED_ATTACKS`) runs all keep ratios of one method as
one stacked model (:mod:`prunerob.engine.stacked`). Finished (method, keep) chunks are kept in a resume
file (:mod:`prunerob.engine.resume`), so an interrupted sweep resumes to the same bytes.

The results table is tidy: one row per (method, keep_ratio, attack, eps) for one seed; see
:data:`BASE_COLUMNS`. Accuracies are fractions in [0, 1].
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from prunerob.config import (
    ConfigError,
    atomic_write_text,
    check_choice,
    check_keep,
    check_seed,
    config_hash,
    format_eps,
    parse_eps,
    parse_list,
    provenance,
    resolve_device,
)
from prunerob.core.attacks import AttackSpec, get_attack, make_attack
from prunerob.core.precision import eval_layout
from prunerob.core.pruning import apply_masks, get_method
from prunerob.core.subsets import Examples, as_examples, select_examples, to_float
from prunerob.engine import resume, stacked

__all__ = ["BASE_COLUMNS", "SweepArgs", "batch_seed", "run_sweep", "select_examples", "state_hash",
           "sweep_validated", "unpack_bits", "validate_sweep_args"]

#: Columns every sweep table has (attack parameter and provenance columns come in addition).
BASE_COLUMNS = (
    "model", "dataset", "method", "keep_ratio", "attack", "eps", "eps_label", "seed", "n",
    "clean_acc", "adv_acc", "clean_correct", "adv_correct", "achieved_keep", "path",
    "eval_split", "eval_subset", "clean_bits", "adv_bits", "config_hash",
)
BATCHED_CHOICES = ("auto", "yes", "no")
#: AttackSpec fields a user may override per attack (``attack_overrides``).
SPEC_FIELDS = ("steps", "alpha", "restarts", "seed", "kappa", "n_classes", "random_start", "precision")


# --------------------------------------------------------------------------------------------
# per-example correctness
# --------------------------------------------------------------------------------------------
def pack_bits(correct: torch.Tensor | np.ndarray) -> str:
    """Hex string of ``np.packbits`` of a boolean vector (evaluation order, first example = MSB)."""
    arr = correct.cpu().numpy() if isinstance(correct, torch.Tensor) else np.asarray(correct)
    return np.packbits(arr.astype(bool)).tobytes().hex()


def unpack_bits(hex_bits: str, n: int) -> np.ndarray:
    """Inverse of the ``clean_bits`` / ``adv_bits`` columns: a boolean vector of length ``n``."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(str(hex_bits)), dtype=np.uint8))
    if bits.shape[0] < n or bits.shape[0] - n >= 8:
        raise ConfigError(f"bit string of {bits.shape[0]} bits does not hold n={n} examples")
    return bits[:n].astype(bool)


# --------------------------------------------------------------------------------------------
# validation (once, at the boundary)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepArgs:
    """Validated, normalised sweep arguments (:func:`validate_sweep_args`); trusted below."""

    methods: tuple[str, ...]
    keeps: tuple[float, ...]
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    seed: int
    n: int | None
    batch_size: int
    batched: str
    attack_overrides: Mapping[str, Mapping[str, Any]]
    subset_seed: int
    specs: Mapping[tuple[str, float], AttackSpec] = field(repr=False)

    def with_seed(self, seed: int) -> SweepArgs:
        """The same sweep for another seed (attack specs re-derived; nothing re-validated)."""
        return dataclasses.replace(self, seed=int(seed),
                                   specs=_specs(self.attacks, self.eps, int(seed), self.attack_overrides))


def _specs(attacks: Sequence[str], eps: Sequence[float], seed: int,
           overrides: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, float], AttackSpec]:
    """One :class:`AttackSpec` per (attack, eps); the registry entry resolves the defaults."""
    return {(a, e): AttackSpec(name=a, eps=e, **{"seed": seed, **overrides.get(a, {})})
            for a in attacks for e in eps}


def _to_list(value: Any, conv: Callable, name: str) -> list:
    """``"a,b"`` / scalar / sequence -> list with ``conv`` applied (ConfigError on failure or empty)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    return parse_list(value, conv, name)


def _check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        none = " or None" if allow_none else ""
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}{none}")


def validate_sweep_args(
    *,
    methods: str | Sequence[str],
    keeps: str | float | Sequence[float],
    attacks: str | Sequence[str],
    eps: str | float | Sequence[float | str],
    seed: int = 0,
    n: int | None = None,
    batch_size: int = 500,
    batched: str | bool = "auto",
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    subset_seed: int = 0,
) -> SweepArgs:
    """Check every sweep argument once and return them as :class:`SweepArgs`.

    Methods and attacks must be registered (``prunerob.core.pruning.method_names()``,
    ``prunerob.core.attacks.attack_names()``); keep ratios and eps lie in [0, 1]. Raises
    :class:`~prunerob.config.ConfigError` naming the parameter and the allowed values.
    """
    methods_l = [get_method(m).name for m in _to_list(methods, str, "method")]
    attacks_l = [get_attack(a).name for a in _to_list(attacks, str, "attack")]
    keeps_l = [check_keep(k, "keep") for k in _to_list(keeps, float, "keep")]
    eps_l = _to_list(eps, parse_eps, "eps")
    for name, values in (("method", methods_l), ("attack", attacks_l), ("keep", keeps_l), ("eps", eps_l)):
        if len(set(values)) != len(values):
            raise ConfigError(f"{name} has duplicate values: {values}")
    _check_int("seed", seed, 0)
    _check_int("subset_seed", subset_seed, 0)
    check_seed(seed, "seed")
    check_seed(subset_seed, "subset_seed")
    _check_int("n", n, 1, allow_none=True)
    _check_int("batch_size", batch_size, 1)
    batched = {True: "yes", False: "no"}[batched] if isinstance(batched, bool) else batched
    check_choice("batched", str(batched), BATCHED_CHOICES)
    overrides = {} if attack_overrides is None else attack_overrides
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"attack_overrides must be a dict {{attack: {{parameter: value}}}}, "
                          f"got {overrides!r}")
    for a, ov in overrides.items():
        get_attack(a)  # a registered attack (it need not be swept: one dict may serve several sweeps)
        if not isinstance(ov, Mapping):
            raise ConfigError(f"attack_overrides[{a!r}] must be a dict of attack parameters, got {ov!r}")
        bad = sorted(set(ov) - set(SPEC_FIELDS))
        if bad:
            raise ConfigError(f"attack_overrides[{a!r}]: unknown parameter(s) {', '.join(bad)}; "
                              f"allowed: {', '.join(SPEC_FIELDS)}")
        AttackSpec(name=a, eps=eps_l[0], **{"seed": seed, **ov})  # raises ConfigError for bad values
    specs = _specs(attacks_l, eps_l, int(seed), overrides)
    if batched == "yes":
        bad = sorted({a for (a, _), s in specs.items() if not stacked.stackable(s)})
        if bad:
            raise ConfigError(f"batched='yes' supports only the attacks {', '.join(stacked.STACKED_ATTACKS)} "
                              f"with restarts=1, not {', '.join(bad)}; use batched='auto' (those attacks "
                              "then take the per-ratio loop)")
    return SweepArgs(methods=tuple(methods_l), keeps=tuple(keeps_l), attacks=tuple(attacks_l),
                     eps=tuple(eps_l), seed=int(seed), n=n, batch_size=int(batch_size), batched=str(batched),
                     attack_overrides={a: dict(ov) for a, ov in overrides.items()},
                     subset_seed=int(subset_seed), specs=specs)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def batch_seed(seed: int, batch_index: int) -> int:
    """Seed of the global torch RNG before attacking batch ``batch_index``: ``seed + batch_index``.

    The same convention as :func:`prunerob.core.attacks.attack_batches`, so a sweep row can be
    cross-checked with ``attack_batches(spec(seed=seed), pruned_model, (x, y), batch_size)``.
    """
    return int(seed) + int(batch_index)


def state_hash(model: nn.Module, n: int = 16) -> str:
    """SHA-256 over the model's state dict (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:n]


def _tensor_hash(*ts: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in ts:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _achieved_keep(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of prunable weights kept by ``masks`` (the realised keep ratio)."""
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept / total if total else 1.0


def _run_loop(model: nn.Module, masks: Mapping[str, torch.Tensor],
              specs: Mapping[tuple[str, float], AttackSpec], x: torch.Tensor, y: torch.Tensor, *, seed: int,
              batch_size: int, dtype: torch.dtype, device: torch.device) -> dict:
    """Per-example correctness of one pruned copy attacked with :func:`prunerob.core.attacks.make_attack`."""
    pruned = eval_layout(apply_masks(model, masks).eval())  # a copy: channels_last for a CNN4
    atks = {key: make_attack(spec, pruned) for key, spec in specs.items()}
    clean: list[torch.Tensor] = []
    adv: dict[tuple[str, float], list[torch.Tensor]] = {k: [] for k in atks}
    for b, start in enumerate(range(0, int(y.shape[0]), batch_size)):
        xb, yb = to_float(x[start:start + batch_size], dtype), y[start:start + batch_size]
        with torch.no_grad():
            clean.append((pruned(xb).argmax(-1) == yb).cpu())
        for key, atk in atks.items():
            with stacked.seeded(seed, b, device):
                xa = atk(xb, yb)
            with torch.no_grad():
                adv[key].append((pruned(xa).argmax(-1) == yb).cpu())
    return dict(clean=torch.cat(clean), adv={k: torch.cat(v) for k, v in adv.items()})


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------
def run_sweep(
    model: nn.Module,
    data: Any,
    *,
    model_name: str | None = None,
    dataset_name: str | None = None,
    methods: str | Sequence[str],
    keeps: str | float | Sequence[float],
    attacks: str | Sequence[str],
    eps: str | float | Sequence[float | str],
    seed: int = 0,
    n: int | None = None,
    batch_size: int = 500,
    device: str | torch.device = "auto",
    train_data: Any = None,
    batched: str | bool = "auto",
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    extra_columns: Mapping[str, Any] | None = None,
    subset_seed: int = 0,
    partial: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Clean and adversarial accuracy of ``model`` pruned by each method at each keep ratio (Sec. 6.3).

    :param model: any trained ``nn.Module`` taking inputs in [0, 1] (normalisation inside the model);
        never modified. Its parameter dtype is used for the evaluation.
    :param data: evaluation data: ``ArrayDataset``, tuple ``(x, y)`` (x uint8 or float in [0, 1]) or a
        ``DataLoader`` yielding ``(x, y)``; the first ``n`` of a ``subset_seed`` permutation are used.
    :param model_name: free-form label for the ``model`` column (default ``type(model).__name__``).
    :param dataset_name: free-form label for the ``dataset`` column (default the data's ``name`` or
        ``"custom"``).
    :param methods: registered pruning methods, list or ``"magnitude,random"``.
    :param keeps: keep ratios in [0, 1] (the paper's p: fraction of weights KEPT).
    :param attacks: registered attacks.
    :param eps: budgets in [0, 1] pixel units (``"4/255"`` ok).
    :param seed: mask seed, ``AttackSpec.seed`` and base of the per-batch RNG seed ``seed + batch``.
    :param n: number of evaluation examples (None: all).
    :param batch_size: evaluation batch; PGD's random start is drawn per batch, so it is part of the
        config.
    :param device: ``auto`` / ``cpu`` / ``cuda``; the model is copied there if it lives elsewhere.
    :param train_data: training data (same forms as ``data``) for methods with ``needs_data``
        (Taylor scores, App. I); required then.
    :param batched: ``auto`` (stacked MLP where possible), ``yes`` (error if impossible) or ``no``.
    :param attack_overrides: ``{attack: {param: value}}``, e.g. ``{"pgd": {"steps": 10}}``.
    :param progress: tqdm bar over (method, keep) chunks.
    :param out: CSV path written atomically at the end. Finished (method, keep) chunks are kept in
        ``<out>.partial.json`` (or ``partial``) and reused when rerun with the same
        config_hash (the resumed CSV is byte-identical); the resume file is removed once
        ``out`` is written.
    :param extra_columns: constant columns added to every row (e.g. the training config hash).
    :param subset_seed: permutation seed choosing the evaluation examples (independent of ``seed``).
    :param partial: explicit path of the resume file (default ``<out>.partial.json``; None without
        out).
    :returns: Tidy DataFrame, one row per (method, keep_ratio, attack, eps); see :data:`BASE_COLUMNS`,
        plus ``AttackSpec.as_columns()``, ``config.provenance(device)`` and ``extra_columns``.
    """
    args = validate_sweep_args(methods=methods, keeps=keeps, attacks=attacks, eps=eps, seed=seed, n=n,
                               batch_size=batch_size, batched=batched, attack_overrides=attack_overrides,
                               subset_seed=subset_seed)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    examples = as_examples(data, "data")
    train = None if train_data is None else as_examples(train_data, "train_data")
    need = [m for m in args.methods if get_method(m).needs_data]
    if need and train is None:
        raise ConfigError(f"method={need[0]!r} scores weights on training data (App. I): pass train_data")
    model_name = type(model).__name__ if model_name is None else model_name
    dataset_name = (examples.name or "custom") if dataset_name is None else dataset_name
    for label, value in (("model_name", model_name), ("dataset_name", dataset_name)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{label}={value!r} must be a non-empty string (a free-form label)")
    if out is not None and Path(out).is_dir():
        raise ConfigError(f"out={str(out)!r} is a directory; give a CSV file path")
    partial_path = Path(partial) if partial is not None else (
        resume.default_path(out) if out is not None else None)
    df = sweep_validated(model, examples, args, model_name=model_name, dataset_name=dataset_name,
                         device=resolve_device(device), train_data=train, progress=progress,
                         extra_columns=extra_columns, partial=partial_path)
    if out is not None:
        atomic_write_text(out, df.to_csv(index=False))
        if partial_path is not None and partial_path.exists():
            partial_path.unlink()
    return df


def sweep_validated(model: nn.Module, examples: Examples, args: SweepArgs, *, model_name: str,
                    dataset_name: str, device: torch.device, train_data: Examples | None = None,
                    progress: bool = False, extra_columns: Mapping[str, Any] | None = None,
                    partial: Path | None = None) -> pd.DataFrame:
    """The sweep on already validated arguments (called by :func:`run_sweep` and
    :func:`prunerob.engine.experiment.run_experiment`). ``partial``: resume file (kept; the caller
    removes it)."""
    caller_training = model.training
    params = list(model.parameters())
    work = copy.deepcopy(model).to(device) if params and params[0].device != device else model
    work.eval()
    try:
        return _sweep(work, examples, args, model_name=model_name, dataset_name=dataset_name, device=device,
                      train_data=train_data, progress=progress, extra_columns=dict(extra_columns or {}),
                      partial=partial)
    finally:
        model.train(caller_training)


@dataclass(frozen=True)
class Selected:
    """The evaluation examples of a sweep (:func:`select_sweep_examples`) and their hash."""

    x: torch.Tensor
    y: torch.Tensor
    subset: str
    split: str
    n: int
    data_hash: str


def select_sweep_examples(examples: Examples, args: SweepArgs) -> Selected:
    """The first ``args.n`` examples of the seeded permutation (the same for every configuration)."""
    x_all, y_all, subset_desc = select_examples(examples, args.n, args.subset_seed)
    n = int(y_all.shape[0])
    return Selected(x_all, y_all, subset_desc, examples.split, n, _tensor_hash(x_all, y_all))


def sweep_config_hash(sel: Selected, args: SweepArgs, *, model_name: str, dataset_name: str,
                      device: torch.device, train_data: Examples | None, extra_columns: Mapping[str, Any],
                      model_state: str, dtype: Any) -> str:
    """The ``config_hash`` column: every setting of the sweep plus the model's identity
    (``model_state``: :func:`state_hash` of its weights, or the result-store key of the trained model)."""
    train_fp = None if train_data is None else dict(name=train_data.name, split=train_data.split,
                                                    size=len(train_data),
                                                    data=_tensor_hash(train_data.x, train_data.y))
    hash_cfg = dict(model=model_name, dataset=dataset_name, methods=args.methods, keeps=args.keeps,
                    attacks=args.attacks, eps=args.eps, seed=args.seed, n=args.n, n_eff=sel.n,
                    subset=sel.subset,
                    subset_seed=args.subset_seed, eval_split=sel.split, eval_data=sel.data_hash,
                    batch_size=args.batch_size, batched=args.batched,
                    attack_specs=[dict(name=s.name, eps=s.eps, **s.as_columns())
                                  for s in args.specs.values()],
                    device=device.type, train_data=train_fp, dtype=str(dtype),
                    extra_columns=dict(extra_columns),
                    model_state=model_state)
    return config_hash(hash_cfg)


def _sweep(model: nn.Module, examples: Examples, args: SweepArgs, *, model_name: str, dataset_name: str,
           device: torch.device, train_data: Examples | None, progress: bool, extra_columns: dict[str, Any],
           partial: Path | None) -> pd.DataFrame:
    """The body of :func:`sweep_validated` (``model`` on ``device`` in eval mode)."""
    params = list(model.parameters())
    dtype = params[0].dtype if params else torch.float32
    seed = args.seed
    sel = select_sweep_examples(examples, args)
    x_all, y_all, subset_desc = sel.x, sel.y, sel.subset
    x_all, y_all = x_all.to(device), y_all.to(device)
    n_eff = sel.n
    plan = stacked.mlp_plan(model) if args.batched != "no" else None
    if plan is not None and not stacked.check_stack(model, plan, to_float(x_all[:64], dtype)):
        plan = None
    if args.batched == "yes" and plan is None:
        raise ConfigError(f"batched='yes' but the {model_name!r} model is not a plain Linear/ReLU MLP; "
                          "use batched='auto'")
    fast = {k: s for k, s in args.specs.items() if stacked.stackable(s)} if plan is not None else {}
    slow = {k: s for k, s in args.specs.items() if k not in fast}
    chash = sweep_config_hash(sel, args, model_name=model_name, dataset_name=dataset_name, device=device,
                              train_data=train_data, extra_columns=extra_columns,
                              model_state=state_hash(model), dtype=dtype)
    prov = provenance(device)
    done = resume.read_done(partial, chash) if partial is not None else {}
    if partial is not None and partial.exists() and not done:
        partial.unlink()  # left over from another configuration

    def rows_for(method: str, keep: float, achieved: float, clean: torch.Tensor,
                 adv: Mapping[tuple[str, float], torch.Tensor]) -> list[dict]:
        rows = []
        clean_correct = int(clean.sum())
        for (a, e), spec in args.specs.items():
            adv_correct = int(adv[(a, e)].sum())
            row = dict(model=model_name, dataset=dataset_name, method=method, keep_ratio=keep, attack=a,
                       eps=e, eps_label=format_eps(e), seed=seed, n=n_eff, clean_acc=clean_correct / n_eff,
                       adv_acc=adv_correct / n_eff, clean_correct=clean_correct, adv_correct=adv_correct,
                       achieved_keep=achieved, path="batched" if (a, e) in fast else "loop",
                       eval_split=examples.split, eval_subset=subset_desc, clean_bits=pack_bits(clean),
                       adv_bits=pack_bits(adv[(a, e)]))
            row.update(spec.as_columns())
            row.update(prov)
            row["config_hash"] = chash
            row.update(extra_columns)
            rows.append(row)
        return rows

    bar = tqdm(total=len(args.methods) * len(args.keeps), initial=len(done), unit="chunk",
               desc=f"sweep {model_name}/{dataset_name} seed {seed}", disable=None if progress else True)
    try:
        for method in args.methods:
            todo = [k for k in args.keeps if (method, k) not in done]
            if not todo:
                continue
            m = get_method(method)
            prepared = m.prepare(model, seed=seed, data=train_data)

            def masks_for(keep: float, m=m, prepared=prepared):
                return m.masks(model, keep, seed=seed, data=train_data, prepared=prepared)

            res: dict[float, dict] = {}
            if fast:
                res = stacked.run_stacked(model, plan, todo, masks_for, fast, x_all, y_all, seed=seed,
                                          batch_size=args.batch_size,
                                          to_float=lambda xb: to_float(xb, dtype), device=device,
                                          memory_budget=stacked.MEMORY_BUDGET)
                if not slow:
                    for k in todo:
                        r = res[k]
                        done[(method, k)] = rows_for(method, k, _achieved_keep(r["masks"]), r["clean"],
                                                     r["adv"])
                    if partial is not None:
                        resume.write_done(partial, chash, done)
                    bar.update(len(todo))
                    continue
            for k in todo:
                masks = res[k]["masks"] if k in res else masks_for(k)
                r = _run_loop(model, masks, slow, x_all, y_all, seed=seed, batch_size=args.batch_size,
                              dtype=dtype, device=device)
                clean = res[k]["clean"] if k in res else r["clean"]
                adv = {**(res[k]["adv"] if k in res else {}), **r["adv"]}
                done[(method, k)] = rows_for(method, k, _achieved_keep(masks), clean, adv)
                if partial is not None:
                    resume.write_done(partial, chash, done)
                bar.update(1)
    finally:
        bar.close()
    return pd.DataFrame([r for m in args.methods for k in args.keeps for r in done[(m, k)]])
