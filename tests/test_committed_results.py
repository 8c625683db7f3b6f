"""The committed summaries redraw the README's pictures: each loads as compare runs, and every
picture the README shows exists."""

import re
from pathlib import Path

from experiments import compare

ROOT = Path(__file__).resolve().parents[1]
#: summary -> (tag, evaluations per run)
SUMMARIES = {"results/learning/classic-curves.csv": ("eval/episodic_return", 10),
             "results/learning/memory-curves.csv": ("eval/episodic_return", 6),
             "results/memory-agents/cartpole-po.csv": ("eval/episodic_return", 10),
             "results/memory-agents/popgym.csv": ("eval/episodic_return", 6)}


def test_each_summary_loads_with_its_runs_and_points():
    for path, (tag, points) in SUMMARIES.items():
        runs = compare.read_summary(ROOT / path, tag)
        assert runs and all(r.steps.size >= points and r.steps.size == r.values.size for r in runs), path


def test_every_picture_the_readme_shows_exists_and_the_results_stay_small():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert len(pictures) >= 2
    assert [p for p in pictures if not (ROOT / p).is_file()] == []
    big = [p for p in (ROOT / "results").rglob("*") if p.is_file() and p.stat().st_size > 5_000_000]
    assert big == []  # summaries and tables, not event files or replays


def test_the_committed_atari_100k_runs_are_finished_and_their_report_matches_them():
    """results/atari100k/<preset>/: drq_eps always, der once committed; each game at seeds 1..n,
    every committed run in the report, each run finished (100k steps, 100 evaluation games, its
    commit recorded), and the committed event files give the report's scores again."""
    import csv
    import json

    from experiments import atari100k

    presets = sorted(p.parent.parent.name for p in (ROOT / "results/atari100k").glob("*/report/results.csv"))
    assert "drq_eps" in presets
    for preset in presets:
        report = ROOT / f"results/atari100k/{preset}/report/results.csv"
        rows = {(r["game"], int(r["seed"])): r for r in csv.DictReader(open(report))}
        games, seeds = sorted({g for g, _ in rows}), sorted({s for _, s in rows})
        assert set(games) >= {"Pong", "Breakout", "Boxing"} and 1 in seeds, preset
        # runs are committed as they finish, so a game may be a seed ahead; each game's seeds are
        # 1..n, and every committed run directory is in the report
        for game in games:
            game_seeds = sorted(s for g, s in rows if g == game)
            assert game_seeds == list(range(1, len(game_seeds) + 1)), game
        committed = {p.name for p in (ROOT / f"results/atari100k/{preset}").glob("ALE-*")}
        assert committed == {Path(r["run_dir"]).name for r in rows.values()}, preset
        for key, row in rows.items():
            config = json.loads(row["config"])
            assert int(row["steps"]) == 100_000 and len(row["commit"]) == 40 and (ROOT / row["run_dir"]).is_dir(), key
            assert config["loop.eval_episodes"] == 100 and config["preset"] == row["preset"] == preset, key
        # the committed event files give the same scores again
        again = atari100k.collect(ROOT / f"results/atari100k/{preset}", preset, games, tuple(seeds))
        assert {(r["game"], r["seed"]): round(r["score"], 4) for r in again} == {
            key: round(float(r["score"]), 4) for key, r in rows.items()}, preset


def test_the_learning_baselines_are_the_suites_and_their_curves_load():
    """results/learning/<suite>.csv: every row a task and metric of the suites file, every seed
    of a task there, every task of the suite there, and the curves beside them readable by
    experiments.compare."""
    import csv

    from benchmarks import learning

    tasks = {t.name: t for t in learning.load_tasks()}
    for suite in ("classic", "memory"):
        path = ROOT / f"results/learning/{suite}.csv"
        rows = list(csv.DictReader(open(path)))
        assert rows, path
        seen: dict[tuple[str, str, str], set[int]] = {}
        for row in rows:
            task = tasks[row["task"]]
            assert task.suite == suite == row["suite"]
            assert (row["metric"], row["score_kind"]) in {(m.tag, m.score) for m in task.metrics}
            assert int(row["step"]) >= task.budget and row["flags"] == task.flags and int(row["budget"]) == task.budget
            seen.setdefault((row["task"], row["metric"], row["score_kind"]), set()).add(int(row["seed"]))
        for (name, _, _), seeds in seen.items():
            assert seeds == set(range(1, tasks[name].seeds + 1)), name
        assert {name for name, _, _ in seen} == {t.name for t in tasks.values() if t.suite == suite}, suite
        for tag in {m for _, m, _ in seen}:
            assert compare.read_summary(path.with_name(f"{suite}-curves.csv"), tag)


