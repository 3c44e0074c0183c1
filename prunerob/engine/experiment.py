"""One call for a whole experiment: train or load, sweep, subset attacks, provenance (Sec. 6.3, App. I).

An :class:`ExperimentSpec` names data sets, architectures, pruning methods, keep ratios, attacks,
budgets, seeds and evaluation sizes; :func:`run_experiment` validates the whole spec once (one
:class:`~prunerob.config.ConfigError` naming the parameter and the allowed values, before any
work), then for
every independent unit (architecture, data set, seed):

1. trains the model with the paper's recipe (:meth:`prunerob.core.train.TrainConfig.paper`, App. I,
   with the spec's ``epochs`` / ``train_subset`` / ``image_size`` / ``precision``) or loads it
   from the cache;
2. sweeps it (:func:`prunerob.engine.sweep.sweep_validated`: keep ratios x methods x attacks x eps on
   the first ``n`` examples of a fixed permutation of the test split);
3. runs the extra sweeps of ``spec.subset`` (e.g. AutoAttack on a fixed subset of examples,
   App. H), whose rows carry their :attr:`SubsetSpec.name` in the ``part`` column.

Units run in order in this process, or on a Dask cluster when ``scheduler`` is given
(:mod:`prunerob.engine.distributed`; the results are the same rows in the same order). Most fields take
one value for all data sets or a dict keyed by data set (e.g. ``models={"mnist": "mlp",
"cifar10": "mlp_cifar"}``, ``n={"mnist": 1000, "cifar10": 200}``); a data set that cannot be
loaded here (e.g. CIFAR-100 offline) is skipped and reported in :attr:`ExperimentResult.skipped`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from prunerob import config as _config
from prunerob.config import ConfigError, atomic_write_bytes, atomic_write_text, check_choice, resolve_device
from prunerob.core.data import DATASETS, ArrayDataset, load_dataset
from prunerob.core.models import MLP_HIDDEN, arch_names
from prunerob.core.pruning import get_method
from prunerob.core.recipe import NEUTRAL_FIELDS as RECIPE_NEUTRAL_FIELDS
from prunerob.core.subsets import as_examples
from prunerob.core.train import TrainConfig, checkpoint_data_key, checkpoint_paths, train_model
from prunerob.engine import adopt, distributed
from prunerob.engine import store as store_mod
from prunerob.engine.sweep import (
    SweepArgs,
    select_sweep_examples,
    sweep_config_hash,
    sweep_validated,
    validate_sweep_args,
)

__all__ = ["ExperimentResult", "ExperimentSpec", "SubsetSpec", "Unit", "run_experiment", "run_unit",
           "train_summary"]

#: value of the ``part`` column for the main sweep
MAIN_PART = "main"
#: default keep ratios (the x axis of Fig. 2)
DEFAULT_KEEPS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


@dataclass
class SubsetSpec:
    """An extra sweep on some units, e.g. AutoAttack on a fixed subset of examples (App. H).

    ``None`` fields take the experiment's value: ``keeps`` / ``eps`` / ``n`` / ``methods`` of the
    main sweep, all ``seeds``, all ``datasets``. Empty ``attacks`` or ``keeps`` disable it.
    ``name`` is written to the ``part`` column of its rows.
    """

    attacks: Sequence[str] | Mapping[str, Sequence[str]] = ("autoattack",)
    keeps: Sequence[float] | None = None
    n: int | Mapping[str, int] | None = None
    seeds: Sequence[int] | None = None
    datasets: Sequence[str] | None = None
    eps: str | float | Sequence[str | float] | None = None
    methods: Sequence[str] | None = None
    name: str = "subset"


@dataclass
class ExperimentSpec:
    """Everything an experiment needs; most fields take a value or a dict keyed by data set.

    :param datasets: data sets (``prunerob.core.data.DATASETS``).
    :param models: architecture(s) per data set (``prunerob.core.models.arch_names()``): ``"mlp"``,
        ``["mlp", "mlp3"]`` or ``{"mnist": "mlp", "cifar10": "mlp_cifar"}``.
    :param methods: the sweep grid: registered pruning method names.
    :param keeps: the sweep grid: keep ratios in [0, 1].
    :param attacks: the sweep grid: registered attack names.
    :param eps: the sweep grid: budgets in [0, 1] pixel units.
    :param seeds: one trained model per seed (also the sweep seed); a list, or a dict data set ->
        list (e.g. five seeds on MNIST and one on CIFAR-10, whose MLP costs minutes per epoch).
    :param n: evaluation examples per data set (None: the whole test split).
    :param epochs: training override (None: the paper's recipe, App. I).
    :param train_subset: training override (None: the paper's recipe, App. I).
    :param image_size: training override (None: the paper's recipe, App. I).
    :param precision: training precision (:mod:`prunerob.core.precision`: ``fp32``, the paper's, or
        ``bf16`` autocast with fp32 weights); the sweeps always evaluate in fp32.
    :param subset: extra sweeps (:class:`SubsetSpec` or a list of them).
    :param score_examples: training examples for data-based methods' scores (Taylor, App. I;
        a seeded subset per seed; None: the whole training split).
    :param device: where to run.
    :param data_root: where the data live.
    :param download: whether missing data may be downloaded.
    :param cache_dir: where the trained checkpoints live.
    :param batch_size: as in :func:`prunerob.engine.sweep.run_sweep`.
    :param batched: as in :func:`prunerob.engine.sweep.run_sweep`.
    :param attack_overrides: as in :func:`prunerob.engine.sweep.run_sweep`.
    :param subset_seed: as in :func:`prunerob.engine.sweep.run_sweep`.
    :param extra_columns: constant columns added to every sweep row (e.g. ``{"profile": "quick"}``).
    """

    datasets: Sequence[str] = ("mnist",)
    models: str | Sequence[str] | Mapping[str, str | Sequence[str]] = "mlp"
    methods: Sequence[str] | Mapping[str, Sequence[str]] = ("magnitude",)
    keeps: Sequence[float] | Mapping[str, Sequence[float]] = DEFAULT_KEEPS
    attacks: Sequence[str] | Mapping[str, Sequence[str]] = ("fgsm",)
    eps: str | float | Sequence[str | float] | Mapping[str, Any] = "4/255"
    seeds: Sequence[int] | Mapping[str, Sequence[int]] = (0,)
    n: int | None | Mapping[str, int | None] = None
    epochs: int | None | Mapping[str, int | None] = None
    train_subset: int | None | Mapping[str, int | None] = None
    image_size: int | None | Mapping[str, int | None] = None
    precision: str | Mapping[str, str] = "fp32"
    subset: SubsetSpec | Sequence[SubsetSpec] | None = None
    score_examples: int | None = None
    device: str = "auto"
    data_root: str | os.PathLike | None = None
    download: bool = False
    cache_dir: str | os.PathLike | None = None
    batch_size: int = 500
    batched: str = "auto"
    attack_overrides: Mapping[str, Mapping[str, Any]] | None = None
    subset_seed: int = 0
    extra_columns: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: train (or load) one model, then run its sweeps."""

    arch: str
    dataset: str
    seed: int
    train: TrainConfig
    sweeps: tuple[tuple[str, SweepArgs], ...]
    needs_train_data: bool
    score_examples: int | None
    image_size: int | None

    @property
    def key(self) -> str:
        return f"{self.arch}-{self.dataset}-seed{self.seed}"


@dataclass
class ExperimentResult:
    """The tidy tables of an experiment and where they came from.

    ``sweep``: one row per (arch, dataset, seed, part, method, keep, attack, eps)
    (:data:`prunerob.engine.sweep.BASE_COLUMNS` plus ``part``, ``train_*`` and ``model_test_acc``);
    ``models``: one row per trained model (:func:`train_summary`); ``sources``: data set ->
    sentence naming its bytes; ``skipped``: data set -> reason; ``provenance``: spec, versions,
    device, scheduler, wall time; ``infos``: the raw ``train_model`` info dicts.
    """

    sweep: pd.DataFrame
    models: pd.DataFrame
    sources: dict[str, str]
    skipped: dict[str, str]
    provenance: dict[str, Any]
    infos: list[dict] = field(default_factory=list, repr=False)

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``sweep.csv``, ``models.csv`` and ``provenance.json`` to ``out_dir`` (atomically)."""
        out = Path(out_dir)
        paths = {name: out / f"{name}.csv" for name in ("sweep", "models")}
        paths["provenance"] = out / "provenance.json"
        atomic_write_text(paths["sweep"], self.sweep.to_csv(index=False))
        atomic_write_text(paths["models"], self.models.to_csv(index=False))
        atomic_write_text(paths["provenance"], json.dumps(self.provenance, indent=2, default=str) + "\n")
        return paths


def train_summary(infos: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per trained model from ``train_model``'s info dicts (arch, dataset, seed, epochs,
    train subset, image size, training precision, n_train, test accuracy, training seconds,
    cached flag, device, data source, config hash). A config without ``precision`` (made before
    the option existed) was trained in fp32."""
    rows = []
    for info in infos:
        cfg = info.get("config", {})
        rows.append({
            "arch": cfg.get("arch", info.get("arch")), "dataset": cfg.get("dataset", info.get("dataset")),
            "seed": cfg.get("seed", info.get("seed")), "epochs": cfg.get("epochs", info.get("epochs")),
            "train_subset": cfg.get("train_subset", info.get("train_subset")),
            "image_size": cfg.get("image_size"), "precision": cfg.get("precision", "fp32"),
            "n_train": info.get("n_train"),
            # NaN where the trainer recorded no epoch times (the MNIST transformer of risk_vs_keep), not 0
            "test_acc": info.get("test_acc"),
            "train_seconds": float(sum(info["epoch_times_s"])) if info.get("epoch_times_s") else math.nan,
            "cached": bool(info.get("cached", False)),
            "device": info.get("device"), "data_source": info.get("data_source"), "hash": info.get("hash"),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# validation of the whole spec (once, before any work)
# --------------------------------------------------------------------------------------------
def _per_dataset(name: str, value: Any, datasets: Sequence[str]) -> dict[str, Any]:
    """``value`` for every data set: a dict keyed by data set (extra keys ignored) or one value for all."""
    if isinstance(value, Mapping):
        missing = [d for d in datasets if d not in value]
        if missing:
            raise ConfigError(f"{name} has no entry for data set(s) {', '.join(missing)}; give one value "
                              f"or a dict with keys {', '.join(datasets)}")
        return {d: value[d] for d in datasets}
    return {d: value for d in datasets}


def _names(name: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{name}={value!r} must be a name or a list of names")
    return items


def _opt_int(name: str, value: Any, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low} or None")
    return value


def _subsets(spec: ExperimentSpec) -> list[SubsetSpec]:
    subs = [spec.subset] if isinstance(spec.subset, SubsetSpec) else list(spec.subset or ())
    if not all(isinstance(s, SubsetSpec) for s in subs):
        raise ConfigError(f"subset must be a SubsetSpec or a list of SubsetSpec, got {spec.subset!r}")
    names = [MAIN_PART] + [s.name for s in subs]
    if len(set(names)) != len(names):
        raise ConfigError(f"subset names must be distinct and not {MAIN_PART!r}, got {names[1:]}")
    return subs


def _seed_list(name: str, value: Any) -> list[int]:
    seeds = [value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{name}={value!r} must be a non-empty list of distinct integers >= 0")
    for s in seeds:
        _opt_int(name, s, 0)
        _config.check_seed(s, name)
    return seeds


def plan_units(spec: ExperimentSpec) -> list[Unit]:
    """Validate ``spec`` completely and return its units, in execution order (no work is done)."""
    if not isinstance(spec, ExperimentSpec):
        raise ConfigError(f"spec must be an ExperimentSpec, got {type(spec).__name__}")
    datasets = _names("datasets", spec.datasets)
    if not datasets or len(set(datasets)) != len(datasets):
        raise ConfigError(f"datasets={spec.datasets!r} must be a non-empty list of distinct names from "
                          f"{', '.join(DATASETS)}")
    for d in datasets:
        check_choice("datasets", d, DATASETS)
    seeds_by = {d: _seed_list(f"seeds[{d!r}]" if isinstance(spec.seeds, Mapping) else "seeds", v)
                for d, v in _per_dataset("seeds", spec.seeds, datasets).items()}
    _opt_int("score_examples", spec.score_examples, 1)
    check_choice("batched", spec.batched, ("auto", "yes", "no"))
    resolve_device(spec.device)
    if spec.data_root is not None:
        _config.check_dir(spec.data_root, "data_root")
    models = _per_dataset("models", spec.models, datasets)
    fields = {k: _per_dataset(k, getattr(spec, k), datasets)
              for k in ("methods", "keeps", "attacks", "eps", "n", "epochs", "train_subset", "image_size",
                        "precision")}
    subs = _subsets(spec)
    units: list[Unit] = []
    for d in datasets:
        seeds = seeds_by[d]
        archs = _names(f"models[{d!r}]", models[d])
        if not archs or len(set(archs)) != len(archs):
            raise ConfigError(f"models[{d!r}]={models[d]!r} must name distinct architectures from "
                              f"{', '.join(arch_names())}")
        for a in archs:
            check_choice(f"models[{d!r}]", a, arch_names())
            if spec.batched == "yes" and a not in MLP_HIDDEN:
                raise ConfigError(f"batched='yes' needs an MLP ({', '.join(MLP_HIDDEN)}), not model {a!r}; "
                                  "use batched='auto' or 'no'")
        n = _opt_int(f"n[{d!r}]", fields["n"][d], 1)
        image_size = _opt_int(f"image_size[{d!r}]", fields["image_size"][d], 1)
        main = validate_sweep_args(methods=fields["methods"][d], keeps=fields["keeps"][d],
                                   attacks=fields["attacks"][d], eps=fields["eps"][d], seed=seeds[0], n=n,
                                   batch_size=spec.batch_size, batched=spec.batched,
                                   attack_overrides=spec.attack_overrides,
                                   subset_seed=spec.subset_seed)
        sub_args: list[tuple[SubsetSpec, SweepArgs | None]] = []
        for s in subs:
            for sd in s.datasets or ():
                check_choice(f"subset {s.name!r} datasets", sd, DATASETS)
            attacks = _per_dataset(f"subset {s.name!r} attacks", s.attacks, datasets)[d]
            keeps = main.keeps if s.keeps is None else s.keeps
            if (s.datasets is not None and d not in s.datasets) or not list(attacks) or not list(keeps):
                sub_args.append((s, None))
                continue
            s_n = main.n if s.n is None else _opt_int(
                f"subset {s.name!r} n", _per_dataset(f"subset {s.name!r} n", s.n, datasets)[d], 1)
            sub_args.append((s, validate_sweep_args(
                methods=main.methods if s.methods is None else s.methods, keeps=keeps, attacks=attacks,
                eps=main.eps if s.eps is None else s.eps, seed=seeds[0], n=s_n, batch_size=spec.batch_size,
                batched="no" if spec.batched == "no" else "auto",
                attack_overrides=spec.attack_overrides, subset_seed=spec.subset_seed)))
        for a in archs:
            for seed in seeds:
                over: dict[str, Any] = {"seed": seed}
                for k in ("epochs", "train_subset", "image_size", "precision"):
                    if fields[k][d] is not None:
                        over[k] = fields[k][d]
                cfg = TrainConfig.paper(a, d, **over)  # validates epochs / ... / precision
                sweeps = [(MAIN_PART, main.with_seed(seed))]
                sweeps += [(s.name, sa.with_seed(seed)) for s, sa in sub_args
                           if sa is not None and (s.seeds is None or seed in s.seeds)]
                needs = any(get_method(m).needs_data for _, sa in sweeps for m in sa.methods)
                units.append(Unit(a, d, seed, cfg, tuple(sweeps), needs, spec.score_examples, image_size))
    return units


# --------------------------------------------------------------------------------------------
# running one unit (here or on a Dask worker)
# --------------------------------------------------------------------------------------------
def _load(dataset: str, split: str, spec: ExperimentSpec, image_size: int | None) -> ArrayDataset:
    return load_dataset(dataset, split, root=spec.data_root, download=spec.download, image_size=image_size)


def partial_path(resume_dir: str | os.PathLike, unit: Unit, part: str) -> Path:
    """The resume file of sweep ``part`` of ``unit`` in ``resume_dir``."""
    return Path(resume_dir) / f"{unit.key}-{part}.partial.json"


#: the modules whose import closure is the code of a trained-model unit / an evaluation cell
TRAIN_CODE = ("prunerob.core.train",)
#: a cell runs the sweep on a model that the training code made: both closures are its code
CELL_CODE = ("prunerob.engine.sweep", "prunerob.core.train")


#: TrainConfig fields left out of store keys while they hold these values (fields added after units
#: were stored: a default that reproduces the old recipe must not re-key them, as in TrainConfig.hash)
NEUTRAL_TRAIN_FIELDS: dict[str, Any] = dict(RECIPE_NEUTRAL_FIELDS)


def train_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The JSON-able fields of ``cfg`` that enter a store key, as :meth:`TrainConfig.hash` sees them:
    an ``fp32`` config carries the retired field ``amp="none"`` in place of ``precision``, and the
    recipe fields at App. I's values (:data:`NEUTRAL_TRAIN_FIELDS`) are left out, so its keys are those
    of the units stored before those options existed."""
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    precision = d.pop("precision", "fp32")
    d["amp"] = "none"
    if precision != "fp32":
        d["precision"] = precision
    return {k: v for k, v in d.items() if not (k in NEUTRAL_TRAIN_FIELDS and v == NEUTRAL_TRAIN_FIELDS[k])}


def config_from_fields(fields: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of a store key's ``train`` fields (the inverse of :func:`train_fields`)."""
    d = dict(fields)
    if d.pop("amp", "none") != "none":
        raise ValueError(f"stored train fields with amp={fields.get('amp')!r} predate the precision option")
    if d.get("hidden") is not None:
        d["hidden"] = tuple(d["hidden"])
    return TrainConfig(**d)


def train_key(unit: Unit, data_id: str, dev: Any) -> store_mod.Key:
    """Result-store key of the unit's trained model (:mod:`prunerob.engine.store`)."""
    spec = {"train": train_fields(unit.train), "train_hash": unit.train.hash(), "image_size": unit.image_size}
    return store_mod.Key("train", spec, data_id, store_mod.code_hash(TRAIN_CODE), store_mod.versions(),
                         store_mod.device_class(dev))


def cell_key(unit: Unit, tkey: store_mod.Key, args: SweepArgs, method: str, keep: float, attack: str,
             eps: float, data_id: str, dev: Any) -> store_mod.Key:
    """Result-store key of one evaluation cell: model x method x keep x attack x eps x examples."""
    a = args.specs[(attack, eps)]
    needs = get_method(method).needs_data
    spec = {"model": tkey.identity, "arch": unit.arch, "dataset": unit.dataset, "seed": args.seed,
            "method": method, "keep": float(keep), "attack": attack, "eps": float(eps),
            "attack_params": a.as_columns(), "n": args.n, "subset_seed": args.subset_seed,
            "batch_size": args.batch_size, "batched": args.batched,
            "score_examples": unit.score_examples if needs else None}
    return store_mod.Key("cell", spec, data_id, store_mod.code_hash(CELL_CODE, [f"method:{method}",
                                                                                  f"attack:{attack}"]),
                         store_mod.versions(), store_mod.device_class(dev))


def _keys(unit: Unit, spec: ExperimentSpec, test: ArrayDataset) -> tuple[store_mod.Key, dict]:
    """The unit's train key and, per sweep part, its cell keys ``(method, keep, attack, eps) -> Key``."""
    dev = resolve_device(spec.device)
    data_id = store_mod.data_identity(test)
    tkey = train_key(unit, data_id, dev)
    parts = {part: {(m, k, a, e): cell_key(unit, tkey, args, m, k, a, e, data_id, dev)
                    for m in args.methods for k in args.keeps for (a, e) in args.specs}
             for part, args in unit.sweeps}
    return tkey, parts


def unit_complete(unit: Unit, spec: ExperimentSpec, test: ArrayDataset, st: store_mod.Store) -> bool:
    """Whether the unit's model summary and every one of its cells are in the store."""
    tkey, parts = _keys(unit, spec, test)
    cells = [k for ks in parts.values() for k in ks.values()]
    return st.get(tkey) is not None and all(st.get(k) is not None for k in cells)


def stored_entries(unit: Unit, spec: ExperimentSpec, test: ArrayDataset,
                   st: store_mod.Store) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    """The unit's model summary and evaluation cells that ``st`` already holds, as plain
    ``(key dict, value, seconds)`` triples to send to a worker (:func:`remote_unit`), which then
    computes only the cells that are missing (e.g. a subset part added to a page whose main sweep is
    stored) instead of the whole unit."""
    tkey, parts = _keys(unit, spec, test)
    found = [st.get(k) for k in (tkey, *(k for ks in parts.values() for k in ks.values()))]
    return [(e.key.as_dict(), dict(e.value), float(e.seconds)) for e in found if e is not None]


def absorb(unit: Unit, spec: ExperimentSpec, tables: Sequence[pd.DataFrame], info: Mapping[str, Any],
           st: store_mod.Store) -> None:
    """Put the tables and train info a worker computed for ``unit`` into the store."""
    test = _load(unit.dataset, "test", spec, unit.image_size)
    tkey, parts = _keys(unit, spec, test)
    st.put([(tkey, {**_json_info(info, None), "dtype": info.get("dtype", "torch.float32")},
             float(sum(info.get("epoch_times_s") or [0])))])
    drop = {"part", "train_config_hash", "train_epochs", "train_subset", "model_test_acc", "config_hash",
            *dict(spec.extra_columns or {})}
    for df in tables:
        cols = [c for c in df.columns if c not in drop]
        new = []
        for r in df.to_dict("records"):
            c = (r["method"], float(r["keep_ratio"]), r["attack"], float(r["eps"]))
            key = parts.get(r.get("part", MAIN_PART), {}).get(c)
            if key is not None:
                new.append((key, {"cols": cols, "vals": [store_mod.finite_or_none(r[k]) for k in cols]}, 0.0))
        st.put(new)


def _json_info(info: Mapping[str, Any], model: Any) -> dict[str, Any]:
    keep = ("config", "n_train", "test_acc", "epoch_times_s", "cached", "device", "data_source", "hash")
    out = json.loads(json.dumps({k: info.get(k) for k in keep}, default=str))
    params = list(model.parameters()) if model is not None else []
    out["dtype"] = str(params[0].dtype) if params else "torch.float32"
    return out


def run_unit(unit: Unit, spec: ExperimentSpec, *, test: ArrayDataset | None = None,
             train: ArrayDataset | None = None, cache_dir: str | os.PathLike | None = None,
             progress: bool = False, resume_dir: Path | None = None,
             store: store_mod.Store | None = None) -> tuple[list[pd.DataFrame], dict]:
    """Train or load the unit's model, run its sweeps; returns ``(tables, train info)``.

    ``test`` / ``train``: the data sets, loaded here when not given. ``cache_dir``: checkpoint
    cache (default ``spec.cache_dir``). ``resume_dir``: folder for the sweeps' resume files.
    ``store``: the result store (:mod:`prunerob.engine.store`): the model summary and every
    evaluation cell found there is not recomputed, and the model is trained or loaded only when
    a cell is missing; what is computed is added to it.
    """
    dev = resolve_device(spec.device)
    test = _load(unit.dataset, "test", spec, unit.image_size) if test is None else test
    train = _load(unit.dataset, "train", spec, unit.image_size) if train is None else train
    check_sizes(unit, train, test)
    data_id = store_mod.data_identity(test)
    tkey = train_key(unit, data_id, dev)
    adopt_from = adopt.adopt_dir()
    tentry = store.get(tkey) if store is not None else None
    info: dict[str, Any] | None = dict(tentry.value) if tentry is not None else None
    if info is None and store is not None and adopt_from is not None:
        info = adopt.train_info(adopt_from, arch=unit.arch, dataset=unit.dataset, seed=unit.seed,
                                train_hash=unit.train.hash())
        if info is not None:
            store.put([(tkey, info, float(sum(info.get("epoch_times_s") or [0])))])
            tentry = store.entry(tkey.digest)
    if tentry is not None:
        store.log.add(tentry.key, tentry.seconds, TRAIN_CODE, (), computed=False)
    parts = []
    for part, args in unit.sweeps:
        extra = {"part": part, "train_config_hash": unit.train.hash(), "train_epochs": unit.train.epochs,
                 "train_subset": unit.train.train_subset,
                 # a column only for models not trained in fp32, so fp32 tables stay as they were
                 **({"train_precision": unit.train.precision} if unit.train.precision != "fp32" else {}),
                 "model_test_acc": None, **dict(spec.extra_columns or {})}
        keys = {(m, k, a, e): cell_key(unit, tkey, args, m, k, a, e, data_id, dev)
                for m in args.methods for k in args.keeps for (a, e) in args.specs}
        found = {c: store.get(key) for c, key in keys.items()} if store is not None else {}
        if store is not None and adopt_from is not None and any(v is None for v in found.values()):
            rows = adopt.cell_rows(adopt_from, model=unit.arch, dataset=unit.dataset, seed=unit.seed,
                                   part=part, train_hash=unit.train.hash(), drop=set(extra))
            secs = adopt.cell_seconds(adopt_from)
            how = adopt.label(adopt_from)
            new = [(keys[c], {"cols": rows[c][0], "vals": rows[c][1], "adopted": how}, secs)
                   for c, v in found.items() if v is None and c in rows]
            if new:
                store.put(new)
                found = {c: store.entry(key.digest) or found[c] for c, key in keys.items()}
        parts.append((part, args, extra, keys, found))
    missing = any(v is None for *_, found in parts for v in (found.values() if store is not None else [None]))
    model = None
    if info is None or missing:
        cache = cache_dir if cache_dir is not None else spec.cache_dir
        model, tinfo = train_model(unit.train, device=dev, cache_dir=cache, data_root=spec.data_root,
                                   progress=progress, download=spec.download, train_data=train,
                                   test_data=test)
        if store is None:
            info = {**tinfo, "dtype": _json_info(tinfo, model)["dtype"]}
        elif info is None:
            info = _json_info(tinfo, model)
            if store is not None:
                secs = float(sum(tinfo.get("epoch_times_s") or [0]))
                store.put([(tkey, info, secs)])
                store.log.add(tkey, secs, TRAIN_CODE, (), computed=True)
    assert info is not None
    score = None
    if unit.needs_train_data:  # scores (and the config hash) need the training data
        scored = (train.subset(unit.score_examples, seed=unit.seed, name="score_examples")
                  if unit.score_examples else train)
        score = as_examples(scored, "train_data")
    examples = as_examples(test, "test data")
    tables = []
    for part, args, extra, keys, found in parts:
        extra = {**extra, "model_test_acc": info.get("test_acc")}  # same key order as before
        todo = [c for c, v in found.items() if v is None] if store is not None else list(keys)
        partial = None if resume_dir is None else partial_path(resume_dir, unit, part)
        if store is None:
            tables.append(sweep_validated(model, examples, args, model_name=unit.arch,
                                          dataset_name=unit.dataset, device=dev, train_data=score,
                                          progress=progress, extra_columns=extra, partial=partial))
            continue
        if todo:
            t0 = time.perf_counter()
            methods = tuple(m for m in args.methods if any(c[0] == m for c in todo))
            sub = dataclasses.replace(args, methods=methods,
                                      keeps=tuple(k for k in args.keeps if any(c[1] == k for c in todo)))
            df = sweep_validated(model, examples, sub, model_name=unit.arch, dataset_name=unit.dataset,
                                 device=dev, train_data=score, progress=progress, extra_columns={},
                                 partial=partial)
            secs = (time.perf_counter() - t0) / max(len(df), 1)
            cols = [c for c in df.columns if c != "config_hash"]
            new = []
            for r in df.to_dict("records"):
                c = (r["method"], float(r["keep_ratio"]), r["attack"], float(r["eps"]))
                if c in keys and found.get(c) is None:
                    vals = [store_mod.finite_or_none(r[k]) for k in cols]
                    new.append((keys[c], {"cols": cols, "vals": vals}, secs))
            store.put(new)
            for key, _, s in new:
                uses = (f"method:{key.spec['method']}", f"attack:{key.spec['attack']}")
                store.log.add(key, s, CELL_CODE, uses, computed=True)
            found = {c: store.entry(key.digest) or found[c] for c, key in keys.items()}
        for c, e in found.items():
            if e is not None and c not in todo:
                store.log.add(e.key, e.seconds, CELL_CODE, (f"method:{c[0]}", f"attack:{c[2]}"),
                              computed=False)
        sel = select_sweep_examples(examples, args)
        chash = sweep_config_hash(sel, args, model_name=unit.arch, dataset_name=unit.dataset, device=dev,
                                  train_data=score, extra_columns=extra,
                                  model_state=tkey.identity[:16], dtype=info.get("dtype", "torch.float32"))
        rows = []
        for c in keys:
            e = found[c]
            assert e is not None
            row = dict(zip(e.value["cols"], e.value["vals"], strict=True))
            row["config_hash"] = chash
            row.update(extra)
            rows.append(row)
        tables.append(pd.DataFrame(rows))
    return tables, info


def check_sizes(unit: Unit, train: ArrayDataset, test: ArrayDataset) -> None:
    """ConfigError naming the parameter and the split's true size when ``train_subset``,
    ``score_examples`` or a sweep's ``n`` asks for more examples than the split holds."""
    from prunerob.core.data import check_subset_size

    for name, n, data in (("train_subset", unit.train.train_subset, train),
                          ("score_examples", unit.score_examples if unit.needs_train_data else None, train),
                          *((("n" if part == MAIN_PART else f"subset {part!r} n"), args.n, test)
                            for part, args in unit.sweeps)):
        if n is not None:
            check_subset_size(n, len(data), f"{name}[{unit.dataset!r}]", data)


@functools.lru_cache(maxsize=4)
def _worker_data(dataset: str, split: str, root: str | None, download: bool,
                 image_size: int | None) -> ArrayDataset:
    """Data sets kept in a worker process between its units (read-only use)."""
    return load_dataset(dataset, split, root=root, download=download, image_size=image_size)


def remote_unit(unit: Unit, spec: ExperimentSpec,
                checkpoints: Mapping[str, dict[str, bytes]] | None,
                known: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], float]] = ()) -> dict[str, Any]:
    """:func:`run_unit` on a Dask worker with a private temporary cache (no shared file system).

    ``checkpoints``: data key -> ``{"weights": bytes, "meta": bytes}``, the entries of this unit's
    config the client has cached (:func:`cached_checkpoints`); the worker loads the one trained on
    its own data (same data key) instead of training. ``known``: the unit's entries in the client's
    result store (:func:`stored_entries`), put into a private store here so that only the missing
    cells are computed (with none, the whole unit is). Returns the tables, the train info, the data
    source, the data key and the checkpoint's bytes, which the client writes into its own cache;
    or ``{"skipped": reason}`` when the worker cannot load the data set.
    """
    root = None if spec.data_root is None else str(spec.data_root)
    try:
        test = _worker_data(unit.dataset, "test", root, spec.download, unit.image_size)
        train = _worker_data(unit.dataset, "train", root, spec.download, unit.image_size)
    except ConfigError as exc:  # e.g. CIFAR-100 offline: the same rule as the serial path
        return {"skipped": str(exc).splitlines()[0], "host": platform.node()}
    key = checkpoint_data_key(train, test)
    tmp = Path(tempfile.mkdtemp(prefix="prunerob-worker-"))
    try:
        paths = checkpoint_paths(unit.train, tmp, key)
        if checkpoints and key in checkpoints:
            for k in ("weights", "meta"):
                atomic_write_bytes(paths[k], checkpoints[key][k])
        st = None
        if known:
            st = store_mod.Store(tmp / "store")
            st.put((store_mod.Key.from_dict(k), v, s) for k, v, s in known)
        tables, info = run_unit(unit, spec, test=test, train=train, cache_dir=tmp, store=st)
        # no checkpoint when every cell was known: no model was loaded or trained
        files = ({k: paths[k].read_bytes() for k in ("weights", "meta")} if paths["weights"].is_file()
                 else None)
        return {"tables": tables, "info": info, "checkpoint": files, "data_key": key, "source": test.source,
                "host": platform.node()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def store_checkpoint(unit: Unit, files: Mapping[str, bytes], cache_dir: str | os.PathLike | None,
                     data_key: str) -> Path:
    """Write a worker's checkpoint (trained on the data ``data_key``) into the client's cache
    (atomically; an existing one is kept)."""
    paths = checkpoint_paths(unit.train, cache_dir, data_key)
    if not (paths["weights"].is_file() and paths["meta"].is_file()):
        atomic_write_bytes(paths["weights"], files["weights"])  # weights first: meta marks it complete
        atomic_write_bytes(paths["meta"], files["meta"])
    return paths["weights"]


def cached_checkpoints(unit: Unit, cache_dir: str | os.PathLike | None) -> dict[str, dict[str, bytes]]:
    """The client's cached checkpoint files of ``unit``'s config, by the data key recorded in each
    (to send to a worker, which picks the one of its own data); empty when there are none."""
    folder = _config.cache_dir(cache_dir) / "checkpoints"
    out: dict[str, dict[str, bytes]] = {}
    for meta in sorted(folder.glob(f"{unit.train.stem()}-*.json")):
        weights = meta.with_suffix(".safetensors")
        try:
            key = json.loads(meta.read_text()).get("data_key")
        except (OSError, ValueError, AttributeError):
            continue  # unreadable: the worker trains; the local cache reports it when it is used here
        if isinstance(key, str) and weights.is_file() and meta.stem == f"{unit.train.stem()}-{key[:12]}":
            out[key] = {"weights": weights.read_bytes(), "meta": meta.read_bytes()}
    return out


# --------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------
def _spec_dict(spec: ExperimentSpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    return json.loads(json.dumps(d, default=str))


def _preflight(units: Sequence[Unit], spec: ExperimentSpec,
               skipped: dict[str, str]) -> dict[tuple[str, str], ArrayDataset]:
    """Load the splits of every data set once before any work and check the sizes the units ask
    for (:func:`check_sizes`), so that a bad ``n`` / ``train_subset`` of the last data set is
    reported before the first model is trained. Data sets that cannot be loaded go to ``skipped``.
    Returns the splits of the first data set (loaded last), which the first units use."""
    kept: dict[tuple[str, str], ArrayDataset] = {}
    for d in reversed(list(dict.fromkeys(u.dataset for u in units))):
        mine = [u for u in units if u.dataset == d]
        kept = {}
        try:
            for split in ("test", "train"):
                kept[(d, split)] = _load(d, split, spec, mine[0].image_size)
        except ConfigError as exc:  # e.g. CIFAR-100 offline
            skipped[d] = str(exc).splitlines()[0]
            kept = {}
            continue
        for u in mine:
            check_sizes(u, kept[(d, "train")], kept[(d, "test")])
    return kept


def run_experiment(spec: ExperimentSpec, scheduler: Any = None, *, progress: bool = False,
                   resume_dir: str | os.PathLike | None = None,
                   store: store_mod.Store | None | str = "default") -> ExperimentResult:
    """Validate ``spec``, then train/load, sweep and run the subset attacks of every unit.

    ``scheduler``: None (serial, here), ``"local:N"`` (a Dask LocalCluster with N worker
    processes on this machine), ``"tcp://host:8786"`` (a running Dask scheduler), ``"slurm"`` /
    ``"pbs"`` (``dask_jobqueue``, configured in ``~/.config/dask/jobqueue.yaml``) or a
    ``distributed.Client``; see :mod:`prunerob.engine.distributed`. ``resume_dir``: folder for the
    sweeps' resume files (serial runs only; an interrupted run continues where it stopped).
    ``store``: the result store (default: :func:`prunerob.engine.store.get_store`; None: none).
    Units whose model summary and cells are all stored are assembled from it without a model;
    the others are computed (here or on the workers) and added to it.
    """
    units = plan_units(spec)
    st = store_mod.get_store() if isinstance(store, str) else store
    if adopt.adopt_dir() is not None and st is not None:
        scheduler = None  # adopting committed tables (a one-off migration) runs here, serially
    distributed.check_scheduler(scheduler)
    if resume_dir is not None and scheduler is not None:
        raise ConfigError("resume_dir works for serial runs only; give scheduler=None or drop resume_dir")
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    sources: dict[str, str] = {}
    skipped: dict[str, str] = {}
    results: list[tuple[Unit, list[pd.DataFrame], dict]] = []
    if scheduler is None:
        rdir = None if resume_dir is None else Path(resume_dir)
        data = _preflight(units, spec, skipped)
        for u in units:
            if u.dataset in skipped:
                continue
            if data and next(iter(data))[0] != u.dataset:
                data.clear()  # units come data set by data set: keep one in memory
            try:
                for split in ("test", "train"):
                    if (u.dataset, split) not in data:
                        data[(u.dataset, split)] = _load(u.dataset, split, spec, u.image_size)
            except ConfigError as exc:  # e.g. CIFAR-100 offline
                skipped[u.dataset] = str(exc).splitlines()[0]
                continue
            sources[u.dataset] = data[(u.dataset, "test")].source
            tables, info = run_unit(u, spec, test=data[(u.dataset, "test")],
                                    train=data.get((u.dataset, "train")), progress=progress, resume_dir=rdir,
                                    store=st)
            results.append((u, tables, info))
        hosts = [platform.node()]
    else:
        root = None if spec.data_root is None else str(spec.data_root)
        local: dict[int, tuple[list[pd.DataFrame], dict, str]] = {}
        for i, u in enumerate(units):  # units wholly in the store are assembled here, without a worker
            if st is None:
                break
            try:
                test = _worker_data(u.dataset, "test", root, spec.download, u.image_size)
            except ConfigError:
                continue
            if unit_complete(u, spec, test, st):
                train = _worker_data(u.dataset, "train", root, spec.download, u.image_size) \
                    if u.needs_train_data else None
                tables, info = run_unit(u, spec, test=test, train=train, store=st)
                local[i] = (tables, info, test.source)
        payloads = []
        for i, u in enumerate(units):
            if i in local:
                continue
            known: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            if st is not None:
                try:
                    known = stored_entries(u, spec, _worker_data(u.dataset, "test", root, spec.download,
                                                                 u.image_size), st)
                except ConfigError:
                    known = []
            payloads.append((u, spec, cached_checkpoints(u, spec.cache_dir), known))
        outs = iter(distributed.map_units(remote_unit, payloads, scheduler) if payloads else [])
        hosts_set = {platform.node()} if local else set()
        for i, u in enumerate(units):
            if i in local:
                tables, info, src = local[i]
                sources.setdefault(u.dataset, src)
                results.append((u, tables, info))
                continue
            o = next(outs)
            hosts_set.add(o["host"])
            if "skipped" in o:
                skipped.setdefault(u.dataset, o["skipped"])
                continue
            sources.setdefault(u.dataset, o["source"])
            ckpt = (str(store_checkpoint(u, o["checkpoint"], spec.cache_dir, o["data_key"]))
                    if o["checkpoint"] is not None else None)
            tables, info = o["tables"], o["info"]
            if st is not None:  # the worker's units go into the store; the tables come from it
                absorb(u, spec, tables, info, st)
                test = _worker_data(u.dataset, "test", root, spec.download, u.image_size)
                train = _worker_data(u.dataset, "train", root, spec.download, u.image_size) \
                    if u.needs_train_data else None
                tables, info = run_unit(u, spec, test=test, train=train, store=st)
            info["checkpoint"] = ckpt
            results.append((u, tables, info))
        hosts = sorted(hosts_set)
    if not results:
        raise ConfigError(f"no data set could be loaded: {skipped}")
    if resume_dir is not None:  # everything finished: the resume files are no longer needed
        for u, _, _ in results:
            for part, _ in u.sweeps:
                partial_path(resume_dir, u, part).unlink(missing_ok=True)
    tables = [t for _, ts, _ in results for t in ts]
    infos = [info for _, _, info in results]
    sweep = pd.concat(tables, ignore_index=True)
    prov = {"spec": _spec_dict(spec), "scheduler": distributed.describe(scheduler), "hosts": hosts,
            "sources": sources, "skipped": skipped,
            "units": [u.key for u, _, _ in results], "started": started,
            "wall_seconds": time.perf_counter() - t0,
            **_config.provenance(resolve_device(spec.device))}
    return ExperimentResult(sweep=sweep, models=train_summary(infos), sources=sources, skipped=skipped,
                            provenance=prov, infos=infos)
