"""Atari 100k: train a preset on games x seeds with the benchmark's protocol, then report the
scores beside the published ones.

    python -m experiments.atari100k --preset drq_eps --games Pong Breakout Boxing --seeds 1
    python -m experiments.atari100k --preset der --games all26 --seeds 1 2 3 --device cuda --workers 8
    python -m experiments.atari100k --preset drq_eps --games all26 --ray-address auto
    python -m experiments.atari100k --preset drq_eps --games Pong --report-only   # the report alone

Each run is ``python -m experiments.dqn_atari --env-id ALE/<Game>-v5 --seed S --preset P`` with
the protocol of Dopamine's ``labs/atari_100k`` (which produced the published DrQ(eps) and DER
numbers): 100k agent steps of 4 frames, no sticky actions, the minimal action set, no no-op
starts and no FIRE at reset, a life loss ends the learner's episode, games cut at 108k frames
(27k steps), then one evaluation of 100 full games at the preset's evaluation epsilon (0.001),
on raw game scores. The runs go through :mod:`experiments.sweep` (Ray Tune) with storage
``<runs-dir>/<preset>/``, so the same command again skips finished runs and resumes interrupted
ones from their checkpoints. The report folder ``<runs-dir>/<preset>/report/`` gets:

- ``results.csv``: per run, game, seed, preset, final score (mean of the 100 evaluation games),
  human-normalised score, steps, active wall time, commit and the run's configuration;
- ``published.md`` / ``published.csv``: per game, our mean over seeds beside the published
  DER / DrQ(eps) / SPR means (:mod:`experiments.atari100k_published`; "n/a" where none is
  stored) and the human-normalised gap to the algorithm the preset reproduces;
- what ``experiments.compare`` writes for the final evaluations (``scores``, ``aggregates``:
  IQM / median / mean / optimality gap with stratified-bootstrap intervals, ``profile.png``)
  and ``curves/``: the training-episode return curves per game.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import compare, rl_stats, sweep
from experiments.atari100k_published import (
    AGGREGATES,
    ALGORITHMS,
    GAMES,
    PER_GAME,
    PRESET_OF,
    SOURCES,
    published,
)
from experiments.atari_scores import human_normalized
from experiments.common import parse_and_run, resolve_device

EVAL_TAG = "eval/episodic_return"
ACTIVE_GAP_S = 3600.0
"""Gaps between consecutive logged events longer than this are a stopped run, not work."""


@dataclasses.dataclass(frozen=True)
class Atari100kArgs:
    """Options of the Atari 100k runner."""

    preset: Literal["drq_eps", "der"] = "drq_eps"
    """agent preset (agents.dqn.PRESETS): drq_eps (DrQ(eps)) or der (data-efficient Rainbow)."""
    games: tuple[str, ...] = ("Pong", "Breakout", "Boxing")
    """games by ALE name (Pong, MsPacman, ...), or all26 for the whole benchmark."""
    seeds: tuple[int, ...] = (1,)
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda, cuda:1..."""
    runs_dir: str = "runs/atari100k"
    """parent of the preset's sweep folder (<runs-dir>/<preset>/)."""
    workers: int | None = None
    """runs at a time (default: as many as the CPUs and GPUs allow)."""
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0
    ray_address: str | None = None
    """run on Ray: auto (a running cluster), HOST:PORT, or local."""
    eval_episodes: int = 100
    """evaluation games after training (the protocol: 100)."""
    report_only: bool = False
    """write the report from the runs already there; train nothing."""


def games(names: Sequence[str]) -> list[str]:
    """``names`` checked against the 26 games (``all26``: all of them), in the given order."""
    if list(names) == ["all26"]:
        return list(GAMES)
    if "all26" in names:
        raise ValueError(f"--games all26 stands alone (it means every game), got {' '.join(names)}")
    if not names:
        raise ValueError("--games needs at least one game (or all26)")
    out = []
    for name in names:
        if name not in GAMES:
            close = difflib.get_close_matches(name, GAMES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"unknown game {name!r} in --games{hint}; allowed: all26 or any of {', '.join(GAMES)}")
        if name not in out:
            out.append(name)
    return out


def sweep_args(args: Atari100kArgs, device: str) -> sweep.SweepArgs:
    """The sweep that trains the runs (one configuration: the preset, which carries the protocol,
    agents.dqn.ATARI_100K_PROTOCOL, so ``make run`` is one run of this benchmark)."""
    config = f"preset={args.preset} eval-episodes={args.eval_episodes} device={device}"
    return sweep.SweepArgs(
        experiment="dqn_atari", env_ids=tuple(f"ALE/{g}-v5" for g in games(args.games)), seeds=args.seeds,
        configs=(config,), storage=str(Path(args.runs_dir) / args.preset), workers=args.workers,
        cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, ray_address=args.ray_address,
    )


