"""The PQN experiment: exact resume, Atari ids, bad input as one line, learning on CartPole."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.pqn import PRESETS
from experiments import driver, pqn
from foundations.runlog import load_checkpoint


def _args(tmp_path, argv=(), **changes) -> pqn.Args:
    args = driver.parse_args(["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", *argv], pqn.Args(),
                             pqn.ALGORITHM, "")
    config = dataclasses.replace(args.agent, **{**dict(total_steps=2048, num_envs=4, num_steps=32, num_minibatches=4,
                                                      update_epochs=2), **changes})
    loop = dataclasses.replace(args.loop, eval_interval=1024, eval_episodes=2, log_interval=256)
    return dataclasses.replace(args, agent=config, loop=loop)


def test_resume_mid_rollout_gives_the_same_network_as_an_uninterrupted_run(tmp_path):
    straight, straight_dir = driver.train(_args(tmp_path / "a"), pqn.ALGORITHM)
    args = _args(tmp_path / "b")
    half, half_dir = driver.train(args, pqn.ALGORITHM, stop_step=1000)  # 1000: inside a 128-step rollout
    assert half.step == 1000
    resumed, resumed_dir = driver.train(dataclasses.replace(args, resume=str(half_dir / "checkpoint.pt")), pqn.ALGORITHM)
    assert resumed_dir == half_dir and resumed.step == straight.step == 2048
    a, b = load_checkpoint(straight_dir / "checkpoint.pt"), load_checkpoint(resumed_dir / "checkpoint.pt")
    for key, value in a["agent"]["q"].items():
        assert torch.equal(value, b["agent"]["q"][key]), key
    assert a["agent"]["updates"] == b["agent"]["updates"] == 2048 // 128 * 2 * 4
    assert torch.equal(a["loop"]["actions"], b["loop"]["actions"])
    assert straight.evaluations == resumed.evaluations and [s for s, _ in straight.evaluations] == [1024, 2048]


def test_an_atari_id_trains_the_layer_normed_nature_cnn_on_uint8_frames(tmp_path):
    argv = ["--env-id", "ALE/Pong-v5", "--preset", "atari", "--total-steps", "256", "--num-envs", "2",
            "--num-steps", "64", "--eval-interval", "0", "--eval-episodes", "1", "--max-episode-frames", "400"]
    args = driver.parse_args(["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", *argv], pqn.Args(),
                             pqn.ALGORITHM, "")
    result, run_dir = driver.train(args, pqn.ALGORITHM)
    assert result.step == 256 and len(result.evaluations) == 1
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["agent"]["rollout"]["obs"].dtype == torch.uint8
    assert state["agent"]["rollout"]["obs"].shape == (64, 2, 4, 84, 84)
    assert "trunk.body.1.weight" in state["agent"]["q"]  # the first conv's LayerNorm
    assert state["agent"]["updates"] == 2 * 4 * 4


@pytest.mark.parametrize("argv,expected", [
    (["--env-id", "Pendulum-v1"], "error: PQN needs a discrete action space (it maximises over actions), got Box("),
    (["--num-envs", "3", "--num-steps", "10", "--num-minibatches", "4"],
     "error: PQNConfig: num_envs * num_steps = 3 * 10 = 30 must divide into num_minibatches = 4 equal minibatches"),
    (["--q-lambda", "1.5"], "error: PQNConfig.q_lambda must be in [0, 1], got 1.5"),
    (["--preset", "atri"], "error: unknown preset 'atri'"),
])  # fmt: skip
def test_bad_input_is_one_line_with_status_2(tmp_path, capsys, argv, expected):
    with pytest.raises(SystemExit) as e:
        pqn.main([*argv, "--runs-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(expected) and err.count("\n") == 1 and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


@pytest.mark.slow
def test_cartpole_preset_solves_cartpole_within_500k_steps(tmp_path):
    argv = ["--seed", "1", "--eval-interval", "100000", "--threads", "1"]
    args = driver.parse_args(["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", *argv], pqn.Args(),
                             pqn.ALGORITHM, "")
    assert args.agent == PRESETS["cartpole"] and args.agent.total_steps == 500_000
    result, _ = driver.train(args, pqn.ALGORITHM)
    final = result.evaluations[-1]
    assert final[0] == 500_000 and final[1] >= 475, result.evaluations
