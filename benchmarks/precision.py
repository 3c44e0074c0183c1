"""fp32 against bf16 training (and NCHW against channels_last), measured in one run on this machine.

    python benchmarks/precision.py --quick       # < 5 min on the 2-core CPU; last line: cnn4 train speedup
    python benchmarks/precision.py               # every architecture (vit_tiny at 224 px too), more rounds
    python benchmarks/precision.py --numerics    # the accuracy checks -> book/experiments/results/precision/

**Speed** (default and ``--quick``). First the thread layout for long runs: one job with 2 threads
against 2 concurrent jobs with 1 thread each (steps per second of the bf16 CNN4 training step, all
jobs together); everything after it is timed per job in the better layout (``--threads N`` skips
this and times with N threads). For each architecture, a training step (batch 128, the App. I
optimizer, real training batches) runs in several variants. The baseline, ``fp32 before``, is
the path of ``train_model`` before :mod:`prunerob.core.precision` existed (NCHW, torch's default
for-loop Adam); ``fp32`` is the path for ``precision="fp32"`` now (the same arithmetic with the
foreach Adam step), ``bf16`` the path for ``precision="bf16"`` (autocast, fused Adam,
channels_last where listed, explicit attention on the CPU), and the variants in between show
what each choice contributes. Every speedup is against ``fp32 before``. The variants run in
interleaved rounds and every ratio is the median over rounds of the paired ratio (baseline round
time / variant round time), so a change of the machine's load during the run affects both sides
of each ratio alike. Each step is split into forward (with the
loss), backward and optimizer time; the optimizer implementations (for-loop, foreach, fused) are
also timed alone on each model's parameters. Then one attack pass (FGSM and PGD-5, eps 4/255, on
128 images with ``--quick``, else 256) in fp32 and in bf16 (``AttackSpec(precision="bf16")``),
each also in channels_last for CNN4.
The machine is shared: the load average is printed at the start and the end.

**Numerics** (``--numerics``, hours of CPU; run it under ``nice``). Clean accuracy on the full test
split of CNN4 on CIFAR-10 (the lossy JPEG copy, all 50,000 training images, ``--cnn-epochs``,
default 4: the ``cpu`` profile's :data:`prunerob.runner.profiles.CNN_CPU_EPOCHS`) and of the MNIST MLP
(``--mlp-epochs``, default 30: App. I), fp32 and bf16, seeds 0, 1, 2, through ``train_model`` (the
checkpoint cache: a cached model is not retrained) -> ``training.csv``. Then FGSM and PGD-5 on the
2,000 evaluation examples of the sweeps (``select_examples(test, 2000, subset_seed=0)``) of the
seed-0 fp32 models, at keep 1.0 and 0.5 (magnitude pruning), with the attack run in fp32 and in
bf16 (``AttackSpec(precision="bf16")``: input gradients under bf16 autocast), each also in
channels_last for CNN4, every adversarial example judged by the fp32 model -> ``attacks.csv``
with the paired difference in examples and percentage points.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from prunerob.config import device_name  # noqa: E402
from prunerob.core.data import load_dataset  # noqa: E402
from prunerob.core.models import build_model  # noqa: E402
from prunerob.core.precision import CHANNELS_LAST_ARCHS, get_precision  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "book" / "experiments" / "results" / "precision"
BATCH = 128
#: (arch, data set, optimizer of App. I) timed by the speed benchmark; vit_tiny only without --quick
ARCHS = [("mlp", "mnist", "adam"), ("mlp_cifar", "cifar10", "adam"), ("cnn4", "cifar10", "adam"),
         ("vit_small", "cifar10", "adamw"), ("vit_tiny", "cifar10", "adamw")]


# ------------------------------------------------------------------------------------------------
# speed
# ------------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """One way to run a training step. ``recipe``: the name of a :mod:`prunerob.core.precision` entry
    whose ``prepare``, optimizer arguments, input layout and autocast are used exactly as
    ``train_model`` uses them; otherwise the flags say what to do: autocast or not, the memory
    layout, the attention kernel, the optimizer implementation (``default``: torch's, the for-loop
    on the CPU; ``foreach``; ``fused``)."""

    name: str
    recipe: str | None = None
    bf16: bool = False
    channels_last: bool = False
    math_attention: bool = False
    optimizer: str = "default"
    times: list[tuple[float, float, float]] = field(default_factory=list)


def _variants(arch: str, quick: bool) -> list[Variant]:
    """The baseline first: fp32 as ``train_model`` ran it before :mod:`prunerob.core.precision` (NCHW,
    torch's default for-loop Adam on the CPU); then ``fp32`` and, last, ``bf16`` as it runs now;
    between them what each choice of the bf16 recipe contributes (fewer with ``quick``, except
    for CNN4)."""
    conv, attn = arch in CHANNELS_LAST_ARCHS, arch.startswith("vit")
    out = [Variant("fp32 before", optimizer="loop"), Variant("fp32", recipe="fp32")]
    if conv:
        out.append(Variant("fp32 channels_last", channels_last=True))
    out.append(Variant("bf16 autocast only", bf16=True))
    if conv or (attn and not quick):
        out.append(Variant("bf16 + fused Adam", bf16=True, optimizer="fused"))
    if attn and not quick:  # the recipe's attention, but channels_last as for CNN4
        out.append(Variant("bf16 + channels_last", bf16=True, channels_last=True, math_attention=True,
                           optimizer="fused"))
    out.append(Variant("bf16", recipe="bf16"))
    return out


def _optimizer(kind: str, opt_name: str, params) -> torch.optim.Optimizer:
    cls = torch.optim.Adam if opt_name == "adam" else torch.optim.AdamW
    kw = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True},
          "default": {}}[kind]
    return cls(params, lr=1e-3, weight_decay=0.0 if opt_name == "adam" else 0.05, **kw)


class _Runner:
    """A model and optimizer set up as ``variant`` says; ``step(x, y)`` returns (fwd, bwd, opt) s."""

    def __init__(self, arch: str, info, opt_name: str, v: Variant):
        cpu = torch.device("cpu")
        torch.manual_seed(0)
        self.model = build_model(arch, info).train()
        if v.recipe is not None:  # exactly what train_model does for this precision
            prec = get_precision(v.recipe)
            prec.prepare(self.model, arch, cpu)
            cls = torch.optim.Adam if opt_name == "adam" else torch.optim.AdamW
            self.opt = cls(self.model.parameters(), lr=1e-3, weight_decay=0.0 if opt_name == "adam" else 0.05,
                           **prec.optimizer_kwargs())
            self.layout, self.autocast = prec.input_layout(arch), lambda: prec.autocast(cpu)
        else:
            if v.channels_last:
                self.model.to(memory_format=torch.channels_last)
            if v.math_attention:
                for m in self.model.modules():
                    if isinstance(getattr(m, "fused_attn", None), bool):
                        m.fused_attn = False
            self.opt = _optimizer(v.optimizer, opt_name, self.model.parameters())
            self.layout = ((lambda x: x.contiguous(memory_format=torch.channels_last)) if v.channels_last
                           else (lambda x: x))
            self.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=v.bf16)
        self.v = v

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        with self.autocast():
            logits = self.model(self.layout(x))
        loss = F.cross_entropy(logits.float(), y)
        t1 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2


def _batches(dataset: str, n: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], object, int]:
    """``n`` shuffled training batches as float tensors, the data info and the training-set size."""
    data = load_dataset(dataset, "train")
    gen = torch.Generator().manual_seed(0)
    out = []
    for xb, yb in data.batches(BATCH, shuffle=True, generator=gen):
        out.append((xb, yb))
        if len(out) == n:
            break
    return out, data.info, len(data)


def time_training(arch: str, dataset: str, opt_name: str, rounds: int, steps: int, quick: bool) -> dict:
    """Interleaved rounds of ``steps`` training steps per variant; medians and paired ratios."""
    batches, info, n_train = _batches(dataset, max(steps, 4))
    variants = _variants(arch, quick)
    runners = [_Runner(arch, info, opt_name, v) for v in variants]
    for r in runners:  # warm-up: kernels, allocator, oneDNN primitive caches
        for xb, yb in batches[:1 if arch == "vit_tiny" else 2]:
            r.step(xb, yb)
    for i in range(rounds):
        for r in runners:
            t = [r.step(*batches[(i * steps + s) % len(batches)]) for s in range(steps)]
            r.v.times.append(tuple(sum(p[j] for p in t) / steps for j in range(3)))
    base = [sum(t) for t in variants[0].times]
    rows = []
    for v in variants:
        tot = [sum(t) for t in v.times]
        rows.append(dict(variant=v.name, fwd=statistics.median(t[0] for t in v.times),
                         bwd=statistics.median(t[1] for t in v.times),
                         opt=statistics.median(t[2] for t in v.times), step=statistics.median(tot),
                         speedup=statistics.median(b / t for b, t in zip(base, tot, strict=True))))
    return dict(arch=arch, dataset=dataset, rows=rows, steps_per_epoch=math.ceil(n_train / BATCH),
                n_train=n_train, model=runners[0].model)


def time_optimizers(model: nn.Module, opt_name: str, rounds: int, steps: int) -> dict[str, float]:
    """Seconds per ``optimizer.step()`` over ``model``'s fp32 parameters with fixed gradients."""
    params = [nn.Parameter(p.detach().clone()) for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    opts = {k: _optimizer(k, opt_name, params) for k in ("loop", "foreach", "fused")}
    for o in opts.values():
        o.step()
    times: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(rounds):
        for k, o in opts.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                o.step()
            times[k].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def _attack_variants(model: nn.Module, conv: bool) -> dict[str, tuple[nn.Module, dict]]:
    """How one model can be attacked: ``name -> (model, make_attack keyword arguments)``: fp32 (today),
    bf16 (``AttackSpec(precision="bf16")``, the option), each also in channels_last for conv models."""
    import copy

    out: dict[str, tuple[nn.Module, dict]] = {"fp32": (model.eval(), {})}
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last).eval() if conv else None
    if cl is not None:
        out["fp32 channels_last"] = (cl, {})
    out["bf16"] = (model, {"precision": "bf16"})
    if cl is not None:
        out["bf16 channels_last"] = (cl, {"precision": "bf16"})
    return out


def time_attacks(arch: str, dataset: str, rounds: int, n: int) -> list[dict]:
    """Seconds of FGSM + PGD-5 (eps 4/255, App. I settings) on ``n`` test images per variant."""
    from prunerob.core.attacks import attack_batches, make_attack

    test = load_dataset(dataset, "test")
    x, y = test.x[:n].float() / 255, test.y[:n]
    torch.manual_seed(0)
    variants = _attack_variants(build_model(arch, test.info), arch in CHANNELS_LAST_ARCHS)
    times: dict[str, list[float]] = {k: [] for k in variants}

    def one(m: nn.Module, kw: dict) -> None:
        for name in ("fgsm", "pgd"):
            attack_batches(make_attack(name, m, **kw), m, (x, y), batch_size=n, seed=0, return_adv=False)

    for m, kw in variants.values():
        one(m, kw)
    for _ in range(rounds):
        for k, (m, kw) in variants.items():
            t0 = time.perf_counter()
            one(m, kw)
            times[k].append(time.perf_counter() - t0)
    base = times["fp32"]
    return [dict(variant=k, seconds=statistics.median(v),
                 speedup=statistics.median(b / t for b, t in zip(base, v, strict=True)))
            for k, v in times.items()]


def _layout_worker(threads: int, steps: int, barrier, queue) -> None:
    torch.set_num_threads(threads)
    batches, info, _ = _batches("cifar10", 4)
    r = _Runner("cnn4", info, "adam", Variant("bf16", recipe="bf16"))
    for xb, yb in batches[:2]:
        r.step(xb, yb)
    barrier.wait()
    t0 = time.perf_counter()
    for s in range(steps):
        r.step(*batches[s % len(batches)])
    queue.put(time.perf_counter() - t0)


def time_thread_layouts(steps: int, rounds: int) -> dict[str, float]:
    """Throughput (steps/s) of the bf16 CNN4 training step: 1 job x 2 threads against 2 jobs x 1
    thread (two processes started together; their steps over the slower one's wall time)."""
    ctx = mp.get_context("spawn")
    out: dict[str, list[float]] = {"1 job x 2 threads": [], "2 jobs x 1 thread": []}
    for _ in range(rounds):
        for label, jobs, threads in (("1 job x 2 threads", 1, 2), ("2 jobs x 1 thread", 2, 1)):
            barrier, queue = ctx.Barrier(jobs), ctx.Queue()
            n = steps * 2 // jobs
            procs = [ctx.Process(target=_layout_worker, args=(threads, n, barrier, queue))
                     for _ in range(jobs)]
            for p in procs:
                p.start()
            walls = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            out[label].append(jobs * n / max(walls))
    return {k: statistics.median(v) for k, v in out.items()}


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "n/a"


def speed(quick: bool, threads: int | None) -> int:
    """The timing part; ``threads=None``: measure the thread layout first and time in the best one."""
    t_start = time.perf_counter()
    rounds, steps = (3, 2) if quick else (8, 5)
    cpu = platform.processor() or platform.machine()
    print(f"# benchmarks/precision.py{' --quick' if quick else ''}: {cpu}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}")
    print(f"# load average at start: {_load()} (the machine is shared with other jobs; every ratio "
          f"is a median of paired ratios from interleaved rounds of this one run)")
    if threads is None and (os.cpu_count() or 1) >= 2:
        lay = time_thread_layouts(steps=6 if quick else 16, rounds=1 if quick else 3)
        best = max(lay, key=lay.get)
        threads = 2 if best.startswith("1 job") else 1
        print("thread layout, bf16 CNN4 training steps per second of all jobs together: "
              + "; ".join(f"{k} {v:.2f}" for k, v in lay.items()) + f" -> best: {best}")
    if threads:
        torch.set_num_threads(threads)
    print(f"# timed below on {device_name(torch.device('cpu'))} per job; training step: batch {BATCH}, "
          f"real training batches, {rounds} rounds x {steps} steps per variant; ms per step; "
          "epoch = all training images")
    results = {}
    for arch, dataset, opt_name in ARCHS:
        if quick and arch == "vit_tiny":
            continue
        r_, s_ = (2, 1) if arch == "vit_tiny" else (rounds, steps)
        res = time_training(arch, dataset, opt_name, r_, s_, quick or arch == "vit_tiny")
        results[arch] = res
        print(f"\n{arch} on {dataset} ({opt_name}, {res['steps_per_epoch']} steps per epoch of "
              f"{res['n_train']:,} images)")
        print(f"  {'variant':<22}{'forward':>9}{'backward':>10}{'optimizer':>11}{'step':>9}"
              f"{'epoch min':>11}{'speedup':>9}")
        for row in res["rows"]:
            print(f"  {row['variant']:<22}{1e3 * row['fwd']:9.1f}{1e3 * row['bwd']:10.1f}"
                  f"{1e3 * row['opt']:11.1f}{1e3 * row['step']:9.1f}"
                  f"{row['step'] * res['steps_per_epoch'] / 60:11.2f}{row['speedup']:9.2f}")
        opt = time_optimizers(res["model"], opt_name, r_, s_)
        best_opt = min(opt, key=opt.get)
        print("  optimizer step alone: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in opt.items())
              + f" (fastest: {best_opt})")
    n_att = 128 if quick else 256
    print(f"\nattack pass: FGSM + PGD-5 (eps 4/255) on {n_att} test images, seconds; speedup vs fp32")
    for arch, dataset in (("cnn4", "cifar10"), ("mlp", "mnist")):
        rows = time_attacks(arch, dataset, rounds, n=n_att)
        print(f"  {arch}: " + "; ".join(f"{r['variant']} {r['seconds']:.2f} s ({r['speedup']:.2f}x)"
                                        for r in rows))
    print(f"\n# load average at end: {_load()}; wall time {time.perf_counter() - t_start:.0f} s")
    for arch, res in results.items():
        if arch != "cnn4":
            print(f"{arch} train speedup {res['rows'][-1]['speedup']:.2f}")
    print(f"cnn4 train speedup {results['cnn4']['rows'][-1]['speedup']:.2f}")
    return 0


# ------------------------------------------------------------------------------------------------
# numerics
# ------------------------------------------------------------------------------------------------
def _write(df, path: Path) -> None:
    from prunerob.config import atomic_write_text

    atomic_write_text(path, df.to_csv(index=False))


def numerics_training(cnn_epochs: int, mlp_epochs: int, seeds: list[int], out: Path) -> list[dict]:
    """Train (or load) every (model, precision, seed) and write ``training.csv`` after each."""
    import pandas as pd

    from prunerob.core.train import TrainConfig, train_model

    rows: list[dict] = []
    plan = [("mlp", "mnist", mlp_epochs), ("cnn4", "cifar10", cnn_epochs)]
    for arch, dataset, epochs in plan:
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                cfg = TrainConfig.paper(arch, dataset, epochs=epochs, seed=seed, precision=precision)
                t0 = time.perf_counter()
                _, info = train_model(cfg, progress=False)
                rows.append(dict(model=arch, dataset=dataset, epochs=epochs, seed=seed, precision=precision,
                                 test_acc=info["test_acc"], n_test=info.get("n_test"),
                                 n_train=info.get("n_train"),
                                 train_seconds=round(float(sum(info.get("epoch_times_s") or [])), 1),
                                 device=info.get("device"), hash=cfg.hash(),
                                 data_source=info.get("data_source"),
                                 torch_version=info.get("torch_version")))
                took = "cached" if info.get("cached") else f"{time.perf_counter() - t0:.0f} s"
                print(f"{arch}/{dataset} seed {seed} {precision}: test acc {info['test_acc']:.4f} ({took})",
                      flush=True)
                _write(pd.DataFrame(rows), out / "training.csv")
    return rows


def numerics_attacks(cnn_epochs: int, mlp_epochs: int, n: int, keeps: list[float], out: Path) -> None:
    """FGSM / PGD-5 run in fp32 and in bf16 (``AttackSpec(precision="bf16")``), each also in
    channels_last for CNN4, every adversarial example judged by the fp32 model -> ``attacks.csv``."""
    import pandas as pd

    from prunerob.core.attacks import attack_batches, make_attack
    from prunerob.core.pruning import apply_masks, make_masks
    from prunerob.core.subsets import select_examples
    from prunerob.core.train import TrainConfig, train_model

    rows = []
    for arch, dataset, epochs in (("cnn4", "cifar10", cnn_epochs), ("mlp", "mnist", mlp_epochs)):
        cfg = TrainConfig.paper(arch, dataset, epochs=epochs, seed=0)
        model, info = train_model(cfg, progress=False)
        test = load_dataset(dataset, "test")
        x, y, desc = select_examples(test, n, 0)
        x = x.float() / 255
        for keep in keeps:
            base = apply_masks(model, make_masks("magnitude", model, keep, seed=0)).eval()
            with torch.no_grad():
                clean = int(sum(int((base(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum())
                                for i in range(0, n, 500)))
            for attack in ("fgsm", "pgd"):
                judged = {}
                for k, (m, kw) in _attack_variants(base, arch in CHANNELS_LAST_ARCHS).items():
                    x_adv, _, _ = attack_batches(make_attack(attack, m, **kw), m, (x, y), batch_size=500,
                                                 seed=0)
                    with torch.no_grad():  # every adversarial example is judged by the fp32 model
                        judged[k] = torch.cat([base(x_adv[i:i + 500]).argmax(1) == y[i:i + 500]
                                               for i in range(0, n, 500)])
                    ref, got = judged["fp32"], judged[k]
                    diff = int(got.sum()) - int(ref.sum())  # paired difference in examples
                    rows.append(dict(
                        model=arch, dataset=dataset, epochs=epochs, seed=0, keep=keep, attack=attack,
                        eps="4/255", attack_run_in=k, n=n, clean_correct=clean, adv_correct=int(got.sum()),
                        adv_acc=int(got.sum()) / n, diff_examples=diff, diff_pp=100 * diff / n,
                        only_fp32_correct=int((ref & ~got).sum()),
                        only_variant_correct=int((got & ~ref).sum()),
                        examples=desc, model_test_acc=info["test_acc"], model_hash=cfg.hash(),
                        device=device_name(torch.device("cpu"))))
                    r = rows[-1]
                    print(f"{arch} keep {keep} {attack} {k}: adv acc {r['adv_acc']:.4f} "
                          f"({diff:+d} examples = {r['diff_pp']:+.2f} pp; {r['only_fp32_correct']} / "
                          f"{r['only_variant_correct']} examples only fp32 / only this run correct)",
                          flush=True)
                    _write(pd.DataFrame(rows), out / "attacks.csv")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, no vit_tiny: under 5 minutes")
    ap.add_argument("--numerics", action="store_true", help="the accuracy checks instead of the timing")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: timing in the thread layout measured best; "
                         "--numerics: 1)")
    ap.add_argument("--cnn-epochs", type=int, default=4, help="--numerics: CNN4 epochs on all 50k images")
    ap.add_argument("--mlp-epochs", type=int, default=30, help="--numerics: MNIST MLP epochs")
    ap.add_argument("--seeds", default="0,1,2", help="--numerics: training seeds")
    ap.add_argument("--n-attack", type=int, default=2000, help="--numerics: attacked examples")
    ap.add_argument("--skip-training", action="store_true", help="--numerics: attacks only")
    ap.add_argument("--out", default=str(RESULTS), help="--numerics: folder of the CSV files")
    args = ap.parse_args(argv)
    if not args.numerics:
        return speed(args.quick, args.threads)
    torch.set_num_threads(args.threads or 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.skip_training:
        numerics_training(args.cnn_epochs, args.mlp_epochs, seeds, out)
    numerics_attacks(args.cnn_epochs, args.mlp_epochs, args.n_attack, [1.0, 0.5], out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
