"""Training-step cost of the CCT (:class:`prunerob.core.cct.CCT`, CCT-2 widths) by tokenizer depth and
image side: why Imagenette at 64 px is out of the cpu profile, and what a deeper tokenizer would buy.

A 2-conv tokenizer halves the side twice, so 64 px images give 256 tokens against CIFAR-10's 64; a
third conv layer brings them back to 64. One synthetic batch of 128 per setting, AdamW, bf16
autocast, ``channels_last``, one thread; the median of ``--steps`` steps, each setting measured
``--rounds`` times in turn (so a change in the machine's load hits every setting) and the fastest
round kept. Prints seconds per step, tokens, parameters and the ratio to CIFAR-10's setting::

    python benchmarks/cct_tokenizer.py                 # about 1 minute

The machine's other load is not controlled: the ratios are what to compare.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prunerob.core.cct import CCT, CCT_VARIANTS  # noqa: E402

#: (label, image side, tokenizer conv layers); the first is the cpu profile's CIFAR-10 setting
SETTINGS = (("CIFAR-10 32 px, 2 convs (cct_2_3x2)", 32, 2), ("Imagenette 64 px, 2 convs", 64, 2),
            ("Imagenette 64 px, 3 convs", 64, 3))


def step_seconds(side: int, convs: int, steps: int, batch: int = 128) -> tuple[float, int, int]:
    """Median seconds of a bf16 training step, the model's tokens and parameters."""
    layers, _, kernel, dim, heads, ratio = CCT_VARIANTS["cct_2_3x2"]
    torch.manual_seed(0)
    m = CCT((3, side, side), 10, layers=layers, conv_layers=convs, kernel=kernel, embed_dim=dim, heads=heads,
            mlp_ratio=ratio).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.rand(batch, 3, side, side).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), m.n_tokens, sum(p.numel() for p in m.parameters())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per round (default 8)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over the settings (default 2)")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.rounds < 1:
        ap.error(f"--steps and --rounds must be at least 1, got {a.steps} and {a.rounds}")
    torch.set_num_threads(1)
    best: dict[str, tuple[float, int, int]] = {}
    for _ in range(a.rounds):
        for label, side, convs in SETTINGS:
            r = step_seconds(side, convs, a.steps)
            if label not in best or r[0] < best[label][0]:
                best[label] = r
    base = best[SETTINGS[0][0]][0]
    for label, (t, tokens, params) in best.items():
        print(f"{label:40s} {tokens:4d} tokens {params / 1e6:.2f}M params  {t * 1000:6.0f} ms/step  "
              f"ratio {t / base:.2f}")


if __name__ == "__main__":
    main()