def test_the_committed_babi_runs_are_finished_and_match_their_logs():
    """results/babi/dnc-qa1-layer-norm/: DNC runs on task 1 with the layer-normalised controller,
    each finished (its test errors written at the end of its stories), its test_errors.csv the
    values its event file logged, and the README's claim holds: a seed under the paper's 5%."""
    import csv
    import json

    runs = sorted((ROOT / "results/babi/dnc-qa1-layer-norm").glob("*/config.json"))
    assert len(runs) >= 2
    errors = []
    for path in runs:
        meta = json.loads(path.read_text())
        config = meta["config"]
        assert config["model"] == "dnc" and config["controller_layer_norm"] and config["tasks"] == "['1']", path
        assert len(meta["commit"]) == 40, path
        rows = {r["task"]: r for r in csv.DictReader(open(path.with_name("test_errors.csv")))}
        run = compare.find_runs([str(path.parent)])[0]
        compare.read_scalars(run, "test/error/qa1")
        assert run.steps.tolist() == [config["num_stories"]], path  # logged once, at the end
        assert round(float(run.values[0]), 4) == float(rows["1"]["test_error"]), path
        errors.append(float(rows["1"]["test_error"]))
    assert min(errors) < 0.05


def test_the_committed_pqn_breakout_run_is_finished_and_the_readme_quotes_it():
    """results/pqn/breakout/: one PQN `atari` run of 1M steps, its commit recorded, an evaluation
    every 100k steps, and the README's final figure the one its event files give."""
    import json

    runs = sorted((ROOT / "results/pqn/breakout").glob("*/config.json"))
    assert len(runs) == 1
    meta = json.loads(runs[0].read_text())
    config = meta["config"]
    assert config["preset"] == "atari" and config["env_id"] == "ALE/Breakout-v5" and len(meta["commit"]) == 40
    assert config["agent.total_steps"] == 1_000_000 and config["agent.num_envs"] == 8
    run = compare.find_runs([str(runs[0].parent)])[0]
    compare.read_scalars(run, "eval/episodic_return")
    assert run.steps.tolist() == [100_000 * k for k in range(1, 11)]  # the resume at 700k left no gap or repeat
    assert f"**{run.values[-1]:.1f}** at 1M" in (ROOT / "README.md").read_text()


def test_the_committed_babi_joint_runs_are_finished_and_their_report_is_theirs():
    """results/babi/joint-qa1-qa2/: DNC, LSTM and transformer runs on tasks 1 and 2 jointly at one
    budget, each finished (its test errors logged once, at its last story, and the same in its
    test_errors.csv); the committed report is babi_report's of exactly these runs, and the
    README's claim holds: the DNC's mean test error below the LSTM's."""
    import csv

    from experiments import babi_report

    root = ROOT / "results/babi/joint-qa1-qa2"
    runs = babi_report.find_runs([str(root)])
    babi_report.check_comparable(runs)
    assert {r.config["model"] for r in runs} == {"dnc", "lstm", "transformer"}
    for run in runs:
        assert run.config["tasks"] == "['1', '2']" and set(run.errors) == {1, 2}, run.path
        for task, error in run.errors.items():
            found = compare.find_runs([str(run.path)])[0]
            compare.read_scalars(found, f"test/error/qa{task}")
            assert found.steps.tolist() == [run.config["num_stories"]], run.path
            assert round(float(found.values[0]), 4) == error, run.path
    summary = babi_report.summarise(runs, ["model"])
    committed = list(csv.DictReader(open(ROOT / "docs/figures/babi/joint-qa1-qa2/errors.csv")))
    assert {(r["group"], r["task"]): float(r["mean_error"]) for r in committed} == {
        (group, str(task)): round(value[0], 4)
        for group, g in summary.items() for task, value in [*g["tasks"].items(), ("mean", g["mean"])]}
    assert summary["dnc"]["mean"][0] < summary["lstm"]["mean"][0]
