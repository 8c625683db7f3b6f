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

from agents.loop import LoopResult
from agents.pqn import PQN, PRESET_NOTES, PRESETS, PQNConfig, evaluation_policy
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the PQN experiment (flags override the preset's values)."""

    agent: PQNConfig = dataclasses.field(default_factory=PQNConfig)


ALGORITHM = driver.Algorithm("pqn", PRESETS, PQN.for_env, evaluation_policy, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
