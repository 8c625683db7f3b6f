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

from agents.dqn import DQN, PRESET_NOTES, PRESET_RUN_SETTINGS, PRESETS, DQNConfig, evaluation_policy
from agents.loop import LoopResult
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the DQN experiments (flags override the preset's values)."""

    agent: DQNConfig = dataclasses.field(default_factory=DQNConfig)


ALGORITHM = driver.Algorithm("dqn", PRESETS, DQN.for_env, evaluation_policy, PRESET_NOTES, PRESET_RUN_SETTINGS)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
