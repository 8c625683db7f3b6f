"""Partially observable classic control: the velocities hidden, so a policy must remember.

    make_env("CartPolePositionOnly-v1")   # obs [cart position, pole angle]      (CartPole-v1's 0, 2)
    make_env("PendulumPositionOnly-v1")   # obs [cos(theta), sin(theta)]          (Pendulum-v1's 0, 1)
    make_env("popgym-RepeatPreviousEasy-v0")   # POPGym (Morad et al. 2023), the [pomdp] extra

Each id is the original env (same dynamics, rewards, time limit) behind :class:`PositionOnly`,
which keeps the listed observation entries. A feed-forward policy sees one frame and cannot
tell which way the pole is moving; a memory can work it out from consecutive frames.

POPGym's ids (``popgym-<Env><Difficulty>-v0``, e.g. ``popgym-CountRecallEasy-v0``) come from the
``popgym`` package (``pip install -e '.[pomdp]'``); their discrete observations (``Discrete``,
``MultiDiscrete``, tuples of them) reach the agents one-hot encoded and concatenated
(Gymnasium's ``FlattenObservation``), a ``[features]`` float vector like every other env's.
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


POPGYM_PREFIX = "popgym-"
POPGYM_INSTALL = "pip install -e '.[pomdp]'"


def is_popgym_id(env_id: str) -> bool:
    return env_id.startswith(POPGYM_PREFIX)


def register_popgym(env_id: str) -> None:
    """Import ``popgym`` (which registers its ids), or say in one line how to install it."""
    try:
        import popgym  # noqa: F401
    except ImportError:
        raise ValueError(f"{env_id} is a POPGym env, and popgym is not installed: {POPGYM_INSTALL}") from None


def popgym_env(env_id: str, **kwargs: object) -> gym.Env:
    """A POPGym env with its observations flattened to a one-hot ``Box`` vector (some POPGym envs
    take no ``render_mode``: a ``None`` one is not passed on)."""
    if kwargs.get("render_mode") is None:
        kwargs.pop("render_mode", None)
    env = gym.make(env_id, **kwargs)
    if isinstance(env.observation_space, gym.spaces.Box):
        return env
    return gym.wrappers.FlattenObservation(env)


def register_pomdp() -> None:
    """Register the position-only ids with Gymnasium (idempotent). The memory tasks' ids
    (``MemoryCopy-v0`` ...) are registered by the layer that defines their env, on import of
    ``memory_nets.rl_tasks`` (the experiments import it): ``envs`` never names a higher layer."""
    for new_id, (original, keep) in POSITION_ONLY.items():
        if new_id not in gym.registry:
            spec = gym.spec(original)
            gym.register(new_id, entry_point=_make, kwargs={"original": original, "keep": keep},
                         max_episode_steps=None, reward_threshold=spec.reward_threshold)
