"""Is CPU training bit-reproducible? Trains the paper's MNIST MLP briefly in fresh processes per torch
thread count and prints a hash of the weights of each run.

    python benchmarks/determinism.py            # 2 runs at 1 thread, 2 runs at 2 threads

Measured on the 2-core development CPU (2026-12-06): identical weights for the same thread count,
different weights between 1 and 2 threads (the float32 reduction order follows the thread layout).
So a model retrained in another thread layout is another model; ``prunerob store verify --against``
compares code versions in one layout for that reason.
"""
from __future__ import annotations

import subprocess
import sys

CHILD = """
import hashlib, sys, tempfile, torch
torch.set_num_threads(int(sys.argv[1]))
from prunerob.core.train import TrainConfig, train_model
cfg = TrainConfig.paper("mlp", "mnist", epochs=2, train_subset=10000, seed=0)
with tempfile.TemporaryDirectory() as d:
    m, info = train_model(cfg, cache_dir=d, progress=False, device="cpu")
h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in m.parameters())).hexdigest()[:16]
print(f"{sys.argv[1]} thread(s): weights {h}, test accuracy {info['test_acc']:.4f}")
"""


def main() -> None:
    for threads in (1, 1, 2, 2):
        out = subprocess.run([sys.executable, "-c", CHILD, str(threads)], capture_output=True, text=True,
                             check=True)
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
