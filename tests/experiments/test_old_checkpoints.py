"""Checkpoints written before the agents were reshaped (commit de5c863: presets in the experiment
scripts, QNetwork in agents/dqn.py, the cores' if/elif ladder, PPO's two learning loops) still
load, resume, and end where a run of today's code that never stopped ends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from experiments import a2c, dqn, driver, ppo, reinforce
from foundations.runlog import load_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints-de5c863"
COMMON = ["--no-progress", "--device", "cpu", "--eval-interval", "0", "--eval-episodes", "1"]
CASES = {  # the flags the fixtures were written with (stopped at half their total steps)
    "dqn": (dqn, ["--hidden-sizes", "16", "16", "--buffer-size", "500", "--learning-starts", "50", "--total-steps", "400"]),
    "ppo_lstm": (ppo, ["--core", "lstm", "--core-size", "8", "--num-envs", "2", "--num-steps", "16",
                       "--num-minibatches", "2", "--total-steps", "256", "--preset", "classic"]),
    "ppo_dnc": (ppo, ["--core", "dnc", "--core-size", "8", "--core-memory-slots", "4", "--core-word-size", "4",
                      "--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--total-steps", "256",
                      "--preset", "classic"]),
    "a2c": (a2c, ["--total-steps", "400"]),
    "reinforce": (reinforce, ["--total-steps", "400"]),
}  # fmt: skip


def _networks(state: dict) -> dict[str, torch.Tensor]:
    agent = state["agent"]
    return {f"{part}.{k}": v for part in ("q", "target", "policy") if part in agent for k, v in agent[part].items()}


@pytest.mark.parametrize("name", list(CASES))
def test_an_old_checkpoint_resumes_to_the_same_end_as_an_uninterrupted_run(tmp_path, name):
    module, argv = CASES[name]
    old = tmp_path / "old"
    shutil.copytree(FIXTURES / name, old)
    resumed, _ = driver.train(driver.parse_args(["--resume", str(old / "checkpoint.pt"), "--no-progress"],
                                                module.Args(), module.ALGORITHM, ""), module.ALGORITHM)
    args = driver.parse_args(["--runs-dir", str(tmp_path / "new"), *COMMON, *argv], module.Args(), module.ALGORITHM, "")
    straight, straight_dir = driver.train(args, module.ALGORITHM)
    assert resumed.step == straight.step == args.agent.total_steps
    a, b = _networks(load_checkpoint(old / "checkpoint.pt")), _networks(load_checkpoint(straight_dir / "checkpoint.pt"))
    assert a.keys() == b.keys() and a
    for key in a:
        assert torch.equal(a[key], b[key]), key
