"""The learning benchmark: its suites are valid, its regression rule flags drops and not noise,
bad input is one line before anything runs, and it scores stored runs."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from benchmarks import learning
from benchmarks.learning import LearningArgs, Metric, Task, verdict


# ------------------------------------------------------------------------------------ suites
def test_every_task_of_the_suites_file_parses_with_its_experiment_and_its_env_exists():
    tasks = learning.load_tasks()
    for task in tasks:
        learning.check_task(task)  # flags, values, presets, env: as the experiment itself parses them
    suites = {t.suite for t in tasks}
    assert suites == {"classic", "memory"}
    classic = {t.name: t for t in tasks if t.suite == "classic"}
    assert {"dqn-cartpole", "ppo-cartpole", "a2c-cartpole", "reinforce-cartpole", "ppo-pendulum"} <= set(classic)
    assert all(t.seeds >= 10 for t in classic.values())
    memory = [t for t in tasks if t.suite == "memory"]
    cores = {t.flags.split("core=")[1].split()[0] for t in memory if "core=" in t.flags}
    assert cores == {"none", "lstm", "gru", "ntm", "dnc", "transformer"}
    copy = [t for t in memory if t.env == "copy"]
    assert {t.flags.split()[1] for t in copy} == {"ntm", "dnc", "lstm", "transformer"}
    for t in copy:
        assert [m.tag for m in t.metrics] == [f"eval/bit_error/len_{n}" for n in (20, 40, 80, 120)]
        assert all(m.direction == "lower" for m in t.metrics)
    assert any(t.quick for t in tasks if t.suite == "classic") and any(t.quick for t in memory)


def test_a_task_with_a_flag_its_experiment_lacks_is_named_before_anything_runs():
    bad = Task("x", "classic", "dqn", "CartPole-v1", "preset=cartpole no-such-flag=3", 1000, 2,
               (Metric("eval/episodic_return"),))
    with pytest.raises(ValueError, match=r"task 'x': .*no-such-flag"):
        learning.check_task(bad)
    with pytest.raises(ValueError, match=r"task 'y': .*preset"):
        learning.check_task(dataclasses.replace(bad, name="y", flags="preset=nope"))
    with pytest.raises(ValueError, match=r"task 'z': env 'NoSuchEnv-v0' cannot be made"):
        learning.check_task(dataclasses.replace(bad, name="z", flags="preset=cartpole", env="NoSuchEnv-v0"))


def _suites_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "suites.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ('[[task]]\nname="a"\nsuite="classic"\nexperiment="dqn"\nenv="CartPole-v1"\nbudget=0\nseeds=2\n'
     'metrics=[{tag="eval/episodic_return"}]', "budget must be >= 1, got 0"),
    ('[[task]]\nname="a"\nsuite="classic"\nexperiment="dqn"\nenv="CartPole-v1"\nbudget=10\nseeds=0\n'
     'metrics=[{tag="eval/episodic_return"}]', "seeds must be >= 1, got 0"),
    ('[[task]]\nname="a"\nsuite="fancy"\nexperiment="dqn"\nenv="CartPole-v1"\nbudget=10\nseeds=1\n'
     'metrics=[{tag="t"}]', "suite 'fancy' is not one of classic, memory"),
    ('[[task]]\nname="a"\nsuite="classic"\nexperiment="sac"\nenv="CartPole-v1"\nbudget=10\nseeds=1\n'
     'metrics=[{tag="t"}]', "experiment 'sac' is not one of"),
    ('[[task]]\nname="a"\nsuite="classic"\nexperiment="dqn"\nenv="CartPole-v1"\nbudget=10\nseeds=1\n'
     'metrics=[{tag="t", direction="up"}]', "direction higher or lower"),
    ('[[task]]\nname="a"\nsuite="classic"\nexperiment="dqn"\nbudget=10\nseeds=1\nmetrics=[{tag="t"}]',
     "missing field 'env'"),
])
def test_a_bad_suites_file_is_one_clear_error(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        learning.load_tasks(_suites_file(tmp_path, body))


def test_bad_command_lines_exit_2_in_one_line_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(learning, "planned_runs", lambda plan: pytest.fail("a run was planned"))
    baseline = tmp_path / "memory.csv"
    with open(baseline, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(learning.SCORE_FIELDS))
        writer.writeheader()
        writer.writerow({k: "" for k in learning.SCORE_FIELDS} | {"suite": "memory", "task": "ppo-lstm-repeatprevious",
                                                                  "metric": "m", "seed": 1, "score": 0.5})
    cases = [
        (["--suite", "fancy"], "fancy"),
        (["--suite", "classic", "--tasks", "dqn-pong"], "unknown task 'dqn-pong' in --tasks for suite classic"),
        (["--suite", "classic", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--suite", "classic", "--against", str(baseline)], "holds the memory suite's scores, not classic's"),
        (["--suite", "classic", "--against", str(tmp_path / "none.csv")], "no such file"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            learning.main([*argv, "--runs-dir", str(tmp_path / "runs")])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and message in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "runs").exists()


def test_quick_selects_the_marked_tasks_on_their_first_seeds():
    tasks = learning.load_tasks()
    plan = learning.selected(LearningArgs(suite="all", quick=True), tasks)
    assert plan and all(seeds == list(range(1, t.quick + 1)) for t, seeds in plan)
    assert {t.name for t, _ in plan} == {t.name for t in tasks if t.quick}
    full = learning.selected(LearningArgs(suite="classic", seeds=4), tasks)
    assert all(seeds == [1, 2, 3, 4] for _, seeds in full) and len(full) == sum(t.suite == "classic" for t in tasks)


# ---------------------------------------------------------------------------- the regression rule
def test_the_rule_flags_a_drop_and_not_seed_noise():
    rng = np.random.default_rng(1)
    base = {s: 480 + rng.normal(0, 15) for s in range(1, 11)}
    # the same code on the same seeds: exactly the baseline, never flagged
    assert not verdict(dict(base), base, "higher").regressed
    # the same distribution on other seeds: flagged in under 5% of draws (a one-sided 2.5% test)
    # (a baseline and a new run drawn afresh each time: ten seeds each)
    flagged = 0
    for trial in range(200):
        noise = np.random.default_rng(1000 + trial)
        old = {s: 480 + noise.normal(0, 15) for s in range(1, 11)}
        new = {s: 480 + noise.normal(0, 15) for s in range(11, 21)}
        flagged += verdict(new, old, "higher", reps=400).regressed
    assert flagged <= 10, flagged
    # one collapsed seed in ten is what the IQM trims: not a regression
    one_bad = dict(base) | {3: 50.0}
    assert not verdict(one_bad, base, "higher").regressed
    # a drop of every seed: flagged, with the interval below the baseline's IQM
    dropped = {s: v - 150 for s, v in base.items()}
    v = verdict(dropped, base, "higher")
    assert v.regressed and v.high < v.baseline_iqm and v.word == "REGRESSION"
    # the same drop on other seeds: flagged too
    other_drop = {s + 10: v - 150 for s, v in base.items()}
    assert verdict(other_drop, base, "higher").regressed
    assert not verdict({s + 10: v - 5 for s, v in base.items()}, base, "higher").regressed
    # half the seeds collapsing: flagged
    half = {s: (v if s % 2 else 40.0) for s, v in base.items()}
    assert verdict(half, base, "higher").regressed


def test_the_rule_reads_lower_is_better_and_compares_on_the_same_seeds():
    base = {1: 0.5, 2: 0.8, 3: 0.6, 4: 30.0, 5: 25.0}  # bits wrong: lower is better
    assert not verdict({1: 0.5, 2: 0.8, 3: 0.6}, base, "lower").regressed  # same seeds, same scores
    assert verdict({1: 5.0, 2: 6.0, 3: 5.5}, base, "lower").regressed
    assert not verdict({1: 0.1, 2: 0.2, 3: 0.1}, base, "lower").regressed  # better is never a regression
    # seeds the baseline lacks: its IQM over all its seeds, and the interval of the difference
    v = verdict({8: 5.0, 9: 6.0}, base, "lower")
    assert v.baseline_iqm == pytest.approx(np.mean(sorted(base.values())[1:4])) and not v.regressed
    assert verdict({8: 50.0, 9: 60.0, 10: 55.0}, base, "lower").regressed
    assert verdict({1: 1.0}, None, "lower").word == "no baseline"


# ------------------------------------------------------------------------------ scoring stored runs
def _stored_run(root: Path, key: str, folder: str, points: list[tuple[int, float]], tag: str) -> None:
    run = root / key / "checkpoint_000001" / folder
    run.mkdir(parents=True)
    with SummaryWriter(str(run)) as w:
        for step, value in points:
            w.add_scalar(tag, value, step)
    (run / "config.json").write_text('{"commit": "abc1234"}')


def test_scores_reports_and_a_subset_merges_into_the_given_file(tmp_path):
    task = Task("t", "classic", "dqn", "CartPole-v1", "preset=cartpole", 100, 3,
                (Metric("eval/episodic_return", "best", "higher", 400.0),
                 Metric("eval/episodic_return", "final", "higher")))
    root = tmp_path / "store"
    _stored_run(root, "t__1", "CartPole-v1__dqn__1__1", [(50, 500.0), (100, 300.0)], "eval/episodic_return")
    _stored_run(root, "t__2", "CartPole-v1__dqn__2__1", [(50, 100.0), (100, 450.0)], "eval/episodic_return")
    _stored_run(root, "t__3", "CartPole-v1__dqn__3__1", [(50, 100.0)], "eval/episodic_return")  # unfinished
    plan = [(task, [1, 2, 3])]
    scores, curves, missing = learning.score_runs(plan, root, "HEAD")
    assert [(r["score_kind"], r["seed"], r["score"]) for r in scores] == [
        ("best", 1, 500.0), ("final", 1, 300.0), ("best", 2, 450.0), ("final", 2, 450.0)]
    assert scores[0]["commit"] == "abc1234" and len(curves) == 4  # each seed's two points, once for both metrics
    assert len(missing) == 2 and all("t seed 3: unfinished" in m for m in missing)
    rows = learning.report_rows(plan, scores, None, 200)
    assert rows[0][:4] == ["t", "eval/episodic_return", "best", 2] and rows[0][8] == "2/2"
    # a subset given --results replaces its task's rows and keeps the others'
    results = tmp_path / "classic.csv"
    with open(results, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(learning.SCORE_FIELDS))
        writer.writeheader()
        writer.writerow({k: "" for k in learning.SCORE_FIELDS} | {"suite": "classic", "task": "other", "metric": "m",
                                                                  "seed": 1, "score": 1.0})
        writer.writerow({k: "" for k in learning.SCORE_FIELDS} | {"suite": "classic", "task": "t", "metric": "m",
                                                                  "seed": 1, "score": 9.0})
    args = LearningArgs(suite="classic", tasks=("t",), results=str(results), reps=50)
    learning.write_outputs(args, plan, root, scores, curves, rows)
    with open(results, newline="") as f:
        kept = list(csv.DictReader(f))
    assert [(r["task"], r["score"]) for r in kept] == [("other", "1.0"), *[("t", str(r["score"])) for r in scores]]
    assert "| t | eval/episodic_return | best | 2 |" in (root / "report" / "learning.md").read_text()
    baselines = learning.read_baselines([str(results)], "classic")
    assert baselines[("t", "eval/episodic_return", "final")] == {1: 300.0, 2: 450.0}
    assert baselines[("t", "eval/episodic_return", "best")] == {1: 500.0, 2: 450.0}


def test_a_crashed_run_is_reported_with_its_log_and_the_rest_is_scored(tmp_path, capsys, monkeypatch):
    """The sweep reports a run failed (after its retries): the benchmark scores the others,
    names the failed run and its log, and exits 1 after writing what it has."""
    from experiments import sweep

    root = tmp_path / "runs" / "classic-quick"

    def fake_sweep(args, planned):
        rows = []
        for run in planned:
            if run["key"] == "ppo-cartpole__2":
                rows.append(sweep.TrialRow(run["key"], run["env_id"], run["seed"], run["config"], "failed", None,
                                           "storage/ppo-cartpole__2/checkpoint_000000/run.log"))
                continue
            task = run["task"]
            _stored_run(root, run["key"], f"CartPole-v1__{task.split('-')[0]}__{run['seed']}__1",
                        [(25_000, 200.0), (100_000 if task.startswith("ppo") else 50_000, 480.0)],
                        "eval/episodic_return")
            rows.append(sweep.TrialRow(run["key"], run["env_id"], run["seed"], run["config"], "done", 480.0, ""))
        return {"rows": rows, "storage": str(root), "stopped": None}

    monkeypatch.setattr(sweep, "run", fake_sweep)
    with pytest.raises(SystemExit) as e:
        learning.main(["--suite", "classic", "--quick", "--runs-dir", str(tmp_path / "runs")])
    assert e.value.code == 1
    out, err = capsys.readouterr()
    assert "failed: ppo-cartpole__2 failed (log: storage/ppo-cartpole__2/checkpoint_000000/run.log)" in err
    # the stored runs say commit abc1234, not this tree's: scored, and said so
    assert "trained at other commits (abc1234) were scored, not re-run" in err and "fresh --runs-dir" in err
    assert learning._short("abc1234def5678+modified") == "abc1234+modified"  # a dirty tree's runs say so
    assert "| dqn-cartpole | eval/episodic_return | final | 3 | 480 |" in out
    assert "| ppo-cartpole | eval/episodic_return | final | 2 | 480 |" in out  # the two that ran
    with open(root / "scores.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5
