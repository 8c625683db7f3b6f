"""Length generalisation from a learning-suite results file: a metric measured at several lengths
(``eval/bit_error/len_<L>``), drawn against the length, one line per task (model).

    python -m benchmarks.length_figure results/learning/memory.csv --env copy \
        --chance 4 --out docs/figures/learning/copy-lengths.png

Each point is the IQM over the task's seeds with its 95% percentile-bootstrap interval (the
learning benchmark's :func:`benchmarks.learning.iqm_interval`, so the figure and the README's
table are the same numbers); ``--out`` also gets a ``.md`` table beside the picture. Tasks are
labelled by their name without the env suffix (``ntm-copy`` -> ``ntm``).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks.learning import iqm_interval

#: (task, length) -> (IQM, low, high, seeds)
Points = dict[tuple[str, int], tuple[float, float, float, int]]


def read_points(path: Path, env: str, prefix: str) -> Points:
    """IQM and interval over seeds of every ``<prefix><length>`` metric of the tasks on ``env``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    scores: dict[tuple[str, int], list[float]] = defaultdict(list)
    seen: set[tuple[str, int, str]] = set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            match = pattern.match(row["metric"])
            if row["env"] == env and match:
                key = (row["task"], int(match.group(1)))
                if (*key, row["seed"]) in seen:  # a seed twice would weigh it double
                    raise ValueError(f"{path} holds {row['task']} {row['metric']} seed {row['seed']} twice")
                seen.add((*key, row["seed"]))
                scores[key].append(float(row["score"]))
    if not scores:
        raise ValueError(f"{path} has no metric {prefix}<length> of a task on env {env!r}")
    rng = np.random.default_rng(0)  # the intervals are a fixed function of the file
    return {key: (*iqm_interval(values, rng=rng), len(values)) for key, values in sorted(scores.items())}


def _label(task: str, env: str) -> str:
    return task.removesuffix(f"-{env}")


def draw(points: Points, env: str, ylabel: str, out: Path, chance: float | None = None) -> Path:
    """One line per task: IQM against length, the interval as a band; ``chance`` per unit of
    length (copy of 8-bit vectors: 4 bits) as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    if chance is not None:
        lengths = sorted({n for _, n in points})
        ax.plot(lengths, [chance * n for n in lengths], "k--", linewidth=1, label="chance")
    for task in dict.fromkeys(t for t, _ in points):
        lengths = sorted(length for t, length in points if t == task)
        iqm, low, high = (np.array([points[task, n][i] for n in lengths]) for i in range(3))
        line, = ax.plot(lengths, iqm, marker="o", label=_label(task, env))
        ax.fill_between(lengths, low, high, alpha=0.2, color=line.get_color())
    ax.set_xlabel("sequence length")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{env}: IQM over seeds, 95% bootstrap interval")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def table(points: Points, env: str) -> str:
    """Markdown: one row per task, one column per length, ``IQM [low, high]``."""
    lengths = sorted({n for _, n in points})
    lines = ["| model | seeds | " + " | ".join(f"length {n}" for n in lengths) + " |",
             "|---|---:|" + "---:|" * len(lengths)]
    for task in dict.fromkeys(t for t, _ in points):
        cells = []
        for n in lengths:
            value = points.get((task, n))
            cells.append("" if value is None else f"{value[0]:.3g} [{value[1]:.3g}, {value[2]:.3g}]")
        seeds = max(points[task, n][3] for n in lengths if (task, n) in points)
        lines.append(f"| {_label(task, env)} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a learning-suite results file (results/learning/<suite>.csv)")
    parser.add_argument("--env", default="copy", help="the tasks' env (memory_task: the task)")
    parser.add_argument("--prefix", default="eval/bit_error/len_", help="the metric, up to the length")
    parser.add_argument("--ylabel", default="bits wrong per sequence")
    parser.add_argument("--chance", type=float, default=None,
                        help="chance level per unit of length, drawn dashed (copy of 8-bit vectors: 4)")
    parser.add_argument("--out", required=True, help="the picture (.png); the table goes beside it (.md)")
    args = parser.parse_args(argv)
    path = Path(args.results)
    if not path.is_file():
        parser.exit(2, f"error: results file {path} does not exist\n")
    try:
        points = read_points(path, args.env, args.prefix)
    except KeyError as e:
        parser.exit(2, f"error: {path} is not a learning-suite results file (it has no column {e})\n")
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    out = draw(points, args.env, args.ylabel, Path(args.out), args.chance)
    out.with_suffix(".md").write_text(table(points, args.env))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
