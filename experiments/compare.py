"""Compare agents across seeds and environments from their TensorBoard logs.

    python -m experiments.compare runs/ --out report/
    python -m experiments.compare runs/sweep-a runs/sweep-b --tag eval/episodic_return --last 5
    python -m experiments.compare runs/ --group-by agent.double --group-by agent.n_step
    python -m experiments.compare runs/ --tag eval/episodic_return --summary results/cartpole.csv
    python -m experiments.compare results/cartpole.csv --tag eval/episodic_return --out docs/figures/cartpole
    python -m experiments.compare runs/memory-agents --tag eval/episodic_return --group-by agent.core \
        --baseline agent.core=none --last 1
    python -m experiments.compare runs/copy --tag eval/bit_error/len_40 --group-by model --score best   # lowest is best

Runs are found under the given directories (any folder with a TensorBoard event file) and read
with TensorBoard's own event reader. They are grouped by (env, label): the label is the
experiment name plus the ``--group-by`` configuration values (from each run's ``config.json``);
runs of one group differ only by seed. The report folder gets:

- ``curves-<env>.png``: per group, the mean curve over seeds with a 95% bootstrap band, on a
  common step grid (each run interpolated linearly between its logged points); none for an env
  whose runs have one point each;
- ``scores.md`` / ``scores.csv``: final score per group (per seed: the mean of its last
  ``--last`` logged values), its 95% bootstrap interval, and the human-normalised score for
  Atari games (Random/Human table in ``experiments/atari_scores.py``);
- ``aggregates.md`` / ``aggregates.csv`` and ``aggregates.png``: IQM, median, mean and
  optimality gap over envs with 95% stratified-bootstrap intervals (Agarwal et al. 2021), on
  human-normalised scores for Atari and min-max normalised scores otherwise (``--normalize``);
- ``profile.png``: performance profiles (fraction of runs above each normalised score);
- with ``--baseline GROUP``, ``differences.md`` / ``differences.csv``: per env, every other
  group's mean score minus the baseline's, with a 95% bootstrap interval (the seeds of each
  group resampled independently) and whether it excludes zero.

``--score best`` scores a run by its best logged value instead of its last ones (POPGym's MMER,
with ``--tag eval/episodic_return``). For tags where lower is better (bits wrong, error rates,
losses: ``--lower-is-better``, by default read from the tag's name) the best value is the lowest
and min-max normalisation maps the lowest score to 1, so aggregates and performance profiles
still read "higher is better".

``--summary FILE.csv`` also writes the compared points (one row per run and step: run, env,
experiment, seed, group, tag, step, value): small enough to commit, where event files are not.
A ``.csv`` given in place of a run directory is read back as those runs, so a report and its
pictures can be redrawn from committed summaries alone.

Point estimates come from ``rliable.metrics`` when it is installed, else from
``experiments.rl_stats`` (the same definitions; tests check they agree).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import tyro
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.cores import FLAT_FIELDS
from experiments import rl_stats
from experiments.atari_scores import SCORES, game_name
from experiments.common import parse_and_run

try:  # the reference implementation of the aggregate metrics, when installed
    from rliable import metrics as _rliable_metrics
except ImportError:  # not installed: our own implementation of the same definitions
    _rliable_metrics = None


@dataclasses.dataclass(frozen=True)
class CompareArgs:
    """Options of the comparison tool."""

    run_dirs: tyro.conf.Positional[tuple[str, ...]]
    """run directories, folders holding them, or summaries (.csv) written by --summary."""
    tag: str = "charts/episodic_return"
    """scalar to compare (e.g. eval/episodic_return)."""
    out: str = "report"
    """folder for the PNGs and tables."""
    last: int = 10
    """final score of a run: mean of its last this-many logged values."""
    score: Literal["last", "best"] = "last"
    """a run's score: last = the mean of its last --last values; best = its best logged value
    (the highest, or the lowest with --lower-is-better: POPGym's MMER is the best mean evaluation
    return over training)."""
    lower_is_better: bool = False
    """the tag is an error (bits wrong, error rate, loss): best is lowest, and min-max
    normalisation maps the lowest score to 1, so aggregates and profiles read "higher is better"
    as for returns. Without this flag or --higher-is-better, decided from the tag's name (error,
    loss, perplexity, bits_per_char: lower is better)."""
    higher_is_better: bool = False
    """the tag's higher values are better, whatever its name says."""
    baseline: str | None = None
    """a group (its label, or a word of it such as agent.core=none) to which every other group
    is compared per env: difference of mean scores with a 95% bootstrap interval over seeds."""
    points: int = 100
    """points of the common step grid of the curves."""
    each_seed: bool = False
    """draw each run's curve as a thin line beside its group's mean and band (what one seed does,
    not only the average)."""
    group_by: tuple[str, ...] = ()
    """configuration keys (as in config.json, e.g. agent.double) that label groups besides the experiment."""
    normalize: Literal["auto", "human", "minmax", "none"] = "auto"
    """scores aggregated over envs: auto = human-normalised for Atari games, min-max otherwise."""
    reps: int = 2000
    """bootstrap replicates."""
    seed: int = 0
    summary: str | None = None
    """also write the compared points to this CSV (run, env, experiment, seed, group, tag, step, value)."""


