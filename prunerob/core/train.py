"""Training with a checkpoint cache keyed by the configuration hash, and resume (App. I).

App. I's recipe: Adam, lr 1e-3 for the MLPs (30 epochs on MNIST, 100 on CIFAR-10) and the CNN
(100 epochs); AdamW, lr 5e-4, 10 epochs to fine-tune the ImageNet-pretrained tiny ViT. No
adversarial training. The paper does not give batch size, weight decay or augmentation: we use
batch 128, weight decay 0 (Adam) / 0.05 (AdamW) and no augmentation.

``train_model(cfg)`` stores ``<cache>/checkpoints/<arch>-<dataset>-<hash>-<data>.safetensors`` and
a ``.json`` beside it (config, losses, epoch times, test accuracy, device, versions, data source).
``<hash>`` is :meth:`TrainConfig.hash` (the ``train_config_hash`` of result tables) and ``<data>``
names the data the model was trained and tested on (:func:`checkpoint_data_key`: the SHA-256 of
the train and test splits as held in memory, ``ArrayDataset.identity``), so models trained on
different data (another ``$PRUNEROB_DATA``, the original CIFAR-10 pickles or the JPEG copy) never
share a cache entry. A second call with the same config and data loads the checkpoint instead of
training. After each epoch a
``.resume.pt`` file (model, optimizer, epoch, RNG states) is written atomically; an interrupted
run continues from it and deletes it when done.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunerob import config as _config
from prunerob.config import (
    ConfigError,
    CorruptCacheError,
    atomic_save,
    atomic_write_text,
    check_cache_writable,
    check_choice,
    config_hash,
    provenance,
    quarantine,
    resolve_device,
    sha256_file,
)
from prunerob.core import recipe as _recipe
from prunerob.core.data import DATASETS, ArrayDataset, DatasetInfo, load_dataset
from prunerob.core.models import MLP_HIDDEN, arch_names, build_model
from prunerob.core.precision import get_precision, precision_names

#: bump when a change to the training code changes the weights it produces (invalidates caches)
TRAIN_CODE_VERSION = "train-v1"

OPTIMIZERS = ("adam", "adamw")
_DEFAULT_WD = {"adam": 0.0, "adamw": 0.05}


@dataclass
class TrainConfig:
    """One training run. ``weight_decay=None`` means 0 for Adam and 0.05 for AdamW.

    ``train_subset`` trains on a deterministic random subset (``ArrayDataset.subset`` with
    ``seed``); ``hidden`` overrides an MLP's hidden widths; ``image_size`` resizes the data.
    ``precision`` is ``fp32`` (the paper's setting) or ``bf16`` (autocast with fp32 master
    weights, :mod:`prunerob.core.precision`); it enters :meth:`hash` only when it is not ``fp32``.
    ``augment``, ``schedule`` and ``warmup_epochs`` name a batch augmentation and a learning-rate
    schedule of :mod:`prunerob.core.recipe` (App. I: none, constant); at those defaults they stay out
    of :meth:`hash`.
    """

    arch: str
    dataset: str
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float | None = None
    seed: int = 0
    train_subset: int | None = None
    image_size: int | None = None
    precision: str = "fp32"
    compile: bool = False
    label_smoothing: float = 0.0
    pretrained: bool = False
    hidden: tuple[int, ...] | None = None
    augment: str = "none"
    schedule: str = "constant"
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, arch_names())
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("precision", self.precision, precision_names())
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs!r} must be an integer >= 1")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size!r} must be an integer >= 1")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr!r} must be > 0")
        self.warmup_epochs = _recipe.check(self.augment, self.schedule, self.warmup_epochs, int(self.epochs))
        if self.weight_decay is None:
            self.weight_decay = _DEFAULT_WD[self.optimizer]
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} must be >= 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing={self.label_smoothing!r} must lie in [0, 1)")
        if self.train_subset is not None and self.train_subset < 1:
            raise ConfigError(f"train_subset={self.train_subset!r} must be >= 1 or None (all)")
        _config.check_seed(self.seed, "seed")
        if self.hidden is not None:
            if self.arch not in MLP_HIDDEN:
                raise ConfigError(f"hidden={self.hidden!r} only applies to MLP architectures "
                                  f"({', '.join(MLP_HIDDEN)})")
            self.hidden = tuple(int(h) for h in self.hidden)
        if self.pretrained and self.arch != "vit_tiny":
            raise ConfigError("pretrained=True is only available for arch='vit_tiny', "
                              f"not arch={self.arch!r}")
        self.epochs, self.batch_size = int(self.epochs), int(self.batch_size)
        self.lr, self.weight_decay = float(self.lr), float(self.weight_decay)

    @classmethod
    def paper(cls, arch: str, dataset: str, **overrides: Any) -> TrainConfig:
        """The recipe of App. I for ``arch`` on ``dataset`` (keyword arguments override fields).

        MLP and CNN: Adam, lr 1e-3; 30 epochs on MNIST, 100 otherwise (CIFAR-10/100). ViTs:
        AdamW, lr 5e-4, 10 epochs; ``vit_tiny`` is fine-tuned from timm's ImageNet weights
        (``pretrained=True``, needs them in the local Hugging Face cache when offline). The
        paper's CIFAR-10 MLP is ``arch='mlp_cifar'``. An architecture with a recipe of its own
        (:data:`prunerob.core.recipe.ARCH_RECIPES`: ``cct_2_3x2``, trained from scratch with
        augmentation and a warmup-cosine schedule) starts from that recipe instead.
        """
        check_choice("arch", arch, arch_names())
        check_choice("dataset", dataset, DATASETS)
        own = _recipe.arch_recipe(arch, overrides)
        if own is not None:
            base = own
        elif arch.startswith("vit"):
            base = dict(epochs=10, lr=5e-4, optimizer="adamw", pretrained=(arch == "vit_tiny"))
        else:
            base = dict(epochs=30 if dataset == "mnist" else 100, lr=1e-3, optimizer="adam")
        base.update(overrides)
        return cls(arch=arch, dataset=dataset, **base)

    def hash(self) -> str:
        """Short hash of every field plus :data:`TRAIN_CODE_VERSION` (names the checkpoint).

        ``precision`` enters only when it is not ``fp32``, in place of the field ``amp="none"``
        that it replaced: an ``fp32`` config hashes exactly as before the option existed, so the
        hashes in committed result tables and the cached checkpoints stay valid
        (``tests/test_precision.py`` pins them). The recipe fields at App. I's values
        (:data:`prunerob.core.recipe.NEUTRAL_FIELDS`) are left out, so a config hashes exactly as
        before those fields existed."""
        fields = asdict(self)
        precision = fields.pop("precision")
        fields["amp"] = "none"  # the retired field (always "none" in every cached fp32 config)
        if precision != "fp32":
            fields["precision"] = precision
        for k, v in _recipe.NEUTRAL_FIELDS.items():
            if fields[k] == v:
                del fields[k]
        return config_hash({**fields, "code_version": TRAIN_CODE_VERSION})

    def stem(self) -> str:
        return f"{self.arch}-{self.dataset}-{self.hash()}"

    def model_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.hidden is not None:
            kw["hidden"] = self.hidden
        if self.pretrained:
            kw["pretrained"] = True
        return kw


def checkpoint_data_key(train: ArrayDataset, test: ArrayDataset) -> str:
    """SHA-256 (hex) naming the data of a checkpoint: the identities (``ArrayDataset.identity``)
    of the full train split it was trained on (``train_subset`` is drawn from it by the config)
    and of the test split its recorded ``test_acc`` was measured on."""
    return hashlib.sha256(f"train:{train.identity}|test:{test.identity}".encode()).hexdigest()


def load_training_data(cfg: TrainConfig, data_root: str | os.PathLike | None = None, download: bool = False,
                       train: ArrayDataset | None = None,
                       test: ArrayDataset | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """The full train and test splits of ``cfg`` (loaded unless given), checked against it: the
    data set and image size must be ``cfg``'s and ``train_subset`` must not exceed the train split
    (ConfigError naming it and the split's size, before any training)."""
    out = []
    for split, given in (("train", train), ("test", test)):
        if given is None:
            given = load_dataset(cfg.dataset, split, root=data_root, image_size=cfg.image_size,
                                 download=download)
        elif given.name != cfg.dataset or given.split != split or (
                cfg.image_size is not None and tuple(given.x.shape[-2:]) != (cfg.image_size, cfg.image_size)):
            raise ConfigError(f"{split}_data is the {given.split} split of {given.name} at "
                              f"{tuple(given.x.shape[-2:])} px, but the config trains on {cfg.dataset} "
                              f"({cfg.image_size or 'native'} px)")
        out.append(given)
    if cfg.train_subset is not None:
        from prunerob.core.data import check_subset_size

        check_subset_size(cfg.train_subset, len(out[0]), "train_subset", out[0])
    return out[0], out[1]


def checkpoint_paths(cfg: TrainConfig, cache_dir: str | os.PathLike | None = None,
                     data_key: str | None = None, *, data_root: str | os.PathLike | None = None,
                     download: bool = False) -> dict[str, Path]:
    """``weights`` (.safetensors), ``meta`` (.json) and ``resume`` (.resume.pt) paths of ``cfg``
    trained on the data named by ``data_key`` (:func:`checkpoint_data_key`; ``info['data_key']`` of
    :func:`train_model`). Without ``data_key`` the data are loaded (``data_root``, ``download``)
    to compute it."""
    if data_key is None:
        data_key = checkpoint_data_key(*load_training_data(cfg, data_root, download))
    folder = _config.cache_dir(cache_dir) / "checkpoints"
    stem = f"{cfg.stem()}-{data_key[:12]}"
    return {
        "weights": folder / f"{stem}.safetensors",
        "meta": folder / f"{stem}.json",
        "resume": folder / f"{stem}.resume.pt",
    }


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, dataset: ArrayDataset, batch_size: int = 1000) -> float:
    """Clean accuracy (fraction in [0, 1]) of ``model`` on ``dataset``, in eval mode, without grad.

    Batches are moved to the model's device; the model's train/eval mode is restored afterwards.
    """
    if len(dataset) == 0:
        raise ConfigError("evaluate_accuracy: the data set is empty")
    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
    except StopIteration:
        dev = dataset.device
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    for xb, yb in dataset.batches(batch_size):
        xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
        correct += (model(xb).argmax(dim=1) == yb).sum()
    model.train(was_training)
    return int(correct.item()) / len(dataset)


