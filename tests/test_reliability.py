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

import json
import multiprocessing as mp
import os
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
    tmp = bad_inputs.make_scratch(tmp_path_factory.mktemp("bad"))
    yield tmp
    (tmp / "ro").chmod(0o755)


@pytest.mark.parametrize("label, argv", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_bad_input_gives_one_line_and_exit_2(label, argv, scratch, monkeypatch):
    if "read-only" in label and not bad_inputs.read_only_is_enforced(scratch):
        pytest.skip("running as root: a read-only folder is writable")
    monkeypatch.setenv("PRUNEROB_CACHE", str(scratch / "cache"))
    monkeypatch.setenv("PRUNEROB_DATA", str(scratch / "empty"))
    rc, _out, err = bad_inputs.run_case(argv, scratch)
    assert bad_inputs.judge(rc, err) is None, bad_inputs.judge(rc, err)


def test_bad_input_messages_name_the_parameter(scratch):
    for argv, name in ((["sweep", "--pgd-alpha", "abc"], "--pgd-alpha"), (["sweep", "--eps", "2"], "--eps"),
                       (["sweep", "--subset-seed=-1"], "--subset-seed"),
                       (["reproduce", "algorithm1", "--list", "-p", "lambdas", "[1.5]"], "lambdas"),
                       (["reproduce", "algorithm1", "--list", "-p", "out_dir", "../../x"], "out_dir")):
        _rc, _out, err = bad_inputs.run_case(argv, scratch)
        assert name in err, (argv, err)


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
    paths = train.checkpoint_paths(cfg)
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
    pa, pb = train.checkpoint_paths(a), train.checkpoint_paths(b)
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
    resume = train.checkpoint_paths(cfg)["resume"]
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
