"""Bad invocations of the ``prunerob`` command line (issues 9 and 26): each must print exactly
one line on stderr (``prunerob: error: ...``), exit with status 2, print no traceback and do no
work.

Run stand-alone for the counts: ``python tests/bad_inputs.py``. ``tests/test_reliability.py``
runs every case in-process through :func:`prunerob.cli.main`.

``{tmp}`` in an argument is replaced by a scratch folder (:func:`scratch`) holding ``file.txt``
(a regular file), ``empty/`` (an empty folder), data folders with bad contents (``tiny/``: MNIST
of 100 + 50 images, ``badlabels/``, ``badmagic/``, ``evil/``: CIFAR pickles carrying a
``__reduce__`` payload), a symbolic-link loop, a planted crash journal and more (see
:func:`make_scratch`). ``{ro}`` is a read-only folder: a read-only bind mount when running as
root (where permissions do not stop writes) and ``mount`` works, else a folder without write
permission, else (root without ``mount``) a regular file in place of the folder, which is just as
unwritable. :data:`ENV` gives a case extra environment variables; :data:`POST` checks what a case
must have left alone (a payload that must not have run, a folder that must survive).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

S = ["sweep", "--quiet"]
B = ["bounds", "--random-mlp", "784,16,10", "--x-norm", "1"]
OPT = ["optimize", "--random-mlp", "784,16,10", "--x-norm", "1"]
R = ["reproduce", "algorithm1", "--list"]
RD = ["reproduce", "depth", "--list"]

#: (label, argv); the label names what is wrong
CASES: list[tuple[str, list[str]]] = [
    # --- eps and attack settings
    *[(f"sweep --eps {v}", [*S, "--eps", v]) for v in
      ("1e400", "2", "-1", "abc", "4/0", "", "nan", "inf", "1/0.5", "4/255,x", "1.5/1")],
    ("bounds --eps 2", [*B, "--eps", "2"]),
    ("bounds --eps abc", [*B, "--eps", "abc"]),
    ("bounds --eps 1e400", [*B, "--eps", "1e400"]),
    *[(f"sweep --pgd-alpha {v}", [*S, "--pgd-alpha", v]) for v in ("abc", "0", "2", "-1/255", "1e400")],
    *[(f"sweep --pgd-steps {v}", [*S, "--pgd-steps", v]) for v in ("0", "-3", "x", "1.5")],
    *[(f"sweep --pgd-restarts {v}", [*S, "--pgd-restarts", v]) for v in ("0", "x")],
    *[(f"sweep --cw-steps {v}", [*S, "--cw-steps", v]) for v in ("0", "abc")],
    *[(f"sweep --cw-kappa {v}", [*S, "--cw-kappa", v]) for v in ("-1", "abc", "inf", "nan")],
    # --- seeds and counts
    *[(f"sweep --subset-seed={v}", [*S, f"--subset-seed={v}"]) for v in ("-1", "x", "1.5")],
    *[(f"sweep --seeds {v}", [*S, "--seeds", v]) for v in ("-1", "a", "0,0", "", "0,,-2", "1.5")],
    *[(f"train --seed {v}", ["train", "--seed", v]) for v in ("-1", "x")],
    *[(f"sweep --n {v}", [*S, "--n", v]) for v in ("0", "-5", "abc", "1e3")],
    *[(f"sweep --batch-size {v}", [*S, "--batch-size", v]) for v in ("0", "-1", "x")],
    *[(f"train --epochs {v}", ["train", "--epochs", v]) for v in ("0", "-1", "two", "1.5")],
    *[(f"train --train-subset {v}", ["train", "--train-subset", v]) for v in ("0", "-10", "x")],
    # --- keep ratios, lambdas, Algorithm 1 settings
    *[(f"sweep --keep {v}", [*S, "--keep", v]) for v in ("1.5", "-0.1", "abc", "", "1,,x", "nan")],
    *[(f"bounds --keep {v}", [*B, "--keep", v]) for v in ("2", "x", "")],
    *[(f"optimize --lam {v}", [*OPT, "--lam", v]) for v in ("1.5", "-1", "x", "")],
    *[(f"optimize --p0 {v}", [*OPT, "--p0", v]) for v in ("2", "-0.5", "nan")],
    *[(f"optimize --budget {v}", [*OPT, "--budget", v]) for v in ("1.5", "-1")],
    *[(f"optimize --tol {v}", [*OPT, "--tol", v]) for v in ("0", "-1", "inf")],
    *[(f"optimize --max-iter {v}", [*OPT, "--max-iter", v]) for v in ("0", "x")],
    ("optimize --mode bogus", [*OPT, "--mode", "bogus"]),
    ("bounds --scope bogus", [*B, "--scope", "bogus"]),
    *[(f"bounds --x-norm {v}", ["bounds", "--random-mlp", "784,16,10", "--x-norm", v]) for v in
      ("-1", "abc", "inf", "nan")],
    # --- weights for the theory commands
    *[(f"bounds --random-mlp {v!r}", ["bounds", "--random-mlp", v, "--x-norm", "1"]) for v in
      ("", "10", "a,b", "784,0,10", "784,-5,10", "784,,", "1.5,2")],
    ("bounds --random-mlp 100,64,10 --dataset mnist",
     ["bounds", "--random-mlp", "100,64,10", "--dataset", "mnist"]),
    ("optimize --random-mlp 3072,64,10 --dataset mnist",
     ["optimize", "--random-mlp", "3072,64,10", "--dataset", "mnist"]),
    ("bounds --random-mlp 784,64,10 --dataset cifar10",
     ["bounds", "--random-mlp", "784,64,10", "--dataset", "cifar10"]),
    ("bounds --checkpoint missing", ["bounds", "--checkpoint", "{tmp}/missing.safetensors"]),
    ("bounds --checkpoint folder", ["bounds", "--checkpoint", "{tmp}/empty"]),
    ("bounds --arch cnn4", ["bounds", "--arch", "cnn4", "--dataset", "mnist"]),
    ("bounds --arch bogus", ["bounds", "--arch", "bogus", "--dataset", "mnist"]),
    ("bounds --dataset bogus", ["bounds", "--dataset", "bogus"]),
    ("bounds --arch and --random-mlp", ["bounds", "--arch", "mlp", "--random-mlp", "784,10"]),
    # --- model, data set, device, batched
    *[(f"train --model {v}", ["train", "--model", v]) for v in ("bogus", "", "MLP")],
    *[(f"sweep --model {v}", [*S, "--model", v]) for v in ("resnet", "mlp,cnn4")],
    *[(f"train --dataset {v}", ["train", "--dataset", v]) for v in ("imagenet", "", "MNIST")],
    *[(f"sweep --device {v}", [*S, "--device", v]) for v in ("gpu", "cuda:x", "tpu")],
    ("sweep --batched maybe", [*S, "--batched", "maybe"]),
    ("train cifar100 without --download",
     ["train", "--dataset", "cifar100", "--model", "cnn4", "--epochs", "1", "--data-root", "{tmp}/empty"]),
    # --- input and output locations
    ("train --data-root /does/not/exist", ["train", "--data-root", "/does/not/exist"]),
    ("sweep --data-root a file", [*S, "--data-root", "{tmp}/file.txt"]),
    ("bounds --data-root missing", [*B, "--data-root", "{tmp}/nope"]),
    *[(f"sweep --out {label}", [*S, "--out", v]) for label, v in (
        ("/proc path", "/proc/prunerob.csv"), ("under a file", "{tmp}/file.txt/x.csv"),
        ("a folder", "{tmp}/empty"), ("read-only folder", "{ro}/x.csv"), ("empty", ""),
        ("deep under a file", "{tmp}/file.txt/a/b/c.csv"), ("/sys path", "/sys/prunerob.csv"))],
    *[(f"bounds --csv {label}", [*B, "--csv", v]) for label, v in (
        ("/proc path", "/proc/x.csv"), ("under a file", "{tmp}/file.txt/x.csv"), ("a folder", "{tmp}/empty"),
        ("read-only folder", "{ro}/x.csv"))],
    *[(f"optimize --csv {label}", [*OPT, "--csv", v]) for label, v in (
        ("/proc path", "/proc/x.csv"), ("under a file", "{tmp}/file.txt/x.csv"))],
    *[(f"reproduce --output-dir {label}", ["reproduce", "algorithm1", "--output-dir", v]) for label, v in (
        ("/proc path", "/proc/prunerob-out"), ("a file", "{tmp}/file.txt"),
        ("under a file", "{tmp}/file.txt/out"), ("read-only folder", "{ro}/out"))],
    # --- reproduce: notebooks, profiles and -p values
    ("reproduce bogus notebook", ["reproduce", "bogus", "--list"]),
    ("reproduce --profile bogus", ["reproduce", "algorithm1", "--profile", "bogus", "--list"]),
    ("reproduce -p unknown key", [*R, "-p", "bogus_key", "1"]),
    ("reproduce -p key twice", [*R, "-p", "epochs", "1", "-p", "epochs", "2"]),
    ("reproduce -p bad yaml", [*R, "-p", "seeds", "[0, 1"]),
    *[(f"reproduce -p seeds {v}", [*R, "-p", "seeds", v])
      for v in ("abc", "[-1]", "[0, 0]", "[]", "[0.5]", "3")],
    *[(f"reproduce -p lambdas {v}", [*R, "-p", "lambdas", v])
      for v in ("[1.5]", "[-0.1]", "abc", "[]", "0.5")],
    *[(f"reproduce -p eps {v}", [*R, "-p", "eps", v]) for v in ("2", "abc", "1e400", "-1/255", "[4/255]")],
    *[(f"reproduce -p epochs {v}", [*R, "-p", "epochs", v]) for v in ("0", "two", "1.5", "True")],
    *[(f"reproduce -p train_subset {v}", [*R, "-p", "train_subset", v]) for v in ("0", "abc")],
    *[(f"reproduce -p grid_keeps {v}", [*R, "-p", "grid_keeps", v]) for v in ("[1.5]", "[x]")],
    *[(f"reproduce -p p0 {v}", [*R, "-p", "p0", v]) for v in ("2", "abc")],
    ("reproduce -p tol 0", [*R, "-p", "tol", "0"]),
    *[(f"reproduce eps01_gain -p confirm_seeds {v}",
       ["reproduce", "eps01_gain", "--list", "-p", "confirm_seeds", v])
      for v in ("[40, 40]", "[-1]", "[1.5]", "40")],
    ("reproduce -p max_iter 0", [*R, "-p", "max_iter", "0"]),
    ("reproduce -p modes [bogus]", [*R, "-p", "modes", "[bogus]"]),
    ("reproduce -p attacks [bogus]", [*R, "-p", "attacks", "[bogus]"]),
    ("reproduce -p attacks fgsm", [*R, "-p", "attacks", "fgsm"]),
    ("reproduce -p model bogus", [*R, "-p", "model", "bogus"]),
    ("reproduce -p dataset bogus", [*R, "-p", "dataset", "bogus"]),
    ("reproduce -p device gpu", [*R, "-p", "device", "gpu"]),
    ("reproduce -p download yes", [*R, "-p", "download", "yes"]),
    ("reproduce -p n_eval 0", [*R, "-p", "n_eval", "0"]),
    ("reproduce -p threads 0", [*R, "-p", "threads", "0"]),
    ("reproduce -p data_root missing", [*R, "-p", "data_root", "/does/not/exist"]),
    ("reproduce -p profile bogus", [*R, "-p", "profile", "bogus"]),
    *[(f"reproduce -p out_dir {v}", [*R, "-p", "out_dir", v]) for v in
      ("../../x", "/tmp/elsewhere", ".", "results", ".stamps/x", "results/../..", "3", "results/depth")],
    *[(f"reproduce depth -p {k} {v}", [*RD, "-p", k, v]) for k, v in (
        ("models", "[bogus]"), ("models", "[mlp, mlp]"), ("methods", "[bogus]"), ("keeps", "[2]"),
        ("keeps", "abc"))],
    ("params bogus", ["params", "bogus"]),
    ("params -p seeds abc", ["params", "algorithm1", "-p", "seeds", "abc"]),
    ("params --ipynb under a file", ["params", "algorithm1", "--ipynb", "{tmp}/file.txt/x.ipynb"]),
    # --- argparse usage errors (one line too)
    ("unknown subcommand", ["bogus"]),
    ("unknown option", ["sweep", "--bogus"]),
    ("missing option value", ["sweep", "--eps"]),
    ("no subcommand", []),
]

BIG = str(2**64)  # one past torch's largest seed (ValueError: Overflow before issue 26)
TINY = ["--data-root", "{tmp}/tiny"]  # MNIST of 100 train / 50 test images
#: settings that keep a case cheap should it ever be accepted (a regression must cost seconds, not
#: hours); the argument under test comes after them and wins
CHEAP = ["--epochs", "1", "--train-subset", "10", "--device", "cpu", *TINY]


def tr(*args: str) -> list[str]:
    """``prunerob train`` on the tiny data set, then ``args``."""
    return ["train", *CHEAP, *args]


def sw(*args: str) -> list[str]:
    """``prunerob sweep`` of one keep ratio on 10 images of the tiny data set, then ``args``."""
    return [*S, *CHEAP, "--n", "10", "--keep", "1", *args]


#: a reproduce run whose notebook (a stub with algorithm1's parameters) fails at once if it ever starts
RS = ["reproduce", "algorithm1", "--notebooks-dir", "{tmp}/nbs"]

#: issue 26: inputs that gave a traceback, were accepted with wrong or unsafe results, or gave an
#: unclear error
CASES += [
    # security: code in a data folder, a crash journal pointing outside, a file where the sweep
    # keeps its resume files
    ("train cifar10 from pickles with a __reduce__ payload",
     tr("--model", "mlp_cifar", "--dataset", "cifar10", "--data-root", "{tmp}/evil")),
    ("sweep cifar10 from pickles with a __reduce__ payload",
     sw("--model", "mlp_cifar", "--dataset", "cifar10", "--data-root", "{tmp}/evil")),
    ("train cifar10 payload through PRUNEROB_DATA",
     ["train", "--epochs", "1", "--train-subset", "10", "--model", "mlp_cifar", "--dataset", "cifar10"]),
    ("reproduce with a crash journal pointing outside the output folder",
     [*RS, "--profile", "cpu", "--output-dir", "{tmp}/exp"]),
    ("sweep --out X with a file X.partial", sw("--out", "{tmp}/o.csv")),
    # accepted but wrong: a subset larger than the split, a device that cannot run a model
    ("train --train-subset beyond the split", tr("--train-subset", "2000")),
    ("sweep --train-subset beyond the split", sw("--train-subset", "2000")),
    ("sweep --n beyond the split", sw("--train-subset", "50", "--n", "200")),
    ("train --device meta", tr("--device", "meta")),
    ("sweep --device meta", sw("--device", "meta")),
    *([("train --device mps (no Apple GPU)", tr("--device", "mps"))]
      if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()) else []),
    ("sweep --device cuda:99", sw("--device", "cuda:99")),
    ("train --device cpu:3", tr("--device", "cpu:3")),
    ("reproduce -p device meta", [*R, "-p", "device", "meta"]),
    *[(f"params -p out_dir {v}", ["params", "algorithm1", "-p", "out_dir", v]) for v in
      ("../../x", "/etc/x", ".", ".stamps/x", "results/depth")],
    ("params -p mlp_table ../x.csv", ["params", "pareto", "-p", "mlp_table", "../x.csv"]),
    # tracebacks before issue 26
    ("train --seed 2**64", tr("--seed", BIG)),
    ("train --seed 2**32", tr("--seed", str(2**32))),
    ("sweep --seeds 2**64", sw("--seeds", BIG)),
    ("sweep --seeds 0,2**64", sw("--seeds", f"0,{BIG}")),
    ("sweep --subset-seed 2**64", sw("--subset-seed", BIG)),
    ("reproduce -p seeds [2**64]", [*R, "-p", "seeds", f"[{BIG}]"]),
    ("train on idx labels outside the classes", tr("--data-root", "{tmp}/badlabels")),
    ("sweep on idx labels outside the classes", sw("--data-root", "{tmp}/badlabels")),
    ("train with PRUNEROB_CACHE a file", tr()),
    ("train with PRUNEROB_CACHE under a file", tr()),
    ("train with PRUNEROB_CACHE read-only", tr()),
    ("sweep with PRUNEROB_CACHE a file", sw()),
    ("sweep --scheduler unreachable", sw("--scheduler", "tcp://127.0.0.1:1")),
    ("sweep --scheduler no port", sw("--scheduler", "tcp://127.0.0.1")),
    ("sweep --out 300-character name", sw("--out", "{tmp}/" + "o" * 300 + ".csv")),
    ("sweep --out name too long for X.partial", sw("--out", "{tmp}/" + "o" * 250 + ".csv")),
    ("sweep --out through a symlink loop", sw("--out", "{tmp}/loop/x.csv")),
    ("sweep --out a symlink loop", sw("--out", "{tmp}/loop")),
    ("sweep --out under a dangling symlink", sw("--out", "{tmp}/dangling/x.csv")),
    ("bounds --csv through a symlink loop", [*B, "--csv", "{tmp}/loop/x.csv"]),
    ("reproduce --output-dir a symlink loop", [*RS, "--output-dir", "{tmp}/loop"]),
    ("reproduce -p seeds nested 50,000 deep", [*R, "-p", "seeds", "[" * 50000 + "0" + "]" * 50000]),
    ("params -p seeds nested 50,000 deep",
     ["params", "algorithm1", "-p", "seeds", "[" * 50000 + "]" * 50000]),
    ("bounds --random-mlp 784,100000000,10 (627 GB)", ["bounds", "--random-mlp", "784,100000000,10",
                                                       "--x-norm", "1"]),
    ("optimize --random-mlp 784,100000000,10",
     ["optimize", "--random-mlp", "784,100000000,10", "--x-norm", "1"]),
    # unclear errors before issue 26
    ("sweep --keep nan", sw("--keep", "0.5,nan")),
    ("reproduce -p seeds [0,", [*R, "-p", "seeds", "[0,"]),
    ("reproduce --kernel nosuchkernel", [*RS, "--kernel", "nosuchkernel", "--output-dir", "{tmp}/kout"]),
    ("train on a test split with a bad magic number", tr("--data-root", "{tmp}/badmagic")),
]

#: extra environment variables of a case (``{tmp}`` and ``{ro}`` replaced)
ENV: dict[str, dict[str, str]] = {
    "train cifar10 payload through PRUNEROB_DATA": {"PRUNEROB_DATA": "{tmp}/evil"},
    "train with PRUNEROB_CACHE a file": {"PRUNEROB_CACHE": "{tmp}/file.txt"},
    "train with PRUNEROB_CACHE under a file": {"PRUNEROB_CACHE": "{tmp}/file.txt/cache"},
    "train with PRUNEROB_CACHE read-only": {"PRUNEROB_CACHE": "{ro}"},
    "sweep with PRUNEROB_CACHE a file": {"PRUNEROB_CACHE": "{tmp}/file.txt"},
}


def _no_payload(tmp: Path) -> str | None:
    return f"the pickle payload ran: {tmp / 'pwned'} exists" if (tmp / "pwned").exists() else None


def _victim_intact(tmp: Path) -> str | None:
    ok = (tmp / "victim_dir" / "precious.txt").is_file() and (
        tmp / "exp" / ".staging" / "algorithm1-99999999-abc" / "swap.json").is_file()
    return None if ok else "the crash journal was acted upon: victim_dir replaced or the journal removed"


def _partial_file_kept(tmp: Path) -> str | None:
    p = tmp / "o.csv.partial"
    return None if p.is_file() and p.read_text() == "not a folder\n" else "o.csv.partial was changed"


def _nothing_trained(tmp: Path) -> str | None:
    folder = tmp / "cache" / "checkpoints"
    ckpts = list(folder.glob("*")) if folder.is_dir() else []
    return f"work was done before the error: {[p.name for p in ckpts]}" if ckpts else None


def _no_kernel_run(tmp: Path) -> str | None:
    return "the run started: {tmp}/kout was created" if (tmp / "kout").exists() else None


#: label -> check of what the case must have left alone (None: fine, else what went wrong)
POST: dict[str, Callable[[Path], str | None]] = {
    **{label: _no_payload for label, _ in CASES if "payload" in label},
    "reproduce with a crash journal pointing outside the output folder": _victim_intact,
    "sweep --out X with a file X.partial": _partial_file_kept,
    **{label: _nothing_trained for label, _ in CASES if "beyond the split" in label or "bad magic" in label},
    "reproduce --kernel nosuchkernel": _no_kernel_run,
}


def _write_idx(path: Path, arr: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
                     + arr.astype(np.uint8).tobytes())


def _mnist_folder(folder: Path, n_train: int, n_test: int, seed: int = 0,
                  bad_label: int | None = None) -> Path:
    """Four idx files of random images; ``bad_label`` is written as the first training label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n)
        if bad_label is not None and prefix == "train":
            y[0] = bad_label
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", y)
    return folder


