"""DQN on Atari (Nature CNN on 4x84x84 uint8 frame stacks, frames stored once in the replay).

    python -m experiments.dqn_atari --env-id ALE/Breakout-v5                     # Nature DQN
    python -m experiments.dqn_atari --env-id ALE/Breakout-v5 --preset drq_eps  # make run
    python -m experiments.dqn_atari --env-id ALE/Pong-v5 --double --dueling --n-step 3 --prioritized
    python -m experiments.dqn_atari --help

Same agent, flags, logs and checkpoints as ``experiments.dqn``; Atari preprocessing options
(``--repeat-action-probability 0.25``, ``--full-action-space``...) are flags too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agents.dqn import DQN, PRESET_NOTES, PRESET_RUN_SETTINGS, PRESETS, DQNConfig, evaluation_policy
from agents.loop import LoopResult
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of DQN on Atari (flags override the preset's values)."""

    env_id: str = "ALE/Breakout-v5"
    """Gymnasium id of an Atari game (ALE/<Game>-v5)."""
    preset: str = "nature"
    """hyperparameter preset (see --help); other flags override its values."""
    agent: DQNConfig = dataclasses.field(default_factory=DQNConfig)


ALGORITHM = driver.Algorithm("dqn_atari", PRESETS, DQN.for_env, evaluation_policy, PRESET_NOTES, PRESET_RUN_SETTINGS)
DEFAULTS = Args()


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, DEFAULTS, __doc__ or "", argv)


if __name__ == "__main__":
    main()
