"""REINFORCE (Monte Carlo policy gradient) with reward-to-go and an optional learned baseline.

    python -m experiments.reinforce --env-id CartPole-v1              # --preset cartpole
    python -m experiments.reinforce --env-id CartPole-v1 --no-baseline --no-normalize-returns
    python -m experiments.reinforce --help
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agents.loop import LoopResult
from agents.reinforce import PRESET_NOTES, PRESETS, REINFORCE, REINFORCEConfig
from experiments import driver


@dataclasses.dataclass(frozen=True)
class Args(driver.RunArgs):
    """Command-line options of the REINFORCE experiment (flags override the preset's values)."""

    agent: REINFORCEConfig = dataclasses.field(default_factory=REINFORCEConfig)


ALGORITHM = driver.Algorithm("reinforce", PRESETS, REINFORCE.for_env, driver.policy_mode, PRESET_NOTES)


def main(argv: Sequence[str] | None = None) -> LoopResult:
    return driver.main(ALGORITHM, Args(), __doc__ or "", argv)


if __name__ == "__main__":
    main()
