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
def _sweep_argv(root: Path, *extra: str) -> list[str]:
    return ["--experiment", "dqn", "--env-ids", "CartPole-v1", "Acrobot-v1", "--seeds", "1", "2",
            "--configs", TINY, "--runs-dir", str(root), "--quiet", *extra]  # fmt: skip


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "cfg0").iterdir() if p.is_dir())


@pytest.mark.slow
def test_local_sweep_runs_in_parallel_skips_finished_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "sweep"
    result = sweep.main(_sweep_argv(root, "--workers", "2"))
    assert all(spec.status == "done" for spec in result["runs"].values()) and len(result["runs"]) == 4
    first = _run_dirs(root)
    assert len(first) == 4 and all((d / "checkpoint.pt").is_file() for d in first)

    again = sweep.main(_sweep_argv(root, "--workers", "2"))
    assert again["skipped"] == 4 and _run_dirs(root) == first  # nothing ran again

    # A run the manifest still shows as running (a sweep killed as it ended) whose checkpoint
    # reached its end is done: not run again. (Interrupted runs resuming: the SIGTERM test.)
    manifest = json.loads((root / "sweep.json").read_text())
    manifest["runs"][0]["status"] = "running"
    (root / "sweep.json").write_text(json.dumps(manifest))
    resumed = sweep.main(_sweep_argv(root, "--workers", "2"))
    assert resumed["skipped"] == 4 and _run_dirs(root) == first
    assert json.loads((root / "sweep.json").read_text())["runs"][0]["status"] == "done"
    log = (root / "logs" / (manifest["runs"][0]["key"].replace("/", "__") + ".log")).read_text()
    assert len([line for line in log.splitlines() if line.startswith("$ ")]) == 1
    r = compare.main([str(root), "--out", str(tmp_path / "report"), "--last", "1"])
    # Acrobot episodes outlast 300 steps: no episodic return logged, so those runs are left out
    assert list(r["groups"]) == [("CartPole-v1", "dqn")] and len(r["groups"][("CartPole-v1", "dqn")]) == 2
    assert "2 run(s) without 'charts/episodic_return' left out" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_sweep_skips_its_finished_runs_when_run_again(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "experiments.sweep", *_sweep_argv(root, "--workers", "1")]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    deadline = time.time() + 240
    done: list[str] = []
    while time.time() < deadline and not done:
        time.sleep(0.5)
        if (root / "sweep.json").is_file():
            try:
                runs = json.loads((root / "sweep.json").read_text())["runs"]
            except json.JSONDecodeError:
                continue
            done = [r["key"] for r in runs if r["status"] == "done"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done, "no run finished before the deadline"
    saved = {r["key"]: r["run_dir"] for r in json.loads((root / "sweep.json").read_text())["runs"]}
    before = {p.name for p in _run_dirs(root)}
    result = sweep.main(_sweep_argv(root, "--workers", "2"))
    assert result["skipped"] >= len(done)
    assert all(spec.status == "done" for spec in result["runs"].values())
    for key in done:  # finished runs were not run again: same directory, nothing new for them
        assert result["runs"][key].run_dir == saved[key]
    assert before <= {p.name for p in _run_dirs(root)}
    assert len(_run_dirs(root)) <= 5  # at most the killed run, if it had no checkpoint yet, started over


LONG = "total-steps=10000000 learning-starts=100 eval-interval=0 log-interval=100"


def _processes_with(text: str) -> list[int]:
    """PIDs whose command line mentions ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _start_sweep(root: Path) -> subprocess.Popen:
    argv = ["--experiment", "dqn", "--env-ids", "CartPole-v1", "--seeds", "1", "2", "3", "--configs", LONG,
            "--runs-dir", str(root), "--workers", "2", "--quiet"]
    return subprocess.Popen([sys.executable, "-m", "experiments.sweep", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])


def _wait_running(root: Path, proc: subprocess.Popen, n: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        events = list(root.glob("cfg0/*/events.out.tfevents.*"))
        if len(events) >= n and all(e.stat().st_size > 2_000 for e in events):
            return
        time.sleep(0.2)
    raise AssertionError("the sweep's runs did not start logging")


@pytest.mark.slow
def test_sweep_stopped_by_sigterm_checkpoints_its_runs_and_resumes_them(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    proc = _start_sweep(root)
    _wait_running(root, proc, 2)
    proc.send_signal(signal.SIGTERM)  # to the sweep alone: it forwards the signal
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "waiting for 2 running run(s) to checkpoint" in err
    runs = json.loads((root / "sweep.json").read_text())["runs"]
    assert sorted(r["status"] for r in runs) == ["interrupted", "interrupted", "pending"]
    assert all((Path(r["run_dir"]) / "checkpoint.pt").is_file() for r in runs if r["status"] == "interrupted")
    assert _processes_with(str(root)) == []  # no run outlived the sweep
    again = _start_sweep(root)  # the same command resumes the interrupted runs
    _wait_running(root, again, 4)  # a resumed run writes a second event file in its directory
    again.send_signal(signal.SIGINT)
    again.communicate(timeout=120)
    assert again.returncode == 130
    logs = [p.read_text() for p in (root / "logs").iterdir()]
    assert sum("--resume" in log for log in logs) == 2


@pytest.mark.slow
def test_killed_sweep_leaves_no_orphans_and_two_processes_never_share_a_run(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    proc = _start_sweep(root)
    _wait_running(root, proc, 2)
    children = [pid for pid in _processes_with(str(root)) if pid != proc.pid]
    assert len(children) == 2
    run_dir = next((root / "cfg0").iterdir())
    second = subprocess.run([sys.executable, "-m", "experiments.dqn", "--resume", str(run_dir / "checkpoint.pt"),
                             "--no-progress"], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert second.returncode == 2  # no checkpoint yet, or the directory is locked: either way refused, one line
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    proc.kill()  # SIGKILL: the sweep cannot forward anything; its children get SIGTERM from the kernel
    proc.communicate()
    deadline = time.time() + 60
    while time.time() < deadline and _processes_with(str(root)):
        time.sleep(0.2)
    assert _processes_with(str(root)) == []
    assert all((d / "checkpoint.pt").is_file() for d in (root / "cfg0").iterdir() if d.is_dir())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (pip install -e '.[cluster]')")
def test_sweep_on_a_local_ray_instance(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    result = sweep.main(_sweep_argv(root, "--ray-address", "local", "--ray-num-cpus", "2"))
    assert all(spec.status == "done" for spec in result["runs"].values()) and len(result["runs"]) == 4
    assert len(_run_dirs(root)) == 4


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed (pip install -e '.[cluster]')")
def test_sweep_without_a_ray_cluster_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        sweep.main(_sweep_argv(tmp_path / "sweep", "--ray-address", "auto"))
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("error: cannot reach a Ray cluster at --ray-address auto (")
    assert err.endswith("or run on this machine with --ray-address local")


def test_sweep_refuses_flags_it_sets_and_plans_the_grid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sets --seed, which the sweep sets itself"):
        sweep.SweepArgs(configs=("seed=3",))
    assert sweep.config_flags("total-steps=300 double") == ["--total-steps", "300", "--double"]
    assert sweep.config_flags("--lr 0.1 --double") == ["--lr", "0.1", "--double"]
    args = sweep.SweepArgs(experiment="ppo", env_ids=("CartPole-v1", "ALE/Pong-v5"), seeds=(1, 2), configs=("", "x=1"))
    keys = [spec.key for spec in sweep.plan(args)]
    assert len(keys) == 8 and len(set(keys)) == 8 and keys[0] == "cfg0/CartPole-v1__ppo__1"
    assert "cfg1/ALE-Pong-v5__ppo__2" in keys
