import dataclasses

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import a2c, driver, ppo, ppo_atari, reinforce
from foundations.runlog import load_checkpoint, save_checkpoint

QUIET = ["--no-progress", "--device", "cpu", "--seed", "1"]


def _parse(module, tmp_path, *extra):
    defaults = getattr(module, "DEFAULTS", None) or module.Args()
    return driver.parse_args(["--runs-dir", str(tmp_path), *QUIET, *extra], defaults, module.ALGORITHM, "")


@pytest.mark.parametrize("module,extra", [
    (ppo, ["--env-id", "Pendulum-v1", "--preset", "pendulum", "--num-steps", "64", "--num-minibatches", "4"]),
    (a2c, ["--env-id", "CartPole-v1"]),
    (reinforce, ["--env-id", "CartPole-v1", "--num-envs", "2"]),
    (ppo, ["--env-id", "CartPolePositionOnly-v1", "--core", "dnc", "--core-size", "16", "--core-memory-slots", "8",
           "--core-word-size", "4", "--num-envs", "4", "--num-steps", "64", "--hidden-sizes", "16", "--update-epochs", "1"]),
    (a2c, ["--env-id", "CartPolePositionOnly-v1", "--core", "transformer", "--core-size", "16", "--core-window", "4",
           "--core-heads", "2", "--bptt", "3"]),
])
def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, module, extra):
    common = [*extra, "--total-steps", "1200", "--eval-interval", "0", "--eval-episodes", "2", "--log-interval", "100"]
    args = _parse(module, tmp_path / "a", *common)
    straight, straight_dir = driver.train(args, module.ALGORITHM)
    args_b = _parse(module, tmp_path / "b", *common)
    driver.train(args_b, module.ALGORITHM, stop_step=600)
    resumed, resumed_dir = driver.train(dataclasses.replace(args_b, resume=str(next((tmp_path / "b").iterdir()) / "checkpoint.pt")),
                                        module.ALGORITHM)
    a = load_checkpoint(straight_dir / "checkpoint.pt")["agent"]
    b = load_checkpoint(resumed_dir / "checkpoint.pt")["agent"]
    assert a["updates"] == b["updates"] > 0
    for key, value in a["policy"].items():
        assert torch.equal(value, b["policy"][key]), key
    assert straight.evaluations == resumed.evaluations


def test_a_checkpoint_with_the_flat_core_options_of_before_resumes_exactly(tmp_path):
    """A checkpoint written before the core options were nested (``args.agent`` with flat
    ``core``, ``core_size``, ... fields) resumes into the same run as one never interrupted, and
    a core flag given with --resume is still checked against it under its flag's name."""
    common = ["--env-id", "CartPolePositionOnly-v1", "--core", "gru", "--core-size", "8", "--num-envs", "2",
              "--num-steps", "32", "--hidden-sizes", "8", "--update-epochs", "1", "--num-minibatches", "1",
              "--total-steps", "384", "--eval-interval", "0", "--eval-episodes", "2", "--log-interval", "64"]
    straight, straight_dir = driver.train(_parse(ppo, tmp_path / "a", *common), ppo.ALGORITHM)
    driver.train(_parse(ppo, tmp_path / "b", *common), ppo.ALGORITHM, stop_step=192)
    path = next((tmp_path / "b").iterdir()) / "checkpoint.pt"
    state = load_checkpoint(path)
    agent = state["args"]["agent"]
    core = agent.pop("core")
    assert core["kind"] == "gru" and core["size"] == 8
    agent.update({"core": "gru", **{f"core_{k}": v for k, v in core.items() if k != "kind"}})
    save_checkpoint(path, state)
    argv = ["--core", "gru", "--core-size", "16"]
    given = driver.given_flags(_parse(ppo, tmp_path / "b", *argv), argv)
    assert given == {"agent.core.kind": "gru", "agent.core.size": 16}  # nested options found by their flags
    with pytest.raises(ValueError, match=r"--core-size 16 \(saved: 8\)"):
        driver.train(_parse(ppo, tmp_path / "b", *common, "--core-size", "16", "--resume", str(path)), ppo.ALGORITHM,
                     given={"agent.core.size": 16})
    resumed, resumed_dir = driver.train(_parse(ppo, tmp_path / "b", "--resume", str(path)), ppo.ALGORITHM)
    a = load_checkpoint(straight_dir / "checkpoint.pt")["agent"]
    b = load_checkpoint(resumed_dir / "checkpoint.pt")["agent"]
    assert a["updates"] == b["updates"] > 0
    for key, value in a["policy"].items():
        assert torch.equal(value, b["policy"][key]), key
    assert straight.evaluations == resumed.evaluations


