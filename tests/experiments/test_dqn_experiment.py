import dataclasses

import pytest
import torch

from agents.dqn import PRESETS
from experiments import dqn, dqn_atari, driver
from foundations.runlog import load_checkpoint


def _args(tmp_path, **dqn_overrides) -> dqn.Args:
    args = driver.parse_args(["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu"], dqn.Args(), dqn.ALGORITHM, "")
    config = dataclasses.replace(args.agent, total_steps=2000, learning_starts=200, train_frequency=4,
                                 gradient_steps=1, target_update_interval=100, batch_size=32, **dqn_overrides)
    loop = dataclasses.replace(args.loop, eval_interval=0, eval_episodes=2, log_interval=100)
    return dataclasses.replace(args, agent=config, loop=loop)


@pytest.mark.parametrize("flags", [{}, {"double": True, "dueling": True, "n_step": 3, "prioritized": True}])
def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, flags):
    args = _args(tmp_path / "a", **flags)
    straight, straight_dir = driver.train(args, dqn.ALGORITHM)
    args_b = _args(tmp_path / "b", **flags)
    half, half_dir = driver.train(args_b, dqn.ALGORITHM, stop_step=1000)
    assert half.step == 1000
    resumed, resumed_dir = driver.train(dataclasses.replace(args_b, resume=str(half_dir / "checkpoint.pt")), dqn.ALGORITHM)
    assert resumed_dir == half_dir and resumed.step == straight.step == 2000
    a = load_checkpoint(straight_dir / "checkpoint.pt")
    b = load_checkpoint(resumed_dir / "checkpoint.pt")
    for name in ("q", "target"):
        for key, value in a["agent"][name].items():
            assert torch.equal(value, b["agent"][name][key]), (name, key)
    assert a["agent"]["counters"] == b["agent"]["counters"]
    assert torch.equal(a["loop"]["actions"], b["loop"]["actions"])
    assert straight.evaluations == resumed.evaluations
    assert len(list(resumed_dir.glob("replay-*.pt"))) == 1  # older replay files are removed


def test_bad_command_lines_fail_at_start_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        dqn.main(["--preset", "natur", "--runs-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "unknown preset 'natur'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dqn.main(["--env-id", "Pendulum-v1", "--dueling", "--runs-dir", str(tmp_path), "--no-progress"])
    assert "DQN (and --dueling) needs a discrete action space, got Box" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dqn.main(["--buffer-size", "0", "--prioritized", "--runs-dir", str(tmp_path)])
    err = " ".join(capsys.readouterr().err.replace("\u2502", " ").split())  # tyro draws a box around it
    assert "DQNConfig.buffer_size must be >= 1, got 0 (prioritized replay needs a replay buffer)" in err
    with pytest.raises(SystemExit):
        dqn.main(["--env-id", "CartPol-v1", "--runs-dir", str(tmp_path), "--no-progress"])
    assert "CartPole-v1" in capsys.readouterr().err  # suggests the close match


def test_atari_run_stores_frames_once_and_logs(tmp_path):
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--preset", "atari100k",
            "--total-steps", "300", "--learning-starts", "100", "--buffer-size", "1000", "--eval-interval", "0",
            "--eval-episodes", "1", "--log-interval", "100", "--max-episode-frames", "400"]
    args = driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    assert args.env_id == "ALE/Breakout-v5" and args.agent.dueling and args.agent.n_step == 10
    result, run_dir = driver.train(args, dqn_atari.ALGORITHM)
    assert result.step == 300 and len(result.evaluations) == 1
    state = load_checkpoint(run_dir / "checkpoint.pt")
    replay = load_checkpoint(run_dir / state["replay_file"])["replay"]
    assert replay["tensors"]["_frame_store"].shape[1:] == (84, 84)
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())


@pytest.mark.slow
def test_cartpole_preset_solves_cartpole_within_50k_steps(tmp_path):
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--seed", "1",
            "--eval-interval", "5000", "--no-save-replay"]
    args = driver.parse_args(argv, dqn.Args(), dqn.ALGORITHM, "")
    assert args.agent == PRESETS["cartpole"] and args.agent.total_steps == 50_000
    result, _ = driver.train(args, dqn.ALGORITHM)
    best = max(mean for _, mean in result.evaluations)
    assert best >= 475, result.evaluations
