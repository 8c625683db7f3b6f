"""Checkpoints written before the agents were reshaped (commit de5c863: presets in the experiment
scripts, QNetwork in agents/dqn.py, the cores' if/elif ladder, PPO's two learning loops) still
load, resume, and end where a run of today's code that never stopped ends.

"The same end" is: every action of the run the same, and every weight the same up to float
rounding. The fixtures' first halves were computed on another CPU, and matrix products on CPUs
with other vector units round differently (CI on another machine saw last-bit differences), so
bit equality of the weights would test the machine, not the code. The tolerance is measured:
resuming from a fixture whose weights and optimizer moments were perturbed by 3e-6 relative
(25 times float32's epsilon) ends at most 1.2e-5 from the straight run (3e-5: 1.2e-4, no
growth), while a checkpoint that loses the optimizer's moments ends 2.5e-3 to 2e-2 away (the
four cases whose optimizer had stepped before the fixture's half; DQN's had not)."""

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
    ended, reference = load_checkpoint(old / "checkpoint.pt"), load_checkpoint(straight_dir / "checkpoint.pt")
    assert torch.equal(ended["loop"]["actions"], reference["loop"]["actions"])
    assert ended["loop"]["actions"].shape[:2].numel() == args.agent.total_steps  # [vector steps, envs]
    a, b = _networks(ended), _networks(reference)
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-4, msg=lambda m, key=key: f"{key}: {m}")