def _events(run_dir: Path) -> tuple[list[float], dict[str, list[tuple[int, float]]]]:
    """Wall times of every logged scalar point and the points of the tags the report uses. A resumed
    run logs again the steps after its checkpoint; those points stay (no purge): their time was spent."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    acc.Reload()
    times: list[float] = []
    points: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        times += [e.wall_time for e in events]
        points[tag] = [(e.step, e.value) for e in events]
    return sorted(times), points


def active_seconds(times: Sequence[float]) -> float:
    """Wall time between the first and last point, less the gaps over ``ACTIVE_GAP_S`` (pauses)."""
    gaps = np.diff(np.asarray(times, dtype=np.float64))
    return float(gaps[gaps <= ACTIVE_GAP_S].sum()) if gaps.size else 0.0


def collect(root: Path, preset: str, names: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """One row per finished run of ``names`` x ``seeds`` under ``root`` (the newest run directory
    of each); runs without a final evaluation are left out."""
    found = compare.find_runs([str(root)]) if root.is_dir() and any(root.rglob("events.out.tfevents.*")) else []
    rows = []
    for game in names:
        for seed in seeds:
            dirs = sorted((r.path for r in found if r.experiment == "dqn_atari" and r.env_id == f"ALE/{game}-v5"
                           and r.seed == seed), key=lambda p: p.stat().st_mtime)
            if not dirs:
                continue
            run_dir = dirs[-1]
            times, points = _events(run_dir)
            evals = points.get(EVAL_TAG, [])
            meta = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
            total = int(meta.get("config", {}).get("agent.total_steps", 100_000))
            if not evals or evals[-1][0] < total:
                continue
            step, score = evals[-1]
            rows.append({"game": game, "seed": seed, "preset": preset, "score": score,
                         "human_normalised": human_normalized(f"ALE/{game}-v5", score), "steps": step,
                         "wall_time_s": round(active_seconds(times)), "commit": meta.get("commit", "unknown"),
                         "run_dir": str(run_dir), "config": json.dumps(meta.get("config", {}), sort_keys=True)})
    return rows


def published_aggregates(names: Sequence[str]) -> dict[str, float]:
    """Per published algorithm with a mean on every game of ``names``: the mean over those games of
    the human-normalised published means (what our mean human-normalised score is set beside)."""
    return {a: float(np.mean([human_normalized(f"ALE/{g}-v5", PER_GAME[a][g]) for g in names]))
            for a in ALGORITHMS if a in PER_GAME and all(g in PER_GAME[a] for g in names)}


def _interval(values: tuple[float, float, float], one_seed: bool = False) -> str:
    point, low, high = values
    return f"{point:.3f} (one seed: no interval)" if one_seed else f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def write_report(args: Atari100kArgs) -> dict[str, Any]:
    """``results.csv``, ``published.md/csv`` and the compare report of the finished runs."""
    root = Path(args.runs_dir) / args.preset
    out = root / "report"
    names = games(args.games)
    rows = collect(root, args.preset, names, args.seeds)
    if not rows:
        raise ValueError(f"no finished run of {args.preset} on {', '.join(names)} (seeds "
                         f"{' '.join(map(str, args.seeds))}) under {root}; train them first (drop --report-only)")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ours = PRESET_OF[args.preset]
    table = []
    rng = np.random.default_rng(0)
    for game in names:
        scores = [r["score"] for r in rows if r["game"] == game]
        if not scores:
            continue
        mean = float(np.mean(scores))
        low, high = (float(v) for v in rl_stats.bootstrap_mean_ci(np.asarray(scores), rng=rng))
        reference = published(ours, game)
        gap = None if reference is None else (human_normalized(f"ALE/{game}-v5", mean)
                                              - human_normalized(f"ALE/{game}-v5", reference))
        table.append([game, len(scores), mean, low, high, min(scores), max(scores),
                      human_normalized(f"ALE/{game}-v5", mean), *(published(a, game) for a in ALGORITHMS), gap])
    header = ["game", "seeds", f"ours ({args.preset})", "95% CI low", "95% CI high", "lowest seed", "highest seed",
              "ours human-normalised", *ALGORITHMS, f"gap to {ours} (human-normalised)"]
    with open(out / "published.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *[["" if v is None else v for v in row] for row in table]])
    short = ["game", "seeds", f"ours ({args.preset}) [95% CI]", "seeds' range", "ours human-normalised", *ALGORITHMS,
             f"gap to {ours} (human-normalised)"]
    lines = ["| " + " | ".join(short) + " |", "|" + "---|" * len(short)]
    for row in table:
        game, n, mean, low, high, lowest, highest, hns, *refs, gap = row
        spread = f"[{_fmt(low)}, {_fmt(high)}]" if n > 1 else "(one seed: no interval)"
        lines.append(f"| {game} | {n} | {_fmt(mean)} {spread} | {_fmt(lowest)} to {_fmt(highest)} | "
                     f"{_fmt(hns, 3)} | " + " | ".join(_fmt(r) for r in refs) + f" | {_fmt(gap, 3)} |")
    run_dirs = tuple(r["run_dir"] for r in rows)
    report = compare.run(compare.CompareArgs(run_dirs=run_dirs, tag=EVAL_TAG, out=str(out), last=1))
    curves = compare.run(compare.CompareArgs(run_dirs=run_dirs, out=str(out / "curves"), last=10, each_seed=True))
    played = [row[0] for row in table]
    against = published_aggregates(played)
    (ours_mean, ours_iqm), = ((a["mean"], a["IQM"]) for a in report["aggregates"].values())
    # the aggregates use the seeds every game has (compare's stratified bootstrap needs one run per
    # game and seed); a seed finished on some games only is in the per-game table, not here
    seeds = sorted(set.intersection(*({r["seed"] for r in rows if r["game"] == g} for g in played)))
    one_seed = len(seeds) < 2  # one seed in the aggregates: its resamples are all alike
    lines += ["", f"| over {', '.join(played)} | mean human-normalised [95% CI] | IQM [95% CI] | source |",
              "|---|---|---|---|",
              f"| ours ({args.preset}, seeds {', '.join(map(str, seeds))}) | {_interval(ours_mean, one_seed)} | "
              f"{_interval(ours_iqm, one_seed)} | these runs (stratified bootstrap over seeds) |"]
    lines += [f"| {a} published | {_fmt(v, 3)} | n/a (per-game means only) | {SOURCES[a]} |" for a, v in against.items()]
    verdict = ""
    if ours in against and one_seed:
        verdict = (f" Ours {ours_mean[0]:.3f} against {ours}'s published {against[ours]:.3f} on these games, from one "
                   "seed of a game: no interval, so no verdict yet.")
    elif ours in against:
        _, low, high = ours_mean
        where = "above" if low > against[ours] else "below" if high < against[ours] else "not distinguishable from"
        verdict = (f" Ours is {where} {ours}'s published {against[ours]:.3f} on these games: the mean's interval "
                   f"[{low:.3f}, {high:.3f}] {'includes' if where.startswith('not') else 'excludes'} it.")
    aggregate = ", ".join(f"{a} {v['median']:.3f} / {v['mean']:.3f}" for a, v in AGGREGATES.items())
    walls = [r["wall_time_s"] for r in rows]
    note = (f"\nFinal scores: mean of {args.eval_episodes} evaluation games after 100k agent steps, mean over seeds "
            "with its 95% bootstrap interval and the lowest and highest seed (what one run may give). "
            f"Published per-game means and 26-game human-normalised median / mean ({aggregate}); sources in "
            f"experiments/atari100k_published.py.{verdict} Active wall time per run: median "
            f"{np.median(walls) / 3600:.2f} h ({len(rows)} run(s)).\n")
    (out / "published.md").write_text("\n".join(lines) + "\n" + note)
    return {"rows": rows, "published": table, "published_aggregates": against, "compare": report, "curves": curves,
            "out": out}


def run(args: Atari100kArgs) -> dict[str, Any]:
    names = games(args.games)  # bad input fails before anything starts
    if args.eval_episodes < 1:
        raise ValueError(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    device = str(resolve_device(args.device))
    if args.gpus_per_run and not device.startswith("cuda"):
        raise ValueError(f"--gpus-per-run {args.gpus_per_run} asks for GPUs but the runs use {device}; "
                         "give --device cuda (on a machine with CUDA) or drop --gpus-per-run")
    result: dict[str, Any] = {"games": names}
    if not args.report_only:
        swept = sweep.run(sweep_args(args, device))
        result["sweep"] = swept
        if swept["stopped"] is not None:  # the sweep said how to resume
            raise SystemExit(128 + swept["stopped"])
    result.update(write_report(args))
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(Atari100kArgs, run, argv, __doc__)
    print((r["out"] / "published.md").read_text())
    print((r["out"] / "aggregates.md").read_text())
    unfinished = [row for row in r.get("sweep", {}).get("rows", []) if row.status != "done"]
    if unfinished:
        print(f"{len(unfinished)} run(s) did not finish ({', '.join(f'{row.key} {row.status}' for row in unfinished)}); "
              "the report covers the others", file=sys.stderr)
        raise SystemExit(1)
    return r


if __name__ == "__main__":
    main()
