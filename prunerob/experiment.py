"""One call for a whole experiment: train or load, sweep, subset attacks, provenance (Sec. 6.3, App. I).

An :class:`ExperimentSpec` names data sets, architectures, pruning methods, keep ratios, attacks,
budgets, seeds and evaluation sizes; :func:`run_experiment` validates the whole spec once (one
:class:`~prunerob.config.ConfigError` naming the parameter and the allowed values, before any
work), then for
every independent unit (architecture, data set, seed):

1. trains the model with the paper's recipe (:meth:`prunerob.train.TrainConfig.paper`, App. I,
   with the spec's ``epochs`` / ``train_subset`` / ``image_size`` / ``precision``) or loads it
   from the cache;
2. sweeps it (:func:`prunerob.sweep.sweep_validated`: keep ratios x methods x attacks x eps on
   the first ``n`` examples of a fixed permutation of the test split);
3. runs the extra sweeps of ``spec.subset`` (e.g. AutoAttack on a fixed subset of examples,
   App. H), whose rows carry their :attr:`SubsetSpec.name` in the ``part`` column.

Units run in order in this process, or on a Dask cluster when ``scheduler`` is given
(:mod:`prunerob.distributed`; the results are the same rows in the same order). Most fields take
one value for all data sets or a dict keyed by data set (e.g. ``models={"mnist": "mlp",
"cifar10": "mlp_cifar"}``, ``n={"mnist": 1000, "cifar10": 200}``); a data set that cannot be
loaded here (e.g. CIFAR-100 offline) is skipped and reported in :attr:`ExperimentResult.skipped`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
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
from prunerob import distributed
from prunerob.config import ConfigError, atomic_write_bytes, atomic_write_text, check_choice, resolve_device
from prunerob.data import DATASETS, ArrayDataset, load_dataset
from prunerob.models import MLP_HIDDEN, arch_names
from prunerob.pruning import get_method
from prunerob.subsets import as_examples
from prunerob.sweep import SweepArgs, sweep_validated, validate_sweep_args
from prunerob.train import TrainConfig, checkpoint_paths, train_model

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

    :param datasets: data sets (``prunerob.data.DATASETS``).
    :param models: architecture(s) per data set (``prunerob.models.arch_names()``): ``"mlp"``,
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
    :param precision: training precision (:mod:`prunerob.precision`: ``fp32``, the paper's, or
        ``bf16`` autocast with fp32 weights); the sweeps always evaluate in fp32.
    :param subset: extra sweeps (:class:`SubsetSpec` or a list of them).
    :param score_examples: training examples for data-based methods' scores (Taylor, App. I;
        a seeded subset per seed; None: the whole training split).
    :param device: where to run.
    :param data_root: where the data live.
    :param download: whether missing data may be downloaded.
    :param cache_dir: where the trained checkpoints live.
    :param batch_size: as in :func:`prunerob.sweep.run_sweep`.
    :param batched: as in :func:`prunerob.sweep.run_sweep`.
    :param attack_overrides: as in :func:`prunerob.sweep.run_sweep`.
    :param subset_seed: as in :func:`prunerob.sweep.run_sweep`.
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
    (:data:`prunerob.sweep.BASE_COLUMNS` plus ``part``, ``train_*`` and ``model_test_acc``);
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
            "test_acc": info.get("test_acc"), "train_seconds": float(sum(info.get("epoch_times_s") or [])),
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


def run_unit(unit: Unit, spec: ExperimentSpec, *, test: ArrayDataset | None = None,
             train: ArrayDataset | None = None, cache_dir: str | os.PathLike | None = None,
             progress: bool = False, resume_dir: Path | None = None) -> tuple[list[pd.DataFrame], dict]:
    """Train or load the unit's model, run its sweeps; returns ``(tables, train info)``.

    ``test`` / ``train``: the data sets, loaded here when not given. ``cache_dir``: checkpoint
    cache (default ``spec.cache_dir``). ``resume_dir``: folder for the sweeps' resume files.
    """
    dev = resolve_device(spec.device)
    test = _load(unit.dataset, "test", spec, unit.image_size) if test is None else test
    if unit.needs_train_data and train is None:
        train = _load(unit.dataset, "train", spec, unit.image_size)
    cache = cache_dir if cache_dir is not None else spec.cache_dir
    model, info = train_model(unit.train, device=dev, cache_dir=cache, data_root=spec.data_root,
                              progress=progress, download=spec.download)
    score = None
    if unit.needs_train_data:
        scored = train.subset(unit.score_examples, seed=unit.seed) if unit.score_examples else train
        score = as_examples(scored, "train_data")
    examples = as_examples(test, "test data")
    tables = []
    for part, args in unit.sweeps:
        extra = {"part": part, "train_config_hash": unit.train.hash(), "train_epochs": unit.train.epochs,
                 "train_subset": unit.train.train_subset, "train_precision": unit.train.precision,
                 "model_test_acc": info.get("test_acc"),
                 **dict(spec.extra_columns or {})}
        partial = None if resume_dir is None else partial_path(resume_dir, unit, part)
        tables.append(sweep_validated(model, examples, args, model_name=unit.arch, dataset_name=unit.dataset,
                                      device=dev, train_data=score, progress=progress, extra_columns=extra,
                                      partial=partial))
    return tables, info


@functools.lru_cache(maxsize=4)
def _worker_data(dataset: str, split: str, root: str | None, download: bool,
                 image_size: int | None) -> ArrayDataset:
    """Data sets kept in a worker process between its units (read-only use)."""
    return load_dataset(dataset, split, root=root, download=download, image_size=image_size)


def remote_unit(unit: Unit, spec: ExperimentSpec, checkpoint: dict[str, bytes] | None) -> dict[str, Any]:
    """:func:`run_unit` on a Dask worker with a private temporary cache (no shared file system).

    ``checkpoint``: ``{"weights": bytes, "meta": bytes}`` of a model the client has cached (the
    worker then loads instead of training). Returns the tables, the train info, the data source
    and the checkpoint's bytes, which the client writes into its own cache; or ``{"skipped":
    reason}`` when the worker cannot load the data set.
    """
    root = None if spec.data_root is None else str(spec.data_root)
    try:
        test = _worker_data(unit.dataset, "test", root, spec.download, unit.image_size)
        train = _worker_data(unit.dataset, "train", root, spec.download, unit.image_size) \
            if unit.needs_train_data else None
    except ConfigError as exc:  # e.g. CIFAR-100 offline: the same rule as the serial path
        return {"skipped": str(exc).splitlines()[0], "host": platform.node()}
    tmp = Path(tempfile.mkdtemp(prefix="prunerob-worker-"))
    try:
        paths = checkpoint_paths(unit.train, tmp)
        if checkpoint is not None:
            for k in ("weights", "meta"):
                atomic_write_bytes(paths[k], checkpoint[k])
        tables, info = run_unit(unit, spec, test=test, train=train, cache_dir=tmp)
        files = {k: paths[k].read_bytes() for k in ("weights", "meta")}
        return {"tables": tables, "info": info, "checkpoint": files, "source": test.source,
                "host": platform.node()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def store_checkpoint(unit: Unit, files: Mapping[str, bytes], cache_dir: str | os.PathLike | None) -> Path:
    """Write a worker's checkpoint into the client's cache (atomically; an existing one is kept)."""
    paths = checkpoint_paths(unit.train, cache_dir)
    if not (paths["weights"].is_file() and paths["meta"].is_file()):
        atomic_write_bytes(paths["weights"], files["weights"])  # weights first: meta marks it complete
        atomic_write_bytes(paths["meta"], files["meta"])
    return paths["weights"]


def cached_checkpoint(unit: Unit, cache_dir: str | os.PathLike | None) -> dict[str, bytes] | None:
    """The client's cached checkpoint files of ``unit`` (to send to a worker), or None."""
    paths = checkpoint_paths(unit.train, cache_dir)
    if paths["weights"].is_file() and paths["meta"].is_file():
        return {k: paths[k].read_bytes() for k in ("weights", "meta")}
    return None


