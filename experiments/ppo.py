"""PPO on classic-control and other vector-observation envs, discrete or continuous actions.

    python -m experiments.ppo --env-id CartPole-v1                          # --preset cartpole
    python -m experiments.ppo --env-id Pendulum-v1 --preset pendulum        # Gaussian policy
    python -m experiments.ppo --env-id Acrobot-v1 --preset classic --target-kl 0.02
    python -m experiments.ppo --resume runs/<run>/checkpoint.pt
    python -m experiments.ppo --help

Presets (``agents.ppo.PRESETS``): ``classic`` (CleanRL's ``ppo.py``), ``cartpole`` (100k
steps), ``pendulum`` (continuous control, 300k steps), ``atari`` (CleanRL's ``ppo_atari.py``).
Logs the same tags as CleanRL's PPO: ``losses/policy_loss``, ``losses/value_loss``,
``losses/entropy``, ``losses/approx_kl``, ``losses/clipfrac``, ``losses/explained_variance``,
``charts/learning_rate``, plus episodic and evaluation returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agents.loop import LoopResult
from agents.ppo import PPO, PRESET_NOTES, PRESETS, PPOConfig
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the PPO experiments (flags override the preset's values)."""

    agent: PPOConfig = dataclasses.field(default_factory=PPOConfig)


ALGORITHM = driver.Algorithm("ppo", PRESETS, PPO.for_env, driver.policy_mode, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