class Payload:
    """A real pickle payload: unpickling it runs ``touch <marker>`` through ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def write_payload_pickles(folder: Path, marker: Path) -> Path:
    """``folder/cifar-10-batches-py`` whose every batch is a :class:`Payload`."""
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"):
        (d / name).write_bytes(pickle.dumps(Payload(marker), protocol=2))
    return folder


def _planted_journal(tmp: Path) -> None:
    """The issue's escape: a dead run's journal naming ``victim_dir`` outside the output folder."""
    victim = tmp / "victim_dir"
    victim.mkdir()
    (victim / "precious.txt").write_text("must survive\n")
    d = tmp / "exp" / ".staging" / "algorithm1-99999999-abc"
    (d / "backup").mkdir(parents=True)
    (d / "backup" / "0-x").write_text("planted\n")
    (d / "swap.json").write_text(f'[{{"old": "0-x", "dest": "{victim}"}}]')


def _stub_notebook(tmp: Path) -> None:
    """``nbs/algorithm1.py``: the real parameters cell, then a cell that fails at once (if a bad case
    ever got as far as running it, it costs a kernel start, not hours)."""
    src = (Path(__file__).resolve().parent.parent / "notebooks" / "algorithm1.py").read_text()
    head = src[: src.index("# %%", src.index('tags=["parameters"]'))]
    (tmp / "nbs").mkdir()
    (tmp / "nbs" / "algorithm1.py").write_text(head + '# %%\nraise RuntimeError("must not run")\n')


def make_scratch(folder: str | os.PathLike) -> Path:
    """The ``{tmp}`` layout (see the module docstring); ``{ro}`` is made by :func:`scratch`."""
    tmp = Path(folder)
    (tmp / "file.txt").write_text("a regular file\n")
    (tmp / "empty").mkdir(exist_ok=True)
    _mnist_folder(tmp / "tiny", 100, 50)
    _mnist_folder(tmp / "badlabels", 100, 50, bad_label=44)
    _mnist_folder(tmp / "badmagic", 100, 50)
    raw = (tmp / "badmagic" / "t10k-images-idx3-ubyte").read_bytes()
    (tmp / "badmagic" / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34" + raw[2:])
    write_payload_pickles(tmp / "evil", tmp / "pwned")
    (tmp / "loop").symlink_to(tmp / "loop")
    (tmp / "dangling").symlink_to(tmp / "nowhere")
    (tmp / "o.csv.partial").write_text("not a folder\n")
    _planted_journal(tmp)
    _stub_notebook(tmp)
    return tmp


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def _read_only_folder(folder: Path) -> str:
    """Make ``folder`` read-only: ``bind mount`` (root: a read-only bind mount onto itself, which
    root cannot write either), ``permissions`` (mode 0555) or ``''`` when neither stops writes."""
    folder.mkdir(exist_ok=True)
    if os.geteuid() == 0 and shutil.which("mount"):
        run = {"capture_output": True, "check": False}
        if subprocess.run(["mount", "--bind", str(folder), str(folder)], **run).returncode == 0:
            if (subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], **run).returncode == 0
                    and not _writable(folder)):
                return "bind mount"
            subprocess.run(["umount", str(folder)], **run)
    folder.chmod(0o555)
    if not _writable(folder):
        return "permissions"
    folder.chmod(0o755)
    return ""


@contextlib.contextmanager
def scratch(folder: str | os.PathLike) -> Iterator[Path]:
    """:func:`make_scratch` plus ``{ro}``; unmounts / restores permissions afterwards."""
    tmp = make_scratch(folder)
    how = _read_only_folder(tmp / "ro")
    (tmp / "ro.how").write_text(how or "file in place of a folder")
    try:
        yield tmp
    finally:
        if how == "bind mount":
            subprocess.run(["umount", str(tmp / "ro")], capture_output=True, check=False)
        (tmp / "ro").chmod(0o755)


def read_only_path(tmp: Path) -> str:
    """What ``{ro}`` stands for: the read-only folder, or a regular file where none can be made."""
    how = (tmp / "ro.how").read_text() if (tmp / "ro.how").is_file() else ""
    return str(tmp / "ro") if how in ("bind mount", "permissions") else str(tmp / "file.txt")


def read_only_is_enforced(tmp: Path) -> bool:
    """Whether ``{ro}`` is a real read-only folder (else a file stands in for it)."""
    return read_only_path(tmp) == str(tmp / "ro")


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{ro}", read_only_path(tmp))


def run_case(argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``prunerob.cli.main(argv)`` in-process with the extra environment ``env``; returns
    (exit status, stdout, stderr)."""
    from prunerob.cli import main

    args = [_fill(a, tmp) for a in argv]
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update({k: _fill(v, tmp) for k, v in (env or {}).items()})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(args)
            except SystemExit as exc:  # should not happen: main returns
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - a crash is a failed case, reported below
                import traceback

                traceback.print_exc(file=err)
                rc = f"raised {type(exc).__name__}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rc, out.getvalue(), err.getvalue()