def _info_from_meta(meta: dict) -> DatasetInfo:
    d = meta["data_info"]
    return DatasetInfo(d["name"], int(d["num_classes"]), tuple(d["input_shape"]), tuple(d["mean"]),
                       tuple(d["std"]))


def load_checkpoint(
    cfg: TrainConfig, device: str | torch.device = "auto", cache_dir: str | os.PathLike | None = None,
    data_key: str | None = None, *, data_root: str | os.PathLike | None = None, download: bool = False,
) -> tuple[nn.Module, dict]:
    """Load the cached model of ``cfg`` trained on the data ``data_key`` (eval mode) and its
    metadata; ConfigError if absent. Without ``data_key`` the data are loaded to compute it
    (:func:`checkpoint_paths`).

    The entry is validated first: the ``.json`` must parse and name this config's hash and data key, the
    ``.safetensors`` must have the size and SHA-256 recorded in it and hold exactly the model's
    tensors. A bad entry is moved aside (``<file>.corrupt-<time>``, one warning naming it) and
    :class:`~prunerob.config.CorruptCacheError` is raised; :func:`train_model` then retrains.
    """
    from safetensors.torch import load_file

    dev = resolve_device(device)
    if data_key is None:
        data_key = checkpoint_data_key(*load_training_data(cfg, data_root, download))
    paths = checkpoint_paths(cfg, cache_dir, data_key)
    if not (paths["weights"].is_file() and paths["meta"].is_file()):
        raise ConfigError(
            f"no checkpoint for {cfg.stem()} on this data in {paths['weights'].parent}; "
            "train it first with train_model(cfg)"
        )
    culprit = "meta"  # which file of the pair failed (named in the warning)
    try:
        meta = json.loads(paths["meta"].read_text())
        if not isinstance(meta, dict) or meta.get("hash") != cfg.hash():
            raise ValueError(f"records config hash {meta.get('hash') if isinstance(meta, dict) else None!r}, "
                             f"expected {cfg.hash()!r}")
        if meta.get("data_key") != data_key:
            raise ValueError(f"records data key {meta.get('data_key')!r}, expected {data_key!r}")
        culprit = "weights"
        size, digest = meta.get("weights_size"), meta.get("weights_sha256")
        if size is not None and paths["weights"].stat().st_size != int(size):
            raise ValueError(f"{paths['weights'].name} has {paths['weights'].stat().st_size} bytes, "
                             f"{size} were written")
        if digest is not None and sha256_file(paths["weights"]) != digest:
            raise ValueError(f"SHA-256 of {paths['weights'].name} does not match the one recorded")
        kw = cfg.model_kwargs()
        kw.pop("pretrained", None)  # the weights come from the checkpoint, not from the hub
        model = build_model(cfg.arch, _info_from_meta(meta), **kw)
        state = load_file(str(paths["weights"]))
        model.load_state_dict(state)  # Normalize buffers are in the state dict, so mean/std come back too
    except Exception as exc:  # JSONDecodeError, SafetensorError, missing keys, shape mismatch, ...
        reason = f"{type(exc).__name__}: {exc}".strip()[:300]
        bad = culprit
        other = "weights" if bad == "meta" else "meta"
        quarantine(paths[bad], reason, also=[paths[other]])
        raise CorruptCacheError(
            f"checkpoint {paths['weights']} was corrupt ({reason}); moved aside with its "
            f"{paths[other].suffix} file; train_model(cfg) retrains it") from None
    model.to(dev).eval()
    meta.update(cached=True, checkpoint=str(paths["weights"]))
    return model, meta


