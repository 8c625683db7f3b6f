"""REINFORCE (Monte Carlo policy gradient) with reward-to-go and an optional learned baseline.

    python -m experiments.reinforce --env-id CartPole-v1              # --preset cartpole
    python -m experiments.reinforce --env-id CartPole-v1 --no-baseline --no-normalize-returns
    python -m experiments.reinforce --help
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from agents.loop import LoopResult
from agents.reinforce import REINFORCE, REINFORCEConfig
from envs import TensorVecEnv
from experiments import driver

PRESETS: dict[str, REINFORCEConfig] = {
    "cartpole": REINFORCEConfig(total_steps=100_000, num_envs=1, episodes_per_update=1, learning_rate=1e-3,
                                gamma=0.99, hidden_sizes=(64, 64)),
}

PRESET_NOTES: dict[str, str] = {
    "cartpole": "Monte Carlo policy gradient with a learned baseline on CartPole-v1 (Williams 1992; Sutton & Barto 13.4)",
}


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the REINFORCE experiment (flags override the preset's values)."""

    agent: REINFORCEConfig = dataclasses.field(default_factory=REINFORCEConfig)


def build(config: REINFORCEConfig, env: TensorVecEnv, device: torch.device, seed: int) -> REINFORCE:
    return REINFORCE(config, env.obs_shape, env.obs_dtype, env.single_action_space, device=device, seed=seed)


ALGORITHM = driver.Algorithm("reinforce", PRESETS, build, driver.policy_mode, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
