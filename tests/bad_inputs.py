"""Bad invocations of the ``prunerob`` command line (issue 9): each must print exactly one line
on stderr (``prunerob: error: ...``), exit with status 2, print no traceback and do no work.

Run stand-alone for the counts: ``python tests/bad_inputs.py``. ``tests/test_reliability.py``
runs every case in-process through :func:`prunerob.cli.main`.

``{tmp}`` in an argument is replaced by a scratch folder holding ``file.txt`` (a regular file),
``ro/`` (a read-only folder) and ``empty/`` (an empty folder).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

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
        ("a folder", "{tmp}/empty"), ("read-only folder", "{tmp}/ro/x.csv"), ("empty", ""),
        ("deep under a file", "{tmp}/file.txt/a/b/c.csv"), ("/sys path", "/sys/prunerob.csv"))],
    *[(f"bounds --csv {label}", [*B, "--csv", v]) for label, v in (
        ("/proc path", "/proc/x.csv"), ("under a file", "{tmp}/file.txt/x.csv"), ("a folder", "{tmp}/empty"),
        ("read-only folder", "{tmp}/ro/x.csv"))],
    *[(f"optimize --csv {label}", [*OPT, "--csv", v]) for label, v in (
        ("/proc path", "/proc/x.csv"), ("under a file", "{tmp}/file.txt/x.csv"))],
    *[(f"reproduce --output-dir {label}", ["reproduce", "algorithm1", "--output-dir", v]) for label, v in (
        ("/proc path", "/proc/prunerob-out"), ("a file", "{tmp}/file.txt"),
        ("under a file", "{tmp}/file.txt/out"), ("read-only folder", "{tmp}/ro/out"))],
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


def make_scratch(folder: str | os.PathLike) -> Path:
    """The ``{tmp}`` layout: a regular file, a read-only folder and an empty folder."""
    tmp = Path(folder)
    (tmp / "file.txt").write_text("a regular file\n")
    (tmp / "empty").mkdir(exist_ok=True)
    ro = tmp / "ro"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o555)
    return tmp


def read_only_is_enforced(tmp: Path) -> bool:
    """False when running as root, for whom a read-only folder is still writable."""
    try:
        (tmp / "ro" / ".probe").write_text("")
    except OSError:
        return True
    (tmp / "ro" / ".probe").unlink()
    return False


def run_case(argv: list[str], tmp: Path) -> tuple[int, str, str]:
    """Run ``prunerob.cli.main(argv)`` in-process; returns (exit status, stdout, stderr)."""
    from prunerob.cli import main

    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(args)
        except SystemExit as exc:  # should not happen: main returns
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - a crash is a failed case, reported below
            import traceback

            traceback.print_exc(file=err)
            rc = f"raised {type(exc).__name__}"
    return rc, out.getvalue(), err.getvalue()


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
    with tempfile.TemporaryDirectory() as d:
        tmp = make_scratch(d)
        os.environ["PRUNEROB_CACHE"] = str(tmp / "cache")
        os.environ["PRUNEROB_DATA"] = str(tmp / "empty")
        enforced = read_only_is_enforced(tmp)
        good = bad = skipped = 0
        for label, argv in CASES:
            if "read-only" in label and not enforced:
                skipped += 1
                continue
            rc, _out, err = run_case(argv, tmp)
            why = judge(rc, err)
            if why is None:
                good += 1
            else:
                bad += 1
                print(f"FAIL {label}: {why}")
        (tmp / "ro").chmod(0o755)
    print(f"{good} of {good + bad} bad inputs give one clear line and exit 2"
          + (f" ({skipped} read-only cases skipped: running as root)" if skipped else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
