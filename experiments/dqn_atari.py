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

from agents.dqn import PRESET_NOTES, PRESET_RUN_SETTINGS, PRESETS
from agents.loop import LoopResult
from experiments import driver
from experiments.dqn import Args, build, eval_policy

ALGORITHM = driver.Algorithm("dqn_atari", PRESETS, build, eval_policy, PRESET_NOTES, PRESET_RUN_SETTINGS)
DEFAULTS = dataclasses.replace(Args(), env_id="ALE/Breakout-v5", preset="nature")


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, DEFAULTS, __doc__ or "", argv)


if __name__ == "__main__":
    main()
