"""Per-task bAbI test errors of finished ``experiments.babi`` runs, set side by side by model.

    python -m experiments.babi_report results/babi/joint-qa1-qa2 --out docs/figures/babi/joint-qa1-qa2
    python -m experiments.babi_report runs/babi --group-by model controller_layer_norm --out report

Reads every run folder under the paths given that holds ``test_errors.csv`` (written when a run
finishes) beside its ``config.json``. Runs are grouped by configuration keys (default: ``model``);
a comparison is only made at one budget on one task set, so runs that differ in ``tasks`` or
``num_stories`` are refused rather than pooled. Per group and task: the mean test error over seeds
with its 95% percentile-bootstrap interval (``experiments.rl_stats.bootstrap_mean_ci``), the
seeds' values, the mean error over the tasks and the failed tasks (error above 5%, the DNC
paper's criterion) per seed; and, where two groups are given with ``--difference A B``, the
interval of the difference of their mean errors. Written to ``--out``: ``errors.md`` / ``.csv``
and ``errors.png`` (bars per task and the mean, intervals as whiskers).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments import rl_stats
from experiments.babi import FAILED


@dataclass
class BabiRun:
    """One finished run: its folder, configuration, seed and per-task test errors."""

    path: Path
    config: dict
    seed: int
    errors: dict[int, float]  # task -> test error

    def label(self, keys: Sequence[str]) -> str:
        return " ".join(str(self.config.get(k)) if len(keys) == 1 else f"{k}={self.config.get(k)}" for k in keys)


def find_runs(paths: Sequence[str]) -> list[BabiRun]:
    """Every finished run (``test_errors.csv`` and ``config.json``) under ``paths``."""
    runs = []
    for root in paths:
        for table in sorted(Path(root).rglob("test_errors.csv")):
            meta = json.loads((table.parent / "config.json").read_text())
            with open(table, newline="") as f:
                errors = {int(r["task"]): float(r["test_error"]) for r in csv.DictReader(f) if r["task"].isdigit()}
            runs.append(BabiRun(table.parent, meta["config"], int(meta["config"]["seed"]), errors))
    return runs


def check_comparable(runs: Sequence[BabiRun]) -> None:
    """One task set and one budget across runs, or a ValueError naming the difference."""
    for key in ("tasks", "num_stories"):
        values = sorted({str(r.config.get(key)) for r in runs})
        if len(values) > 1:
            raise ValueError(f"the runs differ in {key} ({', '.join(values)}): compare runs of one task set and "
                             f"budget (give their folders only)")


def summarise(runs: Sequence[BabiRun], keys: Sequence[str]) -> dict[str, dict]:
    """Per group: seeds, per task (mean, low, high, values), mean error and failed tasks per seed."""
    groups: dict[str, list[BabiRun]] = {}
    for run in sorted(runs, key=lambda r: (r.label(keys), r.seed)):
        members = groups.setdefault(run.label(keys), [])
        twin = next((m for m in members if m.seed == run.seed), None)
        if twin is not None:  # the same seed twice would weigh it double
            raise ValueError(f"two runs of {run.label(keys)} with seed {run.seed} ({twin.path}, {run.path}): "
                             f"give one of them, or --group-by a key that tells them apart")
        members.append(run)
    summary = {}
    for label, members in groups.items():
        tasks = sorted(members[0].errors)
        matrix = np.array([[r.errors[t] for t in tasks] for r in members])  # [seeds, tasks]
        per_seed_mean = matrix.mean(axis=1)
        low, high = rl_stats.bootstrap_mean_ci(np.column_stack([matrix, per_seed_mean]))
        summary[label] = {
            "seeds": [r.seed for r in members],
            "tasks": {t: (float(matrix[:, i].mean()), float(low[i]), float(high[i]), matrix[:, i].tolist())
                      for i, t in enumerate(tasks)},
            "mean": (float(per_seed_mean.mean()), float(low[-1]), float(high[-1]), per_seed_mean.tolist()),
            "failed": [int((row > FAILED).sum()) for row in matrix],
        }
    return summary


def _cell(value: tuple[float, float, float, list[float]]) -> str:
    """``mean [low, high] (per seed)``; no interval from one seed (a bootstrap of one value is not one)."""
    mean, low, high, values = value
    seeds = " / ".join(f"{v:.3f}" for v in values)
    return f"{mean:.3f} ({seeds})" if len(values) < 2 else f"{mean:.3f} [{low:.3f}, {high:.3f}] ({seeds})"


def write(summary: dict[str, dict], out: Path, differences: Sequence[tuple[str, str]] = ()) -> Path:
    """``errors.md`` / ``errors.csv`` / ``errors.png`` under ``out``; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    tasks = sorted({t for g in summary.values() for t in g["tasks"]})
    lines = ["| model | seeds | " + " | ".join(f"qa{t}" for t in tasks) + " | mean | failed tasks per seed |",
             "|---|---:|" + "---|" * (len(tasks) + 2)]
    rows = [["group", "seeds", "task", "mean_error", "low", "high", "per_seed"]]
    for label, g in summary.items():
        cells = [_cell(g["tasks"][t]) if t in g["tasks"] else "" for t in tasks]
        lines.append(f"| {label} | {len(g['seeds'])} | " + " | ".join(cells) + f" | {_cell(g['mean'])} | "
                     + " / ".join(map(str, g["failed"])) + " |")
        for t, (mean, low, high, values) in [*g["tasks"].items(), ("mean", g["mean"])]:
            rows.append([label, " ".join(map(str, g["seeds"])), t, f"{mean:.4f}", f"{low:.4f}", f"{high:.4f}",
                         " ".join(f"{v:.4f}" for v in values)])
    note = ["", "Test error (fraction of the 1,000 test questions per task with a wrong answer word): mean over "
            "seeds [95% bootstrap interval, from two seeds or more] (per seed)."]
    for a, b in differences:
        diff = summary[a]["mean"][0] - summary[b]["mean"][0]
        if min(len(summary[a]["seeds"]), len(summary[b]["seeds"])) < 2:
            note.append(f"Mean error, {a} minus {b}: {diff:+.3f} (no interval: a group has one seed).")
            continue
        low, high = rl_stats.bootstrap_difference_ci(np.array(summary[a]["mean"][3]), np.array(summary[b]["mean"][3]))
        note.append(f"Mean error, {a} minus {b}: {diff:+.3f} [{low:+.3f}, {high:+.3f}].")
    markdown = out / "errors.md"
    markdown.write_text("\n".join(lines + note) + "\n")
    with open(out / "errors.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    _draw(summary, tasks, out / "errors.png")
    return markdown


def _draw(summary: dict[str, dict], tasks: Sequence[int], path: Path) -> None:
    columns = [f"qa{t}" for t in tasks] + ["mean"]
    width = 0.8 / max(1, len(summary))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(columns) * max(1, len(summary)) / 2, 3.8))
    for i, (label, g) in enumerate(summary.items()):
        values = [g["tasks"].get(t) for t in tasks] + [g["mean"]]
        x = np.arange(len(columns)) + (i - (len(summary) - 1) / 2) * width
        means = np.array([np.nan if v is None else v[0] for v in values])
        err = np.array([[0, 0] if v is None or len(v[3]) < 2 else [v[0] - v[1], v[2] - v[0]] for v in values]).T
        ax.bar(x, means, width, yerr=err, capsize=3, label=f"{label} ({len(g['seeds'])} seed{'s' * (len(g['seeds']) > 1)})")
    ax.axhline(FAILED, color="k", linestyle="--", linewidth=1, label="5% (failed above)")
    ax.set_xticks(np.arange(len(columns)), columns)
    ax.set_ylabel("test error")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="folders holding finished experiments.babi runs")
    parser.add_argument("--group-by", nargs="+", default=["model"], help="config.json keys that label a group")
    parser.add_argument("--difference", nargs=2, action="append", default=[], metavar=("A", "B"),
                        help="also the interval of group A's mean error minus group B's (repeatable)")
    parser.add_argument("--out", required=True, help="folder for errors.md / .csv / .png")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).is_dir()]
    if missing:
        parser.exit(2, f"error: {missing[0]} is not a folder\n")
    runs = find_runs(args.paths)
    if not runs:
        parser.exit(2, f"error: no finished bAbI run (test_errors.csv beside config.json) under {' '.join(args.paths)}\n")
    unknown = [k for k in args.group_by if k not in runs[0].config]
    if unknown:
        parser.exit(2, f"error: --group-by {unknown[0]} is not a key of the runs' configuration "
                       f"(e.g. {', '.join(sorted(runs[0].config)[:6])}, ...)\n")
    try:
        check_comparable(runs)
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    try:
        summary = summarise(runs, args.group_by)
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    for pair in args.difference:
        absent = [g for g in pair if g not in summary]
        if absent:
            parser.exit(2, f"error: --difference {absent[0]} is not a group (groups: {', '.join(summary)})\n")
    markdown = write(summary, Path(args.out), [tuple(p) for p in args.difference])
    print(markdown.read_text(), end="")
    return markdown


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
