"""Sweeps (local and Ray) and the comparison report, on runs with known numbers."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from torch.utils.tensorboard import SummaryWriter

from experiments import compare, rl_stats, sweep
from experiments.atari_scores import SCORES, game_name, human_normalized
from tests.waiting import wait_until

TINY = "total-steps=300 learning-starts=100 eval-interval=0 eval-episodes=1 log-interval=100 checkpoint-interval=100"


# ----------------------------------------------------------------------------------- statistics
def test_aggregates_by_hand() -> None:
    scores = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 100.0]])  # [runs, tasks]
    assert rl_stats.mean(scores) == pytest.approx((2.0 + 104 / 3) / 2)
    assert rl_stats.median(scores) == pytest.approx((2.0 + 104 / 3) / 2)  # two tasks: median = mean
    assert rl_stats.iqm(scores) == pytest.approx(np.mean([1.0, 2.0, 3.0, 4.0]))  # 6 values, cut 1 each end
    assert rl_stats.optimality_gap(scores) == pytest.approx(1 - np.mean([0, 1, 1, 1, 1, 1]))
    np.testing.assert_allclose(rl_stats.performance_profile(scores, [0.5, 3.5]), [5 / 6, 2 / 6])
    lo, hi = rl_stats.bootstrap_mean_ci(np.array([9.0, 18.0]), reps=2000, rng=np.random.default_rng(0))
    assert (float(lo), float(hi)) == (9.0, 18.0)  # two seeds: the extremes are each drawn with p = 1/4
    lo, hi = rl_stats.stratified_bootstrap_ci(np.full((3, 2), 0.7), rl_stats.iqm)
    assert lo == pytest.approx(0.7) and hi == pytest.approx(0.7)
    with pytest.raises(ValueError, match=r"scores must be a non-empty array \[runs, tasks\]"):
        rl_stats.iqm(np.zeros(3))


@pytest.mark.skipif(importlib.util.find_spec("rliable") is None, reason="rliable not installed (dev extra)")
def test_aggregates_match_rliable() -> None:
    from rliable import metrics

    rng = np.random.default_rng(3)
    for shape in [(5, 1), (3, 7), (10, 4), (7, 57)]:
        scores = rng.normal(0.8, 0.6, size=shape)
        assert rl_stats.iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores), abs=1e-6)
        assert rl_stats.median(scores) == pytest.approx(metrics.aggregate_median(scores), abs=1e-6)
        assert rl_stats.mean(scores) == pytest.approx(metrics.aggregate_mean(scores), abs=1e-6)
        assert rl_stats.optimality_gap(scores) == pytest.approx(metrics.aggregate_optimality_gap(scores), abs=1e-6)


def test_atari_reference_table() -> None:
    assert len(SCORES) == 57
    assert game_name("ALE/Breakout-v5") == "Breakout" and game_name("SpaceInvadersNoFrameskip-v4") == "SpaceInvaders"
    assert game_name("CartPole-v1") is None
    assert human_normalized("ALE/Pong-v5", -20.7) == 0.0 and human_normalized("ALE/Pong-v5", 14.6) == pytest.approx(1.0)
    assert all(human > random for random, human in SCORES.values())


# -------------------------------------------------------------------------------------- compare
def _write_runs(root: Path, envs: tuple[str, ...] = ("ALE/Breakout-v5", "ALE/Pong-v5"),
                seeds: tuple[int, ...] = (1, 2)) -> None:
    """2 envs x 2 experiments x 2 seeds; return at step s is offset + seed * s / 100."""
    for env in envs:
        for exp, offset in (("dqn", 0.0), ("ppo", 5.0)):
            for seed in seeds:
                run_dir = root / f"{env.replace('/', '-')}__{exp}__{seed}__1000"
                writer = SummaryWriter(str(run_dir))
                for step in range(0, 1001, 100):
                    writer.add_scalar("charts/episodic_return", offset + seed * step / 100, step)
                    writer.add_scalar("charts/SPS", 100.0, step)
                writer.close()
                config = {"env_id": env, "experiment": exp, "seed": seed, "config": {"agent.lr": 0.1}}
                (run_dir / "config.json").write_text(json.dumps(config))


def test_compare_report_numbers_and_pictures(tmp_path: Path) -> None:
    _write_runs(tmp_path / "runs")
    r = compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--last", "3", "--group-by", "agent.lr"])
    with open(tmp_path / "report" / "scores.csv") as f:
        rows = {(row["env"], row["group"]): row for row in csv.DictReader(f)}
    # last 3 values: seed 1 -> 8, 9, 10 (mean 9); seed 2 -> 16, 18, 20 (mean 18); ppo adds 5.
    dqn = rows[("ALE/Breakout-v5", "dqn agent.lr=0.1")]
    assert float(dqn["mean final score"]) == 13.5 and int(dqn["seeds"]) == 2
    assert (float(dqn["95% CI low"]), float(dqn["95% CI high"])) == (9.0, 18.0)
    ppo_pong = rows[("ALE/Pong-v5", "ppo agent.lr=0.1")]
    assert float(ppo_pong["mean final score"]) == 18.5
    assert float(ppo_pong["human-normalised"]) == pytest.approx((18.5 + 20.7) / (14.6 + 20.7))
    # aggregates on human-normalised scores, [2 runs, 2 tasks] per group
    matrix = r["matrices"]["dqn agent.lr=0.1"]
    expected = np.array([[(9 - 1.7) / 28.8, (9 + 20.7) / 35.3], [(18 - 1.7) / 28.8, (18 + 20.7) / 35.3]])
    np.testing.assert_allclose(matrix, expected)
    iqm, lo, hi = r["aggregates"]["dqn agent.lr=0.1"]["IQM"]
    assert iqm == pytest.approx(np.mean(np.sort(expected, axis=None)[1:3]), abs=1e-9)
    assert lo <= iqm <= hi
    for name in ("curves-ALE-Breakout-v5.png", "curves-ALE-Pong-v5.png", "aggregates.png", "profile.png"):
        path = tmp_path / "report" / name
        assert path.stat().st_size > 10_000
        pixels = mpimg.imread(path)
        assert pixels.shape[0] > 200 and pixels.std() > 0.05  # a real picture, not a blank canvas
    assert "IQM" in (tmp_path / "report" / "aggregates.md").read_text()
    # wall time: each run's event file spans its events' times (written within this test)
    assert 0 <= float(dqn["median wall time (min)"]) < 1


def test_each_seed_draws_every_run_beside_the_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--each-seed adds one thin line per run, on the mean's grid, with the run's own values there."""
    _write_runs(tmp_path / "runs", envs=("ALE/Pong-v5",))
    axes = []
    subplots = compare.plt.subplots

    def keep(*a, **k):
        fig, ax = subplots(*a, **k)
        axes.append(ax)
        return fig, ax

    monkeypatch.setattr(compare.plt, "subplots", keep)
    for each_seed in (False, True):
        axes.clear()
        compare.run(compare.CompareArgs(run_dirs=(str(tmp_path / "runs"),), out=str(tmp_path / "r"), each_seed=each_seed))
        lines = axes[0].lines  # the first figure is Pong's curves
        assert len(lines) == (6 if each_seed else 2)  # 2 groups, + 2 seeds each
    mean, seed1, seed2 = lines[0], lines[1], lines[2]  # dqn: its mean, then its seeds
    np.testing.assert_allclose(seed1.get_ydata(), np.asarray(seed1.get_xdata()) / 100)  # seed 1: return = step / 100
    np.testing.assert_allclose(mean.get_ydata(), (seed1.get_ydata() + seed2.get_ydata()) / 2)


