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
from agents.ppo import PPO, PRESET_NOTES, PRESETS, PPOConfig
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of PPO on Atari (flags override the preset's values)."""

    env_id: str = "ALE/Pong-v5"
    """Gymnasium id of an Atari game (ALE/<Game>-v5)."""
    preset: str = "atari"
    """hyperparameter preset (see --help); other flags override its values."""
    agent: PPOConfig = dataclasses.field(default_factory=PPOConfig)


ALGORITHM = driver.Algorithm("ppo_atari", PRESETS, PPO.for_env, driver.policy_mode, PRESET_NOTES)
DEFAULTS = Args()


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, DEFAULTS, __doc__ or "", argv)


if __name__ == "__main__":
    main()
