"""Learning curve of the Fig. 16 one-layer transformer (the risk_vs_keep page's model): test accuracy
after every epoch on all 60,000 MNIST images, with ``train_transformer``'s recipe (d 64, 4 heads, patch
7, Adam 1e-3, batch 128; the loop of ``prunerob.core.fit.fit``), seed 0.

    python benchmarks/transformer_curve.py --threads 1 --epochs 20

Prints one line per epoch: test accuracy on the 10,000 test images and the epoch's seconds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prunerob.core.data import load_dataset  # noqa: E402
from prunerob.core.train import evaluate_accuracy  # noqa: E402
from prunerob.theory.transformer import OneLayerTransformer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    torch.manual_seed(args.seed)
    model = OneLayerTransformer(d=64, heads=4, num_classes=10, image_size=28, patch_size=7, in_chans=1,
                                mean=test.mean, std=test.std)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    data = train.subset(None, seed=args.seed)
    for ep in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        for xb, yb in data.batches(128, shuffle=True, generator=gen):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        print(f"epoch {ep + 1} test_acc {evaluate_accuracy(model, test):.4f} seconds {dt:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
