"""Training throughput of the NTM and the DNC on the copy task, beside nn.LSTM and pytorch-dnc.

    python -m benchmarks.memory_nets                 # eager and compiled, batch 1, 16, 64
    python -m benchmarks.memory_nets --no-compiled --batch-sizes 1 16

One training step = forward over the whole sequence + backward + RMSProp step, on copy
sequences of 8-bit vectors and length 10 (21 time steps: 10 inputs, a delimiter, 10 outputs).
Sizes: NTM with an LSTM controller of 100, one read and one write head, memory 128 x 20; DNC
with an LSTM controller of 64, memory 128 x 20, 4 read heads; ``nn.LSTM`` with about the
NTM's parameter count. Peers: the PyPI package ``dnc`` (pytorch-dnc 1.1.0, same DNC sizes),
measured when installed (``pip install --no-deps dnc==1.1.0``: its ``flann`` dependency is only
for its sparse variants, which are not imported here); for the NTM, the figures the issue
reports for a widely used PyTorch NTM on 2 CPU cores (16 sequences/s at batch 1, 83 at 16).
Rates are medians over interleaved rounds, so a noisy machine hurts every row alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import types
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.table import print_table, rate
from foundations.perf import keep_freed_memory
from memory_nets import DNC, NTM
from memory_nets.baseline import LSTMBaseline
from memory_nets.tasks import Copy, masked_bce

NTM_REFERENCE = {1: 16.0, 16: 83.0}  # sequences/s, loudinthecloud/pytorch-ntm on 2 CPU cores (issue #7)
DNC_REFERENCE = {1: 13.0, 16: 110.0}  # pytorch-dnc on 2 CPU cores (issue #7), when not installed here
MODELS = ["ntm", "dnc", "lstm", "pytorch-dnc", "ntm compiled", "dnc compiled"]


def load_pytorch_dnc() -> type | None:
    """``dnc.dnc.DNC`` from pytorch-dnc without running its package ``__init__`` (which needs flann)."""
    spec = importlib.util.find_spec("dnc")
    if spec is None or spec.submodule_search_locations is None:
        return None
    package = types.ModuleType("dnc")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("dnc", package)
    try:
        from dnc.dnc import DNC as PeerDNC  # type: ignore[import-not-found]
    except Exception as e:
        print(f"pytorch-dnc found but not importable ({e}); its rows show n/a", file=sys.stderr)
        return None
    return PeerDNC


class PeerWrapper(nn.Module):
    """pytorch-dnc behind our ``model(x) -> (logits, state)`` call (outputs cut to the target width)."""

    def __init__(self, cls: type, input_size: int, output_size: int) -> None:
        super().__init__()
        self.net = cls(input_size=input_size, hidden_size=64, rnn_type="lstm", num_layers=1, num_hidden_layers=1,
                       nr_cells=128, cell_size=20, read_heads=4, batch_first=False, gpu_id=-1)
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        y, _ = self.net(x, (None, None, None), reset_experience=True)
        return y[..., : self.output_size], None


def training_step(model: nn.Module, batch_size: int) -> Callable[[], int]:
    """A closure doing one RMSProp training step on a fresh copy batch; returns the sequences done."""
    task = Copy(bits=8, min_length=10, max_length=10)
    gen = torch.Generator().manual_seed(0)
    batches = [task.sample(batch_size, gen) for _ in range(8)]
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, momentum=0.9, alpha=0.95)
    index = [0]

    def step() -> int:
        batch = batches[index[0] % len(batches)]
        index[0] += 1
        logits, _ = model(batch.inputs)
        loss = masked_bce(logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        return batch_size

    return step


def build(name: str, peer_dnc: type | None) -> nn.Module | None:
    torch.manual_seed(0)
    task = Copy(bits=8)
    i, o = task.input_size, task.output_size
    if name.startswith("ntm"):
        model: nn.Module = NTM(i, o, controller_size=100, memory_slots=128, word_size=20)
    elif name.startswith("dnc"):
        model = DNC(i, o, controller_size=64, memory_slots=128, word_size=20, read_heads=4)
    elif name == "lstm":
        model = LSTMBaseline(i, o, hidden_size=110)  # ~ the NTM's 63k parameters
    elif name == "pytorch-dnc":
        if peer_dnc is None:
            return None
        model = PeerWrapper(peer_dnc, i, o)
    else:
        raise ValueError(name)
    if name.endswith("compiled"):
        model.compile_step()
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compiled", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS, help="rows to measure (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    peer_dnc = load_pytorch_dnc()
    names = [m for m in args.models if not (args.no_compiled and m.endswith("compiled"))]
    rates: dict[tuple[str, int], list[float]] = {}
    for b in args.batch_sizes:
        steps = {}
        for name in names:
            model = build(name, peer_dnc)
            if model is not None:
                steps[name] = training_step(model, b)
                steps[name]()  # warm-up (and compile)
        for _ in range(args.rounds):
            for name, step in steps.items():
                rates.setdefault((name, b), []).append(rate(step, args.seconds, warmup=1))
    med = {k: statistics.median(v) for k, v in rates.items()}
    get = med.get
    for b in args.batch_sizes:
        rows = []
        for ours in ("ntm", "ntm compiled"):
            if (ours, b) in med:
                rows.append((f"NTM {ours[4:] or 'eager'} vs reference NTM (issue figure)", get((ours, b)), NTM_REFERENCE.get(b)))
        for ours in ("dnc", "dnc compiled"):
            if (ours, b) in med:
                peer = get(("pytorch-dnc", b))
                label = "pytorch-dnc 1.1.0" if peer is not None else "reference pytorch-dnc (issue figure)"
                rows.append((f"DNC {ours[4:] or 'eager'} vs {label}", get((ours, b)), peer or DNC_REFERENCE.get(b)))
        for ours in ("ntm", "ntm compiled", "dnc", "dnc compiled"):
            if (ours, b) in med and ("lstm", b) in med:
                rows.append((f"{ours.upper().replace(' COMPILED', ' compiled')} vs nn.LSTM (110 units)", get((ours, b)), get(("lstm", b))))
        print_table(f"Copy task training, batch {b}, {args.threads} threads", rows, "sequences/s")


if __name__ == "__main__":
    main()
