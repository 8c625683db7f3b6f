"""Fitting a decision tree: ``foundations.trees`` against scikit-learn's compiled CART.

    python -m benchmarks.trees [--samples 100000] [--features 20] [--depth 10] [--rounds 3] [--threads 1]

Both fit a Gini classification tree of depth ``--depth`` to the same generated data
(``make_classification``, two classes, continuous features); rounds interleave the two and the
table gives the median fits per second (so "ratio" is our speed over theirs: 0.2x means five
times slower). scikit-learn's splitter is Cython; ours sorts every feature of a node with
``torch.sort`` and scores all thresholds from cumulative class weights at once.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.table import missing, print_table
from foundations.trees import DecisionTreeClassifier


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    absent = missing("sklearn", "scikit-learn")
    if absent is None:
        from sklearn.datasets import make_classification
        from sklearn.tree import DecisionTreeClassifier as Reference

        x, y = make_classification(args.samples, args.features, n_informative=args.features // 2, random_state=0)
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(args.samples, args.features, generator=g).numpy()
        y = (x[:, : args.features // 2].sum(1) > 0).astype("int64")
    ours_s: list[float] = []
    theirs_s: list[float] = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        tree = DecisionTreeClassifier(max_depth=args.depth).fit(x, y)
        ours_s.append(time.perf_counter() - start)
        if absent is None:
            start = time.perf_counter()
            Reference(max_depth=args.depth, random_state=0).fit(x, y)
            theirs_s.append(time.perf_counter() - start)
    ours = 1 / statistics.median(ours_s)
    theirs = 1 / statistics.median(theirs_s) if theirs_s else None
    notes = [f"median seconds per fit: ours {statistics.median(ours_s):.2f}"
             + (f", scikit-learn {statistics.median(theirs_s):.2f}" if theirs_s else ""),
             f"{tree.node_count} nodes, {args.threads} thread(s), {args.rounds} interleaved rounds"]
    print_table(f"Decision tree fit, {args.samples:,} x {args.features} features, depth {args.depth}",
                [("DecisionTreeClassifier.fit", ours, theirs)], "fits/s", notes,
                missing_peer=absent)


if __name__ == "__main__":
    main()