def test_ppo_logs_cleanrl_tags(tmp_path):
    args = _parse(ppo, tmp_path, "--env-id", "CartPole-v1", "--preset", "classic", "--total-steps", "2048",
                  "--eval-interval", "0", "--eval-episodes", "1", "--log-interval", "512")
    _, run_dir = driver.train(args, ppo.ALGORITHM)
    ea = EventAccumulator(str(run_dir))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    for tag in ("losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac",
                "losses/explained_variance", "charts/learning_rate", "charts/SPS", "charts/episodic_return",
                "eval/episodic_return"):
        assert tag in tags, (tag, tags)
    lrs = [e.value for e in ea.Scalars("charts/learning_rate")]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 2.5e-4  # annealed


def test_ppo_atari_builds_the_nature_cnn_policy(tmp_path):
    args = _parse(ppo_atari, tmp_path, "--total-steps", "256", "--num-envs", "2", "--num-steps", "64",
                  "--eval-interval", "0", "--eval-episodes", "1", "--log-interval", "128", "--max-episode-frames", "400")
    assert args.env_id == "ALE/Pong-v5" and args.agent.clip_coef == 0.1
    result, _ = driver.train(args, ppo_atari.ALGORITHM)
    assert result.step == 256


def test_bad_flags_fail_at_start(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ppo.main(["--env-id", "CartPole-v1", "--log-std-init", "-1", "--runs-dir", str(tmp_path), *QUIET])
    assert "--log-std-init only apply to continuous (Box) action spaces" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        a2c.main(["--preset", "cartpol", "--runs-dir", str(tmp_path)])
    assert "unknown preset 'cartpol'" in capsys.readouterr().err


def _episodes_until(run_dir, step):
    ea = EventAccumulator(str(run_dir))
    ea.Reload()
    return sum(1 for e in ea.Scalars("charts/episodic_return") if e.step <= step)


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps(tmp_path):
    args = _parse(ppo, tmp_path, "--env-id", "CartPole-v1", "--preset", "cartpole", "--eval-interval", "10000",
                  "--no-save-replay")
    result, _ = driver.train(args, ppo.ALGORITHM)
    assert max(m for _, m in result.evaluations) >= 475, result.evaluations


@pytest.mark.slow
def test_reinforce_solves_cartpole_within_1000_episodes(tmp_path):
    args = _parse(reinforce, tmp_path, "--env-id", "CartPole-v1", "--preset", "cartpole", "--eval-interval", "10000")
    result, run_dir = driver.train(args, reinforce.ALGORITHM)
    solved = [s for s, m in result.evaluations if m >= 475]
    assert solved, result.evaluations
    assert _episodes_until(run_dir, solved[0]) <= 1000


@pytest.mark.slow
def test_ppo_learns_pendulum_within_300k_steps(tmp_path):
    args = _parse(ppo, tmp_path, "--env-id", "Pendulum-v1", "--preset", "pendulum", "--eval-interval", "25000")
    assert args.agent.total_steps == 300_000
    # seed 1 passes -400 by 75k steps (-209; -169 at 100k); stop at 100k (schedules still span 300k): CI time
    result, _ = driver.train(args, ppo.ALGORITHM, stop_step=100_000)
    assert max(m for _, m in result.evaluations) >= -400, result.evaluations


def test_a_dnc_core_logs_its_weightings_and_usage_over_an_evaluation_episode(tmp_path):
    args = _parse(ppo, tmp_path, "--env-id", "CartPolePositionOnly-v1", "--core", "dnc", "--core-size", "16",
                  "--core-memory-slots", "8", "--core-word-size", "4", "--total-steps", "512", "--eval-interval", "512",
                  "--eval-episodes", "2", "--log-interval", "256")
    result, run_dir = driver.train(args, ppo.ALGORITHM)
    ea = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    ea.Reload()
    (image,) = ea.Images("eval/memory")  # one evaluation: one figure (read, write, usage panels)
    assert image.step == 512 and image.width > 3 * image.height > 300
    assert len(result.evaluations) == 1