def test_a_resumed_run_reads_its_newer_points_without_a_restart_warning(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A run resumed from a step-500 checkpoint logs 600.. again in a new event file (with the purge
    step foundations.runlog gives): compare keeps the newer points and TensorBoard's "TensorFlow
    restart" warning is not shown."""
    import logging

    run_dir = tmp_path / "ALE-Pong-v5__dqn__1__1000"
    first = SummaryWriter(str(run_dir), filename_suffix=".a")
    for step in range(0, 801, 100):
        first.add_scalar("charts/episodic_return", 1.0, step)
    first.close()
    second = SummaryWriter(str(run_dir), filename_suffix=".b", purge_step=501)  # as foundations.runlog resumes
    for step in range(600, 1001, 100):
        second.add_scalar("charts/episodic_return", 2.0, step)
    second.close()
    (run_dir / "config.json").write_text(json.dumps({"env_id": "ALE/Pong-v5", "experiment": "dqn", "seed": 1}))
    run = compare.find_runs([str(run_dir)])[0]
    with caplog.at_level(logging.WARNING):
        compare.read_scalars(run, "charts/episodic_return")
    assert run.steps.tolist() == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
    assert run.values.tolist() == [1.0] * 6 + [2.0] * 5
    assert not [r for r in caplog.records if r.name.startswith("tensorboard")]


def test_differences_from_a_baseline_with_their_bootstrap_intervals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write_runs(tmp_path / "runs", envs=("CartPole-v1",))
    r = compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--score", "best",
                      "--baseline", "dqn", "--reps", "4000"])
    # best values: dqn 10 and 20, ppo 15 and 25. Each mean resampled from 2 seeds is lo, mid or hi
    # with odds 1:2:1, so the difference is 5 + (X - Y) with X - Y in -10..10: 2.5% / 97.5% at -5 / 15.
    assert r["finals"][("CartPole-v1", "ppo")].tolist() == [15.0, 25.0]
    (row,) = r["differences"]
    assert row[:4] == ["CartPole-v1", "ppo", "dqn", 5.0] and (row[4], row[5]) == (-5.0, 15.0) and row[6] == "no"
    assert "| CartPole-v1 | ppo | dqn | 5 | -5 | 15 | no |" in capsys.readouterr().out
    header = (tmp_path / "report" / "scores.csv").read_text().splitlines()[0]
    assert header.startswith("env,group,seeds,mean best score,")
    assert rl_stats.bootstrap_difference_ci(np.full(3, 10.0), np.zeros(5)) == (10.0, 10.0)
    lo, hi = rl_stats.bootstrap_difference_ci(np.array([10.0, 11, 12]), np.array([0.0, 1, 2]))
    assert 8 <= lo < 10 < hi <= 12  # every resampled difference lies in 8..12
    with pytest.raises(SystemExit) as e:
        compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / "other"), "--baseline", "sac"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err == "error: --baseline 'sac' names no group; groups: dqn; ppo (--group-by labels groups by configuration values)"
    assert not (tmp_path / "other").exists()