@dataclasses.dataclass
class Run:
    path: Path
    env_id: str
    experiment: str
    seed: int
    config: dict[str, Any]
    steps: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    values: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    label: str = ""
    wall_seconds: float | None = None
    """time the run spent writing its logs: per event file, last event's time minus the first's,
    summed (a resumed run's gap between its attempts does not count)."""

    def set_points(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Keep ``steps`` / ``values`` (float64), ordered by step (ties keep their order)."""
        order = np.argsort(steps, kind="stable")
        self.steps, self.values = steps[order], values[order]


_NAME = re.compile(r"^(?P<env>.+?)__(?P<exp>.+?)__(?P<seed>-?\d+)__\d+(-\d+)?$")


def find_runs(paths: Sequence[str]) -> list[Run]:
    """Every folder holding a TensorBoard event file under ``paths`` (each path itself included)."""
    folders: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise ValueError(f"no such directory: {p}")
        folders.update(f.parent for f in p.rglob("events.out.tfevents.*"))
    if not folders:
        raise ValueError(f"no TensorBoard event files under {', '.join(paths)}")
    runs = []
    for folder in sorted(folders):
        meta: dict[str, Any] = {}
        if (folder / "config.json").is_file():
            meta = json.loads((folder / "config.json").read_text())
        match = _NAME.match(folder.name)
        env = meta.get("env_id") or (match["env"] if match else folder.name)
        exp = meta.get("experiment") or (match["exp"] if match else "run")
        seed = meta.get("seed", int(match["seed"]) if match else 0)
        runs.append(Run(folder, env, exp, int(seed), meta.get("config", {})))
    return runs


def whole_records_length(raw: bytes) -> int:
    """Bytes of ``raw`` (an event file's contents) that make whole TFRecord frames (8-byte length,
    4-byte length checksum, data, 4-byte data checksum): a writer may be mid-record."""
    at = 0
    while len(raw) - at >= 16:
        length = int.from_bytes(raw[at:at + 8], "little")
        if length > len(raw) - at - 16:
            break
        at += 16 + length
    return at


def event_file_problem(path: Path) -> str | None:
    """What is wrong with an event file's framing, or ``None``: TensorBoard's reader skips a
    truncated tail or garbage silently, which would shorten a curve without a word. Checks the
    frames (:func:`whole_records_length`) and parses the first record as an ``Event`` (the
    file-version record)."""
    from tensorboard.compat.proto.event_pb2 import Event

    try:
        raw = path.read_bytes()
    except OSError as e:
        return f"unreadable ({e.strerror})"
    whole = whole_records_length(raw)
    if whole < len(raw):
        rest = len(raw) - whole
        if rest < 12:
            return f"truncated: {rest} stray byte(s) at offset {whole}"
        length = int.from_bytes(raw[whole:whole + 8], "little")
        return f"truncated or not an event file: a record of {length:,} bytes at offset {whole} runs past the end"
    if raw:
        length = int.from_bytes(raw[:8], "little")
        try:
            if not Event.FromString(raw[12:12 + length]).file_version:
                return "not an event file: its first record has no file version"
        except Exception:  # protobuf's DecodeError and friends
            return "not an event file: its first record does not parse"
    return None


def read_scalars(run: Run, tag: str) -> set[str]:
    """Load ``tag`` into ``run.steps`` / ``run.values``; returns every scalar tag the run has.

    A resumed run's new event file logs again the steps after its checkpoint; the accumulator
    keeps the newer points (purging the superseded ones, as wanted) and would warn of a
    "TensorFlow restart" for each resume, so its logger is quieted while it reads."""
    events = EventAccumulator(str(run.path), size_guidance={"scalars": 0})
    tb_logger = logging.getLogger("tensorboard")
    level = tb_logger.level
    tb_logger.setLevel(logging.ERROR)
    try:
        events.Reload()
    finally:
        tb_logger.setLevel(level)
    tags = set(events.Tags().get("scalars", []))
    if tag in tags:
        points = events.Scalars(tag)
        run.set_points(np.array([p.step for p in points], dtype=np.float64),
                       np.array([p.value for p in points], dtype=np.float64))
        run.wall_seconds = _wall_seconds(run.path)
    return tags


def _wall_seconds(folder: Path) -> float:
    total = 0.0
    for f in sorted(folder.glob("events.out.tfevents.*")):
        times = [e.wall_time for e in event_file_loader.EventFileLoader(str(f)).Load()]
        if times:
            total += max(times) - min(times)
    return total


SUMMARY_FIELDS = ("run", "env_id", "experiment", "seed", "group", "tag", "step", "value", "wall_seconds")


def write_summary(path: Path, runs: Sequence[Run], tag: str) -> Path:
    """The points of ``tag`` of every run (with its group label), one CSV row each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SUMMARY_FIELDS)
        for r in runs:
            for step, value in zip(r.steps, r.values, strict=True):
                wall = "" if r.wall_seconds is None else f"{r.wall_seconds:.1f}"
                writer.writerow([r.path.name, r.env_id, r.experiment, r.seed, r.label, tag, int(step), repr(float(value)),
                                 wall])
    return path