def _save_weights(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def _save_resume(path: Path, payload: dict) -> None:
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


_RESUME_KEYS = ("hash", "epoch", "model", "optimizer", "generator", "torch_rng", "train_losses",
                "epoch_times_s")


def _load_resume(path: Path, cfg: TrainConfig, data_key: str) -> dict | None:
    """The validated resume state of ``cfg``, or None (absent, other config, or corrupt: moved aside)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or any(k not in state for k in _RESUME_KEYS):
            raise ValueError("keys missing")
        epoch = int(state["epoch"])
        if not 1 <= epoch <= cfg.epochs or len(state["train_losses"]) != epoch:
            raise ValueError(f"epoch {epoch} does not fit {cfg.epochs} epochs / "
                             f"{len(state['train_losses'])} losses")
    except Exception as exc:  # garbage, truncated, PytorchStreamReader errors, ...
        quarantine(path, f"{type(exc).__name__}: {exc}".strip()[:300])
        return None
    return state if state.get("hash") == cfg.hash() and state.get("data_key") == data_key else None


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
               **get_precision(cfg.precision).optimizer_kwargs())


def _build(cfg: TrainConfig, data: ArrayDataset, dev: torch.device) -> nn.Module:
    """The seeded initial model of ``cfg`` on ``dev``, in its precision's training layout."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, data.info, **cfg.model_kwargs()).to(dev)
    return get_precision(cfg.precision).prepare(model, cfg.arch, dev)


def _as_loaded(cfg: TrainConfig, model: nn.Module, data: ArrayDataset, dev: torch.device) -> nn.Module:
    """``model`` as :func:`load_checkpoint` returns it. When ``cfg.precision`` trains in another
    layout (bf16: channels_last, explicit attention), a fresh model in the default layout gets its
    weights, so that evaluation never depends on whether the model was just trained or loaded."""
    if not get_precision(cfg.precision).fast_layout:
        return model
    kw = cfg.model_kwargs()
    kw.pop("pretrained", None)  # the weights come from the trained model
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):  # training RNG untouched
        fresh = build_model(cfg.arch, data.info, **kw).to(dev)
    fresh.load_state_dict(model.state_dict())
    return fresh.train(model.training)


