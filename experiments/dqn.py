"""DQN on vector-observation envs (CartPole, Acrobot, ...).

    python -m experiments.dqn --env-id CartPole-v1 --preset cartpole --seed 1
    python -m experiments.dqn --env-id CartPole-v1 --double --dueling --n-step 3 --prioritized
    python -m experiments.dqn --resume runs/<run>/checkpoint.pt
    python -m experiments.dqn --help

``--preset`` picks a hyperparameter set (``agents.dqn.PRESETS``: nature, drq_eps, der, cartpole);
every other flag overrides it. Logs go to ``runs/<env>__<experiment>__<seed>__<time>/``
(TensorBoard, CleanRL tag names); ``checkpoint.pt`` (+ ``replay-<step>.pt``) is written there
every ``--checkpoint-interval`` steps and at the end. ``--resume`` continues a run exactly (same
seed, same result as an uninterrupted run), with the saved configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from agents.dqn import DQN, PRESET_NOTES, PRESET_RUN_SETTINGS, PRESETS, DQNConfig
from agents.loop import LoopResult
from envs import TensorVecEnv
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the DQN experiments (flags override the preset's values)."""

    agent: DQNConfig = dataclasses.field(default_factory=DQNConfig)


def build(config: DQNConfig, env: TensorVecEnv, device: torch.device, seed: int) -> DQN:
    if not env.is_discrete:
        flags = " (and --dueling)" if config.dueling else ""
        raise ValueError(f"DQN{flags} needs a discrete action space, got {env.single_action_space}")
    return DQN(config, env.obs_shape, env.obs_dtype, env.num_actions, device=device, seed=seed)


def eval_policy(agent: DQN, config: DQNConfig, rng: np.random.Generator):
    """Epsilon-greedy at ``eval_epsilon`` with the Q-network in eval mode (noisy layers: their means)."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        with agent.evaluation():
            return agent.act(obs, config.eval_epsilon, rng=rng)

    return policy


ALGORITHM = driver.Algorithm("dqn", PRESETS, build, eval_policy, PRESET_NOTES, PRESET_RUN_SETTINGS)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