def check_case(label: str, argv: list[str], tmp: Path) -> str | None:
    """Run one case; None when it gave one clear line, exit 2 and left alone what it must (:data:`POST`)."""
    rc, _out, err = run_case(argv, tmp, ENV.get(label))
    why = judge(rc, err)
    if why is None and label in POST:
        why = POST[label](tmp)
    return why


def judge(rc, err: str) -> str | None:
    """None when the case gave one clear line and exit 2, else what was wrong."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if rc != 2:
        return f"exit status {rc!r}, expected 2; stderr: {err[-300:]!r}"
    if "Traceback" in err:
        return "traceback on stderr"
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr, expected 1: {err[-400:]!r}"
    if not lines[0].startswith("prunerob: error:"):
        return f"stderr line does not start with 'prunerob: error:': {lines[0]!r}"
    return None


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as d, scratch(d) as tmp:
        os.environ["PRUNEROB_CACHE"] = str(tmp / "cache")
        os.environ["PRUNEROB_DATA"] = str(tmp / "empty")
        good = bad = 0
        for label, argv in CASES:
            why = check_case(label, argv, tmp)
            if why is None:
                good += 1
            else:
                bad += 1
                print(f"FAIL {label}: {why}")
        how = (tmp / "ro.how").read_text()
    print(f"{good} of {good + bad} bad inputs give one clear line and exit 2 (read-only location: {how})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
