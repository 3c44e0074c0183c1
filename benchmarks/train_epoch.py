"""Seconds per training epoch of an architecture with its TrainConfig.paper recipe (per 50,000
images, and per epoch of the data set's own training split), timed over a few batches of the
training step that ``train_model`` runs (augmentation, schedule, AdamW, label smoothing, and the
precision's autocast and layout) and extrapolated.

    python benchmarks/train_epoch.py --arch cct_2_3x2 --threads 1 2          # steps only, ~1 min
    python benchmarks/train_epoch.py --arch cct_2_3x2 --threads 2 --steps 40
    python benchmarks/train_epoch.py --dataset imagenette --precision bf16 --threads 1

Prints one line per thread count and, with several, the ratio to the first. The machine's other
load is not controlled: run it on an idle machine, or say what else was running.
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
import torch.nn.functional as F  # noqa: E402

from prunerob.core import recipe  # noqa: E402
from prunerob.core.data import load_dataset  # noqa: E402
from prunerob.core.models import build_model  # noqa: E402
from prunerob.core.precision import get_precision, precision_names  # noqa: E402
from prunerob.core.train import TrainConfig  # noqa: E402


def step_seconds(cfg: TrainConfig, steps: int, warmup: int = 3) -> tuple[float, int]:
    """Mean seconds of one training step of ``cfg`` (after ``warmup`` steps), and the size of the
    data set's training split."""
    data = load_dataset(cfg.dataset, "train", image_size=cfg.image_size)
    torch.manual_seed(cfg.seed)
    prec = get_precision(cfg.precision)
    dev = torch.device("cpu")
    model = prec.prepare(build_model(cfg.arch, data.info, **cfg.model_kwargs()).train(), cfg.arch, dev)
    layout = prec.input_layout(cfg.arch)
    opt = (torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam)(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **prec.optimizer_kwargs())
    aug = recipe.AUGMENTS.get(cfg.augment)
    gen = torch.Generator().manual_seed(0)
    batches = data.batches(cfg.batch_size, shuffle=True, generator=gen)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        xb, yb = next(batches)
        with prec.autocast(dev):
            out = model(layout(aug(xb, gen)))
        loss = F.cross_entropy(out.float(), yb, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps, len(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="cct_2_3x2")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=30, help="timed batches of 128 per thread count")
    ap.add_argument("--precision", default="fp32", choices=precision_names())
    args = ap.parse_args(argv)
    cfg = TrainConfig.paper(args.arch, args.dataset, precision=args.precision)
    print(f"{args.arch}/{args.dataset}: batch {cfg.batch_size}, {cfg.optimizer}, augment {cfg.augment}, "
          f"schedule {cfg.schedule}, {args.precision}, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    first = None
    for t in args.threads:
        torch.set_num_threads(t)
        s, n = step_seconds(cfg, args.steps)
        epoch = s * -(-50000 // cfg.batch_size)
        first = first or epoch
        print(f"threads {t}: {s * 1000:.0f} ms/step, {epoch / 60:.2f} min per 50k-image epoch, "
              f"{s * -(-n // cfg.batch_size) / 60:.2f} min per epoch of its {n:,} training images "
              f"(ratio to threads {args.threads[0]}: {first / epoch:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
