"""The NTM paper's copy task at full size: how many training sequences until it is solved.

    python -m benchmarks.ntm_copy              # about 15-30 minutes on 2 CPU cores (compiled step)

Setting (the defaults of ``experiments.memory_task``): LSTM controller 100, memory 128 x 20,
one read and one write head, 8-bit vectors, lengths 1-20, batch 1, RMSProp (lr 1e-4,
momentum 0.9), gradient clip 10, seed 1. Evaluation every 1,000 sequences on 256 fresh
sequences. The CI test (``tests/experiments/test_memory_task.py``) runs a shorter setting.
Peer: loudinthecloud/pytorch-ntm reports convergence after about 17k-30k sequences (batch 1).
"""

from __future__ import annotations

import argparse
import tempfile

from benchmarks.table import print_table
from experiments.memory_task import MemoryTaskArgs, train
from foundations.perf import keep_freed_memory

PEER_SEQUENCES = 17_000  # the low end of the reported 17k-30k


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-sequences", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args(argv)
    keep_freed_memory()
    with tempfile.TemporaryDirectory() as runs:
        run = MemoryTaskArgs(num_sequences=args.num_sequences, eval_every=1000, eval_lengths=(20, 40),
                             images_every=args.num_sequences, checkpoint_every=args.num_sequences,
                             compile=not args.no_compile, seed=args.seed, runs_dir=runs, progress=False)
        history = train(run)["history"]
    solved = next((seen for seen, ev in history if ev["eval/bit_error"] < 0.5), None)
    long40 = next((seen for seen, ev in history if ev["eval/bit_error/len_40"] < 2.0), None)
    print("\n| sequences | eval/bit_error (1-20) | len 20 | len 40 |\n|---:|---:|---:|---:|")
    for seen, ev in history:
        print(f"| {seen:,} | {ev['eval/bit_error']:.2f} | {ev['eval/bit_error/len_20']:.2f} | "
              f"{ev['eval/bit_error/len_40']:.2f} |")
    print_table("NTM copy: training sequences until solved (fewer is better)", [
        ("sequences until < 0.5 bits wrong per sequence (lengths 1-20)", solved, PEER_SEQUENCES),
        ("sequences until < 2 bits wrong at length 40", long40, None),
    ], "sequences")


if __name__ == "__main__":
    main()
