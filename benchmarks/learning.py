"""The learning benchmark: named suites of tasks run over seeds, scored, and set against
committed baselines.

    python -m benchmarks.learning --suite classic                       # 5 tasks x 10 seeds
    python -m benchmarks.learning --suite memory --workers 2
    python -m benchmarks.learning --suite all --quick --against results/learning/classic.csv results/learning/memory.csv
    python -m benchmarks.learning --suite classic --tasks dqn-cartpole --seeds 5
    python -m benchmarks.learning --suite classic --report-only         # score the runs already in storage

The tasks are data (``benchmarks/learning_suites.toml``: experiment, env, flags, budget, seeds,
what is scored); every one is checked (experiment, flags, preset, env) before anything runs. The
runs go through :mod:`experiments.sweep` as one Ray Tune sweep (resumable: the same command
again skips finished runs and resumes interrupted ones; a crashed run is retried, then reported
as failed with its log while the rest go on), stored under ``<runs-dir>/<suite>[-quick]``.

Written: the per-seed scores (``--results``, default ``results/learning/<suite>.csv`` for a full
suite, ``<storage>/scores.csv`` for ``--quick`` or a subset), beside them the curves
(``...-curves.csv``, the points of every scored tag: ``experiments.compare``'s summary format),
and a report folder (``<storage>/report``): ``learning.md`` / ``.csv`` (per task and metric:
seeds, mean, IQM with its 95% bootstrap interval, how many seeds reach the target, and with
``--against`` the baseline's IQM and the verdict) and, per tag, ``experiments.compare``'s curves,
scores and aggregates.

The regression rule (:func:`verdict`), per task and metric, on the IQM over seeds: on the
baseline's seeds (``--quick`` runs the baseline's first seeds), a regression is an IQM whose 95%
percentile-bootstrap interval lies wholly on the worse side of the baseline's IQM over those
seeds (a re-run of unchanged code sits exactly on it); on other seeds, where the baseline's IQM
is itself uncertain, it is a 95% interval of the difference of the two IQMs (each side's seeds
resampled on their own) that lies wholly below zero. Seed noise is not flagged (tested: under
5% of noise draws), a drop that moves most seeds is; one collapsed seed in ten is trimmed by the
IQM and is visible in the "reach target" column instead.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import shlex
import sys
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Literal

import numpy as np

SUITES_FILE = Path(__file__).with_name("learning_suites.toml")
SUITES = ("classic", "memory")
BUDGET_FLAG = {"memory_task": "num-sequences"}
"""The flag a task's budget sets, where it is not --total-steps."""
SCORE_FIELDS = ("suite", "task", "experiment", "env", "metric", "score_kind", "direction", "target", "seed",
                "score", "step", "wall_seconds", "commit", "flags", "budget")


# ----------------------------------------------------------------------------------- the suites
@dataclasses.dataclass(frozen=True)
class Metric:
    """What is scored of a run: ``tag``'s final value or its best one (POPGym's MMER); which way
    is better; optionally a target a seed "reaches" (score at least it, or at most it when lower
    is better)."""

    tag: str
    score: Literal["final", "best"] = "final"
    direction: Literal["higher", "lower"] = "higher"
    target: float | None = None

    def of(self, values: Sequence[float]) -> float:
        """The score of a run whose logged values of ``tag`` are ``values`` (in step order)."""
        if self.score == "final":
            return float(values[-1])
        return float(max(values) if self.direction == "higher" else min(values))

    def reached(self, score: float) -> bool:
        assert self.target is not None
        return score >= self.target if self.direction == "higher" else score <= self.target