def read_summary(path: Path, tag: str) -> list[Run]:
    """The runs of a summary written by :func:`write_summary`, with their points of ``tag``
    and the group labels they were written with."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) not in (SUMMARY_FIELDS, SUMMARY_FIELDS[:-1]):
            raise ValueError(f"{path} is not a compare summary (columns {', '.join(SUMMARY_FIELDS)})")
        rows = list(reader)
    tags = sorted({row["tag"] for row in rows})
    if tag not in tags:
        raise ValueError(f"{path} holds {', '.join(tags) or 'no'} points, not {tag!r}; give --tag {tags[0] if tags else tag}")
    runs: dict[str, Run] = {}
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row["tag"] != tag:
            continue
        key = row["run"]
        if key not in runs:
            wall = row.get("wall_seconds") or None  # summaries written before the column: unknown
            runs[key] = Run(path / key, row["env_id"], row["experiment"], int(row["seed"]), {}, label=row["group"],
                            wall_seconds=None if wall is None else float(wall))
        points[key].append((float(row["step"]), float(row["value"])))
    for key, run in runs.items():
        run.set_points(*np.array(points[key], dtype=np.float64).T)
    return list(runs.values())


#: config.json keys that were renamed, earlier name -> today's: the agents' core options, flat
#: fields (``agent.core``, ``agent.core_size``, ...) until they were nested in one spec
#: (``agent.core.kind``, ``agent.core.size``, ...). ``--group-by`` takes either name for runs
#: of either layout, so old and new runs fall into the same groups.
RENAMED_KEYS: dict[str, str] = {f"agent.{flat}": f"agent.core.{field}" for flat, field in FLAT_FIELDS.items()}


def config_value(config: dict[str, Any], key: str) -> Any:
    """``config[key]`` (a run's flattened ``config.json``), also when ``key`` or the run uses
    the other name of a renamed key (:data:`RENAMED_KEYS`); ``KeyError`` when neither is there."""
    if key in config:
        return config[key]
    others = [new for old, new in RENAMED_KEYS.items() if old == key] + [old for old, new in RENAMED_KEYS.items()
                                                                           if new == key]
    for other in others:
        if other in config:
            return config[other]
    raise KeyError(key)


def _label(run: Run, keys: Sequence[str]) -> str:
    parts = [run.experiment]
    for key in keys:
        try:
            value = config_value(run.config, key)
        except KeyError:
            raise ValueError(f"--group-by {key!r}: not in {run.path / 'config.json'}; "
                             f"keys: {sorted(run.config)[:30]}") from None
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _rliable_or_own(name: str) -> Any:
    if _rliable_metrics is None:
        return rl_stats.AGGREGATES[name]
    return {"IQM": _rliable_metrics.aggregate_iqm, "median": _rliable_metrics.aggregate_median,
            "mean": _rliable_metrics.aggregate_mean, "optimality gap": _rliable_metrics.aggregate_optimality_gap}[name]  # fmt: skip


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def _write_table(path_md: Path, path_csv: Path, header: list[str], rows: list[list[Any]], note: str) -> None:
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    path_md.write_text(note + "\n\n" + "\n".join(lines) + "\n")
    with open(path_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


LOWER_IS_BETTER = re.compile(r"(error|loss|perplexity|bits_per_char)", re.IGNORECASE)
"""Tags whose lower values are better (``eval/bit_error``, ``eval/error/qa1``, ``train/loss``)."""


def lower_is_better(args: CompareArgs) -> bool:
    """Whether the compared tag's lower values are better: ``--lower-is-better`` or, unset, its name."""
    if args.lower_is_better and args.higher_is_better:
        raise ValueError("--lower-is-better and --higher-is-better contradict each other; give one (or neither: the "
                         "tag's name decides)")
    if args.lower_is_better or args.higher_is_better:
        return args.lower_is_better
    return bool(LOWER_IS_BETTER.search(args.tag))


def run(args: CompareArgs) -> dict[str, Any]:
    """Build the report; returns the per-group scores, the aggregates and the written files."""
    if args.last < 1 or args.points < 2 or args.reps < 1:
        raise ValueError(f"--last >= 1, --points >= 2 and --reps >= 1 are needed, got {args.last}, {args.points}, {args.reps}")
    lower = lower_is_better(args)
    if lower and args.normalize == "human":
        raise ValueError(f"--normalize human applies to game scores (higher is better), not to {args.tag!r}, where "
                         "lower is better; use --normalize minmax")
    summaries = [Path(p) for p in args.run_dirs if p.endswith(".csv")]
    folders = [p for p in args.run_dirs if not p.endswith(".csv")]
    if summaries and args.group_by:
        raise ValueError("--group-by does not apply to summaries (.csv): their groups were fixed when they were "
                         "written; give the run directories instead")
    runs = find_runs(folders) if folders else []
    for r in runs:
        for f in sorted(r.path.glob("events.out.tfevents.*")):
            problem = event_file_problem(f)
            if problem is not None:
                print(f"warning: {f}: {problem}; its readable events are used", file=sys.stderr)
    all_tags: set[str] = set()
    for r in runs:
        all_tags |= read_scalars(r, args.tag)
    for r in runs:
        if r.values.size:
            r.label = _label(r, args.group_by)
    for summary in summaries:
        if not summary.is_file():
            raise ValueError(f"no such summary file: {summary}")
        runs += read_summary(summary, args.tag)
    with_tag = [r for r in runs if r.values.size]
    if not with_tag:
        raise ValueError(f"no run has the tag {args.tag!r}; tags present: {sorted(all_tags)}")
    missing = [r for r in runs if not r.values.size]
    if missing:
        names = ", ".join(r.path.name for r in missing[:5]) + (" ..." if len(missing) > 5 else "")
        print(f"warning: {len(missing)} run(s) without {args.tag!r} left out: {names}", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in with_tag:
        groups[(r.env_id, r.label)].append(r)
    envs = sorted({env for env, _ in groups})
    labels = sorted({label for _, label in groups})
    if args.baseline is not None:
        _baseline_label(args.baseline, labels)  # a wrong name stops before anything is written
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    # Curves: one PNG per env, mean and 95% bootstrap band per group; none where every run has a
    # single point (e.g. Atari 100k's one evaluation after training), which would draw nothing.
    for env in envs:
        if all(m.steps.size < 2 for (e, _), members in groups.items() if e == env for m in members):
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label in labels:
            members = groups.get((env, label))
            if not members:
                continue
            end = min(float(m.steps[-1]) for m in members)
            start = max(float(m.steps[0]) for m in members)
            grid = np.linspace(min(start, end), end, args.points)
            curves = np.stack([np.interp(grid, m.steps, m.values) for m in members])
            lo, hi = rl_stats.bootstrap_mean_ci(curves, args.reps, rng=rng)
            line = ax.plot(grid, curves.mean(0), label=f"{label} ({len(members)} seeds)")[0]
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.25)
            if args.each_seed:  # on the mean's grid, so a seed is drawn as densely as the mean
                for curve in curves:
                    ax.plot(grid, curve, color=line.get_color(), alpha=0.45, linewidth=0.6)
        ax.set(title=env, xlabel="step", ylabel=args.tag)
        ax.legend(fontsize=8)
        fig.tight_layout()
        files.append(out / f"curves-{_safe(env)}.png")
        fig.savefig(files[-1], dpi=100)
        plt.close(fig)

    # Final scores per group.
    score_name, score_note = (("best", "Best (lowest)" if lower else "Best (highest)") if args.score == "best"
                              else ("final", f"Final (mean of the last {args.last} values)"))
    if lower:
        score_note += "; lower is better"
    finals: dict[tuple[str, str], np.ndarray] = {}
    score_rows = []
    for (env, label), members in sorted(groups.items()):
        members.sort(key=lambda m: m.seed)
        best = (lambda v: v.min()) if lower else (lambda v: v.max())
        finals[(env, label)] = np.array([best(m.values) if args.score == "best" else m.values[-args.last :].mean()
                                         for m in members])
        scores = finals[(env, label)]
        lo, hi = rl_stats.bootstrap_mean_ci(scores, args.reps, rng=rng)
        walls = [m.wall_seconds for m in members]
        wall = f"{np.median(walls) / 60:.1f}" if None not in walls else ""
        row: list[Any] = [env, label, len(scores), float(scores.mean()), float(lo), float(hi)]
        game = game_name(env)
        if game is not None:
            random_score, human = SCORES[game]
            row.append(float((scores.mean() - random_score) / (human - random_score)))
        else:
            row.append("")
        score_rows.append([*row, wall])
    _write_table(out / "scores.md", out / "scores.csv",
                 ["env", "group", "seeds", f"mean {score_name} score", "95% CI low", "95% CI high", "human-normalised",
                  "median wall time (min)"],
                 score_rows, f"{score_note} `{args.tag}` per run, 95% bootstrap CI over seeds.")  # fmt: skip
    files += [out / "scores.md", out / "scores.csv"]
    differences = _differences(args, envs, labels, finals, rng)
    if differences is not None:
        _write_table(out / "differences.md", out / "differences.csv",
                     ["env", "group", "baseline", "difference of means", "95% CI low", "95% CI high", "excludes 0"],
                     differences, f"{score_note} `{args.tag}`: each group minus the baseline, per env; 95% bootstrap "
                     f"CI over seeds ({args.reps} replicates, each group's seeds resampled on their own).")  # fmt: skip
        files += [out / "differences.md", out / "differences.csv"]

    # Aggregates over envs, per label, on normalised scores.
    aggregates: dict[str, dict[str, tuple[float, float, float]]] = {}
    matrices: dict[str, np.ndarray] = {}
    bounds = {env: (min(float(v.min()) for (e, _), v in finals.items() if e == env),
                    max(float(v.max()) for (e, _), v in finals.items() if e == env)) for env in envs}  # fmt: skip

    atari = [env for env in envs if game_name(env) is not None]
    if args.normalize == "auto" and atari and len(atari) < len(envs):
        others = [env for env in envs if game_name(env) is None]
        raise ValueError(f"--normalize auto would aggregate human-normalised Atari scores ({', '.join(atari)}) with "
                         f"min-max-normalised ones ({', '.join(others)}) in one number; compare them in separate "
                         "reports, or put every env on one scale with --normalize minmax")

    def normalise(env: str, scores: np.ndarray) -> np.ndarray:
        game = game_name(env)
        mode = args.normalize
        if mode == "human" or (mode == "auto" and game is not None):
            if game is None:
                raise ValueError(f"--normalize human: {env} is not one of the 57 Atari games")
            random_score, human = SCORES[game]
            return (scores - random_score) / (human - random_score)
        if mode in ("minmax", "auto"):
            low, high = bounds[env]
            if not high > low:
                return np.zeros_like(scores)
            # 1 is the best score seen on the env, whichever way is better
            return (high - scores) / (high - low) if lower else (scores - low) / (high - low)
        return scores

    for label in labels:
        # the aggregate needs one run per (seed, env): use the seeds every env of the group has
        seed_sets = {env: [m.seed for m in groups[(env, label)]] for env in envs if (env, label) in groups}
        common = sorted(set.intersection(*(set(v) for v in seed_sets.values())))
        if not common:
            raise ValueError(f"group {label!r}: no seed was run on every env ({seed_sets}); the aggregates need the "
                             "same seeds on each env")
        if any(sorted(v) != common for v in seed_sets.values()):
            detail = "; ".join(f"{env}: {' '.join(map(str, sorted(v)))}" for env, v in seed_sets.items())
            print(f"warning: group {label!r} has unequal seeds across envs ({detail}); its aggregates use seeds "
                  f"{' '.join(map(str, common))}", file=sys.stderr)
        columns = []
        for env in seed_sets:
            by_seed = dict(zip([m.seed for m in groups[(env, label)]], finals[(env, label)], strict=True))
            columns.append(normalise(env, np.array([by_seed[seed] for seed in common])))
        matrix = np.stack(columns, axis=1)  # [runs, tasks]
        matrices[label] = matrix
        aggregates[label] = {}
        for name in rl_stats.AGGREGATES:
            point = float(_rliable_or_own(name)(matrix))
            lo, hi = rl_stats.stratified_bootstrap_ci(matrix, rl_stats.AGGREGATES[name], args.reps, rng=rng)
            aggregates[label][name] = (point, lo, hi)
    agg_rows = [[label, name, *values] for label in labels for name, values in aggregates[label].items()]
    source = "rliable.metrics" if _rliable_metrics is not None else "experiments.rl_stats"
    _write_table(out / "aggregates.md", out / "aggregates.csv", ["group", "metric", "estimate", "95% CI low", "95% CI high"],
                 agg_rows, f"Aggregates over {len(envs)} env(s) of normalised final scores (normalize={args.normalize}); "
                 f"point estimates: {source}; intervals: stratified bootstrap, {args.reps} replicates.")  # fmt: skip
    files += [out / "aggregates.md", out / "aggregates.csv"]

    fig, axes = plt.subplots(1, len(rl_stats.AGGREGATES), figsize=(4 * len(rl_stats.AGGREGATES), 0.6 * len(labels) + 1.5))
    for ax, name in zip(axes, rl_stats.AGGREGATES, strict=True):
        for i, label in enumerate(labels):
            point, lo, hi = aggregates[label][name]
            ax.barh(i, hi - lo, left=lo, height=0.6, alpha=0.6)
            ax.plot([point, point], [i - 0.3, i + 0.3], color="black")
        ax.set_yticks(range(len(labels)), labels if ax is axes[0] else [""] * len(labels))
        ax.set_title(name)
    fig.tight_layout()
    files.append(out / "aggregates.png")
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    top = max(float(m.max()) for m in matrices.values())
    taus = np.linspace(min(0.0, min(float(m.min()) for m in matrices.values())), max(top, 1e-9), 101)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, matrix in matrices.items():
        profile = rl_stats.performance_profile(matrix, taus)
        idx = rng.integers(0, matrix.shape[0], size=(min(args.reps, 500), *matrix.shape))
        boot = np.stack([rl_stats.performance_profile(np.take_along_axis(matrix, i, axis=0), taus) for i in idx])
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        line = ax.plot(taus, profile, label=label)[0]
        ax.fill_between(taus, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="normalised score tau", ylabel="fraction of runs with score > tau", title="performance profile")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(out / "profile.png")
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    if args.summary is not None:
        files.append(write_summary(Path(args.summary), with_tag, args.tag))
    return {"groups": {k: [m.path for m in v] for k, v in groups.items()}, "finals": finals, "scores": score_rows,
            "aggregates": aggregates, "matrices": matrices, "files": files, "metrics_source": source,
            "differences": differences}  # fmt: skip


def _baseline_label(wanted: str, labels: Sequence[str]) -> str:
    """The group ``--baseline`` names: a label, or the one label that has it as a word."""
    if wanted in labels:
        return wanted
    matches = [label for label in labels if wanted in label.split(" ")]
    if len(matches) != 1:
        raise ValueError(f"--baseline {wanted!r} names {'no' if not matches else 'more than one'} group; groups: "
                         f"{'; '.join(labels)} (--group-by labels groups by configuration values)")
    return matches[0]


def _differences(args: CompareArgs, envs: Sequence[str], labels: Sequence[str],
                 finals: dict[tuple[str, str], np.ndarray], rng: np.random.Generator) -> list[list[Any]] | None:
    """Rows of the ``--baseline`` table, or None without one."""
    if args.baseline is None:
        return None
    base = _baseline_label(args.baseline, labels)
    rows: list[list[Any]] = []
    for env in envs:
        if (env, base) not in finals:
            print(f"warning: the baseline {base!r} has no run on {env}; that env has no differences", file=sys.stderr)
            continue
        for label in labels:
            if label == base or (env, label) not in finals:
                continue
            a, b = finals[(env, label)], finals[(env, base)]
            lo, hi = rl_stats.bootstrap_difference_ci(a, b, args.reps, rng=rng)
            rows.append([env, label, base, float(a.mean() - b.mean()), lo, hi, "yes" if lo > 0 or hi < 0 else "no"])
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(CompareArgs, run, argv, __doc__)
    print((Path(r["files"][0]).parent / "scores.md").read_text())
    print((Path(r["files"][0]).parent / "aggregates.md").read_text())
    if r["differences"] is not None:
        print((Path(r["files"][0]).parent / "differences.md").read_text())
    print("wrote: " + ", ".join(str(f) for f in r["files"]))
    return r


if __name__ == "__main__":
    main()