# --------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------
def _spec_dict(spec: ExperimentSpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    return json.loads(json.dumps(d, default=str))


def run_experiment(spec: ExperimentSpec, scheduler: Any = None, *, progress: bool = False,
                   resume_dir: str | os.PathLike | None = None) -> ExperimentResult:
    """Validate ``spec``, then train/load, sweep and run the subset attacks of every unit.

    ``scheduler``: None (serial, here), ``"local:N"`` (a Dask LocalCluster with N worker
    processes on this machine), ``"tcp://host:8786"`` (a running Dask scheduler), ``"slurm"`` /
    ``"pbs"`` (``dask_jobqueue``, configured in ``~/.config/dask/jobqueue.yaml``) or a
    ``distributed.Client``; see :mod:`prunerob.distributed`. ``resume_dir``: folder for the
    sweeps' resume files (serial runs only; an interrupted run continues where it stopped).
    """
    units = plan_units(spec)
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
        data: dict[tuple[str, str], ArrayDataset] = {}
        for u in units:
            if u.dataset in skipped:
                continue
            if data and next(iter(data))[0] != u.dataset:
                data.clear()  # units come data set by data set: keep one in memory
            try:
                for split in ("test", "train") if u.needs_train_data else ("test",):
                    if (u.dataset, split) not in data:
                        data[(u.dataset, split)] = _load(u.dataset, split, spec, u.image_size)
            except ConfigError as exc:  # e.g. CIFAR-100 offline
                skipped[u.dataset] = str(exc).splitlines()[0]
                continue
            sources[u.dataset] = data[(u.dataset, "test")].source
            tables, info = run_unit(u, spec, test=data[(u.dataset, "test")],
                                    train=data.get((u.dataset, "train")), progress=progress, resume_dir=rdir)
            results.append((u, tables, info))
        hosts = [platform.node()]
    else:
        payloads = [(u, spec, cached_checkpoint(u, spec.cache_dir)) for u in units]
        outs = distributed.map_units(remote_unit, payloads, scheduler)
        hosts = sorted({o["host"] for o in outs})
        for u, o in zip(units, outs, strict=True):
            if "skipped" in o:
                skipped.setdefault(u.dataset, o["skipped"])
                continue
            sources.setdefault(u.dataset, o["source"])
            o["info"]["checkpoint"] = str(store_checkpoint(u, o["checkpoint"], spec.cache_dir))
            results.append((u, o["tables"], o["info"]))
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
