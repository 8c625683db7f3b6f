"""Clocks that start timing a training run once its start-up is over (its first rollout and
update, or a given step), for our agents (a wrapper of ``train``) and for Stable-Baselines3's (a
callback), so neither side's warm-up (or compile) is in its rate."""

from __future__ import annotations

import time
from typing import Any


class AfterFirstUpdate:
    """Wraps an on-policy agent: ``start`` is the time its first ``train`` that learned returned."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.start = agent, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    def train(self, step: int, n: int) -> Any:
        out = self.agent.train(step, n)
        if out is not None and self.start is None:
            self.start = time.perf_counter()
        return out


def sb3_after_first_update() -> Any:
    """An SB3 callback whose ``start`` is the time the second rollout begins (after the first update)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        rollouts_started, start = 0, None

        def _on_rollout_start(self) -> None:
            self.rollouts_started += 1
            if self.rollouts_started == 2:
                self.start = time.perf_counter()

        def _on_step(self) -> bool:
            return True

    return Clock()


def sb3_steps_per_second(model: Any, env: Any, steps_per_rollout: int, rollouts: int) -> float:
    """Train an SB3 ``model`` for ``rollouts + 1`` rollouts and return env steps/s after the
    first rollout and update; closes ``env``."""
    clock = sb3_after_first_update()
    model.learn(steps_per_rollout * (rollouts + 1), callback=clock)
    end = time.perf_counter()
    env.close()
    return steps_per_rollout * rollouts / (end - clock.start)


class FromStep:
    """Wraps an agent: ``start`` is the time its ``train`` is first called at or past ``step``."""

    def __init__(self, agent: Any, step: int) -> None:
        self.agent, self.step, self.start = agent, step, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)

    def train(self, step: int, n: int) -> Any:
        if self.start is None and step >= self.step:
            self.start = time.perf_counter()
        return self.agent.train(step, n)


def sb3_from_step(step: int) -> Any:
    """An SB3 callback whose ``start`` is the time the model has taken ``step`` env steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        start: float | None = None

        def _on_step(self) -> bool:
            if self.start is None and self.num_timesteps >= step:
                self.start = time.perf_counter()
            return True

    return Clock()
