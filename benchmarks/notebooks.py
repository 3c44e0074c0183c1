"""Wall time of every experiment notebook under one profile (issue: quick on the CPU, paper on a GPU).

Runs ``prunerob reproduce`` with ``--force`` into a temporary folder (committed outputs are never
touched) and prints one line per notebook and the total, with the device:

    python benchmarks/notebooks.py --profile quick            # CPU target: <= 15 min in total
    python benchmarks/notebooks.py --profile paper            # GPU target: <= 10 min in total
    python benchmarks/notebooks.py --profile quick depth algorithm1

Trained checkpoints come from the cache ($PRUNEROB_CACHE); pass ``--cold-cache`` to train
everything from scratch in a temporary cache, which is what a first run on a fresh machine costs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from prunerob import runner  # noqa: E402
from prunerob.config import device_name, resolve_device  # noqa: E402
from prunerob.runner import profiles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebooks (default: all)")
    ap.add_argument("--profile", default="quick", choices=profiles.PROFILES)
    ap.add_argument("--cold-cache", action="store_true", help="use an empty checkpoint/data cache")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="prunerob-bench-") as tmp:
        if args.cold_cache:
            os.environ["PRUNEROB_CACHE"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        results = runner.reproduce(args.names or None, profile=args.profile, output_dir=Path(tmp) / "out",
                                   force=True, raise_on_error=False)
        total = time.perf_counter() - t0
    dev = device_name(resolve_device("auto"))
    print(f"profile={args.profile} device={dev} torch={torch.__version__} threads={torch.get_num_threads()}")
    for r in results:
        print(f"{r.name:16s} {r.status:8s} {r.seconds:8.1f} s")
    print(f"{'total':16s} {'':8s} {total:8.1f} s  ({total / 60:.1f} min)")
    return 0 if all(r.status in ("ran", "skipped") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
