"""PQN (parallelised Q-learning: no replay, no target network) on vector-observation and Atari envs.

    python -m experiments.pqn --env-id CartPole-v1                                  # --preset cartpole
    python -m experiments.pqn --env-id ALE/Breakout-v5 --preset atari --total-steps 2000000
    python -m experiments.pqn --resume runs/<run>/checkpoint.pt
    python -m experiments.pqn --help

``--preset`` picks a hyperparameter set (``agents.pqn.PRESETS``: cartpole, atari); every other
flag overrides it. Atari ids get the DeepMind preprocessing (``--noop-max``, ``--frame-skip``...
as in ``experiments.dqn_atari``). Logs the tags of the DQN experiments (``losses/td_loss``,
``losses/q_values``, ``charts/epsilon``, ``charts/learning_rate``, episodic and evaluation
returns); ``checkpoint.pt`` holds the rollout in progress, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from agents.loop import LoopResult
from agents.pqn import PQN, PRESET_NOTES, PRESETS, PQNConfig
from envs import TensorVecEnv
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the PQN experiment (flags override the preset's values)."""

    agent: PQNConfig = dataclasses.field(default_factory=PQNConfig)


def build(config: PQNConfig, env: TensorVecEnv, device: torch.device, seed: int) -> PQN:
    if not env.is_discrete:
        raise ValueError(f"PQN needs a discrete action space (it maximises over actions), got {env.single_action_space}")
    return PQN(config, env.obs_shape, env.obs_dtype, env.num_actions, device=device, seed=seed)


def eval_policy(agent: PQN, config: PQNConfig, rng: np.random.Generator):
    """Epsilon-greedy at ``eval_epsilon`` with the Q-network in eval mode."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        with agent.evaluation():
            return agent.act(obs, config.eval_epsilon, rng=rng)[0]

    return policy


ALGORITHM = driver.Algorithm("pqn", PRESETS, build, eval_policy, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
