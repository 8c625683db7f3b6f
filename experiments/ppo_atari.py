"""PPO on Atari with the Nature CNN trunk shared by policy and value (CleanRL's ``ppo_atari.py``).

    python -m experiments.ppo_atari --env-id ALE/Pong-v5
    python -m experiments.ppo_atari --env-id ALE/Breakout-v5 --num-envs 16 --total-steps 5000000
    python -m experiments.ppo_atari --help

Same agent, flags, logs and checkpoints as ``experiments.ppo``; defaults to ``--preset atari``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agents.loop import LoopResult
from experiments import driver
from experiments.ppo import PRESET_NOTES, PRESETS, Args, build

ALGORITHM = driver.Algorithm("ppo_atari", PRESETS, build, driver.policy_mode, PRESET_NOTES)
DEFAULTS = dataclasses.replace(Args(), env_id="ALE/Pong-v5", preset="atari")


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, DEFAULTS, __doc__ or "", argv)


if __name__ == "__main__":
    main()