def _progress(iterable, progress: bool, **kw):
    from tqdm import tqdm

    return tqdm(iterable, disable=None if progress else True, **kw)


def train_model(
    cfg: TrainConfig,
    device: str | torch.device = "auto",
    cache_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
    force: bool = False,
    stop_after_epoch: int | None = None,
    download: bool = False,
    snapshot_epochs: Sequence[int] = (),
    train_data: ArrayDataset | None = None,
    test_data: ArrayDataset | None = None,
) -> tuple[nn.Module, dict]:
    """Train ``cfg`` (or load its cached checkpoint) and return ``(model in eval mode, info)``.

    The full train and test splits are loaded first (or taken from ``train_data`` / ``test_data``,
    which must be those splits of ``cfg.dataset``): they name the cache entry (``info['data_key']``,
    :func:`checkpoint_data_key`), and a ``train_subset`` larger than the train split, an unreadable
    test split or an unwritable cache are reported before any training.

    ``info`` holds the config, ``hash``, ``cached`` (True when loaded from the cache),
    ``train_losses`` / ``final_train_loss`` (mean cross-entropy per epoch), ``epoch_times_s``,
    ``test_acc`` on the full test split, ``n_train``, ``n_test``, ``data_source``, ``device``,
    versions and ``resumed_from_epoch``. ``force=True`` retrains and ignores any resume file.
    ``stop_after_epoch=k`` (testing hook) returns after epoch ``k`` as if interrupted, leaving the
    resume file and no final checkpoint (``info['interrupted'] = True``). ``download=True`` lets
    :func:`~prunerob.core.data.load_dataset` download missing data (off by default).

    Every cache entry is validated before use (:func:`load_checkpoint`, resume state); a corrupt
    one is moved aside with a warning naming it, and the model is trained again.

    ``snapshot_epochs=(3, 10)`` also writes, after those epochs, the cache entries of the same
    config with ``epochs=3`` and ``epochs=10``. They are exactly the models a separate run with
    that many epochs would give: the recipe has no learning-rate schedule and nothing else in the
    loop reads ``cfg.epochs`` (``tests/test_train_snapshots.py`` compares the weights bit for bit).
    One 30-epoch run so yields the undertrained models and the training curve (each snapshot's
    ``test_acc``) at no extra training cost.
    """
    snapshots = sorted({int(k) for k in snapshot_epochs})
    if any(k < 1 or k >= cfg.epochs for k in snapshots):
        raise ConfigError(f"snapshot_epochs={list(snapshot_epochs)!r} must lie in 1..{cfg.epochs - 1} "
                          f"(epochs={cfg.epochs})")
    schedule = _recipe.SCHEDULES.get(cfg.schedule)
    if any(k < cfg.warmup_epochs for k in snapshots):
        raise ConfigError(f"snapshot_epochs={list(snapshot_epochs)!r} must not end inside the warmup "
                          f"(warmup_epochs={cfg.warmup_epochs})")
    if snapshots and schedule.depends_on_total:
        raise ConfigError(f"snapshot_epochs={list(snapshot_epochs)!r}: schedule={cfg.schedule!r} depends on "
                          "the run's length, so an epoch-k snapshot is not the k-epoch model; the run "
                          "records its test accuracy after every epoch instead (training_curve)")
    dev = resolve_device(device)
    full, test = load_training_data(cfg, data_root, download, train_data, test_data)
    key = checkpoint_data_key(full, test)
    paths = checkpoint_paths(cfg, cache_dir, key)
    if not force and paths["weights"].is_file() and paths["meta"].is_file():
        try:
            return load_checkpoint(cfg, device=dev, cache_dir=cache_dir, data_key=key)
        except CorruptCacheError:
            pass  # moved aside with a warning; train it again below
    check_cache_writable(cache_dir)
    get_precision(cfg.precision).check_device(dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    paths["weights"].parent.mkdir(parents=True, exist_ok=True)

    data = full.subset(cfg.train_subset, seed=cfg.seed, name="train_subset").to(dev)
    test = test.to(dev)
    prec = get_precision(cfg.precision)
    model = _build(cfg, data, dev)
    optimizer = _make_optimizer(cfg, model)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, losses, times, curve = 0, [], [], []
    resumed_from = None
    if force and paths["resume"].exists():
        paths["resume"].unlink()
    state = _load_resume(paths["resume"], cfg, key)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if dev.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            start_epoch = int(state["epoch"])
            losses, times = list(state["train_losses"]), list(state["epoch_times_s"])
            curve = list(state.get("epoch_test_acc") or [])
            resumed_from = start_epoch
        except Exception as exc:  # tensors of the wrong shape or type: start afresh
            quarantine(paths["resume"], f"{type(exc).__name__}: {exc}".strip()[:300])
            model = _build(cfg, data, dev)
            optimizer = _make_optimizer(cfg, model)
            gen = torch.Generator().manual_seed(cfg.seed)
    fwd = torch.compile(model) if cfg.compile else model
    layout = prec.input_layout(cfg.arch)
    n = len(data)
    augment = _recipe.AUGMENTS.get(cfg.augment)  # "none" draws no random numbers
    steps = -(-n // cfg.batch_size)
    epochs = _progress(range(start_epoch, cfg.epochs), progress, desc=f"train {cfg.arch}/{cfg.dataset}",
                       initial=start_epoch, total=cfg.epochs, unit="epoch")
    for epoch in epochs:
        model.train()
        t0 = time.perf_counter()
        total = torch.zeros((), dtype=torch.float64, device=dev)
        batches = _progress(data.batches(cfg.batch_size, shuffle=True, generator=gen), progress,
                            total=-(-n // cfg.batch_size), leave=False, desc=f"epoch {epoch + 1}")
        for i, (xb, yb) in enumerate(batches):
            for group in optimizer.param_groups:  # recipe.SCHEDULES ("constant": factor 1)
                group["lr"] = cfg.lr * schedule(epoch * steps + i, cfg.epochs * steps,
                                                cfg.warmup_epochs * steps)
            xb = augment(xb, gen)
            with prec.autocast(dev):  # bf16: the forward pass only; the weights stay float32
                logits = fwd(layout(xb))
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * yb.shape[0]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
        losses.append(float(total.item()) / n)
        if schedule.depends_on_total:  # the learning curve of such a run (no snapshots, see above)
            curve.append(evaluate_accuracy(model, test))
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{losses[-1]:.4f}", s=f"{times[-1]:.1f}")
        _save_resume(paths["resume"], {
            "hash": cfg.hash(), "data_key": key, "epoch": epoch + 1, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            "train_losses": losses, "epoch_times_s": times, "epoch_test_acc": curve,
        })
        if epoch + 1 in snapshots:
            snap = dataclasses.replace(cfg, epochs=epoch + 1)
            if not checkpoint_paths(snap, cache_dir, key)["meta"].is_file():
                _write_checkpoint(snap, _as_loaded(cfg, model, data, dev), data, test, key, dev, losses,
                                  times, None, cache_dir)
            model.train()
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < cfg.epochs:
            model = _as_loaded(cfg, model, data, dev).eval()
            return model, {"config": asdict(cfg), "hash": cfg.hash(), "data_key": key, "cached": False,
                           "interrupted": True,
                           "epochs_done": epoch + 1, "train_losses": losses, "epoch_times_s": times,
                           "resume": str(paths["resume"])}

    model = _as_loaded(cfg, model, data, dev)
    info = _write_checkpoint(cfg, model, data, test, key, dev, losses, times, resumed_from, cache_dir,
                             curve=curve)
    if paths["resume"].exists():
        paths["resume"].unlink()
    return model, info


def _write_checkpoint(cfg: TrainConfig, model: nn.Module, data: ArrayDataset, test: ArrayDataset, key: str,
                      dev: torch.device, losses: list[float], times: list[float], resumed_from: int | None,
                      cache_dir: str | os.PathLike | None, curve: Sequence[float] = ()) -> dict:
    """Evaluate ``model`` on the full test split ``test`` and write the cache entry of ``cfg`` on the
    data ``key`` (weights first, then the .json with their size and checksum); returns the info dict
    (model left in eval mode)."""
    paths = checkpoint_paths(cfg, cache_dir, key)
    n = len(data)
    losses, times = list(losses), list(times)
    model.eval()
    test_acc = evaluate_accuracy(model, test)
    info = {
        "config": asdict(cfg),
        "hash": cfg.hash(),
        "data_key": key,
        "code_version": TRAIN_CODE_VERSION,
        "arch": cfg.arch,
        "dataset": cfg.dataset,
        "data_info": dataclasses.asdict(data.info),
        "data_source": data.source,
        "n_train": n,
        "n_test": len(test),
        "train_losses": losses,
        "final_train_loss": losses[-1] if losses else None,
        "epoch_times_s": times,
        **({"epoch_test_acc": list(curve)} if curve else {}),
        "test_acc": test_acc,
        "n_params": sum(p.numel() for p in model.parameters()),
        "resumed_from_epoch": resumed_from,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **provenance(dev),  # versions and "device"
    }
    _save_weights(model, paths["weights"],
                  {"config_hash": cfg.hash(), "data_key": key, "arch": cfg.arch, "dataset": cfg.dataset})
    # the .json is written last and records the weights' size and checksum: a checkpoint is
    # loaded only when both files are complete and belong together
    info_file = {**info, "weights_size": paths["weights"].stat().st_size,
                 "weights_sha256": sha256_file(paths["weights"])}
    atomic_write_text(paths["meta"], json.dumps(info_file, indent=2, default=str))
    info.update(cached=False, checkpoint=str(paths["weights"]))
    return info


def training_curve(cfg: TrainConfig, cache_dir: str | os.PathLike | None = None, data_key: str | None = None,
                   *, data_root: str | os.PathLike | None = None,
                   download: bool = False) -> list[dict[str, Any]]:
    """Test accuracy after each epoch 1..``cfg.epochs`` of ``cfg``'s run on the data ``data_key``
    (``info['data_key']`` of :func:`train_model`; loaded from ``data_root`` when not given), read
    from the cache entries that :func:`train_model` writes with ``snapshot_epochs`` (one row per
    epoch present: ``epoch``, ``test_acc`` on the full test split, ``train_loss`` of that epoch,
    cumulative ``seconds``). A run whose schedule depends on its length (``warmup_cosine``) has no
    snapshots: its rows are the test accuracies it recorded after each epoch (``epoch_test_acc``)."""
    if data_key is None:
        data_key = checkpoint_data_key(*load_training_data(cfg, data_root, download))
    rows = []
    if _recipe.SCHEDULES.get(cfg.schedule).depends_on_total:
        meta = checkpoint_paths(cfg, cache_dir, data_key)["meta"]
        info = json.loads(meta.read_text()) if meta.is_file() else {}
        return [{"epoch": k + 1, "test_acc": float(acc), "train_loss": float(info["train_losses"][k]),
                 "seconds": float(sum(info["epoch_times_s"][: k + 1]))}
                for k, acc in enumerate(info.get("epoch_test_acc") or [])]
    for k in range(1, cfg.epochs + 1):
        meta = checkpoint_paths(dataclasses.replace(cfg, epochs=k), cache_dir, data_key)["meta"]
        if not meta.is_file():
            continue
        info = json.loads(meta.read_text())
        rows.append({"epoch": k, "test_acc": float(info["test_acc"]),
                     "train_loss": float(info["train_losses"][-1]),
                     "seconds": float(sum(info.get("epoch_times_s", [])))})
    return rows

