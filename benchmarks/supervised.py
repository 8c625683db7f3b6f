"""Supervised-learning plumbing against PyTorch's own: batches and optimizer steps.

    python -m benchmarks.supervised [--seconds 3] [--device cpu|cuda]

1. Batches per second over MNIST-shaped data (60,000 x 1 x 28 x 28 uint8, batch 128, shuffled
   every pass): ``Labelled.batches`` (one permutation, one ``index_select`` per batch) against
   ``torch.utils.data.DataLoader`` over a ``TensorDataset`` (per-sample indexing and collate),
   and against DataLoader with a batch sampler (``batch_size=None``, indexing whole batches).
2. Optimizer steps per second on the MNIST CNN's parameters (about 420k in 8 tensors) with
   random gradients: each from-scratch optimizer against ``torch.optim``'s default
   implementation (``foreach`` on CUDA, the per-tensor loop on CPU) and the per-tensor loop
   (``foreach=False``), which is what ours mirrors.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from benchmarks.table import print_table, rate
from foundations import optim
from foundations.batches import Labelled
from foundations.encoders import MnistCNN


def _passes(iterable: object, batches: int) -> Callable[[], int]:
    it = iter(iterable)

    def step() -> int:
        nonlocal it
        done = 0
        for _ in range(batches):
            try:
                _, y = next(it)
            except StopIteration:
                it = iter(iterable)
                _, y = next(it)
            done += len(y)
        return done

    return step


def bench_batches(seconds: float, device: torch.device) -> None:
    n = 60_000
    x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, device=device)
    y = torch.randint(0, 10, (n,), device=device)
    g = torch.Generator().manual_seed(0)
    ours = rate(_passes(Labelled(x, y).batches(128, generator=g), 50), seconds)
    ds = TensorDataset(x, y)
    per_sample = rate(_passes(DataLoader(ds, batch_size=128, shuffle=True), 50), seconds)
    sampler = BatchSampler(RandomSampler(ds), batch_size=128, drop_last=False)
    whole = rate(_passes(DataLoader(ds, sampler=sampler, batch_size=None), 50), seconds)
    print_table(
        f"Shuffled MNIST-shaped batches of 128 ({device})",
        [("vs DataLoader(TensorDataset)", ours, per_sample), ("vs DataLoader + BatchSampler", ours, whole)],
        "examples/s",
    )


def bench_optimizers(seconds: float, device: torch.device) -> None:
    model = MnistCNN().to(device)
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    cases = [
        ("SGD momentum+nesterov", optim.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True)),
        ("AdaGrad", optim.AdaGrad, torch.optim.Adagrad, dict(lr=1e-3)),
        ("RMSProp centered+momentum", optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-3, centered=True, momentum=0.9)),
        ("Adam", optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
        ("AdamW amsgrad", optim.AdamW, torch.optim.AdamW, dict(lr=1e-3, amsgrad=True)),
    ]

    def steps(opt: torch.optim.Optimizer) -> Callable[[], int]:
        def go() -> int:
            for _ in range(10):
                opt.step()
            return 10

        return go

    rows = []
    for name, ours_cls, ref_cls, kw in cases:
        ours = rate(steps(ours_cls(params, **kw)), seconds)
        default = rate(steps(ref_cls(params, **kw)), seconds)
        loop = rate(steps(ref_cls(params, **kw, foreach=False)), seconds)
        rows.append((f"{name} vs torch.optim default", ours, default))
        rows.append((f"{name} vs torch.optim foreach=False", ours, loop))
    print_table(f"Optimizer steps on MnistCNN parameters ({device})", rows, "steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    bench_batches(args.seconds, device)
    bench_optimizers(args.seconds, device)


if __name__ == "__main__":
    main()