def test_a_summary_redraws_the_same_report_without_the_event_files(tmp_path: Path) -> None:
    _write_runs(tmp_path / "runs")
    summary = tmp_path / "summary.csv"
    first = compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / "a"), "--last", "3", "--group-by",
                          "agent.lr", "--summary", str(summary)])
    rows = list(csv.DictReader(open(summary)))
    assert len(rows) == 2 * 2 * 2 * 11 and rows[0]["group"] == "dqn agent.lr=0.1" and rows[0]["tag"] == "charts/episodic_return"
    shutil.rmtree(tmp_path / "runs")  # only the summary is left
    again = compare.main([str(summary), "--out", str(tmp_path / "b"), "--last", "3"])
    assert (tmp_path / "a" / "scores.md").read_text() == (tmp_path / "b" / "scores.md").read_text()
    assert (tmp_path / "a" / "aggregates.md").read_text() == (tmp_path / "b" / "aggregates.md").read_text()
    assert sorted(p.name for p in (tmp_path / "b").glob("curves-*.png")) == ["curves-ALE-Breakout-v5.png",
                                                                           "curves-ALE-Pong-v5.png"]
    assert set(first["aggregates"]) == set(again["aggregates"])
    with pytest.raises(ValueError, match="holds charts/episodic_return points, not 'eval/episodic_return'"):
        compare.run(compare.CompareArgs(run_dirs=(str(summary),), tag="eval/episodic_return", out=str(tmp_path / "c")))
    with pytest.raises(ValueError, match="--group-by does not apply to summaries"):
        compare.run(compare.CompareArgs(run_dirs=(str(summary),), group_by=("agent.lr",), out=str(tmp_path / "c")))


