"""Seconds per trial that Ray Tune adds to a run: the same short runs started directly, one after
the other, and as a one-CPU sweep (one trial at a time), in interleaved rounds.

    python -m benchmarks.sweep_overhead [--runs 4] [--rounds 3] [--steps 300]

Each run is ``python -m experiments.dqn --env-id CartPole-v1 --seed S --total-steps <steps>``
with a checkpoint every 100 steps (so the trials report and store several checkpoints, as real
ones do). "direct" is the wall time of the runs as plain subprocesses, one after the other;
"sweep" is the wall time of ``experiments.sweep`` with one CPU on a new local Ray instance, for
a grid of one run and for a grid of ``--runs`` runs. The difference of the two sweeps over
``runs - 1`` is a trial's cost through Tune, the rest of the one-run sweep its fixed cost
(starting Ray and Tune, shutting down); the table gives medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.table import print_table

REPO = Path(__file__).resolve().parent.parent


def _flags(steps: int) -> list[str]:
    return ["--total-steps", str(steps), "--learning-starts", "100", "--eval-interval", "0", "--eval-episodes", "1",
            "--log-interval", "100", "--checkpoint-interval", "100"]


def direct(runs: int, steps: int, root: Path) -> float:
    start = time.perf_counter()
    for seed in range(1, runs + 1):
        subprocess.run([sys.executable, "-m", "experiments.dqn", "--env-id", "CartPole-v1", "--seed", str(seed),
                        "--runs-dir", str(root), "--no-progress", "--threads", "1", *_flags(steps)],
                       check=True, cwd=REPO, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def swept(runs: int, steps: int, root: Path) -> float:
    config = " ".join(f"{f.lstrip('-')}={v}" for f, v in zip(_flags(steps)[::2], _flags(steps)[1::2], strict=True))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "experiments.sweep", "--experiment", "dqn", "--env-ids", "CartPole-v1",
                    "--seeds", *map(str, range(1, runs + 1)), "--configs", config, "--storage", str(root / "storage"),
                    "--scratch-dir", str(root / "scratch"), "--ray-num-cpus", "1", "--quiet"],
                   check=True, cwd=REPO, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.runs < 2:
        parser.error(f"--runs must be >= 2 (the per-trial cost is a difference of grids), got {args.runs}")
    times: dict[str, list[float]] = {"direct": [], "one": [], "many": []}
    jobs = {"direct": lambda root: direct(args.runs, args.steps, root), "one": lambda root: swept(1, args.steps, root),
            "many": lambda root: swept(args.runs, args.steps, root)}
    for r in range(args.rounds):
        order = list(jobs) if r % 2 == 0 else list(reversed(jobs))
        for name in order:
            with tempfile.TemporaryDirectory() as tmp:
                times[name].append(jobs[name](Path(tmp)))
    d, one, many = (statistics.median(times[k]) for k in ("direct", "one", "many"))
    per_direct = d / args.runs
    per_trial = (many - one) / (args.runs - 1)
    fixed = one - per_trial
    print_table(f"Seconds per run: DQN CartPole runs of {args.steps} steps, one at a time "
                f"(medians of {args.rounds} interleaved rounds)",
                [("one run as a Ray Tune trial / as a plain process", per_trial, per_direct),
                 (f"a sweep of {args.runs} runs / {args.runs} plain processes", many, d)], unit="s",
                notes=[f"overhead per trial: {per_trial - per_direct:+.2f} s",
                       f"fixed cost of a sweep (start Ray and Tune, shut down): {fixed:.1f} s"])


if __name__ == "__main__":
    main()
