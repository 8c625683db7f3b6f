"""A2C (synchronous advantage actor-critic) on any Gymnasium env, discrete or continuous.

    python -m experiments.a2c --env-id CartPole-v1
    python -m experiments.a2c --env-id ALE/Breakout-v5 --preset atari
    python -m experiments.a2c --env-id Pendulum-v1 --optimizer adam --gae-lambda 0.9
    python -m experiments.a2c --help

Presets: ``default`` (SB3 / OpenAI Baselines: 8 envs x 5 steps, RMSProp 7e-4, n-step returns),
``atari`` (16 envs, entropy 0.01, value weight 0.25, 10M steps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from agents.a2c import A2C, A2CConfig
from agents.loop import LoopResult
from envs import TensorVecEnv
from experiments import driver

PRESETS: dict[str, A2CConfig] = {
    "default": A2CConfig(),
    "atari": A2CConfig(total_steps=10_000_000, num_envs=16, ent_coef=0.01, vf_coef=0.25),
}

PRESET_NOTES: dict[str, str] = {
    "default": "A2C as in Stable-Baselines3 / OpenAI Baselines: RMSProp (7e-4), 5-step returns, 8 envs",
    "atari": "Atari, 10M steps, 16 envs, entropy 0.01 (Mnih et al. 2016; the Baselines A2C settings)",
}


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the A2C experiment (flags override the preset's values)."""

    preset: str = "default"
    agent: A2CConfig = dataclasses.field(default_factory=A2CConfig)


def build(config: A2CConfig, env: TensorVecEnv, device: torch.device, seed: int) -> A2C:
    return A2C(config, env.obs_shape, env.obs_dtype, env.single_action_space, device=device, seed=seed)


ALGORITHM = driver.Algorithm("a2c", PRESETS, build, driver.policy_mode, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
