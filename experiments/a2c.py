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

from agents.a2c import A2C, PRESET_NOTES, PRESETS, A2CConfig
from agents.loop import LoopResult
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the A2C experiment (flags override the preset's values)."""

    preset: str = "default"
    agent: A2CConfig = dataclasses.field(default_factory=A2CConfig)


ALGORITHM = driver.Algorithm("a2c", PRESETS, A2C.for_env, driver.policy_mode, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
