"""Wall time of the batched MLP sweep (prunerob.engine.stacked) vs the per-ratio torchattacks loop
(prunerob.engine.sweep).

Both paths evaluate the same trained model on the same examples: clean accuracy, FGSM and PGD-5
(App. I settings, eps = 4/255) at 20 keep ratios 1.0, 0.95, ..., 0.05 of magnitude pruning.
Prints both wall times, their ratio and the largest absolute accuracy difference between the
two tables (0 up to float32 rounding ties; the float64 equality is tested in tests/test_sweep.py).

    python benchmarks/sweep.py                       # MLP on MNIST, n=10000 on GPU / 1000 on CPU
    python benchmarks/sweep.py --n 2000 --device cpu --threads 2
    python benchmarks/sweep.py --model cnn4 --dataset cifar10   # loop only (no batched path)

The model is trained with ``--train-epochs`` (default 1: it is a timing benchmark) through the
checkpoint cache ($PRUNEROB_CACHE), so a second run does not retrain.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from prunerob.config import device_name, format_eps, resolve_device  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn, dev):
    """(wall seconds, process CPU seconds, result)."""
    _sync(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync(dev)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp", help="mlp (batched + loop); cnn4, vit_small: loop only")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n", type=int, default=None,
                    help="evaluation examples (default 10000 on GPU, 1000 on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--keeps", type=int, default=20, help="number of keep ratios 1.0 .. 1/K (default 20)")
    ap.add_argument("--attacks", default="fgsm,pgd")
    ap.add_argument("--eps", default="4/255")
    ap.add_argument("--method", default="magnitude")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--train-epochs", type=int, default=1)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip-loop", action="store_true", help="time the batched path only")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from prunerob.core.data import load_dataset
    from prunerob.core.train import TrainConfig, train_model
    from prunerob.engine.sweep import run_sweep

    dev = resolve_device(args.device)
    n = args.n or (10000 if dev.type == "cuda" else 1000)
    keeps = [round(1 - i / args.keeps, 6) for i in range(args.keeps)]
    cfg = TrainConfig.paper(args.model, args.dataset, epochs=args.train_epochs,
                            train_subset=args.train_subset)
    t_train, _, (model, info) = _timed(lambda: train_model(cfg, device=dev, progress=False), dev)
    if args.dtype == "float64":
        model = model.double()
    test = load_dataset(args.dataset, "test")
    kw = dict(model_name=args.model, dataset_name=args.dataset, methods=args.method, keeps=keeps,
              attacks=args.attacks, eps=args.eps, n=n, batch_size=args.batch_size, device=dev, progress=False)
    print(f"device: {device_name(dev)}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    state = "cached" if info.get("cached") else f"trained in {t_train:.1f}s"
    print(f"model: {args.model} on {args.dataset} ({state}, "
          f"test acc {info.get('test_acc', float('nan')):.4f}), {args.dtype}")
    print(f"sweep: {args.method}, {len(keeps)} keep ratios {keeps[0]}..{keeps[-1]}, clean + {args.attacks} "
          f"at eps {args.eps}, n={n}, batch {args.batch_size}")

    from prunerob.engine.stacked import batchable

    can_batch = batchable(model)
    # warm-up (imports, kernels, allocator) on a tiny sweep of each path
    warm = {**kw, "keeps": keeps[:2], "n": min(n, args.batch_size)}
    if can_batch:
        run_sweep(model, test, batched="yes", **warm)
    if not args.skip_loop or not can_batch:
        run_sweep(model, test, batched="no", **warm)

    t_b = t_l = None
    if can_batch:
        t_b, c_b, fast = _timed(lambda: run_sweep(model, test, batched="yes", **kw), dev)
        print(f"batched (stacked MLP):   {t_b:8.2f} s wall, {c_b:8.2f} s CPU")
    else:
        print(f"batched: not available for {args.model} (only plain Linear/ReLU MLPs); timing the loop only")
    if not args.skip_loop or not can_batch:
        t_l, c_l, loop = _timed(lambda: run_sweep(model, test, batched="no", **kw), dev)
        print(f"loop (torchattacks):     {t_l:8.2f} s wall, {c_l:8.2f} s CPU")
    if t_b is not None and t_l is not None:
        key = ["method", "keep_ratio", "attack", "eps"]
        m = fast.merge(loop, on=key, suffixes=("_b", "_l"))
        d_clean = (m.clean_acc_b - m.clean_acc_l).abs().max()
        d_adv = (m.adv_acc_b - m.adv_acc_l).abs().max()
        print(f"speed-up loop/batched:   {t_l / t_b:8.2f}x wall, {c_l / c_b:.2f}x CPU time"
              + ("  (CPU time is the fairer number on a shared machine)" if dev.type == "cpu" else ""))
        print(f"max |clean_acc diff| = {d_clean:.6f}, max |adv_acc diff| = {d_adv:.6f} "
              f"(in examples: {int(round(d_adv * n))} of {n})")
        for (a, e), g in m.groupby(["attack", "eps"]):
            diff = (g.adv_acc_b - g.adv_acc_l).abs().max()
            print(f"  {a} eps={format_eps(e)}: max |adv diff| {diff:.6f}; "
                  f"adv acc at keep 1: {g[g.keep_ratio == 1.0].adv_acc_l.iloc[0]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