def test_compare_reads_errors_as_lower_is_better(tmp_path: Path) -> None:
    """Bits wrong: the best of a run is its lowest value, and min-max normalisation maps the
    lowest score to 1, so the aggregates still read "higher is better"."""
    for model, offset in (("ntm", 0.0), ("lstm", 10.0)):
        for seed in (1, 2):
            run_dir = tmp_path / "runs" / f"copy-{model}__memory_task__{seed}__1000"
            writer = SummaryWriter(str(run_dir))
            for step, value in ((100, 30.0), (200, 2.0 + offset + seed), (300, 5.0 + offset + seed)):
                writer.add_scalar("eval/bit_error", value, step)
            writer.close()
            (run_dir / "config.json").write_text(json.dumps({"env_id": "copy", "seed": seed, "config": {"model": model}}))
    out = tmp_path / "report"
    argv = [str(tmp_path / "runs"), "--tag", "eval/bit_error", "--score", "best", "--group-by", "model"]
    r = compare.main([*argv, "--out", str(out)])
    with open(out / "scores.csv") as f:
        best = {row["group"]: float(row["mean best score"]) for row in csv.DictReader(f)}
    # the lowest values: 3 and 4 for the NTM's seeds, 13 and 14 for the LSTM's (not 30, the highest)
    assert best == {"memory_task model=ntm": 3.5, "memory_task model=lstm": 13.5}
    assert "lower is better" in (out / "scores.md").read_text()
    # min-max over the env: the NTM's seeds are at the top of the scale, the LSTM's at the bottom
    np.testing.assert_allclose(r["matrices"]["memory_task model=ntm"].ravel(), [1.0, 10 / 11])  # (14 - s) / (14 - 3)
    np.testing.assert_allclose(r["matrices"]["memory_task model=lstm"].ravel(), [1 / 11, 0.0])
    forced = compare.main([*argv, "--higher-is-better", "--out", str(tmp_path / "forced")])
    assert forced["matrices"]["memory_task model=ntm"].ravel().tolist() == [0.0, 0.0]  # best = 30 for everyone


def test_compare_bad_input_names_what_exists(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert "no TensorBoard event files under" in capsys.readouterr().err
    _write_runs(tmp_path / "runs")
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "runs"), "--tag", "eval/episodic_return", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert "no run has the tag 'eval/episodic_return'; tags present: ['charts/SPS', 'charts/episodic_return']" in err
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "runs"), "--group-by", "agent.gamma", "--out", str(tmp_path / "r")])
    assert "--group-by 'agent.gamma': not in" in capsys.readouterr().err


def test_runs_from_before_and_after_the_core_options_were_nested_group_together(tmp_path: Path) -> None:
    """An old run's config.json has ``agent.core``, a new one's ``agent.core.kind``: either
    --group-by name puts both in the same group, labelled with the name given."""
    _write_runs(tmp_path / "runs", envs=("CartPole-v1",))
    for i, run_dir in enumerate(sorted((tmp_path / "runs").iterdir())):
        meta = json.loads((run_dir / "config.json").read_text())
        meta["config"] = {"agent.core": "lstm"} if i % 2 else {"agent.core.kind": "lstm", "agent.core.size": 8}
        (run_dir / "config.json").write_text(json.dumps(meta))
    for key in ("agent.core", "agent.core.kind"):
        r = compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / key), "--last", "1", "--group-by", key])
        assert {group: len(paths) for group, paths in r["groups"].items()} == {
            ("CartPole-v1", f"dqn {key}=lstm"): 2, ("CartPole-v1", f"ppo {key}=lstm"): 2}
    assert compare.config_value({"agent.core_size": 64}, "agent.core.size") == 64
    with pytest.raises(KeyError):
        compare.config_value({"agent.core.kind": "gru"}, "agent.core_size")


def test_compare_warns_of_broken_event_files_and_unequal_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    _write_runs(runs, envs=("CartPole-v1",), seeds=(1, 2, 3))
    _write_runs(runs, envs=("Acrobot-v1",), seeds=(1, 2))
    broken = next((runs / "CartPole-v1__dqn__3__1000").glob("events.out.tfevents.*"))
    broken.write_bytes(broken.read_bytes()[:-7])  # cut inside the last record
    garbage = runs / "CartPole-v1__dqn__2__1000" / "events.out.tfevents.0.garbage"
    garbage.write_bytes(b"this is not an event file at all")
    r = compare.main([str(runs), "--out", str(tmp_path / "report"), "--last", "2"])
    err = capsys.readouterr().err.splitlines()
    assert f"warning: {broken}: truncated or not an event file: a record of" in "\n".join(err)
    assert any(line.startswith(f"warning: {garbage}: ") for line in err)
    assert ("warning: group 'dqn' has unequal seeds across envs (Acrobot-v1: 1 2; CartPole-v1: 1 2 3); its "
            "aggregates use seeds 1 2") in err
    assert r["matrices"]["dqn"].shape == (2, 2)  # seeds 1 and 2 on both envs, matched by seed
    assert event_rows(runs / "CartPole-v1__dqn__3__1000") == 11  # the cut fell in the last (SPS) record


