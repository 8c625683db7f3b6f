"""Partially observable classic control: the velocities hidden, so a policy must remember.

    make_env("CartPolePositionOnly-v1")   # obs [cart position, pole angle]      (CartPole-v1's 0, 2)
    make_env("PendulumPositionOnly-v1")   # obs [cos(theta), sin(theta)]          (Pendulum-v1's 0, 1)

Each id is the original env (same dynamics, rewards, time limit) behind :class:`PositionOnly`,
which keeps the listed observation entries. A feed-forward policy sees one frame and cannot
tell which way the pole is moving; a memory can work it out from consecutive frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

POSITION_ONLY: dict[str, tuple[str, tuple[int, ...]]] = {
    "CartPolePositionOnly-v1": ("CartPole-v1", (0, 2)),
    "PendulumPositionOnly-v1": ("Pendulum-v1", (0, 1)),
}
"""new id -> (original id, observation entries kept)."""


class PositionOnly(gym.ObservationWrapper):
    """Keeps observation entries ``keep`` of a 1-D ``Box`` observation."""

    def __init__(self, env: gym.Env, keep: Sequence[int]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"PositionOnly needs a 1-D Box observation space, got {space}")
        self.keep = np.asarray(keep, dtype=np.int64)
        self.observation_space = gym.spaces.Box(space.low[self.keep], space.high[self.keep], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.keep]


def _make(original: str, keep: tuple[int, ...], **kwargs: object) -> gym.Env:
    return PositionOnly(gym.make(original, **kwargs), keep)


def register_pomdp() -> None:
    """Register the position-only ids with Gymnasium (idempotent)."""
    for new_id, (original, keep) in POSITION_ONLY.items():
        if new_id not in gym.registry:
            spec = gym.spec(original)
            gym.register(new_id, entry_point=_make, kwargs={"original": original, "keep": keep},
                         max_episode_steps=None, reward_threshold=spec.reward_threshold)
