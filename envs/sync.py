"""A lean same-step-autoreset vector env for cheap environments (classic control, Box2D, MuJoCo).

Gymnasium's ``SyncVectorEnv`` spends most of a CartPole step on bookkeeping (iterating the
batched action space, a deep copy of the batched observation, merging empty info dicts): about
three times the cost of the environment itself. :class:`SameStepVectorEnv` keeps its
semantics in ``SAME_STEP`` autoreset mode (checked step for step against it in the tests) and
does only the stepping:

- ``step`` returns a fresh observation array each call (callers may keep it);
- where a sub-env's episode ends, it is reset in the same call, ``obs`` holds the new episode's
  first observation and ``info["final_obs"]`` ``[num_envs, *obs_shape]`` holds the ended one's
  last observation in that row (other rows are zeros; ``info["_final_obs"]`` masks them; Gymnasium
  gives an object array there) and ``info["final_info"]`` its last info, as Gymnasium does;
- any other info a sub-env returns is merged the way Gymnasium merges it (with ``_key`` masks).

It serves array observation spaces (``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``):
what :class:`envs.vector.TensorVecEnv` turns into tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

ARRAY_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


class SameStepVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` Gymnasium envs stepped in turn in this process, resetting in the step that ends an episode.

    Args:
      env_fns: one callable per sub-env returning a ``gymnasium.Env``; all must share their
        observation and action spaces.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        if len(env_fns) < 1:
            raise ValueError("SameStepVectorEnv needs at least one env function")
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        if not isinstance(self.single_observation_space, ARRAY_SPACES):
            raise ValueError(
                f"SameStepVectorEnv serves array observation spaces {[s.__name__ for s in ARRAY_SPACES]}, "
                f"got {self.single_observation_space}"
            )
        for i, env in enumerate(self.envs[1:], 1):
            if env.observation_space != first.observation_space or env.action_space != first.action_space:
                raise ValueError(f"sub-env {i} has different spaces from sub-env 0")
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**first.metadata, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
        self.render_mode = first.render_mode
        self.spec = first.spec
        space = self.single_observation_space
        self._obs_shape = (self.num_envs, *(space.shape or ()))
        self._obs_dtype = space.dtype
        self._int_actions = isinstance(self.single_action_space, gym.spaces.Discrete)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env; an int ``seed`` seeds sub-env ``i`` with ``seed + i``."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"{len(seeds)} seeds given for {self.num_envs} envs")
        obs = np.empty(self._obs_shape, dtype=self._obs_dtype)
        infos: dict[str, Any] = {}
        for i, (env, s) in enumerate(zip(self.envs, seeds, strict=True)):
            obs[i], info = env.reset(seed=s, options=options)
            if info:
                infos = self._add_info(infos, info, i)
        return obs, infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step sub-env ``i`` with ``actions[i]``; see the module docstring for what comes back."""
        n = self.num_envs
        obs = np.empty(self._obs_shape, dtype=self._obs_dtype)
        rewards = np.empty(n, dtype=np.float64)
        terminated = np.empty(n, dtype=np.bool_)
        truncated = np.empty(n, dtype=np.bool_)
        infos: dict[str, Any] = {}
        final: np.ndarray | None = None
        # Discrete actions go in as Python ints (the natural type; one tolist() is cheaper than
        # indexing the array once per env)
        per_env = actions.tolist() if self._int_actions else actions
        for i, env in enumerate(self.envs):
            o, rewards[i], terminated[i], truncated[i], info = env.step(per_env[i])
            if terminated[i] or truncated[i]:
                if final is None:
                    final = np.zeros(self._obs_shape, dtype=self._obs_dtype)
                    final_mask = np.zeros(n, dtype=np.bool_)
                final[i], final_mask[i] = o, True
                infos = self._add_info(infos, {"final_info": info}, i)
                o, info = env.reset()
            obs[i] = o
            if info:
                infos = self._add_info(infos, info, i)
        if final is not None:
            infos["final_obs"], infos["_final_obs"] = final, final_mask
        return obs, rewards, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        """Each sub-env's frame (for ``render_mode="rgb_array"``)."""
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