def event_rows(run_dir: Path) -> int:
    run = compare.Run(run_dir, "e", "x", 0, {})
    compare.read_scalars(run, "charts/episodic_return")
    return run.values.size


def test_compare_refuses_to_mix_human_and_minmax_normalisation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    _write_runs(runs, envs=("ALE/Pong-v5", "CartPole-v1"))
    with pytest.raises(SystemExit) as e:
        compare.main([str(runs), "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "human-normalised Atari scores (ALE/Pong-v5) with min-max-normalised ones " \
        "(CartPole-v1)" in err and "--normalize minmax" in err
    r = compare.main([str(runs), "--out", str(tmp_path / "report"), "--normalize", "minmax"])
    assert r["matrices"]["dqn"].shape == (2, 2)


# ---------------------------------------------------------------------------------------- sweep
_no_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None,
                             reason="Ray Tune not installed (pip install -e '.[cluster]')")


def needs_ray(test):
    """Skipped without Ray Tune; under ``pytest -n`` the Ray tests share one worker, one at a
    time, since each starts a Ray instance that wants the machine's cores."""
    return _no_ray(pytest.mark.xdist_group("ray")(test))
REPO = Path(__file__).resolve().parents[2]


def _sweep_argv(storage: Path, scratch: Path, *extra: str) -> list[str]:
    return ["--experiment", "dqn", "--env-ids", "CartPole-v1", "Acrobot-v1", "--seeds", "1", "2",
            "--configs", TINY, "--storage", str(storage), "--scratch-dir", str(scratch), "--ray-num-cpus", "2",
            "--quiet", *extra]  # fmt: skip


def _stored_runs(storage: Path) -> dict[str, Path]:
    """trial name -> the run folder in its (only) stored checkpoint."""
    out = {}
    for trial_dir in sorted(p for p in storage.iterdir() if p.is_dir()):
        (checkpoint,) = trial_dir.glob("checkpoint_*")
        (run,) = [p for p in checkpoint.iterdir() if p.is_dir()]
        out[trial_dir.name] = run
    return out


@pytest.mark.slow
@needs_ray
def test_a_grid_on_local_ray_delivers_every_run_to_storage_and_compare_reads_it(tmp_path: Path) -> None:
    storage, scratch = tmp_path / "storage" / "grid", tmp_path / "worker-scratch"  # not under storage
    result = sweep.main(_sweep_argv(storage, scratch))
    assert [r.status for r in result["rows"]] == ["done"] * 4
    runs = _stored_runs(storage)
    assert sorted(runs) == ["cfg0__Acrobot-v1__dqn__1", "cfg0__Acrobot-v1__dqn__2", "cfg0__CartPole-v1__dqn__1",
                            "cfg0__CartPole-v1__dqn__2"]
    for name, run in runs.items():
        assert {"config.json", "checkpoint.pt"} <= {p.name for p in run.iterdir()}, name
        assert list(run.glob("events.out.tfevents.*")) and (run.parent / "run.log").is_file()
        assert json.loads((run / "config.json").read_text())["seed"] == int(name[-1])
        assert compare.event_file_problem(next(run.glob("events.out.tfevents.*"))) is None
    assert list(scratch.iterdir()) == []  # the trials cleaned their working folders: storage holds it all
    r = compare.main([str(storage), "--out", str(tmp_path / "report"), "--last", "1"])
    # Acrobot episodes outlast 300 steps: no episodic return logged, so those runs are left out
    assert list(r["groups"]) == [("CartPole-v1", "dqn")] and len(r["groups"][("CartPole-v1", "dqn")]) == 2
    again = sweep.main(_sweep_argv(storage, scratch))  # the same command: restored, nothing re-run
    assert [r.status for r in again["rows"]] == ["done"] * 4 and _stored_runs(storage) == runs
    assert all((run.parent / "run.log").read_text().count("$ ") == 1 for run in runs.values())


def _tags_steps(run_dir: Path, tag: str) -> list[int]:
    run = compare.Run(run_dir, "e", "x", 0, {})
    compare.read_scalars(run, tag)
    return [int(s) for s in run.steps]


@pytest.mark.slow
@needs_ray
def test_an_interrupted_sweep_resumes_without_rerunning_and_logs_every_point_once(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    base = "learning-starts=100 eval-interval=1000 eval-episodes=1 log-interval=100 checkpoint-interval=200"
    argv = ["--experiment", "dqn", "--env-ids", "CartPole-v1", "--seeds", "1", "--configs", f"total-steps=300 {base}",
            f"total-steps=4000 {base}", "--storage", str(storage), "--scratch-dir", str(tmp_path / "scratch"),
            "--ray-num-cpus", "1"]  # fmt: skip
    output = tmp_path / "sweep.out"  # a file, not a pipe: a full pipe would stall the driver while we wait
    with open(output, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "experiments.sweep", *argv], stdout=sink,
                                stderr=subprocess.STDOUT, text=True, cwd=REPO)
        try:
            wait_until(lambda: list(storage.glob("cfg1__*/checkpoint_*")), "the second run's first checkpoint", proc,
                       poll_s=0.2)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = output.read_text()
    assert proc.returncode == 130, out
    assert "waiting for 1 running trial(s) to checkpoint" in out and "resume with the same command" in out
    assert "1 done, 1 interrupted" in out
    first = _stored_runs(storage)["cfg0__CartPole-v1__dqn__1"]
    result = sweep.main([*argv, "--quiet"])
    assert [r.status for r in result["rows"]] == ["done", "done"]
    runs = _stored_runs(storage)
    assert runs["cfg0__CartPole-v1__dqn__1"] == first  # finished: not run again
    log = (runs["cfg1__CartPole-v1__dqn__1"].parent / "run.log").read_text()
    assert log.count("$ ") == 2 and "--resume" in log and "interrupted (SIGINT) at step" in log
    resumed = runs["cfg1__CartPole-v1__dqn__1"]
    assert len(list(resumed.glob("events.out.tfevents.*"))) == 2  # the first attempt's and the resumed one's
    steps = _tags_steps(resumed, "charts/SPS")
    assert steps == list(range(100, 4001, 100))  # every point once, on the uninterrupted run's cadence


@pytest.mark.slow
@needs_ray
def test_a_crashing_trial_is_retried_then_reported_failed_with_its_log(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    argv = ["--experiment", "dqn", "--env-ids", "CartPole-v1", "--seeds", "1", "--configs", "total-steps=many",
            "--storage", str(tmp_path / "storage"), "--max-failures", "1", "--ray-num-cpus", "1", "--quiet"]
    with pytest.raises(SystemExit) as e:
        sweep.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 1
    (row,) = [line for line in err.splitlines() if line.startswith("1 run(s) did not finish")]
    log = Path(row.split("(log: ")[1].rstrip(")"))
    assert log.name == "run.log" and log.read_text().count("$ ") == 2  # the first attempt and one retry
    assert "total-steps" in log.read_text()


@needs_ray
def test_sweep_bad_input_is_one_line_before_any_trial(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def error(*extra: str) -> str:
        with pytest.raises(SystemExit) as e:
            sweep.main(_sweep_argv(tmp_path / "s", tmp_path / "scratch", *extra))
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and "\n" not in err and "Traceback" not in err
        return err

    err = error("--ray-address", "auto")
    assert err.startswith("error: cannot reach a Ray cluster at --ray-address auto (") and "ray start --head" in err
    port = _free_port()  # nothing listens there: refused at once, not after Ray's minutes of retries
    assert error("--ray-address", f"127.0.0.1:{port}").startswith(
        f"error: cannot reach a Ray cluster at --ray-address 127.0.0.1:{port} (Connection refused)")
    err = error("--storage", "nosuchfs://bucket/sweep")
    assert err.startswith("error: --storage nosuchfs://bucket/sweep: no filesystem for it here (")
    err = error("--gpus-per-run", "0.5")
    assert err == ("error: --gpus-per-run 0.5: the Ray cluster has 0 GPU(s); drop --gpus-per-run or connect to a "
                   "cluster with GPUs (--ray-address)")
    assert error("--resume").startswith("error: --resume: no sweep to restore at")
    # a second sweep on a storage another one is using (it would run every trial twice into it)
    from foundations.runlog import lock_run_dir
    held = lock_run_dir(tmp_path / "s")
    try:
        assert error().startswith(f"error: {(tmp_path / 's').resolve()} is in use by another process (pid {os.getpid()})")
    finally:
        held.close()
    assert not (tmp_path / "scratch").exists()  # nothing started


def test_sweep_refuses_flags_it_sets_and_plans_the_grid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sets --seed, which the sweep sets itself"):
        sweep.SweepArgs(configs=("seed=3",))
    assert sweep.config_flags("total-steps=300 double") == ["--total-steps", "300", "--double"]
    assert sweep.config_flags("--lr 0.1 --double") == ["--lr", "0.1", "--double"]
    args = sweep.SweepArgs(experiment="ppo", env_ids=("CartPole-v1", "ALE/Pong-v5"), seeds=(1, 2), configs=("", "x=1"))
    keys = [run["key"] for run in sweep.plan(args)]
    assert len(keys) == 8 and len(set(keys)) == 8 and keys[0] == "cfg0__CartPole-v1__ppo__1"
    assert "cfg1__ALE-Pong-v5__ppo__2" in keys
    assert sweep.runtime_env()["working_dir"] == str(REPO) and "runs" in sweep.runtime_env()["excludes"]


def test_a_snapshot_cuts_event_files_at_their_last_whole_record(tmp_path: Path) -> None:
    run = tmp_path / "scratch" / "runs" / "CartPole-v1__dqn__1__5"
    writer = SummaryWriter(str(run))
    for step in range(10):
        writer.add_scalar("x", float(step), step)
    writer.close()
    (events,) = run.glob("events.out.tfevents.*")
    whole = events.read_bytes()
    events.write_bytes(whole + whole[40:47])  # a writer caught mid-record
    (run / "checkpoint.pt").write_bytes(b"ckpt")
    (run / ".lock").write_text("123")
    (tmp_path / "scratch" / "run.log").write_text("$ python -m experiments.dqn\n")
    out = sweep.snapshot(tmp_path / "scratch", run, tmp_path / "snap")
    copy = out / run.name
    assert sorted(p.name for p in copy.iterdir()) == sorted(["checkpoint.pt", events.name])
    assert (copy / events.name).read_bytes() == whole and (out / "run.log").is_file()
    assert os.path.samefile(copy / "checkpoint.pt", run / "checkpoint.pt")  # a link, not a copy
    assert _tags_steps(copy, "x") == list(range(10))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_ray
def test_on_a_cluster_the_trials_run_the_code_shipped_with_the_job(tmp_path: Path) -> None:
    """A separately started Ray head (as on a cluster): the trial's run uses the copy of the
    project Ray unpacked from the job's runtime_env, not this checkout."""
    import socket

    port = _free_port()
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, f"Ray head on port {port}", head, poll_s=0.5)
        time.sleep(3)  # the head's other services
        argv = ["--experiment", "dqn", "--env-ids", "CartPole-v1", "--seeds", "1", "--configs", TINY,
                "--storage", str(tmp_path / "storage"), "--ray-address", f"127.0.0.1:{port}", "--quiet"]
        # the driver in a process of its own, as a user runs it (this one has met other Ray instances)
        out = subprocess.run([sys.executable, "-m", "experiments.sweep", *argv], capture_output=True, text=True,
                             cwd=REPO, env={**os.environ, "RAY_AUTH_MODE": "disabled"}, timeout=300)
        assert out.returncode == 0 and "1 done, 0 interrupted, 0 failed" in out.stdout, out.stderr[-2000:]
        (run,) = _stored_runs(tmp_path / "storage").values()
        first = (run.parent / "run.log").read_text().splitlines()[0]
        assert first.startswith("# on ") and "_ray_pkg_" in first and str(REPO) not in first
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
