"""VIPER: a CartPole DQN distilled into a readable tree that plays as well as it; bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from experiments import distill, driver, ppo
from foundations.trees import DecisionTreeClassifier

TEACHER = Path(__file__).resolve().parents[1] / "fixtures" / "cartpole-dqn.pt"
"""A DQN trained by ``python -m experiments.dqn --preset cartpole --seed 2 --eval-interval 2500``
(commit 464aa7a, 50k steps, final evaluation 500), its checkpoint without the replay, the action
log and Adam's moments (not needed to act): a fixed teacher, so the test distils, not trains."""


@pytest.mark.slow
def test_viper_distils_the_cartpole_dqn_into_a_depth_five_tree_that_keeps_its_score(tmp_path, capsys):
    r = distill.main(["--agent-checkpoint", str(TEACHER), "--max-depth", "5", "--iterations", "3", "--criterion", "entropy",
                      "--episodes", "10", "--eval-episodes", "100", "--runs-dir", str(tmp_path)])
    assert r["teacher_return"] >= 475
    kept = r["kept"]
    assert kept["depth"] <= 5 and kept["return"] >= 475, r["history"]
    assert 0.5 < kept["fidelity"] <= 1.0
    run_dir = r["run_dir"]
    tree = DecisionTreeClassifier().load_state_dict(torch.load(run_dir / "tree.pt", weights_only=True))
    assert tree.get_depth() <= 5 and (run_dir / "tree.png").stat().st_size > 5_000
    rules = (run_dir / "tree.txt").read_text()
    assert "pole angular velocity" in rules and "class: push right" in rules
    assert [h["iteration"] for h in r["history"]] == [0, 1, 2] and (run_dir / "iterations.csv").is_file()
    assert "kept the tree of iteration" in capsys.readouterr().out


def _ppo_checkpoint(tmp_path: Path, env_id: str, extra: list[str]) -> Path:
    argv = ["--env-id", env_id, "--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu",
            "--total-steps", "256", "--eval-interval", "0", "--eval-episodes", "1", *extra]
    args = driver.parse_args(argv, ppo.Args(), ppo.ALGORITHM, "")
    args = dataclasses.replace(args, agent=dataclasses.replace(args.agent, num_envs=2, num_steps=64))
    _, run_dir = driver.train(args, ppo.ALGORITHM)
    return run_dir / "checkpoint.pt"


def test_bad_teachers_are_one_line_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "runs"
    atari = tmp_path / "atari.pt"
    torch.save({"format": 1, "experiment": "dqn_atari", "args": {}, "agent": {}}, atari)
    cases = [
        (["--agent-checkpoint", str(atari)], "image observations, not readable as rules"),
        (["--agent-checkpoint", str(tmp_path / "none.pt")], "checkpoint not found"),
        (["--agent-checkpoint", str(_ppo_checkpoint(tmp_path, "Pendulum-v1", ["--preset", "pendulum"]))],
         "continuous actions"),
        (["--agent-checkpoint", str(_ppo_checkpoint(tmp_path, "CartPolePositionOnly-v1", ["--core", "lstm"]))],
         "recurrent policy"),
        (["--agent-checkpoint", str(TEACHER), "--max-depth", "0"], "--max-depth must be >= 1, got 0"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            distill.main([*argv, "--runs-dir", str(out)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and message in err and len(err.splitlines()) == 1, (argv, err)
    assert not out.exists()


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0"])
def test_a_ppo_teacher_is_distilled_with_log_probability_gaps(tmp_path, env_id):
    checkpoint = _ppo_checkpoint(tmp_path, env_id, [])
    r = distill.main(["--agent-checkpoint", str(checkpoint), "--iterations", "2", "--episodes", "2",
                      "--eval-episodes", "2", "--max-depth", "2", "--runs-dir", str(tmp_path / "d")])
    assert len(r["history"]) == 2 and r["tree"].get_depth() <= 2
    assert 0.0 <= r["kept"]["fidelity"] <= 1.0
    names = distill.FEATURE_NAMES[env_id]
    assert any(name in r["rules"] for name in names) or r["tree"].node_count == 1