@dataclasses.dataclass(frozen=True)
class Task:
    """One ``[[task]]`` of the suites file (see its header for the fields)."""

    name: str
    suite: str
    experiment: str
    env: str
    flags: str
    budget: int
    seeds: int
    metrics: tuple[Metric, ...]
    quick: int = 0

    @property
    def config(self) -> str:
        """The sweep configuration: the task's flags and its budget."""
        flag = BUDGET_FLAG.get(self.experiment, "total-steps")
        if any(t.startswith("-") for t in shlex.split(self.flags)):
            return f"{self.flags} --{flag} {self.budget}".strip()
        return f"{self.flags} {flag}={self.budget}".strip()

    def argv(self, seed: int) -> list[str]:
        """The experiment's command line for ``seed`` (without the sweep's own options)."""
        from experiments import sweep

        env_flag = sweep.ENV_FLAG.get(self.experiment, "--env-id")
        return [env_flag, self.env, "--seed", str(seed), *sweep.config_flags(self.config)]


def _field(entry: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    if name not in entry:
        if default is not None:
            return default
        raise ValueError(f"{where}: missing field {name!r}")
    value = entry[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}: {name} = {value!r} is not a {getattr(kind, '__name__', kind)}")
    return value


def load_tasks(path: Path = SUITES_FILE) -> list[Task]:
    """The tasks of the suites file, each field checked (``ValueError`` naming the task and field)."""
    from experiments import sweep

    data = tomllib.loads(Path(path).read_text())
    tasks: list[Task] = []
    for i, entry in enumerate(data.get("task", [])):
        where = f"{path}: task {entry.get('name', i)!r}"
        name = _field(entry, "name", str, where)
        suite = _field(entry, "suite", str, where)
        if suite not in SUITES:
            raise ValueError(f"{where}: suite {suite!r} is not one of {', '.join(SUITES)}")
        experiment = _field(entry, "experiment", str, where)
        if experiment not in sweep.EXPERIMENTS:
            raise ValueError(f"{where}: experiment {experiment!r} is not one of {', '.join(sweep.EXPERIMENTS)}")
        budget, seeds = _field(entry, "budget", int, where), _field(entry, "seeds", int, where)
        quick = _field(entry, "quick", int, where, default=0)
        for label, value in (("budget", budget), ("seeds", seeds)):
            if value < 1:
                raise ValueError(f"{where}: {label} must be >= 1, got {value}")
        if not 0 <= quick <= seeds:
            raise ValueError(f"{where}: quick must be between 0 and seeds ({seeds}), got {quick}")
        metrics = []
        for m in _field(entry, "metrics", list, where):
            tag = _field(m, "tag", str, where)
            score, direction = m.get("score", "final"), m.get("direction", "higher")
            if score not in ("final", "best") or direction not in ("higher", "lower"):
                raise ValueError(f"{where}: metric {tag!r}: score must be final or best and direction higher or "
                                 f"lower, got {score!r}, {direction!r}")
            target = m.get("target")
            if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
                raise ValueError(f"{where}: metric {tag!r}: target {target!r} is not a number")
            metrics.append(Metric(tag, score, direction, None if target is None else float(target)))
        if not metrics:
            raise ValueError(f"{where}: no metrics")
        tasks.append(Task(name, suite, experiment, _field(entry, "env", str, where), entry.get("flags", ""), budget,
                          seeds, tuple(metrics), quick))
    names = [t.name for t in tasks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: task names used twice: {', '.join(twice)}")
    return tasks


def check_task(task: Task) -> None:
    """Parse the task's command line with its experiment's own parser, without running it:
    ``ValueError`` naming the task when a flag, a value or a preset does not exist."""
    import importlib

    module = importlib.import_module(f"experiments.{task.experiment}")
    captured = io.StringIO()
    try:
        with redirect_stderr(captured), redirect_stdout(captured):
            if task.experiment == "memory_task":
                from experiments.common import cli

                cli(module.MemoryTaskArgs, args=task.argv(1))
            else:
                from experiments import driver

                defaults = getattr(module, "DEFAULTS", None) or module.Args()
                driver.parse_args(task.argv(1), defaults, module.ALGORITHM, "")
    except SystemExit:
        message = captured.getvalue().strip().splitlines()
        raise ValueError(f"task {task.name!r}: {message[-1] if message else 'its flags do not parse'} "
                         f"(python -m experiments.{task.experiment} {shlex.join(task.argv(1))})") from None
    except ValueError as e:
        raise ValueError(f"task {task.name!r}: {e}") from None
    if task.experiment != "memory_task":
        from envs import make_env

        try:
            make_env(task.env, 1, seed=0).close()
        except Exception as e:  # gymnasium's NameNotFound / NamespaceNotFound / DependencyNotInstalled
            raise ValueError(f"task {task.name!r}: env {task.env!r} cannot be made here ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None


# --------------------------------------------------------------------------------- the verdict
@dataclasses.dataclass(frozen=True)
class Verdict:
    """How a metric's scores compare with its baseline."""

    iqm: float
    low: float
    high: float
    baseline_iqm: float | None
    regressed: bool

    @property
    def word(self) -> str:
        if self.baseline_iqm is None:
            return "no baseline"
        return "REGRESSION" if self.regressed else "ok"


def iqm_interval(scores: Sequence[float], reps: int = 2000, rng: np.random.Generator | None = None,
                 ) -> tuple[float, float, float]:
    """IQM of ``scores`` (one per seed) with its 95% percentile-bootstrap interval over seeds."""
    from experiments import rl_stats

    matrix = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    low, high = rl_stats.stratified_bootstrap_ci(matrix, rl_stats.iqm, reps, rng=rng)
    return rl_stats.iqm(matrix), low, high


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of ``samples [reps, n]`` (scipy's trim_mean(0.25), as rl_stats.iqm)."""
    ordered = np.sort(samples, axis=1)
    cut = int(0.25 * ordered.shape[1])
    return ordered[:, cut: ordered.shape[1] - cut].mean(axis=1)


def verdict(scores: dict[int, float], baseline: dict[int, float] | None, direction: str, reps: int = 2000,
            rng: np.random.Generator | None = None) -> Verdict:
    """The regression rule (module docstring). ``scores`` / ``baseline``: seed -> score.

    Same seeds as the baseline (a re-run, e.g. ``--quick`` on the baseline's first seeds): a
    regression when the 95% interval of the new IQM lies wholly on the worse side of the
    baseline's IQM over those seeds. Other seeds: the baseline's IQM is uncertain too, so a
    regression when the 95% interval of the difference of the two IQMs (each side's seeds
    resampled on their own) lies wholly on the worse side of zero; ``low`` / ``high`` are then
    the new IQM's own interval, for the report."""
    from experiments import rl_stats

    rng = np.random.default_rng(0) if rng is None else rng
    iqm, low, high = iqm_interval(list(scores.values()), reps, rng)
    if not baseline:
        return Verdict(iqm, low, high, None, False)
    worse = 1.0 if direction == "higher" else -1.0  # scores times this: higher is better
    if all(s in baseline for s in scores):
        base = rl_stats.iqm(np.asarray([baseline[s] for s in scores], dtype=np.float64).reshape(-1, 1))
        regressed = high < base if direction == "higher" else low > base
        return Verdict(iqm, low, high, base, bool(regressed))
    ours, theirs = np.asarray(list(scores.values())), np.asarray(list(baseline.values()))
    base = rl_stats.iqm(theirs.reshape(-1, 1))
    diffs = (_iqm_rows(ours[rng.integers(0, ours.size, (reps, ours.size))])
             - _iqm_rows(theirs[rng.integers(0, theirs.size, (reps, theirs.size))])) * worse
    regressed = float(np.percentile(diffs, 97.5)) < 0.0
    return Verdict(iqm, low, high, base, regressed)


# ------------------------------------------------------------------------------------- the CLI
@dataclasses.dataclass(frozen=True)
class LearningArgs:
    """Options of the learning benchmark."""

    suite: Literal["classic", "memory", "all"] = "classic"
    tasks: tuple[str, ...] = ()
    """only these tasks of the suite (default: all of them)."""
    seeds: int | None = None
    """seeds 1..N for every task (default: each task's own, or its quick count with --quick)."""
    quick: bool = False
    """the quick subset: the tasks marked quick, on their first seeds (about 10 minutes on 2 cores)."""
    against: tuple[str, ...] = ()
    """baseline score files (results/learning/<suite>.csv) to check the scores against."""
    runs_dir: str = "runs/learning"
    """parent of the sweep's storage (<runs-dir>/<suite>[-quick][-<subset>])."""
    results: str | None = None
    """the per-seed scores CSV (default: results/learning/<suite>.csv for a whole suite, else
    <storage>/scores.csv); the curves go beside it as <name>-curves.csv. Given with --tasks, the
    rows of those tasks replace theirs in the file and the other tasks' rows stay (re-running one
    task of a committed baseline)."""
    workers: int | None = None
    """runs at a time (default: one per CPU)."""
    cpus_per_run: int = 1
    ray_num_cpus: int | None = None
    report_only: bool = False
    """score and report the runs already in storage; train nothing."""
    reps: int = 2000
    """bootstrap replicates."""
    suites_file: str = str(SUITES_FILE)


def selected(args: LearningArgs, tasks: Sequence[Task]) -> list[tuple[Task, list[int]]]:
    """The tasks of the run with their seeds; ``ValueError`` for an unknown task, seeds < 1, or
    a quick run that selects nothing."""
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    suites = SUITES if args.suite == "all" else (args.suite,)
    in_suite = [t for t in tasks if t.suite in suites]
    if args.tasks:
        known = {t.name for t in in_suite}
        unknown = [n for n in args.tasks if n not in known]
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r} in --tasks for suite {args.suite}; allowed: "
                             f"{', '.join(sorted(known))}")
        in_suite = [t for t in in_suite if t.name in args.tasks]
    out = []
    for t in in_suite:
        count = t.quick if args.quick else t.seeds
        if args.seeds is not None and (count or not args.quick):
            count = args.seeds
        if count:
            out.append((t, list(range(1, count + 1))))
    if not out:
        raise ValueError(f"suite {args.suite} has no {'quick ' if args.quick else ''}task "
                         f"{'among ' + ' '.join(args.tasks) if args.tasks else ''}".rstrip())
    return out


def storage(args: LearningArgs, plan: Sequence[tuple[Task, list[int]]]) -> Path:
    """The sweep's storage folder: one per suite and mode, and one per subset (a hash of its runs)."""
    name = args.suite + ("-quick" if args.quick else "")
    if args.tasks or args.seeds is not None:
        keys = " ".join(f"{t.name}:{','.join(map(str, s))}" for t, s in plan)
        name += "-" + hashlib.sha1(keys.encode()).hexdigest()[:8]
    return Path(args.runs_dir) / name


def read_baselines(paths: Sequence[str], suite: str) -> dict[tuple[str, str, str], dict[int, float]]:
    """``(task, metric, score kind) -> {seed: score}`` from committed score files; ``ValueError`` for a
    missing file, a file that is not a score file, or one of another suite."""
    suites = SUITES if suite == "all" else (suite,)
    out: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"--against {path}: no such file")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not set(SCORE_FIELDS) <= set(reader.fieldnames):
                raise ValueError(f"--against {path}: not a learning-benchmark score file (columns "
                                 f"{', '.join(SCORE_FIELDS)})")
            rows = list(reader)
        other = sorted({r["suite"] for r in rows} - set(suites))
        if other:
            raise ValueError(f"--against {path} holds the {', '.join(other)} suite's scores, not {suite}'s; give "
                             f"results/learning/{suite if suite != 'all' else 'classic'}.csv")
        for r in rows:
            out[(r["task"], r["metric"], r["score_kind"])][int(r["seed"])] = float(r["score"])
    return dict(out)


def planned_runs(plan: Sequence[tuple[Task, list[int]]]) -> list[dict[str, Any]]:
    """The sweep's runs (key ``<task>__<seed>``)."""
    return [{"key": f"{t.name}__{seed}", "experiment": t.experiment, "env_id": t.env, "seed": seed,
             "config_index": 0, "config": t.config, "task": t.name} for t, seeds in plan for seed in seeds]


def _short(commit: str) -> str:
    """``<sha>[+modified]`` (:func:`foundations.runlog.source_commit`) with the sha cut to 7."""
    sha, plus, rest = commit.partition("+")
    return sha[:7] + plus + rest


def _run_folders(root: Path) -> dict[str, Path]:
    """``trial key -> run folder`` of the stored runs: the newest checkpoint's run folder of each
    trial (``<root>/<key>/checkpoint_<n>/<run>/``)."""
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for trial in sorted(p for p in root.iterdir() if p.is_dir()):
        checkpoints = sorted(trial.glob("checkpoint_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
        for checkpoint in reversed(checkpoints):
            runs = [p for p in checkpoint.iterdir() if p.is_dir()]
            if len(runs) == 1:
                found[trial.name] = runs[0]
                break
    return found


def score_runs(plan: Sequence[tuple[Task, list[int]]], root: Path, commit: str,
               ) -> tuple[list[dict[str, Any]], list[list[Any]], list[str]]:
    """Per-seed score rows, curve rows (compare's summary format) and the runs with no score."""
    from experiments.compare import Run, read_scalars

    folders = _run_folders(root)
    scores, curves, missing = [], [], []
    for task, seeds in plan:
        for seed in seeds:
            folder = folders.get(f"{task.name}__{seed}")
            config = json.loads((folder / "config.json").read_text()) if folder and (folder / "config.json").is_file() \
                else {}
            if folder is None:
                missing.append(f"{task.name} seed {seed}: no stored run")
                continue
            read: dict[str, Run] = {}  # each tag read, and its curve written, once (a tag may be scored twice)
            for metric in task.metrics:
                run = read.get(metric.tag)
                first = run is None
                if run is None:
                    run = read[metric.tag] = Run(folder, task.env, task.experiment, seed, {})
                    read_scalars(run, metric.tag)
                wall = run.wall_seconds or 0.0
                if not run.values.size:
                    missing.append(f"{task.name} seed {seed}: no {metric.tag} in {folder}")
                    continue
                budget = task.budget
                if run.steps[-1] < budget:
                    missing.append(f"{task.name} seed {seed}: unfinished ({metric.tag} up to step "
                                   f"{int(run.steps[-1]):,} of {budget:,}; {folder})")
                    continue
                scores.append({"suite": task.suite, "task": task.name, "experiment": task.experiment,
                               "env": task.env, "metric": metric.tag, "score_kind": metric.score,
                               "direction": metric.direction, "target": "" if metric.target is None else metric.target,
                               "seed": seed, "score": metric.of(run.values.tolist()), "step": int(run.steps[-1]),
                               "wall_seconds": round(wall, 1), "commit": config.get("commit", commit),
                               "flags": task.flags, "budget": task.budget})
                if first:
                    curves += [[folder.name, task.env, task.experiment, seed, task.name, metric.tag, int(s),
                                repr(float(v)), f"{wall:.1f}"] for s, v in zip(run.steps, run.values, strict=True)]
    return scores, curves, missing


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def report_rows(plan: Sequence[tuple[Task, list[int]]], scores: Sequence[dict[str, Any]],
                baselines: dict[tuple[str, str, str], dict[int, float]] | None, reps: int) -> list[list[Any]]:
    """Per task and metric: seeds, mean, IQM [95% CI], seeds reaching the target, baseline IQM, verdict."""
    rows = []
    rng = np.random.default_rng(0)
    for task, _ in plan:
        for metric in task.metrics:
            mine = {int(r["seed"]): float(r["score"]) for r in scores
                    if r["task"] == task.name and r["metric"] == metric.tag and r["score_kind"] == metric.score}
            if not mine:
                rows.append([task.name, metric.tag, metric.score, 0, None, None, None, None, "", None, "no runs"])
                continue
            base = None if baselines is None else baselines.get((task.name, metric.tag, metric.score))
            v = verdict(mine, base, metric.direction, reps, rng)
            reached = "" if metric.target is None else f"{sum(metric.reached(s) for s in mine.values())}/{len(mine)}"
            word = v.word if baselines is not None else ""
            rows.append([task.name, metric.tag, metric.score, len(mine), float(np.mean(list(mine.values()))), v.iqm,
                         v.low, v.high, reached, v.baseline_iqm, word])
    return rows


REPORT_HEADER = ["task", "metric", "score", "seeds", "mean", "IQM", "IQM 95% low", "IQM 95% high", "reach target",
                 "baseline IQM", "verdict"]


def markdown(rows: Sequence[Sequence[Any]]) -> str:
    """The report's rows as a markdown table (the IQM and its interval in one column)."""
    head = ["task", "metric", "score", "seeds", "mean", "IQM [95% CI]", "reach target", "baseline IQM", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, metric, kind, n, mean, iqm, low, high, reached, base, word in rows:
        interval = f"{_fmt(iqm)} [{_fmt(low)}, {_fmt(high)}]" if iqm is not None else "n/a"
        lines.append(f"| {task} | {metric} | {kind} | {n} | {_fmt(mean)} | {interval} | {reached} | "
                     f"{'' if base is None else _fmt(base)} | {word} |")
    return "\n".join(lines)


def write_outputs(args: LearningArgs, plan: Sequence[tuple[Task, list[int]]], root: Path,
                  scores: list[dict[str, Any]], curves: list[list[Any]], rows: list[list[Any]]) -> dict[str, Path]:
    from experiments import compare

    whole = not args.quick and not args.tasks and args.seeds is None and args.suite != "all"
    results = Path(args.results) if args.results else (Path("results/learning") / f"{args.suite}.csv" if whole
                                                        else root / "scores.csv")
    results.parent.mkdir(parents=True, exist_ok=True)
    curves_path = results.with_name(results.stem + "-curves.csv")
    ran = {t.name for t, _ in plan}
    kept_scores: list[dict[str, Any]] = []
    kept_curves: list[list[Any]] = []
    if args.results and not whole and results.is_file():  # a subset merges into the given file, task by task
        with open(results, newline="") as f:
            kept_scores = [r for r in csv.DictReader(f) if r["task"] not in ran]
        if curves_path.is_file():
            with open(curves_path, newline="") as f:
                kept_curves = [r for r in list(csv.reader(f))[1:] if r[4] not in ran]
    with open(results, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(SCORE_FIELDS))
        writer.writeheader()
        writer.writerows(kept_scores + scores)
    with open(curves_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(compare.SUMMARY_FIELDS)
        writer.writerows(kept_curves + curves)
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "learning.csv", "w", newline="") as f:
        csv.writer(f).writerows([REPORT_HEADER, *[["" if v is None else v for v in r] for r in rows]])
    note = (f"\nScores per seed: the final or best value of the metric (column score). IQM over seeds with its 95% "
            f"percentile-bootstrap interval ({args.reps} replicates). Verdict against the baseline: REGRESSION when "
            "the interval lies wholly on the worse side of the baseline's IQM (benchmarks/learning.py).\n")
    (out / "learning.md").write_text(markdown(rows) + "\n" + note)
    by_tag: dict[tuple[str, str], int] = defaultdict(int)
    for task, _ in plan:
        for m in task.metrics:
            by_tag[(m.tag, m.score)] += 1
    for (tag, kind) in by_tag:
        if not any(r["metric"] == tag and r["score_kind"] == kind for r in scores):
            continue
        folder = out / (tag.replace("/", "_") + ("-best" if kind == "best" else ""))
        try:
            with redirect_stdout(io.StringIO()):
                compare.run(compare.CompareArgs(run_dirs=(str(curves_path),), tag=tag, out=str(folder), last=1,
                                                score="best" if kind == "best" else "last", normalize="minmax",
                                                reps=args.reps))
        except ValueError as e:  # e.g. one env with a single group: nothing to aggregate
            print(f"warning: the compare report for {tag} was not drawn: {e}", file=sys.stderr)
    return {"results": results, "curves": curves_path, "report": out}


def run(args: LearningArgs) -> dict[str, Any]:
    if args.reps < 1 or args.cpus_per_run < 1 or (args.workers is not None and args.workers < 1):
        raise ValueError(f"--reps, --cpus-per-run and --workers must be >= 1, got {args.reps}, {args.cpus_per_run}, "
                         f"{args.workers}")
    tasks = load_tasks(Path(args.suites_file))
    plan = selected(args, tasks)
    baselines = read_baselines(args.against, args.suite) if args.against else None
    for task, _ in plan:  # every flag, preset and env checked before anything runs
        check_task(task)
    root = storage(args, plan)
    result: dict[str, Any] = {"plan": plan, "storage": root}
    failed: list[str] = []
    if not args.report_only:
        from experiments import sweep

        sweep_args = sweep.SweepArgs(experiment=plan[0][0].experiment, env_ids=(plan[0][0].env,), seeds=(1,),
                                     storage=str(root), workers=args.workers, cpus_per_run=args.cpus_per_run,
                                     ray_num_cpus=args.ray_num_cpus, quiet=True)
        swept = sweep.run(sweep_args, planned_runs(plan))
        if swept["stopped"] is not None:
            raise SystemExit(128 + swept["stopped"])
        failed = [f"{row.key} {row.status}" + (f" (log: {row.files})" if row.files else "")
                  for row in swept["rows"] if row.status != "done"]
    from foundations.runlog import source_commit

    head = source_commit()
    scores, curves, missing = score_runs(plan, root, head)
    rows = report_rows(plan, scores, baselines, args.reps)
    files = write_outputs(args, plan, root, scores, curves, rows)
    # A sweep resumes what its storage holds: runs finished by an earlier invocation are scored,
    # not re-run, so a check of a changed tree in an old storage would report the old code.
    older = sorted({_short(s["commit"]) for s in scores if s["commit"] != head})
    stale = ([] if args.report_only or not older else
             [f"runs in {root} trained at other commits ({', '.join(older)}) were scored, not re-run: "
              f"to check this tree ({_short(head)}), give a fresh --runs-dir"])
    result.update(scores=scores, rows=rows, failed=failed, missing=missing, stale=stale, **files)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from experiments.common import parse_and_run

    _, r = parse_and_run(LearningArgs, run, argv, __doc__)
    print(f"\n### Learning benchmark ({len(r['scores'])} scores; runs in {r['storage']})\n")
    print(markdown(r["rows"]))
    print(f"\nscores: {r['results']}  curves: {r['curves']}  report: {r['report']}")
    for line in r["failed"]:
        print(f"failed: {line}", file=sys.stderr)
    for line in r["missing"]:
        print(f"not scored: {line}", file=sys.stderr)
    for line in r["stale"]:
        print(f"note: {line}", file=sys.stderr)
    if any(row[-1] == "REGRESSION" for row in r["rows"]):
        print("regression: " + ", ".join(f"{row[0]} {row[1]}" for row in r["rows"] if row[-1] == "REGRESSION"),
              file=sys.stderr)
        raise SystemExit(1)
    if r["failed"] or r["missing"]:
        raise SystemExit(1)
    return r


if __name__ == "__main__":
    main()
